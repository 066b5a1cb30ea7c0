//! The `api` suite: the HTTP API of a real sequencer node (in this process, its own runtime),
//! with the load generator on the same machine (another runtime).
//!
//! - `bid_intake_http`: bids per second accepted through `POST /v1/builder/bids/batch`
//!   (JSON, signature batch-verified at the route, every auction check on the sequencer
//!   thread, recorded for the data API), from concurrent clients holding pre-signed bids of
//!   64 builders, each bid replacing its builder's previous one. Baseline: the node's
//!   in-process intake in the same run (the same checks and records, no HTTP or JSON).
//! - `mempool_stream_lag_p99`: ms from a transaction's ack at the submitting client (QUIC) to
//!   each of 20 `GET /v1/mempool/stream` subscribers seeing it, at 5,000 tx/s offered (open
//!   loop). Baseline: the ack latency p99 of the same transactions (the time the ingress
//!   itself takes to make them durable).
//!
//! Slots are 10 minutes long, so no slot closes (and takes the transactions) during a run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use rayon::prelude::*;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, RevenuePolicy, RollupBlock, RollupConfig, SignedBid,
    VerifiedBid,
};
use veil_builder_api::api::{paths, BidBatch, BidVerdicts};
use veil_builder_api::loadgen::{payer_keys, prepare_transactions};
use veil_crypto::dev::DevCommittee;
use veil_mempool::pool::PoolConfig;
use veil_node::sequencer_node::{SequencerNode, SequencerNodeConfig, SlotTiming};
use veil_primitives::{Amount, ChainId, Eon, RollupId, Slot, TxId};
use veil_wire::client::{ClientConfig, IngressClient};
use veil_wire::ingress::SignedCiphertext;
use veil_wire::tls::Pin;

use crate::ingest::runtime;
use crate::report::{Better, Figure, Goal, Reporter};

const SUITE: &str = "api";
const CHAIN: ChainId = ChainId(7);
const ROLLUPS: u32 = 4;
const BUILDERS: usize = 64;
const BATCH: usize = 64;
const CLIENTS: usize = 8;
const SUBSCRIBERS: usize = 20;
const STREAM_RATE: f64 = 5_000.0;
/// Ciphertexts each bid names (of its rollup, pending in the pool).
const NAMED: usize = 16;
/// The fee payers' seed and count (funded at genesis).
const PAYER_SEED: u64 = 0xa91;
const PAYERS: usize = 256;

fn builder_key(i: usize) -> SigningKey {
    let mut seed = [0xb0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    SigningKey::from_bytes(&seed)
}

fn genesis() -> anyhow::Result<Auction> {
    let mut auction = Auction::new(AuctionConfig { chain_id: CHAIN, ..AuctionConfig::default() });
    let admin = public_key(&SigningKey::from_bytes(&[0xad; 32]));
    for r in 0..ROLLUPS {
        auction.register_genesis_rollup(
            RollupId(r),
            admin,
            RollupConfig {
                reserve: Amount::ZERO,
                gas_limit: 30_000_000,
                policy: RevenuePolicy::standard(8_000, 1_500, 500, admin)?,
                active: true,
            },
        )?;
    }
    for i in 0..BUILDERS {
        auction.deposit(public_key(&builder_key(i)), Amount(u128::from(u64::MAX)))?;
    }
    for p in payer_keys(PAYER_SEED, PAYERS) {
        auction.deposit_fee(public_key(&p), Amount(u128::from(u64::MAX)))?;
    }
    Ok(auction)
}

/// Runs the suite.
///
/// # Errors
/// If the node cannot start or a phase fails outright (not a missed goal).
pub fn run(quick: bool, reporter: &mut Reporter) -> anyhow::Result<()> {
    let committee = DevCommittee::from_seed(CHAIN, Eon(1), 4, 1, 31)?;
    let dir = tempfile::Builder::new().prefix("veil-perf-api-").tempdir()?;
    let node_rt = runtime("veil-node")?;
    let node = node_rt.block_on(SequencerNode::start(SequencerNodeConfig {
        data_dir: dir.path().join("sequencer"),
        pks: committee.pks.clone(),
        sequencer_key: SigningKey::from_bytes(&[0x5e; 32]),
        ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        keyper_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        http: veil_builder_api::server::ServerConfig::default(),
        timing: SlotTiming { slot_ms: 600_000, bid_window_ms: 590_000, release_timeout_ms: 3_000 },
        genesis_ms: None,
        auction: genesis()?,
        pool: PoolConfig::new(CHAIN),
    }))?;
    let base = format!("http://{}", node.http_addr().context("the HTTP endpoint")?);
    let client = ClientConfig::new(
        node.ingress().local_addr(),
        Pin::Fingerprint(node.ingress().fingerprint()),
    );
    // Slot 0 opens half a second after the start.
    std::thread::sleep(Duration::from_millis(700));
    let load_rt = runtime("veil-perf-load")?;

    let seconds = if quick { 1.0 } else { 4.0 };
    let txs = (STREAM_RATE * seconds) as usize;
    reporter.note(&format!("api: encrypting {txs} transactions for the stream case"));
    let payers = payer_keys(PAYER_SEED, PAYERS);
    let corpus = prepare_transactions(&committee.pks, txs, 512, ROLLUPS, &payers);
    let lag = load_rt.block_on(stream_lag(&base, client, corpus))?;
    reporter.note(&format!(
        "mempool stream: {} txs at {:.0} tx/s offered ({:.0} acked/s), {SUBSCRIBERS} subscribers, {} of {} deliveries seen; lag p50 {:.1} ms p99 {:.1} ms max {:.1} ms; ack p99 {:.1} ms",
        lag.sent, STREAM_RATE, lag.ack_rate, lag.seen, lag.expected, lag.p50_ms, lag.p99_ms, lag.max_ms, lag.ack_p99_ms
    ));
    let unmet = (lag.seen < lag.expected)
        .then(|| format!("{} of {} deliveries never seen", lag.expected - lag.seen, lag.expected));
    reporter.record(Figure {
        suite: SUITE,
        case: "mempool_stream_lag_p99".into(),
        unit: "ms",
        ours: lag.p99_ms,
        baseline: Some(lag.ack_p99_ms),
        baseline_name: "ack latency p99 of the same transactions (durable at the ingress)".into(),
        better: Better::Lower,
        goal: None,
        unmet,
    });

    // Bids name pending ciphertexts of their rollup.
    let mut by_rollup: HashMap<RollupId, Vec<TxId>> = HashMap::new();
    for tx in &lag.acked {
        by_rollup.entry(tx.1).or_default().push(tx.0);
    }
    let rounds = if quick { 100 } else { 1_000 };
    let http_bids = sign_bids(&by_rollup, rounds, 1)?;
    let local_bids = sign_bids(&by_rollup, rounds, 1 + rounds as u64)?;
    reporter.note(&format!(
        "api: {} pre-signed bids per phase ({BUILDERS} builders, {rounds} each)",
        rounds * BUILDERS
    ));
    let http = load_rt.block_on(bids_over_http(&base, http_bids))?;
    let local = in_process(&node, local_bids);
    reporter.note(&format!(
        "bid intake: HTTP {} of {} accepted in {:.2} s (batches of {BATCH}, {CLIENTS} clients; refused: {}); in-process {} of {} in {:.2} s (refused: {})",
        http.accepted, http.sent, http.elapsed.as_secs_f64(), http.refusals, local.accepted, local.sent, local.elapsed.as_secs_f64(), local.refusals
    ));
    let rate = |r: &Intake| r.accepted as f64 / r.elapsed.as_secs_f64().max(1e-9);
    let unmet = (http.accepted < http.sent)
        .then(|| format!("{} bids refused ({})", http.sent - http.accepted, http.refusals));
    reporter.record(Figure {
        suite: SUITE,
        case: "bid_intake_http".into(),
        unit: "bids/s",
        ours: rate(&http),
        baseline: Some(rate(&local)),
        baseline_name: "the node's in-process intake (same checks and records, no HTTP/JSON)"
            .into(),
        better: Better::Higher,
        goal: Some(Goal::at_least(10_000.0)),
        unmet,
    });
    node_rt.block_on(node.stop());
    Ok(())
}

/// An acked transaction: its id and rollup, when the ack arrived (ms since the start) and
/// its ack latency from the scheduled send (ms).
type Acked = (TxId, RollupId, f64, f64);

struct Lag {
    sent: usize,
    ack_rate: f64,
    expected: usize,
    seen: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ack_p99_ms: f64,
    acked: Vec<(TxId, RollupId)>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// One stream subscriber: reads the raw event stream and notes when each transaction id
/// arrives. It scans for the id instead of decoding every event (which would spend the
/// machine's cores on the load generator rather than on the node).
async fn subscribe(
    url: String,
    start: Instant,
    stop: Arc<AtomicBool>,
    ready: Arc<AtomicU64>,
) -> anyhow::Result<Vec<(TxId, f64)>> {
    let http = reqwest::Client::new();
    let mut response = http.get(url).send().await?;
    if !response.status().is_success() {
        bail!("stream refused: {}", response.status());
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let mut seen = Vec::new();
    let mut buffer = String::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => continue,
        };
        let at = start.elapsed().as_secs_f64() * 1e3;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(i) = event.find("\"id\":\"") {
                if let Some(id) = event.get(i + 6..i + 6 + 66).and_then(|s| s.parse().ok()) {
                    seen.push((id, at));
                }
            }
        }
    }
    Ok(seen)
}

async fn stream_lag(
    base: &str,
    client: ClientConfig,
    corpus: Vec<SignedCiphertext>,
) -> anyhow::Result<Lag> {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let url = format!("{base}{}", paths::MEMPOOL_STREAM);
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| tokio::spawn(subscribe(url.clone(), start, stop.clone(), ready.clone())))
        .collect();
    while ready.load(Ordering::Relaxed) < SUBSCRIBERS as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Open loop at the target rate over 4 connections, each request timed from its
    // scheduled send.
    let conns: Vec<Arc<IngressClient>> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(Arc::new(IngressClient::connect(client.clone()).await?));
        }
        v
    };
    let acks: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let sent = corpus.len();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(sent);
    for (i, tx) in corpus.into_iter().enumerate() {
        let at = t0 + Duration::from_secs_f64(i as f64 / STREAM_RATE);
        tokio::time::sleep_until(at.into()).await;
        let conn = conns[i % conns.len()].clone();
        let acks = acks.clone();
        let rollup = RollupId(i as u32 % ROLLUPS);
        tasks.push(tokio::spawn(async move {
            if let Ok(ack) = conn.submit(tx).await {
                let now = start.elapsed().as_secs_f64() * 1e3;
                let latency = at.elapsed().as_secs_f64() * 1e3;
                let mut a = acks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for id in ack.ids {
                    a.push((id, rollup, now, latency));
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let ack_elapsed = t0.elapsed().as_secs_f64();
    // Let the subscribers drain, then stop them.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen_by = Vec::new();
    for s in subscribers {
        seen_by.push(s.await??);
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let acked_at: HashMap<TxId, f64> = acks.iter().map(|(id, _, at, _)| (*id, *at)).collect();
    let mut lags = Vec::new();
    for seen in &seen_by {
        for (id, at) in seen {
            if let Some(ack) = acked_at.get(id) {
                // An event can reach a subscriber before the ack reaches its sender.
                lags.push((at - ack).max(0.0));
            }
        }
    }
    lags.sort_by(f64::total_cmp);
    let mut ack_lat: Vec<f64> = acks.iter().map(|a| a.3).collect();
    ack_lat.sort_by(f64::total_cmp);
    for c in conns {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.close().await;
        }
    }
    Ok(Lag {
        sent,
        ack_rate: acks.len() as f64 / ack_elapsed.max(1e-9),
        expected: acks.len() * SUBSCRIBERS,
        seen: lags.len(),
        p50_ms: percentile(&lags, 50.0),
        p99_ms: percentile(&lags, 99.0),
        max_ms: lags.last().copied().unwrap_or(0.0),
        ack_p99_ms: percentile(&ack_lat, 99.0),
        acked: acks.iter().map(|a| (a.0, a.1)).collect(),
    })
}

/// `rounds` bids of each of the 64 builders, each builder's sequence numbers from
/// `first_sequence` on, each naming [`NAMED`] pending ciphertexts of its rollup, signed; laid
/// out as one list per client: client `c` holds builders `c, c + CLIENTS, ...`, round by
/// round, so that a client's batches keep each builder's bids in sequence order and no two
/// clients share a builder.
fn sign_bids(
    pending: &HashMap<RollupId, Vec<TxId>>,
    rounds: usize,
    first_sequence: u64,
) -> anyhow::Result<Vec<Vec<SignedBid>>> {
    let keys: Vec<SigningKey> = (0..BUILDERS).map(builder_key).collect();
    if pending.len() < ROLLUPS as usize || pending.values().any(|v| v.len() < NAMED) {
        bail!("too few pending ciphertexts to name in bids");
    }
    Ok((0..CLIENTS)
        .into_par_iter()
        .map(|c| {
            let mine: Vec<usize> = (c..BUILDERS).step_by(CLIENTS).collect();
            let mut out = Vec::with_capacity(rounds * mine.len());
            for r in 0..rounds {
                for &b in &mine {
                    let rollup = RollupId((b % ROLLUPS as usize) as u32);
                    let ids = &pending[&rollup];
                    let from = (r * NAMED) % (ids.len() - NAMED + 1);
                    out.push(
                        Bid {
                            chain_id: CHAIN,
                            slot: Slot(0),
                            builder: public_key(&keys[b]),
                            sequence: first_sequence + r as u64,
                            amount: Amount(1 + ((r * BUILDERS + b) % 1_000) as u128),
                            blocks: vec![RollupBlock {
                                rollup,
                                ciphertexts: ids[from..from + NAMED].to_vec(),
                                plaintext: vec![],
                            }],
                        }
                        .sign(&keys[b]),
                    );
                }
            }
            out
        })
        .collect())
}

struct Intake {
    sent: usize,
    accepted: usize,
    elapsed: Duration,
    refusals: String,
}

fn tally(names: &mut HashMap<String, usize>) -> String {
    let mut v: Vec<_> = names.drain().collect();
    v.sort();
    if v.is_empty() {
        return "none".into();
    }
    v.into_iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// Each client posts its batches one after another; the clients run concurrently.
async fn bids_over_http(base: &str, per_client: Vec<Vec<SignedBid>>) -> anyhow::Result<Intake> {
    let sent = per_client.iter().map(Vec::len).sum();
    let url = format!("{base}{}", paths::BIDS_BATCH);
    let http = reqwest::Client::new();
    // Bodies are serialised before the clock starts: the figure is the server's.
    let bodies: Vec<Vec<Vec<u8>>> = per_client
        .iter()
        .map(|bids| {
            bids.chunks(BATCH)
                .map(|b| serde_json::to_vec(&BidBatch { bids: b.to_vec() }))
                .collect::<Result<_, _>>()
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|batches| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut accepted = 0usize;
                let mut names: HashMap<String, usize> = HashMap::new();
                for body in batches {
                    let r = http
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let verdicts = match r {
                        Ok(r) => r.json::<BidVerdicts>().await,
                        Err(e) => Err(e),
                    };
                    match verdicts {
                        Ok(v) => {
                            for v in v.verdicts {
                                match v.error {
                                    None => accepted += 1,
                                    Some(e) => *names.entry(e.name).or_default() += 1,
                                }
                            }
                        }
                        Err(e) => *names.entry(format!("transport: {e}")).or_default() += 1,
                    }
                }
                (accepted, names)
            })
        })
        .collect();
    let mut accepted = 0;
    let mut names = HashMap::new();
    for t in tasks {
        let (a, n) = t.await?;
        accepted += a;
        for (k, v) in n {
            *names.entry(k).or_default() += v;
        }
    }
    Ok(Intake { sent, accepted, elapsed: start.elapsed(), refusals: tally(&mut names) })
}

/// The same bids through the node's own intake, the clients on threads: signatures
/// batch-verified as the route does, then
/// [`BidIntake::submit`](veil_node::services::bids::BidIntake::submit), batch by batch.
fn in_process(node: &SequencerNode, per_client: Vec<Vec<SignedBid>>) -> Intake {
    let sent = per_client.iter().map(Vec::len).sum();
    let start = Instant::now();
    let results: Vec<(usize, HashMap<String, usize>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_client
            .into_iter()
            .map(|bids| {
                let intake = node.bids();
                scope.spawn(move || {
                    let mut accepted = 0;
                    let mut names: HashMap<String, usize> = HashMap::new();
                    for batch in bids.chunks(BATCH) {
                        let mut good = Vec::with_capacity(batch.len());
                        for v in VerifiedBid::verify_many(
                            batch.to_vec(),
                            veil_auction::config::DEFAULT_SIGNATURE_BATCH_SIZE,
                        ) {
                            match v {
                                Ok(b) => good.push(b),
                                Err(e) => {
                                    *names.entry(e.code().name().to_string()).or_default() += 1;
                                }
                            }
                        }
                        match intake.submit(good) {
                            Ok(verdicts) => {
                                for v in verdicts {
                                    match v {
                                        Ok(_) => accepted += 1,
                                        Err(e) => {
                                            *names
                                                .entry(e.code().name().to_string())
                                                .or_default() += 1;
                                        }
                                    }
                                }
                            }
                            Err(e) => *names.entry(e.to_string()).or_default() += 1,
                        }
                    }
                    (accepted, names)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let elapsed = start.elapsed();
    let mut accepted = 0;
    let mut names = HashMap::new();
    for (a, n) in results {
        accepted += a;
        for (k, v) in n {
            *names.entry(k).or_default() += v;
        }
    }
    Intake { sent, accepted, elapsed, refusals: tally(&mut names) }
}
