//! The load: transactions prepared (encrypted) before each timed phase, submitted open loop
//! at a fixed rate over QUIC by the SDK's load generator (its own runtime in this process),
//! and followed through every slot report to their published plaintexts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use rayon::prelude::*;
use veil_builder_api::loadgen::{self, LoadConfig, LoadReport};
use veil_crypto::{PublicKeySet, PADDING_BUCKETS};
use veil_node::services::sequencer::{now_ms, SlotReport};
use veil_primitives::{Amount, PayerAuthorization, RollupId, SignatureBytes, Slot, TxId, TxMeta};
use veil_sequencer::slot::TxResult;
use veil_sequencer::SignedCommitment;
use veil_storage::StoreStats;
use veil_wire::client::ClientConfig;
use veil_wire::ingress::SignedCiphertext;
use veil_wire::tls::Pin;

use super::cluster::{Cluster, TX_GAS};
use super::cpu::{self, CpuSnapshot, CpuUsage};
use super::stats;
use crate::report::Reporter;

/// Payload size of every transaction (the crypto budgets' size).
pub const PAYLOAD: usize = 512;
/// Length prefix and AEAD tag around a padded payload (see `crypto/CIPHERTEXT.md`).
const LEN_PREFIX: usize = 4;
const TAG_LEN: usize = 16;
/// QUIC connections of the load generator.
pub const CONNECTIONS: usize = 4;
/// Requests in flight per connection.
const WINDOW: usize = 512;

/// Which transactions to prepare.
#[derive(Debug, Clone, Copy)]
pub struct TxPlan {
    /// How many.
    pub count: usize,
    /// Spread round-robin over rollups `0..rollups`.
    pub rollups: u32,
    /// Every `k`-th transaction of each rollup is undecryptable by design, if set.
    pub junk_every: Option<usize>,
    /// Distinguishes the phases' payloads and fee payers.
    pub seed: u64,
    /// The first transaction's max fee; each later one pays one less, so that fee order
    /// (the fallback block's order) is submission order.
    pub fee_base: u128,
    /// Expiry slot of every transaction.
    pub expiry: Slot,
}

/// The seed of the fee payers every phase's transactions are paid and signed by
/// ([`veil_builder_api::loadgen::payer_keys`]); the cluster funds them at genesis.
pub const PAYER_SEED: u64 = 0x9e4;
/// How many fee payers share the load.
pub const PAYERS: usize = 256;

/// Prepared transactions, in submission order.
#[derive(Debug)]
pub struct Prepared {
    /// The ciphertexts' wire bytes.
    pub bodies: Vec<Bytes>,
    /// Each ciphertext's fee-payer signature.
    pub signatures: Vec<SignatureBytes>,
    /// Whether each is undecryptable by design.
    pub junk: Vec<bool>,
    /// Position of each id in `bodies`.
    pub index: HashMap<TxId, usize>,
    seed: u64,
}

/// The payload of transaction `i` of the phase with `seed`: `PAYLOAD` bytes, distinct.
#[must_use]
pub fn payload(seed: u64, i: usize) -> Vec<u8> {
    let mut p = vec![b'x'; PAYLOAD];
    p[..8].copy_from_slice(&seed.to_be_bytes());
    p[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    p
}

/// The body length of a `PAYLOAD`-byte payload's ciphertext: its padding bucket plus the
/// AEAD tag. Junk bodies have this length too, so nothing tells them apart on the wire.
fn body_len() -> usize {
    let bucket = PADDING_BUCKETS.iter().find(|&&b| b >= PAYLOAD + LEN_PREFIX).copied();
    bucket.expect("the payload fits a bucket") + TAG_LEN
}

/// Encrypts `plan.count` transactions in parallel (not timed). A junk transaction carries a
/// valid proof of knowledge over random body bytes (what a sender who knows its randomness
/// can make, `veil_crypto::testing::prove_arbitrary`): admitted, validated and committed like
/// any other, it does not decrypt.
///
/// # Errors
/// If a transaction cannot be built (a bug in the plan).
pub fn prepare(pks: &PublicKeySet, plan: &TxPlan) -> anyhow::Result<Prepared> {
    let rollups = plan.rollups.max(1) as usize;
    let junk_body = body_len();
    let payers = veil_builder_api::loadgen::payer_keys(PAYER_SEED, PAYERS);
    let built: Vec<(Bytes, SignatureBytes, TxId, bool)> = (0..plan.count)
        .into_par_iter()
        .map(|i| {
            let payer = &payers[i % payers.len()];
            let ad = TxMeta {
                chain_id: pks.chain_id(),
                eon: pks.eon(),
                rollup: RollupId((i % rollups) as u32),
                fee_payer: veil_primitives::signed::public_key(payer),
                max_fee: Amount(plan.fee_base - i as u128),
                gas_limit: TX_GAS,
                expiry_slot: plan.expiry,
                bundle: None,
            };
            let junk = plan.junk_every.is_some_and(|k| (i / rollups) % k == k - 1);
            let mut rng = rand_core::OsRng;
            let ct = if junk {
                let mut body = vec![0u8; junk_body];
                rand_core::RngCore::fill_bytes(&mut rng, &mut body);
                let identity = <blstrs::G1Projective as group::Group>::identity();
                veil_crypto::testing::prove_arbitrary(&ad, &body, identity, &mut rng)?
            } else {
                pks.encrypt(&ad, &payload(plan.seed, i), &mut rng)?
            };
            let id = ct.id();
            let signature = PayerAuthorization { chain_id: ad.chain_id, tx: id }.sign(payer);
            Ok((Bytes::from(ct.into_bytes()), signature, id, junk))
        })
        .collect::<Result<_, veil_crypto::CryptoError>>()?;
    let index = built.iter().enumerate().map(|(i, (_, _, id, _))| (*id, i)).collect();
    let mut bodies = Vec::with_capacity(built.len());
    let mut signatures = Vec::with_capacity(built.len());
    let mut junk = Vec::with_capacity(built.len());
    for (b, s, _, j) in built {
        bodies.push(b);
        signatures.push(s);
        junk.push(j);
    }
    Ok(Prepared { bodies, signatures, junk, index, seed: plan.seed })
}

/// One finished slot as the phase saw it.
#[derive(Debug, Clone)]
pub struct SlotOutcome {
    /// Ciphertexts committed.
    pub committed: usize,
    /// Of those, published with a plaintext.
    pub included: usize,
    /// Of those, published as failed (did not decrypt).
    pub failed: usize,
    /// Abandoned: fewer than `t + 1` good share batches by the release deadline.
    pub undecryptable: bool,
    /// From the signed commitment published (durable, sent to the keypers) to the plaintext
    /// published (durable), as the node's shell timed it.
    pub c2p_ms: Option<u64>,
    /// The slot machine's own commitment-to-plaintext figure (it stops the clock when the
    /// last share batch arrives, before checking it and decrypting).
    pub machine_c2p_ms: Option<u64>,
    /// When the signed commitment was published, ms since the epoch.
    pub committed_at_ms: Option<u64>,
    /// The signed commitment.
    pub commitment: Option<SignedCommitment>,
}

/// What a phase measured.
#[derive(Debug)]
pub struct PhaseOutcome {
    /// Every slot reported during the phase.
    pub slots: BTreeMap<Slot, SlotOutcome>,
    /// The load generator's report.
    pub load: LoadReport,
    /// The slots the bursts were aimed at (empty for a steady load).
    pub burst_slots: Vec<Slot>,
    /// Wall clock (ms since the epoch) when the load started and when its last answer came.
    pub load_ms: (u64, u64),
    /// The phase's transactions published (plaintext or failed), of those acked.
    pub published: usize,
    /// Acked but not published by the end of the drain.
    pub lost: usize,
    /// Published with the wrong result: a plaintext that is not the one sent, a clean
    /// transaction that failed, or a junk one that decrypted.
    pub wrong: usize,
    /// From the first scheduled submission to the report of the last publication.
    pub span: Duration,
    /// Per transaction, from its scheduled submission to the report of its slot, ms.
    pub latencies_ms: Vec<f64>,
    /// CPU used from the load's start to the end of the drain.
    pub cpu: CpuUsage,
    /// The ingress store's counters over the phase.
    pub store: StoreStats,
    /// Mean ms per slot stage (`close`, `commit`, `decrypt`, `settle`) over the phase.
    pub stage_means_ms: BTreeMap<String, (f64, u64)>,
    /// How much each of [`COUNTERS`] grew over the phase.
    pub counters: BTreeMap<&'static str, f64>,
}

/// The node's counters a phase reports: keypers blamed, fallback (rescale) rounds, share
/// batches refused, and ciphertext bodies keypers had to fetch because the commitment
/// reached them before the feed had.
pub const COUNTERS: [(&str, &str); 4] = [
    ("blamed", "veil_keypers_blamed_total"),
    ("fallback rounds", "veil_fallback_rounds_total"),
    ("bodies fetched by keypers", "veil_keyper_fetched_total"),
    ("share batches", "veil_share_batches_total"),
];

impl PhaseOutcome {
    /// Slots whose bidding deadline fell in the load: from the first one after the load
    /// started, `warmup` slots skipped, to the last one before the load's end.
    #[must_use]
    pub fn steady_slots(&self, clock: &veil_sequencer::SlotClock, warmup: u64) -> Vec<Slot> {
        let (start, end) = self.load_ms;
        let mut first = clock.slot_at(start).0;
        if clock.deadline_ms(Slot(first)) < start {
            first += 1;
        }
        first += warmup;
        let mut last = clock.slot_at(end).0;
        while last > 0 && clock.deadline_ms(Slot(last)) > end {
            last -= 1;
        }
        (first..=last).map(Slot).collect()
    }

    /// Slots of `range` that did not decrypt or were never reported.
    #[must_use]
    pub fn missed(&self, range: &[Slot]) -> Vec<Slot> {
        range
            .iter()
            .filter(|s| self.slots.get(s).is_none_or(|o| o.undecryptable))
            .copied()
            .collect()
    }
}

fn store_delta(a: &StoreStats, b: &StoreStats) -> StoreStats {
    StoreStats {
        commits: b.commits - a.commits,
        rows_written: b.rows_written - a.rows_written,
        rows_deleted: b.rows_deleted - a.rows_deleted,
        spent_written: b.spent_written - a.spent_written,
        spent_deleted: b.spent_deleted - a.spent_deleted,
        receipts_written: b.receipts_written - a.receipts_written,
        receipts_deleted: b.receipts_deleted - a.receipts_deleted,
        max_group: b.max_group,
        commit_us_total: b.commit_us_total - a.commit_us_total,
        commit_us_max: b.commit_us_max,
    }
}

/// Follows the phase's transactions through the reports.
struct Tracker<'a> {
    prepared: &'a Prepared,
    published_at: HashMap<usize, Instant>,
    wrong: usize,
    slots: BTreeMap<Slot, SlotOutcome>,
}

impl Tracker<'_> {
    fn on_report(&mut self, report: SlotReport, now: Instant) {
        let committed = report.commitment.as_ref().map_or(0, |c| c.message.len());
        let mut outcome = SlotOutcome {
            committed,
            included: 0,
            failed: 0,
            undecryptable: report.published.is_none(),
            c2p_ms: report
                .published_at_ms
                .zip(report.committed_at_ms)
                .map(|(p, c)| p.saturating_sub(c)),
            machine_c2p_ms: report.commit_to_plaintext_ms,
            committed_at_ms: report.committed_at_ms,
            commitment: report.commitment,
        };
        for tx in report.published.iter().flat_map(|p| &p.blocks).flat_map(|b| &b.txs) {
            match &tx.result {
                TxResult::Included(_) => outcome.included += 1,
                TxResult::Failed | TxResult::DroppedWithBundle(_) => outcome.failed += 1,
            }
            let Some(&i) = self.prepared.index.get(&tx.id) else { continue };
            let right = match &tx.result {
                TxResult::Included(p) => {
                    !self.prepared.junk[i] && *p == payload(self.prepared.seed, i)
                }
                TxResult::Failed => self.prepared.junk[i],
                TxResult::DroppedWithBundle(_) => false,
            };
            if !right {
                self.wrong += 1;
            }
            self.published_at.entry(i).or_insert(now);
        }
        self.slots.insert(report.slot, outcome);
    }
}

/// When a phase's transactions are submitted.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// All of them at `rate` tx/s, open loop, from the start.
    Steady {
        /// Submissions per second.
        rate: f64,
    },
    /// `size` at a time at `rate` tx/s, each burst starting [`BURST_DELAY_MS`] after the
    /// bidding deadline of every `every`-th slot, so that the next slot commits the whole
    /// burst and the slots between let the keypers catch up.
    Bursts {
        /// Transactions per burst (and per committed block).
        size: usize,
        /// Slots from one burst to the next.
        every: u64,
        /// Submissions per second within a burst.
        rate: f64,
    },
}

/// How long after a slot's bidding deadline a burst starts.
pub const BURST_DELAY_MS: u64 = 50;

impl Schedule {
    fn rate(&self) -> f64 {
        match *self {
            Schedule::Steady { rate } | Schedule::Bursts { rate, .. } => rate,
        }
    }
}

/// How a phase runs.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec {
    /// Its name in progress lines.
    pub name: &'static str,
    /// When transactions are submitted.
    pub schedule: Schedule,
    /// How long to wait after the load for the last publications.
    pub drain: Duration,
}

/// What the load thread hands back.
struct Generated {
    report: LoadReport,
    /// When each chunk (the whole load, or each burst) started, and its first index.
    starts: Vec<(Instant, usize)>,
    /// The slot each burst was aimed at (empty for a steady load).
    burst_slots: Vec<Slot>,
    /// CPU-seconds of the generator's threads.
    cpu_s: f64,
}

/// Runs the load generator on its own one-worker runtime in this thread.
fn generate(
    config: &LoadConfig,
    bodies: Vec<SignedCiphertext>,
    schedule: Schedule,
    clock: veil_sequencer::SlotClock,
    progress: &Arc<AtomicU64>,
) -> anyhow::Result<Generated> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("veil-loadgen")
        .enable_all()
        .build()?;
    let mut out = Generated {
        report: LoadReport::default(),
        starts: Vec::new(),
        burst_slots: Vec::new(),
        cpu_s: 0.0,
    };
    let (chunk, every) = match schedule {
        Schedule::Steady { .. } => (bodies.len().max(1), 0),
        Schedule::Bursts { size, every, .. } => (size.max(1), every.max(1)),
    };
    let mut next = clock.slot_at(now_ms());
    let mut first = 0;
    for part in bodies.chunks(chunk) {
        if every > 0 {
            // Just after slot `next`'s deadline: slot `next + 1` commits the burst.
            while clock.deadline_ms(next) + BURST_DELAY_MS <= now_ms() {
                next = next.next();
            }
            let at = clock.deadline_ms(next) + BURST_DELAY_MS;
            std::thread::sleep(Duration::from_millis(at.saturating_sub(now_ms())));
            out.burst_slots.push(next.next());
            next = Slot(next.0 + every);
        }
        out.starts.push((Instant::now(), first));
        first += part.len();
        let r = runtime.block_on(loadgen::run(config.clone(), part.to_vec(), progress.clone()))?;
        let total = &mut out.report;
        total.sent += r.sent;
        total.acked += r.acked;
        total.rejected += r.rejected;
        total.failed += r.failed;
        total.elapsed += r.elapsed;
        total.latencies_us.extend(r.latencies_us);
        total.acked_ids.extend(r.acked_ids);
    }
    // The generator's threads exit with its runtime: read their CPU while they live.
    out.cpu_s = cpu::threads_by_name()
        .iter()
        .filter(|(name, _)| name.starts_with("veil-loadgen"))
        .map(|(_, ns)| *ns as f64 / 1e9)
        .sum::<f64>();
    Ok(out)
}

/// Submits `prepared` to the cluster as `spec.schedule` says and follows every report until
/// each acked transaction is published (and every slot up to the load's end has reported)
/// or the drain time is over.
///
/// # Errors
/// If the load generator cannot connect or the node stops reporting.
pub fn run_phase(
    cluster: &Cluster,
    prepared: &Prepared,
    spec: &PhaseSpec,
    reporter: &Reporter,
) -> anyhow::Result<PhaseOutcome> {
    let node = cluster.node();
    let ingress = node.ingress();
    // Slots reported before the phase (empty ones) are not part of it.
    while cluster.reports.try_recv().is_ok() {}
    let metrics_before = node.metrics().encode();
    let stages_before = stats::stage_sums(&metrics_before);
    let store_before = ingress.store_stats();
    let cpu_before = CpuSnapshot::take(&cluster.keypers.pids());

    let config = LoadConfig {
        client: ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint())),
        connections: CONNECTIONS,
        rate: Some(spec.schedule.rate()),
        window: WINDOW,
    };
    let bodies: Vec<SignedCiphertext> = prepared
        .bodies
        .iter()
        .zip(&prepared.signatures)
        .map(|(b, s)| SignedCiphertext { ciphertext: b.clone(), payer_signature: *s })
        .collect();
    let progress = Arc::new(AtomicU64::new(0));
    let answered = progress.clone();
    let load_start_ms = now_ms();
    let first_submit = Instant::now();
    let (schedule, clock) = (spec.schedule, cluster.clock);
    let load = std::thread::Builder::new()
        .name("veil-loadgen".into())
        .spawn(move || generate(&config, bodies, schedule, clock, &progress))?;

    let mut tracker =
        Tracker { prepared, published_at: HashMap::new(), wrong: 0, slots: BTreeMap::new() };
    let mut load = Some(load);
    let mut generated: Option<Generated> = None;
    let mut load_end: Option<(Instant, u64)> = None;
    let mut acked: Vec<usize> = Vec::new();
    let mut next_note = Instant::now() + Duration::from_secs(5);
    loop {
        match cluster.reports.recv_timeout(Duration::from_millis(20)) {
            Ok(r) => tracker.on_report(r, Instant::now()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the sequencer stopped reporting")
            }
        }
        if load.as_ref().is_some_and(std::thread::JoinHandle::is_finished) {
            let g = load
                .take()
                .context("the load thread")?
                .join()
                .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
            acked = g
                .report
                .acked_ids
                .iter()
                .filter_map(|id| prepared.index.get(id).copied())
                .collect();
            load_end = Some((Instant::now(), now_ms()));
            generated = Some(g);
        }
        if Instant::now() >= next_note {
            next_note += Duration::from_secs(5);
            let last = tracker.slots.iter().next_back();
            reporter.note(&format!(
                "  {}: {:.0} s, {} answered, {} published, last slot {} ({} txs, commit->plaintext {} ms)",
                spec.name,
                first_submit.elapsed().as_secs_f64(),
                answered.load(Ordering::Relaxed),
                tracker.published_at.len(),
                last.map_or("-".into(), |(s, _)| s.to_string()),
                last.map_or(0, |(_, o)| o.committed),
                last.and_then(|(_, o)| o.c2p_ms).map_or("-".into(), |m| m.to_string()),
            ));
        }
        if let Some((ended, end_ms)) = load_end {
            // Done when every acked transaction is published and every slot closed before
            // the load's end has reported (an empty one too: a slot never reported is missed).
            let all = acked.iter().all(|i| tracker.published_at.contains_key(i));
            let last_due = cluster.clock.slot_at(end_ms);
            let reported = tracker.slots.keys().next_back().is_some_and(|s| *s >= last_due);
            if (all && reported) || ended.elapsed() > spec.drain {
                break;
            }
        }
    }
    let mut cpu = cpu_before.until(&CpuSnapshot::take(&cluster.keypers.pids()));
    let generated = generated.context("the load report")?;
    cpu.loadgen_s = generated.cpu_s;
    cpu.threads.insert("veil-loadgen".into(), generated.cpu_s);
    let rate = spec.schedule.rate();
    let load_end_ms = load_end.map_or(0, |(_, ms)| ms);
    let published = acked.iter().filter(|i| tracker.published_at.contains_key(i)).count();
    let last_publish = tracker.published_at.values().max().copied().unwrap_or(first_submit);
    let latencies_ms = acked
        .iter()
        .filter_map(|&i| {
            let at = tracker.published_at.get(&i)?;
            let (start, first) = generated
                .starts
                .iter()
                .rev()
                .find(|(_, first)| *first <= i)
                .copied()
                .unwrap_or((first_submit, 0));
            let scheduled = start + Duration::from_secs_f64((i - first) as f64 / rate);
            Some(at.saturating_duration_since(scheduled).as_secs_f64() * 1e3)
        })
        .collect();
    let metrics_after = node.metrics().encode();
    let counters = COUNTERS
        .iter()
        .map(|(label, name)| {
            let grew =
                stats::metric_sum(&metrics_after, name) - stats::metric_sum(&metrics_before, name);
            (*label, grew)
        })
        .collect();
    Ok(PhaseOutcome {
        counters,
        slots: tracker.slots,
        load_ms: (load_start_ms, load_end_ms),
        published,
        lost: acked.len() - published,
        wrong: tracker.wrong,
        span: last_publish.saturating_duration_since(first_submit),
        latencies_ms,
        cpu,
        store: store_delta(&store_before, &ingress.store_stats()),
        stage_means_ms: stats::stage_means_ms(&stages_before, &stats::stage_sums(&metrics_after)),
        burst_slots: generated.burst_slots,
        load: generated.report,
    })
}
