//! `crypto::admission_verify_batch/n=16,t=11,txs=1000`: strict decoding plus the batched
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]
//! validity check of 1,000 ciphertexts.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil_benches::fixtures;
use veil_crypto::Ciphertext;

fn bench(c: &mut Criterion) {
    let f = fixtures::Crypto::new(1000);
    let wire: Vec<&[u8]> = f.cts.iter().map(Ciphertext::as_bytes).collect();
    let mut rng = veil_crypto::testing::rng(2);
    let mut g = c.benchmark_group("crypto::admission_verify_batch");
    g.throughput(Throughput::Elements(wire.len() as u64));
    g.bench_function("n=16,t=11,txs=1000", |b| {
        b.iter(|| {
            let cts: Vec<Ciphertext> =
                Ciphertext::decode_many(&wire).into_iter().map(|r| r.expect("valid")).collect();
            let refs: Vec<&Ciphertext> = cts.iter().collect();
            assert!(f.committee.pks.verify_batch(&refs, &mut rng).is_empty());
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
