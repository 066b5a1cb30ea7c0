//! The ingress wire protocol: length-prefixed, versioned frames on one QUIC stream.
//!
//! The normative description, precise enough to write a client from, is `PROTOCOL.md` at the
//! root of this crate. In short, every frame is
//!
//! ```text
//! u32 big-endian  len      number of bytes that follow (2 ..= max frame size)
//! u8              kind     frame type (table in PROTOCOL.md)
//! u8              version  version of that frame type's body (1 for every kind today)
//! len - 2 bytes   body     postcard encoding of the kind's body struct, no trailing bytes
//! ```
//!
//! [`FrameDecoder`] is a sans-IO decoder: bytes go in with [`FrameDecoder::push`], frames
//! come out of [`FrameDecoder::poll_frame`]. It never panics on any input, holds at most one
//! partial frame, and skips the body of an oversized frame without buffering it, so a
//! hostile peer gets a typed error and the stream stays in sync.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use veil_primitives::TxId;

use crate::error::FrameError;

/// The ALPN protocol name of version 1 of the ingress protocol.
pub const ALPN: &[u8] = b"veil-ingress/1";

/// The default maximum frame size (header excluded): 64 KiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 64 * 1024;

/// The size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// The version of every frame body defined today.
pub const VERSION_1: u8 = 1;

/// Frame type bytes. Client-to-server kinds are `0x01..=0x7f`, server-to-client `0x81..=0xff`.
pub mod kind {
    /// One ciphertext.
    pub const SUBMIT: u8 = 0x01;
    /// An atomic bundle: several ciphertexts for different rollups, admitted together or not.
    pub const SUBMIT_BUNDLE: u8 = 0x02;
    /// Keep-alive; answered with [`PONG`].
    pub const PING: u8 = 0x03;
    /// The request was admitted and is durably stored.
    pub const ACK: u8 = 0x81;
    /// The request was refused, with a [`crate::wire::RejectCode`].
    pub const REJECT: u8 = 0x82;
    /// Answer to [`PING`].
    pub const PONG: u8 = 0x83;
}

/// Why a request was refused. The numeric value is what travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum RejectCode {
    /// The frame body did not decode (bad postcard, trailing bytes, length prefix < 2).
    MalformedFrame = 1,
    /// The frame's length prefix exceeded the maximum frame size; its body was skipped.
    FrameTooLarge = 2,
    /// The frame type is known but its version is not supported.
    UnsupportedVersion = 3,
    /// The frame type byte is unknown (or is a server-to-client type).
    UnknownFrameType = 4,
    /// The ciphertext bytes did not decode (not canonical, not on the curve, ...).
    InvalidCiphertext = 10,
    /// The ciphertext's validity proof did not verify.
    BadProof = 11,
    /// The ciphertext is encrypted to an eon that is not accepted now.
    WrongEon = 12,
    /// Another pending ciphertext uses the same ephemeral key.
    EphemeralKeyReused = 13,
    /// The expiry slot has passed, or lies further ahead than the pool accepts.
    Expired = 14,
    /// The max fee is under the pool's minimum fee.
    FeeTooLow = 15,
    /// One ciphertext exceeds the maximum ciphertext size.
    CiphertextTooLarge = 16,
    /// The associated data names another chain id.
    WrongChain = 17,
    /// The fee payer already has the maximum number of pending transactions.
    SenderQuota = 20,
    /// The connection exceeded its submission rate.
    ConnectionQuota = 21,
    /// The pool (or the rollup's share of it) is full of transactions paying at least as much.
    PoolFull = 22,
    /// The bundle is inconsistent: parts disagree on the bundle id, the count does not match,
    /// an index repeats, two parts name the same rollup, a lone part of a bundle was sent with
    /// `Submit`, a `SubmitBundle` part has no bundle reference, or only some parts are known.
    BadBundle = 30,
    /// The request's deadline passed before it could be admitted.
    DeadlineExceeded = 31,
    /// Durable storage failed; nothing was stored. Retrying later may work.
    StorageUnavailable = 40,
    /// The node is shutting down.
    ShuttingDown = 41,
}

impl RejectCode {
    /// Every code, in wire order.
    pub const ALL: [RejectCode; 19] = [
        RejectCode::MalformedFrame,
        RejectCode::FrameTooLarge,
        RejectCode::UnsupportedVersion,
        RejectCode::UnknownFrameType,
        RejectCode::InvalidCiphertext,
        RejectCode::BadProof,
        RejectCode::WrongEon,
        RejectCode::EphemeralKeyReused,
        RejectCode::Expired,
        RejectCode::FeeTooLow,
        RejectCode::CiphertextTooLarge,
        RejectCode::WrongChain,
        RejectCode::SenderQuota,
        RejectCode::ConnectionQuota,
        RejectCode::PoolFull,
        RejectCode::BadBundle,
        RejectCode::DeadlineExceeded,
        RejectCode::StorageUnavailable,
        RejectCode::ShuttingDown,
    ];

    /// The wire value.
    #[must_use]
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// The code for a wire value, or `None` if this version does not know it.
    #[must_use]
    pub fn from_u16(value: u16) -> Option<RejectCode> {
        RejectCode::ALL.into_iter().find(|c| c.as_u16() == value)
    }

    /// The upper-snake-case name used in logs, metrics and PROTOCOL.md.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RejectCode::MalformedFrame => "MALFORMED_FRAME",
            RejectCode::FrameTooLarge => "FRAME_TOO_LARGE",
            RejectCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            RejectCode::UnknownFrameType => "UNKNOWN_FRAME_TYPE",
            RejectCode::InvalidCiphertext => "INVALID_CIPHERTEXT",
            RejectCode::BadProof => "BAD_PROOF",
            RejectCode::WrongEon => "WRONG_EON",
            RejectCode::EphemeralKeyReused => "EPHEMERAL_KEY_REUSED",
            RejectCode::Expired => "EXPIRED",
            RejectCode::FeeTooLow => "FEE_TOO_LOW",
            RejectCode::CiphertextTooLarge => "CIPHERTEXT_TOO_LARGE",
            RejectCode::WrongChain => "WRONG_CHAIN",
            RejectCode::SenderQuota => "SENDER_QUOTA",
            RejectCode::ConnectionQuota => "CONNECTION_QUOTA",
            RejectCode::PoolFull => "POOL_FULL",
            RejectCode::BadBundle => "BAD_BUNDLE",
            RejectCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            RejectCode::StorageUnavailable => "STORAGE_UNAVAILABLE",
            RejectCode::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// Whether the same request may succeed if sent again later, unchanged.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            RejectCode::ConnectionQuota
                | RejectCode::SenderQuota
                | RejectCode::PoolFull
                | RejectCode::DeadlineExceeded
                | RejectCode::StorageUnavailable
                | RejectCode::ShuttingDown
        )
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Body of [`kind::SUBMIT`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submit {
    /// Chosen by the client; echoed in the answer. Unique per stream while in flight.
    pub request_id: u64,
    /// Milliseconds the client is willing to wait for admission, counted from the moment the
    /// server has read the frame; 0 means the server's default.
    pub deadline_ms: u32,
    /// The ciphertext's canonical encoding.
    pub ciphertext: Bytes,
}

/// Body of [`kind::SUBMIT_BUNDLE`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBundle {
    /// As in [`Submit`].
    pub request_id: u64,
    /// As in [`Submit`].
    pub deadline_ms: u32,
    /// Every part of the bundle, each the canonical encoding of one ciphertext whose
    /// associated data names the bundle. Order does not matter.
    pub parts: Vec<Bytes>,
}

/// Body of [`kind::PING`] and [`kind::PONG`], version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed unchanged.
    pub nonce: u64,
}

/// Body of [`kind::ACK`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The request this answers.
    pub request_id: u64,
    /// The transaction ids, in the order of the request's ciphertexts.
    pub ids: Vec<TxId>,
    /// True if every ciphertext was already stored (an idempotent repeat).
    pub duplicate: bool,
}

/// Body of [`kind::REJECT`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The request this answers; 0 when the frame could not be decoded far enough to know.
    pub request_id: u64,
    /// A [`RejectCode`] wire value. Clients must accept codes they do not know.
    pub code: u16,
    /// For a bundle, the index (in the request) of the part that caused the rejection.
    pub part: Option<u16>,
    /// Human-readable detail, for logs only; never parse it.
    pub detail: String,
}

impl Reject {
    /// The typed code, or `None` for a code this version does not know.
    #[must_use]
    pub fn reject_code(&self) -> Option<RejectCode> {
        RejectCode::from_u16(self.code)
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reject_code() {
            Some(code) => write!(f, "{code}")?,
            None => write!(f, "code {}", self.code)?,
        }
        if let Some(part) = self.part {
            write!(f, " (part {part})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// See [`Submit`].
    Submit(Submit),
    /// See [`SubmitBundle`].
    SubmitBundle(SubmitBundle),
    /// See [`Ping`].
    Ping(Ping),
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Reject`].
    Reject(Reject),
    /// See [`Ping`].
    Pong(Ping),
}

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

fn decode_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, FrameError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn check_version(raw: &RawFrame) -> Result<(), FrameError> {
    if raw.version != VERSION_1 {
        return Err(FrameError::UnsupportedVersion { kind: raw.kind, version: raw.version });
    }
    Ok(())
}

impl ClientFrame {
    /// Decodes a client frame's body.
    ///
    /// # Errors
    /// [`FrameError::UnknownKind`], [`FrameError::UnsupportedVersion`] or
    /// [`FrameError::Malformed`].
    pub fn decode(raw: &RawFrame) -> Result<ClientFrame, FrameError> {
        match raw.kind {
            kind::SUBMIT => {
                check_version(raw)?;
                Ok(ClientFrame::Submit(decode_body(&raw.body)?))
            }
            kind::SUBMIT_BUNDLE => {
                check_version(raw)?;
                Ok(ClientFrame::SubmitBundle(decode_body(&raw.body)?))
            }
            kind::PING => {
                check_version(raw)?;
                Ok(ClientFrame::Ping(decode_body(&raw.body)?))
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            ClientFrame::Submit(b) => encode_frame(kind::SUBMIT, b, out),
            ClientFrame::SubmitBundle(b) => encode_frame(kind::SUBMIT_BUNDLE, b, out),
            ClientFrame::Ping(b) => encode_frame(kind::PING, b, out),
        }
    }

    /// The request id, if the frame carries one.
    #[must_use]
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ClientFrame::Submit(s) => Some(s.request_id),
            ClientFrame::SubmitBundle(s) => Some(s.request_id),
            ClientFrame::Ping(_) => None,
        }
    }
}

impl ServerFrame {
    /// Decodes a server frame's body.
    ///
    /// # Errors
    /// [`FrameError::UnknownKind`], [`FrameError::UnsupportedVersion`] or
    /// [`FrameError::Malformed`].
    pub fn decode(raw: &RawFrame) -> Result<ServerFrame, FrameError> {
        match raw.kind {
            kind::ACK => {
                check_version(raw)?;
                Ok(ServerFrame::Ack(decode_body(&raw.body)?))
            }
            kind::REJECT => {
                check_version(raw)?;
                Ok(ServerFrame::Reject(decode_body(&raw.body)?))
            }
            kind::PONG => {
                check_version(raw)?;
                Ok(ServerFrame::Pong(decode_body(&raw.body)?))
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            ServerFrame::Ack(b) => encode_frame(kind::ACK, b, out),
            ServerFrame::Reject(b) => encode_frame(kind::REJECT, b, out),
            ServerFrame::Pong(b) => encode_frame(kind::PONG, b, out),
        }
    }

    /// A rejection frame.
    #[must_use]
    pub fn reject(
        request_id: u64,
        code: RejectCode,
        part: Option<u16>,
        detail: impl Into<String>,
    ) -> ServerFrame {
        ServerFrame::Reject(Reject { request_id, code: code.as_u16(), part, detail: detail.into() })
    }
}

/// Appends one frame (prefix, kind, version 1, postcard body) to `out`.
///
/// # Panics
/// Never for the body types of this module: postcard serialisation of plain structs into a
/// growable buffer cannot fail, and a body is far below 4 GiB.
pub fn encode_frame<T: Serialize>(kind: u8, body: &T, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32(0);
    out.put_u8(kind);
    out.put_u8(VERSION_1);
    let writer = out.writer();
    let writer = postcard::to_io(body, writer).expect("postcard into a BytesMut cannot fail");
    let out = writer.into_inner();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(id: u64, ct: &[u8]) -> ClientFrame {
        ClientFrame::Submit(Submit {
            request_id: id,
            deadline_ms: 0,
            ciphertext: Bytes::copy_from_slice(ct),
        })
    }

    #[test]
    fn roundtrip_in_one_byte_chunks() {
        let frames = vec![
            submit(1, b"abc"),
            ClientFrame::SubmitBundle(SubmitBundle {
                request_id: 2,
                deadline_ms: 500,
                parts: vec![Bytes::from_static(b"x"), Bytes::from_static(b"yz")],
            }),
            ClientFrame::Ping(Ping { nonce: 9 }),
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            f.encode(&mut out);
        }
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        let mut got = Vec::new();
        for b in out.iter() {
            dec.push(&[*b]);
            while let Some(r) = dec.poll_frame() {
                got.push(ClientFrame::decode(&r.unwrap()).unwrap());
            }
        }
        assert_eq!(got, frames);
        assert!(dec.is_idle());
    }

    #[test]
    fn server_frames_roundtrip() {
        let frames = vec![
            ServerFrame::Ack(Ack { request_id: 1, ids: vec![TxId([3; 32])], duplicate: true }),
            ServerFrame::reject(7, RejectCode::BadProof, Some(1), "no"),
            ServerFrame::Pong(Ping { nonce: 1 }),
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            f.encode(&mut out);
        }
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.push(&out);
        for f in &frames {
            let raw = dec.poll_frame().unwrap().unwrap();
            assert_eq!(&ServerFrame::decode(&raw).unwrap(), f);
        }
        assert!(dec.poll_frame().is_none());
    }

    #[test]
    fn oversized_frame_is_skipped_and_stream_stays_in_sync() {
        let mut dec = FrameDecoder::new(16);
        let mut out = BytesMut::new();
        out.put_u32(1000);
        out.put_bytes(0xaa, 1000);
        submit(5, b"ok").encode(&mut out);
        dec.push(&out[..10]);
        assert!(matches!(dec.poll_frame(), Some(Err(FrameError::TooLarge { len: 1000, .. }))));
        dec.push(&out[10..]);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert_eq!(ClientFrame::decode(&raw).unwrap(), submit(5, b"ok"));
        assert!(dec.buffered() == 0);
    }

    #[test]
    fn bad_frames_are_typed() {
        let mut dec = FrameDecoder::new(64);
        dec.push(&[0, 0, 0, 1, 7]);
        assert!(matches!(dec.poll_frame(), Some(Err(FrameError::Malformed(_)))));
        dec.push(&[0, 0, 0, 2, 0x55, 1]);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert_eq!(ClientFrame::decode(&raw), Err(FrameError::UnknownKind(0x55)));
        dec.push(&[0, 0, 0, 2, kind::SUBMIT, 9]);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert!(matches!(ClientFrame::decode(&raw), Err(FrameError::UnsupportedVersion { .. })));
        // A valid submit with one trailing byte.
        let mut out = BytesMut::new();
        submit(1, b"a").encode(&mut out);
        out.put_u8(0);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        dec.push(&out);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert!(matches!(ClientFrame::decode(&raw), Err(FrameError::Malformed(_))));
    }

    /// The examples of PROTOCOL.md, byte for byte.
    #[test]
    fn protocol_doc_examples() {
        let mut out = BytesMut::new();
        ClientFrame::Ping(Ping { nonce: 1 }).encode(&mut out);
        assert_eq!(&out[..], &[0, 0, 0, 3, 3, 1, 1]);
        out.clear();
        submit(300, &[0xaa, 0xbb, 0xcc]).encode(&mut out);
        assert_eq!(&out[..], &[0, 0, 0, 9, 1, 1, 0xac, 0x02, 0, 3, 0xaa, 0xbb, 0xcc]);
        out.clear();
        ServerFrame::Ack(Ack { request_id: 300, ids: vec![TxId([0x11; 32])], duplicate: false })
            .encode(&mut out);
        let mut want = vec![0, 0, 0, 0x26, 0x81, 1, 0xac, 0x02, 1];
        want.extend([0x11; 32]);
        want.push(0);
        assert_eq!(&out[..], &want[..]);
        out.clear();
        ServerFrame::reject(0, RejectCode::PoolFull, Some(2), "x").encode(&mut out);
        assert_eq!(&out[..], &[0, 0, 0, 8, 0x82, 1, 0, 22, 1, 2, 1, b'x']);
    }

    #[test]
    fn reject_codes_are_stable() {
        for code in RejectCode::ALL {
            assert_eq!(RejectCode::from_u16(code.as_u16()), Some(code));
        }
        assert_eq!(RejectCode::from_u16(0), None);
        assert_eq!(RejectCode::BadBundle.as_u16(), 30);
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            split in 0usize..512,
        ) {
            let mut dec = FrameDecoder::new(128);
            let split = split.min(data.len());
            dec.push(&data[..split]);
            while let Some(r) = dec.poll_frame() {
                if let Ok(raw) = r { let _ = ClientFrame::decode(&raw); let _ = ServerFrame::decode(&raw); }
            }
            dec.push(&data[split..]);
            while let Some(r) = dec.poll_frame() {
                if let Ok(raw) = r { let _ = ClientFrame::decode(&raw); let _ = ServerFrame::decode(&raw); }
            }
            proptest::prop_assert!(dec.buffered() <= 128 + 4 + 512);
        }

        #[test]
        fn submit_roundtrips(id: u64, deadline: u32, ct in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let f = ClientFrame::Submit(Submit { request_id: id, deadline_ms: deadline, ciphertext: Bytes::from(ct) });
            let mut out = BytesMut::new();
            f.encode(&mut out);
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            dec.push(&out);
            let raw = dec.poll_frame().unwrap().unwrap();
            proptest::prop_assert_eq!(ClientFrame::decode(&raw).unwrap(), f);
        }
    }
}
