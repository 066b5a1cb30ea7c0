//! `veil keygen`: a new ed25519 key (a sequencer, builder, rollup admin or fee payer key).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ed25519_dalek::SigningKey;
use veil_primitives::hexbytes;

/// `veil keygen` arguments.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (`0x` hex, mode 0600). Refuses to overwrite.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes a key from the OS's randomness and prints its public key.
///
/// # Errors
/// If the file exists or cannot be written.
pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    write_key(&args.out, &key)?;
    println!("{}", hexbytes::encode(key.verifying_key().as_bytes()));
    Ok(())
}

/// Writes `key` as `0x` hex to a new file readable by its owner only.
///
/// # Errors
/// If the file exists or cannot be written.
pub fn write_key(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).with_context(|| format!("create {}", path.display()))?;
    let text = zeroize::Zeroizing::new(hexbytes::encode(&key.to_bytes()));
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file written by [`write_key`].
///
/// # Errors
/// An unreadable file or malformed hex.
pub fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?,
    );
    let bytes = hexbytes::decode_fixed::<32>(text.trim())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(SigningKey::from_bytes(&bytes))
}
