//! The bid book of one slot: intake after the checks, replacement by sequence number, and the
//! per-builder cap.
//!
//! A bid is keyed by (builder, rollup set). A bid with a higher sequence number for the same
//! key replaces the held one; an equal or lower one is refused as stale. A builder holds at
//! most `cap` keys per slot; replacing does not count against the cap. Rejections leave the
//! book exactly as it was.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot};

use crate::bid::{BidId, CheckedBid, SignedBid};
use crate::registry::RollupTerms;
use crate::AuctionError;

/// A bid held in a book.
#[derive(Debug, Clone)]
pub struct StoredBid {
    /// Its id.
    pub id: BidId,
    /// The bid and its signature.
    pub signed: SignedBid,
    /// Sum of the reserves of its rollups.
    pub reserve: Amount,
}

/// What intake did with an accepted bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidReceipt {
    /// The accepted bid's id.
    pub id: BidId,
    /// The bid it replaced (same builder, slot and rollup set, lower sequence number).
    pub replaced: Option<BidId>,
}

/// The bids of one open slot.
#[derive(Debug, Clone)]
pub struct SlotBook {
    slot: Slot,
    deadline_ms: u64,
    terms: RollupTerms,
    bids: HashMap<(PublicKeyBytes, Vec<RollupId>), StoredBid>,
    per_builder: HashMap<PublicKeyBytes, u32>,
}

impl SlotBook {
    /// An empty book with the slot's deadline and frozen rollup terms.
    #[must_use]
    pub fn new(slot: Slot, deadline_ms: u64, terms: RollupTerms) -> SlotBook {
        SlotBook { slot, deadline_ms, terms, bids: HashMap::new(), per_builder: HashMap::new() }
    }

    /// The slot.
    #[must_use]
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The bidding deadline (caller's millisecond clock).
    #[must_use]
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// The rollup terms frozen when the slot opened.
    #[must_use]
    pub fn terms(&self) -> &RollupTerms {
        &self.terms
    }

    /// Live bids.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bids.len()
    }

    /// Whether the book holds no bid.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty()
    }

    /// Checks the sequence number and the cap, then holds the bid.
    pub fn insert(&mut self, checked: CheckedBid, cap: u32) -> Result<BidReceipt, AuctionError> {
        let bid = &checked.signed.message;
        let key = (bid.builder, bid.rollups().collect::<Vec<_>>());
        let stored = StoredBid { id: checked.id, signed: checked.signed, reserve: checked.reserve };
        if let Some(held) = self.bids.get_mut(&key) {
            let current = held.signed.message.sequence;
            if stored.signed.message.sequence <= current {
                return Err(AuctionError::StaleSequence {
                    got: stored.signed.message.sequence,
                    current,
                });
            }
            let replaced = held.id;
            *held = stored;
            return Ok(BidReceipt { id: held.id, replaced: Some(replaced) });
        }
        let count = self.per_builder.entry(key.0).or_insert(0);
        if *count >= cap {
            return Err(AuctionError::TooManyBids { cap });
        }
        *count += 1;
        let id = stored.id;
        self.bids.insert(key, stored);
        Ok(BidReceipt { id, replaced: None })
    }

    /// Every live bid, sorted by id (the canonical order used at close).
    #[must_use]
    pub fn sorted_bids(&self) -> Vec<&StoredBid> {
        let mut v: Vec<&StoredBid> = self.bids.values().collect();
        v.sort_unstable_by_key(|b| b.id);
        v
    }
}
