//! Closing a slot: winners, payments, the revenue split, fallback blocks and ledger entries.
//!
//! # Objectives
//!
//! Both rules call the same solver ([`crate::wdp`]) with different weights:
//!
//! - **first-price** maximises the total of winning amounts (each sold rollup's reserve is met
//!   because intake refuses bids below the reserve total of their rollups);
//! - **VCG** treats each reserve as the rollup's own bid for itself, so it maximises the
//!   winning amounts plus the reserves of unsold rollups, which is the same as maximising the
//!   surplus `amount - reserves` of the winning bids.
//!
//! Weights are scaled by [`SCALE`] and carry the number of rollups of the bid in the low bits,
//! so among allocations of equal objective the solver prefers the one that sells more rollups
//! (a bid exactly at its reserves wins over leaving the rollups unsold). The objective itself
//! is `value / SCALE`.
//!
//! # Payments
//!
//! All bids of one signer are one bidder. Under first-price a winning builder pays the sum of
//! its winning amounts. Under VCG it pays `v_i - (W - W_{-i})`, where `v_i` is the sum of its
//! winning amounts, `W` the optimal surplus and `W_{-i}` the optimal surplus without any of
//! its bids. Exact solutions give `reserves_i <= payment <= v_i`; the payment is clamped to that
//! interval when the bounded search was not exact.
//!
//! # Collateral
//!
//! Each bid is checked against the builder's available collateral at intake, but a builder may
//! win several disjoint bids. If its winnings exceed its available collateral at close, its
//! winning bid of least weight is excluded and the allocation recomputed; after
//! [`MAX_COLLATERAL_ROUNDS`] rounds every bid of a builder still over its collateral is
//! excluded. Excluded bids are listed in the outcome.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use veil_primitives::{Amount, ChainId, PublicKeyBytes, RollupId, Slot, TxId, TxMeta};

use crate::book::StoredBid;
use crate::config::PaymentRule;
use crate::outcome::{
    BucketPayout, Contribution, FallbackBlock, LedgerEntry, Outcome, RollupPayout,
    RollupTermsRecord, Winner, WinningBid,
};
use crate::registry::RollupTerms;
use crate::split::split_payment;
use crate::wdp::{Candidate, Solver, MAX_ROLLUPS};
use crate::AuctionError;
use veil_primitives::encoding::Encoder;

/// Weights are `objective * SCALE + rollups in the bid`; `SCALE` exceeds [`MAX_ROLLUPS`].
pub const SCALE: u128 = 128;
/// Re-solves allowed to honour builders' collateral before their bids are dropped wholesale.
pub const MAX_COLLATERAL_ROUNDS: usize = 8;

/// What closing a slot needs.
#[derive(Debug, Clone, Copy)]
pub struct CloseInput<'a> {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot.
    pub slot: Slot,
    /// The payment rule.
    pub rule: PaymentRule,
    /// Node budget of the bounded search (beyond 16 rollups).
    pub node_budget: u64,
    /// The rollup terms frozen for the slot.
    pub terms: &'a RollupTerms,
    /// The live bids, sorted by id.
    pub bids: &'a [&'a StoredBid],
    /// Each builder's available collateral now (missing means zero).
    pub available: &'a HashMap<PublicKeyBytes, Amount>,
    /// The pool's pending ciphertexts (any rollup), for fallback blocks.
    pub pending: &'a [(TxId, TxMeta)],
}

/// Figures about one close, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseStats {
    /// Bids considered.
    pub bids: usize,
    /// Rollups named by at least one bid (the solver's dimension).
    pub rollups_in_play: usize,
    /// Winning builders.
    pub winners: usize,
    /// Solver runs (allocation, collateral rounds, VCG counterfactuals, contributions).
    pub solves: usize,
    /// Search nodes over all bounded searches.
    pub search_nodes: u64,
    /// Whether every solve was exact.
    pub exact: bool,
}

/// The rollups named by any of `bids`, in id order: bit `k` of a solver mask stands for the
/// `k`-th of them.
pub fn rollups_in_play<'a>(bids: impl IntoIterator<Item = &'a StoredBid>) -> Vec<RollupId> {
    bids.into_iter()
        .flat_map(|b| b.signed.message.rollups())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Closes a slot: allocation, payments, split, fallback blocks and ledger entries.
pub fn close(input: &CloseInput<'_>) -> Result<(Outcome, CloseStats), AuctionError> {
    let mut stats = CloseStats { bids: input.bids.len(), exact: true, ..CloseStats::default() };
    // Rollups in play, in id order; bit k of a mask is `in_play[k]`.
    let in_play = rollups_in_play(input.bids.iter().copied());
    let n = in_play.len();
    if n > MAX_ROLLUPS {
        return Err(AuctionError::TooManyRollups { count: n, max: MAX_ROLLUPS });
    }
    stats.rollups_in_play = n;
    let bit: HashMap<RollupId, u32> =
        in_play.iter().enumerate().map(|(k, r)| (*r, k as u32)).collect();
    let builders: Vec<PublicKeyBytes> = input
        .bids
        .iter()
        .map(|b| b.signed.message.builder)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let bidder_of = |key: &PublicKeyBytes| builders.binary_search(key).unwrap_or(0) as u32;

    let mut candidates = Vec::with_capacity(input.bids.len());
    for b in input.bids {
        let bid = &b.signed.message;
        // Intake guarantees this for books; `close` is public, so check rather than panic.
        if let Some(r) = bid.rollups().find(|r| !input.terms.contains_key(r)) {
            return Err(AuctionError::UnknownRollup(r));
        }
        let mask = bid.rollups().fold(0u64, |m, r| m | 1u64 << bit[&r]);
        let primary = match input.rule {
            PaymentRule::FirstPrice => bid.amount,
            PaymentRule::Vcg => bid
                .amount
                .checked_sub(b.reserve)
                .ok_or(AuctionError::BelowReserve { reserve: b.reserve, amount: bid.amount })?,
        };
        candidates.push(Candidate {
            mask,
            weight: scaled(primary.0, mask)?,
            bidder: bidder_of(&bid.builder),
        });
    }

    // Allocation, honouring collateral.
    let mut excluded_for_collateral = Vec::new();
    let mut round = 0;
    let allocation = loop {
        let solver = Solver::new(n, &candidates, input.node_budget);
        let allocation = solver.solve();
        stats.solves += 1;
        stats.search_nodes += allocation.nodes;
        let mut over: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (bidder, won) in group_by_bidder(&allocation.chosen, &candidates) {
            let total = won
                .iter()
                .fold(0u128, |a, &i| a.saturating_add(input.bids[i].signed.message.amount.0));
            let available =
                input.available.get(&builders[bidder as usize]).copied().unwrap_or_default();
            if total > available.0 {
                over.insert(bidder, won);
            }
        }
        if over.is_empty() {
            break allocation;
        }
        round += 1;
        for (bidder, won) in over {
            let drop: Vec<usize> = if round >= MAX_COLLATERAL_ROUNDS {
                (0..candidates.len())
                    .filter(|&i| candidates[i].bidder == bidder && candidates[i].weight > 0)
                    .collect()
            } else {
                won.iter()
                    .copied()
                    .min_by_key(|&i| (candidates[i].weight, std::cmp::Reverse(i)))
                    .into_iter()
                    .collect()
            };
            for i in drop {
                candidates[i].weight = 0;
                excluded_for_collateral.push(input.bids[i].id);
            }
        }
    };
    excluded_for_collateral.sort_unstable();
    stats.exact &= allocation.exact;
    let welfare = allocation.value / SCALE;
    let winners_by_bidder = group_by_bidder(&allocation.chosen, &candidates);
    stats.winners = winners_by_bidder.len();

    // Payments (VCG counterfactuals in parallel).
    let solver = Solver::new(n, &candidates, input.node_budget);
    let per_winner: Vec<(u32, Vec<usize>)> = winners_by_bidder.into_iter().collect();
    let counterfactuals: Vec<Option<(u128, bool, u64)>> = match input.rule {
        PaymentRule::FirstPrice => vec![None; per_winner.len()],
        PaymentRule::Vcg => per_winner
            .par_iter()
            .map(|(bidder, _)| {
                let a = solver.solve_without(Some(*bidder));
                Some((a.value / SCALE, a.exact, a.nodes))
            })
            .collect(),
    };

    let mut winners = Vec::with_capacity(per_winner.len());
    let mut payouts = Vec::new();
    let mut ledger = Vec::new();
    let mut sold: BTreeSet<RollupId> = BTreeSet::new();
    for ((bidder, won), counterfactual) in per_winner.iter().zip(counterfactuals) {
        let builder = builders[*bidder as usize];
        let value = won.iter().try_fold(Amount::ZERO, |a, &i| {
            a.checked_add(input.bids[i].signed.message.amount)
                .ok_or(AuctionError::Overflow("winner value"))
        })?;
        let reserves = won.iter().try_fold(Amount::ZERO, |a, &i| {
            a.checked_add(input.bids[i].reserve).ok_or(AuctionError::Overflow("winner reserves"))
        })?;
        let (payment, welfare_without) = match counterfactual {
            None => (value, None),
            Some((without, exact, nodes)) => {
                stats.solves += 1;
                stats.search_nodes += nodes;
                stats.exact &= exact;
                let harm = welfare.saturating_sub(without);
                let p = Amount(value.0.saturating_sub(harm)).max(reserves).min(value);
                (p, Some(Amount(without)))
            }
        };
        let union = won.iter().fold(0u64, |m, &i| m | candidates[i].mask);
        let (own_value, contributions, exact) =
            contributions(n, union, *bidder, &candidates, input.bids, input.node_budget, &in_play);
        stats.solves += 1 + contributions.len();
        stats.exact &= exact;
        let rollups: Vec<(RollupId, &crate::registry::RollupConfig, Amount)> = contributions
            .iter()
            .map(|c| (c.rollup, &input.terms[&c.rollup], c.contribution))
            .collect();
        for share in split_payment(payment, &rollups)? {
            sold.insert(share.rollup);
            let policy = &input.terms[&share.rollup].policy;
            let buckets: Vec<BucketPayout> = policy
                .buckets()
                .iter()
                .zip(&share.buckets)
                .map(|(b, amount)| BucketPayout {
                    bucket: b.name.clone(),
                    account: b.account,
                    amount: *amount,
                })
                .collect();
            payouts.push(RollupPayout {
                rollup: share.rollup,
                builder,
                reserve: share.reserve,
                share: share.share,
                buckets,
            });
        }
        ledger.push(LedgerEntry::Debit { slot: input.slot, builder, amount: payment });
        let mut bids: Vec<WinningBid> = won
            .iter()
            .map(|&i| WinningBid { id: input.bids[i].id, signed: input.bids[i].signed.clone() })
            .collect();
        bids.sort_by_key(|b| b.id);
        winners.push(Winner {
            builder,
            bids,
            value,
            payment,
            welfare_without,
            own_value: Amount(own_value),
            contributions,
        });
    }
    payouts.sort_by_key(|p| p.rollup);
    for p in &payouts {
        for b in &p.buckets {
            if b.amount.0 > 0 {
                ledger.push(LedgerEntry::Payout {
                    slot: input.slot,
                    rollup: p.rollup,
                    bucket: b.bucket.clone(),
                    account: b.account,
                    amount: b.amount,
                });
            }
        }
    }

    let fallback = fallback_blocks(input.slot, input.terms, &sold, input.pending);
    let mut digest = Encoder::default();
    for b in input.bids {
        digest.fixed(&b.id.0);
    }
    let outcome = Outcome {
        chain_id: input.chain_id,
        slot: input.slot,
        rule: input.rule,
        exact: stats.exact,
        bids_considered: u32::try_from(input.bids.len()).unwrap_or(u32::MAX),
        bids_digest: digest.digest(),
        terms: input
            .terms
            .iter()
            .filter(|(_, c)| c.active)
            .map(|(r, c)| RollupTermsRecord { rollup: *r, config: c.clone() })
            .collect(),
        welfare: Amount(welfare),
        excluded_for_collateral,
        winners,
        payouts,
        fallback,
        ledger,
    };
    Ok((outcome, stats))
}

/// `primary * SCALE + popcount(mask)`, or an overflow error.
fn scaled(primary: u128, mask: u64) -> Result<u128, AuctionError> {
    primary
        .checked_mul(SCALE)
        .and_then(|w| w.checked_add(u128::from(mask.count_ones())))
        .ok_or(AuctionError::Overflow("bid weight"))
}

fn group_by_bidder(chosen: &[usize], candidates: &[Candidate]) -> BTreeMap<u32, Vec<usize>> {
    let mut out: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &i in chosen {
        out.entry(candidates[i].bidder).or_default().push(i);
    }
    out
}

/// The winner's own value over its won rollups `union`, and each rollup's clipped marginal
/// contribution to it, from the bidder's own live bids inside `union` (surplus weights).
fn contributions(
    n: usize,
    union: u64,
    bidder: u32,
    candidates: &[Candidate],
    bids: &[&StoredBid],
    node_budget: u64,
    in_play: &[RollupId],
) -> (u128, Vec<Contribution>, bool) {
    // Compress the union's bits to 0..k.
    let bits: Vec<usize> = (0..n).filter(|&b| union >> b & 1 == 1).collect();
    let compress = |mask: u64| -> u64 {
        bits.iter().enumerate().fold(0u64, |m, (k, &b)| m | (mask >> b & 1) << k)
    };
    let own: Vec<Candidate> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.bidder == bidder && c.weight > 0 && c.mask & !union == 0)
        .map(|(i, c)| {
            let bid = &bids[i];
            let surplus = bid.signed.message.amount.0.saturating_sub(bid.reserve.0);
            Candidate { mask: compress(c.mask), weight: surplus, bidder: 0 }
        })
        .collect();
    let k = bits.len();
    let all = Solver::new(k, &own, node_budget).solve();
    let mut exact = all.exact;
    let mut out = Vec::with_capacity(k);
    for (j, &b) in bits.iter().enumerate() {
        let without: Vec<Candidate> =
            own.iter().copied().filter(|c| c.mask >> j & 1 == 0).collect();
        let a = Solver::new(k, &without, node_budget).solve();
        exact &= a.exact;
        out.push(Contribution {
            rollup: in_play[b],
            value_without: Amount(a.value),
            contribution: Amount(all.value.saturating_sub(a.value)),
        });
    }
    (all.value, out, exact)
}

/// Fee-ordered blocks for active rollups that were not sold. Bundle parts are left out (a
/// bundle needs every part, which only a builder's bid can guarantee).
fn fallback_blocks(
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
