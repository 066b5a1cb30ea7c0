//! `veil loadgen`: many connections, a target rate, a progress bar, a summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use veil_builder_api::http::UserClient;
use veil_builder_api::loadgen::{self, payer_keys, prepare_transactions, LoadConfig};
use veil_primitives::signed::public_key;
use veil_primitives::{AccountKind, Amount, DepositId, DepositNotice};
use veil_wire::client::IngressClient;

use super::args::{load_committee, HttpArgs, ServerArgs};

/// `veil loadgen` arguments.
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
    /// Seed of the TEST fee payers (`veil_builder_api::loadgen::payer_keys`): the
    /// transactions are paid and signed by these keys, in turn.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How many fee payers share the load (each may have 10,000 pending by default).
    #[arg(long, default_value_t = 256)]
    pub payers: usize,
    /// Fund every fee payer first with a bridge-signed deposit notice of this amount each
    /// (needs `--bridge-key` and the node's HTTP API, `--url`). A sequencer admits a
    /// transaction only if its payer's fee account holds its max fee.
    #[arg(long, requires = "bridge_key")]
    pub fund: Option<Amount>,
    /// The bridge's ed25519 secret key file, to sign the `--fund` deposit notices.
    #[arg(long)]
    pub bridge_key: Option<PathBuf>,
    /// The node's HTTP API for `--fund`.
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Runs `veil loadgen`.
///
/// # Errors
/// Bad arguments or a failure to connect.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let pks = load_committee(&args.server.committee)?;
    let info = {
        let client = IngressClient::connect(args.server.client_config()?).await?;
        let info = client.server_info().await?;
        client.close().await;
        info
    };
    super::args::check_ciphertext_version(&info)?;
    eprintln!(
        "ingress: chain {} slot {} eons {:?} min fee {} max ciphertext {} bytes",
        info.chain_id,
        info.current_slot,
        info.eons.iter().map(|e| e.0).collect::<Vec<_>>(),
        info.min_fee,
        info.max_ciphertext_size,
    );
    let payers = payer_keys(args.seed, args.payers);
    if let (Some(amount), Some(bridge_key)) = (args.fund, &args.bridge_key) {
        let bridge = super::keygen::read_key(bridge_key)?;
        let users = UserClient::new(args.http.client()?);
        for (i, p) in payers.iter().enumerate() {
            // One settlement-layer transfer per payer, seed and amount: rerunning with the
            // same arguments resends the same notices, which are not credited twice.
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&args.seed.to_be_bytes());
            id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
            id[16..32].copy_from_slice(&amount.0.to_be_bytes());
            let notice = DepositNotice {
                chain_id: info.chain_id,
                bridge: public_key(&bridge),
                deposit_id: DepositId(id),
                kind: AccountKind::FeePayer,
                account: public_key(p),
                amount,
            }
            .sign(&bridge);
            users.deposit(&notice).await.context("fund a fee payer")?;
        }
        eprintln!("funded {} fee payers with {amount} each", payers.len());
    }
    eprintln!(
        "encrypting {} transactions of {} bytes, paid by {} fee payers...",
        args.count,
        args.payload_size,
        payers.len()
    );
    let (count, size, rollups) = (args.count, args.payload_size, args.rollups);
    let txs = tokio::task::spawn_blocking(move || {
        prepare_transactions(&pks, count, size, rollups, &payers)
    })
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
