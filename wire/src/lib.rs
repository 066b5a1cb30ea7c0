//! Veil's binary wire formats and the QUIC plumbing both ends of a link share.
//!
//! Every Veil QUIC protocol runs one long-lived bidirectional stream per peer carrying
//! length-prefixed, typed, versioned frames ([`frame`]). This crate holds those formats and
//! the client-side and server-side helpers that need nothing of the server: a client (the SDK,
//! the CLI, a load generator) links this crate, never the node's storage or pool.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`frame`] | the framing and the sans-IO [`frame::FrameDecoder`] | none |
//! | [`ingress`] | the ingress protocol's frames (signed submit and bundle, ping, info, ack, reject, receipts); normative spec in `PROTOCOL.md` | none |
//! | `keyper` (feature `keyper`) | the keyper protocol's frames and channel binding; normative spec in `KEYPER.md` | none |
//! | [`tls`] | the persisted self-signed server certificate and clients' certificate pinning | disk |
//! | [`client`] | a pipelined ingress client over quinn | network |
//! | [`udp`] | the UDP sockets under the QUIC endpoints, with buffers sized for bursts | network |
//! | [`error`] | typed errors | none |
//!
//! # Design decisions
//!
//! - **One codec for every protocol.** A protocol is a table of frame kinds and body structs;
//!   the framing, the size limit and the decoder's guarantees (never panics, bounded buffer,
//!   stays in sync after a bad frame) are shared.
//! - **Errors on the wire are [`veil_primitives::ErrorCode`] values**, so the ingress, the
//!   HTTP API and the keyper protocol answer with one table of codes.
//! - **No CA.** Servers present a self-signed certificate; clients pin its fingerprint. The
//!   TLS handshake signature is still checked against the pinned key.
//!
//! # Example: a frame through the decoder
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use ed25519_dalek::SigningKey;
//! use veil_primitives::ChainId;
//! use veil_wire::ingress::{
//!     ClientFrame, FrameDecoder, SignedCiphertext, Submit, DEFAULT_MAX_FRAME_SIZE,
//! };
//!
//! // The fee payer signs the ciphertext's id (see `veil_primitives::payer`).
//! let payer = SigningKey::from_bytes(&[9; 32]);
//! let tx = SignedCiphertext::sign(Bytes::from_static(b"ciphertext bytes"), ChainId(1), &payer);
//! let frame = ClientFrame::Submit(Submit { request_id: 1, deadline_ms: 0, tx });
//! let mut out = BytesMut::new();
//! frame.encode(&mut out);
//! let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
//! decoder.push(&out);
//! let raw = decoder.poll_frame().unwrap().unwrap();
//! assert_eq!(ClientFrame::decode(&raw).unwrap(), frame);
//! ```

pub mod client;
pub mod error;
pub mod frame;
pub mod ingress;
#[cfg(feature = "keyper")]
pub mod keyper;
pub mod tls;
pub mod udp;
