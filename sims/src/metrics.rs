//! Per-slot records, run totals, winner concentration, and the CSV rows they become.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{rule_name, RunSpec};

/// What happened in one slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotRecord {
    /// The slot.
    pub slot: u64,
    /// Reference price during the slot.
    pub price: f64,
    /// User transactions that arrived.
    pub arrivals: u32,
    /// User transactions included (executed or reverted).
    pub included_user: u32,
    /// Included user transactions that were bundle parts.
    pub bundle_parts: u32,
    /// User swaps that reverted on their slippage limit.
    pub failed_swaps: u32,
    /// Sandwiches executed.
    pub sandwiches: u32,
    /// Sandwichers' profit (quote).
    pub sandwich_profit: f64,
    /// Users' loss to sandwiches: output without the front-run minus output with it (quote).
    pub user_loss: f64,
    /// Arbitrage profit of all winners (quote, before hedging).
    pub arb_profit: f64,
    /// Part of it by single-rollup back-runners.
    pub backrun_profit: f64,
    /// Part of it by the cross-rollup arbitrageur.
    pub cross_arb_profit: f64,
    /// Hedging cost of the arbitrage legs.
    pub hedge_cost: f64,
    /// Winners' payments (quote).
    pub payments: f64,
    /// Payouts to rollup buckets (quote).
    pub payouts: f64,
    /// Whether payments equal payouts, and ledger debits equal ledger credits, exactly.
    pub conserved: bool,
    /// The auction's maximised objective (quote).
    pub welfare: f64,
    /// Winner (builder name, `shill` or `fallback`) per rollup.
    pub winners: Vec<String>,
    /// Each rollup's share under Veil's split (quote).
    pub revenue_veil: Vec<f64>,
    /// Each rollup's share under the proportional-to-standalone-bids split.
    pub revenue_prop: Vec<f64>,
    /// Each rollup's share under the equal split.
    pub revenue_equal: Vec<f64>,
    /// Each rollup's fees from its fallback block.
    pub fallback_fees: Vec<f64>,
    /// Each rollup's revenue had it been sold alone to the single-rollup bids.
    pub alone: Vec<f64>,
    /// Profit and loss of each builder this slot (fees + MEV - hedge - payment).
    pub builder_pnl: Vec<f64>,
    /// Slots the shill won (0 or more rollups).
    pub shill_wins: u32,
    /// What the shill paid.
    pub shill_payments: f64,
    /// Each pool's price after the slot.
    pub pool_prices: Vec<f64>,
}

impl SlotRecord {
    /// An empty record for `slot` with `n` rollups.
    #[must_use]
    pub fn new(slot: u64, price: f64, n: usize) -> SlotRecord {
        SlotRecord {
            slot,
            price,
            arrivals: 0,
            included_user: 0,
            bundle_parts: 0,
            failed_swaps: 0,
            sandwiches: 0,
            sandwich_profit: 0.0,
            user_loss: 0.0,
            arb_profit: 0.0,
            backrun_profit: 0.0,
            cross_arb_profit: 0.0,
            hedge_cost: 0.0,
            payments: 0.0,
            payouts: 0.0,
            conserved: true,
            welfare: 0.0,
            winners: vec![String::new(); n],
            revenue_veil: vec![0.0; n],
            revenue_prop: vec![0.0; n],
            revenue_equal: vec![0.0; n],
            fallback_fees: vec![0.0; n],
            alone: vec![0.0; n],
            builder_pnl: Vec::new(),
            shill_wins: 0,
            shill_payments: 0.0,
            pool_prices: vec![0.0; n],
        }
    }
}

/// Run totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetrics {
    /// The run's label.
    pub label: String,
    /// Mempool mode.
    pub mode: String,
    /// Payment rule.
    pub rule: String,
    /// Adversaries.
    pub adversaries: String,
    /// Seed.
    pub seed: u64,
    /// Builder names, in index order.
    pub builders: Vec<String>,
    /// User transactions that arrived.
    pub arrivals: u64,
    /// User transactions included.
    pub included_user: u64,
    /// User transactions that expired unincluded.
    pub expired_user_txs: u64,
    /// Swaps that reverted on slippage.
    pub failed_swaps: u64,
    /// Sandwiches.
    pub sandwiches: u64,
    /// Users' loss to sandwiches (quote).
    pub user_sandwich_loss: f64,
    /// MEV by kind (quote): `sandwich`, `backrun`, `cross_arb`.
    pub mev: BTreeMap<String, f64>,
    /// Hedging cost paid on arbitrage.
    pub hedge_cost: f64,
    /// Auction revenue (payments).
    pub auction_revenue: f64,
    /// Slots whose payments did not equal payouts (must be 0).
    pub unconserved_slots: u64,
    /// Sum of the auction's objective.
    pub welfare: f64,
    /// Revenue per rollup under Veil's split, plus fallback fees.
    pub rollup_revenue_veil: Vec<f64>,
    /// Revenue per rollup under the proportional split, plus fallback fees.
    pub rollup_revenue_prop: Vec<f64>,
    /// Revenue per rollup under the equal split, plus fallback fees.
    pub rollup_revenue_equal: Vec<f64>,
    /// Revenue per rollup had it been sold alone.
    pub rollup_revenue_alone: Vec<f64>,
    /// Each builder's profit.
    pub builder_profit: Vec<f64>,
    /// Rollup-slots won per winner name (`fallback` included).
    pub wins: BTreeMap<String, u64>,
    /// Herfindahl–Hirschman index of builder wins (0..1, fallback excluded).
    pub hhi: f64,
    /// Share of builder wins of the two most frequent winners.
    pub top2_share: f64,
    /// Rollup-slots the shill won.
    pub shill_wins: u64,
    /// Admissions the pool refused (should be empty).
    pub admission_rejections: Vec<String>,
    /// Bids the auction refused (should be empty).
    pub bid_rejections: Vec<String>,
}

impl RunMetrics {
    /// Empty totals for `spec`.
    #[must_use]
    pub fn new(spec: &RunSpec, builders: &[String]) -> RunMetrics {
        RunMetrics {
            label: spec.label(),
            mode: spec.mode.name().into(),
            rule: rule_name(spec.rule).into(),
            adversaries: spec.adversaries.label().into(),
            seed: spec.scenario.seed,
            builders: builders.to_vec(),
            arrivals: 0,
            included_user: 0,
            expired_user_txs: 0,
            failed_swaps: 0,
            sandwiches: 0,
            user_sandwich_loss: 0.0,
            mev: BTreeMap::new(),
            hedge_cost: 0.0,
            auction_revenue: 0.0,
            unconserved_slots: 0,
            welfare: 0.0,
            rollup_revenue_veil: Vec::new(),
            rollup_revenue_prop: Vec::new(),
            rollup_revenue_equal: Vec::new(),
            rollup_revenue_alone: Vec::new(),
            builder_profit: vec![0.0; builders.len()],
            wins: BTreeMap::new(),
            hhi: 0.0,
            top2_share: 0.0,
            shill_wins: 0,
            admission_rejections: Vec::new(),
            bid_rejections: Vec::new(),
        }
    }

    /// Adds up `records`.
    pub fn finish(&mut self, records: &[SlotRecord]) {
        let n = records.first().map_or(0, |r| r.revenue_veil.len());
        let add = |acc: &mut Vec<f64>, v: &[f64], fb: &[f64]| {
            acc.resize(n, 0.0);
            for ((a, x), y) in acc.iter_mut().zip(v).zip(fb) {
                *a += x + y;
            }
        };
        let zeros = vec![0.0; n];
        let mut mev = [0.0f64; 3];
        for r in records {
            self.arrivals += u64::from(r.arrivals);
            self.included_user += u64::from(r.included_user);
            self.failed_swaps += u64::from(r.failed_swaps);
            self.sandwiches += u64::from(r.sandwiches);
            self.user_sandwich_loss += r.user_loss;
            mev[0] += r.sandwich_profit;
            mev[1] += r.backrun_profit;
            mev[2] += r.cross_arb_profit;
            self.hedge_cost += r.hedge_cost;
            self.auction_revenue += r.payments;
            self.unconserved_slots += u64::from(!r.conserved);
            self.welfare += r.welfare;
            add(&mut self.rollup_revenue_veil, &r.revenue_veil, &r.fallback_fees);
            add(&mut self.rollup_revenue_prop, &r.revenue_prop, &r.fallback_fees);
            add(&mut self.rollup_revenue_equal, &r.revenue_equal, &r.fallback_fees);
            add(&mut self.rollup_revenue_alone, &r.alone, &zeros);
            for (i, p) in r.builder_pnl.iter().enumerate() {
                self.builder_profit[i] += p;
            }
            for w in &r.winners {
                *self.wins.entry(w.clone()).or_default() += 1;
            }
            self.shill_wins += u64::from(r.shill_wins);
        }
        self.mev = [("sandwich", mev[0]), ("backrun", mev[1]), ("cross_arb", mev[2])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let builder_wins: Vec<u64> =
            self.wins.iter().filter(|(k, _)| k.as_str() != "fallback").map(|(_, v)| *v).collect();
        (self.hhi, self.top2_share) = concentration(&builder_wins);
    }
}

/// HHI (sum of squared shares, 0..1) and the top-2 share of a list of win counts.
#[must_use]
pub fn concentration(wins: &[u64]) -> (f64, f64) {
    let total: u64 = wins.iter().sum();
    if total == 0 {
        return (0.0, 0.0);
    }
    let t = total as f64;
    let hhi = wins.iter().map(|w| (*w as f64 / t).powi(2)).sum();
    let mut sorted = wins.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top2 = sorted.iter().take(2).sum::<u64>() as f64 / t;
    (hhi, top2)
}

/// HHI of builder wins over a sliding window of `window` slots, one value per slot.
#[must_use]
pub fn rolling_hhi(records: &[SlotRecord], window: usize) -> Vec<(u64, f64)> {
    let mut out = Vec::with_capacity(records.len());
    for end in 1..=records.len() {
        let start = end.saturating_sub(window);
        let mut wins: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &records[start..end] {
            for w in r.winners.iter().filter(|w| w.as_str() != "fallback") {
                *wins.entry(w.as_str()).or_default() += 1;
            }
        }
        let counts: Vec<u64> = wins.into_values().collect();
        out.push((records[end - 1].slot, concentration(&counts).0));
    }
    out
}

/// Formats a float for CSV: fixed 6 decimals, so outputs are byte-stable.
fn f(v: f64) -> String {
    format!("{v:.6}")
}

/// The per-slot CSV of a run (header included).
#[must_use]
pub fn csv(records: &[SlotRecord], builders: &[String]) -> String {
    let n = records.first().map_or(0, |r| r.revenue_veil.len());
    let mut s = String::from(
        "slot,price,arrivals,included_user,bundle_parts,failed_swaps,sandwiches,sandwich_profit,\
         user_loss,arb_profit,backrun_profit,cross_arb_profit,hedge_cost,payments,payouts,\
         conserved,welfare,shill_wins,shill_payments",
    );
    for kind in ["winner", "veil", "prop", "equal", "fallback_fees", "alone", "pool_price"] {
        for r in 0..n {
            let _ = write!(s, ",{kind}_r{r}");
        }
    }
    for b in builders {
        let _ = write!(s, ",pnl_{b}");
    }
    s.push('\n');
    for r in records {
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.slot,
            f(r.price),
            r.arrivals,
            r.included_user,
            r.bundle_parts,
            r.failed_swaps,
            r.sandwiches,
            f(r.sandwich_profit),
            f(r.user_loss),
            f(r.arb_profit),
            f(r.backrun_profit),
            f(r.cross_arb_profit),
            f(r.hedge_cost),
            f(r.payments),
            f(r.payouts),
            r.conserved,
            f(r.welfare),
            r.shill_wins,
            f(r.shill_payments),
        );
        for w in &r.winners {
            let _ = write!(s, ",{w}");
        }
        for v in [&r.revenue_veil, &r.revenue_prop, &r.revenue_equal, &r.fallback_fees, &r.alone] {
            for x in v {
                let _ = write!(s, ",{}", f(*x));
            }
        }
        for x in &r.pool_prices {
            let _ = write!(s, ",{}", f(*x));
        }
        for x in &r.builder_pnl {
            let _ = write!(s, ",{}", f(*x));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concentration_of_a_monopoly_and_of_an_even_market() {
        assert_eq!(concentration(&[10]), (1.0, 1.0));
        let (hhi, top2) = concentration(&[5, 5, 5, 5]);
        assert!((hhi - 0.25).abs() < 1e-12 && (top2 - 0.5).abs() < 1e-12);
    }
}
