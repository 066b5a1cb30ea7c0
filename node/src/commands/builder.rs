//! `veil builder collateral|deposit|withdraw`: a builder's collateral on a running node over
//! HTTP, through the SDK's [`BuilderClient`] only. `deposit` signs a deposit notice with the
//! bridge's key file (what a settlement-layer bridge does; for devnets and tests), `withdraw`
//! signs a withdrawal request with the builder's key file. The chain id comes from the node's
//! schedule; the withdrawal nonce defaults to the account's last one plus one. Human-readable
//! by default, the API's JSON with `--json`.
//!
//! `veil builder run` is the reference builder ([`veil_builder_api::builder`]): it follows
//! the node's mempool stream, bids once per slot by its strategy, and prints a line per slot
//! once the slot's outcome is known (its bids, what it won, what it paid), JSON lines with
//! `--json`. Ctrl-C stops it cleanly and prints its counters.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use veil_auction::{public_key, WithdrawalRequest};
use veil_builder_api::http::BuilderClient;
use veil_primitives::{AccountKind, Amount, DepositId, DepositNotice, PublicKeyBytes};

use veil_builder_api::builder::{
    DriverConfig, PendingConfig, ReferenceBuilder, RollupSet, SlotLine, StrategyConfig,
    StrategyKind, DEFAULT_BID_PERCENT, DEFAULT_MAX_PENDING,
};
use veil_primitives::RollupId;

use super::args::{short_hex, HttpArgs};
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
    /// Run the reference builder: follow the mempool, build blocks, bid every slot.
    Run(RunArgs),
}

/// `veil builder run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The builder's ed25519 secret key file (the key must hold collateral).
    #[arg(long)]
    pub key: PathBuf,
    /// The strategy: fee-order, bundle-aware, cross-rollup or shading.
    #[arg(long, default_value = "bundle-aware")]
    pub strategy: StrategyKind,
    /// The rollups it builds for (comma-separated): the one rollup set of fee-order,
    /// bundle-aware and shading; cross-rollup without `--sets` bids for each alone and for
    /// all together.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rollups: Vec<u32>,
    /// cross-rollup: the rollup sets it bids for, each its own bid (`0+1,2`).
    #[arg(long, value_delimiter = ',')]
    pub sets: Vec<RollupSet>,
    /// The share of its blocks' value (their fees) it bids, in percent (1 to 100); the
    /// shading strategy starts from it.
    #[arg(long, default_value_t = DEFAULT_BID_PERCENT, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub bid_percent: u16,
    /// When it bids, in ms after the slot's start (default: a third into the bidding window).
    #[arg(long)]
    pub at_ms: Option<u64>,
    /// Pending transactions it holds at most (the lowest fees leave first).
    #[arg(long, default_value_t = DEFAULT_MAX_PENDING)]
    pub max_pending: usize,
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

/// Signs a deposit notice `(deposit id, kind, account, amount)` with the bridge's key file
/// (what a settlement-layer bridge does; for devnets and tests), for the node's chain, and
/// has it credited: `veil builder deposit` and `veil user deposit`.
///
/// # Errors
/// An unreadable key file, an unreachable node, the API's typed refusal.
pub(crate) async fn bridge_deposit(
    http: &HttpArgs,
    bridge_key: &std::path::Path,
    (deposit_id, kind, account, amount): (DepositId, AccountKind, PublicKeyBytes, Amount),
) -> anyhow::Result<()> {
    let bridge = read_key(bridge_key)?;
    let client = BuilderClient::new(http.client()?);
    let chain_id = client.schedule().await?.chain_id;
    let notice =
        DepositNotice { chain_id, bridge: public_key(&bridge), deposit_id, kind, account, amount }
            .sign(&bridge);
    let accepted = client.deposit(&notice).await?;
    if http.json {
        println!("{}", serde_json::to_string_pretty(&accepted)?);
    } else {
        println!(
            "deposit {} credited: {} to {} {}",
            accepted.deposit_id,
            accepted.amount,
            kind.name().replace('_', " "),
            accepted.account
        );
    }
    Ok(())
}

/// Runs a `veil builder` subcommand.
///
/// # Errors
/// A bad URL or key file, or the API's typed error (printed with its code).
pub async fn run(args: BuilderArgs) -> anyhow::Result<()> {
    match args.command {
        BuilderCommand::Run(a) => run_builder(a).await?,
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
            let deposit = (a.deposit_id, AccountKind::Builder, a.account, a.amount);
            bridge_deposit(&a.http, &a.bridge_key, deposit).await?;
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

/// The rollup sets of `veil builder run`'s arguments.
fn rollup_sets(a: &RunArgs) -> anyhow::Result<Vec<RollupSet>> {
    let all = RollupSet::new(a.rollups.iter().copied().map(RollupId))?;
    if a.strategy != StrategyKind::CrossRollup {
        if !a.sets.is_empty() {
            anyhow::bail!("--sets is for --strategy cross-rollup; {} uses --rollups", a.strategy);
        }
        return Ok(vec![all]);
    }
    if !a.sets.is_empty() {
        return Ok(a.sets.clone());
    }
    let mut sets: Vec<RollupSet> =
        all.rollups().iter().map(|r| RollupSet::new([*r])).collect::<Result<_, _>>()?;
    if all.rollups().len() > 1 {
        sets.push(all);
    }
    Ok(sets)
}

async fn run_builder(a: RunArgs) -> anyhow::Result<()> {
    let key = read_key(&a.key)?;
    let me = public_key(&key);
    let client = BuilderClient::new(a.http.client()?);
    let strategy = StrategyConfig::new(a.strategy, rollup_sets(&a)?, a.bid_percent)?;
    let sets: Vec<String> = strategy.sets.iter().map(ToString::to_string).collect();
    if !a.http.json {
        let collateral = match client.collateral(&me).await {
            Ok(c) => format!("available collateral {}", c.available),
            Err(e) => format!("no collateral ({e})"),
        };
        println!(
            "builder {}: {} for rollup sets {} bidding {}% of its blocks' fees{}, {}; following {}",
            short_hex(&me.to_string()),
            a.strategy,
            sets.join(", "),
            a.bid_percent,
            a.at_ms.map_or(String::new(), |ms| format!(" at +{ms} ms")),
            collateral,
            a.http.url,
        );
    }
    let mut config = DriverConfig::new(key, strategy);
    config.at_ms = a.at_ms;
    config.pending = PendingConfig { max_txs: a.max_pending.max(1), ..PendingConfig::default() };
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel(64);
    let builder = ReferenceBuilder::spawn(client, config, Some(lines_tx));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            line = lines.recv() => match line {
                Some(line) => print_line(&line, a.http.json)?,
                None => break,
            },
        }
    }
    let stats = builder.stop().await;
    // The last slot's line, reported while stopping.
    while let Ok(line) = lines.try_recv() {
        print_line(&line, a.http.json)?;
    }
    if a.http.json {
        println!(
            "{}",
            serde_json::json!({
                "summary": true, "slots_bid": stats.slots_bid, "bids_sent": stats.bids_sent,
                "bids_accepted": stats.bids_accepted, "refusals": stats.refusals,
                "bid_failures": stats.bid_failures, "slots_won": stats.slots_won,
                "rollups_won": stats.rollups_won, "paid": stats.paid.to_string(),
                "stream_reconnects": stats.stream_reconnects, "resyncs": stats.resyncs,
                "pending": stats.pending.held,
            })
        );
    } else {
        let refusals: Vec<String> =
            stats.refusals.iter().map(|(code, n)| format!("{code} {n}")).collect();
        println!(
            "stopped: bid in {} slots, {} bids ({} accepted, refused: {}), won {} slots ({} rollup blocks) paying {}; {} pending held, stream reopened {} times",
            stats.slots_bid,
            stats.bids_sent,
            stats.bids_accepted,
            if refusals.is_empty() { "none".to_string() } else { refusals.join(", ") },
            stats.slots_won,
            stats.rollups_won,
            stats.paid,
            stats.pending.held,
            stats.stream_reconnects,
        );
    }
    Ok(())
}

/// One slot's line: its bids (amount, transactions per rollup, verdict) and the outcome.
pub fn format_line(line: &SlotLine) -> String {
    let bids: Vec<String> = line
        .bids
        .iter()
        .map(|b| {
            let per_rollup: Vec<String> =
                b.rollups.iter().zip(&b.txs).map(|(r, n)| format!("r{r} {n} txs")).collect();
            let verdict = match &b.result {
                veil_builder_api::builder::BidResult::Accepted(_) => "accepted".to_string(),
                veil_builder_api::builder::BidResult::Refused(code) => format!("refused {code}"),
                veil_builder_api::builder::BidResult::Failed(e) => format!("failed: {e}"),
            };
            format!("bid {} of value {} ({}) {verdict}", b.amount, b.value, per_rollup.join(", "))
        })
        .collect();
    let result = if !line.decided {
        "outcome unknown".to_string()
    } else if !line.won.is_empty() {
        let won: Vec<String> = line.won.iter().map(|r| format!("r{r}")).collect();
        format!("WON {} paying {}", won.join(" "), line.paid)
    } else if line.bids.is_empty() {
        "-".to_string()
    } else {
        "lost".to_string()
    };
    format!(
        "slot {}: {} | {result} | {} pending{}",
        line.slot,
        if bids.is_empty() { "no bid".to_string() } else { bids.join("; ") },
        line.pending,
        line.shading_bps.map_or(String::new(), |b| format!(
            " | shading {}.{:02}%",
            b / 100,
            b % 100
        )),
    )
}

fn print_line(line: &SlotLine, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(line)?);
    } else {
        println!("{}", format_line(line));
    }
    Ok(())
}
