//! `veil sequencer`: a sequencer node from a TOML file, with flags and environment on top.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use veil_mempool::pool::PoolConfig;
use veil_primitives::hexbytes;

use super::args::load_committee;
use super::keygen::read_key;
use crate::config::SequencerConfig;
use crate::sequencer_node::{SequencerNode, SequencerNodeConfig};
use crate::services::sequencer::SlotReport;

/// `veil sequencer` arguments. Each overrides the configuration file's value.
#[derive(Debug, Args)]
pub struct SequencerArgs {
    /// The configuration file (TOML; see `veil.example.toml`). Without one, the defaults.
    #[arg(long, env = "VEIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// `data_dir`.
    #[arg(long, env = "VEIL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `committee`.
    #[arg(long, env = "VEIL_COMMITTEE")]
    pub committee: Option<PathBuf>,
    /// `key_file`.
    #[arg(long, env = "VEIL_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// `ingress.listen`.
    #[arg(long, env = "VEIL_INGRESS_LISTEN")]
    pub ingress_listen: Option<SocketAddr>,
    /// `keypers.listen`.
    #[arg(long, env = "VEIL_KEYPERS_LISTEN")]
    pub keypers_listen: Option<SocketAddr>,
    /// `metrics.listen`.
    #[arg(long, env = "VEIL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// `slots.slot_ms`.
    #[arg(long, env = "VEIL_SLOT_MS")]
    pub slot_ms: Option<u64>,
    /// `slots.bid_window_ms`.
    #[arg(long, env = "VEIL_BID_WINDOW_MS")]
    pub bid_window_ms: Option<u64>,
    /// `slots.release_timeout_ms`.
    #[arg(long, env = "VEIL_RELEASE_TIMEOUT_MS")]
    pub release_timeout_ms: Option<u64>,
    /// `genesis_ms`.
    #[arg(long, env = "VEIL_GENESIS_MS")]
    pub genesis_ms: Option<u64>,
}

impl SequencerArgs {
    /// The file's configuration (or the defaults) with the flags and environment applied;
    /// relative paths in the file are resolved against the file's directory.
    ///
    /// # Errors
    /// An unreadable or invalid file.
    pub fn resolve(&self) -> anyhow::Result<SequencerConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let mut c = SequencerConfig::load(path)?;
                let base = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
                c.data_dir = SequencerConfig::resolve(&base, &c.data_dir);
                c.committee = SequencerConfig::resolve(&base, &c.committee);
                c.key_file = SequencerConfig::resolve(&base, &c.key_file);
                c
            }
            None => SequencerConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            c.data_dir.clone_from(v);
        }
        if let Some(v) = &self.committee {
            c.committee.clone_from(v);
        }
        if let Some(v) = &self.key_file {
            c.key_file.clone_from(v);
        }
        if let Some(v) = self.ingress_listen {
            c.ingress.listen = v;
        }
        if let Some(v) = self.keypers_listen {
            c.keypers.listen = v;
        }
        if let Some(v) = self.metrics_listen {
            c.metrics.listen = Some(v);
        }
        if let Some(v) = self.slot_ms {
            c.slots.slot_ms = v;
        }
        if let Some(v) = self.bid_window_ms {
            c.slots.bid_window_ms = v;
        }
        if let Some(v) = self.release_timeout_ms {
            c.slots.release_timeout_ms = v;
        }
        if self.genesis_ms.is_some() {
            c.genesis_ms = self.genesis_ms;
        }
        Ok(c)
    }
}

/// Runs `veil sequencer` until Ctrl-C or SIGTERM. Prints one line on stdout once ready:
/// `ready ingress ADDR fingerprint FP keypers ADDR key PUBKEY metrics ADDR data DIR`, then one line per
/// finished slot.
///
/// # Errors
/// Bad configuration, key or committee files, storage, TLS or socket errors.
pub async fn run(args: SequencerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let pks = load_committee(&config.committee)?;
    let key = read_key(&config.key_file)?;
    let public = hexbytes::encode(key.verifying_key().as_bytes());
    let mut pool = PoolConfig::new(pks.chain_id());
    pool.min_fee = config.ingress.min_fee;
    let auction = config.genesis_auction(pks.chain_id())?;
    let mut node = SequencerNode::start(SequencerNodeConfig {
        data_dir: config.data_dir.clone(),
        pks,
        sequencer_key: key,
        ingress_listen: config.ingress.listen,
        keyper_listen: config.keypers.listen,
        http_listen: config.metrics.listen,
        http: veil_builder_api::server::ServerConfig {
            top_bid_visible: config.auction.top_bid_visible,
            ..config.http.server_config()
        },
        timing: config.slots.timing()?,
        genesis_ms: config.genesis_ms,
        auction,
        pool,
    })
    .await?;
    println!(
        "ready ingress {} fingerprint {} keypers {} key {} metrics {} data {}",
        node.ingress().local_addr(),
        node.ingress().fingerprint(),
        node.keyper_server().local_addr(),
        public,
        node.http_addr().map_or_else(|| "-".to_string(), |a| a.to_string()),
        config.data_dir.display()
    );
    let reports = node.take_reports();
    let printer = std::thread::spawn(move || {
        let Some(reports) = reports else { return };
        while let Ok(r) = reports.recv() {
            println!("{}", report_line(&r));
        }
    });
    super::keyper::shutdown_signal().await;
    node.stop().await;
    let _ = printer.join();
    Ok(())
}

/// One line for a finished slot.
#[must_use]
pub fn report_line(r: &SlotReport) -> String {
    let committed = r.commitment.as_ref().map_or(0, |c| c.message.len());
    match &r.published {
        None => format!("slot {}: {committed} committed, undecryptable", r.slot),
        Some(p) => {
            let included: usize = p
                .blocks
                .iter()
                .flat_map(|b| &b.txs)
                .filter(|t| matches!(t.result, veil_sequencer::slot::TxResult::Included(_)))
                .count();
            let paid: u128 = r
                .ledger
                .iter()
                .filter_map(|e| match e {
                    veil_auction::LedgerEntry::Debit { amount, .. } => Some(amount.0),
                    _ => None,
                })
                .sum();
            format!(
                "slot {}: {committed} committed, {included} included, paid {paid}, commit→plaintext {} ms",
                r.slot,
                r.commit_to_plaintext_ms.map_or_else(|| "-".into(), |v| v.to_string())
            )
        }
    }
}
