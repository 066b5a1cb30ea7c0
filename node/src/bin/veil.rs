//! The `veil` command-line entry point. It parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use veil_node::commands;

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
    Devnet(commands::devnet::DevnetArgs),
    /// Serve the QUIC transaction ingress and the encrypted mempool (durable, SQLite).
    Ingress(commands::ingress::IngressArgs),
    /// Run a sequencer node: ingress, keyper endpoint, auction, commit, decrypt, settle.
    Sequencer(commands::sequencer::SequencerArgs),
    /// Write a new ed25519 secret key file and print its public key.
    Keygen(commands::keygen::KeygenArgs),
    /// Run one keyper: hold a key share, validate the feed, release shares for commitments.
    Keyper(commands::keyper::KeyperArgs),
    /// Ask an ingress what it accepts (chain, slot, eons, minimum fee, limits); prints JSON.
    Info(commands::info::InfoArgs),
    /// Encrypt and submit one transaction or an atomic bundle; prints the acknowledged ids.
    Submit(commands::submit::SubmitArgs),
    /// Generate load against an ingress and print rate and latency percentiles.
    Loadgen(commands::loadgen::LoadgenArgs),
    /// Write a deterministic TEST committee public key set (for local runs and tests only).
    DevCommittee(commands::dev_committee::DevCommitteeArgs),
    /// Decrypt a ciphertext with a TEST committee rebuilt from its seed (for client authors).
    DevDecrypt(commands::dev_decrypt::DevDecryptArgs),
    /// The data API of a node over HTTP: bids received, blocks delivered, slot outcomes.
    Data(commands::data::DataArgs),
    /// Transactions over HTTP: `veil tx status <id>`.
    Tx(commands::tx::TxArgs),
    /// The encrypted mempool over HTTP: a page from a cursor, or `--follow` the live stream.
    Mempool(commands::mempool::MempoolArgs),
    /// A rollup over HTTP: register, configure, rotate the admin key, show, blocks, payouts.
    Rollup(commands::rollup::RollupArgs),
    /// A builder's collateral over HTTP: show, deposit (bridge-signed), withdraw.
    Builder(commands::builder::BuilderArgs),
    /// A user's fee account over HTTP: show, deposit (bridge-signed).
    User(commands::user::UserArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Devnet(args) => runtime().and_then(|rt| rt.block_on(commands::devnet::run(args))),
        Command::DevCommittee(args) => commands::dev_committee::run(&args),
        Command::DevDecrypt(args) => commands::dev_decrypt::run(&args),
        Command::Ingress(args) => {
            runtime().and_then(|rt| rt.block_on(commands::ingress::run(args)))
        }
        Command::Sequencer(args) => {
            runtime().and_then(|rt| rt.block_on(commands::sequencer::run(args)))
        }
        Command::Keygen(args) => commands::keygen::run(&args),
        // One link is all a keyper's reactor carries; the work runs on the keyper's threads.
        Command::Keyper(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(commands::keyper::run(args))),
        Command::Info(args) => runtime().and_then(|rt| rt.block_on(commands::info::run(args))),
        Command::Submit(args) => runtime().and_then(|rt| rt.block_on(commands::submit::run(args))),
        Command::Data(args) => runtime().and_then(|rt| rt.block_on(commands::data::run(args))),
        Command::Tx(args) => runtime().and_then(|rt| rt.block_on(commands::tx::run(args))),
        Command::Mempool(args) => {
            runtime().and_then(|rt| rt.block_on(commands::mempool::run(args)))
        }
        Command::Rollup(args) => runtime().and_then(|rt| rt.block_on(commands::rollup::run(args))),
        Command::Builder(args) => {
            runtime().and_then(|rt| rt.block_on(commands::builder::run(args)))
        }
        Command::User(args) => runtime().and_then(|rt| rt.block_on(commands::user::run(args))),
        Command::Loadgen(args) => {
            runtime().and_then(|rt| rt.block_on(commands::loadgen::run(args)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
