//! Step 5 of a close: blocks for the active rollups nobody bought.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use veil_primitives::{Amount, BundleId, RollupId, Slot, TxId, TxMeta};

use crate::outcome::FallbackBlock;
use crate::registry::RollupTerms;

/// A lone transaction or a whole bundle: what the fallback takes or leaves as one.
struct Unit {
    /// The lowest max fee among its parts.
    fee: Amount,
    /// Its smallest id (the tie-break).
    key: TxId,
    parts: Vec<(TxId, TxMeta)>,
}

/// One block per active rollup not in `sold`, in rollup id order, filled from the pending
/// ciphertexts that are unexpired at `slot`, by units: a lone transaction, or an atomic
/// bundle whose every part is pending and for an active, unsold rollup. Units are taken
/// highest fee first (a bundle's fee is its lowest part's max fee; ties by smallest id,
/// duplicates dropped), greedily, when every part fits its rollup's remaining gas. A bundle
/// is therefore either whole in the fallback blocks of all the rollups it touches, or absent
/// from all of them.
pub(crate) fn fallback_blocks(
    slot: Slot,
    terms: &RollupTerms,
    sold: &BTreeSet<RollupId>,
    pending: &[(TxId, TxMeta)],
) -> Vec<FallbackBlock> {
    let open = |r: &RollupId| !sold.contains(r) && terms.get(r).is_some_and(|c| c.active);
    let mut seen: HashSet<TxId> = HashSet::new();
    let mut units: Vec<Unit> = Vec::new();
    let mut bundles: HashMap<BundleId, Vec<(TxId, TxMeta)>> = HashMap::new();
    for (id, meta) in pending {
        if !seen.insert(*id) {
            continue;
        }
        match meta.bundle {
            None if meta.expiry_slot >= slot && open(&meta.rollup) => {
                units.push(Unit { fee: meta.max_fee, key: *id, parts: vec![(*id, *meta)] });
            }
            None => {}
            Some(b) => bundles.entry(b.id).or_default().push((*id, *meta)),
        }
    }
    for (_, mut parts) in bundles {
        let count = parts[0].1.bundle.map_or(0, |b| usize::from(b.count));
        let indexes: BTreeSet<u16> =
            parts.iter().filter_map(|p| p.1.bundle).map(|b| b.index).collect();
        let rollups: BTreeSet<RollupId> = parts.iter().map(|p| p.1.rollup).collect();
        let whole = parts.len() == count
            && indexes.len() == count
            && rollups.len() == count
            && parts.iter().all(|(_, m)| {
                m.expiry_slot >= slot
                    && open(&m.rollup)
                    && m.bundle.is_some_and(|b| usize::from(b.count) == count)
            });
        if whole {
            parts.sort_by_key(|p| p.1.bundle.map_or(0, |b| b.index));
            let fee = parts.iter().map(|p| p.1.max_fee).min().unwrap_or(Amount::ZERO);
            let key = parts.iter().map(|p| p.0).min().unwrap_or_default();
            units.push(Unit { fee, key, parts });
        }
    }
    units.sort_by(|a, b| b.fee.cmp(&a.fee).then(a.key.cmp(&b.key)));
    let mut gas: BTreeMap<RollupId, u64> = BTreeMap::new();
    let mut blocks: BTreeMap<RollupId, Vec<TxId>> = BTreeMap::new();
    for unit in units {
        let fits = unit.parts.iter().all(|(_, m)| {
            let used = gas.get(&m.rollup).copied().unwrap_or(0);
            used.checked_add(m.gas_limit).is_some_and(|g| g <= terms[&m.rollup].gas_limit)
        });
        if fits {
            for (id, m) in unit.parts {
                *gas.entry(m.rollup).or_default() += m.gas_limit;
                blocks.entry(m.rollup).or_default().push(id);
            }
        }
    }
    terms
        .iter()
        .filter(|(r, c)| c.active && !sold.contains(r))
        .map(|(rollup, _)| FallbackBlock {
            rollup: *rollup,
            ciphertexts: blocks.remove(rollup).unwrap_or_default(),
            gas_used: gas.get(rollup).copied().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use veil_primitives::{BundleRef, ChainId, Eon, PublicKeyBytes};

    use super::*;
    use crate::registry::{RevenuePolicy, RollupConfig};

    fn terms(rollups: &[u32], gas_limit: u64) -> RollupTerms {
        rollups
            .iter()
            .map(|r| {
                let config = RollupConfig {
                    reserve: Amount(0),
                    gas_limit,
                    policy: RevenuePolicy::standard(8_000, 1_500, 500, PublicKeyBytes([1; 32]))
                        .unwrap(),
                    active: true,
                };
                (RollupId(*r), config)
            })
            .collect()
    }

    fn tx(n: u8, rollup: u32, fee: u128, bundle: Option<(u8, u16, u16)>) -> (TxId, TxMeta) {
        let meta = TxMeta {
            chain_id: ChainId(1),
            eon: Eon(1),
            rollup: RollupId(rollup),
            fee_payer: PublicKeyBytes([0; 32]),
            max_fee: Amount(fee),
            gas_limit: 10,
            expiry_slot: Slot(9),
            bundle: bundle.map(|(id, index, count)| BundleRef {
                id: BundleId([id; 32]),
                index,
                count,
            }),
        };
        (TxId([n; 32]), meta)
    }

    #[test]
    fn bundles_are_whole_in_every_rollup_or_absent() {
        let t = terms(&[1, 2, 3], 20);
        let pending = vec![
            tx(1, 1, 50, Some((7, 0, 2))),
            tx(2, 2, 40, Some((7, 1, 2))),
            tx(3, 1, 45, None),
            tx(4, 2, 5, None),
            // An incomplete bundle: one part of two.
            tx(5, 3, 99, Some((8, 0, 2))),
        ];
        let blocks = fallback_blocks(Slot(1), &t, &BTreeSet::new(), &pending);
        let ids =
            |r: u32| blocks.iter().find(|b| b.rollup == RollupId(r)).unwrap().ciphertexts.clone();
        // Unit fees: lone 3 (45), bundle 7 (40), lone 4 (5). Both legs of bundle 7 go in.
        assert_eq!(ids(1), vec![TxId([3; 32]), TxId([1; 32])]);
        assert_eq!(ids(2), vec![TxId([2; 32]), TxId([4; 32])]);
        assert!(ids(3).is_empty(), "an incomplete bundle is left out");
        // When one leg's rollup is sold, the bundle is left out of the other rollup too.
        let sold: BTreeSet<RollupId> = [RollupId(2)].into_iter().collect();
        let blocks = fallback_blocks(Slot(1), &t, &sold, &pending);
        let r1 = &blocks.iter().find(|b| b.rollup == RollupId(1)).unwrap().ciphertexts;
        assert_eq!(r1, &vec![TxId([3; 32])]);
        // When a leg does not fit its rollup's gas, the whole bundle is left out.
        let tight = terms(&[1, 2, 3], 10);
        let blocks = fallback_blocks(Slot(1), &tight, &BTreeSet::new(), &pending);
        let all: Vec<TxId> = blocks.iter().flat_map(|b| b.ciphertexts.clone()).collect();
        assert_eq!(all, vec![TxId([3; 32]), TxId([4; 32])]);
    }
}
