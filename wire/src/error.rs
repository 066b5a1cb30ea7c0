//! Errors of the wire crate. Callers branch on variants, never on message text.

use std::path::PathBuf;

use veil_primitives::ErrorCode;

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
    /// The error code sent back for this error.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::UnknownKind(_) => ErrorCode::UnknownFrameType,
            FrameError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            FrameError::Malformed(_) => ErrorCode::MalformedFrame,
        }
    }
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
    /// quinn refused the rustls configuration (no TLS 1.3 suite with QUIC support).
    #[error("quic crypto configuration: {0}")]
    Quic(String),
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
    Rejected(crate::ingress::Reject),
    /// The connection closed before the answer arrived; the request may or may not have
    /// been admitted (resubmitting is safe: admission is idempotent).
    #[error("the connection closed before the answer arrived")]
    Closed,
    /// No answer within the client's timeout.
    #[error("timed out waiting for the answer")]
    Timeout,
}
