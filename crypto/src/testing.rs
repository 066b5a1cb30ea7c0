//! Test helpers, compiled only with the `test-utils` feature (and in this crate's own tests):
//! never part of a release build of the node.
//!
//! Everything here is derived from a seed, so two runs with the same seed produce the same
//! bytes. [`prove_arbitrary`] makes ciphertexts whose bodies do not open, which is what a
//! sender who knows its randomness can do; tests use it for the undecryptable paths.

use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot, TxMeta};

pub use crate::dev::{identity, rng, DevCommittee as TestCommittee, SeededRng};

impl crate::dev::DevCommittee {
    /// Metadata for a plain (non-bundle) transaction to `rollup` on this committee, paid by
    /// [`test_payer`] (the ed25519 key whose secret is `[7; 32]`).
    #[must_use]
    pub fn ad(&self, rollup: u32, fee: u128) -> TxMeta {
        TxMeta {
            chain_id: self.pks.chain_id(),
            eon: self.pks.eon(),
            rollup: RollupId(rollup),
            fee_payer: PublicKeyBytes(test_payer().verifying_key().to_bytes()),
            max_fee: Amount(fee),
            gas_limit: 21_000,
            expiry_slot: Slot(1_000),
            bundle: None,
        }
    }
}

/// The fee payer of [`TestCommittee::ad`]: the ed25519 key whose secret is `[7; 32]`.
#[must_use]
pub fn test_payer() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

/// A ciphertext with a valid proof over an arbitrary `body` (a padding bucket plus 16 bytes
/// long) that need not open under the derived key, with `commitment_offset` added to the
/// transmitted commitment `A′`. This is what a sender who knows its randomness can make; tests
/// use it for the paths that deal with such senders (undecryptable bodies, torsion in `A′`).
pub fn prove_arbitrary<R: rand_core::RngCore + rand_core::CryptoRng>(
    ad: &TxMeta,
    body: &[u8],
    commitment_offset: blstrs::G1Projective,
    rng: &mut R,
) -> Result<crate::Ciphertext, crate::CryptoError> {
    crate::ciphertext::prove_arbitrary(ad, body, commitment_offset, rng)
}

/// [`crate::PublicKeySet::encrypt`] with `u_offset` added to the transmitted ephemeral key
/// `U′` (and proven over): what a sender who adds torsion to its own `U′` makes. Tests use it
/// to show that every node clears that torsion the same way.
pub fn encrypt_with_u_offset<R: rand_core::RngCore + rand_core::CryptoRng>(
    pks: &crate::PublicKeySet,
    ad: &TxMeta,
    payload: &[u8],
    u_offset: blstrs::G1Projective,
    rng: &mut R,
) -> Result<crate::Ciphertext, crate::CryptoError> {
    pks.encrypt_with_u_offset(ad, payload, u_offset, rng)
}
