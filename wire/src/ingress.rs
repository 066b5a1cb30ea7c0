//! The ingress protocol: the frames users send to submit ciphertexts and the answers they get,
//! on one QUIC stream in the framing of [`crate::frame`].
//!
//! The normative description, precise enough to write a client from, is `PROTOCOL.md` at the
//! root of this crate. This is version 2 of the protocol (ALPN [`ALPN`]): its submissions
//! carry each ciphertext's fee-payer signature ([`SignedCiphertext`]), so their bodies are
//! version 2; every other frame body is version 1. Rejections carry a code from the
//! workspace's one [`ErrorCode`] table, as its `u16` value.
//!
//! Besides the answers to its requests, a client receives one unsolicited frame kind:
//! [`kind::RECEIPT`], the sequencer's signed inclusion receipts ([`SignedReceipt`], the shared
//! type of [`veil_primitives::receipt`]) for transactions it submitted on the stream, pushed
//! when a slot commitment includes them. Clients ignore server frames of kinds they do not
//! know, so later unsolicited kinds stay compatible.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use veil_primitives::{
    ChainId, ErrorCode, PayerAuthorization, SignatureBytes, SignedReceipt, TxId,
};

use crate::error::FrameError;
use crate::frame::{decode_body, encode_frame, RawFrame};
pub use crate::frame::{FrameDecoder, LEN_PREFIX};

/// The ALPN protocol name of version 2 of the ingress protocol, the one this crate speaks.
/// Version 1 (`veil-ingress/1`, unsigned submissions) is no longer served.
pub const ALPN: &[u8] = b"veil-ingress/2";

/// The default maximum frame size (header excluded): 128 KiB, enough for a bundle of the
/// most parts (16) each of the largest ciphertext (6,510 bytes, `crypto/CIPHERTEXT.md`)
/// with its framing; a test in `veil-node` checks this against the crypto constants.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 128 * 1024;

/// The body version of every frame but the submissions.
pub const VERSION_1: u8 = 1;
/// The body version of [`kind::SUBMIT`] and [`kind::SUBMIT_BUNDLE`] in protocol version 2:
/// each ciphertext with its fee payer's signature. Version 1 bodies (unsigned) are refused
/// with `UNSUPPORTED_VERSION`.
pub const VERSION_2: u8 = 2;

/// Frame type bytes. Client-to-server kinds are `0x01..=0x7f`, server-to-client `0x81..=0xff`.
pub mod kind {
    /// One ciphertext.
    pub const SUBMIT: u8 = 0x01;
    /// An atomic bundle: several ciphertexts for different rollups, admitted together or not.
    pub const SUBMIT_BUNDLE: u8 = 0x02;
    /// Keep-alive; answered with [`PONG`].
    pub const PING: u8 = 0x03;
    /// Asks what the server accepts; answered with [`SERVER_INFO`].
    pub const INFO: u8 = 0x04;
    /// The request was admitted and is durably stored.
    pub const ACK: u8 = 0x81;
    /// The request was refused, with a [`veil_primitives::ErrorCode`].
    pub const REJECT: u8 = 0x82;
    /// Answer to [`PING`].
    pub const PONG: u8 = 0x83;
    /// Unsolicited: signed inclusion receipts for transactions submitted on this stream.
    pub const RECEIPT: u8 = 0x84;
    /// Answer to [`INFO`]: the chain, the slot, the eons, the minimum fee and every limit.
    pub const SERVER_INFO: u8 = 0x85;
}

/// The most receipts the server puts in one [`kind::RECEIPT`] frame. A receipt takes at most
/// 168 bytes on the wire (every varint at its longest), so a full frame stays below the
/// default maximum frame size of 128 KiB; a client must still accept any count that fits its
/// maximum frame size.
pub const MAX_RECEIPTS_PER_FRAME: usize = 256;

/// One ciphertext with its fee payer's authorization: the signature, by the key named as
/// `fee_payer` in the ciphertext's associated data, over its id
/// ([`veil_primitives::payer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCiphertext {
    /// The ciphertext's canonical encoding.
    pub ciphertext: Bytes,
    /// The fee payer's ed25519 signature over [`PayerAuthorization`] of the ciphertext's id.
    pub payer_signature: SignatureBytes,
}

impl SignedCiphertext {
    /// Signs `ciphertext` (canonical bytes, whose associated data names `chain_id` and the
    /// fee payer whose secret key is `payer`).
    #[must_use]
    pub fn sign(ciphertext: Bytes, chain_id: ChainId, payer: &ed25519_dalek::SigningKey) -> Self {
        let tx = TxId(veil_primitives::encoding::sha3_256(&ciphertext));
        let payer_signature = PayerAuthorization { chain_id, tx }.sign(payer);
        SignedCiphertext { ciphertext, payer_signature }
    }
}

/// Body of [`kind::SUBMIT`], version 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submit {
    /// Chosen by the client; echoed in the answer. Unique per stream while in flight.
    pub request_id: u64,
    /// Milliseconds the client is willing to wait for admission, counted from the moment the
    /// server has read the frame; 0 means the server's default.
    pub deadline_ms: u32,
    /// The ciphertext, signed by its fee payer.
    pub tx: SignedCiphertext,
}

/// Body of [`kind::SUBMIT_BUNDLE`], version 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBundle {
    /// As in [`Submit`].
    pub request_id: u64,
    /// As in [`Submit`].
    pub deadline_ms: u32,
    /// Every part of the bundle, each one ciphertext whose associated data names the bundle,
    /// signed by its own fee payer. Order does not matter.
    pub parts: Vec<SignedCiphertext>,
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
    /// True if every ciphertext was already pending, or committed and not yet expired (an
    /// idempotent repeat: nothing new stored; a committed transaction is never admitted
    /// again).
    pub duplicate: bool,
}

/// Body of [`kind::REJECT`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The request this answers; 0 when the frame could not be decoded far enough to know.
    pub request_id: u64,
    /// An [`ErrorCode`] wire value. Clients must accept codes they do not know.
    pub code: u16,
    /// For a bundle, the index (in the request) of the part that caused the rejection.
    pub part: Option<u16>,
    /// Human-readable detail, for logs only; never parse it.
    pub detail: String,
}

impl Reject {
    /// The typed code, or `None` for a code this version does not know.
    #[must_use]
    pub fn reject_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_u16(self.code)
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

/// Body of [`kind::RECEIPT`], version 1: signed inclusion receipts, each for a transaction
/// submitted on this stream (see `PROTOCOL.md`). Verify each with
/// [`veil_primitives::receipt::verify_receipt`] against the sequencer's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipts {
    /// The receipts, at most [`MAX_RECEIPTS_PER_FRAME`] from the reference server.
    pub receipts: Vec<SignedReceipt>,
}

/// The version of [`kind::INFO`] (and so of the [`kind::SERVER_INFO`] answer) this crate asks
/// with. A server answers an `INFO` of version 1 with a `SERVER_INFO` of version 1 (without
/// [`ServerInfo::ciphertext_versions`]), one of version 2 with version 2.
pub const INFO_VERSION: u8 = VERSION_2;

/// An `INFO` request: its [`Ping`] body's nonce, echoed, and the frame's version, which picks
/// the version of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoRequest {
    /// Echoed in the answer.
    pub nonce: u64,
    /// 1 or 2 ([`INFO_VERSION`]).
    pub version: u8,
}

/// Body of [`kind::SERVER_INFO`], versions 1 and 2: what a client needs to build acceptable
/// requests, read from the server's configuration and state when it answers. Version 2 adds
/// [`ServerInfo::ciphertext_versions`] at the end; the fields before it are version 1's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The frame version this answer travels as (1 or 2): not part of the body; the version
    /// of the `INFO` it answers. Decoding sets it from the frame header.
    #[serde(skip)]
    pub version: u8,
    /// The request's nonce, echoed.
    pub nonce: u64,
    /// The Veil network's chain id.
    pub chain_id: veil_primitives::ChainId,
    /// The eons whose committees' ciphertexts are accepted now.
    pub eons: Vec<veil_primitives::Eon>,
    /// The slot in progress.
    pub current_slot: veil_primitives::Slot,
    /// The least `max_fee` admitted.
    pub min_fee: veil_primitives::Amount,
    /// How far ahead of the current slot an expiry may lie.
    pub max_expiry_horizon: u64,
    /// The maximum frame size (header excluded).
    pub max_frame_size: u32,
    /// The largest ciphertext admitted (its canonical encoding).
    pub max_ciphertext_size: u32,
    /// The most parts in one bundle.
    pub max_bundle_parts: u16,
    /// Requests in flight per connection before the server stops reading.
    pub max_in_flight: u32,
    /// The stream idle timeout, in milliseconds: ping well within it.
    pub idle_timeout_ms: u32,
    /// The registered rollups and their blocks' gas limits, or empty if any rollup is
    /// accepted (a standalone ingress).
    pub rollups: Vec<(veil_primitives::RollupId, u64)>,
    /// Version 2: the ciphertext encoding versions admitted (the first byte of a ciphertext,
    /// `crypto/CIPHERTEXT.md`); empty in a version 1 answer (not said).
    pub ciphertext_versions: Vec<u8>,
}

/// [`ServerInfo`]'s version 1 body: every field but `ciphertext_versions`.
#[derive(Serialize, Deserialize)]
struct ServerInfoV1 {
    nonce: u64,
    chain_id: veil_primitives::ChainId,
    eons: Vec<veil_primitives::Eon>,
    current_slot: veil_primitives::Slot,
    min_fee: veil_primitives::Amount,
    max_expiry_horizon: u64,
    max_frame_size: u32,
    max_ciphertext_size: u32,
    max_bundle_parts: u16,
    max_in_flight: u32,
    idle_timeout_ms: u32,
    rollups: Vec<(veil_primitives::RollupId, u64)>,
}

impl ServerInfo {
    /// Whether the server admits ciphertexts of encoding `version` (`veil_crypto`'s
    /// `CIPHERTEXT_VERSION` for this crate's clients): `None` if the answer does not say (a
    /// version 1 answer).
    #[must_use]
    pub fn accepts_ciphertext_version(&self, version: u8) -> Option<bool> {
        (!self.ciphertext_versions.is_empty()).then(|| self.ciphertext_versions.contains(&version))
    }

    fn to_v1(&self) -> ServerInfoV1 {
        ServerInfoV1 {
            nonce: self.nonce,
            chain_id: self.chain_id,
            eons: self.eons.clone(),
            current_slot: self.current_slot,
            min_fee: self.min_fee,
            max_expiry_horizon: self.max_expiry_horizon,
            max_frame_size: self.max_frame_size,
            max_ciphertext_size: self.max_ciphertext_size,
            max_bundle_parts: self.max_bundle_parts,
            max_in_flight: self.max_in_flight,
            idle_timeout_ms: self.idle_timeout_ms,
            rollups: self.rollups.clone(),
        }
    }

    fn from_v1(v1: ServerInfoV1) -> ServerInfo {
        ServerInfo {
            version: VERSION_1,
            nonce: v1.nonce,
            chain_id: v1.chain_id,
            eons: v1.eons,
            current_slot: v1.current_slot,
            min_fee: v1.min_fee,
            max_expiry_horizon: v1.max_expiry_horizon,
            max_frame_size: v1.max_frame_size,
            max_ciphertext_size: v1.max_ciphertext_size,
            max_bundle_parts: v1.max_bundle_parts,
            max_in_flight: v1.max_in_flight,
            idle_timeout_ms: v1.idle_timeout_ms,
            rollups: v1.rollups,
            ciphertext_versions: Vec::new(),
        }
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
    /// Asks for [`ServerInfo`]; the body is a [`Ping`] whose nonce is echoed, and the frame's
    /// version (1 or 2) is the answer's.
    Info(InfoRequest),
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
    /// See [`Receipts`].
    Receipts(Receipts),
    /// See [`ServerInfo`].
    Info(Box<ServerInfo>),
}

fn check_version(raw: &RawFrame) -> Result<(), FrameError> {
    check_version_is(raw, VERSION_1)
}

fn check_version_is(raw: &RawFrame, version: u8) -> Result<(), FrameError> {
    if raw.version != version {
        return Err(FrameError::UnsupportedVersion { kind: raw.kind, version: raw.version });
    }
    Ok(())
}

fn encode_frame_v1<T: Serialize>(kind: u8, body: &T, out: &mut BytesMut) {
    encode_frame(kind, VERSION_1, body, out);
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
                check_version_is(raw, VERSION_2)?;
                Ok(ClientFrame::Submit(decode_body(&raw.body)?))
            }
            kind::SUBMIT_BUNDLE => {
                check_version_is(raw, VERSION_2)?;
                Ok(ClientFrame::SubmitBundle(decode_body(&raw.body)?))
            }
            kind::PING => {
                check_version(raw)?;
                Ok(ClientFrame::Ping(decode_body(&raw.body)?))
            }
            kind::INFO => {
                if raw.version != VERSION_1 {
                    check_version_is(raw, VERSION_2)?;
                }
                let ping: Ping = decode_body(&raw.body)?;
                Ok(ClientFrame::Info(InfoRequest { nonce: ping.nonce, version: raw.version }))
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            ClientFrame::Submit(b) => encode_frame(kind::SUBMIT, VERSION_2, b, out),
            ClientFrame::SubmitBundle(b) => encode_frame(kind::SUBMIT_BUNDLE, VERSION_2, b, out),
            ClientFrame::Ping(b) => encode_frame_v1(kind::PING, b, out),
            ClientFrame::Info(r) => {
                encode_frame(kind::INFO, r.version, &Ping { nonce: r.nonce }, out);
            }
        }
    }

    /// The request id, if the frame carries one.
    #[must_use]
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ClientFrame::Submit(s) => Some(s.request_id),
            ClientFrame::SubmitBundle(s) => Some(s.request_id),
            ClientFrame::Ping(_) | ClientFrame::Info(_) => None,
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
            kind::RECEIPT => {
                check_version(raw)?;
                Ok(ServerFrame::Receipts(decode_body(&raw.body)?))
            }
            kind::SERVER_INFO => {
                let info = if raw.version == VERSION_1 {
                    ServerInfo::from_v1(decode_body(&raw.body)?)
                } else {
                    check_version_is(raw, VERSION_2)?;
                    ServerInfo { version: VERSION_2, ..decode_body(&raw.body)? }
                };
                Ok(ServerFrame::Info(Box::new(info)))
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            ServerFrame::Ack(b) => encode_frame_v1(kind::ACK, b, out),
            ServerFrame::Reject(b) => encode_frame_v1(kind::REJECT, b, out),
            ServerFrame::Pong(b) => encode_frame_v1(kind::PONG, b, out),
            ServerFrame::Receipts(b) => encode_frame_v1(kind::RECEIPT, b, out),
            ServerFrame::Info(b) if b.version == VERSION_1 => {
                encode_frame_v1(kind::SERVER_INFO, &b.to_v1(), out);
            }
            ServerFrame::Info(b) => encode_frame(kind::SERVER_INFO, VERSION_2, b, out),
        }
    }

    /// The [`kind::RECEIPT`] frames carrying `receipts`, in order, at most
    /// [`MAX_RECEIPTS_PER_FRAME`] each (none for an empty slice).
    pub fn receipts(receipts: &[SignedReceipt]) -> impl Iterator<Item = ServerFrame> + '_ {
        receipts
            .chunks(MAX_RECEIPTS_PER_FRAME)
            .map(|c| ServerFrame::Receipts(Receipts { receipts: c.to_vec() }))
    }

    /// A rejection frame.
    #[must_use]
    pub fn reject(
        request_id: u64,
        code: ErrorCode,
        part: Option<u16>,
        detail: impl Into<String>,
    ) -> ServerFrame {
        ServerFrame::Reject(Reject { request_id, code: code.as_u16(), part, detail: detail.into() })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use veil_primitives::receipt::{CommitmentId, Receipt};
    use veil_primitives::{ChainId, Eon, RollupId, SignatureBytes, Slot};

    use super::*;

    fn signed(ct: &[u8]) -> SignedCiphertext {
        SignedCiphertext {
            ciphertext: Bytes::copy_from_slice(ct),
            payer_signature: SignatureBytes([0x55; 64]),
        }
    }

    fn submit(id: u64, ct: &[u8]) -> ClientFrame {
        ClientFrame::Submit(Submit { request_id: id, deadline_ms: 0, tx: signed(ct) })
    }

    fn info(version: u8) -> ServerInfo {
        ServerInfo {
            version,
            nonce: 9,
            chain_id: ChainId(3),
            eons: vec![Eon(1)],
            current_slot: Slot(44),
            min_fee: veil_primitives::Amount(5),
            max_expiry_horizon: 100,
            max_frame_size: 65_536,
            max_ciphertext_size: 8_192,
            max_bundle_parts: 16,
            max_in_flight: 256,
            idle_timeout_ms: 30_000,
            rollups: vec![(RollupId(1), 30_000_000)],
            ciphertext_versions: if version == 1 { Vec::new() } else { vec![2] },
        }
    }

    fn round_trip<T>(encode: impl FnOnce(&mut BytesMut), decode: fn(&RawFrame) -> T) -> (u8, T) {
        let mut out = BytesMut::new();
        encode(&mut out);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.push(&out[..]);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert!(dec.poll_frame().is_none());
        (raw.version, decode(&raw))
    }

    /// An INFO's version picks its answer's: a version 1 answer is version 1's body exactly
    /// (every field but the ciphertext versions), a version 2 answer adds them; both round
    /// trip, and a version 3 of either is refused.
    #[test]
    fn info_and_its_answer_carry_the_requests_version() {
        for version in [1, 2] {
            let request = ClientFrame::Info(InfoRequest { nonce: 7, version });
            let (v, back) = round_trip(|o| request.encode(o), ClientFrame::decode);
            assert_eq!((v, back.unwrap()), (version, request));
            let answer = ServerFrame::Info(Box::new(info(version)));
            let (v, back) = round_trip(|o| answer.encode(o), ServerFrame::decode);
            assert_eq!((v, back.unwrap()), (version, answer));
        }
        let mut v2 = BytesMut::new();
        ServerFrame::Info(Box::new(info(2))).encode(&mut v2);
        let mut v1 = BytesMut::new();
        ServerFrame::Info(Box::new(info(1))).encode(&mut v1);
        assert_eq!(&v2[6..v2.len() - 2], &v1[6..], "version 2 appends [1, 2]: one version, 2");
        assert_eq!(&v2[v2.len() - 2..], &[1, 2]);
        for k in [kind::INFO, kind::SERVER_INFO] {
            let raw = RawFrame { kind: k, version: 3, body: Bytes::from_static(&[1]) };
            let refused = if k == kind::INFO {
                ClientFrame::decode(&raw).err()
            } else {
                ServerFrame::decode(&raw).err()
            };
            assert!(matches!(refused, Some(FrameError::UnsupportedVersion { version: 3, .. })));
        }
    }

    /// Version 1 submissions (unsigned) are refused as an unsupported version, not misread.
    #[test]
    fn version_1_submissions_are_refused() {
        let body = Bytes::from_static(&[1, 0, 1, 0xaa]);
        for k in [kind::SUBMIT, kind::SUBMIT_BUNDLE] {
            let raw = RawFrame { kind: k, version: VERSION_1, body: body.clone() };
            assert!(matches!(
                ClientFrame::decode(&raw),
                Err(FrameError::UnsupportedVersion { version: 1, .. })
            ));
        }
    }

    /// A signature that is not exactly 64 bytes does not decode.
    #[test]
    fn short_signatures_are_malformed() {
        let mut out = BytesMut::new();
        submit(1, b"a").encode(&mut out);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.push(&out[..]);
        let raw = dec.poll_frame().unwrap().unwrap();
        let cut = RawFrame { body: raw.body.slice(..raw.body.len() - 1), ..raw };
        assert!(matches!(ClientFrame::decode(&cut), Err(FrameError::Malformed(_))));
    }

    /// What a client signs is the documented authorization of the ciphertext's id.
    #[test]
    fn signed_ciphertext_signs_the_id() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let ct = Bytes::from_static(b"some canonical bytes");
        let s = SignedCiphertext::sign(ct.clone(), ChainId(4), &key);
        let auth = PayerAuthorization {
            chain_id: ChainId(4),
            tx: TxId(veil_primitives::encoding::sha3_256(&ct)),
        };
        let pk = veil_primitives::signed::public_key(&key);
        assert!(auth.verify(&pk, &s.payer_signature).is_ok());
    }

    /// `81 00` is 1 as a non-minimal varint: postcard alone would take it, the spec forbids it.
    #[test]
    fn non_minimal_varints_are_refused() {
        let minimal =
            RawFrame { kind: kind::PING, version: VERSION_1, body: Bytes::from_static(&[1]) };
        assert_eq!(ClientFrame::decode(&minimal).unwrap(), ClientFrame::Ping(Ping { nonce: 1 }));
        let padded =
            RawFrame { kind: kind::PING, version: VERSION_1, body: Bytes::from_static(&[0x81, 0]) };
        assert!(matches!(ClientFrame::decode(&padded), Err(FrameError::Malformed(_))));
        // The same inside a submit: request id 1 written as 81 00.
        let mut body = vec![0x81, 0x00, 0x00, 0x01, 0xaa];
        body.extend([0x55; 64]);
        let raw =
            RawFrame { kind: kind::SUBMIT, version: VERSION_2, body: Bytes::from(body.clone()) };
        assert!(matches!(ClientFrame::decode(&raw), Err(FrameError::Malformed(_))));
        body.drain(..2);
        body.insert(0, 0x01);
        let raw = RawFrame { kind: kind::SUBMIT, version: VERSION_2, body: Bytes::from(body) };
        assert!(ClientFrame::decode(&raw).is_ok());
    }

    #[test]
    fn roundtrip_in_one_byte_chunks() {
        let frames = vec![
            submit(1, b"abc"),
            ClientFrame::SubmitBundle(SubmitBundle {
                request_id: 2,
                deadline_ms: 500,
                parts: vec![signed(b"x"), signed(b"yz")],
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

    fn signed_receipt(slot: u64, position: u32) -> SignedReceipt {
        SignedReceipt {
            message: Receipt {
                chain_id: ChainId(1),
                slot: Slot(slot),
                eon: Eon(1),
                tx: TxId([0x11; 32]),
                rollup: RollupId(2),
                position,
                commitment: CommitmentId([0x33; 32]),
            },
            signature: SignatureBytes([0x44; 64]),
        }
    }

    #[test]
    fn server_frames_roundtrip() {
        let frames = vec![
            ServerFrame::Ack(Ack { request_id: 1, ids: vec![TxId([3; 32])], duplicate: true }),
            ServerFrame::reject(7, ErrorCode::BadProof, Some(1), "no"),
            ServerFrame::Pong(Ping { nonce: 1 }),
            ServerFrame::Receipts(Receipts {
                receipts: vec![signed_receipt(5, 0), signed_receipt(5, 1)],
            }),
            ServerFrame::Receipts(Receipts { receipts: vec![] }),
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
    fn a_full_receipt_frame_fits_the_default_frame_size() {
        // Every varint at its longest: the worst case for MAX_RECEIPTS_PER_FRAME.
        let mut worst = signed_receipt(u64::MAX, u32::MAX);
        worst.message.chain_id = ChainId(u64::MAX);
        worst.message.eon = Eon(u64::MAX);
        worst.message.rollup = RollupId(u32::MAX);
        let many = vec![worst.clone(); MAX_RECEIPTS_PER_FRAME * 2 + 1];
        let frames: Vec<ServerFrame> = ServerFrame::receipts(&many).collect();
        assert_eq!(frames.len(), 3);
        let mut back = Vec::new();
        for f in &frames {
            let mut out = BytesMut::new();
            f.encode(&mut out);
            assert!(out.len() - LEN_PREFIX <= DEFAULT_MAX_FRAME_SIZE, "{} bytes", out.len());
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            dec.push(&out);
            match ServerFrame::decode(&dec.poll_frame().unwrap().unwrap()).unwrap() {
                ServerFrame::Receipts(r) => back.extend(r.receipts),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, many);
        // One receipt at its longest is 168 bytes on the wire, as the constant's docs say.
        let one = postcard::to_allocvec(&worst).unwrap();
        assert_eq!(one.len(), 168);
        assert_eq!(ServerFrame::receipts(&[]).count(), 0);
    }

    #[test]
    fn receipts_are_not_a_client_frame() {
        let mut out = BytesMut::new();
        ServerFrame::Receipts(Receipts { receipts: vec![signed_receipt(1, 0)] }).encode(&mut out);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        dec.push(&out);
        let raw = dec.poll_frame().unwrap().unwrap();
        assert_eq!(ClientFrame::decode(&raw), Err(FrameError::UnknownKind(kind::RECEIPT)));
        let v2 = RawFrame { version: 2, ..raw };
        assert!(matches!(
            ServerFrame::decode(&v2),
            Err(FrameError::UnsupportedVersion { kind: kind::RECEIPT, version: 2 })
        ));
    }

    #[test]
    fn oversized_frame_is_skipped_and_stream_stays_in_sync() {
        let mut dec = FrameDecoder::new(128);
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
        let mut dec = FrameDecoder::new(128);
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
        let mut want = vec![0, 0, 0, 0x49, 1, 2, 0xac, 0x02, 0, 3, 0xaa, 0xbb, 0xcc];
        want.extend([0x55; 64]);
        assert_eq!(&out[..], &want[..]);
        out.clear();
        ServerFrame::Ack(Ack { request_id: 300, ids: vec![TxId([0x11; 32])], duplicate: false })
            .encode(&mut out);
        let mut want = vec![0, 0, 0, 0x26, 0x81, 1, 0xac, 0x02, 1];
        want.extend([0x11; 32]);
        want.push(0);
        assert_eq!(&out[..], &want[..]);
        out.clear();
        ServerFrame::reject(0, ErrorCode::PoolFull, Some(2), "x").encode(&mut out);
        assert_eq!(&out[..], &[0, 0, 0, 8, 0x82, 1, 0, 22, 1, 2, 1, b'x']);
        out.clear();
        ServerFrame::Receipts(Receipts { receipts: vec![signed_receipt(300, 0)] }).encode(&mut out);
        let mut want = vec![0, 0, 0, 0x89, 0x84, 1, 1, 1, 0xac, 0x02, 1];
        want.extend([0x11; 32]);
        want.extend([2, 0]);
        want.extend([0x33; 32]);
        want.extend([0x44; 64]);
        assert_eq!(&out[..], &want[..]);
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
        fn decoding_arbitrary_receipt_bodies_never_panics(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        ) {
            let raw = RawFrame { kind: kind::RECEIPT, version: VERSION_1, body: Bytes::from(body) };
            if let Ok(f) = ServerFrame::decode(&raw) {
                // Whatever decodes re-encodes to a frame that decodes to the same value. (Not
                // necessarily to the same bytes: postcard accepts non-minimal varints.)
                let mut out = BytesMut::new();
                f.encode(&mut out);
                let mut dec = FrameDecoder::new(usize::MAX);
                dec.push(&out);
                let again = ServerFrame::decode(&dec.poll_frame().unwrap().unwrap()).unwrap();
                proptest::prop_assert_eq!(again, f);
            }
        }

        #[test]
        fn mutated_receipt_bodies_never_panic(
            n in 0usize..4,
            flips in proptest::collection::vec(
                (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            // Near-valid bodies reach far deeper into the decoder than random ones.
            let receipts = (0..n).map(|i| signed_receipt(i as u64, i as u32)).collect();
            let mut out = BytesMut::new();
            ServerFrame::Receipts(Receipts { receipts }).encode(&mut out);
            let mut body = out[LEN_PREFIX + 2..].to_vec();
            for (at, byte) in flips {
                if !body.is_empty() {
                    let at = at % body.len();
                    body[at] ^= byte;
                }
            }
            body.truncate(cut % (body.len() + 1));
            let raw = RawFrame { kind: kind::RECEIPT, version: VERSION_1, body: Bytes::from(body) };
            let _ = ServerFrame::decode(&raw);
        }

        #[test]
        fn receipts_roundtrip(
            items in proptest::collection::vec(
                (proptest::prelude::any::<(u64, u64, u64, u32, u32)>(),
                 proptest::prelude::any::<[u8; 32]>(), proptest::prelude::any::<u8>()),
                0..20,
            ),
        ) {
            let receipts: Vec<SignedReceipt> = items
                .into_iter()
                .map(|((chain, slot, eon, rollup, position), tx, sig)| SignedReceipt {
                    message: Receipt {
                        chain_id: ChainId(chain), slot: Slot(slot), eon: Eon(eon), tx: TxId(tx),
                        rollup: RollupId(rollup), position, commitment: CommitmentId([sig; 32]),
                    },
                    signature: SignatureBytes([sig; 64]),
                })
                .collect();
            let f = ServerFrame::Receipts(Receipts { receipts });
            let mut out = BytesMut::new();
            f.encode(&mut out);
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            dec.push(&out);
            let raw = dec.poll_frame().unwrap().unwrap();
            proptest::prop_assert_eq!(ServerFrame::decode(&raw).unwrap(), f);
        }

        #[test]
        fn submit_roundtrips(id: u64, deadline: u32, sig: u8, ct in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let tx = SignedCiphertext { ciphertext: Bytes::from(ct), payer_signature: SignatureBytes([sig; 64]) };
            let f = ClientFrame::Submit(Submit { request_id: id, deadline_ms: deadline, tx });
            let mut out = BytesMut::new();
            f.encode(&mut out);
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            dec.push(&out);
            let raw = dec.poll_frame().unwrap().unwrap();
            proptest::prop_assert_eq!(ClientFrame::decode(&raw).unwrap(), f);
        }
    }
}
