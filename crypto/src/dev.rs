//! Development committees whose secrets follow from a public seed.
//!
//! `veil dev-committee`, quick devnets, benchmarks and simulations need a committee that two
//! runs (or two processes) can rebuild from one number. [`DevCommittee::from_seed`] deals one
//! with the trusted dealer from a ChaCha20 stream seeded by that number, and derives each
//! keyper's ed25519 identity from it too. **Anyone who knows the seed knows every secret:**
//! never use a dev committee for anything real. Real committees come from
//! [`crate::TrustedDealer::deal`] with OS randomness (or, later, a DKG).

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::SeedableRng;
use sha3::{Digest, Sha3_256};
use veil_primitives::{ChainId, Eon};

use crate::error::CryptoError;
use crate::keys::{PublicKeySet, SecretKeyShare, TrustedDealer};

/// A seeded ChaCha20 random number generator (a `CryptoRng`).
pub type SeededRng = rand_chacha::ChaCha20Rng;

/// A seeded RNG, for deterministic tests, simulations and dev committees.
#[must_use]
pub fn rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// The ed25519 identity of keyper `index` in the dev committee with `seed`.
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
pub struct DevCommittee {
    /// The public key set.
    pub pks: PublicKeySet,
    /// Secret shares, keyper `i` at position `i - 1`.
    pub shares: Vec<SecretKeyShare>,
    /// Identity keys, keyper `i` at position `i - 1`.
    pub identities: Vec<SigningKey>,
}

impl DevCommittee {
    /// A committee of `n` keypers where `t + 1` decrypt, for `chain_id` and `eon`.
    ///
    /// # Errors
    /// [`CryptoError`] if the parameters are invalid (`t >= n`, `n` zero or too large).
    pub fn from_seed(
        chain_id: ChainId,
        eon: Eon,
        n: u16,
        t: u16,
        seed: u64,
    ) -> Result<DevCommittee, CryptoError> {
        let identities: Vec<SigningKey> = (1..=n).map(|i| identity(seed, i)).collect();
        let verifying: Vec<VerifyingKey> =
            identities.iter().map(SigningKey::verifying_key).collect();
        let (pks, shares) = TrustedDealer::deal(chain_id, eon, t, &verifying, &mut rng(seed))?;
        Ok(DevCommittee { pks, shares, identities })
    }

    /// A committee of `n` keypers where `t + 1` decrypt, on chain 1, eon 1.
    ///
    /// # Panics
    /// If `t >= n` or `n` is zero.
    #[must_use]
    pub fn new(n: u16, t: u16, seed: u64) -> DevCommittee {
        DevCommittee::from_seed(ChainId(1), Eon(1), n, t, seed)
            .expect("dev committee parameters are valid")
    }
}
