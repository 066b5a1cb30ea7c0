//! Ciphertexts: associated data, canonical encoding, padding, encryption and validity proofs.
//!
//! # Encoding (version 1)
//!
//! All integers big-endian. The associated data comes first, so that its bytes are a prefix
//! of the ciphertext and can be hashed without copying.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, `0x02` |
//! | 8 | chain id |
//! | 8 | eon |
//! | 4 | rollup id |
//! | 32 | fee payer (ed25519 public key) |
//! | 16 | max fee (u128) |
//! | 8 | gas limit |
//! | 8 | expiry slot |
//! | 1 | bundle flag: `0` none, `1` bundle part follows |
//! | 32 + 2 + 2 | if bundle: bundle id, part index, part count (`index < count`, `1 <= count <= 16`) |
//! | 96 | `U′`, uncompressed: the ephemeral key is `U = h·U′ = r·G1` (see below) |
//! | 96 | `A′`, uncompressed: the proof commitment is `A = h·A′ = k·G1` (see below) |
//! | 32 | `z = k + c·r` (scalar, canonical) |
//! | 4 | body length `L` |
//! | `L` | ChaCha20-Poly1305 ciphertext of the padded payload, tag last; `L − 16` is a bucket |
//!
//! Points are uncompressed on purpose: decompression costs a square root (about 10 µs) per
//! point, which admission would pay twice per ciphertext; 96 extra bytes are cheaper.
//!
//! # Both points are cofactor-cleared
//!
//! Neither point is checked for membership of the prime-order subgroup G1 (blst's check costs
//! about 50 µs a point, most of a decode): each is only required to be a canonical point of
//! the curve, and the scheme uses `h·U′` and `h·A′`, where `h = 0xd201000000010001` is G1's
//! effective cofactor (RFC 9380, 8.8.1): `h·P` is in G1 for every point `P` of the curve, as
//! in Ed25519's cofactored verification. The honest sender sends `U′ = (r·h⁻¹)·G1` and
//! `A′ = (k·h⁻¹)·G1`, so the ephemeral key is `U = h·U′ = r·G1` and the proof commitment
//! `A = h·A′ = k·G1`, and the proof equation is `z·G1 = h·(A′ + c·U′)`.
//!
//! - The batched proof check pays one multiplication by `h` per batch, not a subgroup check
//!   per ciphertext: admission and a keyper's validation need no per-ciphertext curve
//!   multiplication at all.
//! - Keyper secrets multiply only `U = h·U′` (about 27 µs to clear, about half a subgroup
//!   check), which is in G1 by construction: torsion a sender adds to `U′` never meets a
//!   secret, so it cannot leak a share's residues.
//! - Torsion a sender adds to its own `U′` or `A′` changes nothing: every node clears it the
//!   same way and reaches the same verdict, shares and plaintext. Torsion a third party adds
//!   to someone else's ciphertext changes the bytes the challenge hashes, so the proof fails.
//! - A `U′` of small order makes `U` the identity: its proof then proves `r = 0`, and the
//!   payload key is public. Only its own sender loses by that, as with `r = 1`.

use std::fmt;

use blstrs::{G1Affine, G1Projective, Scalar};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve, Group};
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256, Sha3_512};
use veil_primitives::{Amount, BundleId, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};
use zeroize::Zeroize;

use crate::curve::{self, G1_LEN, SCALAR_LEN};
use crate::error::CryptoError;
use crate::keys::PublicKeySet;

/// The version byte of the encoding this build writes and reads.
pub const CIPHERTEXT_VERSION: u8 = 2;

/// The largest number of parts an atomic bundle may have: the part count in the associated
/// data is `1..=MAX_BUNDLE_PARTS`, and the ingress admits no larger bundle by default.
pub const MAX_BUNDLE_PARTS: u16 = 16;

/// Padded plaintext sizes. A payload is prefixed by its 4-byte length and zero-padded to the
/// smallest bucket that holds it, so a ciphertext's length tells an observer only the
/// bucket: at most a factor 2 between neighbouring buckets, 1.5 from 128 bytes on.
///
/// The buckets stop at the largest one whose ciphertext (with a bundle reference, the
/// longer associated data) the ingress admits by default (8 KiB): the next one, 8192, would
/// make ciphertexts of 8,538 bytes that could never be submitted. `CIPHERTEXT.md` ("Limits")
/// lists every bucket with its ciphertext size.
pub const PADDING_BUCKETS: [usize; 13] =
    [64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144];

/// The largest payload one ciphertext can carry: 6,140 bytes.
pub const MAX_PAYLOAD: usize = PADDING_BUCKETS[PADDING_BUCKETS.len() - 1] - LEN_PREFIX;

/// The largest encoded ciphertext: 6,510 bytes (a bundle part with a [`MAX_PAYLOAD`] payload).
pub const MAX_CIPHERTEXT_LEN: usize =
    ciphertext_len(PADDING_BUCKETS[PADDING_BUCKETS.len() - 1], true);

/// The encoded length of a ciphertext whose padded payload is `bucket` bytes, with or without
/// a bundle reference in its associated data.
pub(crate) const fn ciphertext_len(bucket: usize, bundle: bool) -> usize {
    (if bundle { AD_MAX_LEN } else { AD_FIXED_LEN }) + PROOF_LEN + 4 + bucket + TAG_LEN
}

const LEN_PREFIX: usize = 4;
const TAG_LEN: usize = 16;
const AD_FIXED_LEN: usize = 1 + 8 + 8 + 4 + 32 + 16 + 8 + 8 + 1;
const AD_MAX_LEN: usize = AD_FIXED_LEN + 32 + 2 + 2;
const PROOF_LEN: usize = G1_LEN + G1_LEN + SCALAR_LEN;

const DST_CHALLENGE: &[u8] = b"veil/v1/ciphertext-challenge";
const DST_KDF: &[u8] = b"veil/v1/payload-key";
const DST_BATCH: &[u8] = b"veil/v1/batch-coefficients";

pub use veil_primitives::BundleRef;

/// The public metadata of a ciphertext, bound into its validity proof and its AEAD: the
/// workspace's one [`TxMeta`]. Builders and keypers see exactly this, never the payload.
pub use veil_primitives::TxMeta;

/// The canonical encoding and the context checks of the associated data (crate-private: the
/// type itself lives in veil-primitives).
pub(crate) trait AssociatedData {
    /// Length of [`AssociatedData::encode_into`]'s output.
    fn encoded_len(&self) -> usize;
    /// Appends the canonical encoding (CIPHERTEXT.md, "Associated data").
    fn encode_into(&self, out: &mut Vec<u8>);
    /// Errors unless the ciphertext names `chain_id` and `eon`: the context of the key that is
    /// about to check it, share it or decrypt it.
    fn check_key(&self, chain_id: ChainId, eon: Eon) -> Result<(), CryptoError>;
    /// Checks the fields the encoding constrains (bundle index and count).
    fn check(&self) -> Result<(), CryptoError>;
}

impl AssociatedData for TxMeta {
    fn encoded_len(&self) -> usize {
        AD_FIXED_LEN + if self.bundle.is_some() { 36 } else { 0 }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(CIPHERTEXT_VERSION);
        out.extend_from_slice(&self.chain_id.0.to_be_bytes());
        out.extend_from_slice(&self.eon.0.to_be_bytes());
        out.extend_from_slice(&self.rollup.0.to_be_bytes());
        out.extend_from_slice(&self.fee_payer.0);
        out.extend_from_slice(&self.max_fee.0.to_be_bytes());
        out.extend_from_slice(&self.gas_limit.to_be_bytes());
        out.extend_from_slice(&self.expiry_slot.0.to_be_bytes());
        match &self.bundle {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&b.id.0);
                out.extend_from_slice(&b.index.to_be_bytes());
                out.extend_from_slice(&b.count.to_be_bytes());
            }
        }
    }

    /// Errors unless the ciphertext names `chain_id` and `eon`: the context of the key that is
    /// about to check it, share it or decrypt it.
    fn check_key(&self, chain_id: ChainId, eon: Eon) -> Result<(), CryptoError> {
        if self.chain_id != chain_id {
            return Err(CryptoError::WrongChain { expected: chain_id, found: self.chain_id });
        }
        if self.eon != eon {
            return Err(CryptoError::WrongEon { expected: eon, found: self.eon });
        }
        Ok(())
    }

    fn check(&self) -> Result<(), CryptoError> {
        if let Some(b) = &self.bundle {
            if b.count == 0 || b.count > MAX_BUNDLE_PARTS {
                return Err(CryptoError::InvalidField("bundle part count must be 1..=16"));
            }
            if b.index >= b.count {
                return Err(CryptoError::InvalidField("bundle part index must be below the count"));
            }
        }
        Ok(())
    }
}

/// A strict reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(
            CryptoError::Truncated { needed: self.pos.saturating_add(n), had: self.bytes.len() },
        )?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], CryptoError> {
        Ok(self.take(N)?.try_into().expect("take(N) returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, CryptoError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CryptoError> {
        Ok(u16::from_be_bytes(*self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CryptoError> {
        Ok(u32::from_be_bytes(*self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CryptoError> {
        Ok(u64::from_be_bytes(*self.array()?))
    }

    fn u128(&mut self) -> Result<u128, CryptoError> {
        Ok(u128::from_be_bytes(*self.array()?))
    }
}

fn decode_ad(r: &mut Reader<'_>) -> Result<TxMeta, CryptoError> {
    let version = r.u8()?;
    if version != CIPHERTEXT_VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let chain_id = ChainId(r.u64()?);
    let eon = Eon(r.u64()?);
    let rollup = RollupId(r.u32()?);
    let fee_payer = PublicKeyBytes(*r.array()?);
    let max_fee = Amount(r.u128()?);
    let gas_limit = r.u64()?;
    let expiry_slot = Slot(r.u64()?);
    let bundle = match r.u8()? {
        0 => None,
        1 => Some(BundleRef { id: BundleId(*r.array()?), index: r.u16()?, count: r.u16()? }),
        _ => return Err(CryptoError::InvalidField("bundle flag must be 0 or 1")),
    };
    let ad = TxMeta { chain_id, eon, rollup, fee_payer, max_fee, gas_limit, expiry_slot, bundle };
    ad.check()?;
    Ok(ad)
}

/// An encrypted transaction with its validity proof, decoded and checked for well-formedness
/// (canonical encoding, both points on the curve and not the identity, scalar canonical, body
/// a padding bucket). The proof itself is checked by [`PublicKeySet::verify`] or
/// [`PublicKeySet::verify_batch`].
///
/// Holds its canonical bytes, so [`Ciphertext::as_bytes`] and [`Ciphertext::id`] are free.
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    bytes: Vec<u8>,
    id: TxId,
    ad: TxMeta,
    ad_len: usize,
    /// `U′`: the ephemeral key is `h·U′`.
    u_prime: G1Affine,
    /// `A′`: the proof commitment is `h·A′`.
    a: G1Affine,
    z: Scalar,
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("id", &self.id)
            .field("ad", &self.ad)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl Ciphertext {
    /// Strictly decodes a ciphertext: canonical encoding, both points on the curve (no
    /// subgroup checks: see the module docs), the body a padding bucket. About 5 µs, mostly
    /// the transaction id's hash; [`Ciphertext::decode_many`] for many.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ciphertext, CryptoError> {
        Ciphertext::decode(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Ciphertext, CryptoError> {
        if bytes.len() > MAX_CIPHERTEXT_LEN {
            return Err(CryptoError::TooLong { len: bytes.len(), max: MAX_CIPHERTEXT_LEN });
        }
        let mut r = Reader { bytes, pos: 0 };
        let ad = decode_ad(&mut r)?;
        let ad_len = r.pos;
        let u_bytes = r.array::<G1_LEN>()?;
        let a_bytes = r.array::<G1_LEN>()?;
        let z = curve::decode_scalar(r.array()?, "proof response z")?;
        let body_len = r.u32()? as usize;
        if !is_bucket(body_len.wrapping_sub(TAG_LEN)) {
            return Err(CryptoError::BadBodyLength(body_len));
        }
        r.take(body_len)?;
        if r.pos != bytes.len() {
            return Err(CryptoError::TrailingBytes(bytes.len() - r.pos));
        }
        let u_prime = curve::decode_g1_on_curve(u_bytes, "ephemeral key U'")?;
        if bool::from(u_prime.is_identity()) {
            return Err(CryptoError::IdentityPoint("ephemeral key U'"));
        }
        let a = curve::decode_g1_on_curve(a_bytes, "proof commitment A'")?;
        if bool::from(a.is_identity()) {
            return Err(CryptoError::IdentityPoint("proof commitment A'"));
        }
        Ok(Ciphertext { bytes: bytes.to_vec(), id: tx_id(bytes), ad, ad_len, u_prime, a, z })
    }

    /// Decodes many ciphertexts in parallel (rayon), one result per input, in order.
    #[must_use]
    pub fn decode_many(inputs: &[&[u8]]) -> Vec<Result<Ciphertext, CryptoError>> {
        inputs.par_iter().map(|b| Ciphertext::from_bytes(b)).collect()
    }

    /// The canonical encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The canonical encoding, owned.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Length of the canonical encoding.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The transaction id: sha3-256 of the canonical encoding.
    #[must_use]
    pub fn id(&self) -> TxId {
        self.id
    }

    /// The public metadata.
    #[must_use]
    pub fn ad(&self) -> &TxMeta {
        &self.ad
    }

    /// The ephemeral key as sent, `U′` (its uncompressed encoding). Two different ciphertexts
    /// with the same one are a copy attack or a broken client: admission keeps the first. (A
    /// copy with torsion added to `U′` has other bytes but the same `U`; its proof fails, as
    /// the copier does not know `r`.)
    #[must_use]
    pub fn ephemeral_key(&self) -> &[u8; G1_LEN] {
        self.bytes[self.ad_len..self.ad_len + G1_LEN]
            .try_into()
            .expect("U′ follows the associated data")
    }

    /// `U′` as sent; the ephemeral key is `h·U′` ([`Ciphertext::ephemeral_point`]).
    pub(crate) fn u_prime(&self) -> &G1Affine {
        &self.u_prime
    }

    /// The ephemeral key `U = h·U′`, in G1 by construction: what keyper secrets multiply.
    pub(crate) fn ephemeral_point(&self) -> G1Projective {
        curve::clear_cofactor(&G1Projective::from(self.u_prime))
    }

    fn ad_bytes(&self) -> &[u8] {
        &self.bytes[..self.ad_len]
    }

    pub(crate) fn body(&self) -> &[u8] {
        &self.bytes[self.ad_len + PROOF_LEN + 4..]
    }

    fn challenge(&self) -> Scalar {
        challenge(
            self.ad_bytes(),
            self.ephemeral_key(),
            &self.bytes[self.ad_len + G1_LEN..][..G1_LEN],
            self.body(),
        )
    }

    /// Decrypts the body with the combined key point `K = x·U`, and strips the padding.
    /// `None` if the AEAD tag or the padding does not check.
    pub(crate) fn open(&self, k: &G1Affine) -> Option<Vec<u8>> {
        self.open_checked(k).ok()
    }

    /// [`Ciphertext::open`], saying which check failed: [`CryptoError::AeadFailure`] or
    /// [`CryptoError::BadPadding`].
    pub(crate) fn open_checked(&self, k: &G1Affine) -> Result<Vec<u8>, CryptoError> {
        let mut key = payload_key(k, self.ephemeral_key());
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        key.zeroize();
        let padded = cipher
            .decrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload { msg: self.body(), aad: self.ad_bytes() },
            )
            .map_err(|_| CryptoError::AeadFailure)?;
        unpad(padded).ok_or(CryptoError::BadPadding)
    }
}

/// Serialises as the canonical encoding: raw bytes in binary formats, `0x` hex in JSON.
impl Serialize for Ciphertext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        veil_primitives::hexbytes::serialize_vec(&self.bytes, serializer)
    }
}

/// Deserialises through [`Ciphertext::from_bytes`]: every check of strict decoding applies.
impl<'de> Deserialize<'de> for Ciphertext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = veil_primitives::hexbytes::deserialize_vec(deserializer)?;
        Ciphertext::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// The transaction id of a ciphertext's canonical encoding: sha3-256 of the bytes. Bytes that
/// are not canonical have an id too, but no admitted ciphertext has it.
#[must_use]
pub fn tx_id(bytes: &[u8]) -> TxId {
    TxId(Sha3_256::digest(bytes).into())
}

fn is_bucket(len: usize) -> bool {
    PADDING_BUCKETS.binary_search(&len).is_ok()
}

pub(crate) fn challenge(ad: &[u8], u: &[u8], a: &[u8], body: &[u8]) -> Scalar {
    let body_hash = Sha3_256::digest(body);
    let mut h = Sha3_512::new();
    h.update((DST_CHALLENGE.len() as u8).to_be_bytes());
    h.update(DST_CHALLENGE);
    h.update(ad);
    h.update(u);
    h.update(a);
    h.update(body_hash);
    curve::scalar_from_wide(&h.finalize().into())
}

pub(crate) fn payload_key(k: &G1Affine, u: &[u8; G1_LEN]) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(DST_KDF);
    h.update(k.to_compressed());
    h.update(u);
    h.finalize().into()
}

pub(crate) fn pad(payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let needed = payload.len() + LEN_PREFIX;
    let bucket = *PADDING_BUCKETS
        .iter()
        .find(|&&b| b >= needed)
        .ok_or(CryptoError::PayloadTooLarge { len: payload.len(), max: MAX_PAYLOAD })?;
    let mut out = Vec::with_capacity(bucket + TAG_LEN);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(bucket, 0);
    Ok(out)
}

fn unpad(mut padded: Vec<u8>) -> Option<Vec<u8>> {
    let len = u32::from_be_bytes(padded.get(..LEN_PREFIX)?.try_into().ok()?) as usize;
    let end = LEN_PREFIX.checked_add(len).filter(|&e| e <= padded.len())?;
    if padded[end..].iter().any(|&b| b != 0) {
        return None;
    }
    padded.truncate(end);
    padded.drain(..LEN_PREFIX);
    Some(padded)
}

/// Randomness of one encryption, wiped when dropped: `r` (the ElGamal exponent, `U = r·G1`)
/// and `k` (the Schnorr nonce). Only [`PublicKeySet::encrypt`] draws it; the known-answer
/// tests build it from fixed scalars, which nothing outside this crate's tests can do.
pub(crate) struct EncryptionSecrets {
    r: Scalar,
    k: Scalar,
}

impl EncryptionSecrets {
    /// Fixed randomness, for the known-answer vectors of `CIPHERTEXT.md` only.
    #[cfg(test)]
    pub(crate) fn fixed(r: Scalar, k: Scalar) -> EncryptionSecrets {
        EncryptionSecrets { r, k }
    }
}

impl Drop for EncryptionSecrets {
    fn drop(&mut self) {
        curve::wipe_scalar(&mut self.r);
        curve::wipe_scalar(&mut self.k);
    }
}

impl PublicKeySet {
    /// Encrypts `payload` to this committee's key with associated data `ad`.
    ///
    /// Signed ElGamal in G1 (see the crate docs): `U = r·G1` (sent as `U′ = (r·h⁻¹)·G1`, see
    /// the module docs), `K = r·X1`, the payload sealed with ChaCha20-Poly1305 under
    /// `sha3(K, U′)` and `ad` as AEAD associated data, and a Schnorr proof of knowledge of `r`
    /// bound to `ad`, `U′` and the sealed body.
    ///
    /// Errors if `ad` names another chain or eon, is malformed, or the payload is larger than
    /// [`MAX_PAYLOAD`].
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        ad: &TxMeta,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<Ciphertext, CryptoError> {
        self.encrypt_offset(ad, payload, None, rng)
    }

    /// [`PublicKeySet::encrypt`], with `u_offset` (for tests: torsion) added to the `U′` sent.
    fn encrypt_offset<R: RngCore + CryptoRng>(
        &self,
        ad: &TxMeta,
        payload: &[u8],
        u_offset: Option<G1Projective>,
        rng: &mut R,
    ) -> Result<Ciphertext, CryptoError> {
        self.check_context(ad)?;
        ad.check()?;
        let padded = pad(payload)?;
        let secrets = EncryptionSecrets { r: nonzero_scalar(rng), k: nonzero_scalar(rng) };
        Ok(self.seal(ad, padded, &secrets, u_offset))
    }

    /// [`PublicKeySet::encrypt`] with fixed randomness: the known-answer vectors only.
    #[cfg(test)]
    pub(crate) fn encrypt_with(
        &self,
        ad: &TxMeta,
        payload: &[u8],
        secrets: &EncryptionSecrets,
    ) -> Result<Ciphertext, CryptoError> {
        self.check_context(ad)?;
        ad.check()?;
        Ok(self.seal(ad, pad(payload)?, secrets, None))
    }

    /// [`PublicKeySet::encrypt`] with `u_offset` added to the `U′` sent (and proven over):
    /// what a sender who adds torsion to its own ephemeral key makes. Tests only.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn encrypt_with_u_offset<R: RngCore + CryptoRng>(
        &self,
        ad: &TxMeta,
        payload: &[u8],
        u_offset: G1Projective,
        rng: &mut R,
    ) -> Result<Ciphertext, CryptoError> {
        self.encrypt_offset(ad, payload, Some(u_offset), rng)
    }

    /// Seals an arbitrary `padded` plaintext (a bucket long) with fresh randomness: what a
    /// client with a broken padding makes. Tests of the diagnostics only.
    #[cfg(test)]
    pub(crate) fn encrypt_padded_for_tests<R: RngCore + CryptoRng>(
        &self,
        ad: &TxMeta,
        padded: Vec<u8>,
        rng: &mut R,
    ) -> Result<Ciphertext, CryptoError> {
        self.check_context(ad)?;
        ad.check()?;
        if !is_bucket(padded.len()) {
            return Err(CryptoError::BadBodyLength(padded.len() + TAG_LEN));
        }
        let secrets = EncryptionSecrets { r: nonzero_scalar(rng), k: nonzero_scalar(rng) };
        Ok(self.seal(ad, padded, &secrets, None))
    }

    /// Encrypts the checked metadata `ad` and the `padded` payload with `secrets` (steps 2 to
    /// 6 of `CIPHERTEXT.md`, "Encryption"), and wipes `padded`. `u_offset` (tests only:
    /// torsion) is added to the `U′` sent.
    fn seal(
        &self,
        ad: &TxMeta,
        mut padded: Vec<u8>,
        secrets: &EncryptionSecrets,
        u_offset: Option<G1Projective>,
    ) -> Ciphertext {
        let g = G1Projective::generator();
        let h_inv = curve::cofactor_inverse();
        let mut projective =
            [g * (secrets.r * h_inv), self.key_g1() * secrets.r, g * (secrets.k * h_inv)];
        if let Some(offset) = u_offset {
            projective[0] += offset;
        }
        let mut affine = [G1Affine::default(); 3];
        G1Projective::batch_normalize(&projective, &mut affine);
        let (u, a) = (affine[0], affine[2]);
        let u_bytes = u.to_uncompressed();

        let mut bytes =
            Vec::with_capacity(ad.encoded_len() + PROOF_LEN + 4 + padded.len() + TAG_LEN);
        ad.encode_into(&mut bytes);
        let ad_len = bytes.len();
        // K = r·X1 is the payload key's only input: wipe every copy once the key is derived.
        let mut key = payload_key(&affine[1], &u_bytes);
        curve::wipe(&mut affine[1], G1Affine::default());
        curve::wipe(&mut projective[1], G1Projective::identity());
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        key.zeroize();
        let body = cipher
            .encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: &padded, aad: &bytes[..ad_len] })
            .expect("ChaCha20-Poly1305 encryption of a bounded buffer cannot fail");
        padded.zeroize();
        prove(bytes, *ad, secrets, u, a, &body)
    }

    fn check_context(&self, ad: &TxMeta) -> Result<(), CryptoError> {
        ad.check_key(self.chain_id(), self.eon())
    }

    /// Checks one ciphertext: right chain and eon, and a valid proof (`z·G1 = h·(A′ + c·U′)`).
    pub fn verify(&self, ct: &Ciphertext) -> Result<(), CryptoError> {
        self.check_context(&ct.ad)?;
        // As one sum that must clear to the identity, the way the batch check does it:
        // h·(A′ + c·U′ − (z·h⁻¹)·G1) = h·(A′ + c·U′) − z·G1, since G1 is in the subgroup. One
        // two-point multi-scalar multiplication (blst's generic one: its single-point
        // multiplication uses the GLV endomorphism, which is only right inside G1) instead of
        // that and a separate z·G1: about a third cheaper.
        let sum = curve::msm_serial(
            &[ct.u_prime, G1Affine::generator()],
            &curve::scalars_le(&[ct.challenge(), -ct.z * curve::cofactor_inverse()]),
            255,
        ) + ct.a;
        if bool::from(curve::clear_cofactor(&sum).is_identity()) {
            Ok(())
        } else {
            Err(CryptoError::BadProof)
        }
    }

    /// Checks many ciphertexts at once and returns the bad ones (position and reason),
    /// ascending. An empty result means every ciphertext is valid.
    ///
    /// One random linear combination of all proof equations, checked with multi-scalar
    /// multiplications: `h·(Σρ_j·A′_j + Σ(ρ_j·c_j)·U′_j) = (Σρ_j·z_j)·G1` with 128-bit random
    /// `ρ_j` (one multiplication by the cofactor `h` for the whole batch).
    /// A forged proof passes one combination with probability at most 2^-128 (about
    /// `2·log2(n)·2^-128` over the bisection). When the combination fails, the batch is split
    /// in halves and each half checked again with fresh coefficients, down to single checks
    /// below 16 ciphertexts, so a few bad ciphertexts cost a few extra checks, not a rerun of
    /// everything one by one. Senders of bad proofs are the caller's to rate-limit.
    pub fn verify_batch<R: RngCore + CryptoRng>(
        &self,
        cts: &[&Ciphertext],
        rng: &mut R,
    ) -> Vec<(usize, CryptoError)> {
        let mut bad = Vec::new();
        let mut candidates = Vec::with_capacity(cts.len());
        for (i, ct) in cts.iter().enumerate() {
            match self.check_context(&ct.ad) {
                Ok(()) => candidates.push(i),
                Err(e) => bad.push((i, e)),
            }
        }
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let challenges: Vec<Scalar> = candidates.par_iter().map(|&i| cts[i].challenge()).collect();
        let mut proof_bad = Vec::new();
        self.bisect(cts, &candidates, &challenges, &seed, 0, &mut proof_bad);
        bad.extend(proof_bad.into_iter().map(|i| (i, CryptoError::BadProof)));
        bad.sort_by_key(|(i, _)| *i);
        bad
    }

    fn bisect(
        &self,
        cts: &[&Ciphertext],
        idx: &[usize],
        challenges: &[Scalar],
        seed: &[u8; 32],
        node: u64,
        bad: &mut Vec<usize>,
    ) {
        // Below this size a failed combination is resolved by single checks.
        const SINGLE_BELOW: usize = 16;
        if idx.is_empty() {
            return;
        }
        // A lone ciphertext is checked singly; any larger set is first tried as one batch
        // (the common case: all valid), and only a failed batch is split.
        if idx.len() > 1 && batch_holds(cts, idx, challenges, seed, node) {
            return;
        }
        if idx.len() < SINGLE_BELOW {
            for &i in idx {
                if self.verify(cts[i]).is_err() {
                    bad.push(i);
                }
            }
            return;
        }
        let mid = idx.len() / 2;
        self.bisect(cts, &idx[..mid], &challenges[..mid], seed, 2 * node + 1, bad);
        self.bisect(cts, &idx[mid..], &challenges[mid..], seed, 2 * node + 2, bad);
    }
}

/// Appends the proof and `body` to the encoded associated data in `bytes`.
fn prove(
    mut bytes: Vec<u8>,
    ad: TxMeta,
    secrets: &EncryptionSecrets,
    u: G1Affine,
    a: G1Affine,
    body: &[u8],
) -> Ciphertext {
    let ad_len = bytes.len();
    let u_bytes = u.to_uncompressed();
    let a_bytes = a.to_uncompressed();
    let c = challenge(&bytes[..ad_len], &u_bytes, &a_bytes, body);
    let z = secrets.k + c * secrets.r;
    bytes.extend_from_slice(&u_bytes);
    bytes.extend_from_slice(&a_bytes);
    bytes.extend_from_slice(&z.to_bytes_be());
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(body);
    Ciphertext { id: tx_id(&bytes), bytes, ad, ad_len, u_prime: u, a, z }
}

/// A ciphertext with a valid proof over an arbitrary `body` (which need not open under the
/// derived key) and an arbitrary commitment offset `a_offset` added to `A′`: what a sender
/// who knows its randomness can make. For tests of the paths that handle such senders.
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn prove_arbitrary<R: RngCore + CryptoRng>(
    ad: &TxMeta,
    body: &[u8],
    a_offset: G1Projective,
    rng: &mut R,
) -> Result<Ciphertext, CryptoError> {
    ad.check()?;
    if !is_bucket(body.len().wrapping_sub(TAG_LEN)) {
        return Err(CryptoError::BadBodyLength(body.len()));
    }
    let secrets = EncryptionSecrets { r: nonzero_scalar(rng), k: nonzero_scalar(rng) };
    let g = G1Projective::generator();
    let h_inv = curve::cofactor_inverse();
    let u = (g * (secrets.r * h_inv)).to_affine();
    let a = (g * (secrets.k * h_inv) + a_offset).to_affine();
    let mut bytes = Vec::new();
    ad.encode_into(&mut bytes);
    Ok(prove(bytes, *ad, &secrets, u, a, body))
}

fn nonzero_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
    loop {
        let s = Scalar::random(&mut *rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

/// 128-bit batch coefficients, derived from a random seed and the node of the bisection tree,
/// so that they can be generated in parallel and each sub-batch gets fresh ones.
pub(crate) fn batch_coefficients(seed: &[u8; 32], node: u64, n: usize) -> Vec<[u8; 16]> {
    (0..n)
        .into_par_iter()
        .map(|j| {
            let mut h = Sha3_256::new();
            h.update(DST_BATCH);
            h.update(seed);
            h.update(node.to_be_bytes());
            h.update((j as u64).to_be_bytes());
            let d = h.finalize();
            let mut rho = [0u8; 16];
            rho.copy_from_slice(&d[..16]);
            rho
        })
        .collect()
}

fn batch_holds(
    cts: &[&Ciphertext],
    idx: &[usize],
    challenges: &[Scalar],
    seed: &[u8; 32],
    node: u64,
) -> bool {
    let rhos = batch_coefficients(seed, node, idx.len());
    let rho_scalars: Vec<Scalar> = rhos.par_iter().map(curve::scalar_from_u128).collect();
    let a_points: Vec<G1Affine> = idx.iter().map(|&i| cts[i].a).collect();
    let a_scalars: Vec<u8> = rhos.iter().flatten().copied().collect();
    // The U′ side carries the generator too, with −(Σρ_j·z_j)·h⁻¹ (G1 is in the subgroup, so
    // clearing gives back −Σρ_j·z_j), so that the whole equation is one sum that is cleared
    // once and must vanish: no separate multiplication of G1.
    let z_sum: Scalar = rho_scalars.iter().zip(idx).map(|(r, &i)| *r * cts[i].z).sum();
    let mut u_points: Vec<G1Affine> = idx.iter().map(|&i| cts[i].u_prime).collect();
    u_points.push(G1Affine::generator());
    let mut u_scalars: Vec<Scalar> =
        rho_scalars.iter().zip(challenges).map(|(r, c)| r * c).collect();
    u_scalars.push(-z_sum * curve::cofactor_inverse());
    let (a_sum, u_sum) = rayon::join(
        || curve::msm(&a_points, &a_scalars, 128),
        || curve::msm(&u_points, &curve::scalars_le(&u_scalars), 255),
    );
    bool::from(curve::clear_cofactor(&(a_sum + u_sum)).is_identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_round_trips_and_hides_length_within_a_bucket() {
        for len in [0usize, 1, 59, 60, 61, 500, 512, 764, 765, MAX_PAYLOAD] {
            let payload = vec![0xa5; len];
            let padded = pad(&payload).unwrap();
            assert!(is_bucket(padded.len()), "{len} -> {}", padded.len());
            assert_eq!(unpad(padded).unwrap(), payload);
        }
        assert_eq!(pad(&[0u8; 512]).unwrap().len(), 768);
        assert_eq!(pad(&[0u8; 520]).unwrap().len(), pad(&[0u8; 700]).unwrap().len());
        assert!(pad(&vec![0u8; MAX_PAYLOAD + 1]).is_err());
    }

    /// Re-derives a ciphertext step by step from `CIPHERTEXT.md`, without this module's helpers,
    /// so that the document and the code cannot drift apart.
    #[test]
    fn the_spec_in_ciphertext_md_matches_the_code() {
        use crate::keys::{KeyperIndex, ResponderSet};
        use crate::testing::{rng, TestCommittee};

        let c = TestCommittee::new(3, 1, 9);
        let set = ResponderSet::new(
            &c.pks,
            vec![KeyperIndex::new(1).unwrap(), KeyperIndex::new(2).unwrap()],
        )
        .unwrap();
        let x: Scalar =
            set.lagrange_coefficients().iter().zip(&c.shares).map(|(l, s)| *l * s.secret()).sum();
        let ad = c.ad(5, 77);
        let ct = c.pks.encrypt(&ad, b"hello spec", &mut rng(3)).unwrap();
        let b = ct.as_bytes();

        // Layout: AD (86 bytes without a bundle), U', A', z, body length, body.
        assert_eq!(b[0], 2);
        assert_eq!(&b[1..9], &1u64.to_be_bytes());
        assert_eq!(&b[17..21], &5u32.to_be_bytes());
        assert_eq!(&b[53..69], &77u128.to_be_bytes());
        assert_eq!(b[85], 0);
        let u_prime = G1Affine::from_uncompressed(b[86..182].try_into().unwrap()).unwrap();
        let a_prime = G1Affine::from_uncompressed(b[182..278].try_into().unwrap()).unwrap();
        let z = Scalar::from_bytes_be(b[278..310].try_into().unwrap()).unwrap();
        let body_len = u32::from_be_bytes(b[310..314].try_into().unwrap()) as usize;
        let body = &b[314..];
        assert_eq!(body.len(), body_len);
        assert_eq!(body_len, 64 + 16, "a 10-byte payload pads to the 64-byte bucket");

        // Step 5: the challenge, reduced byte by byte (not by this module's limb method).
        let mut h = Sha3_512::new();
        h.update([0x1c]);
        h.update(b"veil/v1/ciphertext-challenge");
        h.update(&b[..86]);
        h.update(&b[86..182]);
        h.update(&b[182..278]);
        h.update(Sha3_256::digest(body));
        let challenge = h.finalize().iter().fold(Scalar::ZERO, |acc, byte| {
            acc * Scalar::from(256u64) + Scalar::from(u64::from(*byte))
        });

        // The verification equation, z·g1 = h·(A' + c·U') with h = 0xd201000000010001 (the
        // honest sender's points are in G1, so h may be applied as a scalar here).
        let h = Scalar::from(0xd201_0000_0001_0001u64);
        assert_eq!(
            G1Projective::generator() * z,
            (G1Projective::from(a_prime) + G1Projective::from(u_prime) * challenge) * h
        );

        // Steps 3 and 4: the key from K = x·U with U = h·U', then the AEAD with a zero nonce
        // and AD as aad.
        let k = (u_prime * (h * x)).to_affine();
        let mut kdf = Sha3_256::new();
        kdf.update(b"veil/v1/payload-key");
        kdf.update(k.to_compressed());
        kdf.update(&b[86..182]);
        let key: [u8; 32] = kdf.finalize().into();
        let padded = ChaCha20Poly1305::new(Key::from_slice(&key))
            .decrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: body, aad: &b[..86] })
            .unwrap();
        assert_eq!(&padded[..4], &10u32.to_be_bytes());
        assert_eq!(&padded[4..14], b"hello spec");
        assert!(padded[14..].iter().all(|&v| v == 0));

        // The transaction id.
        assert_eq!(ct.id().0, <[u8; 32]>::from(Sha3_256::digest(b)));
    }

    #[test]
    fn decoding_checks_structure_and_curve_but_not_the_subgroup() {
        use crate::testing::{rng, TestCommittee};

        let c = TestCommittee::new(3, 1, 9);
        let ct = c.pks.encrypt(&c.ad(5, 77), b"decoded", &mut rng(4)).unwrap();
        let again = Ciphertext::from_bytes(ct.as_bytes()).unwrap();
        assert!(again == ct);
        assert_eq!(again.id(), ct.id());
        let b = ct.as_bytes();
        assert!(Ciphertext::from_bytes(&b[..b.len() - 1]).is_err());
        let mut long = b.to_vec();
        long.push(0);
        assert!(Ciphertext::from_bytes(&long).is_err());
        let mut off_curve = b.to_vec();
        off_curve[181] ^= 1;
        assert!(matches!(
            Ciphertext::from_bytes(&off_curve),
            Err(CryptoError::BadPoint("ephemeral key U'"))
        ));
        let mut identity = b.to_vec();
        identity[86..182].copy_from_slice(&G1Affine::identity().to_uncompressed());
        assert!(matches!(
            Ciphertext::from_bytes(&identity),
            Err(CryptoError::IdentityPoint("ephemeral key U'"))
        ));
    }

    #[test]
    fn unpad_rejects_garbage() {
        assert!(unpad(vec![0, 0]).is_none());
        assert!(unpad(vec![0, 0, 0, 9, 1, 2]).is_none());
        assert!(unpad(vec![0, 0, 0, 1, 7, 0, 1]).is_none());
        assert_eq!(unpad(vec![0, 0, 0, 1, 7, 0, 0]).unwrap(), vec![7]);
    }
}
