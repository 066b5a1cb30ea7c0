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
    public_key, Auction, AuctionConfig, RevenuePolicy, RollupChange, RollupConfig, RollupUpdate,
    SignedBid,
};
use veil_mempool::pool::{Candidate, EphemeralKeyDigest, Pool as Mempool, PoolConfig};
use veil_primitives::{
    Amount, BundleId, BundleRef, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId, TxMeta,
};

use crate::amm::{self, Side};
use crate::config::{MempoolMode, RunSpec, Strategy};
use crate::crypto::RealCrypto;
use crate::metrics::{RunMetrics, SlotRecord};

mod builders;
mod execute;

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
            let policy = sc.policy_of(r);
            let config = RollupConfig {
                reserve: Amount(micro(sc.reserve_of(r))),
                gas_limit: sc.gas_limit,
                policy: RevenuePolicy::standard(policy[0], policy[1], policy[2], account)
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

    /// Each rollup's reserve in micro-units, by index.
    fn reserves(&self) -> Vec<u128> {
        (0..self.spec.scenario.rollups).map(|r| micro(self.spec.scenario.reserve_of(r))).collect()
    }

    /// The reserve total of a rollup set, in micro-units.
    fn reserve_total(&self, set: &[u32]) -> u128 {
        let reserves = self.reserves();
        set.iter().map(|r| reserves[*r as usize]).sum()
    }

    /// Builder `index`, or the shill for the index just past the builders.
    ///
    /// # Panics
    /// If there is no such agent (plans only name agents that exist).
    fn agent(&self, index: usize) -> &Builder {
        match self.builders.get(index) {
            Some(b) => b,
            None => self.shill.as_ref().expect("an index past the builders is the shill"),
        }
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
        // The pool never sees signatures (the ingress checks them); the simulation has none.
        let payer_signature = veil_primitives::SignatureBytes([0; 64]);
        Ok(Candidate { id, meta, ephemeral_key: eph, body, payer_signature })
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
            .map(|v| (*v.id, v.meta))
            .collect()
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
}
