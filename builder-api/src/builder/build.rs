//! The block builder: from a pending set and a slot's terms, one block per rollup of a rollup
//! set, fee order within gas limits, atomic bundles whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;

use veil_auction::RollupBlock;
use veil_primitives::{Amount, BundleId, ChainId, RollupId, Slot, TxId};

use super::pending::{PendingSet, PendingTx};
use crate::api::SlotSchedule;
use crate::error::BuilderError;

/// A rollup's terms for the slot being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupTerms {
    /// The least a bid naming it pays (summed over a bid's rollups).
    pub reserve: Amount,
    /// Gas its block may use.
    pub gas_limit: u64,
    /// Whether it takes bids.
    pub active: bool,
}

/// What a builder knows of the slot it builds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTerms {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot.
    pub slot: Slot,
    /// Every registered rollup's terms.
    pub rollups: BTreeMap<RollupId, RollupTerms>,
}

impl SlotTerms {
    /// The terms of the schedule's current slot.
    #[must_use]
    pub fn current(schedule: &SlotSchedule) -> SlotTerms {
        SlotTerms {
            chain_id: schedule.chain_id,
            slot: schedule.current.slot,
            rollups: schedule
                .rollups
                .iter()
                .map(|r| {
                    (
                        r.rollup,
                        RollupTerms {
                            reserve: r.reserve,
                            gas_limit: r.gas_limit,
                            active: r.active,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A non-empty set of rollups, sorted, without repeats: what one bid is for. Parsed from
/// `0+1+2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupSet(Vec<RollupId>);

impl RollupSet {
    /// The set of `rollups` (sorted, repeats removed).
    ///
    /// # Errors
    /// [`BuilderError::BadRollupSet`] if `rollups` is empty.
    pub fn new(rollups: impl IntoIterator<Item = RollupId>) -> Result<RollupSet, BuilderError> {
        let set: BTreeSet<RollupId> = rollups.into_iter().collect();
        if set.is_empty() {
            return Err(BuilderError::BadRollupSet("an empty rollup set".into()));
        }
        Ok(RollupSet(set.into_iter().collect()))
    }

    /// The rollups, ascending.
    #[must_use]
    pub fn rollups(&self) -> &[RollupId] {
        &self.0
    }

    /// Whether `rollup` is in the set.
    #[must_use]
    pub fn contains(&self, rollup: RollupId) -> bool {
        self.0.binary_search(&rollup).is_ok()
    }
}

impl fmt::Display for RollupSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|r| r.0.to_string()).collect();
        f.write_str(&names.join("+"))
    }
}

impl FromStr for RollupSet {
    type Err = BuilderError;

    fn from_str(s: &str) -> Result<RollupSet, BuilderError> {
        let rollups = s
            .split('+')
            .map(|p| {
                p.trim().parse::<u32>().map(RollupId).map_err(|_| {
                    BuilderError::BadRollupSet(format!("{s:?}: not rollup ids joined by '+'"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        RollupSet::new(rollups)
    }
}

/// What the builder may put in a block set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildRules {
    /// Include atomic bundles (whole) or leave every bundle out.
    pub bundles: bool,
    /// Ciphertext ids one bid names at most (the auction's `max_ciphertexts_per_bid`).
    pub max_ciphertexts: usize,
}

/// The blocks built for one rollup set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSet {
    /// One block per rollup that got at least one transaction, sorted by rollup id.
    pub blocks: Vec<RollupBlock>,
    /// Gas used per rollup of `blocks`.
    pub gas: BTreeMap<RollupId, u64>,
    /// What the builder earns from the blocks: the sum of the included fees.
    pub value: Amount,
    /// The sum of the reserves of `blocks`' rollups: the least a bid for them pays.
    pub reserve: Amount,
}

impl BlockSet {
    /// The rollups named.
    #[must_use]
    pub fn rollups(&self) -> Vec<RollupId> {
        self.blocks.iter().map(|b| b.rollup).collect()
    }

    /// Ciphertexts named over all blocks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.ciphertexts.len()).sum()
    }

    /// Whether no block holds anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// An indivisible unit: one lone transaction, or every part of a bundle.
struct Unit<'a> {
    fee: u128,
    first: TxId,
    parts: Vec<&'a PendingTx>,
}

/// Builds the blocks of `set` for `terms.slot` from `pending`.
///
/// - Only rollups of `set` that the terms know and that are active; only transactions whose
///   `expiry_slot` is not before the slot and whose id is not in `exclude`.
/// - Transactions are taken by fee (`max_fee`) descending, ties by admission order, while
///   they fit their rollup's remaining gas and the ciphertext cap; one that does not fit is
///   passed over and smaller ones are still tried.
/// - A bundle (if `rules.bundles`) is one unit worth the sum of its fees: it is taken only
///   if every part is held, usable by the rules above, in a distinct rollup of the set, and
///   every part fits its rollup's remaining gas. Otherwise no part is taken.
/// - Each block lists its transactions by fee descending (ties by admission order).
///
/// Deterministic: the same inputs give the same blocks.
#[must_use]
pub fn build_blocks(
    pending: &PendingSet,
    terms: &SlotTerms,
    set: &RollupSet,
    exclude: &HashSet<TxId>,
    rules: BuildRules,
) -> BlockSet {
    let usable = |tx: &PendingTx| {
        set.contains(tx.rollup)
            && terms.rollups.get(&tx.rollup).is_some_and(|t| t.active)
            && tx.expiry_slot >= terms.slot
            && !exclude.contains(&tx.id)
    };
    let mut units: Vec<Unit<'_>> = Vec::new();
    let mut bundles_seen: HashSet<BundleId> = HashSet::new();
    for tx in pending.iter() {
        if !usable(tx) {
            continue;
        }
        match tx.bundle {
            None => units.push(Unit { fee: tx.max_fee.0, first: tx.id, parts: vec![tx] }),
            Some(b) if rules.bundles && bundles_seen.insert(b.id) => {
                if let Some(unit) = bundle_unit(pending, b.id, b.count, &usable) {
                    units.push(unit);
                }
            }
            Some(_) => {}
        }
    }
    // Fee descending; ties by the lowest admission order, then id (ids are unique).
    units.sort_by(|a, b| {
        b.fee
            .cmp(&a.fee)
            .then_with(|| min_seq(a).cmp(&min_seq(b)))
            .then_with(|| a.first.cmp(&b.first))
    });
    let mut gas: BTreeMap<RollupId, u64> = BTreeMap::new();
    let mut chosen: BTreeMap<RollupId, Vec<&PendingTx>> = BTreeMap::new();
    let mut count = 0usize;
    let mut value: u128 = 0;
    for unit in units {
        if count + unit.parts.len() > rules.max_ciphertexts {
            continue;
        }
        let fits = unit.parts.iter().all(|p| {
            let limit = terms.rollups[&p.rollup].gas_limit;
            gas.get(&p.rollup)
                .copied()
                .unwrap_or(0)
                .checked_add(p.gas_limit)
                .is_some_and(|g| g <= limit)
        });
        if !fits {
            continue;
        }
        for p in &unit.parts {
            *gas.entry(p.rollup).or_default() += p.gas_limit;
            chosen.entry(p.rollup).or_default().push(p);
        }
        count += unit.parts.len();
        // Every fee is at most Amount::MAX (2^113) and at most 2^64 of them: no overflow.
        value = value.saturating_add(unit.fee);
    }
    let mut reserve: u128 = 0;
    let blocks = chosen
        .into_iter()
        .map(|(rollup, mut txs)| {
            reserve = reserve.saturating_add(terms.rollups[&rollup].reserve.0);
            txs.sort_by(|a, b| {
                b.max_fee.cmp(&a.max_fee).then(a.seq.cmp(&b.seq)).then(a.id.cmp(&b.id))
            });
            RollupBlock {
                rollup,
                ciphertexts: txs.iter().map(|t| t.id).collect(),
                plaintext: vec![],
            }
        })
        .collect();
    BlockSet { blocks, gas, value: Amount(value), reserve: Amount(reserve) }
}

fn min_seq(unit: &Unit<'_>) -> u64 {
    unit.parts.iter().map(|p| p.seq).min().unwrap_or(u64::MAX)
}

fn bundle_unit<'a>(
    pending: &'a PendingSet,
    id: BundleId,
    count: u16,
    usable: &impl Fn(&PendingTx) -> bool,
) -> Option<Unit<'a>> {
    let parts = pending.bundle_parts(&id)?;
    if parts.len() != usize::from(count) {
        return None;
    }
    let mut rollups = BTreeSet::new();
    let mut unit = Unit { fee: 0, first: *parts.values().next()?, parts: Vec::new() };
    for tx_id in parts.values() {
        let tx = pending.get(tx_id)?;
        if tx.bundle.map(|b| b.count) != Some(count) || !usable(tx) || !rollups.insert(tx.rollup) {
            return None;
        }
        unit.fee = unit.fee.saturating_add(tx.max_fee.0);
        unit.parts.push(tx);
    }
    Some(unit)
}
