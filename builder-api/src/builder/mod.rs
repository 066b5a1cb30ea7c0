//! The reference builder (`veil builder run`): follows the encrypted mempool, builds blocks
//! for one or more rollup sets within their gas limits, keeps atomic bundles whole, and bids
//! by a configurable strategy. The devnet's builders are instances of it talking HTTP.
//!
//! # Architecture
//!
//! A sans-IO core and a thin tokio shell, like the rest of Veil:
//!
//! | piece | what | I/O |
//! |---|---|---|
//! | [`PendingSet`] | the pending transactions' public metadata, bounded by count (lowest fee out first) and by expiry; ids that left (committed, published) remembered for a few slots so a late stream event cannot bring them back; a decided slot's transactions set aside until it is published or abandoned | none |
//! | [`build_blocks`] | one rollup set's blocks for a slot: fee order within each rollup's gas limit, bundles whole or not at all, expired and excluded ids left out | none |
//! | [`Planner`] | the strategy: which sets, bundles or not, the amount (a share of the value, or a learned [`Shading`] factor), never below the reserves nor above the value | none |
//! | [`ReferenceBuilder`] | the driver: follows `GET /v1/mempool/stream` (reopened at its cursor after a failure), reads each decided slot's outcome to set aside what it committed and count wins, and its fate (`GET /v1/data/blocks?slot=`) to drop or take back those transactions, bids once per slot at a set point of the bidding window | HTTP through [`BuilderClient`](crate::http::BuilderClient) |
//!
//! # Strategies ([`StrategyKind`])
//!
//! - `fee-order`: one rollup set, lone transactions by fee; bundles left out.
//! - `bundle-aware`: one rollup set; a bundle is a unit worth its summed fees, taken only if
//!   every part fits its rollup's remaining gas.
//! - `cross-rollup`: several rollup sets, each its own bid. The auction keys a builder's bids
//!   by (builder, slot, rollup set): a higher sequence number replaces the bid for the same
//!   set, different sets are separate bids (up to the per-builder cap,
//!   `max_bids_per_builder_per_slot`, 64 by default), and winner determination may award a
//!   builder several disjoint sets. Sequence numbers start from the clock so that a restarted
//!   builder still goes up.
//! - `shading`: one set, bundle-aware, bidding its value times a factor learned from the
//!   decided slots (first-price): a step down after a win, up to a step above the share of
//!   its value the winner paid after a loss; between a floor and the value.
//!
//! # Guarantees (property-tested)
//!
//! No block exceeds its rollup's gas limit; a bundle is never split (every part in its
//! rollup's block, or none); no expired or excluded id; a bid pays at least the sum of its
//! rollups' reserves and at most its value, or there is no bid; the same inputs give the same
//! bid.
//!
//! # In-flight transactions
//!
//! A transaction committed in slot `s` stays in the pool until its block is published, and
//! the auction refuses bids naming it (`UNKNOWN_CIPHERTEXT`). The node leaves such ids out of
//! its mempool pages and stream; the builder also removes every id named in a decided slot's
//! outcome (commitment blocks, winners' bids, fallback blocks) before it bids for the next
//! slot, and after an `UNKNOWN_CIPHERTEXT` or `EXPIRED_CIPHERTEXT` refusal it re-reads the
//! mempool pages, drops what the node no longer offers and bids once more.
//!
//! What a decided slot committed is in flight, not gone: the pending set keeps the ones it
//! held aside ([`PendingSet::commit`]) until the data API says the slot was published (then
//! they are dropped) or undecryptable (then the node has returned them to its pool, where its
//! stream will not offer them again, and the set takes them back, unless they expired).
//! A slot whose fate is still unknown after [`PendingConfig::gone_slots`] slots is forgotten.
//!
//! # Example
//!
//! ```
//! use std::collections::HashSet;
//! use veil_builder_api::api::MempoolTx;
//! use veil_builder_api::builder::{
//!     PendingConfig, PendingSet, Planner, RollupTerms, SlotTerms, StrategyConfig, StrategyKind,
//! };
//! use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot, TxId};
//!
//! let mut pending = PendingSet::new(PendingConfig::default());
//! for (i, fee) in [30u128, 50, 10].into_iter().enumerate() {
//!     pending.insert(&MempoolTx {
//!         seq: i as u64, id: TxId([i as u8; 32]), eon: Eon(1), rollup: RollupId(0),
//!         fee_payer: PublicKeyBytes([9; 32]), max_fee: Amount(fee), gas_limit: 21_000,
//!         expiry_slot: Slot(10), bundle: None, size: 600, ciphertext: None,
//!     }).unwrap();
//! }
//! let terms = SlotTerms {
//!     chain_id: ChainId(1),
//!     slot: Slot(5),
//!     rollups: [(RollupId(0), RollupTerms { reserve: Amount(20), gas_limit: 42_000, active: true })]
//!         .into_iter().collect(),
//! };
//! let strategy = StrategyConfig::new(StrategyKind::FeeOrder, vec!["0".parse().unwrap()], 70).unwrap();
//! let bids = Planner::new(strategy).plan(&pending, &terms, &HashSet::new());
//! // The two best fees fit the gas limit: 80 of value, 70% of it bid.
//! assert_eq!(bids[0].blocks.blocks[0].ciphertexts, vec![TxId([1; 32]), TxId([0; 32])]);
//! assert_eq!(bids[0].amount, Amount(56));
//! ```

mod build;
mod driver;
mod pending;
mod strategy;
#[cfg(test)]
mod tests;

pub use build::{build_blocks, BlockSet, BuildRules, RollupSet, RollupTerms, SlotTerms};
pub use driver::{BidLine, BidResult, BuilderStats, DriverConfig, ReferenceBuilder, SlotLine};
pub use pending::{
    Inserted, PendingConfig, PendingSet, PendingStats, PendingTx, DEFAULT_GONE_SLOTS,
    DEFAULT_MAX_GONE, DEFAULT_MAX_PENDING,
};
pub use strategy::{
    price, PlannedBid, Planner, Shading, ShadingConfig, SlotObservation, StrategyConfig,
    StrategyKind, BPS, DEFAULT_BID_PERCENT, DEFAULT_SHADING_MIN_BPS, DEFAULT_SHADING_STEP_BPS,
};
