//! `veil mempool`: the encrypted mempool of a running node over HTTP, through the SDK's
//! [`BuilderClient`] only: one page from a cursor, or `--follow` to stay on the live stream
//! (resuming where it stopped if the connection drops).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use veil_builder_api::api::{MempoolPage, MempoolQuery, MempoolTx};
use veil_builder_api::http::{BuilderClient, MempoolEvent};

use super::args::{short_hex, HttpArgs};

/// `veil mempool` arguments.
#[derive(Debug, Args)]
pub struct MempoolArgs {
    /// The node.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Start after this cursor (the `next` a page printed); 0 is the oldest pending.
    #[arg(long, default_value_t = 0)]
    pub cursor: u64,
    /// Only this rollup.
    #[arg(long)]
    pub rollup: Option<u32>,
    /// Transactions per page (the server refuses more than its maximum).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Include the ciphertexts' bytes (JSON only).
    #[arg(long)]
    pub bodies: bool,
    /// Stay on the live stream, one line (or one JSON object) per transaction, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
}

/// Runs `veil mempool`.
///
/// # Errors
/// A bad URL, or the API's typed error (printed with its code).
pub async fn run(args: MempoolArgs) -> anyhow::Result<()> {
    let client = BuilderClient::new(args.http.client()?);
    let query = MempoolQuery {
        cursor: Some(args.cursor),
        rollup: args.rollup,
        limit: args.limit,
        bodies: args.bodies.then_some(true),
    };
    if !args.follow {
        let page = client.mempool(&query).await?;
        if args.http.json {
            println!("{}", serde_json::to_string_pretty(&page)?);
        } else {
            print_page(&page);
        }
        return Ok(());
    }
    let mut stream = client.mempool_stream(&query).await?;
    let mut out = std::io::stdout().lock();
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let written = match event {
            Some(Ok(MempoolEvent::Tx(tx))) if args.http.json => {
                writeln!(out, "{}", serde_json::to_string(&tx)?)
            }
            Some(Ok(MempoolEvent::Tx(tx))) => writeln!(out, "{}", line(&tx)),
            Some(Ok(MempoolEvent::Skipped(n))) if !args.http.json => {
                writeln!(out, "({n} left the pool before they were read)")
            }
            Some(Ok(MempoolEvent::Skipped(_))) => Ok(()),
            Some(Err(e)) if e.is_retryable() => {
                eprintln!("stream interrupted ({e}); resuming at cursor {}", stream.cursor());
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Err(e) = stream.resume().await {
                    eprintln!("resume failed: {e}");
                }
                Ok(())
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Ok(()),
        };
        // A reader that went away (`veil mempool --follow | head`) ends the command quietly.
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
}

fn line(tx: &MempoolTx) -> String {
    let bundle =
        tx.bundle.map_or_else(String::new, |b| format!(" bundle {}/{}", b.index + 1, b.count));
    format!(
        "seq {} {} rollup {} max_fee {} gas {} expires {} payer {} {} B{bundle}",
        tx.seq,
        tx.id,
        tx.rollup,
        tx.max_fee,
        tx.gas_limit,
        tx.expiry_slot,
        short_hex(&tx.fee_payer.to_string()),
        tx.size,
    )
}

fn print_page(page: &MempoolPage) {
    if page.txs.is_empty() {
        println!("no pending transactions after the cursor");
    }
    for tx in &page.txs {
        println!("{}", line(tx));
    }
    if page.caught_up {
        println!("next: --cursor {} (caught up; --follow to stay on the stream)", page.next_cursor);
    } else {
        println!("more: --cursor {}", page.next_cursor);
    }
}
