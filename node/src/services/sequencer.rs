//! The sequencer service: the slot machine on its own thread, persisting through a
//! [`RecordLog`], reading the ingress's pool, signing with a [`Finalizer`], talking to the
//! keypers through the keyper endpoint ([`KeyperLinks`]), and reporting every finished slot.
//!
//! The shell follows the one rule of every Veil shell: a `Persist` event is durable before the
//! machine gets its next input (the record log's write returns after the fsync).
//!
//! Inclusion receipts: when a commitment is published, the shell queues it for a
//! [`ReceiptIssuer`] (the finalizer's [`Finalizer::receipt_signer`], if it has one), which
//! signs the receipts off this thread and hands them to the ingress.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use veil_auction::{Auction, AuctionError, LedgerEntry, VerifiedBid};
use veil_crypto::{SignedShareBatch, VerifiedShareBatch};
use veil_mempool::pool::FeedCursor;
use veil_primitives::{CiphertextIndex, Slot, TxId, TxMeta};
use veil_sequencer::slot::{
    FeeEntry, PoolView, Publication, RegistryAccepted, RegistryChange, SlotEvent, SlotRecord,
    SlotStats,
};
use veil_sequencer::{Finalizer, PublishedSlot, SignedCommitment, SlotMachine};
use veil_storage::records::RecordLog;

use crate::metrics::NodeMetrics;

use super::bids::TopBids;
use super::ingress::Ingress;
use super::keyper_server::KeyperLinks;
use super::receipts::{ReceiptIssuer, DEFAULT_QUEUED_COMMITMENTS};
use super::release_window::ReleaseWindow;

/// The wall clock in milliseconds since the Unix epoch: the only clock the shells read.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// An input for the sequencer thread.
pub enum SequencerInput {
    /// A builder's bid (its signature verified by the caller), with where to send the verdict.
    Bid(Box<VerifiedBid>, mpsc::Sender<Result<(), AuctionError>>),
    /// A keyper's share batch, to be verified on the slot thread (one that failed the
    /// link's check, so that the slot machine counts it).
    Batch(Box<SignedShareBatch>),
    /// A keyper's share batch that the keyper endpoint verified against the committee's
    /// key set as it arrived ([`SlotMachine::handle_verified_share_batch`]).
    VerifiedBatch(Box<VerifiedShareBatch>),
    /// A registry change (rollup update, deposit notice, withdrawal request), answered once
    /// it is durable ([`SlotMachine::handle_registry`]).
    Registry(RegistryChange, mpsc::Sender<Result<RegistryAccepted, RegistryRefusal>>),
    /// A read of the auction's registries between two steps, with the slot in progress: the
    /// closure answers on its own channel. Keep it short (it runs on the slot thread).
    Read(RegistryRead),
    /// Stop after the current step.
    Stop,
}

/// What an input to the slot thread is, for the timeline.
fn input_kind(input: &Result<SequencerInput, mpsc::RecvTimeoutError>) -> &'static str {
    match input {
        Ok(SequencerInput::Bid(..)) => "bid",
        Ok(SequencerInput::Batch(_) | SequencerInput::VerifiedBatch(_)) => "batch",
        Ok(SequencerInput::Registry(..)) => "registry",
        Ok(SequencerInput::Read(_)) => "read",
        Ok(SequencerInput::Stop) => "stop",
        Err(_) => "none",
    }
}

/// A read of the auction run on the sequencer thread ([`SequencerInput::Read`]).
pub type RegistryRead = Box<dyn FnOnce(&Auction, Slot) + Send>;

/// Why a registry change was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryRefusal {
    /// The auction refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] AuctionError),
    /// It was applied but could not be made durable: the sequencer thread stopped, and the
    /// change is lost with it (it was never acknowledged).
    #[error("the change could not be made durable; the sequencer stopped")]
    NotDurable,
}

/// A finished slot, for the devnet's report and the data API.
#[derive(Debug, Clone)]
pub struct SlotReport {
    /// The slot.
    pub slot: Slot,
    /// Its signed commitment.
    pub commitment: Option<SignedCommitment>,
    /// The published plaintext blocks, or `None` if the slot was undecryptable.
    pub published: Option<PublishedSlot>,
    /// The settlement's ledger entries.
    pub ledger: Vec<LedgerEntry>,
    /// The transaction fees charged to payers and credited to block builders.
    pub fees: Vec<FeeEntry>,
    /// From the commitment out to the plaintext decided, in ms.
    pub commit_to_plaintext_ms: Option<u64>,
    /// When this shell published the signed commitment (durable, sent to the keypers), in ms
    /// since the Unix epoch; `None` if that happened before a restart.
    pub committed_at_ms: Option<u64>,
    /// When this shell published the plaintext (durable), in ms since the Unix epoch; `None`
    /// if the slot was undecryptable. `published_at_ms - committed_at_ms` is the
    /// commitment-to-plaintext time a client sees: unlike `commit_to_plaintext_ms` (the slot
    /// machine's, from the clock read when the last share batch arrived) it includes checking
    /// that batch, combining and decrypting, and persisting the plaintext.
    pub published_at_ms: Option<u64>,
}

/// The pool view over the running ingress.
struct IngressPool<'a>(&'a Ingress);

impl CiphertextIndex for IngressPool<'_> {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.0.with_pool(|p| p.lookup(id))
    }
}

impl PoolView for IngressPool<'_> {
    fn pending(&self) -> Vec<(TxId, TxMeta)> {
        self.0.with_pool(|p| {
            p.feed(FeedCursor(0), usize::MAX).items.into_iter().map(|i| (i.id, i.meta)).collect()
        })
    }

    fn body(&self, id: &TxId) -> Option<Vec<u8>> {
        self.0.with_pool(|p| p.get(id).map(|v| v.body.to_vec()))
    }
}

/// A running sequencer. Dropping the handle does not stop it; call [`SequencerService::stop`].
pub struct SequencerService {
    top_bids: TopBids,
    input: mpsc::Sender<SequencerInput>,
    in_flight: Arc<Mutex<HashSet<TxId>>>,
    stats: Arc<Mutex<SlotStats>>,
    running: Arc<AtomicBool>,
    window: ReleaseWindow,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SequencerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerService").finish_non_exhaustive()
    }
}

/// What the sequencer thread is wired to.
pub struct SequencerWiring {
    /// Makes commitments final.
    pub finalizer: Box<dyn Finalizer + Send>,
    /// The mempool.
    pub ingress: Arc<Ingress>,
    /// The keyper endpoint.
    pub keypers: KeyperLinks,
    /// The thread's input channel (its sender is cloned for builders and keyper links).
    pub channel: (mpsc::Sender<SequencerInput>, mpsc::Receiver<SequencerInput>),
    /// Where finished slots are reported.
    pub reports: mpsc::Sender<SlotReport>,
    /// The node's metrics.
    pub metrics: Arc<NodeMetrics>,
}

/// The ids of every transaction of every published slot (each `Decrypted` record's blocks:
/// committed, and charged whatever their payload became), as (settled, not settled yet):
/// whether a `Settled` record followed.
fn published_ids(records: &[SlotRecord]) -> (Vec<TxId>, Vec<TxId>) {
    let mut published: BTreeMap<Slot, (&PublishedSlot, bool)> = BTreeMap::new();
    for r in records {
        match r {
            SlotRecord::Decrypted { published: p } => {
                published.insert(p.slot, (p, false));
            }
            SlotRecord::Settled { slot, .. } => {
                if let Some(p) = published.get_mut(slot) {
                    p.1 = true;
                }
            }
            _ => {}
        }
    }
    let (mut settled, mut unsettled) = (Vec::new(), Vec::new());
    for (p, done) in published.into_values() {
        let ids = p.blocks.iter().flat_map(|b| b.txs.iter().map(|t| t.id));
        if done {
            settled.extend(ids)
        } else {
            unsettled.extend(ids)
        }
    }
    (settled, unsettled)
}

/// A crash point for recovery tests: `VEIL_FAILPOINT=after:<record kind>:<slot>` makes the
/// process abort (as `kill -9` would stop it) right after that record is durable. Read once
/// at start; unset in normal runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failpoint {
    kind: String,
    slot: u64,
}

impl Failpoint {
    fn from_env() -> Option<Failpoint> {
        let v = std::env::var("VEIL_FAILPOINT").ok()?;
        let mut parts = v.split(':');
        match (parts.next(), parts.next(), parts.next().and_then(|s| s.parse().ok())) {
            (Some("after"), Some(kind), Some(slot)) => {
                tracing::warn!(kind, slot, "failpoint armed: the process aborts after this record");
                Some(Failpoint { kind: kind.to_string(), slot })
            }
            _ => None,
        }
    }
}

impl SequencerService {
    /// Starts the sequencer thread: restores the slot records from `log_path`, then runs,
    /// reading its inputs from the wiring's channel.
    ///
    /// # Errors
    /// If the record log cannot be opened, a record does not parse, or the records contradict
    /// each other or the genesis auction (the node refuses to start rather than guess).
    pub fn spawn(
        mut machine: SlotMachine,
        log_path: &Path,
        wiring: SequencerWiring,
    ) -> anyhow::Result<SequencerService> {
        let SequencerWiring { finalizer, ingress, keypers, channel, reports, metrics } = wiring;
        let (log, stored) = RecordLog::open(log_path)?;
        // A record that does not parse is refused, never skipped: a skipped decision would be
        // decided again, a skipped settlement would lose its money.
        let records: Vec<SlotRecord> = stored
            .iter()
            .map(|r| {
                serde_json::from_slice(&r.body).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: slot {} record {:?} does not parse: {e}",
                        log_path.display(),
                        r.slot,
                        r.kind
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let (settled, unsettled) = published_ids(&records);
        machine.restore(records, &IngressPool(&ingress)).map_err(|e| {
            anyhow::anyhow!("{}: the slot records do not restore: {e}", log_path.display())
        })?;
        // The transactions of every slot published before the restart leave the pool, as
        // spent, before any slot can close: if the process stopped after a slot's `Decrypted`
        // record but before the ingress's store deleted their rows and kept their ids, they
        // came back as pending. The fees of a settled slot are not held again; an unsettled
        // slot settles once more (restored above) and releases the hold. (Unknown ids are
        // ignored: most were removed long ago.)
        let back = ingress.remove_settled(&settled) + ingress.remove_committed(&unsettled);
        if back > 0 {
            tracing::warn!(back, "committed transactions restored as pending were removed");
        }
        // The pool's fee accounts mirror the restored ledger's balances.
        ingress.set_fee_balances(machine.auction().fee_balances());
        // Admission was held for this (`IngressConfig::hold_admission`).
        ingress.open_admission();
        let (input, rx) = channel;
        // Restored commitments are in flight again: builders must not name their ciphertexts.
        let in_flight = Arc::new(Mutex::new(machine.in_flight().clone()));
        let window = ReleaseWindow::new();
        let receipts = finalizer.receipt_signer().and_then(|signer| {
            ReceiptIssuer::spawn(
                signer,
                ingress.clone(),
                DEFAULT_QUEUED_COMMITMENTS,
                window.clone(),
            )
            .inspect_err(|e| tracing::error!(error = %e, "no receipt issuer; receipts are off"))
            .ok()
        });
        let stats = Arc::new(Mutex::new(machine.stats().clone()));
        let top_bids = TopBids::default();
        let shell = Shell {
            receipts,
            window: window.clone(),
            failpoint: Failpoint::from_env(),
            metrics,
            stats: stats.clone(),
            stage_marks: BTreeMap::new(),
            machine,
            log,
            finalizer,
            ingress,
            keypers,
            reports,
            in_flight: in_flight.clone(),
            open_reports: BTreeMap::new(),
            top_bids: top_bids.clone(),
            rollups_at: None,
        };
        let running = Arc::new(AtomicBool::new(true));
        let still = running.clone();
        let thread = std::thread::Builder::new()
            .name("veil-sequencer".into())
            .spawn(move || {
                shell.run(&rx);
                still.store(false, Ordering::Relaxed);
            })
            .expect("spawn the sequencer thread");
        Ok(SequencerService {
            top_bids,
            input,
            in_flight,
            stats,
            running,
            window,
            thread: Some(thread),
        })
    }

    /// A sender for bids and share batches.
    #[must_use]
    pub fn input(&self) -> mpsc::Sender<SequencerInput> {
        self.input.clone()
    }

    /// The ciphertexts committed in slots not yet decrypted or abandoned (public: they are in
    /// the signed commitments); builders leave them out of their bids.
    #[must_use]
    pub fn in_flight(&self) -> Arc<Mutex<HashSet<TxId>>> {
        self.in_flight.clone()
    }

    /// The slot machine's counters, as of its last step.
    #[must_use]
    pub fn slot_stats(&self) -> Arc<Mutex<SlotStats>> {
        self.stats.clone()
    }

    /// The top bid of each open slot (for the HTTP API, where the node shows it).
    #[must_use]
    pub fn top_bids(&self) -> TopBids {
        self.top_bids.clone()
    }

    /// True while the thread runs (it stops on [`SequencerService::stop`] or when a record
    /// cannot be made durable); for readiness.
    #[must_use]
    pub fn running(&self) -> Arc<AtomicBool> {
        self.running.clone()
    }

    /// The slots between their commitment and their plaintext: background work (the data
    /// API's indexer) waits for it to be quiet.
    #[must_use]
    pub fn release_window(&self) -> ReleaseWindow {
        self.window.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        let _ = self.input.send(SequencerInput::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// When a slot passed each stage boundary, for the stage histograms.
#[derive(Debug, Default, Clone, Copy)]
struct StageMarks {
    decided_ms: u64,
    committed_ms: u64,
    decrypted_ms: u64,
}

struct Shell {
    failpoint: Option<Failpoint>,
    metrics: Arc<NodeMetrics>,
    stats: Arc<Mutex<SlotStats>>,
    stage_marks: BTreeMap<Slot, StageMarks>,
    receipts: Option<ReceiptIssuer>,
    /// Opened at each non-empty commitment, closed at its plaintext or when it is given up.
    window: ReleaseWindow,
    machine: SlotMachine,
    log: RecordLog,
    finalizer: Box<dyn Finalizer + Send>,
    ingress: Arc<Ingress>,
    keypers: KeyperLinks,
    reports: mpsc::Sender<SlotReport>,
    in_flight: Arc<Mutex<HashSet<TxId>>>,
    open_reports: BTreeMap<Slot, SlotReport>,
    top_bids: TopBids,
    /// The earliest effective slot when the ingress's rollup table was last set.
    rollups_at: Option<Slot>,
}

impl Shell {
    /// Gives the ingress the rollup registry's table (registered rollups and their largest
    /// gas limit, current or scheduled) when a slot opened or a rollup update was accepted
    /// since the last time: a rollup registered after genesis is admitted from then on.
    fn sync_rollups(&mut self, force: bool) {
        let at = self.machine.auction().earliest_effective_slot();
        if force || self.rollups_at != Some(at) {
            self.rollups_at = Some(at);
            self.ingress.set_rollups(Some(self.machine.auction().rollups().gas_limits()));
        }
    }

    /// The timeline event of a share batch handled on this thread.
    fn batch_handled(
        &self,
        slot: Slot,
        keyper: veil_crypto::KeyperIndex,
        ok: bool,
        started: std::time::Instant,
    ) {
        tracing::debug!(
            target: super::keyper::TIMELINE,
            slot = slot.0,
            keyper = keyper.get(),
            ok,
            state = ?self.machine.state(slot),
            took_us = started.elapsed().as_micros() as u64,
            "batch handled"
        );
    }

    fn run(mut self, rx: &mpsc::Receiver<SequencerInput>) {
        let mut rng = rand_core::OsRng;
        self.sync_rollups(true);
        loop {
            let now = now_ms();
            let wait = self.machine.poll_timeout().saturating_sub(now).clamp(1, 50);
            let input = rx.recv_timeout(Duration::from_millis(wait));
            let (input_started, input_kind) = (std::time::Instant::now(), input_kind(&input));
            match input {
                Ok(SequencerInput::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(SequencerInput::Bid(bid, reply)) => {
                    let kept = bid.bid().clone();
                    let verdict = self.machine.handle_verified_bid(
                        *bid,
                        &IngressPool(&self.ingress),
                        now_ms(),
                    );
                    if let Ok(receipt) = &verdict {
                        let book = self.machine.auction().book(kept.message.slot);
                        self.top_bids.accepted(&kept, receipt, book);
                    }
                    let result = verdict.as_ref().map_or_else(|e| e.code().name(), |_| "accepted");
                    self.metrics.bids.get_or_create(&vec![("result", result)]).inc();
                    let _ = reply.send(verdict.map(|_| ()));
                }
                Ok(SequencerInput::Batch(b)) => {
                    let started = std::time::Instant::now();
                    let ok = self.machine.handle_share_batch(&b, now_ms(), &mut rng).is_ok();
                    self.batch_handled(b.message.slot, b.message.keyper, ok, started);
                }
                Ok(SequencerInput::VerifiedBatch(b)) => {
                    let started = std::time::Instant::now();
                    let (slot, keyper) = (b.slot(), b.keyper());
                    let ok =
                        self.machine.handle_verified_share_batch(*b, now_ms(), &mut rng).is_ok();
                    self.batch_handled(slot, keyper, ok, started);
                }
                Ok(SequencerInput::Registry(change, reply)) => {
                    let rollup = matches!(change, RegistryChange::RollupUpdate(_));
                    match self.machine.handle_registry(change, now_ms()) {
                        Err(e) => {
                            let _ = reply.send(Err(RegistryRefusal::Refused(e)));
                        }
                        Ok(accepted) => {
                            // Durable before the answer says accepted.
                            if !self.drain() {
                                let _ = reply.send(Err(RegistryRefusal::NotDurable));
                                return;
                            }
                            if rollup {
                                self.sync_rollups(true);
                            }
                            if let Some(LedgerEntry::FeeDeposit { payer, .. }) = &accepted.entry {
                                let balance = self.machine.auction().fee_balance(payer);
                                self.ingress.set_fee_balances([(*payer, balance)]);
                            }
                            let _ = reply.send(Ok(accepted));
                        }
                    }
                }
                Ok(SequencerInput::Read(read)) => {
                    read(self.machine.auction(), self.machine.clock().slot_at(now_ms()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let took_us = input_started.elapsed().as_micros() as u64;
            if took_us >= 1_000 && input_kind != "batch" {
                tracing::debug!(target: super::keyper::TIMELINE, input = input_kind, took_us, "input handled");
            }
            let now = now_ms();
            let slot = self.machine.clock().slot_at(now);
            let _ = self.ingress.on_slot(slot);
            let started = std::time::Instant::now();
            if let Err(e) = self.machine.handle_timeout(now, &IngressPool(&self.ingress), &mut rng)
            {
                tracing::error!(error = %e, "slot machine refused the clock");
            }
            let took_us = started.elapsed().as_micros() as u64;
            if took_us >= 1_000 {
                tracing::debug!(target: super::keyper::TIMELINE, slot = slot.0, took_us, "clock handled");
            }
            if !self.drain() {
                return;
            }
            self.sync_rollups(false);
            *self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                self.machine.stats().clone();
        }
    }

    /// Carries out the machine's events; false if the shell must stop (storage failed).
    fn drain(&mut self) -> bool {
        while let Some(event) = self.machine.poll_event() {
            match event {
                SlotEvent::Persist { token, record } => {
                    let _span = tracing::info_span!("slot", slot = record.slot().0).entered();
                    let kind = match &record {
                        SlotRecord::Decided { .. } => RecordLog::DECIDED,
                        SlotRecord::Signed { .. } => "signed",
                        SlotRecord::Decrypted { .. } => "decrypted",
                        SlotRecord::Settled { .. } => "settled",
                        SlotRecord::Undecryptable { .. } => "undecryptable",
                        SlotRecord::Registry { .. } => "registry",
                    };
                    let started = std::time::Instant::now();
                    let body = serde_json::to_vec(&record).expect("records serialise");
                    let encoded_us = started.elapsed().as_micros() as u64;
                    if let Err(e) = self.log.append(kind, record.slot(), &body) {
                        // Nothing may proceed past a record that is not durable.
                        tracing::error!(error = %e, slot = %record.slot(), "slot record not durable; stopping");
                        return false;
                    }
                    tracing::debug!(
                        target: super::keyper::TIMELINE,
                        slot = record.slot().0,
                        kind,
                        bytes = body.len(),
                        encoded_us,
                        took_us = started.elapsed().as_micros() as u64,
                        "slot record durable"
                    );
                    if self
                        .failpoint
                        .as_ref()
                        .is_some_and(|f| f.kind == kind && f.slot == record.slot().0)
                    {
                        tracing::warn!(kind, slot = %record.slot(), "failpoint: aborting");
                        std::process::abort();
                    }
                    self.machine.handle_persisted(token, now_ms());
                }
                SlotEvent::Sign(commitment) => {
                    let _span = tracing::info_span!("slot", slot = commitment.slot.0).entered();
                    let now = now_ms();
                    let deadline = self.machine.clock().deadline_ms(commitment.slot);
                    self.metrics.observe_stage("close", now.saturating_sub(deadline));
                    self.stage_marks.entry(commitment.slot).or_default().decided_ms = now;
                    self.sign(commitment);
                }
                SlotEvent::SendToKeypers(request) => self.keypers.send(request),
                SlotEvent::Publish(p) => self.publish(p),
            }
        }
        true
    }

    fn sign(&mut self, commitment: veil_sequencer::Commitment) {
        match self.finalizer.finalize(commitment) {
            Ok(signed) => {
                if let Err(e) = self.machine.handle_signed(signed) {
                    tracing::error!(error = %e, "finalized commitment refused");
                }
            }
            Err(e) => tracing::error!(error = %e, "finalizer failed"),
        }
    }

    /// Records the stage that ended now for `slot` and returns the time it took.
    fn mark(&mut self, slot: Slot, stage: &'static str) {
        let now = now_ms();
        let marks = self.stage_marks.entry(slot).or_default();
        let (from, set): (u64, fn(&mut StageMarks, u64)) = match stage {
            "commit" => (marks.decided_ms, |m, t| m.committed_ms = t),
            "decrypt" => (marks.committed_ms, |m, t| m.decrypted_ms = t),
            _ => (marks.decrypted_ms, |_, _| {}),
        };
        set(marks, now);
        // A stage whose start was before a restart has no start here: not observed.
        if from > 0 {
            self.metrics.observe_stage(stage, now.saturating_sub(from));
        }
        if stage == "settle" {
            self.stage_marks.remove(&slot);
        }
        while self.stage_marks.len() > 256 {
            self.stage_marks.pop_first();
        }
    }

    fn publish(&mut self, p: Publication) {
        let mut in_flight =
            self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match p {
            Publication::Committed(signed) => {
                let committed_at = now_ms();
                in_flight.extend(signed.message.ordered_ids().copied());
                drop(in_flight);
                tracing::info!(slot = %signed.message.slot, txs = signed.message.len(), "committed");
                if !signed.message.is_empty() {
                    self.window.open(signed.message.slot, std::time::Instant::now());
                }
                if let Some(issuer) = &self.receipts {
                    issuer.issue(signed.clone());
                }
                let slot = signed.message.slot;
                tracing::debug!(target: super::keyper::TIMELINE, slot = slot.0, "commitment out");
                self.mark(slot, "commit");
                let report = self.report_for(slot);
                report.commitment = Some(signed);
                report.committed_at_ms = Some(committed_at);
            }
            Publication::Decrypted(published) => {
                let published_at = now_ms();
                let ids: Vec<TxId> =
                    published.blocks.iter().flat_map(|b| b.txs.iter().map(|t| t.id)).collect();
                for id in &ids {
                    in_flight.remove(id);
                }
                drop(in_flight);
                self.window.close(published.slot);
                self.keypers.finished(published.slot);
                self.mark(published.slot, "decrypt");
                // With the expiry slots the machine holds, so that a committed transaction
                // that was evicted while its slot was in flight is remembered as spent too.
                let expiries: HashMap<TxId, Slot> = self
                    .machine
                    .committed(published.slot)
                    .map(|(id, meta)| (id, meta.expiry_slot))
                    .collect();
                self.ingress.remove_published(&ids, &expiries);
                let took = self.machine.stats().last_commit_to_plaintext_ms;
                tracing::debug!(target: super::keyper::TIMELINE, slot = published.slot.0, "published");
                let report = self.report_for(published.slot);
                report.published = Some(published);
                report.commit_to_plaintext_ms = took;
                report.published_at_ms = Some(published_at);
            }
            Publication::Settled { slot, ledger, fees } => {
                drop(in_flight);
                let auction = self.machine.auction();
                self.ingress.settle_fees(fees.iter().filter_map(|f| match f {
                    FeeEntry::Charge { payer, amount, .. } => {
                        Some((*payer, *amount, auction.fee_balance(payer)))
                    }
                    FeeEntry::Credit { .. } => None,
                }));
                self.mark(slot, "settle");
                self.metrics.slots.get_or_create(&vec![("outcome", "settled")]).inc();
                for e in &ledger {
                    let (counter, amount) = match e {
                        LedgerEntry::Debit { amount, .. } => (&self.metrics.payments, amount),
                        LedgerEntry::Payout { amount, .. } => (&self.metrics.payouts, amount),
                        _ => continue,
                    };
                    counter.inc_by(u64::try_from(amount.0).unwrap_or(u64::MAX));
                }
                let mut report = self.report_for(slot).clone();
                self.open_reports.remove(&slot);
                report.ledger = ledger;
                for f in &fees {
                    let counter = match f {
                        FeeEntry::Charge { .. } => &self.metrics.fees_charged,
                        FeeEntry::Credit { .. } => &self.metrics.fees_credited,
                    };
                    counter.inc_by(u64::try_from(f.amount().0).unwrap_or(u64::MAX));
                }
                report.fees = fees;
                let _ = self.reports.send(report);
            }
            Publication::Undecryptable { slot, ids } => {
                for id in &ids {
                    in_flight.remove(id);
                }
                drop(in_flight);
                self.window.close(slot);
                self.keypers.finished(slot);
                self.stage_marks.remove(&slot);
                self.metrics.slots.get_or_create(&vec![("outcome", "undecryptable")]).inc();
                let report = self.report_for(slot).clone();
                self.open_reports.remove(&slot);
                let _ = self.reports.send(report);
            }
        }
    }

    fn report_for(&mut self, slot: Slot) -> &mut SlotReport {
        self.open_reports.entry(slot).or_insert_with(|| SlotReport {
            slot,
            commitment: None,
            published: None,
            ledger: Vec::new(),
            fees: Vec::new(),
            commit_to_plaintext_ms: None,
            committed_at_ms: None,
            published_at_ms: None,
        })
    }
}
