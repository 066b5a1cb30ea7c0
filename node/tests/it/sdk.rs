//! The SDK against a real ingress on 127.0.0.1: submit, bundle, reconnect after a restart.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use veil_builder_api::loadgen::{self, LoadConfig};
use veil_builder_api::{encrypt, encrypt_bundle, RetryPolicy, SdkError, Submitter};
use veil_crypto::testing::TestCommittee;
use veil_mempool::pool::PoolConfig;
use veil_mempool::validate::CommitteeValidator;
use veil_node::services::ingress::IngressError;
use veil_node::services::ingress::{Ingress, IngressConfig};
use veil_primitives::{BundleId, ChainId, Eon, ErrorCode, Slot};
use veil_wire::client::ClientConfig;
use veil_wire::tls::Pin;

async fn start(dir: &std::path::Path, listen: SocketAddr, c: &TestCommittee) -> Ingress {
    // A restart on the same port can race the old endpoint's driver task, which releases the
    // UDP socket shortly after shutdown returns (a new process would not see this): retry the
    // bind for a bounded time.
    let mut attempts = 0;
    loop {
        let mut cfg = IngressConfig::new(listen, dir.to_path_buf(), PoolConfig::new(ChainId(1)));
        cfg.eons = vec![Eon(1)];
        match Ingress::start(cfg, Arc::new(CommitteeValidator::new(vec![c.pks.clone()]))).await {
            Ok(ingress) => return ingress,
            Err(IngressError::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse && attempts < 100 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("ingress did not start: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_bundle_and_reconnect() {
    let c = TestCommittee::new(4, 1, 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(&dir, SocketAddr::from(([127, 0, 0, 1], 0)), &c).await;
    let addr = ingress.local_addr();
    let cfg = ClientConfig::new(addr, Pin::Fingerprint(ingress.fingerprint()));
    let retry = RetryPolicy {
        attempts: 20,
        initial_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let sdk = Submitter::new(cfg, retry);

    let ct = encrypt(&c.pks, &c.ad(1, 10), b"hello").unwrap();
    assert_eq!(sdk.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap(), ct.id());
    // Idempotent resubmission.
    assert_eq!(sdk.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap(), ct.id());

    let mut a2 = c.ad(2, 10);
    a2.fee_payer = crate::payers::public(8);
    let parts =
        encrypt_bundle(&c.pks, BundleId([4; 32]), &[(c.ad(1, 10), b"a"), (a2, b"b")]).unwrap();
    // Two fee payers: each part signed by its own.
    let signed = parts.iter().map(crate::payers::signed).collect();
    let ids = sdk.submit_signed_bundle(signed).await.unwrap();
    // One key for parts of two payers is caught before anything is sent.
    assert!(matches!(
        sdk.submit_bundle(&parts, &crate::payers::key(7)).await,
        Err(veil_builder_api::SdkError::WrongPayer(_))
    ));
    assert_eq!(ids.len(), 2);

    // Non-retryable rejection surfaces at once.
    let mut expired = c.ad(1, 10);
    expired.expiry_slot = Slot(0);
    let late = encrypt(&c.pks, &expired, b"late").unwrap();
    ingress.on_slot(Slot(5));
    match sdk.submit(&late, &crate::payers::key_of(&late.ad().fee_payer)).await {
        Err(SdkError::Rejected(r)) => assert_eq!(r.reject_code(), Some(ErrorCode::Expired)),
        other => panic!("{other:?}"),
    }

    // Restart the server on the same address: the SDK reconnects and the pool was rebuilt.
    ingress.shutdown().await;
    let ingress = start(&dir, addr, &c).await;
    assert_eq!(ingress.with_pool(|p| p.len()), 3);
    let ct2 = encrypt(&c.pks, &c.ad(3, 10), b"after restart").unwrap();
    assert_eq!(
        sdk.submit(&ct2, &crate::payers::key_of(&ct2.ad().fee_payer)).await.unwrap(),
        ct2.id()
    );

    // The load generator, closed loop, two connections.
    let txs: Vec<veil_wire::ingress::SignedCiphertext> = (0..40u32)
        .map(|i| {
            crate::payers::signed(&encrypt(&c.pks, &c.ad(i % 4, 10), &i.to_be_bytes()).unwrap())
        })
        .collect();
    let load = LoadConfig {
        client: ClientConfig::new(addr, Pin::Fingerprint(ingress.fingerprint())),
        connections: 2,
        rate: None,
        window: 8,
    };
    let report = loadgen::run(load, txs, Arc::new(AtomicU64::new(0))).await.unwrap();
    assert_eq!((report.acked, report.rejected, report.failed), (40, 0, 0));
    assert_eq!(report.latencies_us.len(), 40);
    assert!(report.percentile_ms(99.0) >= report.percentile_ms(50.0));
    ingress.shutdown().await;
}
