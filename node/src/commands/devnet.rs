//! `veil devnet`: run the whole slot lifecycle on this machine.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::devnet::{self, DevnetConfig};

/// `veil devnet` arguments.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Directory for the databases; default: a new directory under the system temp dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Committee size.
    #[arg(long, default_value_t = 16)]
    pub keypers: u16,
    /// Threshold t: any t + 1 keypers decrypt.
    #[arg(long, default_value_t = 11)]
    pub threshold: u16,
    /// Keypers that send wrong shares (counted from keyper 1, in the default responder set).
    #[arg(long, default_value_t = 0)]
    pub byzantine: u16,
    /// Keypers that never send shares (the next ones after the byzantine keypers, in the
    /// default responder set, so that the fallback round replaces them).
    #[arg(long, default_value_t = 0)]
    pub silent: u16,
    /// Slot length in ms.
    #[arg(long, default_value_t = 1_000)]
    pub slot_ms: u64,
    /// Bidding window from each slot's start, in ms.
    #[arg(long, default_value_t = 500)]
    pub bid_window_ms: u64,
    /// Time after the close within which a slot must decrypt, in ms.
    #[arg(long, default_value_t = 1_000)]
    pub release_timeout_ms: u64,
    /// Stop after this many slots (exit 0); default: run until Ctrl-C.
    #[arg(long)]
    pub slots: Option<u64>,
    /// Simulated user transactions per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Run each keyper as a separate `veil keyper` process (key files and logs go to the data
    /// directory); by default they run in this process, each over its own QUIC link.
    #[arg(long)]
    pub keyper_processes: bool,
    /// Seed of the development committee (its secrets follow from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `veil devnet`.
///
/// # Errors
/// Bad arguments or a service that cannot start.
pub async fn run(args: DevnetArgs) -> anyhow::Result<()> {
    if args.threshold >= args.keypers {
        bail!("--threshold must be below --keypers (t + 1 of n decrypt)");
    }
    let data_dir = args.data_dir.unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::env::temp_dir().join(format!("veil-devnet-{stamp}"))
    });
    devnet::run(DevnetConfig {
        data_dir,
        keypers: args.keypers,
        threshold: args.threshold,
        byzantine: args.byzantine,
        silent: args.silent,
        slot_ms: args.slot_ms,
        bid_window_ms: args.bid_window_ms,
        release_timeout_ms: args.release_timeout_ms,
        slots: args.slots,
        rate: args.rate,
        json: args.json,
        seed: args.seed,
        keyper_processes: args.keyper_processes,
    })
    .await
}
