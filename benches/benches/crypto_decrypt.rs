//! `crypto::decrypt_block/n=16,t=11,txs=1000`: combine + aggregate check + AEAD for a
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]
//! committed block, shares given.

use criterion::{criterion_group, criterion_main, Criterion};
use veil_benches::fixtures;
use veil_crypto::{decrypt_block, Ciphertext};
use veil_primitives::Slot;

fn bench(c: &mut Criterion) {
    let f = fixtures::Crypto::new(1000);
    let refs: Vec<&Ciphertext> = f.cts.iter().collect();
    let batches = f.responder_batches(Slot(1));
    let mut rng = veil_crypto::testing::rng(3);
    let mut g = c.benchmark_group("crypto::decrypt_block");
    g.bench_function("n=16,t=11,txs=1000", |b| {
        b.iter(|| {
            decrypt_block(&f.committee.pks, Slot(1), &refs, &batches, &mut rng)
                .expect("enough shares")
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
