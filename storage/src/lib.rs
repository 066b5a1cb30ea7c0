//! Veil's durable storage: the store traits the services write through, and their SQLite
//! backend.
//!
//! Every shell in Veil follows one rule: a persist event is durable before the core gets its
//! next input. The stores here are how that is made cheap: writes are queued to one thread per
//! database, which commits everything queued in one SQLite transaction (one fsync), then
//! answers every receipt of the group. An ack, a signature or a release is given only after
//! its receipt resolves.
//!
//! | item | what |
//! |---|---|
//! | [`PendingTxStore`] | admitted, still-pending ciphertexts (the mempool's durable half) |
//! | [`sqlite::SqliteTxStore`] | its SQLite backend: WAL, `synchronous=FULL`, group commit, checkpoints off the commit path |
//! | [`records::RecordLog`] | the fsync'd record log of a state machine's persist events (slot records, keyper release records), one decision per slot enforced by a unique key |
//! | [`StoreStats`] | commit counters for metrics |
//!
//! The stores for bids, commitments, releases, the ledger and fee accounts join this crate
//! with the running sequencer, behind traits of the same shape, so that a PostgreSQL backend
//! can follow without touching the services.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use veil_mempool::pool::{Candidate, EphemeralKeyDigest, Seq};
//! use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId, TxMeta};
//! use veil_storage::{sqlite::SqliteTxStore, PendingTxStore, StoredTx};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (store, rows) = SqliteTxStore::open(dir.path()).unwrap();
//! assert!(rows.is_empty());
//! let meta = TxMeta {
//!     chain_id: ChainId(1), eon: Eon(1), rollup: RollupId(1), fee_payer: PublicKeyBytes([1; 32]),
//!     max_fee: Amount(10), gas_limit: 21_000, expiry_slot: Slot(100), bundle: None,
//! };
//! let row = StoredTx {
//!     seq: Seq(0),
//!     candidate: Candidate {
//!         id: TxId([9; 32]), meta, ephemeral_key: EphemeralKeyDigest([2; 32]),
//!         body: Bytes::from_static(b"ciphertext"),
//!     },
//! };
//! let receipt = store.write(vec![row.clone()], vec![]);
//! receipt.blocking_recv().unwrap().unwrap(); // durable now
//! drop(store);
//! let (_store, rows) = SqliteTxStore::open(dir.path()).unwrap();
//! assert_eq!(rows, vec![row]);
//! ```

pub mod error;
pub mod metrics;
pub mod records;
pub mod sqlite;

use tokio::sync::oneshot;
use veil_mempool::pool::{Candidate, Seq};

pub use error::StoreError;
pub use metrics::StoreStats;

/// One stored pending transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    /// Its admission sequence number.
    pub seq: Seq,
    /// Everything the pool needs to restore it.
    pub candidate: Candidate,
}

/// A receipt: resolves once the operation is durable (or failed).
pub type Receipt = oneshot::Receiver<Result<(), StoreError>>;

/// Durable storage of the pool's pending transactions, written with group commit.
///
/// Operations are applied in the order they are sent: when a receipt reports success, every
/// operation sent before it is durable too. After a failed commit the store refuses further
/// writes ([`StoreError::Poisoned`]) so that nothing is acknowledged past a gap.
pub trait PendingTxStore: Send + Sync + std::fmt::Debug {
    /// Queues rows to insert and rows to delete, applied atomically; the receipt resolves once
    /// they are durable. An empty write is a barrier: it resolves once everything sent before
    /// it is durable.
    #[must_use = "the receipt says when the write is durable"]
    fn write(&self, insert: Vec<StoredTx>, delete: Vec<Seq>) -> Receipt;

    /// Queues deletions without waiting for them (expired or committed rows: losing the
    /// deletion in a crash only means pruning again at restart).
    fn delete(&self, delete: Vec<Seq>);

    /// A copy of the counters.
    #[must_use]
    fn stats(&self) -> StoreStats;
}
