//! The rollup and collateral routes ([`crate::api::registry`]): thin adapters over a
//! [`RegistryBackend`], which the node implements over the sequencer thread (changes are
//! answered once durable) and the data API's index (blocks and payouts).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_auction::{SignedRollupUpdate, SignedWithdrawal};
use veil_primitives::{ErrorCode, PublicKeyBytes, RollupId, SignedDepositNotice, Slot};

use super::routes::{call, json_error, path_error};
use super::AppState;
use crate::api::registry::{
    BuilderCollateral, DepositAccepted, FeeAccountInfo, RollupBlocksPage, RollupInfo, RollupList,
    RollupListQuery, RollupPageQuery, RollupPayoutsPage, RollupUpdateAccepted,
    SignedDepositNoticeDoc, SignedRollupUpdateDoc, SignedWithdrawalDoc, WithdrawalAccepted,
};
use crate::api::{ApiError, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

use ErrorCode as C;

/// What the rollup and collateral routes need from the node. Every method blocks (routes call
/// them on the blocking pool) and answers with a typed [`ApiError`] whose code the route
/// declares in [`route_errors`](super::route_errors).
pub trait RegistryBackend {
    /// Applies a signed rollup admin message; answers once it is durable.
    ///
    /// # Errors
    /// The auction's refusals (`WRONG_CHAIN`, `BAD_SIGNATURE`, `INVALID_PUBLIC_KEY`,
    /// `UNKNOWN_ROLLUP`, `ROLLUP_EXISTS`, `STALE_NONCE`, `EFFECTIVE_SLOT_TOO_EARLY`,
    /// `ZERO_GAS_LIMIT`, `AMOUNT_TOO_LARGE`); `STORAGE_UNAVAILABLE` if it could not be made
    /// durable; `SHUTTING_DOWN` if the sequencer takes no input.
    fn rollup_update(&self, update: SignedRollupUpdate) -> Result<RollupUpdateAccepted, ApiError>;

    /// The registered rollups with ids above `after` (all if `None`), by id, at most `limit`,
    /// as of the slot in progress; `next_cursor` (the last id listed) when the page is full.
    ///
    /// # Errors
    /// `SHUTTING_DOWN` if the sequencer takes no input.
    fn rollups(&self, after: Option<RollupId>, limit: u32) -> Result<RollupList, ApiError>;

    /// One rollup as of the slot in progress.
    ///
    /// # Errors
    /// `NOT_FOUND` for a rollup not registered; `SHUTTING_DOWN`.
    fn rollup(&self, rollup: RollupId) -> Result<RollupInfo, ApiError>;

    /// A rollup's published blocks from `from` on, in slot order, at most `limit` slots.
    ///
    /// # Errors
    /// `NOT_FOUND` for a rollup not registered; `STORAGE_UNAVAILABLE`; `SHUTTING_DOWN`.
    fn rollup_blocks(
        &self,
        rollup: RollupId,
        from: Slot,
        limit: u32,
    ) -> Result<RollupBlocksPage, ApiError>;

    /// A rollup's payouts (slots it was sold in) from `from` on, at most `limit` slots.
    ///
    /// # Errors
    /// `NOT_FOUND` for a rollup not registered; `STORAGE_UNAVAILABLE`; `SHUTTING_DOWN`.
    fn rollup_payouts(
        &self,
        rollup: RollupId,
        from: Slot,
        limit: u32,
    ) -> Result<RollupPayoutsPage, ApiError>;

    /// A builder's collateral account.
    ///
    /// # Errors
    /// `NOT_FOUND` for a key that never deposited; `SHUTTING_DOWN`.
    fn builder_collateral(&self, builder: PublicKeyBytes) -> Result<BuilderCollateral, ApiError>;

    /// Credits a bridge-signed deposit notice, once per deposit id; answers once durable.
    ///
    /// # Errors
    /// `WRONG_CHAIN`, `UNKNOWN_BRIDGE_KEY`, `BAD_SIGNATURE`,
    /// `DEPOSIT_CONFLICT`, `ZERO_AMOUNT`, `INVALID_PUBLIC_KEY`, `AMOUNT_TOO_LARGE`,
    /// `OVERFLOW`; `STORAGE_UNAVAILABLE`; `SHUTTING_DOWN`.
    fn deposit(&self, notice: SignedDepositNotice) -> Result<DepositAccepted, ApiError>;

    /// A fee payer's fee account.
    ///
    /// # Errors
    /// `NOT_FOUND` for a payer that never deposited and has nothing pending.
    fn fee_account(&self, payer: PublicKeyBytes) -> Result<FeeAccountInfo, ApiError>;

    /// Reserves a builder-signed withdrawal; answers once durable.
    ///
    /// # Errors
    /// `WRONG_CHAIN`, `ZERO_AMOUNT`, `UNKNOWN_BUILDER`, `STALE_NONCE`, `BAD_SIGNATURE`,
    /// `INSUFFICIENT_COLLATERAL`, `OVERFLOW`; `STORAGE_UNAVAILABLE`; `SHUTTING_DOWN`.
    fn withdraw(&self, request: SignedWithdrawal) -> Result<WithdrawalAccepted, ApiError>;
}

/// The error codes of this module's routes, by operation id (see
/// [`super::route_errors`]).
#[must_use]
pub(super) fn route_errors(operation: &str) -> &'static [ErrorCode] {
    match operation {
        "rollup_update" => &[
            C::MalformedRequest,
            C::RequestTooLarge,
            C::WrongChain,
            C::InvalidPublicKey,
            C::BadSignature,
            C::UnknownRollup,
            C::RollupExists,
            C::StaleNonce,
            C::EffectiveSlotTooEarly,
            C::ZeroGasLimit,
            C::AmountTooLarge,
            C::StorageUnavailable,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "rollups" => &[
            C::MalformedRequest,
            C::PageLimitExceeded,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "rollup" | "builder_collateral" | "fee_account" => &[
            C::MalformedRequest,
            C::NotFound,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "rollup_blocks" | "rollup_payouts" => &[
            C::MalformedRequest,
            C::PageLimitExceeded,
            C::NotFound,
            C::StorageUnavailable,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "deposit" => &[
            C::MalformedRequest,
            C::RequestTooLarge,
            C::WrongChain,
            C::UnknownBridgeKey,
            C::BadSignature,
            C::DepositConflict,
            C::ZeroAmount,
            C::InvalidPublicKey,
            C::AmountTooLarge,
            C::Overflow,
            C::StorageUnavailable,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        "withdraw" => &[
            C::MalformedRequest,
            C::RequestTooLarge,
            C::WrongChain,
            C::ZeroAmount,
            C::UnknownBuilder,
            C::StaleNonce,
            C::BadSignature,
            C::InsufficientCollateral,
            C::Overflow,
            C::StorageUnavailable,
            C::ShuttingDown,
            C::DeadlineExceeded,
            C::RateLimited,
        ],
        _ => &[],
    }
}

pub(super) fn register(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(rollup_update))
        .routes(routes!(rollups))
        .routes(routes!(rollup))
        .routes(routes!(rollup_blocks))
        .routes(routes!(rollup_payouts))
        .routes(routes!(builder_collateral))
        .routes(routes!(fee_account))
        .routes(routes!(deposit))
        .routes(routes!(withdraw))
}

fn parse_rollup(rollup: Result<Path<u32>, PathRejection>) -> Result<RollupId, ApiError> {
    rollup.map(|Path(r)| RollupId(r)).map_err(path_error)
}

/// A page size: the default if absent, `MALFORMED_REQUEST` for 0, `PAGE_LIMIT_EXCEEDED` over
/// the maximum.
fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit == 0 {
        return Err(ApiError::new(C::MalformedRequest, "limit must be at least 1"));
    }
    if limit > MAX_PAGE_LIMIT {
        return Err(ApiError::new(
            C::PageLimitExceeded,
            format!("limit {limit} is over the maximum page size {MAX_PAGE_LIMIT}"),
        ));
    }
    Ok(limit)
}

fn parse_page(
    query: Result<Query<RollupPageQuery>, QueryRejection>,
) -> Result<(Slot, u32), ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(C::MalformedRequest, r.body_text()))?;
    Ok((Slot(q.from.unwrap_or(0)), page_limit(q.limit)?))
}

fn parse_list(
    query: Result<Query<RollupListQuery>, QueryRejection>,
) -> Result<(Option<RollupId>, u32), ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(C::MalformedRequest, r.body_text()))?;
    let after = q
        .cursor
        .map(|c| c.parse::<u32>().map(RollupId))
        .transpose()
        .map_err(|_| ApiError::new(C::MalformedRequest, "cursor: not a cursor of this API"))?;
    Ok((after, page_limit(q.limit)?))
}

/// Registers a rollup, changes its terms from a later slot on, or rotates its admin key: a
/// signed admin message with a nonce above the last one (a replay is `STALE_NONCE`) and an
/// effective slot after every slot already opened. Answered once the change is durable.
#[utoipa::path(post, path = "/v1/rollups/updates", tag = "rollup",
    request_body = SignedRollupUpdateDoc,
    responses((status = 200, description = "Accepted and durable", body = RollupUpdateAccepted)))]
async fn rollup_update(
    State(s): State<AppState>,
    body: Result<Json<SignedRollupUpdate>, JsonRejection>,
) -> Result<Json<RollupUpdateAccepted>, ApiError> {
    let Json(update) = body.map_err(json_error)?;
    call(&s, "rollup_update", move |b| b.rollup_update(update)).await.map(Json)
}

/// The registered rollups by id, a page at a time: admin key, last nonce, terms in force now,
/// scheduled changes; read on from `next_cursor`.
#[utoipa::path(get, path = "/v1/rollups", tag = "rollup", params(RollupListQuery),
    responses((status = 200, description = "A page of rollups", body = RollupList)))]
async fn rollups(
    State(s): State<AppState>,
    query: Result<Query<RollupListQuery>, QueryRejection>,
) -> Result<Json<RollupList>, ApiError> {
    let (after, limit) = parse_list(query)?;
    call(&s, "rollups", move |b| b.rollups(after, limit)).await.map(Json)
}

/// One rollup: admin key, last nonce, terms in force now, scheduled changes.
#[utoipa::path(get, path = "/v1/rollups/{rollup}", tag = "rollup",
    params(("rollup" = u32, Path, description = "The rollup id")),
    responses((status = 200, description = "The rollup", body = RollupInfo)))]
async fn rollup(
    State(s): State<AppState>,
    rollup: Result<Path<u32>, PathRejection>,
) -> Result<Json<RollupInfo>, ApiError> {
    let rollup = parse_rollup(rollup)?;
    call(&s, "rollup", move |b| b.rollup(rollup)).await.map(Json)
}

/// A rollup's published plaintext blocks from slot `from` on, oldest first, each in committed
/// order; read on from `next_from`.
#[utoipa::path(get, path = "/v1/rollups/{rollup}/blocks", tag = "rollup",
    params(("rollup" = u32, Path, description = "The rollup id"), RollupPageQuery),
    responses((status = 200, description = "A page of blocks", body = RollupBlocksPage)))]
async fn rollup_blocks(
    State(s): State<AppState>,
    rollup: Result<Path<u32>, PathRejection>,
    query: Result<Query<RollupPageQuery>, QueryRejection>,
) -> Result<Json<RollupBlocksPage>, ApiError> {
    let rollup = parse_rollup(rollup)?;
    let (from, limit) = parse_page(query)?;
    call(&s, "rollup_blocks", move |b| b.rollup_blocks(rollup, from, limit)).await.map(Json)
}

/// A rollup's payouts from slot `from` on, oldest first: per slot it was sold in, its share
/// by policy bucket and the outcome hash behind it; read on from `next_from`.
#[utoipa::path(get, path = "/v1/rollups/{rollup}/payouts", tag = "rollup",
    params(("rollup" = u32, Path, description = "The rollup id"), RollupPageQuery),
    responses((status = 200, description = "A page of payouts", body = RollupPayoutsPage)))]
async fn rollup_payouts(
    State(s): State<AppState>,
    rollup: Result<Path<u32>, PathRejection>,
    query: Result<Query<RollupPageQuery>, QueryRejection>,
) -> Result<Json<RollupPayoutsPage>, ApiError> {
    let rollup = parse_rollup(rollup)?;
    let (from, limit) = parse_page(query)?;
    call(&s, "rollup_payouts", move |b| b.rollup_payouts(rollup, from, limit)).await.map(Json)
}

/// A builder's collateral: balance, unsettled payments, pending withdrawals with their
/// release slots, what is available, the withdrawal nonce.
#[utoipa::path(get, path = "/v1/builders/{key}", tag = "builder",
    params(("key" = String, Path, description = "The builder's ed25519 key (0x hex)")),
    responses((status = 200, description = "The account", body = BuilderCollateral)))]
async fn builder_collateral(
    State(s): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<BuilderCollateral>, ApiError> {
    let Path(key) = key.map_err(path_error)?;
    let key: PublicKeyBytes =
        key.parse().map_err(|e| ApiError::new(C::MalformedRequest, format!("key: {e}")))?;
    call(&s, "builder_collateral", move |b| b.builder_collateral(key)).await.map(Json)
}

/// A user's fee account: the ledger's balance, what its pending transactions reserve and its
/// committed ones hold until settlement, and what is available for new transactions.
#[utoipa::path(get, path = "/v1/users/{payer}", tag = "user",
    params(("payer" = String, Path, description = "The fee payer's public key, 0x hex")),
    responses((status = 200, description = "The fee account", body = FeeAccountInfo)))]
async fn fee_account(
    State(s): State<AppState>,
    payer: Result<Path<String>, PathRejection>,
) -> Result<Json<FeeAccountInfo>, ApiError> {
    let Path(payer) = payer.map_err(path_error)?;
    let payer: PublicKeyBytes =
        payer.parse().map_err(|e| ApiError::new(C::MalformedRequest, format!("payer: {e}")))?;
    call(&s, "fee_account", move |b| b.fee_account(payer)).await.map(Json)
}

/// Credits a bridge-signed deposit notice: to a builder's collateral (kind `builder`) or to
/// a user's fee account (kind `fee_payer`). Idempotent per
/// settlement-layer deposit id: the same notice again gets the same answer and is not
/// credited twice; another notice under a used id is `DEPOSIT_CONFLICT`. Answered once
/// durable.
#[utoipa::path(post, path = "/v1/builders/deposits", tag = "builder",
    request_body = SignedDepositNoticeDoc,
    responses((status = 200, description = "Credited (now or before)", body = DepositAccepted)))]
async fn deposit(
    State(s): State<AppState>,
    body: Result<Json<SignedDepositNotice>, JsonRejection>,
) -> Result<Json<DepositAccepted>, ApiError> {
    let Json(notice) = body.map_err(json_error)?;
    call(&s, "deposit", move |b| b.deposit(notice)).await.map(Json)
}

/// Requests a withdrawal of collateral, signed by the builder with a nonce above its last
/// one: the amount is reserved at once and released after the withdrawal delay. Answered
/// once durable.
#[utoipa::path(post, path = "/v1/builders/withdrawals", tag = "builder",
    request_body = SignedWithdrawalDoc,
    responses((status = 200, description = "Reserved and durable", body = WithdrawalAccepted)))]
async fn withdraw(
    State(s): State<AppState>,
    body: Result<Json<SignedWithdrawal>, JsonRejection>,
) -> Result<Json<WithdrawalAccepted>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    call(&s, "withdraw", move |b| b.withdraw(request)).await.map(Json)
}
