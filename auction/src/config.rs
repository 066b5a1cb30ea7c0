//! The auction's typed configuration.

use serde::{Deserialize, Serialize};
use veil_primitives::ChainId;

/// Default for [`AuctionConfig::withdrawal_delay_slots`].
pub const DEFAULT_WITHDRAWAL_DELAY_SLOTS: u64 = 64;
/// Default for [`AuctionConfig::max_bids_per_builder_per_slot`].
pub const DEFAULT_MAX_BIDS_PER_BUILDER_PER_SLOT: u32 = 64;
/// Default for [`AuctionConfig::max_rollups_per_bid`].
pub const DEFAULT_MAX_ROLLUPS_PER_BID: usize = 16;
/// Default for [`AuctionConfig::max_ciphertexts_per_bid`].
pub const DEFAULT_MAX_CIPHERTEXTS_PER_BID: usize = 8_192;
/// Default for [`AuctionConfig::max_plaintext_bytes_per_bid`].
pub const DEFAULT_MAX_PLAINTEXT_BYTES_PER_BID: usize = 1 << 20;
/// Default for [`AuctionConfig::search_node_budget`].
pub const DEFAULT_SEARCH_NODE_BUDGET: u64 = 2_000_000;
/// Default for [`AuctionConfig::signature_batch_size`].
pub const DEFAULT_SIGNATURE_BATCH_SIZE: usize = 64;

/// How winners pay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRule {
    /// Each winner pays its bids. Winners maximise the total of winning amounts.
    #[default]
    FirstPrice,
    /// Vickrey–Clarke–Groves with reserves as the rollups' own bids: winners maximise the
    /// surplus over reserves, and each winning builder pays the harm it does to the others.
    Vcg,
}

impl PaymentRule {
    /// The rule's tag in canonical encodings.
    #[must_use]
    pub fn tag(self) -> u8 {
        match self {
            PaymentRule::FirstPrice => 0,
            PaymentRule::Vcg => 1,
        }
    }
}

/// Configuration of one auction instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionConfig {
    /// The Veil network; every signed message must name it.
    pub chain_id: ChainId,
    /// The payment rule applied at close.
    pub payment_rule: PaymentRule,
    /// Slots between a withdrawal request and the release of the funds.
    pub withdrawal_delay_slots: u64,
    /// Live bids one builder may hold for one slot (replacements do not count).
    pub max_bids_per_builder_per_slot: u32,
    /// Rollups one bid may name.
    pub max_rollups_per_bid: usize,
    /// Ciphertext ids one bid may name, over all its rollups.
    pub max_ciphertexts_per_bid: usize,
    /// Bytes of builder-owned plaintext transactions one bid may carry.
    pub max_plaintext_bytes_per_bid: usize,
    /// Node budget of the bounded search used beyond 16 rollups. When it runs out, the best
    /// allocation found is used and the outcome says it is not proven optimal.
    pub search_node_budget: u64,
    /// Signatures per batch verification.
    pub signature_batch_size: usize,
}

impl Default for AuctionConfig {
    fn default() -> Self {
        AuctionConfig {
            chain_id: ChainId(0),
            payment_rule: PaymentRule::FirstPrice,
            withdrawal_delay_slots: DEFAULT_WITHDRAWAL_DELAY_SLOTS,
            max_bids_per_builder_per_slot: DEFAULT_MAX_BIDS_PER_BUILDER_PER_SLOT,
            max_rollups_per_bid: DEFAULT_MAX_ROLLUPS_PER_BID,
            max_ciphertexts_per_bid: DEFAULT_MAX_CIPHERTEXTS_PER_BID,
            max_plaintext_bytes_per_bid: DEFAULT_MAX_PLAINTEXT_BYTES_PER_BID,
            search_node_budget: DEFAULT_SEARCH_NODE_BUDGET,
            signature_batch_size: DEFAULT_SIGNATURE_BATCH_SIZE,
        }
    }
}
