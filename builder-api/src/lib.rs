//! Veil's client SDK for users: encrypt a transaction (or an atomic bundle across rollups) to
//! the committee key, submit it to the ingress over QUIC, wait for the ack that means
//! "durably stored and offered to builders", and, if wanted, for the sequencer's signed
//! inclusion receipt once a slot commitment includes it ([`Submitter::wait_receipt`],
//! [`Submitter::wait_verified_receipt`]).
//!
//! The HTTP/JSON builder and rollup APIs described in DESIGN.md are not built yet; this crate
//! holds the user-facing submission path only.
//!
//! # Design
//!
//! - [`Submitter`] keeps one connection (one QUIC stream) and pipelines requests over it. When
//!   the connection breaks it reconnects, and a request that failed in transport or with a
//!   retryable rejection is sent again with exponential backoff: admission is idempotent (the
//!   same ciphertext gets the same id), so a resend can never admit twice.
//! - The SDK checks that the ack names the ids it computed itself
//!   ([`veil_crypto::Ciphertext::id`]), so a confused or lying server is caught.
//! - Receipts are pushed by the node on the connection that submitted the transaction and
//!   held by the client in a bounded inbox until asked for, so asking late is fine; asking
//!   after a reconnect is not (the new connection did not submit it). Verification needs the
//!   sequencer's public key, obtained out of band.
//! - [`loadgen`] drives many connections at a target rate and reports latency percentiles;
//!   the `veil loadgen` command and `veil-perf ingest` use it.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(pks: veil_crypto::PublicKeySet, ad: veil_primitives::TxMeta)
//! # -> Result<(), veil_builder_api::SdkError> {
//! use veil_builder_api::{RetryPolicy, Submitter};
//! use veil_wire::client::ClientConfig;
//! use veil_wire::tls::Pin;
//!
//! let pin = Pin::Fingerprint("0x…".parse().expect("fingerprint"));
//! let submitter = Submitter::new(ClientConfig::new("127.0.0.1:4433".parse().unwrap(), pin),
//!     RetryPolicy::default());
//! let ct = veil_builder_api::encrypt(&pks, &ad, b"my transaction")?;
//! let id = submitter.submit(&ct).await?;
//! # let _ = id; Ok(()) }
//! ```

mod error;
pub mod loadgen;
mod submit;

pub use error::SdkError;
pub use submit::{encrypt, encrypt_bundle, RetryPolicy, Submitter};
