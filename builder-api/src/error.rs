//! Errors of the SDK. Callers branch on variants, never on message text.

use veil_wire::error::ClientError;
use veil_wire::ingress::Reject;

/// A submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Encryption failed (wrong chain or eon for the key, payload too large, bad bundle).
    #[error("encryption: {0}")]
    Crypto(#[from] veil_crypto::CryptoError),
    /// The server refused the request with a code that retrying will not change, or retries
    /// of a retryable code ran out.
    #[error("rejected: {0}")]
    Rejected(Reject),
    /// The transport failed on every attempt; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        last: ClientError,
    },
    /// The server acknowledged ids other than the ones the client computed.
    #[error("the server acknowledged different ids than submitted")]
    WrongIds,
    /// The signing key is not the fee payer the ciphertext names.
    #[error("the signing key is not the ciphertext's fee payer {0}")]
    WrongPayer(veil_primitives::PublicKeyBytes),
    /// A bundle must have between 1 and the maximum number of parts, one per rollup.
    #[error("bad bundle: {0}")]
    BadBundle(&'static str),
    /// No inclusion receipt arrived in time (the transaction may not be committed yet; the
    /// node stores every receipt it signs).
    #[error("no inclusion receipt within the timeout")]
    ReceiptTimeout,
    /// The connection the transaction was submitted on is gone (or there is none): its
    /// receipt will not be pushed to this submitter.
    #[error("the connection that submitted the transaction is closed")]
    ReceiptConnectionClosed,
    /// A receipt arrived but is not for the expected chain or not signed by the expected
    /// sequencer key.
    #[error("bad receipt")]
    BadReceipt(#[from] veil_primitives::receipt::ReceiptError),
}

/// The reference builder ([`crate::builder`]) refused an input or a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuilderError {
    /// A mempool transaction's bundle metadata cannot be right: a part index not below the
    /// count, more parts than a bundle may have, or a second part at an index already held.
    #[error("transaction {tx}: bad bundle part {index} of {count}")]
    BadBundle {
        /// The transaction.
        tx: veil_primitives::TxId,
        /// Its claimed part index.
        index: u16,
        /// Its claimed part count.
        count: u16,
    },
    /// A mempool transaction's fee is above the largest amount any ledger accepts.
    #[error("transaction {tx}: fee above the largest amount")]
    FeeTooLarge {
        /// The transaction.
        tx: veil_primitives::TxId,
    },
    /// A rollup set is empty or does not parse (`0+1+2`).
    #[error("bad rollup set: {0}")]
    BadRollupSet(String),
    /// No strategy has this name.
    #[error("unknown strategy {0:?} (fee-order, bundle-aware, cross-rollup, shading)")]
    BadStrategy(String),
    /// A bid share outside 1 to 100 percent.
    #[error("bid percent {0}: must be 1 to 100")]
    BadPercent(u16),
}
