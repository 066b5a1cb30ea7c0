//! Plain counters and gauges. The sans-IO pool fills these structs; the node exports them
//! (Prometheus) without this crate touching a registry.

use std::collections::BTreeMap;

use veil_primitives::ErrorCode;

/// The pool's counters (since start) and gauges (now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Transactions admitted (new, not duplicates).
    pub admitted: u64,
    /// Requests answered as idempotent duplicates.
    pub duplicates: u64,
    /// Of `duplicates`, replays of committed transactions (spent ids).
    pub replays: u64,
    /// Transactions evicted for higher-fee ones.
    pub evicted: u64,
    /// Transactions removed because they expired.
    pub expired: u64,
    /// Transactions removed because they were committed.
    pub committed: u64,
    /// Rejections by code (codes never seen are absent).
    pub rejected: BTreeMap<ErrorCode, u64>,
    /// Gauge: pending transactions.
    pub pending_txs: u64,
    /// Gauge: pending units (lone transactions and bundles).
    pub pending_units: u64,
    /// Gauge: pending ciphertext bytes.
    pub pending_bytes: u64,
    /// Gauge: end of the durable prefix (sequence numbers below it are on disk).
    pub durable_seq: u64,
    /// Gauge: committed ids remembered as spent until their expiry slot passes.
    pub spent: u64,
    /// Committed ids forgotten before their expiry slot passed, for the bound
    /// (`PoolConfig::max_spent`).
    pub spent_forgotten: u64,
    /// Gauge: expiry slots refused because ids expiring in them were forgotten.
    pub refused_expiry_slots: u64,
}

impl PoolStats {
    /// Counts one rejection.
    pub fn count_rejection(&mut self, code: ErrorCode) {
        *self.rejected.entry(code).or_default() += 1;
    }

    /// Rejections counted with `code`.
    #[must_use]
    pub fn rejected(&self, code: ErrorCode) -> u64 {
        self.rejected.get(&code).copied().unwrap_or(0)
    }
}
