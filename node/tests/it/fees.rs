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
