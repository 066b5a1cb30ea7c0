//! Inclusion receipts: the sequencer's signed statement that a transaction is in a slot's
//! commitment, at a given place (DESIGN.md, slot lifecycle step 6).
//!
//! A [`Receipt`] names the network, the slot, the eon, the transaction, the rollup whose block
//! holds it, its `position` in that rollup's ordered ciphertext list, and the id of the
//! commitment it was read from ([`CommitmentId`], sha3-256 of the commitment's signing
//! bytes). It travels as a [`SignedReceipt`] under domain `veil/receipt/v1`, signed by the
//! sequencer's key; the signing bytes follow the one convention of [`crate::signed`]:
//!
//! ```text
//! u32 15 ‖ "veil/receipt/v1" ‖ u64 chain_id ‖ u64 slot ‖ u64 eon ‖ tx (32) ‖ u32 rollup
//!        ‖ u32 position ‖ commitment id (32)                      (integers big-endian)
//! ```
//!
//! # Why the type lives here
//!
//! Everyone who touches a receipt shares this one type: the sequencer core builds receipts
//! from a commitment (`veil_sequencer::receipt`), the ingress stores them and pushes them on
//! the wire (`veil_wire::ingress`), and a client that links only the wire crate checks the
//! signature with [`verify_receipt`]. Keeping it in the sequencer crate would force the wire
//! crate (and every client) either to depend on the sequencer core or to carry a second
//! struct with a second copy of the signing bytes; one type in the shared crate avoids both.
//!
//! # What a receipt proves
//!
//! A soft confirmation: the sequencer key promises that commitment `commitment` places `tx`
//! at `position` of `rollup`'s block in `slot`. Together with the signed commitment itself it
//! is checkable evidence (the commitment names the same id at the same place); a sequencer
//! that signs a receipt and then publishes a commitment with another id for that slot has
//! signed two contradicting statements.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use veil_primitives::receipt::{verify_receipt, CommitmentId, Receipt, ReceiptError};
//! use veil_primitives::signed::{public_key, Signed};
//! use veil_primitives::{ChainId, Eon, RollupId, Slot, TxId};
//!
//! let sequencer = SigningKey::from_bytes(&[5; 32]);
//! let receipt = Receipt {
//!     chain_id: ChainId(1), slot: Slot(9), eon: Eon(1), tx: TxId([7; 32]),
//!     rollup: RollupId(2), position: 0, commitment: CommitmentId([3; 32]),
//! };
//! let signed = Signed::sign(receipt, &sequencer);
//! assert!(verify_receipt(&signed, ChainId(1), &public_key(&sequencer)).is_ok());
//! assert!(matches!(
//!     verify_receipt(&signed, ChainId(2), &public_key(&sequencer)),
//!     Err(ReceiptError::WrongChain { .. })
//! ));
//! ```

use serde::{Deserialize, Serialize};

use crate::encoding::Encoder;
use crate::signed::{SignatureError, Signed, SignedMessage};
use crate::{byte_id, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};

byte_id!(
    /// The id of a slot commitment: sha3-256 of its signing bytes (domain
    /// `veil/commitment/v1`). Receipts, equivocation evidence and release records name a
    /// commitment by it.
    CommitmentId,
    32
);

/// The sequencer's statement that `tx` is committed in `slot`. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Receipt {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot whose commitment includes the transaction.
    pub slot: Slot,
    /// The eon the commitment's ciphertexts are encrypted to.
    pub eon: Eon,
    /// The transaction.
    pub tx: TxId,
    /// The rollup whose block includes it.
    pub rollup: RollupId,
    /// Its index (from 0) in that rollup's ordered ciphertext list in the commitment.
    pub position: u32,
    /// The commitment it was read from.
    pub commitment: CommitmentId,
}

/// A receipt with the sequencer key's signature.
pub type SignedReceipt = Signed<Receipt>;

impl SignedMessage for Receipt {
    const DOMAIN: &'static str = "veil/receipt/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Slot, eon, tx id, rollup, position, commitment id.
    fn encode_body(&self, e: &mut Encoder) {
        e.u64(self.slot.0);
        e.u64(self.eon.0);
        e.fixed(&self.tx.0);
        e.u32(self.rollup.0);
        e.u32(self.position);
        e.fixed(&self.commitment.0);
    }
}

/// Why a receipt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt is for another Veil network than the one the caller expects.
    #[error("receipt is for chain {got}, expected chain {expected}")]
    WrongChain {
        /// The chain the caller expects.
        expected: ChainId,
        /// The receipt's chain.
        got: ChainId,
    },
    /// The key is not a valid ed25519 key, or the signature does not verify under it.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Checks that `receipt` is for `chain_id` and signed by `sequencer` (strict verification:
/// weak keys and malleable signatures fail).
///
/// # Errors
/// [`ReceiptError::WrongChain`] or [`ReceiptError::Signature`].
pub fn verify_receipt(
    receipt: &SignedReceipt,
    chain_id: ChainId,
    sequencer: &PublicKeyBytes,
) -> Result<(), ReceiptError> {
    if receipt.message.chain_id != chain_id {
        return Err(ReceiptError::WrongChain { expected: chain_id, got: receipt.message.chain_id });
    }
    receipt.verify(sequencer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::signed::public_key;

    fn receipt() -> Receipt {
        Receipt {
            chain_id: ChainId(1),
            slot: Slot(9),
            eon: Eon(2),
            tx: TxId([7; 32]),
            rollup: RollupId(3),
            position: 4,
            commitment: CommitmentId([5; 32]),
        }
    }

    #[test]
    fn signing_bytes_are_pinned() {
        let bytes = receipt().signing_bytes();
        let mut want = 15u32.to_be_bytes().to_vec();
        want.extend_from_slice(b"veil/receipt/v1");
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(&9u64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(&[7; 32]);
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(&4u32.to_be_bytes());
        want.extend_from_slice(&[5; 32]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn every_field_is_signed() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let pk = public_key(&key);
        let signed = Signed::sign(receipt(), &key);
        assert!(verify_receipt(&signed, ChainId(1), &pk).is_ok());
        let edits: [fn(&mut Receipt); 7] = [
            |r| r.chain_id = ChainId(2),
            |r| r.slot = Slot(10),
            |r| r.eon = Eon(3),
            |r| r.tx.0[0] ^= 1,
            |r| r.rollup = RollupId(4),
            |r| r.position += 1,
            |r| r.commitment.0[31] ^= 1,
        ];
        for edit in edits {
            let mut moved = signed.clone();
            edit(&mut moved.message);
            assert_eq!(moved.verify(&pk), Err(SignatureError::BadSignature), "{:?}", moved.message);
        }
        let other = public_key(&SigningKey::from_bytes(&[2; 32]));
        assert_eq!(
            verify_receipt(&signed, ChainId(1), &other),
            Err(ReceiptError::Signature(SignatureError::BadSignature))
        );
        assert_eq!(
            verify_receipt(&signed, ChainId(7), &pk),
            Err(ReceiptError::WrongChain { expected: ChainId(7), got: ChainId(1) })
        );
    }

    #[test]
    fn json_uses_hex_and_roundtrips() {
        let signed = Signed::sign(receipt(), &SigningKey::from_bytes(&[1; 32]));
        let json = serde_json::to_string(&signed).unwrap();
        assert!(json.contains(&format!("\"commitment\":\"0x{}\"", "05".repeat(32))), "{json}");
        assert!(json.contains("\"position\":4"), "{json}");
        assert_eq!(serde_json::from_str::<SignedReceipt>(&json).unwrap(), signed);
        let bin = postcard::to_allocvec(&signed).unwrap();
        assert_eq!(postcard::from_bytes::<SignedReceipt>(&bin).unwrap(), signed);
    }
}
