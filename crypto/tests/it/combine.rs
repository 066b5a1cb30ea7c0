//! Keyper shares and block decryption: round trips, bad shares, too few shares, blame.

use blstrs::{G1Affine, G1Projective};
use group::{Curve, Group};
use veil_crypto::testing::{self, TestCommittee};
use veil_crypto::{
    decrypt_block, BlameReason, BlockCombiner, Ciphertext, CryptoError, DecryptOutcome,
    KeyperIndex, ResponderSet, ShareBatch,
};
use veil_primitives::{Signed, Slot};

use crate::{batches, encrypt_many, torsion_point};

const SLOT: Slot = Slot(77);

fn plaintexts(outcomes: &[DecryptOutcome]) -> Vec<Vec<u8>> {
    outcomes
        .iter()
        .map(|o| match o {
            DecryptOutcome::Plaintext(p) => p.clone(),
            DecryptOutcome::Undecryptable => panic!("undecryptable"),
        })
        .collect()
}

fn expected(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut p = format!("tx-{i}").into_bytes();
            p.resize(size.max(p.len()), b'.');
            p
        })
        .collect()
}

fn set(c: &TestCommittee, members: &[u16]) -> ResponderSet {
    ResponderSet::new(&c.pks, members.iter().map(|&i| KeyperIndex::new(i).unwrap()).collect())
        .unwrap()
}

fn k(i: u16) -> KeyperIndex {
    KeyperIndex::new(i).unwrap()
}

#[test]
fn round_trips_at_several_thresholds() {
    for (n, t) in [(1u16, 0u16), (3, 1), (4, 2), (7, 4), (16, 11)] {
        let c = TestCommittee::new(n, t, u64::from(n) * 100 + u64::from(t));
        let cts = encrypt_many(&c, 12, 100, 1);
        let refs: Vec<&Ciphertext> = cts.iter().collect();
        let responders = c.pks.default_responders();
        let who: Vec<u16> = responders.members().iter().map(|m| m.get()).collect();
        let bs = batches(&c, &who, SLOT, &refs, Some(&responders));
        let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(3)).unwrap();
        assert!(block.fast_path, "n={n} t={t}");
        assert!(block.blamed.is_empty());
        assert_eq!(plaintexts(&block.outcomes), expected(12, 100), "n={n} t={t}");
    }
}

#[test]
fn any_t_plus_one_keypers_decrypt_unscaled_or_rescaled() {
    let c = TestCommittee::new(7, 3, 11);
    let cts = encrypt_many(&c, 5, 30, 2);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    // Unscaled shares from an arbitrary set.
    let bs = batches(&c, &[2, 4, 6, 7], SLOT, &refs, None);
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(4)).unwrap();
    assert!(!block.fast_path);
    assert_eq!(plaintexts(&block.outcomes), expected(5, 30));
    // Scaled for {1,2,3,4}, but keyper 1 is missing: the others' shares are rescaled for
    // {2,3,4,5} with keyper 5's unscaled batch.
    let named = set(&c, &[1, 2, 3, 4]);
    let bs = batches(&c, &[2, 3, 4, 5], SLOT, &refs, Some(&named));
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(5)).unwrap();
    assert!(!block.fast_path);
    assert_eq!(block.responders, set(&c, &[2, 3, 4, 5]));
    assert_eq!(plaintexts(&block.outcomes), expected(5, 30));
}

#[test]
fn bad_share_is_blamed_and_honest_shares_complete() {
    let c = TestCommittee::new(6, 2, 12);
    let cts = encrypt_many(&c, 20, 64, 3);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders(); // {1,2,3}
    let mut bs = batches(&c, &[1, 2, 3, 4, 5], SLOT, &refs, Some(&responders));
    // Keyper 2 sends a wrong share for ciphertext 7 (someone else's random point), signed.
    let mut raw =
        ShareBatch::create(&c.shares[1], &c.identities[1], SLOT, &refs, Some(&responders)).unwrap();
    raw.message.shares[7].0 =
        G1Projective::random(&mut testing::rng(99)).to_affine().to_uncompressed();
    raw = Signed::sign(raw.message, &c.identities[1]);
    bs[1] = c.pks.verify_share_batch(&raw).unwrap();

    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(6)).unwrap();
    assert_eq!(block.blamed.len(), 1);
    assert_eq!(block.blamed[0].keyper, k(2));
    assert_eq!(block.blamed[0].reason, BlameReason::WrongShares);
    assert!(!block.responders.contains(k(2)));
    assert_eq!(plaintexts(&block.outcomes), expected(20, 64));
}

#[test]
fn shares_for_one_ciphertext_used_on_another_are_blamed() {
    let c = TestCommittee::new(5, 2, 13);
    let cts = encrypt_many(&c, 6, 64, 4);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders();
    let mut bs = batches(&c, &[1, 2, 3, 4], SLOT, &refs, Some(&responders));
    // Keyper 3 swaps its shares of ciphertexts 0 and 1, and signs that.
    let mut raw =
        ShareBatch::create(&c.shares[2], &c.identities[2], SLOT, &refs, Some(&responders)).unwrap();
    let (s0, s1) = (raw.message.shares[0].0, raw.message.shares[1].0);
    raw.message.shares[0].0 = s1;
    raw.message.shares[1].0 = s0;
    raw = Signed::sign(raw.message, &c.identities[2]);
    bs[2] = c.pks.verify_share_batch(&raw).unwrap();

    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(7)).unwrap();
    assert_eq!(block.blamed.iter().map(|b| b.keyper).collect::<Vec<_>>(), vec![k(3)]);
    assert_eq!(plaintexts(&block.outcomes), expected(6, 64));

    // A batch for the ids in another order (another block digest) is blamed as mismatched,
    // before any pairing; so is one for the block with a share missing.
    let mut swapped = refs.clone();
    swapped.swap(0, 1);
    let mut bs = batches(&c, &[1, 2, 3, 4], SLOT, &refs, Some(&responders));
    bs[0] = batches(&c, &[1], SLOT, &swapped, Some(&responders)).remove(0);
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(8)).unwrap();
    assert_eq!(block.blamed[0].keyper, k(1));
    assert_eq!(block.blamed[0].reason, BlameReason::MismatchedBatch);
    assert_eq!(plaintexts(&block.outcomes), expected(6, 64));

    let mut short =
        ShareBatch::create(&c.shares[1], &c.identities[1], SLOT, &refs, Some(&responders)).unwrap();
    short.message.shares.pop();
    let short = Signed::sign(short.message, &c.identities[1]);
    let mut bs = batches(&c, &[1, 3, 4], SLOT, &refs, Some(&responders));
    bs.push(c.pks.verify_share_batch(&short).unwrap());
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(9)).unwrap();
    assert_eq!(
        block.blamed,
        vec![veil_crypto::Blame { keyper: k(2), reason: BlameReason::MismatchedBatch }]
    );
    assert_eq!(plaintexts(&block.outcomes), expected(6, 64));
}

#[test]
fn too_few_shares_is_a_typed_error_that_reveals_nothing() {
    let c = TestCommittee::new(5, 2, 14);
    let cts = encrypt_many(&c, 3, 64, 5);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let bs = batches(&c, &[1, 2], SLOT, &refs, None);
    assert_eq!(
        decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(9)),
        Err(CryptoError::NotEnoughShares { needed: 3, available: 2, blamed: vec![] })
    );
    // Three batches, one of them wrong: after blame only two remain.
    let mut bs = batches(&c, &[1, 2, 3], SLOT, &refs, None);
    bs[2] = batches(&c, &[3], Slot(78), &refs, None).remove(0);
    // The replayed batch of another slot is ignored, not blamed: nobody is to blame.
    assert_eq!(
        decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(10)),
        Err(CryptoError::NotEnoughShares { needed: 3, available: 2, blamed: vec![] })
    );
    // Three batches, one with wrong shares: it is blamed, and the error names it.
    let mut bs = batches(&c, &[1, 2, 3], SLOT, &refs, None);
    let mut raw = ShareBatch::create(&c.shares[2], &c.identities[2], SLOT, &refs, None).unwrap();
    raw.message.shares[0].0 = {
        let other = ShareBatch::create(&c.shares[0], &c.identities[0], SLOT, &refs, None).unwrap();
        other.message.shares[0].0
    };
    let raw = Signed::sign(raw.message, &c.identities[2]);
    bs[2] = c.pks.verify_share_batch(&raw).unwrap();
    match decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(11)) {
        Err(CryptoError::NotEnoughShares { available: 2, blamed, .. }) => {
            assert_eq!(blamed.len(), 1);
            assert_eq!(blamed[0].keyper.get(), 3);
        }
        other => panic!("expected NotEnoughShares with one blame, got {other:?}"),
    }
}

#[test]
fn forged_or_foreign_batches_are_refused_at_verification() {
    let c = TestCommittee::new(4, 1, 15);
    let cts = encrypt_many(&c, 2, 64, 6);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let mut raw = ShareBatch::create(&c.shares[0], &c.identities[0], SLOT, &refs, None).unwrap();
    raw.message.slot = Slot(78);
    assert_eq!(c.pks.verify_share_batch(&raw).unwrap_err(), CryptoError::BadSignature(k(1)));
    // Signed by keyper 2's identity but claiming to be keyper 1.
    let mut raw = ShareBatch::create(&c.shares[0], &c.identities[1], SLOT, &refs, None).unwrap();
    raw.message.keyper = k(1);
    assert_eq!(c.pks.verify_share_batch(&raw).unwrap_err(), CryptoError::BadSignature(k(1)));
    // A share that is not a curve point.
    let mut raw = ShareBatch::create(&c.shares[0], &c.identities[0], SLOT, &refs, None).unwrap();
    raw.message.shares[0].0[95] ^= 1;
    raw = Signed::sign(raw.message, &c.identities[0]);
    assert!(matches!(c.pks.verify_share_batch(&raw), Err(CryptoError::BadPoint(_))));
    // Another committee's batch.
    let other = TestCommittee::new(4, 1, 16);
    let raw =
        ShareBatch::create(&other.shares[0], &other.identities[0], SLOT, &refs, None).unwrap();
    assert!(c.pks.verify_share_batch(&raw).is_err());
}

#[test]
fn share_with_a_torsion_component_is_found_and_blamed() {
    let c = TestCommittee::new(5, 2, 17);
    let cts = encrypt_many(&c, 4, 64, 7);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders();
    let mut bs = batches(&c, &[1, 2, 3, 4], SLOT, &refs, Some(&responders));
    let mut raw =
        ShareBatch::create(&c.shares[0], &c.identities[0], SLOT, &refs, Some(&responders)).unwrap();
    let honest = G1Affine::from_uncompressed(&raw.message.shares[2].0).unwrap();
    raw.message.shares[2].0 =
        (G1Projective::from(honest) + torsion_point()).to_affine().to_uncompressed();
    raw = Signed::sign(raw.message, &c.identities[0]);
    bs[0] = c.pks.verify_share_batch(&raw).unwrap();

    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(11)).unwrap();
    assert_eq!(block.blamed.len(), 1);
    assert_eq!(block.blamed[0].keyper, k(1));
    assert_eq!(block.blamed[0].reason, BlameReason::ShareOutsideSubgroup { position: 2 });
    assert_eq!(plaintexts(&block.outcomes), expected(4, 64));
}

#[test]
fn a_body_that_does_not_open_is_undecryptable_in_place() {
    // The sender makes a ciphertext whose proof is valid but whose body is not sealed under
    // the derived key: it must stay in place as Undecryptable, and nobody is blamed.
    let c = TestCommittee::new(4, 1, 18);
    let mut cts = encrypt_many(&c, 3, 64, 8);
    cts[1] = testing_garbage_body(&c);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    assert!(c.pks.verify_batch(&refs, &mut testing::rng(1)).is_empty());
    let responders = c.pks.default_responders();
    let bs = batches(&c, &[1, 2], SLOT, &refs, Some(&responders));
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(12)).unwrap();
    assert!(block.blamed.is_empty());
    assert_eq!(block.outcomes[1], DecryptOutcome::Undecryptable);
    assert!(matches!(block.outcomes[0], DecryptOutcome::Plaintext(_)));
    assert!(matches!(block.outcomes[2], DecryptOutcome::Plaintext(_)));
}

/// A ciphertext with a valid proof over a body of random bytes (what a malicious sender can
/// make: the proof binds the body, it does not prove the body opens).
fn testing_garbage_body(c: &TestCommittee) -> Ciphertext {
    let body: Vec<u8> = (0..64 + 16).map(|i| (i * 37 % 251) as u8).collect();
    testing::prove_arbitrary(&c.ad(1, 1), &body, G1Projective::identity(), &mut testing::rng(5))
        .unwrap()
}

#[test]
fn duplicate_ids_in_a_block_are_refused() {
    let c = TestCommittee::new(3, 1, 19);
    let cts = encrypt_many(&c, 1, 64, 9);
    let refs = vec![&cts[0], &cts[0]];
    let bs = batches(&c, &[1, 2], SLOT, &refs, None);
    assert!(matches!(
        decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(13)),
        Err(CryptoError::DuplicateCiphertext(_))
    ));
}

#[test]
fn empty_block_decrypts_to_nothing() {
    let c = TestCommittee::new(3, 1, 20);
    let block = decrypt_block(&c.pks, SLOT, &[], &[], &mut testing::rng(14)).unwrap();
    assert!(block.outcomes.is_empty());
}

#[test]
fn a_replayed_batch_from_another_slot_blames_nobody() {
    let c = TestCommittee::new(5, 2, 21);
    let old = encrypt_many(&c, 3, 64, 10);
    let cts = encrypt_many(&c, 3, 64, 11);
    let old_refs: Vec<&Ciphertext> = old.iter().collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders();
    let replayed = batches(&c, &[1], Slot(76), &old_refs, Some(&responders));
    let mut bs = replayed.clone();
    bs.extend(batches(&c, &[1, 2, 3], SLOT, &refs, Some(&responders)));
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(15)).unwrap();
    assert!(block.blamed.is_empty());
    assert!(block.fast_path);
    assert_eq!(plaintexts(&block.outcomes), expected(3, 64));
}

#[test]
fn all_wrong_keypers_are_blamed_in_one_round() {
    let c = TestCommittee::new(7, 2, 22);
    let cts = encrypt_many(&c, 5, 64, 12);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders(); // {1,2,3}
    let mut bs = batches(&c, &[1, 2, 3, 4, 5, 6], SLOT, &refs, Some(&responders));
    for bad in [1usize, 3] {
        let mut raw =
            ShareBatch::create(&c.shares[bad], &c.identities[bad], SLOT, &refs, None).unwrap();
        raw.message.shares[0].0 = raw.message.shares[1].0;
        raw = Signed::sign(raw.message, &c.identities[bad]);
        bs[bad] = c.pks.verify_share_batch(&raw).unwrap();
    }
    let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(16)).unwrap();
    let mut blamed: Vec<u16> = block.blamed.iter().map(|b| b.keyper.get()).collect();
    blamed.sort_unstable();
    assert_eq!(blamed, vec![2, 4]);
    assert_eq!(plaintexts(&block.outcomes), expected(5, 64));
}

#[test]
fn key_sets_with_torsion_or_shared_identities_are_refused() {
    use veil_crypto::{KeyperPublic, PublicKeySet};
    let c = TestCommittee::new(4, 1, 23);
    let json: serde_json::Value = serde_json::from_str(&c.pks.to_json()).unwrap();
    let key_g1 = G1Affine::from_compressed(&hex48(&json["key_g1"])).unwrap();
    let key_g2 = blstrs::G2Affine::from_compressed(&hex96(&json["key_g2"])).unwrap();
    let keypers: Vec<KeyperPublic> = c.pks.keypers().to_vec();
    PublicKeySet::new(c.pks.chain_id(), c.pks.eon(), 1, key_g1, key_g2, keypers.clone()).unwrap();

    let with_torsion = (G1Projective::from(key_g1) + torsion_point()).to_affine();
    assert!(matches!(
        PublicKeySet::new(c.pks.chain_id(), c.pks.eon(), 1, with_torsion, key_g2, keypers.clone()),
        Err(CryptoError::InconsistentKeySet(_))
    ));
    let mut shared = keypers;
    shared[1].identity = shared[0].identity;
    assert!(matches!(
        PublicKeySet::new(c.pks.chain_id(), c.pks.eon(), 1, key_g1, key_g2, shared),
        Err(CryptoError::InconsistentKeySet(_))
    ));
}

fn hex48(v: &serde_json::Value) -> [u8; 48] {
    veil_primitives::hexbytes::decode_fixed(v.as_str().unwrap()).unwrap()
}

fn hex96(v: &serde_json::Value) -> [u8; 96] {
    veil_primitives::hexbytes::decode_fixed(v.as_str().unwrap()).unwrap()
}

/// A combiner fed the batches one at a time, in any order, with duplicates, batches of other
/// slots and of keypers outside the set, decrypts exactly what `decrypt_block` decrypts from
/// the same batches, and completes only with every member of its set.
#[test]
fn a_combiner_summed_as_batches_arrive_decrypts_what_decrypt_block_does() {
    let c = TestCommittee::new(7, 3, 21);
    let mut cts = encrypt_many(&c, 9, 80, 12);
    cts[4] = testing_garbage_body(&c);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders(); // {1,2,3,4}
    let bs = batches(&c, &[4, 6, 2, 1, 3], SLOT, &refs, Some(&responders));
    let mut combiner =
        BlockCombiner::new(&c.pks, SLOT, &refs, responders.clone(), &mut testing::rng(1)).unwrap();
    let old = batches(&c, &[1], Slot(SLOT.0 - 1), &refs, Some(&responders));
    assert!(!combiner.offer(&old[0]), "another slot's batch");
    let mut added = Vec::new();
    for b in &bs {
        assert!(!combiner.is_complete() || added.len() == 4);
        added.push(combiner.offer(b));
        assert!(!combiner.offer(b), "a batch is added once");
    }
    assert_eq!(added, vec![true, false, true, true, true], "keyper 6 is not in the set");
    assert!(combiner.is_complete());
    let fast = combiner.finish(&c.pks, &refs).expect("the fast path concludes");
    let slow = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(2)).unwrap();
    assert_eq!(fast, slow);
    assert_eq!(fast.outcomes[4], DecryptOutcome::Undecryptable);
}

/// A combiner made again for another responder set (the fallback round) keeps the block and
/// its check but none of the batches: it completes only with the new set's batches scaled
/// for it, and then decrypts what `decrypt_block` does. Finishing both in turn also uses the
/// one `Σ ρ_j·U_j` from two combiners.
#[test]
fn a_retargeted_combiner_sums_only_the_new_sets_batches() {
    let c = TestCommittee::new(7, 3, 23);
    let cts = encrypt_many(&c, 8, 48, 14);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let first = c.pks.default_responders(); // {1,2,3,4}
    let second = set(&c, &[2, 4, 5, 7]);
    let mut combiner =
        BlockCombiner::new(&c.pks, SLOT, &refs, first.clone(), &mut testing::rng(5)).unwrap();
    let for_first = batches(&c, &[1, 2, 3, 4], SLOT, &refs, Some(&first));
    for b in &for_first {
        assert!(combiner.offer(b));
    }
    let mut again = combiner.retarget(second.clone());
    assert_eq!(again.target(), &second);
    assert!(!again.is_complete(), "no batch carried over");
    for b in &for_first {
        assert!(!again.offer(b), "scaled for the old set");
    }
    let for_second = batches(&c, &[2, 4, 5, 7], SLOT, &refs, Some(&second));
    for b in &for_second {
        assert!(again.offer(b));
    }
    let slow = decrypt_block(&c.pks, SLOT, &refs, &for_second, &mut testing::rng(6)).unwrap();
    let fast = again.finish(&c.pks, &refs).expect("the fast path concludes");
    assert_eq!(fast, slow);
    assert_eq!(plaintexts(&fast.outcomes), expected(8, 48));
    let old = combiner.finish(&c.pks, &refs).expect("the first set's combiner still concludes");
    assert_eq!(old.outcomes, fast.outcomes);
}

/// The combiner never concludes on a wrong share or a share outside the subgroup: it gives
/// up, and `decrypt_block` on the same batches blames the sender.
#[test]
fn a_combiner_gives_up_on_wrong_shares_and_decrypt_block_blames() {
    let c = TestCommittee::new(5, 2, 22);
    let cts = encrypt_many(&c, 6, 64, 13);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders(); // {1,2,3}
    for torsion in [false, true] {
        let mut bs = batches(&c, &[1, 2, 3, 4], SLOT, &refs, Some(&responders));
        let mut raw =
            ShareBatch::create(&c.shares[1], &c.identities[1], SLOT, &refs, Some(&responders))
                .unwrap();
        let honest = G1Affine::from_uncompressed(&raw.message.shares[3].0).unwrap();
        let wrong = if torsion {
            G1Projective::from(honest) + torsion_point()
        } else {
            G1Projective::random(&mut testing::rng(7))
        };
        raw.message.shares[3].0 = wrong.to_affine().to_uncompressed();
        raw = Signed::sign(raw.message, &c.identities[1]);
        bs[1] = c.pks.verify_share_batch(&raw).unwrap();
        let mut combiner =
            BlockCombiner::new(&c.pks, SLOT, &refs, responders.clone(), &mut testing::rng(3))
                .unwrap();
        for b in &bs {
            combiner.offer(b);
        }
        assert!(combiner.is_complete());
        assert!(combiner.finish(&c.pks, &refs).is_none(), "torsion={torsion}");
        let block = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(4)).unwrap();
        assert_eq!(block.blamed.len(), 1);
        assert_eq!(block.blamed[0].keyper, k(2));
        assert_eq!(plaintexts(&block.outcomes), expected(6, 64));
    }
}

/// A batch for the block's slot that names another block is blamed by the combiner as by
/// `decrypt_block`, unless its keyper also sent one for the block.
#[test]
fn a_combiner_blames_mismatched_batches_like_decrypt_block() {
    let c = TestCommittee::new(5, 2, 23);
    let cts = encrypt_many(&c, 5, 64, 14);
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let responders = c.pks.default_responders(); // {1,2,3}
    let mut bs = batches(&c, &[1, 2, 3], SLOT, &refs, Some(&responders));
    let shuffled: Vec<&Ciphertext> = [1, 0, 2, 3, 4].iter().map(|&i| &cts[i]).collect();
    bs.extend(batches(&c, &[4], SLOT, &shuffled, None));
    bs.extend(batches(&c, &[2], SLOT, &shuffled, None));
    let mut combiner =
        BlockCombiner::new(&c.pks, SLOT, &refs, responders, &mut testing::rng(5)).unwrap();
    for b in &bs {
        combiner.offer(b);
    }
    let fast = combiner.finish(&c.pks, &refs).unwrap();
    let slow = decrypt_block(&c.pks, SLOT, &refs, &bs, &mut testing::rng(6)).unwrap();
    assert_eq!(fast.blamed, slow.blamed);
    assert_eq!(fast.blamed.len(), 1);
    assert_eq!(fast.blamed[0].keyper, k(4));
    assert_eq!(fast.blamed[0].reason, BlameReason::MismatchedBatch);
    assert_eq!(plaintexts(&fast.outcomes), expected(5, 64));
}
