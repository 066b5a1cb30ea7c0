//! The sequencer's end of the keyper protocol (`veil-wire`'s `keyper` module, `KEYPER.md`):
//! a QUIC endpoint keypers dial, one authenticated link per keyper.
//!
//! Each link runs two tasks. The reader authenticates the keyper's hello (its committee
//! identity key over the connection's TLS exporter), then forwards its share batches to the
//! sequencer thread and answers its fetches from the pool (the in-memory mirror of the
//! sequencer's transaction store). The writer sends the welcome, then the admitted-ciphertext
//! feed from the keyper's resume point, the outstanding commitments and rescale requests, and
//! the fetch answers, in one ordered stream.
//!
//! The server keeps every request of the slots not finished yet ([`KeyperServer::send`],
//! [`KeyperServer::finished`]) and replays them to a keyper that connects late, reconnects or
//! lags the broadcast, so a keyper that was away still releases what it must. A newer link of
//! the same keyper replaces the older one.
//!
//! Bounds: one stream per connection, frames up to `MAX_FRAME_SIZE`, a hello within
//! [`HELLO_TIMEOUT`], at most [`MAX_BATCHES_PER_SLOT`] share batches per keyper and slot
//! forwarded (the rest are counted and dropped), a bounded writer queue per link.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use quinn::{Endpoint, VarInt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use veil_crypto::{KeyperIndex, PublicKeySet};
use veil_mempool::pool::{FeedBatch, FeedCursor};
use veil_primitives::signed::Signed;
use veil_primitives::{ErrorCode, Slot, TxId};
use veil_sequencer::slot::KeyperRequest;
use veil_wire::frame::FrameDecoder;
use veil_wire::keyper::{
    binding, chunk_feed, Bodies, Goodbye, KeyperFrame, Rescale, SequencerFrame, SignedHello,
    Welcome, ALPN, MAX_FETCH_IDS, MAX_FRAME_SIZE,
};
use veil_wire::tls;

use super::ingress::Ingress;
use super::sequencer::SequencerInput;

/// How long a keyper has to open its stream and say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A link silent this long is dead (both ends send keep-alives every 500 ms), so a keyper
/// notices a crashed sequencer within about this and is back before a slot committed after
/// the restart times out. (Keep-alive packets are too small to draw a stateless reset, so a
/// restarted sequencer does not cut the old links at once.)
pub const LINK_IDLE_TIMEOUT_MS: u32 = 2_000;
/// The congestion window a keyper link starts with, both ways (quinn's default is about
/// 14.7 KB). A keyper sends almost nothing between its share batches, so its side of the
/// link is always application-limited and its window never grows past the initial one: a
/// 1,000-ciphertext batch (about 96 KB) went out in three or four round trips, and under load
/// (when the sequencer's acks are slow) that took 50–70 ms of a 100 ms release. 256 KiB
/// carries a batch of about 2,500 shares in one flight; larger ones slow-start from there.
/// Links join known peers, so a burst this size is not a stranger's.
pub const LINK_INITIAL_WINDOW: u64 = 256 * 1024;

/// The transport settings both ends of a keyper link use: keep-alives every 500 ms, the idle
/// timeout, and [`LINK_INITIAL_WINDOW`].
pub(crate) fn link_transport() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(LINK_INITIAL_WINDOW);
    transport
        .max_idle_timeout(Some(VarInt::from_u32(LINK_IDLE_TIMEOUT_MS).into()))
        .keep_alive_interval(Some(Duration::from_millis(500)))
        .congestion_controller_factory(Arc::new(cubic));
    transport
}

/// Share batches forwarded per keyper and slot (a default batch and a few rescales).
pub const MAX_BATCHES_PER_SLOT: u8 = 8;
/// Connections allowed to be waiting for their hello at once; more are refused.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// The largest hello frame accepted (a hello is about 130 bytes).
const MAX_HELLO_FRAME: usize = 1024;

/// One authenticated link, as the registry of links holds it.
struct Link {
    id: u64,
    conn: quinn::Connection,
    out: tokio::sync::mpsc::Sender<Bytes>,
}

/// Feed items read from the pool per step.
const FEED_BATCH: usize = 2_048;
/// After a short feed run, the wait before the next one (requests are not held back, and the
/// feed before them is flushed).
const FEED_LINGER: Duration = Duration::from_millis(25);

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct KeyperServerStats {
    /// Links authenticated.
    pub authenticated: AtomicU64,
    /// Links refused at the hello.
    pub refused: AtomicU64,
    /// Share batches forwarded to the sequencer.
    pub batches: AtomicU64,
    /// Share batches dropped (wrong keyper, over the per-slot bound).
    pub batches_dropped: AtomicU64,
    /// Ciphertext bodies served to fetches.
    pub fetched: AtomicU64,
}

/// What the server needs.
pub struct KeyperServerConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Directory of the TLS identity (shared with the ingress: one certificate per node).
    pub tls_dir: std::path::PathBuf,
    /// The committee whose members may connect.
    pub pks: PublicKeySet,
    /// The sequencer key: it signs the welcome (and the commitments).
    pub sequencer_key: SigningKey,
}

struct Shared {
    pks: PublicKeySet,
    key: SigningKey,
    ingress: Arc<Ingress>,
    to_sequencer: mpsc::Sender<SequencerInput>,
    requests: broadcast::Sender<Outgoing>,
    outstanding: Mutex<BTreeMap<Slot, Vec<Outgoing>>>,
    links: Mutex<HashMap<KeyperIndex, Link>>,
    /// Connections that have not authenticated yet.
    unauthenticated: Arc<tokio::sync::Semaphore>,
    next_link: AtomicU64,
    stats: KeyperServerStats,
}

/// The running keyper endpoint of a sequencer.
pub struct KeyperServer {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for KeyperServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyperServer").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl KeyperServer {
    /// Binds the endpoint and starts accepting keypers. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// If the TLS identity cannot be loaded or the socket cannot be bound.
    pub fn start(
        config: KeyperServerConfig,
        ingress: Arc<Ingress>,
        to_sequencer: mpsc::Sender<SequencerInput>,
    ) -> anyhow::Result<KeyperServer> {
        let identity = tls::load_or_create(&config.tls_dir)?;
        let mut server = quinn::ServerConfig::with_crypto(tls::server_crypto(&identity, ALPN)?);
        let mut transport = link_transport();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0));
        server.transport_config(Arc::new(transport));
        let endpoint = tls::bind_server(&identity, server, config.listen)?;
        let local_addr = endpoint.local_addr()?;
        let (requests, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            pks: config.pks,
            key: config.sequencer_key,
            ingress,
            to_sequencer,
            requests,
            outstanding: Mutex::new(BTreeMap::new()),
            links: Mutex::new(HashMap::new()),
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED)),
            next_link: AtomicU64::new(1),
            stats: KeyperServerStats::default(),
        });
        let accept = tokio::spawn(accept_loop(shared.clone(), endpoint.clone()));
        tracing::info!(%local_addr, "keyper endpoint listening");
        Ok(KeyperServer { shared, endpoint, local_addr, accept })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A cloneable handle for the sequencer thread.
    #[must_use]
    pub fn links(&self) -> KeyperLinks {
        KeyperLinks(self.shared.clone())
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &KeyperServerStats {
        &self.shared.stats
    }

    /// The keypers with a live link.
    #[must_use]
    pub fn connected(&self) -> Vec<KeyperIndex> {
        let mut v: Vec<KeyperIndex> = lock(&self.shared.links).keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Closes every link and the endpoint.
    pub async fn shutdown(self) {
        self.accept.abort();
        self.endpoint.close(VarInt::from_u32(0), b"sequencer shutting down");
        self.endpoint.wait_idle().await;
    }
}

/// The sequencer thread's handle on the keyper links: requests out, finished slots.
#[derive(Clone)]
pub struct KeyperLinks(Arc<Shared>);

/// A request to the keypers, with its frame encoded once for every link (a commitment of a
/// 1,000-transaction slot is about 70 KB: encoding it per link had the last of 16 links
/// send it several milliseconds after the first).
#[derive(Clone, Debug)]
struct Outgoing {
    slot: Slot,
    commitment: bool,
    frame: Bytes,
}

impl Outgoing {
    fn new(request: KeyperRequest) -> Outgoing {
        let (slot, commitment, frame) = match request {
            KeyperRequest::Commitment(c) => {
                (c.message.slot, true, SequencerFrame::Commitment(Box::new(c)).to_bytes())
            }
            KeyperRequest::Rescale { slot, responders } => {
                (slot, false, SequencerFrame::Rescale(Rescale { slot, responders }).to_bytes())
            }
        };
        Outgoing { slot, commitment, frame }
    }
}

impl std::fmt::Debug for KeyperLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyperLinks").finish_non_exhaustive()
    }
}

impl KeyperLinks {
    /// Sends `request` to every keyper now, and to any keyper that connects before its slot
    /// is [`KeyperLinks::finished`].
    pub fn send(&self, request: KeyperRequest) {
        let out = Outgoing::new(request);
        lock(&self.0.outstanding).entry(out.slot).or_default().push(out.clone());
        // No receiver (no keyper connected) is not an error: the request waits above.
        let _ = self.0.requests.send(out);
    }

    /// The endpoint's counters.
    #[must_use]
    pub fn stats(&self) -> &KeyperServerStats {
        &self.0.stats
    }

    /// Authenticated links now.
    #[must_use]
    pub fn connected_count(&self) -> u64 {
        lock(&self.0.links).len() as u64
    }

    /// `slot` is decrypted or abandoned: stop replaying its requests.
    pub fn finished(&self, slot: Slot) {
        lock(&self.0.outstanding).remove(&slot);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            // Bound the connections that have not said who they are yet.
            let Ok(permit) = shared.unauthenticated.clone().try_acquire_owned() else {
                incoming.refuse();
                return;
            };
            let Ok(conn) = incoming.await else { return };
            serve(shared, conn, permit).await;
        });
    }
}

/// Why a link ended, for the log.
#[derive(Debug)]
enum LinkEnd {
    Closed,
    Refused(ErrorCode, String),
}

async fn serve(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let remote = conn.remote_address();
    let accepted = tokio::time::timeout(HELLO_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await.ok()?;
        // Small until authenticated: a stranger cannot make the decoder reserve 8 MiB.
        let mut decoder = FrameDecoder::new(MAX_HELLO_FRAME);
        let first = read_frame(&mut recv, &mut decoder).await?;
        Some((send, recv, decoder, first))
    })
    .await;
    let Ok(Some((mut send, recv, decoder, first))) = accepted else {
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        conn.close(
            VarInt::from_u32(u32::from(ErrorCode::KeyperUnauthenticated.as_u16())),
            b"no hello",
        );
        return;
    };
    let hello = match authenticate(&shared, &conn, first) {
        Ok(h) => h,
        Err(detail) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, %detail, "keyper link refused");
            let bye =
                SequencerFrame::Goodbye(Goodbye::new(ErrorCode::KeyperUnauthenticated, detail));
            let _ = send.write_all(&bye.to_bytes()).await;
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(100)).await;
            conn.close(
                VarInt::from_u32(u32::from(ErrorCode::KeyperUnauthenticated.as_u16())),
                b"unauthenticated",
            );
            return;
        }
    };
    drop(permit);
    let mut decoder = decoder;
    decoder.set_max_frame_size(MAX_FRAME_SIZE);
    let keyper = hello.message.keyper;
    let link = shared.next_link.fetch_add(1, Ordering::Relaxed);
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let old = lock(&shared.links)
        .insert(keyper, Link { id: link, conn: conn.clone(), out: out_tx.clone() });
    if let Some(old) = old {
        say_goodbye(old.conn, &old.out, ErrorCode::KeyperReplaced, "replaced by a newer link");
    }
    shared.stats.authenticated.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%remote, keyper = keyper.get(), resume = ?hello.message.resume, "keyper linked");

    // A resume point past the feed's end comes from another data directory: start over.
    let durable = shared.ingress.with_pool(|p| p.durable_end().0);
    let feed_start = match hello.message.resume {
        Some(r) if r <= durable => r,
        _ => 0,
    };
    let welcome = Signed::sign(
        Welcome {
            chain_id: shared.pks.chain_id(),
            keyper,
            binding: hello.message.binding,
            feed_start,
            slot: shared.ingress.with_pool(veil_mempool::pool::Pool::current_slot),
        },
        &shared.key,
    );
    let writer = tokio::spawn(write_loop(
        shared.clone(),
        keyper,
        send,
        SequencerFrame::Welcome(Box::new(welcome)).to_bytes(),
        feed_start,
        out_rx,
    ));
    let end = read_loop(&shared, keyper, recv, decoder, &out_tx).await;
    {
        let mut links = lock(&shared.links);
        if links.get(&keyper).is_some_and(|l| l.id == link) {
            links.remove(&keyper);
        }
    }
    match end {
        LinkEnd::Closed => {
            writer.abort();
            tracing::info!(keyper = keyper.get(), "keyper link closed");
        }
        LinkEnd::Refused(code, detail) => {
            tracing::warn!(keyper = keyper.get(), %code, %detail, "keyper link dropped");
            say_goodbye(conn, &out_tx, code, &detail);
            // The writer sends the goodbye (replies go first), then the connection closes.
            tokio::time::sleep(GOODBYE_GRACE).await;
            writer.abort();
        }
    }
}

/// How long a goodbye has to reach the keyper before the connection is closed.
const GOODBYE_GRACE: Duration = Duration::from_millis(200);

/// Queues a GOODBYE on a link's writer and closes the connection a moment later.
fn say_goodbye(
    conn: quinn::Connection,
    out: &tokio::sync::mpsc::Sender<Bytes>,
    code: ErrorCode,
    detail: &str,
) {
    let _ = out.try_send(SequencerFrame::Goodbye(Goodbye::new(code, detail)).to_bytes());
    let detail = detail.as_bytes().to_vec();
    tokio::spawn(async move {
        tokio::time::sleep(GOODBYE_GRACE).await;
        conn.close(VarInt::from_u32(u32::from(code.as_u16())), &detail);
    });
}

fn authenticate(
    shared: &Shared,
    conn: &quinn::Connection,
    first: veil_wire::frame::RawFrame,
) -> Result<SignedHello, String> {
    let KeyperFrame::Hello(hello) = KeyperFrame::decode(&first).map_err(|e| e.to_string())? else {
        return Err("the first frame must be HELLO".into());
    };
    let m = &hello.message;
    if m.chain_id != shared.pks.chain_id() || m.eon != shared.pks.eon() {
        return Err(format!("hello for chain {} eon {}, not this committee", m.chain_id, m.eon));
    }
    let member = shared.pks.keyper(m.keyper).map_err(|e| e.to_string())?;
    let expected = binding(conn, m.chain_id).map_err(|e| e.to_string())?;
    if m.binding != expected {
        return Err("hello not bound to this connection".into());
    }
    hello.verify_with(&member.identity).map_err(|e| e.to_string())?;
    Ok(*hello)
}

async fn read_frame(
    recv: &mut quinn::RecvStream,
    decoder: &mut FrameDecoder,
) -> Option<veil_wire::frame::RawFrame> {
    loop {
        match decoder.poll_frame() {
            Some(Ok(frame)) => return Some(frame),
            Some(Err(_)) => return None,
            None => {}
        }
        let chunk = recv.read_chunk(64 * 1024, true).await.ok()??;
        decoder.push(&chunk.bytes);
    }
}

async fn read_loop(
    shared: &Shared,
    keyper: KeyperIndex,
    mut recv: quinn::RecvStream,
    mut decoder: FrameDecoder,
    out: &tokio::sync::mpsc::Sender<Bytes>,
) -> LinkEnd {
    let mut per_slot: BTreeMap<Slot, u8> = BTreeMap::new();
    loop {
        let raw = match decoder.poll_frame() {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => return LinkEnd::Refused(e.code(), e.to_string()),
            None => match recv.read_chunk(64 * 1024, true).await {
                Ok(Some(chunk)) => {
                    decoder.push(&chunk.bytes);
                    continue;
                }
                Ok(None) | Err(_) => return LinkEnd::Closed,
            },
        };
        let frame = match KeyperFrame::decode(&raw) {
            Ok(f) => f,
            Err(e) => return LinkEnd::Refused(e.code(), e.to_string()),
        };
        match frame {
            KeyperFrame::Hello(_) => {
                return LinkEnd::Refused(ErrorCode::UnexpectedFrame, "a second HELLO".into())
            }
            KeyperFrame::Shares(batch) => {
                if batch.message.keyper != keyper {
                    shared.stats.batches_dropped.fetch_add(1, Ordering::Relaxed);
                    return LinkEnd::Refused(
                        ErrorCode::WrongKeyper,
                        format!(
                            "batch of keyper {} on keyper {}'s link",
                            batch.message.keyper.get(),
                            keyper.get()
                        ),
                    );
                }
                // Only slots waiting for shares, and a few batches each: an authenticated
                // keyper cannot flood the sequencer's queue with batches for other slots.
                let slot = batch.message.slot;
                let outstanding = lock(&shared.outstanding).contains_key(&slot);
                let n = per_slot.entry(slot).or_insert(0);
                if !outstanding || *n >= MAX_BATCHES_PER_SLOT {
                    shared.stats.batches_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                *n += 1;
                per_slot.retain(|s, _| s.0 >= slot.0.saturating_sub(256));
                tracing::debug!(
                    target: super::keyper::TIMELINE,
                    slot = slot.0,
                    keyper = keyper.get(),
                    "batch received"
                );
                shared.stats.batches.fetch_add(1, Ordering::Relaxed);
                // Checked here, on the blocking pool and in parallel with the other links'
                // batches, so that the slot thread only combines: the last batch to arrive is
                // combined at once instead of after the checks of those queued before it.
                let pks = shared.pks.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let verified = pks.verify_share_batch(&batch);
                    tracing::debug!(
                        target: super::keyper::TIMELINE,
                        slot = slot.0,
                        keyper = keyper.get(),
                        took_us = started.elapsed().as_micros() as u64,
                        "batch verified"
                    );
                    match verified {
                        Ok(verified) => SequencerInput::VerifiedBatch(Box::new(verified)),
                        // The slot machine checks it again, counts it and reports it.
                        Err(_) => SequencerInput::Batch(batch),
                    }
                })
                .await;
                let Ok(input) = checked else { return LinkEnd::Closed };
                if shared.to_sequencer.send(input).is_err() {
                    return LinkEnd::Closed;
                }
            }
            KeyperFrame::Fetch(fetch) => {
                let ids: Vec<TxId> = fetch.ids.into_iter().take(MAX_FETCH_IDS).collect();
                let (bodies, mut missing) = shared.ingress.with_pool(|p| {
                    let mut bodies = Vec::new();
                    let mut missing = Vec::new();
                    for id in ids {
                        match p.get(&id) {
                            Some(v) => bodies.push(v.body_bytes()),
                            None => missing.push(id),
                        }
                    }
                    (bodies, missing)
                });
                shared.stats.fetched.fetch_add(bodies.len() as u64, Ordering::Relaxed);
                // Several frames when the bodies exceed a feed chunk; `missing` on the last.
                let runs = chunk_feed(bodies, 0, 0, 0);
                let last = runs.len() - 1;
                for (i, run) in runs.into_iter().enumerate() {
                    let missing = if i == last { std::mem::take(&mut missing) } else { Vec::new() };
                    let answer = SequencerFrame::Bodies(Bodies {
                        request_id: fetch.request_id,
                        bodies: run.bodies,
                        missing,
                    });
                    if out.send(answer.to_bytes()).await.is_err() {
                        return LinkEnd::Closed;
                    }
                }
            }
            KeyperFrame::Ping(p) => {
                if out.send(SequencerFrame::Pong(p).to_bytes()).await.is_err() {
                    return LinkEnd::Closed;
                }
            }
        }
    }
}

async fn write_loop(
    shared: Arc<Shared>,
    keyper: KeyperIndex,
    mut send: quinn::SendStream,
    welcome: Bytes,
    feed_start: u64,
    mut replies: tokio::sync::mpsc::Receiver<Bytes>,
) {
    // Subscribe before replaying, so that nothing sent in between is missed (a request seen
    // twice is harmless: the keyper re-sends the same batch).
    let mut requests = shared.requests.subscribe();
    if send.write_all(&welcome).await.is_err() {
        return;
    }
    let mut feed = shared.ingress.subscribe(FeedCursor(feed_start));
    let mut feed_at = tokio::time::Instant::now();
    let mut replay = true;
    loop {
        if replay {
            replay = false;
            let pending: Vec<Bytes> =
                lock(&shared.outstanding).values().flatten().map(|o| o.frame.clone()).collect();
            for frame in pending {
                if send.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }
        let bytes: Vec<Bytes> = tokio::select! {
            biased;
            reply = replies.recv() => match reply {
                Some(b) => vec![b],
                None => return,
            },
            request = requests.recv() => match request {
                Ok(r) => {
                    // The feed held back by the linger goes first: the ciphertexts a
                    // commitment names reach the keyper before it.
                    let mut frames = Vec::new();
                    let mut from = feed.cursor().0;
                    while let Some(batch) = feed.try_next(FEED_BATCH) {
                        frames.extend(feed_frames(batch, from));
                        from = feed.cursor().0;
                    }
                    if r.commitment {
                        tracing::debug!(
                            target: super::keyper::TIMELINE,
                            slot = r.slot.0,
                            keyper = keyper.get(),
                            feed_frames = frames.len(),
                            "commitment to link"
                        );
                    }
                    frames.push(r.frame);
                    frames
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    replay = true;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            batch = async {
                tokio::time::sleep_until(feed_at).await;
                let from = feed.cursor().0;
                feed.next(FEED_BATCH).await.map(|b| (from, b))
            } => {
                let Some((from, batch)) = batch else { return };
                // A short run means the feed is caught up: wait a little before the next, so
                // that keypers validate runs, not single ciphertexts (fewer packets and
                // wakeups on every link, better amortised batch checks).
                feed_at = tokio::time::Instant::now()
                    + if batch.items.len() < FEED_BATCH { FEED_LINGER } else { Duration::ZERO };
                feed_frames(batch, from)
            }
        };
        for b in bytes {
            if send.write_all(&b).await.is_err() {
                return;
            }
        }
    }
}

/// A feed batch read from `from` as `CIPHERTEXTS` frames of at most a feed chunk each.
fn feed_frames(batch: FeedBatch, from: u64) -> Vec<Bytes> {
    let bodies: Vec<Bytes> = batch.items.into_iter().map(|i| i.body).collect();
    chunk_feed(bodies, from, batch.next.0, batch.skipped)
        .into_iter()
        .map(|run| SequencerFrame::Ciphertexts(run).to_bytes())
        .collect()
}
