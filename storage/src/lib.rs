//! Veil's durable storage: the store traits the services write through, and their SQLite
//! backend.
//!
//! Every shell in Veil follows one rule: a persist event is durable before the core gets its
//! next input. The stores here are how that is made cheap: writes are queued to one thread per
//! database, which commits everything queued in one SQLite transaction (one fsync), then
//! resolves every [`Durable`] handle of the group. An ack, a signature or a release is given
//! only after its handle resolves.
//!
//! | item | what |
//! |---|---|
//! | [`PendingTxStore`] | admitted, still-pending ciphertexts (the mempool's durable half), and the ids of committed ones until they expire (spent: a replay is never admitted again) |
//! | [`ReceiptStore`] | the sequencer's signed inclusion receipts, by transaction id, with a retention horizon |
//! | [`sqlite::SqliteTxStore`] | the SQLite backend of both, in one database: WAL, `synchronous=FULL`, group commit, checkpoints off the commit path |
//! | [`records::RecordLog`] | the fsync'd record log of a state machine's persist events (slot records, keyper release records), one decision per slot enforced by a unique key |
//! | [`records::RecordReader`] | a second, read-only reader of a record log (the data API's indexer) |
//! | [`data::DataStore`] | the HTTP data API's index: bids accepted, blocks delivered, slot documents, transaction fates |
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
//! use veil_primitives::{
//!     Amount, ChainId, Eon, PublicKeyBytes, RollupId, SignatureBytes, Slot, TxId, TxMeta,
//! };
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
//!         payer_signature: SignatureBytes([3; 64]),
//!     },
//! };
//! let durable = store.write(vec![row.clone()], vec![]);
//! durable.blocking_recv().unwrap().unwrap(); // durable now
//! drop(store);
//! let (_store, rows) = SqliteTxStore::open(dir.path()).unwrap();
//! assert_eq!(rows, vec![row]);
//! ```

pub mod data;
pub mod error;
pub mod metrics;
pub mod records;
pub mod sqlite;

use tokio::sync::oneshot;
use veil_mempool::pool::{Candidate, Seq, Spent};
use veil_primitives::{SignedReceipt, Slot, TxId};

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

/// Resolves once a queued write is durable (or failed). (Not to be confused with an inclusion
/// receipt, [`SignedReceipt`], which [`ReceiptStore`] stores.)
pub type Durable = oneshot::Receiver<Result<(), StoreError>>;

/// Durable storage of the pool's pending transactions, written with group commit.
///
/// Operations are applied in the order they are sent: when a receipt reports success, every
/// operation sent before it is durable too. After a failed commit the store refuses further
/// writes ([`StoreError::Poisoned`]) so that nothing is acknowledged past a gap.
pub trait PendingTxStore: Send + Sync + std::fmt::Debug {
    /// Queues rows to insert and rows to delete, applied atomically; the handle resolves once
    /// they are durable. An empty write is a barrier: it resolves once everything sent before
    /// it is durable.
    #[must_use = "the handle says when the write is durable"]
    fn write(&self, insert: Vec<StoredTx>, delete: Vec<Seq>) -> Durable;

    /// Queues deletions without waiting for them (expired or evicted rows: losing the
    /// deletion in a crash only means pruning again at restart).
    fn delete(&self, delete: Vec<Seq>);

    /// Queues the removal of committed transactions without waiting for it: their pending
    /// rows (`delete`) are deleted and their ids stored as spent until their expiry slot
    /// (`spent`), in one transaction, so that a crash leaves either the pending row or the
    /// spent id, never neither. (A lost removal leaves the pending rows of transactions that
    /// the sequencer's records name as committed; the node removes them again at restart.)
    /// `spent` may name ids without a pending row (committed while out of the pool), and
    /// repeats are harmless.
    fn remove_committed(&self, delete: Vec<Seq>, spent: Vec<Spent>);

    /// Queues the deletion of the spent ids whose expiry slot is before `before`, without
    /// waiting (losing it in a crash only means pruning again later).
    fn prune_spent(&self, before: Slot);

    /// A copy of the counters.
    #[must_use]
    fn stats(&self) -> StoreStats;
}

/// Durable storage of the sequencer's signed inclusion receipts, looked up by transaction id.
///
/// Writes share the ordering rule of [`PendingTxStore`] (applied in the order sent; a failed
/// commit poisons the store). A receipt is keyed by its transaction and slot: writing the same
/// one again replaces it (a restarted sequencer re-signing a slot produces the same bytes), and
/// a transaction committed again in a later slot (after an undecryptable one) keeps both, the
/// later one being what [`ReceiptStore::receipt`] returns. Receipts older than the retention
/// horizon are deleted with [`ReceiptStore::prune_receipts`], so the table does not grow
/// without bound.
pub trait ReceiptStore: Send + Sync + std::fmt::Debug {
    /// Queues receipts to store; the handle resolves once they are durable.
    #[must_use = "the handle says when the write is durable"]
    fn write_receipts(&self, receipts: Vec<SignedReceipt>) -> Durable;

    /// The stored receipt of `tx` with the latest slot, if any. Reads what is committed: a
    /// receipt whose write has not resolved yet may be missing. Blocks for one indexed read.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails, [`StoreError::CorruptReceipt`] if the stored
    /// bytes do not decode.
    fn receipt(&self, tx: &TxId) -> Result<Option<SignedReceipt>, StoreError>;

    /// Queues the deletion of every receipt for a slot before `before`, without waiting
    /// (losing it in a crash only means pruning again later).
    fn prune_receipts(&self, before: Slot);
}
