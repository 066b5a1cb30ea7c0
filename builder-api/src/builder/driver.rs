//! The reference builder's driver: a tokio task that follows the mempool stream over HTTP,
//! sets aside what the decided slots committed (dropped once published, taken back if the
//! slot turns out undecryptable), and bids once per slot at a set point of the bidding window
//! through [`BuilderClient`]. All decisions are the sans-IO [`Planner`]'s
//! and [`PendingSet`]'s; this file only moves data and keeps time.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use veil_auction::public_key;
use veil_primitives::{Amount, ErrorCode, PublicKeyBytes, RollupId, Slot, TxId};

use super::build::SlotTerms;
use super::pending::{PendingConfig, PendingSet, PendingStats};
use super::strategy::{PlannedBid, Planner, SlotObservation, StrategyConfig, StrategyKind};
use crate::api::{DataQuery, DeliveryState, MempoolQuery, MempoolTx, SlotOutcome};
use crate::http::{BuilderClient, DataClient, HttpError, MempoolEvent};

/// Transactions read from the stream and not yet taken by the builder, at most.
const STREAM_QUEUE: usize = 4_096;
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A slot whose outcome is still `NOT_FOUND` this many slots later is given up on.
const OUTCOME_PATIENCE: u64 = 4;
/// Mempool pages read at most by one resynchronisation.
const MAX_RESYNC_PAGES: usize = 1_000;

/// How a reference builder runs.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The builder's key (it must hold collateral on the node).
    pub key: SigningKey,
    /// What it builds and how it bids.
    pub strategy: StrategyConfig,
    /// When it bids, in ms after the slot's start (capped to end before the bidding
    /// deadline); `None`: a third into the bidding window.
    pub at_ms: Option<u64>,
    /// The pending set's bounds.
    pub pending: PendingConfig,
    /// The first wait before reconnecting (doubled up to 5 s).
    pub backoff: Duration,
}

impl DriverConfig {
    /// A configuration with the defaults for everything but the key and the strategy.
    #[must_use]
    pub fn new(key: SigningKey, strategy: StrategyConfig) -> DriverConfig {
        DriverConfig {
            key,
            strategy,
            at_ms: None,
            pending: PendingConfig::default(),
            backoff: Duration::from_millis(100),
        }
    }
}

/// What happened to one bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BidResult {
    /// Accepted, with its id.
    Accepted(String),
    /// Refused with a typed code (its stable name).
    Refused(String),
    /// Not answered (transport) or answered with something else.
    Failed(String),
}

/// One bid of a slot, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BidLine {
    /// The rollups named.
    pub rollups: Vec<u32>,
    /// Ciphertexts per rollup, in the order of `rollups`.
    pub txs: Vec<usize>,
    /// The blocks' value (their fees).
    #[serde(serialize_with = "as_string")]
    pub value: Amount,
    /// The amount bid.
    #[serde(serialize_with = "as_string")]
    pub amount: Amount,
    /// The verdict.
    pub result: BidResult,
}

/// One slot as the builder saw it, reported once its outcome is known (or given up on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotLine {
    /// The slot.
    pub slot: u64,
    /// The bids sent (none when nothing was worth a bid).
    pub bids: Vec<BidLine>,
    /// Whether the outcome was read (false: given up after a few slots of `NOT_FOUND`).
    pub decided: bool,
    /// The rollups this builder won.
    pub won: Vec<u32>,
    /// The payments attributed to the rollups it won.
    #[serde(serialize_with = "as_string")]
    pub paid: Amount,
    /// Pending transactions held after the slot's outcome pruned them.
    pub pending: usize,
    /// The shading factor in basis points (the shading strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shading_bps: Option<u16>,
}

fn as_string<S: serde::Serializer>(a: &Amount, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&a.to_string())
}

/// A reference builder's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderStats {
    /// Slots it bid in.
    pub slots_bid: u64,
    /// Bids sent.
    pub bids_sent: u64,
    /// Bids accepted.
    pub bids_accepted: u64,
    /// Refusals by code name.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Bids not answered or answered with something other than a verdict.
    pub bid_failures: u64,
    /// Slots in which it won at least one rollup.
    pub slots_won: u64,
    /// Rollup blocks won.
    pub rollups_won: u64,
    /// Payments attributed to the rollups it won.
    pub paid: u128,
    /// Outcomes given up on.
    pub outcomes_missed: u64,
    /// Attempts to reopen the mempool stream after it broke or ended.
    pub stream_reconnects: u64,
    /// Resynchronisations of the pending set from the mempool pages.
    pub resyncs: u64,
    /// The pending set.
    pub pending: PendingStats,
}

/// A running reference builder ([`ReferenceBuilder::spawn`]).
#[derive(Debug)]
pub struct ReferenceBuilder {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<BuilderStats>>,
    key: PublicKeyBytes,
}

impl ReferenceBuilder {
    /// Starts a builder on the current tokio runtime. It reports each slot on `lines` (if
    /// given; a line that does not fit the channel is dropped, never waited for).
    #[must_use]
    pub fn spawn(
        client: BuilderClient,
        config: DriverConfig,
        lines: Option<mpsc::Sender<SlotLine>>,
    ) -> ReferenceBuilder {
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(Mutex::new(BuilderStats::default()));
        let key = public_key(&config.key);
        let name = config.strategy.kind.name();
        let driver = Driver {
            pending: PendingSet::new(config.pending),
            planner: Planner::new(config.strategy.clone()),
            me: key,
            sequence: 0,
            bids: BTreeMap::new(),
            next_outcome: None,
            first: Slot(0),
            stats: stats.clone(),
            lines,
            client,
            config,
        };
        let task = tokio::spawn(
            driver.run(stop_rx).instrument(tracing::info_span!("builder", strategy = name)),
        );
        ReferenceBuilder { stop, task, stats, key }
    }

    /// The builder's public key.
    #[must_use]
    pub fn key(&self) -> PublicKeyBytes {
        self.key
    }

    /// The counters now.
    #[must_use]
    pub fn stats(&self) -> BuilderStats {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stops the builder (between two steps: a bid in flight is answered first) and returns
    /// its counters.
    pub async fn stop(self) -> BuilderStats {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// What the builder sent in a slot, kept until the slot's outcome is read.
struct SentSlot {
    lines: Vec<BidLine>,
    plans: Vec<PlannedBid>,
}

struct Driver {
    client: BuilderClient,
    config: DriverConfig,
    pending: PendingSet,
    planner: Planner,
    me: PublicKeyBytes,
    sequence: u64,
    bids: BTreeMap<Slot, SentSlot>,
    next_outcome: Option<Slot>,
    /// The first slot bid for: earlier slots are read, not reported.
    first: Slot,
    stats: Arc<Mutex<BuilderStats>>,
    lines: Option<mpsc::Sender<SlotLine>>,
}

/// Sleeps `d` unless `stop` turns true first; whether to go on.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        () = tokio::time::sleep(d) => true,
    }
}

impl Driver {
    fn stats(&self) -> std::sync::MutexGuard<'_, BuilderStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let (tx, mut rx) = mpsc::channel(STREAM_QUEUE);
        let follower = tokio::spawn(
            follow(self.client.clone(), tx, self.stats.clone(), stop.clone(), self.config.backoff)
                .in_current_span(),
        );
        // Sequence numbers only grow, across restarts too: start from the clock.
        self.sequence = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2));
        let mut backoff = self.config.backoff;
        let mut last: Option<Slot> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let schedule = match self.client.schedule().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "schedule unavailable");
                    if !pause(&mut stop, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = self.config.backoff;
            let window = schedule.bid_window_ms.max(1);
            let at = self.config.at_ms.unwrap_or(window / 3).min(window - 1);
            let target = if schedule.current_open
                && schedule.now_ms <= schedule.current.start_ms.saturating_add(at)
            {
                schedule.current
            } else {
                schedule.next
            };
            let wait = target.start_ms.saturating_add(at).saturating_sub(schedule.now_ms);
            let until = tokio::time::Instant::now() + Duration::from_millis(wait);
            // Follow the stream until the bidding point.
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    got = rx.recv() => match got {
                        Some(t) => self.take(&t),
                        None => break,
                    },
                    () = tokio::time::sleep_until(until) => break,
                }
            }
            if *stop.borrow() {
                break;
            }
            while let Ok(t) = rx.try_recv() {
                self.take(&t);
            }
            if self.next_outcome.is_none() {
                // Read the slot before the first one bid for too: what it committed may have
                // reached the stream before it was committed.
                self.first = target.slot;
                self.next_outcome = Some(Slot(target.slot.0.saturating_sub(1)));
            }
            self.read_outcomes(target.slot).await;
            self.read_fates().await;
            self.bid(target.slot).await;
            last = Some(target.slot);
        }
        // The last slot bid for is usually decided by now: report it too.
        if let Some(slot) = last {
            self.read_outcomes(slot.next()).await;
        }
        follower.abort();
        let _ = follower.await;
    }

    fn take(&mut self, tx: &MempoolTx) {
        if let Err(e) = self.pending.insert(tx) {
            tracing::debug!(error = %e, "mempool transaction refused");
        }
    }

    /// Reads the outcomes of the slots before `target` not read yet: prunes what they
    /// committed, counts wins, teaches the planner, reports the slot.
    async fn read_outcomes(&mut self, target: Slot) {
        let Some(mut slot) = self.next_outcome else { return };
        while slot < target {
            let mut tries = 0;
            let got = loop {
                match self.client.outcome(slot).await {
                    // The slot just before closes right before the bidding point: give its
                    // decision a moment.
                    Err(e)
                        if e.code() == Some(ErrorCode::NotFound)
                            && slot.next() == target
                            && tries < 5 =>
                    {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => break other,
                }
            };
            match got {
                Ok(outcome) => self.on_outcome(&outcome),
                Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                    if slot.0.saturating_add(OUTCOME_PATIENCE) > target.0 {
                        break;
                    }
                    self.stats().outcomes_missed += 1;
                    self.report(slot, false, Vec::new(), Amount::ZERO);
                }
                Err(e) => {
                    tracing::warn!(%slot, error = %e, "outcome unavailable");
                    break;
                }
            }
            slot = slot.next();
            self.next_outcome = Some(slot);
        }
    }

    fn on_outcome(&mut self, o: &SlotOutcome) {
        let slot = o.slot;
        let committed: Vec<TxId> = o
            .commitment
            .blocks
            .iter()
            .flat_map(|b| b.ciphertexts.iter().copied())
            .chain(o.outcome.fallback.iter().flat_map(|f| f.ciphertexts.iter().copied()))
            .chain(o.outcome.winners.iter().flat_map(|w| {
                w.bids.iter().flat_map(|b| {
                    b.signed.message.blocks.iter().flat_map(|k| k.ciphertexts.iter().copied())
                })
            }))
            .collect();
        let removed = self.pending.commit(slot, &committed);
        let mut won = Vec::new();
        let mut paid = Amount::ZERO;
        let mut others: BTreeMap<RollupId, Amount> = BTreeMap::new();
        for b in &o.commitment.blocks {
            match b.winner {
                Some(w) if w == self.me => {
                    won.push(b.rollup);
                    paid = Amount(paid.0.saturating_add(b.payment.0));
                }
                Some(_) => {
                    others.insert(b.rollup, b.payment);
                }
                None => {}
            }
        }
        if let Some(sent) = self.bids.get(&slot) {
            if self.planner.config().kind == StrategyKind::Shading {
                for plan in &sent.plans {
                    let rollups = plan.rollups();
                    let competing: Vec<Amount> =
                        rollups.iter().filter_map(|r| others.get(r).copied()).collect();
                    self.planner.observe(&SlotObservation {
                        value: plan.blocks.value,
                        won: rollups.iter().all(|r| won.contains(r)),
                        competing_payment: (!competing.is_empty())
                            .then(|| Amount(competing.iter().map(|a| a.0).sum())),
                    });
                }
            }
        }
        tracing::debug!(%slot, removed, won = won.len(), "outcome read");
        {
            let mut stats = self.stats();
            if !won.is_empty() {
                stats.slots_won += 1;
                stats.rollups_won += won.len() as u64;
                stats.paid = stats.paid.saturating_add(paid.0);
            }
        }
        self.report(slot, true, won, paid);
    }

    /// Learns the fate of the decided slots whose transactions are in flight, from the data
    /// API's blocks: published (they left the pool for good) or undecryptable (the node put
    /// them back in its pool, which its stream never offers again: the pending set takes its
    /// own back).
    async fn read_fates(&mut self) {
        let slots: Vec<Slot> = self.pending.in_flight_slots().collect();
        if slots.is_empty() {
            return;
        }
        let data = DataClient::new(self.client.http().clone());
        for slot in slots {
            let query = DataQuery {
                slot: Some(slot.0),
                limit: Some(crate::api::MAX_PAGE_LIMIT),
                ..DataQuery::default()
            };
            let rows = match data.blocks(&query).await {
                Ok(page) => page.blocks,
                Err(e) => {
                    tracing::warn!(%slot, error = %e, "the slot's fate is unavailable");
                    return;
                }
            };
            if rows.iter().any(|b| b.state == DeliveryState::Undecryptable) {
                let restored = self.pending.undecryptable(slot);
                tracing::info!(%slot, restored, "slot undecryptable: its transactions are pending again");
            } else if !rows.is_empty() && rows.iter().all(|b| b.state == DeliveryState::Published) {
                self.pending.published(slot);
            }
        }
    }

    fn report(&mut self, slot: Slot, decided: bool, won: Vec<RollupId>, paid: Amount) {
        let sent = self.bids.remove(&slot);
        // Slots that were never reported (the builder started late) are dropped silently.
        self.bids.retain(|s, _| *s > slot);
        let line = SlotLine {
            slot: slot.0,
            bids: sent.map(|s| s.lines).unwrap_or_default(),
            decided,
            won: won.iter().map(|r| r.0).collect(),
            paid,
            pending: self.pending.len(),
            shading_bps: (self.planner.config().kind == StrategyKind::Shading)
                .then(|| self.planner.shading_bps()),
        };
        self.stats().pending = self.pending.stats();
        if slot < self.first {
            return;
        }
        if let Some(lines) = &self.lines {
            if lines.try_send(line).is_err() {
                tracing::debug!(%slot, "slot line dropped: nobody reads fast enough");
            }
        }
    }

    /// Builds and sends the slot's bids, if the slot still takes them.
    async fn bid(&mut self, slot: Slot) {
        let schedule = match self.client.schedule().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%slot, error = %e, "schedule unavailable: no bid");
                return;
            }
        };
        if schedule.current.slot != slot || !schedule.current_open {
            tracing::info!(%slot, "missed the bidding window");
            return;
        }
        let terms = SlotTerms::current(&schedule);
        self.pending.on_slot(slot);
        let exclude = HashSet::new();
        let mut plans = self.planner.plan(&self.pending, &terms, &exclude);
        let mut lines = self.send(&terms, &plans).await;
        let stale = lines.iter().any(|l| {
            matches!(&l.result, BidResult::Refused(c)
                if c == ErrorCode::UnknownCiphertext.name() || c == ErrorCode::ExpiredCiphertext.name())
        });
        if stale && self.resync().await {
            // The pending set held ids the node no longer offers: bid again without them.
            plans = self.planner.plan(&self.pending, &terms, &exclude);
            let again = self.send(&terms, &plans).await;
            lines.extend(again);
        }
        if !plans.is_empty() {
            self.stats().slots_bid += 1;
        }
        self.bids.insert(slot, SentSlot { lines, plans });
    }

    async fn send(&mut self, terms: &SlotTerms, plans: &[PlannedBid]) -> Vec<BidLine> {
        let mut lines = Vec::with_capacity(plans.len());
        for plan in plans {
            self.sequence += 1;
            let bid = plan.to_bid(terms, self.me, self.sequence).sign(&self.config.key);
            let result = match self.client.submit_bid(&bid).await {
                Ok(a) => BidResult::Accepted(a.bid_id.to_string()),
                Err(HttpError::Api(e)) => BidResult::Refused(e.code.name().to_string()),
                Err(e) => BidResult::Failed(e.to_string()),
            };
            {
                let mut stats = self.stats();
                stats.bids_sent += 1;
                match &result {
                    BidResult::Accepted(_) => stats.bids_accepted += 1,
                    BidResult::Refused(code) => {
                        let name = ErrorCode::from_name(code).map_or("UNKNOWN", ErrorCode::name);
                        *stats.refusals.entry(name).or_default() += 1;
                    }
                    BidResult::Failed(_) => stats.bid_failures += 1,
                }
            }
            match &result {
                BidResult::Accepted(id) => {
                    tracing::debug!(slot = %terms.slot, amount = %plan.amount, bid = %id, "bid accepted");
                }
                BidResult::Refused(code) => {
                    tracing::info!(slot = %terms.slot, amount = %plan.amount, code = %code, "bid refused");
                }
                BidResult::Failed(e) => {
                    tracing::warn!(slot = %terms.slot, error = %e, "bid not answered");
                }
            }
            lines.push(BidLine {
                rollups: plan.rollups().iter().map(|r| r.0).collect(),
                txs: plan.blocks.blocks.iter().map(|b| b.ciphertexts.len()).collect(),
                value: plan.blocks.value,
                amount: plan.amount,
                result,
            });
        }
        lines
    }

    /// Reads the mempool's pages from the start and drops held transactions the node no
    /// longer offers (evicted, in flight). Whether it completed.
    async fn resync(&mut self) -> bool {
        let mut alive: HashSet<TxId> = HashSet::new();
        let mut query = MempoolQuery {
            cursor: Some(0),
            limit: Some(crate::api::MAX_MEMPOOL_PAGE),
            ..MempoolQuery::default()
        };
        for _ in 0..MAX_RESYNC_PAGES {
            let page = match self.client.mempool(&query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "mempool resync failed");
                    return false;
                }
            };
            alive.extend(page.txs.iter().map(|t| t.id));
            query.cursor = Some(page.next_cursor);
            if page.caught_up {
                let end = page.next_cursor;
                let dropped = self.pending.retain_alive(&alive, end);
                tracing::info!(dropped, "pending set resynchronised");
                self.stats().resyncs += 1;
                return true;
            }
        }
        false
    }
}

/// Follows the mempool stream from the start, reopening it where it stopped after a
/// failure, and hands each transaction to the builder.
async fn follow(
    client: BuilderClient,
    out: mpsc::Sender<MempoolTx>,
    stats: Arc<Mutex<BuilderStats>>,
    mut stop: watch::Receiver<bool>,
    first_backoff: Duration,
) {
    let query = MempoolQuery { cursor: Some(0), ..MempoolQuery::default() };
    let mut backoff = first_backoff;
    let mut stream = loop {
        match client.mempool_stream(&query).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "mempool stream unavailable");
                if !pause(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            e = stream.next() => e,
        };
        match event {
            Some(Ok(MempoolEvent::Tx(tx))) => {
                backoff = first_backoff;
                if out.send(tx).await.is_err() {
                    return;
                }
            }
            Some(Ok(MempoolEvent::Skipped(_))) => {}
            end => {
                if let Some(Err(e)) = end {
                    tracing::info!(error = %e, cursor = stream.cursor(), "mempool stream broke");
                }
                loop {
                    if !pause(&mut stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    stats
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .stream_reconnects += 1;
                    match stream.resume().await {
                        Ok(()) => break,
                        Err(e) => tracing::warn!(error = %e, "mempool stream unavailable"),
                    }
                }
            }
        }
    }
}
