//! `veil-sims`: runs scenario files and sweeps, writes CSV and plots, prints the audit hash.

use std::fs;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use veil_sims::config::{ScenarioFile, SweepFile};
use veil_sims::{crypto_check, plot, sim, sweep};

#[derive(Debug, Parser)]
#[command(name = "veil-sims", about = "Deterministic agent-based simulations of Veil")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every variant of a scenario file; writes per-slot CSVs, summaries and plots.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Output directory (default: target/sims/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs a scenario matrix over seeds and one swept parameter; writes sweep.csv and a plot.
    Sweep {
        /// The sweep file (TOML).
        sweep: PathBuf,
        /// Output directory (default: target/sims/<scenario name>-sweep).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs the first variant of each mempool mode twice, once with real threshold encryption
    /// and decryption (veil-crypto), and compares the outcomes with the fast path.
    CryptoCheck {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Slots to run (real encryption is slow).
        #[arg(long, default_value_t = 10)]
        slots: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let show = std::io::stderr().is_terminal();
    let started = Instant::now();
    match cli.command {
        Command::Run { scenario, out } => {
            let text = fs::read_to_string(&scenario)
                .with_context(|| format!("reading {}", scenario.display()))?;
            let file: ScenarioFile = toml::from_str(&text)?;
            let dir = out.unwrap_or_else(|| sim::default_out(&file.scenario.name));
            let specs = file.runs();
            println!("running {} variants of {:?}", specs.len(), file.scenario.name);
            let results = sim::run_all(&specs, show)?;
            let audit = sim::write_outputs(&dir, &results)?;
            let figures = plot::standard_figures(&dir, &results)?;
            for r in &results {
                let m = &r.metrics;
                println!(
                    "{:<58} loss {:>10.2}  sandwich {:>10.2}  revenue {:>10.2}  hhi {:.3}  rejected {}",
                    m.label,
                    m.user_sandwich_loss,
                    m.mev["sandwich"],
                    m.auction_revenue,
                    m.hhi,
                    m.bid_rejections.len()
                );
            }
            println!("figures: {}", figures.join(", "));
            println!("wrote {}", dir.display());
            println!("elapsed {:.2}s", started.elapsed().as_secs_f64());
            println!("audit {}", hex::encode(audit));
        }
        Command::Sweep { sweep: path, out } => {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let file: SweepFile = toml::from_str(&text)?;
            let dir = out
                .unwrap_or_else(|| sim::default_out(&format!("{}-sweep", file.base.scenario.name)));
            let audit = sweep::run(&file, &dir, show)?;
            println!("wrote {}", dir.display());
            println!("elapsed {:.2}s", started.elapsed().as_secs_f64());
            println!("audit {}", hex::encode(audit));
        }
        Command::CryptoCheck { scenario, slots } => {
            let text = fs::read_to_string(&scenario)
                .with_context(|| format!("reading {}", scenario.display()))?;
            let file: ScenarioFile = toml::from_str(&text)?;
            // The first variant of each mempool mode.
            let mut seen = Vec::new();
            for mut spec in file.runs() {
                if seen.contains(&spec.mode) {
                    continue;
                }
                seen.push(spec.mode);
                spec.scenario.slots = slots;
                println!("{}", crypto_check::compare(&spec)?);
            }
            println!("elapsed {:.2}s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
