//! `veil data bids|blocks|outcome`: the data API of a running node, through the SDK's
//! [`DataClient`] and [`BuilderClient`] only. Human-readable by default, the API's JSON with
//! `--json`.

use clap::{Args, Subcommand};
use veil_auction::PaymentRule;
use veil_builder_api::api::{BidsPage, BlocksPage, DataQuery, DeliveryState, SlotOutcome};
use veil_builder_api::http::{BuilderClient, DataClient};
use veil_primitives::{PublicKeyBytes, RollupId, Slot};

use super::args::{short_hex, HttpArgs};

/// `veil data` arguments.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// What to list.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `veil data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Bids the sequencer accepted, newest first.
    Bids(ListArgs),
    /// Blocks delivered (one per committed rollup block), newest first.
    Blocks(ListArgs),
    /// A decided slot's outcome: winners, payments, payouts, fallback blocks.
    Outcome(OutcomeArgs),
}

/// Filters and page of a listing.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Only this slot.
    #[arg(long)]
    pub slot: Option<u64>,
    /// Only this builder (0x hex key).
    #[arg(long)]
    pub builder: Option<PublicKeyBytes>,
    /// Only this rollup.
    #[arg(long)]
    pub rollup: Option<u32>,
    /// The cursor printed after the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Rows per page (the server refuses more than its maximum with PAGE_LIMIT_EXCEEDED).
    #[arg(long)]
    pub limit: Option<u32>,
}

impl ListArgs {
    fn query(&self) -> DataQuery {
        DataQuery {
            slot: self.slot,
            builder: self.builder.map(|b| b.to_string()),
            rollup: self.rollup,
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }
}

/// `veil data outcome` arguments.
#[derive(Debug, Args)]
pub struct OutcomeArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// The slot.
    #[arg(long)]
    pub slot: u64,
}

/// Runs a `veil data` subcommand.
///
/// # Errors
/// A bad URL, or the API's typed error (printed with its code).
pub async fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Bids(a) => {
            let page = DataClient::new(a.http.client()?).bids(&a.query()).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_bids(&page);
            }
        }
        DataCommand::Blocks(a) => {
            let page = DataClient::new(a.http.client()?).blocks(&a.query()).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_blocks(&page);
            }
        }
        DataCommand::Outcome(a) => {
            let outcome = BuilderClient::new(a.http.client()?).outcome(Slot(a.slot)).await?;
            if a.http.json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print_outcome(&outcome);
            }
        }
    }
    Ok(())
}

fn rollups(rs: impl IntoIterator<Item = RollupId>) -> String {
    rs.into_iter().map(|r| r.0.to_string()).collect::<Vec<_>>().join(",")
}

fn print_bids(page: &BidsPage) {
    if page.bids.is_empty() {
        println!("no bids");
    }
    for b in &page.bids {
        println!(
            "slot {} builder {} seq {} amount {} rollups {} bid {} received_ms {}",
            b.slot,
            short_hex(&b.builder.to_string()),
            b.sequence,
            b.amount,
            rollups(b.rollups.iter().copied()),
            short_hex(&b.bid_id.to_string()),
            b.received_ms
        );
    }
    if let Some(c) = &page.next_cursor {
        println!("more: --cursor {c}");
    }
}

fn print_blocks(page: &BlocksPage) {
    if page.blocks.is_empty() {
        println!("no blocks");
    }
    for b in &page.blocks {
        let state = match b.state {
            DeliveryState::Committed => "committed",
            DeliveryState::Published => "published",
            DeliveryState::Undecryptable => "undecryptable",
        };
        println!(
            "slot {} rollup {} {} paid {} txs {} ({} included, {} failed, {} dropped) {state}",
            b.slot,
            b.rollup,
            b.builder.map_or_else(|| "fallback".to_string(), |k| short_hex(&k.to_string())),
            b.payment,
            b.txs,
            b.included,
            b.failed,
            b.dropped
        );
    }
    if let Some(c) = &page.next_cursor {
        println!("more: --cursor {c}");
    }
}

fn print_outcome(o: &SlotOutcome) {
    let out = &o.outcome;
    println!(
        "slot {}: {}, {} bids considered, welfare {}, exact {}, outcome hash {}, {}",
        o.slot,
        match out.rule {
            PaymentRule::FirstPrice => "first-price",
            PaymentRule::Vcg => "VCG",
        },
        out.bids_considered,
        out.welfare,
        out.exact,
        short_hex(&o.outcome_hash),
        if o.signed.is_some() { "signed" } else { "not signed yet" }
    );
    for w in &out.winners {
        let won = w.bids.iter().flat_map(|b| b.signed.message.rollups());
        println!(
            "  winner {} pays {} for rollups {} ({} bid(s))",
            short_hex(&w.builder.to_string()),
            w.payment,
            rollups(won),
            w.bids.len()
        );
    }
    for p in &out.payouts {
        let buckets: Vec<String> =
            p.buckets.iter().map(|b| format!("{} {}", b.bucket, b.amount)).collect();
        println!(
            "  rollup {} gets {} (reserve {}): {}",
            p.rollup,
            p.share,
            p.reserve,
            buckets.join(", ")
        );
    }
    for f in &out.fallback {
        println!(
            "  rollup {} unsold: fallback block of {} txs, gas {}",
            f.rollup,
            f.ciphertexts.len(),
            f.gas_used
        );
    }
}
