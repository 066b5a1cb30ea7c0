//! Deterministic committees and transactions for tests, benchmarks, simulations and quick
//! devnets. Everything here is derived from a seed, so two runs with the same seed produce the
//! same bytes. Never use these keys for anything real: the seed is the secret.

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::SeedableRng;
use sha3::{Digest, Sha3_256};
use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot};

use crate::ciphertext::AssociatedData;
use crate::keys::{PublicKeySet, SecretKeyShare, TrustedDealer};

/// A seeded ChaCha20 random number generator (a `CryptoRng`).
pub type SeededRng = rand_chacha::ChaCha20Rng;

/// A seeded RNG, for deterministic tests and simulations.
#[must_use]
pub fn rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// The ed25519 identity of keyper `index` in the test committee with `seed`.
#[must_use]
pub fn identity(seed: u64, index: u16) -> SigningKey {
    let mut h = Sha3_256::new();
    h.update(b"veil/testing/keyper-identity");
    h.update(seed.to_be_bytes());
    h.update(index.to_be_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

/// A committee from the trusted dealer, with its keypers' identities, all from one seed.
#[derive(Debug)]
pub struct TestCommittee {
    /// The public key set (chain 1, eon 1).
    pub pks: PublicKeySet,
    /// Secret shares, keyper `i` at position `i - 1`.
    pub shares: Vec<SecretKeyShare>,
    /// Identity keys, keyper `i` at position `i - 1`.
    pub identities: Vec<SigningKey>,
}

impl TestCommittee {
    /// A committee of `n` keypers where `t + 1` decrypt, on chain 1, eon 1.
    ///
    /// # Panics
    /// If `t >= n` or `n` is zero.
    #[must_use]
    pub fn new(n: u16, t: u16, seed: u64) -> TestCommittee {
        let identities: Vec<SigningKey> = (1..=n).map(|i| identity(seed, i)).collect();
        let verifying: Vec<VerifyingKey> =
            identities.iter().map(SigningKey::verifying_key).collect();
        let (pks, shares) = TrustedDealer::deal(ChainId(1), Eon(1), t, &verifying, &mut rng(seed))
            .expect("test committee parameters are valid");
        TestCommittee { pks, shares, identities }
    }

    /// Associated data for a plain (non-bundle) transaction to `rollup` on this committee.
    #[must_use]
    pub fn ad(&self, rollup: u32, fee: u128) -> AssociatedData {
        AssociatedData {
            chain_id: self.pks.chain_id(),
            eon: self.pks.eon(),
            rollup_id: RollupId(rollup),
            fee_payer: PublicKeyBytes([7; 32]),
            max_fee: Amount(fee),
            gas_limit: 21_000,
            expiry_slot: Slot(1_000),
            bundle: None,
        }
    }
}

/// A ciphertext with a valid proof over an arbitrary `body` (a padding bucket plus 16 bytes
/// long) that need not open under the derived key, with `commitment_offset` added to the
/// transmitted commitment `A′`. This is what a sender who knows its randomness can make; tests
/// use it for the paths that deal with such senders (undecryptable bodies, torsion in `A′`).
pub fn prove_arbitrary<R: rand_core::RngCore + rand_core::CryptoRng>(
    ad: &AssociatedData,
    body: &[u8],
    commitment_offset: blstrs::G1Projective,
    rng: &mut R,
) -> Result<crate::Ciphertext, crate::CryptoError> {
    crate::ciphertext::prove_arbitrary(ad, body, commitment_offset, rng)
}
