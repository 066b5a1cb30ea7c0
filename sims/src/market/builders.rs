//! The builders' side of a slot: planning each block a builder bids for, valuing it, the
//! colluder's and the shill's extra bids, and signing.
//!
//! A builder reads only what [`Market::readable`] lets it: every intent in a plaintext
//! mempool, only its own transactions in an encrypted one.

use std::collections::BTreeMap;

use veil_auction::{Bid, PaymentRule, PlaintextTx, RollupBlock, SignedBid};
use veil_mempool::pool::Candidate;
use veil_primitives::{Amount, BundleId, RollupId, Slot, TxId, TxMeta};

use super::{micro, to_quote, Intent, Market, CHAIN, EON, MIN_SANDWICH_PROFIT, TILT_MARGIN};
use crate::amm::{self, Side};
use crate::config::Strategy;

/// One rollup's block in a builder's plan.
#[derive(Debug, Clone, Default)]
pub(super) struct RollupPlan {
    pub(super) rollup: u32,
    pub(super) txs: Vec<TxId>,
    pub(super) arb: bool,
    pub(super) fees: f64,
    pub(super) sandwich: f64,
    pub(super) sandwiches: u32,
    pub(super) arb_value: f64,
    pub(super) arb_base: f64,
}

/// What a bid was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BidKind {
    Normal,
    Tilt,
    Shill,
}

#[derive(Debug, Clone)]
pub(super) struct BidPlan {
    pub(super) builder: usize,
    pub(super) kind: BidKind,
    pub(super) rollups: Vec<u32>,
    pub(super) blocks: Vec<RollupPlan>,
    pub(super) amount: u128,
}

impl Market {
    /// Plans builder `b`'s block for `rollup` within the rollup set `set` (bundle parts are
    /// included only if every part's rollup is in the set). Sandwich legs it needs are pushed
    /// to `new_txs`.
    pub(super) fn plan_rollup(
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

    pub(super) fn pending_bundle_rollups(
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

    pub(super) fn bid_value(&self, blocks: &[RollupPlan]) -> f64 {
        let sc = &self.spec.scenario;
        let gross: f64 = blocks.iter().map(|p| p.fees + p.sandwich + p.arb_value).sum();
        // Arbitrage legs of one atomic bid hedge each other; only the net is hedged outside.
        let net_base: f64 = blocks.iter().map(|p| p.arb_base).sum();
        gross - sc.hedge_cost * net_base.abs() * self.price
    }

    pub(super) fn amount_for(&self, value: f64, rollups: &[u32]) -> Option<u128> {
        let sc = &self.spec.scenario;
        let bid = match self.spec.rule {
            PaymentRule::FirstPrice => value * sc.first_price_shade,
            PaymentRule::Vcg => value,
        };
        let amount = micro(bid);
        (amount >= self.reserve_total(rollups) && amount > 0).then_some(amount)
    }

    pub(super) fn plan_bids(
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
                if let Some(amount) = self.amount_for(value, &set) {
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
    pub(super) fn best_singles(&self, plans: &[BidPlan], skip: Option<usize>) -> Vec<u128> {
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
    pub(super) fn collusion_bids(&mut self, plans: &mut Vec<BidPlan>) {
        let Some((c, q)) = self.colluder else { return };
        let n = self.spec.scenario.rollups;
        let reserves = self.reserves();
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
            let amount = full
                .amount
                .saturating_sub(others[r as usize].max(reserves[r as usize]))
                .saturating_sub(margin);
            if amount < self.reserve_total(&rest) {
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
            (0..n).filter(|x| *x != q).map(|x| others[x as usize].max(reserves[x as usize])).sum();
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
    pub(super) fn shill_bid(&self, plans: &[BidPlan]) -> Option<BidPlan> {
        let s = self.spec.adversaries.shill.as_ref()?;
        let n = self.spec.scenario.rollups as usize;
        let best_full = plans.iter().filter(|p| p.rollups.len() == n).map(|p| p.amount).max()?;
        let reserves = self.reserves();
        let singles = self.best_singles(plans, None);
        let floor: u128 = singles.iter().zip(&reserves).map(|(a, r)| (*a).max(*r)).sum();
        if best_full <= floor {
            return None; // Single-rollup bids win anyway: no bundle share to tilt.
        }
        let gap = (best_full - floor) as f64;
        let q = s.rollup as usize;
        let amount = singles[q].max(reserves[q]) + (gap * s.aggression.clamp(0.0, 0.999)) as u128;
        Some(BidPlan {
            builder: self.builders.len(),
            kind: BidKind::Shill,
            rollups: vec![s.rollup],
            blocks: vec![RollupPlan { rollup: s.rollup, ..RollupPlan::default() }],
            amount,
        })
    }

    pub(super) fn sign(&self, slot: u64, plan: &BidPlan) -> SignedBid {
        let agent = self.agent(plan.builder);
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
}
