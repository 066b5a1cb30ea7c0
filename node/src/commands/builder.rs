//! `veil builder collateral|deposit|withdraw`: a builder's collateral on a running node over
//! HTTP, through the SDK's [`BuilderClient`] only. `deposit` signs a deposit notice with the
//! bridge's key file (what a settlement-layer bridge does; for devnets and tests), `withdraw`
//! signs a withdrawal request with the builder's key file. The chain id comes from the node's
//! schedule; the withdrawal nonce defaults to the account's last one plus one. Human-readable
//! by default, the API's JSON with `--json`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use veil_auction::{public_key, WithdrawalRequest};
use veil_builder_api::http::BuilderClient;
use veil_primitives::{AccountKind, Amount, DepositId, DepositNotice, PublicKeyBytes};

use super::args::HttpArgs;
use super::keygen::read_key;

/// `veil builder` arguments.
#[derive(Debug, Args)]
pub struct BuilderArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BuilderCommand,
}

/// The `veil builder` subcommands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// A builder's collateral: balance, unsettled, pending withdrawals, available.
    Collateral(CollateralArgs),
    /// Credit a deposit: a notice signed with the bridge's key (idempotent per deposit id).
    Deposit(DepositArgs),
    /// Withdraw collateral (released after the withdrawal delay).
    Withdraw(WithdrawArgs),
}

/// `veil builder collateral` arguments.
#[derive(Debug, Args)]
pub struct CollateralArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The builder's public key (0x hex).
    #[arg(long)]
    pub builder: PublicKeyBytes,
}

/// `veil builder deposit` arguments.
#[derive(Debug, Args)]
pub struct DepositArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The bridge's ed25519 secret key file.
    #[arg(long)]
    pub bridge_key: PathBuf,
    /// The settlement-layer transfer's id (0x hex, 32 bytes).
    #[arg(long)]
    pub deposit_id: DepositId,
    /// The builder credited (0x hex public key).
    #[arg(long)]
    pub account: PublicKeyBytes,
    /// The amount (decimal).
    #[arg(long)]
    pub amount: Amount,
}

/// `veil builder withdraw` arguments.
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The builder's ed25519 secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The amount (decimal); at most the available collateral.
    #[arg(long)]
    pub amount: Amount,
    /// The nonce (default: the account's last withdrawal nonce + 1).
    #[arg(long)]
    pub nonce: Option<u64>,
}

/// Runs a `veil builder` subcommand.
///
/// # Errors
/// A bad URL or key file, or the API's typed error (printed with its code).
pub async fn run(args: BuilderArgs) -> anyhow::Result<()> {
    match args.command {
        BuilderCommand::Collateral(a) => {
            let c = BuilderClient::new(a.http.client()?).collateral(&a.builder).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            println!(
                "builder {}: balance {} unsettled {} available {} withdraw nonce {}",
                c.builder, c.balance, c.unsettled, c.available, c.withdraw_nonce
            );
            for w in &c.pending_withdrawals {
                println!("  withdrawal of {} released at slot {}", w.amount, w.release_slot);
            }
        }
        BuilderCommand::Deposit(a) => {
            let bridge = read_key(&a.bridge_key)?;
            let client = BuilderClient::new(a.http.client()?);
            let chain_id = client.schedule().await?.chain_id;
            let notice = DepositNotice {
                chain_id,
                bridge: public_key(&bridge),
                deposit_id: a.deposit_id,
                kind: AccountKind::Builder,
                account: a.account,
                amount: a.amount,
            }
            .sign(&bridge);
            let accepted = client.deposit(&notice).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&accepted)?);
            } else {
                println!(
                    "deposit {} credited: {} to builder {}",
                    accepted.deposit_id, accepted.amount, accepted.account
                );
            }
        }
        BuilderCommand::Withdraw(a) => {
            let key = read_key(&a.key)?;
            let client = BuilderClient::new(a.http.client()?);
            let chain_id = client.schedule().await?.chain_id;
            let builder = public_key(&key);
            let nonce = match a.nonce {
                Some(n) => n,
                None => client.collateral(&builder).await?.withdraw_nonce + 1,
            };
            let request =
                WithdrawalRequest { chain_id, builder, amount: a.amount, nonce }.sign(&key);
            let accepted = client.withdraw(&request).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&accepted)?);
            } else {
                println!(
                    "withdrawal of {} accepted (nonce {}): released at slot {}",
                    accepted.amount, accepted.nonce, accepted.release_slot
                );
            }
        }
    }
    Ok(())
}
