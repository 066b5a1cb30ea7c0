//! The public metadata of a ciphertext ([`TxMeta`]) and the read access to admitted
//! ciphertexts that the auction needs ([`CiphertextIndex`]).
//!
//! One type serves every crate: the crypto core binds it into the ciphertext as associated
//! data, the pool indexes by it, the auction checks bids against it, and the wire types carry
//! it. Nobody converts between look-alike structs.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Amount, BundleRef, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};

/// The public metadata of a ciphertext: its associated data, which anyone can read and which
/// the ciphertext's validity proof binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxMeta {
    /// The Veil network it was encrypted for.
    pub chain_id: ChainId,
    /// The eon whose committee key the payload is encrypted to.
    pub eon: Eon,
    /// The rollup the transaction is for.
    pub rollup: RollupId,
    /// Who pays the fee (an ed25519 public key).
    pub fee_payer: PublicKeyBytes,
    /// The most the fee payer pays for inclusion; the pool's priority.
    pub max_fee: Amount,
    /// The gas the plaintext transaction may use on its rollup.
    pub gas_limit: u64,
    /// The last slot in which the transaction may be included.
    pub expiry_slot: Slot,
    /// The atomic bundle this ciphertext is part of, if any.
    pub bundle: Option<BundleRef>,
}

/// Read access to the admitted, acknowledged ciphertexts. The mempool's pool implements it;
/// the auction checks bids through it. It lives here so that neither core depends on the
/// other.
pub trait CiphertextIndex {
    /// The metadata of `id`, or `None` if it is not (or no longer) admitted and durable.
    fn lookup(&self, id: &TxId) -> Option<TxMeta>;
}

impl<S: std::hash::BuildHasher> CiphertextIndex for HashMap<TxId, TxMeta, S> {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.get(id).copied()
    }
}

impl CiphertextIndex for BTreeMap<TxId, TxMeta> {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.get(id).copied()
    }
}
