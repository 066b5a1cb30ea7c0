//! The canonical byte encoding behind every signature and hash in Veil.
//!
//! Fixed-width integers are big-endian; variable-length sequences carry a `u32` length prefix;
//! fixed-size ids are their raw bytes. Every signed or hashed message starts with a domain tag
//! (`veil/<kind>/v<version>`, see [`crate::signed`]) and the chain id, so that a signature for
//! one message type or one network is never valid for another. There is exactly one encoding
//! of each value, which is what makes "same inputs, same bytes" hold for outcome hashes.

use sha3::{Digest, Sha3_256};

use crate::{Amount, ChainId};

/// Writes the canonical encoding into a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder that starts with `domain` (its length, then its bytes) and the chain id.
    #[must_use]
    pub fn with_domain(domain: &[u8], chain_id: ChainId) -> Encoder {
        let mut e = Encoder { buf: Vec::with_capacity(256) };
        e.bytes(domain);
        e.u64(chain_id.0);
        e
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u128`.
    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends an amount as a big-endian `u128`.
    pub fn amount(&mut self, v: Amount) {
        self.u128(v.0);
    }

    /// Appends a boolean as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Appends fixed-size bytes without a length prefix.
    pub fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Appends a length (as `u32`, saturating: callers bound lengths far below 2^32).
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Appends variable-length bytes with a `u32` length prefix.
    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.fixed(v);
    }

    /// Reserves room for `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The sha3-256 digest of the bytes written so far.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        sha3_256(&self.buf)
    }

    /// The bytes written.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// sha3-256 of `bytes`.
#[must_use]
pub fn sha3_256(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_chain_separate() {
        let a = Encoder::with_domain(b"veil/bid/v1", ChainId(1)).digest();
        let b = Encoder::with_domain(b"veil/bid/v1", ChainId(2)).digest();
        let c = Encoder::with_domain(b"veil/bie/v1", ChainId(1)).digest();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn big_endian_fixed_width() {
        let mut e = Encoder::default();
        e.u32(1);
        e.amount(Amount(2));
        e.bytes(b"ab");
        let bytes = e.into_bytes();
        assert_eq!(bytes.len(), 4 + 16 + 4 + 2);
        assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
        assert_eq!(bytes[19], 2);
    }
}
