//! `crypto::keyper_shares/n=16,t=11,txs=1000`: one keyper's signed, pre-scaled share batch.
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

use criterion::{criterion_group, criterion_main, Criterion};
use veil_benches::fixtures;
use veil_crypto::{Ciphertext, ShareBatch};
use veil_primitives::Slot;

fn bench(c: &mut Criterion) {
    let f = fixtures::Crypto::new(1000);
    let refs: Vec<&Ciphertext> = f.cts.iter().collect();
    let responders = f.committee.pks.default_responders();
    let mut g = c.benchmark_group("crypto::keyper_shares");
    g.bench_function("n=16,t=11,txs=1000", |b| {
        b.iter(|| {
            ShareBatch::create(
                &f.committee.shares[0],
                &f.committee.identities[0],
                Slot(1),
                &refs,
                Some(&responders),
            )
            .expect("member")
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
