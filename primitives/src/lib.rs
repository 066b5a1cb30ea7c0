//! Shared domain types for Veil: the vocabulary every other crate speaks.
//!
//! Every crate of the workspace speaks about the same few things: slots, eons (committee key
//! epochs), rollups, amounts of money, transaction ids, the public metadata of a ciphertext,
//! signed messages and error codes. They live here, once, so that the crypto core, the
//! mempool, the auction, the sequencer and the wire types agree on their meaning and on their
//! encodings, and so that no core has to depend on another to share a type.
//!
//! | item | what |
//! |---|---|
//! | [`Slot`], [`Eon`], [`RollupId`], [`ChainId`], [`Amount`] | integer newtypes |
//! | [`TxId`], [`BundleId`], [`PublicKeyBytes`], [`byte_id!`] | fixed-size byte ids with hex encodings |
//! | [`TxMeta`], [`BundleRef`], [`CiphertextIndex`] | a ciphertext's public metadata and read access to admitted ones ([`meta`]) |
//! | [`Signed`], [`SignedMessage`], [`SignatureBytes`] | ed25519 signatures with one domain-separation convention ([`signed`]) |
//! | [`PayerAuthorization`] | a fee payer's signature over one ciphertext's id, carried with every submitted ciphertext ([`payer`]) |
//! | [`Receipt`], [`SignedReceipt`], [`CommitmentId`] | the sequencer's signed inclusion receipt, shared by the sequencer, the wire and clients ([`receipt`]) |
//! | [`DepositNotice`], [`AccountKind`], [`DepositId`] | a bridge-signed notice of money that arrived on the settlement layer, credited once per deposit id ([`deposit`]) |
//! | [`encoding::Encoder`] | the canonical byte encoding behind every signature and hash |
//! | [`ErrorCode`] | the one table of typed, stable error codes ([`error_code`]) |
//!
//! # Encodings
//!
//! Every type serialises in two ways, chosen by [`serde::Serializer::is_human_readable`]:
//!
//! - **Human-readable (JSON)** follows builder-specs habits: byte strings are `0x`-prefixed
//!   lower-case hex, and [`Amount`]s are decimal strings (a `u128` does not fit a JSON number).
//!   Small integers (`Slot`, `Eon`, `RollupId`, `ChainId`) stay JSON numbers.
//! - **Binary (postcard and friends)** uses the raw integers and raw bytes.
//!
//! Decoding is strict: hex must carry the `0x` prefix and have exactly the right length,
//! amounts must be plain decimal digits without sign, spaces or leading zeros.
//!
//! ```
//! use veil_primitives::{Amount, TxId};
//! let amount: Amount = serde_json::from_str("\"1000000000000000000000\"").unwrap();
//! assert_eq!(amount, Amount(1_000_000_000_000_000_000_000));
//! let id = TxId([7u8; 32]);
//! let json = serde_json::to_string(&id).unwrap();
//! assert!(json.starts_with("\"0x0707"));
//! assert_eq!(serde_json::from_str::<TxId>(&json).unwrap(), id);
//! ```

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

pub mod deposit;
pub mod encoding;
pub mod error_code;
pub mod hexbytes;
pub mod meta;
pub mod payer;
pub mod receipt;
pub mod signed;

pub use deposit::{AccountKind, DepositId, DepositNotice, SignedDepositNotice};
pub use error_code::ErrorCode;
pub use meta::{CiphertextIndex, TxMeta};
pub use payer::PayerAuthorization;
pub use receipt::{CommitmentId, Receipt, SignedReceipt};
pub use signed::{SignatureBytes, Signed, SignedMessage};

/// A slot number: the unit of time in which one block per rollup is sold and published.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Slot(pub u64);

impl Slot {
    /// The slot after this one, saturating at `u64::MAX`.
    #[must_use]
    pub fn next(self) -> Slot {
        Slot(self.0.saturating_add(1))
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An eon: the epoch of one committee key. Ciphertexts name the eon whose key they were
/// encrypted to; keys rotate from one eon to the next without downtime.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Eon(pub u64);

impl fmt::Display for Eon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of a registered rollup.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RollupId(pub u32);

impl fmt::Display for RollupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of the Veil network a message belongs to; it separates devnets, testnets and
/// mainnets so that nothing signed or encrypted for one is valid on another.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ChainId(pub u64);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount of the settlement currency, in its smallest unit.
///
/// JSON carries it as a decimal string; arithmetic on it is always checked by the callers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(pub u128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// The largest amount any Veil ledger accepts (2^113, about 1.04e34): with at most 64
    /// rollups per slot and the auction solver's scaling by 128, every sum formed from such
    /// amounts fits in a `u128`. Fees, bids, deposits and reserves above it are refused.
    pub const MAX: Amount = Amount(1 << 113);

    /// `self + other`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other > self`.
    #[must_use]
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self - other`, clamped at zero.
    #[must_use]
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// `self + other`, clamped at `u128::MAX`.
    #[must_use]
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a decimal amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    /// The string was empty.
    #[error("empty amount")]
    Empty,
    /// A character other than an ASCII digit was found.
    #[error("amount must be decimal digits only")]
    NotDecimal,
    /// The amount had a leading zero (only `"0"` itself may start with `0`).
    #[error("amount has a leading zero")]
    LeadingZero,
    /// The amount does not fit in 128 bits.
    #[error("amount overflows u128")]
    Overflow,
}

impl std::str::FromStr for Amount {
    type Err = ParseAmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseAmountError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseAmountError::NotDecimal);
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(ParseAmountError::LeadingZero);
        }
        s.parse::<u128>().map(Amount).map_err(|_| ParseAmountError::Overflow)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&self.0)
        } else {
            serializer.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            s.parse().map_err(de::Error::custom)
        } else {
            u128::deserialize(deserializer).map(Amount)
        }
    }
}

/// Declares a fixed-size byte id: a `pub struct $name(pub [u8; $len])` with `0x`-hex
/// `Display`/`FromStr`, a short `Debug`, and the workspace's serde conventions (hex in JSON,
/// raw bytes in binary encodings). Use it for every fixed-size id or key in any crate.
///
/// ```
/// veil_primitives::byte_id!(
///     /// A made-up 4-byte id.
///     Tag,
///     4
/// );
/// let t: Tag = "0x01020304".parse().unwrap();
/// assert_eq!(t.to_string(), "0x01020304");
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"0x01020304\"");
/// ```
#[macro_export]
macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::hexbytes::encode(&self.0[..4]))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(&$crate::hexbytes::encode(&self.0))
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::hexbytes::HexError;

            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                $crate::hexbytes::decode_fixed::<$len>(s).map($name)
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::hexbytes::serialize_fixed(&self.0, serializer)
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::hexbytes::deserialize_fixed::<D, $len>(deserializer).map($name)
            }
        }
    };
}

/// Re-exports for [`byte_id!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

byte_id!(
    /// A transaction id: sha3-256 of the ciphertext's canonical encoding. Two submissions of
    /// the same ciphertext have the same id, which is what makes admission idempotent.
    TxId,
    32
);

byte_id!(
    /// The id of an atomic bundle: a set of ciphertexts, one per rollup, that are included
    /// together or not at all. Chosen by the user (random 32 bytes).
    BundleId,
    32
);

byte_id!(
    /// An ed25519 public key in its 32-byte encoding. Used for builders, fee payers, rollup
    /// admins and keyper identities.
    PublicKeyBytes,
    32
);

/// Where a ciphertext sits in an atomic bundle: the bundle's id, this part's index and the
/// part count. A bundle is `count` ciphertexts, one per rollup, with indexes `0..count`,
/// included together or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BundleRef {
    /// The bundle, shared by all its parts.
    pub id: BundleId,
    /// This part's position, `0..count`.
    pub index: u16,
    /// How many parts the bundle has.
    pub count: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_json_is_decimal_string() {
        let a = Amount(u128::MAX);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
    }

    #[test]
    fn amount_rejects_non_canonical() {
        for bad in [
            "\"\"",
            "\"01\"",
            "\"-1\"",
            "\"1.0\"",
            "\" 1\"",
            "1",
            "\"340282366920938463463374607431768211456\"",
        ] {
            assert!(serde_json::from_str::<Amount>(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(serde_json::from_str::<Amount>("\"0\"").unwrap(), Amount(0));
    }

    #[test]
    fn amount_binary_roundtrip() {
        let a = Amount(123_456_789_000);
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Amount>(&bytes).unwrap(), a);
    }

    #[test]
    fn txid_hex_strict() {
        let id = TxId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s.parse::<TxId>().unwrap(), id);
        assert!(s.trim_start_matches("0x").parse::<TxId>().is_err());
        assert!("0xabcd".parse::<TxId>().is_err());
        assert!(format!("{}zz", &s[..s.len() - 2]).parse::<TxId>().is_err());
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(postcard::from_bytes::<TxId>(&bytes).unwrap(), id);
    }

    proptest::proptest! {
        #[test]
        fn amount_string_roundtrip(v: u128) {
            let a = Amount(v);
            proptest::prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = s.parse::<Amount>();
            let _ = s.parse::<TxId>();
        }
    }
}
