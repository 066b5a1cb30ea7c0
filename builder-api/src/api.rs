//! The HTTP/JSON API's vocabulary, shared by the server ([`crate::server`], feature `server`)
//! and the clients ([`crate::http`]): route paths, request and response bodies, the error body
//! and the one mapping from [`ErrorCode`] to an HTTP status.
//!
//! JSON follows the workspace's conventions (builder-specs habits): byte strings are
//! `0x`-prefixed lower-case hex, amounts are decimal strings, small integers (slots, rollup
//! ids, chain ids) are numbers. The schemas (for the OpenAPI document) are derived from these
//! types; where a field holds a type of another crate (the cores know nothing of OpenAPI),
//! its schema is a mirror of that type's JSON ([`records`], [`SignedBidDoc`], the signed
//! messages of [`registry`]), tested against real values so that it cannot drift.

pub mod records;
pub mod registry;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_auction::{Outcome, SignedBid};
use veil_primitives::{
    Amount, ChainId, Eon, ErrorCode, PublicKeyBytes, RollupId, SignedReceipt, Slot, TxId,
};
use veil_sequencer::{Commitment, PublishedSlot, SignedCommitment};

pub use records::{
    CommitmentDoc, OutcomeDoc, PublishedSlotDoc, PublishedTxDoc, SignedCommitmentDoc,
    SignedReceiptDoc,
};

/// The routes, one constant per path (templates in braces). The OpenAPI document is served at
/// [`paths::OPENAPI`].
pub mod paths {
    /// `GET`: the slot schedule ([`super::SlotSchedule`]).
    pub const SCHEDULE: &str = "/v1/builder/schedule";
    /// `POST`: one signed bid ([`super::BidAccepted`] or a typed error).
    pub const BIDS: &str = "/v1/builder/bids";
    /// `POST`: a batch of signed bids ([`super::BidVerdicts`], one verdict per bid).
    pub const BIDS_BATCH: &str = "/v1/builder/bids/batch";
    /// `GET`: a decided slot's commitment and auction outcome ([`super::SlotOutcome`]).
    pub const OUTCOME: &str = "/v1/slots/{slot}/outcome";
    /// `GET`: a slot's published plaintext blocks ([`super::SlotBlocks`]).
    pub const BLOCKS: &str = "/v1/slots/{slot}/blocks";
    /// `GET`: bids received ([`super::BidsPage`]), filterable, paginated.
    pub const DATA_BIDS: &str = "/v1/data/bids";
    /// `GET`: blocks delivered ([`super::BlocksPage`]), filterable, paginated.
    pub const DATA_BLOCKS: &str = "/v1/data/blocks";
    /// `GET`: a transaction's status ([`super::TxStatus`]).
    pub const TX: &str = "/v1/tx/{id}";
    /// `GET`: the current top bid of an open slot ([`super::TopBid`]), where the node shows it
    /// (`BIDS_SEALED` where it does not: the default).
    pub const TOP_BID: &str = "/v1/builder/top_bid";
    /// `GET`: the encrypted mempool, oldest first from a cursor ([`super::MempoolPage`]).
    pub const MEMPOOL: &str = "/v1/mempool";
    /// `GET`: the encrypted mempool as a live stream of server-sent events, each a
    /// [`super::MempoolTx`] (event `tx`) with the cursor after it as its id.
    pub const MEMPOOL_STREAM: &str = "/v1/mempool/stream";
    /// `GET`: liveness (`ok`, plain text).
    pub const HEALTH: &str = "/health";
    /// `GET`: readiness ([`super::Readiness`], or `NOT_READY`).
    pub const READY: &str = "/ready";
    /// `GET`: Prometheus metrics (OpenMetrics text).
    pub const METRICS: &str = "/metrics";
    /// `GET`: this API's OpenAPI 3.1 document.
    pub const OPENAPI: &str = "/openapi.json";
}

/// The HTTP status of every error code: fixed, one status per code.
///
/// 400 the request is wrong in itself; 403 the signer is not allowed; 404 nothing there (yet);
/// 405 wrong method; 409 the request conflicts with the server's state (a closed slot, a stale
/// sequence number); 413 too large; 429 a quota; 503 the service cannot take it now; 504 the
/// request ran out of time.
#[must_use]
pub const fn http_status(code: ErrorCode) -> u16 {
    use ErrorCode as C;
    match code {
        C::MalformedFrame
        | C::UnsupportedVersion
        | C::UnknownFrameType
        | C::InvalidCiphertext
        | C::BadProof
        | C::WrongEon
        | C::Expired
        | C::FeeTooLow
        | C::WrongChain
        | C::InvalidGasLimit
        | C::FeeTooHigh
        | C::BadBundle
        | C::BadRequestId
        | C::MalformedRequest
        | C::PageLimitExceeded
        | C::InvalidPublicKey
        | C::BadSignature
        | C::EmptyRollupSet
        | C::RollupSetNotCanonical
        | C::UnknownRollup
        | C::InactiveRollup
        | C::BelowReserve
        | C::AmountTooLarge
        | C::UnknownCiphertext
        | C::ExpiredCiphertext
        | C::CiphertextRollupMismatch
        | C::DuplicateCiphertext
        | C::GasLimitExceeded
        | C::PartialBundle
        | C::InconsistentBundle
        | C::TooManyRollups
        | C::PolicyNotWhole
        | C::BadBucketName
        | C::MissingBucket
        | C::ZeroGasLimit
        | C::ZeroAmount
        | C::Overflow
        | C::InvalidResponders
        | C::UnsupportedAccountKind
        | C::UnexpectedFrame => 400,
        C::UnknownBuilder
        | C::UnknownBridgeKey
        | C::KeyperUnauthenticated
        | C::WrongKeyper
        | C::BidsSealed => 403,
        C::NotFound => 404,
        C::MethodNotAllowed => 405,
        C::EphemeralKeyReused
        | C::SlotNotOpen
        | C::SlotClosed
        | C::SlotOutOfOrder
        | C::DeadlineNotReached
        | C::NothingToSettle
        | C::InsufficientCollateral
        | C::InsufficientBalance
        | C::StaleSequence
        | C::RollupExists
        | C::StaleNonce
        | C::EffectiveSlotTooEarly
        | C::DepositConflict
        | C::Equivocation
        | C::KeyperReplaced => 409,
        C::FrameTooLarge | C::CiphertextTooLarge | C::RequestTooLarge | C::BidTooLarge => 413,
        C::SenderQuota | C::ConnectionQuota | C::TooManyBids | C::RateLimited | C::Suspended => 429,
        C::PoolFull | C::StorageUnavailable | C::ShuttingDown | C::NotReady | C::NotReleased => 503,
        C::DeadlineExceeded => 504,
    }
}

/// A typed error of the HTTP API: a code of the one table and a human-readable message.
/// Callers branch on `code`, never on `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// The HTTP status of its code ([`http_status`]).
    #[must_use]
    pub fn status(&self) -> u16 {
        http_status(self.code)
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody {
            code: self.code.as_u16(),
            name: self.code.name().to_string(),
            message: self.message.clone(),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiErrorBody {
    /// The numeric code (the same number the QUIC protocols send).
    #[schema(example = 107)]
    pub code: u16,
    /// The code's stable name.
    #[schema(example = "BAD_SIGNATURE")]
    pub name: String,
    /// What went wrong, for people; not stable.
    pub message: String,
}

impl ApiErrorBody {
    /// The typed error, if this version knows the code (by name, then by number).
    #[must_use]
    pub fn to_error(&self) -> Option<ApiError> {
        let code = ErrorCode::from_name(&self.name).or_else(|| ErrorCode::from_u16(self.code))?;
        Some(ApiError::new(code, self.message.clone()))
    }
}

/// One slot's times, in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotTimes {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// When it starts.
    pub start_ms: u64,
    /// When its bidding closes (bids must arrive by then).
    pub bidding_deadline_ms: u64,
}

/// A rollup's terms for the current slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupSchedule {
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// Its reserve price: a bid naming it must pay at least this (summed over its rollups).
    #[schema(value_type = String, example = "1000")]
    pub reserve: Amount,
    /// Its gas limit per slot.
    pub gas_limit: u64,
    /// Whether it takes bids.
    pub active: bool,
}

/// What a builder needs to bid: the clock, the slots, the rollups and the committee key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotSchedule {
    /// The Veil network (bids name it).
    #[schema(value_type = u64)]
    pub chain_id: ChainId,
    /// The server's clock when it answered, ms since the Unix epoch.
    pub now_ms: u64,
    /// Slot length.
    pub slot_ms: u64,
    /// Bidding window from each slot's start.
    pub bid_window_ms: u64,
    /// The slot now running.
    pub current: SlotTimes,
    /// Whether the current slot still takes bids (its deadline has not passed).
    pub current_open: bool,
    /// The slot after it.
    pub next: SlotTimes,
    /// The committee key's eon.
    #[schema(value_type = u64)]
    pub eon: Eon,
    /// The committee's public key set (`veil_crypto::PublicKeySet` JSON), to encrypt to.
    #[schema(value_type = Object)]
    pub committee: serde_json::Value,
    /// Every registered rollup's terms for the current slot, sorted by id.
    pub rollups: Vec<RollupSchedule>,
}

/// A bid the sequencer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidAccepted {
    /// The bid id: sha3-256 of its signing bytes.
    #[schema(value_type = String, example = "0x5c5c69d9f28d69dd61fd2c22e7f898aadd1be9e19e871679c004ac4c5ef48bee")]
    pub bid_id: veil_auction::BidId,
}

/// A batch of signed bids (`veil_auction::SignedBid` each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidBatch {
    /// The bids, checked in order, each on its own.
    #[schema(value_type = Vec<SignedBidDoc>)]
    pub bids: Vec<SignedBid>,
}

/// The verdict on one bid of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidVerdict {
    /// The bid id.
    #[schema(value_type = String)]
    pub bid_id: veil_auction::BidId,
    /// Whether it was accepted.
    pub accepted: bool,
    /// Why not, if it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorBody>,
}

/// One verdict per bid of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidVerdicts {
    /// The verdicts.
    pub verdicts: Vec<BidVerdict>,
}

/// A decided slot: its commitment, the auction outcome it commits to, and the signed
/// commitment once it is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotOutcome {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The commitment (`veil_sequencer::Commitment`): per rollup, the winner, the payment and
    /// the ordered ciphertext ids; `outcome_hash` is the hash of `outcome`.
    #[schema(value_type = CommitmentDoc)]
    pub commitment: Commitment,
    /// The auction's outcome record (`veil_auction::Outcome`): terms, winners with their
    /// signed bids, payments, contributions, payouts, fallback blocks, ledger entries.
    #[schema(value_type = OutcomeDoc)]
    pub outcome: Outcome,
    /// sha3-256 of the outcome's canonical bytes (`0x` hex).
    #[schema(value_type = String)]
    pub outcome_hash: String,
    /// The signed commitment (`veil_sequencer::SignedCommitment`), once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SignedCommitmentDoc>)]
    pub signed: Option<SignedCommitment>,
}

/// A slot's published plaintext blocks, in committed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotBlocks {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The publication (`veil_sequencer::PublishedSlot`): per rollup each committed
    /// ciphertext with its result (`Included` with the payload in hex, `Failed`,
    /// `DroppedWithBundle`), the keypers blamed, the fees moved.
    #[schema(value_type = PublishedSlotDoc)]
    pub published: PublishedSlot,
}

/// The filters and page of a data API listing (query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DataQuery {
    /// Only this slot.
    pub slot: Option<u64>,
    /// Only this builder (`0x` hex of its ed25519 key).
    pub builder: Option<String>,
    /// Only this rollup.
    pub rollup: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first (newest) page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to the server's maximum (`PAGE_LIMIT_EXCEEDED` above it).
    pub limit: Option<u32>,
}

/// The slot a top-bid read is about (query parameter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopBidQuery {
    /// The slot; by default the one whose bidding is open now.
    pub slot: Option<u64>,
}

/// The highest bid of a slot so far, as the book holds it now (a bid replaced by its builder
/// no longer counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopBid {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// Bids in the slot's book.
    pub bids: u64,
    /// The highest one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<TopBidEntry>,
}

/// The highest bid's public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopBidEntry {
    /// The bid id.
    #[schema(value_type = String)]
    pub bid_id: veil_auction::BidId,
    /// The builder.
    #[schema(value_type = String)]
    pub builder: PublicKeyBytes,
    /// The amount.
    #[schema(value_type = String)]
    pub amount: Amount,
    /// The rollups it bids for.
    #[schema(value_type = Vec<u32>)]
    pub rollups: Vec<RollupId>,
}

/// A mempool read (query parameters of `GET /v1/mempool` and `GET /v1/mempool/stream`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MempoolQuery {
    /// Start after this point: the `next_cursor` of a page or the id of a stream event; `0`
    /// (the default) is the oldest pending transaction. The stream takes the `Last-Event-ID`
    /// header instead when a client reconnects.
    pub cursor: Option<u64>,
    /// Only this rollup's transactions.
    pub rollup: Option<u32>,
    /// Transactions per page, 1 to the maximum (`PAGE_LIMIT_EXCEEDED` above it); not for the
    /// stream.
    pub limit: Option<u32>,
    /// Include each ciphertext's bytes (`ciphertext`); default `false`.
    pub bodies: Option<bool>,
}

/// A pending ciphertext as builders see it: its public metadata (never its payload, which
/// nobody can read before its block is committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MempoolTx {
    /// Its place in admission order; the cursor after it is `seq + 1`.
    pub seq: u64,
    /// The ciphertext id (what bids name).
    #[schema(value_type = String)]
    pub id: TxId,
    /// The eon whose key it is encrypted to.
    #[schema(value_type = u64)]
    pub eon: Eon,
    /// The rollup it is for.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// Who pays its fee.
    #[schema(value_type = String)]
    pub fee_payer: PublicKeyBytes,
    /// The most its payer pays for inclusion.
    #[schema(value_type = String)]
    pub max_fee: Amount,
    /// The gas it may use.
    pub gas_limit: u64,
    /// The last slot it may be included in.
    #[schema(value_type = u64)]
    pub expiry_slot: Slot,
    /// The atomic bundle it is a part of, if any: all parts are included or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<MempoolBundle>,
    /// Its size in bytes.
    pub size: u32,
    /// Its canonical bytes, `0x` hex (only when asked for with `bodies=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
}

/// A bundle part's place in its bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MempoolBundle {
    /// The bundle id, shared by its parts.
    #[schema(value_type = String)]
    pub id: veil_primitives::BundleId,
    /// This part's position, `0..count`.
    pub index: u16,
    /// How many parts the bundle has.
    pub count: u16,
}

/// A page of the encrypted mempool, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MempoolPage {
    /// Pending transactions after the cursor, in admission order.
    pub txs: Vec<MempoolTx>,
    /// Pass as `cursor` for the next page (or to start a stream where this page ends).
    pub next_cursor: u64,
    /// Transactions passed over after the cursor because they left the pool (included,
    /// expired, evicted) or are in flight (committed, not yet published: bids may not name
    /// them); always 0 from cursor 0 (which asks for whatever is pending). Transactions of
    /// other rollups than the one asked for are not counted.
    pub skipped: u64,
    /// Whether the page reaches the newest durable transaction (nothing more to read now).
    pub caught_up: bool,
}

/// The largest mempool page.
pub const MAX_MEMPOOL_PAGE: u32 = 1_000;

/// The default mempool page.
pub const DEFAULT_MEMPOOL_PAGE: u32 = 200;

/// The default page size of the data API.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// The largest page size the data API returns.
pub const MAX_PAGE_LIMIT: u32 = 500;

/// A bid the sequencer accepted, as the data API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidReceived {
    /// The bid id.
    #[schema(value_type = String)]
    pub bid_id: veil_auction::BidId,
    /// The slot bid for.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The builder.
    #[schema(value_type = String)]
    pub builder: PublicKeyBytes,
    /// Its sequence number.
    pub sequence: u64,
    /// The amount.
    #[schema(value_type = String)]
    pub amount: Amount,
    /// The rollups bid for.
    #[schema(value_type = Vec<u32>)]
    pub rollups: Vec<RollupId>,
    /// When the node accepted it, ms since the Unix epoch.
    pub received_ms: u64,
    /// The signed bid itself.
    #[schema(value_type = SignedBidDoc)]
    pub bid: SignedBid,
}

/// A page of bids received, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidsPage {
    /// The bids.
    pub bids: Vec<BidReceived>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// How far a committed block got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Committed and signed, not decrypted yet.
    Committed,
    /// Decrypted and published.
    Published,
    /// Not decrypted in time: abandoned, nothing revealed.
    Undecryptable,
}

/// One rollup's block of one slot, as the data API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockDelivered {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// The winning builder; absent for the sequencer's fallback block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub builder: Option<PublicKeyBytes>,
    /// The payment attributed to the rollup.
    #[schema(value_type = String)]
    pub payment: Amount,
    /// Ciphertexts committed.
    pub txs: u32,
    /// Decrypted and included (once published).
    pub included: u32,
    /// Not decrypted (once published).
    pub failed: u32,
    /// Dropped with a bundle (once published).
    pub dropped: u32,
    /// How far it got.
    pub state: DeliveryState,
}

/// A page of blocks delivered, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlocksPage {
    /// The blocks.
    pub blocks: Vec<BlockDelivered>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a transaction is.
///
/// Not yet distinguishable from one another, and answered `NOT_FOUND`: a transaction that
/// expired or was evicted from the pool, one never submitted, and one whose receipt was pruned
/// past the retention horizon before its slot was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Admitted, in the encrypted mempool, not committed.
    Pending,
    /// Committed in a signed commitment (soft confirmation: it has a signed receipt), not
    /// published yet.
    Committed,
    /// Published: decrypted and included at its position.
    Included,
    /// Published in its place, but did not decrypt (its fee is charged).
    Failed,
    /// Published as dropped with its atomic bundle (a part of the bundle failed).
    Dropped,
    /// Left the pool uncommitted: its expiry slot passed (`slot`: the first slot it could no
    /// longer be included in). Known for the node's recent departures since its start.
    Expired,
    /// Left the pool uncommitted: pushed out by transactions paying more while the pool was
    /// full (`slot`: when). Known for the node's recent departures since its start.
    Evicted,
}

/// A transaction's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxStatus {
    /// The transaction.
    #[schema(value_type = String)]
    pub tx: TxId,
    /// Where it is.
    pub state: TxState,
    /// The slot that committed it (all states but `pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub slot: Option<Slot>,
    /// Its rollup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u32>)]
    pub rollup: Option<RollupId>,
    /// Its index in the rollup's committed block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// The sequencer's signed inclusion receipt (`veil_primitives::SignedReceipt`), when the
    /// node still holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SignedReceiptDoc>)]
    pub receipt: Option<SignedReceipt>,
}

/// What readiness checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// The sequencer thread runs.
    pub sequencer_running: bool,
    /// Keypers linked now.
    pub keypers_linked: u64,
    /// Keypers a slot needs to decrypt (threshold + 1).
    pub keypers_needed: u64,
}

// ----- Schema mirrors of the signed bid. -----
//
// `veil_auction::SignedBid` lives in a crate that does not know about OpenAPI; these mirror
// its JSON field by field (a test round-trips real bids through them, so they cannot drift)
// and the API takes the real type.

/// A builder-owned plaintext transaction (`veil_auction::PlaintextTx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaintextTxDoc {
    /// Its gas limit, counted against the rollup's.
    pub gas_limit: u64,
    /// The rollup-native transaction bytes (`0x` hex).
    #[schema(example = "0xdead")]
    pub data: String,
}

/// One rollup's proposed block (`veil_auction::RollupBlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupBlockDoc {
    /// The rollup.
    pub rollup: u32,
    /// Ciphertext ids (`0x` hex), in execution order.
    pub ciphertexts: Vec<String>,
    /// Builder-owned plaintext transactions, executed after the ciphertexts.
    pub plaintext: Vec<PlaintextTxDoc>,
}

/// A bid (`veil_auction::Bid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The slot bid for.
    pub slot: u64,
    /// The builder's ed25519 key (`0x` hex); it must hold collateral.
    pub builder: String,
    /// Replaces the builder's earlier bid for the same slot and rollup set if higher.
    pub sequence: u64,
    /// The amount (decimal string).
    #[schema(example = "1000")]
    pub amount: String,
    /// One block per rollup, sorted by rollup id.
    pub blocks: Vec<RollupBlockDoc>,
}

/// A signed bid (`veil_auction::SignedBid`): the builder's ed25519 signature over the bid's
/// signing bytes (domain `veil/bid/v1`, the chain id, then every field in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedBidDoc {
    /// The bid.
    pub message: BidDoc,
    /// The signature (`0x` hex, 64 bytes).
    pub signature: String,
}

impl SignedBidDoc {
    /// The mirror of a real bid.
    ///
    /// # Panics
    /// Never: every signed bid's JSON has the mirror's shape (tested).
    #[must_use]
    pub fn from_bid(bid: &SignedBid) -> SignedBidDoc {
        serde_json::to_value(bid)
            .and_then(serde_json::from_value)
            .expect("the mirror matches SignedBid's JSON")
    }

    /// The real bid.
    ///
    /// # Errors
    /// [`ErrorCode::MalformedRequest`] if a field does not decode (bad hex, bad amount).
    pub fn to_bid(&self) -> Result<SignedBid, ApiError> {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("bid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use veil_auction::{Bid, PlaintextTx, RollupBlock};

    fn bid() -> SignedBid {
        Bid {
            chain_id: ChainId(1),
            slot: Slot(9),
            builder: PublicKeyBytes(SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes()),
            sequence: 3,
            amount: Amount(1_000_000_000_000_000_000_000),
            blocks: vec![RollupBlock {
                rollup: RollupId(2),
                ciphertexts: vec![TxId([5; 32]), TxId([6; 32])],
                plaintext: vec![PlaintextTx { gas_limit: 21_000, data: vec![0xde, 0xad] }],
            }],
        }
        .sign(&SigningKey::from_bytes(&[3; 32]))
    }

    #[test]
    fn the_bid_mirror_has_the_real_bids_json_shape() {
        let real = bid();
        let doc = SignedBidDoc::from_bid(&real);
        assert_eq!(doc.message.amount, "1000000000000000000000");
        assert_eq!(doc.message.blocks[0].plaintext[0].data, "0xdead");
        assert_eq!(serde_json::to_value(&doc).unwrap(), serde_json::to_value(&real).unwrap());
        assert_eq!(doc.to_bid().unwrap(), real);
        let mut bad = doc;
        bad.message.amount = "01".into();
        assert_eq!(bad.to_bid().unwrap_err().code, ErrorCode::MalformedRequest);
    }

    #[test]
    fn every_code_has_a_status_and_errors_round_trip() {
        for &code in ErrorCode::ALL {
            let status = http_status(code);
            assert!((400..600).contains(&status), "{code}");
            if code.is_retryable() {
                assert!(matches!(status, 409 | 429 | 503 | 504), "{code} is retryable: {status}");
            }
            let e = ApiError::new(code, "why");
            let json = serde_json::to_string(&e.body()).unwrap();
            let body: ApiErrorBody = serde_json::from_str(&json).unwrap();
            assert_eq!(body.to_error(), Some(e));
        }
        let unknown =
            ApiErrorBody { code: 9999, name: "FROM_THE_FUTURE".into(), message: String::new() };
        assert_eq!(unknown.to_error(), None);
    }
}
