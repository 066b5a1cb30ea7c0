//! Veil's sequencer core: the slot commitment and the keyper's release rule, as sans-IO state
//! machines.
//!
//! The slot lifecycle (DESIGN.md) turns on one promise: the sequencer commits to a slot's
//! ordered ciphertexts, *then* the keypers release decryption shares for exactly those
//! ciphertexts. This crate holds the pieces of that promise that need no I/O:
//!
//! | module | what |
//! |---|---|
//! | [`commitment`] | [`Commitment`] (slot, eon, per rollup the winner, payment and ordered ids, the outcome hash), [`SignedCommitment`], the [`Finalizer`] seam and the keypers' [`CommitmentVerifier`] |
//! | [`receipt`] | inclusion receipts from a commitment ([`receipts_for`], [`check_receipt`]) and the [`ReceiptSigner`] seam; the [`Receipt`] type itself is shared, in [`veil_primitives::receipt`] |
//! | [`keyper`] | [`KeyperMachine`]: validated set (bounded) with precomputed shares, the release rule, persisted release records, equivocation evidence, the fallback round |
//! | [`slot`] | [`SlotMachine`]: the slot clock, pipelined slots `Open → Closed → Committed → Decrypted → Settled` or `Undecryptable`, persist-then-sign, in-flight ciphertexts, decryption with blame and the fallback round, publication per rollup, settlement, restore after a restart (the auction's state included) |
//! | [`error`] | [`SequencerError`] with its [`veil_primitives::ErrorCode`] |
//!
//! # The shape
//!
//! Like quinn-proto: inputs are `handle_*` methods, outputs are polled events
//! ([`KeyperMachine::poll_event`]), time and randomness come in from the caller. **One rule
//! for every shell: a `Persist` event is durable before the machine gets its next input.**
//! That gives "persist, then release" by construction: a keyper's share batch is emitted only
//! from [`KeyperMachine::handle_persisted`] for its release record.
//!
//! # Security properties
//!
//! - A keyper releases shares only for a final commitment, only for ciphertexts it validated
//!   itself, and only for the first commitment it saw for the slot, across restarts.
//! - Equivocation (two final commitments for one slot) is refused and reported with both
//!   signed commitments, which is evidence anyone can check.
//! - Commitments are domain-separated (`veil/commitment/v1`) and chain-bound, like every
//!   signed message in Veil ([`veil_primitives::signed`]); so are the inclusion receipts the
//!   sequencer key signs for each committed transaction (`veil/receipt/v1`).
//!
//! # Example: one keyper releases after the commitment
//!
//! ```
//! use veil_crypto::testing::{rng, TestCommittee};
//! use veil_sequencer::commitment::{Commitment, CommittedBlock, Finalizer, KeyFinalizer};
//! use veil_sequencer::keyper::{KeyperConfig, KeyperEvent, KeyperMachine};
//! use veil_primitives::{Amount, RollupId, Slot};
//!
//! let c = TestCommittee::new(4, 1, 7);
//! let ct = c.pks.encrypt(&c.ad(1, 10), b"swap", &mut rng(1)).unwrap();
//! let sequencer = KeyFinalizer::new(ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
//! let share = veil_crypto::SecretKeyShare::from_json(&c.shares[0].to_json()).unwrap();
//! let mut keyper = KeyperMachine::new(
//!     c.pks.clone(), share, c.identities[0].clone(),
//!     sequencer.verifier(), KeyperConfig::default(),
//! ).unwrap();
//! assert!(keyper.handle_ciphertexts(&[ct.as_bytes()], &mut rng(2))[0].is_ok());
//!
//! let commitment = Commitment {
//!     chain_id: c.pks.chain_id(), slot: Slot(5), eon: c.pks.eon(),
//!     blocks: vec![CommittedBlock {
//!         rollup: RollupId(1), winner: None, payment: Amount::ZERO, ciphertexts: vec![ct.id()],
//!     }],
//!     outcome_hash: [0; 32],
//! };
//! keyper.handle_commitment(sequencer.finalize(commitment).unwrap()).unwrap();
//! // First the records are persisted; only then does the batch leave.
//! let mut sent = None;
//! while let Some(event) = keyper.poll_event() {
//!     match event {
//!         KeyperEvent::Persist { token, .. } => keyper.handle_persisted(token),
//!         KeyperEvent::SendShares(batch) => sent = Some(batch),
//!         KeyperEvent::Equivocation { .. } => unreachable!(),
//!     }
//! }
//! assert!(c.pks.verify_share_batch(&sent.unwrap()).is_ok());
//! ```

pub mod commitment;
pub mod error;
pub mod keyper;
pub mod receipt;
pub mod slot;

pub use commitment::{
    Commitment, CommitmentVerifier, CommittedBlock, Finalizer, KeyFinalizer, SignedCommitment,
};
pub use error::SequencerError;
pub use keyper::{
    FeedValidator, KeyperConfig, KeyperEvent, KeyperMachine, KeyperRecord, KeyperStats,
    ValidatedRun,
};
pub use receipt::{
    check_receipt, receipts_for, Receipt, ReceiptMismatch, ReceiptSigner, SignedReceipt,
};
pub use slot::{
    KeyperRequest, PoolView, Publication, PublishedSlot, RegistryAccepted, RegistryChange,
    RegistryRecord, SlotClock, SlotEvent, SlotMachine, SlotRecord, SlotState, TxResult,
};
