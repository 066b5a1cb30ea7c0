//! The keyper protocol: how a keyper and the sequencer talk, on one QUIC stream in the framing
//! of [`crate::frame`]. The normative description is `KEYPER.md` at the root of this crate.
//!
//! The keyper dials the sequencer (ALPN [`ALPN`]) and opens one bidirectional stream. Both
//! sides authenticate by their ed25519 keys, bound to the TLS session: each signs the
//! connection's keying-material exporter ([`binding`]) in its first frame, so a signature is
//! never valid on another connection. The keyper's key is its identity key in the committee's
//! public key set; the sequencer's key is the key that signs commitments. The TLS certificate
//! itself is not what either side trusts.
//!
//! ```text
//! keyper                                   sequencer
//!   │── HELLO (signed, binding, resume) ─────▶│  checks committee key, binding
//!   │◀────────────── WELCOME (signed, binding)│
//!   │◀──────── CIPHERTEXTS (the feed, chunked)│  from `resume`, then live
//!   │◀──────────── COMMITMENT / RESCALE ──────│  replays what is outstanding
//!   │── FETCH (ids it lacks) ────────────────▶│
//!   │◀─────────────────── BODIES ─────────────│  from the sequencer's storage
//!   │── SHARES (signed batch) ───────────────▶│
//! ```

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use veil_crypto::{KeyperIndex, ResponderSet, SignedShareBatch};
use veil_primitives::encoding::Encoder;
use veil_primitives::signed::{Signed, SignedMessage};
use veil_primitives::{ChainId, Eon, ErrorCode, Slot, TxId};
use veil_sequencer::SignedCommitment;

use crate::error::FrameError;
use crate::frame::{decode_body, encode_frame, RawFrame};
pub use crate::frame::{FrameDecoder, LEN_PREFIX};
pub use crate::ingress::Ping;

/// The ALPN protocol name of version 1 of the keyper protocol.
pub const ALPN: &[u8] = b"veil-keyper/1";

/// The largest frame either side accepts (header excluded): 8 MiB. A commitment of 10,000
/// ciphertexts is 320 KiB; a share batch of 10,000 is 1.3 MB.
pub const MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;

/// The sequencer cuts the feed into [`Ciphertexts`] frames of at most this many body bytes.
pub const FEED_CHUNK_BYTES: usize = 1024 * 1024;

/// The most ids one [`Fetch`] may name.
pub const MAX_FETCH_IDS: usize = 4_096;

/// The label of the TLS keying-material exporter both sides sign (RFC 8446 §7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-veil-keyper/1";

/// The version of every frame body defined today.
pub const VERSION_1: u8 = 1;

/// Frame type bytes. Keyper-to-sequencer kinds are `0x01..=0x7f`, sequencer-to-keyper
/// `0x81..=0xff`.
pub mod kind {
    /// The keyper's signed, channel-bound greeting. Must be the first frame.
    pub const HELLO: u8 = 0x01;
    /// A signed share batch.
    pub const SHARES: u8 = 0x02;
    /// Ask for the bodies of ciphertexts the keyper lacks.
    pub const FETCH: u8 = 0x03;
    /// Keep-alive; answered with [`PONG`].
    pub const PING: u8 = 0x04;
    /// The sequencer's signed, channel-bound answer to [`HELLO`].
    pub const WELCOME: u8 = 0x81;
    /// Admitted ciphertexts from the feed.
    pub const CIPHERTEXTS: u8 = 0x82;
    /// A signed commitment: release your shares for it.
    pub const COMMITMENT: u8 = 0x83;
    /// The fallback round: send shares for a slot scaled for another responder set.
    pub const RESCALE: u8 = 0x84;
    /// The answer to [`FETCH`].
    pub const BODIES: u8 = 0x85;
    /// The sequencer closes the link, with a reason.
    pub const GOODBYE: u8 = 0x86;
    /// Answer to [`PING`].
    pub const PONG: u8 = 0x87;
}

/// The 32 bytes both sides sign: the TLS exporter with [`EXPORTER_LABEL`] and the chain id
/// (big-endian) as context. Equal on both ends of one connection, different on any other.
///
/// # Errors
/// If the TLS session cannot export (it always can once the handshake is done).
pub fn binding(connection: &quinn::Connection, chain_id: ChainId) -> Result<[u8; 32], FrameError> {
    let mut out = [0u8; 32];
    connection
        .export_keying_material(&mut out, EXPORTER_LABEL, &chain_id.0.to_be_bytes())
        .map_err(|_| {
            FrameError::Malformed("the TLS session cannot export keying material".into())
        })?;
    Ok(out)
}

/// Body of [`kind::HELLO`], version 1: who the keyper is and where it resumes the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The eon of the committee the keyper holds a share of.
    pub eon: Eon,
    /// The keyper's index in that committee.
    pub keyper: KeyperIndex,
    /// [`binding`] of this connection.
    pub binding: [u8; 32],
    /// Feed position to resume from (the `next` of the last [`Ciphertexts`] it processed), or
    /// `None` for everything pending.
    pub resume: Option<u64>,
}

impl SignedMessage for Hello {
    const DOMAIN: &'static str = "veil/keyper-hello/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Eon, keyper, binding, then 0, or 1 and the resume position.
    fn encode_body(&self, e: &mut Encoder) {
        e.u64(self.eon.0);
        e.u16(self.keyper.get());
        e.fixed(&self.binding);
        match self.resume {
            None => e.u8(0),
            Some(r) => {
                e.u8(1);
                e.u64(r);
            }
        }
    }
}

/// A hello with the keyper's identity-key signature.
pub type SignedHello = Signed<Hello>;

/// Body of [`kind::WELCOME`], version 1: the sequencer's proof of its key on this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The keyper the sequencer authenticated.
    pub keyper: KeyperIndex,
    /// [`binding`] of this connection.
    pub binding: [u8; 32],
    /// Where the feed starts (the keyper's `resume`, or the oldest pending position).
    pub feed_start: u64,
    /// The slot in progress at the sequencer.
    pub slot: Slot,
}

impl SignedMessage for Welcome {
    const DOMAIN: &'static str = "veil/keyper-welcome/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Keyper, binding, feed start, slot.
    fn encode_body(&self, e: &mut Encoder) {
        e.u16(self.keyper.get());
        e.fixed(&self.binding);
        e.u64(self.feed_start);
        e.u64(self.slot.0);
    }
}

/// A welcome with the sequencer key's signature.
pub type SignedWelcome = Signed<Welcome>;

/// Body of [`kind::CIPHERTEXTS`], version 1: a run of the admitted-ciphertext feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ciphertexts {
    /// The feed position after this run: resume from here.
    pub next: u64,
    /// Positions in the run whose ciphertexts left the pool before they were sent (expired,
    /// evicted or decrypted). A keyper that needs one fetches it by id.
    pub skipped: u64,
    /// Canonical ciphertext encodings, in feed order.
    pub bodies: Vec<Bytes>,
}

/// Body of [`kind::FETCH`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// Echoed in the answer.
    pub request_id: u64,
    /// At most [`MAX_FETCH_IDS`] ids.
    pub ids: Vec<TxId>,
}

/// Body of [`kind::BODIES`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bodies {
    /// The [`Fetch`] this answers.
    pub request_id: u64,
    /// The bodies the sequencer has, in any order (the keyper recomputes their ids).
    pub bodies: Vec<Bytes>,
    /// The ids it does not have (never admitted, or gone).
    pub missing: Vec<TxId>,
}

/// Body of [`kind::RESCALE`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescale {
    /// The slot (already released by the keyper).
    pub slot: Slot,
    /// The responder set to scale the shares for.
    pub responders: ResponderSet,
}

/// Body of [`kind::GOODBYE`], version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    /// An [`ErrorCode`] wire value.
    pub code: u16,
    /// Human-readable detail, for logs only.
    pub detail: String,
}

impl Goodbye {
    /// A goodbye with `code`.
    #[must_use]
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Goodbye {
        Goodbye { code: code.as_u16(), detail: detail.into() }
    }
}

/// A frame the keyper sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyperFrame {
    /// See [`Hello`].
    Hello(Box<SignedHello>),
    /// A signed share batch.
    Shares(Box<SignedShareBatch>),
    /// See [`Fetch`].
    Fetch(Fetch),
    /// See [`Ping`].
    Ping(Ping),
}

/// A frame the sequencer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerFrame {
    /// See [`Welcome`].
    Welcome(Box<SignedWelcome>),
    /// See [`Ciphertexts`].
    Ciphertexts(Ciphertexts),
    /// A signed commitment.
    Commitment(Box<SignedCommitment>),
    /// See [`Rescale`].
    Rescale(Rescale),
    /// See [`Bodies`].
    Bodies(Bodies),
    /// See [`Goodbye`].
    Goodbye(Goodbye),
    /// See [`Ping`].
    Pong(Ping),
}

fn v1<'a, T: Deserialize<'a>>(raw: &'a RawFrame) -> Result<T, FrameError> {
    if raw.version != VERSION_1 {
        return Err(FrameError::UnsupportedVersion { kind: raw.kind, version: raw.version });
    }
    decode_body(&raw.body)
}

impl KeyperFrame {
    /// Decodes a keyper frame's body.
    ///
    /// # Errors
    /// [`FrameError::UnknownKind`], [`FrameError::UnsupportedVersion`] or
    /// [`FrameError::Malformed`].
    pub fn decode(raw: &RawFrame) -> Result<KeyperFrame, FrameError> {
        Ok(match raw.kind {
            kind::HELLO => KeyperFrame::Hello(Box::new(v1(raw)?)),
            kind::SHARES => KeyperFrame::Shares(Box::new(v1(raw)?)),
            kind::FETCH => {
                let fetch: Fetch = v1(raw)?;
                if fetch.ids.len() > MAX_FETCH_IDS {
                    return Err(FrameError::Malformed(format!(
                        "fetch of {} ids exceeds {MAX_FETCH_IDS}",
                        fetch.ids.len()
                    )));
                }
                KeyperFrame::Fetch(fetch)
            }
            kind::PING => KeyperFrame::Ping(v1(raw)?),
            other => return Err(FrameError::UnknownKind(other)),
        })
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            KeyperFrame::Hello(b) => encode_frame(kind::HELLO, VERSION_1, b, out),
            KeyperFrame::Shares(b) => encode_frame(kind::SHARES, VERSION_1, b, out),
            KeyperFrame::Fetch(b) => encode_frame(kind::FETCH, VERSION_1, b, out),
            KeyperFrame::Ping(b) => encode_frame(kind::PING, VERSION_1, b, out),
        }
    }
}

impl SequencerFrame {
    /// Decodes a sequencer frame's body.
    ///
    /// # Errors
    /// [`FrameError::UnknownKind`], [`FrameError::UnsupportedVersion`] or
    /// [`FrameError::Malformed`].
    pub fn decode(raw: &RawFrame) -> Result<SequencerFrame, FrameError> {
        Ok(match raw.kind {
            kind::WELCOME => SequencerFrame::Welcome(Box::new(v1(raw)?)),
            kind::CIPHERTEXTS => SequencerFrame::Ciphertexts(v1(raw)?),
            kind::COMMITMENT => SequencerFrame::Commitment(Box::new(v1(raw)?)),
            kind::RESCALE => SequencerFrame::Rescale(v1(raw)?),
            kind::BODIES => SequencerFrame::Bodies(v1(raw)?),
            kind::GOODBYE => SequencerFrame::Goodbye(v1(raw)?),
            kind::PONG => SequencerFrame::Pong(v1(raw)?),
            other => return Err(FrameError::UnknownKind(other)),
        })
    }

    /// Appends this frame, header included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            SequencerFrame::Welcome(b) => encode_frame(kind::WELCOME, VERSION_1, b, out),
            SequencerFrame::Ciphertexts(b) => encode_frame(kind::CIPHERTEXTS, VERSION_1, b, out),
            SequencerFrame::Commitment(b) => encode_frame(kind::COMMITMENT, VERSION_1, b, out),
            SequencerFrame::Rescale(b) => encode_frame(kind::RESCALE, VERSION_1, b, out),
            SequencerFrame::Bodies(b) => encode_frame(kind::BODIES, VERSION_1, b, out),
            SequencerFrame::Goodbye(b) => encode_frame(kind::GOODBYE, VERSION_1, b, out),
            SequencerFrame::Pong(b) => encode_frame(kind::PONG, VERSION_1, b, out),
        }
    }

    /// The frame as bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

impl KeyperFrame {
    /// The frame as bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

/// Cuts feed bodies into [`Ciphertexts`] runs of at most [`FEED_CHUNK_BYTES`] body bytes
/// each (a single larger body gets a run of its own). Only the last run carries the batch's
/// `next` and `skipped`; earlier runs carry `start`, the batch's first position, so a keyper
/// that stops between runs resumes at the batch's start and re-reads at most one batch.
#[must_use]
pub fn chunk_feed(bodies: Vec<Bytes>, start: u64, next: u64, skipped: u64) -> Vec<Ciphertexts> {
    let mut runs: Vec<Ciphertexts> = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    for body in bodies {
        if !current.is_empty() && size + body.len() > FEED_CHUNK_BYTES {
            runs.push(Ciphertexts {
                next: start,
                skipped: 0,
                bodies: std::mem::take(&mut current),
            });
            size = 0;
        }
        size += body.len();
        current.push(body);
    }
    runs.push(Ciphertexts { next, skipped, bodies: current });
    runs
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use veil_primitives::signed::public_key;

    use super::*;

    fn roundtrip_seq(frame: &SequencerFrame) -> SequencerFrame {
        let bytes = frame.to_bytes();
        let mut d = FrameDecoder::new(MAX_FRAME_SIZE);
        d.push(&bytes);
        SequencerFrame::decode(&d.poll_frame().expect("a frame").expect("valid")).expect("decodes")
    }

    fn roundtrip_keyper(frame: &KeyperFrame) -> KeyperFrame {
        let bytes = frame.to_bytes();
        let mut d = FrameDecoder::new(MAX_FRAME_SIZE);
        d.push(&bytes);
        KeyperFrame::decode(&d.poll_frame().expect("a frame").expect("valid")).expect("decodes")
    }

    fn hello() -> Hello {
        Hello {
            chain_id: ChainId(7),
            eon: Eon(1),
            keyper: KeyperIndex::new(3).expect("non-zero"),
            binding: [9; 32],
            resume: Some(42),
        }
    }

    #[test]
    fn frames_roundtrip() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let h = KeyperFrame::Hello(Box::new(Signed::sign(hello(), &key)));
        assert_eq!(roundtrip_keyper(&h), h);
        let f = KeyperFrame::Fetch(Fetch { request_id: 5, ids: vec![TxId([3; 32])] });
        assert_eq!(roundtrip_keyper(&f), f);
        let w = SequencerFrame::Welcome(Box::new(Signed::sign(
            Welcome {
                chain_id: ChainId(7),
                keyper: KeyperIndex::new(3).expect("non-zero"),
                binding: [9; 32],
                feed_start: 0,
                slot: Slot(4),
            },
            &key,
        )));
        assert_eq!(roundtrip_seq(&w), w);
        let c = SequencerFrame::Ciphertexts(Ciphertexts {
            next: 10,
            skipped: 2,
            bodies: vec![Bytes::from_static(b"abc")],
        });
        assert_eq!(roundtrip_seq(&c), c);
        let b = SequencerFrame::Bodies(Bodies {
            request_id: 5,
            bodies: vec![],
            missing: vec![TxId([3; 32])],
        });
        assert_eq!(roundtrip_seq(&b), b);
        let g = SequencerFrame::Goodbye(Goodbye::new(ErrorCode::KeyperReplaced, "newer link"));
        assert_eq!(roundtrip_seq(&g), g);
    }

    #[test]
    fn hello_signature_is_bound_to_its_fields() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = Signed::sign(hello(), &key);
        assert!(signed.verify(&public_key(&key)).is_ok());
        let mut other = signed.clone();
        other.message.binding = [8; 32];
        assert!(other.verify(&public_key(&key)).is_err(), "another connection's binding");
        let mut other = signed;
        other.message.resume = None;
        assert!(other.verify(&public_key(&key)).is_err());
    }

    #[test]
    fn oversized_fetch_is_refused() {
        let f = KeyperFrame::Fetch(Fetch {
            request_id: 1,
            ids: vec![TxId([0; 32]); MAX_FETCH_IDS + 1],
        });
        let bytes = f.to_bytes();
        let mut d = FrameDecoder::new(MAX_FRAME_SIZE);
        d.push(&bytes);
        let raw = d.poll_frame().expect("a frame").expect("valid framing");
        assert!(matches!(KeyperFrame::decode(&raw), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn feed_chunks_respect_the_size_and_keep_every_body() {
        let bodies: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 50_000])).collect();
        let runs = chunk_feed(bodies.clone(), 7, 107, 3);
        assert!(runs.len() > 1);
        assert!(runs
            .iter()
            .all(|r| r.bodies.iter().map(Bytes::len).sum::<usize>() <= FEED_CHUNK_BYTES));
        let flat: Vec<Bytes> = runs.iter().flat_map(|r| r.bodies.clone()).collect();
        assert_eq!(flat, bodies);
        let last = runs.last().expect("one run");
        assert_eq!((last.next, last.skipped), (107, 3));
        assert!(runs[..runs.len() - 1].iter().all(|r| r.next == 7 && r.skipped == 0));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bodies_never_panics(kind in any::<u8>(), version in 0u8..3,
                                                  body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let raw = RawFrame { kind, version, body: Bytes::from(body) };
            let _ = KeyperFrame::decode(&raw);
            let _ = SequencerFrame::decode(&raw);
        }
    }
}
