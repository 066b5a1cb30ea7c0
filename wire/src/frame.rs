//! The framing every Veil QUIC stream uses: length-prefixed, typed, versioned frames, and a
//! sans-IO decoder for them.
//!
//! ```text
//! u32 big-endian  len      number of bytes that follow (2 ..= max frame size)
//! u8              kind     frame type (each protocol has its table)
//! u8              version  version of that frame type's body
//! len - 2 bytes   body     postcard encoding of the kind's body struct, no trailing bytes
//! ```
//!
//! [`FrameDecoder`] is a sans-IO decoder: bytes go in with [`FrameDecoder::push`], frames
//! come out of [`FrameDecoder::poll_frame`]. It never panics on any input, holds at most one
//! partial frame, and skips the body of an oversized frame without buffering it, so a
//! hostile peer gets a typed error and the stream stays in sync. Which kinds and versions
//! exist is each protocol's business ([`crate::ingress`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::FrameError;

/// The size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// A frame whose header has been read but whose body is not decoded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The frame type byte.
    pub kind: u8,
    /// The body version byte.
    pub version: u8,
    /// The body bytes.
    pub body: Bytes,
}

/// Decodes a frame body: the postcard encoding of `T` with no trailing bytes, and the
/// *canonical* one: re-encoding the value must give back exactly `body`. That refuses what
/// postcard alone accepts but the specs forbid, such as a non-minimal varint (`81 00` for 1),
/// so every frame has exactly one accepted encoding.
///
/// # Errors
/// [`FrameError::Malformed`].
pub fn decode_body<'de, T: Deserialize<'de> + Serialize>(body: &'de [u8]) -> Result<T, FrameError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    let canonical =
        postcard::to_allocvec(&value).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if canonical != body {
        return Err(FrameError::Malformed(
            "not the canonical encoding (for example a varint that is not minimal)".into(),
        ));
    }
    Ok(value)
}

/// Appends one frame (length prefix, kind, version, postcard body) to `out`.
///
/// # Panics
/// Never for the body types of this module: postcard serialisation of plain structs into a
/// growable buffer cannot fail, and a body is far below 4 GiB.
pub fn encode_frame<T: Serialize>(kind: u8, version: u8, body: &T, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32(0);
    out.put_u8(kind);
    out.put_u8(version);
    // Through `Extend<u8>`, not `io::Write`: postcard writes a fixed-size array (a share, an
    // id) byte by byte, and one `write_all` per byte made a 1,000-share batch cost about
    // 450 µs to encode instead of about 80.
    let buf = postcard::to_extend(body, std::mem::take(out))
        .expect("postcard into a BytesMut cannot fail");
    *out = buf;
    let len = u32::try_from(out.len() - start - LEN_PREFIX).expect("frame under 4 GiB");
    out[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
}

/// Sans-IO frame decoder with an explicit maximum frame size.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame_size: usize,
    /// Bytes of an oversized frame still to skip.
    skipping: u64,
}

impl FrameDecoder {
    /// A decoder refusing frames whose length prefix exceeds `max_frame_size`.
    #[must_use]
    pub fn new(max_frame_size: usize) -> FrameDecoder {
        FrameDecoder { buf: BytesMut::new(), max_frame_size, skipping: 0 }
    }

    /// Changes the maximum frame size for the frames not yet returned (for example, small
    /// until the peer has authenticated, larger after).
    pub fn set_max_frame_size(&mut self, max_frame_size: usize) {
        self.max_frame_size = max_frame_size;
    }

    /// Feeds received bytes. Bytes of an oversized frame's body are dropped at once.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.skipping > 0 {
            let n = usize::try_from(self.skipping).unwrap_or(usize::MAX).min(data.len());
            data = &data[n..];
            self.skipping -= n as u64;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as frames.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the decoder is between frames (nothing partial buffered, nothing to skip).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.skipping == 0
    }

    /// The next complete frame, an error for a bad one, or `None` if more bytes are needed.
    ///
    /// After an error, decoding continues with the next frame: the stream stays in sync.
    #[must_use]
    pub fn poll_frame(&mut self) -> Option<Result<RawFrame, FrameError>> {
        if self.skipping > 0 || self.buf.len() < LEN_PREFIX {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let len_usize = len as usize;
        if len_usize > self.max_frame_size {
            self.buf.advance(LEN_PREFIX);
            let have = self.buf.len().min(len_usize);
            self.buf.advance(have);
            self.skipping = u64::from(len) - have as u64;
            return Some(Err(FrameError::TooLarge { len, max: self.max_frame_size }));
        }
        if self.buf.len() < LEN_PREFIX + len_usize {
            self.buf.reserve(LEN_PREFIX + len_usize - self.buf.len());
            return None;
        }
        self.buf.advance(LEN_PREFIX);
        let mut frame = self.buf.split_to(len_usize);
        if len_usize < 2 {
            return Some(Err(FrameError::Malformed(format!("frame length {len} < 2"))));
        }
        let kind = frame.get_u8();
        let version = frame.get_u8();
        Some(Ok(RawFrame { kind, version, body: frame.freeze() }))
    }
}
