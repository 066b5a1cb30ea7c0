//! Step 3 of a close: what each winning builder pays. One type per payment rule, each
//! implementing [`PricingRule`]: the objective the solver maximises and the price it implies.

use rayon::prelude::*;
use veil_primitives::Amount;

use super::allocation::{Allocated, ClosingBook};
use super::{SolveEffort, SCALE};
use crate::book::StoredBid;
use crate::config::PaymentRule;
use crate::AuctionError;

/// What one winning builder pays, and the figures the outcome records about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Price {
    /// `v_i`: the sum of its winning amounts.
    pub(crate) value: Amount,
    /// The sum of the reserves of its winning bids.
    pub(crate) reserves: Amount,
    /// What it pays.
    pub(crate) payment: Amount,
    /// VCG only: `W_{-i}`, the optimal objective without any of its bids.
    pub(crate) welfare_without: Option<Amount>,
}

/// A payment rule: the objective of winner determination and the payments it implies.
pub(crate) trait PricingRule: Sync {
    /// The rule as configured and recorded in outcomes.
    const RULE: PaymentRule;

    /// The unscaled objective of one bid, which the solver maximises over disjoint bids.
    ///
    /// Fails if the bid cannot be priced under this rule.
    fn objective(&self, bid: &StoredBid) -> Result<u128, AuctionError>;

    /// One [`Price`] per winner of `allocated`, in the same order, and the solver effort
    /// spent on them.
    ///
    /// Fails with [`AuctionError::Overflow`] if a winner's value or reserves do not fit.
    fn prices(
        &self,
        book: &ClosingBook<'_>,
        allocated: &Allocated,
        node_budget: u64,
    ) -> Result<(Vec<Price>, SolveEffort), AuctionError>;
}

/// First-price: the objective is the bid amount; a winner pays the sum of its winning amounts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FirstPrice;

impl PricingRule for FirstPrice {
    const RULE: PaymentRule = PaymentRule::FirstPrice;

    /// The amount: intake refuses bids below the reserve total of their rollups, so every
    /// sold rollup's reserve is met.
    fn objective(&self, bid: &StoredBid) -> Result<u128, AuctionError> {
        Ok(bid.signed.message.amount.0)
    }

    fn prices(
        &self,
        book: &ClosingBook<'_>,
        allocated: &Allocated,
        _node_budget: u64,
    ) -> Result<(Vec<Price>, SolveEffort), AuctionError> {
        let prices = allocated
            .winners
            .iter()
            .map(|(_, won)| {
                let (value, reserves) = value_and_reserves(book, won)?;
                Ok(Price { value, reserves, payment: value, welfare_without: None })
            })
            .collect::<Result<_, AuctionError>>()?;
        Ok((prices, SolveEffort::default()))
    }
}

/// VCG with each reserve as the rollup's own bid for itself.
///
/// The objective is the surplus `amount - reserves`; a winner `i` pays
/// `v_i - (W - W_{-i})` clamped to `[reserves_i, v_i]`, where `W_{-i}` is re-solved without any
/// of its bids (one solve per winner, in parallel). The clamp is applied to every payment,
/// whether or not the solves were exact; with exact solves it never binds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Vcg;

impl PricingRule for Vcg {
    const RULE: PaymentRule = PaymentRule::Vcg;

    /// The surplus over the reserves, or [`AuctionError::BelowReserve`].
    fn objective(&self, bid: &StoredBid) -> Result<u128, AuctionError> {
        let amount = bid.signed.message.amount;
        amount
            .checked_sub(bid.reserve)
            .map(|surplus| surplus.0)
            .ok_or(AuctionError::BelowReserve { reserve: bid.reserve, amount })
    }

    fn prices(
        &self,
        book: &ClosingBook<'_>,
        allocated: &Allocated,
        node_budget: u64,
    ) -> Result<(Vec<Price>, SolveEffort), AuctionError> {
        let solver = book.solver(node_budget);
        let counterfactuals: Vec<_> = allocated
            .winners
            .par_iter()
            .map(|(bidder, _)| solver.solve_without(Some(*bidder)))
            .collect();
        let mut effort = SolveEffort::default();
        let mut prices = Vec::with_capacity(allocated.winners.len());
        for ((_, won), without) in allocated.winners.iter().zip(counterfactuals) {
            let (value, reserves) = value_and_reserves(book, won)?;
            effort.add(&without);
            let without = without.value / SCALE;
            let harm = allocated.welfare.saturating_sub(without);
            let payment = Amount(value.0.saturating_sub(harm)).max(reserves).min(value);
            prices.push(Price { value, reserves, payment, welfare_without: Some(Amount(without)) });
        }
        Ok((prices, effort))
    }
}

/// The sum of the amounts and of the reserves of the bids `won`.
fn value_and_reserves(
    book: &ClosingBook<'_>,
    won: &[usize],
) -> Result<(Amount, Amount), AuctionError> {
    let value = won.iter().try_fold(Amount::ZERO, |a, &i| {
        a.checked_add(book.bids[i].signed.message.amount)
            .ok_or(AuctionError::Overflow("winner value"))
    })?;
    let reserves = won.iter().try_fold(Amount::ZERO, |a, &i| {
        a.checked_add(book.bids[i].reserve).ok_or(AuctionError::Overflow("winner reserves"))
    })?;
    Ok((value, reserves))
}
