//! Errors of the crypto core. Callers branch on variants, never on message text.

use veil_primitives::{ChainId, Eon, TxId};

use crate::keys::KeyperIndex;

/// Everything that can go wrong in `veil-crypto`.
///
/// None of the variants carries secret material or plaintext: an error never reveals more
/// than the fact that an operation failed and why, in public terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A byte string ended before the structure it encodes was complete.
    #[error("encoding is truncated: needed {needed} bytes, had {had}")]
    Truncated {
        /// How many bytes the structure needed at the point of failure.
        needed: usize,
        /// How many bytes were there.
        had: usize,
    },
    /// An encoding is longer than the largest valid one.
    #[error("encoding of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// The length given.
        len: usize,
        /// The largest valid length.
        max: usize,
    },
    /// Bytes were left over after a complete structure.
    #[error("{0} trailing bytes after the encoding")]
    TrailingBytes(usize),
    /// The encoding's version byte is not one this build understands.
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    /// A field holds a value outside its allowed set (for example a flag that is not 0 or 1,
    /// or a bundle index not below the bundle's part count).
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
    /// A group element is not the canonical encoding of a point on the curve.
    #[error("{0}: not a canonical encoding of a curve point")]
    BadPoint(&'static str),
    /// A group element is the identity where that is not allowed.
    #[error("{0}: point is the identity")]
    IdentityPoint(&'static str),
    /// A scalar is not below the group order.
    #[error("{0}: scalar is not canonical")]
    BadScalar(&'static str),
    /// The payload is longer than the largest size bucket allows.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        /// The payload length.
        len: usize,
        /// The largest payload one ciphertext can carry.
        max: usize,
    },
    /// The encrypted body's length is not one of the padding buckets.
    #[error("encrypted body length {0} is not a padding bucket")]
    BadBodyLength(usize),
    /// The ciphertext was encrypted for another eon's committee key.
    #[error("ciphertext is for eon {found}, the committee key is for eon {expected}")]
    WrongEon {
        /// The eon of the key set checking it.
        expected: Eon,
        /// The eon named by the ciphertext.
        found: Eon,
    },
    /// The ciphertext (or share batch) names another chain.
    #[error("message is for chain {found}, expected chain {expected}")]
    WrongChain {
        /// The chain of the key set checking it.
        expected: ChainId,
        /// The chain named by the message.
        found: ChainId,
    },
    /// The validity proof does not verify: the ciphertext was tampered with (payload,
    /// associated data, ephemeral key) or was not made by someone who knows its randomness.
    #[error("validity proof does not verify")]
    BadProof,
    /// The body does not open under the key derived from the combined key `K = x·U`: the
    /// ChaCha20-Poly1305 tag does not verify. The sender derived the payload key wrongly, used
    /// another nonce or other associated data, or sealed something else. Only the diagnostic
    /// decryption of one ciphertext ([`crate::dev::DevCommittee::decrypt`]) reports it; block
    /// decryption reports [`crate::DecryptOutcome::Undecryptable`].
    #[error("the AEAD tag does not verify under the key derived from the committee key")]
    AeadFailure,
    /// The body opened (the AEAD tag verifies) but the padded plaintext is malformed: its
    /// length prefix runs past the bucket, or a byte after the payload is not zero. Reported
    /// like [`CryptoError::AeadFailure`].
    #[error("the body opens, but its padding is malformed")]
    BadPadding,
    /// A committee public key set is inconsistent (its parts do not belong to one key).
    #[error("inconsistent public key set: {0}")]
    InconsistentKeySet(&'static str),
    /// Threshold parameters are invalid (for example more shares needed than keypers).
    #[error("invalid threshold parameters: {0}")]
    InvalidThreshold(&'static str),
    /// A keyper index is not a member of the committee.
    #[error("keyper {0} is not a member of the committee")]
    UnknownKeyper(KeyperIndex),
    /// A responder set does not have exactly `t + 1` distinct committee members.
    #[error("invalid responder set: {0}")]
    InvalidResponderSet(&'static str),
    /// A signature does not verify under the claimed signer's key.
    #[error("bad signature from keyper {0}")]
    BadSignature(KeyperIndex),
    /// A share batch does not cover the block's ciphertexts one to one, in order.
    #[error("share batch from keyper {keyper} does not match the block (at position {position})")]
    ShareBatchMismatch {
        /// The keyper whose batch does not match.
        keyper: KeyperIndex,
        /// The first position at which it differs from the block.
        position: usize,
    },
    /// A ciphertext id appears twice in a list that must not repeat ids.
    #[error("ciphertext {0} appears twice")]
    DuplicateCiphertext(TxId),
    /// Fewer than `t + 1` keypers supplied correct shares; nothing is decrypted.
    #[error("not enough correct shares: need {needed}, have {available}")]
    NotEnoughShares {
        /// Shares needed (`t + 1`).
        needed: usize,
        /// Keypers whose shares are present and not blamed.
        available: usize,
        /// The keypers blamed on the way (so that the caller can ask others for shares).
        blamed: Vec<crate::combine::Blame>,
    },
    /// A JSON document (committee file, key share file) could not be parsed.
    #[error("malformed key file: {0}")]
    KeyFile(String),
}
