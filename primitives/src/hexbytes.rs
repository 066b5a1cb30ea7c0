//! `0x`-hex encoding for byte strings in human-readable formats, raw bytes in binary ones.
//!
//! Use [`serde_fixed`] and [`serde_vec`] with `#[serde(with = "...")]` on fields of wire
//! types, so that JSON carries `"0x…"` and postcard carries the bytes themselves.

use std::fmt;

use serde::{de, Deserializer, Serializer};

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string does not start with `0x`.
    #[error("hex string must start with 0x")]
    MissingPrefix,
    /// A character is not a hex digit, or the digit count is odd.
    #[error("invalid hex digits")]
    InvalidDigits,
    /// The decoded length is not the expected one.
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength {
        /// The required length in bytes.
        expected: usize,
        /// The length found.
        actual: usize,
    },
}

/// Encodes bytes as `0x`-prefixed lower-case hex.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    // Through a byte buffer and `encode_to_slice` (a table lookup per byte): `hex::encode`
    // collects the digits one `char` at a time, which made hex most of the cost of a slot's
    // JSON records (1,000 plaintexts of 512 bytes: about 5 ms).
    let mut out = vec![0u8; 2 + bytes.len() * 2];
    out[..2].copy_from_slice(b"0x");
    hex::encode_to_slice(bytes, &mut out[2..]).expect("the buffer holds two digits per byte");
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Decodes `0x`-prefixed hex of any length.
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    let digits = s.strip_prefix("0x").ok_or(HexError::MissingPrefix)?;
    hex::decode(digits).map_err(|_| HexError::InvalidDigits)
}

/// Decodes `0x`-prefixed hex of exactly `N` bytes.
pub fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let digits = s.strip_prefix("0x").ok_or(HexError::MissingPrefix)?;
    if digits.len() != 2 * N {
        return Err(HexError::WrongLength { expected: N, actual: digits.len() / 2 });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| HexError::InvalidDigits)?;
    Ok(out)
}

/// Serialises a fixed-size array: hex string when human-readable, otherwise a tuple of `N`
/// bytes (no length prefix: the length is part of the type).
pub fn serialize_fixed<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&encode(bytes))
    } else {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(N)?;
        for b in bytes {
            tuple.serialize_element(b)?;
        }
        tuple.end()
    }
}

/// Deserialises what [`serialize_fixed`] wrote, with strict length checks.
pub fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    if deserializer.is_human_readable() {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        decode_fixed::<N>(&s).map_err(de::Error::custom)
    } else {
        deserializer.deserialize_tuple(N, FixedVisitor::<N>)
    }
}

struct FixedVisitor<const N: usize>;

impl<'de, const N: usize> de::Visitor<'de> for FixedVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(de::Error::invalid_length(N + 1, &self));
        }
        Ok(out)
    }
}

/// Serialises a byte vector: hex string when human-readable, bytes otherwise.
pub fn serialize_vec<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&encode(bytes))
    } else {
        serializer.serialize_bytes(bytes)
    }
}

/// Deserialises what [`serialize_vec`] wrote.
pub fn deserialize_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    if deserializer.is_human_readable() {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        decode(&s).map_err(de::Error::custom)
    } else {
        deserializer.deserialize_byte_buf(VecVisitor)
    }
}

struct VecVisitor;

impl<'de> de::Visitor<'de> for VecVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(v)
    }
}

/// `#[serde(with = "veil_primitives::hexbytes::serde_fixed")]` for `[u8; N]` fields.
pub mod serde_fixed {
    pub use super::deserialize_fixed as deserialize;
    pub use super::serialize_fixed as serialize;
}

/// `#[serde(with = "veil_primitives::hexbytes::serde_vec")]` for `Vec<u8>` fields.
pub mod serde_vec {
    pub use super::deserialize_vec as deserialize;
    pub use super::serialize_vec as serialize;
}

/// A variable-length byte string written as `0x` hex (in JSON and on command lines) and as raw
/// bytes in binary encodings: payloads, plaintext transactions, anything not fixed-size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl std::str::FromStr for HexBytes {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode(s).map(HexBytes)
    }
}

impl serde::Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_vec(&self.0, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_vec(deserializer).map(HexBytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `0x` and two lower-case digits per byte, for every length, and back again.
    #[test]
    fn encode_is_prefixed_lower_case_hex_and_round_trips() {
        assert_eq!(encode(&[]), "0x");
        assert_eq!(encode(&[0x00, 0xab, 0x7f, 0xff]), "0x00ab7fff");
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode(&bytes);
            assert_eq!(s, format!("0x{}", hex::encode(&bytes)));
            assert_eq!(decode(&s).unwrap(), bytes);
        }
    }
}
