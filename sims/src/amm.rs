//! Constant-product pools (Uniswap v2 style) and the two trades searchers make on them: the
//! sandwich around a victim swap and the arbitrage to a reference price.
//!
//! A pool holds `base` (say ETH) and `quote` (the numeraire, say USD) reserves. A swap of
//! `a` in pays the fee on the way in: with `γ = 1 - fee`, the output is
//! `out = R_out · γa / (R_in + γa)` and the input reserve grows by the whole `a`. Amounts are
//! `f64` in token units: the simulator is single-threaded within a run, so the same inputs give
//! the same bits.

use serde::{Deserialize, Serialize};

/// Which way a swap goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Pay quote, receive base.
    BuyBase,
    /// Pay base, receive quote.
    SellBase,
}

impl Side {
    /// The other direction.
    #[must_use]
    pub fn opposite(self) -> Side {
        match self {
            Side::BuyBase => Side::SellBase,
            Side::SellBase => Side::BuyBase,
        }
    }
}

/// A constant-product pool.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Base-token reserve.
    pub base: f64,
    /// Quote-token reserve.
    pub quote: f64,
    /// Fee charged on the input, as a fraction (0.003 is 30 bps).
    pub fee: f64,
}

impl Pool {
    /// A pool at `price` (quote per base) holding `base` units of base.
    #[must_use]
    pub fn at_price(base: f64, price: f64, fee: f64) -> Pool {
        Pool { base, quote: base * price, fee }
    }

    /// The marginal price, quote per base (before fee).
    #[must_use]
    pub fn price(&self) -> f64 {
        self.quote / self.base
    }

    fn reserves(&self, side: Side) -> (f64, f64) {
        match side {
            Side::BuyBase => (self.quote, self.base),
            Side::SellBase => (self.base, self.quote),
        }
    }

    /// The output of swapping `amount_in` on `side`, without changing the pool.
    #[must_use]
    pub fn quote_out(&self, side: Side, amount_in: f64) -> f64 {
        if amount_in <= 0.0 {
            return 0.0;
        }
        let (r_in, r_out) = self.reserves(side);
        let eff = amount_in * (1.0 - self.fee);
        r_out * eff / (r_in + eff)
    }

    /// Swaps `amount_in` on `side` and returns the output.
    pub fn swap(&mut self, side: Side, amount_in: f64) -> f64 {
        let out = self.quote_out(side, amount_in);
        match side {
            Side::BuyBase => {
                self.quote += amount_in;
                self.base -= out;
            }
            Side::SellBase => {
                self.base += amount_in;
                self.quote -= out;
            }
        }
        out
    }

    /// Swaps only if the output is at least `min_out`; returns `None` (pool unchanged) if not,
    /// as a reverting slippage check does.
    pub fn swap_checked(&mut self, side: Side, amount_in: f64, min_out: f64) -> Option<f64> {
        if self.quote_out(side, amount_in) + 1e-12 < min_out {
            return None;
        }
        Some(self.swap(side, amount_in))
    }
}

/// The outcome of a sandwich around one victim swap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sandwich {
    /// The front-run input (in the victim's input token).
    pub front_in: f64,
    /// The attacker's profit, in the victim's input token (back-run proceeds minus
    /// `front_in`).
    pub profit: f64,
    /// What the victim receives with the sandwich.
    pub victim_out: f64,
    /// What the victim would have received without it.
    pub victim_out_alone: f64,
}

/// Simulates front-run `front_in`, victim, back-run (selling everything the front-run bought)
/// on a copy of `pool`. Returns `None` if the victim's slippage check would fail.
#[must_use]
pub fn sandwich_with(
    pool: &Pool,
    side: Side,
    victim_in: f64,
    victim_min_out: f64,
    front_in: f64,
) -> Option<Sandwich> {
    let victim_out_alone = pool.quote_out(side, victim_in);
    let mut p = *pool;
    let bought = p.swap(side, front_in);
    let victim_out = p.swap_checked(side, victim_in, victim_min_out)?;
    let back = p.swap(side.opposite(), bought);
    Some(Sandwich { front_in, profit: back - front_in, victim_out, victim_out_alone })
}

/// The most profitable sandwich of one victim, found numerically on the pool code: the
/// largest front-run the victim's slippage limit allows is found by bisection, then the
/// profit is maximised over `[0, that bound]` by golden-section search. `None` if no
/// sandwich makes a positive profit.
#[must_use]
pub fn best_sandwich(
    pool: &Pool,
    side: Side,
    victim_in: f64,
    victim_min_out: f64,
) -> Option<Sandwich> {
    if pool.quote_out(side, victim_in) < victim_min_out {
        return None; // The victim fails even alone.
    }
    let (r_in, _) = pool.reserves(side);
    // Largest front-run that keeps the victim's output above its minimum.
    let (mut lo, mut hi) = (0.0f64, r_in);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if sandwich_with(pool, side, victim_in, victim_min_out, mid).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let bound = lo;
    let profit = |f: f64| sandwich_with(pool, side, victim_in, victim_min_out, f).map(|s| s.profit);
    // Golden-section search for the maximum on [0, bound].
    let g = 0.5 * (5f64.sqrt() - 1.0);
    let (mut a, mut b) = (0.0, bound);
    for _ in 0..100 {
        let c = b - g * (b - a);
        let d = a + g * (b - a);
        if profit(c).unwrap_or(f64::MIN) < profit(d).unwrap_or(f64::MIN) {
            a = c;
        } else {
            b = d;
        }
    }
    let inner = 0.5 * (a + b);
    let best = [inner, bound]
        .into_iter()
        .filter_map(|f| sandwich_with(pool, side, victim_in, victim_min_out, f))
        .max_by(|x, y| x.profit.total_cmp(&y.profit))?;
    (best.profit > 0.0).then_some(best)
}

/// The closed-form optimal sandwich of a **fee-less** constant-product pool on one victim
/// whose slippage limit binds (the textbook case).
///
/// With input reserve `x`, output reserve `y`, `k = xy`, victim input `Δ` and minimum output
/// `m`, the victim receives exactly `m` when the front-run leaves the input reserve at
/// `x₁ = (−Δ + √(Δ² + 4kΔ/m)) / 2`; the front-run is `x₁ − x`. Without fees the profit grows
/// with the front-run up to that bound, so the bound is the optimum. Returns the front-run
/// and the profit (in the input token), or `None` if the limit leaves no room.
#[must_use]
pub fn closed_form_sandwich(
    x: f64,
    y: f64,
    victim_in: f64,
    victim_min_out: f64,
) -> Option<(f64, f64)> {
    let k = x * y;
    let d = victim_in;
    let x1 = 0.5 * (-d + (d * d + 4.0 * k * d / victim_min_out).sqrt());
    let front = x1 - x;
    if front <= 0.0 {
        return None;
    }
    let front_out = y - k / x1; // Output reserve after the front-run is k / x1.
    let after_victim_in = x1 + d;
    let after_victim_out = k / after_victim_in;
    let back = after_victim_in - k / (after_victim_out + front_out);
    Some((front, back - front))
}

/// The arbitrage that moves `pool` to the reference `price`, net of the pool's fee: returns
/// the trade (side, input) that maximises `price · Δbase + Δquote`, or `None` if the pool
/// price lies within the fee band around `price`.
#[must_use]
pub fn arbitrage_to(pool: &Pool, price: f64) -> Option<(Side, f64)> {
    let g = 1.0 - pool.fee;
    let k = pool.base * pool.quote;
    if pool.price() < price * g {
        // Base is cheap in the pool: buy it with quote. Optimum: quote + γ·dq = √(p·γ·k).
        let dq = ((price * g * k).sqrt() - pool.quote) / g;
        (dq > 0.0).then_some((Side::BuyBase, dq))
    } else if pool.price() * g > price {
        // Base is dear in the pool: sell it. Optimum: base + γ·db = √(γ·k / p).
        let db = ((g * k / price).sqrt() - pool.base) / g;
        (db > 0.0).then_some((Side::SellBase, db))
    } else {
        None
    }
}

/// Executes [`arbitrage_to`] on `pool`; returns `(profit at price, Δbase held)`.
pub fn execute_arbitrage(pool: &mut Pool, price: f64) -> (f64, f64) {
    match arbitrage_to(pool, price) {
        None => (0.0, 0.0),
        Some((Side::BuyBase, dq)) => {
            let got = pool.swap(Side::BuyBase, dq);
            (price * got - dq, got)
        }
        Some((Side::SellBase, db)) => {
            let got = pool.swap(Side::SellBase, db);
            (got - price * db, -db)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_keeps_the_product_without_fee_and_grows_it_with_fee() {
        let mut p = Pool::at_price(1_000.0, 3_000.0, 0.0);
        let k = p.base * p.quote;
        p.swap(Side::SellBase, 10.0);
        assert!((p.base * p.quote - k).abs() / k < 1e-12);
        let mut q = Pool::at_price(1_000.0, 3_000.0, 0.003);
        q.swap(Side::BuyBase, 30_000.0);
        assert!(q.base * q.quote > k);
    }

    #[test]
    fn arbitrage_leaves_the_pool_at_the_fee_band_edge_and_profits() {
        let mut p = Pool::at_price(1_000.0, 3_000.0, 0.003);
        let (profit, held) = execute_arbitrage(&mut p, 3_100.0);
        assert!(profit > 0.0 && held > 0.0);
        // A second arbitrage finds (almost) nothing left.
        let (again, _) = execute_arbitrage(&mut p, 3_100.0);
        assert!(again.abs() < 1e-3 * profit, "{again} left after {profit}");
    }
}
