//! Integration tests of veil-crypto: round trips, the "Bad input" table, the blame paths.

mod admission;
mod combine;
mod encoding;

use blstrs::{G1Affine, G1Projective, Scalar};
use ff::Field;
use group::{Curve, Group};
use veil_crypto::testing::{self, TestCommittee};
use veil_crypto::{Ciphertext, ResponderSet, ShareBatch, VerifiedShareBatch};
use veil_primitives::Slot;

/// Encrypts `count` distinct payloads (`"tx-{i}"` padded to `size`) to `c`.
pub(crate) fn encrypt_many(
    c: &TestCommittee,
    count: usize,
    size: usize,
    seed: u64,
) -> Vec<Ciphertext> {
    let mut rng = testing::rng(seed);
    (0..count)
        .map(|i| {
            let mut payload = format!("tx-{i}").into_bytes();
            payload.resize(size.max(payload.len()), b'.');
            c.pks.encrypt(&c.ad(1 + (i % 3) as u32, 100 + i as u128), &payload, &mut rng).unwrap()
        })
        .collect()
}

/// Signed, verified batches from the keypers `who`, scaled for `scale` (or unscaled).
pub(crate) fn batches(
    c: &TestCommittee,
    who: &[u16],
    slot: Slot,
    cts: &[&Ciphertext],
    scale: Option<&ResponderSet>,
) -> Vec<VerifiedShareBatch> {
    who.iter()
        .map(|&i| {
            let pos = usize::from(i) - 1;
            // Keypers outside the named set send unscaled shares.
            let scale = scale.filter(|s| s.contains(c.shares[pos].index()));
            let batch =
                ShareBatch::create(&c.shares[pos], &c.identities[pos], slot, cts, scale).unwrap();
            c.pks.verify_share_batch(&batch).unwrap()
        })
        .collect()
}

/// The torsion component of a curve point outside G1: `P − (h⁻¹ mod r)·(h·P)`.
pub(crate) fn torsion_point() -> G1Affine {
    const H: u128 = 0x396c_8c00_5555_e156_8c00_aaab_0000_aaab;
    for x in 0u64..100 {
        let mut compressed = [0u8; 48];
        compressed[40..].copy_from_slice(&x.to_be_bytes());
        compressed[0] |= 0x80;
        let Some(p) = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&compressed))
        else {
            continue;
        };
        if bool::from(p.is_torsion_free()) {
            continue;
        }
        // h·P by double-and-add (valid for any curve point), which lands in G1.
        let mut hp = G1Projective::identity();
        for bit in (0..128).rev() {
            hp = hp.double();
            if (H >> bit) & 1 == 1 {
                hp += p;
            }
        }
        let h = Scalar::from((H >> 64) as u64) * (Scalar::from(u64::MAX) + Scalar::ONE)
            + Scalar::from(H as u64);
        let p_r = hp * h.invert().unwrap();
        let t = (G1Projective::from(p) - p_r).to_affine();
        assert!(!bool::from(t.is_torsion_free()));
        return t;
    }
    panic!("no point outside G1 found");
}
