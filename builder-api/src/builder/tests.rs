//! Properties of the core: every planned bid passes the auction's own stateless checks
//! (`veil_auction::check_bid`: gas limits, whole bundles, known unexpired ids in the right
//! rollup, reserves), names no excluded id, pays at most its value, and is deterministic.

use std::collections::{BTreeMap, HashMap, HashSet};

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use veil_auction::{check_bid, public_key, AuctionConfig, BidContext, RevenuePolicy, RollupConfig};
use veil_primitives::{
    Amount, BundleId, BundleRef, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId, TxMeta,
};

use super::*;
use crate::api::{MempoolBundle, MempoolTx};

const CHAIN: ChainId = ChainId(7);

fn mtx(seq: u64, rollup: u32, fee: u128, gas: u64, expiry: u64) -> MempoolTx {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&seq.to_be_bytes());
    id[31] = 1;
    MempoolTx {
        seq,
        id: TxId(id),
        eon: Eon(1),
        rollup: RollupId(rollup),
        fee_payer: PublicKeyBytes([2; 32]),
        max_fee: Amount(fee),
        gas_limit: gas,
        expiry_slot: Slot(expiry),
        bundle: None,
        size: 700,
        ciphertext: None,
    }
}

/// A lone transaction: (rollup, fee, gas, expiry).
fn lone() -> impl Strategy<Value = (u32, u128, u64, u64)> {
    (0u32..5, 0u128..100, 1u64..40_000, 0u64..10)
}

/// A generated bundle: its parts' (fee, gas, expiry), the first rollup, and whether a part
/// is missing.
type GenBundle = (Vec<(u128, u64, u64)>, u32, bool);

fn bundle() -> impl Strategy<Value = GenBundle> {
    (prop::collection::vec((0u128..100, 1u64..40_000, 0u64..10), 2..=3), 0u32..5, any::<bool>())
}

fn terms() -> impl Strategy<Value = BTreeMap<RollupId, RollupTerms>> {
    // Rollups 0..4 registered (4 is not), each with a reserve, a gas limit, active or not.
    prop::collection::vec((0u128..150, 0u64..120_000, prop::bool::weighted(0.85)), 4).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (reserve, gas_limit, active))| {
                    (
                        RollupId(i as u32),
                        RollupTerms { reserve: Amount(reserve), gas_limit, active },
                    )
                })
                .collect()
        },
    )
}

fn input_txs(lones: &[(u32, u128, u64, u64)], bundles: &[GenBundle]) -> Vec<MempoolTx> {
    let mut txs = Vec::new();
    let mut seq = 0u64;
    for &(r, fee, gas, exp) in lones {
        txs.push(mtx(seq, r, fee, gas, exp));
        seq += 1;
    }
    for (b, (parts, first, partial)) in bundles.iter().enumerate() {
        let count = parts.len() as u16;
        for (i, &(fee, gas, exp)) in parts.iter().enumerate() {
            if *partial && i == 0 {
                continue;
            }
            let mut t = mtx(seq, (first + i as u32) % 5, fee, gas, exp);
            seq += 1;
            t.bundle =
                Some(MempoolBundle { id: BundleId([b as u8 + 1; 32]), index: i as u16, count });
            txs.push(t);
        }
    }
    txs
}

fn auction_terms(terms: &SlotTerms) -> veil_auction::RollupTerms {
    let admin = public_key(&SigningKey::from_bytes(&[4; 32]));
    terms
        .rollups
        .iter()
        .map(|(r, t)| {
            (
                *r,
                RollupConfig {
                    reserve: t.reserve,
                    gas_limit: t.gas_limit,
                    policy: RevenuePolicy::standard(8_000, 1_500, 500, admin).unwrap(),
                    active: t.active,
                },
            )
        })
        .collect()
}

fn index(txs: &[MempoolTx]) -> HashMap<TxId, TxMeta> {
    txs.iter()
        .map(|t| {
            (
                t.id,
                TxMeta {
                    chain_id: CHAIN,
                    eon: t.eon,
                    rollup: t.rollup,
                    fee_payer: t.fee_payer,
                    max_fee: t.max_fee,
                    gas_limit: t.gas_limit,
                    expiry_slot: t.expiry_slot,
                    bundle: t.bundle.map(|b| BundleRef {
                        id: b.id,
                        index: b.index,
                        count: b.count,
                    }),
                },
            )
        })
        .collect()
}

fn kind() -> impl Strategy<Value = StrategyKind> {
    prop::sample::select(StrategyKind::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn planned_bids_pass_the_auctions_checks(
        lones in prop::collection::vec(lone(), 0..40),
        bundles in prop::collection::vec(bundle(), 0..6),
        rollups in terms(),
        slot in 0u64..6,
        exclude_mask in any::<u64>(),
        set_masks in prop::collection::vec(1u8..32, 1..4),
        kind in kind(),
        percent in 1u16..=100,
        max_ciphertexts in 1usize..50,
    ) {
        let txs = input_txs(&lones, &bundles);
        let mut pending = PendingSet::new(PendingConfig::default());
        for t in &txs {
            pending.insert(t).unwrap();
        }
        let exclude: HashSet<TxId> = txs
            .iter()
            .enumerate()
            .filter(|(i, _)| exclude_mask >> (i % 64) & 1 == 1 && i % 3 == 0)
            .map(|(_, t)| t.id)
            .collect();
        let sets: Vec<RollupSet> = set_masks
            .iter()
            .map(|m| RollupSet::new((0..5).filter(|r| m >> r & 1 == 1).map(RollupId)).unwrap())
            .collect();
        let terms = SlotTerms { chain_id: CHAIN, slot: Slot(slot), rollups };
        let mut strategy = StrategyConfig::new(kind, sets, percent).unwrap();
        strategy.max_ciphertexts_per_bid = max_ciphertexts;
        let planner = Planner::new(strategy.clone());
        let plans = planner.plan(&pending, &terms, &exclude);

        let config = AuctionConfig {
            chain_id: CHAIN,
            max_ciphertexts_per_bid: max_ciphertexts,
            ..AuctionConfig::default()
        };
        let aterms = auction_terms(&terms);
        let idx = index(&txs);
        let key = SigningKey::from_bytes(&[9; 32]);
        for plan in &plans {
            let bid = plan.to_bid(&terms, public_key(&key), 1);
            // Bundles whole, gas limits, reserves, expiry, rollups: the auction's own checks.
            let ctx = BidContext {
                config: &config,
                slot: Slot(slot),
                deadline_ms: 10,
                now_ms: 0,
                terms: &aterms,
                available: Some(Amount::MAX),
            };
            let checked = check_bid(bid.clone().sign(&key), &ctx, &idx);
            prop_assert!(checked.is_ok(), "{:?}: {:?}", checked.err(), bid);
            // And spelled out.
            let mut value = 0u128;
            for block in &bid.blocks {
                let limit = terms.rollups[&block.rollup].gas_limit;
                let gas: u64 = block.ciphertexts.iter().map(|id| idx[id].gas_limit).sum();
                prop_assert!(gas <= limit);
                prop_assert!(plan.set.contains(block.rollup));
                prop_assert!(!block.ciphertexts.is_empty());
                for id in &block.ciphertexts {
                    prop_assert!(!exclude.contains(id));
                    prop_assert!(idx[id].expiry_slot >= Slot(slot));
                    value += idx[id].max_fee.0;
                    if kind == StrategyKind::FeeOrder {
                        prop_assert!(idx[id].bundle.is_none());
                    }
                }
                let fees: Vec<Amount> = block.ciphertexts.iter().map(|id| idx[id].max_fee).collect();
                prop_assert!(fees.windows(2).all(|w| w[0] >= w[1]), "fee order");
            }
            let named: HashSet<TxId> = bid.blocks.iter().flat_map(|b| b.ciphertexts.iter().copied()).collect();
            for id in &named {
                if let Some(b) = idx[id].bundle {
                    let parts = idx.values().filter(|m| m.bundle.map(|x| x.id) == Some(b.id)).count();
                    let named_parts = named.iter().filter(|n| idx[*n].bundle.map(|x| x.id) == Some(b.id)).count();
                    prop_assert_eq!(named_parts, usize::from(b.count));
                    prop_assert_eq!(parts, usize::from(b.count));
                }
            }
            let reserve: u128 = bid.blocks.iter().map(|b| terms.rollups[&b.rollup].reserve.0).sum();
            prop_assert_eq!(plan.blocks.value, Amount(value));
            prop_assert!(bid.amount.0 >= reserve.max(1));
            prop_assert!(bid.amount.0 <= value);
        }
        match kind {
            StrategyKind::CrossRollup => prop_assert!(plans.len() <= strategy.sets.len()),
            _ => prop_assert!(plans.len() <= 1),
        }

        // Determinism: the same transactions taken in another order give the same bids.
        let mut again = PendingSet::new(PendingConfig::default());
        for t in txs.iter().rev() {
            again.insert(t).unwrap();
        }
        prop_assert_eq!(Planner::new(strategy).plan(&again, &terms, &exclude), plans);
    }

    /// The pending set never holds more than its bound, and keeps the highest fees.
    #[test]
    fn pending_set_is_bounded(
        fees in prop::collection::vec(0u128..1_000, 0..200),
        max in 1usize..20,
    ) {
        let mut set = PendingSet::new(PendingConfig { max_txs: max, ..PendingConfig::default() });
        for (i, fee) in fees.iter().enumerate() {
            set.insert(&mtx(i as u64, 0, *fee, 1, 9)).unwrap();
            prop_assert!(set.len() <= max);
        }
        let mut sorted = fees.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let floor = sorted.get(max.min(sorted.len()).saturating_sub(1)).copied().unwrap_or(0);
        prop_assert!(set.iter().all(|t| t.max_fee.0 >= floor));
    }

    /// Shading stays between the floor and the value, whatever it observes.
    #[test]
    fn shading_stays_in_bounds(
        seen in prop::collection::vec((0u128..1_000, any::<bool>(), prop::option::of(0u128..2_000)), 0..50),
        initial in 0u16..=12_000,
        min in 0u16..=10_000,
        step in 0u16..=3_000,
    ) {
        let mut s = Shading::new(ShadingConfig { initial_bps: initial, min_bps: min, step_bps: step });
        for (value, won, paid) in seen {
            s.observe(&SlotObservation { value: Amount(value), won, competing_payment: paid.map(Amount) });
            prop_assert!(s.factor_bps() <= BPS);
            prop_assert!(s.factor_bps() >= min.min(BPS));
        }
    }
}

#[test]
fn a_bundle_is_taken_whole_or_not_at_all() {
    let mut pending = PendingSet::new(PendingConfig::default());
    let bundle = |seq, rollup, index| {
        let mut t = mtx(seq, rollup, 90, 30_000, 9);
        t.bundle = Some(MempoolBundle { id: BundleId([7; 32]), index, count: 2 });
        t
    };
    pending.insert(&bundle(0, 0, 0)).unwrap();
    pending.insert(&bundle(1, 1, 1)).unwrap();
    pending.insert(&mtx(2, 1, 10, 21_000, 9)).unwrap();
    let rollups = |gas1| {
        [(0u32, 40_000u64), (1, gas1)]
            .into_iter()
            .map(|(r, g)| {
                (RollupId(r), RollupTerms { reserve: Amount(5), gas_limit: g, active: true })
            })
            .collect()
    };
    let set: RollupSet = "0+1".parse().unwrap();
    let rules = BuildRules { bundles: true, max_ciphertexts: 100 };
    let none = HashSet::new();
    // Room for the bundle's leg on rollup 1: the bundle (180) beats the lone tx.
    let terms = SlotTerms { chain_id: CHAIN, slot: Slot(1), rollups: rollups(40_000) };
    let b = build_blocks(&pending, &terms, &set, &none, rules);
    assert_eq!(b.value, Amount(180));
    assert_eq!(b.len(), 2);
    // No room on rollup 1 for the leg: no part of the bundle, the lone tx instead.
    let terms = SlotTerms { chain_id: CHAIN, slot: Slot(1), rollups: rollups(25_000) };
    let b = build_blocks(&pending, &terms, &set, &none, rules);
    assert_eq!(b.value, Amount(10));
    assert_eq!(b.rollups(), vec![RollupId(1)]);
    // A set without rollup 1 cannot hold the bundle.
    let b = build_blocks(&pending, &terms, &"0".parse().unwrap(), &none, rules);
    assert!(b.is_empty());
}

#[test]
fn below_reserve_means_no_bid_and_shading_learns() {
    let mut pending = PendingSet::new(PendingConfig::default());
    pending.insert(&mtx(0, 0, 30, 21_000, 9)).unwrap();
    let mut terms = SlotTerms {
        chain_id: CHAIN,
        slot: Slot(1),
        rollups: [(
            RollupId(0),
            RollupTerms { reserve: Amount(31), gas_limit: 1_000_000, active: true },
        )]
        .into_iter()
        .collect(),
    };
    let strategy =
        StrategyConfig::new(StrategyKind::Shading, vec!["0".parse().unwrap()], 50).unwrap();
    let mut planner = Planner::new(strategy);
    assert!(planner.plan(&pending, &terms, &HashSet::new()).is_empty());
    terms.rollups.get_mut(&RollupId(0)).unwrap().reserve = Amount(10);
    assert_eq!(planner.plan(&pending, &terms, &HashSet::new())[0].amount, Amount(15));
    // Lost to a payment of 24 out of a value of 30: 80%, plus a step.
    planner.observe(&SlotObservation {
        value: Amount(30),
        won: false,
        competing_payment: Some(Amount(24)),
    });
    assert_eq!(planner.shading_bps(), 8_500);
    planner.observe(&SlotObservation { value: Amount(30), won: true, competing_payment: None });
    assert_eq!(planner.shading_bps(), 8_000);
    assert_eq!(planner.plan(&pending, &terms, &HashSet::new())[0].amount, Amount(24));
}

#[test]
fn strategy_and_set_parsing_are_typed() {
    assert_eq!("cross-rollup".parse::<StrategyKind>().unwrap(), StrategyKind::CrossRollup);
    assert!(matches!("best".parse::<StrategyKind>(), Err(crate::BuilderError::BadStrategy(_))));
    assert_eq!("2+0+2".parse::<RollupSet>().unwrap().to_string(), "0+2");
    assert!("0+x".parse::<RollupSet>().is_err());
    assert!("".parse::<RollupSet>().is_err());
    assert!(StrategyConfig::new(StrategyKind::FeeOrder, vec![], 50).is_err());
    assert!(StrategyConfig::new(StrategyKind::FeeOrder, vec!["0".parse().unwrap()], 0).is_err());
    assert!(StrategyConfig::new(StrategyKind::FeeOrder, vec!["0".parse().unwrap()], 101).is_err());
}
