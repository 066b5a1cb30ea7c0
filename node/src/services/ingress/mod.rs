//! The QUIC ingress service: a thin async shell around the mempool's [`Pool`] and a
//! [`PendingTxStore`].
//!
//! ```text
//!  connection task (one per client)        admission task (one)            storage thread
//!  read chunk -> FrameDecoder ->            recv_many(batch) ->             group commit
//!  permit (in-flight bound) -> rate quota   validate batch (blocking pool)  (one fsync per
//!  -> admission channel (bounded) ------->  lock pool: admit, pick rows --> group)
//!                                           store.write(rows) = receipt        |
//!  writer task: coalesce frames <---------- ack task: await receipt <---------+
//!  into one write                           mark durable, send acks
//! ```
//!
//! Every admission rule lives in veil-mempool ([`veil_mempool::admission`]): this shell reads
//! the clock and the OS RNG and passes them in, holds the permits and channels, and writes.
//!
//! Backpressure: each connection holds at most `max_in_flight_per_connection` requests
//! (a semaphore); when they are used up the connection stops reading its stream, and QUIC
//! flow control stops the client. The admission channel is bounded too. No queue in the shell
//! grows with the offered load.
//!
//! An ack leaves only after the storage thread committed the group holding the request's
//! rows (or, for a duplicate, a group committed after the original's).
//!
//! # Committed transactions
//!
//! [`Ingress::remove_committed`] takes a published slot's transactions out of the pool and
//! remembers their ids as spent until their expiry slot ([`Pool::remove_committed`]); the
//! store deletes their rows and keeps their ids in the same write. A replay of a committed
//! transaction is acked as a duplicate and never admitted again, also after a restart: the
//! pool gets the stored spent ids back before its pending rows.
//!
//! # Inclusion receipts
//!
//! The sequencer hands the signed receipts of each commitment to [`Ingress::deliver_receipts`],
//! which stores them (same database, same group commit: [`ReceiptStore`]) and pushes each on
//! the stream of the connection that submitted its transaction, as a `RECEIPT` frame
//! (`veil_wire::ingress::kind::RECEIPT`). Which connection submitted what is remembered from
//! the acks, for pending transactions on open connections only (`receipts::ReceiptRoutes`,
//! bounded by the pool). Each connection has its own bounded receipt queue beside its answer
//! queue; its writer interleaves the two, answers first. A push that finds the queue full (a
//! client that does not read) is dropped and counted, never waited for: the caller, the
//! sequencer's receipt worker, is never blocked by a slow client, and a dropped push loses
//! nothing durable: [`Ingress::receipt`] still finds the receipt. Receipts are kept for
//! [`IngressConfig::receipt_retention_slots`] slots.

mod admission;
mod connection;
pub mod departures;
mod feed;
mod receipts;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use veil_mempool::abuse::{Abuse, AbuseConfig};
use veil_mempool::admission::AdmissionConfig;
use veil_mempool::metrics::PoolStats;
use veil_mempool::pool::{FeeAccount, FeedBatch, FeedCursor, Pool, PoolConfig, Spent};
use veil_mempool::validate::Validator;
use veil_primitives::{Amount, Eon, PublicKeyBytes, RollupId, SignedReceipt, Slot, TxId};
use veil_storage::sqlite::SqliteTxStore;
use veil_storage::{Durable, PendingTxStore, ReceiptStore, StoreError, StoreStats, StoredTx};
use veil_wire::error::TlsError;
use veil_wire::ingress::{
    Receipts, ServerFrame, ALPN, DEFAULT_MAX_FRAME_SIZE, MAX_RECEIPTS_PER_FRAME,
};
use veil_wire::tls::{self, CertFingerprint};

use self::connection::Request;
pub use self::departures::Departure;
pub use self::feed::FeedSubscriber;
use self::receipts::ReceiptRoutes;
use crate::metrics::{IngressStats, IngressStatsSnapshot};

/// Default QUIC idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection may go without opening its stream or sending a frame.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default connections per remote address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Default total connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default requests in flight per connection.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default largest admission batch.
pub const DEFAULT_MAX_BATCH: usize = 2048;
/// Default receipt frames queued per connection (each up to
/// [`veil_wire::ingress::MAX_RECEIPTS_PER_FRAME`] receipts) before pushes are dropped.
pub const DEFAULT_RECEIPT_QUEUE: usize = 64;
/// Default number of committed transactions whose routes wait for their receipt after
/// leaving the pool (see `receipts::ReceiptRoutes`).
pub const DEFAULT_RETIRED_ROUTES: usize = 65_536;
/// Default number of slots a receipt is kept for lookup (about 2.8 hours of 1-second slots;
/// at 1,000 transactions per slot, about 4 GB of receipts).
pub const DEFAULT_RECEIPT_RETENTION_SLOTS: u64 = 10_000;

/// QUIC application error code: the server is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application error code: no stream or no frame within the idle timeout.
pub const CLOSE_IDLE: u32 = 1;
/// QUIC application error code: the peer broke the protocol beyond recovery.
pub const CLOSE_PROTOCOL: u32 = 2;
/// QUIC application error code: the peer sent more ciphertexts with failing proofs than
/// allowed ([`veil_mempool::abuse`]).
pub const CLOSE_ABUSE: u32 = 3;

/// Starting or running the ingress failed.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Storage failed at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding the UDP socket failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Configuration of the ingress. See the `DEFAULT_*` constants.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Directory for the database and the certificate.
    pub data_dir: PathBuf,
    /// Pool limits and policy.
    pub pool: PoolConfig,
    /// Rate, deadline and other per-request admission rules.
    pub admission: AdmissionConfig,
    /// The current slot at start (expired rows are pruned against it).
    pub current_slot: Slot,
    /// Eons accepted at start.
    pub eons: Vec<Eon>,
    /// Largest frame accepted.
    pub max_frame_size: usize,
    /// Connections per remote IP address.
    pub max_connections_per_ip: usize,
    /// Total connections.
    pub max_connections: usize,
    /// Requests in flight per connection before the server stops reading it.
    pub max_in_flight_per_connection: usize,
    /// QUIC idle timeout.
    pub idle_timeout: Duration,
    /// Time a connection may go without opening its stream, or a stream without a frame.
    pub stream_idle_timeout: Duration,
    /// Most requests admitted in one batch.
    pub max_batch: usize,
    /// Receipt frames queued per connection; a push beyond it is dropped (and counted).
    pub receipt_queue: NonZeroUsize,
    /// Committed transactions whose routes wait for their receipt after leaving the pool.
    pub retired_routes: usize,
    /// Slots a receipt is kept: receipts of slots older than the current slot minus this are
    /// deleted as the slot advances.
    pub receipt_retention_slots: NonZeroU64,
    /// What senders of failing proofs are made to pay ([`veil_mempool::abuse`]).
    pub abuse: AbuseConfig,
    /// Whether admission waits for [`Ingress::open_admission`]: connections are accepted and
    /// requests queue (answered once it opens), but none is admitted. A sequencer holds it
    /// until its restored ledger's fee balances are in the pool, so that no funded payer is
    /// refused `INSUFFICIENT_BALANCE` in the first moments after a start.
    pub hold_admission: bool,
}

impl IngressConfig {
    /// Defaults for a listener on `listen` storing in `data_dir`.
    #[must_use]
    pub fn new(listen: SocketAddr, data_dir: PathBuf, pool: PoolConfig) -> IngressConfig {
        IngressConfig {
            listen,
            data_dir,
            pool,
            admission: AdmissionConfig::default(),
            current_slot: Slot(0),
            eons: vec![Eon(0)],
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            max_batch: DEFAULT_MAX_BATCH,
            receipt_queue: NonZeroUsize::new(DEFAULT_RECEIPT_QUEUE).expect("non-zero default"),
            retired_routes: DEFAULT_RETIRED_ROUTES,
            receipt_retention_slots: NonZeroU64::new(DEFAULT_RECEIPT_RETENTION_SLOTS)
                .expect("non-zero default"),
            abuse: AbuseConfig::default(),
            hold_admission: false,
        }
    }
}

struct Shared {
    config: IngressConfig,
    pool: Mutex<Pool>,
    store: Arc<dyn PendingTxStore>,
    receipt_store: Arc<dyn ReceiptStore>,
    validator: Arc<dyn Validator>,
    stats: IngressStats,
    feed_tx: watch::Sender<FeedCursor>,
    connections: Mutex<HashMap<IpAddr, usize>>,
    /// Locked after the pool, never before it.
    routes: Mutex<ReceiptRoutes>,
    next_connection: AtomicU64,
    /// Receipts of slots before this one have been queued for deletion.
    pruned_before: AtomicU64,
    /// Why recent transactions left the pool uncommitted. Locked after the pool.
    departures: Mutex<departures::Departures>,
    /// Who sent failing proofs. Locked on its own, never with another lock held.
    abuse: Mutex<Abuse>,
    /// Whether admission is open ([`IngressConfig::hold_admission`]).
    admission_open: watch::Sender<bool>,
}

/// The answer to a client's `INFO` request, from the configuration and the pool's state, in
/// the request's version.
fn server_info(
    shared: &Shared,
    request: veil_wire::ingress::InfoRequest,
) -> veil_wire::ingress::ServerInfo {
    let pool = shared.pool();
    let c = pool.config();
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    veil_wire::ingress::ServerInfo {
        version: request.version,
        nonce: request.nonce,
        chain_id: c.chain_id,
        eons: pool.eons().to_vec(),
        current_slot: pool.current_slot(),
        min_fee: c.min_fee,
        max_expiry_horizon: c.max_expiry_horizon,
        max_frame_size: clamp(shared.config.max_frame_size),
        max_ciphertext_size: clamp(c.max_ciphertext_size.get()),
        max_bundle_parts: u16::try_from(c.max_bundle_parts.get()).unwrap_or(u16::MAX),
        max_in_flight: clamp(shared.config.max_in_flight_per_connection),
        idle_timeout_ms: u32::try_from(shared.config.stream_idle_timeout.as_millis())
            .unwrap_or(u32::MAX),
        rollups: c
            .rollups
            .as_ref()
            .map(|r| r.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default(),
        ciphertext_versions: vec![veil_crypto::CIPHERTEXT_VERSION],
    }
}

impl Shared {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, ReceiptRoutes> {
        self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn departures(&self) -> std::sync::MutexGuard<'_, departures::Departures> {
        self.departures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn abuse(&self) -> std::sync::MutexGuard<'_, Abuse> {
        self.abuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running ingress. Dropping it does not stop it; call [`Ingress::shutdown`].
pub struct Ingress {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    fingerprint: CertFingerprint,
    admission: Option<mpsc::Sender<Request>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress")
            .field("local_addr", &self.local_addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Ingress {
    /// Opens storage, rebuilds the pool from it (the spent ids of committed transactions,
    /// then the pending rows, pruning expired ones and those of spent transactions), creates
    /// or loads the certificate, binds the endpoint and starts serving. Must run inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`IngressError`] if storage, TLS or the socket fail.
    pub async fn start(
        config: IngressConfig,
        validator: Arc<dyn Validator>,
    ) -> Result<Ingress, IngressError> {
        let data_dir = config.data_dir.clone();
        let mut pool = Pool::new(config.pool.clone(), config.current_slot, &config.eons);
        let current_slot = config.current_slot;
        let (store, rows, pool) = tokio::task::spawn_blocking(move || {
            let (store, rows) = SqliteTxStore::open(&data_dir)?;
            store.load_spent(current_slot, |s| {
                pool.remember_spent(s);
            })?;
            Ok::<_, StoreError>((store, rows, pool))
        })
        .await
        .map_err(|e| {
            IngressError::Store(StoreError::Io {
                path: config.data_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })??;
        let mut pool = pool;
        pool.advance_seq(store.next_seq_floor());
        let store = Arc::new(store);
        let restored = rows.len();
        let pruned = pool.restore(
            rows.into_iter().map(|StoredTx { seq, candidate }| (seq, candidate)).collect(),
        );
        store.delete(pruned.iter().map(|(s, _)| *s).collect());
        store.prune_spent(current_slot);
        let stats = pool.stats();
        tracing::info!(
            restored,
            pruned = pruned.len(),
            spent = stats.spent,
            spent_forgotten = stats.spent_forgotten,
            "mempool rebuilt from storage"
        );

        let identity = tls::load_or_create(&config.data_dir)?;
        let fingerprint = identity.fingerprint();
        let mut server = quinn::ServerConfig::with_crypto(tls::server_crypto(&identity, ALPN)?);
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(config.idle_timeout)
                    .unwrap_or_else(|_| VarInt::from_u32(30_000).into()),
            ));
        server.transport_config(Arc::new(transport));
        let endpoint = tls::bind_server(&identity, server, config.listen)
            .map_err(|source| IngressError::Bind { addr: config.listen, source })?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|source| IngressError::Bind { addr: config.listen, source })?;

        let (feed_tx, _) = watch::channel(pool.durable_end());
        let abuse = config.abuse;
        let (admission_tx, admission_rx) = mpsc::channel(config.max_batch * 4);
        let routes = ReceiptRoutes::new(config.retired_routes);
        let (admission_open, _) = watch::channel(!config.hold_admission);
        let shared = Arc::new(Shared {
            config,
            pool: Mutex::new(pool),
            store: store.clone(),
            receipt_store: store,
            validator,
            stats: IngressStats::default(),
            feed_tx,
            connections: Mutex::new(HashMap::new()),
            routes: Mutex::new(routes),
            next_connection: AtomicU64::new(0),
            pruned_before: AtomicU64::new(0),
            departures: Mutex::new(departures::Departures::default()),
            abuse: Mutex::new(Abuse::new(abuse)),
            admission_open,
        });
        let tasks = vec![
            tokio::spawn(admission::admission_loop(shared.clone(), admission_rx)),
            tokio::spawn(connection::accept_loop(
                shared.clone(),
                endpoint.clone(),
                admission_tx.clone(),
            )),
        ];
        tracing::info!(%local_addr, %fingerprint, "ingress listening");
        Ok(Ingress {
            shared,
            endpoint,
            local_addr,
            fingerprint,
            admission: Some(admission_tx),
            tasks,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The fingerprint clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// The pool's counters.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        self.shared.pool().stats()
    }

    /// The shell's counters.
    #[must_use]
    pub fn stats(&self) -> IngressStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The store's counters.
    #[must_use]
    pub fn store_stats(&self) -> StoreStats {
        self.shared.store.stats()
    }

    /// Runs `f` with the pool locked (queries: lookups, best-by-fee, sizes). Keep it short:
    /// admission waits on the same lock.
    pub fn with_pool<R>(&self, f: impl FnOnce(&Pool) -> R) -> R {
        f(&self.shared.pool())
    }

    /// Replaces the pool's table of registered rollups and gas limits
    /// ([`Pool::set_rollups`]): the sequencer keeps it in step with the rollup registry.
    pub fn set_rollups(&self, rollups: Option<std::collections::BTreeMap<RollupId, u64>>) {
        self.shared.pool().set_rollups(rollups);
    }

    /// Opens admission held by [`IngressConfig::hold_admission`]; queued requests are admitted
    /// from here on. Idempotent.
    pub fn open_admission(&self) {
        self.shared.admission_open.send_replace(true);
    }

    /// Sets fee payers' ledger balances in the pool's fee accounts ([`Pool::set_fee_balance`]):
    /// at start from the restored ledger, and after each accepted fee deposit.
    pub fn set_fee_balances(&self, balances: impl IntoIterator<Item = (PublicKeyBytes, Amount)>) {
        let mut pool = self.shared.pool();
        for (payer, balance) in balances {
            pool.set_fee_balance(payer, balance);
        }
    }

    /// Settled transaction fees: `(payer, fee, the payer's ledger balance after the charge)`
    /// ([`Pool::settle_fee`]).
    pub fn settle_fees(&self, settled: impl IntoIterator<Item = (PublicKeyBytes, Amount, Amount)>) {
        let mut pool = self.shared.pool();
        for (payer, fee, balance) in settled {
            pool.settle_fee(&payer, fee, balance);
        }
    }

    /// A fee payer's account as the pool sees it, and how many transactions it has pending.
    #[must_use]
    pub fn fee_account(&self, payer: &PublicKeyBytes) -> (Option<FeeAccount>, usize) {
        let pool = self.shared.pool();
        (pool.fee_account(payer), pool.pending_of(payer))
    }

    /// Advances the slot: expired transactions leave the pool and storage, so do spent ids
    /// whose expiry slot passed, and receipts older than the retention horizon are deleted.
    pub fn on_slot(&self, slot: Slot) -> usize {
        let removed = {
            let mut pool = self.shared.pool();
            if slot > pool.current_slot() {
                self.shared.store.prune_spent(slot);
            }
            let removed = pool.on_slot(slot);
            self.shared.routes().left_pool(removed.iter().map(|(_, id)| id));
            self.shared
                .departures()
                .record(removed.iter().map(|(_, id)| id), Departure::Expired { slot });
            removed
        };
        let n = removed.len();
        self.shared.store.delete(removed.into_iter().map(|(s, _)| s).collect());
        let horizon = slot.0.saturating_sub(self.shared.config.receipt_retention_slots.get());
        if self.shared.pruned_before.fetch_max(horizon, Ordering::Relaxed) < horizon {
            self.shared.receipt_store.prune_receipts(Slot(horizon));
        }
        n
    }

    /// Removes committed transactions from the pool and storage, and remembers them as spent
    /// until their expiry slot (in the pool, and in storage in the same write that deletes
    /// their rows): a replay is acked as a duplicate and never admitted again. Unknown ids
    /// are ignored, so a repeated call is harmless. Returns how many left the pool.
    pub fn remove_committed(&self, ids: &[TxId]) -> usize {
        self.remove_spent(ids, &HashMap::new(), true)
    }

    /// [`Ingress::remove_committed`] for transactions whose fees are settled already
    /// ([`Pool::remove_settled`]): a restarted sequencer found them pending.
    pub fn remove_settled(&self, ids: &[TxId]) -> usize {
        self.remove_spent(ids, &HashMap::new(), false)
    }

    /// [`Ingress::remove_committed`] for a slot just published, with the expiry slots of its
    /// committed transactions (`expiries`, from the slot machine): one that is not pending
    /// any more (evicted while its slot was in flight) is remembered as spent too, so that it
    /// cannot be admitted again either.
    pub fn remove_published(&self, ids: &[TxId], expiries: &HashMap<TxId, Slot>) -> usize {
        self.remove_spent(ids, expiries, true)
    }

    fn remove_spent(&self, ids: &[TxId], expiries: &HashMap<TxId, Slot>, hold: bool) -> usize {
        let mut pool = self.shared.pool();
        let removed = if hold { pool.remove_committed(ids) } else { pool.remove_settled(ids) };
        self.shared.routes().committed(removed.iter().map(|(_, s)| &s.id));
        let n = removed.len();
        let (delete, mut spent): (Vec<_>, Vec<Spent>) = removed.into_iter().unzip();
        let left: std::collections::HashSet<TxId> = spent.iter().map(|s| s.id).collect();
        for id in ids.iter().filter(|id| !left.contains(id)) {
            if let Some(&expiry) = expiries.get(id) {
                if pool.remember_spent(Spent { id: *id, expiry }) {
                    spent.push(Spent { id: *id, expiry });
                }
            }
        }
        // Sent under the pool lock, as admission sends its rows: a replay answered as a
        // duplicate from here on is acked after a group that holds the spent ids.
        self.shared.store.remove_committed(delete, spent);
        n
    }

    /// Stores signed inclusion receipts and pushes each to the connection that submitted its
    /// transaction, if that connection is still open. Never blocks on a client: a push that
    /// finds the connection's receipt queue full is dropped and counted
    /// ([`IngressStatsSnapshot::receipts_push_dropped`]); the stored receipt stays. Pushes do
    /// not wait for the durable write (a receipt is valid by its signature, stored or not);
    /// the returned handle resolves once the receipts are durable (an empty delivery is a
    /// barrier: it resolves once everything delivered before it is durable). Does not check
    /// signatures: the caller signed them. Callable from any thread.
    pub fn deliver_receipts(&self, receipts: Vec<SignedReceipt>) -> Durable {
        if receipts.is_empty() {
            return self.shared.receipt_store.write_receipts(Vec::new());
        }
        let durable = self.shared.receipt_store.write_receipts(receipts.clone());
        let (deliveries, unrouted) = self.shared.routes().route(receipts);
        let stats = &self.shared.stats;
        stats.receipts_unrouted.fetch_add(unrouted.len() as u64, Ordering::Relaxed);
        for d in deliveries {
            for chunk in d.receipts.chunks(MAX_RECEIPTS_PER_FRAME) {
                let frame = ServerFrame::Receipts(Receipts { receipts: chunk.to_vec() });
                let counter = match d.queue.try_send(frame) {
                    Ok(()) => &stats.receipts_pushed,
                    Err(_) => &stats.receipts_push_dropped,
                };
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        durable
    }

    /// The stored receipt of `tx` (the latest, if it was committed more than once), if any.
    /// Blocks for one indexed SQLite read.
    ///
    /// # Errors
    /// [`StoreError`] if the read fails or the stored receipt does not decode.
    pub fn receipt(&self, tx: &TxId) -> Result<Option<SignedReceipt>, StoreError> {
        self.shared.receipt_store.receipt(tx)
    }

    /// Why `tx` left the pool uncommitted, if it did recently (see [`departures`]).
    #[must_use]
    pub fn departure(&self, tx: &TxId) -> Option<Departure> {
        self.shared.departures().get(tx)
    }

    /// Reads the feed (see [`Pool::feed`]).
    #[must_use]
    pub fn feed(&self, cursor: FeedCursor, max: usize) -> FeedBatch {
        self.shared.pool().feed(cursor, max)
    }

    /// A watch of the durable end of the feed; changes when new transactions become durable.
    #[must_use]
    pub fn feed_updates(&self) -> watch::Receiver<FeedCursor> {
        self.shared.feed_tx.subscribe()
    }

    /// A feed subscriber (a builder or a keyper) starting at `cursor`: `FeedCursor(0)` for
    /// everything still pending, or the cursor a subscriber saved (sequence numbers survive
    /// restarts). It holds no buffer in the pool.
    #[must_use]
    pub fn subscribe(&self, cursor: FeedCursor) -> FeedSubscriber {
        FeedSubscriber::new(self.shared.clone(), cursor)
    }

    /// Stops accepting, closes connections, lets queued writes finish.
    pub async fn shutdown(mut self) {
        self.endpoint.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutting down");
        self.admission.take();
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        self.endpoint.wait_idle().await;
    }
}
