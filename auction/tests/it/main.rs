//! Integration and property tests of the auction: intake against the bad-input table,
//! close properties against brute force, the split, determinism, shill resistance, and
//! restore after a restart against the uninterrupted auction.

mod intake;
mod ledger;
mod properties;
mod restore;

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, BidId, PaymentRule, RevenuePolicy, RollupBlock,
    RollupChange, RollupConfig, RollupUpdate, SignatureBytes, SignedBid, StoredBid, TxMeta,
};
use veil_primitives::encoding::sha3_256;
use veil_primitives::SignedMessage;
use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};

pub(crate) const CHAIN: ChainId = ChainId(5);

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn tx(rollup: u32, k: u32) -> TxId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&rollup.to_be_bytes());
    b[4..8].copy_from_slice(&k.to_be_bytes());
    TxId(sha3_256(&b))
}

pub(crate) fn rollup_config(reserve: u128, gas_limit: u64) -> RollupConfig {
    RollupConfig {
        reserve: Amount(reserve),
        gas_limit,
        policy: RevenuePolicy::standard(7_000, 2_000, 1_000, PublicKeyBytes([3; 32])).unwrap(),
        active: true,
    }
}

/// An auction with rollups 0..4 (reserve 100, gas 1,000,000), builders 10..14 with 10,000
/// collateral each, slot 1 open until 1,000 ms, and a pool of 20 ciphertexts per rollup.
pub(crate) fn world(rule: PaymentRule) -> (Auction, HashMap<TxId, TxMeta>) {
    let (mut auction, pool) = genesis(rule);
    auction.open_slot(Slot(1), 1_000).unwrap();
    (auction, pool)
}

/// [`world`] before any slot opens: the state a restarted node rebuilds first.
pub(crate) fn genesis(rule: PaymentRule) -> (Auction, HashMap<TxId, TxMeta>) {
    let mut auction = Auction::new(AuctionConfig {
        chain_id: CHAIN,
        payment_rule: rule,
        max_bids_per_builder_per_slot: 4,
        ..AuctionConfig::default()
    });
    let admin = key(1);
    for r in 0..4u32 {
        let update = RollupUpdate {
            chain_id: CHAIN,
            rollup: RollupId(r),
            nonce: 1,
            effective: Slot(1),
            change: RollupChange::Register {
                admin: public_key(&admin),
                config: rollup_config(100, 1_000_000),
            },
        };
        auction.apply_rollup_update(&update.sign(&admin)).unwrap();
    }
    for b in 10..14u8 {
        auction.deposit(public_key(&key(b)), Amount(10_000)).unwrap();
    }
    let mut pool = HashMap::new();
    for r in 0..4u32 {
        for k in 0..20u32 {
            pool.insert(
                tx(r, k),
                TxMeta {
                    chain_id: ChainId(1),
                    eon: Eon(1),
                    fee_payer: PublicKeyBytes([0; 32]),
                    rollup: RollupId(r),
                    gas_limit: 100_000,
                    max_fee: Amount(u128::from(k) + 1),
                    expiry_slot: Slot(5),
                    bundle: None,
                },
            );
        }
    }
    (auction, pool)
}

/// A bid of builder `b` on `rollups`, with ciphertexts `k0..k0+count` of each rollup.
pub(crate) fn bid(b: u8, rollups: &[u32], amount: u128, sequence: u64) -> Bid {
    Bid {
        chain_id: CHAIN,
        slot: Slot(1),
        builder: public_key(&key(b)),
        sequence,
        amount: Amount(amount),
        blocks: rollups
            .iter()
            .map(|&r| RollupBlock {
                rollup: RollupId(r),
                ciphertexts: (0..3).map(|k| tx(r, k)).collect(),
                plaintext: vec![],
            })
            .collect(),
    }
}

/// A stored bid for direct calls to `payment::close` (signature not needed there).
pub(crate) fn stored(builder: u8, rollups: &[u32], amount: u128, reserve: u128) -> StoredBid {
    let bid = Bid {
        chain_id: CHAIN,
        slot: Slot(1),
        builder: PublicKeyBytes([builder; 32]),
        sequence: 1,
        amount: Amount(amount),
        blocks: rollups
            .iter()
            .map(|&r| RollupBlock { rollup: RollupId(r), ciphertexts: vec![], plaintext: vec![] })
            .collect(),
    };
    StoredBid {
        id: BidId(sha3_256(&bid.signing_bytes())),
        signed: SignedBid { message: bid, signature: SignatureBytes([0; 64]) },
        reserve: Amount(reserve),
    }
}
