//! Where the CPU goes: readers of Linux's per-process and per-thread CPU counters, the
//! in-run microbenchmarks of each stage's operation, and the CPU model built from them.
//!
//! The model is the budget's baseline for `pipeline_e2e_sustained`: the CPU-seconds one
//! transaction costs in each stage, summed, give the rate the machine's cores could carry
//! if they did nothing else (`ceiling = cores / CPU-seconds per transaction`). What the model
//! leaves out (QUIC on both sides of every link, the load generator, tokio's scheduling,
//! SQLite beyond its commits) is what the measured CPU per transaction adds on top.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::ensure;
use bytes::Bytes;
use veil_crypto::dev::DevCommittee;
use veil_crypto::{decrypt_block, Ciphertext, DecryptOutcome, ShareBatch, VerifiedShareBatch};
use veil_mempool::validate::{open_gate, CommitteeValidator, Submission, Validator};
use veil_primitives::{SignatureBytes, Slot};
use veil_sequencer::receipt::{receipts_for, ReceiptSigner};
use veil_sequencer::{
    Commitment, CommitmentVerifier, CommittedBlock, KeyFinalizer, KeyperConfig, KeyperMachine,
};

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI).
pub const USER_HZ: u64 = 100;

/// CPU time of this process's live threads in nanoseconds, from each thread's
/// `/proc/self/task/<tid>/schedstat` (nanosecond resolution; threads that exited are not
/// counted, so use it across code that keeps its threads, such as rayon's pool).
#[must_use]
pub fn live_threads_cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `utime + stime` in ticks from the text of a `/proc/<pid>/stat` file.
#[must_use]
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of a whole process (every thread, exited ones included) in nanoseconds, at tick
/// resolution (10 ms). `pid` is a number or `self`.
#[must_use]
pub fn process_cpu_ns(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat_cpu_ticks(&stat)? * (1_000_000_000 / USER_HZ))
}

/// `(busy, total)` ticks of the whole machine (every process, other builds included) from
/// the first line of `/proc/stat`; idle and I/O wait are not busy.
#[must_use]
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// This process's threads' CPU by thread name (digits and a trailing `-` dropped, so that a
/// pool's workers add up), in nanoseconds at tick resolution. Threads that exited are not
/// counted.
#[must_use]
pub fn threads_by_name() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for entry in dir.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        if let Some(ticks) = stat_cpu_ticks(&stat) {
            *out.entry(name.to_string()).or_insert(0) += ticks * (1_000_000_000 / USER_HZ);
        }
    }
    out
}

/// CPU counters at one instant: this process, each keyper process, the machine.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    /// When it was read.
    pub at: Instant,
    /// This process (sequencer node, load generator, the suite itself), ns.
    pub this_process_ns: u64,
    /// Each keyper process, ns (0 for one that is gone).
    pub keypers_ns: Vec<u64>,
    /// This process's threads by name, ns.
    pub threads: BTreeMap<String, u64>,
    /// The machine's `(busy, total)` ticks.
    pub machine: (u64, u64),
}

impl CpuSnapshot {
    /// Reads every counter now; `keyper_pids` are the keyper processes.
    #[must_use]
    pub fn take(keyper_pids: &[u32]) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            this_process_ns: process_cpu_ns("self").unwrap_or(0),
            keypers_ns: keyper_pids
                .iter()
                .map(|p| process_cpu_ns(&p.to_string()).unwrap_or(0))
                .collect(),
            threads: threads_by_name(),
            machine: machine_ticks().unwrap_or((0, 0)),
        }
    }

    /// What was used between `self` (earlier) and `later`.
    #[must_use]
    pub fn until(&self, later: &CpuSnapshot) -> CpuUsage {
        let secs = later.at.duration_since(self.at).as_secs_f64();
        let keypers_ns: u64 =
            later.keypers_ns.iter().zip(&self.keypers_ns).map(|(b, a)| b.saturating_sub(*a)).sum();
        let threads: BTreeMap<String, f64> = later
            .threads
            .iter()
            .map(|(name, ns)| {
                let before = self.threads.get(name).copied().unwrap_or(0);
                (name.clone(), ns.saturating_sub(before) as f64 / 1e9)
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        let (busy, total) = (
            later.machine.0.saturating_sub(self.machine.0),
            later.machine.1.saturating_sub(self.machine.1),
        );
        CpuUsage {
            secs,
            this_process_s: later.this_process_ns.saturating_sub(self.this_process_ns) as f64 / 1e9,
            loadgen_s: threads
                .iter()
                .filter(|(name, _)| name.starts_with("veil-loadgen"))
                .map(|(_, s)| s)
                .sum(),
            keypers_s: keypers_ns as f64 / 1e9,
            threads,
            machine_busy: if total == 0 { 0.0 } else { busy as f64 / total as f64 },
        }
    }
}

/// CPU used over an interval.
#[derive(Debug, Clone, Default)]
pub struct CpuUsage {
    /// The interval's length, s.
    pub secs: f64,
    /// CPU-seconds of this process (sequencer node + load generator + the suite).
    pub this_process_s: f64,
    /// CPU-seconds of the load generator's threads (inside `this_process_s`).
    pub loadgen_s: f64,
    /// CPU-seconds of all keyper processes.
    pub keypers_s: f64,
    /// Fraction of the machine's CPU time that was busy (any process).
    pub machine_busy: f64,
    /// CPU-seconds of this process's threads by name (threads that exited meanwhile are
    /// missing; names are cut at 15 bytes by the kernel).
    pub threads: BTreeMap<String, f64>,
}

impl CpuUsage {
    /// CPU-seconds of this process's threads whose name starts with `prefix`.
    #[must_use]
    pub fn threads_named(&self, prefix: &str) -> f64 {
        self.threads.iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, s)| s).sum()
    }
}

/// One stage of the CPU model: CPU-microseconds per transaction, and how it was obtained.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The stage, such as `admission`.
    pub name: &'static str,
    /// CPU-microseconds per transaction, summed over everyone who does it (16 keypers...).
    pub us_per_tx: f64,
    /// The operation timed and how it was scaled.
    pub how: String,
}

/// The CPU model: stage costs per transaction and the ceiling they imply.
#[derive(Debug, Clone, Default)]
pub struct CpuModel {
    /// The stages, in pipeline order.
    pub stages: Vec<Stage>,
}

impl CpuModel {
    /// CPU-microseconds per transaction over every stage.
    #[must_use]
    pub fn total_us(&self) -> f64 {
        self.stages.iter().map(|s| s.us_per_tx).sum()
    }

    /// Transactions per second `cores` could carry if they did only the modelled work:
    /// `cores / CPU-seconds per transaction` (infinite for an empty model).
    #[must_use]
    pub fn ceiling_tx_per_s(&self, cores: f64) -> f64 {
        ceiling(cores, self.total_us())
    }
}

/// `cores / (us_per_tx · 1e-6)`: how many transactions per second `cores` CPUs carry at
/// `us_per_tx` CPU-microseconds each.
#[must_use]
pub fn ceiling(cores: f64, us_per_tx: f64) -> f64 {
    if us_per_tx <= 0.0 {
        return f64::INFINITY;
    }
    cores * 1e6 / us_per_tx
}

/// Median CPU-microseconds per item of `f` over `reps` runs (after a warm-up run), each run
/// handling `items` items. CPU of every live thread of this process is counted, so rayon's
/// workers are included and a busy machine does not inflate the figure the way wall time
/// would.
fn cpu_us_per_item<T>(reps: usize, items: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    let mut runs: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let before = live_threads_cpu_ns();
            std::hint::black_box(f());
            (live_threads_cpu_ns().saturating_sub(before)) as f64 / 1e3 / items.max(1) as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// The per-operation CPU costs behind the model, measured in this process before the
/// cluster starts (nothing else of the suite running).
#[derive(Debug, Clone, Copy)]
pub struct OperationCosts {
    /// Keypers in the committee (each validates every ciphertext).
    pub keypers: usize,
    /// Share batches combined per block (`t + 1`): the default responder set, whose members
    /// compute a share of every ciphertext.
    pub responders: usize,
    /// Ciphertexts per timed batch.
    pub batch: usize,
    /// Admission: strict decode and batched proof check (the ingress validator), µs/tx.
    pub admission_us: f64,
    /// One keyper's validation: strict decode and batched proof check, µs/tx.
    pub validation_us: f64,
    /// One keyper's share for one ciphertext and its part of the signed batch, µs/tx.
    pub shares_us: f64,
    /// The sequencer's share batch checks (`t + 1` batches) and `decrypt_block`, µs/tx.
    pub decrypt_us: f64,
    /// Building and signing one inclusion receipt, µs/tx.
    pub receipts_us: f64,
    /// A keyper machine's whole feed handling (decode, proof check, share, hold) per
    /// ciphertext, in runs of `batch` and in runs of [`SMALL_RUN`]: `(large, small)`, µs/tx.
    pub keyper_feed_us: (f64, f64),
}

/// A small feed run, as keypers see at low rates (the feed arrives as admitted).
pub const SMALL_RUN: usize = 16;

impl OperationCosts {
    /// Times each operation on `bodies` (valid ciphertexts of `committee`, signed by their
    /// payers with `signatures`) with `reps` runs, on a one-thread rayon pool: the CPU counted
    /// is the work, not a pool's idle spinning.
    ///
    /// # Errors
    /// If the fixture does not check or decrypt (a bug in the suite).
    pub fn measure(
        committee: &DevCommittee,
        bodies: &[Bytes],
        signatures: &[SignatureBytes],
        reps: usize,
    ) -> anyhow::Result<OperationCosts> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "veil-perf-model".into())
            .build()?;
        pool.install(|| OperationCosts::measure_here(committee, bodies, signatures, reps))
    }

    fn measure_here(
        committee: &DevCommittee,
        bodies: &[Bytes],
        signatures: &[SignatureBytes],
        reps: usize,
    ) -> anyhow::Result<OperationCosts> {
        let pks = &committee.pks;
        let n = bodies.len();
        let mut rng = rand_core::OsRng;
        let validator = CommitteeValidator::new(vec![pks.clone()]);
        let submissions: Vec<Submission> = bodies
            .iter()
            .zip(signatures)
            .map(|(b, s)| Submission { body: b.clone(), payer_signature: *s })
            .collect();
        ensure!(
            validator.validate(&submissions, &open_gate, &mut rng).iter().all(Result::is_ok),
            "the fixture's ciphertexts do not pass admission"
        );
        let admission_us =
            cpu_us_per_item(reps, n, || validator.validate(&submissions, &open_gate, &mut rng));

        let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
        let validation_us = cpu_us_per_item(reps, n, || {
            let cts: Vec<Ciphertext> =
                Ciphertext::decode_many(&refs).into_iter().filter_map(Result::ok).collect();
            let cts: Vec<&Ciphertext> = cts.iter().collect();
            pks.verify_batch(&cts, &mut rng).len()
        });

        let cts: Vec<Ciphertext> =
            Ciphertext::decode_many(&refs).into_iter().collect::<Result<_, _>>()?;
        let cts: Vec<&Ciphertext> = cts.iter().collect();
        let responders = pks.default_responders();
        let slot = Slot(1);
        let shares_us = cpu_us_per_item(reps, n, || {
            ShareBatch::create(
                &committee.shares[0],
                &committee.identities[0],
                slot,
                &cts,
                Some(&responders),
            )
        });

        let signed: Vec<_> = responders
            .members()
            .iter()
            .map(|m| {
                let i = usize::from(m.get()) - 1;
                ShareBatch::create(
                    &committee.shares[i],
                    &committee.identities[i],
                    slot,
                    &cts,
                    Some(&responders),
                )
            })
            .collect::<Result<_, _>>()?;
        let batches: Vec<VerifiedShareBatch> =
            signed.iter().map(|b| pks.verify_share_batch(b)).collect::<Result<_, _>>()?;
        let block = decrypt_block(pks, slot, &cts, &batches, &mut rng)?;
        ensure!(
            block.outcomes.iter().all(|o| matches!(o, DecryptOutcome::Plaintext(_))),
            "the fixture's block does not decrypt"
        );
        let decrypt_us = cpu_us_per_item(reps, n, || {
            let verified: Vec<VerifiedShareBatch> =
                signed.iter().filter_map(|b| pks.verify_share_batch(b).ok()).collect();
            decrypt_block(pks, slot, &cts, &verified, &mut rng).map(|b| b.outcomes.len())
        });

        let commitment = Commitment {
            chain_id: pks.chain_id(),
            slot,
            eon: pks.eon(),
            blocks: vec![CommittedBlock {
                rollup: veil_primitives::RollupId(0),
                winner: None,
                payment: veil_primitives::Amount::ZERO,
                ciphertexts: cts.iter().map(|c| c.id()).collect(),
            }],
            outcome_hash: [0; 32],
        };
        let signer = KeyFinalizer::new(ed25519_dalek::SigningKey::from_bytes(&[0x5e; 32]));
        let receipts_us =
            cpu_us_per_item(reps, n, || signer.sign_receipts(receipts_for(&commitment)));

        let keyper_feed_us = (
            keyper_feed_us(committee, &refs, n, reps)?,
            keyper_feed_us(committee, &refs, SMALL_RUN, reps)?,
        );
        Ok(OperationCosts {
            keyper_feed_us,
            keypers: pks.committee_size(),
            responders: pks.shares_needed(),
            batch: n,
            admission_us,
            validation_us,
            shares_us,
            decrypt_us,
            receipts_us,
        })
    }

    /// The model: these costs per transaction, plus storage at `storage_us` per transaction
    /// (measured in the run: the CPU of the store's writer threads per transaction).
    #[must_use]
    pub fn model(&self, storage_us: f64, storage_how: String) -> CpuModel {
        let k = self.keypers as f64;
        CpuModel {
            stages: vec![
                Stage {
                    name: "admission",
                    us_per_tx: self.admission_us,
                    how: format!(
                        "ingress validator: strict decode + batched proof, batches of {}",
                        self.batch
                    ),
                },
                Stage {
                    name: "keyper validation",
                    us_per_tx: self.validation_us * k,
                    how: format!(
                        "{:.1} us x {} keypers (strict decode + batched proof each)",
                        self.validation_us, self.keypers
                    ),
                },
                Stage {
                    name: "shares",
                    us_per_tx: self.shares_us * self.responders as f64,
                    how: format!(
                        "{:.1} us x {} keypers (the default responder set precomputes its \
                         shares; the others only when asked; signed batch)",
                        self.shares_us, self.responders
                    ),
                },
                Stage {
                    name: "decrypt",
                    us_per_tx: self.decrypt_us,
                    how: format!(
                        "{} share batch checks + decrypt_block, blocks of {}",
                        self.responders, self.batch
                    ),
                },
                Stage {
                    name: "receipts",
                    us_per_tx: self.receipts_us,
                    how: "one ed25519-signed inclusion receipt".into(),
                },
                Stage { name: "storage", us_per_tx: storage_us, how: storage_how },
            ],
        }
    }
}

/// CPU-µs per ciphertext of keyper 1's [`KeyperMachine::handle_ciphertexts`] over `bodies`
/// fed in runs of `run` (a fresh machine per timed pass, so nothing is held already).
fn keyper_feed_us(
    committee: &DevCommittee,
    bodies: &[&[u8]],
    run: usize,
    reps: usize,
) -> anyhow::Result<f64> {
    let share_json = committee.shares[0].to_json();
    let machine = || -> anyhow::Result<KeyperMachine> {
        Ok(KeyperMachine::new(
            committee.pks.clone(),
            veil_crypto::SecretKeyShare::from_json(&share_json)?,
            committee.identities[0].clone(),
            CommitmentVerifier::Key(veil_primitives::PublicKeyBytes([0; 32])),
            KeyperConfig::default(),
        )?)
    };
    machine()?;
    let mut rng = rand_core::OsRng;
    Ok(cpu_us_per_item(reps, bodies.len(), || {
        let mut m = machine().expect("built once above");
        bodies.chunks(run.max(1)).map(|c| m.handle_ciphertexts(c, &mut rng).len()).sum::<usize>()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_is_cores_over_cpu_seconds_per_tx() {
        // 2 cores, 1,000 us of CPU per transaction: 2,000 tx/s.
        assert!((ceiling(2.0, 1_000.0) - 2_000.0).abs() < 1e-9);
        assert!((ceiling(1.0, 250.0) - 4_000.0).abs() < 1e-9);
        assert!(ceiling(2.0, 0.0).is_infinite());
        let model = CpuModel {
            stages: vec![
                Stage { name: "a", us_per_tx: 300.0, how: String::new() },
                Stage { name: "b", us_per_tx: 700.0, how: String::new() },
            ],
        };
        assert!((model.total_us() - 1_000.0).abs() < 1e-9);
        assert!((model.ceiling_tx_per_s(2.0) - 2_000.0).abs() < 1e-9);
    }

    #[test]
    fn the_model_counts_every_validation_and_the_responders_shares() {
        let costs = OperationCosts {
            keypers: 16,
            responders: 12,
            batch: 1000,
            admission_us: 50.0,
            validation_us: 40.0,
            shares_us: 30.0,
            decrypt_us: 20.0,
            receipts_us: 10.0,
            keyper_feed_us: (70.0, 90.0),
        };
        let model = costs.model(5.0, String::new());
        let by_name: BTreeMap<&str, f64> =
            model.stages.iter().map(|s| (s.name, s.us_per_tx)).collect();
        assert_eq!(by_name["keyper validation"], 640.0);
        assert_eq!(by_name["shares"], 360.0);
        assert!((model.total_us() - (50.0 + 640.0 + 360.0 + 20.0 + 10.0 + 5.0)).abs() < 1e-9);
    }

    #[test]
    fn stat_fields_after_a_command_with_spaces() {
        let stat = "1234 (veil keyper (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }
}
