//! `veil devnet`: the whole slot lifecycle on one machine.
//!
//! A sequencer (the slot machine on its thread, SQLite record log), the QUIC ingress with the
//! encrypted mempool, a committee of keypers (16, t = 11 by default) each with its own record
//! log, several rollups with different reserves and revenue policies, simulated users that
//! encrypt and submit transactions and cross-rollup bundles over QUIC, and competing builders
//! with different strategies. One line per slot; a summary at the end.
//!
//! Keypers talk to the sequencer over the QUIC keyper protocol, each with its own link:
//! in-process by default (a thread and a link each), or as `veil keyper` child processes with
//! `--keyper-processes` (key files and logs in the data directory).
//!
//! The node serves the HTTP API (builders, data API, users, `/openapi.json`) on the address it
//! prints, and the devnet's builders bid over it through the SDK's `BuilderClient` (they still
//! read the mempool in-process: the mempool stream over HTTP comes later). What is not there
//! yet, and said so in the output: fees are charged and credited as ledger
//! entries at settlement, but fee accounts (deposits, balances, reservation at admission)
//! come with the ingress v2 issue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use rand_core::RngCore;
use serde_json::json;
use veil_auction::{
    public_key, Auction, AuctionConfig, Bid, LedgerEntry, RevenuePolicy, RollupBlock, RollupConfig,
};
use veil_builder_api::http::{BuilderClient, HttpClient};
use veil_builder_api::{encrypt, encrypt_bundle, RetryPolicy, Submitter};
use veil_crypto::dev::DevCommittee;
use veil_mempool::pool::PoolConfig;
use veil_primitives::{
    Amount, BundleId, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId, TxMeta,
};
use veil_sequencer::slot::{FeeEntry, TxResult};
use veil_sequencer::SlotClock;
use veil_wire::client::ClientConfig;
use veil_wire::tls::Pin;

use crate::sequencer_node::{SequencerNode, SequencerNodeConfig, SlotTiming};
use crate::services::ingress::Ingress;
use crate::services::keyper::{Behaviour, KeyperLaunch, KeyperSetup, RunningKeyper};
use crate::services::sequencer::{now_ms, SlotReport};

/// The devnet's chain id.
pub const DEVNET_CHAIN: ChainId = ChainId(1337);

/// What to run. See `veil devnet --help` for the defaults.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Where the databases go (printed at start).
    pub data_dir: PathBuf,
    /// Committee size.
    pub keypers: u16,
    /// Threshold: `t + 1` keypers decrypt.
    pub threshold: u16,
    /// Keypers that send wrong shares, counted from keyper 1 (in the default responder set).
    pub byzantine: u16,
    /// Keypers that never send (the next ones after the byzantine keypers).
    pub silent: u16,
    /// Slot length.
    pub slot_ms: u64,
    /// Bidding window from each slot's start.
    pub bid_window_ms: u64,
    /// Time after the close within which the block must be decryptable.
    pub release_timeout_ms: u64,
    /// Stop after this many slots (none: until Ctrl-C).
    pub slots: Option<u64>,
    /// User transactions per second.
    pub rate: f64,
    /// Print JSON lines instead of text.
    pub json: bool,
    /// Seed of the dev committee (its secrets follow from it).
    pub seed: u64,
    /// Run each keyper as a `veil keyper` process rather than in this process.
    pub keyper_processes: bool,
}

/// The devnet's keypers: in this process (each a thread and a QUIC link) or child processes.
enum Keypers {
    InProcess(Vec<RunningKeyper>),
    Processes(Vec<std::process::Child>),
}

impl Keypers {
    async fn stop(self) {
        match self {
            Keypers::InProcess(ks) => {
                for k in ks {
                    k.stop().await;
                }
            }
            Keypers::Processes(children) => {
                for mut c in children {
                    terminate(&mut c);
                }
            }
        }
    }
}

/// SIGTERM, a moment to finish, then SIGKILL.
fn terminate(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = i32::try_from(child.id()) {
            // Through the `kill` command: the workspace has no libc binding of its own.
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Writes the committee and each keyper's key file to the data directory and starts one
/// `veil keyper` per member, logging to `keyper-<i>.log`.
fn spawn_keyper_processes(
    config: &DevnetConfig,
    committee: &DevCommittee,
    behaviours: &[Behaviour],
    sequencer: SocketAddr,
    sequencer_key: PublicKeyBytes,
) -> anyhow::Result<Vec<std::process::Child>> {
    let committee_path = config.data_dir.join("committee.json");
    std::fs::write(&committee_path, committee.pks.to_json())?;
    let launch = KeyperLaunch {
        exe: std::env::current_exe().context("the path of this executable")?,
        committee: committee_path,
        sequencer,
        sequencer_key,
        threads: KeyperLaunch::threads_for(committee.shares.len()),
        default_log: "info",
    };
    let mut children = Vec::new();
    for (i, (share, identity)) in committee.shares.iter().zip(&committee.identities).enumerate() {
        let dir = config.data_dir.join(format!("keyper-{}", i + 1));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("keyper.log"))?;
        children.push(launch.spawn(share, identity, &dir, behaviours[i], log)?);
    }
    Ok(children)
}

struct Rollup {
    id: RollupId,
    reserve: Amount,
    policy: (u16, u16, u16),
}

fn rollups() -> Vec<Rollup> {
    vec![
        Rollup { id: RollupId(0), reserve: Amount(20), policy: (8_000, 1_500, 500) },
        Rollup { id: RollupId(1), reserve: Amount(50), policy: (6_000, 3_000, 1_000) },
        Rollup { id: RollupId(2), reserve: Amount(0), policy: (9_000, 0, 1_000) },
    ]
}

/// A builder's strategy.
#[derive(Debug, Clone)]
struct Strategy {
    name: &'static str,
    rollups: Vec<RollupId>,
    /// Share of the included fees it bids, in percent.
    bid_percent: u128,
    /// Whether it includes atomic bundles (whole) or leaves them out.
    bundles: bool,
}

fn strategies() -> Vec<Strategy> {
    vec![
        Strategy {
            name: "fee-order r0",
            rollups: vec![RollupId(0)],
            bid_percent: 70,
            bundles: false,
        },
        Strategy {
            name: "fee-order r1",
            rollups: vec![RollupId(1)],
            bid_percent: 70,
            bundles: false,
        },
        Strategy {
            name: "cross-rollup bundle-aware r0+r1+r2",
            rollups: vec![RollupId(0), RollupId(1), RollupId(2)],
            bid_percent: 50,
            bundles: true,
        },
    ]
}

/// Totals over the run.
#[derive(Debug, Default)]
struct Summary {
    slots: u64,
    undecryptable: u64,
    included: u64,
    failed: u64,
    dropped: u64,
    payments: u128,
    payouts: u128,
    fees_charged: u128,
    fees_credited: u128,
    plaintext_mismatches: u64,
    blamed: u64,
    commit_to_plaintext: Vec<u64>,
}

/// Runs the devnet until `config.slots` slots are reported or Ctrl-C.
///
/// # Errors
/// If a service cannot start (storage, sockets).
pub async fn run(config: DevnetConfig) -> anyhow::Result<()> {
    let committee = DevCommittee::from_seed(
        DEVNET_CHAIN,
        Eon(1),
        config.keypers,
        config.threshold,
        config.seed,
    )
    .context("committee parameters")?;
    let pks = committee.pks.clone();
    std::fs::create_dir_all(&config.data_dir)?;
    let say = |text: String| {
        if !config.json {
            println!("{text}");
        }
    };
    say(format!("veil devnet: data in {}", config.data_dir.display()));

    // Rollups and builders, registered at genesis.
    let mut auction =
        Auction::new(AuctionConfig { chain_id: DEVNET_CHAIN, ..AuctionConfig::default() });
    let admin = SigningKey::from_bytes(&[0xad; 32]);
    for r in rollups() {
        let rollup_config = RollupConfig {
            reserve: r.reserve,
            gas_limit: 30_000_000,
            policy: RevenuePolicy::standard(
                r.policy.0,
                r.policy.1,
                r.policy.2,
                public_key(&admin),
            )?,
            active: true,
        };
        auction.register_genesis_rollup(r.id, public_key(&admin), rollup_config)?;
    }
    let builder_keys: Vec<SigningKey> =
        (0..strategies().len()).map(|i| SigningKey::from_bytes(&[0xb0 + i as u8; 32])).collect();
    // Builders are funded by the bridge over HTTP once the node runs (below).
    let bridge = SigningKey::from_bytes(&[0xb7; 32]);
    auction.set_bridge_key(Some(public_key(&bridge)));

    // The sequencer node: ingress, keyper endpoint, slot machine.
    let sequencer_key = SigningKey::from_bytes(&[0x5e; 32]);
    let sequencer_public = public_key(&sequencer_key);
    let mut node = SequencerNode::start(SequencerNodeConfig {
        data_dir: config.data_dir.clone(),
        pks: pks.clone(),
        sequencer_key,
        ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        keyper_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        http: veil_builder_api::server::ServerConfig::default(),
        timing: SlotTiming {
            slot_ms: config.slot_ms.max(100),
            bid_window_ms: config.bid_window_ms.min(config.slot_ms),
            release_timeout_ms: config.release_timeout_ms,
        },
        genesis_ms: None,
        auction,
        pool: PoolConfig::new(DEVNET_CHAIN),
    })
    .await?;
    let clock = node.genesis().clock()?;
    let ingress = node.ingress().clone();
    let keyper_addr = node.keyper_server().local_addr();
    let api = format!("http://{}", node.http_addr().context("the devnet serves the HTTP API")?);
    let report_rx = node.take_reports().context("reports")?;
    let n = usize::from(config.keypers);
    let behaviours: Vec<Behaviour> = (0..n)
        .map(|i| {
            if i < usize::from(config.byzantine) {
                Behaviour::WrongShares
            } else if i < usize::from(config.byzantine) + usize::from(config.silent) {
                Behaviour::Silent
            } else {
                Behaviour::Honest
            }
        })
        .collect();
    let keypers = if config.keyper_processes {
        Keypers::Processes(spawn_keyper_processes(
            &config,
            &committee,
            &behaviours,
            keyper_addr,
            sequencer_public,
        )?)
    } else {
        let mut running = Vec::new();
        for (i, (share, identity)) in
            committee.shares.into_iter().zip(committee.identities).enumerate()
        {
            running.push(RunningKeyper::start(KeyperSetup {
                pks: pks.clone(),
                share,
                identity,
                sequencer: keyper_addr,
                sequencer_key: sequencer_public,
                log_path: config.data_dir.join(format!("keyper-{}.sqlite", i + 1)),
                behaviour: behaviours[i],
                threads: None,
            })?);
        }
        Keypers::InProcess(running)
    };
    say(format!(
        "sequencer: {} keypers (t = {}, {} decrypt; {} byzantine, {} silent) {} over QUIC at {}, {} rollups, slots of {} ms (bids close at +{} ms), ingress {} fingerprint {}",
        config.keypers, config.threshold, config.threshold + 1, config.byzantine, config.silent,
        if config.keyper_processes { "as separate processes" } else { "in-process" },
        keyper_addr,
        rollups().len(), config.slot_ms, clock.bid_window_ms, ingress.local_addr(), ingress.fingerprint()
    ));
    if let Some(addr) = node.http_addr() {
        say(format!("http api: http://{addr} (metrics: http://{addr}/metrics, document: http://{addr}/openapi.json)"));
    }
    say("builders bid over HTTP (POST /v1/builder/bids, through the SDK); fees are charged and credited as ledger entries at settlement; fee accounts with balances come with ingress v2".into());

    // The bridge funds the builders' collateral over HTTP: one signed deposit notice each
    // (idempotent per deposit id, so a restarted devnet sends the same notices again).
    let collateral = veil_builder_api::http::BuilderClient::new(
        veil_builder_api::http::HttpClient::new(&api).context("the HTTP API's address")?,
    );
    for (i, key) in builder_keys.iter().enumerate() {
        let notice = veil_primitives::DepositNotice {
            chain_id: DEVNET_CHAIN,
            bridge: public_key(&bridge),
            deposit_id: veil_primitives::DepositId(veil_primitives::encoding::sha3_256(
                format!("devnet builder deposit {i}").as_bytes(),
            )),
            kind: veil_primitives::AccountKind::Builder,
            account: public_key(key),
            amount: Amount(1_000_000_000),
        }
        .sign(&bridge);
        collateral.deposit(&notice).await.context("fund a builder through the bridge")?;
    }
    say(format!(
        "bridge {}: {} builders funded over HTTP (POST /v1/builders/deposits)",
        public_key(&bridge),
        builder_keys.len()
    ));

    // Users.
    let sent: Arc<Mutex<HashMap<TxId, Vec<u8>>>> = Arc::new(Mutex::new(HashMap::new()));
    let submitted = Arc::new(AtomicU64::new(0));
    let users = {
        let submitter = Arc::new(Submitter::new(
            ClientConfig::new(ingress.local_addr(), Pin::Fingerprint(ingress.fingerprint())),
            RetryPolicy::default(),
        ));
        let (pks, sent, submitted, rate) =
            (pks.clone(), sent.clone(), submitted.clone(), config.rate);
        tokio::spawn(async move { users(pks, clock, submitter, sent, submitted, rate).await })
    };

    // Builders.
    let stop = Arc::new(AtomicBool::new(false));
    let builders: Vec<std::thread::JoinHandle<()>> = strategies()
        .into_iter()
        .zip(builder_keys)
        .map(|(strategy, key)| {
            let (ingress, api, in_flight, stop) =
                (ingress.clone(), api.clone(), node.in_flight(), stop.clone());
            std::thread::spawn(move || {
                builder(strategy, key, clock, &ingress, &api, &in_flight, &stop)
            })
        })
        .collect();

    // The report.
    let mut summary = Summary::default();
    let names: BTreeMap<PublicKeyBytes, &'static str> = strategies()
        .iter()
        .zip((0..).map(|i: u8| public_key(&SigningKey::from_bytes(&[0xb0 + i; 32]))))
        .map(|(s, k)| (k, s.name))
        .collect();
    let (report_async_tx, mut report_async_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(r) = report_rx.recv() {
            if report_async_tx.send(r).is_err() {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            r = report_async_rx.recv() => {
                let Some(report) = r else { break };
                print_slot(&report, &names, &sent, &mut summary, config.json);
                if config.slots.is_some_and(|n| summary.slots >= n) {
                    break;
                }
            }
        }
    }

    // Shut down in order: inputs first, then the services.
    stop.store(true, Ordering::Relaxed);
    users.abort();
    for b in builders {
        let _ = b.join();
    }
    drop(ingress);
    node.stop().await;
    keypers.stop().await;
    print_summary(&summary, submitted.load(Ordering::Relaxed), config.json);
    Ok(())
}

async fn users(
    pks: veil_crypto::PublicKeySet,
    clock: SlotClock,
    submitter: Arc<Submitter>,
    sent: Arc<Mutex<HashMap<TxId, Vec<u8>>>>,
    submitted: Arc<AtomicU64>,
    rate: f64,
) {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut tick = tokio::time::interval(period);
    let mut rng = rand_core::OsRng;
    for n in 0u64.. {
        tick.tick().await;
        let slot = clock.slot_at(now_ms());
        let mut payer = [0u8; 32];
        rng.fill_bytes(&mut payer);
        let base = TxMeta {
            chain_id: pks.chain_id(),
            eon: pks.eon(),
            rollup: RollupId(rng.next_u32() % 3),
            fee_payer: PublicKeyBytes(payer),
            max_fee: Amount(u128::from(1 + rng.next_u32() % 100)),
            gas_limit: 21_000,
            expiry_slot: Slot(slot.0 + 30),
            bundle: None,
        };
        let (submitter, sent, submitted) = (submitter.clone(), sent.clone(), submitted.clone());
        if n % 10 == 9 {
            // A cross-rollup atomic bundle: a leg on rollup 0 and one on rollup 1.
            let legs: Vec<(TxMeta, Vec<u8>)> = (0..2u32)
                .map(|r| {
                    (
                        TxMeta { rollup: RollupId(r), ..base },
                        format!("bundle {n} leg {r}").into_bytes(),
                    )
                })
                .collect();
            let mut id = [0u8; 32];
            rng.fill_bytes(&mut id);
            let refs: Vec<(TxMeta, &[u8])> = legs.iter().map(|(m, p)| (*m, p.as_slice())).collect();
            let Ok(cts) = encrypt_bundle(&pks, BundleId(id), &refs) else { continue };
            tokio::spawn(async move {
                if submitter.submit_bundle(&cts).await.is_ok() {
                    let mut sent = sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (ct, (_, p)) in cts.iter().zip(legs) {
                        sent.insert(ct.id(), p);
                    }
                    submitted.fetch_add(2, Ordering::Relaxed);
                }
            });
        } else {
            let payload = format!("user tx {n}").into_bytes();
            let Ok(ct) = encrypt(&pks, &base, &payload) else { continue };
            tokio::spawn(async move {
                if submitter.submit(&ct).await.is_ok() {
                    sent.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(ct.id(), payload);
                    submitted.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}

fn builder(
    strategy: Strategy,
    key: SigningKey,
    clock: SlotClock,
    ingress: &Ingress,
    api: &str,
    in_flight: &Mutex<HashSet<TxId>>,
    stop: &AtomicBool,
) {
    let reserves: BTreeMap<RollupId, Amount> =
        rollups().into_iter().map(|r| (r.id, r.reserve)).collect();
    // Bids go over HTTP through the SDK, as an outside builder's would.
    let (runtime, client) = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| Ok((rt, BuilderClient::new(HttpClient::new(api)?))))
    {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(builder = strategy.name, error = %e, "builder cannot reach the HTTP API");
            return;
        }
    };
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Bid a third into the current slot's bidding window, or wait for the next slot.
        let now = now_ms();
        let mut slot = clock.slot_at(now);
        if now >= clock.start_ms(slot) + clock.bid_window_ms / 3 {
            slot = slot.next();
        }
        let at = clock.start_ms(slot) + clock.bid_window_ms / 3;
        while now_ms() < at {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10.min(at.saturating_sub(now_ms())).max(1)));
        }
        let taken = in_flight.lock().map(|s| s.clone()).unwrap_or_default();
        let candidates: Vec<(TxId, TxMeta)> = ingress.with_pool(|p| {
            strategy
                .rollups
                .iter()
                .flat_map(|r| {
                    p.best_by_fee(*r).take(400).map(|v| (*v.id, *v.meta)).collect::<Vec<_>>()
                })
                .filter(|(id, m)| !taken.contains(id) && m.expiry_slot >= slot)
                .collect()
        });
        let mut blocks: BTreeMap<RollupId, Vec<TxId>> = BTreeMap::new();
        let mut fees = 0u128;
        let mut bundles: HashMap<BundleId, Vec<(TxId, TxMeta)>> = HashMap::new();
        for (id, m) in candidates {
            match m.bundle {
                None => {
                    blocks.entry(m.rollup).or_default().push(id);
                    fees += m.max_fee.0;
                }
                Some(b) if strategy.bundles => bundles.entry(b.id).or_default().push((id, m)),
                Some(_) => {}
            }
        }
        for (_, parts) in bundles {
            let count = parts[0].1.bundle.map_or(0, |b| usize::from(b.count));
            if parts.len() == count {
                for (id, m) in parts {
                    blocks.entry(m.rollup).or_default().push(id);
                    fees += m.max_fee.0;
                }
            }
        }
        if blocks.is_empty() {
            continue;
        }
        let reserve: u128 = blocks.keys().map(|r| reserves[r].0).sum();
        sequence += 1;
        let bid = Bid {
            chain_id: DEVNET_CHAIN,
            slot,
            builder: public_key(&key),
            sequence,
            amount: Amount((fees * strategy.bid_percent / 100).max(reserve)),
            blocks: blocks
                .into_iter()
                .map(|(rollup, ciphertexts)| RollupBlock { rollup, ciphertexts, plaintext: vec![] })
                .collect(),
        };
        if let Err(e) = runtime.block_on(client.submit_bid(&bid.sign(&key))) {
            tracing::debug!(builder = strategy.name, %slot, error = %e, "bid refused");
        }
    }
}

fn short(key: &PublicKeyBytes) -> String {
    format!("{}…", &key.to_string()[..10])
}

fn print_slot(
    report: &SlotReport,
    names: &BTreeMap<PublicKeyBytes, &'static str>,
    sent: &Mutex<HashMap<TxId, Vec<u8>>>,
    summary: &mut Summary,
    json: bool,
) {
    summary.slots += 1;
    let payments: u128 = report
        .ledger
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Debit { amount, .. } => Some(amount.0),
            _ => None,
        })
        .sum();
    let payouts_by_rollup: BTreeMap<RollupId, u128> =
        report.ledger.iter().fold(BTreeMap::new(), |mut m, e| {
            if let LedgerEntry::Payout { rollup, amount, .. } = e {
                *m.entry(*rollup).or_default() += amount.0;
            }
            m
        });
    let payouts: u128 = payouts_by_rollup.values().sum();
    summary.payments += payments;
    summary.payouts += payouts;
    let fee_sum = |charge: bool| -> u128 {
        report
            .fees
            .iter()
            .filter(|f| matches!(f, FeeEntry::Charge { .. }) == charge)
            .map(|f| f.amount().0)
            .sum()
    };
    let (fees_charged, fees_credited) = (fee_sum(true), fee_sum(false));
    summary.fees_charged += fees_charged;
    summary.fees_credited += fees_credited;
    let Some(published) = &report.published else {
        summary.undecryptable += 1;
        let txs = report.commitment.as_ref().map_or(0, |c| c.message.len());
        if json {
            println!(
                "{}",
                json!({"slot": report.slot.0, "undecryptable": true, "txs_returned": txs})
            );
        } else {
            println!("slot {}: UNDECRYPTABLE: fewer than t+1 good share batches in time; nothing revealed, {txs} txs back to the pool, payments released", report.slot);
        }
        return;
    };
    let sent = sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut parts = Vec::new();
    let mut rollups_json = Vec::new();
    for block in &published.blocks {
        let (mut incl, mut failed, mut dropped) = (0u64, 0u64, 0u64);
        for tx in &block.txs {
            match &tx.result {
                TxResult::Included(p) => {
                    incl += 1;
                    if sent.get(&tx.id).is_some_and(|s| s != p) {
                        summary.plaintext_mismatches += 1;
                    }
                }
                TxResult::Failed => failed += 1,
                TxResult::DroppedWithBundle(_) => dropped += 1,
            }
        }
        summary.included += incl;
        summary.failed += failed;
        summary.dropped += dropped;
        let committed = report
            .commitment
            .as_ref()
            .and_then(|c| c.message.blocks.iter().find(|b| b.rollup == block.rollup).cloned());
        let who = match committed.as_ref().and_then(|b| b.winner) {
            Some(w) => format!(
                "{} ({}) pays {}",
                names.get(&w).copied().unwrap_or("?"),
                short(&w),
                committed.as_ref().map_or(0, |b| b.payment.0)
            ),
            None => "fallback".into(),
        };
        parts.push(format!(
            "r{} [{who}] {incl} incl {failed} failed {dropped} dropped",
            block.rollup
        ));
        rollups_json.push(json!({
            "rollup": block.rollup.0, "winner": committed.as_ref().and_then(|b| b.winner).map(|w| w.to_string()),
            "payment": committed.as_ref().map_or(0, |b| b.payment.0).to_string(),
            "included": incl, "failed": failed, "dropped": dropped,
            "payout": payouts_by_rollup.get(&block.rollup).copied().unwrap_or(0).to_string(),
        }));
    }
    summary.blamed += published.blamed.len() as u64;
    if let Some(ms) = report.commit_to_plaintext_ms {
        summary.commit_to_plaintext.push(ms);
    }
    let blamed: Vec<String> = published.blamed.iter().map(|b| b.keyper.to_string()).collect();
    if json {
        println!(
            "{}",
            json!({
                "slot": report.slot.0, "rollups": rollups_json, "payments": payments.to_string(),
                "payouts": payouts.to_string(), "fees_charged": fees_charged.to_string(),
                "fees_credited": fees_credited.to_string(), "blamed": blamed,
                "commit_to_plaintext_ms": report.commit_to_plaintext_ms,
            })
        );
    } else {
        let payout_text: Vec<String> =
            payouts_by_rollup.iter().map(|(r, a)| format!("r{r} {a}")).collect();
        println!(
            "slot {}: {} | paid {payments}, payouts {} | fees {fees_charged} | blamed {} | commit→plaintext {} ms",
            report.slot,
            if parts.is_empty() { "empty".to_string() } else { parts.join(" | ") },
            if payout_text.is_empty() { "-".into() } else { payout_text.join(" ") },
            if blamed.is_empty() { "-".into() } else { blamed.join(",") },
            report.commit_to_plaintext_ms.map_or("-".into(), |m| m.to_string()),
        );
    }
}

fn print_summary(s: &Summary, submitted: u64, json: bool) {
    let mut t = s.commit_to_plaintext.clone();
    t.sort_unstable();
    let pct = |p: f64| t.get(((t.len() as f64 - 1.0) * p).round() as usize).copied();
    if json {
        println!(
            "{}",
            json!({
                "summary": true, "slots": s.slots, "undecryptable": s.undecryptable, "submitted": submitted,
                "included": s.included, "failed": s.failed, "dropped": s.dropped,
                "payments": s.payments.to_string(), "payouts": s.payouts.to_string(),
                "fees_charged": s.fees_charged.to_string(), "fees_credited": s.fees_credited.to_string(),
                "plaintext_mismatches": s.plaintext_mismatches, "blamed": s.blamed,
                "commit_to_plaintext_ms_p50": pct(0.5), "commit_to_plaintext_ms_max": t.last(),
            })
        );
    } else {
        println!(
            "summary: {} slots ({} undecryptable), {submitted} txs submitted, {} included, {} failed, {} dropped with their bundle; payments {} = payouts {}{}; fees charged {} = credited {}{}; plaintexts matching what users sent: {}; keypers blamed {}; commit→plaintext p50 {} ms, max {} ms",
            s.slots, s.undecryptable, s.included, s.failed, s.dropped, s.payments, s.payouts,
            if s.payments == s.payouts { "" } else { " (MISMATCH)" },
            s.fees_charged, s.fees_credited,
            if s.fees_charged == s.fees_credited { "" } else { " (MISMATCH)" },
            if s.plaintext_mismatches == 0 { "all".to_string() } else { format!("{} MISMATCHED", s.plaintext_mismatches) },
            s.blamed,
            pct(0.5).map_or("-".into(), |v| v.to_string()),
            t.last().map_or("-".into(), |v| v.to_string()),
        );
    }
}
