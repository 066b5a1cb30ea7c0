//! Step 6 of a close: the outcome record, its ledger entries and the digest of the bids.

use veil_primitives::Amount;

use super::allocation::{Allocated, ClosingBook};
use super::pricing::Price;
use super::revenue::WinnerSplit;
use super::CloseInput;
use crate::config::PaymentRule;
use crate::outcome::{FallbackBlock, LedgerEntry, Outcome, RollupTermsRecord, Winner, WinningBid};
use veil_primitives::encoding::Encoder;

/// What the earlier steps of a close decided.
#[derive(Debug)]
pub(crate) struct Decided {
    /// The payment rule applied.
    pub(crate) rule: PaymentRule,
    /// Whether every solve was exact.
    pub(crate) exact: bool,
    /// The winners.
    pub(crate) allocated: Allocated,
    /// Their prices, in the same order.
    pub(crate) prices: Vec<Price>,
    /// Their splits, in the same order.
    pub(crate) splits: Vec<WinnerSplit>,
    /// The blocks of the unsold rollups.
    pub(crate) fallback: Vec<FallbackBlock>,
}

/// Assembles the [`Outcome`] of a close from what its steps decided.
///
/// - `winners`: each with its winning bids sorted by id;
/// - `payouts`: every winner's rollup payouts, sorted by rollup id, zero buckets included;
/// - `ledger`: one debit per winner (in winner order, even a zero payment), then one payout
///   entry per bucket of positive amount, in rollup then bucket order; zero-amount buckets
///   appear in `payouts` but produce no ledger entry;
/// - `bids_digest`: sha3-256 over the ids of every bid considered, in the given (id) order;
/// - `terms`: the active rollups' terms.
pub(crate) fn record(input: &CloseInput<'_>, book: &ClosingBook<'_>, decided: Decided) -> Outcome {
    let Decided { rule, exact, allocated, prices, splits, fallback } = decided;
    let mut winners = Vec::with_capacity(prices.len());
    let mut payouts = Vec::new();
    let mut ledger = Vec::new();
    for (((bidder, won), price), split) in allocated.winners.iter().zip(prices).zip(splits) {
        let builder = book.builders[*bidder as usize];
        ledger.push(LedgerEntry::Debit { slot: input.slot, builder, amount: price.payment });
        payouts.extend(split.payouts);
        let mut bids: Vec<WinningBid> = won
            .iter()
            .map(|&i| WinningBid { id: book.bids[i].id, signed: book.bids[i].signed.clone() })
            .collect();
        bids.sort_by_key(|b| b.id);
        winners.push(Winner {
            builder,
            bids,
            value: price.value,
            payment: price.payment,
            welfare_without: price.welfare_without,
            own_value: split.own_value,
            contributions: split.contributions,
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
    let mut digest = Encoder::default();
    for b in input.bids {
        digest.fixed(&b.id.0);
    }
    Outcome {
        chain_id: input.chain_id,
        slot: input.slot,
        rule,
        exact,
        bids_considered: u32::try_from(input.bids.len()).unwrap_or(u32::MAX),
        bids_digest: digest.digest(),
        terms: input
            .terms
            .iter()
            .filter(|(_, c)| c.active)
            .map(|(r, c)| RollupTermsRecord { rollup: *r, config: c.clone() })
            .collect(),
        welfare: Amount(allocated.welfare),
        excluded_for_collateral: allocated.excluded_for_collateral,
        winners,
        payouts,
        fallback,
        ledger,
    }
}
