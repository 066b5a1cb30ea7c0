//! The `auction` suite: slot close (first-price and VCG) and bid intake.
//!
//! - `auction_close_16x10k`: close of a slot with 16 rollups and 10,000 bids over realistic
//!   bundle shapes (mostly 1 to 3 rollups, some larger), first-price. Baseline: the textbook
//!   subset DP (every submask of every mask, one thread) on the same book.
//! - `auction_close_vcg_16x10k`: the same with VCG payments. Baseline: the textbook DP once
//!   for the allocation and once per winning builder.
//! - `bid_intake`: bids per second through `Auction::submit_bids` (every check, batched
//!   signatures, rayon). Baseline: the same bids through `Auction::submit_bid`, one signature
//!   verification at a time, in the same run.
//!
//! Before timing, the suite checks the exact solver against brute force on small books.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_auction::payment::{close, CloseInput};
use veil_auction::wdp::{brute_force, Candidate, Solver};
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, BidId, PaymentRule, RevenuePolicy, RollupBlock,
    RollupChange, RollupConfig, RollupTerms, RollupUpdate, SignatureBytes, SignedBid, StoredBid,
    TxMeta,
};
use veil_primitives::encoding::sha3_256;
use veil_primitives::SignedMessage;
use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};

use crate::report::{Better, Figure, Goal, Reporter};

const SUITE: &str = "auction";
/// Chain id of the synthetic workloads.
pub const CHAIN: ChainId = ChainId(42);
/// Slot of the synthetic workloads.
pub const SLOT: Slot = Slot(10);

/// A synthetic slot: terms, a pool and a book.
#[derive(Debug)]
pub struct CloseWorkload {
    /// Terms of the rollups.
    pub terms: RollupTerms,
    /// The book, sorted by id.
    pub bids: Vec<StoredBid>,
    /// Every builder's available collateral.
    pub available: HashMap<PublicKeyBytes, Amount>,
    /// The pending pool (for fallback blocks).
    pub pending: Vec<(TxId, TxMeta)>,
}

impl CloseWorkload {
    /// The close input for `rule`.
    #[must_use]
    pub fn input<'a>(&'a self, rule: PaymentRule, refs: &'a [&'a StoredBid]) -> CloseInput<'a> {
        CloseInput {
            chain_id: CHAIN,
            slot: SLOT,
            rule,
            node_budget: 2_000_000,
            terms: &self.terms,
            bids: refs,
            available: &self.available,
            pending: &self.pending,
        }
    }
}

fn tx_id(rollup: u32, k: u32) -> TxId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&rollup.to_be_bytes());
    b[4..8].copy_from_slice(&k.to_be_bytes());
    TxId(sha3_256(&b))
}

/// Rollup terms: reserves between 1,000 and 5,000, a standard 80/15/5 policy.
#[must_use]
pub fn terms(rollups: u32, rng: &mut ChaCha20Rng) -> RollupTerms {
    (0..rollups)
        .map(|r| {
            let config = RollupConfig {
                reserve: Amount(rng.gen_range(1_000..5_000)),
                gas_limit: 30_000_000,
                policy: RevenuePolicy::standard(8_000, 1_500, 500, PublicKeyBytes([r as u8; 32]))
                    .expect("a whole policy"),
                active: true,
            };
            (RollupId(r), config)
        })
        .collect()
}

/// A pool of `per_rollup` pending ciphertexts per rollup, 100k gas each.
#[must_use]
pub fn pool(rollups: u32, per_rollup: u32, rng: &mut ChaCha20Rng) -> HashMap<TxId, TxMeta> {
    let mut pool = HashMap::new();
    for r in 0..rollups {
        for k in 0..per_rollup {
            pool.insert(
                tx_id(r, k),
                TxMeta {
                    chain_id: ChainId(1),
                    eon: Eon(1),
                    fee_payer: PublicKeyBytes([0; 32]),
                    rollup: RollupId(r),
                    gas_limit: 100_000,
                    max_fee: Amount(rng.gen_range(1..1_000)),
                    expiry_slot: Slot(SLOT.0 + 100),
                    bundle: None,
                },
            );
        }
    }
    pool
}

/// A rollup set of realistic shape: 55 % one rollup, 25 % two, 12 % three, 6 % four to six,
/// 2 % seven to all; popular rollups (low ids) are named more often.
fn rollup_set(rollups: u32, rng: &mut ChaCha20Rng) -> Vec<u32> {
    let x: f64 = rng.gen();
    let size = if x < 0.55 {
        1
    } else if x < 0.80 {
        2
    } else if x < 0.92 {
        3
    } else if x < 0.98 {
        rng.gen_range(4..=6)
    } else {
        rng.gen_range(7..=rollups)
    };
    let size = size.min(rollups);
    let mut set = BTreeSet::new();
    while set.len() < size as usize {
        // Skewed towards low ids: min of two uniform draws.
        let a = rng.gen_range(0..rollups);
        let b = rng.gen_range(0..rollups);
        set.insert(a.min(b));
    }
    set.into_iter().collect()
}

/// `bids` unsigned bids from `builders` builders over `rollups` rollups, valued around each
/// rollup's base value with noise and a small synergy for larger sets. With `unique`, no two
/// bids share (builder, rollup set); otherwise later ones are replacements.
#[must_use]
pub fn bids(
    rollups: u32,
    bids: usize,
    builders: &[PublicKeyBytes],
    terms: &RollupTerms,
    per_rollup: u32,
    unique: bool,
    rng: &mut ChaCha20Rng,
) -> Vec<Bid> {
    let base: Vec<u128> = (0..rollups).map(|r| 3_000 + u128::from(rollups - r) * 700).collect();
    let mut seen: HashMap<(PublicKeyBytes, Vec<u32>), u64> = HashMap::new();
    let mut out = Vec::with_capacity(bids);
    for i in 0..bids {
        let builder = builders[i % builders.len()];
        let mut set = rollup_set(rollups, rng);
        while unique && seen.contains_key(&(builder, set.clone())) {
            set = rollup_set(rollups, rng);
        }
        let reserve: u128 = set.iter().map(|r| terms[&RollupId(*r)].reserve.0).sum();
        let value: u128 =
            set.iter().map(|r| base[*r as usize] * rng.gen_range(60..140) / 100).sum();
        let synergy = (100 + 3 * (set.len() as u128 - 1)).min(120);
        let amount = (value * synergy / 100).max(reserve);
        let sequence = seen.entry((builder, set.clone())).or_insert(0);
        *sequence += 1;
        let blocks = set
            .iter()
            .map(|&r| {
                let n = rng.gen_range(5..20u32);
                let start = rng.gen_range(0..per_rollup - n);
                RollupBlock {
                    rollup: RollupId(r),
                    ciphertexts: (start..start + n).map(|k| tx_id(r, k)).collect(),
                    plaintext: Vec::new(),
                }
            })
            .collect();
        out.push(Bid {
            chain_id: CHAIN,
            slot: SLOT,
            builder,
            sequence: *sequence,
            amount: Amount(amount),
            blocks,
        });
    }
    out
}

/// The close workload: `rollups` rollups, `bids` bids from 400 builders, seed `seed`.
#[must_use]
pub fn close_workload(rollups: u32, bid_count: usize, seed: u64) -> CloseWorkload {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let terms = terms(rollups, &mut rng);
    let per_rollup = 200;
    let pool = pool(rollups, per_rollup, &mut rng);
    let builders: Vec<PublicKeyBytes> =
        (0..400u32).map(|b| PublicKeyBytes(sha3_256(&b.to_be_bytes()))).collect();
    let raw = bids(rollups, bid_count, &builders, &terms, per_rollup, true, &mut rng);
    // Keep the last bid per (builder, set), as the book would.
    let mut book: BTreeMap<(PublicKeyBytes, Vec<RollupId>), StoredBid> = BTreeMap::new();
    for bid in raw {
        let reserve = Amount(bid.rollups().map(|r| terms[&r].reserve.0).sum());
        let id = BidId(sha3_256(&bid.signing_bytes()));
        let key = (bid.builder, bid.rollups().collect());
        book.insert(
            key,
            StoredBid {
                id,
                signed: SignedBid { message: bid, signature: SignatureBytes([0; 64]) },
                reserve,
            },
        );
    }
    let mut bids: Vec<StoredBid> = book.into_values().collect();
    bids.sort_by_key(|b| b.id);
    let available = builders.iter().map(|b| (*b, Amount(u128::from(u64::MAX)))).collect();
    let mut pending: Vec<(TxId, TxMeta)> = pool.into_iter().collect();
    pending.sort_by_key(|p| p.0);
    CloseWorkload { terms, bids, available, pending }
}

/// The textbook subset DP: for every mask, every submask containing its lowest rollup.
/// One thread, no sparsity. Returns the optimal value.
#[must_use]
pub fn textbook_dp(n: usize, candidates: &[Candidate], excluded: Option<u32>) -> u128 {
    let size = 1usize << n;
    let mut best = vec![0u128; size];
    for c in candidates {
        if Some(c.bidder) != excluded {
            let m = c.mask as usize;
            best[m] = best[m].max(c.weight);
        }
    }
    let mut f = vec![0u128; size];
    for mask in 1..size {
        let low = mask & mask.wrapping_neg();
        let rest = mask ^ low;
        let mut v = f[rest];
        let mut sub = rest;
        loop {
            let m = sub | low;
            if best[m] > 0 {
                v = v.max(best[m] + f[mask ^ m]);
            }
            if sub == 0 {
                break;
            }
            sub = (sub - 1) & rest;
        }
        f[mask] = v;
    }
    f[size - 1]
}

fn candidates_of(
    w: &CloseWorkload,
    rule: PaymentRule,
) -> (usize, Vec<Candidate>, Vec<PublicKeyBytes>) {
    let in_play: Vec<RollupId> = veil_auction::payment::rollups_in_play(&w.bids);
    let builders: Vec<PublicKeyBytes> = w
        .bids
        .iter()
        .map(|b| b.signed.message.builder)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let cands = w
        .bids
        .iter()
        .map(|b| {
            let mask = b
                .signed
                .message
                .rollups()
                .fold(0u64, |m, r| m | 1 << in_play.binary_search(&r).unwrap_or(0));
            let primary = match rule {
                PaymentRule::FirstPrice => b.signed.message.amount.0,
                PaymentRule::Vcg => b.signed.message.amount.0 - b.reserve.0,
            };
            Candidate {
                mask,
                weight: primary * 128 + u128::from(mask.count_ones()),
                bidder: builders.binary_search(&b.signed.message.builder).unwrap_or(0) as u32,
            }
        })
        .collect();
    (in_play.len(), cands, builders)
}

fn median_ms(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Checks the solver against brute force on small random books; returns instances checked.
fn check_against_brute_force() -> anyhow::Result<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut checked = 0;
    for _ in 0..200 {
        let n = rng.gen_range(1..=8usize);
        let k = rng.gen_range(1..=14usize);
        let cands: Vec<Candidate> = (0..k)
            .map(|_| Candidate {
                mask: rng.gen_range(1..(1u64 << n)),
                weight: rng.gen_range(1..1_000),
                bidder: rng.gen_range(0..4),
            })
            .collect();
        let got = Solver::new(n, &cands, u64::MAX).solve().value;
        anyhow::ensure!(got == brute_force(&cands, None), "solver disagrees with brute force");
        anyhow::ensure!(got == textbook_dp(n, &cands, None), "textbook DP disagrees");
        checked += 1;
    }
    Ok(checked)
}

fn close_case(
    reporter: &mut Reporter,
    w: &CloseWorkload,
    rule: PaymentRule,
    iterations: usize,
) -> anyhow::Result<()> {
    let refs: Vec<&StoredBid> = w.bids.iter().collect();
    let input = w.input(rule, &refs);
    let (outcome, stats) = close(&input)?;
    anyhow::ensure!(outcome.total_payouts() == outcome.total_payments(), "payouts != payments");
    let mut ours = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let (o, _) = close(&input)?;
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(o.hash() == outcome.hash(), "close is not deterministic");
    }
    let (n, cands, builders) = candidates_of(w, rule);
    let winners: Vec<u32> = outcome
        .winners
        .iter()
        .map(|wi| builders.binary_search(&wi.builder).unwrap_or(0) as u32)
        .collect();
    let mut base = Vec::new();
    for _ in 0..iterations.div_ceil(3).max(1) {
        let t = Instant::now();
        let v = textbook_dp(n, &cands, None);
        if rule == PaymentRule::Vcg {
            for wi in &winners {
                std::hint::black_box(textbook_dp(n, &cands, Some(*wi)));
            }
        }
        base.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(v / 128 == outcome.welfare.0, "textbook DP disagrees with the solver");
    }
    let (case, goal, baseline_name) = match rule {
        PaymentRule::FirstPrice => ("auction_close_16x10k", 20.0, "textbook subset DP, 1 thread"),
        PaymentRule::Vcg => {
            ("auction_close_vcg_16x10k", 100.0, "textbook subset DP per counterfactual, 1 thread")
        }
    };
    reporter.note(&format!(
        "{case}: {} bids, {} rollups in play, {} winners, {} solves, exact {}",
        stats.bids, stats.rollups_in_play, stats.winners, stats.solves, stats.exact
    ));
    reporter.record(Figure {
        suite: SUITE,
        case: case.into(),
        unit: "ms",
        ours: median_ms(&mut ours),
        baseline: Some(median_ms(&mut base)),
        baseline_name: baseline_name.into(),
        better: Better::Lower,
        goal: Some(Goal::at_most(goal)),
        unmet: None,
    });
    Ok(())
}

/// An auction with 16 rollups, funded builders and slot [`SLOT`] open, plus signed bids.
fn intake_setup(
    bid_count: usize,
    seed: u64,
) -> anyhow::Result<(Auction, HashMap<TxId, TxMeta>, Vec<SignedBid>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let rollups = 16;
    let terms = terms(rollups, &mut rng);
    let per_rollup = 400;
    let pool = pool(rollups, per_rollup, &mut rng);
    let mut auction = Auction::new(AuctionConfig { chain_id: CHAIN, ..AuctionConfig::default() });
    for (r, config) in &terms {
        let admin = SigningKey::from_bytes(&[200; 32]);
        let update = RollupUpdate {
            chain_id: CHAIN,
            rollup: *r,
            nonce: 1,
            effective: Slot(1),
            change: RollupChange::Register { admin: public_key(&admin), config: config.clone() },
        };
        auction.apply_rollup_update(&update.sign(&admin))?;
    }
    let keys: Vec<SigningKey> = (0..(bid_count / 40).max(1))
        .map(|i| SigningKey::from_bytes(&sha3_256(&(i as u64).to_be_bytes())))
        .collect();
    let builders: Vec<PublicKeyBytes> = keys.iter().map(public_key).collect();
    for b in &builders {
        auction.deposit(*b, Amount(u128::from(u64::MAX)))?;
    }
    auction.open_slot(SLOT, u64::MAX)?;
    let key_of: HashMap<PublicKeyBytes, &SigningKey> =
        builders.iter().copied().zip(&keys).collect();
    let mut raw = bids(rollups, bid_count, &builders, &terms, per_rollup, false, &mut rng);
    raw.shuffle(&mut rng);
    let signed = raw
        .into_iter()
        .map(|b| {
            let k = key_of[&b.builder];
            b.sign(k)
        })
        .collect();
    Ok((auction, pool, signed))
}

fn intake_case(reporter: &mut Reporter, quick: bool) -> anyhow::Result<()> {
    let count = if quick { 4_000 } else { 20_000 };
    let (mut auction, pool, signed) = intake_setup(count, 11)?;
    let (mut baseline, _, _) = intake_setup(count, 11)?;
    let signed_again = signed.clone();

    let t = Instant::now();
    let mut accepted = 0usize;
    for chunk in signed.chunks(512) {
        accepted +=
            auction.submit_bids(chunk.to_vec(), &pool, 0).iter().filter(|r| r.is_ok()).count();
    }
    let ours = count as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut accepted_baseline = 0usize;
    for bid in signed_again {
        accepted_baseline += usize::from(baseline.submit_bid(bid, &pool, 0).is_ok());
    }
    let base = count as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(accepted == accepted_baseline, "batched and one-by-one intake disagree");
    reporter.note(&format!(
        "bid_intake: {count} bids, {accepted} accepted (others are stale replacements), rejections {{{}}}",
        auction
            .stats()
            .bids_rejected
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    reporter.record(Figure {
        suite: SUITE,
        case: "bid_intake".into(),
        unit: "bids/s",
        ours,
        baseline: Some(base),
        baseline_name: "same checks, one-by-one signature verification".into(),
        better: Better::Higher,
        goal: Some(Goal::at_least(20_000.0)),
        unmet: None,
    });
    Ok(())
}

/// Runs the auction suite.
pub fn run(quick: bool, reporter: &mut Reporter) -> anyhow::Result<()> {
    let checked = check_against_brute_force()?;
    reporter.note(&format!("auction: solver equals brute force on {checked} small books"));
    let w = close_workload(16, 10_000, 1);
    let iterations = if quick { 3 } else { 15 };
    close_case(reporter, &w, PaymentRule::FirstPrice, iterations)?;
    close_case(reporter, &w, PaymentRule::Vcg, iterations)?;
    intake_case(reporter, quick)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_workload_closes_and_matches_textbook_dp() {
        let w = close_workload(8, 300, 3);
        let refs: Vec<&StoredBid> = w.bids.iter().collect();
        for rule in [PaymentRule::FirstPrice, PaymentRule::Vcg] {
            let (o, _) = close(&w.input(rule, &refs)).unwrap();
            let (n, cands, _) = candidates_of(&w, rule);
            assert_eq!(textbook_dp(n, &cands, None) / 128, o.welfare.0);
            assert_eq!(o.total_payouts(), o.total_payments());
        }
    }

    #[test]
    fn brute_force_check_passes() {
        assert_eq!(check_against_brute_force().unwrap(), 200);
    }
}
