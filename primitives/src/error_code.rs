//! [`ErrorCode`]: the one table of typed error codes that every Veil interface answers with.
//!
//! The QUIC ingress sends the numeric value, the HTTP API sends the name, logs and metrics
//! use the name. Both are stable: a code is never renumbered or renamed, only added. Clients
//! must accept numbers they do not know ([`ErrorCode::from_u16`] returns `None` for them).
//!
//! Ranges: 1–9 framing, 10–19 the ciphertext and its metadata, 20–29 quotas, 30–39 request
//! shape and timing (of QUIC frames and of HTTP requests), 40–49 the service, 100–199 the
//! auction (bids, registries, collateral), 200–299 commitments and the keyper protocol.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[doc = $doc:expr])+ $variant:ident = $value:literal, $name:literal, $retry:literal; )+) => {
        /// A typed, stable error code. See the module docs for the numbering.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant = $value, )+
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code for a wire value, or `None` for a value this version does not know.
            #[must_use]
            pub const fn from_u16(value: u16) -> Option<ErrorCode> {
                match value {
                    $( $value => Some(ErrorCode::$variant), )+
                    _ => None,
                }
            }

            /// The upper-snake-case name used in JSON, logs, metrics and the specs.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )+
                }
            }

            /// The code with this name, or `None`.
            #[must_use]
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name {
                    $( $name => Some(ErrorCode::$variant), )+
                    _ => None,
                }
            }

            /// True when the same request may succeed later unchanged (load, quotas, storage,
            /// shutdown); false when the request itself is wrong and must be changed.
            #[must_use]
            pub const fn is_retryable(self) -> bool {
                match self {
                    $( ErrorCode::$variant => $retry, )+
                }
            }
        }
    };
}

error_codes! {
    /// The frame body did not decode (bad encoding, trailing bytes, length prefix < 2).
    MalformedFrame = 1, "MALFORMED_FRAME", false;
    /// The frame's length prefix exceeded the maximum frame size; its body was skipped.
    FrameTooLarge = 2, "FRAME_TOO_LARGE", false;
    /// The frame type is known but its version is not supported.
    UnsupportedVersion = 3, "UNSUPPORTED_VERSION", false;
    /// The frame type byte is unknown (or is a server-to-client type).
    UnknownFrameType = 4, "UNKNOWN_FRAME_TYPE", false;
    /// The ciphertext bytes did not decode (not canonical, not on the curve, ...).
    InvalidCiphertext = 10, "INVALID_CIPHERTEXT", false;
    /// The ciphertext's validity proof did not verify.
    BadProof = 11, "BAD_PROOF", false;
    /// The ciphertext is encrypted to an eon that is not accepted now.
    WrongEon = 12, "WRONG_EON", false;
    /// Another pending ciphertext uses the same ephemeral key.
    EphemeralKeyReused = 13, "EPHEMERAL_KEY_REUSED", false;
    /// The expiry slot has passed, or lies further ahead than the pool accepts.
    Expired = 14, "EXPIRED", false;
    /// The max fee is under the pool's minimum fee.
    FeeTooLow = 15, "FEE_TOO_LOW", false;
    /// One ciphertext exceeds the maximum ciphertext size.
    CiphertextTooLarge = 16, "CIPHERTEXT_TOO_LARGE", false;
    /// The message names another chain id than the node's.
    WrongChain = 17, "WRONG_CHAIN", false;
    /// The gas limit is zero, or above the gas limit of the rollup's blocks.
    InvalidGasLimit = 18, "INVALID_GAS_LIMIT", false;
    /// The max fee exceeds the largest amount the ledger accepts.
    FeeTooHigh = 19, "FEE_TOO_HIGH", false;
    /// The fee payer already has the maximum number of pending transactions.
    SenderQuota = 20, "SENDER_QUOTA", true;
    /// The connection exceeded its submission rate.
    ConnectionQuota = 21, "CONNECTION_QUOTA", true;
    /// The pool (or the rollup's share of it) is full of transactions paying at least as much.
    PoolFull = 22, "POOL_FULL", true;
    /// The fee payer's available balance (its fee account's balance less what its pending
    /// transactions reserve) is below the transaction's max fee.
    InsufficientBalance = 23, "INSUFFICIENT_BALANCE", true;
    /// The fee payer signed a ciphertext whose validity proof failed, recently: its
    /// submissions are refused for a while (60 s by default).
    Suspended = 24, "SUSPENDED", true;
    /// The bundle is inconsistent: parts disagree on the bundle id, the count does not match,
    /// an index repeats, two parts name the same rollup, a lone part of a bundle was sent
    /// alone, a bundle part has no bundle reference, or only some parts are known.
    BadBundle = 30, "BAD_BUNDLE", false;
    /// The request's deadline passed before it could be admitted.
    DeadlineExceeded = 31, "DEADLINE_EXCEEDED", true;
    /// The request id is 0 (reserved for answers to undecodable frames) or is already in
    /// flight on this stream.
    BadRequestId = 32, "BAD_REQUEST_ID", false;
    /// An HTTP request did not parse: bad JSON, a field of the wrong type, hex without `0x` or
    /// of the wrong length, an amount that is not a plain decimal string, a bad query or path
    /// parameter, or a body that is not `application/json`.
    MalformedRequest = 33, "MALFORMED_REQUEST", false;
    /// An HTTP request body exceeds the server's body size limit, or a batch holds more items
    /// than the server accepts in one request.
    RequestTooLarge = 34, "REQUEST_TOO_LARGE", false;
    /// A page size above the maximum the server returns in one page.
    PageLimitExceeded = 35, "PAGE_LIMIT_EXCEEDED", false;
    /// No such route, or the resource asked for is not known (yet): a slot not decided or not
    /// published, a transaction id the node has no record of.
    NotFound = 36, "NOT_FOUND", false;
    /// The route exists but not with this HTTP method.
    MethodNotAllowed = 37, "METHOD_NOT_ALLOWED", false;
    /// Too many requests from this address, or signed by this key, in too short a time (a
    /// token bucket per address and per key). Retry after the `Retry-After` interval.
    RateLimited = 38, "RATE_LIMITED", true;
    /// Durable storage failed; nothing was stored. Retrying later may work.
    StorageUnavailable = 40, "STORAGE_UNAVAILABLE", true;
    /// The node is shutting down.
    ShuttingDown = 41, "SHUTTING_DOWN", true;
    /// The node runs but cannot do its whole job now (its sequencer thread stopped, or fewer
    /// keypers are linked than decryption needs).
    NotReady = 42, "NOT_READY", true;
    /// This node keeps bids sealed: the current top bid is not shown (its configuration's
    /// `top_bid_visible` is off).
    BidsSealed = 43, "BIDS_SEALED", false;
    /// No auction is open for this slot (never opened, or already closed).
    SlotNotOpen = 100, "SLOT_NOT_OPEN", false;
    /// The slot's bidding deadline has passed.
    SlotClosed = 101, "SLOT_CLOSED", false;
    /// Slots must be opened in strictly increasing order.
    SlotOutOfOrder = 102, "SLOT_OUT_OF_ORDER", false;
    /// A slot was closed before its deadline.
    DeadlineNotReached = 103, "DEADLINE_NOT_REACHED", true;
    /// No closed, unsettled outcome exists for this slot.
    NothingToSettle = 104, "NOTHING_TO_SETTLE", false;
    /// The builder key has never deposited collateral.
    UnknownBuilder = 105, "UNKNOWN_BUILDER", false;
    /// The 32 bytes are not a valid (or are a weak) ed25519 public key.
    InvalidPublicKey = 106, "INVALID_PUBLIC_KEY", false;
    /// The signature does not verify under the claimed key and the domain-separated encoding.
    BadSignature = 107, "BAD_SIGNATURE", false;
    /// The bid or withdrawal exceeds the builder's available collateral.
    InsufficientCollateral = 108, "INSUFFICIENT_COLLATERAL", false;
    /// The bid names no rollup.
    EmptyRollupSet = 109, "EMPTY_ROLLUP_SET", false;
    /// The bid's rollup blocks are not sorted by rollup id without repetition.
    RollupSetNotCanonical = 110, "ROLLUP_SET_NOT_CANONICAL", false;
    /// The bid names more rollups, ciphertexts or plaintext bytes than the limits allow.
    BidTooLarge = 111, "BID_TOO_LARGE", false;
    /// The rollup id is not registered.
    UnknownRollup = 112, "UNKNOWN_ROLLUP", false;
    /// The rollup is registered but inactive.
    InactiveRollup = 113, "INACTIVE_ROLLUP", false;
    /// The amount is below the reserve total of the rollups named.
    BelowReserve = 114, "BELOW_RESERVE", false;
    /// The amount exceeds the auction's maximum amount.
    AmountTooLarge = 115, "AMOUNT_TOO_LARGE", false;
    /// The ciphertext id is not in the mempool.
    UnknownCiphertext = 116, "UNKNOWN_CIPHERTEXT", false;
    /// The ciphertext expires before the slot.
    ExpiredCiphertext = 117, "EXPIRED_CIPHERTEXT", false;
    /// The ciphertext was placed in another rollup's block than the one it is for.
    CiphertextRollupMismatch = 118, "CIPHERTEXT_ROLLUP_MISMATCH", false;
    /// The same ciphertext id appears twice in the bid.
    DuplicateCiphertext = 119, "DUPLICATE_CIPHERTEXT", false;
    /// A rollup's block exceeds its gas limit per slot.
    GasLimitExceeded = 120, "GAS_LIMIT_EXCEEDED", false;
    /// An atomic bundle is only partly in the bid.
    PartialBundle = 121, "PARTIAL_BUNDLE", false;
    /// A bundle's parts disagree on their count, or repeat an index or a rollup.
    InconsistentBundle = 122, "INCONSISTENT_BUNDLE", false;
    /// The sequence number is not above the one already held.
    StaleSequence = 123, "STALE_SEQUENCE", false;
    /// The builder holds the maximum number of bids for the slot.
    TooManyBids = 124, "TOO_MANY_BIDS", true;
    /// More rollups are registered than the auction supports.
    TooManyRollups = 125, "TOO_MANY_ROLLUPS", false;
    /// A revenue policy's basis points do not sum to exactly 10,000.
    PolicyNotWhole = 126, "POLICY_NOT_WHOLE", false;
    /// A revenue bucket name is empty, too long, repeated or not lower-case ASCII.
    BadBucketName = 127, "BAD_BUCKET_NAME", false;
    /// A revenue policy lacks a required bucket.
    MissingBucket = 128, "MISSING_BUCKET", false;
    /// A rollup's gas limit per slot is zero.
    ZeroGasLimit = 129, "ZERO_GAS_LIMIT", false;
    /// The rollup id is registered already.
    RollupExists = 130, "ROLLUP_EXISTS", false;
    /// The signed request's nonce is not above the last one used (a replay).
    StaleNonce = 131, "STALE_NONCE", false;
    /// The update would take effect before the earliest slot allowed.
    EffectiveSlotTooEarly = 132, "EFFECTIVE_SLOT_TOO_EARLY", false;
    /// A deposit or withdrawal of zero.
    ZeroAmount = 133, "ZERO_AMOUNT", false;
    /// An amount computation would overflow.
    Overflow = 134, "OVERFLOW", false;
    /// A deposit notice reuses a settlement-layer deposit id already credited with another
    /// notice (the same notice again is answered as before, never credited twice).
    DepositConflict = 135, "DEPOSIT_CONFLICT", false;
    /// A deposit notice signed by a key that is not the node's configured bridge key (or the
    /// node has no bridge key configured).
    UnknownBridgeKey = 136, "UNKNOWN_BRIDGE_KEY", false;
    /// A deposit notice for an account kind this node does not credit.
    UnsupportedAccountKind = 137, "UNSUPPORTED_ACCOUNT_KIND", false;
    /// A second, different commitment for a slot that already has one (refused, reported).
    Equivocation = 200, "EQUIVOCATION", false;
    /// Shares were asked for a slot whose commitment this keyper has not released.
    NotReleased = 201, "NOT_RELEASED", true;
    /// A responder set that is not valid for the committee or does not name the keyper.
    InvalidResponders = 202, "INVALID_RESPONDERS", false;
    /// A keyper link whose hello was missing, late, badly signed, for another committee, or
    /// not bound to this connection.
    KeyperUnauthenticated = 203, "KEYPER_UNAUTHENTICATED", false;
    /// A newer authenticated connection of the same keyper replaced this one.
    KeyperReplaced = 204, "KEYPER_REPLACED", false;
    /// A frame this side of the protocol does not accept at this point (or at all).
    UnexpectedFrame = 205, "UNEXPECTED_FRAME", false;
    /// A share batch for another keyper than the one this link authenticated.
    WrongKeyper = 206, "WRONG_KEYPER", false;
}

impl ErrorCode {
    /// The wire value.
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// JSON carries the name (`"BAD_SIGNATURE"`), binary encodings the number.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.name())
        } else {
            serializer.serialize_u16(self.as_u16())
        }
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            ErrorCode::from_name(&s)
                .ok_or_else(|| de::Error::custom(format!("unknown error code {s}")))
        } else {
            let v = u16::deserialize(deserializer)?;
            ErrorCode::from_u16(v)
                .ok_or_else(|| de::Error::custom(format!("unknown error code {v}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn values_and_names_are_unique_and_round_trip() {
        let mut values = HashSet::new();
        let mut names = HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(values.insert(code.as_u16()), "{code} repeats its value");
            assert!(names.insert(code.name()), "{code} repeats its name");
            assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(code));
            assert_eq!(ErrorCode::from_name(code.name()), Some(code));
            assert!(code.name().bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        }
        assert_eq!(ErrorCode::from_u16(0), None);
        assert!(ErrorCode::ALL.windows(2).all(|w| w[0] < w[1]), "ALL is in numeric order");
    }

    #[test]
    fn stable_values() {
        // Pinned: these travel on the wire and are written in PROTOCOL.md.
        assert_eq!(ErrorCode::MalformedFrame.as_u16(), 1);
        assert_eq!(ErrorCode::BadProof.as_u16(), 11);
        assert_eq!(ErrorCode::BadBundle.as_u16(), 30);
        assert_eq!(ErrorCode::ShuttingDown.as_u16(), 41);
        assert_eq!(ErrorCode::BadSignature.as_u16(), 107);
    }

    #[test]
    fn json_is_the_name() {
        let json = serde_json::to_string(&ErrorCode::SlotClosed).unwrap();
        assert_eq!(json, "\"SLOT_CLOSED\"");
        assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), ErrorCode::SlotClosed);
        assert!(serde_json::from_str::<ErrorCode>("\"NOPE\"").is_err());
        let bin = postcard::to_allocvec(&ErrorCode::PoolFull).unwrap();
        assert_eq!(postcard::from_bytes::<ErrorCode>(&bin).unwrap(), ErrorCode::PoolFull);
    }
}
