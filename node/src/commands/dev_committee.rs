//! `veil dev-committee`: writes a deterministic development committee's public key set.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use veil_crypto::dev::DevCommittee;

/// `veil dev-committee` arguments.
#[derive(Debug, Args)]
pub struct DevCommitteeArgs {
    /// Where to write the public key set (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed (the seed is the secret: these keys are for tests and local runs only).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `veil dev-committee`.
///
/// # Errors
/// If the file cannot be written.
pub fn run(args: &DevCommitteeArgs) -> anyhow::Result<()> {
    let c = DevCommittee::new(4, 1, args.seed);
    std::fs::write(&args.out, c.pks.to_json())
        .with_context(|| format!("write {}", args.out.display()))?;
    eprintln!(
        "wrote a TEST committee (4 keypers, threshold 1, chain {}, eon {}) to {}; its secrets follow from the seed: never use it for anything real",
        c.pks.chain_id(),
        c.pks.eon(),
        args.out.display()
    );
    Ok(())
}
