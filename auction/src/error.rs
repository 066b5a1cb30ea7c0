//! Every way the auction refuses an input or fails an operation.
//!
//! Callers branch on the variant (and on [`AuctionError::code`], the typed
//! [`ErrorCode`] every Veil interface answers with), never on the message text. A rejected input never changes any state: a builder's
//! other bids, balances and the registries are untouched.

use veil_primitives::signed::SignatureError;
use veil_primitives::{
    Amount, BundleId, ChainId, DepositId, ErrorCode, PublicKeyBytes, RollupId, Slot, TxId,
};

/// Why the auction refused an input or could not complete an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuctionError {
    /// The message was signed for another Veil network.
    #[error("message is for chain {got}, this auction runs chain {expected}")]
    WrongChain {
        /// This auction's chain id.
        expected: ChainId,
        /// The chain id in the message.
        got: ChainId,
    },
    /// No auction is open for this slot (never opened, or already closed).
    #[error("slot {0} is not open for bids")]
    SlotNotOpen(Slot),
    /// The slot's bidding deadline has passed; bids and replacements are refused.
    #[error("slot {slot} closed at {deadline_ms} ms (now {now_ms} ms)")]
    SlotClosed {
        /// The slot.
        slot: Slot,
        /// Its deadline, in the caller's millisecond clock.
        deadline_ms: u64,
        /// The time the caller passed in.
        now_ms: u64,
    },
    /// Slots must be opened in strictly increasing order.
    #[error("slot {slot} cannot be opened: slot {last} was already opened")]
    SlotOutOfOrder {
        /// The slot asked for.
        slot: Slot,
        /// The highest slot opened so far.
        last: Slot,
    },
    /// `close` was called before the slot's deadline.
    #[error("slot {slot} closes at {deadline_ms} ms, it is only {now_ms} ms")]
    DeadlineNotReached {
        /// The slot.
        slot: Slot,
        /// Its deadline.
        deadline_ms: u64,
        /// The time the caller passed in.
        now_ms: u64,
    },
    /// No closed, unsettled outcome exists for this slot.
    #[error("slot {0} has no outcome awaiting settlement")]
    NothingToSettle(Slot),
    /// The builder key has never deposited collateral.
    #[error("unknown builder {0}")]
    UnknownBuilder(PublicKeyBytes),
    /// The 32 bytes are not a valid ed25519 public key.
    #[error("invalid ed25519 public key {0}")]
    InvalidPublicKey(PublicKeyBytes),
    /// The signature does not verify under the claimed key and the domain-separated encoding.
    #[error("bad signature")]
    BadSignature,
    /// The bid (or withdrawal) exceeds the builder's available collateral.
    #[error("insufficient collateral: {required} required, {available} available")]
    InsufficientCollateral {
        /// Collateral available now (balance minus unsettled payments and pending withdrawals).
        available: Amount,
        /// The amount asked for.
        required: Amount,
    },
    /// The bid names no rollup.
    #[error("bid names no rollup")]
    EmptyRollupSet,
    /// The bid's rollup blocks are not in strictly increasing rollup id order (or repeat one).
    #[error("rollup blocks must be sorted by rollup id without repetition")]
    RollupSetNotCanonical,
    /// The bid names more rollups, ciphertexts or plaintext bytes than the configured limits.
    #[error("bid too large: {what} is {got}, the limit is {limit}")]
    BidTooLarge {
        /// Which limit: `rollups`, `ciphertexts` or `plaintext_bytes`.
        what: &'static str,
        /// The bid's figure.
        got: u64,
        /// The limit.
        limit: u64,
    },
    /// The rollup id is not registered (as of the slot).
    #[error("unknown rollup {0}")]
    UnknownRollup(RollupId),
    /// The rollup is registered but inactive for the slot.
    #[error("rollup {0} is inactive")]
    InactiveRollup(RollupId),
    /// The bid's amount is below the sum of the reserves of the rollups it names.
    #[error("amount {amount} is below the reserve total {reserve}")]
    BelowReserve {
        /// Sum of the reserves of the bid's rollups.
        reserve: Amount,
        /// The bid's amount.
        amount: Amount,
    },
    /// The amount exceeds [`crate::MAX_AMOUNT`], the bound that keeps every sum exact.
    #[error("amount {0} exceeds the maximum")]
    AmountTooLarge(Amount),
    /// The ciphertext id is not in the mempool.
    #[error("unknown ciphertext {0}")]
    UnknownCiphertext(TxId),
    /// The ciphertext expires before the slot.
    #[error("ciphertext {id} expired at slot {expiry}")]
    ExpiredCiphertext {
        /// The ciphertext.
        id: TxId,
        /// Its last valid slot.
        expiry: Slot,
    },
    /// The ciphertext was placed in another rollup's block than the one it was encrypted for.
    #[error("ciphertext {id} belongs to rollup {actual}, not {placed}")]
    CiphertextRollupMismatch {
        /// The ciphertext.
        id: TxId,
        /// The rollup whose block it was placed in.
        placed: RollupId,
        /// The rollup it was encrypted for.
        actual: RollupId,
    },
    /// The same ciphertext id appears twice in the bid.
    #[error("ciphertext {0} is used twice")]
    DuplicateCiphertext(TxId),
    /// A rollup's block exceeds its gas limit per slot.
    #[error("rollup {rollup}: {used} gas exceeds the limit {limit}")]
    GasLimitExceeded {
        /// The rollup.
        rollup: RollupId,
        /// Gas of the block (ciphertext gas limits plus plaintext gas), saturating.
        used: u64,
        /// The rollup's gas limit per slot.
        limit: u64,
    },
    /// An atomic bundle is only partly in the bid.
    #[error("bundle {0} is incomplete in the bid")]
    PartialBundle(BundleId),
    /// A bundle's parts disagree on their count, repeat an index or a rollup.
    #[error("bundle {0} has inconsistent parts")]
    InconsistentBundle(BundleId),
    /// The sequence number is not above the one already held for (builder, slot, rollup set).
    #[error("stale sequence number {got}: {current} is held")]
    StaleSequence {
        /// The bid's sequence number.
        got: u64,
        /// The sequence number of the bid already held.
        current: u64,
    },
    /// The builder already holds the maximum number of bids for this slot.
    #[error("builder holds {cap} bids for this slot, the cap")]
    TooManyBids {
        /// The per-builder, per-slot cap.
        cap: u32,
    },
    /// More active rollups than the auction can handle in one slot.
    #[error("{count} active rollups, at most {max} are supported per slot")]
    TooManyRollups {
        /// Active rollups.
        count: usize,
        /// The supported maximum.
        max: usize,
    },
    /// The revenue policy's basis points do not sum to 10,000.
    #[error("revenue policy sums to {0} basis points, not 10000")]
    PolicyNotWhole(u32),
    /// A bucket name is empty, too long, not `[a-z0-9_]`, or repeated.
    #[error("bad or repeated bucket name {0:?}")]
    BadBucketName(String),
    /// One of the standard buckets (treasury, user rebates, protocol fee) is missing.
    #[error("revenue policy lacks the {0:?} bucket")]
    MissingBucket(&'static str),
    /// A rollup's gas limit per slot is zero.
    #[error("gas limit per slot must be positive")]
    ZeroGasLimit,
    /// A registration names a rollup id that is already registered.
    #[error("rollup {0} is already registered")]
    RollupExists(RollupId),
    /// The admin message's nonce is not above the last accepted one.
    #[error("stale admin nonce {got}: {last} was accepted")]
    StaleNonce {
        /// The message's nonce.
        got: u64,
        /// The last accepted nonce.
        last: u64,
    },
    /// A registry change must take effect after every slot already opened.
    #[error("change takes effect at slot {effective}, the earliest allowed is {earliest}")]
    EffectiveSlotTooEarly {
        /// The requested slot.
        effective: Slot,
        /// The earliest slot at which a change may take effect.
        earliest: Slot,
    },
    /// A zero deposit or withdrawal.
    #[error("amount must be positive")]
    ZeroAmount,
    /// An arithmetic result does not fit; nothing was changed.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// The deposit id was credited already, with another notice.
    #[error("deposit {0} was credited already with another notice")]
    DepositConflict(DepositId),
    /// The notice names a bridge key that is not the configured one (or none is configured).
    #[error("{0} is not the configured bridge key")]
    UnknownBridgeKey(PublicKeyBytes),
}

impl AuctionError {
    /// The typed code for wire protocols, from the workspace's one table.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            AuctionError::WrongChain { .. } => ErrorCode::WrongChain,
            AuctionError::SlotNotOpen(_) => ErrorCode::SlotNotOpen,
            AuctionError::SlotClosed { .. } => ErrorCode::SlotClosed,
            AuctionError::SlotOutOfOrder { .. } => ErrorCode::SlotOutOfOrder,
            AuctionError::DeadlineNotReached { .. } => ErrorCode::DeadlineNotReached,
            AuctionError::NothingToSettle(_) => ErrorCode::NothingToSettle,
            AuctionError::UnknownBuilder(_) => ErrorCode::UnknownBuilder,
            AuctionError::InvalidPublicKey(_) => ErrorCode::InvalidPublicKey,
            AuctionError::BadSignature => ErrorCode::BadSignature,
            AuctionError::InsufficientCollateral { .. } => ErrorCode::InsufficientCollateral,
            AuctionError::EmptyRollupSet => ErrorCode::EmptyRollupSet,
            AuctionError::RollupSetNotCanonical => ErrorCode::RollupSetNotCanonical,
            AuctionError::BidTooLarge { .. } => ErrorCode::BidTooLarge,
            AuctionError::UnknownRollup(_) => ErrorCode::UnknownRollup,
            AuctionError::InactiveRollup(_) => ErrorCode::InactiveRollup,
            AuctionError::BelowReserve { .. } => ErrorCode::BelowReserve,
            AuctionError::AmountTooLarge(_) => ErrorCode::AmountTooLarge,
            AuctionError::UnknownCiphertext(_) => ErrorCode::UnknownCiphertext,
            AuctionError::ExpiredCiphertext { .. } => ErrorCode::ExpiredCiphertext,
            AuctionError::CiphertextRollupMismatch { .. } => ErrorCode::CiphertextRollupMismatch,
            AuctionError::DuplicateCiphertext(_) => ErrorCode::DuplicateCiphertext,
            AuctionError::GasLimitExceeded { .. } => ErrorCode::GasLimitExceeded,
            AuctionError::PartialBundle(_) => ErrorCode::PartialBundle,
            AuctionError::InconsistentBundle(_) => ErrorCode::InconsistentBundle,
            AuctionError::StaleSequence { .. } => ErrorCode::StaleSequence,
            AuctionError::TooManyBids { .. } => ErrorCode::TooManyBids,
            AuctionError::TooManyRollups { .. } => ErrorCode::TooManyRollups,
            AuctionError::PolicyNotWhole(_) => ErrorCode::PolicyNotWhole,
            AuctionError::BadBucketName(_) => ErrorCode::BadBucketName,
            AuctionError::MissingBucket(_) => ErrorCode::MissingBucket,
            AuctionError::ZeroGasLimit => ErrorCode::ZeroGasLimit,
            AuctionError::RollupExists(_) => ErrorCode::RollupExists,
            AuctionError::StaleNonce { .. } => ErrorCode::StaleNonce,
            AuctionError::EffectiveSlotTooEarly { .. } => ErrorCode::EffectiveSlotTooEarly,
            AuctionError::ZeroAmount => ErrorCode::ZeroAmount,
            AuctionError::Overflow(_) => ErrorCode::Overflow,
            AuctionError::DepositConflict(_) => ErrorCode::DepositConflict,
            AuctionError::UnknownBridgeKey(_) => ErrorCode::UnknownBridgeKey,
        }
    }
}

impl From<SignatureError> for AuctionError {
    fn from(e: SignatureError) -> AuctionError {
        match e {
            SignatureError::InvalidPublicKey(key) => AuctionError::InvalidPublicKey(key),
            SignatureError::BadSignature => AuctionError::BadSignature,
        }
    }
}
