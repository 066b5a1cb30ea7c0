//! `veil submit`: encrypt and submit one transaction or an atomic bundle, and optionally
//! wait for its signed inclusion receipts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use veil_builder_api::{encrypt, encrypt_bundle, RetryPolicy, Submitter};
use veil_primitives::hexbytes::HexBytes;
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
    /// Last slot of inclusion.
    #[arg(long, default_value_t = 1_000)]
    pub expiry_slot: u64,
    /// Fee payer public key, 0x-hex of 32 bytes.
    #[arg(long)]
    pub fee_payer: Option<PublicKeyBytes>,
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
    let base = TxMeta {
        chain_id: pks.chain_id(),
        eon: pks.eon(),
        rollup: RollupId(args.rollup),
        fee_payer: args.fee_payer.unwrap_or_default(),
        max_fee: Amount(args.max_fee),
        gas_limit: args.gas_limit,
        expiry_slot: Slot(args.expiry_slot),
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
    let submitter = Submitter::new(args.server.client_config()?, RetryPolicy::default());
    let ids = if parts.len() == 1 {
        let ct = encrypt(&pks, &parts[0].0, &parts[0].1)?;
        vec![submitter.submit(&ct).await?]
    } else {
        let mut id = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let refs: Vec<(TxMeta, &[u8])> = parts.iter().map(|(ad, p)| (*ad, p.as_slice())).collect();
        let cts = encrypt_bundle(&pks, BundleId(id), &refs)?;
        submitter.submit_bundle(&cts).await?
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
