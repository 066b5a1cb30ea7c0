//! The system under test: a sequencer node (ingress, keyper endpoint, sequencer thread) in
//! this process, and every keyper a `veil keyper` child process, as `veil devnet
//! --keyper-processes` runs them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use ed25519_dalek::SigningKey;
use veil_auction::{public_key, Auction, AuctionConfig, RevenuePolicy, RollupConfig};
use veil_crypto::dev::DevCommittee;
use veil_mempool::pool::PoolConfig;
use veil_node::sequencer_node::{SequencerNode, SequencerNodeConfig, SlotTiming};
use veil_node::services::keyper::{Behaviour, KeyperLaunch, BACKGROUND_NICE};
use veil_node::services::sequencer::SlotReport;
use veil_primitives::{Amount, ChainId, RollupId};
use veil_sequencer::SlotClock;

/// The chain of the suite's clusters.
pub const CHAIN: ChainId = ChainId(4242);
/// Gas each transaction declares (the SDK's default for a plain transfer).
pub const TX_GAS: u64 = 21_000;
/// Gas limit of a rollup whose blocks are not capped (1,428 transactions per block).
pub const UNCAPPED_GAS: u64 = 30_000_000;
/// How long keypers get to start and link before the suite gives up.
const LINK_WAIT: Duration = Duration::from_secs(30);

/// Finds the `veil` binary: `$VEIL_BIN`, else next to this executable (or one directory up,
/// for a test binary in `target/<profile>/deps`).
///
/// # Errors
/// With the command that builds it, if there is none.
pub fn veil_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VEIL_BIN") {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "VEIL_BIN={} is not a file", path.display());
        return Ok(path);
    }
    let exe = std::env::current_exe().context("the path of this executable")?;
    let dir = exe.parent().context("this executable's directory")?;
    let candidates = [dir.join("veil"), dir.join("..").join("veil")];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "the pipeline suite runs every keyper as a separate `veil keyper` process, and there is \
         no `veil` binary next to {}: run `cargo build --release --bin veil` first (or set \
         VEIL_BIN to the binary)",
        exe.display()
    )
}

/// What a cluster runs.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSpec {
    /// Slot timings.
    pub timing: SlotTiming,
    /// Rollups registered (transactions are spread over them).
    pub rollups: u32,
    /// Transactions per rollup per block, if blocks are capped (through the rollup's gas
    /// limit); `None`: up to [`UNCAPPED_GAS`].
    pub cap_per_rollup: Option<u64>,
}

/// Keyper child processes; killed when dropped if still running.
#[derive(Debug)]
pub struct KeyperProcesses {
    children: Vec<Child>,
}

impl KeyperProcesses {
    /// Writes the committee and one key file per keyper under `dir` and starts one
    /// `veil keyper` per member, each logging to `keyper-<i>/keyper.log` (`RUST_LOG`, `warn`
    /// by default).
    fn spawn(
        veil: &Path,
        dir: &Path,
        committee: &DevCommittee,
        sequencer: SocketAddr,
        sequencer_key: &SigningKey,
    ) -> anyhow::Result<KeyperProcesses> {
        let committee_path = dir.join("committee.json");
        std::fs::write(&committee_path, committee.pks.to_json())?;
        let launch = KeyperLaunch {
            exe: veil.to_path_buf(),
            committee: committee_path,
            sequencer,
            sequencer_key: public_key(sequencer_key),
            threads: KeyperLaunch::threads_for(committee.shares.len()),
            default_log: "warn",
            foreground: Some(committee.pks.default_responders()),
            // `VEIL_PERF_BACKGROUND_NICE=0` runs every keyper at normal priority, to compare.
            background_nice: std::env::var("VEIL_PERF_BACKGROUND_NICE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(BACKGROUND_NICE),
        };
        let mut processes = KeyperProcesses { children: Vec::new() };
        for (i, (share, identity)) in committee.shares.iter().zip(&committee.identities).enumerate()
        {
            let kdir = dir.join(format!("keyper-{}", i + 1));
            std::fs::create_dir_all(&kdir)?;
            let log = std::fs::File::create(kdir.join("keyper.log"))?;
            processes.children.push(launch.spawn(
                share,
                identity,
                &kdir,
                Behaviour::Honest,
                log,
            )?);
        }
        Ok(processes)
    }

    /// The process ids.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// A keyper that exited, with its status.
    fn exited(&mut self) -> Option<(usize, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (i + 1, s)))
    }

    /// SIGTERM to each (through the `kill` command: the workspace binds no libc), a moment to
    /// finish, then SIGKILL for any still running.
    fn stop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for child in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for KeyperProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running cluster. [`Cluster::stop`] shuts it down; dropping it kills the keypers.
pub struct Cluster {
    /// The node's runtime (2 worker threads).
    pub runtime: tokio::runtime::Runtime,
    /// The sequencer node.
    pub node: Option<SequencerNode>,
    /// Finished slots.
    pub reports: mpsc::Receiver<SlotReport>,
    /// The keyper processes.
    pub keypers: KeyperProcesses,
    /// The slot clock.
    pub clock: SlotClock,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

fn auction(spec: &ClusterSpec) -> anyhow::Result<Auction> {
    let mut auction = Auction::new(AuctionConfig { chain_id: CHAIN, ..AuctionConfig::default() });
    let admin = public_key(&SigningKey::from_bytes(&[0xad; 32]));
    let gas_limit = spec.cap_per_rollup.map_or(UNCAPPED_GAS, |cap| cap * TX_GAS);
    for r in 0..spec.rollups {
        auction.register_genesis_rollup(
            RollupId(r),
            admin,
            RollupConfig {
                reserve: Amount::ZERO,
                gas_limit,
                policy: RevenuePolicy::standard(8_000, 1_500, 500, admin)?,
                active: true,
            },
        )?;
    }
    // The load's fee payers, funded beyond anything a run spends.
    for p in veil_builder_api::loadgen::payer_keys(super::load::PAYER_SEED, super::load::PAYERS) {
        auction.deposit_fee(public_key(&p), Amount(u128::from(u64::MAX)))?;
    }
    Ok(auction)
}

impl Cluster {
    /// Starts the node and one `veil keyper` process per member of `committee`, and waits
    /// until every keyper has linked.
    ///
    /// # Errors
    /// If the node cannot start, a keyper exits, or the keypers do not link in time.
    pub fn start(
        veil: &Path,
        committee: &DevCommittee,
        spec: &ClusterSpec,
    ) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("veil-perf-pipeline-").tempdir()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("veil-node")
            .enable_all()
            .build()?;
        let sequencer_key = SigningKey::from_bytes(&[0x5e; 32]);
        let mut node = runtime.block_on(SequencerNode::start(SequencerNodeConfig {
            data_dir: dir.path().join("sequencer"),
            pks: committee.pks.clone(),
            sequencer_key: sequencer_key.clone(),
            ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            keyper_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: None,
            http: veil_builder_api::server::ServerConfig::default(),
            timing: spec.timing,
            genesis_ms: None,
            auction: auction(spec)?,
            pool: PoolConfig::new(CHAIN),
        }))?;
        let reports = node.take_reports().context("the node's reports")?;
        let clock = node.genesis().clock()?;
        let keyper_addr = node.keyper_server().local_addr();
        let keypers =
            KeyperProcesses::spawn(veil, dir.path(), committee, keyper_addr, &sequencer_key)?;
        let mut cluster = Cluster { runtime, node: Some(node), reports, keypers, clock, dir };
        cluster.wait_for_links(committee.pks.committee_size())?;
        Ok(cluster)
    }

    fn wait_for_links(&mut self, n: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let linked =
                self.node.as_ref().map_or(0, |node| node.keyper_server().connected().len());
            if linked >= n {
                return Ok(());
            }
            if let Some((i, status)) = self.keypers.exited() {
                bail!("keyper {i} exited ({status}); see {}", self.keyper_log(i).display());
            }
            if start.elapsed() > LINK_WAIT {
                bail!(
                    "only {linked} of {n} keypers linked within {:?}; see {}",
                    LINK_WAIT,
                    self.keyper_log(1).display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log file of keyper `i` (1-based).
    #[must_use]
    pub fn keyper_log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("keyper-{i}")).join("keyper.log")
    }

    /// The node (present until [`Cluster::stop`]).
    ///
    /// # Panics
    /// After `stop`.
    #[must_use]
    pub fn node(&self) -> &SequencerNode {
        self.node.as_ref().expect("the cluster is running")
    }

    /// Stops the keypers, then the node; removes the data directory, unless
    /// `VEIL_PERF_KEEP_DIR` is set (the keypers' logs are there), whose path it then prints.
    pub fn stop(mut self) {
        self.keypers.stop();
        if let Some(node) = self.node.take() {
            self.runtime.block_on(node.stop());
        }
        if std::env::var_os("VEIL_PERF_KEEP_DIR").is_some() {
            let dir =
                std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("a temp dir"));
            eprintln!("pipeline: kept the cluster's directory {}", dir.keep().display());
        }
    }
}
