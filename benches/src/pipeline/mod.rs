//! The `pipeline` suite: the running system, end to end, on this machine.
//!
//! A sequencer node (QUIC ingress, keyper endpoint, sequencer thread, SQLite) runs in this
//! process; every keyper is a separate `veil keyper` process linked over QUIC, as in
//! `veil devnet --keyper-processes`; the SDK's load generator submits prepared (already
//! encrypted) transactions over QUIC from its own runtime in this process. Everything shares
//! the machine's cores, the load generator included: its CPU is reported.
//!
//! Without bids the sequencer fills each rollup's block from the pool in fee order (the
//! fallback block). Fees decrease with submission order, so blocks are first in, first out.
//!
//! | case | what | baseline (same run) |
//! |---|---|---|
//! | `pipeline_commit_to_plaintext_p99` | ms from the signed commitment published (durable, sent to the keypers) to the plaintext published (durable), as the node's shell stamps them in its `SlotReport`; p99 over blocks of exactly 1,000 txs (4 rollups, 2-s slots), missed slots counted as infinite | `decrypt_block` of the p99 slot's block, in-process, `t + 1` pre-verified batches |
//! | `pipeline_commit_to_plaintext_p99_junk` | the same with every 10th transaction of each rollup undecryptable by design (a valid proof over a random body) | `decrypt_block` of that slot's block |
//! | `pipeline_e2e_sustained` | tx/s published with their plaintexts over the steady slots of a steady open-loop load of at least 30 s, blocks uncapped; met only if no slot was missed, nothing was lost and no plaintext was wrong | the CPU model's ceiling: cores / CPU-seconds per transaction over the stages, each from an in-run microbenchmark (storage: the store threads' CPU in the run) |
//! | `pipeline_short_slots` | missed slots (undecryptable or never reported) at 250-ms slots, same load | - |
//!
//! # Loads the machine can carry
//!
//! Every keyper validates every ciphertext and the `t + 1` of the default responder set
//! also precompute their shares, so 16 keypers cost 16 validations and 12 share sets per
//! transaction, on the same cores as everything else. The
//! suite therefore sizes its loads from what it measures rather than assume the budget's
//! rates fit:
//!
//! - The latency cases submit each 1,000-transaction block as a burst just after a bidding
//!   deadline (the next slot commits it whole), one every `k` slots, `k` chosen from the
//!   CPU model so that the blocks' work takes at most 40% of the cores, and at least 2 so
//!   that a block's release does not overlap the next burst: the keypers get the time from
//!   the burst to the next deadline (about 2 s) to validate the block ahead of its
//!   commitment, as the design has them do. At one block every slot (500 tx/s), 16 keyper
//!   processes need more CPU than this machine has, and slots time out: the figure would
//!   then measure the backlog, not the release path.
//! - The sustained and short-slot cases offer 10% over the goal (1,100 tx/s), or less if a
//!   short steady probe measures a CPU cost per transaction that 70% of the cores left by
//!   other work cannot carry at that rate; the output says which. A missed goal is printed
//!   as missed.
//!
//! `--quick` runs 4 keypers (t = 2), fewer blocks, a lower rate and shorter loads: a smoke
//! test, not the budget's configuration.

pub mod cluster;
pub mod cpu;
pub mod load;
pub mod stats;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use veil_crypto::dev::DevCommittee;
use veil_crypto::{decrypt_block, Ciphertext, ShareBatch, VerifiedShareBatch};
use veil_node::sequencer_node::SlotTiming;
use veil_primitives::{Eon, Slot};
use veil_sequencer::slot::{DEFAULT_BID_WINDOW_MS, DEFAULT_RELEASE_TIMEOUT_MS, DEFAULT_SLOT_MS};

pub use cluster::veil_binary;
use cluster::{Cluster, ClusterSpec, CHAIN};
use cpu::{CpuModel, OperationCosts};
use load::{PhaseOutcome, PhaseSpec, Prepared, Schedule, TxPlan, CONNECTIONS, PAYLOAD};

use crate::report::{Better, Figure, Goal, Reporter};

const SUITE: &str = "pipeline";
/// Slots skipped at the start of each steady load (keypers and pool warming up).
const WARMUP_SLOTS: u64 = 2;
/// Share of the cores the latency cases' work may take on average (by the CPU model), so
/// that keypers validate each block ahead of its commitment, as the design has them do.
const LATENCY_LOAD: f64 = 0.4;
/// Share of the cores, at the CPU per transaction measured in the latency case, that the
/// sustained load may take when 10% over the goal is more than the machine can carry.
const SUSTAINED_LOAD: f64 = 0.7;
/// Seed of the dev committee.
const COMMITTEE_SEED: u64 = 1;

/// What a run does; see [`Plan::new`].
#[derive(Debug, Clone, Copy)]
struct Plan {
    keypers: u16,
    threshold: u16,
    rollups: u32,
    /// Transactions per block in the latency cases.
    block: usize,
    /// Blocks (bursts) measured per latency case.
    bursts: usize,
    /// Submissions per second within a burst.
    burst_rate: f64,
    /// The most offered to the sustained and short-slot cases, tx/s (10% over the goal).
    sustained_rate: f64,
    /// Load duration of the sustained case, s.
    sustained_secs: f64,
    /// Load duration of the probe that measures the CPU per transaction, s.
    probe_secs: f64,
    /// Load duration of the short-slot case, s.
    short_secs: f64,
    /// Slot length of the short-slot case, ms.
    short_slot_ms: u64,
    /// Timed runs per microbenchmark (median).
    reps: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        Plan {
            keypers: if quick { 4 } else { 16 },
            threshold: if quick { 2 } else { 11 },
            rollups: 4,
            block: 1000,
            bursts: if quick { 3 } else { 15 },
            burst_rate: 4_000.0,
            // 10% over the goal, so that a pipeline that keeps up can show it.
            sustained_rate: if quick { 500.0 } else { 1_100.0 },
            sustained_secs: if quick { 8.0 } else { 40.0 },
            probe_secs: if quick { 4.0 } else { 8.0 },
            short_secs: if quick { 6.0 } else { 30.0 },
            short_slot_ms: 250,
            reps: if quick { 3 } else { 7 },
        }
    }

    fn long_timing() -> SlotTiming {
        SlotTiming {
            slot_ms: DEFAULT_SLOT_MS,
            bid_window_ms: DEFAULT_BID_WINDOW_MS,
            release_timeout_ms: DEFAULT_RELEASE_TIMEOUT_MS,
        }
    }

    fn short_timing(&self) -> SlotTiming {
        SlotTiming {
            slot_ms: self.short_slot_ms,
            bid_window_ms: self.short_slot_ms / 2,
            release_timeout_ms: 1_000,
        }
    }
}

/// Runs the pipeline suite.
///
/// # Errors
/// If the `veil` binary is missing, a cluster cannot start, or the load cannot connect.
/// Missed goals are not errors: they are reported.
pub fn run(quick: bool, reporter: &mut Reporter) -> anyhow::Result<()> {
    let plan = Plan::new(quick);
    let veil = veil_binary()?;
    let cores = cores();
    reporter.note(&format!(
        "pipeline suite{}: {} keypers as `veil keyper` processes ({}), t={} ({} decrypt), {} rollups, \
         {PAYLOAD} B payloads, on {cores} cores ({}); the sequencer node and the load generator \
         (QUIC, {} connections) run in this process on the same cores, so load generation counts \
         against the machine (its CPU is reported)",
        if quick { " (--quick: 4 keypers, fewer slots, lower rate; not the budget's setup)" } else { "" },
        plan.keypers,
        veil.display(),
        plan.threshold,
        plan.threshold + 1,
        plan.rollups,
        cpu_model_name(),
        CONNECTIONS,
    ));
    let committee =
        DevCommittee::from_seed(CHAIN, Eon(1), plan.keypers, plan.threshold, COMMITTEE_SEED)?;

    // The CPU model's operations, timed before anything else runs.
    let fixture = load::prepare(&committee.pks, &tx_plan(&plan, plan.block, None, 99, Slot(100)))?;
    let costs =
        OperationCosts::measure(&committee, &fixture.bodies, &fixture.signatures, plan.reps)?;
    drop(fixture);
    reporter.note(&format!(
        "CPU per transaction, microbenchmarks of the same operations (one thread, blocks of {}, median of {}): \
         admission {:.1} us, one keyper's validation {:.1} us, one keyper's share {:.1} us, \
         decrypt ({} batch checks + decrypt_block) {:.1} us, receipt {:.1} us",
        costs.batch,
        plan.reps,
        costs.admission_us,
        costs.validation_us,
        costs.shares_us,
        costs.responders,
        costs.decrypt_us,
        costs.receipts_us
    ));
    reporter.note(&format!(
        "one keyper's whole feed handling (KeyperMachine::handle_ciphertexts: decode, proof check, \
         share): {:.1} us per ciphertext in runs of {}, {:.1} us in runs of {} (small runs amortise \
         the batched check less)",
        costs.keyper_feed_us.0,
        costs.batch,
        costs.keyper_feed_us.1,
        cpu::SMALL_RUN
    ));

    let burst_us = latency_cases(&plan, &veil, &committee, &costs, cores, reporter)?;
    let rate = sustained_case(&plan, &veil, &committee, &costs, cores, burst_us, reporter)?;
    short_slots_case(&plan, &veil, &committee, rate, reporter)?;
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The suite's processes' share of the machine's busy time over `c`.
fn suite_share(c: &cpu::CpuUsage, cores: usize) -> f64 {
    let busy = c.machine_busy * c.secs * cores as f64;
    if busy <= 0.0 {
        return 0.0;
    }
    ((c.this_process_s + c.keypers_s) / busy).min(1.0)
}

fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn tx_plan(
    plan: &Plan,
    count: usize,
    junk_every: Option<usize>,
    seed: u64,
    expiry: Slot,
) -> TxPlan {
    TxPlan {
        count,
        rollups: plan.rollups,
        junk_every,
        seed,
        // Each phase's fees sit below the previous phase's: leftovers go first.
        fee_base: 1_000_000_000 - u128::from(seed) * 10_000_000,
        expiry,
    }
}

/// Expiry for transactions submitted from now on: far enough for the whole phase and its
/// drain, within the pool's horizon.
fn expiry(cluster: &Cluster) -> Slot {
    let now = cluster.clock.slot_at(veil_node::services::sequencer::now_ms());
    Slot(now.0 + 5_000)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `decrypt_block` on the block `slot` committed, in this process: the ciphertexts decoded
/// from the prepared bytes, the default responders' batches computed and verified
/// beforehand (not timed); median wall time of `reps` runs.
fn decrypt_baseline(
    committee: &DevCommittee,
    prepared: &Prepared,
    outcome: &PhaseOutcome,
    slot: Slot,
    reps: usize,
) -> anyhow::Result<(f64, usize)> {
    let commitment = outcome
        .slots
        .get(&slot)
        .and_then(|o| o.commitment.as_ref())
        .context("the slot's commitment")?;
    let cts: Vec<Ciphertext> = commitment
        .message
        .ordered_ids()
        .map(|id| {
            let i = prepared.index.get(id).context("a committed id the phase did not send")?;
            Ok(Ciphertext::from_bytes(&prepared.bodies[*i])?)
        })
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let pks = &committee.pks;
    let responders = pks.default_responders();
    let batches: Vec<VerifiedShareBatch> = responders
        .members()
        .iter()
        .map(|m| {
            let i = usize::from(m.get()) - 1;
            let signed = ShareBatch::create(
                &committee.shares[i],
                &committee.identities[i],
                slot,
                &refs,
                Some(&responders),
            )?;
            Ok(pks.verify_share_batch(&signed)?)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rng = rand_core::OsRng;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..=reps {
        let start = Instant::now();
        let block = decrypt_block(pks, slot, &refs, &batches, &mut rng)?;
        times.push(ms(start.elapsed()));
        std::hint::black_box(block);
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], refs.len()))
}

/// What persisting a decrypted block's record costs the sequencer thread (it is on the
/// commit-to-plaintext path: the plaintext is published once it is durable): JSON encoding
/// of `block` plaintexts of `PAYLOAD` bytes, then the record log's append (SQLite, WAL,
/// `synchronous=FULL`), each the median of `reps` runs into a fresh log.
fn decrypted_record_ms(block: usize, reps: usize) -> anyhow::Result<(f64, f64)> {
    use veil_sequencer::slot::{PublishedBlock, PublishedTx, SlotRecord};
    let published = veil_sequencer::PublishedSlot {
        slot: Slot(1),
        blocks: vec![PublishedBlock {
            rollup: veil_primitives::RollupId(0),
            txs: (0..block)
                .map(|i| PublishedTx {
                    id: veil_primitives::TxId([(i % 251) as u8; 32]),
                    result: veil_sequencer::TxResult::Included(load::payload(0, i)),
                })
                .collect(),
        }],
        blamed: Vec::new(),
        fees: Vec::new(),
    };
    let record = SlotRecord::Decrypted { published };
    let dir = tempfile::tempdir()?;
    let (log, _) = veil_storage::records::RecordLog::open(&dir.path().join("records.sqlite"))?;
    let (mut json, mut append) = (Vec::new(), Vec::new());
    for i in 0..=reps {
        let start = Instant::now();
        let body = serde_json::to_vec(&record)?;
        json.push(ms(start.elapsed()));
        let start = Instant::now();
        log.append("decrypted", Slot(i as u64), &body)?;
        append.push(ms(start.elapsed()));
    }
    let median = |mut v: Vec<f64>| {
        v.remove(0);
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(json), median(append)))
}

/// The commit-to-plaintext times of `slots` (infinite for a slot missed: undecryptable or
/// never reported), and the slot with the largest finite one.
fn c2p_of(outcome: &PhaseOutcome, slots: &[Slot]) -> (Vec<f64>, Option<Slot>) {
    let values: Vec<(Slot, f64)> = slots
        .iter()
        .map(|s| {
            let v = outcome.slots.get(s).and_then(|o| o.c2p_ms).map_or(f64::INFINITY, |v| v as f64);
            (*s, v)
        })
        .collect();
    let worst = values
        .iter()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| *s);
    (values.into_iter().map(|(_, v)| v).collect(), worst)
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.0}"),
        Some(_) => "inf (missed)".into(),
        None => "-".into(),
    }
}

/// One latency phase's summary, for its figure.
struct Latency {
    c2p: Vec<f64>,
    worst_slot: Option<Slot>,
    missed: Vec<Slot>,
    outcome: PhaseOutcome,
    prepared: Prepared,
}

impl Latency {
    fn p(&self, p: f64) -> f64 {
        stats::percentile(&self.c2p, p).unwrap_or(f64::NAN)
    }
}

/// Slots between bursts of a block each, so that the block's work (by the CPU model) takes
/// at most `LATENCY_LOAD` of the cores on average, and at least 2, so that a block's release
/// path does not overlap the next burst's admission.
fn burst_spacing(plan: &Plan, costs: &OperationCosts, cores: usize, slot_secs: f64) -> u64 {
    let per_tx = costs.admission_us
        + costs.keypers as f64 * costs.keyper_feed_us.0
        + costs.decrypt_us
        + costs.receipts_us;
    let block_cpu_s = per_tx * plan.block as f64 / 1e6;
    ((block_cpu_s / (cores as f64 * slot_secs * LATENCY_LOAD)).ceil() as u64).max(2)
}

fn latency_phase(
    plan: &Plan,
    cluster: &Cluster,
    committee: &DevCommittee,
    every: u64,
    junk: bool,
    reporter: &Reporter,
) -> anyhow::Result<Latency> {
    let slot_secs = cluster.clock.slot_ms.get() as f64 / 1e3;
    let count = plan.block * plan.bursts;
    let name = if junk { "latency, 10% junk" } else { "latency" };
    reporter.note(&format!(
        "{name}: encrypting {count} transactions (not timed), then {} bursts of {} at {:.0} tx/s, one \
         every {every} slots of {slot_secs:.0} s, each starting {} ms after a bidding deadline so that \
         the next slot commits it whole ({:.0} tx/s on average)...",
        plan.bursts,
        plan.block,
        plan.burst_rate,
        load::BURST_DELAY_MS,
        plan.block as f64 / (every as f64 * slot_secs),
    ));
    let seed = if junk { 2 } else { 1 };
    let prepared = load::prepare(
        &committee.pks,
        &tx_plan(plan, count, junk.then_some(10), seed, expiry(cluster)),
    )?;
    let schedule = Schedule::Bursts { size: plan.block, every, rate: plan.burst_rate };
    let outcome = load::run_phase(
        cluster,
        &prepared,
        &PhaseSpec { name, schedule, drain: Duration::from_secs_f64(6.0 * slot_secs) },
        reporter,
    )?;
    let measured = outcome.burst_slots.clone();
    let missed = outcome.missed(&measured);
    let (c2p, worst_slot) = c2p_of(&outcome, &measured);
    let machine: Vec<f64> = measured
        .iter()
        .filter_map(|s| outcome.slots.get(s)?.machine_c2p_ms)
        .map(|v| v as f64)
        .collect();
    // Past half the release timeout after the deadline, the slot machine combines from
    // whichever batches it has (rescaling shares: one 12-point MSM per ciphertext) instead of
    // waiting for the whole target set: the slow path.
    let half = cluster.clock.release_timeout_ms / 2;
    let late = measured
        .iter()
        .filter(|s| {
            outcome.slots.get(s).is_some_and(|o| {
                o.committed_at_ms
                    .zip(o.machine_c2p_ms)
                    .is_some_and(|(c, m)| c + m >= cluster.clock.deadline_ms(**s) + half)
            })
        })
        .count();
    let blocks: Vec<&load::SlotOutcome> =
        measured.iter().filter_map(|s| outcome.slots.get(s)).collect();
    let junk_share: Vec<f64> = blocks
        .iter()
        .filter(|o| o.committed > 0 && !o.undecryptable)
        .map(|o| o.failed as f64 / o.committed as f64 * 100.0)
        .collect();
    reporter.note(&format!(
        "{name}: {} blocks (slots {}..{}), of {}..{} txs{}; commit->plaintext p50 {} ms, max {} ms; \
         {} missed; {} acked of {}, {} lost, {} wrong results",
        measured.len(),
        measured.first().map_or(0, |s| s.0),
        measured.last().map_or(0, |s| s.0),
        blocks.iter().map(|o| o.committed).min().unwrap_or(0),
        blocks.iter().map(|o| o.committed).max().unwrap_or(0),
        if junk && !junk_share.is_empty() {
            format!(
                ", {:.1}..{:.1}% of each block undecryptable",
                junk_share.iter().copied().fold(f64::INFINITY, f64::min),
                junk_share.iter().copied().fold(0.0, f64::max)
            )
        } else {
            String::new()
        },
        fmt_ms(stats::percentile(&c2p, 50.0)),
        fmt_ms(stats::percentile(&c2p, 100.0)),
        missed.len(),
        outcome.load.acked,
        outcome.load.sent,
        outcome.lost,
        outcome.wrong,
    ));
    reporter.note(&format!(
        "{name}: the slot machine's own commit_to_plaintext_ms (clock stopped when the last batch \
         arrives, before checking it and decrypting): p50 {} ms, p99 {} ms; {late} of {} blocks \
         combined past half the release timeout ({half} ms after the deadline), where the late \
         path may combine without the whole target set (rescaling shares)",
        fmt_ms(stats::percentile(&machine, 50.0)),
        fmt_ms(stats::percentile(&machine, 99.0)),
        measured.len(),
    ));
    note_stages(&outcome, reporter, name);
    Ok(Latency { c2p, worst_slot, missed, outcome, prepared })
}

/// The node's stage means and counters, and where the CPU went, over a phase.
fn note_stages(outcome: &PhaseOutcome, reporter: &Reporter, name: &str) {
    let stages: Vec<String> = ["close", "commit", "decrypt", "settle"]
        .iter()
        .filter_map(|s| outcome.stage_means_ms.get(*s).map(|(m, _)| format!("{s} {m:.1} ms")))
        .collect();
    let counters: Vec<String> =
        outcome.counters.iter().map(|(label, v)| format!("{label} {v:.0}")).collect();
    reporter.note(&format!(
        "{name}: node stage means (close = deadline to commitment decided, commit = to signed and \
         sent, decrypt = to plaintext durable, settle = to settled): {}; counters: {}",
        stages.join(", "),
        counters.join(", ")
    ));
    let c = &outcome.cpu;
    let n = outcome.published.max(1) as f64;
    let mut threads: Vec<(&String, &f64)> = c.threads.iter().filter(|(_, s)| **s >= 0.05).collect();
    threads.sort_by(|a, b| b.1.total_cmp(a.1));
    let threads: Vec<String> =
        threads.iter().map(|(t, s)| format!("{t} {:.0}", *s * 1e6 / n)).collect();
    reporter.note(&format!(
        "{name}: CPU per published tx: keyper processes {:.0} us, this process {:.0} us (by thread: {}; \
         `veil-perf` is the rayon pool: admission checks, decoding); machine {:.0}% busy over {:.0} s, \
         {:.0}% of that by this suite's processes (the rest: other work on the machine)",
        c.keypers_s * 1e6 / n,
        c.this_process_s * 1e6 / n,
        threads.join(", "),
        c.machine_busy * 100.0,
        c.secs,
        suite_share(c, cores()) * 100.0,
    ));
}

/// The latency cases; returns the CPU per published transaction measured in the clean one
/// (every process of the suite), in µs.
fn latency_cases(
    plan: &Plan,
    veil: &std::path::Path,
    committee: &DevCommittee,
    costs: &OperationCosts,
    cores: usize,
    reporter: &mut Reporter,
) -> anyhow::Result<f64> {
    let spec = ClusterSpec {
        timing: Plan::long_timing(),
        rollups: plan.rollups,
        cap_per_rollup: Some((plan.block / plan.rollups as usize) as u64),
    };
    let every = burst_spacing(plan, costs, cores, spec.timing.slot_ms as f64 / 1e3);
    let cluster = Cluster::start(veil, committee, &spec)?;
    let clean = latency_phase(plan, &cluster, committee, every, false, reporter)?;
    let junk = latency_phase(plan, &cluster, committee, every, true, reporter)?;
    cluster.stop();

    for (case, l) in [
        ("pipeline_commit_to_plaintext_p99", &clean),
        ("pipeline_commit_to_plaintext_p99_junk", &junk),
    ] {
        // The p99 slot's block, or (none decrypted) the first committed one.
        let slot = l
            .worst_slot
            .or_else(|| {
                l.outcome.burst_slots.iter().copied().find(|s| {
                    l.outcome
                        .slots
                        .get(s)
                        .is_some_and(|o| o.commitment.is_some() && o.committed > 0)
                })
            })
            .context("no block was committed")?;
        let (base, size) = decrypt_baseline(committee, &l.prepared, &l.outcome, slot, plan.reps)?;
        let mut unmet = Vec::new();
        if !l.missed.is_empty() {
            unmet.push(format!("{} of {} slots missed", l.missed.len(), l.c2p.len()));
        }
        if l.outcome.lost > 0 || l.outcome.wrong > 0 {
            unmet.push(format!("{} lost, {} wrong", l.outcome.lost, l.outcome.wrong));
        }
        reporter.record(Figure {
            suite: SUITE,
            case: case.into(),
            unit: "ms",
            ours: l.p(99.0),
            baseline: Some(base),
            baseline_name: format!(
                "decrypt_block of slot {slot}'s block ({size} txs, the p99 slot), in-process, {} pre-verified batches",
                plan.threshold + 1
            ),
            better: Better::Lower,
            goal: Some(Goal::at_most(50.0)),
            unmet: (!unmet.is_empty()).then(|| unmet.join("; ")),
        });
    }
    let (json_ms, append_ms) = decrypted_record_ms(plan.block, plan.reps)?;
    reporter.note(&format!(
        "on the commit->plaintext path besides decrypt_block: persisting the decrypted block's \
         record ({} plaintexts) takes {json_ms:.1} ms of JSON encoding + {append_ms:.1} ms of SQLite \
         append and fsync (measured alone, median of {})",
        plan.block, plan.reps
    ));
    reporter.note(&format!(
        "junk beside clean: p99 {} ms vs {} ms, p50 {} ms vs {} ms, over {} and {} blocks",
        fmt_ms(Some(junk.p(99.0))),
        fmt_ms(Some(clean.p(99.0))),
        fmt_ms(Some(junk.p(50.0))),
        fmt_ms(Some(clean.p(50.0))),
        junk.c2p.len(),
        clean.c2p.len(),
    ));
    let c = &clean.outcome.cpu;
    Ok((c.this_process_s + c.keypers_s) * 1e6 / clean.outcome.published.max(1) as f64)
}

fn sustained_case(
    plan: &Plan,
    veil: &std::path::Path,
    committee: &DevCommittee,
    costs: &OperationCosts,
    cores: usize,
    burst_us: f64,
    reporter: &mut Reporter,
) -> anyhow::Result<f64> {
    let spec =
        ClusterSpec { timing: Plan::long_timing(), rollups: plan.rollups, cap_per_rollup: None };
    let cluster = Cluster::start(veil, committee, &spec)?;
    let rate = offered_rate(plan, &cluster, committee, costs, cores, burst_us, reporter)?;
    let count = (rate * plan.sustained_secs) as usize;
    reporter.note(&format!(
        "sustained: encrypting {count} transactions (not timed), then {rate:.0} tx/s for {:.0} s, \
         2-s slots, blocks uncapped...",
        plan.sustained_secs
    ));
    let prepared = load::prepare(&committee.pks, &tx_plan(plan, count, None, 3, expiry(&cluster)))?;
    let outcome = load::run_phase(
        &cluster,
        &prepared,
        &PhaseSpec {
            name: "sustained",
            schedule: Schedule::Steady { rate },
            drain: Duration::from_secs(20),
        },
        reporter,
    )?;
    let clock = cluster.clock;
    cluster.stop();

    let slot_secs = clock.slot_ms.get() as f64 / 1e3;
    let steady = outcome.steady_slots(&clock, WARMUP_SLOTS);
    let all = outcome.steady_slots(&clock, 0);
    let missed = outcome.missed(&all);
    let published_steady: usize =
        steady.iter().filter_map(|s| outcome.slots.get(s)).map(|o| o.included + o.failed).sum();
    let window = steady.len() as f64 * slot_secs;
    let ours = if window > 0.0 { published_steady as f64 / window } else { 0.0 };

    // Storage: the CPU of the ingress store's writer and checkpoint threads in this run, per
    // row written or deleted, times rows per transaction.
    let s = &outcome.store;
    let rows = s.rows_written + s.rows_deleted + s.receipts_written;
    let store_s = outcome.cpu.threads_named("veil-mempool");
    let per_row_us = store_s * 1e6 / rows.max(1) as f64;
    let rows_per_tx = rows as f64 / outcome.published.max(1) as f64;
    let model: CpuModel = costs.model(
        per_row_us * rows_per_tx,
        format!(
            "{per_row_us:.1} us of CPU per row x {rows_per_tx:.1} rows (insert, delete, receipt): the store \
             threads in this run, {} group commits of {:.1} ms wall (fsync) each",
            s.commits,
            s.commit_us_total as f64 / 1e3 / s.commits.max(1) as f64
        ),
    );
    let ceiling = model.ceiling_tx_per_s(cores as f64);

    let mut unmet = Vec::new();
    if !missed.is_empty() {
        unmet.push(format!("{} slots missed", missed.len()));
    }
    let not_acked = outcome.load.sent - outcome.load.acked;
    if outcome.lost > 0 || outcome.wrong > 0 || not_acked > 0 {
        unmet
            .push(format!("{not_acked} not acked, {} lost, {} wrong", outcome.lost, outcome.wrong));
    }
    if window < 30.0 {
        unmet.push(format!("sustained {window:.0} s, not 30"));
    }
    reporter.note(&format!(
        "sustained: {} steady slots ({window:.0} s) of {}..{} txs; {} acked of {} sent, {} published, \
         {} lost, {} wrong, {} slots missed; submission->published p50 {:.0} ms p99 {:.0} ms; \
         commit->plaintext p99 {:.0} ms; conservative rate (all published / first submission to last \
         publication) {:.0} tx/s",
        steady.len(),
        steady.iter().filter_map(|s| outcome.slots.get(s)).map(|o| o.committed).min().unwrap_or(0),
        steady.iter().filter_map(|s| outcome.slots.get(s)).map(|o| o.committed).max().unwrap_or(0),
        outcome.load.acked,
        outcome.load.sent,
        outcome.published,
        outcome.lost,
        outcome.wrong,
        missed.len(),
        stats::percentile(&outcome.latencies_ms, 50.0).unwrap_or(f64::NAN),
        stats::percentile(&outcome.latencies_ms, 99.0).unwrap_or(f64::NAN),
        stats::percentile(&c2p_of(&outcome, &steady).0, 99.0).unwrap_or(f64::NAN),
        outcome.published as f64 / outcome.span.as_secs_f64().max(1e-9),
    ));
    note_stages(&outcome, reporter, "sustained");
    reporter.record(Figure {
        suite: SUITE,
        case: "pipeline_e2e_sustained".into(),
        unit: "tx/s",
        ours,
        baseline: Some(ceiling),
        baseline_name: format!(
            "CPU model ceiling: {cores} cores / {:.0} us of CPU per tx; offered {rate:.0} tx/s",
            model.total_us()
        ),
        better: Better::Higher,
        goal: Some(Goal::at_least(1_000.0)),
        unmet: (!unmet.is_empty()).then(|| unmet.join("; ")),
    });
    note_model(&model, &outcome, cores, reporter);
    Ok(rate)
}

/// The rate offered to the sustained and short-slot cases: 10% over the goal, unless the
/// machine cannot carry that. A short steady probe, at half the CPU model's ceiling,
/// measures the CPU a transaction costs under a steady load (more than in bursts or in the
/// model: smaller feed runs, more frames and wake-ups per transaction); the offer is then at
/// most `SUSTAINED_LOAD` of the cores at that cost, so that the case measures a rate the
/// pipeline sustains rather than a collapse. (The cost per transaction falls as the rate
/// and with it the batches grow, so the machine's maximum lies at or above the offer.)
fn offered_rate(
    plan: &Plan,
    cluster: &Cluster,
    committee: &DevCommittee,
    costs: &OperationCosts,
    cores: usize,
    burst_us: f64,
    reporter: &Reporter,
) -> anyhow::Result<f64> {
    let model_ceiling = costs.model(0.0, String::new()).ceiling_tx_per_s(cores as f64);
    let probe_rate = (model_ceiling / 2.0).min(plan.sustained_rate).max(20.0).round();
    let count = (probe_rate * plan.probe_secs) as usize;
    reporter.note(&format!(
        "probe: {probe_rate:.0} tx/s (half the CPU model's ceiling without storage, {model_ceiling:.0}) \
         for {:.0} s, steady, to measure the CPU per transaction...",
        plan.probe_secs
    ));
    let prepared = load::prepare(&committee.pks, &tx_plan(plan, count, None, 5, expiry(cluster)))?;
    let probe = load::run_phase(
        cluster,
        &prepared,
        &PhaseSpec {
            name: "probe",
            schedule: Schedule::Steady { rate: probe_rate },
            drain: Duration::from_secs(10),
        },
        reporter,
    )?;
    let c = &probe.cpu;
    let ours_s = c.this_process_s + c.keypers_s;
    let steady_us = ours_s * 1e6 / probe.published.max(1) as f64;
    // Cores other work on the machine left to the suite during the probe.
    let others = (c.machine_busy * cores as f64 - ours_s / c.secs.max(1e-9)).max(0.0);
    let available = (cores as f64 - others).max(0.25);
    let affordable = cpu::ceiling(available, steady_us) * SUSTAINED_LOAD;
    let rate = plan.sustained_rate.min(affordable).max(20.0).round();
    reporter.note(&format!(
        "probe: {steady_us:.0} us of CPU per transaction under a steady load ({burst_us:.0} us in the \
         latency case's bursts), i.e. at most {:.0} tx/s on {cores} cores; other work took {others:.2} \
         cores meanwhile; offered to the sustained and short-slot cases: {rate:.0} tx/s = min({:.0}, \
         {:.0}% of the {available:.2} cores left at that cost)",
        cpu::ceiling(cores as f64, steady_us),
        plan.sustained_rate,
        SUSTAINED_LOAD * 100.0,
    ));
    Ok(rate)
}

/// The CPU model's stages beside the CPU measured in the run.
fn note_model(model: &CpuModel, outcome: &PhaseOutcome, cores: usize, reporter: &Reporter) {
    let total = model.total_us();
    reporter.note(&format!(
        "CPU model, per transaction ({total:.0} us; ceiling {:.0} tx/s on {cores} cores):",
        model.ceiling_tx_per_s(cores as f64)
    ));
    for s in &model.stages {
        reporter.note(&format!(
            "  {:<18} {:>8.1} us  {:>4.1}%  {}",
            s.name,
            s.us_per_tx,
            s.us_per_tx / total * 100.0,
            s.how
        ));
    }
    let n = outcome.published.max(1) as f64;
    let c = &outcome.cpu;
    let measured = (c.this_process_s + c.keypers_s) * 1e6 / n;
    reporter.note(&format!(
        "measured in the run, per published transaction: {measured:.0} us of CPU = keyper processes \
         {:.0} us + this process {:.0} us (sequencer node {:.0} us, load generator {:.0} us); the \
         machine was {:.0}% busy over {:.0} s ({:.0}% of that by this suite's processes); what the \
         model leaves out (QUIC on every link, tokio, SQLite beyond its commits, the load generator) is \
         {:.0} us",
        c.keypers_s * 1e6 / n,
        c.this_process_s * 1e6 / n,
        (c.this_process_s - c.loadgen_s) * 1e6 / n,
        c.loadgen_s * 1e6 / n,
        c.machine_busy * 100.0,
        c.secs,
        suite_share(c, cores) * 100.0,
        measured - total,
    ));
}

fn short_slots_case(
    plan: &Plan,
    veil: &std::path::Path,
    committee: &DevCommittee,
    rate: f64,
    reporter: &mut Reporter,
) -> anyhow::Result<()> {
    let timing = plan.short_timing();
    let spec = ClusterSpec { timing, rollups: plan.rollups, cap_per_rollup: None };
    let cluster = Cluster::start(veil, committee, &spec)?;
    let count = (rate * plan.short_secs) as usize;
    reporter.note(&format!(
        "short slots: encrypting {count} transactions (not timed), then {rate:.0} tx/s for {:.0} s, \
         {} ms slots (bids close at +{} ms, release timeout {} ms)...",
        plan.short_secs, timing.slot_ms, timing.bid_window_ms, timing.release_timeout_ms
    ));
    let prepared = load::prepare(&committee.pks, &tx_plan(plan, count, None, 4, expiry(&cluster)))?;
    let outcome = load::run_phase(
        &cluster,
        &prepared,
        &PhaseSpec {
            name: "short slots",
            schedule: Schedule::Steady { rate },
            drain: Duration::from_secs(10),
        },
        reporter,
    )?;
    let clock = cluster.clock;
    cluster.stop();
    let all = outcome.steady_slots(&clock, 0);
    ensure!(!all.is_empty(), "the short-slot load ran for no whole slot");
    let missed = outcome.missed(&all);
    let never = missed.iter().filter(|s| !outcome.slots.contains_key(s)).count();
    let steady = outcome.steady_slots(&clock, WARMUP_SLOTS * 4);
    let published: usize =
        steady.iter().filter_map(|s| outcome.slots.get(s)).map(|o| o.included + o.failed).sum();
    let window = steady.len() as f64 * timing.slot_ms as f64 / 1e3;
    let (c2p, _) = c2p_of(&outcome, &all);
    reporter.note(&format!(
        "short slots: {} slots under load, {} missed ({} undecryptable, {never} never reported: the \
         sequencer thread does not open a slot it reaches after its bidding deadline){}; {:.0} tx/s published \
         over the steady slots; \
         commit->plaintext p50 {:.0} ms p99 {:.0} ms; {} acked of {}, {} lost, {} wrong",
        all.len(),
        missed.len(),
        missed.len() - never,
        if missed.is_empty() {
            String::new()
        } else {
            format!(" ({:?})", missed.iter().map(|s| s.0).collect::<Vec<_>>())
        },
        if window > 0.0 { published as f64 / window } else { 0.0 },
        stats::percentile(&c2p, 50.0).unwrap_or(f64::NAN),
        stats::percentile(&c2p, 99.0).unwrap_or(f64::NAN),
        outcome.load.acked,
        outcome.load.sent,
        outcome.lost,
        outcome.wrong,
    ));
    note_stages(&outcome, reporter, "short slots");
    let mut unmet = Vec::new();
    if outcome.lost > 0 || outcome.wrong > 0 {
        unmet.push(format!("{} lost, {} wrong", outcome.lost, outcome.wrong));
    }
    reporter.record(Figure {
        suite: SUITE,
        case: "pipeline_short_slots".into(),
        unit: "slots",
        ours: missed.len() as f64,
        baseline: None,
        baseline_name: format!(
            "of {} slots of {} ms at {rate:.0} tx/s (undecryptable or never reported)",
            all.len(),
            timing.slot_ms
        ),
        better: Better::Lower,
        goal: Some(Goal::at_most(0.0)),
        unmet: (!unmet.is_empty()).then(|| unmet.join("; ")),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The quick run end to end, as the smoke test: needs the `veil` binary of the same
    /// profile (`cargo build --release --bin veil`, then
    /// `cargo test --release -p veil-benches pipeline_quick -- --ignored`). Checks that every
    /// case reports a figure, not what the figures are.
    #[test]
    #[ignore = "starts processes and runs about a minute; needs the veil binary"]
    fn pipeline_quick() {
        let mut reporter = crate::report::Reporter::new(true);
        super::run(true, &mut reporter).unwrap();
        let cases: Vec<&str> = reporter.figures().iter().map(|f| f.case.as_str()).collect();
        assert_eq!(
            cases,
            [
                "pipeline_commit_to_plaintext_p99",
                "pipeline_commit_to_plaintext_p99_junk",
                "pipeline_e2e_sustained",
                "pipeline_short_slots"
            ]
        );
        assert!(reporter.figures().iter().all(|f| f.meets_goal().is_some()));
    }
}
