//! Committed ("spent") transaction ids, remembered until their expiry slot passes, so that a
//! replay of a committed ciphertext is answered as a duplicate and never admitted again: its
//! fee payer's signature over the id authorises one charge.
//!
//! # Why until the expiry slot
//!
//! A ciphertext whose expiry slot is before the current slot is refused as expired whatever
//! the pool remembers, so an id needs remembering only while its expiry slot has not passed.
//! The pool forgets it in the same step ([`SpentIds::prune`], from [`super::Pool::on_slot`])
//! that starts refusing it as expired: there is no slot in which a replay passes both.
//!
//! # Memory
//!
//! An id is kept as its first 8 bytes, a `u64`. Ids are sha3-256 outputs of canonical
//! ciphertexts (which carry fresh encryption randomness), so a prefix is uniform. A prefix
//! collision can only make the pool *over*-refuse: a new ciphertext whose prefix equals that
//! of one of `n` remembered ids is answered as a duplicate and not admitted. For an honest
//! ciphertext that happens with probability `n / 2^64` (below 1.1e-13 at the default bound of
//! 2,000,000 ids); making it happen on purpose to someone else's ciphertext means finding a
//! 64-bit second preimage of an id that is not public before it is submitted. (Two remembered
//! ids sharing a prefix are kept once, under the first one's expiry; a later-expiring one is
//! then forgotten early, with the same negligible probability, and only to the cost of its own
//! payer.) A duplicate answered from the prefix alone never skips a check of a new
//! ciphertext: see [`super::Pool::recheck_replay`].
//!
//! Per remembered id: a hash table of 8-byte prefixes (with hashbrown's control byte and its
//! load factor of at most 7/8, between 10.3 and 20.6 bytes per id depending on where the table
//! is between two doublings; 2^22 buckets, 37.7 MB, hold the default bound of 2,000,000), plus
//! the prefix again in an index by expiry slot (8 bytes, and up to as much again of vector
//! slack), for pruning: about 18 to 37 bytes per id, 54 to 70 MB at the default bound.
//!
//! # The bound
//!
//! At most [`super::PoolConfig::max_spent`] ids are remembered. Past it, the ids with the
//! latest expiry slot are forgotten, a whole slot at a time, and that expiry slot is
//! *refused*: until it passes, a candidate expiring in it is refused as expired (the pool's
//! "beyond the horizon" rejection, [`veil_primitives::ErrorCode::Expired`]), so no forgotten id
//! can be admitted again. Forgetting the latest slots first lowers the effective horizon from
//! the top: clients with shorter expiries are not affected. Ids committed later whose expiry
//! slot is refused are not remembered (they are refused anyway). Refused slots are at most one
//! per slot of the horizon.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use veil_primitives::{Slot, TxId};

/// The remembered committed ids. See the module docs.
#[derive(Debug)]
pub(crate) struct SpentIds {
    hasher: RandomState,
    /// The first 8 bytes of each remembered id.
    prefixes: HashTable<u64>,
    /// The same prefixes by expiry slot, for pruning and for forgetting the latest.
    by_expiry: BTreeMap<Slot, Vec<u64>>,
    /// Expiry slots whose ids were forgotten for the bound: refused until they pass.
    refused: BTreeSet<Slot>,
    max: usize,
    /// Ids forgotten for the bound before their expiry slot passed (a counter).
    forgotten: u64,
}

/// The first 8 bytes of an id, as the table keeps it.
fn prefix(id: &TxId) -> u64 {
    u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"))
}

impl SpentIds {
    /// Remembering at most `max` ids.
    pub(crate) fn new(max: usize) -> SpentIds {
        SpentIds {
            hasher: RandomState::new(),
            prefixes: HashTable::new(),
            by_expiry: BTreeMap::new(),
            refused: BTreeSet::new(),
            max,
            forgotten: 0,
        }
    }

    /// Whether `id` is remembered (by its prefix: see the module docs).
    pub(crate) fn contains(&self, id: &TxId) -> bool {
        let p = prefix(id);
        self.prefixes.find(self.hasher.hash_one(p), |&x| x == p).is_some()
    }

    /// How many ids are remembered.
    pub(crate) fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Ids forgotten for the bound so far.
    pub(crate) fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Expiry slots refused now.
    pub(crate) fn refused_slots(&self) -> usize {
        self.refused.len()
    }

    /// Whether a candidate expiring in `expiry` must be refused: ids expiring then were
    /// forgotten.
    pub(crate) fn refuses(&self, expiry: Slot) -> bool {
        self.refused.contains(&expiry)
    }

    /// The earliest refused expiry slot, if any.
    pub(crate) fn first_refused(&self) -> Option<Slot> {
        self.refused.first().copied()
    }

    /// Remembers `id` until `expiry` passes. Nothing is added if `expiry` is before
    /// `current` (nothing to remember), if `expiry` is refused (the rule covers it), or if the
    /// id is remembered already.
    pub(crate) fn insert(&mut self, id: &TxId, expiry: Slot, current: Slot) {
        if expiry < current || self.refused.contains(&expiry) || self.contains(id) {
            return;
        }
        let p = prefix(id);
        let hasher = &self.hasher;
        self.prefixes.insert_unique(hasher.hash_one(p), p, |&x| hasher.hash_one(x));
        self.by_expiry.entry(expiry).or_default().push(p);
        while self.prefixes.len() > self.max {
            self.forget_latest();
        }
    }

    /// Forgets every id of the latest expiry slot and refuses that slot.
    fn forget_latest(&mut self) {
        let Some((slot, prefixes)) = self.by_expiry.pop_last() else { return };
        self.refused.insert(slot);
        self.forgotten += prefixes.len() as u64;
        self.remove(&prefixes);
    }

    fn remove(&mut self, prefixes: &[u64]) {
        for &p in prefixes {
            if let Ok(e) = self.prefixes.find_entry(self.hasher.hash_one(p), |&x| x == p) {
                e.remove();
            }
        }
    }

    /// Forgets the ids, and lifts the refusals, of every expiry slot before `current`.
    pub(crate) fn prune(&mut self, current: Slot) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= current {
                break;
            }
            let prefixes = entry.remove();
            self.remove(&prefixes);
        }
        while self.refused.first().is_some_and(|&s| s < current) {
            self.refused.pop_first();
        }
    }

    /// Every remembered prefix is listed once in the expiry index, and no refused slot has
    /// remembered ids (for tests).
    #[cfg(test)]
    pub(crate) fn check(&self) -> Result<(), String> {
        let listed: usize = self.by_expiry.values().map(Vec::len).sum();
        if listed != self.prefixes.len() {
            return Err(format!("{listed} listed, {} remembered", self.prefixes.len()));
        }
        if self.prefixes.len() > self.max {
            return Err(format!("{} remembered, bound {}", self.prefixes.len(), self.max));
        }
        if let Some(s) = self.refused.iter().find(|s| self.by_expiry.contains_key(s)) {
            return Err(format!("refused slot {s} has remembered ids"));
        }
        Ok(())
    }

    /// Bytes allocated (for tests and measurements).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.prefixes.allocation_size()
            + self.by_expiry.values().map(|v| v.capacity() * 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TxId {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        TxId(b)
    }

    #[test]
    fn remembered_until_the_expiry_slot_passes() {
        let mut s = SpentIds::new(10);
        s.insert(&id(1), Slot(12), Slot(10));
        s.insert(&id(2), Slot(15), Slot(10));
        s.insert(&id(3), Slot(9), Slot(10));
        assert!(s.contains(&id(1)) && s.contains(&id(2)));
        assert!(!s.contains(&id(3)), "expired already: nothing to remember");
        s.prune(Slot(12));
        assert!(s.contains(&id(1)), "slot 12 is still its expiry slot");
        s.prune(Slot(13));
        assert!(!s.contains(&id(1)) && s.contains(&id(2)));
        assert_eq!(s.len(), 1);
        s.check().unwrap();
    }

    #[test]
    fn past_the_bound_the_latest_slot_is_forgotten_and_refused() {
        let mut s = SpentIds::new(3);
        s.insert(&id(1), Slot(20), Slot(10));
        s.insert(&id(2), Slot(30), Slot(10));
        s.insert(&id(3), Slot(30), Slot(10));
        s.insert(&id(4), Slot(25), Slot(10));
        // Slot 30 (two ids) is forgotten whole.
        assert_eq!((s.len(), s.forgotten(), s.first_refused()), (2, 2, Some(Slot(30))));
        assert!(s.refuses(Slot(30)) && !s.refuses(Slot(29)) && !s.refuses(Slot(31)));
        assert!(!s.contains(&id(2)) && s.contains(&id(4)));
        // An id committed later with a refused expiry is covered by the refusal.
        s.insert(&id(5), Slot(30), Slot(10));
        assert!(!s.contains(&id(5)));
        s.check().unwrap();
        // The refusal lasts until slot 30 passes, and no longer.
        s.prune(Slot(30));
        assert!(s.refuses(Slot(30)));
        s.prune(Slot(31));
        assert_eq!((s.refused_slots(), s.len()), (0, 0));
    }

    /// What the doc comment states about memory, computed from the allocation.
    #[test]
    fn memory_per_id() {
        let n = 100_000u64;
        let mut s = SpentIds::new(n as usize);
        for i in 0..n {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
            s.insert(&TxId(b), Slot(10 + i / 1_000), Slot(10));
        }
        let per_id = s.allocated() as f64 / n as f64;
        assert!((18.0..=40.0).contains(&per_id), "{per_id} bytes per id");
    }
}
