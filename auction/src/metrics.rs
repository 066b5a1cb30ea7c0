//! Plain counters of the auction core, read by the node and exported in Prometheus format.
//! The core never touches a metrics registry itself.

use std::collections::BTreeMap;

use veil_primitives::{ErrorCode, Slot};

pub use crate::payment::CloseStats;

/// Counters since the auction was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuctionStats {
    /// Bids submitted, accepted or not.
    pub bids_received: u64,
    /// Bids accepted (new or replacing).
    pub bids_accepted: u64,
    /// Accepted bids that replaced an earlier one.
    pub bids_replaced: u64,
    /// Rejected bids, by [`crate::AuctionError::code`].
    pub bids_rejected: BTreeMap<ErrorCode, u64>,
    /// Signatures checked in batches.
    pub signatures_batched: u64,
    /// Slots opened.
    pub slots_opened: u64,
    /// Slots closed.
    pub slots_closed: u64,
    /// Slots whose outcome was not proven optimal.
    pub slots_inexact: u64,
    /// Slots settled.
    pub slots_settled: u64,
    /// Slots abandoned (undecryptable: payments released, nothing settled).
    pub slots_abandoned: u64,
    /// The last close, with its slot.
    pub last_close: Option<(Slot, CloseStats)>,
}

impl AuctionStats {
    pub(crate) fn reject(&mut self, code: ErrorCode) {
        *self.bids_rejected.entry(code).or_insert(0) += 1;
    }
}
