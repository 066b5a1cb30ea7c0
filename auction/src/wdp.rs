//! Winner determination: the set of pairwise disjoint bids of maximum total weight.
//!
//! Input is a list of [`Candidate`]s (a rollup bit mask, a positive weight, a bidder), output
//! an [`Allocation`]. Rollups nobody wins are simply unsold, so the problem is weighted set
//! packing. The crate reduces both payment rules to it by choosing the weights (see
//! [`crate::payment`]).
//!
//! # Exact: dynamic programming over subsets (up to [`EXACT_LIMIT`] rollups)
//!
//! `best[m]` is the heaviest candidate whose set is exactly `m`. Then, for every mask in order
//! of popcount, with `low` its lowest rollup,
//!
//! ```text
//! f[mask] = max( f[mask \ low],                               // low stays unsold
//!                max over m ⊆ mask with low ∈ m: best[m] + f[mask \ m] )
//! ```
//!
//! Fixing the lowest rollup makes every partition counted once, which bounds the work by
//! `3^n / 2` (21.5 M steps at n = 16). Real books are sparse: a few thousand distinct sets,
//! mostly of 1 to 3 rollups. So for each mask the solver takes the cheaper of two exact
//! enumerations: the `2^(popcount-1)` submasks that contain `low`, or the list of non-empty
//! sets whose lowest rollup is `low` (kept in popcount order, so the scan stops at the first
//! set as large as the mask), filtered by inclusion. Masks of equal popcount do not depend on
//! each other, so each popcount layer is computed in parallel with rayon.
//!
//! **Dominance pruning.** When a set's own best bid is worth no more than the best partition
//! of the set into smaller bids, that bid can never be needed by a larger set (swap it for the
//! partition), so it leaves the lists before the next layer. In real books most multi-rollup
//! bids are dominated by the best single-rollup bids, which keeps the scans short.
//!
//! **Small instances** (at most [`SMALL_INSTANCE`] candidates, such as one builder's own bids
//! in the revenue split) go to the search below first, which beats filling a table of `2^n`
//! entries; the table is used if the search cannot prove its answer within its budget.
//!
//! # Beyond 16 rollups: bounded branch and bound (up to [`MAX_ROLLUPS`])
//!
//! Depth-first over rollups in id order: the lowest undecided rollup is either left unsold or
//! covered by a candidate whose lowest rollup it is. The bound gives each undecided rollup the
//! best weight per rollup of any candidate covering it, which never underestimates. A greedy
//! packing seeds the incumbent. When the node budget runs out, the incumbent is returned with
//! `exact = false`.
//!
//! Ties between allocations of equal weight are broken deterministically by the enumeration
//! order and, between candidates with the same set, by the lower index; callers order
//! candidates canonically (by bid id) so that the same bids give the same winners.

use std::collections::HashMap;

use rayon::prelude::*;

/// Largest number of rollups solved exactly by dynamic programming.
pub const EXACT_LIMIT: usize = 16;
/// Largest number of rollups one slot may sell (bit masks are `u64`).
pub const MAX_ROLLUPS: usize = 64;

/// Up to this many candidates, instances of at most [`EXACT_LIMIT`] rollups are first tried
/// with the search (budget [`SMALL_INSTANCE_BUDGET`]) instead of the table.
pub const SMALL_INSTANCE: usize = 64;
/// Node budget of the search on small instances before falling back to the table.
pub const SMALL_INSTANCE_BUDGET: u64 = 100_000;

/// One bid as the solver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The rollups, as bits `0..n`.
    pub mask: u64,
    /// The value to maximise; candidates of weight zero are ignored.
    pub weight: u128,
    /// Who placed it: bids of one bidder are removed together by [`Solver::solve_without`].
    pub bidder: u32,
}

/// The chosen candidates and their total weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Sum of the chosen weights.
    pub value: u128,
    /// Indexes into the candidate slice, increasing.
    pub chosen: Vec<usize>,
    /// Whether `value` is proven maximal (always true for the dynamic programme).
    pub exact: bool,
    /// Search nodes visited (0 for the dynamic programme).
    pub nodes: u64,
}

/// A winner-determination problem, solved for all bidders or without one of them.
#[derive(Debug)]
pub struct Solver<'a> {
    n: usize,
    candidates: &'a [Candidate],
    node_budget: u64,
    /// For the dynamic programme: every mask, grouped by popcount.
    layers: Vec<Vec<u32>>,
}

impl<'a> Solver<'a> {
    /// A problem over rollups `0..n` (`n <= MAX_ROLLUPS`; masks must stay below `1 << n`).
    /// `node_budget` bounds the search used beyond [`EXACT_LIMIT`] rollups.
    #[must_use]
    pub fn new(n: usize, candidates: &'a [Candidate], node_budget: u64) -> Solver<'a> {
        assert!(n <= MAX_ROLLUPS, "callers bound the rollups per slot by MAX_ROLLUPS");
        let layers = if n <= EXACT_LIMIT { popcount_layers(n) } else { Vec::new() };
        Solver { n, candidates, node_budget, layers }
    }

    /// The best allocation of all candidates.
    #[must_use]
    pub fn solve(&self) -> Allocation {
        self.solve_without(None)
    }

    /// The best allocation of the candidates not placed by `excluded`.
    #[must_use]
    pub fn solve_without(&self, excluded: Option<u32>) -> Allocation {
        if self.n > EXACT_LIMIT {
            return self.branch_and_bound(excluded, self.node_budget);
        }
        if self.candidates.len() <= SMALL_INSTANCE {
            // A handful of bids: the search is far cheaper than a table of 2^n entries,
            // and falls back to the table if it cannot prove its answer.
            let a = self.branch_and_bound(excluded, SMALL_INSTANCE_BUDGET);
            if a.exact {
                return a;
            }
        }
        self.dynamic_programme(excluded)
    }

    fn admitted(&self, excluded: Option<u32>) -> impl Iterator<Item = (usize, &Candidate)> + '_ {
        self.candidates
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.weight > 0 && Some(c.bidder) != excluded && c.mask != 0)
    }

    fn dynamic_programme(&self, excluded: Option<u32>) -> Allocation {
        let n = self.n;
        let size = 1usize << n;
        let mut best_w = vec![0u128; size];
        let mut best_i = vec![u32::MAX; size];
        for (i, c) in self.admitted(excluded) {
            let m = usize::try_from(c.mask).unwrap_or(usize::MAX);
            if m >= size {
                continue;
            }
            if c.weight > best_w[m] {
                best_w[m] = c.weight;
                best_i[m] = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
        // Non-empty sets, grouped by their lowest rollup, in order of popcount.
        let mut by_low: Vec<Vec<u32>> = vec![Vec::new(); n.max(1)];
        for layer in &self.layers {
            for &m in layer {
                if best_w[m as usize] > 0 {
                    by_low[m.trailing_zeros() as usize].push(m);
                }
            }
        }
        let mut f = vec![0u128; size];
        let mut choice = vec![0u32; size];
        for (pc, layer) in self.layers.iter().enumerate().skip(1) {
            let pc = pc as u32;
            let (w_ref, lists, f_ref) = (&best_w, &by_low, &f);
            // (value, pick, whether the set's own best bid is dominated by a partition)
            let step = |&mask: &u32| -> (u128, u32, bool) {
                let low = mask & mask.wrapping_neg();
                let rest = mask ^ low;
                let mut best = f_ref[rest as usize];
                let mut pick = 0u32;
                let list = &lists[low.trailing_zeros() as usize];
                let submasks = 1usize << (pc - 1);
                if submasks <= list.len() {
                    // Every proper submask containing `low`.
                    let mut sub = rest.wrapping_sub(1) & rest;
                    if rest != 0 {
                        loop {
                            let m = sub | low;
                            let w = w_ref[m as usize];
                            if w > 0 {
                                let v = w + f_ref[(mask ^ m) as usize];
                                if v > best {
                                    best = v;
                                    pick = m;
                                }
                            }
                            if sub == 0 {
                                break;
                            }
                            sub = (sub - 1) & rest;
                        }
                    }
                } else {
                    for &m in list {
                        if m.count_ones() >= pc {
                            break;
                        }
                        if m & !mask == 0 {
                            let v = w_ref[m as usize] + f_ref[(mask ^ m) as usize];
                            if v > best {
                                best = v;
                                pick = m;
                            }
                        }
                    }
                }
                let own = w_ref[mask as usize];
                if own > best {
                    (own, mask, false)
                } else {
                    (best, pick, own > 0)
                }
            };
            let results: Vec<(u128, u32, bool)> = if layer.len() >= 2048 {
                layer.par_iter().with_min_len(512).map(step).collect()
            } else {
                layer.iter().map(step).collect()
            };
            let mut pruned = false;
            for (&mask, (v, pick, dominated)) in layer.iter().zip(results) {
                f[mask as usize] = v;
                choice[mask as usize] = pick;
                if dominated {
                    // A partition of the set does at least as well as its own best bid, so
                    // no larger set needs to consider that bid.
                    best_w[mask as usize] = 0;
                    pruned = true;
                }
            }
            if pruned {
                for list in &mut by_low {
                    list.retain(|&m| best_w[m as usize] > 0);
                }
            }
        }
        let mut chosen = Vec::new();
        let mut mask = (size - 1) as u32;
        while mask != 0 {
            let pick = choice[mask as usize];
            if pick == 0 {
                mask &= mask - 1;
            } else {
                chosen.push(best_i[pick as usize] as usize);
                mask ^= pick;
            }
        }
        chosen.sort_unstable();
        Allocation { value: f[size - 1], chosen, exact: true, nodes: 0 }
    }

    fn branch_and_bound(&self, excluded: Option<u32>, budget: u64) -> Allocation {
        let n = self.n;
        // Keep the best candidate per distinct set: the others can never do better.
        let mut per_mask: HashMap<u64, usize> = HashMap::new();
        for (i, c) in self.admitted(excluded) {
            if n < 64 && c.mask >> n != 0 {
                continue;
            }
            per_mask
                .entry(c.mask)
                .and_modify(|j| {
                    if c.weight > self.candidates[*j].weight {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
        let mut kept: Vec<usize> = per_mask.into_values().collect();
        kept.sort_unstable();
        let mut by_low: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut per_rollup = vec![0u128; n];
        for &i in &kept {
            let c = &self.candidates[i];
            by_low[c.mask.trailing_zeros() as usize].push(i);
            let share = c.weight.div_ceil(u128::from(c.mask.count_ones()));
            for (r, ub) in per_rollup.iter_mut().enumerate() {
                if c.mask >> r & 1 == 1 {
                    *ub = (*ub).max(share);
                }
            }
        }
        for list in &mut by_low {
            list.sort_by(|&a, &b| {
                self.candidates[b].weight.cmp(&self.candidates[a].weight).then(a.cmp(&b))
            });
        }
        // Greedy incumbent: by weight per rollup, then index.
        let mut greedy = kept.clone();
        greedy.sort_by(|&a, &b| {
            let (ca, cb) = (&self.candidates[a], &self.candidates[b]);
            let ka = ca.weight / u128::from(ca.mask.count_ones());
            let kb = cb.weight / u128::from(cb.mask.count_ones());
            kb.cmp(&ka).then(a.cmp(&b))
        });
        let mut covered = 0u64;
        let mut incumbent = Vec::new();
        let mut incumbent_value = 0u128;
        for i in greedy {
            let c = &self.candidates[i];
            if c.mask & covered == 0 {
                covered |= c.mask;
                incumbent.push(i);
                incumbent_value += c.weight;
            }
        }
        let mut search = Search {
            n,
            candidates: self.candidates,
            by_low: &by_low,
            per_rollup: &per_rollup,
            budget,
            nodes: 0,
            aborted: false,
            path: Vec::new(),
            best_value: incumbent_value,
            best: incumbent,
        };
        search.visit(0, 0, 0);
        let mut chosen = search.best;
        chosen.sort_unstable();
        Allocation { value: search.best_value, chosen, exact: !search.aborted, nodes: search.nodes }
    }
}

struct Search<'s> {
    n: usize,
    candidates: &'s [Candidate],
    by_low: &'s [Vec<usize>],
    per_rollup: &'s [u128],
    budget: u64,
    nodes: u64,
    aborted: bool,
    path: Vec<usize>,
    best_value: u128,
    best: Vec<usize>,
}

impl Search<'_> {
    fn visit(&mut self, mut pos: usize, covered: u64, value: u128) {
        if self.aborted {
            return;
        }
        self.nodes += 1;
        if self.nodes > self.budget {
            self.aborted = true;
            return;
        }
        while pos < self.n && covered >> pos & 1 == 1 {
            pos += 1;
        }
        if pos == self.n {
            if value > self.best_value {
                self.best_value = value;
                self.best = self.path.clone();
            }
            return;
        }
        let bound: u128 =
            (pos..self.n).filter(|&r| covered >> r & 1 == 0).map(|r| self.per_rollup[r]).sum();
        if value + bound <= self.best_value {
            return;
        }
        let by_low = self.by_low;
        for &i in &by_low[pos] {
            let c = self.candidates[i];
            if c.mask & covered == 0 {
                self.path.push(i);
                self.visit(pos + 1, covered | c.mask, value + c.weight);
                self.path.pop();
            }
        }
        self.visit(pos + 1, covered | 1u64 << pos, value);
    }
}

/// Every mask below `1 << n`, grouped by popcount (index = popcount).
fn popcount_layers(n: usize) -> Vec<Vec<u32>> {
    let mut layers = vec![Vec::new(); n + 1];
    for m in 0..(1u32 << n) {
        layers[m.count_ones() as usize].push(m);
    }
    layers
}

/// The best allocation by trying every subset of candidates (for tests on tiny inputs).
#[must_use]
pub fn brute_force(candidates: &[Candidate], excluded: Option<u32>) -> u128 {
    let live: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.weight > 0 && c.mask != 0 && Some(c.bidder) != excluded)
        .collect();
    assert!(live.len() <= 20, "brute force is for tiny inputs");
    let mut best = 0u128;
    for pick in 0u32..(1 << live.len()) {
        let mut covered = 0u64;
        let mut value = 0u128;
        let mut ok = true;
        for (k, c) in live.iter().enumerate() {
            if pick >> k & 1 == 1 {
                if c.mask & covered != 0 {
                    ok = false;
                    break;
                }
                covered |= c.mask;
                value += c.weight;
            }
        }
        if ok {
            best = best.max(value);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(mask: u64, weight: u128, bidder: u32) -> Candidate {
        Candidate { mask, weight, bidder }
    }

    #[test]
    fn picks_the_better_partition() {
        let cands = [c(0b11, 10, 0), c(0b01, 6, 1), c(0b10, 6, 2), c(0b100, 1, 3)];
        let a = Solver::new(3, &cands, 1000).solve();
        assert_eq!(a.value, 13);
        assert_eq!(a.chosen, vec![1, 2, 3]);
        let b = Solver::new(3, &cands, 1000).solve_without(Some(1));
        assert_eq!(b.value, 11);
        assert_eq!(b.chosen, vec![0, 3]);
    }

    #[test]
    fn search_matches_dynamic_programme() {
        let mut cands = Vec::new();
        let mut x = 12345u64;
        for i in 0..300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let a = (x >> 33) % 16;
            let b = (x >> 40) % 16;
            let mask = (1u64 << a) | if i % 3 == 0 { 1u64 << b } else { 0 };
            cands.push(c(mask, u128::from((x >> 20) % 1000 + 1), (i % 40) as u32));
        }
        let dp = Solver::new(16, &cands, 0).solve();
        // Force the search by widening the rollup space; masks stay below bit 16.
        let bb = Solver::new(17, &cands, u64::MAX).solve();
        assert!(bb.exact);
        assert_eq!(dp.value, bb.value);
        let dp = Solver::new(16, &cands, 0).solve_without(Some(3));
        let bb = Solver::new(17, &cands, u64::MAX).solve_without(Some(3));
        assert_eq!(dp.value, bb.value);
    }

    #[test]
    fn search_reports_inexact_when_out_of_budget() {
        let cands: Vec<Candidate> = (0..40)
            .map(|i| c((1u64 << (i % 20)) | (1u64 << ((i * 7 + 3) % 20)), 5 + i as u128, i))
            .collect();
        let a = Solver::new(20, &cands, 3).solve();
        assert!(!a.exact);
        assert!(a.value > 0, "greedy incumbent kept");
    }
}
