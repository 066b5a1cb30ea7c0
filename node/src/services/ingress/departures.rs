//! Why transactions left the pool without being committed: expired or evicted. Kept in memory
//! for the most recent [`DEPARTURES_KEPT`] departures, so that a user asking for a transaction
//! that is gone learns why instead of "no record". Not durable: after a restart, earlier
//! departures are unknown (and answered `NOT_FOUND`).

use std::collections::{HashMap, VecDeque};

use veil_primitives::{Slot, TxId};

/// Departures remembered at most (about 80 bytes each).
pub const DEPARTURES_KEPT: usize = 100_000;

/// Why a transaction left the pool uncommitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Its expiry slot passed; `slot` is the first slot it could no longer be included in.
    Expired {
        /// The slot.
        slot: Slot,
    },
    /// Pushed out by transactions paying more while the pool was full, in `slot`.
    Evicted {
        /// The slot.
        slot: Slot,
    },
}

/// The bounded record.
#[derive(Debug, Default)]
pub(super) struct Departures {
    order: VecDeque<TxId>,
    why: HashMap<TxId, Departure>,
}

impl Departures {
    pub(super) fn record<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>, why: Departure) {
        for id in ids {
            if self.why.insert(*id, why).is_none() {
                self.order.push_back(*id);
            }
            while self.order.len() > DEPARTURES_KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.why.remove(&old);
                }
            }
        }
    }

    /// Forgets `id` (it was admitted again).
    pub(super) fn readmitted<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>) {
        for id in ids {
            // Its place in `order` stays; popping it later removes nothing else.
            self.why.remove(id);
        }
    }

    pub(super) fn get(&self, id: &TxId) -> Option<Departure> {
        self.why.get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departures_are_bounded_and_forgotten_on_readmission() {
        let mut d = Departures::default();
        let id = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            TxId(b)
        };
        let first: Vec<TxId> = (0..10).map(id).collect();
        d.record(&first, Departure::Expired { slot: Slot(3) });
        assert_eq!(d.get(&id(4)), Some(Departure::Expired { slot: Slot(3) }));
        d.readmitted(&[id(4)]);
        assert_eq!(d.get(&id(4)), None);
        let many: Vec<TxId> = (10..10 + DEPARTURES_KEPT as u32).map(id).collect();
        d.record(&many, Departure::Evicted { slot: Slot(5) });
        assert!(d.why.len() <= DEPARTURES_KEPT && d.order.len() <= DEPARTURES_KEPT);
        assert_eq!(d.get(&id(0)), None, "the oldest are forgotten");
        assert_eq!(
            d.get(&id(10 + DEPARTURES_KEPT as u32 - 1)),
            Some(Departure::Evicted { slot: Slot(5) })
        );
    }
}
