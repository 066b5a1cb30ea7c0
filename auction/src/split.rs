//! The revenue split: exact integer division of a payment over rollups, then over buckets.
//!
//! For one winning builder who pays `P` for the union `U` of the rollups it won:
//!
//! 1. every rollup `r ∈ U` first gets its reserve `res_r` (the payment covers them: bids below
//!    their reserve total are refused, and both payment rules charge at least the reserves);
//! 2. the surplus `P - Σ res_r` is split in proportion to the clipped marginal contributions
//!    `m_r = max(0, W(U) - W(U \ {r}))`, computed by the caller (see [`crate::payment`]);
//!    if every `m_r` is zero, the surplus is split equally;
//! 3. each rollup's share is split over its policy's buckets by basis points.
//!
//! Every division is exact in integers: each part gets the floor of its proportional share
//! and the units left over go one each to the parts with the largest remainders, ties to the
//! lower rollup id or bucket name. The parts always sum to the whole. Products are formed in
//! 256 bits, so no amount up to `u128::MAX` overflows.

use veil_primitives::{Amount, RollupId};

use crate::registry::RollupConfig;
use crate::AuctionError;

/// `(a * b / d, a * b % d)` for `b <= d`, `d > 0`, with a 256-bit intermediate product.
///
/// The precondition keeps the quotient at most `a`. Returns `None` when it does not hold.
#[must_use]
pub fn mul_div(a: u128, b: u128, d: u128) -> Option<(u128, u128)> {
    if d == 0 || b > d {
        return None;
    }
    let (hi, lo) = mul_wide(a, b);
    // Long division of the 256-bit (hi, lo) by d, one bit at a time.
    let mut rem: u128 = 0;
    let mut quot: u128 = 0;
    for bit in (0..256).rev() {
        let next = if bit >= 128 { hi >> (bit - 128) & 1 } else { lo >> bit & 1 };
        let carry = rem >> 127;
        rem = rem << 1 | next;
        quot <<= 1;
        if carry == 1 || rem >= d {
            rem = rem.wrapping_sub(d);
            quot |= 1;
        }
    }
    Some((quot, rem))
}

/// The full 256-bit product `a * b` as `(high, low)` halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let lo = (p00 & MASK) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// Splits `total` in proportion to `weights` (in the caller's tie-break order), or equally
/// when every weight is zero. The parts sum to `total` exactly.
///
/// Each part is the floor of `total * w / Σw`; the leftover units go one each to the parts
/// with the largest remainders, ties to the earlier position.
pub fn largest_remainder(total: Amount, weights: &[u128]) -> Result<Vec<Amount>, AuctionError> {
    if weights.is_empty() {
        return if total.0 == 0 {
            Ok(Vec::new())
        } else {
            Err(AuctionError::Overflow("split over no parts"))
        };
    }
    let mut sum: u128 = 0;
    for w in weights {
        sum = sum.checked_add(*w).ok_or(AuctionError::Overflow("split weights"))?;
    }
    let equal;
    let (weights, sum) = if sum == 0 {
        equal = vec![1u128; weights.len()];
        (&equal[..], weights.len() as u128)
    } else {
        (weights, sum)
    };
    let mut parts = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for w in weights {
        let (q, r) = mul_div(total.0, *w, sum).ok_or(AuctionError::Overflow("split"))?;
        given += q; // Σ floor(total·w/Σw) ≤ total.
        parts.push(q);
        rems.push(r);
    }
    let leftover = total.0 - given; // < number of parts.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| rems[b].cmp(&rems[a]).then(a.cmp(&b)));
    for &k in order.iter().take(usize::try_from(leftover).unwrap_or(usize::MAX)) {
        parts[k] += 1;
    }
    Ok(parts.into_iter().map(Amount).collect())
}

/// One rollup's part of one winner's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupShare {
    /// The rollup.
    pub rollup: RollupId,
    /// Its reserve, paid first.
    pub reserve: Amount,
    /// Its clipped marginal contribution (in the surplus's unit).
    pub contribution: Amount,
    /// Reserve plus its part of the surplus.
    pub share: Amount,
    /// The share split over the policy's buckets, in bucket name order.
    pub buckets: Vec<Amount>,
}

/// Splits `payment` over `rollups` (sorted by id, each with its terms and clipped marginal
/// contribution), then over each rollup's buckets.
///
/// Fails with [`AuctionError::BelowReserve`] if the payment does not cover the reserves.
pub fn split_payment(
    payment: Amount,
    rollups: &[(RollupId, &RollupConfig, Amount)],
) -> Result<Vec<RollupShare>, AuctionError> {
    let mut reserve_total = Amount::ZERO;
    for (_, config, _) in rollups {
        reserve_total = reserve_total
            .checked_add(config.reserve)
            .ok_or(AuctionError::Overflow("reserve total"))?;
    }
    let surplus = payment
        .checked_sub(reserve_total)
        .ok_or(AuctionError::BelowReserve { reserve: reserve_total, amount: payment })?;
    let contributions: Vec<u128> = rollups.iter().map(|(_, _, m)| m.0).collect();
    let surplus_parts = largest_remainder(surplus, &contributions)?;
    rollups
        .iter()
        .zip(surplus_parts)
        .map(|((rollup, config, contribution), part)| {
            let share =
                config.reserve.checked_add(part).ok_or(AuctionError::Overflow("rollup share"))?;
            let bps: Vec<u128> =
                config.policy.buckets().iter().map(|b| u128::from(b.bps)).collect();
            let buckets = largest_remainder(share, &bps)?;
            Ok(RollupShare {
                rollup: *rollup,
                reserve: config.reserve,
                contribution: *contribution,
                share,
                buckets,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_div_matches_small_arithmetic_and_handles_wide_products() {
        assert_eq!(mul_div(10, 3, 7), Some((4, 2)));
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some((u128::MAX, 0)));
        assert_eq!(mul_div(u128::MAX, 1, 2), Some((u128::MAX / 2, 1)));
        assert_eq!(mul_div(u128::MAX, 3, 4), Some((u128::MAX / 4 * 3 + 2, 1)));
        assert_eq!(mul_div(1, 2, 1), None);
    }

    #[test]
    fn largest_remainder_ties_go_to_the_earlier_part() {
        let parts = largest_remainder(Amount(10), &[1, 1, 1]).unwrap();
        assert_eq!(parts, vec![Amount(4), Amount(3), Amount(3)]);
        let parts = largest_remainder(Amount(10), &[0, 0]).unwrap();
        assert_eq!(parts, vec![Amount(5), Amount(5)]);
        let parts = largest_remainder(Amount(7), &[1, 2]).unwrap();
        assert_eq!(parts, vec![Amount(2), Amount(5)]);
    }

    proptest::proptest! {
        #[test]
        fn parts_sum_to_the_whole(total: u128, weights in proptest::collection::vec(0u128..u128::MAX / 64, 1..12)) {
            let parts = largest_remainder(Amount(total), &weights).unwrap();
            let sum = parts.iter().fold(0u128, |a, p| a + p.0);
            proptest::prop_assert_eq!(sum, total);
        }

        #[test]
        fn mul_div_agrees_with_u128_when_it_fits(a in 0u128..1 << 64, b in 0u128..1 << 60, extra in 0u128..1 << 60) {
            let d = b + extra + 1;
            let (q, r) = mul_div(a, b, d).unwrap();
            proptest::prop_assert_eq!(q, a * b / d);
            proptest::prop_assert_eq!(r, a * b % d);
        }
    }
}
