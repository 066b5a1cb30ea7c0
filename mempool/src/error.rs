//! Errors of the mempool crate. Callers branch on variants, never on message text.

use std::path::PathBuf;

use crate::wire::RejectCode;

/// A frame could not be decoded. The decoder stays in sync after each of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the maximum frame size; the body is skipped.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The announced length.
        len: u32,
        /// The configured maximum.
        max: usize,
    },
    /// The frame type byte is not one this side accepts.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownKind(u8),
    /// The frame type is known but not in this body version.
    #[error("frame type 0x{kind:02x} version {version} is not supported")]
    UnsupportedVersion {
        /// The frame type byte.
        kind: u8,
        /// The version byte received.
        version: u8,
    },
    /// The body is not a valid postcard encoding of the frame's struct, has trailing bytes,
    /// or the length prefix is below the 2-byte header.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl FrameError {
    /// The rejection code sent back for this error.
    #[must_use]
    pub fn reject_code(&self) -> RejectCode {
        match self {
            FrameError::TooLarge { .. } => RejectCode::FrameTooLarge,
            FrameError::UnknownKind(_) => RejectCode::UnknownFrameType,
            FrameError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
            FrameError::Malformed(_) => RejectCode::MalformedFrame,
        }
    }
}

/// A request refused by admission, with the code that goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Rejection {
    /// The typed reason.
    pub code: RejectCode,
    /// For a bundle, the index of the offending part in the request.
    pub part: Option<u16>,
    /// Human-readable detail for logs.
    pub detail: String,
}

impl Rejection {
    /// A rejection not tied to one bundle part.
    #[must_use]
    pub fn new(code: RejectCode, detail: impl Into<String>) -> Rejection {
        Rejection { code, part: None, detail: detail.into() }
    }

    /// The same rejection, attributed to bundle part `part`.
    #[must_use]
    pub fn at_part(mut self, part: usize) -> Rejection {
        self.part = u16::try_from(part).ok();
        self
    }
}

/// Durable storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be decoded (the file is corrupt or from another version).
    #[error("stored row {seq} is corrupt: {reason}")]
    CorruptRow {
        /// The row's sequence number.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// An earlier write failed; the store refuses further writes until reopened, so that
    /// nothing is acknowledged after a gap.
    #[error("the store failed earlier and is read-only until reopened")]
    Poisoned,
    /// The storage thread is gone (the store was shut down).
    #[error("the storage thread has stopped")]
    Stopped,
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Certificate creation, loading or pinning failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a certificate or key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration (bad key, no cipher suites).
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
    /// A fingerprint string is not 0x-prefixed hex of 32 bytes.
    #[error("bad certificate fingerprint: {0}")]
    BadFingerprint(String),
    /// quinn refused the rustls configuration (no TLS 1.3 suite with QUIC support).
    #[error("quic crypto configuration: {0}")]
    Quic(String),
}

/// Starting or running the ingress failed.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Storage failed at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding the UDP socket failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A client-side failure talking to the ingress.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Creating the client endpoint failed.
    #[error("endpoint: {0}")]
    Endpoint(std::io::Error),
    /// The connection could not be started.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to the stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// The server sent something this client cannot decode.
    #[error("protocol: {0}")]
    Protocol(#[from] FrameError),
    /// The server refused the request.
    #[error("rejected: {0}")]
    Rejected(crate::wire::Reject),
    /// The connection closed before the answer arrived; the request may or may not have
    /// been admitted (resubmitting is safe: admission is idempotent).
    #[error("the connection closed before the answer arrived")]
    Closed,
    /// No answer within the client's timeout.
    #[error("timed out waiting for the answer")]
    Timeout,
}
