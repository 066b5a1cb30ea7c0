//! Bid intake against DESIGN.md's "Bad input" table, replacement, caps, close and settle.

use veil_auction::{
    AuctionError, BundleRef, PaymentRule, PlaintextTx, RollupChange, RollupUpdate, SignedBid,
    TxMeta, WithdrawalRequest,
};
use veil_primitives::{Amount, BundleId, ChainId, Eon, PublicKeyBytes, RollupId, Slot};

use crate::{bid, key, rollup_config, tx, world, CHAIN};

#[test]
fn every_bad_input_gets_its_typed_rejection_and_leaves_other_bids_alone() {
    let (mut a, mut pool) = world(PaymentRule::FirstPrice);
    let good = a.submit_bid(bid(10, &[0], 500, 1).sign(&key(10)), &pool, 10).unwrap();

    let mut bad_sig = bid(10, &[1], 500, 1).sign(&key(10));
    bad_sig.signature.0[0] ^= 1;
    let wrong_signer = bid(10, &[1], 500, 1).sign(&key(11));
    let mut wrong_chain = bid(10, &[1], 500, 1);
    wrong_chain.chain_id = ChainId(99);
    let mut closed_slot = bid(10, &[1], 500, 1);
    closed_slot.slot = Slot(2);
    let mut unknown_ct = bid(10, &[1], 500, 1);
    unknown_ct.blocks[0].ciphertexts.push(tx(1, 999));
    let mut dup = bid(10, &[1], 500, 1);
    dup.blocks[0].ciphertexts.push(tx(1, 0));
    let mut mismatch = bid(10, &[1], 500, 1);
    mismatch.blocks[0].ciphertexts.push(tx(2, 5));
    let mut gas = bid(10, &[1], 500, 1);
    gas.blocks[0].plaintext.push(PlaintextTx { gas_limit: 999_999, data: vec![1] });
    let mut unsorted = bid(10, &[1, 2], 500, 1);
    unsorted.blocks.swap(0, 1);
    let expired_id = tx(3, 100);
    pool.insert(
        expired_id,
        TxMeta {
            chain_id: ChainId(1),
            eon: Eon(1),
            fee_payer: PublicKeyBytes([0; 32]),
            rollup: RollupId(3),
            gas_limit: 1,
            max_fee: Amount(1),
            expiry_slot: Slot(0),
            bundle: None,
        },
    );
    let mut expired = bid(10, &[3], 500, 1);
    expired.blocks[0].ciphertexts.push(expired_id);
    // A bundle of two parts (rollups 1 and 2); the bid carries only one.
    let bundle = BundleId([7; 32]);
    for (index, r) in [(0u16, 1u32), (1, 2)] {
        pool.insert(
            tx(r, 500),
            TxMeta {
                chain_id: ChainId(1),
                eon: Eon(1),
                fee_payer: PublicKeyBytes([0; 32]),
                rollup: RollupId(r),
                gas_limit: 1,
                max_fee: Amount(1),
                expiry_slot: Slot(9),
                bundle: Some(BundleRef { id: bundle, index, count: 2 }),
            },
        );
    }
    let mut partial = bid(10, &[1], 500, 1);
    partial.blocks[0].ciphertexts.push(tx(1, 500));
    let mut whole = bid(10, &[1, 2], 500, 1);
    whole.blocks[0].ciphertexts.push(tx(1, 500));
    whole.blocks[1].ciphertexts.push(tx(2, 500));

    let cases: Vec<(SignedBid, &str)> = vec![
        (bad_sig, "BAD_SIGNATURE"),
        (wrong_signer, "BAD_SIGNATURE"),
        (wrong_chain.sign(&key(10)), "WRONG_CHAIN"),
        (closed_slot.sign(&key(10)), "SLOT_NOT_OPEN"),
        (bid(20, &[1], 500, 1).sign(&key(20)), "UNKNOWN_BUILDER"),
        (bid(10, &[1], 10_001, 1).sign(&key(10)), "INSUFFICIENT_COLLATERAL"),
        (bid(10, &[], 500, 1).sign(&key(10)), "EMPTY_ROLLUP_SET"),
        (unsorted.sign(&key(10)), "ROLLUP_SET_NOT_CANONICAL"),
        (bid(10, &[7], 500, 1).sign(&key(10)), "UNKNOWN_ROLLUP"),
        (bid(10, &[1, 2], 150, 1).sign(&key(10)), "BELOW_RESERVE"),
        (unknown_ct.sign(&key(10)), "UNKNOWN_CIPHERTEXT"),
        (expired.sign(&key(10)), "EXPIRED_CIPHERTEXT"),
        (mismatch.sign(&key(10)), "CIPHERTEXT_ROLLUP_MISMATCH"),
        (dup.sign(&key(10)), "DUPLICATE_CIPHERTEXT"),
        (gas.sign(&key(10)), "GAS_LIMIT_EXCEEDED"),
        (partial.sign(&key(10)), "PARTIAL_BUNDLE"),
        (bid(10, &[0], 400, 1).sign(&key(10)), "STALE_SEQUENCE"),
    ];
    for (signed, code) in cases.clone() {
        let err = a.submit_bid(signed, &pool, 10).unwrap_err();
        assert_eq!(err.code().name(), code, "{err}");
    }
    // The batched path gives the same verdicts.
    let (signed, codes): (Vec<SignedBid>, Vec<&str>) = cases.into_iter().unzip();
    for (r, code) in a.submit_bids(signed, &pool, 10).into_iter().zip(codes) {
        assert_eq!(r.unwrap_err().code().name(), code);
    }
    // A complete bundle is fine; the first bid is still held.
    a.submit_bid(whole.sign(&key(10)), &pool, 10).unwrap();
    assert_eq!(a.book(Slot(1)).unwrap().len(), 2);
    assert!(a.book(Slot(1)).unwrap().sorted_bids().iter().any(|b| b.id == good.id));
    // After the deadline: closed, no replacement.
    let late = a.submit_bid(bid(10, &[0], 900, 2).sign(&key(10)), &pool, 1_001).unwrap_err();
    assert!(matches!(late, AuctionError::SlotClosed { .. }));
}

#[test]
fn replacement_cap_and_inactive_rollups() {
    let (mut a, pool) = world(PaymentRule::FirstPrice);
    let first = a.submit_bid(bid(10, &[0], 500, 1).sign(&key(10)), &pool, 0).unwrap();
    let second = a.submit_bid(bid(10, &[0], 300, 5).sign(&key(10)), &pool, 0).unwrap();
    assert_eq!(second.replaced, Some(first.id));
    assert_eq!(a.book(Slot(1)).unwrap().len(), 1);
    for (i, set) in [&[1u32][..], &[2], &[3]].into_iter().enumerate() {
        a.submit_bid(bid(10, set, 500, i as u64 + 1).sign(&key(10)), &pool, 0).unwrap();
    }
    let err = a.submit_bid(bid(10, &[0, 1], 500, 1).sign(&key(10)), &pool, 0).unwrap_err();
    assert_eq!(err, AuctionError::TooManyBids { cap: 4 });
    // Replacing at the cap is still allowed.
    a.submit_bid(bid(10, &[3], 600, 9).sign(&key(10)), &pool, 0).unwrap();
    assert_eq!(a.stats().bids_replaced, 2);

    // Deactivate rollup 3 from slot 2 on: slot 1 keeps its terms.
    let update = RollupUpdate {
        chain_id: CHAIN,
        rollup: RollupId(3),
        nonce: 2,
        effective: Slot(2),
        change: RollupChange::Configure(veil_auction::RollupConfig {
            active: false,
            ..rollup_config(100, 1_000_000)
        }),
    };
    a.apply_rollup_update(&update.clone().sign(&key(1))).unwrap();
    let too_early = RollupUpdate { nonce: 3, effective: Slot(1), ..update };
    assert!(matches!(
        a.apply_rollup_update(&too_early.sign(&key(1))),
        Err(AuctionError::EffectiveSlotTooEarly { .. })
    ));
    a.submit_bid(bid(11, &[3], 500, 1).sign(&key(11)), &pool, 0).unwrap();
    a.close_slot(Slot(1), 1_000, &[]).unwrap();
    a.open_slot(Slot(2), 2_000).unwrap();
    let mut b = bid(11, &[3], 500, 1);
    b.slot = Slot(2);
    assert_eq!(
        a.submit_bid(b.sign(&key(11)), &pool, 0),
        Err(AuctionError::InactiveRollup(RollupId(3)))
    );
}

#[test]
fn close_locks_then_settle_debits_and_collateral_caps_multiple_wins() {
    let (mut a, pool) = world(PaymentRule::FirstPrice);
    // Builder 10 bids 6,000 on each of two rollups: each bid fits, both together do not.
    a.submit_bid(bid(10, &[0], 6_000, 1).sign(&key(10)), &pool, 0).unwrap();
    a.submit_bid(bid(10, &[1], 7_000, 1).sign(&key(10)), &pool, 0).unwrap();
    a.submit_bid(bid(11, &[0], 1_000, 1).sign(&key(11)), &pool, 0).unwrap();
    assert!(matches!(
        a.close_slot(Slot(1), 999, &[]),
        Err(AuctionError::DeadlineNotReached { .. })
    ));
    let pending: Vec<_> = pool.iter().map(|(id, m)| (*id, *m)).collect();
    let outcome = a.close_slot(Slot(1), 1_000, &pending).unwrap();
    assert_eq!(outcome.excluded_for_collateral.len(), 1);
    let b10 = outcome.winners.iter().find(|w| w.builder == crate::public_key(&key(10))).unwrap();
    assert_eq!(b10.payment, Amount(7_000));
    assert_eq!(outcome.total_payouts(), outcome.total_payments());
    assert_eq!(outcome.total_payments(), Amount(8_000));
    // Rollups 2 and 3 were not sold: fee-ordered fallback blocks.
    assert_eq!(outcome.fallback.len(), 2);
    let fb = &outcome.fallback[0];
    assert_eq!(fb.rollup, RollupId(2));
    assert_eq!(fb.ciphertexts.len(), 10, "gas limit 1,000,000 / 100,000");
    assert_eq!(fb.ciphertexts[0], tx(2, 19), "highest fee first");
    let account = a.builder(&crate::public_key(&key(10))).unwrap();
    assert_eq!(account.available(), Amount(3_000));
    // A withdrawal cannot take locked collateral.
    let w = WithdrawalRequest {
        chain_id: CHAIN,
        builder: crate::public_key(&key(10)),
        amount: Amount(3_001),
        nonce: 1,
    };
    assert!(a.request_withdrawal(&w.sign(&key(10)), Slot(1)).is_err());
    let ledger = a.settle(Slot(1)).unwrap();
    assert_eq!(ledger, outcome.ledger);
    assert_eq!(a.builder(&crate::public_key(&key(10))).unwrap().balance(), Amount(3_000));
    assert_eq!(a.settle(Slot(1)), Err(AuctionError::NothingToSettle(Slot(1))));
}

#[test]
fn outcome_is_independent_of_arrival_order() {
    let bids = vec![
        bid(10, &[0, 1], 900, 1),
        bid(11, &[0], 450, 1),
        bid(11, &[1], 460, 1),
        bid(12, &[2, 3], 700, 1),
        bid(13, &[2], 350, 1),
        bid(13, &[3], 350, 1),
        bid(12, &[1, 2, 3], 1_000, 1),
    ];
    let mut hashes = Vec::new();
    for rotation in 0..bids.len() {
        for rule in [PaymentRule::FirstPrice, PaymentRule::Vcg] {
            let (mut a, pool) = world(rule);
            let mut order = bids.clone();
            order.rotate_left(rotation);
            if rotation % 2 == 1 {
                order.reverse();
            }
            let signed = order.into_iter().map(|b| {
                let k = (0..=255u8).find(|s| crate::public_key(&key(*s)) == b.builder).unwrap();
                b.sign(&key(k))
            });
            for r in a.submit_bids(signed.collect(), &pool, 0) {
                r.unwrap();
            }
            let outcome = a.close_slot(Slot(1), 1_000, &[]).unwrap();
            hashes.push((rule, outcome.hash()));
        }
    }
    for (rule, h) in &hashes {
        assert_eq!(Some(h), hashes.iter().find(|(r, _)| r == rule).map(|(_, h)| h));
    }
    assert_ne!(hashes[0].1, hashes[1].1, "the rule is part of the record");
}

#[test]
fn outcome_json_roundtrips_with_hex_and_decimal_strings() {
    let (mut a, pool) = world(PaymentRule::Vcg);
    a.submit_bid(bid(10, &[0, 1], 900, 1).sign(&key(10)), &pool, 0).unwrap();
    a.submit_bid(bid(11, &[0], 450, 1).sign(&key(11)), &pool, 0).unwrap();
    let outcome = a.close_slot(Slot(1), 1_000, &[]).unwrap();
    let json = serde_json::to_string(&outcome).unwrap();
    assert!(json.contains("\"payment\":\""));
    assert!(json.contains("\"bids_digest\":\"0x"));
    let back: veil_auction::Outcome = serde_json::from_str(&json).unwrap();
    assert_eq!(back.hash(), outcome.hash());
}
