//! `veil submit`: encrypt one transaction or an atomic bundle, sign it as its fee payer, submit
//! it, and optionally wait for its signed inclusion receipts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use veil_builder_api::{encrypt, encrypt_bundle, RetryPolicy, Submitter};
use veil_primitives::hexbytes::HexBytes;
use veil_primitives::signed::public_key;
use veil_primitives::{Amount, BundleId, PublicKeyBytes, RollupId, SignedReceipt, Slot, TxMeta};

use super::args::{load_committee, BundlePartArg, ServerArgs};

/// `veil submit` arguments: one transaction, or an atomic bundle, from arguments or a file.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Where the ingress is and the committee to encrypt to.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Rollup of a single transaction.
    #[arg(long, default_value_t = 0)]
    pub rollup: u32,
    /// Payload of a single transaction, 0x-hex.
    #[arg(long, conflicts_with_all = ["payload_file", "part", "file"])]
    pub payload: Option<HexBytes>,
    /// Payload of a single transaction, read from a file.
    #[arg(long)]
    pub payload_file: Option<PathBuf>,
    /// A bundle part `ROLLUP:0xPAYLOAD`; two or more make an atomic bundle.
    #[arg(long)]
    pub part: Vec<BundlePartArg>,
    /// A JSON file: `{"parts": [{"rollup": 1, "payload": "0x..", "max_fee": "10"}, ...]}`;
    /// one part is a single transaction, several an atomic bundle. Per-part fields override
    /// the flags.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Max fee.
    #[arg(long, default_value_t = 1)]
    pub max_fee: u128,
    /// Gas limit.
    #[arg(long, default_value_t = 21_000)]
    pub gas_limit: u64,
    /// Last slot of inclusion; by default 100 slots after the server's current slot.
    #[arg(long)]
    pub expiry_slot: Option<u64>,
    /// The fee payer's secret key file (`veil keygen`): its public key is the transaction's
    /// fee payer and it signs every ciphertext. Its fee account must hold the max fee.
    #[arg(long, conflicts_with = "dev_payer", required_unless_present = "dev_payer")]
    pub payer_key: Option<PathBuf>,
    /// A TEST fee payer derived from this public seed, as `veil devnet` and `veil loadgen`
    /// derive theirs (anyone who knows the seed can sign as it).
    #[arg(long)]
    pub dev_payer: Option<u64>,
    /// After the ack, keep the connection open and wait for each transaction's signed
    /// inclusion receipt; print one `receipt` line per transaction.
    #[arg(long)]
    pub wait_receipt: bool,
    /// How long to wait for the receipts, in seconds (all of them together).
    #[arg(long, default_value_t = 60, requires = "wait_receipt")]
    pub receipt_timeout_secs: u64,
    /// The sequencer's public key (0x-hex of 32 bytes): check every receipt's signature and
    /// chain, and fail on a bad one. Without it receipts are printed unchecked.
    #[arg(long, requires = "wait_receipt")]
    pub sequencer_key: Option<PublicKeyBytes>,
}

#[derive(Debug, Deserialize)]
struct PartFile {
    parts: Vec<PartSpec>,
}

#[derive(Debug, Deserialize)]
struct PartSpec {
    rollup: u32,
    payload: HexBytes,
    #[serde(default)]
    max_fee: Option<Amount>,
    #[serde(default)]
    gas_limit: Option<u64>,
}

/// Runs `veil submit`; prints one id per line.
///
/// # Errors
/// Bad arguments, unreadable files, encryption or submission failures.
pub async fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.server.committee)?;
    let payer = payer_key(args.payer_key.as_deref(), args.dev_payer)?;
    let submitter = Submitter::new(args.server.client_config()?, RetryPolicy::default());
    let info = submitter.server_info().await?;
    super::args::check_ciphertext_version(&info)?;
    eprintln!(
        "ingress: chain {} slot {} eons {:?} min fee {}; fee payer {}",
        info.chain_id,
        info.current_slot,
        info.eons.iter().map(|e| e.0).collect::<Vec<_>>(),
        info.min_fee,
        public_key(&payer),
    );
    let base = TxMeta {
        chain_id: pks.chain_id(),
        eon: pks.eon(),
        rollup: RollupId(args.rollup),
        fee_payer: public_key(&payer),
        max_fee: Amount(args.max_fee),
        gas_limit: args.gas_limit,
        expiry_slot: Slot(args.expiry_slot.unwrap_or(info.current_slot.0 + 100)),
        bundle: None,
    };
    let mut parts: Vec<(TxMeta, Vec<u8>)> = Vec::new();
    if let Some(file) = &args.file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        let spec: PartFile = serde_json::from_str(&text)?;
        for p in spec.parts {
            let mut ad = base;
            ad.rollup = RollupId(p.rollup);
            ad.max_fee = p.max_fee.unwrap_or(ad.max_fee);
            ad.gas_limit = p.gas_limit.unwrap_or(ad.gas_limit);
            parts.push((ad, p.payload.0));
        }
    } else if !args.part.is_empty() {
        for p in &args.part {
            parts.push((TxMeta { rollup: p.rollup, ..base }, p.payload.0.clone()));
        }
    } else if let Some(p) = &args.payload {
        parts.push((base, p.0.clone()));
    } else if let Some(f) = &args.payload_file {
        parts.push((base, std::fs::read(f).with_context(|| format!("read {}", f.display()))?));
    } else {
        bail!("nothing to submit: pass --payload, --payload-file, --part or --file");
    }
    let ids = if parts.len() == 1 {
        let ct = encrypt(&pks, &parts[0].0, &parts[0].1)?;
        vec![submitter.submit(&ct, &payer).await?]
    } else {
        let mut id = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let refs: Vec<(TxMeta, &[u8])> = parts.iter().map(|(ad, p)| (*ad, p.as_slice())).collect();
        let cts = encrypt_bundle(&pks, BundleId(id), &refs)?;
        submitter.submit_bundle(&cts, &payer).await?
    };
    for id in &ids {
        println!("{id}");
    }
    if args.wait_receipt {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.receipt_timeout_secs);
        for id in &ids {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let receipt = match &args.sequencer_key {
                Some(key) => submitter.wait_verified_receipt(id, left, pks.chain_id(), key).await,
                None => submitter.wait_receipt(id, left).await,
            }
            .with_context(|| format!("receipt of {id}"))?;
            println!("{}", receipt_line(&receipt, args.sequencer_key.is_some()));
        }
    }
    Ok(())
}

/// The fee payer's signing key: a key file, or a TEST key derived from a public seed.
///
/// # Errors
/// An unreadable key file, or neither given.
pub fn payer_key(
    file: Option<&std::path::Path>,
    dev_seed: Option<u64>,
) -> anyhow::Result<SigningKey> {
    match (file, dev_seed) {
        (Some(f), _) => super::keygen::read_key(f),
        (None, Some(seed)) => Ok(dev_payer(seed)),
        (None, None) => bail!("no fee payer: pass --payer-key FILE or --dev-payer SEED"),
    }
}

/// The TEST fee payer of `seed`: the first of [`veil_builder_api::loadgen::payer_keys`].
#[must_use]
pub fn dev_payer(seed: u64) -> SigningKey {
    veil_builder_api::loadgen::payer_keys(seed, 1).remove(0)
}

/// One receipt as a line of `key=value` fields.
fn receipt_line(r: &SignedReceipt, verified: bool) -> String {
    let m = &r.message;
    format!(
        "receipt tx={} slot={} eon={} rollup={} position={} commitment={} signature={} verified={}",
        m.tx,
        m.slot,
        m.eon,
        m.rollup,
        m.position,
        m.commitment,
        veil_primitives::hexbytes::encode(&r.signature.0),
        verified,
    )
}
