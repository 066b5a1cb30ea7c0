//! `crypto::encrypt/512b`: one client-side encryption (Veil) beside threshold_crypto 0.4.
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

use criterion::{criterion_group, criterion_main, Criterion};
use veil_benches::fixtures;

fn bench(c: &mut Criterion) {
    let f = fixtures::Crypto::new(0);
    let payload = fixtures::payload(0);
    let ad = f.committee.ad(1, 100);
    let mut rng = veil_crypto::testing::rng(1);
    let mut g = c.benchmark_group("crypto::encrypt");
    g.bench_function("512b", |b| {
        b.iter(|| f.committee.pks.encrypt(&ad, &payload, &mut rng).expect("valid"))
    });
    let pk = f.baseline_pks.public_key();
    g.bench_function("512b/threshold_crypto", |b| b.iter(|| pk.encrypt(&payload)));
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
