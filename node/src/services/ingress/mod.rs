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

mod admission;
mod connection;
mod feed;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use veil_mempool::admission::AdmissionConfig;
use veil_mempool::metrics::PoolStats;
use veil_mempool::pool::{FeedBatch, FeedCursor, Pool, PoolConfig};
use veil_mempool::validate::Validator;
use veil_primitives::{Eon, Slot, TxId};
use veil_storage::sqlite::SqliteTxStore;
use veil_storage::{PendingTxStore, StoreError, StoreStats, StoredTx};
use veil_wire::error::TlsError;
use veil_wire::ingress::{ALPN, DEFAULT_MAX_FRAME_SIZE};
use veil_wire::tls::{self, CertFingerprint};

use self::connection::Request;
pub use self::feed::FeedSubscriber;
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

/// QUIC application error code: the server is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application error code: no stream or no frame within the idle timeout.
pub const CLOSE_IDLE: u32 = 1;
/// QUIC application error code: the peer broke the protocol beyond recovery.
pub const CLOSE_PROTOCOL: u32 = 2;

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
        }
    }
}

struct Shared {
    config: IngressConfig,
    pool: Mutex<Pool>,
    store: Box<dyn PendingTxStore>,
    validator: Arc<dyn Validator>,
    stats: IngressStats,
    feed_tx: watch::Sender<FeedCursor>,
    connections: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// Opens storage, rebuilds the pool from it (pruning expired rows), creates or loads the
    /// certificate, binds the endpoint and starts serving. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`IngressError`] if storage, TLS or the socket fail.
    pub async fn start(
        config: IngressConfig,
        validator: Arc<dyn Validator>,
    ) -> Result<Ingress, IngressError> {
        let data_dir = config.data_dir.clone();
        let (store, rows) = tokio::task::spawn_blocking(move || SqliteTxStore::open(&data_dir))
            .await
            .map_err(|e| {
                IngressError::Store(StoreError::Io {
                    path: config.data_dir.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })??;
        let mut pool = Pool::new(config.pool.clone(), config.current_slot, &config.eons);
        pool.advance_seq(store.next_seq_floor());
        let restored = rows.len();
        let pruned = pool.restore(
            rows.into_iter().map(|StoredTx { seq, candidate }| (seq, candidate)).collect(),
        );
        store.delete(pruned.iter().map(|(s, _)| *s).collect());
        tracing::info!(restored, pruned = pruned.len(), "mempool rebuilt from storage");

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
        let (admission_tx, admission_rx) = mpsc::channel(config.max_batch * 4);
        let shared = Arc::new(Shared {
            config,
            pool: Mutex::new(pool),
            store: Box::new(store),
            validator,
            stats: IngressStats::default(),
            feed_tx,
            connections: Mutex::new(HashMap::new()),
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

    /// Advances the slot: expired transactions leave the pool and storage.
    pub fn on_slot(&self, slot: Slot) -> usize {
        let removed = self.shared.pool().on_slot(slot);
        let n = removed.len();
        self.shared.store.delete(removed.into_iter().map(|(s, _)| s).collect());
        n
    }

    /// Removes committed transactions from the pool and storage.
    pub fn remove_committed(&self, ids: &[TxId]) -> usize {
        let removed = self.shared.pool().remove_committed(ids);
        let n = removed.len();
        self.shared.store.delete(removed.into_iter().map(|(s, _)| s).collect());
        n
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
