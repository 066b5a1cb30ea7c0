//! Property tests: decoders never panic, encodings round-trip, decryption inverts encryption.

use proptest::prelude::*;
use veil_crypto::testing::{self, TestCommittee};
use veil_crypto::{
    decrypt_block, Ciphertext, DecryptOutcome, PublicKeySet, ShareBatch, SignedShareBatch,
};
use veil_primitives::{Amount, BundleId, PublicKeyBytes, RollupId, Slot};

use crate::batches;

fn committee() -> &'static TestCommittee {
    static C: std::sync::OnceLock<TestCommittee> = std::sync::OnceLock::new();
    C.get_or_init(|| TestCommittee::new(4, 2, 21))
}

fn sample() -> &'static Vec<u8> {
    static S: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        committee()
            .pks
            .encrypt(&committee().ad(1, 5), b"sample", &mut testing::rng(1))
            .unwrap()
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ciphertext_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = Ciphertext::from_bytes(&bytes);
    }

    #[test]
    fn mutated_ciphertexts_never_verify(pos in 0usize..600, bit in 0u8..8) {
        let mut bytes = sample().clone();
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(ct) = Ciphertext::from_bytes(&bytes) {
            prop_assert!(committee().pks.verify(&ct).is_err());
        }
    }

    #[test]
    fn truncations_and_extensions_are_rejected(cut in 0usize..600, extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let bytes = sample();
        let cut = cut % bytes.len();
        prop_assert!(Ciphertext::from_bytes(&bytes[..cut]).is_err());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(Ciphertext::from_bytes(&longer).is_err());
    }

    #[test]
    fn share_batch_json_and_key_files_never_panic(s in ".{0,300}") {
        let _ = serde_json::from_str::<ShareBatch>(&s);
        let _ = PublicKeySet::from_json(&s);
        let _ = veil_crypto::SecretKeyShare::from_json(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn decrypt_inverts_encrypt(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 1..4),
        rollup in any::<u32>(),
        fee in any::<u128>(),
        bundle in proptest::option::of((any::<[u8; 32]>(), 1u16..8)),
        seed in any::<u64>(),
    ) {
        let c = committee();
        let mut rng = testing::rng(seed);
        let cts: Vec<Ciphertext> = payloads.iter().enumerate().map(|(i, p)| {
            let mut ad = c.ad(rollup, fee);
            ad.rollup = RollupId(rollup.wrapping_add(i as u32));
            ad.max_fee = Amount(fee);
            ad.fee_payer = PublicKeyBytes([i as u8; 32]);
            ad.bundle = bundle.map(|(id, count)| veil_crypto::BundleRef { id: BundleId(id), index: count - 1, count });
            c.pks.encrypt(&ad, p, &mut rng).unwrap()
        }).collect();
        for ct in &cts {
            let back = Ciphertext::from_bytes(ct.as_bytes()).unwrap();
            prop_assert_eq!(&back, ct);
        }
        let refs: Vec<&Ciphertext> = cts.iter().collect();
        prop_assert!(c.pks.verify_batch(&refs, &mut rng).is_empty());
        let responders = c.pks.default_responders();
        let bs = batches(c, &[1, 2, 3], Slot(1), &refs, Some(&responders));
        let block = decrypt_block(&c.pks, Slot(1), &refs, &bs, &mut rng).unwrap();
        let expected: Vec<DecryptOutcome> = payloads.into_iter().map(DecryptOutcome::Plaintext).collect();
        prop_assert_eq!(block.outcomes, expected);
    }
}

#[test]
fn share_batch_json_is_hex_and_round_trips() {
    let c = committee();
    let ct = Ciphertext::from_bytes(sample()).unwrap();
    let batch = ShareBatch::create(&c.shares[0], &c.identities[0], Slot(3), &[&ct], None).unwrap();
    let json = serde_json::to_string(&batch).unwrap();
    assert!(json.contains("\"shares\":[\"0x") && json.contains("\"block\":\"0x"), "{json}");
    let back: SignedShareBatch = serde_json::from_str(&json).unwrap();
    assert_eq!(back, batch);
    c.pks.verify_share_batch(&back).unwrap();
    let bin = postcard::to_allocvec(&batch).unwrap();
    assert_eq!(postcard::from_bytes::<SignedShareBatch>(&bin).unwrap(), batch);
}

#[test]
fn ciphertext_and_key_set_serde_are_strict() {
    let c = committee();
    let ct = Ciphertext::from_bytes(sample()).unwrap();
    let json = serde_json::to_string(&ct).unwrap();
    assert!(json.starts_with("\"0x02"));
    assert_eq!(serde_json::from_str::<Ciphertext>(&json).unwrap(), ct);
    let bin = postcard::to_allocvec(&ct).unwrap();
    assert_eq!(postcard::from_bytes::<Ciphertext>(&bin).unwrap(), ct);
    // One flipped byte inside U: the strict decoder refuses it through serde too.
    let mut bad = sample().clone();
    bad[100] ^= 1;
    let bad_json = serde_json::to_string(&veil_primitives::hexbytes::encode(&bad)).unwrap();
    assert!(serde_json::from_str::<Ciphertext>(&bad_json).is_err());

    let pks_json = serde_json::to_string(&c.pks).unwrap();
    assert_eq!(serde_json::from_str::<PublicKeySet>(&pks_json).unwrap(), c.pks);
    assert_eq!(PublicKeySet::from_json(&c.pks.to_json()).unwrap(), c.pks);
}
