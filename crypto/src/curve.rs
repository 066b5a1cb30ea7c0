//! The few BLS12-381 operations Veil needs, on top of blstrs and, where blstrs does not expose
//! what the hot paths need (batched affine conversion, multi-scalar multiplication with short
//! scalars), blst's C API directly.
//!
//! blst's own thread pool is disabled (the `no-threads` feature of the `blst` dependency):
//! parallelism comes from rayon, one level up, so that the two never fight over the cores.

#![expect(
    unsafe_code,
    reason = "blst's batched affine conversion and Pippenger MSM are only reachable through its \
              C API; blstrs' G1 types are #[repr(transparent)] over blst's"
)]

use blst::{blst_p1, blst_p1_affine, MultiPoint};
use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, Scalar};
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rayon::prelude::*;

use crate::error::CryptoError;

/// Length of an uncompressed G1 point.
pub(crate) const G1_LEN: usize = 96;
/// Length of a compressed G1 point.
pub(crate) const G1_COMPRESSED_LEN: usize = 48;
/// Length of a compressed G2 point.
pub(crate) const G2_COMPRESSED_LEN: usize = 96;
/// Length of a scalar.
pub(crate) const SCALAR_LEN: usize = 32;

/// Below this many points, splitting an MSM or a conversion across threads costs more than
/// it saves.
const PAR_MIN: usize = 256;

fn as_raw_affine(points: &[G1Affine]) -> &[blst_p1_affine] {
    // SAFETY: `G1Affine` is `#[repr(transparent)]` over `blst_p1_affine`.
    unsafe { std::slice::from_raw_parts(points.as_ptr().cast::<blst_p1_affine>(), points.len()) }
}

fn from_raw(p: blst_p1) -> G1Projective {
    // SAFETY: `G1Projective` is `#[repr(transparent)]` over `blst_p1`.
    unsafe { std::mem::transmute::<blst_p1, G1Projective>(p) }
}

/// Strictly decodes an uncompressed G1 point: canonical encoding (the compression flag clear,
/// coordinates below the field modulus), on the curve, in the prime-order subgroup, and not
/// the identity. This is the check for anything a stranger sends that secrets touch.
pub(crate) fn decode_g1_strict(
    bytes: &[u8; G1_LEN],
    what: &'static str,
) -> Result<G1Affine, CryptoError> {
    let p = decode_g1_on_curve(bytes, what)?;
    if bool::from(p.is_identity()) {
        return Err(CryptoError::IdentityPoint(what));
    }
    if !bool::from(p.is_torsion_free()) {
        return Err(CryptoError::PointNotInSubgroup(what));
    }
    Ok(p)
}

/// Decodes an uncompressed G1 point that is canonical and on the curve, without the
/// (expensive, about 30 µs) subgroup check. Only for decryption shares, whose subgroup
/// membership the combiner establishes lazily (see the `combine` module).
pub(crate) fn decode_g1_on_curve(
    bytes: &[u8; G1_LEN],
    what: &'static str,
) -> Result<G1Affine, CryptoError> {
    let p = Option::<G1Affine>::from(G1Affine::from_uncompressed_unchecked(bytes))
        .ok_or(CryptoError::BadPoint(what))?;
    // blst accepts a compressed encoding inside the 96 bytes and reduces coordinates; only
    // the exact re-encoding is canonical.
    if p.to_uncompressed() != *bytes || !bool::from(p.is_on_curve()) {
        return Err(CryptoError::BadPoint(what));
    }
    Ok(p)
}

/// Strictly decodes a compressed point of G1 or G2: canonical (re-encodes to the same bytes),
/// on the curve, in the prime-order subgroup (blstrs' `GroupEncoding::from_bytes` checks it),
/// and not the identity.
pub(crate) fn decode_compressed_strict<P>(
    bytes: &[u8],
    what: &'static str,
) -> Result<P, CryptoError>
where
    P: group::GroupEncoding + PrimeCurveAffine,
{
    let mut repr = P::Repr::default();
    if repr.as_ref().len() != bytes.len() {
        return Err(CryptoError::BadPoint(what));
    }
    repr.as_mut().copy_from_slice(bytes);
    let p = Option::<P>::from(P::from_bytes(&repr)).ok_or(CryptoError::BadPoint(what))?;
    if p.to_bytes().as_ref() != bytes {
        return Err(CryptoError::BadPoint(what));
    }
    if bool::from(p.is_identity()) {
        return Err(CryptoError::IdentityPoint(what));
    }
    Ok(p)
}

/// Decodes a canonical big-endian scalar (strictly below the group order).
pub(crate) fn decode_scalar(
    bytes: &[u8; SCALAR_LEN],
    what: &'static str,
) -> Result<Scalar, CryptoError> {
    Option::<Scalar>::from(Scalar::from_bytes_be(bytes)).ok_or(CryptoError::BadScalar(what))
}

/// Reduces 64 uniformly random bytes to a scalar (statistical distance about 2^-256 from
/// uniform), by Horner's rule over 64-bit limbs, most significant first.
pub(crate) fn scalar_from_wide(bytes: &[u8; 64]) -> Scalar {
    let two_64 = Scalar::from(u64::MAX) + Scalar::ONE;
    bytes.chunks_exact(8).fold(Scalar::ZERO, |acc, limb| {
        let limb = u64::from_be_bytes(limb.try_into().expect("chunks_exact(8) yields 8 bytes"));
        acc * two_64 + Scalar::from(limb)
    })
}

/// A 128-bit scalar from 16 bytes: the size of the random coefficients of batch checks.
pub(crate) fn scalar_from_u128(bytes: &[u8; 16]) -> Scalar {
    let v = u128::from_le_bytes(*bytes);
    let two_64 = Scalar::from(u64::MAX) + Scalar::ONE;
    Scalar::from((v >> 64) as u64) * two_64 + Scalar::from(v as u64)
}

/// Converts projective points to affine with one field inversion per chunk (Montgomery's
/// trick inside blst), chunks in parallel.
pub(crate) fn batch_to_affine(points: &[G1Projective]) -> Vec<G1Affine> {
    let mut out = vec![G1Affine::identity(); points.len()];
    let chunk = chunk_len(points.len());
    out.par_chunks_mut(chunk).zip(points.par_chunks(chunk)).for_each(|(dst, src)| {
        let ptrs: [*const blst_p1; 2] = [src.as_ptr().cast::<blst_p1>(), std::ptr::null()];
        // SAFETY: both types are `#[repr(transparent)]` over blst's; `dst` and `src` have the
        // same length; a null second pointer tells blst that `src` is one contiguous array.
        unsafe {
            blst::blst_p1s_to_affine(
                dst.as_mut_ptr().cast::<blst_p1_affine>(),
                ptrs.as_ptr(),
                src.len(),
            );
        }
    });
    out
}

fn chunk_len(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads).max(PAR_MIN).max(1)
}

/// `Σ scalars[i] * points[i]` by Pippenger's method, where `scalars` holds one little-endian
/// scalar of `nbits` bits per point, `nbits.div_ceil(8)` bytes each. Short scalars (128-bit
/// random coefficients) make the multiplication about half as expensive as full ones.
///
/// Split across rayon threads for large inputs.
pub(crate) fn msm(points: &[G1Affine], scalars: &[u8], nbits: usize) -> G1Projective {
    let stride = nbits.div_ceil(8);
    assert_eq!(scalars.len(), points.len() * stride, "one scalar per point");
    if points.is_empty() {
        return G1Projective::identity();
    }
    let chunk = chunk_len(points.len());
    points
        .par_chunks(chunk)
        .zip(scalars.par_chunks(chunk * stride))
        .map(|(p, s)| from_raw(as_raw_affine(p).mult(s, nbits)))
        .reduce(G1Projective::identity, |a, b| a + b)
}

/// [`msm`] on the calling thread only: for callers whose latency matters more than their
/// throughput on a busy machine (a slot thread would otherwise queue behind other work on
/// the shared rayon pool).
pub(crate) fn msm_serial(points: &[G1Affine], scalars: &[u8], nbits: usize) -> G1Projective {
    assert_eq!(scalars.len(), points.len() * nbits.div_ceil(8), "one scalar per point");
    if points.is_empty() {
        return G1Projective::identity();
    }
    from_raw(as_raw_affine(points).mult(scalars, nbits))
}

/// The cofactor `h` of G1 in E(Fp): `#E(Fp) = h·r`. Multiplying any curve point by `h` kills
/// its torsion component and lands in G1.
pub(crate) const G1_COFACTOR: u128 = 0x396c_8c00_5555_e156_8c00_aaab_0000_aaab;

/// `h·P` for any point on the curve, by blst's generic windowed multiplication (blst uses its
/// GLV method, which assumes subgroup membership, only for scalars of 176 bits and more; `h`
/// has 126).
pub(crate) fn mul_by_cofactor(p: &G1Projective) -> G1Projective {
    let h = G1_COFACTOR.to_le_bytes();
    let mut out = blst_p1::default();
    // SAFETY: `G1Projective` is `#[repr(transparent)]` over `blst_p1`; `h` holds 128 bits.
    unsafe {
        blst::blst_p1_mult(&mut out, (p as *const G1Projective).cast::<blst_p1>(), h.as_ptr(), 128)
    };
    from_raw(out)
}

/// `h⁻¹ mod r`: the prover divides its commitment by `h` so that the verifier's `h·A′` is
/// the commitment itself.
pub(crate) fn cofactor_inverse() -> Scalar {
    static INV: std::sync::OnceLock<Scalar> = std::sync::OnceLock::new();
    *INV.get_or_init(|| {
        let h = scalar_from_u128(&G1_COFACTOR.to_le_bytes());
        Option::<Scalar>::from(h.invert()).expect("h is coprime to r")
    })
}

/// Encodes full scalars as the little-endian byte string [`msm`] takes.
pub(crate) fn scalars_le(scalars: &[Scalar]) -> Vec<u8> {
    let mut out = Vec::with_capacity(scalars.len() * SCALAR_LEN);
    for s in scalars {
        out.extend_from_slice(&s.to_bytes_le());
    }
    out
}

/// Overwrites a secret scalar with zero in a way the compiler may not elide.
pub(crate) fn wipe_scalar(s: &mut Scalar) {
    wipe(s, Scalar::ZERO);
}

/// Overwrites a secret value (a scalar or a point: plain old data) with `zero` in a way the
/// compiler may not elide.
pub(crate) fn wipe<T: Copy>(v: &mut T, zero: T) {
    // SAFETY: `v` is a valid, exclusive reference; `T: Copy` has no drop glue.
    unsafe { std::ptr::write_volatile(v, zero) };
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Whether `e(a1, b1) == e(a2, b2)`, with one shared final exponentiation.
pub(crate) fn pairing_eq(a1: &G1Affine, b1: &G2Affine, a2: &G1Affine, b2: &G2Affine) -> bool {
    let neg_a2 = (-a2.to_curve()).to_affine();
    let b1 = G2Prepared::from(*b1);
    let b2 = G2Prepared::from(*b2);
    let ml = Bls12::multi_miller_loop(&[(a1, &b1), (&neg_a2, &b2)]);
    bool::from(ml.final_exponentiation().is_identity())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn msm_matches_naive_for_full_and_short_scalars() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let points: Vec<G1Affine> =
            (0..600).map(|_| G1Projective::random(&mut rng).to_affine()).collect();
        let scalars: Vec<Scalar> = (0..600).map(|_| Scalar::random(&mut rng)).collect();
        let naive: G1Projective = points.iter().zip(&scalars).map(|(p, s)| p * s).sum();
        assert_eq!(msm(&points, &scalars_le(&scalars), 255), naive);

        let shorts: Vec<[u8; 16]> =
            (0..600).map(|i| (i as u128 * 0x9e37_79b9).to_le_bytes()).collect();
        let bytes: Vec<u8> = shorts.iter().flatten().copied().collect();
        let naive: G1Projective =
            points.iter().zip(&shorts).map(|(p, s)| p * scalar_from_u128(s)).sum();
        assert_eq!(msm(&points, &bytes, 128), naive);
    }

    #[test]
    fn strict_decoding_rejects_non_canonical() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let p = G1Projective::random(&mut rng).to_affine();
        let bytes = p.to_uncompressed();
        assert_eq!(decode_g1_strict(&bytes, "p").unwrap(), p);

        // The compressed encoding, zero-padded into 96 bytes, is not canonical.
        let mut compressed_inside = [0u8; 96];
        compressed_inside[..48].copy_from_slice(&p.to_compressed());
        assert!(decode_g1_strict(&compressed_inside, "p").is_err());

        // A point off the curve.
        let mut off = bytes;
        off[95] ^= 1;
        assert_eq!(decode_g1_strict(&off, "p"), Err(CryptoError::BadPoint("p")));

        // The identity.
        let id = G1Affine::identity().to_uncompressed();
        assert_eq!(decode_g1_strict(&id, "p"), Err(CryptoError::IdentityPoint("p")));
    }

    #[test]
    fn rejects_points_outside_the_subgroup() {
        // Find a point on the curve y^2 = x^3 + 4 that is not in G1 by trying x = 0, 1, 2...
        // (almost every curve point has a cofactor component).
        let mut found = false;
        for x in 0u64..50 {
            let mut compressed = [0u8; 48];
            compressed[40..].copy_from_slice(&x.to_be_bytes());
            compressed[0] |= 0x80;
            if let Some(p) =
                Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&compressed))
            {
                if !bool::from(p.is_torsion_free()) {
                    let bytes = p.to_uncompressed();
                    assert_eq!(
                        decode_g1_strict(&bytes, "p"),
                        Err(CryptoError::PointNotInSubgroup("p"))
                    );
                    assert!(decode_g1_on_curve(&bytes, "p").is_ok());
                    found = true;
                    break;
                }
            }
        }
        assert!(found, "no off-subgroup point found");
    }

    #[test]
    fn cofactor_multiplication_matches_the_scalar_in_g1() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let p = G1Projective::random(&mut rng);
        let h = scalar_from_u128(&G1_COFACTOR.to_le_bytes());
        assert_eq!(mul_by_cofactor(&p), p * h);
        assert_eq!(mul_by_cofactor(&(p * cofactor_inverse())), p);
    }

    #[test]
    fn wide_reduction_is_consistent() {
        let mut bytes = [0u8; 64];
        bytes[63] = 5;
        assert_eq!(scalar_from_wide(&bytes), Scalar::from(5u64));
        bytes[55] = 1; // 2^64 + 5
        assert_eq!(scalar_from_wide(&bytes), Scalar::from(u64::MAX) + Scalar::from(6u64));
    }
}
