//! ed25519 signatures: the 64-byte wire type, single and batched verification.
//!
//! Batches are verified with `ed25519_dalek::verify_batch` (one multi-scalar multiplication
//! with random linear combinations derived from a transcript of the inputs, so deterministic
//! and free of any RNG), in chunks spread over rayon's pool. A chunk that fails is re-checked
//! one signature at a time, so one bad signature only costs its own chunk and never rejects
//! another builder's bid.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use veil_primitives::{hexbytes, PublicKeyBytes};

use crate::AuctionError;

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

/// Signs `message` (already domain-separated by the caller).
#[must_use]
pub fn sign(key: &SigningKey, message: &[u8]) -> SignatureBytes {
    SignatureBytes(key.sign(message).to_bytes())
}

/// The public key of a signing key, in wire form.
#[must_use]
pub fn public_key(key: &SigningKey) -> PublicKeyBytes {
    PublicKeyBytes(key.verifying_key().to_bytes())
}

/// Decodes a public key, refusing bytes that are not a curve point.
pub fn verifying_key(key: &PublicKeyBytes) -> Result<VerifyingKey, AuctionError> {
    VerifyingKey::from_bytes(&key.0).map_err(|_| AuctionError::InvalidPublicKey(*key))
}

/// Verifies one signature.
pub fn verify(
    key: &VerifyingKey,
    message: &[u8],
    sig: &SignatureBytes,
) -> Result<(), AuctionError> {
    key.verify(message, &Signature::from_bytes(&sig.0)).map_err(|_| AuctionError::BadSignature)
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
/// Items are checked in chunks of `chunk` with batch verification, in parallel; a failing
/// chunk is re-checked item by item with [`verify`], so a `true` never depends on other items.
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

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn batch_isolates_the_bad_signature() {
        let keys: Vec<SigningKey> = (0..10).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        let mut sigs: Vec<SignatureBytes> =
            keys.iter().zip(&msgs).map(|(k, m)| sign(k, m)).collect();
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
