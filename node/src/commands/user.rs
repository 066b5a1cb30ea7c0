//! `veil user account|deposit`: a user's fee account on a running node over HTTP, through the
//! SDK's [`UserClient`] only. Every transaction is signed by its fee payer, whose account
//! must hold its max fee: admission reserves it, settlement charges it. `deposit` signs a
//! deposit notice of kind `fee_payer` with the bridge's key file (what a settlement-layer
//! bridge does; for devnets and tests). Human-readable by default, the API's JSON with
//! `--json`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use veil_builder_api::http::UserClient;
use veil_primitives::{AccountKind, Amount, DepositId, PublicKeyBytes};

use super::args::HttpArgs;

/// `veil user` arguments.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The `veil user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// A fee payer's account: balance, reserved, held until settlement, available, pending.
    Account(AccountArgs),
    /// Credit a fee payer's account: a notice signed with the bridge's key (idempotent per
    /// deposit id).
    Deposit(DepositArgs),
}

/// `veil user account` arguments.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The fee payer's public key (0x hex).
    #[arg(long)]
    pub payer: PublicKeyBytes,
}

/// `veil user deposit` arguments.
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
    /// The fee payer credited (0x hex public key).
    #[arg(long)]
    pub payer: PublicKeyBytes,
    /// The amount (decimal).
    #[arg(long)]
    pub amount: Amount,
}

/// Runs `veil user …`.
///
/// # Errors
/// An unreachable node, a refusal (typed code), an unreadable key file.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Account(a) => {
            let users = UserClient::new(a.http.client()?);
            let acc = users.fee_account(&a.payer).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&acc)?);
            } else {
                println!(
                    "fee payer {}: balance {} reserved {} held {} available {} pending {}",
                    acc.payer, acc.balance, acc.reserved, acc.held, acc.available, acc.pending
                );
            }
        }
        UserCommand::Deposit(a) => {
            let deposit = (a.deposit_id, AccountKind::FeePayer, a.payer, a.amount);
            super::builder::bridge_deposit(&a.http, &a.bridge_key, deposit).await?;
        }
    }
    Ok(())
}
