//! `veil ingress`: serve the QUIC ingress and the mempool until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use veil_mempool::pool::PoolConfig;
use veil_mempool::validate::CommitteeValidator;
use veil_primitives::{Amount, Slot};

use super::args::load_committee;
use crate::services::ingress::{Ingress, IngressConfig};

/// `veil ingress` arguments.
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

/// Runs `veil ingress` until ctrl-c. Prints one line `listening ADDR fingerprint FP` on
/// stdout once ready.
///
/// # Errors
/// Bad committee file, storage, TLS or socket errors.
pub async fn run(args: IngressArgs) -> anyhow::Result<()> {
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
