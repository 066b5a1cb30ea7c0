//! Fee payers against a real sequencer node on 127.0.0.1 (in-process keypers over QUIC), as
//! issue 7's finding 1 describes the attack: junk that names someone else's fee payer is
//! refused (it was acked before ingress v2, and filled the victim's quota), a payer key that
//! is not an ed25519 key is refused, an unfunded payer is refused until the bridge funds it,
//! admission reserves each max fee against the account, and settlement charges it.

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use veil_auction::{public_key, Auction, AuctionConfig, RevenuePolicy, RollupConfig};
use veil_builder_api::http::{HttpError, UserClient};
use veil_builder_api::{encrypt, SdkError, Submitter};
use veil_crypto::dev::DevCommittee;
use veil_crypto::Ciphertext;
use veil_mempool::pool::PoolConfig;
use veil_node::sequencer_node::{SequencerNode, SlotTiming};
use veil_primitives::{
    AccountKind, Amount, ChainId, DepositId, DepositNotice, Eon, ErrorCode, PublicKeyBytes,
    RollupId, Slot, TxMeta,
};
use veil_wire::ingress::SignedCiphertext;

use super::http::{eventually, http_client, submitter};

const CHAIN: ChainId = ChainId(1);

fn bridge() -> SigningKey {
    SigningKey::from_bytes(&[0xb7; 32])
}

async fn start(dir: &std::path::Path, committee: &DevCommittee) -> SequencerNode {
    let admin = SigningKey::from_bytes(&[0xad; 32]);
    let mut auction = Auction::new(AuctionConfig { chain_id: CHAIN, ..AuctionConfig::default() });
    let config = RollupConfig {
        reserve: Amount(0),
        gas_limit: 30_000_000,
        policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&admin)).unwrap(),
        active: true,
    };
    auction.register_genesis_rollup(RollupId(0), public_key(&admin), config).unwrap();
    auction.set_bridge_key(Some(public_key(&bridge())));
    crate::payers::fund(&mut auction);
    let timing = SlotTiming { slot_ms: 1_000, bid_window_ms: 500, release_timeout_ms: 3_000 };
    super::http::node_on(dir, &committee.pks, auction, timing, PoolConfig::new(CHAIN)).await
}

fn rejected(r: Result<veil_primitives::TxId, SdkError>) -> ErrorCode {
    match r {
        Err(SdkError::Rejected(rej)) => rej.reject_code().expect("a known code"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn http_code(e: &HttpError) -> ErrorCode {
    e.code().unwrap_or_else(|| panic!("not a typed error: {e}"))
}

fn signed_by(ct: &Ciphertext, key: &SigningKey) -> SignedCiphertext {
    SignedCiphertext::sign(Bytes::copy_from_slice(ct.as_bytes()), CHAIN, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_payers_sign_reserve_and_pay() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 23).unwrap();
    let node = start(dir.path(), &committee).await;
    let pks = committee.pks.clone();
    let keypers = super::http::start_keypers(dir.path(), committee, &node);
    let (_, http) = http_client(&node);
    let users = UserClient::new(http);
    let sdk: Submitter = submitter(&node);
    let slot = sdk.server_info().await.unwrap().current_slot;
    let meta = |payer: PublicKeyBytes, fee: u128| TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(0),
        fee_payer: payer,
        max_fee: Amount(fee),
        gas_limit: 21_000,
        expiry_slot: Slot(slot.0 + 200),
        bundle: None,
    };

    // ----- Someone else's fee payer. -----
    let victim = crate::payers::key(7);
    let attacker = crate::payers::key(40);
    for i in 0..20u8 {
        let junk = encrypt(&pks, &meta(public_key(&victim), 1_000_000), &[i; 64]).unwrap();
        let r = sdk.submit_signed(signed_by(&junk, &attacker)).await;
        assert_eq!(rejected(r), ErrorCode::BadSignature, "junk {i} in the victim's name");
    }
    // Its own key but a signature over other bytes.
    let junk = encrypt(&pks, &meta(public_key(&victim), 5), b"moved").unwrap();
    let other = encrypt(&pks, &meta(public_key(&victim), 5), b"other").unwrap();
    let moved = SignedCiphertext {
        ciphertext: Bytes::copy_from_slice(junk.as_bytes()),
        payer_signature: signed_by(&other, &victim).payer_signature,
    };
    assert_eq!(rejected(sdk.submit_signed(moved).await), ErrorCode::BadSignature);
    // A fee payer that is not an ed25519 key.
    let nobody = encrypt(&pks, &meta(PublicKeyBytes([0; 32]), 5), b"nobody").unwrap();
    let r = sdk.submit_signed(signed_by(&nobody, &attacker)).await;
    assert_eq!(rejected(r), ErrorCode::InvalidPublicKey);
    // None of it touched the victim: its own transaction goes in, the only one it has.
    let mine = encrypt(&pks, &meta(public_key(&victim), 5), b"the victim's own").unwrap();
    sdk.submit(&mine, &victim).await.unwrap();
    let account = users.fee_account(&public_key(&victim)).await.unwrap();
    assert_eq!((account.pending, account.reserved), (1, Amount(5)));

    // ----- A new user: refused until the bridge funds it. -----
    let mut secret = [0x42; 32];
    secret[0] = 1; // not one of the test payers funded at genesis
    let user = SigningKey::from_bytes(&secret);
    let me = public_key(&user);
    let first = encrypt(&pks, &meta(me, 60), b"first").unwrap();
    assert_eq!(rejected(sdk.submit(&first, &user).await), ErrorCode::InsufficientBalance);
    assert_eq!(http_code(&users.fee_account(&me).await.unwrap_err()), ErrorCode::NotFound);
    let notice = DepositNotice {
        chain_id: CHAIN,
        bridge: public_key(&bridge()),
        deposit_id: DepositId([0x77; 32]),
        kind: AccountKind::FeePayer,
        account: me,
        amount: Amount(100),
    }
    .sign(&bridge());
    let credited = users.deposit(&notice).await.unwrap();
    assert_eq!((credited.kind, credited.amount), (AccountKind::FeePayer, Amount(100)));
    // Idempotent: the same notice is not credited twice.
    assert_eq!(users.deposit(&notice).await.unwrap(), credited);
    let account = users.fee_account(&me).await.unwrap();
    assert_eq!(
        (account.balance, account.available, account.pending),
        (Amount(100), Amount(100), 0)
    );

    // ----- Reservations: never more pending than the balance pays. -----
    sdk.submit(&first, &user).await.unwrap();
    let account = users.fee_account(&me).await.unwrap();
    assert_eq!((account.reserved.0 + account.held.0, account.pending), (60, 1));
    let too_much = encrypt(&pks, &meta(me, 50), b"too much").unwrap();
    assert_eq!(rejected(sdk.submit(&too_much, &user).await), ErrorCode::InsufficientBalance);
    let second = encrypt(&pks, &meta(me, 30), b"second").unwrap();
    sdk.submit(&second, &user).await.unwrap();

    // ----- Settlement charges both fees (nobody bids: the fallback block takes them). -----
    let settled = eventually("both fees settled", || {
        let users = users.clone();
        async move {
            let a = users.fee_account(&me).await.ok()?;
            (a.pending == 0 && a.reserved == Amount::ZERO && a.held == Amount::ZERO).then_some(a)
        }
    })
    .await;
    assert_eq!((settled.balance, settled.available), (Amount(10), Amount(10)));
    node.stop().await;
    drop(keypers);
}

/// A committed transaction replayed over QUIC (issue: replay of a committed ciphertext) is
/// acked as a duplicate with the same id, and is never pending, fed, committed or charged
/// again: while the node runs, after a restart, and after a crash that lost the ingress's
/// removal of it (its row came back as pending, without its spent id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_replayed_is_acked_and_charged_once() {
    use std::sync::mpsc::Receiver;
    use veil_mempool::pool::{FeedCursor, Seq};
    use veil_node::services::sequencer::SlotReport;
    use veil_storage::PendingTxStore;
    use veil_wire::client::{ClientConfig, IngressClient};
    use veil_wire::tls::Pin;

    let dir = tempfile::tempdir().unwrap();
    let committee = || DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 29).unwrap();
    let mut node = start(dir.path(), &committee()).await;
    let pks = committee().pks;
    let keypers = super::http::start_keypers(dir.path(), committee(), &node);
    let connect = |node: &SequencerNode| {
        let ingress = node.ingress();
        IngressClient::connect(ClientConfig::new(
            ingress.local_addr(),
            Pin::Fingerprint(ingress.fingerprint()),
        ))
    };
    // Reads slot reports (each sent once a slot settled or was abandoned) until one for
    // `until` or later, or, with `until` `None`, until one whose commitment names `id`.
    // Returns the slots whose commitment names `id`.
    let watch = |reports: &Receiver<SlotReport>, id: veil_primitives::TxId, until: Option<Slot>| {
        let mut naming = Vec::new();
        loop {
            let r = reports.recv_timeout(std::time::Duration::from_secs(20)).expect("a slot");
            if r.commitment.as_ref().is_some_and(|c| c.message.ordered_ids().any(|t| *t == id)) {
                naming.push(r.slot);
            }
            if until.map_or(!naming.is_empty(), |u| r.slot >= u) {
                return naming;
            }
        }
    };
    let payer = crate::payers::key(9);
    let me = public_key(&payer);
    let balance = |node: &SequencerNode| node.ingress().fee_account(&me).0.unwrap().balance;
    let slot = node.ingress().with_pool(veil_mempool::pool::Pool::current_slot);
    let ad = TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(0),
        fee_payer: me,
        max_fee: Amount(7),
        gas_limit: 21_000,
        expiry_slot: Slot(slot.0 + 500),
        bundle: None,
    };
    let ct = encrypt(&pks, &ad, b"pay me once").unwrap();
    let id = ct.id();
    let signed = crate::payers::signed(&ct);

    // Submitted, committed (nobody bids: the fallback block takes it), published, charged.
    let reports = node.take_reports().unwrap();
    let client = connect(&node).await.unwrap();
    let ack = client.submit(signed.clone()).await.unwrap();
    assert!(!ack.duplicate && ack.ids == vec![id]);
    let committed_in = tokio::task::block_in_place(|| watch(&reports, id, None))[0];
    let charged = Amount(crate::payers::FUNDS.0 - 7);
    super::http::eventually("the fee settled", || {
        let b = balance(&node);
        async move { (b == charged).then_some(()) }
    })
    .await;

    // Replayed: the same id, a duplicate; not pending, not on the feed, not for the auction.
    let again = client.submit(signed.clone()).await.unwrap();
    assert!(again.duplicate && again.ids == vec![id], "{again:?}");
    let ingress = node.ingress().clone();
    assert!(ingress.with_pool(|p| p.get(&id).is_none() && p.is_spent(&id)));
    assert!(ingress.with_pool(|p| veil_primitives::CiphertextIndex::lookup(p, &id).is_none()));
    assert!(!ingress.feed(FeedCursor(0), usize::MAX).items.iter().any(|i| i.id == id));
    assert_eq!(ingress.pool_stats().replays, 1);
    // Three more slots: no commitment names it again, the payer paid once.
    let later = Slot(committed_in.0 + 3);
    let naming = tokio::task::block_in_place(|| watch(&reports, id, Some(later)));
    assert!(naming.is_empty(), "committed again in {naming:?}");
    assert_eq!(balance(&node), charged);
    client.close().await;
    drop(ingress);
    for k in keypers {
        k.stop().await;
    }
    node.stop().await;

    // Restarted: still a duplicate.
    let node = start(dir.path(), &committee()).await;
    let client = connect(&node).await.unwrap();
    let again = client.submit(signed.clone()).await.unwrap();
    assert!(again.duplicate && again.ids == vec![id]);
    assert!(node.ingress().with_pool(|p| p.get(&id).is_none()));
    assert_eq!(balance(&node), charged);
    client.close().await;
    node.stop().await;

    // A crash after the slot was published but before the ingress's store removed the row
    // and kept the id: the row is back, the spent id gone.
    let store_dir = dir.path().join("ingress");
    let (store, _) = veil_storage::sqlite::SqliteTxStore::open(&store_dir).unwrap();
    let row = veil_storage::StoredTx {
        seq: Seq(store.next_seq_floor().0),
        candidate: veil_mempool::validate::candidate(ct.clone(), signed.payer_signature),
    };
    store.write(vec![row], vec![]).await.unwrap().unwrap();
    store.prune_spent(Slot(u64::MAX));
    store.write(vec![], vec![]).await.unwrap().unwrap();
    store.shutdown();
    let mut node = start(dir.path(), &committee()).await;
    let reports = node.take_reports().unwrap();
    // The sequencer's records name it as published: it left the pool again, as spent, and
    // its settled fee is not held again.
    assert!(node.ingress().with_pool(|p| p.get(&id).is_none() && p.is_spent(&id)));
    let account = node.ingress().fee_account(&me).0.unwrap();
    assert_eq!((account.balance, account.held, account.reserved), (charged, Amount(0), Amount(0)));
    let client = connect(&node).await.unwrap();
    let again = client.submit(signed).await.unwrap();
    assert!(again.duplicate && again.ids == vec![id]);
    let now = node.ingress().with_pool(veil_mempool::pool::Pool::current_slot);
    let naming = tokio::task::block_in_place(|| watch(&reports, id, Some(Slot(now.0 + 2))));
    assert!(naming.is_empty(), "committed again in {naming:?}");
    assert_eq!(balance(&node), charged);
    client.close().await;
    node.stop().await;
}
