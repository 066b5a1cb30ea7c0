//! Connection tasks: accept with per-address limits, read frames, hold permits, write answers
//! and pushed receipts.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use veil_mempool::validate::Submission;
use veil_primitives::ErrorCode;
use veil_wire::ingress::{ClientFrame, FrameDecoder, ServerFrame, SignedCiphertext};

use super::receipts::ConnId;
use super::{Shared, CLOSE_IDLE};
use crate::metrics::IngressStats;

/// A frame to write, holding the connection permit of its request until it is written.
pub(super) struct Outgoing {
    pub(super) frame: ServerFrame,
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

/// A submission that passed the frame-level checks, on its way to the admission task.
pub(super) struct Request {
    pub(super) request_id: u64,
    /// The connection it came on (where its transactions' receipts go).
    pub(super) conn: ConnId,
    pub(super) received: Instant,
    pub(super) parts: Vec<Submission>,
    pub(super) bundle: bool,
    pub(super) deadline: Instant,
    pub(super) reply: mpsc::Sender<Outgoing>,
    pub(super) permit: OwnedSemaphorePermit,
    /// The connection itself and its peer's address, to close it for abuse.
    pub(super) connection: quinn::Connection,
    pub(super) ip: IpAddr,
    /// The stream's request ids in flight; this one leaves it when answered.
    pub(super) in_flight: InFlightIds,
}

/// The request ids in flight on one stream (between read and answer).
pub(super) type InFlightIds = Arc<std::sync::Mutex<std::collections::HashSet<u64>>>;

impl Request {
    /// Queues the answer on the request's connection (moot if the connection is gone).
    pub(super) fn answer(self, frame: ServerFrame) {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.request_id);
        let out = Outgoing { frame, _permit: Some(self.permit) };
        let _ = self.reply.try_send(out);
    }
}

fn submission(tx: SignedCiphertext) -> Submission {
    Submission { body: tx.ciphertext, payer_signature: tx.payer_signature }
}

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    admission: mpsc::Sender<Request>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let ip = incoming.remote_address().ip();
        if shared.abuse().address_banned(&ip, Instant::now()) {
            IngressStats::inc(&shared.stats.abuse_refused);
            incoming.refuse();
            continue;
        }
        let admitted = {
            let mut conns = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
            let total: usize = conns.values().sum();
            let here = conns.entry(ip).or_default();
            if *here >= shared.config.max_connections_per_ip
                || total >= shared.config.max_connections
            {
                false
            } else {
                *here += 1;
                true
            }
        };
        if !admitted {
            IngressStats::inc(&shared.stats.connections_refused);
            incoming.refuse();
            continue;
        }
        IngressStats::inc(&shared.stats.connections_accepted);
        let shared = shared.clone();
        let admission = admission.clone();
        tokio::spawn(async move {
            let guard = ConnectionSlot { shared: shared.clone(), ip };
            if let Err(e) = serve_connection(&shared, incoming, admission).await {
                tracing::debug!(error = %e, %ip, "connection ended");
            }
            drop(guard);
        });
    }
}

/// Removes a connection's receipt routes when its task ends, however it ends.
struct RouteSlot {
    shared: Arc<Shared>,
    conn: ConnId,
}

impl Drop for RouteSlot {
    fn drop(&mut self) {
        self.shared.routes().close(self.conn);
        self.shared.abuse().connection_closed(self.conn);
    }
}

struct ConnectionSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut conns = self.shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = conns.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                conns.remove(&self.ip);
            }
        }
    }
}

async fn serve_connection(
    shared: &Arc<Shared>,
    incoming: quinn::Incoming,
    admission: mpsc::Sender<Request>,
) -> Result<(), quinn::ConnectionError> {
    let conn = incoming.await?;
    let idle = shared.config.stream_idle_timeout;
    let (send, mut recv) = match tokio::time::timeout(idle, conn.accept_bi()).await {
        Ok(stream) => stream?,
        Err(_) => {
            IngressStats::inc(&shared.stats.idle_closed);
            conn.close(VarInt::from_u32(CLOSE_IDLE), b"no stream opened");
            return Ok(());
        }
    };
    let in_flight = shared.config.max_in_flight_per_connection.max(1);
    // Every frame sent holds a permit until written, so the channel never overflows.
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(in_flight);
    // Receipts have their own bounded queue, so a push can never take an answer's place.
    let (receipt_tx, receipt_rx) = mpsc::channel(shared.config.receipt_queue.get());
    let conn_id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    shared.routes().open(conn_id, receipt_tx);
    let routes = RouteSlot { shared: shared.clone(), conn: conn_id };
    let writer = tokio::spawn(write_loop(send, out_rx, receipt_rx, shared.clone()));
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut bucket = shared.config.admission.connection_bucket();
    let mut decoder = FrameDecoder::new(shared.config.max_frame_size);
    let ids: InFlightIds = Arc::default();
    'read: loop {
        let chunk = match tokio::time::timeout(idle, recv.read_chunk(64 * 1024, true)).await {
            Err(_) => {
                IngressStats::inc(&shared.stats.idle_closed);
                conn.close(VarInt::from_u32(CLOSE_IDLE), b"no frame within the idle timeout");
                break;
            }
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) | Ok(Err(_)) => break,
        };
        decoder.push(&chunk.bytes);
        while let Some(frame) = decoder.poll_frame() {
            IngressStats::inc(&shared.stats.frames_in);
            let decoded = frame.and_then(|raw| ClientFrame::decode(&raw));
            let Ok(permit) = permits.clone().acquire_owned().await else { break 'read };
            let (request_id, parts, bundle, deadline_ms) = match decoded {
                Err(e) => {
                    IngressStats::inc(&shared.stats.bad_frames);
                    let f = ServerFrame::reject(0, e.code(), None, e.to_string());
                    if out_tx.send(Outgoing { frame: f, _permit: Some(permit) }).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
                Ok(ClientFrame::Info(r)) => {
                    let info = super::server_info(shared, r);
                    let out = Outgoing {
                        frame: ServerFrame::Info(Box::new(info)),
                        _permit: Some(permit),
                    };
                    if out_tx.send(out).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
                Ok(ClientFrame::Ping(p)) => {
                    let pong = Outgoing { frame: ServerFrame::Pong(p), _permit: Some(permit) };
                    if out_tx.send(pong).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
                Ok(ClientFrame::Submit(s)) => {
                    (s.request_id, vec![submission(s.tx)], false, s.deadline_ms)
                }
                Ok(ClientFrame::SubmitBundle(b)) => {
                    let parts = b.parts.into_iter().map(submission).collect();
                    (b.request_id, parts, true, b.deadline_ms)
                }
            };
            let received = Instant::now();
            // Precedence (PROTOCOL.md): framing, then the request id, then the rate, then the
            // frame-level sizes, then the cryptographic check, then the pool's rules.
            let fresh = request_id != 0
                && ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(request_id);
            let early = if fresh {
                match bucket.admit(received, parts.len()) {
                    Err(r) => {
                        IngressStats::inc(&shared.stats.quota_rejects);
                        shared.pool().count_rejection(r.code);
                        Err(r)
                    }
                    Ok(()) => shared.pool().precheck(&parts, bundle),
                }
            } else {
                Err(veil_mempool::error::Rejection::new(
                    ErrorCode::BadRequestId,
                    if request_id == 0 {
                        "request id 0 is reserved".to_string()
                    } else {
                        format!("request id {request_id} is already in flight on this stream")
                    },
                ))
            };
            if let Err(r) = early {
                if r.code == ErrorCode::BadRequestId {
                    shared.pool().count_rejection(r.code);
                }
                if fresh {
                    ids.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&request_id);
                }
                let f = ServerFrame::reject(request_id, r.code, r.part, r.detail);
                if out_tx.send(Outgoing { frame: f, _permit: Some(permit) }).await.is_err() {
                    break 'read;
                }
                continue;
            }
            let request = Request {
                request_id,
                conn: conn_id,
                received,
                parts,
                bundle,
                deadline: shared.config.admission.deadline(received, deadline_ms),
                reply: out_tx.clone(),
                permit,
                connection: conn.clone(),
                ip: conn.remote_address().ip(),
                in_flight: ids.clone(),
            };
            if let Err(mpsc::error::SendError(r)) = admission.send(request).await {
                let id = r.request_id;
                r.answer(ServerFrame::reject(id, ErrorCode::ShuttingDown, None, ""));
                break 'read;
            }
        }
    }
    // No receipts once the client stopped sending: the stream finishes after the answers.
    drop(routes);
    // Let answers in flight drain before closing the stream.
    drop(out_tx);
    let _ = writer.await;
    // Every answer is delivered; give the client a moment to close the connection itself
    // (a close from here could still overtake what it has not read).
    let _ = tokio::time::timeout(CLOSE_GRACE, conn.closed()).await;
    Ok(())
}

/// How long a connection whose client finished its stream is kept open, after every answer
/// is acknowledged, for the client to close it.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the writer sends next.
enum Next {
    Answer(Outgoing),
    Receipt(ServerFrame),
}

/// Writes answers and pushed receipts, coalescing whatever is queued into one write, answers
/// first. Ends (finishing the stream) once every answer is written and the answer channel is
/// closed; receipts still queued then are dropped with the connection.
async fn write_loop(
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<Outgoing>,
    mut receipts: mpsc::Receiver<ServerFrame>,
    shared: Arc<Shared>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut held = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            out = rx.recv() => match out {
                Some(out) => Next::Answer(out),
                None => break,
            },
            Some(frame) = receipts.recv() => Next::Receipt(frame),
        };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Next::Answer(out) => {
                    match &out.frame {
                        ServerFrame::Ack(_) => IngressStats::inc(&shared.stats.acks),
                        ServerFrame::Reject(_) => IngressStats::inc(&shared.stats.rejects),
                        ServerFrame::Pong(_) | ServerFrame::Receipts(_) | ServerFrame::Info(_) => {}
                    }
                    out.frame.encode(&mut buf);
                    held.push(out);
                }
                Next::Receipt(frame) => frame.encode(&mut buf),
            }
            if buf.len() < 256 * 1024 {
                next = rx
                    .try_recv()
                    .ok()
                    .map(Next::Answer)
                    .or_else(|| receipts.try_recv().ok().map(Next::Receipt));
            }
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
        held.clear();
    }
    // Graceful half-close: finish, then wait until the client has acknowledged every byte
    // (or stopped the stream), so that dropping the connection cannot discard answers still
    // in flight.
    let _ = send.finish();
    let _ = tokio::time::timeout(shared.config.stream_idle_timeout, send.stopped()).await;
}
