//! Errors of the storage crate. Callers branch on variants, never on message text.

use std::path::PathBuf;

/// Durable storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be decoded (the file is corrupt or from another version).
    #[error("stored row {seq} is corrupt: {reason}")]
    CorruptRow {
        /// The row's sequence number.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// A stored spent id could not be decoded.
    #[error("stored spent id (expiry slot {expiry}) is corrupt: {reason}")]
    CorruptSpent {
        /// Its expiry slot.
        expiry: u64,
        /// What was wrong.
        reason: String,
    },
    /// A stored inclusion receipt could not be decoded.
    #[error("stored receipt of {tx} is corrupt: {reason}")]
    CorruptReceipt {
        /// The transaction it is for.
        tx: veil_primitives::TxId,
        /// What was wrong.
        reason: String,
    },
    /// An earlier write failed; the store refuses further writes until reopened, so that
    /// nothing is acknowledged after a gap.
    #[error("the store failed earlier and is read-only until reopened")]
    Poisoned,
    /// The storage thread is gone (the store was shut down).
    #[error("the storage thread has stopped")]
    Stopped,
    /// A second, different decision for a slot: refused, the first one stands.
    #[error("slot {0} already has a different decision")]
    Conflict(u64),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
