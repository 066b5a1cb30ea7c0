//! Veil's encrypted mempool: the front door every other part of Veil is fed by.
//!
//! Users hand the node a threshold-encrypted transaction over QUIC and get back an ack that
//! means "durably stored, and it will be offered to builders". This crate holds the pieces
//! of that path, from the bytes on the wire to the admission-ordered feed builders and
//! keypers read.
//!
//! # Architecture
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`wire`] | versioned, length-prefixed frames; typed [`wire::RejectCode`]s; a sans-IO [`wire::FrameDecoder`] | none |
//! | [`pool`] | the sans-IO [`pool::Pool`]: admission rules, indexes per rollup, bundle units, capacity and eviction, expiry, commit removal, the feed cursor | none |
//! | [`validate`] | the cryptographic check over veil-crypto: strict decoding in parallel and one batched proof check per eon | CPU only |
//! | [`store`] | SQLite (WAL) on a dedicated thread with group commit; recovery | disk |
//! | [`tls`] | the persisted self-signed certificate and the clients' pinning | disk |
//! | [`ingress`] | the quinn server shell around all of the above | network |
//! | [`client`] | a pipelined low-level client (the SDK in veil-builder-api builds on it) | network |
//! | [`metrics`] | plain `Stats` structs | none |
//!
//! The wire protocol is specified in `PROTOCOL.md` next to this crate's `Cargo.toml`.
//!
//! # The admission path
//!
//! 1. A connection task reads its one stream into a [`wire::FrameDecoder`]. Framing errors
//!    are answered with a typed rejection and the stream stays in sync.
//! 2. Each request takes one of the connection's in-flight permits (when none is left the
//!    task stops reading and QUIC flow control stops the client), passes the per-connection
//!    token bucket and the size limits, and goes to the admission task over a bounded channel.
//! 3. The admission task takes everything queued (up to a batch), decodes and checks it with
//!    the [`ingress::Validator`] on the blocking pool (rayon inside, one batch at a time so
//!    that batches grow with the load and the batched check's fixed cost is shared), then,
//!    under the pool lock, applies the pool's rules and hands the new rows (and the evicted
//!    ones) to the store in sequence order.
//! 4. The storage thread commits everything queued in one SQLite transaction (one fsync);
//!    only then are the acks of that batch written back, coalesced per connection. WAL
//!    checkpoints run on a thread of their own, never inside a commit.
//!
//! # Design decisions
//!
//! - **Ack after fsync, never one fsync per transaction.** Group commit on one thread; the
//!   number of rows per fsync grows with the load. `synchronous=FULL` because an ack promises
//!   survival of a power loss, not only of a process crash (reasoning in [`store`]).
//! - **Admit, then persist, then publish.** The pool admits before the write so duplicates and
//!   ephemeral-key reuse are caught within a batch; the feed only shows the durable prefix;
//!   if the write fails the admission is withdrawn and the clients get `STORAGE_UNAVAILABLE`.
//! - **The pool holds the public metadata beside the ciphertext bytes**, and so does the
//!   database: a restart rebuilds the pool without decoding a single ciphertext again.
//! - **Units.** A bundle is one unit for capacity, eviction and expiry: never half a bundle.
//! - **The feed is a cursor over the pool's own admission-ordered map.** Subscribers hold no
//!   buffers in the pool, so a slow subscriber cannot make it grow; transactions that left
//!   the pool before a subscriber read them are reported as skipped.
//! - **Every queue is bounded**: in-flight permits per connection, the admission channel,
//!   the per-connection answer channel (sized by the permits).
//!
//! # Security assumptions
//!
//! - Clients are hostile: every input path has a size bound and a typed answer; nothing
//!   panics on input (property test and fuzz target on the decoder).
//! - The expensive check (curve decoding, ~30 µs) runs off the reactor, after the cheap
//!   checks (size, rate) that bound how much of it one connection can demand.
//! - The pool trusts its own database on restart (rows were checked before they were stored).
//! - A per-address connection limit is a speed bump, not Sybil resistance.
//!
//! # Example: the pool on its own
//!
//! ```
//! use bytes::Bytes;
//! use veil_mempool::pool::{Candidate, EphemeralKeyDigest, FeedCursor, Pool, PoolConfig, TxMeta};
//! use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};
//!
//! let mut pool = Pool::new(PoolConfig::new(ChainId(1)), Slot(10), &[Eon(1)]);
//! let meta = TxMeta {
//!     chain_id: ChainId(1),
//!     eon: Eon(1),
//!     rollup: RollupId(3),
//!     fee_payer: PublicKeyBytes([1; 32]),
//!     max_fee: Amount(100),
//!     gas_limit: 21_000,
//!     expiry_slot: Slot(20),
//!     bundle: None,
//! };
//! let tx = Candidate {
//!     id: TxId([9; 32]),
//!     meta,
//!     ephemeral_key: EphemeralKeyDigest([2; 32]),
//!     body: Bytes::from_static(b"canonical ciphertext bytes"),
//! };
//! let admitted = pool.admit_tx(tx.clone()).unwrap();
//! assert!(!admitted.duplicate);
//! assert!(pool.admit_tx(tx).unwrap().duplicate);
//! // Once the store reports the write durable, the feed may deliver it.
//! pool.mark_durable(pool.next_seq());
//! assert_eq!(pool.feed(FeedCursor(0), 10).items.len(), 1);
//! // Slot 21: the transaction expired and leaves the pool.
//! assert_eq!(pool.on_slot(Slot(21)).len(), 1);
//! ```

pub mod client;
pub mod error;
pub mod ingress;
pub mod metrics;
pub mod pool;
pub mod store;
pub mod tls;
pub mod validate;
pub mod wire;
