use std::num::NonZeroUsize;

use proptest::prelude::*;

use veil_primitives::BundleRef;

use super::*;

const CHAIN: ChainId = ChainId(7);
const EON: Eon = Eon(1);

fn meta(rollup: u32, fee: u128, payer: u8, expiry: u64) -> TxMeta {
    TxMeta {
        chain_id: CHAIN,
        eon: EON,
        rollup: RollupId(rollup),
        fee_payer: PublicKeyBytes([payer; 32]),
        max_fee: Amount(fee),
        gas_limit: 21_000,
        expiry_slot: Slot(expiry),
        bundle: None,
    }
}

fn cand(n: u64, meta: TxMeta) -> Candidate {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_le_bytes());
    let mut ek = [1u8; 32];
    ek[..8].copy_from_slice(&n.to_le_bytes());
    Candidate {
        id: TxId(id),
        meta,
        ephemeral_key: EphemeralKeyDigest(ek),
        body: Bytes::from(vec![n as u8; 100]),
        payer_signature: SignatureBytes([0; 64]),
    }
}

fn bundle(first: u64, rollups: &[u32], fee: u128, tag: u8) -> Vec<Candidate> {
    let count = rollups.len() as u16;
    rollups
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut m = meta(*r, fee, 9, 100);
            m.bundle = Some(BundleRef { id: BundleId([tag; 32]), index: i as u16, count });
            cand(first + i as u64, m)
        })
        .collect()
}

fn pool() -> Pool {
    Pool::new(PoolConfig::new(CHAIN), Slot(10), &[EON])
}

fn small(max_txs: usize, per_rollup: usize, per_sender: usize) -> Pool {
    let mut c = PoolConfig::new(CHAIN);
    c.max_txs = NonZeroUsize::new(max_txs).unwrap();
    c.max_per_rollup = NonZeroUsize::new(per_rollup).unwrap();
    c.max_per_sender = NonZeroUsize::new(per_sender).unwrap();
    Pool::new(c, Slot(10), &[EON])
}

fn code(r: Result<Admitted, Rejection>) -> ErrorCode {
    r.unwrap_err().code
}

#[test]
fn admit_and_duplicate_is_idempotent() {
    let mut p = pool();
    let a = p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    assert!(!a.duplicate);
    assert_eq!(a.inserted, vec![Seq(0)]);
    let b = p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    assert!(b.duplicate);
    assert_eq!(a.ids, b.ids);
    assert!(b.inserted.is_empty());
    assert_eq!(p.len(), 1);
    assert_eq!(p.stats().duplicates, 1);
}

#[test]
fn same_ephemeral_key_in_other_ciphertext_is_rejected() {
    let mut p = pool();
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    let mut copy = cand(2, meta(1, 10, 2, 20));
    copy.ephemeral_key = cand(1, meta(1, 10, 1, 20)).ephemeral_key;
    assert_eq!(code(p.admit_tx(copy)), ErrorCode::EphemeralKeyReused);
    assert_eq!(p.stats().rejected(ErrorCode::EphemeralKeyReused), 1);
}

#[test]
fn metadata_rules() {
    let mut p = pool();
    let mut c = cand(1, meta(1, 10, 1, 20));
    c.meta.chain_id = ChainId(8);
    assert_eq!(code(p.admit_tx(c)), ErrorCode::WrongChain);
    let mut c = cand(2, meta(1, 10, 1, 20));
    c.meta.eon = Eon(2);
    assert_eq!(code(p.admit_tx(c)), ErrorCode::WrongEon);
    assert_eq!(code(p.admit_tx(cand(3, meta(1, 10, 1, 9)))), ErrorCode::Expired);
    assert_eq!(code(p.admit_tx(cand(4, meta(1, 10, 1, 1_000_000)))), ErrorCode::Expired);
    let mut c = cand(5, meta(1, 10, 1, 20));
    c.body = Bytes::from(vec![0; DEFAULT_MAX_CIPHERTEXT_SIZE + 1]);
    assert_eq!(code(p.admit_tx(c)), ErrorCode::CiphertextTooLarge);
    let mut cfg = PoolConfig::new(CHAIN);
    cfg.min_fee = Amount(5);
    let mut p = Pool::new(cfg, Slot(10), &[EON]);
    assert_eq!(code(p.admit_tx(cand(6, meta(1, 4, 1, 20)))), ErrorCode::FeeTooLow);
    p.admit_tx(cand(7, meta(1, 5, 1, 20))).unwrap();
    // Expiry exactly at the current slot is still admissible.
    p.admit_tx(cand(8, meta(1, 5, 1, 10))).unwrap();
}

#[test]
fn sender_quota() {
    let mut p = small(100, 100, 2);
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(2, 10, 1, 20))).unwrap();
    assert_eq!(code(p.admit_tx(cand(3, meta(1, 10, 1, 20)))), ErrorCode::SenderQuota);
    p.admit_tx(cand(4, meta(1, 10, 2, 20))).unwrap();
}

/// A payer at its quota replaces its own lowest-fee lone transaction with one that pays more,
/// never another payer's, never a bundle part, never for an equal fee.
#[test]
fn sender_at_quota_replaces_its_cheapest() {
    let mut p = small(100, 100, 3);
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(2, 5, 1, 20))).unwrap();
    p.admit_tx(cand(3, meta(1, 1, 2, 20))).unwrap(); // another payer, cheaper still
    let mut b = bundle(4, &[3], 2, 7);
    b[0].meta.fee_payer = PublicKeyBytes([1; 32]);
    p.admit_bundle(b).unwrap(); // payer 1's bundle part pays 2: not replaceable
    assert_eq!(code(p.admit_tx(cand(5, meta(1, 5, 1, 20)))), ErrorCode::SenderQuota);
    let a = p.admit_tx(cand(6, meta(1, 6, 1, 20))).unwrap();
    assert_eq!(a.evicted.len(), 1);
    assert_eq!(a.evicted[0].1, cand(2, meta(2, 5, 1, 20)).id, "its lowest-fee lone tx");
    assert!(p.get(&cand(3, meta(1, 1, 2, 20)).id).is_some(), "the other payer's tx stays");
    assert!(p.get(&cand(4, meta(3, 2, 1, 20)).id).is_some(), "the bundle part stays");
    assert_eq!(p.len(), 4);
    // Next: only the fee-10 and fee-6 lone txs are replaceable; 7 beats 6.
    let a = p.admit_tx(cand(7, meta(1, 7, 1, 20))).unwrap();
    assert_eq!(a.evicted[0].1, cand(6, meta(1, 6, 1, 20)).id);
}

fn funded(per_sender: usize) -> Pool {
    let mut c = PoolConfig::new(CHAIN);
    c.max_per_sender = NonZeroUsize::new(per_sender).unwrap();
    c.fee_accounts = true;
    Pool::new(c, Slot(10), &[EON])
}

fn payer(n: u8) -> PublicKeyBytes {
    PublicKeyBytes([n; 32])
}

#[test]
fn fee_accounts_reserve_hold_and_settle() {
    let mut p = funded(100);
    // Unfunded: refused, also by the cheap gate.
    assert_eq!(code(p.admit_tx(cand(1, meta(1, 10, 1, 20)))), ErrorCode::InsufficientBalance);
    assert_eq!(
        p.check_funded(&meta(1, 10, 1, 20)).unwrap_err().code,
        ErrorCode::InsufficientBalance
    );
    // Zero-fee transactions still need a funded payer.
    assert_eq!(code(p.admit_tx(cand(1, meta(1, 0, 1, 20)))), ErrorCode::InsufficientBalance);
    p.credit_fee(payer(1), Amount(25));
    assert!(p.check_funded(&meta(1, 25, 1, 20)).is_ok());
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(1, 10, 1, 12))).unwrap();
    assert_eq!(p.fee_account(&payer(1)).unwrap().available(), Amount(5));
    // The gate looks at the balance only; the pool's rule at what is available.
    assert!(p.check_funded(&meta(1, 6, 1, 20)).is_ok());
    assert_eq!(code(p.admit_tx(cand(3, meta(1, 6, 1, 20)))), ErrorCode::InsufficientBalance);
    // A bundle's parts of one payer count together.
    let mut b = bundle(4, &[2, 3], 3, 5);
    for part in &mut b {
        part.meta.fee_payer = payer(1);
    }
    assert_eq!(code(p.admit_bundle(b.clone())), ErrorCode::InsufficientBalance);
    // Expiry releases the reservation.
    let gone = p.on_slot(Slot(13));
    assert_eq!(gone.len(), 1);
    assert_eq!(p.fee_account(&payer(1)).unwrap().available(), Amount(15));
    p.admit_bundle(b).unwrap();
    assert_eq!(p.fee_account(&payer(1)).unwrap().available(), Amount(9));
    // A transaction whose slot settled already is removed without a hold.
    p.admit_tx(cand(9, meta(1, 1, 1, 20))).unwrap();
    assert_eq!(p.remove_settled(&[cand(9, meta(1, 1, 1, 20)).id]).len(), 1);
    assert_eq!(p.fee_account(&payer(1)).unwrap().held, Amount(0));
    // Commitment holds the reservation until settlement charges it.
    let committed = p.remove_committed(&[cand(1, meta(1, 10, 1, 20)).id]);
    assert_eq!(committed.len(), 1);
    let a = p.fee_account(&payer(1)).unwrap();
    assert_eq!((a.balance, a.reserved, a.held), (Amount(25), Amount(6), Amount(10)));
    assert_eq!(a.available(), Amount(9));
    p.settle_fee(&payer(1), Amount(10), Amount(15));
    let a = p.fee_account(&payer(1)).unwrap();
    assert_eq!((a.balance, a.reserved, a.held), (Amount(15), Amount(6), Amount(0)));
    assert_eq!(a.available(), Amount(9));
}

/// At its quota, the replaced transaction's reservation pays for the new one.
#[test]
fn replacement_frees_its_reservation() {
    let mut p = funded(2);
    p.credit_fee(payer(1), Amount(20));
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(1, 8, 1, 20))).unwrap();
    assert_eq!(p.fee_account(&payer(1)).unwrap().available(), Amount(2));
    let a = p.admit_tx(cand(3, meta(1, 9, 1, 20))).unwrap();
    assert_eq!(a.evicted.len(), 1);
    assert_eq!(p.fee_account(&payer(1)).unwrap().available(), Amount(1));
    assert_eq!(code(p.admit_tx(cand(4, meta(1, 12, 1, 20)))), ErrorCode::InsufficientBalance);
}

#[derive(Debug, Clone)]
enum AccountOp {
    Credit(u8, u8),
    Admit(u8, u8, u8),
    Slot,
    Commit(u8),
    Settle(u8, u8),
}

fn account_op() -> impl Strategy<Value = AccountOp> {
    prop_oneof![
        (0u8..3, 1u8..40).prop_map(|(p, a)| AccountOp::Credit(p, a)),
        (0u8..3, 0u8..20, 0u8..4).prop_map(|(p, f, e)| AccountOp::Admit(p, f, e)),
        Just(AccountOp::Slot),
        any::<u8>().prop_map(AccountOp::Commit),
        (0u8..3, 0u8..20).prop_map(|(p, a)| AccountOp::Settle(p, a)),
    ]
}

proptest! {
    /// Whatever the order of deposits, admissions, expiries, commitments and settlements:
    /// each payer's reservation is exactly the `max_fee` of its pending transactions, and
    /// what it has pending and held never exceeds its balance unless a settlement charged
    /// more than was held (which only a crash window can cause).
    #[test]
    fn reservations_match_pending(ops in proptest::collection::vec(account_op(), 1..120)) {
        let mut p = funded(4);
        let mut n = 100u64;
        let mut slot = 10;
        let mut overcharged = [false; 3];
        for op in ops {
            match op {
                AccountOp::Credit(who, amount) => p.credit_fee(payer(who), Amount(amount.into())),
                AccountOp::Admit(who, fee, ttl) => {
                    n += 1;
                    let _ = p.admit_tx(cand(n, meta(1, fee.into(), who, slot + u64::from(ttl))));
                }
                AccountOp::Slot => {
                    slot += 1;
                    let _ = p.on_slot(Slot(slot));
                }
                AccountOp::Commit(pick) => {
                    let ids: Vec<TxId> = p.entries.values().map(|e| e.id).collect();
                    if !ids.is_empty() {
                        let _ = p.remove_committed(&[ids[usize::from(pick) % ids.len()]]);
                    }
                }
                AccountOp::Settle(who, amount) => {
                    let held = p.fee_account(&payer(who)).map_or(Amount::ZERO, |a| a.held);
                    if Amount(amount.into()) > held {
                        overcharged[usize::from(who)] = true;
                    }
                    let balance = p.fee_account(&payer(who)).map_or(Amount::ZERO, |a| a.balance);
                    p.settle_fee(&payer(who), Amount(amount.into()), balance.saturating_sub(Amount(amount.into())));
                }
            }
            for who in 0..3u8 {
                let pending: u128 = p
                    .entries
                    .values()
                    .filter(|e| p.payers.at(e.payer).key == payer(who))
                    .map(|e| e.max_fee.0)
                    .sum();
                let a = p.fee_account(&payer(who)).unwrap_or_default();
                prop_assert_eq!(a.reserved.0, pending);
                if !overcharged[usize::from(who)] {
                    prop_assert!(a.reserved.0 + a.held.0 <= a.balance.0);
                }
            }
        }
    }
}

#[test]
fn indexes_by_fee_and_arrival() {
    let mut p = pool();
    for (n, fee) in [(1, 5), (2, 50), (3, 20), (4, 50)] {
        p.admit_tx(cand(n, meta(1, fee, n as u8, 20))).unwrap();
    }
    p.admit_tx(cand(9, meta(2, 99, 9, 20))).unwrap();
    let fees: Vec<u128> = p.best_by_fee(RollupId(1)).map(|v| v.meta.max_fee.0).collect();
    assert_eq!(fees, vec![50, 50, 20, 5]);
    let first_50 = p.best_by_fee(RollupId(1)).next().unwrap();
    assert_eq!(first_50.seq, Seq(1), "ties go by arrival");
    let arrival: Vec<u64> = p.by_arrival(RollupId(1)).map(|v| v.seq.0).collect();
    assert_eq!(arrival, vec![0, 1, 2, 3]);
    assert_eq!(p.rollup_len(RollupId(2)), 1);
}

#[test]
fn global_capacity_evicts_lowest_fee() {
    let mut p = small(3, 100, 100);
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(1, 5, 2, 20))).unwrap();
    p.admit_tx(cand(3, meta(2, 20, 3, 20))).unwrap();
    // Not better than the lowest: refused.
    assert_eq!(code(p.admit_tx(cand(4, meta(1, 5, 4, 20)))), ErrorCode::PoolFull);
    let a = p.admit_tx(cand(5, meta(1, 6, 5, 20))).unwrap();
    assert_eq!(a.evicted, vec![(Seq(1), cand(2, meta(1, 5, 2, 20)).id)]);
    assert_eq!(p.len(), 3);
    assert!(p.get(&cand(2, meta(1, 5, 2, 20)).id).is_none());
    assert_eq!(p.stats().evicted, 1);
}

#[test]
fn rollup_capacity_evicts_within_the_rollup() {
    let mut p = small(100, 2, 100);
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(1, 30, 2, 20))).unwrap();
    p.admit_tx(cand(3, meta(2, 1, 3, 20))).unwrap();
    let a = p.admit_tx(cand(4, meta(1, 20, 4, 20))).unwrap();
    assert_eq!(a.evicted.len(), 1);
    assert_eq!(a.evicted[0].1, cand(1, meta(1, 10, 1, 20)).id);
    assert_eq!(p.rollup_len(RollupId(1)), 2);
    assert_eq!(p.rollup_len(RollupId(2)), 1, "other rollups untouched");
    assert_eq!(code(p.admit_tx(cand(5, meta(1, 15, 5, 20)))), ErrorCode::PoolFull);
}

#[test]
fn bundles_are_one_unit() {
    let mut p = small(4, 100, 100);
    let parts = bundle(10, &[1, 2, 3], 5, 0xb1);
    let a = p.admit_bundle(parts.clone()).unwrap();
    assert_eq!(a.inserted.len(), 3);
    assert!(p.admit_bundle(parts.clone()).unwrap().duplicate);
    p.admit_tx(cand(1, meta(1, 50, 1, 20))).unwrap();
    // A lone tx paying more than the bundle's lowest part evicts the whole bundle.
    let a = p.admit_tx(cand(2, meta(4, 6, 2, 20))).unwrap();
    assert_eq!(a.evicted.len(), 3);
    assert_eq!(p.len(), 2);
    for part in &parts {
        assert!(p.get(&part.id).is_none());
    }
}

#[test]
fn bundle_shape_is_checked() {
    let mut p = pool();
    let parts = bundle(10, &[1, 2], 5, 1);
    // A lone part sent as a single transaction.
    assert_eq!(code(p.admit_tx(parts[0].clone())), ErrorCode::BadBundle);
    // A missing part.
    assert_eq!(code(p.admit_bundle(parts[..1].to_vec())), ErrorCode::BadBundle);
    // Two parts on the same rollup.
    assert_eq!(code(p.admit_bundle(bundle(20, &[1, 1], 5, 2))), ErrorCode::BadBundle);
    // A part without a bundle reference.
    let mut mixed = bundle(30, &[1, 2], 5, 3);
    mixed[1].meta.bundle = None;
    let r = p.admit_bundle(mixed).unwrap_err();
    assert_eq!((r.code, r.part), (ErrorCode::BadBundle, Some(1)));
    // Bad part metadata is attributed to the part.
    let mut late = bundle(40, &[1, 2], 5, 4);
    late[1].meta.expiry_slot = Slot(1);
    let r = p.admit_bundle(late).unwrap_err();
    assert_eq!((r.code, r.part), (ErrorCode::Expired, Some(1)));
    assert!(p.is_empty());
    p.admit_bundle(parts).unwrap();
    // Same bundle id, different ciphertexts.
    assert_eq!(code(p.admit_bundle(bundle(50, &[1, 2], 5, 1))), ErrorCode::BadBundle);
}

#[test]
fn expiry_by_slot_removes_whole_units() {
    let mut p = pool();
    p.admit_tx(cand(1, meta(1, 10, 1, 11))).unwrap();
    p.admit_tx(cand(2, meta(1, 10, 2, 15))).unwrap();
    let mut parts = bundle(10, &[1, 2], 5, 1);
    parts[1].meta.expiry_slot = Slot(12);
    p.admit_bundle(parts).unwrap();
    assert!(p.on_slot(Slot(11)).is_empty(), "expiry slot 11 is still includable in slot 11");
    let gone = p.on_slot(Slot(13));
    assert_eq!(gone.len(), 3);
    assert_eq!(p.len(), 1);
    assert_eq!(p.stats().expired, 3);
}

#[test]
fn committed_are_removed_and_failed_slots_keep_txs() {
    let mut p = pool();
    p.admit_tx(cand(1, meta(1, 10, 1, 20))).unwrap();
    p.admit_tx(cand(2, meta(1, 10, 2, 20))).unwrap();
    let parts = bundle(10, &[1, 2], 5, 1);
    p.admit_bundle(parts.clone()).unwrap();
    // A failed slot: nothing is removed, everything stays available.
    assert_eq!(p.len(), 4);
    let removed = p.remove_committed(&[cand(1, meta(1, 10, 1, 20)).id, parts[0].id]);
    assert_eq!(removed.len(), 3, "a committed bundle part takes its bundle with it");
    assert_eq!(p.len(), 1);
    assert!(p.remove_committed(&[TxId([0xee; 32])]).is_empty());
}

#[test]
fn feed_is_durable_prefix_in_admission_order() {
    let mut p = pool();
    for n in 0..5 {
        p.admit_tx(cand(n, meta(1, 10, n as u8, 20))).unwrap();
    }
    assert!(p.feed(FeedCursor(0), 10).items.is_empty(), "nothing durable yet");
    p.mark_durable(Seq(3));
    let b = p.feed(FeedCursor(0), 2);
    assert_eq!(b.items.iter().map(|i| i.seq.0).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(b.next, FeedCursor(2));
    let _ = p.remove_committed(&[cand(3, meta(1, 10, 3, 20)).id]);
    p.mark_durable(Seq(5));
    let b = p.feed(b.next, 10);
    assert_eq!(b.items.iter().map(|i| i.seq.0).collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(b.skipped, 1);
    assert_eq!(b.next, FeedCursor(5));
    let b2 = p.feed(b.next, 10);
    assert!(b2.items.is_empty());
    assert_eq!(b2.next, FeedCursor(5));
    // Trailing removals are skipped too.
    let _ = p.remove_committed(&[cand(4, meta(1, 10, 4, 20)).id]);
    let b3 = p.feed(FeedCursor(3), 10);
    assert_eq!((b3.items.len(), b3.skipped, b3.next), (0, 2, FeedCursor(5)));
}

#[test]
fn withdraw_undoes_admission() {
    let mut p = pool();
    let a = p.admit_bundle(bundle(10, &[1, 2], 5, 1)).unwrap();
    p.withdraw(&a);
    assert!(p.is_empty());
    assert_eq!(p.bytes(), 0);
    p.admit_bundle(bundle(10, &[1, 2], 5, 1)).unwrap();
}

#[test]
fn restore_rebuilds_and_prunes_expired() {
    let mut p = pool();
    p.admit_tx(cand(1, meta(1, 10, 1, 12))).unwrap();
    p.admit_tx(cand(2, meta(1, 20, 2, 30))).unwrap();
    p.admit_bundle(bundle(10, &[1, 2], 5, 1)).unwrap();
    let rows: Vec<(Seq, Candidate)> = (0..4)
        .map(|s| {
            let v = p.get_seq(Seq(s)).unwrap();
            (Seq(s), v.to_candidate(SignatureBytes([0; 64])))
        })
        .collect();
    let mut q = Pool::new(PoolConfig::new(CHAIN), Slot(13), &[EON]);
    let pruned = q.restore(rows);
    assert_eq!(pruned.len(), 1);
    assert_eq!(q.len(), 3);
    assert_eq!(q.next_seq(), Seq(4));
    assert_eq!(q.feed(FeedCursor(0), 10).items.len(), 3);
    // The restored bundle is still one unit.
    let removed = q.remove_committed(&[bundle(10, &[1, 2], 5, 1)[1].id]);
    assert_eq!(removed.len(), 2);
}

proptest! {
    /// Whatever arrives, the pool never exceeds its limits and its indexes agree.
    #[test]
    fn limits_and_indexes_hold(ops in proptest::collection::vec((0u32..3, 1u128..50, 0u8..4, 10u64..30, 0u8..6), 1..120)) {
        let mut p = small(12, 6, 5);
        let mut n = 0u64;
        for (rollup, fee, payer, expiry, op) in ops {
            n += 1;
            match op {
                0 => { let _ = p.on_slot(Slot(10 + n / 10)); }
                1 => {
                    let rollups = [rollup, (rollup + 1) % 3];
                    let mut parts = bundle(n * 100, &rollups, fee, n as u8);
                    for part in &mut parts { part.meta.fee_payer = PublicKeyBytes([payer; 32]); part.meta.expiry_slot = Slot(expiry); }
                    let _ = p.admit_bundle(parts);
                }
                2 => { let id = cand(n - 1, meta(0, 0, 0, 0)).id; let _ = p.remove_committed(&[id]); }
                _ => { let _ = p.admit_tx(cand(n, meta(rollup, fee, payer, expiry))); }
            }
            prop_assert!(p.len() <= 12);
            for r in 0..3 { prop_assert!(p.rollup_len(RollupId(r)) <= 6); }
            let total: usize = (0..3).map(|r| p.rollup_len(RollupId(r))).sum();
            prop_assert_eq!(total, p.len());
            prop_assert_eq!(p.ids.len(), p.len());
            prop_assert_eq!(p.ephemeral_keys.len(), p.len());
            prop_assert_eq!(p.order.len(), p.len());
            let lone = p.entries.values().filter(|e| e.bundle == LONE).count();
            let bundled: usize = p.bundles.values().map(|b| b.parts.len()).sum();
            prop_assert_eq!(lone + bundled, p.len());
            prop_assert_eq!(p.units, lone + p.bundles.len());
            prop_assert_eq!(p.heads.len(), p.rollups.len());
            for (r, index) in &p.rollups {
                prop_assert!(p.heads.contains(&index.head(*r).unwrap()));
            }
            let merged: Vec<(Amount, u64)> = p.lowest_first().collect();
            prop_assert_eq!(merged.len(), p.len());
            prop_assert!(merged.windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 > w[1].1)));
            prop_assert_eq!(p.by_expiry.len(), p.units);
            prop_assert!(p.payers.values().all(|v| v.count() <= 5));
            let counted: usize = p.payers.values().map(Payer::count).sum();
            prop_assert_eq!(counted, p.len());
            for b in p.bundles.values() {
                prop_assert_eq!(b.parts.len(), 2);
                prop_assert_eq!(p.bundle_ids.get(&b.id).map(|&h| p.bundles.at(h).id), Some(b.id));
            }
            for e in p.entries.values() {
                prop_assert_eq!(p.get(&e.id).map(|v| v.seq), Some(Seq(e.seq)));
                prop_assert!(p.has_ephemeral_key(&e.ephemeral_key));
            }
        }
    }
}

#[test]
fn the_auction_sees_only_durable_transactions_with_their_metadata() {
    let mut p = pool();
    let a = p.admit_tx(cand(1, meta(3, 40, 1, 20))).unwrap();
    let parts = bundle(10, &[1, 2], 70, 5);
    let b = p.admit_bundle(parts).unwrap();
    assert_eq!(p.lookup(&a.ids[0]), None, "not durable yet");
    p.mark_durable(Seq(1));
    let m = p.lookup(&a.ids[0]).unwrap();
    assert_eq!(
        (m.rollup, m.max_fee, m.expiry_slot, m.bundle),
        (RollupId(3), Amount(40), Slot(20), None)
    );
    assert_eq!(p.lookup(&b.ids[0]), None);
    p.mark_durable(p.next_seq());
    let leg = p.lookup(&b.ids[1]).unwrap();
    assert_eq!(leg.bundle.map(|r| (r.index, r.count)), Some((1, 2)));
    assert_eq!(p.lookup(&veil_primitives::TxId([0xee; 32])), None);
}

#[test]
fn precheck_refuses_sizes_and_part_counts_before_any_check() {
    let mut p = pool();
    let max = p.config().max_ciphertext_size.get();
    let ok = Bytes::from(vec![0u8; max]);
    let big = Bytes::from(vec![0u8; max + 1]);
    assert!(p.precheck(std::slice::from_ref(&ok), false).is_ok());
    assert_eq!(
        p.precheck(std::slice::from_ref(&big), false).unwrap_err().code,
        ErrorCode::CiphertextTooLarge
    );
    let r = p.precheck(&[ok.clone(), big], true).unwrap_err();
    assert_eq!((r.code, r.part), (ErrorCode::CiphertextTooLarge, Some(1)));
    assert_eq!(p.precheck::<Bytes>(&[], true).unwrap_err().code, ErrorCode::BadBundle);
    let too_many = vec![ok; p.config().max_bundle_parts.get() + 1];
    assert_eq!(p.precheck(&too_many, true).unwrap_err().code, ErrorCode::BadBundle);
    assert_eq!(p.stats().rejected(ErrorCode::CiphertextTooLarge), 2);
    assert_eq!(p.stats().rejected(ErrorCode::BadBundle), 2);
}

#[test]
fn admit_checked_applies_the_deadline_then_the_verdicts_then_the_rules() {
    use std::time::{Duration, Instant};
    let mut p = pool();
    let t0 = Instant::now();
    let later = t0 + Duration::from_millis(5);
    let c = cand(1, meta(1, 10, 1, 20));
    // Past its deadline: refused, even though it is valid, and nothing is admitted.
    let r = p.admit_checked(vec![Ok(c.clone())], false, t0, later).unwrap_err();
    assert_eq!(r.code, ErrorCode::DeadlineExceeded);
    assert!(p.is_empty());
    // A bundle with a part the check refused: the part is named.
    let parts = bundle(10, &[1, 2], 5, 0xb2);
    let verdicts = vec![Ok(parts[0].clone()), Err(Rejection::new(ErrorCode::BadProof, "x"))];
    let r = p.admit_checked(verdicts, true, later, t0).unwrap_err();
    assert_eq!((r.code, r.part), (ErrorCode::BadProof, Some(1)));
    // Within the deadline: the pool's rules admit it, and the resubmission is recognised.
    let a = p.admit_checked(vec![Ok(c.clone())], false, later, t0).unwrap();
    assert_eq!(a.ids, vec![c.id]);
    assert_eq!(p.stats().rejected(ErrorCode::DeadlineExceeded), 1);
    assert_eq!(p.stats().rejected(ErrorCode::BadProof), 1);
}

#[test]
fn resubmissions_are_recognised_by_their_bytes() {
    let mut p = pool();
    let body = Bytes::from_static(b"canonical ciphertext bytes");
    let mut c = cand(1, meta(1, 10, 1, 20));
    c.id = veil_crypto::tx_id(&body);
    c.body = body.clone();
    assert!(p.resubmission(&veil_crypto::tx_id(&body), SignatureBytes([0; 64])).is_none());
    p.admit_tx(c.clone()).unwrap();
    assert_eq!(p.resubmission(&veil_crypto::tx_id(&body), SignatureBytes([0; 64])), Some(c));
    assert!(p.resubmission(&veil_crypto::tx_id(b"other bytes"), SignatureBytes([0; 64])).is_none());
}

/// What the metadata describes is checked against the configuration: registered rollups,
/// gas limits within the rollup's block, fees the ledger can hold.
#[test]
fn metadata_is_validated_against_the_configuration() {
    let mut c = PoolConfig::new(CHAIN);
    c.rollups = Some([(RollupId(1), 30_000_000)].into_iter().collect());
    let mut p = Pool::new(c, Slot(10), &[EON]);
    let code = |r: Result<Admitted, Rejection>| r.err().map(|e| e.code);
    assert_eq!(code(p.admit_tx(cand(1, meta(2, 5, 1, 100)))), Some(ErrorCode::UnknownRollup));
    let mut m = meta(1, 5, 1, 100);
    m.gas_limit = 0;
    assert_eq!(code(p.admit_tx(cand(2, m))), Some(ErrorCode::InvalidGasLimit));
    m.gas_limit = 30_000_001;
    assert_eq!(code(p.admit_tx(cand(3, m))), Some(ErrorCode::InvalidGasLimit));
    let m = meta(1, Amount::MAX.0 + 1, 1, 100);
    assert_eq!(code(p.admit_tx(cand(4, m))), Some(ErrorCode::FeeTooHigh));
    assert!(p.admit_tx(cand(5, meta(1, Amount::MAX.0, 1, 100))).is_ok());
    // Without a registry (a standalone ingress) any rollup passes, gas limit 0 never.
    let mut p = pool();
    assert!(p.admit_tx(cand(6, meta(2, 5, 1, 100))).is_ok());
    let mut m = meta(2, 5, 1, 100);
    m.gas_limit = 0;
    assert_eq!(code(p.admit_tx(cand(7, m))), Some(ErrorCode::InvalidGasLimit));
}

/// A failed durable write undoes the whole admission in memory, as storage rolled it back:
/// the inserted transactions leave, and the ones it evicted (a bundle among them) come back
/// under their old sequence numbers with their reservations.
#[test]
fn withdraw_puts_back_what_the_admission_evicted() {
    let mut c = PoolConfig::new(CHAIN);
    c.max_txs = NonZeroUsize::new(3).unwrap();
    c.fee_accounts = true;
    let mut p = Pool::new(c, Slot(10), &[EON]);
    for who in [1, 2, 3, 9] {
        p.credit_fee(payer(who), Amount(1_000));
    }
    let cheap = p.admit_tx(cand(1, meta(1, 3, 1, 20))).unwrap();
    let mut parts = bundle(10, &[1, 2], 2, 7);
    for part in &mut parts {
        part.meta.fee_payer = payer(2);
    }
    let pair = p.admit_bundle(parts).unwrap();
    let before: Vec<(Seq, TxMeta)> =
        p.order.keys().map(|&s| (Seq(s), p.get_seq(Seq(s)).unwrap().meta)).collect();
    let accounts_before: Vec<Option<FeeAccount>> =
        [1, 2, 9].map(|w| p.fee_account(&payer(w))).to_vec();
    // Paying 50 and needing three places: the bundle (unit fee 2) and then the lone one go.
    let mut big = bundle(20, &[3, 4, 5], 50, 8);
    for part in &mut big {
        part.meta.fee_payer = payer(9);
    }
    let a = p.admit_bundle(big).unwrap();
    assert_eq!(a.evicted.len(), 3);
    assert_eq!(p.len(), 3);
    assert_eq!(p.stats().evicted, 3);

    p.withdraw(&a);
    let after: Vec<(Seq, TxMeta)> =
        p.order.keys().map(|&s| (Seq(s), p.get_seq(Seq(s)).unwrap().meta)).collect();
    assert_eq!(after, before, "the same transactions under the same sequence numbers");
    assert_eq!([1, 2, 9].map(|w| p.fee_account(&payer(w))).to_vec(), accounts_before);
    assert_eq!(p.stats().evicted, 0);
    assert!(p.get(&cheap.ids[0]).is_some() && p.get(&pair.ids[1]).is_some());
    // The bundle is one unit again: committing one part removes both.
    assert_eq!(p.remove_committed(&[pair.ids[0]]).len(), 2);
}

fn spent_pool(max_spent: usize) -> Pool {
    let mut c = PoolConfig::new(CHAIN);
    c.max_spent = NonZeroUsize::new(max_spent).unwrap();
    Pool::new(c, Slot(10), &[EON])
}

/// A committed transaction's replay is acked as a duplicate with the same id until its expiry
/// slot passes, and is never pending, fed or visible to the auction again; then it is refused
/// as expired like any late transaction, and forgotten.
#[test]
fn a_committed_replay_is_a_duplicate_until_its_expiry() {
    let mut p = pool();
    let tx = cand(1, meta(1, 10, 1, 20));
    p.admit_tx(tx.clone()).unwrap();
    p.mark_durable(p.next_seq());
    let removed = p.remove_committed(&[tx.id]);
    assert_eq!(removed, vec![(Seq(0), Spent { id: tx.id, expiry: Slot(20) })]);
    assert!(p.is_spent(&tx.id));
    for slot in [10, 15, 20] {
        let _ = p.on_slot(Slot(slot));
        let a = p.admit_tx(tx.clone()).unwrap();
        assert!(a.duplicate, "slot {slot}");
        assert_eq!(a.ids, vec![tx.id]);
        assert!(a.inserted.is_empty() && a.evicted.is_empty());
        assert!(p.is_empty() && p.get(&tx.id).is_none() && p.lookup(&tx.id).is_none());
        assert!(p.feed(FeedCursor(0), 10).items.is_empty());
    }
    let s = p.stats();
    assert_eq!((s.duplicates, s.replays, s.admitted, s.committed, s.spent), (3, 3, 1, 1, 1));
    // Unknown ids are ignored; committing again is harmless.
    assert!(p.remove_committed(&[tx.id]).is_empty());
    // Slot 21: past its expiry, refused as expired, and no longer remembered.
    let _ = p.on_slot(Slot(21));
    assert!(!p.is_spent(&tx.id));
    assert_eq!(p.stats().spent, 0);
    assert_eq!(code(p.admit_tx(tx)), ErrorCode::Expired);
}

/// A bundle is spent whole: its replay is a duplicate; a request mixing a spent part with a
/// new one is the partly-known error; a lone or pending-and-spent mix follows the same rule.
#[test]
fn a_committed_bundle_replays_as_one() {
    let mut p = pool();
    let parts = bundle(10, &[1, 2], 5, 0xb1);
    p.admit_bundle(parts.clone()).unwrap();
    let lone = cand(1, meta(1, 10, 1, 20));
    p.admit_tx(lone.clone()).unwrap();
    // One part names its bundle: both leave, both are spent.
    assert_eq!(p.remove_committed(&[parts[1].id]).len(), 2);
    assert!(parts.iter().all(|c| p.is_spent(&c.id)));
    let a = p.admit_bundle(parts.clone()).unwrap();
    assert!(a.duplicate && a.inserted.is_empty());
    assert_eq!(a.ids, vec![parts[0].id, parts[1].id]);
    // A new part beside a spent one.
    let mut other = bundle(20, &[1, 2], 5, 0xb1);
    other[0] = parts[0].clone();
    let r = p.admit_bundle(other).unwrap_err();
    assert_eq!(r.code, ErrorCode::BadBundle);
    assert!(r.detail.contains("committed"), "{}", r.detail);
    // A part alone is still a bundle part.
    assert_eq!(code(p.admit_tx(parts[0].clone())), ErrorCode::BadBundle);
    assert_eq!(p.len(), 1, "only the lone transaction is pending");
    assert!(p.get(&lone.id).is_some());
}

/// Restore remembers spent ids first; a stored row of a spent transaction (its deletion was
/// lost) is pruned, and an undone eviction does not bring back a transaction committed since.
#[test]
fn restore_and_withdraw_never_bring_back_a_spent_transaction() {
    let mut p = pool();
    let gone = cand(1, meta(1, 10, 1, 20));
    let kept = cand(2, meta(1, 10, 2, 20));
    p.admit_tx(gone.clone()).unwrap();
    p.admit_tx(kept.clone()).unwrap();
    let rows: Vec<(Seq, Candidate)> = [0, 1]
        .map(|s| (Seq(s), p.get_seq(Seq(s)).unwrap().to_candidate(SignatureBytes([0; 64]))))
        .to_vec();
    let mut q = pool();
    assert!(q.remember_spent(Spent { id: gone.id, expiry: Slot(20) }));
    assert!(!q.remember_spent(Spent { id: gone.id, expiry: Slot(20) }), "already");
    assert!(!q.remember_spent(Spent { id: TxId([0xee; 32]), expiry: Slot(9) }), "expired");
    assert_eq!(q.restore(rows), vec![(Seq(0), gone.id)]);
    assert!(q.get(&kept.id).is_some() && q.get(&gone.id).is_none());
    assert!(!q.remember_spent(Spent { id: kept.id, expiry: Slot(20) }), "pending");
    assert!(q.admit_tx(gone).unwrap().duplicate);

    // An eviction undone after its victim was committed meanwhile (it was evicted while its
    // slot was in flight, and is remembered at publication).
    let mut p = small(1, 100, 100);
    let victim = cand(1, meta(1, 5, 1, 20));
    p.admit_tx(victim.clone()).unwrap();
    let a = p.admit_tx(cand(2, meta(1, 9, 2, 20))).unwrap();
    assert_eq!(a.evicted.len(), 1);
    assert!(p.remember_spent(Spent { id: victim.id, expiry: Slot(20) }));
    p.withdraw(&a);
    assert!(p.get(&victim.id).is_none() && p.is_empty());
}

/// Past `max_spent`, the latest expiry slot is forgotten whole and refused with `EXPIRED`
/// until it passes; what is remembered stays a duplicate, and the rest of the horizon is open.
#[test]
fn past_the_bound_the_latest_expiry_is_refused() {
    let mut p = spent_pool(2);
    let txs: Vec<Candidate> =
        [(1, 20), (2, 30), (3, 25)].map(|(n, e)| cand(n, meta(1, 10, n as u8, e))).to_vec();
    for t in &txs {
        p.admit_tx(t.clone()).unwrap();
    }
    let ids: Vec<TxId> = txs.iter().map(|t| t.id).collect();
    assert_eq!(p.remove_committed(&ids).len(), 3, "storage gets every one");
    let s = p.stats();
    assert_eq!((s.spent, s.spent_forgotten, s.refused_expiry_slots), (2, 1, 1));
    // Forgotten (expiry 30): refused, not admitted.
    let r = p.admit_tx(txs[1].clone()).unwrap_err();
    assert_eq!(r.code, ErrorCode::Expired);
    assert!(r.detail.contains("horizon") && r.detail.contains("slot 30"), "{}", r.detail);
    // Anything else expiring in slot 30 too; other slots are open, before or after it.
    assert_eq!(code(p.admit_tx(cand(4, meta(1, 10, 4, 30)))), ErrorCode::Expired);
    p.admit_tx(cand(5, meta(1, 10, 5, 29))).unwrap();
    p.admit_tx(cand(6, meta(1, 10, 6, 31))).unwrap();
    // Remembered ones are duplicates.
    assert!(p.admit_tx(txs[0].clone()).unwrap().duplicate);
    assert!(p.admit_tx(txs[2].clone()).unwrap().duplicate);
    // Slot 31: slot 30 has passed, the refusal with it.
    let _ = p.on_slot(Slot(31));
    assert_eq!(p.stats().refused_expiry_slots, 0);
    p.admit_tx(cand(7, meta(1, 10, 7, 40))).unwrap();
}

#[derive(Debug, Clone)]
enum SpentOp {
    /// Admit (or replay) transaction `n` expiring `ttl` slots after slot 10.
    Admit(u8, u8),
    /// Admit (or replay) bundle `n`, two parts.
    Bundle(u8, u8),
    /// Commit the pending transaction at this position.
    Commit(u8),
    /// Advance the slot.
    Slot,
    /// Restart: a new pool restores the spent ids and the pending rows.
    Restart,
}

fn spent_op() -> impl Strategy<Value = SpentOp> {
    prop_oneof![
        4 => (0u8..24, 0u8..12).prop_map(|(n, t)| SpentOp::Admit(n, t)),
        2 => (0u8..8, 0u8..12).prop_map(|(n, t)| SpentOp::Bundle(n, t)),
        3 => any::<u8>().prop_map(SpentOp::Commit),
        2 => Just(SpentOp::Slot),
        1 => Just(SpentOp::Restart),
    ]
}

proptest! {
    /// Whatever the order of admissions, replays, commitments, slots and restarts, with a
    /// memory bound small enough to be hit: a committed transaction is never admitted again
    /// before its expiry slot passes (every replay is a duplicate, or refused), it is
    /// remembered or its expiry slot refused, it is forgotten once that slot passed, and the
    /// bound holds.
    #[test]
    fn a_spent_id_is_never_admitted_again(ops in proptest::collection::vec(spent_op(), 1..150)) {
        let max_spent = 3;
        let mut p = spent_pool(max_spent);
        // Transaction `n` and bundle `n` are fixed by `n` the first time they are made.
        let mut made: HashMap<(bool, u8), Vec<Candidate>> = HashMap::new();
        // What was committed (the truth a store keeps), with expiries.
        let mut committed: HashMap<TxId, Slot> = HashMap::new();
        let mut slot = 10u64;
        for op in ops {
            let request = match op {
                SpentOp::Admit(n, ttl) => Some(made.entry((false, n)).or_insert_with(|| {
                    vec![cand(u64::from(n), meta(1, 10, n, 10 + u64::from(ttl)))]
                }).clone()),
                SpentOp::Bundle(n, ttl) => Some(made.entry((true, n)).or_insert_with(|| {
                    let mut parts = bundle(1_000 + 10 * u64::from(n), &[1, 2], 5, n);
                    for part in &mut parts {
                        part.meta.expiry_slot = Slot(10 + u64::from(ttl) + u64::from(part.meta.rollup.0));
                    }
                    parts
                }).clone()),
                SpentOp::Commit(pick) => {
                    let ids: Vec<TxId> = p.entries.values().map(|e| e.id).collect();
                    if !ids.is_empty() {
                        for (_, s) in p.remove_committed(&[ids[usize::from(pick) % ids.len()]]) {
                            committed.insert(s.id, s.expiry);
                        }
                    }
                    None
                }
                SpentOp::Slot => {
                    slot += 1;
                    let _ = p.on_slot(Slot(slot));
                    None
                }
                SpentOp::Restart => {
                    let rows: Vec<(Seq, Candidate)> = p.order.keys()
                        .map(|&s| (Seq(s), p.get_seq(Seq(s)).unwrap().to_candidate(SignatureBytes([0; 64]))))
                        .collect();
                    let mut q = spent_pool(max_spent);
                    let _ = q.on_slot(Slot(slot));
                    let mut stored: Vec<Spent> = committed.iter()
                        .filter(|(_, e)| e.0 >= slot)
                        .map(|(id, e)| Spent { id: *id, expiry: *e })
                        .collect();
                    stored.sort_by_key(|s| (s.expiry, s.id.0));
                    for s in stored {
                        let _ = q.remember_spent(s);
                    }
                    prop_assert!(q.restore(rows).is_empty());
                    p = q;
                    None
                }
            };
            if let Some(parts) = request {
                let replay = parts.iter().any(|c| committed.contains_key(&c.id));
                let result = if parts.len() == 1 {
                    p.admit_tx(parts[0].clone())
                } else {
                    p.admit_bundle(parts.clone())
                };
                if replay {
                    match result {
                        Ok(a) => prop_assert!(a.duplicate && a.inserted.is_empty()),
                        Err(r) => prop_assert!(
                            matches!(r.code, ErrorCode::Expired | ErrorCode::BadBundle),
                            "{r}"
                        ),
                    }
                }
            }
            for (id, expiry) in &committed {
                prop_assert!(p.get(id).is_none(), "a committed transaction is pending again");
                if expiry.0 >= slot {
                    prop_assert!(p.is_spent(id) || p.spent.refuses(*expiry));
                } else {
                    prop_assert!(!p.is_spent(id), "remembered after its expiry");
                }
            }
            prop_assert!(p.spent.len() <= max_spent);
            if let Err(e) = p.spent.check() {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
