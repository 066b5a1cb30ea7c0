//! Criterion: closing a slot of 16 rollups and 10,000 bids, first-price and VCG.

#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

use criterion::{criterion_group, criterion_main, Criterion};
use veil_auction::payment::close;
use veil_auction::{PaymentRule, StoredBid};
use veil_benches::auction::close_workload;

fn auction_close(c: &mut Criterion) {
    let w = close_workload(16, 10_000, 1);
    let refs: Vec<&StoredBid> = w.bids.iter().collect();
    let mut group = c.benchmark_group("auction::close");
    group.sample_size(20);
    for (name, rule) in [("first_price", PaymentRule::FirstPrice), ("vcg", PaymentRule::Vcg)] {
        let input = w.input(rule, &refs);
        group.bench_function(format!("{name}/rollups=16,bids=10000"), |b| {
            b.iter(|| close(&input).expect("the workload closes"));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = auction_close
}
criterion_main!(benches);
