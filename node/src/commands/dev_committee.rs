//! `veil dev-committee`: writes a deterministic development committee: its public key set
//! and, on request, each keyper's key file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use veil_crypto::dev::DevCommittee;
use veil_primitives::{ChainId, Eon};

use crate::services::keyper::KeyperKeyFile;

/// `veil dev-committee` arguments.
#[derive(Debug, Args)]
pub struct DevCommitteeArgs {
    /// Where to write the public key set (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// The committee's parameters.
    #[command(flatten)]
    pub committee: super::args::DevCommitteeParams,
    /// Also write each keyper's key file (`keyper-<i>.json`, mode 0600) into this directory,
    /// for `veil keyper --key-file`.
    #[arg(long)]
    pub keyper_keys: Option<PathBuf>,
}

/// Runs `veil dev-committee`.
///
/// # Errors
/// Invalid parameters, or a file that cannot be written.
pub fn run(args: &DevCommitteeArgs) -> anyhow::Result<()> {
    let c = DevCommittee::from_seed(
        ChainId(args.committee.chain_id),
        Eon(1),
        args.committee.keypers,
        args.committee.threshold,
        args.committee.seed,
    )
    .context("committee parameters")?;
    std::fs::write(&args.out, c.pks.to_json())
        .with_context(|| format!("write {}", args.out.display()))?;
    if let Some(dir) = &args.keyper_keys {
        std::fs::create_dir_all(dir)?;
        for (share, identity) in c.shares.iter().zip(&c.identities) {
            let path = dir.join(format!("keyper-{}.json", share.index().get()));
            KeyperKeyFile::new(share, identity).write(&path)?;
        }
    }
    eprintln!(
        "wrote a TEST committee ({} keypers, threshold {}, chain {}, eon {}) to {}{}; its secrets follow from the seed: never use it for anything real",
        args.committee.keypers,
        args.committee.threshold,
        c.pks.chain_id(),
        c.pks.eon(),
        args.out.display(),
        args.keyper_keys.as_ref().map_or(String::new(), |d| format!(" and key files to {}", d.display())),
    );
    Ok(())
}
