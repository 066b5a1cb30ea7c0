//! [`Signed<T>`]: the one way Veil signs a message, with one domain-separation convention.
//!
//! A message type implements [`SignedMessage`]: a domain tag of the form
//! `veil/<kind>/v<version>` (for example `veil/bid/v1`), the chain id it is for, and its
//! canonical body ([`crate::encoding`]). The bytes an ed25519 key signs are always
//!
//! ```text
//! u32 len(domain) ‖ domain ‖ u64 chain_id ‖ body          (integers big-endian)
//! ```
//!
//! so a signature for one message type, one version or one network is never valid for
//! another. The signer's key is not part of [`Signed`]: each message type names it (a bid
//! carries its builder key, a share batch its keyper index, which the committee maps to a key).
//!
//! # Verification
//!
//! Public keys are decoded with [`verifying_key`], which refuses bytes that are not a point and
//! weak (small-order) keys. A single signature is checked with ed25519-dalek's
//! `verify_strict`. Many signatures are checked with [`verify_many`]: batch verification in
//! chunks over rayon, and a failing chunk re-checked one by one with `verify_strict`, so one bad
//! signature costs only its own chunk and a `true` never depends on the other items.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use veil_primitives::encoding::Encoder;
//! use veil_primitives::signed::{Signed, SignedMessage};
//! use veil_primitives::{ChainId, Slot};
//!
//! #[derive(Debug, Clone)]
//! struct Hello { chain_id: ChainId, slot: Slot }
//! impl SignedMessage for Hello {
//!     const DOMAIN: &'static str = "veil/hello/v1";
//!     fn chain_id(&self) -> ChainId { self.chain_id }
//!     fn encode_body(&self, e: &mut Encoder) { e.u64(self.slot.0) }
//! }
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let signed = Signed::sign(Hello { chain_id: ChainId(1), slot: Slot(5) }, &key);
//! let public = veil_primitives::signed::public_key(&key);
//! assert!(signed.verify(&public).is_ok());
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{sha3_256, Encoder};
use crate::{hexbytes, ChainId, PublicKeyBytes};

/// An ed25519 signature in its 64-byte encoding (`0x` hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureBytes(pub [u8; 64]);

impl std::fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureBytes({})", hexbytes::encode(&self.0[..4]))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        hexbytes::serialize_fixed(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        hexbytes::deserialize_fixed::<D, 64>(deserializer).map(SignatureBytes)
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The 32 bytes are not an ed25519 point, or are a weak (small-order) key.
    #[error("invalid ed25519 public key {0}")]
    InvalidPublicKey(PublicKeyBytes),
    /// The signature does not verify under the key over the message's signing bytes.
    #[error("bad signature")]
    BadSignature,
}

/// A message type that can be signed. See the module docs for the byte layout.
pub trait SignedMessage {
    /// The domain tag, `veil/<kind>/v<version>`. Unique per message type and version.
    const DOMAIN: &'static str;

    /// The Veil network the message is for.
    fn chain_id(&self) -> ChainId;

    /// Appends the canonical encoding of every field (the chain id is already written).
    fn encode_body(&self, e: &mut Encoder);

    /// The exact bytes a key signs: domain tag, chain id, body.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_domain(Self::DOMAIN.as_bytes(), self.chain_id());
        self.encode_body(&mut e);
        e.into_bytes()
    }

    /// sha3-256 of [`SignedMessage::signing_bytes`]: the message's id.
    fn digest(&self) -> [u8; 32] {
        sha3_256(&self.signing_bytes())
    }
}

/// A message with an ed25519 signature over its [`SignedMessage::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The message.
    pub message: T,
    /// The signature.
    pub signature: SignatureBytes,
}

impl<T: SignedMessage> Signed<T> {
    /// Signs `message` with `key`.
    #[must_use]
    pub fn sign(message: T, key: &SigningKey) -> Signed<T> {
        let signature = SignatureBytes(key.sign(&message.signing_bytes()).to_bytes());
        Signed { message, signature }
    }

    /// The bytes the signature is over.
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.message.signing_bytes()
    }

    /// Checks the signature under `key` (strict: weak keys and malleable signatures fail).
    ///
    /// # Errors
    /// [`SignatureError`] if the key is invalid or the signature does not verify.
    pub fn verify(&self, key: &PublicKeyBytes) -> Result<(), SignatureError> {
        self.verify_with(&verifying_key(key)?)
    }

    /// Like [`Signed::verify`] with a key decoded already.
    ///
    /// # Errors
    /// [`SignatureError::BadSignature`] if the signature does not verify.
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        verify(key, &self.signing_bytes(), &self.signature)
    }
}

/// The public key of a signing key, in wire form.
#[must_use]
pub fn public_key(key: &SigningKey) -> PublicKeyBytes {
    PublicKeyBytes(key.verifying_key().to_bytes())
}

/// Decodes a public key, refusing bytes that are not a curve point and weak keys.
///
/// # Errors
/// [`SignatureError::InvalidPublicKey`].
pub fn verifying_key(key: &PublicKeyBytes) -> Result<VerifyingKey, SignatureError> {
    match VerifyingKey::from_bytes(&key.0) {
        Ok(k) if !k.is_weak() => Ok(k),
        _ => Err(SignatureError::InvalidPublicKey(*key)),
    }
}

/// Verifies one signature over `message` (already domain-separated) with `verify_strict`.
///
/// # Errors
/// [`SignatureError::BadSignature`].
pub fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &SignatureBytes,
) -> Result<(), SignatureError> {
    key.verify_strict(message, &Signature::from_bytes(&signature.0))
        .map_err(|_| SignatureError::BadSignature)
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct SignedItem<'a> {
    /// The signer's key.
    pub key: &'a VerifyingKey,
    /// The exact signed bytes.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a SignatureBytes,
}

/// Verifies many signatures; the answer has one entry per item, `true` when it verifies.
///
/// Items are checked in chunks of `chunk` with batch verification (deterministic: its random
/// coefficients come from a transcript of the inputs), in parallel; a failing chunk is
/// re-checked item by item with [`verify`], so a `true` never depends on other items.
#[must_use]
pub fn verify_many(items: &[SignedItem<'_>], chunk: usize) -> Vec<bool> {
    let chunk = chunk.max(1);
    items
        .par_chunks(chunk)
        .flat_map_iter(|part| {
            let messages: Vec<&[u8]> = part.iter().map(|i| i.message).collect();
            let sigs: Vec<Signature> =
                part.iter().map(|i| Signature::from_bytes(&i.signature.0)).collect();
            let keys: Vec<VerifyingKey> = part.iter().map(|i| *i.key).collect();
            let ok = part.len() > 1 && ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok();
            let results: Vec<bool> = if ok {
                vec![true; part.len()]
            } else {
                part.iter().map(|i| verify(i.key, i.message, i.signature).is_ok()).collect()
            };
            results
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Slot;

    #[derive(Debug, Clone)]
    struct Note {
        chain_id: ChainId,
        slot: Slot,
    }

    impl SignedMessage for Note {
        const DOMAIN: &'static str = "veil/note/v1";
        fn chain_id(&self) -> ChainId {
            self.chain_id
        }
        fn encode_body(&self, e: &mut Encoder) {
            e.u64(self.slot.0);
        }
    }

    #[derive(Debug, Clone)]
    struct OtherNote(Note);

    impl SignedMessage for OtherNote {
        const DOMAIN: &'static str = "veil/other-note/v1";
        fn chain_id(&self) -> ChainId {
            self.0.chain_id
        }
        fn encode_body(&self, e: &mut Encoder) {
            self.0.encode_body(e);
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signing_bytes_follow_the_convention() {
        let note = Note { chain_id: ChainId(3), slot: Slot(9) };
        let bytes = note.signing_bytes();
        let mut expected = 12u32.to_be_bytes().to_vec();
        expected.extend_from_slice(b"veil/note/v1");
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&9u64.to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn domain_chain_and_key_separate() {
        let k = key(1);
        let pk = public_key(&k);
        let signed = Signed::sign(Note { chain_id: ChainId(1), slot: Slot(2) }, &k);
        assert!(signed.verify(&pk).is_ok());
        // Same body, other domain: the signature does not carry over.
        let other =
            Signed { message: OtherNote(signed.message.clone()), signature: signed.signature };
        assert_eq!(other.verify(&pk), Err(SignatureError::BadSignature));
        // Other chain.
        let mut moved = signed.clone();
        moved.message.chain_id = ChainId(2);
        assert_eq!(moved.verify(&pk), Err(SignatureError::BadSignature));
        // Other key.
        assert_eq!(signed.verify(&public_key(&key(2))), Err(SignatureError::BadSignature));
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (a small-order point) is weak.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(verifying_key(&PublicKeyBytes(identity)).is_err());
        // y = 2 is not on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(verifying_key(&PublicKeyBytes(not_a_point)).is_err());
    }

    #[test]
    fn batch_isolates_the_bad_signature() {
        let keys: Vec<SigningKey> = (0..10).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        let mut sigs: Vec<SignatureBytes> =
            keys.iter().zip(&msgs).map(|(k, m)| SignatureBytes(k.sign(m).to_bytes())).collect();
        sigs[3].0[5] ^= 1;
        let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let items: Vec<SignedItem<'_>> = (0..10)
            .map(|i| SignedItem { key: &vks[i], message: &msgs[i], signature: &sigs[i] })
            .collect();
        let ok = verify_many(&items, 4);
        for (i, v) in ok.iter().enumerate() {
            assert_eq!(*v, i != 3, "item {i}");
        }
    }

    #[test]
    fn signature_json_is_hex() {
        let s = SignatureBytes([0xab; 64]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.starts_with("\"0xabab"));
        assert_eq!(serde_json::from_str::<SignatureBytes>(&json).unwrap(), s);
    }
}
