//! `veil dev-decrypt`: decrypts one ciphertext with a TEST committee rebuilt from its public
//! seed, or says which check it fails.
//!
//! For client authors: the ingress cannot check a ciphertext's body, so a client with a wrong
//! key derivation or padding gets acks and finds out only when its committed transaction
//! fails to decrypt. Encrypting to a dev committee (`veil dev-committee`) and running this
//! command on the result finds that out at once (`crypto/CIPHERTEXT.md`, "Decrypting for a
//! dev committee"). It cannot decrypt anything encrypted to a real committee: only a dev
//! committee's secrets follow from a number anyone can know.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use veil_crypto::dev::DevCommittee;
use veil_crypto::CryptoError;
use veil_primitives::hexbytes::{self, HexBytes};
use veil_primitives::{ChainId, Eon};

/// `veil dev-decrypt` arguments: the ciphertext, and the dev committee as `veil dev-committee`
/// takes it (same flags, same defaults).
#[derive(Debug, Args)]
pub struct DevDecryptArgs {
    /// The ciphertext, 0x-hex.
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub ciphertext: Option<HexBytes>,
    /// A file holding the ciphertext: its raw bytes, or 0x-hex text.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The dev committee, as given to `veil dev-committee`.
    #[command(flatten)]
    pub committee: super::args::DevCommitteeParams,
}

/// The eon of every committee `veil dev-committee` writes.
const DEV_EON: Eon = Eon(1);

/// The check a ciphertext failed, in the order nodes apply them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Strict decoding of the encoding (CIPHERTEXT.md, "Checks").
    Decoding,
    /// The ciphertext names another chain or eon than the committee's.
    Context,
    /// The validity proof does not verify.
    Proof,
    /// The AEAD tag does not verify under the derived key: a wrong key derivation, nonce or
    /// associated data.
    Aead,
    /// The tag verifies but the padding is malformed.
    Padding,
}

impl Check {
    /// The check that `e`, an error of [`DevCommittee::decrypt`], reports.
    #[must_use]
    pub fn of(e: &CryptoError) -> Check {
        match e {
            CryptoError::WrongChain { .. } | CryptoError::WrongEon { .. } => Check::Context,
            CryptoError::BadProof => Check::Proof,
            CryptoError::AeadFailure => Check::Aead,
            CryptoError::BadPadding => Check::Padding,
            _ => Check::Decoding,
        }
    }

    /// The name printed for it (and used in CIPHERTEXT.md).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Check::Decoding => "decoding",
            Check::Context => "context",
            Check::Proof => "proof",
            Check::Aead => "aead",
            Check::Padding => "padding",
        }
    }
}

/// A ciphertext that does not decrypt under the dev committee.
#[derive(Debug, thiserror::Error)]
#[error("check failed: {}: {reason}", check.name())]
pub struct DevDecryptError {
    /// The first check that failed.
    pub check: Check,
    /// Its reason.
    pub reason: CryptoError,
}

/// Runs `veil dev-decrypt`: prints the id, the metadata and the payload to stdout.
///
/// # Errors
/// Bad arguments, an unreadable file, or a [`DevDecryptError`] naming the failed check.
pub fn run(args: &DevDecryptArgs) -> anyhow::Result<()> {
    eprintln!(
        "WARNING: dev-decrypt rebuilds a TEST committee from its public seed; it decrypts only \
         what was encrypted to such a committee, and so can anyone who knows the seed. Never \
         encrypt anything real to a dev committee."
    );
    let bytes = match (&args.ciphertext, &args.file) {
        (Some(hex), _) => hex.0.clone(),
        (None, Some(path)) => {
            let raw = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            decode_file(raw).with_context(|| format!("{}: invalid 0x-hex", path.display()))?
        }
        (None, None) => anyhow::bail!("pass --ciphertext or --file"),
    };
    let committee = DevCommittee::from_seed(
        ChainId(args.committee.chain_id),
        DEV_EON,
        args.committee.keypers,
        args.committee.threshold,
        args.committee.seed,
    )
    .context("committee parameters")?;
    let (ct, payload) = committee
        .decrypt(&bytes)
        .map_err(|reason| DevDecryptError { check: Check::of(&reason), reason })?;
    let ad = ct.ad();
    println!("id          {}", ct.id());
    println!("chain       {}", ad.chain_id);
    println!("eon         {}", ad.eon);
    println!("rollup      {}", ad.rollup);
    println!("fee payer   {}", hexbytes::encode(&ad.fee_payer.0));
    println!("max fee     {}", ad.max_fee.0);
    println!("gas limit   {}", ad.gas_limit);
    println!("expiry slot {}", ad.expiry_slot.0);
    match &ad.bundle {
        None => println!("bundle      none"),
        Some(b) => {
            println!("bundle      {} part {} of {}", hexbytes::encode(&b.id.0), b.index, b.count)
        }
    }
    println!("payload     {} bytes", payload.len());
    println!("hex         {}", hexbytes::encode(&payload));
    if let Ok(text) = std::str::from_utf8(&payload) {
        println!("text        {text:?}");
    }
    Ok(())
}

/// A ciphertext file holds its raw bytes (which begin with the version byte, never `0`) or
/// `0x`-hex text, surrounding whitespace allowed.
fn decode_file(raw: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    match std::str::from_utf8(&raw).map(str::trim) {
        Ok(text) if text.starts_with("0x") => Ok(hexbytes::decode(text)?),
        _ => Ok(raw),
    }
}
