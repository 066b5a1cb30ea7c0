//! A sequencer node: the QUIC ingress with the encrypted mempool, the keyper endpoint, and the
//! sequencer thread, wired together over one data directory. `veil sequencer` runs one from a
//! configuration file; `veil devnet` runs one and adds keypers, users and builders around it.
//!
//! # The data directory
//!
//! | path | what |
//! |---|---|
//! | `genesis.json` | chain, eon and slot clock, written at the first start and checked at every later one |
//! | `ingress/` | the transaction store (SQLite) and the node's TLS certificate |
//! | `sequencer.sqlite` | the slot records (decided, signed, decrypted, settled, undecryptable) |
//! | `api.sqlite` | the HTTP data API's index: bids accepted, and what the indexer derives from the slot records |
//!
//! The genesis file pins the slot clock: a restarted sequencer computes the same slot for the
//! same instant, so its persisted commitments line up with the slots they were made for.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use veil_auction::Auction;
use veil_builder_api::server::ServerConfig;
use veil_crypto::PublicKeySet;
use veil_mempool::pool::PoolConfig;
use veil_mempool::validate::CommitteeValidator;
use veil_primitives::{ChainId, Eon, TxId};
use veil_sequencer::{KeyFinalizer, SlotClock, SlotMachine};
use veil_storage::data::DataStore;

use crate::metrics::{NodeMetrics, Row, Scraped};
use crate::services::api::NodeApi;
use crate::services::bids::BidIntake;
use crate::services::http::HttpServer;
use crate::services::indexer::{Indexer, DEFAULT_POLL};
use crate::services::ingress::{Ingress, IngressConfig};
use crate::services::keyper_server::{KeyperLinks, KeyperServer, KeyperServerConfig};
use crate::services::sequencer::{
    now_ms, SequencerInput, SequencerService, SequencerWiring, SlotReport,
};

/// The file name of the HTTP data API's index inside the data directory.
pub const DATA_FILE: &str = "api.sqlite";

/// Slot timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotTiming {
    /// Slot length.
    pub slot_ms: u64,
    /// Bidding window from each slot's start.
    pub bid_window_ms: u64,
    /// Time after the close within which `t + 1` good share batches must arrive.
    pub release_timeout_ms: u64,
}

/// What `genesis.json` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The committee's eon.
    pub eon: Eon,
    /// The start of slot 0, ms since the Unix epoch.
    pub genesis_ms: u64,
    /// The slot timings.
    pub timing: SlotTiming,
}

impl Genesis {
    /// The slot clock.
    ///
    /// # Errors
    /// A zero slot length.
    pub fn clock(&self) -> anyhow::Result<SlotClock> {
        Ok(SlotClock {
            genesis_ms: self.genesis_ms,
            slot_ms: NonZeroU64::new(self.timing.slot_ms).context("slot_ms must be positive")?,
            bid_window_ms: self.timing.bid_window_ms.min(self.timing.slot_ms),
            release_timeout_ms: self.timing.release_timeout_ms,
        })
    }

    /// Reads `dir/genesis.json`, or writes it with `genesis_ms` (now + 500 ms if `None`) at
    /// the first start. A later start with another chain, eon or timing is refused: the
    /// stored commitments belong to the stored clock.
    ///
    /// # Errors
    /// An unreadable file, or a mismatch.
    pub fn load_or_create(
        dir: &Path,
        chain_id: ChainId,
        eon: Eon,
        timing: SlotTiming,
        genesis_ms: Option<u64>,
    ) -> anyhow::Result<Genesis> {
        let path = dir.join("genesis.json");
        if path.exists() {
            let g: Genesis = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("parse {}", path.display()))?;
            if g.chain_id != chain_id || g.eon != eon || g.timing != timing {
                bail!(
                    "{} was created for chain {} eon {} with {:?}; this start asks for chain {} eon {} with {:?} (use a new data directory)",
                    path.display(), g.chain_id, g.eon, g.timing, chain_id, eon, timing
                );
            }
            if genesis_ms.is_some_and(|ms| ms != g.genesis_ms) {
                bail!(
                    "{} has genesis_ms {}; the configuration asks for another",
                    path.display(),
                    g.genesis_ms
                );
            }
            return Ok(g);
        }
        let g = Genesis {
            chain_id,
            eon,
            genesis_ms: genesis_ms.unwrap_or_else(|| now_ms() + 500),
            timing,
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&g)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(g)
    }
}

/// What a sequencer node needs.
pub struct SequencerNodeConfig {
    /// The data directory (see the module docs).
    pub data_dir: PathBuf,
    /// The committee.
    pub pks: PublicKeySet,
    /// The sequencer key: signs commitments and the keyper links' welcome.
    pub sequencer_key: SigningKey,
    /// The ingress's UDP address.
    pub ingress_listen: SocketAddr,
    /// The keyper endpoint's UDP address.
    pub keyper_listen: SocketAddr,
    /// The HTTP endpoint's TCP address (the HTTP API with `/metrics`, `/health`), if any.
    pub http_listen: Option<SocketAddr>,
    /// The HTTP API's limits.
    pub http: ServerConfig,
    /// Slot timings.
    pub timing: SlotTiming,
    /// A fixed genesis time; by default now + 500 ms at the first start.
    pub genesis_ms: Option<u64>,
    /// The auction at genesis: rollups registered, builders' collateral and users' fee
    /// accounts deposited.
    pub auction: Auction,
    /// The mempool's limits.
    pub pool: PoolConfig,
}

/// A running sequencer node.
pub struct SequencerNode {
    http: Option<HttpServer>,
    indexer: Option<Indexer>,
    bids: BidIntake,
    metrics: Arc<NodeMetrics>,
    ingress: Arc<Ingress>,
    keyper_server: KeyperServer,
    sequencer: SequencerService,
    intake: mpsc::Sender<SequencerInput>,
    reports: Option<mpsc::Receiver<SlotReport>>,
    genesis: Genesis,
}

impl std::fmt::Debug for SequencerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerNode").field("genesis", &self.genesis).finish_non_exhaustive()
    }
}

impl SequencerNode {
    /// Opens the data directory, restores the mempool and the slot records, and starts the
    /// ingress, the keyper endpoint and the sequencer thread. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// Storage, TLS, socket or genesis errors.
    pub async fn start(config: SequencerNodeConfig) -> anyhow::Result<SequencerNode> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("create {}", config.data_dir.display()))?;
        let pks = config.pks;
        let genesis = Genesis::load_or_create(
            &config.data_dir,
            pks.chain_id(),
            pks.eon(),
            config.timing,
            config.genesis_ms,
        )?;
        let clock = genesis.clock()?;
        let mut pool = config.pool;
        // The mempool admits transactions for the registered rollups only, within their gas
        // limits; the sequencer thread keeps the table in step with the registry (rollups
        // registered or reconfigured after genesis, restored ones).
        pool.rollups.get_or_insert_with(|| config.auction.rollups().gas_limits());
        // A sequencer has a ledger: every fee payer needs a funded fee account, and admission
        // reserves each transaction's max fee against it (the sequencer thread copies the
        // ledger's balances into the pool once the records are restored).
        pool.fee_accounts = true;
        let mut ingress_config =
            IngressConfig::new(config.ingress_listen, config.data_dir.join("ingress"), pool);
        ingress_config.eons = vec![pks.eon()];
        ingress_config.current_slot = clock.slot_at(now_ms());
        // Until the sequencer thread has copied the restored balances into the pool.
        ingress_config.hold_admission = true;
        let ingress = Arc::new(
            Ingress::start(ingress_config, Arc::new(CommitteeValidator::new(vec![pks.clone()])))
                .await?,
        );
        let (intake, intake_rx) = mpsc::channel::<SequencerInput>();
        let keyper_server = KeyperServer::start(
            KeyperServerConfig {
                listen: config.keyper_listen,
                tls_dir: config.data_dir.join("ingress"),
                pks: pks.clone(),
                sequencer_key: config.sequencer_key.clone(),
            },
            ingress.clone(),
            intake.clone(),
        )?;
        let (report_tx, reports) = mpsc::channel::<SlotReport>();
        let metrics = Arc::new(NodeMetrics::new());
        let first = clock.slot_at(now_ms());
        let committee_json = pks.to_json();
        let keypers_needed = pks.threshold() + 1;
        let machine = SlotMachine::new(clock, pks, config.auction, first);
        let sequencer = SequencerService::spawn(
            machine,
            &config.data_dir.join("sequencer.sqlite"),
            SequencerWiring {
                finalizer: Box::new(KeyFinalizer::new(config.sequencer_key)),
                ingress: ingress.clone(),
                keypers: keyper_server.links(),
                channel: (intake.clone(), intake_rx),
                reports: report_tx,
                metrics: metrics.clone(),
            },
        )?;
        metrics.register_scraped(Arc::new(Scrape {
            ingress: ingress.clone(),
            keypers: keyper_server.links(),
            slots: sequencer.slot_stats(),
        }));
        let data = Arc::new(DataStore::open(&config.data_dir.join(DATA_FILE))?);
        let bids = BidIntake::new(intake.clone(), data.clone());
        let indexer = Indexer::spawn(
            &config.data_dir.join("sequencer.sqlite"),
            data.clone(),
            DEFAULT_POLL,
            sequencer.release_window(),
        )?;
        let http = match config.http_listen {
            Some(addr) => {
                let api = NodeApi {
                    chain_id: genesis.chain_id,
                    eon: genesis.eon,
                    committee: serde_json::from_str(&committee_json)?,
                    keypers_needed: keypers_needed as u64,
                    clock,
                    sequencer: intake.clone(),
                    intake: bids.clone(),
                    data,
                    top_bids: sequencer.top_bids(),
                    ingress: ingress.clone(),
                    in_flight: sequencer.in_flight(),
                    keypers: keyper_server.links(),
                    running: sequencer.running(),
                    metrics: metrics.clone(),
                };
                Some(HttpServer::start(addr, Arc::new(api), config.http).await?)
            }
            None => None,
        };
        Ok(SequencerNode {
            http,
            indexer: Some(indexer),
            bids,
            metrics,
            ingress,
            keyper_server,
            sequencer,
            intake,
            reports: Some(reports),
            genesis,
        })
    }

    /// The ingress (its address, certificate fingerprint and pool).
    #[must_use]
    pub fn ingress(&self) -> &Arc<Ingress> {
        &self.ingress
    }

    /// The HTTP endpoint's address, if it runs.
    #[must_use]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// The metrics registry.
    #[must_use]
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// The keyper endpoint.
    #[must_use]
    pub fn keyper_server(&self) -> &KeyperServer {
        &self.keyper_server
    }

    /// The sequencer thread's input: bids go here.
    #[must_use]
    pub fn intake(&self) -> mpsc::Sender<SequencerInput> {
        self.intake.clone()
    }

    /// The bid intake (the sequencer thread's input for bids, recording accepted ones for the
    /// data API): in-process builders bid here, as the HTTP API does.
    #[must_use]
    pub fn bids(&self) -> BidIntake {
        self.bids.clone()
    }

    /// Ciphertexts committed and not yet decrypted or abandoned.
    #[must_use]
    pub fn in_flight(&self) -> Arc<Mutex<std::collections::HashSet<TxId>>> {
        self.sequencer.in_flight()
    }

    /// The genesis (chain, clock).
    #[must_use]
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The finished-slot reports (once; later calls get `None`).
    pub fn take_reports(&mut self) -> Option<mpsc::Receiver<SlotReport>> {
        self.reports.take()
    }

    /// Stops the sequencer thread, then the keyper endpoint and the ingress.
    pub async fn stop(self) {
        let SequencerNode {
            http, indexer, bids, ingress, keyper_server, sequencer, intake, ..
        } = self;
        drop(intake);
        drop(bids);
        if let Some(http) = http {
            http.stop();
        }
        if let Some(indexer) = indexer {
            let _ = tokio::task::spawn_blocking(move || indexer.stop()).await;
        }
        let _ = tokio::task::spawn_blocking(move || sequencer.stop()).await;
        keyper_server.shutdown().await;
        if let Ok(ingress) = Arc::try_unwrap(ingress) {
            ingress.shutdown().await;
        }
    }
}

/// The counters read at each scrape: the pool's, the ingress shell's, the keyper endpoint's
/// and the slot machine's.
#[derive(Debug)]
struct Scrape {
    ingress: Arc<Ingress>,
    keypers: KeyperLinks,
    slots: Arc<Mutex<veil_sequencer::slot::SlotStats>>,
}

impl Scraped for Scrape {
    fn rows(&self) -> Vec<Row> {
        let row = |name, help, label: Option<(&'static str, String)>, value, counter| Row {
            name,
            help,
            label,
            value,
            counter,
        };
        let pool = self.ingress.pool_stats();
        let shell = self.ingress.stats();
        let pending = self.ingress.with_pool(|p| p.len() as u64);
        let mut rows = vec![
            row("veil_ingress_admitted", "Transactions admitted", None, pool.admitted, true),
            row("veil_ingress_duplicates", "Idempotent repeats", None, pool.duplicates, true),
            row(
                "veil_ingress_replays",
                "Idempotent repeats of committed transactions (of the duplicates)",
                None,
                pool.replays,
                true,
            ),
            row(
                "veil_mempool_spent",
                "Committed transaction ids remembered until their expiry slot",
                None,
                pool.spent,
                false,
            ),
            row(
                "veil_mempool_spent_forgotten",
                "Committed ids forgotten early for the memory bound (their expiry slot refused)",
                None,
                pool.spent_forgotten,
                true,
            ),
            row("veil_ingress_evicted", "Evicted for higher fees", None, pool.evicted, true),
            row("veil_ingress_expired", "Expired before inclusion", None, pool.expired, true),
            row(
                "veil_ingress_connections",
                "Connections accepted",
                None,
                shell.connections_accepted,
                true,
            ),
            row("veil_mempool_pending", "Pending transactions", None, pending, false),
            row(
                "veil_receipts_pushed",
                "Receipts pushed to users' connections",
                None,
                shell.receipts_pushed,
                true,
            ),
            row(
                "veil_receipts_push_dropped",
                "Receipt pushes dropped at a full connection queue (the receipt stays stored)",
                None,
                shell.receipts_push_dropped,
                true,
            ),
            row(
                "veil_receipts_unrouted",
                "Receipts for transactions whose connection had closed (stored only)",
                None,
                shell.receipts_unrouted,
                true,
            ),
        ];
        for (code, n) in &pool.rejected {
            rows.push(row(
                "veil_ingress_rejected",
                "Rejected submissions by code",
                Some(("code", code.name().to_string())),
                *n,
                true,
            ));
        }
        let k = self.keypers.stats();
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let s = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let batches = "Share batches by result";
        rows.extend([
            row(
                "veil_share_batches",
                batches,
                Some(("result", "forwarded".into())),
                g(&k.batches),
                true,
            ),
            row(
                "veil_share_batches",
                batches,
                Some(("result", "dropped".into())),
                g(&k.batches_dropped),
                true,
            ),
            row(
                "veil_share_batches",
                batches,
                Some(("result", "refused".into())),
                s.bad_batches,
                true,
            ),
            row("veil_keypers_blamed", "Keypers blamed for bad shares", None, s.blamed, true),
            row("veil_fallback_rounds", "Fallback (rescale) rounds", None, s.rescales, true),
            row(
                "veil_keyper_links",
                "Authenticated keyper links now",
                None,
                self.keypers.connected_count(),
                false,
            ),
            row(
                "veil_keyper_fetched",
                "Ciphertext bodies served to catching-up keypers",
                None,
                g(&k.fetched),
                true,
            ),
        ]);
        rows
    }
}
