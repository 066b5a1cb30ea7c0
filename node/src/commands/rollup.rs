//! `veil rollup register|config|rotate-admin|show|blocks|payouts`: a rollup's side of a running
//! node over HTTP, through the SDK's [`RollupClient`] only. Admin messages are signed with the
//! admin key file (`veil keygen` writes one); the chain id comes from the node's schedule, the
//! nonce defaults to the rollup's last one plus one and the effective slot to two slots ahead.
//! Human-readable by default, the API's JSON with `--json`. `show` lists the registered
//! rollups a page at a time (`--cursor`, `--limit`, as `veil data` does).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use veil_auction::{public_key, RevenuePolicy, RollupChange, RollupConfig, RollupUpdate};
use veil_builder_api::api::registry::{RollupInfo, RollupListQuery, RollupPayoutsPage};
use veil_builder_api::http::{BuilderClient, HttpClient, RollupClient};
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot};

use super::args::{short_hex, HttpArgs};
use super::keygen::read_key;

/// `veil rollup` arguments.
#[derive(Debug, Args)]
pub struct RollupArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RollupCommand,
}

/// The `veil rollup` subcommands.
#[derive(Debug, Subcommand)]
pub enum RollupCommand {
    /// Register a rollup (signed by the new admin key).
    Register(ConfigArgs),
    /// Replace a rollup's terms from a later slot on (signed by the admin key).
    Config(ConfigArgs),
    /// Hand administration to another key, at once (signed by the admin key).
    RotateAdmin(RotateArgs),
    /// A rollup's registration (without `--rollup`: a page of the registered rollups).
    Show(ShowArgs),
    /// A rollup's published blocks from a slot on.
    Blocks(PageArgs),
    /// A rollup's payouts from a slot on.
    Payouts(PageArgs),
}

/// What every admin message needs.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The rollup.
    #[arg(long)]
    pub rollup: u32,
    /// The admin's ed25519 secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The nonce (default: the rollup's last accepted nonce + 1).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// The first slot the change applies to (default: the slot in progress + 2).
    #[arg(long)]
    pub effective: Option<u64>,
}

/// `veil rollup register|config` arguments.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The rollup, key, nonce and effective slot.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The reserve price (decimal).
    #[arg(long)]
    pub reserve: Amount,
    /// Gas per block.
    #[arg(long)]
    pub gas_limit: u64,
    /// The treasury bucket, basis points.
    #[arg(long)]
    pub treasury_bps: u16,
    /// The user-rebates bucket, basis points.
    #[arg(long)]
    pub user_rebates_bps: u16,
    /// The protocol-fee bucket, basis points (the three sum to 10,000).
    #[arg(long)]
    pub protocol_fee_bps: u16,
    /// Where payouts go (default: the admin key).
    #[arg(long)]
    pub payout_account: Option<PublicKeyBytes>,
    /// Register or configure the rollup inactive (no bids, no blocks).
    #[arg(long)]
    pub inactive: bool,
}

/// `veil rollup rotate-admin` arguments.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The rollup, key, nonce and effective slot.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The new admin key (0x hex public key).
    #[arg(long)]
    pub new_admin: PublicKeyBytes,
}

/// `veil rollup show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Only this rollup.
    #[arg(long)]
    pub rollup: Option<u32>,
    /// Without `--rollup`: the rollups after this cursor (the `more: --cursor` printed after
    /// the previous page).
    #[arg(long, conflicts_with = "rollup")]
    pub cursor: Option<String>,
    /// Without `--rollup`: rollups per page (the server refuses more than its maximum with
    /// PAGE_LIMIT_EXCEEDED).
    #[arg(long, conflicts_with = "rollup")]
    pub limit: Option<u32>,
}

/// `veil rollup blocks|payouts` arguments.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The rollup.
    #[arg(long)]
    pub rollup: u32,
    /// The first slot (the `next` printed after the previous page).
    #[arg(long)]
    pub from: Option<u64>,
    /// Slots per page (the server refuses more than its maximum with PAGE_LIMIT_EXCEEDED).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// Runs a `veil rollup` subcommand.
///
/// # Errors
/// A bad URL or key file, or the API's typed error (printed with its code).
pub async fn run(args: RollupArgs) -> anyhow::Result<()> {
    match args.command {
        RollupCommand::Register(a) => {
            let key = read_key(&a.admin.key)?;
            let config = a.config(public_key(&key))?;
            let change = RollupChange::Register { admin: public_key(&key), config };
            send(&a.admin, change).await
        }
        RollupCommand::Config(a) => {
            let key = read_key(&a.admin.key)?;
            let config = a.config(public_key(&key))?;
            send(&a.admin, RollupChange::Configure(config)).await
        }
        RollupCommand::RotateAdmin(a) => {
            send(&a.admin, RollupChange::RotateAdmin { new_admin: a.new_admin }).await
        }
        RollupCommand::Show(a) => {
            let client = RollupClient::new(a.http.client()?);
            if let Some(id) = a.rollup {
                let info = client.rollup(RollupId(id)).await?;
                if a.http.json {
                    println!("{}", serde_json::to_string_pretty(&info)?);
                } else {
                    print_rollup(&info);
                }
                return Ok(());
            }
            let page =
                client.rollups_page(&RollupListQuery { cursor: a.cursor, limit: a.limit }).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            if page.rollups.is_empty() {
                println!("no rollups");
            }
            page.rollups.iter().for_each(print_rollup);
            if let Some(c) = &page.next_cursor {
                println!("more: --cursor {c}");
            }
            Ok(())
        }
        RollupCommand::Blocks(a) => {
            let page = RollupClient::new(a.http.client()?)
                .blocks(RollupId(a.rollup), a.from.map(Slot), a.limit)
                .await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            if page.blocks.is_empty() {
                println!("no blocks");
            }
            for b in &page.blocks {
                println!("slot {} rollup {}: {} txs", b.slot, page.rollup, b.txs.len());
                for (i, t) in b.txs.iter().enumerate() {
                    let what = match &t.result {
                        veil_sequencer::TxResult::Included(p) => {
                            format!("included {}", veil_primitives::hexbytes::encode(p))
                        }
                        veil_sequencer::TxResult::Failed => "failed".to_string(),
                        veil_sequencer::TxResult::DroppedWithBundle(b) => {
                            format!("dropped with bundle {}", short_hex(&b.to_string()))
                        }
                    };
                    println!("  {i} {} {what}", short_hex(&t.id.to_string()));
                }
            }
            if let Some(n) = page.next_from {
                println!("more: --from {n}");
            }
            Ok(())
        }
        RollupCommand::Payouts(a) => {
            let page = RollupClient::new(a.http.client()?)
                .payouts(RollupId(a.rollup), a.from.map(Slot), a.limit)
                .await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_payouts(&page);
            }
            Ok(())
        }
    }
}

impl ConfigArgs {
    fn config(&self, admin: PublicKeyBytes) -> anyhow::Result<RollupConfig> {
        let policy = RevenuePolicy::standard(
            self.treasury_bps,
            self.user_rebates_bps,
            self.protocol_fee_bps,
            self.payout_account.unwrap_or(admin),
        )
        .context("revenue policy")?;
        Ok(RollupConfig {
            reserve: self.reserve,
            gas_limit: self.gas_limit,
            policy,
            active: !self.inactive,
        })
    }
}

/// Signs `change` for the rollup with the defaults filled in from the node, and sends it.
async fn send(a: &AdminArgs, change: RollupChange) -> anyhow::Result<()> {
    let key = read_key(&a.key)?;
    let http: HttpClient = a.http.client()?;
    let schedule = BuilderClient::new(http.clone()).schedule().await?;
    let client = RollupClient::new(http);
    let rollup = RollupId(a.rollup);
    let nonce = match a.nonce {
        Some(n) => n,
        None => match client.rollup(rollup).await {
            Ok(info) => info.last_nonce + 1,
            Err(e) if e.code() == Some(veil_primitives::ErrorCode::NotFound) => 1,
            Err(e) => return Err(e.into()),
        },
    };
    // Two slots ahead: the next slot may open before the message arrives.
    let effective = Slot(a.effective.unwrap_or(schedule.current.slot.0 + 2));
    let signed =
        RollupUpdate { chain_id: schedule.chain_id, rollup, nonce, effective, change }.sign(&key);
    let accepted = client.update(&signed).await?;
    if a.http.json {
        println!("{}", serde_json::to_string_pretty(&accepted)?);
    } else {
        println!(
            "rollup {} update accepted: nonce {}, effective from slot {}",
            accepted.rollup, accepted.nonce, accepted.effective
        );
    }
    Ok(())
}

fn print_rollup(r: &RollupInfo) {
    println!(
        "rollup {} admin {} nonce {}",
        r.rollup,
        short_hex(&r.admin.to_string()),
        r.last_nonce
    );
    let terms = |c: &RollupConfig| {
        let buckets: Vec<String> =
            c.policy.buckets().iter().map(|b| format!("{} {}", b.name, b.bps)).collect();
        format!(
            "reserve {} gas {} {} [{}]",
            c.reserve,
            c.gas_limit,
            if c.active { "active" } else { "inactive" },
            buckets.join(", ")
        )
    };
    match &r.current {
        Some(c) => println!("  now: {}", terms(c)),
        None => println!("  now: not in force yet"),
    }
    for s in &r.scheduled {
        println!("  from slot {}: {}", s.effective, terms(&s.config));
    }
}

fn print_payouts(page: &RollupPayoutsPage) {
    if page.payouts.is_empty() {
        println!("no payouts");
    }
    for p in &page.payouts {
        let buckets: Vec<String> =
            p.buckets.iter().map(|b| format!("{} {}", b.bucket, b.amount)).collect();
        println!(
            "slot {} rollup {} gets {} (reserve {}) from {}: {} [{}] outcome {}",
            p.slot,
            page.rollup,
            p.share,
            p.reserve,
            short_hex(&p.builder.to_string()),
            buckets.join(", "),
            if p.settled { "settled" } else { "not settled yet" },
            short_hex(&p.outcome_hash)
        );
    }
    if let Some(n) = page.next_from {
        println!("more: --from {n}");
    }
}
