//! A low-level ingress client: one QUIC connection, one stream, pipelined requests matched
//! to answers by request id, coalesced writes. The SDK (veil-builder-api) adds encryption,
//! reconnection and retries on top.
//!
//! Inclusion receipts ([`kind::RECEIPT`](crate::ingress::kind::RECEIPT) frames) arrive
//! unsolicited, whenever a slot commitment includes a transaction submitted on this
//! connection. The reader keeps them in a bounded inbox, keyed by transaction id, until they
//! are taken with [`IngressClient::wait_receipt`], [`IngressClient::take_receipt`] or
//! [`IngressClient::next_receipt`]; when the inbox is full the oldest receipt is dropped
//! (counted by [`IngressClient::receipts_dropped`]), so a client that never asks for its
//! receipts costs bounded memory and never stalls its acks. The client does not check
//! signatures: verify with [`veil_primitives::receipt::verify_receipt`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use veil_primitives::{SignedReceipt, TxId};

use crate::error::ClientError;
use crate::ingress::{
    Ack, ClientFrame, FrameDecoder, Ping, ServerFrame, SignedCiphertext, Submit, SubmitBundle,
    ALPN, DEFAULT_MAX_FRAME_SIZE,
};
use crate::tls::{self, Pin};

/// Default time to wait for an answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of receipts the client holds until they are taken.
pub const DEFAULT_RECEIPT_INBOX: usize = 4096;

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
    /// Receipts held until taken; past it the oldest is dropped (at least 1).
    pub receipt_inbox: usize,
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
            receipt_inbox: DEFAULT_RECEIPT_INBOX,
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<ServerFrame>>>>;

/// Receipts received and not yet taken: bounded, oldest dropped first.
#[derive(Debug, Default)]
struct ReceiptInbox {
    state: Mutex<InboxState>,
    /// Woken on every arrival and when the reader stops.
    arrived: Notify,
    /// Set once the reader has stopped: nothing more will arrive.
    closed: AtomicBool,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct InboxState {
    capacity: usize,
    next: u64,
    /// Arrival number to transaction, oldest first.
    order: BTreeMap<u64, TxId>,
    by_tx: HashMap<TxId, (u64, SignedReceipt)>,
}

impl ReceiptInbox {
    fn new(capacity: usize) -> ReceiptInbox {
        ReceiptInbox {
            state: Mutex::new(InboxState { capacity: capacity.max(1), ..InboxState::default() }),
            ..ReceiptInbox::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds receipts; a later receipt for the same transaction replaces the earlier one.
    fn push(&self, receipts: Vec<SignedReceipt>) {
        {
            let mut s = self.lock();
            for r in receipts {
                let tx = r.message.tx;
                let n = s.next;
                s.next += 1;
                if let Some((old, _)) = s.by_tx.insert(tx, (n, r)) {
                    s.order.remove(&old);
                }
                s.order.insert(n, tx);
                while s.by_tx.len() > s.capacity {
                    let Some((_, oldest)) = s.order.pop_first() else { break };
                    s.by_tx.remove(&oldest);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.arrived.notify_waiters();
    }

    fn take(&self, tx: &TxId) -> Option<SignedReceipt> {
        let mut s = self.lock();
        let (n, r) = s.by_tx.remove(tx)?;
        s.order.remove(&n);
        Some(r)
    }

    fn take_oldest(&self) -> Option<SignedReceipt> {
        let mut s = self.lock();
        let (_, tx) = s.order.pop_first()?;
        s.by_tx.remove(&tx).map(|(_, r)| r)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.arrived.notify_waiters();
    }

    /// Takes a receipt with `take`, waiting for arrivals until `deadline`.
    async fn wait(
        &self,
        deadline: tokio::time::Instant,
        mut take: impl FnMut(&ReceiptInbox) -> Option<SignedReceipt>,
    ) -> Result<SignedReceipt, ClientError> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(r) = take(self) {
                return Ok(r);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(ClientError::Closed);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(ClientError::Timeout);
            }
        }
    }
}

/// A connected client. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct IngressClient {
    endpoint: Endpoint,
    conn: quinn::Connection,
    out: mpsc::Sender<Bytes>,
    pending: Pending,
    unsolicited: tokio::sync::Mutex<mpsc::Receiver<ServerFrame>>,
    receipts: Arc<ReceiptInbox>,
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
        let mut endpoint = crate::udp::client_endpoint(bind).map_err(ClientError::Endpoint)?;
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
        let receipts = Arc::new(ReceiptInbox::new(config.receipt_inbox));
        let tasks = vec![
            tokio::spawn(write_loop(send, out_rx)),
            tokio::spawn(read_loop(recv, pending.clone(), unsolicited_tx, receipts.clone())),
        ];
        Ok(IngressClient {
            endpoint,
            conn,
            out: out_tx,
            pending,
            unsolicited: tokio::sync::Mutex::new(unsolicited_rx),
            receipts,
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

    /// Submits one ciphertext signed by its fee payer ([`SignedCiphertext::sign`]) and waits
    /// for the ack.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with the server's code, or a transport error.
    pub async fn submit(&self, tx: SignedCiphertext) -> Result<Ack, ClientError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame =
            ClientFrame::Submit(Submit { request_id, deadline_ms: self.config.deadline_ms, tx });
        self.request(request_id, &frame).await
    }

    /// Submits every part of an atomic bundle and waits for the ack.
    ///
    /// # Errors
    /// As [`IngressClient::submit`].
    pub async fn submit_bundle(&self, parts: Vec<SignedCiphertext>) -> Result<Ack, ClientError> {
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

    /// Asks the server what it accepts: chain, slot, eons, minimum fee, every limit.
    ///
    /// # Errors
    /// [`ClientError`] if the connection closes first.
    pub async fn server_info(&self) -> Result<crate::ingress::ServerInfo, ClientError> {
        let mut version = crate::ingress::INFO_VERSION;
        let mut nonce = self.send_info(version).await?;
        loop {
            match self.next_unsolicited().await? {
                ServerFrame::Info(info) if info.nonce == nonce => return Ok(*info),
                // A server that predates INFO version 2 refuses it: ask with version 1 (its
                // answer says nothing of `ciphertext_versions`).
                ServerFrame::Reject(r)
                    if r.request_id == 0
                        && version > 1
                        && r.reject_code()
                            == Some(veil_primitives::ErrorCode::UnsupportedVersion) =>
                {
                    version = 1;
                    nonce = self.send_info(version).await?;
                }
                // A server that predates INFO answers it as an unknown frame type.
                ServerFrame::Reject(r)
                    if r.request_id == 0
                        && r.reject_code()
                            == Some(veil_primitives::ErrorCode::UnknownFrameType) =>
                {
                    return Err(ClientError::Rejected(r))
                }
                _ => continue,
            }
        }
    }

    /// Sends an `INFO` of `version` with a fresh nonce; returns the nonce.
    async fn send_info(&self, version: u8) -> Result<u64, ClientError> {
        let nonce = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::new();
        ClientFrame::Info(crate::ingress::InfoRequest { nonce, version }).encode(&mut buf);
        self.send_raw(buf.freeze()).await?;
        Ok(nonce)
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

    /// Waits up to `timeout` for the inclusion receipt of `tx` (a transaction submitted on
    /// this connection) and takes it from the inbox. A receipt that arrived before the call
    /// is returned at once.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], or [`ClientError::Closed`] once the connection is gone and
    /// the inbox holds no receipt for `tx`.
    pub async fn wait_receipt(
        &self,
        tx: &TxId,
        timeout: Duration,
    ) -> Result<SignedReceipt, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.receipts.wait(deadline, |inbox| inbox.take(tx)).await
    }

    /// Takes the receipt of `tx` if it has arrived, without waiting.
    #[must_use]
    pub fn take_receipt(&self, tx: &TxId) -> Option<SignedReceipt> {
        self.receipts.take(tx)
    }

    /// Waits up to `timeout` for any receipt and takes the oldest one held.
    ///
    /// # Errors
    /// As [`IngressClient::wait_receipt`].
    pub async fn next_receipt(&self, timeout: Duration) -> Result<SignedReceipt, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.receipts.wait(deadline, ReceiptInbox::take_oldest).await
    }

    /// Receipts dropped because the inbox was full (oldest first).
    #[must_use]
    pub fn receipts_dropped(&self) -> u64 {
        self.receipts.dropped.load(Ordering::Relaxed)
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
            Ok(Ok(ServerFrame::Pong(_) | ServerFrame::Receipts(_) | ServerFrame::Info(_))) => {
                Err(ClientError::Closed)
            }
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
    receipts: Arc<ReceiptInbox>,
) {
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
        decoder.push(&chunk.bytes);
        while let Some(frame) = decoder.poll_frame() {
            // Frames of unknown kinds or versions are skipped (PROTOCOL.md section 4).
            let frame = match frame.and_then(|raw| ServerFrame::decode(&raw)) {
                Ok(ServerFrame::Receipts(r)) => {
                    receipts.push(r.receipts);
                    continue;
                }
                Ok(frame) => frame,
                Err(_) => continue,
            };
            let request_id = match &frame {
                ServerFrame::Ack(a) => a.request_id,
                ServerFrame::Reject(r) => r.request_id,
                ServerFrame::Pong(_) | ServerFrame::Receipts(_) | ServerFrame::Info(_) => 0,
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
    receipts.close();
}

#[cfg(test)]
mod tests {
    use veil_primitives::receipt::{CommitmentId, Receipt};
    use veil_primitives::{ChainId, Eon, RollupId, SignatureBytes, Slot};

    use super::*;

    fn receipt(tx: u8, slot: u64) -> SignedReceipt {
        SignedReceipt {
            message: Receipt {
                chain_id: ChainId(1),
                slot: Slot(slot),
                eon: Eon(1),
                tx: TxId([tx; 32]),
                rollup: RollupId(1),
                position: 0,
                commitment: CommitmentId([0; 32]),
            },
            signature: SignatureBytes([0; 64]),
        }
    }

    #[test]
    fn inbox_is_bounded_and_drops_the_oldest() {
        let inbox = ReceiptInbox::new(2);
        inbox.push(vec![receipt(1, 1), receipt(2, 1), receipt(3, 1)]);
        assert_eq!(inbox.dropped.load(Ordering::Relaxed), 1);
        assert!(inbox.take(&TxId([1; 32])).is_none());
        // A later receipt for the same transaction replaces the earlier one, and counts as
        // the newest.
        inbox.push(vec![receipt(2, 7)]);
        assert_eq!(inbox.take_oldest().unwrap().message.tx, TxId([3; 32]));
        assert_eq!(inbox.take(&TxId([2; 32])).unwrap().message.slot, Slot(7));
        assert!(inbox.take_oldest().is_none());
        let s = inbox.lock();
        assert!(s.order.is_empty() && s.by_tx.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiting_sees_arrivals_timeouts_and_close() {
        let inbox = Arc::new(ReceiptInbox::new(8));
        let far = tokio::time::Instant::now() + Duration::from_secs(600);
        // Already there: no wait.
        inbox.push(vec![receipt(1, 1)]);
        let got = inbox.wait(far, |i| i.take(&TxId([1; 32]))).await.unwrap();
        assert_eq!(got.message.tx, TxId([1; 32]));
        // Arrives while waiting (another receipt first does not satisfy the wait).
        let pusher = {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                inbox.push(vec![receipt(3, 1)]);
                tokio::task::yield_now().await;
                inbox.push(vec![receipt(2, 1)]);
            })
        };
        let got = inbox.wait(far, |i| i.take(&TxId([2; 32]))).await.unwrap();
        assert_eq!(got.message.tx, TxId([2; 32]));
        pusher.await.unwrap();
        // Never arrives: the deadline.
        let now = tokio::time::Instant::now();
        assert!(matches!(
            inbox.wait(now, |i| i.take(&TxId([9; 32]))).await,
            Err(ClientError::Timeout)
        ));
        // Held receipts outlive the connection; then "closed".
        inbox.close();
        assert!(inbox.wait(far, ReceiptInbox::take_oldest).await.is_ok());
        assert!(matches!(
            inbox.wait(far, ReceiptInbox::take_oldest).await,
            Err(ClientError::Closed)
        ));
    }
}
