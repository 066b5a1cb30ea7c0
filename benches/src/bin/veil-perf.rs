//! `veil-perf`: runs a performance suite and prints every figure beside its baseline.
//!
//! ```text
//! cargo run --release -p veil-benches --bin veil-perf -- crypto [--quick] [--json]
//! cargo build --release --bin veil   # the pipeline suite's keypers run as `veil keyper`
//! cargo run --release -p veil-benches --bin veil-perf -- pipeline [--quick] [--json]
//! ```

use clap::{Parser, ValueEnum};
use veil_benches::report::Reporter;

/// Veil's performance suites, each figure printed beside its baseline from the same run.
#[derive(Debug, Parser)]
#[command(name = "veil-perf", version, about)]
struct Cli {
    /// Which suite to run.
    suite: Suite,
    /// Fewer iterations: a quick look rather than a measurement to quote.
    #[arg(long)]
    quick: bool,
    /// One JSON object per line on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Suite {
    /// Threshold encryption: encrypt, admission check, keyper shares, block decryption.
    Crypto,
    /// Slot auction: close (first-price, VCG) and bid intake.
    Auction,
    /// QUIC ingest into the durable mempool, ack latency, pool memory.
    Ingest,
    /// Only the ingest suite's `pool_memory_1m` (it runs first there too, in a fresh process).
    PoolMemory,
    /// The HTTP API of a node: bid intake over HTTP, mempool stream lag.
    Api,
    /// The running system end to end: sequencer node, keypers as `veil keyper` processes
    /// (build `veil` first), commit-to-plaintext latency, sustained rate, short slots.
    Pipeline,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs only when asked (`RUST_LOG`, to stderr): the pipeline suite's keyper processes
    // inherit the same filter, so `RUST_LOG=warn,timeline=debug` times a slot across them.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let mut reporter = Reporter::new(cli.json);
    match cli.suite {
        Suite::Crypto => veil_benches::crypto::run(cli.quick, &mut reporter)?,
        Suite::Auction => veil_benches::auction::run(cli.quick, &mut reporter)?,
        Suite::Ingest => veil_benches::ingest::run(cli.quick, &mut reporter)?,
        Suite::PoolMemory => veil_benches::ingest::pool_memory(cli.quick, &mut reporter)?,
        Suite::Api => veil_benches::api::run(cli.quick, &mut reporter)?,
        Suite::Pipeline => veil_benches::pipeline::run(cli.quick, &mut reporter)?,
    }
    Ok(())
}
