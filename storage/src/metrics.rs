//! Plain counters of the stores; the node exports them.

/// A store's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Group commits (SQLite transactions, each one fsync of the WAL).
    pub commits: u64,
    /// Rows inserted.
    pub rows_written: u64,
    /// Rows deleted.
    pub rows_deleted: u64,
    /// Committed ids stored as spent (a repeat that changed nothing is not counted).
    pub spent_written: u64,
    /// Spent ids deleted once their expiry slot passed.
    pub spent_deleted: u64,
    /// Inclusion receipts written (a rewrite of the same receipt counts again).
    pub receipts_written: u64,
    /// Inclusion receipts deleted by pruning.
    pub receipts_deleted: u64,
    /// Largest number of write requests merged into one commit.
    pub max_group: u64,
    /// Time spent writing and committing (fsync included), summed over commits, in µs.
    pub commit_us_total: u64,
    /// The longest single group commit, in µs.
    pub commit_us_max: u64,
}
