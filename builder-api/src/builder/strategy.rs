//! Strategies: which rollup sets a builder bids for, what it puts in the blocks and how much
//! it bids, and the bid shading it learns from outcomes under first-price.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU16;
use std::str::FromStr;

use veil_auction::Bid;
use veil_primitives::{Amount, PublicKeyBytes, RollupId, TxId};

use super::build::{build_blocks, BlockSet, BuildRules, RollupSet, SlotTerms};
use super::pending::PendingSet;
use crate::error::BuilderError;

/// Basis points in one.
pub const BPS: u16 = 10_000;
/// Default for [`StrategyConfig::bid_percent`].
pub const DEFAULT_BID_PERCENT: u16 = 70;
/// Default for [`ShadingConfig::min_bps`].
pub const DEFAULT_SHADING_MIN_BPS: u16 = 1_000;
/// Default for [`ShadingConfig::step_bps`].
pub const DEFAULT_SHADING_STEP_BPS: u16 = 500;

/// The kinds of strategy of the reference builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// One rollup set; lone transactions by fee, every bundle left out; bids a fixed share
    /// of the fees.
    FeeOrder,
    /// One rollup set; bundles whole (by their summed fee) beside lone transactions; bids a
    /// fixed share of the fees.
    BundleAware,
    /// Several rollup sets, each its own bundle-aware bid (the auction keeps one bid per
    /// builder and rollup set, and may award a builder several disjoint sets).
    CrossRollup,
    /// One rollup set, bundle-aware; bids its value times a shading factor learned from the
    /// recent slots' winning payments (for first-price auctions).
    Shading,
}

impl StrategyKind {
    /// Every kind, in the order of their names.
    pub const ALL: [StrategyKind; 4] = [
        StrategyKind::FeeOrder,
        StrategyKind::BundleAware,
        StrategyKind::CrossRollup,
        StrategyKind::Shading,
    ];

    /// The kind's stable name (`fee-order`, `bundle-aware`, `cross-rollup`, `shading`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::FeeOrder => "fee-order",
            StrategyKind::BundleAware => "bundle-aware",
            StrategyKind::CrossRollup => "cross-rollup",
            StrategyKind::Shading => "shading",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StrategyKind {
    type Err = BuilderError;

    fn from_str(s: &str) -> Result<StrategyKind, BuilderError> {
        StrategyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| BuilderError::BadStrategy(s.to_string()))
    }
}

/// How a shading builder learns its factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadingConfig {
    /// The factor it starts from, in basis points of its value.
    pub initial_bps: u16,
    /// The lowest factor it goes to.
    pub min_bps: u16,
    /// How far one slot moves the factor: down after a win, to this much above the winning
    /// payment's share of its value after a loss.
    pub step_bps: u16,
}

impl Default for ShadingConfig {
    fn default() -> ShadingConfig {
        ShadingConfig {
            initial_bps: DEFAULT_BID_PERCENT * 100,
            min_bps: DEFAULT_SHADING_MIN_BPS,
            step_bps: DEFAULT_SHADING_STEP_BPS,
        }
    }
}

/// What a builder saw of one decided slot, for shading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotObservation {
    /// The value of the blocks it bid (the fees they hold).
    pub value: Amount,
    /// Whether it won every rollup it bid for.
    pub won: bool,
    /// What other builders paid for the rollups it bid for (the payments the commitment
    /// attributes to them), if another builder won any of them.
    pub competing_payment: Option<Amount>,
}

/// The shading factor under first-price: lowered by a step after each win (pay less while
/// still winning), raised after a loss to a step above the share of the value that the
/// winner paid (enough to have won), never above the value (10,000 bps) nor below
/// [`ShadingConfig::min_bps`]. Sans-IO and deterministic: the factor depends only on the
/// observations, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shading {
    config: ShadingConfig,
    factor_bps: u16,
}

impl Shading {
    /// A factor at `config.initial_bps` (clamped to `min_bps..=10_000`).
    #[must_use]
    pub fn new(config: ShadingConfig) -> Shading {
        let min = config.min_bps.min(BPS);
        Shading { config, factor_bps: config.initial_bps.clamp(min, BPS) }
    }

    /// The factor now, in basis points of the value.
    #[must_use]
    pub fn factor_bps(&self) -> u16 {
        self.factor_bps
    }

    /// Learns from one decided slot.
    pub fn observe(&mut self, seen: &SlotObservation) {
        let min = self.config.min_bps.min(BPS);
        if seen.won {
            self.factor_bps = self.factor_bps.saturating_sub(self.config.step_bps).max(min);
            return;
        }
        let (Some(paid), true) = (seen.competing_payment, seen.value.0 > 0) else { return };
        // The share of our value the winner paid, rounded up.
        let needed = paid.0.saturating_mul(u128::from(BPS)).div_ceil(seen.value.0);
        if needed <= u128::from(BPS) {
            let target = (needed as u16).saturating_add(self.config.step_bps).min(BPS);
            self.factor_bps = self.factor_bps.max(target);
        }
    }
}

/// A builder's strategy and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyConfig {
    /// The kind.
    pub kind: StrategyKind,
    /// The rollup sets: the first is the one set of the single-set kinds; `CrossRollup`
    /// bids for each.
    pub sets: Vec<RollupSet>,
    /// The share of its value (the fees of its blocks) it bids, in percent, 1 to 100; the
    /// shading kind starts from it.
    pub bid_percent: NonZeroU16,
    /// The shading kind's learning (its `initial_bps` is taken from `bid_percent`).
    pub shading: ShadingConfig,
    /// Ciphertext ids one bid names at most.
    pub max_ciphertexts_per_bid: usize,
}

impl StrategyConfig {
    /// A strategy of `kind` over `sets` bidding `bid_percent` of its value.
    ///
    /// # Errors
    /// [`BuilderError::BadRollupSet`] for no set, [`BuilderError::BadPercent`] for a share
    /// of 0 or above 100.
    pub fn new(
        kind: StrategyKind,
        sets: Vec<RollupSet>,
        bid_percent: u16,
    ) -> Result<StrategyConfig, BuilderError> {
        if sets.is_empty() {
            return Err(BuilderError::BadRollupSet("no rollup set".into()));
        }
        let percent = NonZeroU16::new(bid_percent)
            .filter(|p| p.get() <= 100)
            .ok_or(BuilderError::BadPercent(bid_percent))?;
        Ok(StrategyConfig {
            kind,
            sets,
            bid_percent: percent,
            shading: ShadingConfig { initial_bps: bid_percent * 100, ..ShadingConfig::default() },
            max_ciphertexts_per_bid: veil_auction::config::DEFAULT_MAX_CIPHERTEXTS_PER_BID,
        })
    }
}

/// One bid the planner proposes: its blocks and amount, not yet signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBid {
    /// The rollup set the strategy built it for (the bid names those of its rollups that got
    /// transactions).
    pub set: RollupSet,
    /// The blocks.
    pub blocks: BlockSet,
    /// The amount: at least the blocks' reserves, at most their value, never zero.
    pub amount: Amount,
}

impl PlannedBid {
    /// The unsigned bid for `builder` with `sequence`.
    #[must_use]
    pub fn to_bid(&self, terms: &SlotTerms, builder: PublicKeyBytes, sequence: u64) -> Bid {
        Bid {
            chain_id: terms.chain_id,
            slot: terms.slot,
            builder,
            sequence,
            amount: self.amount,
            blocks: self.blocks.blocks.clone(),
        }
    }

    /// The rollups the bid names.
    #[must_use]
    pub fn rollups(&self) -> Vec<RollupId> {
        self.blocks.rollups()
    }
}

/// The amount for `blocks` at `bps` of their value: at least their reserve (if the value
/// covers it), never above the value, never zero; `None` if the value does not cover the
/// reserve or is zero.
#[must_use]
pub fn price(blocks: &BlockSet, bps: u16) -> Option<Amount> {
    let value = blocks.value.0;
    if blocks.is_empty() || value == 0 || value < blocks.reserve.0 {
        return None;
    }
    // value ≤ 2^113·2^16 would not fit; values come from fees ≤ 2^113 each, and a u128 holds
    // value·10_000 unless value > 3.4e34: saturate, then cap by the value.
    let shaded = value.saturating_mul(u128::from(bps.min(BPS))) / u128::from(BPS);
    Some(Amount(shaded.max(blocks.reserve.0).max(1).min(value)))
}

/// The sans-IO bid planner: a strategy, and the shading it has learned.
#[derive(Debug, Clone)]
pub struct Planner {
    config: StrategyConfig,
    shading: Shading,
}

impl Planner {
    /// A planner for `config`.
    #[must_use]
    pub fn new(config: StrategyConfig) -> Planner {
        let shading = Shading::new(config.shading);
        Planner { config, shading }
    }

    /// The strategy.
    #[must_use]
    pub fn config(&self) -> &StrategyConfig {
        &self.config
    }

    /// The shading factor now (basis points; the shading kind only).
    #[must_use]
    pub fn shading_bps(&self) -> u16 {
        self.shading.factor_bps()
    }

    /// The bids for the slot of `terms`: one per rollup set the strategy bids for, left out
    /// where the blocks are empty or their value does not cover the reserves.
    #[must_use]
    pub fn plan(
        &self,
        pending: &PendingSet,
        terms: &SlotTerms,
        exclude: &HashSet<TxId>,
    ) -> Vec<PlannedBid> {
        let (sets, bundles, bps) = match self.config.kind {
            StrategyKind::FeeOrder => (&self.config.sets[..1], false, self.percent_bps()),
            StrategyKind::BundleAware => (&self.config.sets[..1], true, self.percent_bps()),
            StrategyKind::CrossRollup => (&self.config.sets[..], true, self.percent_bps()),
            StrategyKind::Shading => (&self.config.sets[..1], true, self.shading.factor_bps()),
        };
        let rules = BuildRules { bundles, max_ciphertexts: self.config.max_ciphertexts_per_bid };
        sets.iter()
            .filter_map(|set| {
                let blocks = build_blocks(pending, terms, set, exclude, rules);
                let amount = price(&blocks, bps)?;
                Some(PlannedBid { set: set.clone(), blocks, amount })
            })
            .collect()
    }

    /// Learns from a decided slot (the shading kind; the others ignore it).
    pub fn observe(&mut self, seen: &SlotObservation) {
        if self.config.kind == StrategyKind::Shading {
            self.shading.observe(seen);
        }
    }

    fn percent_bps(&self) -> u16 {
        self.config.bid_percent.get().min(100) * 100
    }
}
