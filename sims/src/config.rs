//! Scenario files: the typed parameters of one simulated market, and the variants a run
//! compares. Every field has a default (the `DEFAULT_*`-style values in [`Scenario::default`]),
//! so a scenario file only names what it changes.

use serde::{Deserialize, Serialize};
use veil_auction::PaymentRule;

/// What builders can read of a pending transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MempoolMode {
    /// A transparent mempool: builders read every pending swap.
    Plaintext,
    /// Veil's threshold-encrypted mempool: builders see only the public [`veil_primitives::TxMeta`]
    /// until the block is committed.
    Encrypted,
}

impl MempoolMode {
    /// Its name in file names and CSV cells.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MempoolMode::Plaintext => "plaintext",
            MempoolMode::Encrypted => "encrypted",
        }
    }
}

/// The payment rule's name in file names and CSV cells.
#[must_use]
pub fn rule_name(rule: PaymentRule) -> &'static str {
    match rule {
        PaymentRule::FirstPrice => "first_price",
        PaymentRule::Vcg => "vcg",
    }
}

/// A builder's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Includes pending transactions by fee; its value is the fees.
    Honest,
    /// Sandwiches readable swaps (needs a plaintext mempool), otherwise behaves honestly.
    Sandwicher,
    /// Arbitrages each rollup's pool to the reference price after the block's swaps.
    BackRunner,
    /// Arbitrages every rollup atomically in one bid for all of them (and single-rollup bids
    /// with the hedge of a lone leg).
    CrossArbitrageur,
}

/// One builder in the market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuilderSpec {
    /// Its name (CSV cells and plots).
    pub name: String,
    /// Its strategy.
    pub strategy: Strategy,
}

/// The shill bidder: a sock-puppet key of rollup `rollup` that places single-rollup bids on
/// it, as high as it can without winning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShillSpec {
    /// The rollup (index) it works for.
    pub rollup: u32,
    /// How far into the gap between the best bundle and the best single bids it bids (0..1).
    pub aggression: f64,
}

/// A builder–rollup pair that colludes: the builder adds bids that tilt the split towards
/// `rollup` (the known limit in veil-auction's docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollusionSpec {
    /// The colluding builder's name (one of the builders).
    pub builder: String,
    /// The rollup (index) it favours.
    pub rollup: u32,
}

/// The parameters of one market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name, used in output file names.
    pub name: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// Slots simulated.
    pub slots: u64,
    /// Slot length in milliseconds (the virtual clock).
    pub slot_ms: u64,
    /// Rollups, each with one pool.
    pub rollups: u32,
    /// Base reserve of each pool at the start.
    pub pool_depth_base: f64,
    /// Reference price at the start (quote per base).
    pub initial_price: f64,
    /// Pool fee as a fraction.
    pub pool_fee: f64,
    /// Standard deviation of the reference log-price per slot.
    pub price_volatility: f64,
    /// Mean user swaps per rollup per slot (Poisson).
    pub swaps_per_rollup: f64,
    /// Median swap notional in quote units (log-normal).
    pub swap_median_quote: f64,
    /// Log-normal sigma of swap notional.
    pub swap_sigma: f64,
    /// Slippage tolerance of users, drawn uniformly in `[min, max]`.
    pub slippage_min: f64,
    /// See `slippage_min`.
    pub slippage_max: f64,
    /// Priority fee per swap, uniform in `[0, fee_max]` quote units.
    pub fee_max: f64,
    /// Probability that a user's trade is an atomic bundle across two rollups.
    pub bundle_probability: f64,
    /// Gas of one swap.
    pub swap_gas: u64,
    /// Gas limit per rollup per slot.
    pub gas_limit: u64,
    /// Reserve price of every rollup without an entry in `rollup_reserves` (quote units).
    pub reserve: f64,
    /// Reserve price per rollup, by index (quote units); shorter than `rollups` is allowed.
    pub rollup_reserves: Vec<f64>,
    /// Revenue policy per rollup, by index: basis points of treasury, user rebates and
    /// protocol fee (summing to 10,000). Rollups without an entry use 8,000 / 1,500 / 500.
    pub rollup_policies: Vec<[u16; 3]>,
    /// Cost of hedging a lone arbitrage leg, as a fraction of its notional.
    pub hedge_cost: f64,
    /// First-price bids are this fraction of the builder's estimated value.
    pub first_price_shade: f64,
    /// Builders.
    pub builders: Vec<BuilderSpec>,
}

impl Scenario {
    /// The reserve of rollup `r` (quote units).
    #[must_use]
    pub fn reserve_of(&self, r: u32) -> f64 {
        self.rollup_reserves.get(r as usize).copied().unwrap_or(self.reserve)
    }

    /// The revenue policy of rollup `r` as treasury / user rebates / protocol fee bps.
    #[must_use]
    pub fn policy_of(&self, r: u32) -> [u16; 3] {
        self.rollup_policies.get(r as usize).copied().unwrap_or([8_000, 1_500, 500])
    }
}

impl Default for Scenario {
    fn default() -> Self {
        let b = |name: &str, strategy| BuilderSpec { name: name.into(), strategy };
        Scenario {
            name: "default".into(),
            seed: 1,
            slots: 200,
            slot_ms: 2_000,
            rollups: 3,
            pool_depth_base: 1_000.0,
            initial_price: 3_000.0,
            pool_fee: 0.003,
            price_volatility: 0.001,
            swaps_per_rollup: 6.0,
            swap_median_quote: 3_000.0,
            swap_sigma: 1.0,
            slippage_min: 0.005,
            slippage_max: 0.02,
            fee_max: 1.0,
            bundle_probability: 0.1,
            swap_gas: 100_000,
            gas_limit: 4_000_000,
            reserve: 1.0,
            rollup_reserves: Vec::new(),
            rollup_policies: Vec::new(),
            hedge_cost: 0.001,
            first_price_shade: 0.9,
            builders: vec![
                b("honest-a", Strategy::Honest),
                b("honest-b", Strategy::Honest),
                b("sandwicher", Strategy::Sandwicher),
                b("backrunner", Strategy::BackRunner),
                b("cross-arb", Strategy::CrossArbitrageur),
            ],
        }
    }
}

/// The adversary settings a variant adds to the base market.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adversaries {
    /// A shill bidder, if any.
    pub shill: Option<ShillSpec>,
    /// A colluding builder–rollup pair, if any.
    pub collusion: Option<CollusionSpec>,
}

impl Adversaries {
    /// A short label: `none`, `shill`, `collusion` or `shill+collusion`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match (self.shill.is_some(), self.collusion.is_some()) {
            (false, false) => "none",
            (true, false) => "shill",
            (false, true) => "collusion",
            (true, true) => "shill+collusion",
        }
    }
}

/// One simulated run: the market, the mempool mode, the payment rule, the adversaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The market.
    pub scenario: Scenario,
    /// The mempool's visibility.
    pub mode: MempoolMode,
    /// The auction's payment rule.
    pub rule: PaymentRule,
    /// Shill bidder and collusion.
    pub adversaries: Adversaries,
}

impl RunSpec {
    /// A file-name-safe label unique within a run matrix.
    #[must_use]
    pub fn label(&self) -> String {
        format!(
            "{}-{}-{}-{}-s{}",
            self.scenario.name,
            self.mode.name(),
            rule_name(self.rule),
            self.adversaries.label().replace('+', "-"),
            self.scenario.seed
        )
    }
}

/// A scenario file for `veil-sims run`: a base market and the matrix of variants to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The base market.
    pub scenario: Scenario,
    /// Mempool modes to run.
    #[serde(default = "all_modes")]
    pub modes: Vec<MempoolMode>,
    /// Payment rules to run.
    #[serde(default = "all_rules")]
    pub rules: Vec<PaymentRule>,
    /// Adversary settings to run (the empty setting is always included).
    #[serde(default)]
    pub adversaries: Vec<Adversaries>,
}

fn all_modes() -> Vec<MempoolMode> {
    vec![MempoolMode::Plaintext, MempoolMode::Encrypted]
}

fn all_rules() -> Vec<PaymentRule> {
    vec![PaymentRule::FirstPrice, PaymentRule::Vcg]
}

impl ScenarioFile {
    /// Every run of the matrix, in a fixed order.
    #[must_use]
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut adversaries = vec![Adversaries::default()];
        adversaries
            .extend(self.adversaries.iter().filter(|a| **a != Adversaries::default()).cloned());
        let mut out = Vec::new();
        for mode in &self.modes {
            for rule in &self.rules {
                for adv in &adversaries {
                    out.push(RunSpec {
                        scenario: self.scenario.clone(),
                        mode: *mode,
                        rule: *rule,
                        adversaries: adv.clone(),
                    });
                }
            }
        }
        out
    }
}

/// A sweep file for `veil-sims sweep`: a scenario file, a list of seeds, and one parameter
/// varied over a list of values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The matrix run at every point.
    pub base: ScenarioFile,
    /// Seeds; every point runs once per seed.
    pub seeds: Vec<u64>,
    /// The parameter varied (a field name of [`Scenario`] holding a number).
    pub parameter: String,
    /// Its values.
    pub values: Vec<f64>,
}

impl SweepFile {
    /// Every run of the sweep, with the parameter value it was run at.
    ///
    /// # Errors
    /// If `parameter` is not a numeric field of [`Scenario`].
    pub fn runs(&self) -> anyhow::Result<Vec<(f64, RunSpec)>> {
        let mut out = Vec::new();
        for value in &self.values {
            for seed in &self.seeds {
                let mut file = self.base.clone();
                file.scenario.seed = *seed;
                file.scenario = set_parameter(&file.scenario, &self.parameter, *value)?;
                out.extend(file.runs().into_iter().map(|r| (*value, r)));
            }
        }
        Ok(out)
    }
}

/// `scenario` with the numeric field `name` set to `value` (through its TOML form, so every
/// numeric field can be swept without a list to keep in step).
fn set_parameter(scenario: &Scenario, name: &str, value: f64) -> anyhow::Result<Scenario> {
    let mut table = toml::Value::try_from(scenario)?;
    let t = table.as_table_mut().ok_or_else(|| anyhow::anyhow!("scenario is not a table"))?;
    let slot = t.get_mut(name).ok_or_else(|| anyhow::anyhow!("no scenario field {name:?}"))?;
    *slot = match slot {
        toml::Value::Integer(_) => toml::Value::Integer(value as i64),
        toml::Value::Float(_) => toml::Value::Float(value),
        _ => anyhow::bail!("scenario field {name:?} is not a number"),
    };
    Ok(table.try_into()?)
}
