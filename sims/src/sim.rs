//! Running many markets: rayon across runs (each run is sequential and seeded), a progress
//! bar, output files, and the audit hash.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha3::{Digest, Sha3_256};

use crate::config::RunSpec;
use crate::market::Market;
use crate::metrics::{self, RunMetrics, SlotRecord};

/// Domain tag of audit hashes.
pub const AUDIT_DOMAIN: &[u8] = b"veil-sims/audit/v1";

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Its parameters.
    pub spec: RunSpec,
    /// Totals.
    pub metrics: RunMetrics,
    /// Per-slot records.
    pub records: Vec<SlotRecord>,
    /// The per-slot CSV.
    pub csv: String,
    /// sha3-256 over the label, every outcome hash, the CSV and the metrics JSON.
    pub audit: [u8; 32],
}

/// Runs one market to the end.
///
/// # Errors
/// See [`Market::run`].
pub fn run_one(spec: &RunSpec, progress: impl FnMut()) -> anyhow::Result<RunResult> {
    let mut market = Market::new(spec.clone())?;
    market.run(progress).with_context(|| spec.label())?;
    let csv = metrics::csv(&market.records, &market.metrics.builders);
    let json = serde_json::to_string(&market.metrics)?;
    let mut h = Sha3_256::new();
    h.update(AUDIT_DOMAIN);
    h.update(spec.label().as_bytes());
    for o in &market.outcome_hashes {
        h.update(o);
    }
    h.update(csv.as_bytes());
    h.update(json.as_bytes());
    Ok(RunResult {
        spec: spec.clone(),
        metrics: market.metrics.clone(),
        records: market.records.clone(),
        csv,
        audit: h.finalize().into(),
    })
}

/// A progress bar over `total` slots (drawn on stderr, hidden when it is not a terminal).
#[must_use]
pub fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} slots ({per_sec}, eta {eta}) {msg}")
    {
        pb.set_style(style);
    }
    pb
}

/// Runs every spec in parallel (rayon), results in input order.
///
/// # Errors
/// The first run that failed.
pub fn run_all(specs: &[RunSpec], show_progress: bool) -> anyhow::Result<Vec<RunResult>> {
    let total = specs.iter().map(|s| s.scenario.slots).sum();
    let pb = progress_bar(total, show_progress);
    let results: anyhow::Result<Vec<RunResult>> =
        specs.par_iter().map(|s| run_one(s, || pb.inc(1))).collect();
    pb.finish_and_clear();
    results
}

/// The audit hash of a whole set of runs: sha3-256 over each run's audit hash, in order.
#[must_use]
pub fn combined_audit(results: &[RunResult]) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(AUDIT_DOMAIN);
    for r in results {
        h.update(r.audit);
    }
    h.finalize().into()
}

/// One summary row per run.
#[must_use]
pub fn summary_csv(results: &[RunResult], extra: Option<(&str, &[f64])>) -> String {
    let mut s = String::new();
    if let Some((name, _)) = extra {
        s.push_str(name);
        s.push(',');
    }
    s.push_str(
        "label,mode,rule,adversaries,seed,arrivals,included_user,expired_user_txs,failed_swaps,\
         sandwiches,user_sandwich_loss,mev_sandwich,mev_backrun,mev_cross_arb,hedge_cost,\
         auction_revenue,welfare,hhi,top2_share,shill_wins,unconserved_slots,bid_rejections,audit\n",
    );
    for (i, r) in results.iter().enumerate() {
        let m = &r.metrics;
        if let Some((_, values)) = extra {
            s.push_str(&format!("{},", values[i]));
        }
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{}\n",
            m.label,
            m.mode,
            m.rule,
            m.adversaries,
            m.seed,
            m.arrivals,
            m.included_user,
            m.expired_user_txs,
            m.failed_swaps,
            m.sandwiches,
            m.user_sandwich_loss,
            m.mev["sandwich"],
            m.mev["backrun"],
            m.mev["cross_arb"],
            m.hedge_cost,
            m.auction_revenue,
            m.welfare,
            m.hhi,
            m.top2_share,
            m.shill_wins,
            m.unconserved_slots,
            m.bid_rejections.len(),
            hex::encode(r.audit),
        ));
    }
    s
}

/// Writes each run's CSV, the summaries and the audit hash under `dir`; returns the audit.
///
/// # Errors
/// On I/O failure.
pub fn write_outputs(dir: &Path, results: &[RunResult]) -> anyhow::Result<[u8; 32]> {
    fs::create_dir_all(dir.join("runs"))?;
    for r in results {
        fs::write(dir.join("runs").join(format!("{}.csv", r.spec.label())), &r.csv)?;
    }
    fs::write(dir.join("summary.csv"), summary_csv(results, None))?;
    let all: Vec<&RunMetrics> = results.iter().map(|r| &r.metrics).collect();
    fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&all)? + "\n")?;
    let audit = combined_audit(results);
    fs::write(dir.join("audit.txt"), hex::encode(audit) + "\n")?;
    Ok(audit)
}

/// The default output directory of a scenario: `target/sims/<name>`.
#[must_use]
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("target").join("sims").join(name)
}
