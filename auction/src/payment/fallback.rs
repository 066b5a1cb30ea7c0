//! Step 5 of a close: blocks for the active rollups nobody bought.

use std::collections::{BTreeMap, BTreeSet};

use veil_primitives::{RollupId, Slot, TxId, TxMeta};

use crate::outcome::FallbackBlock;
use crate::registry::RollupTerms;

/// One block per active rollup not in `sold`, in rollup id order: its pending ciphertexts
/// that are unexpired at `slot` and not part of a bundle, highest max fee first (ties by id,
/// duplicates dropped), taken greedily while their gas fits the rollup's gas limit.
///
/// Bundle parts are left out: a bundle needs every part, which only a builder's bid can
/// guarantee.
pub(crate) fn fallback_blocks(
    slot: Slot,
    terms: &RollupTerms,
    sold: &BTreeSet<RollupId>,
    pending: &[(TxId, TxMeta)],
) -> Vec<FallbackBlock> {
    let mut by_rollup: BTreeMap<RollupId, Vec<(TxId, TxMeta)>> = BTreeMap::new();
    for (id, meta) in pending {
        if meta.bundle.is_none() && meta.expiry_slot >= slot && !sold.contains(&meta.rollup) {
            by_rollup.entry(meta.rollup).or_default().push((*id, *meta));
        }
    }
    terms
        .iter()
        .filter(|(r, c)| c.active && !sold.contains(r))
        .map(|(rollup, config)| {
            let mut txs = by_rollup.remove(rollup).unwrap_or_default();
            txs.sort_by(|a, b| b.1.max_fee.cmp(&a.1.max_fee).then(a.0.cmp(&b.0)));
            txs.dedup_by_key(|t| t.0);
            let mut gas_used = 0u64;
            let mut ciphertexts = Vec::new();
            for (id, meta) in txs {
                if let Some(g) = gas_used.checked_add(meta.gas_limit) {
                    if g <= config.gas_limit {
                        gas_used = g;
                        ciphertexts.push(id);
                    }
                }
            }
            FallbackBlock { rollup: *rollup, ciphertexts, gas_used }
        })
        .collect()
}
