//! Development committees whose secrets follow from a public seed.
//!
//! `veil dev-committee`, quick devnets, benchmarks and simulations need a committee that two
//! runs (or two processes) can rebuild from one number. [`DevCommittee::from_seed`] deals one
//! with the trusted dealer from a ChaCha20 stream seeded by that number, and derives each
//! keyper's ed25519 identity from it too. **Anyone who knows the seed knows every secret:**
//! never use a dev committee for anything real. Real committees come from
//! [`crate::TrustedDealer::deal`] with OS randomness (or, later, a DKG).
//!
//! Because a dev committee's secrets are public, [`DevCommittee::decrypt`] can decrypt any
//! ciphertext made for it, and say which check a broken one fails: what `veil dev-decrypt`
//! offers a client author who tests an encryption against a dev committee.

use blstrs::G1Projective;
use ed25519_dalek::{SigningKey, VerifyingKey};
use group::{Curve, Group};
use rand_core::SeedableRng;
use sha3::{Digest, Sha3_256};
use veil_primitives::{ChainId, Eon};

use crate::ciphertext::Ciphertext;
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

impl DevCommittee {
    /// Decrypts one encoded ciphertext, running the checks in the order a node does and
    /// returning the first that fails:
    ///
    /// 1. strict decoding ([`Ciphertext::from_bytes`]: any decoding variant of
    ///    [`CryptoError`]);
    /// 2. the key's context: [`CryptoError::WrongChain`], then [`CryptoError::WrongEon`];
    /// 3. the validity proof: [`CryptoError::BadProof`];
    /// 4. the AEAD under the key derived from `K = x·U`, combined from the default
    ///    responders' shares as keypers compute them: [`CryptoError::AeadFailure`];
    /// 5. the padding: [`CryptoError::BadPadding`].
    ///
    /// Returns the decoded ciphertext (id, metadata) and the unpadded payload. Only a dev
    /// committee can do this outside the keypers; the real path is
    /// [`crate::decrypt_block`] over released share batches.
    pub fn decrypt(&self, bytes: &[u8]) -> Result<(Ciphertext, Vec<u8>), CryptoError> {
        let ct = Ciphertext::from_bytes(bytes)?;
        self.pks.verify(&ct)?;
        let responders = self.pks.default_responders();
        let mut k = G1Projective::identity();
        for member in responders.members() {
            let share = &self.shares[usize::from(member.get()) - 1];
            k += G1Projective::from(share.decryption_shares(&[&ct], Some(&responders))?[0].0);
        }
        let payload = ct.open_checked(&k.to_affine())?;
        Ok((ct, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rng as test_rng;

    #[test]
    fn decrypt_names_the_check_that_fails() {
        let c = DevCommittee::new(4, 1, 5);
        let ad = c.ad(3, 10);
        let ct = c.pks.encrypt(&ad, b"dev decrypt", &mut test_rng(1)).unwrap();
        let (back, payload) = c.decrypt(ct.as_bytes()).unwrap();
        assert_eq!((back.id(), payload.as_slice()), (ct.id(), &b"dev decrypt"[..]));

        assert!(matches!(c.decrypt(&ct.as_bytes()[1..]), Err(CryptoError::UnsupportedVersion(_))));
        let mut tampered = ct.as_bytes().to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(c.decrypt(&tampered).unwrap_err(), CryptoError::BadProof);
        let other_chain = DevCommittee::from_seed(ChainId(2), Eon(1), 4, 1, 5).unwrap();
        assert!(matches!(other_chain.decrypt(ct.as_bytes()), Err(CryptoError::WrongChain { .. })));
        // Same chain and eon, other secrets: the proof holds, the AEAD does not open.
        let other_key = DevCommittee::new(4, 1, 6);
        assert_eq!(other_key.decrypt(ct.as_bytes()).unwrap_err(), CryptoError::AeadFailure);

        // A sender who seals a badly padded plaintext under the right key: the tag verifies,
        // the padding does not.
        let mut bad = vec![0u8; 64];
        bad[..4].copy_from_slice(&61u32.to_be_bytes());
        let ct = c.pks.encrypt_padded_for_tests(&ad, bad, &mut test_rng(2)).unwrap();
        assert_eq!(c.decrypt(ct.as_bytes()).unwrap_err(), CryptoError::BadPadding);
    }
}
