//! `veil keyper`: one committee member as its own process, linked to the sequencer over the
//! QUIC keyper protocol.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use veil_crypto::PublicKeySet;
use veil_primitives::PublicKeyBytes;

use crate::services::keyper::{Behaviour, KeyperKeyFile, KeyperSetup, RunningKeyper};

/// `veil keyper` arguments.
#[derive(Debug, Args)]
pub struct KeyperArgs {
    /// The committee's public key set (JSON).
    #[arg(long, env = "VEIL_KEYPER_COMMITTEE")]
    pub committee: PathBuf,
    /// This keyper's key file (its secret share and identity key; JSON, mode 0600).
    #[arg(long, env = "VEIL_KEYPER_KEY_FILE")]
    pub key_file: PathBuf,
    /// The sequencer's keyper endpoint (UDP).
    #[arg(long, env = "VEIL_KEYPER_SEQUENCER", default_value = "127.0.0.1:4434")]
    pub sequencer: SocketAddr,
    /// The sequencer's ed25519 key (0x hex): commitments and the link's welcome are signed by it.
    #[arg(long, env = "VEIL_KEYPER_SEQUENCER_KEY")]
    pub sequencer_key: PublicKeyBytes,
    /// Directory for the release-record log.
    #[arg(long, env = "VEIL_KEYPER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Worker threads for validation and shares; 0: one per core. Keypers that share a
    /// machine (a devnet's) should split its cores between them.
    #[arg(long, env = "VEIL_KEYPER_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Run this keyper at this Unix nice value or lower priority (0 to 19; 0 leaves it as
    /// started). For keypers that share a machine: those outside the committee's default
    /// responder set validate ahead of time but release shares only in a fallback round, so
    /// they should yield the cores to the responders, whose shares every slot waits for.
    /// Validation of the feed runs at nice 10 or this value, whichever is lower priority.
    #[arg(long, env = "VEIL_KEYPER_NICE", default_value_t = 0,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
    /// Misbehave, for devnets and tests: send wrong shares, or none.
    #[arg(long, value_enum, default_value = "honest", hide = true)]
    pub behaviour: Behaviour,
}

/// Runs `veil keyper` until Ctrl-C or SIGTERM.
///
/// # Errors
/// Unreadable or mismatched key files, or a log that cannot be opened.
pub async fn run(args: KeyperArgs) -> anyhow::Result<()> {
    let pks = PublicKeySet::from_json(
        &std::fs::read_to_string(&args.committee)
            .with_context(|| format!("read {}", args.committee.display()))?,
    )
    .with_context(|| format!("committee {}", args.committee.display()))?;
    let file: KeyperKeyFile = serde_json::from_str(
        &std::fs::read_to_string(&args.key_file)
            .with_context(|| format!("read {}", args.key_file.display()))?,
    )
    .with_context(|| format!("key file {}", args.key_file.display()))?;
    let (share, identity) = file.keys()?;
    std::fs::create_dir_all(&args.data_dir)?;
    // Before any worker thread starts: threads inherit the priority of the thread that
    // spawns them, and on Linux the call applies to the calling thread only.
    // Only a matter of speed: a system that refuses leaves the keyper at normal priority.
    if args.nice > 0 {
        if let Err(e) = crate::priority::lower(args.nice) {
            tracing::warn!(error = %format!("{e:#}"), "running at normal priority");
        }
    }
    let index = share.index().get();
    let keyper = RunningKeyper::start(KeyperSetup {
        pks,
        share,
        identity,
        sequencer: args.sequencer,
        sequencer_key: args.sequencer_key,
        log_path: args.data_dir.join("keyper.sqlite"),
        behaviour: args.behaviour,
        threads: Some(if args.threads > 0 {
            args.threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    })?;
    eprintln!(
        "keyper {index}: linking to the sequencer at {}; records in {}",
        args.sequencer,
        args.data_dir.display()
    );
    shutdown_signal().await;
    keyper.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
