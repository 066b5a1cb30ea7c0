//! `veil-sims sweep`: one scenario matrix over seeds and a swept parameter.

use std::fs;
use std::path::Path;

use crate::config::{MempoolMode, SweepFile};
use crate::sim::{self, RunResult};
use veil_auction::PaymentRule;

/// Runs the sweep, writes `sweep.csv` (one row per run, the parameter first) and the plot
/// `sweep_user_loss` (mean loss to sandwiches across seeds against the parameter, per
/// mempool mode, first-price, no adversaries). Returns the audit hash.
///
/// # Errors
/// If the sweep names an unknown parameter, a run fails, or writing fails.
pub fn run(file: &SweepFile, dir: &Path, show_progress: bool) -> anyhow::Result<[u8; 32]> {
    let points = file.runs()?;
    let specs: Vec<_> = points.iter().map(|(_, s)| s.clone()).collect();
    let values: Vec<f64> = points.iter().map(|(v, _)| *v).collect();
    let results = sim::run_all(&specs, show_progress)?;
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("sweep.csv"),
        sim::summary_csv(&results, Some((file.parameter.as_str(), &values))),
    )?;
    let mut series = Vec::new();
    for mode in [MempoolMode::Plaintext, MempoolMode::Encrypted] {
        let pts: Vec<(f64, f64)> = file
            .values
            .iter()
            .map(|v| {
                let runs: Vec<&RunResult> = results
                    .iter()
                    .zip(&values)
                    .filter(|(r, x)| {
                        **x == *v
                            && r.spec.mode == mode
                            && r.spec.rule == PaymentRule::FirstPrice
                            && r.spec.adversaries.label() == "none"
                    })
                    .map(|(r, _)| r)
                    .collect();
                let mean = runs.iter().map(|r| r.metrics.user_sandwich_loss).sum::<f64>()
                    / runs.len().max(1) as f64;
                (*v, mean)
            })
            .collect();
        series.push((mode.name().to_string(), pts));
    }
    crate::plot::lines(
        dir,
        "sweep_user_loss",
        &format!("Loss to sandwiches against {}", file.parameter),
        (file.parameter.as_str(), "quote units (mean over seeds)"),
        &series,
    )?;
    let audit = sim::combined_audit(&results);
    fs::write(dir.join("audit.txt"), hex::encode(audit) + "\n")?;
    Ok(audit)
}
