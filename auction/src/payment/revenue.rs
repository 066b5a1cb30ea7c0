//! Step 4 of a close: the split of each winner's payment over the rollups it won, by clipped
//! marginal contribution, then over each rollup's buckets (arithmetic in [`crate::split`]).

use veil_primitives::{Amount, RollupId};

use super::allocation::{Allocated, ClosingBook};
use super::pricing::Price;
use super::SolveEffort;
use crate::outcome::{BucketPayout, Contribution, RollupPayout};
use crate::registry::{RollupConfig, RollupTerms};
use crate::split::split_payment;
use crate::wdp::{Candidate, Solver};
use crate::AuctionError;

/// One winner's split.
#[derive(Debug, Clone)]
pub(crate) struct WinnerSplit {
    /// `W(U)`: the best surplus of its own bids within the rollups `U` it won.
    pub(crate) own_value: Amount,
    /// Per won rollup, in id order: `W(U \ {r})` and the clipped marginal contribution.
    pub(crate) contributions: Vec<Contribution>,
    /// Per won rollup, in id order: its reserve, share and bucket payouts (zero buckets
    /// included).
    pub(crate) payouts: Vec<RollupPayout>,
}

/// Splits every winner's payment (winners and prices in the same order).
///
/// For a winner who won the rollups `U`, `W(T)` for `T ⊆ U` is the best total surplus
/// (`amount - reserves`, unscaled, whatever the payment rule) of disjoint bids of that winner
/// lying inside `T`, over its bids still live at weight above zero in `book`: bids excluded
/// for collateral do not count, its losing bids inside `U` do. Each rollup `r ∈ U` contributes
/// `W(U) - W(U \ {r})` (saturating at zero), and [`split_payment`] turns the payment into
/// reserves plus shares of the surplus. Fails as [`split_payment`] does.
pub(crate) fn split_revenue(
    book: &ClosingBook<'_>,
    allocated: &Allocated,
    prices: &[Price],
    terms: &RollupTerms,
    node_budget: u64,
) -> Result<(Vec<WinnerSplit>, SolveEffort), AuctionError> {
    let mut effort = SolveEffort::default();
    let mut splits = Vec::with_capacity(prices.len());
    for ((bidder, won), price) in allocated.winners.iter().zip(prices) {
        let builder = book.builders[*bidder as usize];
        let union = won.iter().fold(0u64, |m, &i| m | book.candidates[i].mask);
        let (own_value, contributions, exact) = contributions(book, union, *bidder, node_budget);
        effort.solves += 1 + contributions.len();
        effort.exact &= exact;
        let rollups: Vec<(RollupId, &RollupConfig, Amount)> =
            contributions.iter().map(|c| (c.rollup, &terms[&c.rollup], c.contribution)).collect();
        let payouts = split_payment(price.payment, &rollups)?
            .into_iter()
            .map(|share| {
                let policy = &terms[&share.rollup].policy;
                let buckets = policy
                    .buckets()
                    .iter()
                    .zip(&share.buckets)
                    .map(|(b, amount)| BucketPayout {
                        bucket: b.name.clone(),
                        account: b.account,
                        amount: *amount,
                    })
                    .collect();
                RollupPayout {
                    rollup: share.rollup,
                    builder,
                    reserve: share.reserve,
                    share: share.share,
                    buckets,
                }
            })
            .collect();
        splits.push(WinnerSplit { own_value: Amount(own_value), contributions, payouts });
    }
    Ok((splits, effort))
}

/// `W(U)` over the rollups `union` won by `bidder`, and each rollup's `W(U \ {r})` and
/// clipped marginal contribution, with whether every solve was exact. See [`split_revenue`].
fn contributions(
    book: &ClosingBook<'_>,
    union: u64,
    bidder: u32,
    node_budget: u64,
) -> (u128, Vec<Contribution>, bool) {
    // Compress the union's bits to 0..k.
    let bits: Vec<usize> = (0..book.rollups()).filter(|&b| union >> b & 1 == 1).collect();
    let compress = |mask: u64| -> u64 {
        bits.iter().enumerate().fold(0u64, |m, (k, &b)| m | (mask >> b & 1) << k)
    };
    let own: Vec<Candidate> = book
        .candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.bidder == bidder && c.weight > 0 && c.mask & !union == 0)
        .map(|(i, c)| {
            let bid = &book.bids[i];
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
            rollup: book.in_play[b],
            value_without: Amount(a.value),
            contribution: Amount(all.value.saturating_sub(a.value)),
        });
    }
    (all.value, out, exact)
}
