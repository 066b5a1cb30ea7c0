//! The rollup and collateral API against a real sequencer node on 127.0.0.1 (in-process
//! keypers over QUIC): deposits through the bridge (idempotent, conflicts, unknown bridge key,
//! bad signatures), collateral and withdrawals, a rollup registered and configured after
//! genesis over HTTP whose transactions the ingress then admits and whose blocks and payouts
//! are listed, the error codes each route declares, and a restart that keeps every accepted
//! change.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, RevenuePolicy, RollupBlock, RollupChange,
    RollupConfig, RollupUpdate, SignedRollupUpdate, WithdrawalRequest,
};
use veil_builder_api::api::registry::RollupListQuery;
use veil_builder_api::api::MAX_PAGE_LIMIT;
use veil_builder_api::http::{BuilderClient, HttpError, RollupClient};
use veil_builder_api::{encrypt, SdkError};
use veil_crypto::dev::DevCommittee;
use veil_crypto::PublicKeySet;
use veil_mempool::pool::PoolConfig;
use veil_node::sequencer_node::{SequencerNode, SlotTiming};
use veil_node::services::sequencer::now_ms;
use veil_primitives::{
    AccountKind, Amount, ChainId, DepositId, DepositNotice, Eon, ErrorCode, PublicKeyBytes,
    RollupId, SignatureBytes, SignedDepositNotice, Slot, TxMeta,
};
use veil_sequencer::slot::TxResult;

use super::http::{http_client, node_on, start_keypers, submitter};

const CHAIN: ChainId = ChainId(1);
const VEIL: &str = env!("CARGO_BIN_EXE_veil");

fn bridge() -> SigningKey {
    SigningKey::from_bytes(&[0xb7; 32])
}

fn builder() -> SigningKey {
    SigningKey::from_bytes(&[0xb1; 32])
}

fn admin() -> SigningKey {
    SigningKey::from_bytes(&[0xa5; 32])
}

fn genesis() -> Auction {
    let genesis_admin = SigningKey::from_bytes(&[0xad; 32]);
    let mut auction = Auction::new(AuctionConfig {
        chain_id: CHAIN,
        withdrawal_delay_slots: 1_000,
        ..AuctionConfig::default()
    });
    let config = RollupConfig {
        reserve: Amount(0),
        gas_limit: 30_000_000,
        policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&genesis_admin)).unwrap(),
        active: true,
    };
    auction.register_genesis_rollup(RollupId(0), public_key(&genesis_admin), config).unwrap();
    auction.set_bridge_key(Some(public_key(&bridge())));
    crate::payers::fund(&mut auction);
    auction
}

async fn start_node(dir: &std::path::Path, pks: &PublicKeySet) -> SequencerNode {
    let timing = SlotTiming { slot_ms: 800, bid_window_ms: 400, release_timeout_ms: 3000 };
    node_on(dir, pks, genesis(), timing, PoolConfig::new(CHAIN)).await
}

fn clients(node: &SequencerNode) -> (String, BuilderClient, RollupClient) {
    let (base, http) = http_client(node);
    (base, BuilderClient::new(http.clone()), RollupClient::new(http))
}

fn code(e: &HttpError) -> ErrorCode {
    e.code().unwrap_or_else(|| panic!("not a typed error: {e}"))
}

async fn sleep_until(ms: u64) {
    let now = now_ms();
    if ms > now {
        tokio::time::sleep(Duration::from_millis(ms - now)).await;
    }
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn notice(id: u8, account: PublicKeyBytes, amount: u128) -> DepositNotice {
    DepositNotice {
        chain_id: CHAIN,
        bridge: public_key(&bridge()),
        deposit_id: DepositId([id; 32]),
        kind: AccountKind::Builder,
        account,
        amount: Amount(amount),
    }
}

fn rollup_config(reserve: u128, gas_limit: u64) -> RollupConfig {
    RollupConfig {
        reserve: Amount(reserve),
        gas_limit,
        policy: RevenuePolicy::standard(7_000, 2_000, 1_000, public_key(&admin())).unwrap(),
        active: true,
    }
}

fn update(nonce: u64, effective: Slot, change: RollupChange) -> RollupUpdate {
    RollupUpdate { chain_id: CHAIN, rollup: RollupId(5), nonce, effective, change }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_and_collateral_over_http_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 23).unwrap();
    let pks = committee.pks.clone();
    let node = start_node(dir.path(), &pks).await;
    let running = start_keypers(dir.path(), committee, &node);
    let (base, builders, rollups) = clients(&node);
    let me = public_key(&builder());
    // A few slots in, so that an early effective slot is refused.
    eventually("slot 2", || async {
        builders.schedule().await.ok().filter(|s| s.current.slot.0 >= 2)
    })
    .await;

    // ----- Deposits through the bridge. -----
    assert_eq!(code(&builders.collateral(&me).await.unwrap_err()), ErrorCode::NotFound);
    let first = notice(1, me, 1_000_000).sign(&bridge());
    let credited = builders.deposit(&first).await.unwrap();
    assert_eq!((credited.account, credited.amount), (me, Amount(1_000_000)));
    // The same notice again: the same answer, not credited twice.
    assert_eq!(builders.deposit(&first).await.unwrap(), credited);
    let refusals: Vec<(SignedDepositNotice, ErrorCode)> = vec![
        (notice(1, me, 2_000_000).sign(&bridge()), ErrorCode::DepositConflict),
        (
            {
                let stranger = SigningKey::from_bytes(&[0x99; 32]);
                DepositNotice { bridge: public_key(&stranger), ..notice(2, me, 5) }.sign(&stranger)
            },
            ErrorCode::UnknownBridgeKey,
        ),
        (
            {
                let mut forged = notice(3, me, 5).sign(&bridge());
                forged.signature = SignatureBytes([7; 64]);
                forged
            },
            ErrorCode::BadSignature,
        ),
        (
            DepositNotice { chain_id: ChainId(2), ..notice(5, me, 5) }.sign(&bridge()),
            ErrorCode::WrongChain,
        ),
        (notice(6, me, 0).sign(&bridge()), ErrorCode::ZeroAmount),
        (notice(7, PublicKeyBytes([0; 32]), 5).sign(&bridge()), ErrorCode::InvalidPublicKey),
        (notice(8, me, Amount::MAX.0 + 1).sign(&bridge()), ErrorCode::AmountTooLarge),
    ];
    for (n, expected) in &refusals {
        let e = builders.deposit(n).await.unwrap_err();
        assert_eq!(code(&e), *expected, "{e}");
    }
    let account = builders.collateral(&me).await.unwrap();
    assert_eq!((account.balance, account.available), (Amount(1_000_000), Amount(1_000_000)));

    // ----- Withdrawals. -----
    let withdraw = |amount: u128, nonce: u64| {
        WithdrawalRequest { chain_id: CHAIN, builder: me, amount: Amount(amount), nonce }
            .sign(&builder())
    };
    let w = builders.withdraw(&withdraw(1_000, 1)).await.unwrap();
    assert_eq!((w.amount, w.nonce), (Amount(1_000), 1));
    assert_eq!(
        code(&builders.withdraw(&withdraw(1_000, 1)).await.unwrap_err()),
        ErrorCode::StaleNonce
    );
    assert_eq!(
        code(&builders.withdraw(&withdraw(999_001, 2)).await.unwrap_err()),
        ErrorCode::InsufficientCollateral
    );
    let mut forged = withdraw(5, 2);
    forged.signature = SignatureBytes([7; 64]);
    assert_eq!(code(&builders.withdraw(&forged).await.unwrap_err()), ErrorCode::BadSignature);
    let stranger = SigningKey::from_bytes(&[0x98; 32]);
    let unknown = WithdrawalRequest {
        chain_id: CHAIN,
        builder: public_key(&stranger),
        amount: Amount(1),
        nonce: 1,
    }
    .sign(&stranger);
    assert_eq!(code(&builders.withdraw(&unknown).await.unwrap_err()), ErrorCode::UnknownBuilder);
    let account = builders.collateral(&me).await.unwrap();
    assert_eq!(account.available, Amount(999_000));
    assert_eq!(account.withdraw_nonce, 1);
    assert_eq!(account.pending_withdrawals.len(), 1);
    assert_eq!(account.pending_withdrawals[0].release_slot, w.release_slot);

    // ----- A rollup registered after genesis. -----
    let schedule = builders.schedule().await.unwrap();
    let effective = Slot(schedule.current.slot.0 + 3);
    let register = update(
        1,
        effective,
        RollupChange::Register { admin: public_key(&admin()), config: rollup_config(4, 1_000_000) },
    );
    // Before it is registered the ingress refuses its transactions.
    let submitter = submitter(&node);
    let meta = TxMeta {
        chain_id: CHAIN,
        eon: Eon(1),
        rollup: RollupId(5),
        fee_payer: crate::payers::public(7),
        max_fee: Amount(10),
        gas_limit: 21_000,
        expiry_slot: Slot(schedule.current.slot.0 + 200),
        bundle: None,
    };
    let early = encrypt(&pks, &meta, b"too early").unwrap();
    match submitter.submit(&early, &crate::payers::key_of(&early.ad().fee_payer)).await {
        Err(SdkError::Rejected(r)) => assert_eq!(r.reject_code(), Some(ErrorCode::UnknownRollup)),
        other => panic!("expected UNKNOWN_ROLLUP, got {other:?}"),
    }
    let refused: Vec<(SignedRollupUpdate, ErrorCode)> = vec![
        (register.clone().sign(&stranger), ErrorCode::BadSignature),
        (
            update(1, Slot(0), register.change.clone()).sign(&admin()),
            ErrorCode::EffectiveSlotTooEarly,
        ),
        (
            RollupUpdate { chain_id: ChainId(2), ..register.clone() }.sign(&admin()),
            ErrorCode::WrongChain,
        ),
        (
            update(2, effective, RollupChange::Configure(rollup_config(1, 1))).sign(&admin()),
            ErrorCode::UnknownRollup,
        ),
        (
            update(
                1,
                effective,
                RollupChange::Register { admin: public_key(&admin()), config: rollup_config(4, 0) },
            )
            .sign(&admin()),
            ErrorCode::ZeroGasLimit,
        ),
        (
            update(
                1,
                effective,
                RollupChange::Register {
                    admin: public_key(&admin()),
                    config: rollup_config(Amount::MAX.0 + 1, 1_000_000),
                },
            )
            .sign(&admin()),
            ErrorCode::AmountTooLarge,
        ),
    ];
    for (u, expected) in &refused {
        let e = rollups.update(u).await.unwrap_err();
        assert_eq!(code(&e), *expected, "{e}");
    }
    let accepted = rollups.update(&register.clone().sign(&admin())).await.unwrap();
    assert_eq!((accepted.rollup, accepted.nonce, accepted.effective), (RollupId(5), 1, effective));
    assert_eq!(
        code(&rollups.update(&register.clone().sign(&admin())).await.unwrap_err()),
        ErrorCode::RollupExists
    );
    // A later configuration (nonce 2) raises the reserve from slot effective + 1000 on.
    let configure =
        update(2, Slot(effective.0 + 1_000), RollupChange::Configure(rollup_config(9, 1_000_000)));
    rollups.update(&configure.clone().sign(&admin())).await.unwrap();
    assert_eq!(
        code(&rollups.update(&configure.clone().sign(&admin())).await.unwrap_err()),
        ErrorCode::StaleNonce
    );
    let info = rollups.rollup(RollupId(5)).await.unwrap();
    assert_eq!((info.admin, info.last_nonce), (public_key(&admin()), 2));
    assert_eq!(info.scheduled.len(), 2, "registration and configuration both ahead");
    assert_eq!(code(&rollups.rollup(RollupId(99)).await.unwrap_err()), ErrorCode::NotFound);
    let all = rollups.rollups().await.unwrap();
    assert_eq!(all.rollups.iter().map(|r| r.rollup.0).collect::<Vec<_>>(), vec![0, 5]);
    // The listing pages like the data API: one rollup a page, then an empty last page.
    let mut query = RollupListQuery { cursor: None, limit: Some(1) };
    let mut listed = Vec::new();
    loop {
        let page = rollups.rollups_page(&query).await.unwrap();
        listed.extend(page.rollups.iter().map(|r| r.rollup.0));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(listed, vec![0, 5]);
    let over = RollupListQuery { cursor: None, limit: Some(MAX_PAGE_LIMIT + 1) };
    assert_eq!(code(&rollups.rollups_page(&over).await.unwrap_err()), ErrorCode::PageLimitExceeded);

    // The ingress admits its transactions now (the table is live); this one goes into a
    // fallback block once rollup 5's terms are in force.
    let fallback = encrypt(&pks, &meta, b"fallback for rollup five").unwrap();
    let fallback = submitter
        .submit(&fallback, &crate::payers::key_of(&fallback.ad().fee_payer))
        .await
        .unwrap();
    // Its terms reach the schedule when they take effect.
    let s = eventually("rollup 5 in the schedule", || async {
        let s = builders.schedule().await.ok()?;
        s.rollups.iter().any(|r| r.rollup == RollupId(5) && r.reserve == Amount(4)).then_some(s)
    })
    .await;
    // A transaction admitted after a deadline, which a builder bids for in the next slot.
    sleep_until(s.current.bidding_deadline_ms + 20).await;
    let ct = encrypt(&pks, &meta, b"hello, rollup five").unwrap();
    let tx = submitter.submit(&ct, &crate::payers::key_of(&ct.ad().fee_payer)).await.unwrap();
    let slot = s.next.slot;
    sleep_until(s.next.start_ms + 10).await;
    let bid = Bid {
        chain_id: CHAIN,
        slot,
        builder: me,
        sequence: 1,
        amount: Amount(40),
        blocks: vec![RollupBlock { rollup: RollupId(5), ciphertexts: vec![tx], plaintext: vec![] }],
    }
    .sign(&builder());
    builders.submit_bid(&bid).await.unwrap();
    let page = eventually("rollup 5's blocks", || async {
        let page = rollups.blocks(RollupId(5), None, None).await.ok()?;
        page.blocks.iter().any(|b| b.slot == slot).then_some(page)
    })
    .await;
    let all_txs: Vec<_> = page.blocks.iter().flat_map(|b| b.txs.iter().map(|t| t.id)).collect();
    assert!(all_txs.contains(&fallback), "the fallback block is listed too");
    assert!(page.blocks.windows(2).all(|w| w[0].slot < w[1].slot), "in slot order");
    let sold = page.blocks.iter().find(|b| b.slot == slot).unwrap();
    assert_eq!(sold.txs[0].id, tx);
    assert_eq!(sold.txs[0].result, TxResult::Included(b"hello, rollup five".to_vec()));
    assert!(page.next_from.is_none());
    let one = rollups.blocks(RollupId(5), None, Some(1)).await.unwrap();
    assert_eq!(one.blocks.len(), 1);
    assert_eq!(one.next_from, Some(one.blocks[0].slot.0 + 1));
    let payouts = eventually("rollup 5's settled payout", || async {
        let page = rollups.payouts(RollupId(5), Some(slot), Some(1)).await.ok()?;
        page.payouts.first().is_some_and(|p| p.settled).then_some(page)
    })
    .await;
    let p = &payouts.payouts[0];
    assert_eq!((p.slot, p.builder, p.share, p.reserve), (slot, me, Amount(40), Amount(4)));
    assert_eq!(p.buckets.iter().map(|b| b.amount.0).sum::<u128>(), 40);
    let outcome = builders.outcome(slot).await.unwrap();
    assert_eq!(p.outcome_hash, outcome.outcome_hash);
    assert_eq!(payouts.next_from, Some(slot.0 + 1), "a full page points on");
    let later = rollups.payouts(RollupId(5), payouts.next_from.map(Slot), Some(1)).await.unwrap();
    assert!(later.payouts.is_empty() && later.next_from.is_none());
    assert_eq!(
        code(&rollups.blocks(RollupId(5), None, Some(MAX_PAGE_LIMIT + 1)).await.unwrap_err()),
        ErrorCode::PageLimitExceeded
    );
    assert_eq!(
        code(&rollups.payouts(RollupId(99), None, None).await.unwrap_err()),
        ErrorCode::NotFound
    );
    let raw = reqwest::Client::new();
    for (path, status, name) in [
        ("/v1/rollups?cursor=first", 400, "MALFORMED_REQUEST"),
        ("/v1/rollups?limit=501", 400, "PAGE_LIMIT_EXCEEDED"),
        ("/v1/rollups/5/blocks?limit=0", 400, "MALFORMED_REQUEST"),
        ("/v1/rollups/5/blocks?colour=red", 400, "MALFORMED_REQUEST"),
        ("/v1/rollups/five", 400, "MALFORMED_REQUEST"),
        ("/v1/builders/0x12", 400, "MALFORMED_REQUEST"),
        ("/v1/users/0x12", 400, "MALFORMED_REQUEST"),
        ("/v1/users/nobody", 400, "MALFORMED_REQUEST"),
    ] {
        let r = raw.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["name"], name, "{path}: {body}");
    }
    let r = raw
        .post(format!("{base}/v1/builders/deposits"))
        .header("content-type", "application/json")
        .body("{\"message\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // The CLI, on the same SDK.
    let out = std::process::Command::new(VEIL)
        .args(["rollup", "show", "--url", &base, "--rollup", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("rollup 5") && text.contains("nonce 2"),
        "{text}"
    );
    let out = std::process::Command::new(VEIL)
        .args(["rollup", "show", "--url", &base, "--limit", "1", "--cursor", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("rollup 5 ") && text.contains("more: --cursor 5"),
        "{text}"
    );
    let out = std::process::Command::new(VEIL)
        .args(["builder", "collateral", "--url", &base, "--builder", &me.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["withdraw_nonce"], 1);

    // ----- Restart: every accepted change is back. -----
    let before_account = builders.collateral(&me).await.unwrap();
    let before_rollup = rollups.rollup(RollupId(5)).await.unwrap();
    for k in running {
        k.stop().await;
    }
    node.stop().await;
    let node = start_node(dir.path(), &pks).await;
    let (_, builders, rollups) = clients(&node);
    let after_account = builders.collateral(&me).await.unwrap();
    assert_eq!(after_account.balance, before_account.balance);
    assert_eq!(after_account.pending_withdrawals, before_account.pending_withdrawals);
    assert_eq!(after_account.withdraw_nonce, 1);
    let after_rollup = rollups.rollup(RollupId(5)).await.unwrap();
    assert_eq!((after_rollup.admin, after_rollup.last_nonce), (before_rollup.admin, 2));
    assert_eq!(after_rollup.scheduled, before_rollup.scheduled);
    assert_eq!(after_rollup.current, before_rollup.current);
    // Replays are refused as before the restart; the deposit gets the same answer.
    assert_eq!(
        code(&rollups.update(&configure.sign(&admin())).await.unwrap_err()),
        ErrorCode::StaleNonce
    );
    assert_eq!(
        code(&builders.withdraw(&withdraw(1_000, 1)).await.unwrap_err()),
        ErrorCode::StaleNonce
    );
    assert_eq!(builders.deposit(&first).await.unwrap(), credited);
    assert_eq!(builders.collateral(&me).await.unwrap().balance, before_account.balance);
    // The restored registry feeds the ingress: rollup 5's transactions are admitted.
    let again = encrypt(&pks, &meta, b"after the restart").unwrap();
    super::http::submitter(&node)
        .submit(&again, &crate::payers::key_of(&again.ad().fee_payer))
        .await
        .unwrap();
    node.stop().await;
}

/// `OVERFLOW` from a live node: a withdrawal's release slot is the slot in progress plus the
/// configured delay, which does not fit a slot number when the delay is the largest one. (The
/// other ways to it need a balance past `u128::MAX`, which takes more than 32,000 deposits of
/// the largest amount.) Nothing is reserved, and the builder's next request goes through once
/// it asks for no more than it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_whose_release_slot_overflows_is_refused_typed() {
    let dir = tempfile::tempdir().unwrap();
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 29).unwrap();
    let mut auction = Auction::new(AuctionConfig {
        chain_id: CHAIN,
        withdrawal_delay_slots: u64::MAX,
        ..AuctionConfig::default()
    });
    auction.set_bridge_key(Some(public_key(&bridge())));
    // No keypers: deposits and withdrawals need none.
    let timing = SlotTiming { slot_ms: 200, bid_window_ms: 100, release_timeout_ms: 3000 };
    let node = node_on(dir.path(), &committee.pks, auction, timing, PoolConfig::new(CHAIN)).await;
    let (_, builders, _) = clients(&node);
    let me = public_key(&builder());
    // Slot 1 at least: at slot 0 the release slot (0 + delay) still fits.
    eventually("slot 1", || async {
        builders.schedule().await.ok().filter(|s| s.current.slot.0 >= 1)
    })
    .await;
    builders.deposit(&notice(1, me, 1_000).sign(&bridge())).await.unwrap();
    let request = WithdrawalRequest { chain_id: CHAIN, builder: me, amount: Amount(10), nonce: 1 }
        .sign(&builder());
    assert_eq!(code(&builders.withdraw(&request).await.unwrap_err()), ErrorCode::Overflow);
    let account = builders.collateral(&me).await.unwrap();
    assert_eq!((account.available, account.withdraw_nonce), (Amount(1_000), 0));
    assert!(account.pending_withdrawals.is_empty());
    node.stop().await;
}
