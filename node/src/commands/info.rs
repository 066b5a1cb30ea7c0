//! `veil info`: ask an ingress what it accepts (the `Info` frame) and print it as JSON.

use clap::Args;
use serde_json::json;
use veil_wire::client::IngressClient;

use super::args::ConnectArgs;

/// `veil info` arguments.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Where the ingress is and how to recognise it.
    #[command(flatten)]
    pub ingress: ConnectArgs,
}

/// Prints the server's chain, slot, eons, minimum fee and limits.
///
/// # Errors
/// No pin, or a connection that fails.
pub async fn run(args: InfoArgs) -> anyhow::Result<()> {
    let client = IngressClient::connect(args.ingress.client_config()?).await?;
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
            "rollups": rollups, "ciphertext_versions": i.ciphertext_versions,
            "info_version": i.version,
        }))?
    );
    Ok(())
}
