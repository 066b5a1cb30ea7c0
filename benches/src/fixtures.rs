//! Inputs shared by `veil-perf` and the criterion benches, so both measure the same thing.

use rand07::SeedableRng as _;
use rayon::prelude::*;
use veil_crypto::testing::{self, TestCommittee};
use veil_crypto::{Ciphertext, ShareBatch, SignedShareBatch, VerifiedShareBatch};
use veil_primitives::Slot;

/// Committee size of the crypto budgets.
pub const N: u16 = 16;
/// Threshold of the crypto budgets (`t + 1 = 12` shares decrypt).
pub const T: u16 = 11;
/// Payload size of the crypto budgets.
pub const PAYLOAD: usize = 512;

/// A `PAYLOAD`-byte payload, distinct per `i`.
#[must_use]
pub fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("transaction {i}: ").into_bytes();
    p.resize(PAYLOAD, b'x');
    p
}

/// A Veil committee (n=16, t=11) with `count` ciphertexts, and threshold_crypto keys for the
/// same (n, t).
pub struct Crypto {
    /// Veil's committee.
    pub committee: TestCommittee,
    /// `count` valid ciphertexts of distinct payloads over four rollups.
    pub cts: Vec<Ciphertext>,
    /// threshold_crypto's secret key set (the baseline).
    pub baseline_sks: threshold_crypto::SecretKeySet,
    /// threshold_crypto's public key set (the baseline).
    pub baseline_pks: threshold_crypto::PublicKeySet,
}

impl Crypto {
    /// Builds the fixture deterministically.
    #[must_use]
    pub fn new(count: usize) -> Crypto {
        let committee = TestCommittee::new(N, T, 2024);
        let mut rng = testing::rng(1);
        let cts = (0..count)
            .map(|i| {
                committee
                    .pks
                    .encrypt(&committee.ad(1 + (i % 4) as u32, 100), &payload(i), &mut rng)
                    .expect("valid")
            })
            .collect();
        let mut rng07 = rand07::rngs::StdRng::seed_from_u64(7);
        let baseline_sks = threshold_crypto::SecretKeySet::random(usize::from(T), &mut rng07);
        let baseline_pks = baseline_sks.public_keys();
        Crypto { committee, cts, baseline_sks, baseline_pks }
    }

    /// Signed share batches of the default responder set for all ciphertexts.
    #[must_use]
    pub fn signed_batches(&self, slot: Slot) -> Vec<SignedShareBatch> {
        let refs: Vec<&Ciphertext> = self.cts.iter().collect();
        let responders = self.committee.pks.default_responders();
        responders
            .members()
            .iter()
            .map(|m| {
                let pos = usize::from(m.get()) - 1;
                ShareBatch::create(
                    &self.committee.shares[pos],
                    &self.committee.identities[pos],
                    slot,
                    &refs,
                    Some(&responders),
                )
                .expect("responders are members")
            })
            .collect()
    }

    /// The default responders' batches, verified.
    #[must_use]
    pub fn responder_batches(&self, slot: Slot) -> Vec<VerifiedShareBatch> {
        self.signed_batches(slot)
            .iter()
            .map(|b| self.committee.pks.verify_share_batch(b).expect("valid batch"))
            .collect()
    }

    /// `count` threshold_crypto ciphertexts of the same payloads.
    #[must_use]
    pub fn baseline_ciphertexts(&self, count: usize) -> Vec<threshold_crypto::Ciphertext> {
        let pk = self.baseline_pks.public_key();
        (0..count).into_par_iter().map(|i| pk.encrypt(payload(i))).collect()
    }
}
