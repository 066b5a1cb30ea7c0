//! The reference builder (`veil_builder_api::builder`) against a real node on 127.0.0.1 with
//! in-process keypers: it follows the mempool stream over HTTP, wins a slot with the
//! transactions it saw, and they are published.

use veil_auction::public_key;
use veil_builder_api::builder::{
    BidResult, DriverConfig, ReferenceBuilder, StrategyConfig, StrategyKind,
};
use veil_builder_api::encrypt;
use veil_builder_api::http::{BuilderClient, DataClient};
use veil_crypto::dev::DevCommittee;
use veil_node::sequencer_node::SlotTiming;
use veil_primitives::{Amount, Eon, RollupId, Slot, TxMeta};
use veil_sequencer::slot::TxResult;

use super::http::{
    builder_key, eventually, http_client, sleep_until, start_keypers, start_node_with, submitter,
    CHAIN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_builder_wins_a_slot_and_its_transactions_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 23).unwrap();
    let timing = SlotTiming { slot_ms: 1_000, bid_window_ms: 600, release_timeout_ms: 3_000 };
    let node = start_node_with(dir.path(), &committee, timing).await;
    let (_, http) = http_client(&node);
    let client = BuilderClient::new(http.clone());
    let data = DataClient::new(http);
    let pks = committee.pks.clone();
    let keypers = start_keypers(dir.path(), committee, &node);
    eventually("readiness", || async { data.ready().await.ok() }).await;

    // The reference builder on rollup 0 (reserve 5), bidding at +100 ms into each slot.
    let strategy =
        StrategyConfig::new(StrategyKind::BundleAware, vec!["0".parse().unwrap()], 60).unwrap();
    let mut config = DriverConfig::new(builder_key(), strategy);
    config.at_ms = Some(100);
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel(64);
    let builder = ReferenceBuilder::spawn(client.clone(), config, Some(lines_tx));

    // Two transactions admitted just after a slot's deadline, so that no fallback block
    // takes them before the builder bids for the next slot.
    let s = client.schedule().await.unwrap();
    sleep_until(s.current.bidding_deadline_ms + 20).await;
    let submitter = submitter(&node);
    let mut ids = Vec::new();
    for (n, fee) in [40u128, 60].into_iter().enumerate() {
        let meta = TxMeta {
            chain_id: CHAIN,
            eon: Eon(1),
            rollup: RollupId(0),
            fee_payer: crate::payers::public(n as u8 + 1),
            max_fee: Amount(fee),
            gas_limit: 21_000,
            expiry_slot: Slot(s.current.slot.0 + 50),
            bundle: None,
        };
        let ct = encrypt(&pks, &meta, format!("reference {n}").as_bytes()).unwrap();
        ids.push(submitter.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap());
    }

    // The builder reports the slot it won with both transactions: 100 of value, 60 bid.
    let won = eventually("a won slot", || {
        let line = lines.try_recv().ok();
        async move { line.filter(|l| !l.won.is_empty()) }
    })
    .await;
    assert_eq!(won.won, vec![0]);
    assert_eq!(won.bids.len(), 1);
    assert_eq!(won.bids[0].txs, vec![2]);
    assert_eq!(won.bids[0].amount, Amount(60));
    assert!(matches!(won.bids[0].result, BidResult::Accepted(_)));
    assert_eq!(won.paid, Amount(60));

    // Its block is published with both transactions, by fee, included.
    let slot = Slot(won.slot);
    let published = eventually("the published block", || {
        let client = client.clone();
        async move { client.blocks(slot).await.ok() }
    })
    .await;
    let block = published.published.blocks.iter().find(|b| b.rollup == RollupId(0)).unwrap();
    let got: Vec<_> = block.txs.iter().map(|t| t.id).collect();
    assert_eq!(got, vec![ids[1], ids[0]]);
    assert!(block.txs.iter().all(|t| matches!(t.result, TxResult::Included(_))));
    let outcome = client.outcome(slot).await.unwrap();
    assert_eq!(outcome.commitment.blocks[0].winner, Some(public_key(&builder_key())));

    let stats = builder.stop().await;
    assert!(stats.slots_won >= 1);
    assert_eq!(stats.refusals.get("UNKNOWN_CIPHERTEXT"), None);
    for k in keypers {
        k.stop().await;
    }
    node.stop().await;
}

/// A ciphertext committed and not yet published (no keypers: it stays in flight until the
/// release timeout) is left out of `GET /v1/mempool`: the auction would refuse a bid naming
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mempool_pages_leave_out_ciphertexts_in_flight() {
    use veil_builder_api::api::{MempoolQuery, TxState};

    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 24).unwrap();
    let timing = SlotTiming { slot_ms: 1_000, bid_window_ms: 400, release_timeout_ms: 120_000 };
    let node = start_node_with(dir.path(), &committee, timing).await;
    let (_, http) = http_client(&node);
    let client = BuilderClient::new(http.clone());
    let data = DataClient::new(http);
    let submitter = submitter(&node);
    let s = client.schedule().await.unwrap();
    let meta = |fee: u128, payer: u8| TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(1),
        fee_payer: crate::payers::public(payer),
        max_fee: Amount(fee),
        gas_limit: 21_000,
        expiry_slot: Slot(s.current.slot.0 + 50),
        bundle: None,
    };
    // Each transaction is sent just after a bidding deadline, so that no fallback block
    // commits it before the page is read.
    let after_a_deadline = || {
        let client = client.clone();
        async move {
            let s = client.schedule().await.unwrap();
            let deadline = if s.current_open {
                s.current.bidding_deadline_ms
            } else {
                s.next.bidding_deadline_ms
            };
            sleep_until(deadline + 20).await;
        }
    };
    after_a_deadline().await;
    // A first transaction, so that the one watched does not sit at cursor 0 (a read from 0
    // asks for whatever is pending and reports nothing skipped).
    let first = encrypt(&committee.pks, &meta(20, 3), b"first").unwrap();
    submitter.submit(&first, &crate::payers::key_of(&first.ad().fee_payer)).await.unwrap();
    let ct = encrypt(&committee.pks, &meta(30, 1), b"in flight").unwrap();
    let id = submitter.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap();
    let listed = |page: &veil_builder_api::api::MempoolPage| page.txs.iter().any(|t| t.id == id);
    let page = client.mempool(&MempoolQuery::default()).await.unwrap();
    assert!(listed(&page), "pending and not committed: listed");
    let at = page.txs.iter().find(|t| t.id == id).unwrap().seq;
    assert!(at > 0);

    // Nobody bids: the slot's fallback block commits it; without keypers it is never
    // released, so it stays in the pool, in flight.
    eventually("the commitment", || {
        let data = data.clone();
        async move { data.tx_status(&id).await.ok().filter(|t| t.state == TxState::Committed) }
    })
    .await;
    let page = client.mempool(&MempoolQuery::default()).await.unwrap();
    assert!(!listed(&page), "in flight: left out");
    let from = MempoolQuery { cursor: Some(at), ..MempoolQuery::default() };
    let page = client.mempool(&from).await.unwrap();
    assert!(!listed(&page), "in flight: left out");
    assert!(page.skipped >= 1, "passed over from a cursor before it: counted as skipped");

    // A transaction admitted after it is still listed.
    after_a_deadline().await;
    let later = encrypt(&committee.pks, &meta(10, 2), b"later").unwrap();
    let later = submitter.submit(&later, &crate::payers::key_of(&later.ad().fee_payer)).await;
    let later = later.unwrap();
    let page = client.mempool(&MempoolQuery::default()).await.unwrap();
    assert!(page.txs.iter().any(|t| t.id == later));
    assert!(!listed(&page));
    node.stop().await;
}

/// Without keypers every slot is abandoned as undecryptable after the release timeout, and
/// the node returns its transactions to the pool, where the mempool stream does not offer
/// them again. The reference builder sets aside what a won slot committed, learns that the
/// slot was undecryptable, takes the transaction back and wins it again in a later slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_builder_bids_again_for_the_transactions_of_an_undecryptable_slot() {
    use veil_builder_api::api::{DataQuery, DeliveryState};

    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 31).unwrap();
    let timing = SlotTiming { slot_ms: 800, bid_window_ms: 500, release_timeout_ms: 800 };
    let node = start_node_with(dir.path(), &committee, timing).await;
    let (_, http) = http_client(&node);
    let client = BuilderClient::new(http.clone());
    let data = DataClient::new(http);
    let strategy =
        StrategyConfig::new(StrategyKind::FeeOrder, vec!["0".parse().unwrap()], 60).unwrap();
    let mut config = DriverConfig::new(builder_key(), strategy);
    config.at_ms = Some(100);
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel(64);
    let builder = ReferenceBuilder::spawn(client.clone(), config, Some(lines_tx));

    // One transaction, admitted just after a deadline so that the builder bids for it first.
    let s = client.schedule().await.unwrap();
    sleep_until(s.current.bidding_deadline_ms + 20).await;
    let meta = TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(0),
        fee_payer: crate::payers::public(9),
        max_fee: Amount(40),
        gas_limit: 21_000,
        expiry_slot: Slot(s.current.slot.0 + 50),
        bundle: None,
    };
    let ct = encrypt(&committee.pks, &meta, b"again").unwrap();
    let id = submitter(&node).submit(&ct, &crate::payers::key(9)).await.unwrap();

    // Two slots won, each committing it.
    let won = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut won = Vec::new();
        while won.len() < 2 {
            let line = lines.recv().await.expect("the builder runs");
            if !line.won.is_empty() {
                won.push(Slot(line.slot));
            }
        }
        won
    })
    .await
    .expect("the builder wins the transaction twice");
    for slot in &won {
        let outcome = client.outcome(*slot).await.unwrap();
        let block = &outcome.commitment.blocks[0];
        assert_eq!(block.winner, Some(public_key(&builder_key())));
        assert_eq!(block.ciphertexts, vec![id], "slot {slot}");
    }
    // The first was abandoned: nothing of it was published.
    let first = DataQuery { slot: Some(won[0].0), ..DataQuery::default() };
    let rows = data.blocks(&first).await.unwrap().blocks;
    assert!(rows.iter().all(|b| b.state == DeliveryState::Undecryptable), "{rows:?}");

    let stats = builder.stop().await;
    assert!(stats.pending.restored >= 1, "{stats:?}");
    node.stop().await;
}
