//! Inclusion receipts from a commitment, and the [`ReceiptSigner`] seam that signs them.
//!
//! [`Finalizer`]: crate::commitment::Finalizer
//! [`Finalizer::receipt_signer`]: crate::commitment::Finalizer::receipt_signer
//!
//! The receipt type itself ([`Receipt`], [`SignedReceipt`], domain `veil/receipt/v1`) lives in
//! [`veil_primitives::receipt`], because the wire crate and clients need it without linking
//! this core; this module adds what needs a [`Commitment`]:
//!
//! - [`receipts_for`]: one receipt per committed ciphertext, for every rollup, in the
//!   commitment's order;
//! - [`check_receipt`]: whether a receipt is backed by a commitment (same id, same place);
//! - [`ReceiptSigner`]: who signs them, implemented by [`KeyFinalizer`].
//!
//! # Why a separate `ReceiptSigner`, not a method of [`Finalizer`]
//!
//! A [`Finalizer`] makes a commitment *final*: one key today, a consensus certificate among
//! sequencer replicas later. A receipt is something else: a per-transaction soft confirmation
//! that one node hands to the user connected to it, once the commitment it names is final.
//! Folding receipt signing into `Finalizer` would leave a replicated finalizer two bad
//! choices: a certificate per receipt (a thousand consensus rounds per slot) or a method
//! unrelated to finality. With its own trait, the replicated sequencer keeps a certificate
//! finalizer and gives each replica a `ReceiptSigner` over its own key; a receipt is checked
//! against the key of the node that issued it, and against the final commitment it names.
//! [`Finalizer::receipt_signer`] only hands the shell the signer that goes with the node's
//! identity (`None` by default, so a finalizer that has no key of its own signs no receipts).
//!
//! Signing is ed25519, one signature per transaction; it is pure CPU with no I/O, so the
//! shell can run it wherever it likes (the node signs off the slot thread).

pub use veil_primitives::receipt::{
    verify_receipt, CommitmentId, Receipt, ReceiptError, SignedReceipt,
};
use veil_primitives::signed::{self, Signed};
use veil_primitives::{PublicKeyBytes, TxId};

use crate::commitment::{Commitment, KeyFinalizer};

/// Signs inclusion receipts. See the module docs for why this is not part of
/// [`Finalizer`](crate::commitment::Finalizer).
pub trait ReceiptSigner: Send + Sync {
    /// The key receipts verify under.
    fn receipt_key(&self) -> PublicKeyBytes;

    /// Signs every receipt, in order (one signature each).
    fn sign_receipts(&self, receipts: Vec<Receipt>) -> Vec<SignedReceipt>;
}

impl ReceiptSigner for KeyFinalizer {
    fn receipt_key(&self) -> PublicKeyBytes {
        signed::public_key(self.key())
    }

    fn sign_receipts(&self, receipts: Vec<Receipt>) -> Vec<SignedReceipt> {
        receipts.into_iter().map(|r| Signed::sign(r, self.key())).collect()
    }
}

/// One receipt per committed ciphertext: blocks in rollup order, each block's ciphertexts in
/// their committed order, `position` counting from 0 within the block. Every receipt names
/// [`Commitment::id`]. (A block longer than `u32::MAX` ciphertexts, which no limit allows, is
/// cut there rather than given a wrapped position.)
#[must_use]
pub fn receipts_for(commitment: &Commitment) -> Vec<Receipt> {
    let id = CommitmentId(commitment.id());
    let mut out = Vec::with_capacity(commitment.len());
    for block in &commitment.blocks {
        for (position, tx) in (0..=u32::MAX).zip(&block.ciphertexts) {
            out.push(Receipt {
                chain_id: commitment.chain_id,
                slot: commitment.slot,
                eon: commitment.eon,
                tx: *tx,
                rollup: block.rollup,
                position,
                commitment: id,
            });
        }
    }
    out
}

/// Why a receipt does not match a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptMismatch {
    /// The receipt names another commitment (another id), or another chain, slot or eon.
    #[error("the receipt names another commitment")]
    OtherCommitment,
    /// The commitment has no block for the receipt's rollup, or the block holds another
    /// transaction (or none) at the receipt's position.
    #[error("the commitment does not hold {0} at the receipt's place")]
    NotAtPosition(TxId),
}

/// Checks that `receipt` says what `commitment` says: same commitment id, chain, slot and
/// eon, and the receipt's transaction at its position in its rollup's block. The signature is
/// checked separately ([`verify_receipt`]).
///
/// # Errors
/// [`ReceiptMismatch`].
pub fn check_receipt(commitment: &Commitment, receipt: &Receipt) -> Result<(), ReceiptMismatch> {
    if receipt.commitment.0 != commitment.id()
        || receipt.chain_id != commitment.chain_id
        || receipt.slot != commitment.slot
        || receipt.eon != commitment.eon
    {
        return Err(ReceiptMismatch::OtherCommitment);
    }
    let held = commitment
        .blocks
        .iter()
        .find(|b| b.rollup == receipt.rollup)
        .and_then(|b| b.ciphertexts.get(usize::try_from(receipt.position).ok()?));
    match held {
        Some(tx) if *tx == receipt.tx => Ok(()),
        _ => Err(ReceiptMismatch::NotAtPosition(receipt.tx)),
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use veil_primitives::signed::SignatureError;
    use veil_primitives::{Amount, ChainId, Eon, RollupId, Slot};

    use super::*;
    use crate::commitment::{CommittedBlock, Finalizer};

    fn commitment() -> Commitment {
        let ids = |seed: u8, n: u8| (0..n).map(|i| TxId([seed + i; 32])).collect::<Vec<_>>();
        Commitment {
            chain_id: ChainId(1),
            slot: Slot(12),
            eon: Eon(3),
            blocks: vec![
                CommittedBlock {
                    rollup: RollupId(1),
                    winner: None,
                    payment: Amount::ZERO,
                    ciphertexts: ids(10, 3),
                },
                CommittedBlock {
                    rollup: RollupId(4),
                    winner: Some(PublicKeyBytes([9; 32])),
                    payment: Amount(50),
                    ciphertexts: ids(40, 2),
                },
            ],
            outcome_hash: [1; 32],
        }
    }

    fn finalizer() -> KeyFinalizer {
        KeyFinalizer::new(SigningKey::from_bytes(&[0x5e; 32]))
    }

    #[test]
    fn receipts_cover_every_committed_id_in_order() {
        let c = commitment();
        let receipts = receipts_for(&c);
        assert_eq!(receipts.len(), c.len());
        let ids: Vec<TxId> = receipts.iter().map(|r| r.tx).collect();
        assert_eq!(ids, c.ordered_ids().copied().collect::<Vec<_>>());
        let places: Vec<(u32, u32)> = receipts.iter().map(|r| (r.rollup.0, r.position)).collect();
        assert_eq!(places, vec![(1, 0), (1, 1), (1, 2), (4, 0), (4, 1)]);
        for r in &receipts {
            assert_eq!(r.commitment, CommitmentId(c.id()));
            assert_eq!((r.chain_id, r.slot, r.eon), (c.chain_id, c.slot, c.eon));
            assert_eq!(check_receipt(&c, r), Ok(()));
        }
    }

    #[test]
    fn signed_receipts_verify_and_are_domain_and_chain_bound() {
        let f = finalizer();
        let key = f.receipt_key();
        assert_eq!(f.receipt_signer().map(|s| s.receipt_key()), Some(key));
        let c = commitment();
        let signed = f.sign_receipts(receipts_for(&c));
        assert_eq!(signed.len(), 5);
        for s in &signed {
            assert_eq!(verify_receipt(s, ChainId(1), &key), Ok(()));
        }
        // Another chain: refused before the signature is looked at.
        assert!(matches!(
            verify_receipt(&signed[0], ChainId(2), &key),
            Err(ReceiptError::WrongChain { .. })
        ));
        // The same key's commitment signature is not a receipt signature, nor the reverse:
        // the domains differ.
        let commitment_sig = f.finalize(c.clone()).unwrap().signature;
        let forged = Signed { message: signed[0].message, signature: commitment_sig };
        assert_eq!(
            verify_receipt(&forged, ChainId(1), &key),
            Err(ReceiptError::Signature(SignatureError::BadSignature))
        );
        // Another key.
        let other = KeyFinalizer::new(SigningKey::from_bytes(&[1; 32])).receipt_key();
        assert!(verify_receipt(&signed[0], ChainId(1), &other).is_err());
    }

    #[test]
    fn mismatched_receipts_are_caught() {
        let c = commitment();
        let good = receipts_for(&c)[4];
        let mut moved = good;
        moved.position = 0;
        assert_eq!(check_receipt(&c, &moved), Err(ReceiptMismatch::NotAtPosition(good.tx)));
        let mut moved = good;
        moved.rollup = RollupId(2);
        assert_eq!(check_receipt(&c, &moved), Err(ReceiptMismatch::NotAtPosition(good.tx)));
        let mut moved = good;
        moved.position = u32::MAX;
        assert!(check_receipt(&c, &moved).is_err());
        let mut other = c.clone();
        other.outcome_hash = [2; 32];
        assert_eq!(check_receipt(&other, &good), Err(ReceiptMismatch::OtherCommitment));
    }

    #[test]
    fn an_empty_commitment_has_no_receipts() {
        let mut c = commitment();
        c.blocks.clear();
        assert!(receipts_for(&c).is_empty());
    }
}
