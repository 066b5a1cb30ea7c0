//! Veil's builder, user and data APIs: the QUIC submission SDK for users, the HTTP/JSON API's
//! types ([`api`]), its clients ([`http`]) and, behind the feature `server`, its axum server
//! and OpenAPI document ([`server`]).
//!
//! | module | side | what |
//! |---|---|---|
//! | [`Submitter`], [`encrypt`], [`sign`], [`loadgen`] | client | encrypt a transaction (or an atomic bundle) to the committee key, sign it as its fee payer, submit it to the ingress over QUIC, wait for the ack ("durably stored and offered to builders") and for the signed inclusion receipt |
//! | [`api`] | both | routes, JSON bodies, the error body, the one [`ErrorCode`](veil_primitives::ErrorCode) → HTTP status mapping |
//! | [`http`] | client | [`http::BuilderClient`], [`http::RollupClient`] and [`http::DataClient`]: typed errors, `GET`s retried (the registry `POST`s are safe to resend: nonces and deposit ids make them idempotent or refused as replays) |
//! | [`builder`] | client | the reference builder (`veil builder run`): a sans-IO pending set, block builder and bid planner, and a driver that follows the mempool stream and bids over HTTP |
//! | `server` (feature `server`) | server | axum routes over an `ApiBackend` the node implements, `/openapi.json` generated from the handlers |
//!
//! The client side links neither axum nor any storage: the node implements the server's
//! backend trait over its services and stores, so the routes stay thin adapters.
//!
//! # HTTP API
//!
//! JSON with `0x`-hex bytes and decimal-string amounts (builder-specs habits); every error is
//! `{code, name, message}` with a code of the one table and a fixed status
//! ([`api::http_status`]). Routes ([`api::paths`]): `GET /v1/builder/schedule`,
//! `POST /v1/builder/bids`, `POST /v1/builder/bids/batch`, `GET /v1/slots/{slot}/outcome`,
//! `GET /v1/slots/{slot}/blocks`, `GET /v1/data/bids`, `GET /v1/data/blocks`,
//! `GET /v1/tx/{id}`, `GET /v1/builder/top_bid` (only where the node shows it; sealed by
//! default), `GET /v1/mempool` (pages from a cursor) and `GET /v1/mempool/stream` (server-sent
//! events, resumable with `Last-Event-ID`; [`http::MempoolStream`]), `GET /health`,
//! `GET /ready`, `GET /metrics`, `GET /openapi.json`; and
//! the rollup and collateral routes ([`api::registry::paths`]): `POST /v1/rollups/updates`
//! (signed admin messages: register, configure, rotate the admin key), `GET /v1/rollups`,
//! `GET /v1/rollups/{rollup}`, `GET /v1/rollups/{rollup}/blocks?from=&limit=`,
//! `GET /v1/rollups/{rollup}/payouts?from=&limit=`, `GET /v1/builders/{key}`,
//! `POST /v1/builders/deposits` (bridge-signed deposit notices, idempotent per deposit id),
//! `POST /v1/builders/withdrawals`. Every accepted change is durable in the sequencer's record
//! log before it is answered, and survives a restart. Requests are rate-limited per client
//! address and bids per builder key (`RATE_LIMITED`, 429, with `Retry-After`).
//!
//! # Submission SDK (QUIC)
//!
//! - Every ciphertext is signed by its fee payer ([`sign`]): the key the associated data
//!   names as `fee_payer`, over the ciphertext's id. The payer's fee account must hold the
//!   transaction's `max_fee` (see `GET /v1/users/{payer}`).
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
//! # async fn demo(pks: veil_crypto::PublicKeySet, ad: veil_primitives::TxMeta,
//! #     payer: ed25519_dalek::SigningKey) -> Result<(), veil_builder_api::SdkError> {
//! use veil_builder_api::{RetryPolicy, Submitter};
//! use veil_wire::client::ClientConfig;
//! use veil_wire::tls::Pin;
//!
//! let pin = Pin::Fingerprint("0x…".parse().expect("fingerprint"));
//! let submitter = Submitter::new(ClientConfig::new("127.0.0.1:4433".parse().unwrap(), pin),
//!     RetryPolicy::default());
//! let ct = veil_builder_api::encrypt(&pks, &ad, b"my transaction")?;
//! // `payer` is the key `ad.fee_payer` names; its fee account pays `ad.max_fee` at most.
//! let id = submitter.submit(&ct, &payer).await?;
//! # let _ = id; Ok(()) }
//! ```

pub mod api;
pub mod builder;
mod error;
pub mod http;
pub mod loadgen;
#[cfg(feature = "server")]
pub mod server;
mod submit;

pub use error::{BuilderError, SdkError};
pub use submit::{encrypt, encrypt_bundle, sign, RetryPolicy, Submitter};
