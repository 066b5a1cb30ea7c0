//! `veil loadgen`: many connections, a target rate, a progress bar, a summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use veil_builder_api::loadgen::{self, prepare_transactions, LoadConfig};

use super::args::{load_committee, ServerArgs};

/// `veil loadgen` arguments.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Where the ingress is and the committee to encrypt to.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Transactions to send (all distinct, encrypted before the timed phase).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Target rate in tx/s over all connections; omitted: as fast as acks come back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 512)]
    pub payload_size: usize,
    /// Spread over this many rollups.
    #[arg(long, default_value_t = 4)]
    pub rollups: u32,
    /// Write every acknowledged id (one per line) to this file.
    #[arg(long)]
    pub acked_out: Option<PathBuf>,
    /// Seed that makes the transactions distinct from other runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `veil loadgen`.
///
/// # Errors
/// Bad arguments or a failure to connect.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.server.committee)?;
    eprintln!("encrypting {} transactions of {} bytes...", args.count, args.payload_size);
    let (count, size, rollups, seed) = (args.count, args.payload_size, args.rollups, args.seed);
    let txs =
        tokio::task::spawn_blocking(move || prepare_transactions(&pks, count, size, rollups, seed))
            .await?;
    let progress = Arc::new(AtomicU64::new(0));
    let bar = indicatif::ProgressBar::new(args.count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} answers ({per_sec})",
        )
        .expect("valid template"),
    );
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let config = LoadConfig {
        client: args.server.client_config()?,
        connections: args.connections,
        rate: args.rate,
        window: args.window,
    };
    let report = loadgen::run(config, txs, progress.clone()).await?;
    ticker.abort();
    bar.set_position(progress.load(Ordering::Relaxed));
    bar.finish();
    println!(
        "sent {} acked {} rejected {} failed {} in {:.2} s: {:.0} tx/s; ack latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        report.sent,
        report.acked,
        report.rejected,
        report.failed,
        report.elapsed.as_secs_f64(),
        report.ack_rate(),
        report.percentile_ms(50.0),
        report.percentile_ms(90.0),
        report.percentile_ms(99.0),
        report.percentile_ms(100.0),
    );
    if let Some(path) = &args.acked_out {
        let lines: String = report.acked_ids.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(path, lines).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
