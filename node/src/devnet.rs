//! `veil devnet`: the whole slot lifecycle on one machine.
//!
//! A sequencer (the slot machine on its thread, SQLite record log), the QUIC ingress with the
//! encrypted mempool, a committee of keypers (16, t = 11 by default) each with its own record
//! log, rollups with different reserves and revenue policies, simulated users that encrypt and
//! submit transactions and cross-rollup bundles over QUIC, and competing builders with
//! different strategies. One line per slot; a summary at the end.
//!
//! Two rollups are registered at genesis; once the node runs, a third registers itself and
//! one of the first two raises its reserve, each with a signed admin message through the
//! SDK's `RollupClient` (`POST /v1/rollups/updates`), as rollups outside the devnet do. The
//! devnet shows each change taking effect at its slot boundary, from the outcome records of
//! the slot before and the slot it applies to.
//!
//! Keypers talk to the sequencer over the QUIC keyper protocol, each with its own link:
//! in-process by default (a thread and a link each), or as `veil keyper` child processes with
//! `--keyper-processes` (key files and logs in the data directory).
//!
//! The node serves the HTTP API (builders, data API, users, `/openapi.json`) on the address it
//! prints. The devnet's builders are instances of the reference builder
//! ([`veil_builder_api::builder::ReferenceBuilder`], what `veil builder run` runs) talking
//! HTTP only: they follow the mempool stream, read each slot's outcome and bid through the
//! SDK's `BuilderClient`, one per strategy (fee order on one rollup, cross-rollup sets,
//! bid shading). What is not there yet, and said so in the output: fees are charged and credited as ledger
//! entries at settlement, but fee accounts (deposits, balances, reservation at admission)
//! come with the ingress v2 issue.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use rand_core::RngCore;
use serde_json::json;
use veil_auction::{
    public_key, Auction, AuctionConfig, LedgerEntry, RevenuePolicy, RollupChange, RollupConfig,
    RollupUpdate,
};
use veil_builder_api::builder::{
    BuilderStats, DriverConfig, ReferenceBuilder, RollupSet, StrategyConfig, StrategyKind,
};
use veil_builder_api::http::{BuilderClient, HttpClient, RollupClient};
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
use crate::services::keyper::{
    Behaviour, KeyperLaunch, KeyperSetup, RunningKeyper, BACKGROUND_NICE,
};
use crate::services::sequencer::{now_ms, SlotReport};

/// The devnet's chain id.
pub const DEVNET_CHAIN: ChainId = ChainId(1337);
/// The seed of the devnet users' fee-payer keys (`veil_builder_api::loadgen::payer_keys`):
/// `veil submit --dev-payer 7` signs as the first of them.
pub const DEVNET_USER_SEED: u64 = 7;
/// How many simulated users (fee payers) the devnet funds and sends from.
pub const DEVNET_USERS: usize = 32;
/// Each devnet user's fee-account deposit.
pub const DEVNET_USER_DEPOSIT: u128 = 1_000_000;

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
        foreground: Some(committee.pks.default_responders()),
        background_nice: BACKGROUND_NICE,
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
    /// Basis points of the treasury, user rebates and protocol fee buckets.
    policy: (u16, u16, u16),
}

impl Rollup {
    /// Its terms, paid out to its admin key.
    fn config(&self) -> anyhow::Result<RollupConfig> {
        Ok(RollupConfig {
            reserve: self.reserve,
            gas_limit: 30_000_000,
            policy: RevenuePolicy::standard(
                self.policy.0,
                self.policy.1,
                self.policy.2,
                public_key(&admin(self.id)),
            )?,
            active: true,
        })
    }
}

/// The rollups registered at genesis.
fn genesis_rollups() -> Vec<Rollup> {
    vec![
        Rollup { id: RollupId(0), reserve: Amount(20), policy: (8_000, 1_500, 500) },
        Rollup { id: RollupId(1), reserve: Amount(50), policy: (6_000, 3_000, 1_000) },
    ]
}

/// The rollup that registers itself over HTTP once the node runs, two slots ahead.
fn late_rollup() -> Rollup {
    Rollup { id: RollupId(2), reserve: Amount(0), policy: (9_000, 0, 1_000) }
}

/// The reconfiguration a genesis rollup signs and sends over HTTP once the node runs, three
/// slots ahead: its new reserve.
const RECONFIGURED: (RollupId, Amount) = (RollupId(1), Amount(80));

/// Every rollup's own admin key: it signs the rollup's updates and receives its payouts.
fn admin(rollup: RollupId) -> SigningKey {
    SigningKey::from_bytes(&[0xa0u8.wrapping_add(rollup.0 as u8); 32])
}

/// A signed rollup update the devnet sent, to be shown taking effect.
struct RollupChangeSent {
    rollup: RollupId,
    /// `register` or `configure`.
    what: &'static str,
    /// The first slot it applies to.
    effective: Slot,
}

/// Registers [`late_rollup`] and reconfigures [`RECONFIGURED`] with signed admin messages
/// through the SDK's `RollupClient` (`POST /v1/rollups/updates`), as a rollup's own operator
/// would, and says so. A restarted devnet finds them done (`ROLLUP_EXISTS`; the
/// configuration is sent again with the next nonce).
async fn rollups_over_http(
    api: &str,
    say: &impl Fn(String),
    json: bool,
) -> anyhow::Result<Vec<RollupChangeSent>> {
    let http = HttpClient::new(api).context("the HTTP API's address")?;
    let schedule = BuilderClient::new(http.clone()).schedule().await?;
    let client = RollupClient::new(http);
    let now = schedule.current.slot;
    let mut sent = Vec::new();
    let mut show = |change: RollupChangeSent, text: String| {
        if json {
            println!(
                "{}",
                json!({"rollup_update": change.what, "rollup": change.rollup.0, "effective": change.effective.0})
            );
        } else {
            say(text);
        }
        sent.push(change);
    };

    // Register: signed by the new admin key; two slots ahead, as the next slot may open
    // before the message arrives.
    let late = late_rollup();
    let key = admin(late.id);
    let register = RollupUpdate {
        chain_id: DEVNET_CHAIN,
        rollup: late.id,
        nonce: 1,
        effective: Slot(now.0 + 2),
        change: RollupChange::Register { admin: public_key(&key), config: late.config()? },
    }
    .sign(&key);
    match client.update(&register).await {
        Ok(a) => show(
            RollupChangeSent { rollup: a.rollup, what: "register", effective: a.effective },
            format!(
                "rollup {} registered over HTTP (signed update, POST /v1/rollups/updates): reserve {}, treasury/rebates/protocol {}/{}/{} bps, in force from slot {}",
                a.rollup, late.reserve, late.policy.0, late.policy.1, late.policy.2, a.effective
            ),
        ),
        Err(e) if e.code() == Some(veil_primitives::ErrorCode::RollupExists) => {
            say(format!("rollup {} registered by an earlier run", late.id));
        }
        Err(e) => return Err(e).context("register a rollup over HTTP"),
    }

    // Configure: the admin key in force signs new terms from a later slot on.
    let (id, reserve) = RECONFIGURED;
    let info = client.rollup(id).await.context("read a rollup over HTTP")?;
    let mut config = info.current.context("a genesis rollup has terms in force")?;
    let before = config.reserve;
    config.reserve = reserve;
    let key = admin(id);
    let configure = RollupUpdate {
        chain_id: DEVNET_CHAIN,
        rollup: id,
        nonce: info.last_nonce + 1,
        effective: Slot(now.0 + 3),
        change: RollupChange::Configure(config),
    }
    .sign(&key);
    let a = client.update(&configure).await.context("configure a rollup over HTTP")?;
    show(
        RollupChangeSent { rollup: a.rollup, what: "configure", effective: a.effective },
        format!(
            "rollup {} reconfigured over HTTP (signed update, nonce {}): reserve {before} -> {reserve} from slot {}",
            a.rollup, a.nonce, a.effective
        ),
    );
    Ok(sent)
}

/// After the slot a change applies to is reported: the outcome records of that slot and the
/// one before show the rollup's terms switching at the boundary.
async fn show_change(builders: &BuilderClient, change: &RollupChangeSent, json: bool) {
    let reserve_in = |slot: Slot| async move {
        let outcome = builders.outcome(slot).await.ok()?;
        Some(
            outcome
                .outcome
                .terms
                .iter()
                .find(|t| t.rollup == change.rollup)
                .map(|t| t.config.reserve),
        )
    };
    let before_slot = Slot(change.effective.0.saturating_sub(1));
    let (Some(before), Some(after)) =
        (reserve_in(before_slot).await, reserve_in(change.effective).await)
    else {
        if !json {
            println!(
                "rollup {} {}: the outcome records of slots {before_slot} and {} are not available",
                change.rollup, change.what, change.effective
            );
        }
        return;
    };
    let terms =
        |r: Option<Amount>| r.map_or("no terms for it".to_string(), |r| format!("reserve {r}"));
    if json {
        println!(
            "{}",
            json!({
                "rollup_terms": change.rollup.0, "update": change.what,
                "slot_before": before_slot.0, "reserve_before": before.map(|r| r.to_string()),
                "slot": change.effective.0, "reserve": after.map(|r| r.to_string()),
            })
        );
    } else {
        println!(
            "rollup {}'s {} took effect at the slot boundary: slot {before_slot}'s outcome record has {}, slot {}'s {} (GET /v1/slots/{{slot}}/outcome)",
            change.rollup,
            if change.what == "register" { "registration" } else { "new terms" },
            terms(before),
            change.effective,
            terms(after),
        );
    }
}

/// The devnet's builders: a name and a reference-builder strategy each.
fn strategies() -> Vec<(&'static str, StrategyConfig)> {
    let set = |s: &str| s.parse::<RollupSet>().expect("a literal rollup set");
    let config = |kind, sets: &[&str], percent| {
        StrategyConfig::new(kind, sets.iter().map(|s| set(s)).collect(), percent)
            .expect("literal strategies are valid")
    };
    vec![
        ("fee-order r0", config(StrategyKind::FeeOrder, &["0"], 70)),
        ("fee-order r1", config(StrategyKind::FeeOrder, &["1"], 70)),
        ("cross-rollup r0+r1,r2", config(StrategyKind::CrossRollup, &["0+1", "2"], 50)),
        ("shading r0+r1+r2", config(StrategyKind::Shading, &["0+1+2"], 60)),
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

    // Two rollups at genesis; the third registers itself over HTTP once the node runs.
    let mut auction =
        Auction::new(AuctionConfig { chain_id: DEVNET_CHAIN, ..AuctionConfig::default() });
    for r in genesis_rollups() {
        auction.register_genesis_rollup(r.id, public_key(&admin(r.id)), r.config()?)?;
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
        "sequencer: {} keypers (t = {}, {} decrypt; {} byzantine, {} silent) {} over QUIC at {}, {} rollups at genesis, slots of {} ms (bids close at +{} ms), ingress {} fingerprint {}",
        config.keypers, config.threshold, config.threshold + 1, config.byzantine, config.silent,
        if config.keyper_processes {
            // Matches `KeyperLaunch::foreground` in `spawn_keyper_processes`.
            format!("as separate processes (the {} outside the default responder set at nice {BACKGROUND_NICE})", config.keypers.saturating_sub(config.threshold + 1))
        } else {
            "in-process".to_string()
        },
        keyper_addr,
        genesis_rollups().len(), config.slot_ms, clock.bid_window_ms, ingress.local_addr(), ingress.fingerprint()
    ));
    if let Some(addr) = node.http_addr() {
        say(format!("http api: http://{addr} (metrics: http://{addr}/metrics, document: http://{addr}/openapi.json)"));
    }
    say("builders bid over HTTP (POST /v1/builder/bids, through the SDK); users sign as fee payers, admission reserves each max fee against the payer's fee account, settlement charges it and credits the block's builder".into());

    // The bridge funds the builders' collateral over HTTP: one signed deposit notice each
    // (idempotent per deposit id, so a restarted devnet sends the same notices again).
    let collateral = veil_builder_api::http::BuilderClient::new(
        veil_builder_api::http::HttpClient::new(&api).context("the HTTP API's address")?,
    );
    // And the users' fee accounts, the same way (deposit notices of kind fee_payer).
    let user_keys = veil_builder_api::loadgen::payer_keys(DEVNET_USER_SEED, DEVNET_USERS);
    let accounts = [
        (veil_primitives::AccountKind::Builder, &builder_keys[..], 1_000_000_000, "builder"),
        (veil_primitives::AccountKind::FeePayer, &user_keys[..], DEVNET_USER_DEPOSIT, "user"),
    ];
    for (kind, keys, amount, who) in accounts {
        for (i, key) in keys.iter().enumerate() {
            let notice = veil_primitives::DepositNotice {
                chain_id: DEVNET_CHAIN,
                bridge: public_key(&bridge),
                deposit_id: veil_primitives::DepositId(veil_primitives::encoding::sha3_256(
                    format!("devnet {who} deposit {i}").as_bytes(),
                )),
                kind,
                account: public_key(key),
                amount: Amount(amount),
            }
            .sign(&bridge);
            collateral
                .deposit(&notice)
                .await
                .with_context(|| format!("fund a {who} through the bridge"))?;
        }
    }
    say(format!(
        "bridge {}: {} builders and {} users' fee accounts ({} each) funded over HTTP (POST /v1/builders/deposits)",
        public_key(&bridge),
        builder_keys.len(),
        user_keys.len(),
        DEVNET_USER_DEPOSIT,
    ));

    // The rollups' own operators: one registers, one changes its terms, over HTTP.
    let mut changes = rollups_over_http(&api, &say, config.json).await?;

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
        let payers = user_keys.clone();
        tokio::spawn(
            async move { users(pks, payers, clock, submitter, sent, submitted, rate).await },
        )
    };

    // Builders: reference builders over HTTP, as outside builders would run them.
    let builders: Vec<(&'static str, ReferenceBuilder)> = strategies()
        .into_iter()
        .zip(builder_keys)
        .map(|((name, strategy), key)| {
            let client = BuilderClient::new(HttpClient::new(&api)?);
            Ok((name, ReferenceBuilder::spawn(client, DriverConfig::new(key, strategy), None)))
        })
        .collect::<anyhow::Result<_>>()?;
    say(format!(
        "builders: {} (reference builders following GET /v1/mempool/stream, bidding over HTTP)",
        builders.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    ));

    // The report.
    let mut summary = Summary::default();
    let names: BTreeMap<PublicKeyBytes, &'static str> =
        builders.iter().map(|(name, b)| (b.key(), *name)).collect();
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
                // Rollup changes whose first slot is now reported: shown taking effect.
                let (due, later): (Vec<_>, Vec<_>) =
                    changes.into_iter().partition(|c| c.effective <= report.slot);
                changes = later;
                for change in &due {
                    show_change(&collateral, change, config.json).await;
                }
                if config.slots.is_some_and(|n| summary.slots >= n) {
                    break;
                }
            }
        }
    }

    // Shut down in order: inputs first, then the services.
    users.abort();
    let mut builder_stats = Vec::new();
    for (name, b) in builders {
        builder_stats.push((name, b.stop().await));
    }
    drop(ingress);
    node.stop().await;
    keypers.stop().await;
    // The builders' own counts, then the summary (the last line).
    for (name, stats) in &builder_stats {
        print_builder(name, stats, config.json);
    }
    print_summary(&summary, submitted.load(Ordering::Relaxed), config.json);
    Ok(())
}

async fn users(
    pks: veil_crypto::PublicKeySet,
    payers: Vec<SigningKey>,
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
        let payer = payers[rng.next_u32() as usize % payers.len()].clone();
        let base = TxMeta {
            chain_id: pks.chain_id(),
            eon: pks.eon(),
            rollup: RollupId(rng.next_u32() % 3),
            fee_payer: public_key(&payer),
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
                if submitter.submit_bundle(&cts, &payer).await.is_ok() {
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
                if submitter.submit(&ct, &payer).await.is_ok() {
                    sent.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(ct.id(), payload);
                    submitted.fetch_add(1, Ordering::Relaxed);
                }
            });
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

fn print_builder(name: &str, s: &BuilderStats, json: bool) {
    if json {
        println!(
            "{}",
            json!({
                "builder": name, "slots_bid": s.slots_bid, "bids_sent": s.bids_sent,
                "bids_accepted": s.bids_accepted, "refusals": s.refusals,
                "slots_won": s.slots_won, "rollups_won": s.rollups_won, "paid": s.paid.to_string(),
                "stream_reconnects": s.stream_reconnects,
            })
        );
    } else {
        let refusals: Vec<String> = s.refusals.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!(
            "builder {name}: bid in {} slots, {} bids ({} accepted, refused: {}), won {} slots ({} rollup blocks) paying {}",
            s.slots_bid,
            s.bids_sent,
            s.bids_accepted,
            if refusals.is_empty() { "none".to_string() } else { refusals.join(", ") },
            s.slots_won,
            s.rollups_won,
            s.paid,
        );
    }
}
