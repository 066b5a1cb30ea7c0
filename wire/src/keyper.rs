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

/// The version of every frame body defined today but `SHARES`.
pub const VERSION_1: u8 = 1;
/// The version of the `SHARES` body: version 2 names the block by a digest of its ordered
/// ids and carries 96 bytes per share (version 1 repeated each 32-byte id); version 3 has the
/// same fields, signed over a digest of the shares (`veil/share-batch/v3`) rather than the
/// shares themselves.
pub const SHARES_VERSION: u8 = 3;

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
    /// Where the feed starts: the keyper's `resume`, or 0 (everything pending) when it has
    /// none or it lies past the feed's end (a keyper that last linked to another data
    /// directory).
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

/// Body of [`kind::BODIES`], version 1. An answer larger than [`FEED_CHUNK_BYTES`] comes as
/// several BODIES frames with the same `request_id`; only the last carries `missing`.
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

fn v1<'a, T: Deserialize<'a> + Serialize>(raw: &'a RawFrame) -> Result<T, FrameError> {
    versioned(raw, VERSION_1)
}

fn versioned<'a, T: Deserialize<'a> + Serialize>(
    raw: &'a RawFrame,
    version: u8,
) -> Result<T, FrameError> {
    if raw.version != version {
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
            kind::SHARES => KeyperFrame::Shares(Box::new(versioned(raw, SHARES_VERSION)?)),
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
            KeyperFrame::Shares(b) => encode_frame(kind::SHARES, SHARES_VERSION, b, out),
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

    fn k(i: u16) -> KeyperIndex {
        KeyperIndex::new(i).expect("non-zero")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode_keyper(bytes: &[u8]) -> Result<KeyperFrame, FrameError> {
        let mut d = FrameDecoder::new(MAX_FRAME_SIZE);
        d.push(bytes);
        KeyperFrame::decode(&d.poll_frame().expect("a frame")?)
    }

    fn decode_seq(bytes: &[u8]) -> Result<SequencerFrame, FrameError> {
        let mut d = FrameDecoder::new(MAX_FRAME_SIZE);
        d.push(bytes);
        SequencerFrame::decode(&d.poll_frame().expect("a frame")?)
    }

    /// KEYPER.md, whose worked examples the tests below compute.
    const KEYPER_MD: &str = include_str!("../KEYPER.md");

    /// Asserts that `hex` appears in KEYPER.md (line breaks and spaces inside a hex block are
    /// ignored, so the doc may wrap long strings).
    fn assert_in_doc(name: &str, hex: &str) {
        let doc: String = KEYPER_MD.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(doc.contains(hex), "KEYPER.md lacks the {name} example: {hex}");
    }

    /// Prints a worked example in KEYPER.md's layout (32 bytes a line), for updating the doc.
    fn show(name: &str, bytes: &[u8]) {
        println!("{name} ({} bytes):", bytes.len());
        for line in bytes.chunks(32) {
            println!("{}", hex(line));
        }
    }

    fn example_hello() -> SignedHello {
        let hello = Hello {
            chain_id: ChainId(1337),
            eon: Eon(1),
            keyper: k(3),
            binding: [0x09; 32],
            resume: Some(42),
        };
        Signed::sign(hello, &SigningKey::from_bytes(&[0x01; 32]))
    }

    fn example_welcome() -> SignedWelcome {
        let welcome = Welcome {
            chain_id: ChainId(1337),
            keyper: k(3),
            binding: [0x09; 32],
            feed_start: 42,
            slot: Slot(7),
        };
        Signed::sign(welcome, &SigningKey::from_bytes(&[0x02; 32]))
    }

    fn example_commitment() -> SignedCommitment {
        let commitment = veil_sequencer::Commitment {
            chain_id: ChainId(1337),
            slot: Slot(7),
            eon: Eon(1),
            blocks: vec![veil_sequencer::CommittedBlock {
                rollup: veil_primitives::RollupId(2),
                winner: Some(veil_primitives::PublicKeyBytes([0x33; 32])),
                payment: veil_primitives::Amount(1000),
                ciphertexts: vec![TxId([0x11; 32])],
            }],
            outcome_hash: [0x22; 32],
        };
        Signed::sign(commitment, &SigningKey::from_bytes(&[0x02; 32]))
    }

    fn example_shares() -> SignedShareBatch {
        let batch = veil_crypto::ShareBatch {
            chain_id: ChainId(1337),
            eon: Eon(1),
            slot: Slot(7),
            keyper: k(3),
            scaled_for: Some(ResponderSet::try_from(vec![k(1), k(2), k(3)]).expect("sorted")),
            // Not a curve point: the example pins the layout, not the cryptography.
            block: veil_crypto::BlockDigest([0x11; 32]),
            shares: vec![veil_crypto::ShareBytes([0x44; 96])],
        };
        Signed::sign(batch, &SigningKey::from_bytes(&[0x01; 32]))
    }

    const KEYPER_PUBLIC_KEY: &str =
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const SEQUENCER_PUBLIC_KEY: &str =
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
    const HELLO_SIGNING_BYTES: &str = "\
        000000147665696c2f6b65797065722d68656c6c6f2f76310000000000000539\
        0000000000000001000309090909090909090909090909090909090909090909\
        0909090909090909090901000000000000002a";
    const HELLO_FRAME: &str = "\
        000000680101b90a010309090909090909090909090909090909090909090909\
        09090909090909090909012aeffe4d38c5d62727835dca270628e9f41bdf8800\
        ab91662c0f0329ebf5859c5e5db23bc745b31e3c1c37dd9e85f8f43b864c0e44\
        87758ac50dc6ecdb6da81f00";
    const WELCOME_SIGNING_BYTES: &str = "\
        000000167665696c2f6b65797065722d77656c636f6d652f7631000000000000\
        0539000309090909090909090909090909090909090909090909090909090909\
        09090909000000000000002a0000000000000007";
    const WELCOME_FRAME: &str = "\
        000000678101b90a030909090909090909090909090909090909090909090909\
        0909090909090909092a07e2fc59e44728d8116ac066bbf496596f4fd6bed80f\
        f1d18b11ef34d88c6a41f4829067494f3fd4f5f122811c6af1a5ec9f7fa25ee0\
        215b9d901c94b0a370850e";
    const COMMITMENT_SIGNING_BYTES: &str = "\
        000000127665696c2f636f6d6d69746d656e742f763100000000000005390000\
        0000000000070000000000000001000000010000000201333333333333333333\
        3333333333333333333333333333333333333333333333000000000000000000\
        000000000003e800000001111111111111111111111111111111111111111111\
        1111111111111111111111222222222222222222222222222222222222222222\
        2222222222222222222222";
    const COMMITMENT_FRAME: &str = "\
        000000ac8301b90a070101020133333333333333333333333333333333333333\
        33333333333333333333333333e8070111111111111111111111111111111111\
        1111111111111111111111111111111122222222222222222222222222222222\
        222222222222222222222222222222223aa5e38955b3018ee722fe56139479dc\
        579a6a4040f85819d58fc532837a083b06205d113802becfecfcf5c9a53299a8\
        e0b67d032e6683180cf29332fad67f05";
    const SHARES_SIGNING_BYTES: &str = "\
        000000137665696c2f73686172652d62617463682f7633000000000000053900\
        0000000000000100000000000000070003010000000300010002000311111111\
        1111111111111111111111111111111111111111111111111111111100000001\
        1bf6ddb46adfad719cb7279e606f47c449a96516167862bd5e62a0a1fa415a94";
    const SHARES_FRAME: &str = "\
        000000cd0203b90a010703010301020311111111111111111111111111111111\
        1111111111111111111111111111111101444444444444444444444444444444\
        4444444444444444444444444444444444444444444444444444444444444444\
        4444444444444444444444444444444444444444444444444444444444444444\
        4444444444444444444444444444444444312ab5ef67dfc1bb0ffe61594c6e67\
        78b8a898445f432281fa83befa40f13d9d1c08dae6a2bc2504628f73ffdfcc76\
        86571886dae99ffa842e1b6a7dcaf7330a";
    const CIPHERTEXTS_FRAME: &str = "0000000c8201ac02020203aabbcc01dd";
    const FETCH_FRAME: &str = "\
        0000002403010101111111111111111111111111111111111111111111111111\
        1111111111111111";
    const BODIES_FRAME: &str = "\
        000000298501010103aabbcc0155555555555555555555555555555555555555\
        55555555555555555555555555";
    const RESCALE_FRAME: &str = "0000000784010703010204";
    const GOODBYE_FRAME: &str = "000000078601cb01026e6f";
    const PING_FRAME: &str = "00000003040101";
    const PONG_FRAME: &str = "00000003870101";

    /// DESIGN.md's bandwidth line: one keyper's batch for a 1,000-ciphertext block is at most
    /// 96 KiB on the wire, 96 bytes per share and a fixed overhead (the block digest, the
    /// header fields, the signature, the frame header).
    #[test]
    fn a_thousand_share_batch_frame_is_96_bytes_a_share() {
        let mut batch = example_shares().message;
        batch.shares = vec![veil_crypto::ShareBytes([0x44; 96]); 1000];
        let signed = Signed::sign(batch, &SigningKey::from_bytes(&[0x01; 32]));
        let frame = KeyperFrame::Shares(Box::new(signed)).to_bytes();
        let overhead = frame.len() - 96 * 1000;
        assert!(overhead <= 128, "{overhead} bytes besides the shares");
        assert!(frame.len() <= 96 * 1024, "{} bytes", frame.len());
    }

    /// Every worked example of KEYPER.md, computed here and compared with the constants, which
    /// the doc must carry verbatim. Run with `--nocapture` to print them in the doc's layout.
    #[test]
    fn keyper_doc_examples() {
        let hello = example_hello();
        let welcome = example_welcome();
        let commitment = example_commitment();
        let shares = example_shares();
        let keyper_key = public_key(&SigningKey::from_bytes(&[0x01; 32]));
        let sequencer_key = public_key(&SigningKey::from_bytes(&[0x02; 32]));
        assert!(hello.verify(&keyper_key).is_ok() && shares.verify(&keyper_key).is_ok());
        assert!(
            welcome.verify(&sequencer_key).is_ok() && commitment.verify(&sequencer_key).is_ok()
        );
        let frames: Vec<(&str, Vec<u8>, &str)> = vec![
            ("keyper public key", keyper_key.0.to_vec(), KEYPER_PUBLIC_KEY),
            ("sequencer public key", sequencer_key.0.to_vec(), SEQUENCER_PUBLIC_KEY),
            ("HELLO signing bytes", hello.signing_bytes(), HELLO_SIGNING_BYTES),
            ("HELLO frame", KeyperFrame::Hello(Box::new(hello)).to_bytes().to_vec(), HELLO_FRAME),
            ("WELCOME signing bytes", welcome.signing_bytes(), WELCOME_SIGNING_BYTES),
            (
                "WELCOME frame",
                SequencerFrame::Welcome(Box::new(welcome)).to_bytes().to_vec(),
                WELCOME_FRAME,
            ),
            ("COMMITMENT signing bytes", commitment.signing_bytes(), COMMITMENT_SIGNING_BYTES),
            (
                "COMMITMENT frame",
                SequencerFrame::Commitment(Box::new(commitment)).to_bytes().to_vec(),
                COMMITMENT_FRAME,
            ),
            ("SHARES signing bytes", shares.signing_bytes(), SHARES_SIGNING_BYTES),
            (
                "SHARES frame",
                KeyperFrame::Shares(Box::new(shares)).to_bytes().to_vec(),
                SHARES_FRAME,
            ),
            (
                "CIPHERTEXTS frame",
                SequencerFrame::Ciphertexts(Ciphertexts {
                    next: 300,
                    skipped: 2,
                    bodies: vec![
                        Bytes::from_static(&[0xaa, 0xbb, 0xcc]),
                        Bytes::from_static(&[0xdd]),
                    ],
                })
                .to_bytes()
                .to_vec(),
                CIPHERTEXTS_FRAME,
            ),
            (
                "FETCH frame",
                KeyperFrame::Fetch(Fetch { request_id: 1, ids: vec![TxId([0x11; 32])] })
                    .to_bytes()
                    .to_vec(),
                FETCH_FRAME,
            ),
            (
                "BODIES frame",
                SequencerFrame::Bodies(Bodies {
                    request_id: 1,
                    bodies: vec![Bytes::from_static(&[0xaa, 0xbb, 0xcc])],
                    missing: vec![TxId([0x55; 32])],
                })
                .to_bytes()
                .to_vec(),
                BODIES_FRAME,
            ),
            (
                "RESCALE frame",
                SequencerFrame::Rescale(Rescale {
                    slot: Slot(7),
                    responders: ResponderSet::try_from(vec![k(1), k(2), k(4)]).expect("sorted"),
                })
                .to_bytes()
                .to_vec(),
                RESCALE_FRAME,
            ),
            (
                "GOODBYE frame",
                SequencerFrame::Goodbye(Goodbye::new(ErrorCode::KeyperUnauthenticated, "no"))
                    .to_bytes()
                    .to_vec(),
                GOODBYE_FRAME,
            ),
            ("PING frame", KeyperFrame::Ping(Ping { nonce: 1 }).to_bytes().to_vec(), PING_FRAME),
            ("PONG frame", SequencerFrame::Pong(Ping { nonce: 1 }).to_bytes().to_vec(), PONG_FRAME),
        ];
        for (name, bytes, _) in &frames {
            show(name, bytes);
        }
        for (name, bytes, want) in &frames {
            assert_eq!(hex(bytes), *want, "{name}");
            assert_in_doc(name, want);
        }
    }

    /// The decoding rules of KEYPER.md section 4: fixed arrays without a length prefix, the
    /// signature last, keyper index 0 refused, responder sets non-empty and ascending, option
    /// tags 0 or 1, UTF-8 details, no trailing bytes, kinds per direction, version 1 only.
    #[test]
    fn bodies_decode_strictly() {
        let hello = example_hello();
        let frame = KeyperFrame::Hello(Box::new(hello.clone())).to_bytes().to_vec();
        // Header 0..6, chain id b9 0a, eon 01, keyper 03 at 9, binding 10..42, option tag at 42,
        // resume at 43, signature in the last 64 bytes.
        assert_eq!(&frame[10..42], &[0x09; 32]);
        assert_eq!(&frame[42..44], &[0x01, 0x2a]);
        assert_eq!(&frame[44..], &hello.signature.0[..]);
        assert_eq!(frame.len(), 44 + 64);
        let mut zero_keyper = frame.clone();
        zero_keyper[9] = 0;
        assert!(matches!(decode_keyper(&zero_keyper), Err(FrameError::Malformed(_))));
        let mut bad_tag = frame.clone();
        bad_tag[42] = 2;
        assert!(matches!(decode_keyper(&bad_tag), Err(FrameError::Malformed(_))));
        let mut trailing = frame;
        trailing.push(0);
        trailing[3] += 1;
        assert!(matches!(decode_keyper(&trailing), Err(FrameError::Malformed(_))));

        // Responder sets: unsorted, repeated, empty, or naming index 0.
        for members in [&[2u8, 1][..], &[1, 1], &[], &[0, 1]] {
            let mut f = vec![0, 0, 0, 0, kind::RESCALE, VERSION_1, 7, members.len() as u8];
            f.extend_from_slice(members);
            f[3] = (f.len() - LEN_PREFIX) as u8;
            assert!(matches!(decode_seq(&f), Err(FrameError::Malformed(_))), "{members:?}");
        }

        // A goodbye detail must be UTF-8; a code this version does not know still decodes.
        let bad_utf8 = [0, 0, 0, 5, kind::GOODBYE, VERSION_1, 0x01, 0x01, 0xff];
        assert!(matches!(decode_seq(&bad_utf8), Err(FrameError::Malformed(_))));
        let unknown = SequencerFrame::Goodbye(Goodbye { code: 65_535, detail: String::new() });
        assert_eq!(roundtrip_seq(&unknown), unknown);

        // Each direction knows only its own kinds; only version 1 exists.
        let ping = KeyperFrame::Ping(Ping { nonce: 1 }).to_bytes();
        assert_eq!(decode_seq(&ping), Err(FrameError::UnknownKind(kind::PING)));
        let pong = SequencerFrame::Pong(Ping { nonce: 1 }).to_bytes();
        assert_eq!(decode_keyper(&pong), Err(FrameError::UnknownKind(kind::PONG)));
        assert_eq!(
            decode_keyper(&[0, 0, 0, 3, kind::PING, 2, 1]),
            Err(FrameError::UnsupportedVersion { kind: kind::PING, version: 2 })
        );
    }

    /// The limits of KEYPER.md agree with each other: the largest fetch and a full feed run
    /// fit in a frame.
    #[test]
    fn limits_fit_the_frame_size() {
        let fetch = KeyperFrame::Fetch(Fetch {
            request_id: u64::MAX,
            ids: vec![TxId([0; 32]); MAX_FETCH_IDS],
        });
        assert!(fetch.to_bytes().len() - LEN_PREFIX <= MAX_FRAME_SIZE);
        let run = SequencerFrame::Ciphertexts(Ciphertexts {
            next: u64::MAX,
            skipped: u64::MAX,
            bodies: vec![Bytes::from(vec![0; FEED_CHUNK_BYTES])],
        });
        assert!(run.to_bytes().len() - LEN_PREFIX <= MAX_FRAME_SIZE);
    }

    #[test]
    fn feed_chunking_edge_cases() {
        // Only skipped positions: one empty run that still carries `next` and `skipped`.
        assert_eq!(
            chunk_feed(vec![], 5, 9, 4),
            vec![Ciphertexts { next: 9, skipped: 4, bodies: vec![] }]
        );
        // A body above the chunk size gets a run of its own; only the last run carries `next`.
        let big = Bytes::from(vec![1; FEED_CHUNK_BYTES + 1]);
        let small = Bytes::from_static(b"x");
        let runs = chunk_feed(vec![small.clone(), big.clone(), small.clone()], 5, 8, 2);
        let shape: Vec<(u64, u64, usize)> =
            runs.iter().map(|r| (r.next, r.skipped, r.bodies.len())).collect();
        assert_eq!(shape, vec![(5, 0, 1), (5, 0, 1), (8, 2, 1)]);
        assert_eq!(runs[1].bodies, vec![big]);
    }

    /// KEYPER.md section 5 on a real QUIC connection: ALPN `veil-keyper/1`, a self-signed
    /// certificate accepted by the keyper's configuration, the same binding on both ends, and
    /// another binding on another connection or for another chain id.
    #[tokio::test]
    async fn binding_is_shared_by_both_ends_and_unique_per_connection() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let identity = crate::tls::load_or_create(dir.path()).expect("an identity");
        let server_config = quinn::ServerConfig::with_crypto(
            crate::tls::server_crypto(&identity, ALPN).expect("server crypto"),
        );
        let localhost = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = quinn::Endpoint::server(server_config, localhost).expect("bind the server");
        let address = server.local_addr().expect("an address");
        let mut client = quinn::Endpoint::client(localhost).expect("bind the client");
        client.set_default_client_config(quinn::ClientConfig::new(
            crate::tls::client_crypto_channel_bound(ALPN).expect("client crypto"),
        ));
        let mut seen = Vec::new();
        for _ in 0..2 {
            let connecting = client.connect(address, "veil-sequencer").expect("connect");
            let accepting = async { server.accept().await.expect("an incoming connection").await };
            let (keyper, sequencer) = tokio::join!(connecting, accepting);
            let (keyper, sequencer) = (keyper.expect("handshake"), sequencer.expect("handshake"));
            let alpn = keyper
                .handshake_data()
                .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|d| d.protocol);
            assert_eq!(alpn.as_deref(), Some(ALPN));
            let chain = ChainId(1337);
            let ours = binding(&keyper, chain).expect("export");
            assert_eq!(ours, binding(&sequencer, chain).expect("export"));
            assert_ne!(ours, binding(&keyper, ChainId(1338)).expect("export"));
            seen.push(ours);
            keyper.close(0u32.into(), b"");
        }
        assert_ne!(seen[0], seen[1], "another connection, another binding");
        client.wait_idle().await;
    }

    proptest! {
        /// What the fuzz target `keyper_frames` checks: a body that decodes re-encodes to a
        /// frame that decodes to the same value.
        #[test]
        fn decoded_frames_reencode_to_the_same_value(
            kind in prop::sample::select(vec![
                kind::HELLO, kind::SHARES, kind::FETCH, kind::PING, kind::WELCOME,
                kind::CIPHERTEXTS, kind::COMMITMENT, kind::RESCALE, kind::BODIES,
                kind::GOODBYE, kind::PONG,
            ]),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let raw = RawFrame { kind, version: VERSION_1, body: Bytes::from(body) };
            if let Ok(f) = KeyperFrame::decode(&raw) {
                prop_assert_eq!(decode_keyper(&f.to_bytes()).expect("re-decodes"), f);
            }
            if let Ok(f) = SequencerFrame::decode(&raw) {
                prop_assert_eq!(decode_seq(&f.to_bytes()).expect("re-decodes"), f);
            }
        }

        #[test]
        fn decoding_arbitrary_bodies_never_panics(kind in any::<u8>(), version in 0u8..3,
                                                  body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let raw = RawFrame { kind, version, body: Bytes::from(body) };
            let _ = KeyperFrame::decode(&raw);
            let _ = SequencerFrame::decode(&raw);
        }
    }
}
