//! The `veil ingress`, `veil submit`, `veil loadgen` and `veil dev-committee` commands: argument
//! types and thin drivers over veil-mempool and veil-builder-api.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use rayon::prelude::*;
use serde::Deserialize;
use sha3::{Digest, Sha3_256};
use veil_builder_api::loadgen::{self, LoadConfig};
use veil_builder_api::{encrypt, encrypt_bundle, RetryPolicy, Submitter};
use veil_crypto::{AssociatedData, PublicKeySet};
use veil_mempool::client::ClientConfig;
use veil_mempool::ingress::{Ingress, IngressConfig};
use veil_mempool::pool::PoolConfig;
use veil_mempool::tls::{CertFingerprint, Pin};
use veil_mempool::validate::CommitteeValidator;
use veil_primitives::{Amount, BundleId, PublicKeyBytes, RollupId, Slot};

/// `veil ingress`: serve the QUIC ingress and the mempool until interrupted.
#[derive(Debug, Args)]
pub struct IngressArgs {
    /// Directory for the database and the TLS certificate (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// UDP address to listen on.
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,
    /// The committee's public key set (JSON, as written by veil-crypto).
    #[arg(long)]
    pub committee: PathBuf,
    /// The current slot (expired transactions are pruned against it at start).
    #[arg(long, default_value_t = 0)]
    pub slot: u64,
    /// Minimum max-fee admitted.
    #[arg(long, default_value_t = 0)]
    pub min_fee: u128,
}

/// How a client finds and recognises the ingress.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The ingress's UDP address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub server: SocketAddr,
    /// The ingress certificate's fingerprint (0x-hex sha3-256 of its DER).
    #[arg(long, conflicts_with = "cert")]
    pub fingerprint: Option<String>,
    /// The ingress certificate file (DER), instead of a fingerprint.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The committee's public key set (JSON) to encrypt to.
    #[arg(long)]
    pub committee: PathBuf,
}

impl ServerArgs {
    fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let pin = match (&self.fingerprint, &self.cert) {
            (Some(f), _) => Pin::Fingerprint(f.parse::<CertFingerprint>()?),
            (None, Some(path)) => Pin::from_cert_file(path)?,
            (None, None) => bail!("pass --fingerprint or --cert to pin the ingress certificate"),
        };
        Ok(ClientConfig::new(self.server, pin))
    }
}

fn load_committee(path: &PathBuf) -> anyhow::Result<PublicKeySet> {
    let json = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    PublicKeySet::from_json(&json).with_context(|| format!("parse {}", path.display()))
}

/// `veil submit`: one transaction, or an atomic bundle, from arguments or a file.
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
    pub payload: Option<String>,
    /// Payload of a single transaction, read from a file.
    #[arg(long)]
    pub payload_file: Option<PathBuf>,
    /// A bundle part `ROLLUP:0xPAYLOAD`; two or more make an atomic bundle.
    #[arg(long)]
    pub part: Vec<String>,
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
    pub fee_payer: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PartFile {
    parts: Vec<PartSpec>,
}

#[derive(Debug, Deserialize)]
struct PartSpec {
    rollup: u32,
    payload: String,
    #[serde(default)]
    max_fee: Option<Amount>,
    #[serde(default)]
    gas_limit: Option<u64>,
}

fn decode_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let digits = s.strip_prefix("0x").context("hex must start with 0x")?;
    Ok(hex::decode(digits)?)
}

/// Runs `veil submit`; prints one id per line.
///
/// # Errors
/// Bad arguments, unreadable files, encryption or submission failures.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.server.committee)?;
    let fee_payer = match &args.fee_payer {
        Some(s) => s.parse::<PublicKeyBytes>().map_err(|e| anyhow::anyhow!("--fee-payer: {e}"))?,
        None => PublicKeyBytes::default(),
    };
    let base = AssociatedData {
        chain_id: pks.chain_id(),
        eon: pks.eon(),
        rollup_id: RollupId(args.rollup),
        fee_payer,
        max_fee: Amount(args.max_fee),
        gas_limit: args.gas_limit,
        expiry_slot: Slot(args.expiry_slot),
        bundle: None,
    };
    let mut parts: Vec<(AssociatedData, Vec<u8>)> = Vec::new();
    if let Some(file) = &args.file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        let spec: PartFile = serde_json::from_str(&text)?;
        for p in spec.parts {
            let mut ad = base;
            ad.rollup_id = RollupId(p.rollup);
            ad.max_fee = p.max_fee.unwrap_or(ad.max_fee);
            ad.gas_limit = p.gas_limit.unwrap_or(ad.gas_limit);
            parts.push((ad, decode_hex(&p.payload)?));
        }
    } else if !args.part.is_empty() {
        for p in &args.part {
            let (rollup, payload) = p.split_once(':').context("--part is ROLLUP:0xPAYLOAD")?;
            let mut ad = base;
            ad.rollup_id = RollupId(rollup.parse()?);
            parts.push((ad, decode_hex(payload)?));
        }
    } else if let Some(p) = &args.payload {
        parts.push((base, decode_hex(p)?));
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
        let refs: Vec<(AssociatedData, &[u8])> =
            parts.iter().map(|(ad, p)| (*ad, p.as_slice())).collect();
        let cts = encrypt_bundle(&pks, BundleId(id), &refs)?;
        submitter.submit_bundle(&cts).await?
    };
    for id in ids {
        println!("{id}");
    }
    Ok(())
}

/// `veil loadgen`: many connections, a target rate, a progress bar, a summary.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Where the ingress is and the committee to encrypt to.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Transactions to send (all distinct, encrypted before the timed phase).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Target rate in tx/s over all connections; omitted: as fast as acks come back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 512)]
    pub payload_size: usize,
    /// Spread over this many rollups.
    #[arg(long, default_value_t = 4)]
    pub rollups: u32,
    /// Write every acknowledged id (one per line) to this file.
    #[arg(long)]
    pub acked_out: Option<PathBuf>,
    /// Seed that makes the transactions distinct from other runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Encrypts `count` distinct transactions in parallel: distinct fee payers (so that no
/// per-sender quota is hit), spread over `rollups`.
#[must_use]
pub fn prepare_transactions(
    pks: &PublicKeySet,
    count: usize,
    payload_size: usize,
    rollups: u32,
    seed: u64,
) -> Vec<Bytes> {
    (0..count)
        .into_par_iter()
        .map(|i| {
            let mut h = Sha3_256::new();
            h.update(seed.to_be_bytes());
            h.update((i as u64).to_be_bytes());
            let payer: [u8; 32] = h.finalize().into();
            let ad = AssociatedData {
                chain_id: pks.chain_id(),
                eon: pks.eon(),
                rollup_id: RollupId(i as u32 % rollups.max(1)),
                fee_payer: PublicKeyBytes(payer),
                max_fee: Amount(1 + (i as u128 % 1000)),
                gas_limit: 21_000,
                expiry_slot: Slot(5_000),
                bundle: None,
            };
            let mut payload = vec![0u8; payload_size];
            payload[..8.min(payload_size)]
                .copy_from_slice(&(i as u64).to_be_bytes()[..8.min(payload_size)]);
            let ct = pks
                .encrypt(&ad, &payload, &mut rand_core::OsRng)
                .expect("the committee's own chain and eon, payload within bounds");
            Bytes::from(ct.into_bytes())
        })
        .collect()
}

/// Runs `veil loadgen`.
///
/// # Errors
/// Bad arguments or a failure to connect.
pub async fn loadgen(args: LoadgenArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.server.committee)?;
    eprintln!("encrypting {} transactions of {} bytes...", args.count, args.payload_size);
    let (count, size, rollups, seed) = (args.count, args.payload_size, args.rollups, args.seed);
    let txs =
        tokio::task::spawn_blocking(move || prepare_transactions(&pks, count, size, rollups, seed))
            .await?;
    let progress = Arc::new(AtomicU64::new(0));
    let bar = indicatif::ProgressBar::new(args.count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} answers ({per_sec})",
        )
        .expect("valid template"),
    );
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let config = LoadConfig {
        client: args.server.client_config()?,
        connections: args.connections,
        rate: args.rate,
        window: args.window,
    };
    let report = loadgen::run(config, txs, progress.clone()).await?;
    ticker.abort();
    bar.set_position(progress.load(Ordering::Relaxed));
    bar.finish();
    println!(
        "sent {} acked {} rejected {} failed {} in {:.2} s: {:.0} tx/s; ack latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        report.sent,
        report.acked,
        report.rejected,
        report.failed,
        report.elapsed.as_secs_f64(),
        report.ack_rate(),
        report.percentile_ms(50.0),
        report.percentile_ms(90.0),
        report.percentile_ms(99.0),
        report.percentile_ms(100.0),
    );
    if let Some(path) = &args.acked_out {
        let lines: String = report.acked_ids.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(path, lines).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Runs `veil ingress` until ctrl-c. Prints one line `listening ADDR fingerprint FP` on
/// stdout once ready.
///
/// # Errors
/// Bad committee file, storage, TLS or socket errors.
pub async fn ingress(args: IngressArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.committee)?;
    let mut pool = PoolConfig::new(pks.chain_id());
    pool.min_fee = Amount(args.min_fee);
    let mut config = IngressConfig::new(args.listen, args.data_dir.clone(), pool);
    config.current_slot = Slot(args.slot);
    config.eons = vec![pks.eon()];
    let ingress = Ingress::start(config, Arc::new(CommitteeValidator::new(vec![pks]))).await?;
    println!("listening {} fingerprint {}", ingress.local_addr(), ingress.fingerprint());
    tokio::signal::ctrl_c().await?;
    let stats = ingress.pool_stats();
    eprintln!(
        "shutting down: {} pending, {} admitted since start",
        stats.pending_txs, stats.admitted
    );
    ingress.shutdown().await;
    Ok(())
}

/// `veil dev-committee`: writes a deterministic TEST committee's public key set.
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
pub fn dev_committee(args: &DevCommitteeArgs) -> anyhow::Result<()> {
    let c = veil_crypto::testing::TestCommittee::new(4, 1, args.seed);
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
