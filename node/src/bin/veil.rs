//! The `veil` command-line entry point. It parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Veil: a marketplace for cross-rollup block slots with a threshold-encrypted mempool.
#[derive(Debug, Parser)]
#[command(name = "veil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local devnet: sequencer, keypers, simulated users and builders (embedded defaults).
    Devnet,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Devnet => {
            eprintln!("error: {}", veil_node::DEVNET_MISSING);
            ExitCode::from(2)
        }
    }
}
