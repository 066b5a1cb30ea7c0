//! The admission's cryptographic check over veil-crypto, cheapest first: strict decoding (in
//! parallel), the eon, the fee payer's signature over each ciphertext's id (batch-verified in
//! parallel), the shell's funded-payer gate, and last one batched validity-proof check per
//! eon. A ciphertext whose payer did not sign it, or cannot pay for it, never reaches the
//! expensive proof check. CPU only; randomness for the batch coefficients is passed in.

use bytes::Bytes;
use rand_core::CryptoRngCore;
use rayon::prelude::*;
use sha3::{Digest, Sha3_256};
use veil_crypto::{Ciphertext, CryptoError, PublicKeySet};
use veil_primitives::signed::{verify_many, verifying_key, SignedItem};
use veil_primitives::{ErrorCode, PayerAuthorization, SignatureBytes, SignedMessage, TxMeta};

use crate::error::Rejection;
use crate::pool::{Candidate, EphemeralKeyDigest};

/// One submitted ciphertext with its fee payer's signature, as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The ciphertext's canonical encoding (as sent; decoding checks it is canonical).
    pub body: Bytes,
    /// The fee payer's signature over the ciphertext's id ([`PayerAuthorization`]).
    pub payer_signature: SignatureBytes,
}

impl AsRef<[u8]> for Submission {
    /// The ciphertext bytes.
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

/// The shell's cheap check of a decoded ciphertext whose payer signature verified, run before
/// the proof check (the pool's [`crate::pool::Pool::check_funded`]).
pub type Gate<'a> = &'a (dyn Fn(&TxMeta) -> Result<(), Rejection> + Sync);

/// A gate that lets everything through.
pub fn open_gate(_: &TxMeta) -> Result<(), Rejection> {
    Ok(())
}

/// A payer's decoded key and the bytes it signed.
type Signable = (ed25519_dalek::VerifyingKey, Vec<u8>);

/// Signatures per batch-verification chunk.
const SIGNATURE_CHUNK: usize = 64;

/// Decodes and cryptographically checks ciphertexts. The shell calls it on a blocking thread,
/// never on an async reactor, with randomness it draws itself.
pub trait Validator: Send + Sync + 'static {
    /// One result per input, in order: a [`Candidate`] for a ciphertext that decodes
    /// strictly, whose fee payer's signature verifies, which `gate` lets through and whose
    /// validity proof verifies; or the first rejection, in that order. `rng` draws the batch
    /// check's coefficients: it must be a cryptographic RNG the submitters cannot predict.
    fn validate(
        &self,
        submissions: &[Submission],
        gate: Gate<'_>,
        rng: &mut dyn CryptoRngCore,
    ) -> Vec<Result<Candidate, Rejection>>;
}

/// Checks each decoded ciphertext's fee-payer signature, batch-verified in parallel; a
/// failure replaces the entry with [`ErrorCode::InvalidPublicKey`] (the payer is not a valid
/// ed25519 key) or [`ErrorCode::BadSignature`].
pub fn check_payer_signatures(
    decoded: &mut [Result<Option<Ciphertext>, Rejection>],
    signatures: &[SignatureBytes],
) {
    // Decoding a key is a square root in the field: in parallel, like the check itself.
    let prepared: Vec<Option<Result<Signable, Rejection>>> = decoded
        .par_iter()
        .map(|slot| {
            let Ok(Some(ct)) = slot else { return None };
            let ad = ct.ad();
            Some(match verifying_key(&ad.fee_payer) {
                Ok(key) => Ok((
                    key,
                    PayerAuthorization { chain_id: ad.chain_id, tx: ct.id() }.signing_bytes(),
                )),
                Err(_) => Err(Rejection::new(
                    ErrorCode::InvalidPublicKey,
                    format!("fee payer {} is not a valid ed25519 key", ad.fee_payer),
                )),
            })
        })
        .collect();
    let mut keys = Vec::new();
    let mut messages = Vec::new();
    let mut positions = Vec::new();
    for (i, p) in prepared.into_iter().enumerate() {
        match p {
            None => {}
            Some(Ok((key, message))) => {
                keys.push(key);
                messages.push(message);
                positions.push(i);
            }
            Some(Err(r)) => decoded[i] = Err(r),
        }
    }
    let items: Vec<SignedItem<'_>> = positions
        .iter()
        .enumerate()
        .map(|(j, &i)| SignedItem {
            key: &keys[j],
            message: &messages[j],
            signature: &signatures[i],
        })
        .collect();
    let verdicts = verify_many(&items, SIGNATURE_CHUNK);
    for (j, ok) in verdicts.into_iter().enumerate() {
        if !ok {
            decoded[positions[j]] = Err(Rejection::new(
                ErrorCode::BadSignature,
                "the fee payer's signature over the transaction id does not verify",
            ));
        }
    }
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
pub fn candidate(ct: Ciphertext, payer_signature: SignatureBytes) -> Candidate {
    let ephemeral_key = EphemeralKeyDigest(Sha3_256::digest(ct.ephemeral_key()).into());
    Candidate {
        id: ct.id(),
        meta: *ct.ad(),
        ephemeral_key,
        body: Bytes::from(ct.into_bytes()),
        payer_signature,
    }
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
        submissions: &[Submission],
        gate: Gate<'_>,
        mut rng: &mut dyn CryptoRngCore,
    ) -> Vec<Result<Candidate, Rejection>> {
        let refs: Vec<&[u8]> = submissions.iter().map(|s| &s.body[..]).collect();
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
        let signatures: Vec<SignatureBytes> =
            submissions.iter().map(|s| s.payer_signature).collect();
        check_payer_signatures(&mut out, &signatures);
        for slot in out.iter_mut() {
            if let Ok(Some(ct)) = slot {
                if let Err(r) = gate(ct.ad()) {
                    *slot = Err(r);
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
            .zip(signatures)
            .map(|(r, sig)| r.map(|ct| candidate(ct.expect("every Ok holds a ciphertext"), sig)))
            .collect()
    }
}
