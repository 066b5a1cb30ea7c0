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

/// Decodes an uncompressed G1 point that is canonical and on the curve, without the
/// (expensive, about 50 µs) subgroup check: Veil never multiplies such a point by a secret
/// before clearing its cofactor ([`clear_cofactor`]; the points of a ciphertext), or checks
/// its subgroup membership lazily (decryption shares: see the `combine` module).
///
/// The checks are blst's (`blst_p1_deserialize`, pinned at 0.3.17 in the lock file; the test
/// `on_curve_decoding_rejects_non_canonical` pins each): with the three flag bits clear it
/// refuses a coordinate that is not below the field modulus and a point off the curve, and
/// with only the infinity bit set it accepts nothing but the identity's exact encoding. The
/// one encoding it takes that Veil does not is a compressed point inside the 96 bytes
/// (compression bit set), refused here. Re-encoding the point and comparing, and checking
/// the curve equation again, as this did before, made a point cost 0.52 µs instead of 0.28
/// (one core here): 3 ms of the sequencer's CPU for the twelve 1,000-share batches of a
/// slot, and 0.5 µs of every ciphertext's decoding.
pub(crate) fn decode_g1_on_curve(
    bytes: &[u8; G1_LEN],
    what: &'static str,
) -> Result<G1Affine, CryptoError> {
    if bytes[0] & 0x80 != 0 {
        return Err(CryptoError::BadPoint(what));
    }
    Option::<G1Affine>::from(G1Affine::from_uncompressed_unchecked(bytes))
        .ok_or(CryptoError::BadPoint(what))
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

/// The effective cofactor `h_eff = 1 − z = 0xd201000000010001` of G1 (`z` the BLS parameter;
/// RFC 9380, section 8.8.1): E(Fp)'s torsion outside G1 has exponent dividing `h_eff`, so
/// `h_eff·P` is in G1 for every point `P` on the curve. Veil clears the points of a
/// ciphertext (`U′`, `A′`) with it instead of checking their subgroup: six set bits make the
/// multiplication about half the price of blst's subgroup check.
pub(crate) const G1_CLEAR: u64 = 0xd201_0000_0001_0001;

/// `h_eff·P` for any point on the curve (see [`G1_CLEAR`]), by double-and-add over its six
/// set bits: 63 doublings and 5 additions (about 27 µs against blst's subgroup check's 50
/// on this machine), variable-time: only public points are cleared.
pub(crate) fn clear_cofactor(p: &G1Projective) -> G1Projective {
    let mut acc = *p;
    for bit in (0..63).rev() {
        acc = acc.double();
        if (G1_CLEAR >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// `h_eff⁻¹ mod r`: the prover divides `U` and its commitment by `h_eff` so that the
/// verifier's `h_eff·U′` and `h_eff·A′` are `r·G1` and `k·G1` themselves.
pub(crate) fn cofactor_inverse() -> Scalar {
    static INV: std::sync::OnceLock<Scalar> = std::sync::OnceLock::new();
    *INV.get_or_init(|| {
        Option::<Scalar>::from(Scalar::from(G1_CLEAR).invert()).expect("h_eff is coprime to r")
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
    fn on_curve_decoding_rejects_non_canonical() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let p = G1Projective::random(&mut rng).to_affine();
        let bytes = p.to_uncompressed();
        assert_eq!(decode_g1_on_curve(&bytes, "p").unwrap(), p);

        // The compressed encoding, zero-padded into 96 bytes, is not canonical.
        let mut compressed_inside = [0u8; 96];
        compressed_inside[..48].copy_from_slice(&p.to_compressed());
        assert!(decode_g1_on_curve(&compressed_inside, "p").is_err());

        // A point off the curve.
        let mut off = bytes;
        off[95] ^= 1;
        assert_eq!(decode_g1_on_curve(&off, "p"), Err(CryptoError::BadPoint("p")));

        // Coordinates not below the modulus but on the curve: x + q (or y + q) of a point
        // whose coordinate is small enough that the sum sets no flag bit.
        let q = modulus_be();
        let plus_q = |c: &[u8]| -> [u8; 48] {
            let mut out = [0u8; 48];
            let mut carry = 0u16;
            for i in (0..48).rev() {
                let sum = u16::from(c[i]) + u16::from(q[i]) + carry;
                out[i] = sum as u8;
                carry = sum >> 8;
            }
            out
        };
        let (mut x_done, mut y_done) = (false, false);
        while !(x_done && y_done) {
            let b = G1Projective::random(&mut rng).to_affine().to_uncompressed();
            let (x, y) = (plus_q(&b[..48]), plus_q(&b[48..]));
            if x[0] & 0xe0 == 0 {
                let mut x_high = b;
                x_high[..48].copy_from_slice(&x);
                assert!(decode_g1_on_curve(&x_high, "p").is_err());
                x_done = true;
            }
            if y[0] & 0xe0 == 0 {
                let mut y_high = b;
                y_high[48..].copy_from_slice(&y);
                assert!(decode_g1_on_curve(&y_high, "p").is_err());
                y_done = true;
            }
        }

        // Flag bits: the sign bit alone, and the infinity bit with anything else set.
        let mut sign = bytes;
        sign[0] |= 0x20;
        assert!(decode_g1_on_curve(&sign, "p").is_err());
        let mut inf_with_data = bytes;
        inf_with_data[0] |= 0x40;
        assert!(decode_g1_on_curve(&inf_with_data, "p").is_err());
        let mut inf = [0u8; 96];
        inf[0] = 0x40;
        assert_eq!(decode_g1_on_curve(&inf, "p").unwrap(), G1Affine::identity());
        assert_eq!(G1Affine::identity().to_uncompressed(), inf, "the identity's encoding");
        inf[95] = 1;
        assert!(decode_g1_on_curve(&inf, "p").is_err());
    }

    /// The base field's modulus, big-endian.
    fn modulus_be() -> [u8; 48] {
        let hex = "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";
        let mut out = [0u8; 48];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn cofactor_clearing_matches_the_scalar_in_g1() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let p = G1Projective::random(&mut rng);
        assert_eq!(clear_cofactor(&p), p * Scalar::from(G1_CLEAR));
        assert_eq!(clear_cofactor(&(p * cofactor_inverse())), p);
    }

    /// Random points of E(Fp), almost all outside G1: `h_eff` lands every one in G1.
    #[test]
    fn cofactor_clearing_lands_any_curve_point_in_g1() {
        use rand::RngCore;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut outside = 0;
        let mut tried = 0;
        while tried < 64 {
            // A random x below the field modulus (whose top byte is 0x1a), compressed form.
            let mut x = [0u8; 48];
            rng.fill_bytes(&mut x);
            x[0] = (x[0] & 0x0f) | 0x80;
            let Some(p) = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&x)) else {
                continue;
            };
            tried += 1;
            assert!(bool::from(p.is_on_curve()));
            outside += usize::from(!bool::from(p.is_torsion_free()));
            assert!(bool::from(
                clear_cofactor(&G1Projective::from(p)).to_affine().is_torsion_free()
            ));
        }
        assert!(outside > 60, "random curve points are almost never in G1: {outside}");
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
