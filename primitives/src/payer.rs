//! The fee payer's authorization of one ciphertext: an ed25519 signature by the key named as
//! `fee_payer` in the ciphertext's associated data, over its transaction id.
//!
//! The ciphertext's validity proof binds its associated data, and with it the fee payer's key,
//! but anyone can encrypt under anyone's key: without a signature, a stranger could fill a
//! payer's quota and spend its balance with junk. So every ciphertext (every part of a bundle)
//! travels with a [`PayerAuthorization`] signed by its fee payer, and admission refuses one
//! whose signature does not verify under that key (`BAD_SIGNATURE`) or whose key is not a
//! valid ed25519 key (`INVALID_PUBLIC_KEY`).
//!
//! The signing bytes follow the one convention of [`crate::signed`], domain
//! `veil/fee-payer/v1`:
//!
//! ```text
//! u32 17 ‖ "veil/fee-payer/v1" ‖ u64 chain_id ‖ tx id (32 bytes)     (integers big-endian)
//! ```
//!
//! The transaction id is sha3-256 of the ciphertext's canonical encoding, so the signature
//! covers every byte of the ciphertext (the fee, the expiry, the rollup and the body
//! included); the chain id is the one in the associated data. The signature is not part of the
//! ciphertext and not part of its id: the same key signs the same id to the same bytes
//! (ed25519 is deterministic), and a resubmission of pending bytes is answered without it.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use veil_primitives::payer::PayerAuthorization;
//! use veil_primitives::signed::public_key;
//! use veil_primitives::{ChainId, TxId};
//!
//! let payer = SigningKey::from_bytes(&[9; 32]);
//! let auth = PayerAuthorization { chain_id: ChainId(1), tx: TxId([7; 32]) };
//! let signature = auth.sign(&payer);
//! assert!(auth.verify(&public_key(&payer), &signature).is_ok());
//! let other = PayerAuthorization { chain_id: ChainId(2), tx: TxId([7; 32]) };
//! assert!(other.verify(&public_key(&payer), &signature).is_err());
//! ```

use ed25519_dalek::{Signer, SigningKey};

use crate::encoding::Encoder;
use crate::signed::{verify, verifying_key, SignatureBytes, SignatureError, SignedMessage};
use crate::{ChainId, PublicKeyBytes, TxId};

/// What a fee payer signs to authorize one ciphertext. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayerAuthorization {
    /// The Veil network (the chain id of the ciphertext's associated data).
    pub chain_id: ChainId,
    /// The transaction id: sha3-256 of the ciphertext's canonical encoding.
    pub tx: TxId,
}

impl SignedMessage for PayerAuthorization {
    const DOMAIN: &'static str = "veil/fee-payer/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn encode_body(&self, e: &mut Encoder) {
        e.fixed(&self.tx.0);
    }
}

impl PayerAuthorization {
    /// The fee payer's signature over this authorization.
    #[must_use]
    pub fn sign(&self, payer: &SigningKey) -> SignatureBytes {
        SignatureBytes(payer.sign(&self.signing_bytes()).to_bytes())
    }

    /// Checks `signature` under `payer` (strict: weak keys and malleable signatures fail).
    ///
    /// # Errors
    /// [`SignatureError::InvalidPublicKey`] or [`SignatureError::BadSignature`].
    pub fn verify(
        &self,
        payer: &PublicKeyBytes,
        signature: &SignatureBytes,
    ) -> Result<(), SignatureError> {
        verify(&verifying_key(payer)?, &self.signing_bytes(), signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the signing bytes of the module docs (and of `wire/PROTOCOL.md`).
    #[test]
    fn signing_bytes_are_the_documented_layout() {
        let auth = PayerAuthorization { chain_id: ChainId(1), tx: TxId([0xab; 32]) };
        let mut expected = 17u32.to_be_bytes().to_vec();
        expected.extend_from_slice(b"veil/fee-payer/v1");
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(auth.signing_bytes(), expected);
    }

    /// The example of `wire/PROTOCOL.md` (section 7): payer `09`×32 signs id `ab`×32 on
    /// chain 1.
    #[test]
    fn protocol_doc_example() {
        let payer = SigningKey::from_bytes(&[9; 32]);
        assert_eq!(
            crate::signed::public_key(&payer).to_string(),
            "0xfd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
        );
        let auth = PayerAuthorization { chain_id: ChainId(1), tx: TxId([0xab; 32]) };
        assert_eq!(auth.signing_bytes().len(), 61);
    }

    #[test]
    fn another_transaction_or_key_does_not_verify() {
        let payer = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let auth = PayerAuthorization { chain_id: ChainId(1), tx: TxId([3; 32]) };
        let sig = auth.sign(&payer);
        let pk = crate::signed::public_key(&payer);
        assert!(auth.verify(&pk, &sig).is_ok());
        let moved = PayerAuthorization { tx: TxId([4; 32]), ..auth };
        assert_eq!(moved.verify(&pk, &sig), Err(SignatureError::BadSignature));
        assert_eq!(
            auth.verify(&crate::signed::public_key(&other), &sig),
            Err(SignatureError::BadSignature)
        );
        // The identity point is a weak key: refused as a key, not as a signature.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            auth.verify(&PublicKeyBytes(identity), &sig),
            Err(SignatureError::InvalidPublicKey(_))
        ));
    }
}
