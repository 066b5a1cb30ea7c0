//! Inclusion receipts end to end over real QUIC on 127.0.0.1: signed for a commitment, stored
//! by the ingress, pushed to the connection that submitted each transaction, looked up after a
//! restart, and waited for through the SDK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use veil_builder_api::{encrypt, RetryPolicy, SdkError, Submitter};
use veil_crypto::testing::TestCommittee;
use veil_crypto::Ciphertext;
use veil_mempool::pool::PoolConfig;
use veil_mempool::validate::CommitteeValidator;
use veil_node::services::ingress::{Ingress, IngressConfig};
use veil_node::services::receipts::ReceiptIssuer;
use veil_node::services::release_window::ReleaseWindow;
use veil_primitives::receipt::{verify_receipt, ReceiptError};
use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};
use veil_sequencer::receipt::{check_receipt, receipts_for, ReceiptSigner};
use veil_sequencer::{Commitment, CommittedBlock, Finalizer, KeyFinalizer, SignedCommitment};
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::tls::Pin;

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path) -> IngressConfig {
    let mut c = IngressConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dir.to_path_buf(),
        PoolConfig::new(ChainId(1)),
    );
    c.eons = vec![Eon(1)];
    c
}

async fn start(dir: &std::path::Path, c: &TestCommittee) -> Ingress {
    Ingress::start(config(dir), Arc::new(CommitteeValidator::new(vec![c.pks.clone()])))
        .await
        .unwrap()
}

fn client_config(ingress: &Ingress) -> ClientConfig {
    let mut c = ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint()));
    c.request_timeout = WAIT;
    c
}

fn sequencer() -> KeyFinalizer {
    KeyFinalizer::new(SigningKey::from_bytes(&[0x5e; 32]))
}

/// A commitment of `blocks` (rollup, ids) for slot 7, finalized by `finalizer`.
fn commit(finalizer: &KeyFinalizer, blocks: &[(u32, Vec<TxId>)]) -> SignedCommitment {
    let commitment = Commitment {
        chain_id: ChainId(1),
        slot: Slot(7),
        eon: Eon(1),
        blocks: blocks
            .iter()
            .map(|(rollup, ids)| CommittedBlock {
                rollup: RollupId(*rollup),
                winner: None,
                payment: Amount::ZERO,
                ciphertexts: ids.clone(),
            })
            .collect(),
        outcome_hash: [0; 32],
    };
    finalizer.finalize(commitment).unwrap()
}

fn ct(c: &TestCommittee, rollup: u32, payload: &[u8]) -> Ciphertext {
    encrypt(&c.pks, &c.ad(rollup, 10), payload).unwrap()
}

fn bytes(ct: &Ciphertext) -> veil_wire::ingress::SignedCiphertext {
    crate::payers::signed(ct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_submitting_connection_and_the_store() {
    let c = TestCommittee::new(4, 1, 11);
    let tmp = tempfile::tempdir().unwrap();
    let ingress = start(tmp.path(), &c).await;
    let one = IngressClient::connect(client_config(&ingress)).await.unwrap();
    let two = IngressClient::connect(client_config(&ingress)).await.unwrap();
    let (a, b, d) = (ct(&c, 1, b"a"), ct(&c, 1, b"b"), ct(&c, 2, b"d"));
    one.submit(bytes(&a)).await.unwrap();
    two.submit(bytes(&b)).await.unwrap();
    one.submit(bytes(&d)).await.unwrap();

    // Rollup 1 commits b then a; rollup 2 commits d and an id nobody here submitted.
    let stranger = TxId([0xee; 32]);
    let finalizer = sequencer();
    let signed = commit(&finalizer, &[(1, vec![b.id(), a.id()]), (2, vec![d.id(), stranger])]);
    let receipts = finalizer.sign_receipts(receipts_for(&signed.message));
    assert_eq!(receipts.len(), 4);
    ingress.deliver_receipts(receipts.clone()).await.unwrap().unwrap();

    let key = finalizer.receipt_key();
    let got_a = one.wait_receipt(&a.id(), WAIT).await.unwrap();
    let got_d = one.wait_receipt(&d.id(), WAIT).await.unwrap();
    let got_b = two.wait_receipt(&b.id(), WAIT).await.unwrap();
    for (got, rollup, position) in [(&got_a, 1, 1), (&got_d, 2, 0), (&got_b, 1, 0)] {
        assert_eq!(verify_receipt(got, ChainId(1), &key), Ok(()));
        assert_eq!((got.message.rollup, got.message.position), (RollupId(rollup), position));
        assert_eq!(check_receipt(&signed.message, &got.message), Ok(()));
    }
    // Each receipt went to its submitter only.
    assert!(one.take_receipt(&b.id()).is_none());
    assert!(two.take_receipt(&a.id()).is_none());

    // Every receipt is stored, pushed or not.
    for r in &receipts {
        assert_eq!(ingress.receipt(&r.message.tx).unwrap().as_ref(), Some(r));
    }
    assert_eq!(ingress.receipt(&TxId([1; 32])).unwrap(), None);
    let stats = ingress.stats();
    assert_eq!((stats.receipts_pushed, stats.receipts_unrouted), (3, 1));
    assert_eq!(stats.receipts_push_dropped, 0);

    // Acks and pongs still flow on a stream that carried receipts.
    let e = ct(&c, 3, b"e");
    assert_eq!(one.submit(bytes(&e)).await.unwrap().ids, vec![e.id()]);
    one.ping().await.unwrap();

    // Once a transaction left the pool and its receipt was pushed, nothing is routed for it.
    ingress.remove_committed(&[a.id()]);
    ingress.deliver_receipts(vec![receipts[1].clone()]).await.unwrap().unwrap();
    assert_eq!(ingress.stats().receipts_unrouted, 2);

    one.close().await;
    two.close().await;
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_survive_a_restart() {
    let c = TestCommittee::new(4, 1, 12);
    let tmp = tempfile::tempdir().unwrap();
    let finalizer = sequencer();
    let x = ct(&c, 1, b"x");
    let signed = commit(&finalizer, &[(1, vec![x.id()])]);
    let receipts = finalizer.sign_receipts(receipts_for(&signed.message));

    let ingress = start(tmp.path(), &c).await;
    ingress.deliver_receipts(receipts.clone()).await.unwrap().unwrap();
    ingress.shutdown().await;

    let ingress = start(tmp.path(), &c).await;
    let stored = ingress.receipt(&x.id()).unwrap().expect("stored before the restart");
    assert_eq!(stored, receipts[0]);
    assert_eq!(verify_receipt(&stored, ChainId(1), &finalizer.receipt_key()), Ok(()));
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_signs_off_thread_and_the_sdk_waits_and_verifies() {
    let c = TestCommittee::new(4, 1, 13);
    let tmp = tempfile::tempdir().unwrap();
    let ingress = Arc::new(start(tmp.path(), &c).await);
    let sdk = Submitter::new(client_config(&ingress), RetryPolicy::default());
    let (p, q) = (ct(&c, 1, b"p"), ct(&c, 2, b"q"));
    sdk.submit(&p, &crate::payers::key_of(&p.ad().fee_payer)).await.unwrap();
    sdk.submit(&q, &crate::payers::key_of(&q.ad().fee_payer)).await.unwrap();

    let finalizer = sequencer();
    let issuer = ReceiptIssuer::spawn(
        finalizer.receipt_signer().unwrap(),
        ingress.clone(),
        4,
        ReleaseWindow::new(),
    )
    .expect("issuer thread");
    issuer.issue(commit(&finalizer, &[(1, vec![p.id()]), (2, vec![q.id()])]));

    let key = finalizer.receipt_key();
    let got = sdk.wait_verified_receipt(&p.id(), WAIT, ChainId(1), &key).await.unwrap();
    assert_eq!(got.message.tx, p.id());
    // The wrong key, or the wrong chain: a typed refusal.
    let other = PublicKeyBytes(SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
    match sdk.wait_verified_receipt(&q.id(), WAIT, ChainId(1), &other).await {
        Err(SdkError::BadReceipt(ReceiptError::Signature(_))) => {}
        r => panic!("{r:?}"),
    }
    // Nothing else is coming for an id never committed.
    let never = sdk.wait_receipt(&TxId([3; 32]), Duration::ZERO).await;
    assert!(matches!(never, Err(SdkError::ReceiptTimeout)), "{never:?}");

    drop(issuer);
    // An empty delivery is a barrier: everything delivered before it is durable.
    ingress.deliver_receipts(Vec::new()).await.unwrap().unwrap();
    assert_eq!(ingress.receipt(&q.id()).unwrap().map(|r| r.message.position), Some(0));
    drop(sdk);
    Arc::try_unwrap(ingress).unwrap().shutdown().await;
}
