//! Veil's encrypted mempool core: the sans-IO pool and every admission rule.
//!
//! Users hand the node a threshold-encrypted transaction and get back an ack that means
//! "durably stored, and it will be offered to builders". This crate holds the rules of that
//! path as pure code: what is admitted, what is evicted, what expires, in which order the feed
//! delivers. It does no I/O, reads no clock and draws no randomness: time comes in as `now`,
//! randomness as an RNG argument, durability as [`pool::Pool::mark_durable`]. The QUIC shell
//! that moves bytes, timers and permits around it is the node's ingress service; the frames
//! are in veil-wire; the durable rows in veil-storage.
//!
//! # Architecture
//!
//! | module | what |
//! |---|---|
//! | [`pool`] | the [`pool::Pool`]: indexes per rollup, bundle units, capacity and eviction, expiry, commit removal, the feed cursor, the [`veil_primitives::CiphertextIndex`] the auction reads |
//! | [`abuse`] | who sent failing proofs: trust classes for batching, suspended payers, connections to close, addresses to refuse |
//! | [`admission`] | the rules around the pool: per-connection token bucket, frame-level prechecks, resubmissions, deadlines, and admission of checked requests |
//! | [`validate`] | the cryptographic check over veil-crypto: strict decoding in parallel, the fee payer's signature (batch-verified), a funded-payer gate, then one batched proof check per eon |
//! | [`error`] | [`error::Rejection`]: an [`veil_primitives::ErrorCode`] with detail and bundle part |
//! | [`metrics`] | plain `Stats` structs |
//!
//! # The admission path
//!
//! 1. The shell decodes a frame and asks [`admission::TokenBucket::admit`] and
//!    [`pool::Pool::precheck`] (rate, part count, sizes) before any expensive work.
//! 2. It answers resubmissions of pending bytes from [`pool::Pool::resubmission`], and sends
//!    the rest through a [`validate::Validator`] in batches, off its reactor.
//! 3. [`pool::Pool::admit_checked`] applies the deadline (against the `now` passed in), the
//!    validator's verdicts and the pool's rules, and returns the rows to store and the
//!    evicted rows to delete.
//! 4. Once the store reports them durable, the shell calls [`pool::Pool::mark_durable`]: only
//!    then does the feed deliver them and may the ack be sent.
//!
//! # Design decisions
//!
//! - **Admit, then persist, then publish.** The pool admits before the write so duplicates and
//!   ephemeral-key reuse are caught within a batch; the feed only shows the durable prefix;
//!   if the write fails the shell withdraws the admission ([`pool::Pool::withdraw`]), which
//!   also puts back what it evicted: storage rolled back the inserts and the deletes as one
//!   write, and memory does the same.
//! - **The pool holds the public metadata beside the ciphertext bytes**, and so does the
//!   database: a restart rebuilds the pool ([`pool::Pool::restore`]) without decoding a single
//!   ciphertext again.
//! - **Units.** A bundle is one unit for capacity, eviction and expiry: never half a bundle.
//! - **Compact indexes** (see [`pool::Pool`], "Memory"): transactions in a slab, indexes of
//!   4-byte handles or (fee, sequence number) keys, fee payers interned, no index of all
//!   transactions by fee (eviction merges the rollups' fee indexes). A million pending
//!   ciphertexts of 512-byte payloads fit in the 1.5 GB budget with their ~1.1 KB bodies.
//! - **Committed transactions stay spent until they expire.** A committed transaction leaves
//!   the pool, but its id is remembered until its expiry slot passes
//!   ([`pool::Pool::remove_committed`]), durably beside the pending rows in veil-storage: a
//!   replay of its bytes is acked as a duplicate with the same id (recognised by its id before
//!   the expensive check, like a pending duplicate, [`admission::replayed`]) and is never
//!   admitted, fed, bid on or charged again, restarts included. After its expiry slot it is
//!   refused as expired anyway. Memory is bounded ([`pool::PoolConfig::max_spent`], 8-byte id
//!   prefixes, 18 to 37 bytes each); past the bound the ids with the latest expiry slot are
//!   forgotten and that slot is refused with `EXPIRED` until it passes, which lowers the
//!   effective horizon and keeps the rule sound.
//! - **The feed is a cursor over the pool's own admission-ordered map.** Subscribers hold no
//!   buffers in the pool, so a slow subscriber cannot make it grow; transactions that left
//!   the pool before a subscriber read them are reported as skipped.
//!
//! # Security assumptions
//!
//! - Submitters are hostile: the cheap checks (rate, sizes) bound how much of the expensive
//!   check (curve decoding, ~30 µs) one connection can demand, and a ciphertext reaches the
//!   proof check only once its fee payer's signature verified and the payer is funded.
//! - **Fee payers sign.** Every ciphertext carries its fee payer's signature over its id, so
//!   nobody can spend another payer's quota or balance. With fee accounts on
//!   ([`pool::PoolConfig::fee_accounts`]), admission reserves each transaction's `max_fee`
//!   against its payer's available balance ([`pool::FeeAccount`]); the reservation is
//!   released when the transaction expires or is evicted, and held from commitment until
//!   the sequencer settles the fee ([`pool::Pool::settle_fee`]). A payer at its quota has its
//!   own lowest-fee lone transaction replaced by one that pays more.
//! - The batch check's coefficients come from the RNG the shell passes in; submitters must not
//!   be able to predict it.
//! - The pool trusts its own database on restart (rows were checked before they were stored).
//! - A fee payer's signature over a transaction id authorises one charge: the spent ids make
//!   sure a committed transaction is not admitted again while it could still be included.
//!
//! # Example: the pool on its own
//!
//! ```
//! use bytes::Bytes;
//! use veil_mempool::pool::{Candidate, EphemeralKeyDigest, FeedCursor, Pool, PoolConfig};
//! use veil_primitives::{
//!     Amount, ChainId, Eon, PublicKeyBytes, RollupId, SignatureBytes, Slot, TxId, TxMeta,
//! };
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
//!     // Checked by the validator before the pool sees a candidate.
//!     payer_signature: SignatureBytes([0; 64]),
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

pub mod abuse;
pub mod admission;
pub mod error;
pub mod metrics;
pub mod pool;
pub mod validate;
