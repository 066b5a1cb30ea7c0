//! `sequencer::sign_receipts/txs=1000`: building and signing the inclusion receipts of a
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]
//! 1,000-transaction commitment over 16 rollups (one ed25519 signature each), as the node's
//! receipt issuer does off the slot thread for every commitment.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use veil_primitives::{Amount, ChainId, Eon, RollupId, Slot, TxId};
use veil_sequencer::receipt::{receipts_for, ReceiptSigner};
use veil_sequencer::{Commitment, CommittedBlock, KeyFinalizer};

fn commitment(txs: u32, rollups: u32) -> Commitment {
    let blocks = (0..rollups)
        .map(|r| CommittedBlock {
            rollup: RollupId(r),
            winner: None,
            payment: Amount::ZERO,
            ciphertexts: (0..txs)
                .filter(|i| i % rollups == r)
                .map(|i| {
                    let mut id = [0u8; 32];
                    id[..4].copy_from_slice(&i.to_be_bytes());
                    TxId(id)
                })
                .collect(),
        })
        .collect();
    Commitment { chain_id: ChainId(1), slot: Slot(1), eon: Eon(1), blocks, outcome_hash: [0; 32] }
}

fn bench(c: &mut Criterion) {
    let commitment = commitment(1000, 16);
    let signer = KeyFinalizer::new(SigningKey::from_bytes(&[5; 32]));
    let mut g = c.benchmark_group("sequencer::sign_receipts");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("txs=1000", |b| {
        b.iter(|| signer.sign_receipts(receipts_for(&commitment)));
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
