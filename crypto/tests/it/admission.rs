//! Encryption, strict decoding and validity checks at admission.

use veil_crypto::testing::{self, TestCommittee};
use veil_crypto::{Ciphertext, CryptoError, PublicKeySet};
use veil_primitives::{Amount, Eon, PublicKeyBytes, RollupId};

use crate::encrypt_many;

/// Byte offsets in the version-1 encoding (see the `ciphertext` module docs).
const OFF_ROLLUP: usize = 17;
const OFF_FEE_PAYER: usize = 21;
const OFF_MAX_FEE: usize = 53;
const AD_LEN_NO_BUNDLE: usize = 86;
const OFF_U: usize = AD_LEN_NO_BUNDLE;
const OFF_A: usize = OFF_U + 96;
const OFF_Z: usize = OFF_A + 96;
const OFF_BODY: usize = OFF_Z + 32 + 4;

fn committee() -> TestCommittee {
    TestCommittee::new(4, 2, 5)
}

fn check_one(pks: &PublicKeySet, bytes: &[u8]) -> Result<(), CryptoError> {
    let ct = Ciphertext::from_bytes(bytes)?;
    pks.verify(&ct)?;
    let bad = pks.verify_batch(&[&ct], &mut testing::rng(1));
    match bad.first() {
        None => Ok(()),
        Some((_, e)) => Err(e.clone()),
    }
}

#[test]
fn valid_ciphertexts_pass_single_and_batch_checks() {
    let c = committee();
    let cts = encrypt_many(&c, 40, 512, 1);
    let decoded: Vec<Ciphertext> =
        Ciphertext::decode_many(&cts.iter().map(|c| c.as_bytes()).collect::<Vec<_>>())
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert_eq!(decoded, cts);
    for ct in &decoded {
        c.pks.verify(ct).unwrap();
    }
    let refs: Vec<&Ciphertext> = decoded.iter().collect();
    assert!(c.pks.verify_batch(&refs, &mut testing::rng(2)).is_empty());
    assert!(c.pks.verify_batch(&[], &mut testing::rng(2)).is_empty());
}

#[test]
fn ids_are_sha3_of_the_canonical_bytes_and_stable() {
    let c = committee();
    let ct = &encrypt_many(&c, 1, 10, 3)[0];
    let again = Ciphertext::from_bytes(ct.as_bytes()).unwrap();
    assert_eq!(again.id(), ct.id());
    use sha3::Digest;
    assert_eq!(ct.id().0, <[u8; 32]>::from(sha3::Sha3_256::digest(ct.as_bytes())));
}

#[test]
fn tampered_payload_is_rejected() {
    let c = committee();
    let ct = &encrypt_many(&c, 1, 512, 4)[0];
    let mut bytes = ct.as_bytes().to_vec();
    bytes[OFF_BODY + 10] ^= 0x01;
    assert_eq!(check_one(&c.pks, &bytes), Err(CryptoError::BadProof));
}

#[test]
fn changed_associated_data_is_rejected() {
    let c = committee();
    let ct = &encrypt_many(&c, 1, 512, 5)[0];
    for (offset, what) in
        [(OFF_ROLLUP + 3, "rollup"), (OFF_FEE_PAYER, "fee payer"), (OFF_MAX_FEE + 15, "max fee")]
    {
        let mut bytes = ct.as_bytes().to_vec();
        bytes[offset] ^= 0x01;
        assert_eq!(check_one(&c.pks, &bytes), Err(CryptoError::BadProof), "{what}");
    }
}

#[test]
fn copied_ephemeral_key_is_rejected() {
    // The attacker takes the victim's U (and even A, z and the body) into a ciphertext with
    // the attacker's own associated data. Without the victim's r it cannot make a new proof.
    let c = committee();
    let victim = &encrypt_many(&c, 1, 512, 6)[0];
    let mut rng = testing::rng(66);
    let mut ad = c.ad(2, 1);
    ad.fee_payer = PublicKeyBytes([9; 32]);
    let attacker = c.pks.encrypt(&ad, b"attacker", &mut rng).unwrap();

    // Victim's whole proof and body under the attacker's AD.
    let mut copy = attacker.as_bytes()[..AD_LEN_NO_BUNDLE].to_vec();
    copy.extend_from_slice(&victim.as_bytes()[OFF_U..]);
    assert_eq!(check_one(&c.pks, &copy), Err(CryptoError::BadProof));

    // Victim's U with the attacker's own A, z and body.
    let mut copy = attacker.as_bytes().to_vec();
    copy[OFF_U..OFF_A].copy_from_slice(&victim.as_bytes()[OFF_U..OFF_A]);
    assert_eq!(check_one(&c.pks, &copy), Err(CryptoError::BadProof));
    assert_eq!(Ciphertext::from_bytes(&copy).unwrap().ephemeral_key(), victim.ephemeral_key());
}

#[test]
fn wrong_eon_and_wrong_chain_are_rejected() {
    let c = committee();
    let other_eon = TestCommittee::new(4, 2, 5);
    let mut ad = c.ad(1, 1);
    ad.eon = Eon(2);
    assert!(matches!(
        c.pks.encrypt(&ad, b"x", &mut testing::rng(1)),
        Err(CryptoError::WrongEon { .. })
    ));
    // A ciphertext naming eon 2 in its bytes (re-encoded by hand) is refused by the eon-1 key.
    let ct = &encrypt_many(&other_eon, 1, 16, 7)[0];
    let mut bytes = ct.as_bytes().to_vec();
    bytes[9..17].copy_from_slice(&2u64.to_be_bytes());
    assert!(matches!(check_one(&c.pks, &bytes), Err(CryptoError::WrongEon { found: Eon(2), .. })));
    let mut bytes = ct.as_bytes().to_vec();
    bytes[1..9].copy_from_slice(&5u64.to_be_bytes());
    assert!(matches!(check_one(&c.pks, &bytes), Err(CryptoError::WrongChain { .. })));
}

#[test]
fn batch_names_exactly_the_bad_ciphertexts() {
    let c = committee();
    let good = encrypt_many(&c, 100, 64, 8);
    let mut inputs: Vec<Ciphertext> = good.clone();
    // Corrupt positions 3, 50 and 99 (payload bit flips: still decodable, proof fails).
    for &i in &[3usize, 50, 99] {
        let mut bytes = inputs[i].as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        inputs[i] = Ciphertext::from_bytes(&bytes).unwrap();
    }
    let refs: Vec<&Ciphertext> = inputs.iter().collect();
    let bad = c.pks.verify_batch(&refs, &mut testing::rng(9));
    let positions: Vec<usize> = bad.iter().map(|(i, _)| *i).collect();
    assert_eq!(positions, vec![3, 50, 99]);
    assert!(bad.iter().all(|(_, e)| *e == CryptoError::BadProof));
}

#[test]
fn bundles_and_limits() {
    let c = committee();
    let mut rng = testing::rng(10);
    let mut ad = c.ad(1, 1);
    ad.bundle =
        Some(veil_crypto::BundleRef { id: veil_primitives::BundleId([1; 32]), index: 1, count: 2 });
    let ct = c.pks.encrypt(&ad, b"leg 2", &mut rng).unwrap();
    let back = Ciphertext::from_bytes(ct.as_bytes()).unwrap();
    assert_eq!(back.ad().bundle, ad.bundle);
    c.pks.verify(&back).unwrap();

    ad.bundle =
        Some(veil_crypto::BundleRef { id: veil_primitives::BundleId([1; 32]), index: 2, count: 2 });
    assert!(matches!(c.pks.encrypt(&ad, b"x", &mut rng), Err(CryptoError::InvalidField(_))));

    let big = vec![0u8; veil_crypto::MAX_PAYLOAD + 1];
    assert!(matches!(
        c.pks.encrypt(&c.ad(1, 1), &big, &mut rng),
        Err(CryptoError::PayloadTooLarge { .. })
    ));
    let max = vec![0u8; veil_crypto::MAX_PAYLOAD];
    let ct = c.pks.encrypt(&c.ad(1, 1), &max, &mut rng).unwrap();
    assert!(ct.encoded_len() <= veil_crypto::MAX_CIPHERTEXT_LEN);
    let mut ad = c.ad(1, 1);
    ad.rollup = RollupId(9);
    ad.max_fee = Amount(u128::MAX);
    let empty = c.pks.encrypt(&ad, b"", &mut rng).unwrap();
    assert_eq!(Ciphertext::from_bytes(empty.as_bytes()).unwrap().ad(), &ad);
}

/// A third party's copy of `honest` with the torsion point `t` added to the point at `at`
/// (`U′` or `A′`): the challenge hashes the point's bytes, so the proof fails.
fn with_torsion_added(
    honest: &Ciphertext,
    at: std::ops::Range<usize>,
    t: blstrs::G1Projective,
) -> Ciphertext {
    let mut mauled = honest.as_bytes().to_vec();
    let p = blstrs::G1Affine::from_uncompressed_unchecked(&mauled[at.clone()].try_into().unwrap())
        .unwrap();
    mauled[at].copy_from_slice(
        &group::Curve::to_affine(&(blstrs::G1Projective::from(p) + t)).to_uncompressed(),
    );
    Ciphertext::from_bytes(&mauled).unwrap()
}

/// `own` (torsion its sender proved over) passes and `mauled` (torsion a third party added)
/// fails, in the single check and in batches among `others` for 24 coefficient draws.
fn every_check_agrees(
    c: &TestCommittee,
    own: &Ciphertext,
    mauled: &Ciphertext,
    others: &[Ciphertext],
) {
    c.pks.verify(own).unwrap();
    assert_eq!(c.pks.verify(mauled), Err(CryptoError::BadProof));
    for seed in 0..24 {
        let mut refs: Vec<&Ciphertext> = others.iter().collect();
        refs.insert(7, own);
        refs.insert(3, mauled);
        let bad = c.pks.verify_batch(&refs, &mut testing::rng(seed));
        assert_eq!(bad, vec![(3, CryptoError::BadProof)], "seed {seed}");
    }
}

#[test]
fn commitment_torsion_is_cleared_the_same_way_by_every_check() {
    let c = committee();
    let t = blstrs::G1Projective::from(crate::torsion_point());
    // A sender adding torsion to its own commitment (and proving over it) makes a valid
    // ciphertext; a third party adding torsion to an honest sender's commitment changes the
    // challenge.
    let own =
        testing::prove_arbitrary(&c.ad(1, 1), &[0u8; 64 + 16], t, &mut testing::rng(1)).unwrap();
    let own = Ciphertext::from_bytes(own.as_bytes()).unwrap();
    let mauled = with_torsion_added(&encrypt_many(&c, 1, 64, 12)[0], OFF_A..OFF_Z, t);
    every_check_agrees(&c, &own, &mauled, &encrypt_many(&c, 20, 64, 13));
}

#[test]
fn ephemeral_key_torsion_is_cleared_before_any_secret_touches_it() {
    use veil_crypto::{decrypt_block, DecryptOutcome};
    let c = committee();
    let t = blstrs::G1Projective::from(crate::torsion_point());
    // A sender adding torsion to its own U′ (and proving over it) makes a valid ciphertext:
    // every check clears the torsion the same way, and the keypers' shares, taken on
    // U = h·U′, decrypt it. A third party adding torsion to an honest sender's U′ changes
    // the challenge.
    let own = testing::encrypt_with_u_offset(
        &c.pks,
        &c.ad(1, 1),
        b"torsion in my own U'",
        t,
        &mut testing::rng(2),
    )
    .unwrap();
    let own = Ciphertext::from_bytes(own.as_bytes()).unwrap();
    let mauled = with_torsion_added(&encrypt_many(&c, 1, 64, 14)[0], OFF_U..OFF_A, t);
    let others = encrypt_many(&c, 20, 64, 15);
    every_check_agrees(&c, &own, &mauled, &others);
    let block = [&own, &others[0]];
    let who: Vec<u16> = (1..=c.pks.shares_needed() as u16).collect();
    let set = c.pks.default_responders();
    let batches = crate::batches(&c, &who, veil_primitives::Slot(3), &block, Some(&set));
    let out =
        decrypt_block(&c.pks, veil_primitives::Slot(3), &block, &batches, &mut testing::rng(9))
            .unwrap();
    assert!(out.blamed.is_empty());
    assert_eq!(out.outcomes[0], DecryptOutcome::Plaintext(b"torsion in my own U'".to_vec()));
    assert!(matches!(out.outcomes[1], DecryptOutcome::Plaintext(_)));
}
