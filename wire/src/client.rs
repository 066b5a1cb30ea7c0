//! A low-level ingress client: one QUIC connection, one stream, pipelined requests matched
//! to answers by request id, coalesced writes. The SDK (veil-builder-api) adds encryption,
//! reconnection and retries on top.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::ingress::{
    Ack, ClientFrame, FrameDecoder, Ping, ServerFrame, Submit, SubmitBundle, ALPN,
    DEFAULT_MAX_FRAME_SIZE,
};
use crate::tls::{self, Pin};

/// Default time to wait for an answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the ingress.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's UDP address.
    pub server: SocketAddr,
    /// How the server's certificate is recognised.
    pub pin: Pin,
    /// How long to wait for an answer.
    pub request_timeout: Duration,
    /// Deadline sent with each request (0: the server's default).
    pub deadline_ms: u32,
    /// QUIC keep-alive interval (keeps an idle connection open).
    pub keep_alive: Option<Duration>,
    /// QUIC idle timeout: how soon a dead server is noticed.
    pub idle_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `server`, pinned by `pin`.
    #[must_use]
    pub fn new(server: SocketAddr, pin: Pin) -> ClientConfig {
        ClientConfig {
            server,
            pin,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            deadline_ms: 0,
            keep_alive: Some(Duration::from_secs(5)),
            idle_timeout: Duration::from_secs(15),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<ServerFrame>>>>;

/// A connected client. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct IngressClient {
    endpoint: Endpoint,
    conn: quinn::Connection,
    out: mpsc::Sender<Bytes>,
    pending: Pending,
    unsolicited: tokio::sync::Mutex<mpsc::Receiver<ServerFrame>>,
    next_id: AtomicU64,
    config: ClientConfig,
    tasks: Vec<JoinHandle<()>>,
}

impl IngressClient {
    /// Connects, opens the stream and starts the reader and writer tasks.
    ///
    /// # Errors
    /// [`ClientError`] if TLS setup, the handshake or opening the stream fails.
    pub async fn connect(config: ClientConfig) -> Result<IngressClient, ClientError> {
        let bind: SocketAddr = if config.server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let mut endpoint = Endpoint::client(bind).map_err(ClientError::Endpoint)?;
        let mut client = quinn::ClientConfig::new(tls::client_crypto(&config.pin, ALPN)?);
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(config.keep_alive);
        if let Ok(idle) = quinn::IdleTimeout::try_from(config.idle_timeout) {
            transport.max_idle_timeout(Some(idle));
        }
        client.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(client);
        let conn = endpoint.connect(config.server, "localhost")?.await?;
        let (send, recv) = conn.open_bi().await?;
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(4096);
        let (unsolicited_tx, unsolicited_rx) = mpsc::channel(1024);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let tasks = vec![
            tokio::spawn(write_loop(send, out_rx)),
            tokio::spawn(read_loop(recv, pending.clone(), unsolicited_tx)),
        ];
        Ok(IngressClient {
            endpoint,
            conn,
            out: out_tx,
            pending,
            unsolicited: tokio::sync::Mutex::new(unsolicited_rx),
            next_id: AtomicU64::new(1),
            config,
            tasks,
        })
    }

    /// Whether the connection has closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Why the connection closed, if it has.
    #[must_use]
    pub fn close_reason(&self) -> Option<quinn::ConnectionError> {
        self.conn.close_reason()
    }

    /// Submits one ciphertext (canonical bytes) and waits for the ack.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with the server's code, or a transport error.
    pub async fn submit(&self, ciphertext: Bytes) -> Result<Ack, ClientError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = ClientFrame::Submit(Submit {
            request_id,
            deadline_ms: self.config.deadline_ms,
            ciphertext,
        });
        self.request(request_id, &frame).await
    }

    /// Submits every part of an atomic bundle and waits for the ack.
    ///
    /// # Errors
    /// As [`IngressClient::submit`].
    pub async fn submit_bundle(&self, parts: Vec<Bytes>) -> Result<Ack, ClientError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = ClientFrame::SubmitBundle(SubmitBundle {
            request_id,
            deadline_ms: self.config.deadline_ms,
            parts,
        });
        self.request(request_id, &frame).await
    }

    /// Sends a ping and waits for the pong.
    ///
    /// # Errors
    /// A transport error or [`ClientError::Timeout`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        let nonce = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::new();
        ClientFrame::Ping(Ping { nonce }).encode(&mut buf);
        self.send_raw(buf.freeze()).await?;
        loop {
            match self.next_unsolicited().await? {
                ServerFrame::Pong(p) if p.nonce == nonce => return Ok(()),
                _ => continue,
            }
        }
    }

    /// Sends raw bytes on the stream as they are (for tests of hostile input).
    ///
    /// # Errors
    /// [`ClientError::Closed`] if the writer has stopped.
    pub async fn send_raw(&self, bytes: Bytes) -> Result<(), ClientError> {
        self.out.send(bytes).await.map_err(|_| ClientError::Closed)
    }

    /// The next frame not matched to a request of this client (rejections with request id
    /// 0 for undecodable frames, pongs).
    ///
    /// # Errors
    /// [`ClientError::Closed`] or [`ClientError::Timeout`].
    pub async fn next_unsolicited(&self) -> Result<ServerFrame, ClientError> {
        let mut rx = self.unsolicited.lock().await;
        match tokio::time::timeout(self.config.request_timeout, rx.recv()).await {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    async fn request(&self, request_id: u64, frame: &ClientFrame) -> Result<Ack, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, tx);
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        if self.out.send(buf.freeze()).await.is_err() {
            self.forget(request_id);
            return Err(self.closed_error());
        }
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(Ok(ServerFrame::Ack(ack))) => Ok(ack),
            Ok(Ok(ServerFrame::Reject(r))) => Err(ClientError::Rejected(r)),
            Ok(Ok(ServerFrame::Pong(_))) => Err(ClientError::Closed),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                self.forget(request_id);
                Err(ClientError::Timeout)
            }
        }
    }

    fn closed_error(&self) -> ClientError {
        match self.conn.close_reason() {
            Some(e) => ClientError::Connection(e),
            None => ClientError::Closed,
        }
    }

    fn forget(&self, request_id: u64) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close(VarInt::from_u32(0), b"bye");
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint.wait_idle().await;
    }
}

async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Bytes>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(&first);
        while buf.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = send.finish();
}

async fn read_loop(
    mut recv: quinn::RecvStream,
    pending: Pending,
    unsolicited: mpsc::Sender<ServerFrame>,
) {
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
        decoder.push(&chunk.bytes);
        while let Some(frame) = decoder.poll_frame() {
            let Ok(frame) = frame.and_then(|raw| ServerFrame::decode(&raw)) else { continue };
            let request_id = match &frame {
                ServerFrame::Ack(a) => a.request_id,
                ServerFrame::Reject(r) => r.request_id,
                ServerFrame::Pong(_) => 0,
            };
            let waiter = if request_id == 0 {
                None
            } else {
                pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id)
            };
            match waiter {
                Some(w) => {
                    let _ = w.send(frame);
                }
                None => {
                    let _ = unsolicited.try_send(frame);
                }
            }
        }
    }
    // Dropping the pending senders wakes every waiter with "closed".
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
