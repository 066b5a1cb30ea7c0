//! The simulated market of one run: the reference price, the rollups' pools, the users, the
//! builders, and the real [`veil_mempool::pool::Pool`] and [`veil_auction::Auction`] they go
//! through, stepped one slot at a time on a virtual clock.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha3::{Digest, Sha3_256};
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, Outcome, PaymentRule, PlaintextTx, RevenuePolicy,
    RollupBlock, RollupChange, RollupConfig, RollupUpdate, SignedBid,
};
use veil_mempool::pool::{Candidate, EphemeralKeyDigest, Pool as Mempool, PoolConfig};
use veil_primitives::{
    Amount, BundleId, BundleRef, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId, TxMeta,
};

use crate::amm::{self, Side};
use crate::config::{MempoolMode, RunSpec, Strategy};
use crate::crypto::RealCrypto;
use crate::metrics::{RunMetrics, SlotRecord};
use crate::split_rules;

/// The simulated network's chain id.
pub const CHAIN: ChainId = ChainId(77);
/// The eon every ciphertext is encrypted to.
pub const EON: Eon = Eon(1);
/// Collateral each builder deposits (micro-units): large enough never to bind.
const COLLATERAL: u128 = 1 << 90;
/// Smallest sandwich profit (quote units) a sandwicher bothers with.
const MIN_SANDWICH_PROFIT: f64 = 0.01;
/// Share of a colluder's bundle amount kept as a margin so that its tilt bids do not win.
const TILT_MARGIN: f64 = 0.02;

/// Quote units to the auction's integer micro-units (floor; negative values are zero).
#[must_use]
pub fn micro(quote: f64) -> u128 {
    if quote.is_finite() && quote > 0.0 {
        (quote * 1e6).floor() as u128
    } else {
        0
    }
}

/// The auction's micro-units back to quote units.
#[must_use]
pub fn to_quote(a: Amount) -> f64 {
    a.0 as f64 / 1e6
}

/// Who sent a transaction and what it does: the plaintext the simulator keeps beside each
/// ciphertext id. Builders may read it only in plaintext mode (see [`Market::readable`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intent {
    /// The rollup whose pool it trades on.
    pub rollup: u32,
    /// Direction.
    pub side: Side,
    /// Input amount (quote for [`Side::BuyBase`], base for [`Side::SellBase`]).
    pub amount_in: f64,
    /// The slippage limit: the swap reverts below this output.
    pub min_out: f64,
    /// `None` for a user; `Some(b)` for a swap of builder `b` (a sandwich leg).
    pub searcher: Option<usize>,
    /// For a front-run: the victim it is placed before.
    pub victim: Option<TxId>,
}

impl Intent {
    /// The payload bytes encrypted in the real-crypto run (exact: f64 bits).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + 4 + 16);
        v.push(match self.side {
            Side::BuyBase => 0,
            Side::SellBase => 1,
        });
        v.extend_from_slice(&self.rollup.to_be_bytes());
        v.extend_from_slice(&self.amount_in.to_bits().to_be_bytes());
        v.extend_from_slice(&self.min_out.to_bits().to_be_bytes());
        v
    }

    /// The trade part of a decrypted payload: `(rollup, side, amount_in, min_out)`.
    #[must_use]
    pub fn parse_trade(bytes: &[u8]) -> Option<(u32, Side, f64, f64)> {
        if bytes.len() != 21 {
            return None;
        }
        let side = match bytes[0] {
            0 => Side::BuyBase,
            1 => Side::SellBase,
            _ => return None,
        };
        let rollup = u32::from_be_bytes(bytes[1..5].try_into().ok()?);
        let a = f64::from_bits(u64::from_be_bytes(bytes[5..13].try_into().ok()?));
        let m = f64::from_bits(u64::from_be_bytes(bytes[13..21].try_into().ok()?));
        Some((rollup, side, a, m))
    }
}

/// One rollup's block in a builder's plan.
#[derive(Debug, Clone, Default)]
struct RollupPlan {
    rollup: u32,
    txs: Vec<TxId>,
    arb: bool,
    fees: f64,
    sandwich: f64,
    sandwiches: u32,
    arb_value: f64,
    arb_base: f64,
}

/// What a bid was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BidKind {
    Normal,
    Tilt,
    Shill,
}

#[derive(Debug, Clone)]
struct BidPlan {
    builder: usize,
    kind: BidKind,
    rollups: Vec<u32>,
    blocks: Vec<RollupPlan>,
    amount: u128,
}

/// One rollup's committed block: whose it is (builder index and bid kind; `None` for a
/// fallback block), its ciphertexts in order, and whether an arbitrage leg follows them.
struct CommittedBlock {
    rollup: u32,
    winner: Option<(usize, BidKind)>,
    txs: Vec<TxId>,
    arb: bool,
}

/// A builder agent.
#[derive(Debug)]
struct Builder {
    name: String,
    strategy: Strategy,
    key: SigningKey,
    pk: PublicKeyBytes,
}

/// One run's whole state.
pub struct Market {
    spec: RunSpec,
    rng: ChaCha8Rng,
    price: f64,
    pools: Vec<amm::Pool>,
    mempool: Mempool,
    auction: Auction,
    intents: BTreeMap<TxId, Intent>,
    builders: Vec<Builder>,
    /// The shill's key (index `builders.len()` in plans).
    shill: Option<Builder>,
    colluder: Option<(usize, u32)>,
    tx_counter: u64,
    crypto: Option<RealCrypto>,
    /// Every slot's record.
    pub records: Vec<SlotRecord>,
    /// Run totals.
    pub metrics: RunMetrics,
    /// Hashes of every outcome, in slot order.
    pub outcome_hashes: Vec<[u8; 32]>,
}

fn derive_key(seed: u64, tag: &str, index: u64) -> SigningKey {
    let mut h = Sha3_256::new();
    h.update(b"veil-sims/key/");
    h.update(tag.as_bytes());
    h.update(seed.to_be_bytes());
    h.update(index.to_be_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; u1 in (0, 1].
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    // Knuth's method; lambda is small (a few arrivals per slot).
    let l = (-lambda).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.gen::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

impl Market {
    /// A market in its initial state for `spec` (fast path: bodies are placeholders).
    ///
    /// # Errors
    /// If the scenario is inconsistent (no rollups, unknown colluding builder, ...).
    pub fn new(spec: RunSpec) -> anyhow::Result<Market> {
        Market::with_crypto(spec, None)
    }

    /// A market whose transactions are really encrypted to `crypto`'s committee and whose
    /// committed blocks are really decrypted before they execute.
    ///
    /// # Errors
    /// As [`Market::new`].
    pub fn with_crypto(spec: RunSpec, crypto: Option<RealCrypto>) -> anyhow::Result<Market> {
        let sc = &spec.scenario;
        if sc.rollups == 0 || sc.rollups > 16 {
            bail!("rollups must be 1..=16, got {}", sc.rollups);
        }
        if sc.builders.is_empty() {
            bail!("a market needs builders");
        }
        let mut auction = Auction::new(AuctionConfig {
            chain_id: CHAIN,
            payment_rule: spec.rule,
            ..AuctionConfig::default()
        });
        let admin = derive_key(sc.seed, "rollup-admin", 0);
        for r in 0..sc.rollups {
            let account = public_key(&derive_key(sc.seed, "rollup-treasury", u64::from(r)));
            let config = RollupConfig {
                reserve: Amount(micro(sc.reserve)),
                gas_limit: sc.gas_limit,
                policy: RevenuePolicy::standard(8_000, 1_500, 500, account)
                    .map_err(|e| anyhow!("{e}"))?,
                active: true,
            };
            let update = RollupUpdate {
                chain_id: CHAIN,
                rollup: RollupId(r),
                nonce: 1,
                effective: Slot(1),
                change: RollupChange::Register { admin: public_key(&admin), config },
            };
            auction.apply_rollup_update(&update.sign(&admin)).map_err(|e| anyhow!("{e}"))?;
        }
        let mut builders = Vec::new();
        for (i, b) in sc.builders.iter().enumerate() {
            let key = derive_key(sc.seed, "builder", i as u64);
            let pk = public_key(&key);
            auction.deposit(pk, Amount(COLLATERAL)).map_err(|e| anyhow!("{e}"))?;
            builders.push(Builder { name: b.name.clone(), strategy: b.strategy, key, pk });
        }
        let shill = match &spec.adversaries.shill {
            None => None,
            Some(s) => {
                if s.rollup >= sc.rollups {
                    bail!("shill rollup {} does not exist", s.rollup);
                }
                let key = derive_key(sc.seed, "shill", 0);
                let pk = public_key(&key);
                auction.deposit(pk, Amount(COLLATERAL)).map_err(|e| anyhow!("{e}"))?;
                Some(Builder { name: "shill".into(), strategy: Strategy::Honest, key, pk })
            }
        };
        let colluder = match &spec.adversaries.collusion {
            None => None,
            Some(c) => {
                let i = builders
                    .iter()
                    .position(|b| b.name == c.builder)
                    .ok_or_else(|| anyhow!("colluding builder {:?} is not a builder", c.builder))?;
                if c.rollup >= sc.rollups {
                    bail!("colluding rollup {} does not exist", c.rollup);
                }
                Some((i, c.rollup))
            }
        };
        let pools = (0..sc.rollups)
            .map(|_| amm::Pool::at_price(sc.pool_depth_base, sc.initial_price, sc.pool_fee))
            .collect();
        let names: Vec<String> = builders.iter().map(|b| b.name.clone()).collect();
        Ok(Market {
            rng: ChaCha8Rng::seed_from_u64(sc.seed),
            price: sc.initial_price,
            pools,
            mempool: Mempool::new(PoolConfig::new(CHAIN), Slot(0), &[EON]),
            auction,
            intents: BTreeMap::new(),
            metrics: RunMetrics::new(&spec, &names),
            builders,
            shill,
            colluder,
            tx_counter: 0,
            crypto,
            records: Vec::new(),
            outcome_hashes: Vec::new(),
            spec,
        })
    }

    /// The run's parameters.
    #[must_use]
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The rollups' pools now.
    #[must_use]
    pub fn pools(&self) -> &[amm::Pool] {
        &self.pools
    }

    /// What a builder can read of pending transaction `id`: its intent in plaintext mode, and
    /// in encrypted mode only its own transactions (the rest is public metadata).
    fn readable(&self, id: &TxId, builder: usize) -> Option<&Intent> {
        let intent = self.intents.get(id)?;
        match self.spec.mode {
            MempoolMode::Plaintext => Some(intent),
            MempoolMode::Encrypted => (intent.searcher == Some(builder)).then_some(intent),
        }
    }

    fn next_tx(&mut self, meta: TxMeta, intent: Intent) -> anyhow::Result<Candidate> {
        self.tx_counter += 1;
        let (id, body, eph) = match &mut self.crypto {
            Some(c) => {
                let ct = c.encrypt(&meta, &intent.to_bytes())?;
                let eph = EphemeralKeyDigest(Sha3_256::digest(ct.ephemeral_key()).into());
                let id = ct.id();
                let body = Bytes::from(ct.as_bytes().to_vec());
                c.remember(ct);
                (id, body, eph)
            }
            None => {
                let mut h = Sha3_256::new();
                h.update(b"veil-sims/tx");
                h.update(self.spec.scenario.seed.to_be_bytes());
                h.update(self.tx_counter.to_be_bytes());
                let id = TxId(h.finalize().into());
                let eph = EphemeralKeyDigest(Sha3_256::digest(id.0).into());
                (id, Bytes::copy_from_slice(&id.0), eph)
            }
        };
        self.intents.insert(id, intent);
        Ok(Candidate { id, meta, ephemeral_key: eph, body })
    }

    fn user_meta(&mut self, slot: u64, rollup: u32, fee: f64, bundle: Option<BundleRef>) -> TxMeta {
        let mut payer = [0u8; 32];
        payer[..8].copy_from_slice(&self.tx_counter.to_be_bytes());
        payer[8..16].copy_from_slice(&slot.to_be_bytes());
        TxMeta {
            chain_id: CHAIN,
            eon: EON,
            rollup: RollupId(rollup),
            fee_payer: PublicKeyBytes(payer),
            max_fee: Amount(micro(fee)),
            gas_limit: self.spec.scenario.swap_gas,
            expiry_slot: Slot(slot + 2),
            bundle,
        }
    }

    fn user_swap(&mut self, rollup: u32, side: Side) -> (Intent, f64) {
        let sc = &self.spec.scenario;
        let notional = sc.swap_median_quote * (sc.swap_sigma * normal(&mut self.rng)).exp();
        let slip = sc.slippage_min + (sc.slippage_max - sc.slippage_min) * self.rng.gen::<f64>();
        let fee = sc.fee_max * self.rng.gen::<f64>();
        let amount_in = match side {
            Side::BuyBase => notional,
            Side::SellBase => notional / self.price,
        };
        // Users quote against the published pool state.
        let expected = self.pools[rollup as usize].quote_out(side, amount_in);
        let intent = Intent {
            rollup,
            side,
            amount_in,
            min_out: expected * (1.0 - slip),
            searcher: None,
            victim: None,
        };
        (intent, fee)
    }

    fn arrivals(&mut self, slot: u64) -> anyhow::Result<u32> {
        let sc = self.spec.scenario.clone();
        let mut count = 0;
        for r in 0..sc.rollups {
            let n = poisson(&mut self.rng, sc.swaps_per_rollup);
            for _ in 0..n {
                let side = if self.rng.gen::<bool>() { Side::BuyBase } else { Side::SellBase };
                let bundle = sc.rollups > 1 && self.rng.gen::<f64>() < sc.bundle_probability;
                if bundle {
                    // An atomic move across two rollups: one leg each way.
                    let other = (r + 1 + self.rng.gen_range(0..sc.rollups - 1)) % sc.rollups;
                    let mut id = [0u8; 32];
                    self.rng.fill(&mut id);
                    let mut parts = Vec::new();
                    for (index, (rollup, s)) in
                        [(r, side), (other, side.opposite())].into_iter().enumerate()
                    {
                        let (intent, fee) = self.user_swap(rollup, s);
                        let bref = BundleRef { id: BundleId(id), index: index as u16, count: 2 };
                        let meta = self.user_meta(slot, rollup, fee, Some(bref));
                        parts.push(self.next_tx(meta, intent)?);
                    }
                    match self.mempool.admit_bundle(parts) {
                        Ok(_) => count += 2,
                        Err(e) => self.metrics.admission_rejections.push(e.to_string()),
                    }
                } else {
                    let (intent, fee) = self.user_swap(r, side);
                    let meta = self.user_meta(slot, r, fee, None);
                    let c = self.next_tx(meta, intent)?;
                    match self.mempool.admit_tx(c) {
                        Ok(_) => count += 1,
                        Err(e) => self.metrics.admission_rejections.push(e.to_string()),
                    }
                }
            }
        }
        self.mempool.mark_durable(self.mempool.next_seq());
        Ok(count)
    }

    /// Pending user transactions of `rollup`, highest fee first (the pool's order).
    fn pending_user(&self, rollup: u32) -> Vec<(TxId, TxMeta)> {
        self.mempool
            .best_by_fee(RollupId(rollup))
            .filter(|v| self.intents.get(v.id).is_some_and(|i| i.searcher.is_none()))
            .map(|v| (*v.id, *v.meta))
            .collect()
    }

    /// Plans builder `b`'s block for `rollup` within the rollup set `set` (bundle parts are
    /// included only if every part's rollup is in the set). Sandwich legs it needs are pushed
    /// to `new_txs`.
    fn plan_rollup(
        &mut self,
        slot: u64,
        b: usize,
        rollup: u32,
        set: &[u32],
        pending: &BTreeMap<u32, Vec<(TxId, TxMeta)>>,
        new_txs: &mut Vec<Candidate>,
    ) -> anyhow::Result<RollupPlan> {
        let sc = self.spec.scenario.clone();
        let strategy = self.builders[b].strategy;
        let arbs = matches!(strategy, Strategy::BackRunner | Strategy::CrossArbitrageur);
        let mut gas_left = sc.gas_limit - if arbs { sc.swap_gas } else { 0 };
        let mut plan = RollupPlan { rollup, arb: arbs, ..RollupPlan::default() };
        let mut sim = self.pools[rollup as usize];
        // Whether `sim` tracks the block's state (it cannot once an unreadable swap runs).
        let mut tracked = true;
        for (id, meta) in &pending[&rollup] {
            if let Some(bref) = meta.bundle {
                let parts_in_set =
                    self.pending_bundle_rollups(bref.id, pending).iter().all(|r| set.contains(r));
                if set.len() < 2 || !parts_in_set {
                    continue;
                }
            }
            if meta.gas_limit > gas_left {
                continue;
            }
            let intent = self.readable(id, b).copied();
            if strategy == Strategy::Sandwicher && gas_left >= meta.gas_limit + 2 * sc.swap_gas {
                if let Some(v) = intent {
                    if let Some(sw) = amm::best_sandwich(&sim, v.side, v.amount_in, v.min_out) {
                        let profit = match v.side {
                            Side::BuyBase => sw.profit,
                            Side::SellBase => sw.profit * self.price,
                        };
                        if profit > MIN_SANDWICH_PROFIT {
                            let bought = sim.swap(v.side, sw.front_in);
                            sim.swap(v.side, v.amount_in);
                            sim.swap(v.side.opposite(), bought);
                            let front = Intent {
                                rollup,
                                side: v.side,
                                amount_in: sw.front_in,
                                min_out: 0.0,
                                searcher: Some(b),
                                victim: Some(*id),
                            };
                            let back = Intent {
                                rollup,
                                side: v.side.opposite(),
                                amount_in: bought,
                                min_out: 0.0,
                                searcher: Some(b),
                                victim: None,
                            };
                            let pk = self.builders[b].pk;
                            let leg = |m: &Market| TxMeta {
                                chain_id: CHAIN,
                                eon: EON,
                                rollup: RollupId(rollup),
                                fee_payer: pk,
                                max_fee: Amount::ZERO,
                                gas_limit: m.spec.scenario.swap_gas,
                                expiry_slot: Slot(slot),
                                bundle: None,
                            };
                            let (mf, mk) = (leg(self), leg(self));
                            let f = self.next_tx(mf, front)?;
                            let k = self.next_tx(mk, back)?;
                            plan.txs.extend([f.id, *id, k.id]);
                            new_txs.extend([f, k]);
                            plan.fees += to_quote(meta.max_fee);
                            plan.sandwich += profit;
                            plan.sandwiches += 1;
                            gas_left -= meta.gas_limit + 2 * sc.swap_gas;
                            continue;
                        }
                    }
                }
            }
            plan.txs.push(*id);
            plan.fees += to_quote(meta.max_fee);
            gas_left -= meta.gas_limit;
            match intent {
                Some(v) => {
                    sim.swap_checked(v.side, v.amount_in, v.min_out);
                }
                None => tracked = false,
            }
        }
        if arbs {
            // With the swaps unreadable the estimate starts from the published state.
            let mut est = if tracked { sim } else { self.pools[rollup as usize] };
            let (profit, base) = amm::execute_arbitrage(&mut est, self.price);
            // The leg goes in only if it pays on its own, hedge included.
            if profit - sc.hedge_cost * base.abs() * self.price > 0.0 {
                plan.arb_value = profit;
                plan.arb_base = base;
            } else {
                plan.arb = false;
            }
        }
        Ok(plan)
    }

    fn pending_bundle_rollups(
        &self,
        bundle: BundleId,
        pending: &BTreeMap<u32, Vec<(TxId, TxMeta)>>,
    ) -> Vec<u32> {
        pending
            .iter()
            .filter(|(_, txs)| txs.iter().any(|(_, m)| m.bundle.is_some_and(|x| x.id == bundle)))
            .map(|(r, _)| *r)
            .collect()
    }

    fn bid_value(&self, blocks: &[RollupPlan]) -> f64 {
        let sc = &self.spec.scenario;
        let gross: f64 = blocks.iter().map(|p| p.fees + p.sandwich + p.arb_value).sum();
        // Arbitrage legs of one atomic bid hedge each other; only the net is hedged outside.
        let net_base: f64 = blocks.iter().map(|p| p.arb_base).sum();
        gross - sc.hedge_cost * net_base.abs() * self.price
    }

    fn amount_for(&self, value: f64, rollups: usize) -> Option<u128> {
        let sc = &self.spec.scenario;
        let bid = match self.spec.rule {
            PaymentRule::FirstPrice => value * sc.first_price_shade,
            PaymentRule::Vcg => value,
        };
        let amount = micro(bid);
        (amount >= micro(sc.reserve) * rollups as u128 && amount > 0).then_some(amount)
    }

    fn plan_bids(
        &mut self,
        slot: u64,
        pending: &BTreeMap<u32, Vec<(TxId, TxMeta)>>,
        new_txs: &mut Vec<Candidate>,
    ) -> anyhow::Result<Vec<BidPlan>> {
        let n = self.spec.scenario.rollups;
        let all: Vec<u32> = (0..n).collect();
        let mut plans = Vec::new();
        for b in 0..self.builders.len() {
            let strategy = self.builders[b].strategy;
            let mut sets: Vec<Vec<u32>> = all.iter().map(|r| vec![*r]).collect();
            if n > 1 && strategy != Strategy::BackRunner {
                sets.push(all.clone());
            }
            for set in sets {
                let mut blocks = Vec::new();
                for r in &set {
                    blocks.push(self.plan_rollup(slot, b, *r, &set, pending, new_txs)?);
                }
                let value = self.bid_value(&blocks);
                if let Some(amount) = self.amount_for(value, set.len()) {
                    plans.push(BidPlan {
                        builder: b,
                        kind: BidKind::Normal,
                        rollups: set,
                        blocks,
                        amount,
                    });
                }
            }
        }
        Ok(plans)
    }

    /// Best single-rollup amount on each rollup among normal bids, excluding builder `skip`.
    fn best_singles(&self, plans: &[BidPlan], skip: Option<usize>) -> Vec<u128> {
        let n = self.spec.scenario.rollups as usize;
        let mut best = vec![0u128; n];
        for p in plans.iter().filter(|p| p.rollups.len() == 1 && Some(p.builder) != skip) {
            let r = p.rollups[0] as usize;
            best[r] = best[r].max(p.amount);
        }
        best
    }

    /// The colluder's extra bids: for each other rollup `r` of the full set, a bid on the set
    /// without `r` (it lowers `r`'s marginal contribution in Veil's split), and a higher
    /// single bid on the favoured rollup (the lever of a split by standalone bids). Amounts
    /// stay below what would win, with the sealed book assumed known (an upper bound on the
    /// lever).
    fn collusion_bids(&mut self, plans: &mut Vec<BidPlan>) {
        let Some((c, q)) = self.colluder else { return };
        let n = self.spec.scenario.rollups;
        let reserve = micro(self.spec.scenario.reserve);
        let Some(full) = plans
            .iter()
            .find(|p| p.builder == c && p.rollups.len() == n as usize && n > 1)
            .cloned()
        else {
            return;
        };
        // Best single bids of everyone, the colluder included: a tilt bid plus any single
        // bid on the rollup it leaves out stays below the bundle.
        let others = self.best_singles(plans, None);
        let margin = (full.amount as f64 * TILT_MARGIN) as u128;
        for r in (0..n).filter(|r| *r != q) {
            let rest: Vec<u32> = (0..n).filter(|x| *x != r).collect();
            let amount =
                full.amount.saturating_sub(others[r as usize].max(reserve)).saturating_sub(margin);
            if amount < reserve * rest.len() as u128 {
                continue;
            }
            // Its blocks for the smaller set: the single-rollup blocks (no bundle parts).
            let blocks: Vec<RollupPlan> = rest
                .iter()
                .filter_map(|x| {
                    plans
                        .iter()
                        .find(|p| p.builder == c && p.rollups == [*x])
                        .map(|p| p.blocks[0].clone())
                })
                .collect();
            if blocks.len() == rest.len() {
                plans.push(BidPlan {
                    builder: c,
                    kind: BidKind::Tilt,
                    rollups: rest,
                    blocks,
                    amount,
                });
            }
        }
        let rest_sum: u128 =
            (0..n).filter(|x| *x != q).map(|x| others[x as usize].max(reserve)).sum();
        let lever = full.amount.saturating_sub(rest_sum).saturating_sub(margin);
        if let Some(p) = plans.iter_mut().find(|p| p.builder == c && p.rollups == [q]) {
            if lever > p.amount {
                p.amount = lever;
                p.kind = BidKind::Tilt;
            }
        }
    }

    /// The shill's bid on its rollup: above the best honest single bid there, as far into the
    /// gap to the best bundle bid as `aggression` says, so that it loses.
    fn shill_bid(&self, plans: &[BidPlan]) -> Option<BidPlan> {
        let s = self.spec.adversaries.shill.as_ref()?;
        let n = self.spec.scenario.rollups as usize;
        let best_full = plans.iter().filter(|p| p.rollups.len() == n).map(|p| p.amount).max()?;
        let reserve = micro(self.spec.scenario.reserve);
        let singles = self.best_singles(plans, None);
        let floor: u128 = singles.iter().map(|a| (*a).max(reserve)).sum();
        if best_full <= floor {
            return None; // Single-rollup bids win anyway: no bundle share to tilt.
        }
        let gap = (best_full - floor) as f64;
        let q = s.rollup as usize;
        let amount = singles[q].max(reserve) + (gap * s.aggression.clamp(0.0, 0.999)) as u128;
        Some(BidPlan {
            builder: self.builders.len(),
            kind: BidKind::Shill,
            rollups: vec![s.rollup],
            blocks: vec![RollupPlan { rollup: s.rollup, ..RollupPlan::default() }],
            amount,
        })
    }

    fn sign(&self, slot: u64, plan: &BidPlan) -> SignedBid {
        let agent = if plan.builder < self.builders.len() {
            &self.builders[plan.builder]
        } else {
            self.shill.as_ref().expect("shill plans exist only with a shill")
        };
        let swap_gas = self.spec.scenario.swap_gas;
        let bid = Bid {
            chain_id: CHAIN,
            slot: Slot(slot),
            builder: agent.pk,
            sequence: 1,
            amount: Amount(plan.amount),
            blocks: plan
                .blocks
                .iter()
                .map(|p| RollupBlock {
                    rollup: RollupId(p.rollup),
                    ciphertexts: p.txs.clone(),
                    plaintext: if p.arb {
                        vec![PlaintextTx { gas_limit: swap_gas, data: b"arb".to_vec() }]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        };
        bid.sign(&agent.key)
    }

    /// Runs every slot. `progress` is called after each slot.
    ///
    /// # Errors
    /// If the real auction or pool refuses something the simulator considers valid, or the
    /// real decryption disagrees with the intents (a bug in either).
    pub fn run(&mut self, mut progress: impl FnMut()) -> anyhow::Result<()> {
        for s in 1..=self.spec.scenario.slots {
            self.step(s).with_context(|| format!("slot {s}"))?;
            progress();
        }
        self.metrics.finish(&self.records);
        Ok(())
    }

    /// One slot: price move, expiry, arrivals, bids, close, settle, execute.
    ///
    /// # Errors
    /// See [`Market::run`].
    pub fn step(&mut self, s: u64) -> anyhow::Result<()> {
        let sc = self.spec.scenario.clone();
        let slot_start = s * sc.slot_ms;
        let deadline = slot_start + sc.slot_ms / 2;
        self.price *= (sc.price_volatility * normal(&mut self.rng)).exp();
        for (_, id) in self.mempool.on_slot(Slot(s)) {
            if let Some(i) = self.intents.remove(&id) {
                if i.searcher.is_none() {
                    self.metrics.expired_user_txs += 1;
                }
            }
        }
        let arrivals = self.arrivals(s)?;
        self.auction.open_slot(Slot(s), deadline).map_err(|e| anyhow!("open: {e}"))?;

        let pending: BTreeMap<u32, Vec<(TxId, TxMeta)>> =
            (0..sc.rollups).map(|r| (r, self.pending_user(r))).collect();
        let mut new_txs = Vec::new();
        let mut plans = self.plan_bids(s, &pending, &mut new_txs)?;
        self.collusion_bids(&mut plans);
        if let Some(p) = self.shill_bid(&plans) {
            plans.push(p);
        }
        for c in new_txs {
            self.mempool.admit_tx(c).map_err(|e| anyhow!("searcher leg refused: {e}"))?;
        }
        self.mempool.mark_durable(self.mempool.next_seq());
        let signed: Vec<SignedBid> = plans.iter().map(|p| self.sign(s, p)).collect();
        let results = self.auction.submit_bids(signed, &self.mempool, slot_start + sc.slot_ms / 4);
        for r in &results {
            if let Err(e) = r {
                self.metrics.bid_rejections.push(e.to_string());
            }
        }
        let fallback_pending: Vec<(TxId, TxMeta)> =
            pending.values().flat_map(|v| v.iter().copied()).collect();
        let outcome = self
            .auction
            .close_slot(Slot(s), deadline, &fallback_pending)
            .map_err(|e| anyhow!("close: {e}"))?;
        self.auction.settle(Slot(s)).map_err(|e| anyhow!("settle: {e}"))?;
        self.outcome_hashes.push(outcome.hash());
        let record = self.execute(s, &outcome, &plans, arrivals)?;
        self.records.push(record);
        Ok(())
    }

    /// Applies the committed blocks to the pools, charges fees and books every profit.
    fn execute(
        &mut self,
        s: u64,
        outcome: &Outcome,
        plans: &[BidPlan],
        arrivals: u32,
    ) -> anyhow::Result<SlotRecord> {
        let sc = self.spec.scenario.clone();
        let n = sc.rollups as usize;
        let mut rec = SlotRecord::new(s, self.price, n);
        rec.builder_pnl = vec![0.0; self.builders.len()];
        rec.arrivals = arrivals;
        rec.payments = to_quote(outcome.total_payments());
        rec.payouts = to_quote(outcome.total_payouts());
        rec.welfare = to_quote(outcome.welfare);
        rec.conserved = outcome.total_payments() == outcome.total_payouts() && {
            let (debits, credits) =
                outcome.ledger.iter().fold((0u128, 0u128), |(d, c), e| match e {
                    veil_auction::LedgerEntry::Debit { amount, .. } => (d + amount.0, c),
                    veil_auction::LedgerEntry::Payout { amount, .. } => (d, c + amount.0),
                    _ => (d, c),
                });
            debits == credits
        };
        // The split under each rule.
        for p in &outcome.payouts {
            rec.revenue_veil[p.rollup.0 as usize] += to_quote(p.share);
        }
        let book: Vec<split_rules::BookEntry> = plans
            .iter()
            .map(|p| {
                let pk = if p.builder < self.builders.len() {
                    self.builders[p.builder].pk
                } else {
                    self.shill.as_ref().map_or(PublicKeyBytes([0; 32]), |x| x.pk)
                };
                (pk, p.rollups.clone(), p.amount)
            })
            .collect();
        let reserve = micro(sc.reserve);
        for w in &outcome.winners {
            let rollups: Vec<u32> =
                w.bids.iter().flat_map(|b| b.signed.message.rollups().map(|r| r.0)).collect();
            let prop = split_rules::proportional(w.payment, &rollups, &book, reserve)?;
            let equal = split_rules::equal(w.payment, &rollups)?;
            for (i, r) in rollups.iter().enumerate() {
                rec.revenue_prop[*r as usize] += to_quote(prop[i]);
                rec.revenue_equal[*r as usize] += to_quote(equal[i]);
            }
        }
        // What each rollup would earn alone: from real demand only (the shill is not).
        let real: Vec<split_rules::BookEntry> = book
            .iter()
            .zip(plans)
            .filter(|(_, p)| p.kind != BidKind::Shill)
            .map(|(e, _)| e.clone())
            .collect();
        rec.alone = split_rules::standalone_revenue(&real, n, reserve, self.spec.rule)
            .into_iter()
            .map(|a| to_quote(Amount(a)))
            .collect();

        // Blocks in rollup order: the winner's, or the fallback.
        let mut committed: Vec<TxId> = Vec::new();
        let mut blocks: Vec<CommittedBlock> = Vec::new();
        for r in 0..sc.rollups {
            if let Some((w, bid)) = outcome.winning_bid_for(RollupId(r)) {
                let rollups: Vec<u32> = bid.signed.message.rollups().map(|x| x.0).collect();
                let plan = plans
                    .iter()
                    .find(|p| {
                        let pk = if p.builder < self.builders.len() {
                            self.builders[p.builder].pk
                        } else {
                            self.shill.as_ref().map_or(PublicKeyBytes([0; 32]), |x| x.pk)
                        };
                        pk == w.builder && p.rollups == rollups
                    })
                    .ok_or_else(|| anyhow!("winning bid has no plan"))?;
                let block =
                    bid.signed.message.blocks.iter().find(|b| b.rollup.0 == r).expect("covers r");
                blocks.push(CommittedBlock {
                    rollup: r,
                    winner: Some((plan.builder, plan.kind)),
                    txs: block.ciphertexts.clone(),
                    arb: !block.plaintext.is_empty(),
                });
                rec.winners[r as usize] = if plan.builder < self.builders.len() {
                    self.builders[plan.builder].name.clone()
                } else {
                    "shill".into()
                };
                if plan.kind == BidKind::Shill {
                    rec.shill_wins += 1;
                }
            } else if let Some(f) = outcome.fallback.iter().find(|f| f.rollup.0 == r) {
                blocks.push(CommittedBlock {
                    rollup: r,
                    winner: None,
                    txs: f.ciphertexts.clone(),
                    arb: false,
                });
                rec.winners[r as usize] = "fallback".into();
            }
        }
        let decrypted = match &mut self.crypto {
            Some(c) => {
                let ids: Vec<TxId> = blocks.iter().flat_map(|b| b.txs.iter().copied()).collect();
                Some(c.decrypt(Slot(s), &ids)?)
            }
            None => None,
        };
        // Each winning bid's arbitrage legs, netted for the hedge: (builder, bid rollups) -> Δbase.
        let mut arb_base: BTreeMap<(usize, u32), f64> = BTreeMap::new();
        let mut pre_front: BTreeMap<TxId, amm::Pool> = BTreeMap::new();
        for CommittedBlock { rollup: r, winner, txs, arb } in &blocks {
            let pool = &mut self.pools[*r as usize];
            for id in txs {
                let intent =
                    *self.intents.get(id).ok_or_else(|| anyhow!("committed unknown tx {id}"))?;
                if let Some(d) = &decrypted {
                    let got = d.get(id).ok_or_else(|| anyhow!("tx {id} not decrypted"))?;
                    let expected = (intent.rollup, intent.side, intent.amount_in, intent.min_out);
                    if *got != expected {
                        bail!("decrypted payload of {id} differs from the intent");
                    }
                }
                committed.push(*id);
                if let Some(meta) = self.mempool.get(id).map(|v| *v.meta) {
                    let fee = to_quote(meta.max_fee);
                    match winner {
                        Some((b, _)) if *b < self.builders.len() => rec.builder_pnl[*b] += fee,
                        Some(_) => {}
                        None => rec.fallback_fees[*r as usize] += fee,
                    }
                    if intent.searcher.is_none() {
                        rec.included_user += 1;
                        if meta.bundle.is_some() {
                            rec.bundle_parts += 1;
                        }
                    }
                }
                match intent.searcher {
                    Some(b) => {
                        if let Some(v) = intent.victim {
                            pre_front.insert(v, *pool);
                            pool.swap(intent.side, intent.amount_in);
                            rec.sandwiches += 1;
                            // Cost of the front leg, in quote.
                            let cost = match intent.side {
                                Side::BuyBase => intent.amount_in,
                                Side::SellBase => intent.amount_in * self.price,
                            };
                            rec.sandwich_profit -= cost;
                            rec.builder_pnl[b] -= cost;
                        } else {
                            let got = pool.swap(intent.side, intent.amount_in);
                            // Back leg: proceeds in the front leg's input token.
                            let value = match intent.side {
                                Side::SellBase => got,
                                Side::BuyBase => got * self.price,
                            };
                            rec.sandwich_profit += value;
                            rec.builder_pnl[b] += value;
                        }
                    }
                    None => {
                        let alone =
                            pre_front.get(id).map(|p| p.quote_out(intent.side, intent.amount_in));
                        match pool.swap_checked(intent.side, intent.amount_in, intent.min_out) {
                            Some(out) => {
                                if let Some(fair) = alone {
                                    let loss = (fair - out).max(0.0);
                                    rec.user_loss += match intent.side {
                                        Side::BuyBase => loss * self.price,
                                        Side::SellBase => loss,
                                    };
                                }
                            }
                            None => rec.failed_swaps += 1,
                        }
                    }
                }
            }
            if *arb {
                if let Some((b, _)) = winner {
                    let (profit, base) = amm::execute_arbitrage(pool, self.price);
                    rec.arb_profit += profit;
                    if *b < self.builders.len() {
                        rec.builder_pnl[*b] += profit;
                        match self.builders[*b].strategy {
                            Strategy::CrossArbitrageur => rec.cross_arb_profit += profit,
                            _ => rec.backrun_profit += profit,
                        }
                    }
                    // Key by builder and the first rollup of its winning bid: one hedge per bid.
                    let first = outcome
                        .winning_bid_for(RollupId(*r))
                        .and_then(|(_, wb)| wb.signed.message.rollups().next())
                        .map_or(*r, |x| x.0);
                    *arb_base.entry((*b, first)).or_default() += base;
                }
            }
        }
        for ((b, _), base) in arb_base {
            let hedge = sc.hedge_cost * base.abs() * self.price;
            rec.hedge_cost += hedge;
            if b < self.builders.len() {
                rec.builder_pnl[b] -= hedge;
            }
        }
        for w in &outcome.winners {
            if let Some(b) = self.builders.iter().position(|x| x.pk == w.builder) {
                rec.builder_pnl[b] -= to_quote(w.payment);
            } else {
                rec.shill_payments += to_quote(w.payment);
            }
        }
        for (_, id) in self.mempool.remove_committed(&committed) {
            self.intents.remove(&id);
        }
        for id in &committed {
            self.intents.remove(id);
        }
        rec.pool_prices = self.pools.iter().map(amm::Pool::price).collect();
        Ok(rec)
    }
}
