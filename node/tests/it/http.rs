//! The HTTP API against a real sequencer node on 127.0.0.1 (in-process keypers over QUIC):
//! every route, the error codes each one answers with (through the SDK's clients, and through
//! raw requests for what a client would never send), and the `veil data` / `veil tx` commands.

use std::process::Command;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, RevenuePolicy, RollupBlock, RollupConfig, SignedBid,
};
use veil_builder_api::api::{
    paths, BidsPage, DataQuery, DeliveryState, SlotSchedule, TxState, MAX_PAGE_LIMIT,
};
use veil_builder_api::http::{BuilderClient, DataClient, GetRetry, HttpClient, HttpError};
use veil_builder_api::{encrypt, RetryPolicy, Submitter};
use veil_crypto::dev::DevCommittee;
use veil_mempool::pool::PoolConfig;
use veil_node::sequencer_node::{SequencerNode, SequencerNodeConfig, SlotTiming};
use veil_node::services::keyper::{Behaviour, KeyperSetup, RunningKeyper};
use veil_node::services::sequencer::now_ms;
use veil_primitives::{
    Amount, ChainId, Eon, ErrorCode, PublicKeyBytes, RollupId, SignatureBytes, Slot, TxId, TxMeta,
};
use veil_sequencer::slot::TxResult;
use veil_wire::client::ClientConfig;
use veil_wire::tls::Pin;

const VEIL: &str = env!("CARGO_BIN_EXE_veil");
pub(crate) const CHAIN: ChainId = ChainId(1);

pub(crate) fn builder_key() -> SigningKey {
    SigningKey::from_bytes(&[0xb1; 32])
}

async fn start_node(dir: &std::path::Path, committee: &DevCommittee) -> SequencerNode {
    start_node_with(
        dir,
        committee,
        // Bidding windows wide enough for a test's bids on a loaded 2-core machine.
        SlotTiming { slot_ms: 1_600, bid_window_ms: 800, release_timeout_ms: 3000 },
    )
    .await
}

pub(crate) async fn start_node_with(
    dir: &std::path::Path,
    committee: &DevCommittee,
    timing: SlotTiming,
) -> SequencerNode {
    start_node_pool(dir, committee, timing, PoolConfig::new(CHAIN)).await
}

async fn start_node_pool(
    dir: &std::path::Path,
    committee: &DevCommittee,
    timing: SlotTiming,
    pool: PoolConfig,
) -> SequencerNode {
    let admin = SigningKey::from_bytes(&[0xad; 32]);
    let mut auction = Auction::new(AuctionConfig { chain_id: CHAIN, ..AuctionConfig::default() });
    for (id, reserve) in [(0, 5), (1, 0)] {
        let config = RollupConfig {
            reserve: Amount(reserve),
            gas_limit: 30_000_000,
            policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&admin)).unwrap(),
            active: true,
        };
        auction.register_genesis_rollup(RollupId(id), public_key(&admin), config).unwrap();
    }
    auction.deposit(public_key(&builder_key()), Amount(1_000_000)).unwrap();
    crate::payers::fund(&mut auction);
    node_on(dir, &committee.pks, auction, timing, pool).await
}

/// A sequencer node over `dir` on 127.0.0.1 (ephemeral ports, the HTTP API on), with the
/// sequencer key every test uses (`[0x5e; 32]`).
pub(crate) async fn node_on(
    dir: &std::path::Path,
    pks: &veil_crypto::PublicKeySet,
    auction: Auction,
    timing: SlotTiming,
    pool: PoolConfig,
) -> SequencerNode {
    SequencerNode::start(SequencerNodeConfig {
        data_dir: dir.to_path_buf(),
        pks: pks.clone(),
        sequencer_key: SigningKey::from_bytes(&[0x5e; 32]),
        ingress_listen: "127.0.0.1:0".parse().unwrap(),
        keyper_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        http: veil_builder_api::server::ServerConfig::default(),
        timing,
        genesis_ms: None,
        auction,
        pool,
    })
    .await
    .unwrap()
}

/// The committee's keypers, honest and in-process, each over its own QUIC link to `node`
/// (key shares are not `Clone`: the committee is consumed).
pub(crate) fn start_keypers(
    dir: &std::path::Path,
    committee: DevCommittee,
    node: &SequencerNode,
) -> Vec<RunningKeyper> {
    let sequencer_key = public_key(&SigningKey::from_bytes(&[0x5e; 32]));
    let pks = committee.pks.clone();
    committee
        .shares
        .into_iter()
        .zip(committee.identities)
        .enumerate()
        .map(|(i, (share, identity))| {
            RunningKeyper::start(KeyperSetup {
                pks: pks.clone(),
                share,
                identity,
                sequencer: node.keyper_server().local_addr(),
                sequencer_key,
                log_path: dir.join(format!("keyper-{}.sqlite", i + 1)),
                behaviour: Behaviour::Honest,
                threads: None,
            })
            .unwrap()
        })
        .collect()
}

fn bid(slot: Slot, sequence: u64, amount: u128, rollup: u32, ids: Vec<TxId>) -> Bid {
    Bid {
        chain_id: CHAIN,
        slot,
        builder: public_key(&builder_key()),
        sequence,
        amount: Amount(amount),
        blocks: vec![RollupBlock { rollup: RollupId(rollup), ciphertexts: ids, plaintext: vec![] }],
    }
}

pub(crate) async fn sleep_until(ms: u64) {
    let now = now_ms();
    if ms > now {
        tokio::time::sleep(Duration::from_millis(ms - now)).await;
    }
}

/// The auction's close, rerun from public data: the book at the deadline is each builder's
/// latest bid per rollup set among the bids the data API lists; the terms are the record's.
/// Collateral at the close is not public, so every bidder is taken to have enough (the record
/// lists none excluded for collateral), and no pending transactions are given for fallback
/// blocks (the slot's unsold rollup had none pending).
fn recompute(
    record: &veil_auction::Outcome,
    listed: &[veil_builder_api::api::BidReceived],
) -> veil_auction::Outcome {
    use std::collections::{BTreeMap, HashMap};
    use veil_auction::payment::{close, CloseInput};
    use veil_auction::StoredBid;

    let mut latest: BTreeMap<(PublicKeyBytes, Vec<RollupId>), &SignedBid> = BTreeMap::new();
    for b in listed {
        let mut set = b.rollups.clone();
        set.sort_unstable();
        let slot = latest.entry((b.builder, set)).or_insert(&b.bid);
        if b.bid.message.sequence > slot.message.sequence {
            *slot = &b.bid;
        }
    }
    let terms: veil_auction::registry::RollupTerms =
        record.terms.iter().map(|t| (t.rollup, t.config.clone())).collect();
    let mut stored: Vec<StoredBid> = latest
        .values()
        .map(|s| StoredBid {
            id: veil_node::services::bids::bid_id(s),
            signed: (*s).clone(),
            reserve: Amount(s.message.rollups().map(|r| terms[&r].reserve.0).sum()),
        })
        .collect();
    stored.sort_by_key(|s| s.id);
    let refs: Vec<&StoredBid> = stored.iter().collect();
    let available: HashMap<PublicKeyBytes, Amount> =
        stored.iter().map(|s| (s.signed.message.builder, veil_auction::MAX_AMOUNT)).collect();
    let (outcome, _) = close(&CloseInput {
        chain_id: record.chain_id,
        slot: record.slot,
        rule: record.rule,
        node_budget: veil_auction::config::DEFAULT_SEARCH_NODE_BUDGET,
        terms: &terms,
        bids: &refs,
        available: &available,
        pending: &[],
    })
    .unwrap();
    outcome
}

/// The node's HTTP base URL and an SDK client of it that never retries (a test sees every
/// answer).
pub(crate) fn http_client(node: &SequencerNode) -> (String, HttpClient) {
    let base = format!("http://{}", node.http_addr().unwrap());
    let http = HttpClient::with(
        &base,
        Duration::from_secs(10),
        GetRetry { attempts: 1, ..GetRetry::default() },
    )
    .unwrap();
    (base, http)
}

/// A submitter to the node's ingress, pinned to its certificate.
pub(crate) fn submitter(node: &SequencerNode) -> Submitter {
    Submitter::new(
        ClientConfig::new(
            node.ingress().local_addr(),
            Pin::Fingerprint(node.ingress().fingerprint()),
        ),
        RetryPolicy::default(),
    )
}

fn code(e: &HttpError) -> ErrorCode {
    e.code().unwrap_or_else(|| panic!("not a typed error: {e}"))
}

/// Polls until `f` gives `Some`, for at most 20 s (the slot lifecycle under a loaded machine).
pub(crate) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn veil(args: &[&str]) -> std::process::Output {
    Command::new(VEIL).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 21).unwrap();
    let node = start_node(dir.path(), &committee).await;
    let (base, http) = http_client(&node);
    let builder = BuilderClient::new(http.clone());
    let data = DataClient::new(http);

    // Not ready until enough keypers are linked (none yet).
    assert_eq!(code(&data.ready().await.unwrap_err()), ErrorCode::NotReady);
    let pks = committee.pks.clone();
    let keypers = start_keypers(dir.path(), committee, &node);
    let ready = eventually("readiness", || async { data.ready().await.ok() }).await;
    assert!(ready.keypers_linked >= 2 && ready.sequencer_running);

    // The schedule.
    let s: SlotSchedule = builder.schedule().await.unwrap();
    assert_eq!((s.chain_id, s.eon, s.slot_ms, s.bid_window_ms), (CHAIN, Eon(1), 1_600, 800));
    assert_eq!(s.next.slot, s.current.slot.next());
    assert_eq!(s.next.start_ms, s.current.start_ms + 1_600);
    assert_eq!(s.current.bidding_deadline_ms, s.current.start_ms + 800);
    let reserves: Vec<(u32, u128, u64)> =
        s.rollups.iter().map(|r| (r.rollup.0, r.reserve.0, r.gas_limit)).collect();
    assert_eq!(reserves, vec![(0, 5, 30_000_000), (1, 0, 30_000_000)]);
    assert_eq!(veil_crypto::PublicKeySet::from_json(&s.committee.to_string()).unwrap(), pks);

    // A transaction admitted after a slot's deadline, so that no fallback block takes it
    // before the next slot's auction.
    let s = builder.schedule().await.unwrap();
    sleep_until(s.current.bidding_deadline_ms + 20).await;
    let submitter = submitter(&node);
    let meta = TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(0),
        fee_payer: crate::payers::public(7),
        max_fee: Amount(10),
        gas_limit: 21_000,
        expiry_slot: Slot(s.current.slot.0 + 100),
        bundle: None,
    };
    let ct = encrypt(&pks, &meta, b"hello over http").unwrap();
    let tx = submitter.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap();
    let status = data.tx_status(&tx).await.unwrap();
    assert_eq!((status.state, status.rollup), (TxState::Pending, Some(RollupId(0))));

    // Bid in the next slot's window.
    let slot = s.next.slot;
    sleep_until(s.next.start_ms + 10).await;
    let first = bid(slot, 1, 10, 0, vec![tx]).sign(&builder_key());
    let accepted = builder.submit_bid(&first).await.unwrap();
    assert_eq!(accepted.bid_id, veil_node::services::bids::bid_id(&first));
    // The same sequence number again is stale.
    assert_eq!(code(&builder.submit_bid(&first).await.unwrap_err()), ErrorCode::StaleSequence);
    // Refusals, each with its code: the auction's checks, as for in-process bids.
    let mut forged = bid(slot, 5, 10, 0, vec![tx]).sign(&builder_key());
    forged.signature = SignatureBytes([1; 64]);
    let stranger = SigningKey::from_bytes(&[0x99; 32]);
    let mut unknown_builder = bid(slot, 1, 10, 1, vec![]);
    unknown_builder.builder = public_key(&stranger);
    let mut wrong_chain = bid(slot, 6, 10, 1, vec![]);
    wrong_chain.chain_id = ChainId(2);
    let cases: Vec<(SignedBid, ErrorCode)> = vec![
        (forged.clone(), ErrorCode::BadSignature),
        (unknown_builder.sign(&stranger), ErrorCode::UnknownBuilder),
        (wrong_chain.sign(&builder_key()), ErrorCode::WrongChain),
        (bid(Slot(slot.0 + 5), 7, 10, 1, vec![]).sign(&builder_key()), ErrorCode::SlotNotOpen),
        (bid(slot, 8, 1, 0, vec![]).sign(&builder_key()), ErrorCode::BelowReserve),
        (
            bid(slot, 9, 10, 1, vec![TxId([0xee; 32])]).sign(&builder_key()),
            ErrorCode::UnknownCiphertext,
        ),
        (bid(slot, 10, 10, 1, vec![tx]).sign(&builder_key()), ErrorCode::CiphertextRollupMismatch),
        (bid(slot, 11, 10, 7, vec![]).sign(&builder_key()), ErrorCode::UnknownRollup),
        (
            bid(slot, 12, 2_000_000, 1, vec![]).sign(&builder_key()),
            ErrorCode::InsufficientCollateral,
        ),
    ];
    for (b, expected) in &cases {
        let e = builder.submit_bid(b).await.unwrap_err();
        assert_eq!(code(&e), *expected, "{e}");
    }
    // A batch: one verdict per bid; the refused one leaves the other untouched.
    let second = bid(slot, 2, 12, 0, vec![tx]).sign(&builder_key());
    let verdicts = builder.submit_bids(vec![second.clone(), forged]).await.unwrap().verdicts;
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts[0].accepted && verdicts[0].error.is_none());
    assert!(!verdicts[1].accepted);
    assert_eq!(verdicts[1].error.as_ref().unwrap().name, "BAD_SIGNATURE");
    // Sealed bids: while the slot's bidding is open, the data API lists none of its bids.
    let during = data.bids(&DataQuery { slot: Some(slot.0), ..DataQuery::default() }).await;
    if now_ms() <= s.next.bidding_deadline_ms {
        assert!(during.unwrap().bids.is_empty(), "bids of an open slot were listed");
    }

    // The slot closes, commits, decrypts: the status follows, then the outcome and the block.
    let included = eventually("inclusion", || async {
        data.tx_status(&tx).await.ok().filter(|s| s.state == TxState::Included)
    })
    .await;
    assert_eq!(
        (included.slot, included.rollup, included.position),
        (Some(slot), Some(RollupId(0)), Some(0))
    );
    let receipt = included.receipt.expect("the signed receipt");
    let sequencer_key = public_key(&SigningKey::from_bytes(&[0x5e; 32]));
    veil_primitives::receipt::verify_receipt(&receipt, CHAIN, &sequencer_key).unwrap();
    let outcome = builder.outcome(slot).await.unwrap();
    assert_eq!(
        outcome.outcome_hash,
        veil_primitives::hexbytes::encode(&outcome.commitment.outcome_hash)
    );
    assert_eq!(outcome.outcome.hash(), outcome.commitment.outcome_hash);
    assert_eq!(outcome.outcome.winners.len(), 1);
    assert_eq!(outcome.outcome.winners[0].builder, public_key(&builder_key()));
    assert_eq!(outcome.outcome.winners[0].payment, Amount(12));
    assert!(outcome.signed.is_some());
    let blocks = builder.blocks(slot).await.unwrap();
    let ours = &blocks.published.blocks.iter().find(|b| b.rollup == RollupId(0)).unwrap().txs;
    assert_eq!(ours[0].id, tx);
    assert_eq!(ours[0].result, TxResult::Included(b"hello over http".to_vec()));

    // Anyone can recompute the slot's winners, payments and payouts from the data API alone
    // (the bids it lists once the slot closed, the terms in the outcome record) and gets the
    // committed outcome hash.
    let listed =
        data.bids(&DataQuery { slot: Some(slot.0), ..DataQuery::default() }).await.unwrap().bids;
    assert!(outcome.outcome.excluded_for_collateral.is_empty());
    let recomputed = recompute(&outcome.outcome, &listed);
    assert_eq!(recomputed.winners, outcome.outcome.winners);
    assert_eq!(recomputed.payouts, outcome.outcome.payouts);
    assert_eq!(recomputed.hash(), outcome.commitment.outcome_hash);

    // The data API: bids received, filtered and paginated.
    let mine =
        DataQuery { builder: Some(public_key(&builder_key()).to_string()), ..DataQuery::default() };
    let page = data.bids(&mine).await.unwrap();
    let ids: Vec<_> = page.bids.iter().map(|b| b.bid_id).collect();
    assert_eq!(ids, vec![veil_node::services::bids::bid_id(&second), accepted.bid_id]);
    assert_eq!(page.bids[1].bid, first);
    let one = data.bids(&DataQuery { limit: Some(1), ..mine.clone() }).await.unwrap();
    assert_eq!(one.bids.len(), 1);
    let rest = data
        .bids(&DataQuery { limit: Some(1), cursor: one.next_cursor.clone(), ..mine.clone() })
        .await
        .unwrap();
    assert_eq!(rest.bids[0].bid_id, accepted.bid_id);
    assert!(data
        .bids(&DataQuery { rollup: Some(1), ..mine.clone() })
        .await
        .unwrap()
        .bids
        .is_empty());
    assert_eq!(
        data.bids(&DataQuery { slot: Some(slot.0), ..DataQuery::default() })
            .await
            .unwrap()
            .bids
            .len(),
        2
    );
    let over = DataQuery { limit: Some(MAX_PAGE_LIMIT + 1), ..DataQuery::default() };
    assert_eq!(code(&data.bids(&over).await.unwrap_err()), ErrorCode::PageLimitExceeded);
    assert_eq!(code(&data.blocks(&over).await.unwrap_err()), ErrorCode::PageLimitExceeded);
    let bad_cursor = DataQuery { cursor: Some("yesterday".into()), ..DataQuery::default() };
    assert_eq!(code(&data.bids(&bad_cursor).await.unwrap_err()), ErrorCode::MalformedRequest);
    let bad_builder = DataQuery { builder: Some("0x12".into()), ..DataQuery::default() };
    assert_eq!(code(&data.blocks(&bad_builder).await.unwrap_err()), ErrorCode::MalformedRequest);

    // Blocks delivered.
    let delivered = eventually("the published block row", || async {
        let page = data
            .blocks(&DataQuery { slot: Some(slot.0), rollup: Some(0), ..DataQuery::default() })
            .await
            .ok()?;
        page.blocks.into_iter().find(|b| b.state == DeliveryState::Published)
    })
    .await;
    assert_eq!(delivered.builder, Some(public_key(&builder_key())));
    assert_eq!(
        (delivered.txs, delivered.included, delivered.failed, delivered.dropped),
        (1, 1, 0, 0)
    );
    let by_builder =
        DataQuery { builder: Some(public_key(&builder_key()).to_string()), ..DataQuery::default() };
    assert!(data.blocks(&by_builder).await.unwrap().blocks.iter().all(|b| b.slot == slot));

    // Not found, typed.
    assert_eq!(code(&data.tx_status(&TxId([0xab; 32])).await.unwrap_err()), ErrorCode::NotFound);
    assert_eq!(
        code(&builder.outcome(Slot(slot.0 + 10_000)).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(&builder.blocks(Slot(slot.0 + 10_000)).await.unwrap_err()),
        ErrorCode::NotFound
    );

    // What a client would never send: bad JSON, oversized bodies, too many bids, bad paths,
    // unknown routes, wrong methods.
    let raw = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        raw.post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let expect = |r: reqwest::Response, status: u16, name: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["name"], name, "{body}");
        assert_eq!(body["code"], ErrorCode::from_name(name).unwrap().as_u16());
    };
    expect(post(paths::BIDS, b"{\"message\":".to_vec()).await.unwrap(), 400, "MALFORMED_REQUEST")
        .await;
    expect(post(paths::BIDS, b"[1, 2]".to_vec()).await.unwrap(), 400, "MALFORMED_REQUEST").await;
    expect(
        post(paths::BIDS_BATCH, b"{\"bids\": 3}".to_vec()).await.unwrap(),
        400,
        "MALFORMED_REQUEST",
    )
    .await;
    let big =
        format!("{{\"pad\": \"{}\"}}", "x".repeat(veil_builder_api::server::DEFAULT_BODY_LIMIT));
    expect(post(paths::BIDS, big.into_bytes()).await.unwrap(), 413, "REQUEST_TOO_LARGE").await;
    let many = serde_json::json!({ "bids": vec![&second; veil_builder_api::server::DEFAULT_MAX_BATCH + 1] });
    expect(
        post(paths::BIDS_BATCH, many.to_string().into_bytes()).await.unwrap(),
        413,
        "REQUEST_TOO_LARGE",
    )
    .await;
    let get = |path: String| raw.get(format!("{base}{path}")).send();
    expect(get("/v1/slots/seven/outcome".into()).await.unwrap(), 400, "MALFORMED_REQUEST").await;
    expect(get("/v1/tx/0x1234".into()).await.unwrap(), 400, "MALFORMED_REQUEST").await;
    expect(get("/v1/data/bids?limit=0".into()).await.unwrap(), 400, "MALFORMED_REQUEST").await;
    expect(get("/v1/data/bids?colour=red".into()).await.unwrap(), 400, "MALFORMED_REQUEST").await;
    expect(get("/v2/anything".into()).await.unwrap(), 404, "NOT_FOUND").await;
    expect(
        raw.delete(format!("{base}{}", paths::BIDS)).send().await.unwrap(),
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;

    // Operations: health, metrics, the document.
    assert_eq!(get(paths::HEALTH.into()).await.unwrap().text().await.unwrap(), "ok\n");
    let metrics = get(paths::METRICS.into()).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("veil_bids_total{result=\"accepted\"}"), "{metrics}");
    let doc: serde_json::Value = get(paths::OPENAPI.into()).await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"][paths::BIDS]["post"]["responses"]["409"].is_object());

    // The commands, on the SDK.
    let out = veil(&["data", "bids", "--url", &base, "--slot", &slot.0.to_string(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: BidsPage = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.bids.len(), 2);
    let out =
        veil(&["data", "blocks", "--url", &base, "--slot", &slot.0.to_string(), "--rollup", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("slot {slot} rollup 0")) && text.contains("1 included"),
        "{text}"
    );
    let out = veil(&["data", "outcome", "--url", &base, "--slot", &slot.0.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("winner") && text.contains("pays 12"), "{text}");
    let out = veil(&["tx", "status", &tx.to_string(), "--url", &base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("included slot {slot} rollup 0 position 0")), "{text}");
    let out = veil(&["tx", "status", &TxId([0xab; 32]).to_string(), "--url", &base]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT_FOUND"));

    // A storage fault under the running node: the index's records of the slot corrupted on
    // disk. The routes that read them answer STORAGE_UNAVAILABLE (503, typed); the rest of the
    // API is unaffected.
    {
        let index =
            rusqlite::Connection::open(dir.path().join(veil_node::sequencer_node::DATA_FILE))
                .unwrap();
        index.busy_timeout(Duration::from_secs(10)).unwrap();
        let at = i64::try_from(slot.0).unwrap();
        index.execute("UPDATE slot_doc SET body = x'7b' WHERE slot = ?1", [at]).unwrap();
        index.execute("UPDATE delivered SET payment = 'plenty' WHERE slot = ?1", [at]).unwrap();
    }
    let unavailable = ErrorCode::StorageUnavailable;
    assert_eq!(code(&builder.outcome(slot).await.unwrap_err()), unavailable);
    assert_eq!(code(&builder.blocks(slot).await.unwrap_err()), unavailable);
    let at_slot = DataQuery { slot: Some(slot.0), ..DataQuery::default() };
    assert_eq!(code(&data.blocks(&at_slot).await.unwrap_err()), unavailable);
    expect(get(format!("/v1/slots/{slot}/outcome")).await.unwrap(), 503, "STORAGE_UNAVAILABLE")
        .await;
    assert_eq!(builder.schedule().await.unwrap().chain_id, CHAIN);
    assert_eq!(data.tx_status(&tx).await.unwrap().state, TxState::Included);

    for k in keypers {
        k.stop().await;
    }
    node.stop().await;
}

/// The next event of `stream`, which must be a transaction.
async fn next_tx(
    stream: &mut veil_builder_api::http::MempoolStream,
) -> veil_builder_api::api::MempoolTx {
    match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        Ok(Some(Ok(veil_builder_api::http::MempoolEvent::Tx(tx)))) => tx,
        other => panic!("expected a tx event, got {other:?}"),
    }
}

/// The encrypted mempool over HTTP: a live stream sees transactions as they are acked, pages
/// read from a cursor with filters and bodies, a stream resumes from `Last-Event-ID`, and bad
/// reads are typed. Slots of a minute: nothing closes (and takes the transactions) meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mempool_snapshot_and_stream() {
    use veil_builder_api::api::{MempoolQuery, MAX_MEMPOOL_PAGE};

    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 22).unwrap();
    let timing = SlotTiming { slot_ms: 60_000, bid_window_ms: 30_000, release_timeout_ms: 3000 };
    let node = start_node_with(dir.path(), &committee, timing).await;
    let (base, http) = http_client(&node);
    let builder = BuilderClient::new(http);

    // A stream opened on the empty pool, before anything is sent.
    let mut live = builder.mempool_stream(&MempoolQuery::default()).await.unwrap();
    let submitter = submitter(&node);
    let meta = |rollup: u32, fee: u128| TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(rollup),
        fee_payer: crate::payers::public(7),
        max_fee: Amount(fee),
        gas_limit: 21_000,
        expiry_slot: Slot(100),
        bundle: None,
    };
    let a = encrypt(&committee.pks, &meta(0, 10), b"first").unwrap();
    let b = encrypt(&committee.pks, &meta(1, 11), b"second").unwrap();
    let a_id = submitter.submit(&a, &crate::payers::key_of(&a.ad().fee_payer)).await.unwrap();
    let first = next_tx(&mut live).await;
    assert_eq!((first.id, first.rollup, first.max_fee), (a_id, RollupId(0), Amount(10)));
    assert_eq!(
        (first.gas_limit, first.expiry_slot, first.size),
        (21_000, Slot(100), a.as_bytes().len() as u32)
    );
    assert_eq!(first.ciphertext, None, "bodies only when asked for");
    let b_id = submitter.submit(&b, &crate::payers::key_of(&b.ad().fee_payer)).await.unwrap();
    let second = next_tx(&mut live).await;
    assert_eq!(second.id, b_id);
    assert_eq!(live.cursor(), second.seq + 1);

    // Pages: everything, by rollup, with bodies, one at a time.
    let all = builder.mempool(&MempoolQuery::default()).await.unwrap();
    assert_eq!(all.txs.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a_id, b_id]);
    assert!(all.caught_up);
    assert_eq!(all.next_cursor, second.seq + 1);
    let only_1 = builder
        .mempool(&MempoolQuery { rollup: Some(1), ..MempoolQuery::default() })
        .await
        .unwrap();
    assert_eq!(only_1.txs.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b_id]);
    assert_eq!(only_1.skipped, 0, "filtered transactions are not 'skipped'");
    let bodies = builder
        .mempool(&MempoolQuery { bodies: Some(true), ..MempoolQuery::default() })
        .await
        .unwrap();
    assert_eq!(
        bodies.txs[0].ciphertext.as_deref(),
        Some(veil_primitives::hexbytes::encode(a.as_bytes()).as_str())
    );
    let one =
        builder.mempool(&MempoolQuery { limit: Some(1), ..MempoolQuery::default() }).await.unwrap();
    assert_eq!((one.txs.len(), one.caught_up), (1, false));
    let rest = builder
        .mempool(&MempoolQuery { cursor: Some(one.next_cursor), ..MempoolQuery::default() })
        .await
        .unwrap();
    assert_eq!(rest.txs.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b_id]);

    // Resuming: from a cursor (SDK), and from Last-Event-ID (a raw client).
    let mut resumed = builder
        .mempool_stream(&MempoolQuery { cursor: Some(first.seq + 1), ..MempoolQuery::default() })
        .await
        .unwrap();
    assert_eq!(next_tx(&mut resumed).await.id, b_id);
    let raw = reqwest::Client::new();
    let mut response = raw
        .get(format!("{base}{}", paths::MEMPOOL_STREAM))
        .header("last-event-id", (first.seq + 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.contains("event: tx") && text.contains(&b_id.to_string()), "{text}");
    assert!(!text.contains(&a_id.to_string()), "{text}");

    // Bad reads, typed.
    let over = MempoolQuery { limit: Some(MAX_MEMPOOL_PAGE + 1), ..MempoolQuery::default() };
    assert_eq!(code(&builder.mempool(&over).await.unwrap_err()), ErrorCode::PageLimitExceeded);
    let r = raw.get(format!("{base}{}?cursor=soon", paths::MEMPOOL)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = raw
        .get(format!("{base}{}", paths::MEMPOOL_STREAM))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Bids are sealed by default: no top bid is shown.
    assert_eq!(code(&builder.top_bid(None).await.unwrap_err()), ErrorCode::BidsSealed);

    // The command, on the SDK.
    let out = veil(&["mempool", "--url", &base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&a_id.to_string()) && text.contains(&b_id.to_string()), "{text}");
    let out = veil(&["mempool", "--url", &base, "--rollup", "1", "--json"]);
    let page: veil_builder_api::api::MempoolPage = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page.txs.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b_id]);

    drop((live, resumed, response));
    node.stop().await;
}

/// A transaction that left the pool uncommitted says why: evicted by a better-paying one
/// while the pool was full, or expired when its last slot passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_evicted_transactions_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 23).unwrap();
    let mut pool = PoolConfig::new(CHAIN);
    pool.max_txs = std::num::NonZeroUsize::new(2).unwrap();
    let timing = SlotTiming { slot_ms: 800, bid_window_ms: 400, release_timeout_ms: 3000 };
    let node = start_node_pool(dir.path(), &committee, timing, pool).await;
    let (base, http) = http_client(&node);
    let builder = BuilderClient::new(http.clone());
    let data = DataClient::new(http);
    let submitter = submitter(&node);
    // After a slot's close, so that no fallback block takes them before the next slot.
    let s = builder.schedule().await.unwrap();
    sleep_until(s.current.bidding_deadline_ms + 20).await;
    let now = s.current.slot;
    let meta = |fee: u128, expiry: Slot, payer: u8| TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(0),
        fee_payer: crate::payers::public(payer),
        max_fee: Amount(fee),
        gas_limit: 21_000,
        expiry_slot: expiry,
        bundle: None,
    };
    let last_slot = encrypt(&committee.pks, &meta(50, now, 1), b"only this slot").unwrap();
    let cheap = encrypt(&committee.pks, &meta(10, Slot(now.0 + 100), 2), b"cheap").unwrap();
    let better = encrypt(&committee.pks, &meta(20, Slot(now.0 + 100), 3), b"better").unwrap();
    let last_slot = submitter
        .submit(&last_slot, &crate::payers::key_of(&last_slot.ad().fee_payer))
        .await
        .unwrap();
    let cheap =
        submitter.submit(&cheap, &crate::payers::key_of(&cheap.ad().fee_payer)).await.unwrap();
    assert_eq!(data.tx_status(&cheap).await.unwrap().state, TxState::Pending);
    // The pool holds two: the third, paying more than the cheapest, pushes it out.
    submitter.submit(&better, &crate::payers::key_of(&better.ad().fee_payer)).await.unwrap();
    let evicted = data.tx_status(&cheap).await.unwrap();
    assert_eq!(evicted.state, TxState::Evicted);
    assert!(evicted.slot.is_some());
    // The next slot opens: the transaction whose last slot was `now` expires.
    let expired = eventually("expiry", || async {
        data.tx_status(&last_slot).await.ok().filter(|s| s.state == TxState::Expired)
    })
    .await;
    assert_eq!(expired.slot, Some(now.next()));
    let out = veil(&["tx", "status", &cheap.to_string(), "--url", &base]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("evicted"), "{out:?}");
    node.stop().await;
}
