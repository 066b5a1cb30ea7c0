//! The pending set a builder follows: the mempool's public metadata, bounded by count and by
//! expiry, with the ids that left (committed, published) remembered for a while so that a
//! late stream event cannot bring them back.
//!
//! A decided slot's transactions are only in flight until the slot's fate is known: the
//! held ones are set aside ([`PendingSet::commit`]) and dropped for good once the slot is
//! published ([`PendingSet::published`]), or put back when the slot is abandoned as
//! undecryptable ([`PendingSet::undecryptable`]): the node returns them to its pool, but its
//! mempool stream never offers them again (they keep their old place in admission order), so
//! a builder that had forgotten them would never bid for them again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use veil_primitives::{Amount, BundleId, RollupId, Slot, TxId};

use crate::api::{MempoolBundle, MempoolTx};
use crate::error::BuilderError;

/// Default for [`PendingConfig::max_txs`].
pub const DEFAULT_MAX_PENDING: usize = 100_000;
/// Default for [`PendingConfig::gone_slots`].
pub const DEFAULT_GONE_SLOTS: u64 = 8;
/// Default for [`PendingConfig::max_gone`].
pub const DEFAULT_MAX_GONE: usize = 200_000;

/// How much the pending set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingConfig {
    /// Transactions held at most; when full, the lowest fee leaves first (a new transaction
    /// that pays no more than the lowest held is not taken).
    pub max_txs: usize,
    /// Slots an id that left (committed or published) is remembered, so that a stream event
    /// read before it left cannot bring it back.
    pub gone_slots: u64,
    /// Ids remembered as gone at most (the oldest are forgotten first).
    pub max_gone: usize,
}

impl Default for PendingConfig {
    fn default() -> PendingConfig {
        PendingConfig {
            max_txs: DEFAULT_MAX_PENDING,
            gone_slots: DEFAULT_GONE_SLOTS,
            max_gone: DEFAULT_MAX_GONE,
        }
    }
}

/// A pending transaction's public facts that a builder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingTx {
    /// Its place in admission order.
    pub seq: u64,
    /// The ciphertext id.
    pub id: TxId,
    /// Its rollup.
    pub rollup: RollupId,
    /// The fee it pays its includer.
    pub max_fee: Amount,
    /// The gas it may use.
    pub gas_limit: u64,
    /// The last slot it may be included in.
    pub expiry_slot: Slot,
    /// Its atomic bundle, if any.
    pub bundle: Option<MempoolBundle>,
}

impl TryFrom<&MempoolTx> for PendingTx {
    type Error = BuilderError;

    fn try_from(tx: &MempoolTx) -> Result<PendingTx, BuilderError> {
        if let Some(b) = tx.bundle {
            if b.count == 0
                || b.index >= b.count
                || usize::from(b.count) > veil_crypto::MAX_BUNDLE_PARTS as usize
            {
                return Err(BuilderError::BadBundle { tx: tx.id, index: b.index, count: b.count });
            }
        }
        if tx.max_fee > Amount::MAX {
            return Err(BuilderError::FeeTooLarge { tx: tx.id });
        }
        Ok(PendingTx {
            seq: tx.seq,
            id: tx.id,
            rollup: tx.rollup,
            max_fee: tx.max_fee,
            gas_limit: tx.gas_limit,
            expiry_slot: tx.expiry_slot,
            bundle: tx.bundle,
        })
    }
}

/// What [`PendingSet::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Held.
    Added,
    /// Held, and this lower-fee transaction left to make room.
    Evicted(TxId),
    /// Already held (a stream resumed a little early): nothing changed.
    Duplicate,
    /// Known to have left (committed or published): not taken.
    Gone,
    /// Expired before the slot the set is at: not taken.
    Expired,
    /// The set is full of transactions paying at least as much: not taken.
    Full,
}

/// Counters of a pending set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingStats {
    /// Transactions held now.
    pub held: usize,
    /// Taken in all.
    pub added: u64,
    /// Pushed out by higher fees, or refused for want of room.
    pub evicted: u64,
    /// Dropped at expiry.
    pub expired: u64,
    /// Removed because they left the pool (committed or published).
    pub removed: u64,
    /// Put back after the slot that committed them was abandoned undecryptable.
    pub restored: u64,
    /// Refused as malformed ([`BuilderError`]).
    pub malformed: u64,
}

/// The pending transactions a builder follows. Every operation is bounded: `insert` is
/// `O(log n)`, the set never holds more than [`PendingConfig::max_txs`] transactions nor
/// remembers more than [`PendingConfig::max_gone`] gone ids.
#[derive(Debug, Clone)]
pub struct PendingSet {
    config: PendingConfig,
    txs: HashMap<TxId, PendingTx>,
    /// (fee, reverse admission order, id): the first is the cheapest and, among equal fees,
    /// the newest (evicted first).
    by_fee: BTreeSet<(Amount, std::cmp::Reverse<u64>, TxId)>,
    by_expiry: BTreeSet<(Slot, TxId)>,
    bundles: HashMap<BundleId, BTreeMap<u16, TxId>>,
    gone: HashMap<TxId, Slot>,
    gone_order: VecDeque<(Slot, TxId)>,
    /// Per decided slot whose fate is not known yet: its ids, and the transactions the set
    /// held among them.
    in_flight: BTreeMap<Slot, InFlight>,
    slot: Slot,
    stats: PendingStats,
}

/// A decided slot's transactions, until it is published or abandoned.
#[derive(Debug, Clone, Default)]
struct InFlight {
    ids: Vec<TxId>,
    held: Vec<PendingTx>,
}

impl PendingSet {
    /// An empty set.
    #[must_use]
    pub fn new(config: PendingConfig) -> PendingSet {
        PendingSet {
            config,
            txs: HashMap::new(),
            by_fee: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
            bundles: HashMap::new(),
            gone: HashMap::new(),
            gone_order: VecDeque::new(),
            in_flight: BTreeMap::new(),
            slot: Slot(0),
            stats: PendingStats::default(),
        }
    }

    /// Transactions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> PendingStats {
        PendingStats { held: self.txs.len(), ..self.stats }
    }

    /// A held transaction.
    #[must_use]
    pub fn get(&self, id: &TxId) -> Option<&PendingTx> {
        self.txs.get(id)
    }

    /// Every held transaction, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingTx> {
        self.txs.values()
    }

    /// The held parts of a bundle, by index.
    #[must_use]
    pub fn bundle_parts(&self, bundle: &BundleId) -> Option<&BTreeMap<u16, TxId>> {
        self.bundles.get(bundle)
    }

    /// Takes a transaction read from the mempool.
    ///
    /// # Errors
    /// [`BuilderError::BadBundle`] for bundle metadata that cannot be right (index not below
    /// count, too many parts, a second part at the same index), [`BuilderError::FeeTooLarge`]
    /// for a fee no ledger accepts. Nothing is held then.
    pub fn insert(&mut self, tx: &MempoolTx) -> Result<Inserted, BuilderError> {
        let tx = PendingTx::try_from(tx).inspect_err(|_| self.stats.malformed += 1)?;
        self.insert_pending(tx)
    }

    fn insert_pending(&mut self, tx: PendingTx) -> Result<Inserted, BuilderError> {
        if self.txs.contains_key(&tx.id) {
            return Ok(Inserted::Duplicate);
        }
        if self.gone.contains_key(&tx.id) {
            return Ok(Inserted::Gone);
        }
        if tx.expiry_slot < self.slot {
            return Ok(Inserted::Expired);
        }
        if let Some(b) = tx.bundle {
            if self.bundles.get(&b.id).is_some_and(|parts| parts.contains_key(&b.index)) {
                self.stats.malformed += 1;
                return Err(BuilderError::BadBundle { tx: tx.id, index: b.index, count: b.count });
            }
        }
        let mut evicted = None;
        if self.txs.len() >= self.config.max_txs.max(1) {
            let Some(&(fee, _, cheapest)) = self.by_fee.first() else {
                return Ok(Inserted::Full);
            };
            if tx.max_fee <= fee {
                self.stats.evicted += 1;
                return Ok(Inserted::Full);
            }
            self.remove_one(&cheapest);
            self.stats.evicted += 1;
            evicted = Some(cheapest);
        }
        self.by_fee.insert((tx.max_fee, std::cmp::Reverse(tx.seq), tx.id));
        self.by_expiry.insert((tx.expiry_slot, tx.id));
        if let Some(b) = tx.bundle {
            self.bundles.entry(b.id).or_default().insert(b.index, tx.id);
        }
        self.txs.insert(tx.id, tx);
        self.stats.added += 1;
        Ok(evicted.map_or(Inserted::Added, Inserted::Evicted))
    }

    fn remove_one(&mut self, id: &TxId) -> Option<PendingTx> {
        let tx = self.txs.remove(id)?;
        self.by_fee.remove(&(tx.max_fee, std::cmp::Reverse(tx.seq), tx.id));
        self.by_expiry.remove(&(tx.expiry_slot, tx.id));
        if let Some(b) = tx.bundle {
            if let Some(parts) = self.bundles.get_mut(&b.id) {
                parts.remove(&b.index);
                if parts.is_empty() {
                    self.bundles.remove(&b.id);
                }
            }
        }
        Some(tx)
    }

    /// Moves the set to `slot`: drops what expired before it (`expiry_slot < slot`), forgets
    /// gone ids older than [`PendingConfig::gone_slots`] and the in-flight transactions of
    /// slots that old whose fate never became known (they stay out). Returns how many expired.
    pub fn on_slot(&mut self, slot: Slot) -> usize {
        self.slot = self.slot.max(slot);
        let mut expired = 0;
        while let Some(&(expiry, id)) = self.by_expiry.first() {
            if expiry >= self.slot {
                break;
            }
            self.remove_one(&id);
            expired += 1;
        }
        self.stats.expired += expired as u64;
        let horizon = Slot(self.slot.0.saturating_sub(self.config.gone_slots));
        let kept = self.in_flight.split_off(&horizon);
        let forgotten = std::mem::replace(&mut self.in_flight, kept);
        self.stats.removed += forgotten.values().map(|f| f.held.len() as u64).sum::<u64>();
        while let Some(&(at, id)) = self.gone_order.front() {
            if at >= horizon && self.gone_order.len() <= self.config.max_gone {
                break;
            }
            self.gone_order.pop_front();
            if self.gone.get(&id) == Some(&at) {
                self.gone.remove(&id);
            }
        }
        expired
    }

    /// Keeps only the held transactions the node still offers: those admitted at or after
    /// `end` (not covered by the read) and those in `alive`. Returns how many were dropped.
    pub fn retain_alive(&mut self, alive: &std::collections::HashSet<TxId>, end: u64) -> usize {
        let dead: Vec<TxId> = self
            .txs
            .values()
            .filter(|t| t.seq < end && !alive.contains(&t.id))
            .map(|t| t.id)
            .collect();
        for id in &dead {
            self.remove_one(id);
        }
        self.stats.removed += dead.len() as u64;
        dead.len()
    }

    /// Removes ids that left the pool for good at `slot` and remembers them as gone for a
    /// while. Returns how many were held.
    pub fn remove_gone<'a>(
        &mut self,
        slot: Slot,
        ids: impl IntoIterator<Item = &'a TxId>,
    ) -> usize {
        let removed = self.take_out(slot, ids).len();
        self.stats.removed += removed as u64;
        removed
    }

    /// Removes `ids`, remembers them as gone at `slot`, returns the held ones.
    fn take_out<'a>(
        &mut self,
        slot: Slot,
        ids: impl IntoIterator<Item = &'a TxId>,
    ) -> Vec<PendingTx> {
        let mut held = Vec::new();
        for id in ids {
            held.extend(self.remove_one(id));
            match self.gone.insert(*id, slot) {
                Some(at) if at == slot => {}
                _ => self.gone_order.push_back((slot, *id)),
            }
        }
        while self.gone_order.len() > self.config.max_gone {
            if let Some((at, id)) = self.gone_order.pop_front() {
                if self.gone.get(&id) == Some(&at) {
                    self.gone.remove(&id);
                }
            }
        }
        held
    }

    /// Takes out the ids a decided slot committed (its commitment, the winners' bids, the
    /// fallback blocks): they are in flight until the slot is published or abandoned, so no
    /// bid may name them and a late stream event cannot bring them back. The held ones are
    /// kept aside until [`PendingSet::published`] or [`PendingSet::undecryptable`]. Returns
    /// how many were held.
    pub fn commit<'a>(&mut self, slot: Slot, ids: impl IntoIterator<Item = &'a TxId>) -> usize {
        let ids: Vec<TxId> = ids.into_iter().copied().collect();
        if ids.is_empty() {
            return 0;
        }
        let held = self.take_out(slot, &ids);
        let n = held.len();
        let entry = self.in_flight.entry(slot).or_default();
        entry.ids.extend(ids);
        entry.held.extend(held);
        n
    }

    /// The slot was published: what it committed left the pool for good. Returns how many
    /// held transactions that drops.
    pub fn published(&mut self, slot: Slot) -> usize {
        let n = self.in_flight.remove(&slot).map_or(0, |f| f.held.len());
        self.stats.removed += n as u64;
        n
    }

    /// The slot was abandoned as undecryptable: the node returned what it committed to the
    /// pool. Its ids are no longer remembered as gone, and the transactions the set held
    /// return to it (unless they expired meanwhile or the set is full of better ones).
    /// Returns how many returned.
    pub fn undecryptable(&mut self, slot: Slot) -> usize {
        let Some(f) = self.in_flight.remove(&slot) else { return 0 };
        for id in &f.ids {
            if self.gone.get(id) == Some(&slot) {
                self.gone.remove(id);
            }
        }
        let mut restored = 0;
        for tx in f.held {
            match self.insert_pending(tx) {
                Ok(Inserted::Added | Inserted::Evicted(_)) => {
                    // Counted as restored, not as newly taken.
                    self.stats.added -= 1;
                    restored += 1;
                }
                Ok(Inserted::Expired) => self.stats.expired += 1,
                Ok(Inserted::Duplicate) => {}
                Ok(Inserted::Gone | Inserted::Full) | Err(_) => self.stats.removed += 1,
            }
        }
        self.stats.restored += restored as u64;
        restored
    }

    /// The decided slots whose fate is not known yet, oldest first.
    pub fn in_flight_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.in_flight.keys().copied()
    }

    /// Held transactions set aside as in flight, over all slots.
    #[must_use]
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.values().map(|f| f.held.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use veil_primitives::{Eon, PublicKeyBytes};

    pub(crate) fn tx(seq: u64, rollup: u32, fee: u128, expiry: u64) -> MempoolTx {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&seq.to_be_bytes());
        MempoolTx {
            seq,
            id: TxId(id),
            eon: Eon(1),
            rollup: RollupId(rollup),
            fee_payer: PublicKeyBytes([1; 32]),
            max_fee: Amount(fee),
            gas_limit: 21_000,
            expiry_slot: Slot(expiry),
            bundle: None,
            size: 100,
            ciphertext: None,
        }
    }

    #[test]
    fn full_set_evicts_the_cheapest_and_refuses_cheaper() {
        let mut set = PendingSet::new(PendingConfig { max_txs: 2, ..PendingConfig::default() });
        assert_eq!(set.insert(&tx(1, 0, 10, 9)).unwrap(), Inserted::Added);
        assert_eq!(set.insert(&tx(2, 0, 20, 9)).unwrap(), Inserted::Added);
        assert_eq!(set.insert(&tx(2, 0, 20, 9)).unwrap(), Inserted::Duplicate);
        assert_eq!(set.insert(&tx(3, 0, 5, 9)).unwrap(), Inserted::Full);
        assert_eq!(set.insert(&tx(4, 0, 30, 9)).unwrap(), Inserted::Evicted(tx(1, 0, 0, 0).id));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn expiry_and_gone_ids() {
        let mut set = PendingSet::new(PendingConfig::default());
        set.insert(&tx(1, 0, 10, 3)).unwrap();
        set.insert(&tx(2, 0, 10, 5)).unwrap();
        assert_eq!(set.on_slot(Slot(4)), 1);
        assert_eq!(set.insert(&tx(3, 0, 10, 3)).unwrap(), Inserted::Expired);
        assert_eq!(set.remove_gone(Slot(4), &[tx(2, 0, 0, 0).id]), 1);
        assert!(set.is_empty());
        assert_eq!(set.insert(&tx(2, 0, 10, 5)).unwrap(), Inserted::Gone);
        set.on_slot(Slot(4 + DEFAULT_GONE_SLOTS + 1));
        assert_eq!(set.insert(&tx(2, 0, 10, 50)).unwrap(), Inserted::Added);
    }

    #[test]
    fn an_undecryptable_slot_gives_its_transactions_back() {
        let mut set = PendingSet::new(PendingConfig::default());
        for seq in 1..=5 {
            set.insert(&tx(seq, 0, 10 * u128::from(seq), 20)).unwrap();
        }
        let id = |seq| tx(seq, 0, 0, 0).id;
        set.on_slot(Slot(3));
        // Slot 3 commits two held transactions and one this builder never saw.
        assert_eq!(set.commit(Slot(3), &[id(1), id(2), id(99)]), 2);
        assert_eq!((set.len(), set.in_flight_len()), (3, 2));
        assert_eq!(set.in_flight_slots().collect::<Vec<_>>(), vec![Slot(3)]);
        // In flight: a late stream event cannot bring one back.
        assert_eq!(set.insert(&tx(1, 0, 10, 20)).unwrap(), Inserted::Gone);
        // Slot 3 is abandoned: both are pending again, and the unseen one may be taken.
        assert_eq!(set.undecryptable(Slot(3)), 2);
        assert_eq!((set.len(), set.in_flight_len()), (5, 0));
        assert!(set.get(&id(1)).is_some() && set.get(&id(2)).is_some());
        assert_eq!(set.insert(&tx(99, 0, 10, 20)).unwrap(), Inserted::Added);
        assert_eq!(set.stats().restored, 2);
        // Slot 4 commits one and is published: it is gone for good.
        assert_eq!(set.commit(Slot(4), &[id(3)]), 1);
        assert_eq!(set.published(Slot(4)), 1);
        assert_eq!(set.insert(&tx(3, 0, 30, 20)).unwrap(), Inserted::Gone);
        assert_eq!(set.in_flight_slots().count(), 0);
        // A transaction that expired while in flight does not come back.
        set.insert(&tx(7, 0, 10, 5)).unwrap();
        set.commit(Slot(5), &[id(7)]);
        set.on_slot(Slot(6));
        assert_eq!(set.undecryptable(Slot(5)), 0);
        assert!(set.get(&id(7)).is_none());
        // A slot whose fate never becomes known is forgotten after `gone_slots`.
        set.commit(Slot(6), &[id(4)]);
        set.on_slot(Slot(6 + DEFAULT_GONE_SLOTS + 1));
        assert_eq!((set.in_flight_slots().count(), set.in_flight_len()), (0, 0));
        assert_eq!(set.undecryptable(Slot(6)), 0);
        // Nothing committed, nothing in flight.
        assert_eq!(set.commit(Slot(20), &[]), 0);
        assert_eq!(set.in_flight_slots().count(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A new transaction: fee, expiry in slots from now.
        Insert(u128, u64),
        /// The current slot commits this many held transactions (and one unseen id).
        Commit(usize),
        /// The oldest in-flight slot's fate: undecryptable (true) or published.
        Resolve(bool),
        /// The next slot.
        Advance,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u128..100, 0u64..6).prop_map(|(f, e)| Op::Insert(f, e)),
            2 => (0usize..4).prop_map(Op::Commit),
            2 => any::<bool>().prop_map(Op::Resolve),
            2 => Just(Op::Advance),
        ]
    }

    proptest! {
        /// Against a model: a committed transaction leaves the set while in flight, comes back
        /// iff its slot is abandoned before it expired, and is dropped for good when its slot
        /// is published; nothing stays in flight past `gone_slots`.
        #[test]
        fn in_flight_transactions_follow_their_slots_fate(
            ops in prop::collection::vec(op(), 1..80)
        ) {
            const GONE: u64 = 3;
            let mut set = PendingSet::new(PendingConfig {
                gone_slots: GONE,
                ..PendingConfig::default()
            });
            let mut held: BTreeMap<TxId, u64> = BTreeMap::new();
            let mut flight: BTreeMap<Slot, Vec<(TxId, u64)>> = BTreeMap::new();
            let mut slot = 0u64;
            let mut seq = 0u64;
            for op in ops {
                match op {
                    Op::Insert(fee, expiry) => {
                        seq += 1;
                        let t = tx(seq, (seq % 3) as u32, fee, slot + expiry);
                        prop_assert_eq!(set.insert(&t).unwrap(), Inserted::Added);
                        held.insert(t.id, slot + expiry);
                    }
                    Op::Commit(k) => {
                        let taken: Vec<(TxId, u64)> =
                            held.iter().take(k).map(|(i, e)| (*i, *e)).collect();
                        let mut ids: Vec<TxId> = taken.iter().map(|t| t.0).collect();
                        seq += 1;
                        let unseen = tx(seq, 0, 1, slot + 9);
                        ids.push(unseen.id);
                        prop_assert_eq!(set.commit(Slot(slot), &ids), taken.len());
                        for (i, _) in &taken {
                            held.remove(i);
                        }
                        flight.entry(Slot(slot)).or_default().extend(taken.iter().copied());
                        // In flight, neither a held one nor the unseen one can be taken.
                        prop_assert_eq!(set.insert(&unseen).unwrap(), Inserted::Gone);
                    }
                    Op::Resolve(undecryptable) => {
                        let Some((&s, _)) = flight.iter().next() else { continue };
                        let txs = flight.remove(&s).unwrap();
                        if undecryptable {
                            let back: Vec<_> = txs.iter().filter(|t| t.1 >= slot).collect();
                            prop_assert_eq!(set.undecryptable(s), back.len());
                            held.extend(back.into_iter().copied());
                        } else {
                            prop_assert_eq!(set.published(s), txs.len());
                        }
                    }
                    Op::Advance => {
                        slot += 1;
                        set.on_slot(Slot(slot));
                        held.retain(|_, e| *e >= slot);
                        flight.retain(|s, _| s.0 >= slot.saturating_sub(GONE));
                    }
                }
                let ids: BTreeSet<TxId> = set.iter().map(|t| t.id).collect();
                prop_assert_eq!(&ids, &held.keys().copied().collect::<BTreeSet<_>>());
                prop_assert_eq!(
                    set.in_flight_slots().collect::<Vec<_>>(),
                    flight.keys().copied().collect::<Vec<_>>()
                );
                prop_assert_eq!(set.in_flight_len(), flight.values().map(Vec::len).sum::<usize>());
                prop_assert_eq!(set.stats().held, set.len());
            }
        }
    }

    #[test]
    fn malformed_bundles_are_typed_errors() {
        let mut set = PendingSet::new(PendingConfig::default());
        let mut bad = tx(1, 0, 10, 9);
        bad.bundle = Some(MempoolBundle { id: BundleId([1; 32]), index: 2, count: 2 });
        assert!(matches!(set.insert(&bad), Err(BuilderError::BadBundle { .. })));
        bad.bundle = Some(MempoolBundle { id: BundleId([1; 32]), index: 0, count: 2 });
        set.insert(&bad).unwrap();
        let mut twin = tx(2, 1, 10, 9);
        twin.bundle = bad.bundle;
        assert!(matches!(set.insert(&twin), Err(BuilderError::BadBundle { .. })));
        assert_eq!(set.stats().malformed, 2);
    }
}
