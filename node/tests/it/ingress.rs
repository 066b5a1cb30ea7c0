//! Integration tests of the ingress over real QUIC on 127.0.0.1 (ephemeral ports), with the
//! real veil-crypto validity check.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use veil_crypto::testing::{rng, TestCommittee};
use veil_crypto::{BundleRef, Ciphertext, PublicKeySet, TrustedDealer};
use veil_mempool::pool::{FeedCursor, PoolConfig};
use veil_mempool::validate::{CommitteeValidator, Validator};
use veil_node::services::ingress::{Ingress, IngressConfig, CLOSE_IDLE};
use veil_primitives::{Amount, BundleId, ChainId, Eon, ErrorCode, Slot, TxMeta};
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::error::ClientError;
use veil_wire::ingress::{kind, SignedCiphertext};
use veil_wire::tls::{self, Pin};

fn committee() -> TestCommittee {
    TestCommittee::new(4, 1, 42)
}

fn config(dir: &std::path::Path) -> IngressConfig {
    let mut c = IngressConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dir.to_path_buf(),
        PoolConfig::new(ChainId(1)),
    );
    c.eons = vec![Eon(1)];
    c.current_slot = Slot(10);
    c.stream_idle_timeout = Duration::from_secs(5);
    c
}

async fn start(c: IngressConfig, pks: &PublicKeySet) -> Ingress {
    Ingress::start(c, Arc::new(CommitteeValidator::new(vec![pks.clone()]))).await.unwrap()
}

async fn connect(ingress: &Ingress) -> IngressClient {
    let mut c = ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint()));
    c.request_timeout = Duration::from_secs(20);
    IngressClient::connect(c).await.unwrap()
}

fn encrypt(pks: &PublicKeySet, ad: TxMeta, seed: u64) -> Ciphertext {
    pks.encrypt(&ad, &[seed as u8; 512], &mut rng(seed)).unwrap()
}

fn ad(c: &TestCommittee, rollup: u32, fee: u128, payer: u8) -> TxMeta {
    let mut ad = c.ad(rollup, fee);
    ad.fee_payer = crate::payers::public(payer);
    ad.expiry_slot = Slot(100);
    ad
}

/// Arbitrary bytes signed by payer `n` (for chain 1): what a client sends that gets past the
/// signature check to the checks behind it.
fn raw(bytes: &[u8], n: u8) -> SignedCiphertext {
    crate::payers::signed_raw(Bytes::copy_from_slice(bytes), ChainId(1), n)
}

/// `ct` signed by its fee payer, ready to submit.
fn bytes(ct: &Ciphertext) -> SignedCiphertext {
    crate::payers::signed(ct)
}

async fn rejected(r: Result<veil_wire::ingress::Ack, ClientError>) -> (ErrorCode, Option<u16>) {
    match r {
        Err(ClientError::Rejected(rej)) => (rej.reject_code().unwrap(), rej.part),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_duplicate_and_feed() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(config(&dir), &c.pks).await;
    let client = connect(&ingress).await;
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    let ack = client.submit(bytes(&ct)).await.unwrap();
    assert_eq!(ack.ids, vec![ct.id()]);
    assert!(!ack.duplicate);
    let again = client.submit(bytes(&ct)).await.unwrap();
    assert_eq!(again.ids, vec![ct.id()]);
    assert!(again.duplicate);
    assert!(ingress.with_pool(|p| p.get(&ct.id()).is_some()));
    let feed = ingress.feed(FeedCursor(0), 10);
    assert_eq!(feed.items.len(), 1);
    assert_eq!(feed.items[0].id, ct.id());
    assert_eq!(&feed.items[0].body[..], ct.as_bytes());
    assert!(ingress.store_stats().rows_written >= 1);
    client.ping().await.unwrap();
    client.close().await;
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_is_admitted_whole() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(config(&dir), &c.pks).await;
    let client = connect(&ingress).await;
    let id = BundleId([9; 32]);
    let parts: Vec<Ciphertext> = (0..3u16)
        .map(|i| {
            let mut a = ad(&c, u32::from(i) + 1, 10, 1);
            a.bundle = Some(BundleRef { id, index: i, count: 3 });
            encrypt(&c.pks, a, 100 + u64::from(i))
        })
        .collect();
    // A missing part: refused, nothing stored.
    let partial = client.submit_bundle(parts[..2].iter().map(bytes).collect()).await;
    assert_eq!(rejected(partial).await.0, ErrorCode::BadBundle);
    // A lone part with Submit: refused.
    assert_eq!(rejected(client.submit(bytes(&parts[0])).await).await.0, ErrorCode::BadBundle);
    let ack = client.submit_bundle(parts.iter().map(bytes).collect()).await.unwrap();
    assert_eq!(ack.ids, parts.iter().map(Ciphertext::id).collect::<Vec<_>>());
    assert_eq!(ingress.with_pool(|p| p.len()), 3);
    // One tampered part: the bundle is refused and the bad part is named.
    let mut tampered: Vec<SignedCiphertext> = (0..2u16)
        .map(|i| {
            let mut a = ad(&c, u32::from(i) + 1, 10, 2);
            a.bundle = Some(BundleRef { id: BundleId([8; 32]), index: i, count: 2 });
            bytes(&encrypt(&c.pks, a, 200 + u64::from(i)))
        })
        .collect();
    let mut last = tampered[1].ciphertext.to_vec();
    *last.last_mut().unwrap() ^= 1;
    // Signed by its payer: the signature passes, the proof does not.
    tampered[1] = crate::payers::signed_raw(Bytes::from(last), ChainId(1), 2);
    let r = client.submit_bundle(tampered).await;
    assert_eq!(rejected(r).await, (ErrorCode::BadProof, Some(1)));
    assert_eq!(ingress.with_pool(|p| p.len()), 3);
    client.close().await;
    ingress.shutdown().await;
}

/// Every admission code that a client can provoke deterministically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_rejection_codes() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.pool.min_fee = Amount(5);
    cfg.pool.max_per_sender = NonZeroUsize::new(2).unwrap();
    cfg.pool.max_ciphertext_size = NonZeroUsize::new(2048).unwrap();
    let ingress = start(cfg, &c.pks).await;
    let client = connect(&ingress).await;
    let code = |r| async { rejected(r).await.0 };

    // INVALID_CIPHERTEXT
    assert_eq!(
        code(client.submit(raw(b"not a ciphertext", 1)).await).await,
        ErrorCode::InvalidCiphertext
    );
    // BAD_PROOF: the body is covered by the proof's challenge. (Its payer, 9, is suspended
    // from now on: the cases below use other payers.)
    let mut tampered = encrypt(&c.pks, ad(&c, 1, 10, 9), 1).as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x80;
    assert_eq!(code(client.submit(raw(&tampered, 9)).await).await, ErrorCode::BadProof);
    // WRONG_EON and WRONG_CHAIN: keys of other eons and chains.
    let ids = c.identities.iter().map(|k| k.verifying_key()).collect::<Vec<_>>();
    let (eon2, _) = TrustedDealer::deal(ChainId(1), Eon(2), 1, &ids, &mut rng(5)).unwrap();
    let mut a = ad(&c, 1, 10, 1);
    a.eon = Eon(2);
    assert_eq!(code(client.submit(bytes(&encrypt(&eon2, a, 2))).await).await, ErrorCode::WrongEon);
    let (chain2, _) = TrustedDealer::deal(ChainId(2), Eon(1), 1, &ids, &mut rng(6)).unwrap();
    let mut a = ad(&c, 1, 10, 1);
    a.chain_id = ChainId(2);
    assert_eq!(
        code(client.submit(bytes(&encrypt(&chain2, a, 3))).await).await,
        ErrorCode::WrongChain
    );
    // EXPIRED (current slot is 10) and FEE_TOO_LOW (minimum 5).
    let mut a = ad(&c, 1, 10, 1);
    a.expiry_slot = Slot(9);
    assert_eq!(code(client.submit(bytes(&encrypt(&c.pks, a, 4))).await).await, ErrorCode::Expired);
    assert_eq!(
        code(client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 4, 1), 5))).await).await,
        ErrorCode::FeeTooLow
    );
    // CIPHERTEXT_TOO_LARGE (limit 2048 bytes).
    let big = c.pks.encrypt(&ad(&c, 1, 10, 1), &[0u8; 3000], &mut rng(6)).unwrap();
    assert_eq!(code(client.submit(bytes(&big)).await).await, ErrorCode::CiphertextTooLarge);
    // EPHEMERAL_KEY_REUSED: same randomness (seed), different associated data.
    client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 10, 1), 7))).await.unwrap();
    let copy = encrypt(&c.pks, ad(&c, 2, 10, 3), 7);
    assert_eq!(code(client.submit(bytes(&copy)).await).await, ErrorCode::EphemeralKeyReused);
    // SENDER_QUOTA: payer 1 may have 2 pending (fees 10 and 11); a third paying no more
    // than its cheapest is refused...
    client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 11, 1), 8))).await.unwrap();
    assert_eq!(
        code(client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 10, 1), 9))).await).await,
        ErrorCode::SenderQuota
    );
    // ...and one paying more replaces its cheapest (issue 7, finding 1).
    let cheapest = encrypt(&c.pks, ad(&c, 1, 10, 1), 7).id();
    let better = encrypt(&c.pks, ad(&c, 1, 12, 1), 10);
    assert_eq!(client.submit(bytes(&better)).await.unwrap().ids, vec![better.id()]);
    assert!(ingress.with_pool(|p| p.get(&cheapest).is_none()), "replaced");
    assert!(ingress.with_pool(|p| p.get(&better.id()).is_some()));
    let stats = ingress.pool_stats();
    for rc in [
        ErrorCode::InvalidCiphertext,
        ErrorCode::BadProof,
        ErrorCode::WrongEon,
        ErrorCode::WrongChain,
        ErrorCode::Expired,
        ErrorCode::FeeTooLow,
        ErrorCode::CiphertextTooLarge,
        ErrorCode::EphemeralKeyReused,
        ErrorCode::SenderQuota,
    ] {
        assert!(stats.rejected(rc) >= 1, "{rc} not counted");
    }
    assert_eq!(ingress.with_pool(|p| p.len()), 2);
    client.close().await;
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_full_and_connection_quota() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.pool.max_txs = NonZeroUsize::new(2).unwrap();
    cfg.admission.connection_rate = 0.001;
    cfg.admission.connection_burst = 4.0;
    let ingress = start(cfg, &c.pks).await;
    let client = connect(&ingress).await;
    client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 10, 1), 1))).await.unwrap();
    client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 10, 2), 2))).await.unwrap();
    let r = client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 10, 3), 3))).await;
    assert_eq!(rejected(r).await.0, ErrorCode::PoolFull);
    // A higher fee evicts the lowest.
    let ack = client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 11, 4), 4))).await.unwrap();
    assert_eq!(ingress.with_pool(|p| p.len()), 2);
    assert!(ingress.with_pool(|p| p.get(&ack.ids[0]).is_some()));
    // The burst of 4 is used up.
    let r = client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 12, 5), 5))).await;
    assert_eq!(rejected(r).await.0, ErrorCode::ConnectionQuota);
    assert_eq!(ingress.pool_stats().evicted, 1);
    client.close().await;
    ingress.shutdown().await;
}

fn raw_frame(kind: u8, version: u8, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32((body.len() + 2) as u32);
    b.put_u8(kind);
    b.put_u8(version);
    b.put_slice(body);
    b.freeze()
}

async fn unsolicited_code(client: &IngressClient) -> ErrorCode {
    match client.next_unsolicited().await.unwrap() {
        veil_wire::ingress::ServerFrame::Reject(r) => r.reject_code().unwrap(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Framing errors are answered, counted, and the connection keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_are_answered() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.max_frame_size = 8 * 1024;
    let ingress = start(cfg, &c.pks).await;
    let client = connect(&ingress).await;
    client.send_raw(raw_frame(kind::SUBMIT, 2, &[0xff, 0xff, 0xff])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::MalformedFrame);
    // Version 1 of a submission (unsigned, protocol version 1) is not served.
    client.send_raw(raw_frame(kind::SUBMIT, 1, &[1, 0, 1, 0xaa])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::UnsupportedVersion);
    client.send_raw(raw_frame(kind::SUBMIT, 9, &[])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::UnsupportedVersion);
    client.send_raw(raw_frame(0x55, 1, &[1, 2, 3])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::UnknownFrameType);
    client.send_raw(raw_frame(kind::ACK, 1, &[])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::UnknownFrameType);
    client.send_raw(raw_frame(kind::SUBMIT, 1, &vec![0xab; 20_000])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::FrameTooLarge);
    client.send_raw(Bytes::from_static(&[0, 0, 0, 0])).await.unwrap();
    assert_eq!(unsolicited_code(&client).await, ErrorCode::MalformedFrame);
    // Still in sync: a real submission works on the same stream.
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    assert_eq!(client.submit(bytes(&ct)).await.unwrap().ids, vec![ct.id()]);
    let stats = ingress.stats();
    assert_eq!(stats.bad_frames, 7);
    assert!(stats.frames_in >= 8);
    client.close().await;
    ingress.shutdown().await;
}

async fn raw_connection(ingress: &Ingress) -> (quinn::Endpoint, quinn::Connection) {
    let mut ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let crypto =
        tls::client_crypto(&Pin::Fingerprint(ingress.fingerprint()), veil_wire::ingress::ALPN)
            .unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(crypto));
    let conn = ep.connect(ingress.local_addr(), "localhost").unwrap().await.unwrap();
    (ep, conn)
}

fn closed_idle(e: &quinn::ConnectionError) -> bool {
    matches!(e, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == quinn::VarInt::from_u32(CLOSE_IDLE))
}

/// A client that opens a stream and sends nothing, and one that trickles half a frame then
/// stalls, are both closed by the idle timeout while other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_are_closed() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.stream_idle_timeout = Duration::from_millis(400);
    let ingress = start(cfg, &c.pks).await;

    let (_ep1, silent) = raw_connection(&ingress).await;
    let (_send, _recv) = silent.open_bi().await.unwrap();
    let (_ep2, slow) = raw_connection(&ingress).await;
    let (mut send, _recv2) = slow.open_bi().await.unwrap();
    let frame = raw_frame(kind::SUBMIT, 1, &[0u8; 100]);
    send.write_all(&frame[..10]).await.unwrap();

    let good = connect(&ingress).await;
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    good.submit(bytes(&ct)).await.unwrap();

    let e1 = tokio::time::timeout(Duration::from_secs(10), silent.closed()).await.unwrap();
    let e2 = tokio::time::timeout(Duration::from_secs(10), slow.closed()).await.unwrap();
    assert!(closed_idle(&e1), "{e1:?}");
    assert!(closed_idle(&e2), "{e2:?}");
    assert!(ingress.stats().idle_closed >= 2);
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_limited() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.max_connections_per_ip = 2;
    let ingress = start(cfg, &c.pks).await;
    let a = connect(&ingress).await;
    let b = connect(&ingress).await;
    let cfg = ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint()));
    assert!(IngressClient::connect(cfg.clone()).await.is_err());
    assert_eq!(ingress.stats().connections_refused, 1);
    a.close().await;
    // The slot is released once the server sees the close.
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(cl) = IngressClient::connect(cfg.clone()).await {
            cl.close().await;
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok);
    b.close().await;
    ingress.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_is_refused() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(config(&dir), &c.pks).await;
    let cfg =
        ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(tls::CertFingerprint([0; 32])));
    assert!(IngressClient::connect(cfg).await.is_err());
    let by_file = Pin::from_cert_file(&dir.join(tls::CERT_FILE)).unwrap();
    let client =
        IngressClient::connect(ClientConfig::new(ingress.local_addr(), by_file)).await.unwrap();
    client.ping().await.unwrap();
    client.close().await;
    ingress.shutdown().await;
}

/// After a restart the pool is rebuilt from storage (expired rows pruned) and the certificate
/// is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rebuilds_pool_and_keeps_certificate() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(config(&dir), &c.pks).await;
    let fp = ingress.fingerprint();
    let client = connect(&ingress).await;
    let keep = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    let mut short = ad(&c, 2, 10, 2);
    short.expiry_slot = Slot(15);
    let expiring = encrypt(&c.pks, short, 2);
    client.submit(bytes(&keep)).await.unwrap();
    client.submit(bytes(&expiring)).await.unwrap();
    client.close().await;
    ingress.shutdown().await;

    let mut cfg = config(&dir);
    cfg.current_slot = Slot(20);
    let ingress = start(cfg, &c.pks).await;
    assert_eq!(ingress.fingerprint(), fp);
    assert!(ingress.with_pool(|p| p.get(&keep.id()).is_some()));
    assert!(ingress.with_pool(|p| p.get(&expiring.id()).is_none()));
    let client = connect(&ingress).await;
    // Still a duplicate after the restart.
    assert!(client.submit(bytes(&keep)).await.unwrap().duplicate);
    client.close().await;
    ingress.shutdown().await;
}

/// The real validator, slowed down: the request's deadline passes during the check.
struct SlowValidator(CommitteeValidator, Duration);

impl Validator for SlowValidator {
    fn validate(
        &self,
        cts: &[veil_mempool::validate::Submission],
        gate: veil_mempool::validate::Gate<'_>,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Vec<Result<veil_mempool::pool::Candidate, veil_mempool::error::Rejection>> {
        std::thread::sleep(self.1);
        self.0.validate(cts, gate, rng)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_is_enforced() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let validator =
        SlowValidator(CommitteeValidator::new(vec![c.pks.clone()]), Duration::from_millis(300));
    let ingress = Ingress::start(config(&dir), Arc::new(validator)).await.unwrap();
    let mut cfg = ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint()));
    cfg.deadline_ms = 50;
    let client = IngressClient::connect(cfg).await.unwrap();
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    assert_eq!(rejected(client.submit(bytes(&ct)).await).await.0, ErrorCode::DeadlineExceeded);
    assert!(ingress.with_pool(|p| p.is_empty()));
    client.close().await;
    ingress.shutdown().await;
}

/// A client that writes without reading its answers is stopped by QUIC flow control: the
/// server's answers fill the client's receive window, the connection's in-flight permits stay
/// taken, the server stops reading, and the client's writes block. Other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_backpressured() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = config(&dir);
    cfg.max_in_flight_per_connection = 16;
    let ingress = start(cfg, &c.pks).await;
    let (_ep, conn) = raw_connection(&ingress).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    const FRAMES: usize = 400_000;
    let mut junk = BytesMut::new();
    for _ in 0..FRAMES {
        junk.put_slice(&raw_frame(0x55, 1, &[]));
    }
    let writer = tokio::spawn(async move { send.write_all(&junk).await });
    // Another client is served meanwhile.
    let good = connect(&ingress).await;
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    good.submit(bytes(&ct)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!writer.is_finished(), "the hostile client's writes should be blocked");
    let seen = ingress.stats().frames_in;
    assert!(seen < FRAMES as u64 / 2, "the server kept reading: {seen} frames");
    good.close().await;
    conn.close(0u32.into(), b"");
    writer.abort();
    ingress.shutdown().await;
}

/// A feed subscriber sees admitted ciphertexts in admission order, waits when caught up, and
/// is told how many it missed when some left the pool before it read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_subscriber_follows_admission_order() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ingress = start(config(&dir), &c.pks).await;
    let client = connect(&ingress).await;
    let mut sub = ingress.subscribe(FeedCursor(0));
    let cts: Vec<Ciphertext> = (0..4).map(|i| encrypt(&c.pks, ad(&c, 1, 10, i as u8), i)).collect();
    for ct in &cts[..3] {
        client.submit(bytes(ct)).await.unwrap();
    }
    let first = sub.next(2).await.unwrap();
    assert_eq!(
        first.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![cts[0].id(), cts[1].id()]
    );
    // The third leaves the pool (committed) before the subscriber reads it.
    assert_eq!(ingress.remove_committed(&[cts[2].id()]), 1);
    let waiter = tokio::spawn(async move {
        let b = sub.next(10).await.unwrap();
        (b, sub)
    });
    client.submit(bytes(&cts[3])).await.unwrap();
    let (second, mut sub) = waiter.await.unwrap();
    let ids: Vec<_> = second.items.iter().map(|i| i.id).collect();
    if ids.is_empty() {
        // The skip was reported on its own first; the next read has the new one.
        assert_eq!(second.skipped, 1);
        let third = sub.next(10).await.unwrap();
        assert_eq!(third.items[0].id, cts[3].id());
    } else {
        assert_eq!(ids, vec![cts[3].id()]);
        assert_eq!(second.skipped, 1);
    }
    client.close().await;
    ingress.shutdown().await;
}

/// Graceful half-close: a client that writes its requests, finishes its side of the stream
/// and only then reads gets every answer, then the end of the stream (issue 7, finding 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_finishes_its_stream_gets_every_answer() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let ingress = start(config(tmp.path()), &c.pks).await;
    for trial in 0..5u64 {
        let (_ep, conn) = raw_connection(&ingress).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        const N: u64 = 40;
        let mut out = BytesMut::new();
        for i in 0..N {
            let ct = encrypt(&c.pks, ad(&c, 1, 10, (trial * N + i) as u8), trial * N + i + 1);
            veil_wire::ingress::ClientFrame::Submit(veil_wire::ingress::Submit {
                request_id: i + 1,
                deadline_ms: 0,
                tx: bytes(&ct),
            })
            .encode(&mut out);
        }
        send.write_all(&out).await.unwrap();
        send.finish().unwrap();
        let all = recv.read_to_end(1 << 20).await.expect("the stream ends after the answers");
        let mut decoder = veil_wire::ingress::FrameDecoder::new(1 << 20);
        decoder.push(&all);
        let mut answered = std::collections::HashSet::new();
        while let Some(frame) = decoder.poll_frame() {
            match veil_wire::ingress::ServerFrame::decode(&frame.unwrap()).unwrap() {
                veil_wire::ingress::ServerFrame::Ack(a) => answered.insert(a.request_id),
                veil_wire::ingress::ServerFrame::Reject(r) => answered.insert(r.request_id),
                _ => false,
            };
        }
        assert_eq!(answered.len() as u64, N, "trial {trial}: every request answered");
        conn.close(0u32.into(), b"done");
    }
    ingress.shutdown().await;
}

/// Request id 0 is reserved and an id already in flight on the stream is refused, with the
/// typed code (issue 7, finding 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_zero_and_duplicates_in_flight_are_refused() {
    use veil_wire::ingress::{ClientFrame, ServerFrame, Submit};
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let ingress = start(config(tmp.path()), &c.pks).await;
    let (_ep, conn) = raw_connection(&ingress).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut out = BytesMut::new();
    for (id, seed) in [(0u64, 1u64), (5, 2), (5, 3)] {
        let ct = encrypt(&c.pks, ad(&c, 1, 10, seed as u8), seed);
        ClientFrame::Submit(Submit { request_id: id, deadline_ms: 0, tx: bytes(&ct) })
            .encode(&mut out);
    }
    send.write_all(&out).await.unwrap();
    send.finish().unwrap();
    let all = recv.read_to_end(1 << 20).await.unwrap();
    let mut decoder = veil_wire::ingress::FrameDecoder::new(1 << 20);
    decoder.push(&all);
    let mut answers = Vec::new();
    while let Some(frame) = decoder.poll_frame() {
        answers.push(ServerFrame::decode(&frame.unwrap()).unwrap());
    }
    let rejected = |id: u64| {
        answers.iter().any(|a| {
            matches!(a, ServerFrame::Reject(r) if r.request_id == id
            && r.reject_code() == Some(ErrorCode::BadRequestId))
        })
    };
    assert!(rejected(0), "{answers:?}");
    assert!(rejected(5), "the second request with id 5: {answers:?}");
    assert!(
        answers.iter().any(|a| matches!(a, ServerFrame::Ack(ack) if ack.request_id == 5)),
        "the first request with id 5 is admitted: {answers:?}"
    );
    assert_eq!(answers.len(), 3);
    conn.close(0u32.into(), b"");
    ingress.shutdown().await;
}

/// A client learns the chain, slot, eons, minimum fee and limits from the protocol itself
/// (issue 7, finding 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_tells_a_client_what_is_accepted() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.pool.min_fee = veil_primitives::Amount(7);
    let ingress = start(cfg, &c.pks).await;
    let client = connect(&ingress).await;
    let info = client.server_info().await.unwrap();
    assert_eq!(info.chain_id, c.pks.chain_id());
    assert_eq!(info.eons, vec![c.pks.eon()]);
    assert_eq!(info.min_fee, veil_primitives::Amount(7));
    assert_eq!(info.max_ciphertext_size as usize, veil_crypto::MAX_CIPHERTEXT_LEN);
    assert_eq!(info.max_frame_size as usize, veil_wire::ingress::DEFAULT_MAX_FRAME_SIZE);
    assert_eq!(info.max_bundle_parts, veil_crypto::MAX_BUNDLE_PARTS);
    assert!(info.rollups.is_empty(), "a standalone ingress accepts any rollup");
    assert_eq!(info.version, veil_wire::ingress::INFO_VERSION);
    assert_eq!(info.ciphertext_versions, vec![veil_crypto::CIPHERTEXT_VERSION]);
    assert_eq!(info.accepts_ciphertext_version(veil_crypto::CIPHERTEXT_VERSION), Some(true));
    assert_eq!(info.accepts_ciphertext_version(1), Some(false));

    // A client of version 1 of INFO gets a version 1 answer (same fields, no ciphertext
    // versions), not one it would have to skip.
    let mut buf = bytes::BytesMut::new();
    let request = veil_wire::ingress::InfoRequest { nonce: 4242, version: 1 };
    veil_wire::ingress::ClientFrame::Info(request).encode(&mut buf);
    client.send_raw(buf.freeze()).await.unwrap();
    let old = loop {
        match client.next_unsolicited().await.unwrap() {
            veil_wire::ingress::ServerFrame::Info(i) if i.nonce == 4242 => break *i,
            _ => continue,
        }
    };
    assert_eq!(old.version, 1);
    assert!(old.ciphertext_versions.is_empty());
    assert_eq!(old.accepts_ciphertext_version(veil_crypto::CIPHERTEXT_VERSION), None);
    let same = veil_wire::ingress::ServerInfo {
        version: 1,
        nonce: 4242,
        ciphertext_versions: Vec::new(),
        ..info.clone()
    };
    assert_eq!(old, veil_wire::ingress::ServerInfo { current_slot: old.current_slot, ..same });
    client.close().await;
    ingress.shutdown().await;
}

/// Waits (at most 10 s) for the server to close `client`'s connection; why it did.
async fn closed(client: &IngressClient) -> Option<quinn::ConnectionError> {
    for _ in 0..200 {
        if let Some(reason) = client.close_reason() {
            return Some(reason);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Failing proofs cost their sender (issue 7, finding 9): the payer that signed one is
/// suspended, the connection that sent more than its allowance is closed, and an address
/// whose connections were closed so is refused new ones; connections already open (an honest
/// client's) keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_proofs_cost_their_sender() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.abuse.connection_burst = 2.0;
    cfg.abuse.connection_rate = 0.0;
    cfg.abuse.address_closes = 2;
    let ingress = start(cfg, &c.pks).await;
    let honest = connect(&ingress).await;
    let ok = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    honest.submit(bytes(&ok)).await.unwrap();

    // A ciphertext with a flipped body byte, signed by its payer (payer 50 + n).
    let bad = |n: u8, seed: u64| {
        let mut b = encrypt(&c.pks, ad(&c, 1, 10, 50 + n), seed).as_bytes().to_vec();
        *b.last_mut().unwrap() ^= 1;
        raw(&b, 50 + n)
    };
    let attacker = connect(&ingress).await;
    let code = |r| async { rejected(r).await.0 };
    assert_eq!(code(attacker.submit(bad(0, 100)).await).await, ErrorCode::BadProof);
    // Its payer is suspended: even a valid ciphertext of it is refused before the proof.
    let valid_of_0 = encrypt(&c.pks, ad(&c, 1, 10, 50), 101);
    assert_eq!(code(honest.submit(bytes(&valid_of_0)).await).await, ErrorCode::Suspended);
    // Two more failing proofs spend the connection's allowance (2); the third closes it.
    assert_eq!(code(attacker.submit(bad(1, 102)).await).await, ErrorCode::BadProof);
    let r = attacker.submit(bad(2, 103)).await;
    assert!(r.is_err());
    let reason = closed(&attacker).await;
    assert!(
        matches!(&reason, Some(quinn::ConnectionError::ApplicationClosed(a)) if a.error_code == quinn::VarInt::from_u32(veil_node::services::ingress::CLOSE_ABUSE)),
        "{reason:?}"
    );
    // A second connection closed so, and the address is refused new connections.
    let again = connect(&ingress).await;
    for n in 3..6u8 {
        let _ = again.submit(bad(n, 104 + u64::from(n))).await;
    }
    closed(&again).await;
    let mut cfg = ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint()));
    cfg.request_timeout = Duration::from_secs(5);
    assert!(IngressClient::connect(cfg).await.is_err(), "the address is refused");
    let stats = ingress.stats();
    assert_eq!((stats.abuse_closed, stats.abuse_refused), (2, 1));
    // The honest connection, open all along, still works.
    let ok2 = encrypt(&c.pks, ad(&c, 2, 10, 2), 200);
    assert_eq!(honest.submit(bytes(&ok2)).await.unwrap().ids, vec![ok2.id()]);
    honest.close().await;
    ingress.shutdown().await;
}

/// A held admission (a sequencer starting, before its ledger's balances are in the pool)
/// queues requests and answers them once opened, instead of refusing funded payers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_admission_answers_once_opened() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.pool.fee_accounts = true;
    cfg.hold_admission = true;
    let ingress = Arc::new(start(cfg, &c.pks).await);
    let client = connect(&ingress).await;
    let ct = encrypt(&c.pks, ad(&c, 1, 10, 1), 1);
    let submit = tokio::spawn(async move { client.submit(bytes(&ct)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!submit.is_finished(), "nothing is answered while admission is held");
    assert!(ingress.with_pool(veil_mempool::pool::Pool::is_empty));
    // What a sequencer does once its ledger is restored: balances first, then open.
    ingress.set_fee_balances([(crate::payers::public(1), Amount(1_000))]);
    ingress.open_admission();
    let ack = submit.await.unwrap().unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ingress.with_pool(|p| p.len()), 1);
}

/// A committed transaction replayed over QUIC is acked as a duplicate with the same id and
/// never admitted again: when its payer could not pay it again, after a restart (the spent
/// ids are stored), and when it had been evicted while its slot was in flight; once its
/// expiry slot passed it is refused as expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_replayed_is_a_duplicate_until_it_expires() {
    let c = committee();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let with_accounts = |slot: u64| {
        let mut cfg = config(&dir);
        cfg.pool.fee_accounts = true;
        cfg.pool.max_txs = NonZeroUsize::new(2).unwrap();
        cfg.current_slot = Slot(slot);
        cfg
    };
    let payer = crate::payers::public(3);
    let ingress = start(with_accounts(10), &c.pks).await;
    ingress.set_fee_balances([(payer, Amount(10))]);
    let client = connect(&ingress).await;
    let tx = encrypt(&c.pks, ad(&c, 1, 10, 3), 1);
    assert!(!client.submit(bytes(&tx)).await.unwrap().duplicate);
    assert_eq!(ingress.remove_committed(&[tx.id()]), 1);
    // Settled: the payer's balance is spent, so a new admission would be refused.
    ingress.settle_fees([(payer, Amount(10), Amount(0))]);
    let again = client.submit(bytes(&tx)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.ids, vec![tx.id()]);
    assert!(ingress.with_pool(|p| p.get(&tx.id()).is_none() && p.is_empty()));
    assert!(ingress.feed(FeedCursor(0), 10).items.is_empty());
    assert_eq!(ingress.pool_stats().replays, 1);

    // Evicted while its slot was in flight: remembered at publication with its expiry.
    ingress.set_fee_balances([(crate::payers::public(4), Amount(1_000))]);
    ingress.set_fee_balances([(crate::payers::public(5), Amount(1_000))]);
    let cheap = encrypt(&c.pks, ad(&c, 1, 5, 4), 2);
    client.submit(bytes(&cheap)).await.unwrap();
    for seed in 3..5 {
        client.submit(bytes(&encrypt(&c.pks, ad(&c, 1, 9, 5), seed))).await.unwrap();
    }
    assert!(ingress.with_pool(|p| p.get(&cheap.id()).is_none()), "evicted");
    let expiries = [(cheap.id(), Slot(100))].into_iter().collect();
    assert_eq!(ingress.remove_published(&[cheap.id()], &expiries), 0);
    assert!(client.submit(bytes(&cheap)).await.unwrap().duplicate);
    client.close().await;
    ingress.shutdown().await;

    // After a restart: still spent, still a duplicate, whatever the balance.
    let ingress = start(with_accounts(20), &c.pks).await;
    assert!(ingress.with_pool(|p| p.is_spent(&tx.id()) && p.is_spent(&cheap.id())));
    let client = connect(&ingress).await;
    for t in [&tx, &cheap] {
        let again = client.submit(bytes(t)).await.unwrap();
        assert!(again.duplicate && again.ids == vec![t.id()]);
    }
    assert!(ingress.with_pool(|p| p.get(&tx.id()).is_none() && p.get(&cheap.id()).is_none()));
    client.close().await;
    ingress.shutdown().await;

    // Past its expiry slot (100): refused as expired, and no longer stored.
    let ingress = start(with_accounts(101), &c.pks).await;
    ingress.set_fee_balances([(payer, Amount(10))]);
    let client = connect(&ingress).await;
    assert_eq!(rejected(client.submit(bytes(&tx)).await).await.0, ErrorCode::Expired);
    assert_eq!(ingress.pool_stats().spent, 0);
    client.close().await;
    ingress.shutdown().await;
}
