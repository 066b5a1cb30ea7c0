//! The two split rules Veil is compared with, computed on the outcome of Veil's real auction
//! (same winners, same payments; only the division differs), and each rollup's standalone
//! revenue. Veil's own split is read from the outcome's payouts, never recomputed here.
//!
//! Both use veil-auction's exact integer division ([`largest_remainder`]), so each sums to
//! the payment exactly, like Veil's.

use veil_auction::split::largest_remainder;
use veil_auction::PaymentRule;
use veil_primitives::{Amount, PublicKeyBytes};

/// One bid of the book as the splits see it: builder, rollup set, amount (micro-units).
pub type BookEntry = (PublicKeyBytes, Vec<u32>, u128);

/// The best single-rollup bid on `rollup` in `book` (any builder), or `floor` if none.
fn standalone(book: &[BookEntry], rollup: u32, floor: u128) -> u128 {
    book.iter()
        .filter(|(_, set, _)| set.as_slice() == [rollup])
        .map(|(_, _, a)| *a)
        .max()
        .unwrap_or(floor)
        .max(floor)
}

/// Splits `payment` over `rollups` in proportion to each rollup's best standalone bid in the
/// book (the reserve when nobody bid on it alone): the rule Espresso's marketplace states.
/// A losing single-rollup bid raises its rollup's share: that is the shill's lever.
///
/// # Errors
/// Only on arithmetic overflow (amounts beyond the auction's bounds).
pub fn proportional(
    payment: Amount,
    rollups: &[u32],
    book: &[BookEntry],
    reserves: &[u128],
) -> anyhow::Result<Vec<Amount>> {
    let weights: Vec<u128> = rollups
        .iter()
        .map(|r| standalone(book, *r, reserves.get(*r as usize).copied().unwrap_or(0)))
        .collect();
    largest_remainder(payment, &weights).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Splits `payment` equally over `rollups` (remainders to the lower positions).
///
/// # Errors
/// Only if `rollups` is empty and the payment is not zero.
pub fn equal(payment: Amount, rollups: &[u32]) -> anyhow::Result<Vec<Amount>> {
    largest_remainder(payment, &vec![0; rollups.len()]).map_err(|e| anyhow::anyhow!("{e}"))
}

/// What each rollup (one per entry of `reserves`) would have earned had it been sold on its own to the
/// single-rollup bids of the book: the best such bid under first-price; the second best (or
/// the reserve) under VCG, which for one item is the second-price auction. Zero when nobody
/// bid on it alone.
#[must_use]
pub fn standalone_revenue(book: &[BookEntry], reserves: &[u128], rule: PaymentRule) -> Vec<u128> {
    (0u32..)
        .zip(reserves)
        .map(|(r, reserve)| {
            let mut singles: Vec<u128> = book
                .iter()
                .filter(|(_, set, _)| set.as_slice() == [r])
                .map(|(_, _, a)| *a)
                .collect();
            singles.sort_unstable_by(|a, b| b.cmp(a));
            match (rule, singles.as_slice()) {
                (_, []) => 0,
                (PaymentRule::FirstPrice, [best, ..]) => *best,
                (PaymentRule::Vcg, [_]) => *reserve,
                (PaymentRule::Vcg, [_, second, ..]) => (*second).max(*reserve),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(b: u8) -> PublicKeyBytes {
        PublicKeyBytes([b; 32])
    }

    #[test]
    fn proportional_follows_standalone_bids_and_a_shill_moves_it() {
        let mut book =
            vec![(pk(1), vec![0], 300), (pk(1), vec![1], 100), (pk(2), vec![0, 1], 1000)];
        let parts = proportional(Amount(1000), &[0, 1], &book, &[10, 10]).unwrap();
        assert_eq!(parts, vec![Amount(750), Amount(250)]);
        book.push((pk(9), vec![1], 700)); // A losing shill on rollup 1.
        let parts = proportional(Amount(1000), &[0, 1], &book, &[10, 10]).unwrap();
        assert_eq!(parts, vec![Amount(300), Amount(700)]);
    }

    #[test]
    fn equal_split_sums_to_the_payment() {
        assert_eq!(equal(Amount(10), &[0, 1, 2]).unwrap(), vec![Amount(4), Amount(3), Amount(3)]);
    }

    #[test]
    fn standalone_revenue_is_first_or_second_price() {
        let book = vec![(pk(1), vec![0], 300), (pk(2), vec![0], 200), (pk(1), vec![1], 50)];
        assert_eq!(standalone_revenue(&book, &[10; 3], PaymentRule::FirstPrice), vec![300, 50, 0]);
        assert_eq!(standalone_revenue(&book, &[10; 3], PaymentRule::Vcg), vec![200, 10, 0]);
    }

    proptest::proptest! {
        #[test]
        fn both_rules_conserve_the_payment(
            payment in 0u128..1 << 100,
            bids in proptest::collection::vec((0u32..4, 0u128..1 << 60), 0..12),
        ) {
            let book: Vec<BookEntry> = bids.iter().map(|(r, a)| (pk(1), vec![*r], *a)).collect();
            let rollups = [0u32, 1, 2, 3];
            let p = proportional(Amount(payment), &rollups, &book, &[1; 4]).unwrap();
            let e = equal(Amount(payment), &rollups).unwrap();
            proptest::prop_assert_eq!(p.iter().map(|a| a.0).sum::<u128>(), payment);
            proptest::prop_assert_eq!(e.iter().map(|a| a.0).sum::<u128>(), payment);
        }
    }
}
