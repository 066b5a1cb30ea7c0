//! The routes: parse, call the backend on the blocking pool, shape the answer. Each route's
//! error codes are declared in [`route_errors`].

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_auction::config::DEFAULT_SIGNATURE_BATCH_SIZE;
use veil_auction::{SignedBid, VerifiedBid};
use veil_primitives::{ErrorCode, RollupId, Slot, TxId};

use super::stream::{mempool_events, StreamSlot};
use super::{ApiBackend, AppState, DataFilter, MempoolRead, PageRequest};
use crate::api::{
    ApiError, BidAccepted, BidBatch, BidVerdict, BidVerdicts, BidsPage, BlocksPage, DataQuery,
    MempoolPage, MempoolQuery, MempoolTx, Readiness, SignedBidDoc, SlotBlocks, SlotOutcome,
    SlotSchedule, TopBid, TopBidQuery, TxStatus, DEFAULT_MEMPOOL_PAGE, DEFAULT_PAGE_LIMIT,
    MAX_MEMPOOL_PAGE, MAX_PAGE_LIMIT,
};

use ErrorCode as C;

/// The codes a bid can be refused with (the auction's checks, the intake's state), then
/// `$extra`: one list for the single bid's route and the batch's verdicts.
macro_rules! bid_refusals {
    ($($extra:ident),*) => {
        &[
            C::WrongChain,
            C::SlotNotOpen,
            C::SlotClosed,
            C::UnknownBuilder,
            C::InvalidPublicKey,
            C::BadSignature,
            C::InsufficientCollateral,
            C::EmptyRollupSet,
            C::RollupSetNotCanonical,
            C::BidTooLarge,
            C::UnknownRollup,
            C::InactiveRollup,
            C::BelowReserve,
            C::AmountTooLarge,
            C::UnknownCiphertext,
            C::ExpiredCiphertext,
            C::CiphertextRollupMismatch,
            C::DuplicateCiphertext,
            C::GasLimitExceeded,
            C::PartialBundle,
            C::InconsistentBundle,
            C::StaleSequence,
            C::TooManyBids,
            C::StorageUnavailable,
            C::RateLimited,
            $(C::$extra,)*
        ]
    };
}

/// The codes a bid can be refused with: the auction's checks, the intake's state.
const BID_REFUSALS: &[ErrorCode] = bid_refusals!();

/// The error codes each route (by operation id) can answer with; the document lists one
/// response per status of these codes.
#[must_use]
pub fn route_errors(operation: &str) -> &'static [ErrorCode] {
    match operation {
        "schedule" => &[C::NotReady, C::DeadlineExceeded, C::RateLimited],
        "submit_bid" => {
            bid_refusals!(MalformedRequest, RequestTooLarge, ShuttingDown, DeadlineExceeded)
        }
        "submit_bids" => &[
            C::MalformedRequest,
            C::RequestTooLarge,
            C::ShuttingDown,
            C::StorageUnavailable,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "outcome" | "blocks" | "tx_status" => &[
            C::MalformedRequest,
            C::NotFound,
            C::StorageUnavailable,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "data_bids" | "data_blocks" => &[
            C::MalformedRequest,
            C::PageLimitExceeded,
            C::StorageUnavailable,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "mempool" => &[
            C::MalformedRequest,
            C::PageLimitExceeded,
            C::NotReady,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "mempool_stream" => &[C::MalformedRequest, C::ConnectionQuota, C::RateLimited],
        "top_bid" => {
            &[C::MalformedRequest, C::BidsSealed, C::NotFound, C::DeadlineExceeded, C::RateLimited]
        }
        "ready" => &[C::NotReady, C::DeadlineExceeded],
        "metrics" => &[C::DeadlineExceeded],
        // The document answers from memory, but its route is rate-limited per address.
        "openapi_json" => &[C::RateLimited],
        // `health` answers from memory, never limited; the registry's routes declare theirs.
        other => super::registry::route_errors(other),
    }
}

pub(super) fn register(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let router = super::registry::register(router);
    router
        .routes(routes!(schedule))
        .routes(routes!(submit_bid))
        .routes(routes!(submit_bids))
        .routes(routes!(outcome))
        .routes(routes!(blocks))
        .routes(routes!(data_bids))
        .routes(routes!(data_blocks))
        .routes(routes!(tx_status))
        .routes(routes!(top_bid))
        .routes(routes!(mempool))
        .routes(routes!(mempool_stream))
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// Runs a backend call on the blocking pool. An error the route does not declare is logged
/// (the document would not list its status).
pub(super) async fn call<T: Send + 'static>(
    state: &AppState,
    operation: &'static str,
    f: impl FnOnce(&dyn ApiBackend) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = state.backend.clone();
    let result = tokio::task::spawn_blocking(move || f(&*backend)).await.unwrap_or_else(|e| {
        Err(ApiError::new(C::StorageUnavailable, format!("backend failed: {e}")))
    });
    if let Err(e) = &result {
        if !route_errors(operation).contains(&e.code) {
            tracing::error!(operation, code = %e.code, "the backend answered an undeclared error code");
        }
    }
    result
}

pub(super) fn json_error(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(C::RequestTooLarge, "the request body is over the size limit")
    } else {
        ApiError::new(C::MalformedRequest, r.body_text())
    }
}

pub(super) fn path_error(r: PathRejection) -> ApiError {
    ApiError::new(C::MalformedRequest, r.body_text())
}

fn parse_slot(slot: Result<Path<u64>, PathRejection>) -> Result<Slot, ApiError> {
    slot.map(|Path(s)| Slot(s)).map_err(path_error)
}

fn parse_query(
    query: Result<Query<DataQuery>, QueryRejection>,
) -> Result<(DataFilter, PageRequest), ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(C::MalformedRequest, r.body_text()))?;
    let builder = q
        .builder
        .map(|b| b.parse())
        .transpose()
        .map_err(|e| ApiError::new(C::MalformedRequest, format!("builder: {e}")))?;
    let before = q
        .cursor
        .map(|c| c.parse::<u64>())
        .transpose()
        .map_err(|_| ApiError::new(C::MalformedRequest, "cursor: not a cursor of this API"))?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit == 0 {
        return Err(ApiError::new(C::MalformedRequest, "limit must be at least 1"));
    }
    if limit > MAX_PAGE_LIMIT {
        return Err(ApiError::new(
            C::PageLimitExceeded,
            format!("limit {limit} is over the maximum page size {MAX_PAGE_LIMIT}"),
        ));
    }
    Ok((
        DataFilter { slot: q.slot.map(Slot), builder, rollup: q.rollup.map(RollupId) },
        PageRequest { before, limit },
    ))
}

/// The slot schedule: the current and next slots with their bidding deadlines, the slot
/// length, every rollup's reserve and gas limit, the eon and its committee key.
#[utoipa::path(get, path = "/v1/builder/schedule", tag = "builder",
    responses((status = 200, description = "The schedule now", body = SlotSchedule)))]
async fn schedule(State(s): State<AppState>) -> Result<Json<SlotSchedule>, ApiError> {
    call(&s, "schedule", |b| b.schedule()).await.map(Json)
}

/// Submits one signed bid. It goes through the sequencer's intake like every bid and is
/// checked exactly as in-process bids are (signature, slot and deadline, collateral, rollups
/// and reserves, ciphertexts, gas, bundles, sequence number).
#[utoipa::path(post, path = "/v1/builder/bids", tag = "builder",
    request_body = SignedBidDoc,
    responses((status = 200, description = "Accepted", body = BidAccepted)))]
async fn submit_bid(
    State(s): State<AppState>,
    body: Result<Json<SignedBid>, JsonRejection>,
) -> Result<Json<BidAccepted>, ApiError> {
    let Json(bid) = body.map_err(json_error)?;
    let mut bids = verify(&s, vec![bid]).await;
    let bid = bids.pop().unwrap_or_else(|| Err(ApiError::new(C::ShuttingDown, "no verdict")))?;
    let mut verdicts = call(&s, "submit_bid", move |b| b.submit_bids(vec![bid])).await?;
    match verdicts.pop() {
        Some(Ok(bid_id)) => Ok(Json(BidAccepted { bid_id })),
        Some(Err(e)) => {
            if !BID_REFUSALS.contains(&e.code) {
                tracing::error!(code = %e.code, "a bid refused with an undeclared code");
            }
            Err(e)
        }
        None => Err(ApiError::new(C::ShuttingDown, "no verdict")),
    }
}

/// Submits a batch of signed bids, each checked on its own as `POST /v1/builder/bids` checks
/// it; the answer has one verdict per bid, in order (a refused bid leaves the others
/// untouched).
#[utoipa::path(post, path = "/v1/builder/bids/batch", tag = "builder",
    request_body = BidBatch,
    responses((status = 200, description = "One verdict per bid", body = BidVerdicts)))]
async fn submit_bids(
    State(s): State<AppState>,
    body: Result<Json<BidBatch>, JsonRejection>,
) -> Result<Json<BidVerdicts>, ApiError> {
    let Json(batch) = body.map_err(json_error)?;
    if batch.bids.len() > s.config.max_batch {
        return Err(ApiError::new(
            C::RequestTooLarge,
            format!("{} bids; at most {} per batch", batch.bids.len(), s.config.max_batch),
        ));
    }
    let ids: Vec<_> = batch.bids.iter().map(bid_id).collect();
    let checked = verify(&s, batch.bids).await;
    // Refused before the intake: a bad signature or key, or the builder's rate limit.
    let mut early: Vec<Option<ApiError>> = Vec::with_capacity(checked.len());
    let mut passed = Vec::with_capacity(checked.len());
    for c in checked {
        match c {
            Ok(bid) => {
                early.push(None);
                passed.push(bid);
            }
            Err(e) => early.push(Some(e)),
        }
    }
    let expected = passed.len();
    let verdicts = if passed.is_empty() {
        Vec::new()
    } else {
        call(&s, "submit_bids", move |b| b.submit_bids(passed)).await?
    };
    if verdicts.len() != expected {
        return Err(ApiError::new(C::ShuttingDown, "the intake stopped mid-batch"));
    }
    let mut verdicts = verdicts.into_iter();
    Ok(Json(BidVerdicts {
        verdicts: ids
            .into_iter()
            .zip(early)
            .map(|(bid_id, refused)| {
                let v = match refused {
                    Some(e) => Err(e),
                    None => verdicts.next().unwrap_or_else(|| {
                        Err(ApiError::new(C::ShuttingDown, "the intake stopped mid-batch"))
                    }),
                };
                match v {
                    Ok(bid_id) => BidVerdict { bid_id, accepted: true, error: None },
                    Err(e) => BidVerdict { bid_id, accepted: false, error: Some(e.body()) },
                }
            })
            .collect(),
    }))
}

/// Verifies the bids' signatures on the blocking pool (batched), then charges each builder's
/// rate limit for its bids that verified, in order: one verdict per bid.
async fn verify(s: &AppState, bids: Vec<SignedBid>) -> Vec<Result<VerifiedBid, ApiError>> {
    let n = bids.len();
    let verified = match tokio::task::spawn_blocking(move || {
        VerifiedBid::verify_many(bids, DEFAULT_SIGNATURE_BATCH_SIZE)
    })
    .await
    {
        Ok(v) => v,
        Err(e) => {
            let e = ApiError::new(C::ShuttingDown, format!("the signature check stopped: {e}"));
            return vec![Err(e); n];
        }
    };
    verified
        .into_iter()
        .map(|v| {
            let bid = v.map_err(|e| ApiError::new(e.code(), e.to_string()))?;
            s.limits.check_key(&bid.bid().message.builder, 1)?;
            Ok(bid)
        })
        .collect()
}

fn bid_id(bid: &SignedBid) -> veil_auction::BidId {
    use veil_primitives::signed::SignedMessage;
    veil_auction::BidId(veil_primitives::encoding::sha3_256(&bid.message.signing_bytes()))
}

/// A decided slot: its commitment, the auction outcome it commits to (enough to recompute
/// winners, payments and payouts), and the signed commitment once final.
#[utoipa::path(get, path = "/v1/slots/{slot}/outcome", tag = "builder",
    params(("slot" = u64, Path, description = "The slot")),
    responses((status = 200, description = "The decided slot", body = SlotOutcome)))]
async fn outcome(
    State(s): State<AppState>,
    slot: Result<Path<u64>, PathRejection>,
) -> Result<Json<SlotOutcome>, ApiError> {
    let slot = parse_slot(slot)?;
    call(&s, "outcome", move |b| b.outcome(slot)).await.map(Json)
}

/// A slot's published plaintext blocks, in committed order.
#[utoipa::path(get, path = "/v1/slots/{slot}/blocks", tag = "builder",
    params(("slot" = u64, Path, description = "The slot")),
    responses((status = 200, description = "The published blocks", body = SlotBlocks)))]
async fn blocks(
    State(s): State<AppState>,
    slot: Result<Path<u64>, PathRejection>,
) -> Result<Json<SlotBlocks>, ApiError> {
    let slot = parse_slot(slot)?;
    call(&s, "blocks", move |b| b.blocks(slot)).await.map(Json)
}

/// Bids received (accepted by the sequencer), newest first, filterable by slot, builder and
/// rollup. Bids are sealed: a slot's bids are listed only once its bidding deadline passed.
#[utoipa::path(get, path = "/v1/data/bids", tag = "data", params(DataQuery),
    responses((status = 200, description = "A page of bids", body = BidsPage)))]
async fn data_bids(
    State(s): State<AppState>,
    query: Result<Query<DataQuery>, QueryRejection>,
) -> Result<Json<BidsPage>, ApiError> {
    let (filter, page) = parse_query(query)?;
    call(&s, "data_bids", move |b| b.bids_received(&filter, page)).await.map(Json)
}

/// Blocks delivered (one per committed rollup block), newest first, filterable by slot,
/// builder (the winner) and rollup.
#[utoipa::path(get, path = "/v1/data/blocks", tag = "data", params(DataQuery),
    responses((status = 200, description = "A page of blocks", body = BlocksPage)))]
async fn data_blocks(
    State(s): State<AppState>,
    query: Result<Query<DataQuery>, QueryRejection>,
) -> Result<Json<BlocksPage>, ApiError> {
    let (filter, page) = parse_query(query)?;
    call(&s, "data_blocks", move |b| b.blocks_delivered(&filter, page)).await.map(Json)
}

/// A transaction's status: pending, committed (with its signed receipt), included, failed or
/// dropped (with slot and position). Expired, evicted and unknown transactions are not yet
/// told apart: all are `NOT_FOUND`.
#[utoipa::path(get, path = "/v1/tx/{id}", tag = "user",
    params(("id" = String, Path, description = "The transaction id (0x hex)")),
    responses((status = 200, description = "Its status", body = TxStatus)))]
async fn tx_status(
    State(s): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TxStatus>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let tx: TxId =
        id.parse().map_err(|e| ApiError::new(C::MalformedRequest, format!("id: {e}")))?;
    call(&s, "tx_status", move |b| b.tx_status(tx)).await.map(Json)
}

/// The current top bid of an open slot: its amount, builder and rollups, and how many bids the
/// slot's book holds. Only where the node's configuration shows it (`top_bid_visible`); bids
/// are sealed by default (`BIDS_SEALED`).
#[utoipa::path(get, path = "/v1/builder/top_bid", tag = "builder", params(TopBidQuery),
    responses((status = 200, description = "The slot's top bid so far", body = TopBid)))]
async fn top_bid(
    State(s): State<AppState>,
    query: Result<Query<TopBidQuery>, QueryRejection>,
) -> Result<Json<TopBid>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(C::MalformedRequest, r.body_text()))?;
    if !s.config.top_bid_visible {
        return Err(ApiError::new(C::BidsSealed, "this node keeps bids sealed until the close"));
    }
    let slot = q.slot.map(Slot);
    call(&s, "top_bid", move |b| b.top_bid(slot)).await.map(Json)
}

/// `stream`: `None` for a page; for a stream, `Some` with its `Last-Event-ID` header if any.
fn parse_mempool(
    query: Result<Query<MempoolQuery>, QueryRejection>,
    stream: Option<Option<&axum::http::HeaderValue>>,
) -> Result<MempoolRead, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(C::MalformedRequest, r.body_text()))?;
    // A stream reads its own pages: its `limit` is ignored.
    let limit = if stream.is_some() { None } else { q.limit };
    let limit = limit.unwrap_or(DEFAULT_MEMPOOL_PAGE);
    if limit == 0 {
        return Err(ApiError::new(C::MalformedRequest, "limit must be at least 1"));
    }
    if limit > MAX_MEMPOOL_PAGE {
        return Err(ApiError::new(
            C::PageLimitExceeded,
            format!("limit {limit} is over the maximum mempool page {MAX_MEMPOOL_PAGE}"),
        ));
    }
    let cursor = match stream.flatten() {
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(C::MalformedRequest, "Last-Event-ID: not an event id of this stream")
        })?,
        None => q.cursor.unwrap_or(0),
    };
    Ok(MempoolRead {
        cursor,
        rollup: q.rollup.map(RollupId),
        limit,
        bodies: q.bodies.unwrap_or(false),
    })
}

/// The encrypted mempool: pending transactions after `cursor`, oldest first, with their
/// public metadata (and their bytes with `bodies=true`). Page on with `next_cursor`; start a
/// stream there to follow what comes next.
#[utoipa::path(get, path = "/v1/mempool", tag = "mempool", params(MempoolQuery),
    responses((status = 200, description = "A page of pending transactions", body = MempoolPage)))]
async fn mempool(
    State(s): State<AppState>,
    query: Result<Query<MempoolQuery>, QueryRejection>,
) -> Result<Json<MempoolPage>, ApiError> {
    let read = parse_mempool(query, None)?;
    call(&s, "mempool", move |b| b.mempool(&read)).await.map(Json)
}

/// The encrypted mempool as server-sent events, from `cursor` (or the `Last-Event-ID` a
/// reconnecting client sends) on: event `tx` per transaction (a `MempoolTx`, its id the cursor
/// after it), `skipped` (`{"skipped": n}`) when transactions left the pool before this
/// subscriber read them, `error` before the stream ends on an error. `limit` does not apply.
/// For the highest rates, follow the QUIC feed instead.
#[utoipa::path(get, path = "/v1/mempool/stream", tag = "mempool", params(MempoolQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "A text/event-stream of `tx` events", body = MempoolTx,
        content_type = "text/event-stream")))]
async fn mempool_stream(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    query: Result<Query<MempoolQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let read = parse_mempool(query, Some(headers.get("last-event-id")))?;
    let slot = StreamSlot::take(&s.streams, s.config.max_streams).ok_or_else(|| {
        ApiError::new(
            C::ConnectionQuota,
            format!(
                "{} mempool streams are open, the most this server serves",
                s.config.max_streams
            ),
        )
    })?;
    let events = mempool_events(s.backend.clone(), read, slot);
    Ok(axum::response::sse::Sse::new(events).keep_alive(axum::response::sse::KeepAlive::default()))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
async fn health() -> &'static str {
    "ok\n"
}

/// Readiness: the sequencer thread runs and enough keypers are linked to decrypt.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness)))]
async fn ready(State(s): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let r = call(&s, "ready", |b| Ok(b.readiness())).await?;
    if !r.sequencer_running {
        return Err(ApiError::new(C::NotReady, "the sequencer thread has stopped"));
    }
    if r.keypers_linked < r.keypers_needed {
        return Err(ApiError::new(
            C::NotReady,
            format!("{} keypers linked, {} needed to decrypt", r.keypers_linked, r.keypers_needed),
        ));
    }
    Ok(Json(r))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = call(&s, "metrics", |b| Ok(b.metrics())).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        text,
    ))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bid_refusal_is_declared_by_both_bid_routes() {
        for code in BID_REFUSALS {
            assert!(route_errors("submit_bid").contains(code), "{code}");
        }
        // A batch answers refusals inside its verdicts, with 200.
        assert!(!route_errors("submit_bids").contains(&C::BadSignature));
    }
}
