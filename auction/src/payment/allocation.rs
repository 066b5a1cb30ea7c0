//! Step 1 and 2 of a close: the book as the solver sees it, then winner determination under
//! the builders' collateral.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use veil_primitives::{Amount, PublicKeyBytes, RollupId};

use super::pricing::PricingRule;
use super::{rollups_in_play, SolveEffort, MAX_COLLATERAL_ROUNDS, SCALE};
use crate::bid::BidId;
use crate::book::StoredBid;
use crate::registry::RollupTerms;
use crate::wdp::{Candidate, Solver, MAX_ROLLUPS};
use crate::AuctionError;

/// The live bids of a slot as the solver sees them: one [`Candidate`] per bid, at the same
/// index as the bid in `bids`.
///
/// Bit `k` of a candidate's mask is `in_play[k]`; its bidder is the index of its builder in
/// `builders` (keys sorted, so every bid of one signer is one bidder); its weight is
/// `objective * SCALE + rollups in the bid`, the objective being the payment rule's.
#[derive(Debug)]
pub(crate) struct ClosingBook<'a> {
    /// The live bids, sorted by id (the solver's candidate order).
    pub(crate) bids: &'a [&'a StoredBid],
    /// The rollups named by any bid, in id order.
    pub(crate) in_play: Vec<RollupId>,
    /// The builders with a live bid, in key order.
    pub(crate) builders: Vec<PublicKeyBytes>,
    /// One candidate per bid. Bids excluded for collateral get weight zero.
    pub(crate) candidates: Vec<Candidate>,
}

impl<'a> ClosingBook<'a> {
    /// Maps `bids` (sorted by id) onto solver candidates weighted by `rule`.
    ///
    /// Fails with [`AuctionError::TooManyRollups`] beyond [`MAX_ROLLUPS`] rollups in play,
    /// [`AuctionError::UnknownRollup`] for a rollup without terms, the rule's own objective
    /// errors, and [`AuctionError::Overflow`] when a weight does not fit; bids are checked in
    /// order and the first failure is returned.
    pub(crate) fn new(
        bids: &'a [&'a StoredBid],
        terms: &RollupTerms,
        rule: &impl PricingRule,
    ) -> Result<ClosingBook<'a>, AuctionError> {
        let in_play = rollups_in_play(bids.iter().copied());
        if in_play.len() > MAX_ROLLUPS {
            return Err(AuctionError::TooManyRollups { count: in_play.len(), max: MAX_ROLLUPS });
        }
        let bit: HashMap<RollupId, u32> =
            in_play.iter().enumerate().map(|(k, r)| (*r, k as u32)).collect();
        let builders: Vec<PublicKeyBytes> = bids
            .iter()
            .map(|b| b.signed.message.builder)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut candidates = Vec::with_capacity(bids.len());
        for b in bids {
            let bid = &b.signed.message;
            // Intake guarantees this for books; `close` is public, so check rather than panic.
            if let Some(r) = bid.rollups().find(|r| !terms.contains_key(r)) {
                return Err(AuctionError::UnknownRollup(r));
            }
            let mask = bid.rollups().fold(0u64, |m, r| m | 1u64 << bit[&r]);
            candidates.push(Candidate {
                mask,
                weight: scaled(rule.objective(b)?, mask)?,
                bidder: builders.binary_search(&bid.builder).unwrap_or(0) as u32,
            });
        }
        Ok(ClosingBook { bids, in_play, builders, candidates })
    }

    /// The solver's dimension: rollups in play.
    pub(crate) fn rollups(&self) -> usize {
        self.in_play.len()
    }

    /// A solver over the current candidates.
    pub(crate) fn solver(&self, node_budget: u64) -> Solver<'_> {
        Solver::new(self.rollups(), &self.candidates, node_budget)
    }
}

/// `primary * SCALE + popcount(mask)`, or an overflow error.
fn scaled(primary: u128, mask: u64) -> Result<u128, AuctionError> {
    primary
        .checked_mul(SCALE)
        .and_then(|w| w.checked_add(u128::from(mask.count_ones())))
        .ok_or(AuctionError::Overflow("bid weight"))
}

/// The winners of a slot, as decided by [`allocate`].
#[derive(Debug, Clone)]
pub(crate) struct Allocated {
    /// The maximised objective (`value / SCALE` of the solver's allocation).
    pub(crate) welfare: u128,
    /// Each winning bidder with the indexes of its winning bids, increasing; bidders in key
    /// order.
    pub(crate) winners: Vec<(u32, Vec<usize>)>,
    /// Bids left out for collateral, sorted by id.
    pub(crate) excluded_for_collateral: Vec<BidId>,
    /// Solves and nodes of every round; exactness of the allocation kept.
    pub(crate) effort: SolveEffort,
}

/// Winner determination honouring collateral.
///
/// Solves the book; if a bidder's winning amounts exceed its available collateral (missing
/// means zero), its winning bid of least weight (ties to the later bid) is excluded, by
/// setting its candidate's weight to zero in `book`, and the book is solved again. From round
/// [`MAX_COLLATERAL_ROUNDS`] on, every bid of a bidder still over its collateral is excluded
/// instead. Returns the first allocation in which every winner is covered. Excluded bids stay
/// at weight zero in `book`, so the later steps (VCG counterfactuals, contributions) never see
/// them.
pub(crate) fn allocate(
    book: &mut ClosingBook<'_>,
    available: &HashMap<PublicKeyBytes, Amount>,
    node_budget: u64,
) -> Allocated {
    let mut effort = SolveEffort::default();
    let mut excluded_for_collateral = Vec::new();
    let mut round = 0;
    let allocation = loop {
        let allocation = book.solver(node_budget).solve();
        effort.add(&allocation);
        let over = over_collateral(book, &allocation.chosen, available);
        if over.is_empty() {
            break allocation;
        }
        round += 1;
        for (bidder, won) in over {
            let candidates = &book.candidates;
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
                book.candidates[i].weight = 0;
                excluded_for_collateral.push(book.bids[i].id);
            }
        }
    };
    excluded_for_collateral.sort_unstable();
    // Every round counts as a solve, but exactness is that of the allocation kept.
    effort.exact = allocation.exact;
    Allocated {
        welfare: allocation.value / SCALE,
        winners: group_by_bidder(&allocation.chosen, &book.candidates).into_iter().collect(),
        excluded_for_collateral,
        effort,
    }
}

/// The bidders whose winning amounts in `chosen` exceed their available collateral, with
/// their winning bids.
fn over_collateral(
    book: &ClosingBook<'_>,
    chosen: &[usize],
    available: &HashMap<PublicKeyBytes, Amount>,
) -> BTreeMap<u32, Vec<usize>> {
    let mut over = group_by_bidder(chosen, &book.candidates);
    over.retain(|&bidder, won| {
        let total =
            won.iter().fold(0u128, |a, &i| a.saturating_add(book.bids[i].signed.message.amount.0));
        let available = available.get(&book.builders[bidder as usize]).copied().unwrap_or_default();
        total > available.0
    });
    over
}

fn group_by_bidder(chosen: &[usize], candidates: &[Candidate]) -> BTreeMap<u32, Vec<usize>> {
    let mut out: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &i in chosen {
        out.entry(candidates[i].bidder).or_default().push(i);
    }
    out
}
