//! Integration tests of veil-crypto: round trips, the "Bad input" table, the blame paths.

mod admission;
mod combine;
mod encoding;

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
            ShareBatch::create(&c.shares[pos], &c.identities[pos], slot, cts, scale)
                .unwrap()
                .verify(&c.pks)
                .unwrap()
        })
        .collect()
}
