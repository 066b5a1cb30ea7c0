//! The sequencer's configuration: a TOML file with documented defaults
//! (`veil.example.toml` at the repository root lists every key), overridden by flags and
//! `VEIL_*` environment variables (`veil sequencer --help`).
//!
//! Amounts are decimal strings, as everywhere in Veil's text formats; keys are `0x` hex.
//! Unknown keys are refused, so a typo is an error rather than a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use veil_auction::{Auction, AuctionConfig, PaymentRule, RevenuePolicy, RollupConfig};
use veil_primitives::{Amount, ChainId, PublicKeyBytes, RollupId};

use veil_builder_api::server::{RateLimit, RateLimits, ServerConfig};

use crate::sequencer_node::SlotTiming;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequencerConfig {
    /// Where the databases, the certificate and `genesis.json` live.
    pub data_dir: PathBuf,
    /// The committee's public key set (JSON). Its chain id is the network's.
    pub committee: PathBuf,
    /// The sequencer's ed25519 secret key file (`veil keygen` writes one).
    pub key_file: PathBuf,
    /// A fixed start of slot 0 (ms since the Unix epoch); by default the first start + 500 ms.
    pub genesis_ms: Option<u64>,
    /// The QUIC transaction ingress.
    pub ingress: IngressSection,
    /// The QUIC keyper endpoint.
    pub keypers: KeypersSection,
    /// The Prometheus endpoint.
    pub metrics: MetricsSection,
    /// The HTTP API's limits.
    pub http: HttpSection,
    /// Slot timings.
    pub slots: SlotsSection,
    /// The auction's payment rule.
    pub auction: AuctionSection,
    /// Rollups registered at genesis.
    pub rollups: Vec<GenesisRollup>,
    /// Builders' collateral at genesis.
    pub builders: Vec<GenesisBuilder>,
    /// Users' fee accounts at genesis.
    pub fee_payers: Vec<GenesisFeePayer>,
    /// The settlement-layer bridge whose signed deposit notices are credited.
    pub bridge: BridgeSection,
}

/// `[bridge]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSection {
    /// The bridge's ed25519 public key (`0x` hex): deposit notices
    /// (`POST /v1/builders/deposits`) must name it and be signed by it. None (the default)
    /// refuses every notice with `UNKNOWN_BRIDGE_KEY`.
    pub key: Option<PublicKeyBytes>,
}

impl Default for SequencerConfig {
    fn default() -> SequencerConfig {
        SequencerConfig {
            data_dir: PathBuf::from("veil-data"),
            committee: PathBuf::from("committee.json"),
            key_file: PathBuf::from("sequencer.key"),
            genesis_ms: None,
            ingress: IngressSection::default(),
            keypers: KeypersSection::default(),
            metrics: MetricsSection::default(),
            http: HttpSection::default(),
            slots: SlotsSection::default(),
            auction: AuctionSection::default(),
            rollups: Vec::new(),
            builders: Vec::new(),
            fee_payers: Vec::new(),
            bridge: BridgeSection::default(),
        }
    }
}

/// `[ingress]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressSection {
    /// UDP address users submit to.
    pub listen: SocketAddr,
    /// The least `max_fee` admitted.
    pub min_fee: Amount,
}

impl Default for IngressSection {
    fn default() -> IngressSection {
        IngressSection { listen: SocketAddr::from(([127, 0, 0, 1], 4433)), min_fee: Amount(0) }
    }
}

/// `[keypers]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeypersSection {
    /// UDP address keypers dial.
    pub listen: SocketAddr,
}

impl Default for KeypersSection {
    fn default() -> KeypersSection {
        KeypersSection { listen: SocketAddr::from(([127, 0, 0, 1], 4434)) }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// TCP address of the HTTP endpoint: the HTTP API (`/v1/...`, `/openapi.json`), `/metrics`,
    /// `/health` and `/ready`; `None` turns it off.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> MetricsSection {
        MetricsSection { listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))) }
    }
}

/// `[http]`: the HTTP API's limits (served on `[metrics] listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Requests per second per client address (IPv6: per /64); 0 turns the limit off.
    pub rate_per_address: u32,
    /// The largest burst per client address.
    pub burst_per_address: u32,
    /// Bids per second per builder key (bids with a valid signature only); 0 turns it off.
    pub rate_per_key: u32,
    /// The largest burst per builder key.
    pub burst_per_key: u32,
    /// The largest request body, bytes.
    pub body_limit: usize,
    /// Bids per batch request at most.
    pub max_batch: usize,
    /// Time before a request is answered `DEADLINE_EXCEEDED`, ms.
    pub request_timeout_ms: u64,
    /// Mempool streams (`GET /v1/mempool/stream`) open at once at most.
    pub max_streams: usize,
}

impl Default for HttpSection {
    fn default() -> HttpSection {
        let d = ServerConfig::default();
        let limit = |l: Option<RateLimit>| l.map_or((0, 0), |l| (l.per_second, l.burst));
        let (rate_per_address, burst_per_address) = limit(d.rate_limits.per_address);
        let (rate_per_key, burst_per_key) = limit(d.rate_limits.per_key);
        HttpSection {
            rate_per_address,
            burst_per_address,
            rate_per_key,
            burst_per_key,
            body_limit: d.body_limit,
            max_batch: d.max_batch,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            max_streams: d.max_streams,
        }
    }
}

impl HttpSection {
    /// The server's configuration.
    #[must_use]
    pub fn server_config(&self) -> ServerConfig {
        let limit = |per_second: u32, burst: u32| {
            (per_second > 0).then_some(RateLimit { per_second, burst: burst.max(per_second) })
        };
        ServerConfig {
            body_limit: self.body_limit,
            max_batch: self.max_batch,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms.max(1)),
            max_streams: self.max_streams,
            top_bid_visible: false,
            rate_limits: RateLimits {
                per_address: limit(self.rate_per_address, self.burst_per_address),
                per_key: limit(self.rate_per_key, self.burst_per_key),
            },
        }
    }
}

/// `[slots]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlotsSection {
    /// Slot length, ms (at least 100).
    pub slot_ms: u64,
    /// Bidding window from each slot's start, ms (at most the slot length).
    pub bid_window_ms: u64,
    /// Time after the close within which `t + 1` good share batches must arrive, ms.
    pub release_timeout_ms: u64,
}

impl Default for SlotsSection {
    fn default() -> SlotsSection {
        SlotsSection {
            slot_ms: veil_sequencer::slot::DEFAULT_SLOT_MS,
            bid_window_ms: veil_sequencer::slot::DEFAULT_BID_WINDOW_MS,
            release_timeout_ms: veil_sequencer::slot::DEFAULT_RELEASE_TIMEOUT_MS,
        }
    }
}

impl SlotsSection {
    /// The timings, checked.
    ///
    /// # Errors
    /// A slot under 100 ms or a bidding window longer than the slot.
    pub fn timing(&self) -> anyhow::Result<SlotTiming> {
        anyhow::ensure!(self.slot_ms >= 100, "slots.slot_ms must be at least 100");
        anyhow::ensure!(
            self.bid_window_ms <= self.slot_ms,
            "slots.bid_window_ms must not exceed slots.slot_ms"
        );
        Ok(SlotTiming {
            slot_ms: self.slot_ms,
            bid_window_ms: self.bid_window_ms,
            release_timeout_ms: self.release_timeout_ms,
        })
    }
}

/// `[auction]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuctionSection {
    /// `first_price` or `vcg`.
    pub payment_rule: PaymentRule,
    /// Show an open slot's current top bid (`GET /v1/builder/top_bid`); bids are sealed by
    /// default.
    pub top_bid_visible: bool,
}

/// One `[[rollups]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisRollup {
    /// The rollup id.
    pub id: u32,
    /// The least its block sells for.
    pub reserve: Amount,
    /// Gas per block.
    pub gas_limit: u64,
    /// The admin key: later changes are signed by it.
    pub admin: PublicKeyBytes,
    /// Where payouts go; by default the admin key.
    pub payout_account: Option<PublicKeyBytes>,
    /// The treasury bucket, basis points.
    pub treasury_bps: u16,
    /// The user-rebates bucket, basis points.
    pub user_rebates_bps: u16,
    /// The protocol-fee bucket, basis points (the three sum to 10,000).
    pub protocol_fee_bps: u16,
}

/// One `[[builders]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBuilder {
    /// The builder's key.
    pub key: PublicKeyBytes,
    /// Its collateral.
    pub deposit: Amount,
}

/// One `[[fee_payers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFeePayer {
    /// The fee payer's ed25519 key (it signs its transactions).
    pub key: PublicKeyBytes,
    /// Its fee account's balance.
    pub deposit: Amount,
}

impl SequencerConfig {
    /// Reads `path`.
    ///
    /// # Errors
    /// An unreadable file, bad TOML, an unknown key or a wrongly typed value.
    pub fn load(path: &Path) -> anyhow::Result<SequencerConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// Resolves a relative path against the configuration file's directory.
    #[must_use]
    pub fn resolve(base: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        }
    }

    /// The auction at genesis: the rollups registered, the builders' collateral and the
    /// users' fee accounts deposited.
    ///
    /// # Errors
    /// An invalid rollup (policy not summing to 10,000, zero gas, a bad key) or deposit.
    pub fn genesis_auction(&self, chain_id: ChainId) -> anyhow::Result<Auction> {
        let mut auction = Auction::new(AuctionConfig {
            chain_id,
            payment_rule: self.auction.payment_rule,
            ..AuctionConfig::default()
        });
        for r in &self.rollups {
            let policy = RevenuePolicy::standard(
                r.treasury_bps,
                r.user_rebates_bps,
                r.protocol_fee_bps,
                r.payout_account.unwrap_or(r.admin),
            )
            .with_context(|| format!("rollup {}", r.id))?;
            let config =
                RollupConfig { reserve: r.reserve, gas_limit: r.gas_limit, policy, active: true };
            auction
                .register_genesis_rollup(RollupId(r.id), r.admin, config)
                .with_context(|| format!("rollup {}", r.id))?;
        }
        for b in &self.builders {
            auction.deposit(b.key, b.deposit).with_context(|| format!("builder {}", b.key))?;
        }
        for p in &self.fee_payers {
            auction
                .deposit_fee(p.key, p.deposit)
                .with_context(|| format!("fee payer {}", p.key))?;
        }
        if let Some(key) = self.bridge.key {
            veil_primitives::signed::verifying_key(&key).context("bridge.key")?;
        }
        auction.set_bridge_key(self.bridge.key);
        Ok(auction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example file at the repository root parses, and every key in it is a real one.
    #[test]
    fn the_example_configuration_parses() {
        let text = include_str!("../../veil.example.toml");
        let config: SequencerConfig = toml::from_str(text).expect("the example parses");
        assert_eq!(config.slots, SlotsSection::default(), "the example shows the defaults");
        assert_eq!(config.ingress, IngressSection::default());
        assert_eq!(config.keypers, KeypersSection::default());
        assert_eq!(config.metrics, MetricsSection::default());
        assert_eq!(config.http, HttpSection::default());
        assert_eq!(config.http.server_config().rate_limits, RateLimits::default());
        assert!(!config.rollups.is_empty());
        config.genesis_auction(ChainId(1)).expect("the example's genesis is valid");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<SequencerConfig>("slot_ms = 100\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = toml::from_str::<SequencerConfig>("[slots]\nslot_length = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let config: SequencerConfig = toml::from_str("").expect("empty is valid");
        assert_eq!(config, SequencerConfig::default());
    }
}
