//! Errors of the mempool crate. Callers branch on the code, never on message text.

use veil_primitives::ErrorCode;

/// A request refused by admission, with the code that goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Rejection {
    /// The typed reason.
    pub code: ErrorCode,
    /// For a bundle, the index of the offending part in the request.
    pub part: Option<u16>,
    /// Human-readable detail for logs.
    pub detail: String,
}

impl Rejection {
    /// A rejection not tied to one bundle part.
    #[must_use]
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Rejection {
        Rejection { code, part: None, detail: detail.into() }
    }

    /// The same rejection, attributed to bundle part `part`.
    #[must_use]
    pub fn at_part(mut self, part: usize) -> Rejection {
        self.part = u16::try_from(part).ok();
        self
    }
}
