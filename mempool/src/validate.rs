//! The admission's cryptographic check over veil-crypto: strict decoding (in parallel) and
//! one batched validity-proof check per eon. CPU only; randomness for the batch coefficients
//! is passed in.

use bytes::Bytes;
use rand_core::CryptoRngCore;
use sha3::{Digest, Sha3_256};
use veil_crypto::{Ciphertext, CryptoError, PublicKeySet};
use veil_primitives::ErrorCode;

use crate::error::Rejection;
use crate::pool::{Candidate, EphemeralKeyDigest};

/// Decodes and cryptographically checks ciphertexts. The shell calls it on a blocking thread,
/// never on an async reactor, with randomness it draws itself.
pub trait Validator: Send + Sync + 'static {
    /// One result per input, in order: a [`Candidate`] for a ciphertext that decodes
    /// strictly and whose validity proof verifies, or the rejection. `rng` draws the batch
    /// check's coefficients: it must be a cryptographic RNG the submitters cannot predict.
    fn validate(
        &self,
        ciphertexts: &[Bytes],
        rng: &mut dyn CryptoRngCore,
    ) -> Vec<Result<Candidate, Rejection>>;
}

/// The rejection code for a crypto error at admission.
#[must_use]
pub fn reject_code(e: &CryptoError) -> ErrorCode {
    match e {
        CryptoError::WrongEon { .. } => ErrorCode::WrongEon,
        CryptoError::WrongChain { .. } => ErrorCode::WrongChain,
        CryptoError::BadProof => ErrorCode::BadProof,
        CryptoError::PayloadTooLarge { .. } | CryptoError::TooLong { .. } => {
            ErrorCode::CiphertextTooLarge
        }
        _ => ErrorCode::InvalidCiphertext,
    }
}

/// The pool's view of a checked ciphertext.
#[must_use]
pub fn candidate(ct: Ciphertext) -> Candidate {
    let ephemeral_key = EphemeralKeyDigest(Sha3_256::digest(ct.ephemeral_key()).into());
    Candidate { id: ct.id(), meta: *ct.ad(), ephemeral_key, body: Bytes::from(ct.into_bytes()) }
}

/// Checks ciphertexts against the committee keys of the accepted eons.
#[derive(Debug, Clone)]
pub struct CommitteeValidator {
    keys: Vec<PublicKeySet>,
}

impl CommitteeValidator {
    /// A validator accepting ciphertexts for any of `keys` (one per eon, typically the current
    /// and the next).
    #[must_use]
    pub fn new(keys: Vec<PublicKeySet>) -> CommitteeValidator {
        CommitteeValidator { keys }
    }
}

impl Validator for CommitteeValidator {
    fn validate(
        &self,
        ciphertexts: &[Bytes],
        mut rng: &mut dyn CryptoRngCore,
    ) -> Vec<Result<Candidate, Rejection>> {
        let refs: Vec<&[u8]> = ciphertexts.iter().map(|b| &b[..]).collect();
        let decoded = Ciphertext::decode_many(&refs);
        let mut out: Vec<Result<Option<Ciphertext>, Rejection>> = decoded
            .into_iter()
            .map(|r| r.map(Some).map_err(|e| Rejection::new(reject_code(&e), e.to_string())))
            .collect();
        // Wrong eon before the proof check; then one batch per accepted key.
        for slot in out.iter_mut() {
            if let Ok(Some(ct)) = slot {
                let eon = ct.ad().eon;
                if !self.keys.iter().any(|k| k.eon() == eon) {
                    *slot = Err(Rejection::new(ErrorCode::WrongEon, format!("eon {eon}")));
                }
            }
        }
        for key in &self.keys {
            let positions: Vec<usize> = out
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Ok(Some(ct)) if ct.ad().eon == key.eon() => Some(i),
                    _ => None,
                })
                .collect();
            if positions.is_empty() {
                continue;
            }
            let cts: Vec<&Ciphertext> = positions
                .iter()
                .map(|&i| match &out[i] {
                    Ok(Some(ct)) => ct,
                    _ => unreachable!("positions hold decoded ciphertexts"),
                })
                .collect();
            let bad = key.verify_batch(&cts, &mut rng);
            for (j, e) in bad {
                out[positions[j]] = Err(Rejection::new(reject_code(&e), e.to_string()));
            }
        }
        out.into_iter()
            .map(|r| r.map(|ct| candidate(ct.expect("every Ok holds a ciphertext"))))
            .collect()
    }
}
