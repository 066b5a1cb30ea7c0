//! `veil tx status`: where a transaction is, through the SDK's [`DataClient`] only.

use clap::{Args, Subcommand};
use veil_builder_api::api::TxState;
use veil_builder_api::http::DataClient;
use veil_primitives::TxId;

use super::args::{short_hex, HttpArgs};

/// `veil tx` arguments.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// What to ask.
    #[command(subcommand)]
    pub command: TxCommand,
}

/// The `veil tx` subcommands.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// A transaction's status: pending, committed (with its signed receipt), included, failed
    /// or dropped; NOT_FOUND if the node has no record of it (never admitted, expired,
    /// evicted: not yet told apart).
    Status(StatusArgs),
}

/// `veil tx status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The transaction id (0x hex, as `veil submit` prints it).
    pub id: TxId,
}

/// Runs a `veil tx` subcommand.
///
/// # Errors
/// A bad URL, or the API's typed error (printed with its code).
pub async fn run(args: TxArgs) -> anyhow::Result<()> {
    let TxCommand::Status(a) = args.command;
    let status = DataClient::new(a.http.client()?).tx_status(&a.id).await?;
    if a.http.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let state = match status.state {
        TxState::Pending => "pending",
        TxState::Committed => "committed",
        TxState::Included => "included",
        TxState::Failed => "failed",
        TxState::Dropped => "dropped",
        TxState::Expired => "expired",
        TxState::Evicted => "evicted",
    };
    let mut line = format!("{} {state}", status.tx);
    if let Some(slot) = status.slot {
        line.push_str(&format!(" slot {slot}"));
    }
    if let Some(rollup) = status.rollup {
        line.push_str(&format!(" rollup {rollup}"));
    }
    if let Some(position) = status.position {
        line.push_str(&format!(" position {position}"));
    }
    if let Some(r) = &status.receipt {
        line.push_str(&format!(
            " receipt commitment {} signature {}",
            short_hex(&r.message.commitment.to_string()),
            short_hex(&veil_primitives::hexbytes::encode(&r.signature.0))
        ));
    }
    println!("{line}");
    Ok(())
}
