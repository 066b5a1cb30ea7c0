//! Executing a closed slot: each rollup's committed block runs on its pool (through real
//! decryption in the real-crypto run), fees and profits are booked, and the slot's record
//! is written, with the split under each rule.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use veil_auction::Outcome;
use veil_primitives::{Amount, RollupId, Slot, TxId};

use super::builders::{BidKind, BidPlan};
use super::{to_quote, Market};
use crate::amm::{self, Side};
use crate::config::Strategy;
use crate::metrics::SlotRecord;
use crate::split_rules;

/// One rollup's committed block: whose it is (builder index and bid kind; `None` for a
/// fallback block), its ciphertexts in order, and whether an arbitrage leg follows them.
pub(super) struct CommittedBlock {
    pub(super) rollup: u32,
    pub(super) winner: Option<(usize, BidKind)>,
    pub(super) txs: Vec<TxId>,
    pub(super) arb: bool,
}

impl Market {
    /// Applies the committed blocks to the pools, charges fees and books every profit.
    pub(super) fn execute(
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
        let book: Vec<split_rules::BookEntry> =
            plans.iter().map(|p| (self.agent(p.builder).pk, p.rollups.clone(), p.amount)).collect();
        let reserves = self.reserves();
        for w in &outcome.winners {
            let rollups: Vec<u32> =
                w.bids.iter().flat_map(|b| b.signed.message.rollups().map(|r| r.0)).collect();
            let prop = split_rules::proportional(w.payment, &rollups, &book, &reserves)?;
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
        rec.alone = split_rules::standalone_revenue(&real, &reserves, self.spec.rule)
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
                    .find(|p| self.agent(p.builder).pk == w.builder && p.rollups == rollups)
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
                if let Some(meta) = self.mempool.get(id).map(|v| v.meta) {
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
        for (_, spent) in self.mempool.remove_committed(&committed) {
            self.intents.remove(&spent.id);
        }
        for id in &committed {
            self.intents.remove(id);
        }
        rec.pool_prices = self.pools.iter().map(amm::Pool::price).collect();
        Ok(rec)
    }
}
