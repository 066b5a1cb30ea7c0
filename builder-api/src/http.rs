//! HTTP clients of the node's public API: [`BuilderClient`] (schedule, bids, outcomes,
//! published blocks, collateral, deposits, withdrawals, the encrypted mempool as pages and as a
//! live [`MempoolStream`]), [`RollupClient`] (admin messages, registration, published blocks,
//! payouts) and [`DataClient`] (bids received, blocks delivered, transaction status).
//!
//! Both speak only the documented routes ([`crate::api::paths`]) and decode every error body
//! back into its [`ErrorCode`] ([`HttpError::Api`]). Only `GET`s are retried (on a transport
//! failure or a retryable code, with exponential backoff): they change nothing. A bid is never
//! resent by the client: whether a timed-out bid reached the sequencer is unknown, and the
//! builder decides (a resend with the same sequence number is refused `STALE_SEQUENCE` if the
//! first one arrived).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use veil_auction::{SignedBid, SignedRollupUpdate, SignedWithdrawal};
use veil_primitives::{ErrorCode, PublicKeyBytes, RollupId, SignedDepositNotice, Slot, TxId};

use crate::api::registry::{
    self, BuilderCollateral, DepositAccepted, FeeAccountInfo, RollupBlocksPage, RollupInfo,
    RollupList, RollupListQuery, RollupPayoutsPage, RollupUpdateAccepted, WithdrawalAccepted,
};

use crate::api::{
    paths, ApiError, ApiErrorBody, BidAccepted, BidBatch, BidVerdicts, BidsPage, BlocksPage,
    DataQuery, MempoolPage, MempoolQuery, MempoolTx, Readiness, SlotBlocks, SlotOutcome,
    SlotSchedule, TopBid, TxStatus,
};

/// The default time one HTTP request may take.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A request to the HTTP API failed. Callers branch on variants and on [`ApiError::code`].
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a typed error.
    #[error("{0}")]
    Api(ApiError),
    /// The server answered with an error code this version does not know.
    #[error("HTTP {status}: unknown code {}: {}", body.name, body.message)]
    UnknownCode {
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: ApiErrorBody,
    },
    /// The server answered with a status and a body that is not an API error (not a Veil
    /// node, or a proxy in between).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body's start.
        body: String,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// A success answer did not decode as the documented type.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The base URL is not usable.
    #[error("bad base URL: {0}")]
    BadUrl(String),
}

impl HttpError {
    /// The typed code, if the server answered with one this version knows.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            HttpError::Api(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the same `GET` may succeed later: a transport failure or a retryable code.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Api(e) => e.code.is_retryable(),
            HttpError::Transport(_) => true,
            HttpError::UnknownCode { status, .. } | HttpError::Status { status, .. } => {
                matches!(status, 429 | 502 | 503 | 504)
            }
            HttpError::Decode(_) | HttpError::BadUrl(_) => false,
        }
    }
}

/// How `GET`s are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetRetry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first backoff; doubled after each attempt.
    pub backoff: Duration,
}

impl Default for GetRetry {
    fn default() -> GetRetry {
        GetRetry { attempts: 4, backoff: Duration::from_millis(100) }
    }
}

/// The shared HTTP plumbing of the clients: a base URL, a connection pool, the retry policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    base: reqwest::Url,
    http: reqwest::Client,
    /// For streams: no deadline for the whole response, a read timeout instead.
    streams: reqwest::Client,
    retry: GetRetry,
}

/// A stream that sent nothing for this long (the server sends a comment every 15 s) is
/// taken for dead.
pub const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

impl HttpClient {
    /// A client of the node at `base` (for example `http://127.0.0.1:9464`).
    ///
    /// # Errors
    /// [`HttpError::BadUrl`] if `base` does not parse as an http(s) URL.
    pub fn new(base: &str) -> Result<HttpClient, HttpError> {
        HttpClient::with(base, DEFAULT_HTTP_TIMEOUT, GetRetry::default())
    }

    /// A client with a per-request timeout and a retry policy for `GET`s.
    ///
    /// # Errors
    /// [`HttpError::BadUrl`] if `base` does not parse as an http(s) URL;
    /// [`HttpError::Transport`] if the HTTP stack cannot be set up.
    pub fn with(base: &str, timeout: Duration, retry: GetRetry) -> Result<HttpClient, HttpError> {
        let base = reqwest::Url::parse(base).map_err(|e| HttpError::BadUrl(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(HttpError::BadUrl(format!("{base}: not an http(s) base URL")));
        }
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        let streams = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(STREAM_READ_TIMEOUT)
            .build()?;
        Ok(HttpClient { base, http, streams, retry })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, HttpError> {
        self.base.join(path).map_err(|e| HttpError::BadUrl(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HttpError> {
        let url = self.url(path)?;
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let result = answer(self.http.get(url.clone()).query(query).send().await).await;
            match result {
                Err(e) if e.is_retryable() && attempt < self.retry.attempts => {
                    tracing::debug!(%url, attempt, error = %e, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        answer(self.http.post(self.url(path)?).json(body).send().await).await
    }
}

async fn answer<T: DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, HttpError> {
    let response = sent?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| HttpError::Decode(e.to_string()));
    }
    match serde_json::from_slice::<ApiErrorBody>(&bytes) {
        Ok(body) => match body.to_error() {
            Some(e) => Err(HttpError::Api(e)),
            None => Err(HttpError::UnknownCode { status: status.as_u16(), body }),
        },
        Err(_) => Err(HttpError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
        }),
    }
}

/// A builder's client: the schedule, bids, outcomes and published blocks.
#[derive(Debug, Clone)]
pub struct BuilderClient {
    http: HttpClient,
}

impl BuilderClient {
    /// A builder client over `http`.
    #[must_use]
    pub fn new(http: HttpClient) -> BuilderClient {
        BuilderClient { http }
    }

    /// The HTTP client underneath (to read the data API with the same settings).
    #[must_use]
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The slot schedule now.
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn schedule(&self) -> Result<SlotSchedule, HttpError> {
        self.http.get(paths::SCHEDULE, &[]).await
    }

    /// Submits one signed bid; its id if accepted, its typed rejection
    /// ([`HttpError::Api`]) if not. Never retried.
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn submit_bid(&self, bid: &SignedBid) -> Result<BidAccepted, HttpError> {
        self.http.post(paths::BIDS, bid).await
    }

    /// Submits a batch of signed bids; one verdict per bid, in order. Never retried.
    ///
    /// # Errors
    /// See [`HttpError`] (for the batch as a whole; per-bid refusals are in the verdicts).
    pub async fn submit_bids(&self, bids: Vec<SignedBid>) -> Result<BidVerdicts, HttpError> {
        self.http.post(paths::BIDS_BATCH, &BidBatch { bids }).await
    }

    /// A decided slot's commitment and outcome (`NOT_FOUND` until decided).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn outcome(&self, slot: Slot) -> Result<SlotOutcome, HttpError> {
        self.http.get(&paths::OUTCOME.replace("{slot}", &slot.0.to_string()), &[]).await
    }

    /// A slot's published blocks (`NOT_FOUND` until published).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn blocks(&self, slot: Slot) -> Result<SlotBlocks, HttpError> {
        self.http.get(&paths::BLOCKS.replace("{slot}", &slot.0.to_string()), &[]).await
    }

    /// The current top bid of `slot` (by default the slot open now), where the node shows it.
    ///
    /// # Errors
    /// See [`HttpError`]; `BIDS_SEALED` where the node keeps bids sealed (the default).
    pub async fn top_bid(&self, slot: Option<Slot>) -> Result<TopBid, HttpError> {
        let query: Vec<(&str, String)> =
            slot.map(|s| ("slot", s.0.to_string())).into_iter().collect();
        self.http.get(paths::TOP_BID, &query).await
    }

    /// One page of the encrypted mempool, oldest first from `query.cursor`.
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn mempool(&self, query: &MempoolQuery) -> Result<MempoolPage, HttpError> {
        self.http.get(paths::MEMPOOL, &mempool_pairs(query)).await
    }

    /// Opens the mempool stream from `query.cursor` (its `limit` is not used). Read it with
    /// [`MempoolStream::next`]; after a transport failure, [`MempoolStream::resume`] reopens it
    /// where it stopped.
    ///
    /// # Errors
    /// See [`HttpError`]; `CONNECTION_QUOTA` when the server has its most streams open.
    pub async fn mempool_stream(&self, query: &MempoolQuery) -> Result<MempoolStream, HttpError> {
        let mut stream = MempoolStream {
            http: self.http.clone(),
            query: query.clone(),
            response: None,
            buffer: Vec::new(),
        };
        stream.resume().await?;
        Ok(stream)
    }
}

fn mempool_pairs(q: &MempoolQuery) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(v) = q.cursor {
        out.push(("cursor", v.to_string()));
    }
    if let Some(v) = q.rollup {
        out.push(("rollup", v.to_string()));
    }
    if let Some(v) = q.limit {
        out.push(("limit", v.to_string()));
    }
    if let Some(v) = q.bodies {
        out.push(("bodies", v.to_string()));
    }
    out
}

/// One event of the mempool stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MempoolEvent {
    /// A pending transaction.
    Tx(MempoolTx),
    /// This many transactions left the pool before the stream reached them.
    Skipped(u64),
}

/// The mempool stream ([`BuilderClient::mempool_stream`]): server-sent events parsed into
/// [`MempoolEvent`]s. It remembers the cursor after the last event, so [`MempoolStream::resume`]
/// continues exactly there.
#[derive(Debug)]
pub struct MempoolStream {
    http: HttpClient,
    query: MempoolQuery,
    response: Option<reqwest::Response>,
    buffer: Vec<u8>,
}

/// The largest server-sent event this client accepts (a transaction with its bytes, in hex).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

impl MempoolStream {
    /// The cursor after the last event read: where [`MempoolStream::resume`] continues.
    #[must_use]
    pub fn cursor(&self) -> u64 {
        self.query.cursor.unwrap_or(0)
    }

    /// (Re)opens the stream at [`MempoolStream::cursor`].
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn resume(&mut self) -> Result<(), HttpError> {
        self.response = None;
        self.buffer.clear();
        let url = self.http.url(paths::MEMPOOL_STREAM)?;
        let mut query = mempool_pairs(&self.query);
        query.retain(|(k, _)| *k != "limit");
        let response = self.http.streams.get(url).query(&query).send().await?;
        if !response.status().is_success() {
            return Err(answer::<serde_json::Value>(Ok(response)).await.err().unwrap_or_else(
                || HttpError::Decode("an error status with a success body".into()),
            ));
        }
        self.response = Some(response);
        Ok(())
    }

    /// The next event; `None` when the server ended the stream.
    ///
    /// # Errors
    /// [`HttpError::Transport`] when the connection failed ([`MempoolStream::resume`] then
    /// continues where it stopped), [`HttpError::Api`] for an `error` event (the stream has
    /// ended), [`HttpError::Decode`] for an event this client cannot read.
    pub async fn next(&mut self) -> Option<Result<MempoolEvent, HttpError>> {
        loop {
            if let Some(end) = event_end(&self.buffer) {
                let raw: Vec<u8> = self.buffer.drain(..end.1).collect();
                match self.parse(&raw[..end.0]) {
                    Ok(Some(event)) => return Some(Ok(event)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.buffer.len() > MAX_EVENT_BYTES {
                self.response = None;
                return Some(Err(HttpError::Decode("an event over 1 MiB".into())));
            }
            let response = self.response.as_mut()?;
            match response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => {
                    self.response = None;
                    return None;
                }
                Err(e) => {
                    self.response = None;
                    return Some(Err(HttpError::Transport(e)));
                }
            }
        }
    }

    /// One event's lines; `None` for a comment (keep-alive) or an event of an unknown kind.
    fn parse(&mut self, raw: &[u8]) -> Result<Option<MempoolEvent>, HttpError> {
        let text = std::str::from_utf8(raw).map_err(|e| HttpError::Decode(e.to_string()))?;
        let (mut kind, mut id, mut data) = ("message", None, String::new());
        for line in text.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => kind = value,
                "id" => id = Some(value),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        let decode = |e: serde_json::Error| HttpError::Decode(format!("{kind} event: {e}"));
        let event = match kind {
            "tx" => MempoolEvent::Tx(serde_json::from_str(&data).map_err(decode)?),
            "skipped" => {
                #[derive(serde::Deserialize)]
                struct Skipped {
                    skipped: u64,
                }
                MempoolEvent::Skipped(
                    serde_json::from_str::<Skipped>(&data).map_err(decode)?.skipped,
                )
            }
            "error" => {
                let body: ApiErrorBody = serde_json::from_str(&data).map_err(decode)?;
                self.response = None;
                return Err(match body.to_error() {
                    Some(e) => HttpError::Api(e),
                    None => HttpError::UnknownCode { status: 200, body },
                });
            }
            _ => return Ok(None),
        };
        if let Some(id) = id.and_then(|i| i.parse().ok()) {
            self.query.cursor = Some(id);
        }
        Ok(Some(event))
    }
}

/// Where the first complete event in `buffer` ends: `(end of its text, end with the blank
/// line)`. Events end with a blank line (`\n\n`, or `\r\n\r\n`).
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

impl BuilderClient {
    /// The builder's collateral account (`NOT_FOUND` for a key that never deposited).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn collateral(
        &self,
        builder: &PublicKeyBytes,
    ) -> Result<BuilderCollateral, HttpError> {
        self.http.get(&registry::paths::BUILDER.replace("{key}", &builder.to_string()), &[]).await
    }

    /// Has a bridge-signed deposit notice credited. Not retried by the client, but safe to
    /// resend: the same notice again gets the same answer and is never credited twice.
    ///
    /// # Errors
    /// See [`HttpError`]; `UNKNOWN_BRIDGE_KEY`, `DEPOSIT_CONFLICT`, `BAD_SIGNATURE`, ...
    pub async fn deposit(
        &self,
        notice: &SignedDepositNotice,
    ) -> Result<DepositAccepted, HttpError> {
        self.http.post(registry::paths::DEPOSITS, notice).await
    }

    /// Requests a withdrawal. Not retried by the client; safe to resend (the same request
    /// again is refused `STALE_NONCE` if the first one was applied, and changes nothing).
    ///
    /// # Errors
    /// See [`HttpError`]; `INSUFFICIENT_COLLATERAL`, `STALE_NONCE`, `BAD_SIGNATURE`, ...
    pub async fn withdraw(
        &self,
        request: &SignedWithdrawal,
    ) -> Result<WithdrawalAccepted, HttpError> {
        self.http.post(registry::paths::WITHDRAWALS, request).await
    }
}

/// A user's client: the fee account that pays for its transactions, and deposits to it
/// through the bridge (the bridge signs the notice).
#[derive(Debug, Clone)]
pub struct UserClient {
    http: HttpClient,
}

impl UserClient {
    /// A user's client over `http`.
    #[must_use]
    pub fn new(http: HttpClient) -> UserClient {
        UserClient { http }
    }

    /// A fee payer's account: balance, reserved, held, available, pending transactions.
    ///
    /// # Errors
    /// See [`HttpError`]; `NOT_FOUND` for a payer that never deposited.
    pub async fn fee_account(&self, payer: &PublicKeyBytes) -> Result<FeeAccountInfo, HttpError> {
        self.http.get(&registry::paths::USER.replace("{payer}", &payer.to_string()), &[]).await
    }

    /// Has a bridge-signed deposit notice of kind `fee_payer` credited (the same route as a
    /// builder's deposit). Safe to resend.
    ///
    /// # Errors
    /// As [`BuilderClient::deposit`].
    pub async fn deposit(
        &self,
        notice: &SignedDepositNotice,
    ) -> Result<DepositAccepted, HttpError> {
        self.http.post(registry::paths::DEPOSITS, notice).await
    }
}

/// A rollup's client: register and configure with signed admin messages, read the
/// registration, the published blocks and the payouts. `GET`s are retried; an admin message
/// is not, but is safe to resend (the same nonce again is refused `STALE_NONCE` if the first
/// one was applied, and changes nothing).
#[derive(Debug, Clone)]
pub struct RollupClient {
    http: HttpClient,
}

fn page(from: Option<Slot>, limit: Option<u32>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(f) = from {
        out.push(("from", f.0.to_string()));
    }
    if let Some(l) = limit {
        out.push(("limit", l.to_string()));
    }
    out
}

impl RollupClient {
    /// A rollup client over `http`.
    #[must_use]
    pub fn new(http: HttpClient) -> RollupClient {
        RollupClient { http }
    }

    /// Sends a signed admin message (register, configure, rotate admin); answered once it is
    /// durable.
    ///
    /// # Errors
    /// See [`HttpError`]; `STALE_NONCE`, `EFFECTIVE_SLOT_TOO_EARLY`, `BAD_SIGNATURE`, ...
    pub async fn update(
        &self,
        update: &SignedRollupUpdate,
    ) -> Result<RollupUpdateAccepted, HttpError> {
        self.http.post(registry::paths::ROLLUP_UPDATES, update).await
    }

    /// One page of the registered rollups, by id: pass the previous page's `next_cursor` as
    /// `query.cursor` to read on.
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn rollups_page(&self, query: &RollupListQuery) -> Result<RollupList, HttpError> {
        let mut pairs = Vec::new();
        if let Some(c) = &query.cursor {
            pairs.push(("cursor", c.clone()));
        }
        if let Some(l) = query.limit {
            pairs.push(("limit", l.to_string()));
        }
        self.http.get(registry::paths::ROLLUPS, &pairs).await
    }

    /// Every registered rollup, read page by page (pages of the server's maximum size); the
    /// list's `slot` is the first page's. Pages are read one after the other, so a rollup
    /// registered meanwhile may or may not be listed.
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn rollups(&self) -> Result<RollupList, HttpError> {
        let mut query = RollupListQuery { cursor: None, limit: Some(crate::api::MAX_PAGE_LIMIT) };
        let mut all = self.rollups_page(&query).await?;
        while let Some(cursor) = all.next_cursor.take() {
            query.cursor = Some(cursor);
            let page = self.rollups_page(&query).await?;
            all.rollups.extend(page.rollups);
            all.next_cursor = page.next_cursor;
        }
        Ok(all)
    }

    /// One rollup (`NOT_FOUND` if not registered).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn rollup(&self, rollup: RollupId) -> Result<RollupInfo, HttpError> {
        self.http
            .get(&registry::paths::ROLLUP.replace("{rollup}", &rollup.0.to_string()), &[])
            .await
    }

    /// A page of the rollup's published blocks from `from` on (slot 0 if `None`).
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn blocks(
        &self,
        rollup: RollupId,
        from: Option<Slot>,
        limit: Option<u32>,
    ) -> Result<RollupBlocksPage, HttpError> {
        let path = registry::paths::ROLLUP_BLOCKS.replace("{rollup}", &rollup.0.to_string());
        self.http.get(&path, &page(from, limit)).await
    }

    /// A page of the rollup's payouts from `from` on (slot 0 if `None`).
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn payouts(
        &self,
        rollup: RollupId,
        from: Option<Slot>,
        limit: Option<u32>,
    ) -> Result<RollupPayoutsPage, HttpError> {
        let path = registry::paths::ROLLUP_PAYOUTS.replace("{rollup}", &rollup.0.to_string());
        self.http.get(&path, &page(from, limit)).await
    }
}

/// A data API client: bids received, blocks delivered, transaction status, readiness.
#[derive(Debug, Clone)]
pub struct DataClient {
    http: HttpClient,
}

fn query_pairs(q: &DataQuery) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(v) = q.slot {
        out.push(("slot", v.to_string()));
    }
    if let Some(v) = &q.builder {
        out.push(("builder", v.clone()));
    }
    if let Some(v) = q.rollup {
        out.push(("rollup", v.to_string()));
    }
    if let Some(v) = &q.cursor {
        out.push(("cursor", v.clone()));
    }
    if let Some(v) = q.limit {
        out.push(("limit", v.to_string()));
    }
    out
}

impl DataClient {
    /// A data API client over `http`.
    #[must_use]
    pub fn new(http: HttpClient) -> DataClient {
        DataClient { http }
    }

    /// One page of bids received, newest first.
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn bids(&self, query: &DataQuery) -> Result<BidsPage, HttpError> {
        self.http.get(paths::DATA_BIDS, &query_pairs(query)).await
    }

    /// One page of blocks delivered, newest first.
    ///
    /// # Errors
    /// See [`HttpError`]; `PAGE_LIMIT_EXCEEDED` for a limit over the server's maximum.
    pub async fn blocks(&self, query: &DataQuery) -> Result<BlocksPage, HttpError> {
        self.http.get(paths::DATA_BLOCKS, &query_pairs(query)).await
    }

    /// A transaction's status (`NOT_FOUND` if the node has no record of it).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn tx_status(&self, tx: &TxId) -> Result<TxStatus, HttpError> {
        self.http.get(&paths::TX.replace("{id}", &tx.to_string()), &[]).await
    }

    /// The node's readiness (`NOT_READY` if it is not).
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn ready(&self) -> Result<Readiness, HttpError> {
        self.http.get(paths::READY, &[]).await
    }
}
