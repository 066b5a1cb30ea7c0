//! The HTTP/JSON server (feature `server`): axum routes that are thin adapters over an
//! [`ApiBackend`], and the OpenAPI 3.1 document generated from them.
//!
//! # Design
//!
//! - **One backend trait.** Every route parses and checks its input, calls one method of
//!   [`ApiBackend`] and shapes the answer; the node implements the trait over the sequencer's
//!   intake channel, its ingress and its stores. This crate never links storage, and the node
//!   stays the only crate that wires services together. Backend methods are blocking (a
//!   channel round trip to the sequencer thread, an indexed SQLite read): routes run them on
//!   tokio's blocking pool, never on the reactor.
//! - **Typed errors only.** Every failure, including a body that is not JSON, a body over the
//!   size limit, a bad path or query parameter, an unknown route, a wrong method and a request
//!   that ran out of time, is answered with an [`ApiErrorBody`] `{code, name, message}` and the
//!   status [`http_status`] fixes for its code. Axum's own plain-text rejections never reach a
//!   client.
//! - **The document is the router.** Routes are registered with `utoipa-axum`, so a path and
//!   its documentation come from the same handler. Each route's error codes are declared once
//!   ([`route_errors`]); the document lists a response for each of their statuses, and a test
//!   drives every route to every declared code and checks the status against the document.
//! - **Limits.** A body size limit (`REQUEST_TOO_LARGE` above it), a batch size limit, a page
//!   size limit (`PAGE_LIMIT_EXCEEDED`) and a per-request timeout (`DEADLINE_EXCEEDED`; a bid
//!   whose request timed out may still have reached the sequencer, so a builder resending it
//!   with the same sequence number may get `STALE_SEQUENCE`). Rate limits ([`RateLimits`],
//!   `RATE_LIMITED` with a `Retry-After` header): a token bucket per client address over every
//!   route but `/health`, `/ready` and `/metrics`, and one per builder key over bids, charged
//!   only for bids whose signature verified, so nobody can spend another builder's budget.
//! - **Signatures off the sequencer's thread.** The bid routes batch-verify signatures on the
//!   blocking pool ([`VerifiedBid::verify_many`]) and hand the backend [`VerifiedBid`]s only: a
//!   bid with a bad signature costs the sequencer nothing.

mod limits;
mod registry;
mod routes;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use veil_auction::{BidId, VerifiedBid};
use veil_primitives::{ErrorCode, PublicKeyBytes, RollupId, Slot, TxId};

use crate::api::{
    http_status, paths, ApiError, ApiErrorBody, BidsPage, BlocksPage, MempoolPage, Readiness,
    SlotBlocks, SlotOutcome, SlotSchedule, TopBid, TxStatus,
};

pub use limits::{
    RateLimit, RateLimits, DEFAULT_PER_ADDRESS, DEFAULT_PER_KEY, MAX_TRACKED, SWEEP_EVERY,
};
pub use registry::RegistryBackend;
pub use routes::route_errors;

/// The default largest request body: 1 MiB (a bid naming 1,000 ciphertexts is about 70 KB of
/// JSON).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The default largest number of bids in one batch.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// The default largest number of mempool streams open at once.
pub const DEFAULT_MAX_STREAMS: usize = 256;

/// The default time a request may take before it is answered `DEADLINE_EXCEEDED`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Largest request body in bytes (`REQUEST_TOO_LARGE` above it).
    pub body_limit: usize,
    /// Largest number of bids in one batch (`REQUEST_TOO_LARGE` above it).
    pub max_batch: usize,
    /// Time after which a request is answered `DEADLINE_EXCEEDED`.
    pub request_timeout: Duration,
    /// Rate limits per client address and per builder key (`RATE_LIMITED` beyond them).
    pub rate_limits: RateLimits,
    /// Mempool streams open at once (`CONNECTION_QUOTA` beyond).
    pub max_streams: usize,
    /// Whether `GET /v1/builder/top_bid` shows an open slot's top bid (`BIDS_SEALED` if not).
    /// Off by default: bids are sealed.
    pub top_bid_visible: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            body_limit: DEFAULT_BODY_LIMIT,
            max_batch: DEFAULT_MAX_BATCH,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rate_limits: RateLimits::default(),
            max_streams: DEFAULT_MAX_STREAMS,
            top_bid_visible: false,
        }
    }
}

/// The filters of a data API listing, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataFilter {
    /// Only this slot.
    pub slot: Option<Slot>,
    /// Only this builder.
    pub builder: Option<PublicKeyBytes>,
    /// Only this rollup.
    pub rollup: Option<RollupId>,
}

/// A page request, checked: `limit` is between 1 and the maximum page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows strictly older than this cursor (the newest rows if `None`).
    pub before: Option<u64>,
    /// Rows to return at most.
    pub limit: u32,
}

/// A mempool read, checked: `limit` is between 1 and [`crate::api::MAX_MEMPOOL_PAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolRead {
    /// Start after this point (`0`: the oldest pending transaction).
    pub cursor: u64,
    /// Only this rollup.
    pub rollup: Option<RollupId>,
    /// Transactions to return at most.
    pub limit: u32,
    /// Include the ciphertexts' bytes.
    pub bodies: bool,
}

/// Wakes a mempool stream when transactions become durable.
pub trait MempoolWatch: Send {
    /// Waits until new transactions became durable since the watch was made or last woke;
    /// `false` once the node stops (the stream then ends).
    fn changed(&mut self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// What the routes need from the node. Every method blocks (routes call them on the blocking
/// pool) and answers with a typed [`ApiError`] whose code the route declares in
/// [`route_errors`]. The rollup and collateral routes' methods are in [`RegistryBackend`].
pub trait ApiBackend: RegistryBackend + Send + Sync + 'static {
    /// The slot schedule now.
    ///
    /// # Errors
    /// None expected; a backend may refuse with `NOT_READY`.
    fn schedule(&self) -> Result<SlotSchedule, ApiError>;

    /// Hands `bids` (their signatures verified by the route) to the sequencer's intake, in
    /// order, each on its own, and returns one verdict per bid: its id if accepted, its typed
    /// rejection if not.
    ///
    /// # Errors
    /// `SHUTTING_DOWN` if the sequencer no longer takes input (then no verdict is known).
    fn submit_bids(&self, bids: Vec<VerifiedBid>)
        -> Result<Vec<Result<BidId, ApiError>>, ApiError>;

    /// A decided slot's commitment and outcome.
    ///
    /// # Errors
    /// `NOT_FOUND` if the slot is not decided (or not indexed yet); `STORAGE_UNAVAILABLE`.
    fn outcome(&self, slot: Slot) -> Result<SlotOutcome, ApiError>;

    /// A slot's published plaintext blocks.
    ///
    /// # Errors
    /// `NOT_FOUND` if the slot is not published (yet, or never: undecryptable);
    /// `STORAGE_UNAVAILABLE`.
    fn blocks(&self, slot: Slot) -> Result<SlotBlocks, ApiError>;

    /// Bids received, newest first; never a bid of a slot whose bidding is still open
    /// (sealed bids).
    ///
    /// # Errors
    /// `STORAGE_UNAVAILABLE`.
    fn bids_received(&self, filter: &DataFilter, page: PageRequest) -> Result<BidsPage, ApiError>;

    /// Blocks delivered, newest first.
    ///
    /// # Errors
    /// `STORAGE_UNAVAILABLE`.
    fn blocks_delivered(
        &self,
        filter: &DataFilter,
        page: PageRequest,
    ) -> Result<BlocksPage, ApiError>;

    /// A transaction's status.
    ///
    /// # Errors
    /// `NOT_FOUND` if the node has no record of it; `STORAGE_UNAVAILABLE`.
    fn tx_status(&self, tx: TxId) -> Result<TxStatus, ApiError>;

    /// The top bid of `slot` (by default the slot whose bidding is open now), as its book holds
    /// it now. Asked only where the server shows top bids.
    ///
    /// # Errors
    /// `NOT_FOUND` for a slot not open for bids (not yet, or closed).
    fn top_bid(&self, slot: Option<Slot>) -> Result<TopBid, ApiError>;

    /// Pending transactions after `read.cursor`, oldest first, at most `read.limit`.
    ///
    /// # Errors
    /// None expected; `NOT_READY` if the ingress is not running.
    fn mempool(&self, read: &MempoolRead) -> Result<MempoolPage, ApiError>;

    /// A watch for a new mempool stream, made before the stream's first read (so nothing that
    /// becomes durable in between is missed).
    fn mempool_watch(&self) -> Box<dyn MempoolWatch>;

    /// What readiness depends on.
    fn readiness(&self) -> Readiness;

    /// The Prometheus metrics, in OpenMetrics text.
    fn metrics(&self) -> String;
}

/// The routes' shared state.
#[derive(Clone)]
struct AppState {
    backend: Arc<dyn ApiBackend>,
    config: ServerConfig,
    openapi: Arc<String>,
    limits: Arc<limits::Limiters>,
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Veil HTTP API",
        description = "Builders, users, operators and the data API of a Veil sequencer node. \
            JSON uses 0x-hex bytes and decimal-string amounts; every error is \
            {code, name, message} with a code from Veil's one ErrorCode table.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "builder", description = "The slot schedule, bid submission, slot outcomes and published blocks"),
        (name = "data", description = "Bids received and blocks delivered, filterable, paginated"),
        (name = "user", description = "Transaction status"),
        (name = "mempool", description = "The encrypted mempool: a snapshot from a cursor and a live stream"),
        (name = "rollup", description = "Rollup registration and terms (signed admin messages), published blocks and payouts"),
        (name = "operations", description = "Health, readiness, metrics, this document")
    ),
    components(schemas(ApiErrorBody))
)]
struct ApiDoc;

fn api_router() -> OpenApiRouter<AppState> {
    routes::register(OpenApiRouter::with_openapi(ApiDoc::openapi()))
}

/// The OpenAPI 3.1 document of every route, with a response per status of each route's
/// declared error codes.
#[must_use]
pub fn openapi() -> OpenApi {
    let (_, doc) = api_router().split_for_parts();
    with_error_responses(doc)
}

/// The operations of a document: `(path, method, operation)`, methods in lower case.
pub fn operations(doc: &OpenApi) -> Vec<(String, &'static str, &Operation)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods: [(&'static str, &Option<Operation>); 5] = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("delete", &item.delete),
            ("patch", &item.patch),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

fn with_error_responses(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch]
            .into_iter()
            .flatten()
        {
            let id = op.operation_id.clone().unwrap_or_default();
            let mut by_status: std::collections::BTreeMap<u16, Vec<&'static str>> =
                std::collections::BTreeMap::new();
            for &code in route_errors(&id) {
                by_status.entry(http_status(code)).or_default().push(code.name());
            }
            for (status, names) in by_status {
                let response = ResponseBuilder::new()
                    .description(format!("error codes: {}", names.join(", ")))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                            .build(),
                    )
                    .build();
                op.responses.responses.insert(status.to_string(), response.into());
            }
        }
    }
    doc
}

/// The whole HTTP API over `backend`: every route, the document at `/openapi.json`, typed
/// answers for unknown routes and methods, the body limit, the request timeout and the rate
/// limits. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` for the
/// per-address limit to apply (without the peer address a request is limited per key only).
pub fn router(backend: Arc<dyn ApiBackend>, config: ServerConfig) -> axum::Router {
    let (router, _) = api_router().split_for_parts();
    let doc = openapi().to_json().expect("the OpenAPI document serialises");
    let limits = Arc::new(limits::Limiters::new(config.rate_limits));
    let state = AppState {
        backend,
        config,
        openapi: Arc::new(doc),
        limits: limits.clone(),
        streams: Arc::default(),
    };
    router
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take this method")
        })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(config.request_timeout, timeout))
        .layer(axum::middleware::from_fn_with_state(limits, per_address))
        .with_state(state)
}

/// The routes the per-address limit leaves alone: probes and scrapes of operators.
const UNLIMITED: [&str; 3] = [paths::HEALTH, paths::READY, paths::METRICS];

async fn per_address(
    State(limits): State<Arc<limits::Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    if !UNLIMITED.contains(&request.uri().path()) {
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            if let Err(e) = limits.check_address(peer.ip()) {
                return e.into_response();
            }
        }
    }
    next.run(request).await
}

async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::DeadlineExceeded,
            format!("no answer within {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if self.code == ErrorCode::RateLimited {
            // Every bucket refills at least one token a second.
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests;
