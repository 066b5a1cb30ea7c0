//! `veil info`: ask an ingress what it accepts (the `Info` frame) and print it as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde_json::json;
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::tls::{CertFingerprint, Pin};

/// `veil info` arguments.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The ingress's UDP address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub server: SocketAddr,
    /// The ingress certificate's fingerprint (0x-hex sha3-256 of its DER).
    #[arg(long, conflicts_with = "cert")]
    pub fingerprint: Option<CertFingerprint>,
    /// The ingress certificate file (DER), instead of a fingerprint.
    #[arg(long)]
    pub cert: Option<PathBuf>,
}

/// Prints the server's chain, slot, eons, minimum fee and limits.
///
/// # Errors
/// No pin, or a connection that fails.
pub async fn run(args: InfoArgs) -> anyhow::Result<()> {
    let pin = match (args.fingerprint, &args.cert) {
        (Some(f), _) => Pin::Fingerprint(f),
        (None, Some(path)) => Pin::from_cert_file(path)?,
        (None, None) => bail!("pass --fingerprint or --cert to pin the ingress certificate"),
    };
    let client = IngressClient::connect(ClientConfig::new(args.server, pin)).await?;
    let i = client.server_info().await?;
    client.close().await;
    let rollups: Vec<_> =
        i.rollups.iter().map(|(r, gas)| json!({"rollup": r.0, "gas_limit": gas})).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "chain_id": i.chain_id.0, "eons": i.eons.iter().map(|e| e.0).collect::<Vec<_>>(),
            "current_slot": i.current_slot.0, "min_fee": i.min_fee.0.to_string(),
            "max_expiry_horizon": i.max_expiry_horizon, "max_frame_size": i.max_frame_size,
            "max_ciphertext_size": i.max_ciphertext_size, "max_bundle_parts": i.max_bundle_parts,
            "max_in_flight": i.max_in_flight, "idle_timeout_ms": i.idle_timeout_ms,
            "rollups": rollups,
        }))?
    );
    Ok(())
}
