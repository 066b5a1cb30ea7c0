//! The slot commitment: what the sequencer promises, before any share is released, to have
//! decided for a slot.
//!
//! A [`Commitment`] names the slot, the eon whose key the block is encrypted to, and per
//! rollup the winner (or none, for a fallback block), the payment attributed to that rollup,
//! and the ordered ciphertext ids; it ends with the hash of the auction's outcome record, so
//! that anyone holding the record can check the commitment against it. It travels as a
//! [`SignedCommitment`] (domain `veil/commitment/v1`).
//!
//! # The `Finalizer` seam
//!
//! Today one ed25519 sequencer key signs ([`KeyFinalizer`]) and keypers check that key
//! ([`CommitmentVerifier::Key`]). A replicated sequencer will finalize a commitment with a
//! consensus certificate instead; the slot machine only ever asks a [`Finalizer`] and keypers
//! only ever ask a [`CommitmentVerifier`], so that change stays behind these two types.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use veil_auction::Outcome;
use veil_primitives::encoding::Encoder;
use veil_primitives::signed::{self, Signed, SignedMessage};
use veil_primitives::{hexbytes, Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};

use crate::error::SequencerError;
use crate::receipt::ReceiptSigner;

/// One rollup's committed block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommittedBlock {
    /// The rollup.
    pub rollup: RollupId,
    /// The builder that won it, or `None` for a fallback block (fee order, built by the
    /// sequencer for an unsold rollup).
    pub winner: Option<PublicKeyBytes>,
    /// The part of the winning payment attributed to this rollup (its reserve plus its split
    /// of the surplus); zero for a fallback block.
    pub payment: Amount,
    /// The ciphertexts, in the order they execute.
    pub ciphertexts: Vec<TxId>,
}

/// The sequencer's decision for one slot. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Commitment {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot.
    pub slot: Slot,
    /// The eon whose committee key every committed ciphertext is encrypted to.
    pub eon: Eon,
    /// One block per rollup with anything to commit, sorted by rollup id.
    pub blocks: Vec<CommittedBlock>,
    /// sha3-256 of the auction outcome record's canonical bytes.
    #[serde(with = "hexbytes::serde_fixed")]
    pub outcome_hash: [u8; 32],
}

/// A commitment with its finality proof: today, the sequencer key's signature.
pub type SignedCommitment = Signed<Commitment>;

impl SignedMessage for Commitment {
    const DOMAIN: &'static str = "veil/commitment/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Slot, eon, the block count, then per block: rollup, winner (0, or 1 and the key),
    /// payment, the id count and the ids; last, the outcome hash.
    fn encode_body(&self, e: &mut Encoder) {
        e.u64(self.slot.0);
        e.u64(self.eon.0);
        e.len(self.blocks.len());
        for b in &self.blocks {
            e.u32(b.rollup.0);
            match &b.winner {
                None => e.u8(0),
                Some(w) => {
                    e.u8(1);
                    e.fixed(&w.0);
                }
            }
            e.amount(b.payment);
            e.len(b.ciphertexts.len());
            for id in &b.ciphertexts {
                e.fixed(&id.0);
            }
        }
        e.fixed(&self.outcome_hash);
    }
}

impl Commitment {
    /// The commitment an auction outcome implies for `eon`: every winning bid's blocks with
    /// their rollup's payment, and every fallback block, sorted by rollup; rollups with
    /// nothing to include are left out.
    #[must_use]
    pub fn from_outcome(outcome: &Outcome, eon: Eon) -> Commitment {
        let mut blocks: Vec<CommittedBlock> = Vec::new();
        for winner in &outcome.winners {
            for bid in &winner.bids {
                for block in &bid.signed.message.blocks {
                    let payment = outcome
                        .payouts
                        .iter()
                        .find(|p| p.rollup == block.rollup)
                        .map_or(Amount::ZERO, |p| p.share);
                    blocks.push(CommittedBlock {
                        rollup: block.rollup,
                        winner: Some(winner.builder),
                        payment,
                        ciphertexts: block.ciphertexts.clone(),
                    });
                }
            }
        }
        for f in &outcome.fallback {
            if !f.ciphertexts.is_empty() {
                blocks.push(CommittedBlock {
                    rollup: f.rollup,
                    winner: None,
                    payment: Amount::ZERO,
                    ciphertexts: f.ciphertexts.clone(),
                });
            }
        }
        blocks.sort_by_key(|b| b.rollup);
        Commitment {
            chain_id: outcome.chain_id,
            slot: outcome.slot,
            eon,
            blocks,
            outcome_hash: outcome.hash(),
        }
    }

    /// Every committed ciphertext id in decryption order: the blocks in rollup order, each in
    /// its own order. Keypers list their shares in this order.
    pub fn ordered_ids(&self) -> impl Iterator<Item = &TxId> + '_ {
        self.blocks.iter().flat_map(|b| b.ciphertexts.iter())
    }

    /// How many ciphertexts the commitment names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.ciphertexts.len()).sum()
    }

    /// Whether it names no ciphertext (an empty slot: nothing to release).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// sha3-256 of the signing bytes: the commitment's id, what equivocation evidence and
    /// release records name.
    #[must_use]
    pub fn id(&self) -> [u8; 32] {
        self.digest()
    }
}

/// Makes a commitment final. The slot machine asks for it after the commitment is durable.
pub trait Finalizer {
    /// The finalized commitment.
    ///
    /// # Errors
    /// [`SequencerError`] if finality cannot be reached (never for a single key).
    fn finalize(&self, commitment: Commitment) -> Result<SignedCommitment, SequencerError>;

    /// The verifier keypers use for what this finalizer produces.
    fn verifier(&self) -> CommitmentVerifier;

    /// The signer of inclusion receipts that goes with this node's identity, if it has one.
    /// Receipt signing is its own seam ([`ReceiptSigner`], see [`crate::receipt`]): this only
    /// hands the shell the signer, so that a finalizer without a key of its own (a consensus
    /// certificate) need not sign receipts. `None` by default.
    fn receipt_signer(&self) -> Option<Box<dyn ReceiptSigner>> {
        None
    }
}

/// One ed25519 sequencer key: today's [`Finalizer`].
#[derive(Debug)]
pub struct KeyFinalizer {
    key: SigningKey,
}

impl KeyFinalizer {
    /// A finalizer signing with `key`.
    #[must_use]
    pub fn new(key: SigningKey) -> KeyFinalizer {
        KeyFinalizer { key }
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }
}

impl Finalizer for KeyFinalizer {
    fn finalize(&self, commitment: Commitment) -> Result<SignedCommitment, SequencerError> {
        Ok(Signed::sign(commitment, &self.key))
    }

    fn verifier(&self) -> CommitmentVerifier {
        CommitmentVerifier::Key(signed::public_key(&self.key))
    }

    /// The same key signs receipts (domain `veil/receipt/v1`, so a receipt signature is never
    /// a commitment signature).
    fn receipt_signer(&self) -> Option<Box<dyn ReceiptSigner>> {
        Some(Box::new(KeyFinalizer::new(self.key.clone())))
    }
}

/// How a keyper recognises a final commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitmentVerifier {
    /// Signed by this sequencer key.
    Key(PublicKeyBytes),
}

impl CommitmentVerifier {
    /// Checks that `signed` is final for `chain_id`.
    ///
    /// # Errors
    /// [`SequencerError::WrongChain`] or [`SequencerError::BadSignature`].
    pub fn verify(
        &self,
        chain_id: ChainId,
        signed: &SignedCommitment,
    ) -> Result<(), SequencerError> {
        if signed.message.chain_id != chain_id {
            return Err(SequencerError::WrongChain {
                expected: chain_id,
                got: signed.message.chain_id,
            });
        }
        match self {
            CommitmentVerifier::Key(key) => {
                signed.verify(key).map_err(|_| SequencerError::BadSignature)
            }
        }
    }
}
