//! Winner determination: the set of pairwise disjoint bids of maximum total weight, ties to
//! the smallest sorted list of candidate indexes.
//!
//! Input is a list of [`Candidate`]s (a rollup bit mask, a positive weight, a bidder), output
//! an [`Allocation`]. Rollups nobody wins are simply unsold, so the problem is weighted set
//! packing. The crate reduces both payment rules to it by choosing the weights (see
//! [`crate::payment`]).
//!
//! # Ties
//!
//! Among the allocations of maximum weight, the solver returns the one whose sorted list of
//! candidate indexes is lexicographically smallest (the *least optimum*). Callers pass
//! candidates sorted by bid id, so this is the smallest sorted list of winning bid ids. Two
//! optima never contain one another (weights are positive), so this is the same as: of two
//! optima, prefer the one holding the smallest index that only one of them holds. A candidate
//! outside the least optimum cannot change it: removing it keeps the optimum value and every
//! optimum that did not use it, the least included.
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
//! **The least optimum** is read from the finished table in one pass over the candidates in
//! index order, with `rest` the rollups still open: candidate `i` is taken iff it fits in
//! `rest` and `w_i + f[rest \ m_i] = f[rest]`, i.e. it lies in some optimal allocation of
//! `rest`. The first candidate taken is the smallest index of any optimum, so it leads the
//! least one; a candidate passed over cannot lie in an optimum of a smaller `rest` either (it
//! would have lain in one of the larger), so a single pass finds the whole list. Dominance
//! pruning never changes a value of `f`, so the pass may use every candidate. It costs one
//! look-up per candidate, beside the `3^n / 2` of the table.
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
//! packing seeds the incumbent. A leaf replaces the incumbent if it is heavier, or as heavy
//! with a smaller sorted index list; a node is cut only when its bound falls short of the
//! incumbent. Of several candidates with the same set only the heaviest, ties to the lower
//! index, is searched: the least optimum never needs another.
//!
//! A node whose bound exactly meets the incumbent is not searched but settled: a completion
//! reaches the bound only by covering every open rollup with *tight* candidates (each worth
//! exactly the bound of its rollups), and all such completions are worth the same, so the best
//! of them is the least exact cover by tight candidates, found with the same index-order pass
//! as the table's, over a memoised "can these rollups be covered" test. Without this, books
//! with many tied optima (every rollup and every neighbouring pair at one price per rollup)
//! would be searched tiling by tiling.
//!
//! When the node budget runs out, the incumbent is returned with `exact = false`: then neither
//! its weight nor the tie-break is proven.

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
    /// Indexes into the candidate slice, increasing: the least optimum (see the module docs).
    pub chosen: Vec<usize>,
    /// Whether `value` is proven maximal and `chosen` the least optimum (always true for the
    /// dynamic programme).
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

    /// The least optimum of all candidates (see the module docs).
    #[must_use]
    pub fn solve(&self) -> Allocation {
        self.solve_without(None)
    }

    /// The least optimum of the candidates not placed by `excluded`.
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
        for (_, c) in self.admitted(excluded) {
            let m = usize::try_from(c.mask).unwrap_or(usize::MAX);
            if m < size {
                best_w[m] = best_w[m].max(c.weight);
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
        for (pc, layer) in self.layers.iter().enumerate().skip(1) {
            let pc = pc as u32;
            let (w_ref, lists, f_ref) = (&best_w, &by_low, &f);
            // (value, whether the set's own best bid is dominated by a partition)
            let step = |&mask: &u32| -> (u128, bool) {
                let low = mask & mask.wrapping_neg();
                let rest = mask ^ low;
                let mut best = f_ref[rest as usize];
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
                                best = best.max(w + f_ref[(mask ^ m) as usize]);
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
                            best = best.max(w_ref[m as usize] + f_ref[(mask ^ m) as usize]);
                        }
                    }
                }
                let own = w_ref[mask as usize];
                if own > best {
                    (own, false)
                } else {
                    (best, own > 0)
                }
            };
            let results: Vec<(u128, bool)> = if layer.len() >= 2048 {
                layer.par_iter().with_min_len(512).map(step).collect()
            } else {
                layer.iter().map(step).collect()
            };
            let mut pruned = false;
            for (&mask, (v, dominated)) in layer.iter().zip(results) {
                f[mask as usize] = v;
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
        let chosen = self.least_optimal(excluded, &f);
        Allocation { value: f[size - 1], chosen, exact: true, nodes: 0 }
    }

    /// The least optimum of the admitted candidates, given `f`, the optimal value of every
    /// mask over them: one pass in index order (see the module docs).
    fn least_optimal(&self, excluded: Option<u32>, f: &[u128]) -> Vec<usize> {
        let size = f.len();
        let mut rest = size - 1;
        let mut chosen = Vec::new();
        for (i, c) in self.admitted(excluded) {
            if f[rest] == 0 {
                break;
            }
            let m = usize::try_from(c.mask).unwrap_or(usize::MAX);
            if m < size && m & !rest == 0 && c.weight + f[rest ^ m] == f[rest] {
                chosen.push(i);
                rest ^= m;
            }
        }
        chosen
    }

    fn branch_and_bound(&self, excluded: Option<u32>, budget: u64) -> Allocation {
        let n = self.n;
        // Keep the best candidate per distinct set (the heaviest, ties to the lower index): the
        // least optimum never needs another.
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
        incumbent.sort_unstable();
        // Candidates that are worth exactly the bound of their rollups, by index and by lowest
        // rollup: the only ones an allocation can use where the bound is met exactly.
        let tight: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&i| {
                let c = &self.candidates[i];
                let bound: u128 =
                    (0..n).filter(|&r| c.mask >> r & 1 == 1).map(|r| per_rollup[r]).sum();
                c.weight == bound
            })
            .collect();
        let mut tight_by_low: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &i in &tight {
            tight_by_low[self.candidates[i].mask.trailing_zeros() as usize].push(i);
        }
        let mut search = Search {
            n,
            candidates: self.candidates,
            by_low: &by_low,
            per_rollup: &per_rollup,
            tight: &tight,
            tight_by_low: &tight_by_low,
            coverable: HashMap::new(),
            budget,
            nodes: 0,
            aborted: false,
            path: Vec::new(),
            best_value: incumbent_value,
            best: incumbent,
        };
        search.visit(0, 0, 0);
        Allocation {
            value: search.best_value,
            chosen: search.best,
            exact: !search.aborted,
            nodes: search.nodes,
        }
    }
}

/// The state of one branch and bound.
struct Search<'s> {
    n: usize,
    candidates: &'s [Candidate],
    /// Kept candidates by lowest rollup, heaviest first (ties by index).
    by_low: &'s [Vec<usize>],
    /// Per rollup, the best weight per rollup of any kept candidate covering it (rounded up).
    per_rollup: &'s [u128],
    /// Kept candidates whose weight is the sum of `per_rollup` over their rollups, by index.
    tight: &'s [usize],
    /// The same, by lowest rollup.
    tight_by_low: &'s [Vec<usize>],
    /// Memo of [`Search::coverable`].
    coverable: HashMap<u64, bool>,
    budget: u64,
    nodes: u64,
    aborted: bool,
    /// The candidates chosen on the way to the current node, in the order chosen.
    path: Vec<usize>,
    /// The incumbent: the best allocation found so far and its value, sorted by index.
    best_value: u128,
    best: Vec<usize>,
}

impl Search<'_> {
    /// Counts one node; `false` once the budget is spent.
    fn step(&mut self) -> bool {
        if self.aborted {
            return false;
        }
        self.nodes += 1;
        if self.nodes > self.budget {
            self.aborted = true;
        }
        !self.aborted
    }

    /// Depth-first from the lowest undecided rollup at or after `pos`.
    ///
    /// A leaf replaces the incumbent if it is worth more, or worth as much with a smaller
    /// sorted index list. A node whose bound cannot reach the incumbent's value is cut. A node
    /// whose bound only just reaches it (a tie at best) is settled at once by
    /// [`Search::settle_tie`] instead of being searched.
    fn visit(&mut self, mut pos: usize, covered: u64, value: u128) {
        if !self.step() {
            return;
        }
        while pos < self.n && covered >> pos & 1 == 1 {
            pos += 1;
        }
        if pos == self.n {
            if value > self.best_value || value == self.best_value && self.sorts_first(&[]) {
                self.best_value = value;
                self.best = self.path.clone();
                self.best.sort_unstable();
            }
            return;
        }
        let bound: u128 =
            (pos..self.n).filter(|&r| covered >> r & 1 == 0).map(|r| self.per_rollup[r]).sum();
        let reach = value + bound;
        if reach < self.best_value {
            return;
        }
        if reach == self.best_value {
            self.settle_tie(pos, covered);
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

    /// At a node whose bound equals the incumbent's value: the completions that tie are
    /// exactly the covers of every open rollup at or after `pos` (those some candidate
    /// covers) by disjoint tight candidates, since a completion meets the bound only if each
    /// of its candidates is worth the bound of its rollups and no rollup with a positive bound
    /// is left unsold. Their values are equal, so the best is the cover with the smallest
    /// sorted index list, found in one pass over the tight candidates in index order: take a
    /// candidate iff the rollups left after it can still be covered. The path with that cover
    /// replaces the incumbent if its sorted list is smaller.
    fn settle_tie(&mut self, pos: usize, covered: u64) {
        let open = (pos..self.n)
            .filter(|&r| covered >> r & 1 == 0 && self.per_rollup[r] > 0)
            .fold(0u64, |m, r| m | 1u64 << r);
        if !self.is_coverable(open) {
            return;
        }
        let mut rest = open;
        let mut cover = Vec::new();
        let tight = self.tight;
        for &i in tight {
            if rest == 0 || self.aborted {
                break;
            }
            let m = self.candidates[i].mask;
            if m & !rest == 0 && self.is_coverable(rest ^ m) {
                cover.push(i);
                rest ^= m;
            }
        }
        if rest == 0 && self.sorts_first(&cover) {
            self.best = self.path.iter().chain(&cover).copied().collect();
            self.best.sort_unstable();
        }
    }

    /// Whether disjoint tight candidates cover exactly the rollups `open` (memoised; each
    /// evaluation is a node of the budget, and an exhausted budget answers `false`).
    fn is_coverable(&mut self, open: u64) -> bool {
        if open == 0 {
            return true;
        }
        if let Some(&known) = self.coverable.get(&open) {
            return known;
        }
        if !self.step() {
            return false;
        }
        let low = open.trailing_zeros() as usize;
        let tight_by_low = self.tight_by_low;
        let found = tight_by_low[low].iter().any(|&i| {
            let m = self.candidates[i].mask;
            m & !open == 0 && self.is_coverable(open ^ m)
        });
        if !self.aborted {
            self.coverable.insert(open, found);
        }
        found
    }

    /// Whether the current path plus `more`, sorted, is a smaller index list than the
    /// incumbent.
    fn sorts_first(&self, more: &[usize]) -> bool {
        let mut list: Vec<usize> = self.path.iter().chain(more).copied().collect();
        list.sort_unstable();
        list < self.best
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
        assert_eq!((dp.value, &dp.chosen), (bb.value, &bb.chosen));
        let dp = Solver::new(16, &cands, 0).solve_without(Some(3));
        let bb = Solver::new(17, &cands, u64::MAX).solve_without(Some(3));
        assert_eq!((dp.value, &dp.chosen), (bb.value, &bb.chosen));
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

    /// The optimum by trying every subset: the heaviest, then the smallest sorted index list.
    fn least_optimum(cands: &[Candidate], excluded: Option<u32>) -> (u128, Vec<usize>) {
        let live: Vec<usize> = (0..cands.len())
            .filter(|&i| {
                cands[i].weight > 0 && cands[i].mask != 0 && Some(cands[i].bidder) != excluded
            })
            .collect();
        let mut best = (0u128, Vec::new());
        for pick in 0u32..(1 << live.len()) {
            let chosen: Vec<usize> = live
                .iter()
                .enumerate()
                .filter(|(k, _)| pick >> k & 1 == 1)
                .map(|(_, &i)| i)
                .collect();
            let mut covered = 0u64;
            if chosen.iter().any(|&i| {
                let overlap = cands[i].mask & covered != 0;
                covered |= cands[i].mask;
                overlap
            }) {
                continue;
            }
            let value = chosen.iter().map(|&i| cands[i].weight).sum::<u128>();
            if value > best.0 || value == best.0 && chosen < best.1 {
                best = (value, chosen);
            }
        }
        best
    }

    fn random_candidates(seed: u64, n: usize, count: usize, weights: u64) -> Vec<Candidate> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        (0..count)
            .map(|_| {
                let mask = next() % ((1u64 << n) - 1) + 1;
                c(mask, u128::from(next() % weights + 1), (next() % 3) as u32)
            })
            .collect()
    }

    #[test]
    fn ties_go_to_the_smallest_sorted_index_list() {
        // {0,1} alone or {0} + {1}: both worth 10. Then [0] < [1, 2].
        let cands = [c(0b11, 10, 0), c(0b01, 5, 1), c(0b10, 5, 2)];
        assert_eq!(Solver::new(2, &cands, 1000).dynamic_programme(None).chosen, vec![0]);
        assert_eq!(Solver::new(2, &cands, 1000).branch_and_bound(None, 1000).chosen, vec![0]);
        // Same sets, the pair listed last: [0, 1] < [2].
        let cands = [c(0b01, 5, 1), c(0b10, 5, 2), c(0b11, 10, 0)];
        assert_eq!(Solver::new(2, &cands, 1000).dynamic_programme(None).chosen, vec![0, 1]);
        assert_eq!(Solver::new(2, &cands, 1000).branch_and_bound(None, 1000).chosen, vec![0, 1]);
        // The smaller list need not contain the smallest index of the book's bids: a lone
        // heavier bid wins whatever its index.
        let cands = [c(0b01, 4, 0), c(0b11, 9, 1), c(0b10, 4, 2)];
        assert_eq!(Solver::new(2, &cands, 1000).solve().chosen, vec![1]);
    }

    #[test]
    fn both_solvers_pick_the_least_optimum_on_tied_books() {
        for seed in 0..600u64 {
            let n = 1 + (seed % 8) as usize;
            let count = 1 + (seed % 14) as usize;
            let weights = if seed % 2 == 0 { 3 } else { 8 };
            let cands = random_candidates(seed, n, count, weights);
            for excluded in [None, Some(1)] {
                let (value, chosen) = least_optimum(&cands, excluded);
                let dp = Solver::new(n, &cands, 0).dynamic_programme(excluded);
                let bb = Solver::new(n, &cands, 0).branch_and_bound(excluded, u64::MAX);
                assert!(bb.exact);
                assert_eq!((dp.value, &dp.chosen), (value, &chosen), "DP, seed {seed}");
                assert_eq!((bb.value, &bb.chosen), (value, &chosen), "search, seed {seed}");
            }
        }
    }

    #[test]
    fn search_settles_many_ties_within_its_budget() {
        // Every rollup alone and every neighbouring pair, worth the same per rollup: any
        // disjoint choice extends to an optimum, so the least optimum takes each candidate in
        // index order that still fits. Searching every tied tiling would take ~10^13 nodes.
        let n = 64;
        let mut cands = Vec::new();
        for r in 0..n {
            cands.push(c(1 << r, 129, r as u32));
            if r + 1 < n {
                cands.push(c(3 << r, 258, r as u32));
            }
        }
        let mut x = 7u64;
        for i in (1..cands.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            cands.swap(i, (x >> 33) as usize % (i + 1));
        }
        let mut covered = 0u64;
        let mut expected = Vec::new();
        for (i, cand) in cands.iter().enumerate() {
            if cand.mask & covered == 0 {
                covered |= cand.mask;
                expected.push(i);
            }
        }
        let a = Solver::new(n, &cands, 100_000).solve();
        assert!(a.exact);
        assert_eq!(a.value, 129 * n as u128);
        assert_eq!(a.chosen, expected);
    }
}
