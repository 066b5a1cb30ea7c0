//! Closing a slot: winners, payments, the revenue split, fallback blocks and ledger entries.
//!
//! # The pipeline
//!
//! [`close`] runs six steps, each in its own module with its contract:
//!
//! 1. **book** (`allocation::ClosingBook`): the rollups in play, one bidder per signer, one
//!    solver candidate per bid weighted by the payment rule's objective;
//! 2. **allocate** (`allocation::allocate`): winner determination, re-solved while a winner's
//!    winnings exceed its collateral;
//! 3. **price** (`pricing::PricingRule`, one type per rule: `FirstPrice`, `Vcg`): what each
//!    winner pays;
//! 4. **split** (`revenue::split_revenue`): each payment over the won rollups by clipped
//!    marginal contribution, then over each rollup's buckets ([`crate::split`]);
//! 5. **fallback** (`fallback::fallback_blocks`): fee-ordered blocks for the unsold rollups;
//! 6. **record** (`record::record`): the [`Outcome`] with its ledger entries and bid digest.
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
//! # Ties
//!
//! Among allocations of equal objective that sell as many rollups, the winners are those
//! with the **lexicographically smallest sorted list of winning bid ids** ([`crate::BidId`],
//! compared as bytes). The solver returns the least optimum by candidate index, and
//! candidates are in bid id order. A bid that loses cannot change which optimum this is (see
//! [`crate::wdp`]). The rule is the same in every solve: the allocation, each collateral
//! round and the VCG counterfactuals (where only the value is used).
//!
//! # Payments
//!
//! All bids of one signer are one bidder. Under first-price a winning builder pays the sum of
//! its winning amounts. Under VCG it pays `v_i - (W - W_{-i})`, where `v_i` is the sum of its
//! winning amounts, `W` the optimal surplus and `W_{-i}` the optimal surplus without any of
//! its bids (both over the bids left after the collateral rounds). The payment is then always
//! clamped to `[reserves_i, v_i]`. With exact solves the clamp never binds (`W >= W_{-i}`,
//! and `W - W_{-i}` is at most the surplus `v_i - reserves_i` of the winner's own bids); only
//! an inexact bounded search can make it bind.
//!
//! # Split
//!
//! A winner's payment is split over the union `U` of the rollups it won. `W(T)`, for
//! `T ⊆ U`, is the best total surplus (`amount - reserves`, unscaled, under both rules) of
//! pairwise disjoint bids *of the winning signer* whose rollups all lie in `T`. The bids that
//! count are all of its bids in the book, winning or losing, except those excluded for
//! collateral. Rollup `r`'s contribution is `W(U) - W(U \ {r})`, clipped at zero. The clip
//! never binds when the solves are exact, because `W(T)` cannot fall as `T` grows (a packing
//! inside `U \ {r}` is one inside `U`). It can only bind after an inexact bounded search,
//! which needs a union of more than 16 rollups. The outcome records `W(U)` as `own_value` and
//! each `W(U \ {r})` as `value_without`.
//!
//! # Ledger
//!
//! One [`crate::LedgerEntry::Debit`] per winner, in builder key order, even when the payment
//! is zero. Then one [`crate::LedgerEntry::Payout`] per bucket of positive amount, in rollup id
//! then bucket name order. Buckets of amount zero are listed in the outcome's
//! [`crate::RollupPayout::buckets`] but write no ledger entry.
//!
//! # Collateral
//!
//! Each bid is checked against the builder's available collateral at intake, but a builder may
//! win several disjoint bids. If its winning amounts exceed its available collateral at close,
//! its winning bid of least weight (ties to the higher bid id) is excluded and the allocation
//! recomputed. From round [`MAX_COLLATERAL_ROUNDS`] on, every bid of a builder still over its
//! collateral is excluded. Excluded bids are listed in the outcome, and every later step
//! ignores them.

use std::collections::{BTreeSet, HashMap};

use veil_primitives::{Amount, ChainId, PublicKeyBytes, RollupId, Slot, TxId, TxMeta};

use crate::book::StoredBid;
use crate::config::PaymentRule;
use crate::outcome::Outcome;
use crate::registry::RollupTerms;
use crate::wdp::Allocation;
use crate::AuctionError;

mod allocation;
mod fallback;
mod pricing;
mod record;
mod revenue;

use allocation::{allocate, ClosingBook};
use fallback::fallback_blocks;
use pricing::{FirstPrice, PricingRule, Vcg};
use record::{record, Decided};
use revenue::{split_revenue, WinnerSplit};

/// Weights are `objective * SCALE + rollups in the bid`; `SCALE` exceeds [`crate::wdp::MAX_ROLLUPS`].
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
    /// The live bids, sorted by id (strictly): ties between optimal allocations go to the
    /// smallest sorted list of winning positions in this slice, which is the smallest list of
    /// winning bid ids only in this order. [`close`] checks it in debug builds.
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

impl CloseStats {
    fn absorb(&mut self, effort: SolveEffort) {
        self.solves += effort.solves;
        self.search_nodes += effort.search_nodes;
        self.exact &= effort.exact;
    }
}

/// Solver work done by one step of a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SolveEffort {
    /// Solver runs.
    pub(crate) solves: usize,
    /// Search nodes counted for them.
    pub(crate) search_nodes: u64,
    /// Whether every run was exact.
    pub(crate) exact: bool,
}

impl Default for SolveEffort {
    fn default() -> Self {
        SolveEffort { solves: 0, search_nodes: 0, exact: true }
    }
}

impl SolveEffort {
    /// Counts one solver run.
    pub(crate) fn add(&mut self, allocation: &Allocation) {
        self.solves += 1;
        self.search_nodes += allocation.nodes;
        self.exact &= allocation.exact;
    }
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
///
/// Deterministic: the same input gives the same outcome, byte for byte. Fails with
/// [`AuctionError::TooManyRollups`] beyond [`crate::wdp::MAX_ROLLUPS`] rollups in play,
/// [`AuctionError::UnknownRollup`] for a bid on a rollup without terms,
/// [`AuctionError::BelowReserve`] for a bid below its reserves (VCG) or a payment below the
/// reserves it must cover, and [`AuctionError::Overflow`] when an amount does not fit.
pub fn close(input: &CloseInput<'_>) -> Result<(Outcome, CloseStats), AuctionError> {
    debug_assert!(
        input.bids.windows(2).all(|w| w[0].id < w[1].id),
        "close needs the bids sorted by id"
    );
    match input.rule {
        PaymentRule::FirstPrice => close_under(input, &FirstPrice),
        PaymentRule::Vcg => close_under(input, &Vcg),
    }
}

/// [`close`] under one payment rule: the pipeline.
fn close_under<R: PricingRule>(
    input: &CloseInput<'_>,
    rule: &R,
) -> Result<(Outcome, CloseStats), AuctionError> {
    let mut stats = CloseStats { bids: input.bids.len(), exact: true, ..CloseStats::default() };
    // 1. The book as the solver sees it: rollups in play, bidders, weights under the rule.
    let mut book = ClosingBook::new(input.bids, input.terms, rule)?;
    stats.rollups_in_play = book.rollups();
    // 2. Winners, honouring collateral.
    let allocated = allocate(&mut book, input.available, input.node_budget);
    stats.absorb(allocated.effort);
    stats.winners = allocated.winners.len();
    // 3. What each winner pays.
    let (prices, effort) = rule.prices(&book, &allocated, input.node_budget)?;
    stats.absorb(effort);
    // 4. How each payment is split over rollups and buckets.
    let (splits, effort) =
        split_revenue(&book, &allocated, &prices, input.terms, input.node_budget)?;
    stats.absorb(effort);
    // 5. Blocks for the rollups nobody bought.
    let fallback = fallback_blocks(input.slot, input.terms, &sold(&splits), input.pending);
    // 6. The record: winners, payouts, ledger, digest.
    let decided =
        Decided { rule: R::RULE, exact: stats.exact, allocated, prices, splits, fallback };
    Ok((record(input, &book, decided), stats))
}

/// The rollups some winner bought.
fn sold(splits: &[WinnerSplit]) -> BTreeSet<RollupId> {
    splits.iter().flat_map(|s| &s.payouts).map(|p| p.rollup).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bid::{Bid, BidId, RollupBlock, SignedBid};
    use veil_primitives::encoding::sha3_256;
    use veil_primitives::signed::{SignatureBytes, SignedMessage};

    use crate::registry::{RevenuePolicy, RollupConfig};

    fn stored(builder: u8, rollups: &[u32], amount: u128) -> StoredBid {
        let bid = Bid {
            chain_id: ChainId(5),
            slot: Slot(1),
            builder: PublicKeyBytes([builder; 32]),
            sequence: 1,
            amount: Amount(amount),
            blocks: rollups
                .iter()
                .map(|&r| RollupBlock {
                    rollup: RollupId(r),
                    ciphertexts: vec![],
                    plaintext: vec![],
                })
                .collect(),
        };
        StoredBid {
            id: BidId(sha3_256(&bid.signing_bytes())),
            signed: SignedBid { message: bid, signature: SignatureBytes([0; 64]) },
            reserve: Amount::ZERO,
        }
    }

    fn close_book(bids: &mut [StoredBid], rule: PaymentRule) -> Outcome {
        let terms: RollupTerms = [2, 26, 38]
            .into_iter()
            .map(|r| {
                let policy =
                    RevenuePolicy::standard(10_000, 0, 0, PublicKeyBytes([9; 32])).unwrap();
                let config =
                    RollupConfig { reserve: Amount::ZERO, gas_limit: 1, policy, active: true };
                (RollupId(r), config)
            })
            .collect();
        bids.sort_by_key(|b| b.id);
        let refs: Vec<&StoredBid> = bids.iter().collect();
        let available = bids.iter().map(|b| (b.signed.message.builder, Amount(1_000))).collect();
        let input = CloseInput {
            chain_id: ChainId(5),
            slot: Slot(1),
            rule,
            node_budget: 1_000,
            terms: &terms,
            bids: &refs,
            available: &available,
            pending: &[],
        };
        close(&input).unwrap().0
    }

    fn winning_ids(o: &Outcome) -> Vec<BidId> {
        let mut ids: Vec<BidId> =
            o.winners.iter().flat_map(|w| w.bids.iter().map(|b| b.id)).collect();
        ids.sort_unstable();
        ids
    }

    /// Builder 0 bids 9 on {2, 26, 38}; builders 1 and 2 bid 4 on {26} and 5 on {2, 38}. Both
    /// allocations are worth 9 and sell three rollups. A losing sock-puppet bid of 3 on {38}
    /// used to flip the choice (and rollup 38's share between 2 and 3); the smallest sorted
    /// list of winning ids does not depend on it.
    #[test]
    fn a_losing_bid_does_not_move_a_tie() {
        let book = vec![stored(1, &[26], 4), stored(0, &[2, 26, 38], 9), stored(2, &[2, 38], 5)];
        let alone = [book[1].id];
        let mut pair = [book[0].id, book[2].id];
        pair.sort_unstable();
        let least = alone.to_vec().min(pair.to_vec());
        for rule in [PaymentRule::FirstPrice, PaymentRule::Vcg] {
            let before = close_book(&mut book.clone(), rule);
            let mut with_puppet = book.clone();
            with_puppet.push(stored(3, &[38], 3));
            let after = close_book(&mut with_puppet, rule);
            assert_eq!(before.welfare, Amount(9));
            assert_eq!(winning_ids(&before), least);
            assert_eq!(winning_ids(&after), least);
            let share =
                |o: &Outcome| o.payouts.iter().find(|p| p.rollup == RollupId(38)).map(|p| p.share);
            assert_eq!(share(&before), share(&after));
            assert_eq!(before.payouts, after.payouts);
        }
    }
}
