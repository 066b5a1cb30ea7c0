//! The simulator's proofs: determinism, conservation, the AMM against the closed-form
//! sandwich, encryption against sandwiches, the shill against each split, and the real
//! encryption path against the fast path.

use proptest::prelude::*;
use veil_auction::PaymentRule;
use veil_sims::amm::{best_sandwich, closed_form_sandwich, Pool, Side};
use veil_sims::config::{Adversaries, MempoolMode, RunSpec, Scenario, ScenarioFile, ShillSpec};
use veil_sims::sim::{run_all, run_one};

fn spec(mode: MempoolMode, rule: PaymentRule, adversaries: Adversaries, slots: u64) -> RunSpec {
    RunSpec {
        scenario: Scenario { name: "test".into(), slots, seed: 11, ..Scenario::default() },
        mode,
        rule,
        adversaries,
    }
}

fn shill() -> Adversaries {
    Adversaries { shill: Some(ShillSpec { rollup: 2, aggression: 0.9 }), collusion: None }
}

#[test]
fn same_seed_same_audit_hash_and_bytes() {
    let s = spec(MempoolMode::Plaintext, PaymentRule::FirstPrice, shill(), 30);
    let a = run_one(&s, || {}).unwrap();
    let b = run_one(&s, || {}).unwrap();
    assert_eq!(a.audit, b.audit);
    assert_eq!(a.csv, b.csv);
    let mut other = s.clone();
    other.scenario.seed += 1;
    assert_ne!(run_one(&other, || {}).unwrap().audit, a.audit, "the seed must matter");
}

#[test]
fn parallel_runs_match_sequential_ones() {
    let file: ScenarioFile = toml::from_str(
        r#"
        [scenario]
        name = "par"
        slots = 15
        [[adversaries]]
        shill = { rollup = 1, aggression = 0.5 }
        "#,
    )
    .unwrap();
    let specs = file.runs();
    assert_eq!(specs.len(), 8);
    let parallel = run_all(&specs, false).unwrap();
    for (s, p) in specs.iter().zip(&parallel) {
        assert_eq!(run_one(s, || {}).unwrap().audit, p.audit, "{}", s.label());
    }
}

#[test]
fn payouts_equal_payments_in_every_slot_of_every_variant() {
    let collusion = Adversaries {
        shill: None,
        collusion: Some(veil_sims::config::CollusionSpec {
            builder: "cross-arb".into(),
            rollup: 2,
        }),
    };
    for mode in [MempoolMode::Plaintext, MempoolMode::Encrypted] {
        for rule in [PaymentRule::FirstPrice, PaymentRule::Vcg] {
            for adv in [Adversaries::default(), shill(), collusion.clone()] {
                let r = run_one(&spec(mode, rule, adv, 25), || {}).unwrap();
                assert!(r.metrics.bid_rejections.is_empty(), "{:?}", r.metrics.bid_rejections);
                assert!(r.metrics.admission_rejections.is_empty());
                for rec in &r.records {
                    assert!(rec.conserved, "{} slot {}", r.spec.label(), rec.slot);
                    assert!((rec.payments - rec.payouts).abs() < 1e-9);
                    for split in [&rec.revenue_veil, &rec.revenue_prop, &rec.revenue_equal] {
                        assert!((split.iter().sum::<f64>() - rec.payments).abs() < 1e-6);
                    }
                }
            }
        }
    }
}

#[test]
fn encrypted_mode_leaves_sandwichers_nothing() {
    let plain = run_one(
        &spec(MempoolMode::Plaintext, PaymentRule::FirstPrice, Adversaries::default(), 40),
        || {},
    )
    .unwrap();
    let enc = run_one(
        &spec(MempoolMode::Encrypted, PaymentRule::FirstPrice, Adversaries::default(), 40),
        || {},
    )
    .unwrap();
    // Not vacuous: the same market in plaintext is sandwiched.
    assert!(plain.metrics.sandwiches > 0);
    assert!(plain.metrics.user_sandwich_loss > 0.0);
    assert_eq!(enc.metrics.sandwiches, 0);
    assert_eq!(enc.metrics.mev["sandwich"], 0.0);
    assert_eq!(enc.metrics.user_sandwich_loss, 0.0);
}

#[test]
fn a_losing_shill_moves_the_proportional_split_but_not_veils() {
    let base = run_one(
        &spec(MempoolMode::Encrypted, PaymentRule::FirstPrice, Adversaries::default(), 40),
        || {},
    )
    .unwrap();
    let with = run_one(&spec(MempoolMode::Encrypted, PaymentRule::FirstPrice, shill(), 40), || {})
        .unwrap();
    assert_eq!(with.metrics.shill_wins, 0, "the shill is sized to lose");
    for (a, b) in base.records.iter().zip(&with.records) {
        assert_eq!(a.revenue_veil, b.revenue_veil, "slot {}", a.slot);
        assert_eq!(a.revenue_equal, b.revenue_equal, "slot {}", a.slot);
    }
    assert!(with.metrics.rollup_revenue_prop[2] > base.metrics.rollup_revenue_prop[2]);
}

#[test]
fn sandwich_search_matches_the_closed_form_on_a_feeless_pool() {
    let pool = Pool::at_price(1_000.0, 3_000.0, 0.0);
    let victim_in = 5.0;
    let min_out = pool.quote_out(Side::SellBase, victim_in) * 0.99;
    let (front, profit) = closed_form_sandwich(pool.base, pool.quote, victim_in, min_out).unwrap();
    let found = best_sandwich(&pool, Side::SellBase, victim_in, min_out).unwrap();
    assert!((found.profit - profit).abs() <= 0.01 * profit, "{} vs {profit}", found.profit);
    assert!((found.front_in - front).abs() <= 0.01 * front);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn sandwich_search_is_within_one_percent_of_the_closed_form(
        depth in 100.0f64..10_000.0,
        price in 100.0f64..10_000.0,
        size in 0.001f64..0.05,
        slippage in 0.002f64..0.05,
        buy in any::<bool>(),
    ) {
        let pool = Pool::at_price(depth, price, 0.0);
        let side = if buy { Side::BuyBase } else { Side::SellBase };
        let (x, y) = match side { Side::BuyBase => (pool.quote, pool.base), Side::SellBase => (pool.base, pool.quote) };
        let victim_in = x * size;
        let min_out = pool.quote_out(side, victim_in) * (1.0 - slippage);
        let (_, profit) = closed_form_sandwich(x, y, victim_in, min_out).unwrap();
        let found = best_sandwich(&pool, side, victim_in, min_out).unwrap();
        prop_assert!((found.profit - profit).abs() <= 0.01 * profit, "{} vs {}", found.profit, profit);
    }
}

#[test]
fn real_encryption_gives_the_fast_path_outcomes() {
    let s = spec(MempoolMode::Encrypted, PaymentRule::FirstPrice, Adversaries::default(), 3);
    let report = veil_sims::crypto_check::compare(&s).unwrap();
    assert!(report.contains("match the fast path"), "{report}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// Conservation and clean intake on random small markets.
    #[test]
    fn random_markets_conserve_and_refuse_nothing(
        seed in any::<u64>(),
        rollups in 1u32..5,
        slippage_max in 0.005f64..0.05,
        bundles in 0.0f64..0.5,
        plaintext in any::<bool>(),
        vcg in any::<bool>(),
        shill_on in any::<bool>(),
    ) {
        let adversaries = if shill_on {
            Adversaries { shill: Some(ShillSpec { rollup: rollups - 1, aggression: 0.9 }), collusion: None }
        } else {
            Adversaries::default()
        };
        let s = RunSpec {
            scenario: Scenario {
                name: "prop".into(),
                seed,
                slots: 8,
                rollups,
                slippage_max,
                bundle_probability: bundles,
                ..Scenario::default()
            },
            mode: if plaintext { MempoolMode::Plaintext } else { MempoolMode::Encrypted },
            rule: if vcg { PaymentRule::Vcg } else { PaymentRule::FirstPrice },
            adversaries,
        };
        let r = run_one(&s, || {}).unwrap();
        prop_assert!(r.metrics.bid_rejections.is_empty(), "{:?}", r.metrics.bid_rejections);
        prop_assert!(r.metrics.admission_rejections.is_empty());
        prop_assert_eq!(r.metrics.unconserved_slots, 0);
        if !plaintext {
            prop_assert_eq!(r.metrics.sandwiches, 0);
        }
    }
}

#[test]
fn rollups_with_their_own_reserves_and_policies_conserve_and_keep_their_reserves() {
    for rule in [PaymentRule::FirstPrice, PaymentRule::Vcg] {
        let mut s = spec(MempoolMode::Encrypted, rule, shill(), 30);
        s.scenario.rollup_reserves = vec![0.5, 2.0, 5.0];
        s.scenario.rollup_policies = vec![[10_000, 0, 0], [5_000, 5_000, 0], [8_000, 1_500, 500]];
        let r = run_one(&s, || {}).unwrap();
        assert!(r.metrics.bid_rejections.is_empty(), "{:?}", r.metrics.bid_rejections);
        assert_eq!(r.metrics.unconserved_slots, 0);
        for rec in &r.records {
            for (i, w) in rec.winners.iter().enumerate() {
                if w != "fallback" {
                    let reserve = s.scenario.reserve_of(i as u32);
                    assert!(rec.revenue_veil[i] >= reserve - 1e-9, "slot {} rollup {i}", rec.slot);
                }
            }
        }
    }
}
