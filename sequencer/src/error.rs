//! Errors of the sequencer core. Callers branch on variants (and on [`SequencerError::code`]),
//! never on message text.

use veil_crypto::{CryptoError, KeyperIndex};
use veil_primitives::{ChainId, ErrorCode, Slot, TxId};

/// Why the sequencer core or a keyper refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SequencerError {
    /// The message is for another Veil network.
    #[error("message is for chain {got}, this node runs chain {expected}")]
    WrongChain {
        /// This node's chain.
        expected: ChainId,
        /// The message's chain.
        got: ChainId,
    },
    /// The commitment's finality proof (signature) does not verify.
    #[error("the commitment is not signed by the sequencer")]
    BadSignature,
    /// A second, different commitment for a slot that already has one: equivocation. The
    /// keyper refuses it and keeps both as evidence.
    #[error("slot {slot} already has a different commitment: equivocation")]
    Equivocation {
        /// The slot.
        slot: Slot,
        /// The id of the first commitment seen.
        first: [u8; 32],
        /// The id of the refused one.
        second: [u8; 32],
    },
    /// The commitment names a ciphertext this keyper never validated: it releases nothing.
    #[error("ciphertext {0} was not validated by this keyper")]
    UnvalidatedCiphertext(TxId),
    /// The commitment is for another eon than this keyper's key.
    #[error("commitment is for another eon than this keyper's key")]
    WrongEon,
    /// A share request for a slot this keyper has not released.
    #[error("slot {0} is not released")]
    NotReleased(Slot),
    /// A responder-set request that does not name this keyper, or is not valid.
    #[error("invalid responder set: {0}")]
    InvalidResponders(CryptoError),
    /// A keyper index outside the committee.
    #[error("keyper {0:?} is not in the committee")]
    UnknownKeyper(KeyperIndex),
    /// The crypto core refused an input.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The auction refused an input.
    #[error(transparent)]
    Auction(veil_auction::AuctionError),
    /// Restore: two persisted records of one slot contradict each other (the decided outcome
    /// does not hash to its commitment's `outcome_hash`, the signed commitment is not the
    /// decided one, the settled ledger is not the outcome's, two different decided records).
    /// The log is corrupt or was written by an incompatible version; nothing is restored
    /// from it.
    #[error("slot {slot}: persisted records disagree: {what}")]
    RecordMismatch {
        /// The slot.
        slot: Slot,
        /// Which records disagree.
        what: &'static str,
    },
    /// Restore: a slot has a signed, decrypted or settled record but no decided record, so
    /// its auction outcome (what its winners owe) is unknown.
    #[error("slot {0} has no decided record with its auction outcome")]
    MissingOutcome(Slot),
    /// Restore: the auction refused a slot's persisted outcome (a winner that the genesis
    /// state does not know or whose collateral does not cover it, slots out of order): the
    /// records do not fit the auction they are restored into.
    #[error("slot {slot}: the auction refused the restored outcome: {error}")]
    RestoreRefused {
        /// The slot.
        slot: Slot,
        /// The auction's refusal.
        error: veil_auction::AuctionError,
    },
}

impl SequencerError {
    /// The typed code for wire protocols.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            SequencerError::WrongChain { .. } => ErrorCode::WrongChain,
            SequencerError::BadSignature => ErrorCode::BadSignature,
            SequencerError::Equivocation { .. } => ErrorCode::Equivocation,
            SequencerError::UnvalidatedCiphertext(_) => ErrorCode::UnknownCiphertext,
            SequencerError::WrongEon => ErrorCode::WrongEon,
            SequencerError::NotReleased(_) => ErrorCode::NotReleased,
            SequencerError::InvalidResponders(_) | SequencerError::UnknownKeyper(_) => {
                ErrorCode::InvalidResponders
            }
            SequencerError::Crypto(_) => ErrorCode::InvalidCiphertext,
            SequencerError::Auction(e) | SequencerError::RestoreRefused { error: e, .. } => {
                e.code()
            }
            // Local start-up failures, never sent to a peer: the stored records are unusable.
            SequencerError::RecordMismatch { .. } | SequencerError::MissingOutcome(_) => {
                ErrorCode::StorageUnavailable
            }
        }
    }
}
