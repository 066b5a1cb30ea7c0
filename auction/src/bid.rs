//! Bids: the signed wire type, its canonical encoding, and the checks that need no book state.
//!
//! A bid for slot `s` names a builder key, an amount, and one [`RollupBlock`] per rollup it
//! wants: the ordered ciphertext ids (the sequencer has the bodies) and optional builder-owned
//! plaintext transactions. Blocks are sorted by rollup id, which makes the rollup set and the
//! encoding canonical. The builder signs [`Bid::signing_bytes`]: the domain tag `veil/bid/v1`,
//! the chain id, then every field in order. The [`BidId`] is the sha3-256 of those bytes.
//!
//! The mempool is reached only through [`CiphertextIndex`] (in veil-primitives), which its
//! pool implements.

use std::collections::{BTreeMap, HashSet};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use veil_primitives::encoding::{sha3_256, Encoder};
use veil_primitives::signed::{self, Signed, SignedItem, SignedMessage};
use veil_primitives::{
    hexbytes, Amount, BundleId, ChainId, CiphertextIndex, PublicKeyBytes, RollupId, Slot, TxId,
};

use crate::config::AuctionConfig;
use crate::registry::RollupTerms;
use crate::AuctionError;

/// The largest amount anywhere in the auction: [`Amount::MAX`] (2^113, about 1.04e34): with
/// at most 64 rollups per slot and the solver's scaling by 128, every sum the auction forms
/// fits in a `u128`.
pub const MAX_AMOUNT: Amount = Amount::MAX;

pub use veil_primitives::BundleRef;

/// A transaction the builder adds in the clear (for example its own arbitrage).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaintextTx {
    /// Its gas limit, counted against the rollup's.
    pub gas_limit: u64,
    /// The rollup-native transaction bytes.
    #[serde(with = "hexbytes::serde_vec")]
    pub data: Vec<u8>,
}

/// The block a bid proposes for one rollup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RollupBlock {
    /// The rollup.
    pub rollup: RollupId,
    /// Ciphertext ids, in the order they will be executed.
    pub ciphertexts: Vec<TxId>,
    /// Builder-owned plaintext transactions, executed after the ciphertexts.
    pub plaintext: Vec<PlaintextTx>,
}

/// A bid, unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bid {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot bid for.
    pub slot: Slot,
    /// The builder's key; it must hold collateral.
    pub builder: PublicKeyBytes,
    /// Replaces the builder's earlier bid for the same slot and rollup set if higher.
    pub sequence: u64,
    /// What the builder pays if it wins (first-price) or at most (VCG).
    pub amount: Amount,
    /// One block per rollup, sorted by rollup id.
    pub blocks: Vec<RollupBlock>,
}

veil_primitives::byte_id!(
    /// The id of a bid: sha3-256 of its signing bytes.
    BidId,
    32
);

impl SignedMessage for Bid {
    const DOMAIN: &'static str = "veil/bid/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Slot, builder, sequence, amount, then each block: rollup, ciphertext ids, plaintext
    /// transactions (gas limit and bytes).
    fn encode_body(&self, e: &mut Encoder) {
        e.u64(self.slot.0);
        e.fixed(&self.builder.0);
        e.u64(self.sequence);
        e.amount(self.amount);
        e.len(self.blocks.len());
        for block in &self.blocks {
            e.u32(block.rollup.0);
            e.len(block.ciphertexts.len());
            for id in &block.ciphertexts {
                e.fixed(&id.0);
            }
            e.len(block.plaintext.len());
            for tx in &block.plaintext {
                e.u64(tx.gas_limit);
                e.bytes(&tx.data);
            }
        }
    }
}

impl Bid {
    /// The rollups named, in block order.
    pub fn rollups(&self) -> impl Iterator<Item = RollupId> + '_ {
        self.blocks.iter().map(|b| b.rollup)
    }

    /// Signs the bid.
    #[must_use]
    pub fn sign(self, key: &SigningKey) -> SignedBid {
        Signed::sign(self, key)
    }
}

/// A bid with the builder's signature over its signing bytes (domain `veil/bid/v1`).
pub type SignedBid = Signed<Bid>;

/// A bid whose signature verified under the key it names (`builder`): what a shell checks
/// off the sequencer's thread, so the auction ([`crate::Auction::submit_verified_bid`]) only
/// has to confirm that the key belongs to a builder with collateral (the registry keeps each
/// builder's key as the very bytes the bid names). Only [`VerifiedBid::verify_many`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBid(SignedBid);

impl VerifiedBid {
    /// Verifies every bid's signature under the key it names: one verdict per bid, in order.
    /// Signatures are batch-verified in parallel chunks of `chunk` (a failing chunk is checked
    /// one by one, so a verdict never depends on another bid).
    ///
    /// # Errors
    /// Per bid: [`AuctionError::InvalidPublicKey`] for a key that is not a usable ed25519
    /// key, [`AuctionError::BadSignature`] for a signature that does not verify.
    #[must_use]
    pub fn verify_many(
        bids: Vec<SignedBid>,
        chunk: usize,
    ) -> Vec<Result<VerifiedBid, AuctionError>> {
        let prepared: Vec<Result<(VerifyingKey, Vec<u8>), AuctionError>> = bids
            .par_iter()
            .with_min_len(16)
            .map(|b| {
                let key = signed::verifying_key(&b.message.builder)?;
                Ok((key, b.message.signing_bytes()))
            })
            .collect();
        let (positions, items): (Vec<usize>, Vec<SignedItem<'_>>) = prepared
            .iter()
            .zip(&bids)
            .enumerate()
            .filter_map(|(i, (p, b))| {
                let (key, message) = p.as_ref().ok()?;
                Some((i, SignedItem { key, message, signature: &b.signature }))
            })
            .unzip();
        let good = signed::verify_many(&items, chunk);
        drop(items);
        let mut verdicts: Vec<Result<(), AuctionError>> =
            prepared.into_iter().map(|p| p.map(|_| ())).collect();
        for (i, ok) in positions.into_iter().zip(good) {
            if !ok {
                verdicts[i] = Err(AuctionError::BadSignature);
            }
        }
        bids.into_iter().zip(verdicts).map(|(b, v)| v.map(|()| VerifiedBid(b))).collect()
    }

    /// The bid.
    #[must_use]
    pub fn bid(&self) -> &SignedBid {
        &self.0
    }

    /// The bid, giving up the proof of its verification.
    #[must_use]
    pub fn into_inner(self) -> SignedBid {
        self.0
    }
}

/// A bid that passed every check that needs no book state, with its signing bytes and id.
#[derive(Debug, Clone)]
pub struct CheckedBid {
    /// The bid.
    pub signed: SignedBid,
    /// sha3-256 of the signing bytes.
    pub id: BidId,
    /// The signing bytes (kept for signature verification).
    pub message: Vec<u8>,
    /// Sum of the reserves of its rollups.
    pub reserve: Amount,
}

/// What the stateless checks need to know about the slot.
#[derive(Debug, Clone, Copy)]
pub struct BidContext<'a> {
    /// The auction's configuration.
    pub config: &'a AuctionConfig,
    /// The slot.
    pub slot: Slot,
    /// The slot's bidding deadline.
    pub deadline_ms: u64,
    /// The caller's clock.
    pub now_ms: u64,
    /// The rollup terms frozen for the slot.
    pub terms: &'a RollupTerms,
    /// The builder's available collateral, if known.
    pub available: Option<Amount>,
}

/// Checks everything about a bid except its signature and the book (sequence, cap):
/// chain, slot and deadline, builder and collateral, rollups, reserves, ciphertexts (known,
/// unexpired, in the right rollup, used once), gas limits and bundle completeness.
pub fn check_bid(
    signed: SignedBid,
    ctx: &BidContext<'_>,
    index: &impl CiphertextIndex,
) -> Result<CheckedBid, AuctionError> {
    let bid = &signed.message;
    let config = ctx.config;
    if bid.chain_id != config.chain_id {
        return Err(AuctionError::WrongChain { expected: config.chain_id, got: bid.chain_id });
    }
    if bid.slot != ctx.slot {
        return Err(AuctionError::SlotNotOpen(bid.slot));
    }
    if ctx.now_ms > ctx.deadline_ms {
        return Err(AuctionError::SlotClosed {
            slot: ctx.slot,
            deadline_ms: ctx.deadline_ms,
            now_ms: ctx.now_ms,
        });
    }
    let available = ctx.available.ok_or(AuctionError::UnknownBuilder(bid.builder))?;
    if bid.amount > MAX_AMOUNT {
        return Err(AuctionError::AmountTooLarge(bid.amount));
    }
    if bid.amount > available {
        return Err(AuctionError::InsufficientCollateral { available, required: bid.amount });
    }
    if bid.blocks.is_empty() {
        return Err(AuctionError::EmptyRollupSet);
    }
    if bid.blocks.len() > config.max_rollups_per_bid {
        return Err(too_large("rollups", bid.blocks.len(), config.max_rollups_per_bid));
    }
    if bid.blocks.windows(2).any(|w| w[0].rollup >= w[1].rollup) {
        return Err(AuctionError::RollupSetNotCanonical);
    }
    let ciphertexts: usize = bid.blocks.iter().map(|b| b.ciphertexts.len()).sum();
    if ciphertexts > config.max_ciphertexts_per_bid {
        return Err(too_large("ciphertexts", ciphertexts, config.max_ciphertexts_per_bid));
    }
    let plaintext_bytes: usize =
        bid.blocks.iter().flat_map(|b| &b.plaintext).map(|t| t.data.len()).sum();
    if plaintext_bytes > config.max_plaintext_bytes_per_bid {
        return Err(too_large(
            "plaintext_bytes",
            plaintext_bytes,
            config.max_plaintext_bytes_per_bid,
        ));
    }
    let mut reserve = Amount::ZERO;
    for block in &bid.blocks {
        let terms =
            ctx.terms.get(&block.rollup).ok_or(AuctionError::UnknownRollup(block.rollup))?;
        if !terms.active {
            return Err(AuctionError::InactiveRollup(block.rollup));
        }
        // At most 64 reserves of at most MAX_AMOUNT each: no overflow.
        reserve = Amount(reserve.0 + terms.reserve.0);
    }
    if bid.amount < reserve {
        return Err(AuctionError::BelowReserve { reserve, amount: bid.amount });
    }
    let mut seen: HashSet<TxId> = HashSet::with_capacity(ciphertexts);
    // bundle id -> (count, [(index, rollup)])
    let mut bundles: BTreeMap<BundleId, (u16, Vec<(u16, RollupId)>)> = BTreeMap::new();
    for block in &bid.blocks {
        let limit = ctx.terms[&block.rollup].gas_limit;
        let mut gas: u64 = 0;
        for id in &block.ciphertexts {
            if !seen.insert(*id) {
                return Err(AuctionError::DuplicateCiphertext(*id));
            }
            let meta = index.lookup(id).ok_or(AuctionError::UnknownCiphertext(*id))?;
            if meta.expiry_slot < ctx.slot {
                return Err(AuctionError::ExpiredCiphertext { id: *id, expiry: meta.expiry_slot });
            }
            if meta.rollup != block.rollup {
                return Err(AuctionError::CiphertextRollupMismatch {
                    id: *id,
                    placed: block.rollup,
                    actual: meta.rollup,
                });
            }
            gas = gas.saturating_add(meta.gas_limit);
            if let Some(b) = meta.bundle {
                let entry = bundles.entry(b.id).or_insert((b.count, Vec::new()));
                if entry.0 != b.count || b.index >= b.count {
                    return Err(AuctionError::InconsistentBundle(b.id));
                }
                entry.1.push((b.index, block.rollup));
            }
        }
        for tx in &block.plaintext {
            gas = gas.saturating_add(tx.gas_limit);
        }
        if gas > limit {
            return Err(AuctionError::GasLimitExceeded { rollup: block.rollup, used: gas, limit });
        }
    }
    for (id, (count, mut parts)) in bundles {
        parts.sort_unstable();
        if parts.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(AuctionError::InconsistentBundle(id));
        }
        let mut rollups: Vec<RollupId> = parts.iter().map(|p| p.1).collect();
        rollups.sort_unstable();
        if rollups.windows(2).any(|w| w[0] == w[1]) {
            return Err(AuctionError::InconsistentBundle(id));
        }
        if parts.len() != usize::from(count) {
            return Err(AuctionError::PartialBundle(id));
        }
    }
    let message = signed.message.signing_bytes();
    let id = BidId(sha3_256(&message));
    Ok(CheckedBid { signed, id, message, reserve })
}

fn too_large(what: &'static str, got: usize, limit: usize) -> AuctionError {
    AuctionError::BidTooLarge {
        what,
        got: u64::try_from(got).unwrap_or(u64::MAX),
        limit: u64::try_from(limit).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bid_json_uses_workspace_conventions() {
        let bid = Bid {
            chain_id: ChainId(1),
            slot: Slot(9),
            builder: PublicKeyBytes([1; 32]),
            sequence: 3,
            amount: Amount(1_000_000_000_000_000_000_000),
            blocks: vec![RollupBlock {
                rollup: RollupId(2),
                ciphertexts: vec![TxId([5; 32])],
                plaintext: vec![PlaintextTx { gas_limit: 21_000, data: vec![0xde, 0xad] }],
            }],
        };
        let signed =
            SignedBid { message: bid, signature: veil_primitives::SignatureBytes([7; 64]) };
        let json = serde_json::to_string(&signed).unwrap();
        assert!(json.contains("\"amount\":\"1000000000000000000000\""));
        assert!(json.contains("\"data\":\"0xdead\""));
        assert!(json.contains("\"0x0505"));
        assert_eq!(serde_json::from_str::<SignedBid>(&json).unwrap(), signed);
    }

    #[test]
    fn signing_bytes_change_with_every_field() {
        let bid = Bid {
            chain_id: ChainId(1),
            slot: Slot(9),
            builder: PublicKeyBytes([1; 32]),
            sequence: 3,
            amount: Amount(10),
            blocks: vec![RollupBlock {
                rollup: RollupId(2),
                ciphertexts: vec![],
                plaintext: vec![],
            }],
        };
        let base = bid.signing_bytes();
        assert!(base.starts_with(&[0, 0, 0, 11]));
        let mut other = bid.clone();
        other.chain_id = ChainId(2);
        assert_ne!(other.signing_bytes(), base);
        let mut other = bid.clone();
        other.sequence = 4;
        assert_ne!(other.signing_bytes(), base);
        let mut other = bid;
        other.blocks[0].rollup = RollupId(3);
        assert_ne!(other.signing_bytes(), base);
    }

    /// Each verdict is the bid's own: good bids pass whatever their neighbours are, a bad
    /// signature and an unusable key are refused with their codes, order is kept.
    #[test]
    fn verify_many_judges_each_bid_on_its_own() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let bid = |sequence| {
            Bid {
                chain_id: ChainId(1),
                slot: Slot(9),
                builder: signed::public_key(&key),
                sequence,
                amount: Amount(10),
                blocks: vec![RollupBlock {
                    rollup: RollupId(2),
                    ciphertexts: vec![],
                    plaintext: vec![],
                }],
            }
            .sign(&key)
        };
        let mut bids: Vec<SignedBid> = (1..=100).map(bid).collect();
        bids[7].message.amount = Amount(11); // signature no longer matches
        bids[50].message.builder = PublicKeyBytes([0; 32]); // a weak key
        bids[99].signature = veil_primitives::SignatureBytes([0xff; 64]);
        let verdicts = VerifiedBid::verify_many(bids.clone(), 16);
        assert_eq!(verdicts.len(), 100);
        for (i, (v, b)) in verdicts.iter().zip(&bids).enumerate() {
            match i {
                7 | 99 => assert_eq!(v.as_ref().unwrap_err(), &AuctionError::BadSignature),
                50 => assert!(matches!(v, Err(AuctionError::InvalidPublicKey(_)))),
                _ => assert_eq!(v.as_ref().unwrap().bid(), b),
            }
        }
    }
}
