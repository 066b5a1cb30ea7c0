//! The keyper side: decryption shares and signed share batches.
//!
//! Keyper `i`'s share for a ciphertext with ephemeral key `U` is `D = c·x_i·U`, where `c` is
//! `λ_i` (its Lagrange coefficient) when the batch is scaled for a responder set it belongs
//! to, and `1` otherwise. Shares can be computed as soon as a ciphertext is validated and held
//! until the slot's commitment names it: computing is cheap to do early, releasing is what the
//! protocol guards.
//!
//! A [`ShareBatch`] carries the shares for an explicit, ordered list of ciphertext ids (the
//! committed block's) and travels as a [`SignedShareBatch`]: signed with the keyper's ed25519
//! identity key under the workspace's one convention ([`veil_primitives::signed`], domain
//! `veil/share-batch/v3`). A batch names its block by a [`BlockDigest`] of the ordered ids and
//! carries only the shares, 96 bytes each (version 1 repeated every 32-byte id). Its signing
//! bytes hold a SHA-256 digest of the shares instead of the shares (version 2 signed the
//! shares themselves): ed25519 hashes what it signs twice with SHA-512, which made signing a
//! 1,000-share batch cost about 440 µs; SHA-256 runs on the CPU's SHA extensions, and the
//! batch now costs one pass over its 96 KB at signing and at verification.

use blstrs::{G1Affine, Scalar};
use ed25519_dalek::SigningKey;
use ff::Field;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use veil_primitives::encoding::Encoder;
use veil_primitives::signed::{Signed, SignedMessage};
use veil_primitives::{hexbytes, ChainId, Eon, Slot, TxId};

use crate::ciphertext::{AssociatedData, Ciphertext};
use crate::curve::{self, G1_LEN};
use crate::error::CryptoError;
use crate::keys::{KeyperIndex, PublicKeySet, ResponderSet, SecretKeyShare};

/// One keyper's decryption share for one ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptionShare(pub(crate) G1Affine);

impl DecryptionShare {
    /// The share's uncompressed encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; G1_LEN] {
        self.0.to_uncompressed()
    }
}

impl SecretKeyShare {
    /// The factor this keyper multiplies its shares by: its Lagrange coefficient in
    /// `scaled_for`, or one when unscaled. Errors if the keyper is not in the set.
    pub fn share_coefficient(
        &self,
        scaled_for: Option<&ResponderSet>,
    ) -> Result<Scalar, CryptoError> {
        match scaled_for {
            None => Ok(Scalar::ONE),
            Some(set) => set.lagrange_coefficient(self.index()).ok_or(
                CryptoError::InvalidResponderSet("keyper is not a member of the set it scales for"),
            ),
        }
    }

    /// Computes this keyper's shares for `cts`, in parallel (rayon), one per ciphertext in
    /// order. Refuses ciphertexts of another chain or eon.
    ///
    /// **Precondition:** the caller computes shares only for ciphertexts whose validity proofs
    /// it checked itself ([`crate::PublicKeySet::verify_batch`]), and releases them only in a
    /// [`ShareBatch`] for a committed block. A share for an unchecked ciphertext with a copied
    /// ephemeral key would decrypt the victim's payload.
    pub fn decryption_shares(
        &self,
        cts: &[&Ciphertext],
        scaled_for: Option<&ResponderSet>,
    ) -> Result<Vec<DecryptionShare>, CryptoError> {
        for ct in cts {
            ct.ad().check_key(self.chain_id(), self.eon())?;
        }
        let mut e = self.share_coefficient(scaled_for)? * self.secret();
        let points: Vec<_> = cts.par_iter().map(|ct| ct.ephemeral_point() * e).collect();
        curve::wipe_scalar(&mut e);
        Ok(curve::batch_to_affine(&points).into_iter().map(DecryptionShare).collect())
    }
}

/// One share in a batch: uncompressed G1, 96 bytes (hex in JSON, raw in binary encodings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareBytes(#[serde(with = "hexbytes::serde_fixed")] pub [u8; G1_LEN]);

/// What a share batch names instead of repeating the block's ciphertext ids (the signed
/// commitment names them): sha3-256 of `veil/share-batch-block/v1`, the id count (u32, big
/// endian) and the ids in the block's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockDigest(#[serde(with = "hexbytes::serde_fixed")] pub [u8; 32]);

impl BlockDigest {
    /// The digest of a block's ordered ciphertext ids.
    #[must_use]
    pub fn of(ids: &[TxId]) -> BlockDigest {
        const DOMAIN: &[u8] = b"veil/share-batch-block/v1";
        let mut bytes = Vec::with_capacity(DOMAIN.len() + 4 + ids.len() * 32);
        bytes.extend_from_slice(DOMAIN);
        bytes.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(u32::MAX).to_be_bytes());
        for id in ids {
            bytes.extend_from_slice(&id.0);
        }
        BlockDigest(veil_primitives::encoding::sha3_256(&bytes))
    }
}

/// A keyper's shares for the ciphertexts of one committed block, in block order, 96 bytes
/// each: the block is named by its [`BlockDigest`], not by repeating its ids. It travels
/// signed, as a [`SignedShareBatch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareBatch {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The eon of the key the shares are of.
    pub eon: Eon,
    /// The slot whose commitment released these shares.
    pub slot: Slot,
    /// The keyper.
    pub keyper: KeyperIndex,
    /// The responder set the shares are scaled for, or `None` for unscaled shares.
    pub scaled_for: Option<ResponderSet>,
    /// The block the shares are for.
    pub block: BlockDigest,
    /// One share per committed ciphertext, in the committed order.
    pub shares: Vec<ShareBytes>,
}

/// A share batch with its keyper's identity-key signature.
pub type SignedShareBatch = Signed<ShareBatch>;

impl SignedMessage for ShareBatch {
    const DOMAIN: &'static str = "veil/share-batch/v3";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Eon, slot, keyper, the responder set (0, or 1 then the member count and indexes), the
    /// block digest, then the share count and [`ShareBatch::shares_digest`].
    fn encode_body(&self, e: &mut Encoder) {
        e.u64(self.eon.0);
        e.u64(self.slot.0);
        e.u16(self.keyper.get());
        match &self.scaled_for {
            None => e.u8(0),
            Some(set) => {
                e.u8(1);
                e.len(set.members().len());
                for m in set.members() {
                    e.u16(m.get());
                }
            }
        }
        e.fixed(&self.block.0);
        e.len(self.shares.len());
        e.fixed(&self.shares_digest());
    }
}

impl ShareBatch {
    /// SHA-256 of `veil/share-batch-shares/v1` and the shares, 96 bytes each, in order: what
    /// the signing bytes hold instead of the shares.
    #[must_use]
    pub fn shares_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"veil/share-batch-shares/v1");
        for share in &self.shares {
            h.update(share.0);
        }
        h.finalize().into()
    }
}

impl ShareBatch {
    /// Computes and signs a batch for `cts` (the committed block, in order).
    pub fn create(
        key: &SecretKeyShare,
        identity: &SigningKey,
        slot: Slot,
        cts: &[&Ciphertext],
        scaled_for: Option<&ResponderSet>,
    ) -> Result<SignedShareBatch, CryptoError> {
        let shares = key.decryption_shares(cts, scaled_for)?;
        let ids: Vec<TxId> = cts.iter().map(|ct| ct.id()).collect();
        Ok(ShareBatch::sign(key, identity, slot, scaled_for.cloned(), &ids, &shares))
    }

    /// Signs a batch from shares computed earlier (for example at validation time): one
    /// share per id of the block `ids`, in its order.
    #[must_use]
    pub fn sign(
        key: &SecretKeyShare,
        identity: &SigningKey,
        slot: Slot,
        scaled_for: Option<ResponderSet>,
        ids: &[TxId],
        shares: &[DecryptionShare],
    ) -> SignedShareBatch {
        debug_assert_eq!(ids.len(), shares.len(), "one share per id");
        let batch = ShareBatch {
            chain_id: key.chain_id(),
            eon: key.eon(),
            slot,
            keyper: key.index(),
            scaled_for,
            block: BlockDigest::of(ids),
            shares: shares.iter().map(|s| ShareBytes(s.to_bytes())).collect(),
        };
        Signed::sign(batch, identity)
    }
}

impl PublicKeySet {
    /// Checks a signed batch against the committee: chain and eon, a known keyper, its
    /// signature, a valid responder set containing it, and every share a canonical curve point.
    /// Returns the decoded batch for [`crate::decrypt_block`].
    ///
    /// Subgroup membership of the shares is not checked here (it would cost about 30 µs per
    /// share on the critical path); the combiner establishes it lazily, see the crate docs.
    pub fn verify_share_batch(
        &self,
        signed: &SignedShareBatch,
    ) -> Result<VerifiedShareBatch, CryptoError> {
        let (batch, pks) = (&signed.message, self);
        if batch.chain_id != pks.chain_id() {
            return Err(CryptoError::WrongChain {
                expected: pks.chain_id(),
                found: batch.chain_id,
            });
        }
        if batch.eon != pks.eon() {
            return Err(CryptoError::WrongEon { expected: pks.eon(), found: batch.eon });
        }
        let member = pks.keyper(batch.keyper)?;
        signed
            .verify_with(&member.identity)
            .map_err(|_| CryptoError::BadSignature(batch.keyper))?;
        batch.decode(pks)
    }
}

impl ShareBatch {
    /// Decodes the shares once the signature is checked.
    fn decode(&self, pks: &PublicKeySet) -> Result<VerifiedShareBatch, CryptoError> {
        let coefficient = match &self.scaled_for {
            None => Scalar::ONE,
            Some(set) => {
                set.check(pks)?;
                set.lagrange_coefficient(self.keyper).ok_or(CryptoError::InvalidResponderSet(
                    "keyper is not a member of the set it scales for",
                ))?
            }
        };
        // On the calling thread (about 0.3 µs a share): a sequencer checks the batches of
        // its keyper links in parallel, one per blocking thread, and the shared pool is left
        // to its slot thread.
        let shares = self
            .shares
            .iter()
            .map(|s| curve::decode_g1_on_curve(&s.0, "decryption share"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerifiedShareBatch {
            keyper: self.keyper,
            slot: self.slot,
            scaled_for: self.scaled_for.clone(),
            coefficient,
            block: self.block,
            shares,
        })
    }
}

/// A share batch whose signature and encoding have been checked, ready to combine.
#[derive(Clone, Debug)]
pub struct VerifiedShareBatch {
    pub(crate) keyper: KeyperIndex,
    pub(crate) slot: Slot,
    pub(crate) scaled_for: Option<ResponderSet>,
    pub(crate) coefficient: Scalar,
    pub(crate) block: BlockDigest,
    pub(crate) shares: Vec<G1Affine>,
}

impl VerifiedShareBatch {
    /// The keyper that signed it.
    #[must_use]
    pub fn keyper(&self) -> KeyperIndex {
        self.keyper
    }

    /// The slot it was released for.
    #[must_use]
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The responder set its shares are scaled for, if any.
    #[must_use]
    pub fn scaled_for(&self) -> Option<&ResponderSet> {
        self.scaled_for.as_ref()
    }

    /// The block it names.
    #[must_use]
    pub fn block(&self) -> &BlockDigest {
        &self.block
    }

    /// Whether it is a batch for the block `digest` of `count` ciphertexts: it names that
    /// block and has one share per ciphertext.
    #[must_use]
    pub fn is_for(&self, digest: &BlockDigest, count: usize) -> bool {
        self.block == *digest && self.shares.len() == count
    }
}
