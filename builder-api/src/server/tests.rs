//! The router against its document: every operation is driven to success and to every error
//! code it declares (through a scripted backend, or through real bad input for the codes the
//! routes produce themselves), and each answer's status must be one the document lists for
//! that operation; the document lists no other status.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use ed25519_dalek::SigningKey;
use tower::ServiceExt;
use veil_auction::{Bid, BidId, RollupBlock, SignedBid, VerifiedBid};
use veil_primitives::{Amount, ChainId, Eon, ErrorCode, PublicKeyBytes, RollupId, Slot, TxId};

use super::*;
use crate::api::records::samples;
use crate::api::registry::{
    self as reg, BuilderCollateral, DepositAccepted, RollupBlocksPage, RollupInfo, RollupList,
    RollupPayoutRecord, RollupPayoutsPage, RollupUpdateAccepted, WithdrawalAccepted,
};
use crate::api::{paths, BlockDelivered, DeliveryState, TxState, MAX_PAGE_LIMIT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail(ErrorCode),
    Sleep,
}

struct Scripted {
    mode: Mutex<Mode>,
    calls: std::sync::atomic::AtomicU32,
}

impl Scripted {
    fn new(mode: Mode) -> Scripted {
        Scripted { mode: Mutex::new(mode), calls: std::sync::atomic::AtomicU32::new(0) }
    }

    fn answer<T>(&self, ok: impl FnOnce() -> T) -> Result<T, ApiError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Ok => Ok(ok()),
            Mode::Fail(code) => Err(ApiError::new(code, "scripted")),
            Mode::Sleep => {
                std::thread::sleep(Duration::from_secs(1));
                Ok(ok())
            }
        }
    }
}

impl RegistryBackend for Scripted {
    fn rollup_update(
        &self,
        update: veil_auction::SignedRollupUpdate,
    ) -> Result<RollupUpdateAccepted, ApiError> {
        self.answer(|| RollupUpdateAccepted {
            rollup: update.message.rollup,
            nonce: update.message.nonce,
            effective: update.message.effective,
        })
    }

    fn rollups(&self, after: Option<RollupId>, limit: u32) -> Result<RollupList, ApiError> {
        // Rollups 0..10 registered.
        self.answer(|| {
            let first = after.map_or(0, |a| a.0 + 1);
            let rollups: Vec<RollupInfo> =
                (first..10).take(limit as usize).map(|r| rollup_info(RollupId(r))).collect();
            let next_cursor = (rollups.len() == limit as usize)
                .then(|| rollups.last().map(|r| r.rollup.0.to_string()))
                .flatten();
            RollupList { slot: Slot(3), rollups, next_cursor }
        })
    }

    fn rollup(&self, rollup: RollupId) -> Result<RollupInfo, ApiError> {
        self.answer(|| rollup_info(rollup))
    }

    fn rollup_blocks(
        &self,
        rollup: RollupId,
        _: Slot,
        _: u32,
    ) -> Result<RollupBlocksPage, ApiError> {
        self.answer(|| RollupBlocksPage {
            rollup,
            blocks: samples::published()
                .blocks
                .into_iter()
                .map(|b| reg::RollupBlock { slot: Slot(7), txs: b.txs })
                .collect(),
            next_from: Some(8),
        })
    }

    fn rollup_payouts(
        &self,
        rollup: RollupId,
        _: Slot,
        _: u32,
    ) -> Result<RollupPayoutsPage, ApiError> {
        self.answer(|| {
            let outcome = samples::outcome();
            let p = &outcome.payouts[0];
            RollupPayoutsPage {
                rollup,
                payouts: vec![RollupPayoutRecord {
                    slot: outcome.slot,
                    builder: p.builder,
                    reserve: p.reserve,
                    share: p.share,
                    buckets: p.buckets.clone(),
                    outcome_hash: veil_primitives::hexbytes::encode(&outcome.hash()),
                    settled: true,
                }],
                next_from: None,
            }
        })
    }

    fn builder_collateral(&self, builder: PublicKeyBytes) -> Result<BuilderCollateral, ApiError> {
        self.answer(|| BuilderCollateral {
            builder,
            balance: Amount(5),
            unsettled: Amount::ZERO,
            pending_withdrawals: vec![],
            available: Amount(5),
            withdraw_nonce: 0,
        })
    }

    fn fee_account(
        &self,
        payer: PublicKeyBytes,
    ) -> Result<crate::api::registry::FeeAccountInfo, ApiError> {
        self.answer(|| crate::api::registry::FeeAccountInfo {
            payer,
            balance: Amount(9),
            reserved: Amount(4),
            held: Amount(1),
            available: Amount(4),
            pending: 2,
        })
    }

    fn deposit(
        &self,
        notice: veil_primitives::SignedDepositNotice,
    ) -> Result<DepositAccepted, ApiError> {
        self.answer(|| DepositAccepted {
            deposit_id: notice.message.deposit_id,
            kind: notice.message.kind,
            account: notice.message.account,
            amount: notice.message.amount,
        })
    }

    fn withdraw(
        &self,
        request: veil_auction::SignedWithdrawal,
    ) -> Result<WithdrawalAccepted, ApiError> {
        self.answer(|| WithdrawalAccepted {
            builder: request.message.builder,
            amount: request.message.amount,
            nonce: request.message.nonce,
            release_slot: Slot(70),
        })
    }
}

impl ApiBackend for Scripted {
    fn schedule(&self) -> Result<SlotSchedule, ApiError> {
        self.answer(|| SlotSchedule {
            chain_id: ChainId(1),
            now_ms: 1,
            slot_ms: 1000,
            bid_window_ms: 500,
            current: crate::api::SlotTimes { slot: Slot(1), start_ms: 0, bidding_deadline_ms: 500 },
            current_open: true,
            next: crate::api::SlotTimes {
                slot: Slot(2),
                start_ms: 1000,
                bidding_deadline_ms: 1500,
            },
            eon: Eon(1),
            committee: serde_json::json!({}),
            rollups: vec![],
        })
    }

    fn submit_bids(
        &self,
        bids: Vec<VerifiedBid>,
    ) -> Result<Vec<Result<BidId, ApiError>>, ApiError> {
        self.answer(|| bids.iter().map(|_| Ok(BidId([1; 32]))).collect())
    }

    fn outcome(&self, slot: Slot) -> Result<SlotOutcome, ApiError> {
        self.answer(|| SlotOutcome {
            slot,
            commitment: samples::commitment(),
            outcome: samples::outcome(),
            outcome_hash: veil_primitives::hexbytes::encode(&samples::outcome().hash()),
            signed: Some(samples::signed_commitment()),
        })
    }

    fn blocks(&self, slot: Slot) -> Result<SlotBlocks, ApiError> {
        self.answer(|| SlotBlocks { slot, published: samples::published() })
    }

    fn bids_received(&self, _: &DataFilter, _: PageRequest) -> Result<BidsPage, ApiError> {
        self.answer(|| BidsPage { bids: vec![], next_cursor: None })
    }

    fn blocks_delivered(&self, _: &DataFilter, _: PageRequest) -> Result<BlocksPage, ApiError> {
        self.answer(|| BlocksPage {
            blocks: vec![BlockDelivered {
                slot: Slot(7),
                rollup: RollupId(0),
                builder: None,
                payment: Amount::ZERO,
                txs: 0,
                included: 0,
                failed: 0,
                dropped: 0,
                state: DeliveryState::Committed,
            }],
            next_cursor: Some("3".into()),
        })
    }

    fn tx_status(&self, tx: TxId) -> Result<TxStatus, ApiError> {
        self.answer(|| TxStatus {
            tx,
            state: TxState::Committed,
            slot: Some(Slot(7)),
            rollup: Some(RollupId(0)),
            position: Some(0),
            receipt: Some(samples::receipt()),
        })
    }

    fn mempool(&self, read: &MempoolRead) -> Result<MempoolPage, ApiError> {
        let cursor = read.cursor;
        self.answer(|| MempoolPage {
            txs: vec![crate::api::MempoolTx {
                seq: cursor,
                id: TxId([5; 32]),
                eon: Eon(1),
                rollup: RollupId(0),
                fee_payer: PublicKeyBytes([6; 32]),
                max_fee: Amount(10),
                gas_limit: 21_000,
                expiry_slot: Slot(9),
                bundle: None,
                size: 700,
                ciphertext: None,
            }],
            next_cursor: cursor + 1,
            skipped: 0,
            caught_up: true,
        })
    }

    fn top_bid(&self, slot: Option<Slot>) -> Result<crate::api::TopBid, ApiError> {
        self.answer(|| crate::api::TopBid { slot: slot.unwrap_or(Slot(1)), bids: 0, top: None })
    }

    fn mempool_watch(&self) -> Box<dyn MempoolWatch> {
        /// Nothing ever becomes durable.
        struct Never;
        impl MempoolWatch for Never {
            fn changed(
                &mut self,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>
            {
                Box::pin(std::future::pending())
            }
        }
        Box::new(Never)
    }

    fn readiness(&self) -> Readiness {
        let mode = *self.mode.lock().unwrap();
        if mode == Mode::Sleep {
            std::thread::sleep(Duration::from_secs(1));
        }
        Readiness {
            sequencer_running: !matches!(mode, Mode::Fail(_)),
            keypers_linked: 3,
            keypers_needed: 2,
        }
    }

    fn metrics(&self) -> String {
        if *self.mode.lock().unwrap() == Mode::Sleep {
            std::thread::sleep(Duration::from_secs(1));
        }
        "# EOF\n".into()
    }
}

/// A registered rollup with terms in force and terms scheduled.
fn rollup_info(rollup: RollupId) -> RollupInfo {
    RollupInfo {
        rollup,
        admin: PublicKeyBytes([1; 32]),
        last_nonce: 2,
        current: Some(samples::config(5)),
        scheduled: vec![samples::scheduled()],
    }
}

const BODY_LIMIT: usize = 4096;

fn app(mode: Mode) -> axum::Router {
    router(
        Arc::new(Scripted::new(mode)),
        ServerConfig {
            body_limit: BODY_LIMIT,
            max_batch: 2,
            request_timeout: Duration::from_millis(100),
            max_streams: 1,
            top_bid_visible: true,
            // One request per address and one bid per key: enough for every case but the
            // one that provokes `RATE_LIMITED` by asking twice.
            rate_limits: RateLimits {
                per_address: Some(RateLimit { per_second: 1, burst: 1 }),
                per_key: Some(RateLimit { per_second: 1, burst: 1 }),
            },
        },
    )
}

fn signed_bid() -> SignedBid {
    let key = SigningKey::from_bytes(&[4; 32]);
    Bid {
        chain_id: ChainId(1),
        slot: Slot(1),
        builder: PublicKeyBytes(key.verifying_key().to_bytes()),
        sequence: 1,
        amount: Amount(10),
        blocks: vec![RollupBlock {
            rollup: RollupId(0),
            ciphertexts: vec![TxId([2; 32])],
            plaintext: vec![],
        }],
    }
    .sign(&key)
}

/// The signed messages of the rollup and collateral routes.
fn registry_body(path: &str) -> Option<String> {
    use veil_auction::{public_key, RevenuePolicy, RollupChange, RollupConfig, RollupUpdate};
    let key = SigningKey::from_bytes(&[4; 32]);
    let json = match path {
        reg::paths::ROLLUP_UPDATES => serde_json::to_string(
            &RollupUpdate {
                chain_id: ChainId(1),
                rollup: RollupId(9),
                nonce: 1,
                effective: Slot(10),
                change: RollupChange::Configure(RollupConfig {
                    reserve: Amount(1),
                    gas_limit: 10,
                    policy: RevenuePolicy::standard(10_000, 0, 0, public_key(&key)).unwrap(),
                    active: true,
                }),
            }
            .sign(&key),
        ),
        reg::paths::DEPOSITS => serde_json::to_string(
            &veil_primitives::DepositNotice {
                chain_id: ChainId(1),
                bridge: public_key(&key),
                deposit_id: veil_primitives::DepositId([3; 32]),
                kind: veil_primitives::AccountKind::Builder,
                account: public_key(&key),
                amount: Amount(5),
            }
            .sign(&key),
        ),
        reg::paths::WITHDRAWALS => serde_json::to_string(
            &veil_auction::WithdrawalRequest {
                chain_id: ChainId(1),
                builder: public_key(&key),
                amount: Amount(5),
                nonce: 1,
            }
            .sign(&key),
        ),
        _ => return None,
    };
    Some(json.unwrap())
}

/// A well-formed request for an operation of the document.
fn request(path: &str, method: &str) -> (String, Method, Option<String>) {
    let path = path
        .replace("{slot}", "7")
        .replace("{rollup}", "7")
        .replace("{id}", &TxId([9; 32]).to_string())
        .replace("{key}", &PublicKeyBytes([4; 32]).to_string())
        .replace("{payer}", &PublicKeyBytes([5; 32]).to_string());
    let bid = serde_json::to_value(signed_bid()).unwrap();
    let body = match path.as_str() {
        paths::BIDS => Some(bid.to_string()),
        paths::BIDS_BATCH => Some(serde_json::json!({ "bids": [bid] }).to_string()),
        other => registry_body(other),
    };
    (path, method.to_uppercase().parse().unwrap(), body)
}

/// The same request, broken so that the route itself answers `code`.
fn provoke(
    path: &str,
    method: &Method,
    body: Option<String>,
    code: ErrorCode,
) -> (String, Option<String>) {
    match code {
        ErrorCode::MalformedRequest => {
            if body.is_some() {
                (path.to_string(), Some("{\"not\": a bid".into()))
            } else if path.contains("/slots/") {
                (path.replace("/7/", "/seven/"), None)
            } else if path.starts_with("/v1/tx/") {
                ("/v1/tx/0x1234".into(), None)
            } else if path == "/v1/rollups/7" {
                ("/v1/rollups/seven".into(), None)
            } else if path.starts_with("/v1/builders/") {
                ("/v1/builders/0x12".into(), None)
            } else if path.starts_with("/v1/users/") {
                ("/v1/users/0x12".into(), None)
            } else {
                (format!("{path}?limit=many"), None)
            }
        }
        ErrorCode::RequestTooLarge => {
            assert_eq!(method, Method::POST);
            if path == paths::BIDS_BATCH {
                let bid = serde_json::to_value(signed_bid()).unwrap();
                (path.into(), Some(serde_json::json!({ "bids": [bid, bid, bid] }).to_string()))
            } else {
                (path.into(), Some(format!("{{\"pad\": \"{}\"}}", "x".repeat(BODY_LIMIT))))
            }
        }
        ErrorCode::PageLimitExceeded if path == paths::MEMPOOL => {
            (format!("{path}?limit={}", crate::api::MAX_MEMPOOL_PAGE + 1), None)
        }
        ErrorCode::PageLimitExceeded => (format!("{path}?limit={}", MAX_PAGE_LIMIT + 1), None),
        _ => (path.to_string(), body),
    }
}

/// The client address of the requests (another one: [`OTHER`]).
const CLIENT: [u8; 4] = [127, 0, 0, 1];
const OTHER: [u8; 4] = [127, 0, 0, 2];

async fn open(
    app: axum::Router,
    from: [u8; 4],
    method: Method,
    path: &str,
    body: Option<String>,
) -> axum::response::Response {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let mut req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from((from, 9))));
    app.oneshot(req).await.unwrap()
}

/// The status and the body; of an event stream (which never ends), the first event.
async fn send(
    app: axum::Router,
    method: Method,
    path: &str,
    body: Option<String>,
) -> (u16, Vec<u8>) {
    use futures_util::StreamExt;
    let response = open(app, CLIENT, method, path, body).await;
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        let mut data = response.into_body().into_data_stream();
        let first = data.next().await.unwrap().unwrap();
        return (status, first.to_vec());
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, bytes.to_vec())
}

fn documented(doc: &OpenApi, path: &str, method: &str) -> BTreeSet<u16> {
    let (_, _, op) = operations(doc)
        .into_iter()
        .find(|(p, m, _)| p == path && *m == method)
        .unwrap_or_else(|| panic!("{method} {path} is not documented"));
    op.responses.responses.keys().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test]
async fn every_route_and_status_matches_the_document() {
    let doc = openapi();
    assert!(doc.openapi == utoipa::openapi::OpenApiVersion::Version31);
    let ops = operations(&doc);
    // The document's paths are exactly the client's constants.
    let documented_paths: BTreeSet<&str> = ops.iter().map(|(p, _, _)| p.as_str()).collect();
    let constants: BTreeSet<&str> = [
        paths::SCHEDULE,
        paths::BIDS,
        paths::BIDS_BATCH,
        paths::OUTCOME,
        paths::BLOCKS,
        paths::DATA_BIDS,
        paths::DATA_BLOCKS,
        paths::TX,
        paths::TOP_BID,
        paths::MEMPOOL,
        paths::MEMPOOL_STREAM,
        paths::HEALTH,
        paths::READY,
        paths::METRICS,
        paths::OPENAPI,
        reg::paths::ROLLUP_UPDATES,
        reg::paths::ROLLUPS,
        reg::paths::ROLLUP,
        reg::paths::ROLLUP_BLOCKS,
        reg::paths::ROLLUP_PAYOUTS,
        reg::paths::BUILDER,
        reg::paths::DEPOSITS,
        reg::paths::WITHDRAWALS,
        reg::paths::USER,
    ]
    .into();
    assert_eq!(documented_paths, constants);
    for (path, method, op) in &ops {
        let id = op.operation_id.clone().unwrap();
        let (real_path, m, body) = request(path, method);
        let mut produced = BTreeSet::new();
        // Success.
        let (status, bytes) = send(app(Mode::Ok), m.clone(), &real_path, body.clone()).await;
        assert_eq!(status, 200, "{method} {path}: {}", String::from_utf8_lossy(&bytes));
        produced.insert(status);
        // Every declared error.
        for &code in route_errors(&id) {
            let (p, b) = provoke(&real_path, &m, body.clone(), code);
            let mode = match code {
                ErrorCode::MalformedRequest
                | ErrorCode::RequestTooLarge
                | ErrorCode::PageLimitExceeded
                | ErrorCode::RateLimited
                | ErrorCode::ConnectionQuota => Mode::Ok,
                ErrorCode::DeadlineExceeded => Mode::Sleep,
                _ => Mode::Fail(code),
            };
            let app = app(mode);
            if code == ErrorCode::RateLimited {
                // The first request spends the address's one token.
                send(app.clone(), m.clone(), &p, b.clone()).await;
            }
            // A first stream, from another address, stays open and takes the server's one.
            let _held = if code == ErrorCode::ConnectionQuota {
                Some(open(app.clone(), OTHER, m.clone(), &p, b.clone()).await)
            } else {
                None
            };
            let (status, bytes) = send(app, m.clone(), &p, b).await;
            let err: crate::api::ApiErrorBody =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("{method} {p} for {code}: {e}: {}", String::from_utf8_lossy(&bytes))
                });
            assert_eq!(err.name, code.name(), "{method} {p}: {}", err.message);
            assert_eq!(err.code, code.as_u16());
            assert_eq!(status, http_status(code), "{method} {p} for {code}");
            produced.insert(status);
        }
        // The document lists exactly the statuses the route produced.
        assert_eq!(documented(&doc, path, method), produced, "{method} {path}");
    }
}

/// Bids are verified at the route: a bad signature never reaches the backend, and only bids
/// that verified spend their builder's rate limit, so a forger cannot spend another builder's
/// budget. Within a batch each bid gets its own verdict.
#[tokio::test]
async fn signatures_are_checked_before_the_per_key_limit() {
    let backend = Arc::new(Scripted::new(Mode::Ok));
    let app = router(
        backend.clone(),
        ServerConfig {
            rate_limits: RateLimits {
                per_address: None,
                per_key: Some(RateLimit { per_second: 1, burst: 2 }),
            },
            ..ServerConfig::default()
        },
    );
    let good = signed_bid();
    let mut forged = good.clone();
    forged.message.amount = Amount(11);
    let body = |bids: &[&SignedBid]| {
        serde_json::json!({ "bids": bids.iter().map(|b| serde_json::to_value(b).unwrap()).collect::<Vec<_>>() })
            .to_string()
    };
    // Ten forgeries in the builder's name: all BAD_SIGNATURE, none reaches the backend.
    let forgeries = vec![&forged; 10];
    let (status, bytes) =
        send(app.clone(), Method::POST, paths::BIDS_BATCH, Some(body(&forgeries))).await;
    assert_eq!(status, 200);
    let v: crate::api::BidVerdicts = serde_json::from_slice(&bytes).unwrap();
    assert!(v.verdicts.iter().all(|v| v.error.as_ref().unwrap().name == "BAD_SIGNATURE"));
    assert_eq!(backend.calls.load(std::sync::atomic::Ordering::Relaxed), 0);
    // The real builder still has its whole burst (2): three bids, the third limited.
    let mut third = good.clone();
    third.message.sequence = 3;
    let key = SigningKey::from_bytes(&[4; 32]);
    let third = third.message.sign(&key);
    let (status, bytes) =
        send(app.clone(), Method::POST, paths::BIDS_BATCH, Some(body(&[&good, &good, &third])))
            .await;
    assert_eq!(status, 200);
    let v: crate::api::BidVerdicts = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<_> =
        v.verdicts.iter().map(|v| v.error.as_ref().map_or("ok", |e| e.name.as_str())).collect();
    assert_eq!(names, ["ok", "ok", "RATE_LIMITED"]);
    // A single bid over the limit: 429 with Retry-After.
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(paths::BIDS)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_string(&good).unwrap()))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    let response = app.oneshot(req).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_typed() {
    let (status, bytes) = send(app(Mode::Ok), Method::GET, "/v1/nothing", None).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&bytes).contains("NOT_FOUND"));
    let (status, bytes) = send(app(Mode::Ok), Method::DELETE, paths::BIDS, None).await;
    assert_eq!(status, 405);
    assert!(String::from_utf8_lossy(&bytes).contains("METHOD_NOT_ALLOWED"));
    // A body without the JSON content type is malformed, never a plain-text rejection.
    let req = Request::builder()
        .method(Method::POST)
        .uri(paths::BIDS)
        .body(Body::from(serde_json::to_string(&signed_bid()).unwrap()))
        .unwrap();
    let response = app(Mode::Ok).oneshot(req).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn the_document_is_served() {
    let (status, bytes) = send(app(Mode::Ok), Method::GET, paths::OPENAPI, None).await;
    assert_eq!(status, 200);
    let served: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(served, serde_json::to_value(openapi()).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["components"]["schemas"]["SignedBidDoc"].is_object());
}

/// The SDK's clients against the real router on a socket: typed errors decoded, `GET`s
/// retried on a retryable code, a bid never resent, a non-retryable code answered at once.
#[tokio::test]
async fn clients_decode_errors_and_retry_only_gets() {
    use crate::http::{BuilderClient, DataClient, GetRetry, HttpClient};

    async fn serve(mode: Mode) -> (String, Arc<Scripted>) {
        let backend = Arc::new(Scripted::new(mode));
        let app = router(backend.clone(), ServerConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), backend)
    }
    let calls = |b: &Scripted| b.calls.load(std::sync::atomic::Ordering::Relaxed);
    let retry = GetRetry { attempts: 3, backoff: Duration::from_millis(1) };

    // A retryable code (503 NOT_READY): the GET is tried three times, then reported typed.
    let (url, backend) = serve(Mode::Fail(ErrorCode::NotReady)).await;
    let http = HttpClient::with(&url, Duration::from_secs(5), retry).unwrap();
    let e = BuilderClient::new(http.clone()).schedule().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotReady));
    assert_eq!(calls(&backend), 3);

    // A bid is never resent, even on a retryable code.
    let (url, backend) = serve(Mode::Fail(ErrorCode::ShuttingDown)).await;
    let http = HttpClient::with(&url, Duration::from_secs(5), retry).unwrap();
    let e = BuilderClient::new(http).submit_bid(&signed_bid()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ShuttingDown));
    assert_eq!(calls(&backend), 1);

    // A code that retrying cannot change is answered at once.
    let (url, backend) = serve(Mode::Fail(ErrorCode::NotFound)).await;
    let http = HttpClient::with(&url, Duration::from_secs(5), retry).unwrap();
    let e = DataClient::new(http).tx_status(&TxId([1; 32])).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert_eq!(calls(&backend), 1);

    // Success decodes the documented type.
    let (url, _) = serve(Mode::Ok).await;
    let http = HttpClient::with(&url, Duration::from_secs(5), retry).unwrap();
    let page = DataClient::new(http).blocks(&crate::api::DataQuery::default()).await.unwrap();
    assert_eq!(page.next_cursor.as_deref(), Some("3"));
    assert!(matches!(HttpClient::new("not a url"), Err(crate::http::HttpError::BadUrl(_))));
}

// ----- The document's schemas against real answers. -----

/// The schema `schema` points to (through a `$ref` into the document's components).
fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema.get("$ref").and_then(serde_json::Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} is not in the document");
            target
        }
        None => schema,
    }
}

/// The JSON types a schema allows (`type` as a string or a list).
fn types_of(schema: &serde_json::Value) -> BTreeSet<&str> {
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => [t.as_str()].into(),
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => BTreeSet::new(),
    }
}

/// Every place reachable from `schema` that says nothing of its instance's shape: a schema
/// without a type, an object without properties, an array without items.
fn free_forms(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    at: &str,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<String>,
) {
    if let Some(r) = schema.get("$ref").and_then(serde_json::Value::as_str) {
        if seen.insert(r.to_string()) {
            free_forms(doc, resolve(doc, schema), &format!("{at}<{r}>"), seen, out);
        }
        return;
    }
    let mut shaped = schema.get("enum").is_some() || schema.get("const").is_some();
    for key in ["oneOf", "anyOf", "allOf"] {
        for (i, s) in schema.get(key).and_then(|l| l.as_array()).into_iter().flatten().enumerate() {
            shaped = true;
            free_forms(doc, s, &format!("{at}/{key}[{i}]"), seen, out);
        }
    }
    let types = types_of(schema);
    if types.is_empty() && !shaped {
        out.push(format!("{at}: any value"));
    }
    if types.contains("object") {
        match schema.get("properties").and_then(|p| p.as_object()) {
            Some(props) => {
                for (k, s) in props {
                    free_forms(doc, s, &format!("{at}.{k}"), seen, out);
                }
            }
            None => out.push(format!("{at}: a free-form object")),
        }
    }
    if types.contains("array") {
        match schema.get("items") {
            Some(s) => free_forms(doc, s, &format!("{at}[]"), seen, out),
            None => out.push(format!("{at}: an array of anything")),
        }
    }
}

/// Checks `v` against `schema` (the subset of JSON Schema the document uses), strictly: an
/// object may hold only the properties its schema lists (the API's types refuse unknown
/// fields too).
fn validate(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    let schema = resolve(doc, schema);
    for s in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        validate(doc, s, v, at)?;
    }
    if let Some(list) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = list.iter().filter(|s| validate(doc, s, v, at).is_ok()).count();
        if matching != 1 {
            return Err(format!("{at}: {matching} branches of oneOf match {v}"));
        }
    }
    if let Some(list) = schema.get("anyOf").and_then(Value::as_array) {
        if !list.iter().any(|s| validate(doc, s, v, at).is_ok()) {
            return Err(format!("{at}: no branch of anyOf matches {v}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(v) {
            return Err(format!("{at}: {v} is not one of {values:?}"));
        }
    }
    let types = types_of(schema);
    let is = |t: &str| match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("type {other}"),
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        return Err(format!("{at}: {v} is not of type {types:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            return Err(format!("{at}: {v} is below the minimum {min}"));
        }
    }
    match v {
        Value::Object(fields) => {
            for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !fields.contains_key(r) {
                    return Err(format!("{at}: the required {r} is missing"));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, x) in fields {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => validate(doc, s, x, &format!("{at}.{k}"))?,
                    None if types.contains("object") => {
                        return Err(format!("{at}.{k}: not a property of the schema"));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    validate(doc, s, x, &format!("{at}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The responses that carry the sequencer's records (outcome record, signed commitment,
/// published blocks, rollup terms, receipts) have typed schemas all the way down, and real
/// answers through the router, with every variant of every record type, match them. The
/// only free-form places left in the whole document are the committee key set of the
/// schedule (`veil_crypto::PublicKeySet` JSON) and the document itself.
#[tokio::test]
async fn record_responses_are_typed_and_real_answers_match_their_schemas() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let schema_of = |path: &str| {
        doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    };
    let tx = TxId([9; 32]).to_string();
    for (path, real) in [
        (paths::OUTCOME, "/v1/slots/7/outcome".to_string()),
        (paths::BLOCKS, "/v1/slots/7/blocks".into()),
        (paths::DATA_BLOCKS, paths::DATA_BLOCKS.into()),
        (paths::TX, format!("/v1/tx/{tx}")),
        (reg::paths::ROLLUPS, reg::paths::ROLLUPS.into()),
        (reg::paths::ROLLUP, "/v1/rollups/7".into()),
        (reg::paths::ROLLUP_BLOCKS, "/v1/rollups/7/blocks".into()),
        (reg::paths::ROLLUP_PAYOUTS, "/v1/rollups/7/payouts".into()),
    ] {
        let schema = schema_of(path);
        assert!(schema.is_object(), "{path} has no JSON schema");
        let mut loose = Vec::new();
        free_forms(&doc, &schema, path, &mut BTreeSet::new(), &mut loose);
        assert!(loose.is_empty(), "{path}: {loose:#?}");
        let (status, bytes) = send(app(Mode::Ok), Method::GET, &real, None).await;
        assert_eq!(status, 200, "{real}");
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        validate(&doc, &schema, &body, path).unwrap_or_else(|e| panic!("{e}\n{body:#}"));
    }

    // The checks are not vacuous: an unknown field, a missing required one or a wrong type
    // fails.
    let schema = schema_of(paths::OUTCOME);
    let (_, bytes) = send(app(Mode::Ok), Method::GET, "/v1/slots/7/outcome", None).await;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut extra = body.clone();
    extra["outcome"]["winners"][0]["bonus"] = 1.into();
    let mut missing = body.clone();
    missing["commitment"].as_object_mut().unwrap().remove("eon");
    let mut wrong = body.clone();
    wrong["signed"]["message"]["blocks"][0]["payment"] = 20.into();
    let mut bad_variant = body;
    bad_variant["outcome"]["ledger"][0]["kind"] = "gift".into();
    for broken in [extra, missing, wrong, bad_variant] {
        assert!(validate(&doc, &schema, &broken, "outcome").is_err(), "{broken:#}");
    }

    // The whole document: every free-form place is one of the two known ones.
    let mut loose = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, method, _) in operations(&openapi()) {
        let op = &doc["paths"][&path][method];
        for (status, response) in op["responses"].as_object().unwrap() {
            for (kind, content) in response["content"].as_object().into_iter().flatten() {
                let at = format!("{method} {path} {status} {kind}");
                free_forms(&doc, &content["schema"], &at, &mut seen, &mut loose);
            }
        }
        if let Some(body) = op["requestBody"]["content"]["application/json"].get("schema") {
            free_forms(&doc, body, &format!("{method} {path} body"), &mut seen, &mut loose);
        }
    }
    assert!(
        loose.iter().all(|l| l.ends_with(".committee: a free-form object")
            || l.starts_with("get /openapi.json 200")),
        "{loose:#?}"
    );
}

/// `GET /v1/rollups` pages like the data API: a cursor from the previous page, a page size up
/// to the maximum (`PAGE_LIMIT_EXCEEDED` above it), no cursor on the last page; the SDK's
/// `rollups` reads every page.
#[tokio::test]
async fn the_rollup_listing_is_paginated() {
    use crate::api::registry::RollupListQuery;
    use crate::http::{GetRetry, HttpClient, RollupClient};

    let app = router(Arc::new(Scripted::new(Mode::Ok)), ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = HttpClient::with(
        &format!("http://{addr}"),
        Duration::from_secs(5),
        GetRetry { attempts: 1, ..GetRetry::default() },
    )
    .unwrap();
    let client = RollupClient::new(http);
    // Ten rollups (0..10) in pages of four: 4, 4, 2.
    let mut query = RollupListQuery { cursor: None, limit: Some(4) };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.rollups_page(&query).await.unwrap();
        pages += 1;
        seen.extend(page.rollups.iter().map(|r| r.rollup.0));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(pages, 3);
    let all = client.rollups().await.unwrap();
    assert_eq!(all.rollups.len(), 10);
    assert!(all.next_cursor.is_none());
    let over = RollupListQuery { cursor: None, limit: Some(crate::api::MAX_PAGE_LIMIT + 1) };
    let e = client.rollups_page(&over).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PageLimitExceeded));
    for bad in [
        RollupListQuery { cursor: Some("yesterday".into()), limit: None },
        RollupListQuery { cursor: None, limit: Some(0) },
    ] {
        let e = client.rollups_page(&bad).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::MalformedRequest), "{bad:?}");
    }
}
