//! The outcome record of a closed slot and the ledger entries it produces.
//!
//! An [`Outcome`] holds everything needed to recompute and audit the slot: the rollup terms in
//! force, a digest of every bid considered, the winners with their full bids, the payments,
//! the counterfactual welfare values the payment rule used, each rollup's marginal
//! contribution and share, the per-bucket payouts, the fallback blocks and the ledger entries.
//! [`Outcome::hash`] is sha3-256 over a canonical encoding: the same inputs give the same bytes.

use serde::{Deserialize, Serialize};
use veil_primitives::{hexbytes, Amount, ChainId, PublicKeyBytes, RollupId, Slot, TxId};

use crate::bid::{BidId, SignedBid};
use crate::config::PaymentRule;
use crate::registry::RollupConfig;
use veil_primitives::encoding::Encoder;
use veil_primitives::signed::SignedMessage;

/// Domain tag of outcome hashes.
pub const OUTCOME_DOMAIN: &[u8] = b"veil/outcome/v1";

/// One movement of money, as the node persists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerEntry {
    /// Collateral credited to a builder.
    Deposit {
        /// The builder.
        builder: PublicKeyBytes,
        /// The amount.
        amount: Amount,
    },
    /// A builder asked to withdraw; the amount is reserved until `release`.
    WithdrawalRequested {
        /// The builder.
        builder: PublicKeyBytes,
        /// The amount.
        amount: Amount,
        /// The slot at which it is released.
        release: Slot,
    },
    /// Collateral paid out to a builder after the delay.
    Withdrawal {
        /// The builder.
        builder: PublicKeyBytes,
        /// The amount.
        amount: Amount,
    },
    /// A winning payment debited from a builder's collateral.
    Debit {
        /// The slot won.
        slot: Slot,
        /// The builder.
        builder: PublicKeyBytes,
        /// The payment.
        amount: Amount,
    },
    /// A deposit credited to a user's fee account (a bridge notice of kind `fee_payer`, or
    /// genesis): transaction fees are charged from it at settlement.
    FeeDeposit {
        /// The fee payer.
        payer: PublicKeyBytes,
        /// The amount.
        amount: Amount,
    },
    /// A credit to one bucket of one rollup's revenue policy.
    Payout {
        /// The slot sold.
        slot: Slot,
        /// The rollup.
        rollup: RollupId,
        /// The bucket's name.
        bucket: String,
        /// The bucket's payout account.
        account: PublicKeyBytes,
        /// The amount.
        amount: Amount,
    },
}

impl LedgerEntry {
    fn encode(&self, e: &mut Encoder) {
        match self {
            LedgerEntry::Deposit { builder, amount } => {
                e.u8(0);
                e.fixed(&builder.0);
                e.amount(*amount);
            }
            LedgerEntry::WithdrawalRequested { builder, amount, release } => {
                e.u8(1);
                e.fixed(&builder.0);
                e.amount(*amount);
                e.u64(release.0);
            }
            LedgerEntry::Withdrawal { builder, amount } => {
                e.u8(2);
                e.fixed(&builder.0);
                e.amount(*amount);
            }
            LedgerEntry::Debit { slot, builder, amount } => {
                e.u8(3);
                e.u64(slot.0);
                e.fixed(&builder.0);
                e.amount(*amount);
            }
            LedgerEntry::Payout { slot, rollup, bucket, account, amount } => {
                e.u8(4);
                e.u64(slot.0);
                e.u32(rollup.0);
                e.bytes(bucket.as_bytes());
                e.fixed(&account.0);
                e.amount(*amount);
            }
            LedgerEntry::FeeDeposit { payer, amount } => {
                e.u8(5);
                e.fixed(&payer.0);
                e.amount(*amount);
            }
        }
    }
}

/// A rollup's terms as they stood for the slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupTermsRecord {
    /// The rollup.
    pub rollup: RollupId,
    /// Its terms.
    pub config: RollupConfig,
}

/// One rollup's clipped marginal contribution to a winner's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The rollup.
    pub rollup: RollupId,
    /// `W(U \ {r})`: the winner's best value over its won rollups without this one.
    pub value_without: Amount,
    /// `max(0, W(U) - W(U \ {r}))`.
    pub contribution: Amount,
}

/// A winning builder (all its winning bids, merged as one bidder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Winner {
    /// The builder.
    pub builder: PublicKeyBytes,
    /// Its winning bids, sorted by id, with their ordered ciphertext ids.
    pub bids: Vec<WinningBid>,
    /// The sum of its winning amounts.
    pub value: Amount,
    /// What it pays.
    pub payment: Amount,
    /// VCG only: the best welfare (surplus over reserves) without any of its bids.
    pub welfare_without: Option<Amount>,
    /// `W(U)`: the best surplus over reserves of its own bids within the rollups it won.
    pub own_value: Amount,
    /// Per won rollup, sorted by id: the clipped marginal contribution used by the split.
    pub contributions: Vec<Contribution>,
}

/// A winning bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinningBid {
    /// Its id.
    pub id: BidId,
    /// The signed bid.
    pub signed: SignedBid,
}

/// One bucket's payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketPayout {
    /// The bucket's name.
    pub bucket: String,
    /// Its account.
    pub account: PublicKeyBytes,
    /// The amount.
    pub amount: Amount,
}

/// What one sold rollup receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupPayout {
    /// The rollup.
    pub rollup: RollupId,
    /// The builder whose payment it comes from.
    pub builder: PublicKeyBytes,
    /// Its reserve (paid first).
    pub reserve: Amount,
    /// Reserve plus its part of the surplus.
    pub share: Amount,
    /// The share by bucket, in bucket name order; sums to `share`.
    pub buckets: Vec<BucketPayout>,
}

/// The block of an unsold rollup: its pending ciphertexts in fee order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackBlock {
    /// The rollup.
    pub rollup: RollupId,
    /// Ciphertext ids, highest max fee first (ties by id), within the gas limit.
    pub ciphertexts: Vec<TxId>,
    /// Sum of their gas limits.
    pub gas_used: u64,
}

/// Everything decided when a slot closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The slot.
    pub slot: Slot,
    /// The payment rule applied.
    pub rule: PaymentRule,
    /// Whether every optimisation in this outcome is proven optimal.
    pub exact: bool,
    /// Bids considered (live at the deadline).
    pub bids_considered: u32,
    /// sha3-256 over the sorted ids of the bids considered.
    #[serde(with = "hexbytes::serde_fixed")]
    pub bids_digest: [u8; 32],
    /// The terms of every active rollup for the slot, sorted by id.
    pub terms: Vec<RollupTermsRecord>,
    /// The maximised objective: total winning amounts (first-price) or total surplus over
    /// reserves (VCG).
    pub welfare: Amount,
    /// Bids left out because their builder's winnings would exceed its collateral.
    pub excluded_for_collateral: Vec<BidId>,
    /// The winning builders, sorted by key.
    pub winners: Vec<Winner>,
    /// Sold rollups' payouts, sorted by rollup id.
    pub payouts: Vec<RollupPayout>,
    /// Unsold active rollups' blocks, sorted by rollup id.
    pub fallback: Vec<FallbackBlock>,
    /// The debits and payouts settlement will record.
    pub ledger: Vec<LedgerEntry>,
}

impl Outcome {
    /// The canonical encoding (domain `veil/outcome/v1`, chain id, then every field in order).
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_domain(OUTCOME_DOMAIN, self.chain_id);
        e.u64(self.slot.0);
        e.u8(self.rule.tag());
        e.bool(self.exact);
        e.u32(self.bids_considered);
        e.fixed(&self.bids_digest);
        e.len(self.terms.len());
        for t in &self.terms {
            e.u32(t.rollup.0);
            e.amount(t.config.reserve);
            e.u64(t.config.gas_limit);
            t.config.policy.encode(&mut e);
            e.bool(t.config.active);
        }
        e.amount(self.welfare);
        e.len(self.excluded_for_collateral.len());
        for id in &self.excluded_for_collateral {
            e.fixed(&id.0);
        }
        e.len(self.winners.len());
        for w in &self.winners {
            e.fixed(&w.builder.0);
            e.len(w.bids.len());
            for b in &w.bids {
                e.fixed(&b.id.0);
                b.signed.message.encode_body(&mut e);
                e.fixed(&b.signed.signature.0);
            }
            e.amount(w.value);
            e.amount(w.payment);
            match w.welfare_without {
                Some(v) => {
                    e.u8(1);
                    e.amount(v);
                }
                None => e.u8(0),
            }
            e.amount(w.own_value);
            e.len(w.contributions.len());
            for c in &w.contributions {
                e.u32(c.rollup.0);
                e.amount(c.value_without);
                e.amount(c.contribution);
            }
        }
        e.len(self.payouts.len());
        for p in &self.payouts {
            e.u32(p.rollup.0);
            e.fixed(&p.builder.0);
            e.amount(p.reserve);
            e.amount(p.share);
            e.len(p.buckets.len());
            for b in &p.buckets {
                e.bytes(b.bucket.as_bytes());
                e.fixed(&b.account.0);
                e.amount(b.amount);
            }
        }
        e.len(self.fallback.len());
        for f in &self.fallback {
            e.u32(f.rollup.0);
            e.len(f.ciphertexts.len());
            for id in &f.ciphertexts {
                e.fixed(&id.0);
            }
            e.u64(f.gas_used);
        }
        e.len(self.ledger.len());
        for l in &self.ledger {
            l.encode(&mut e);
        }
        e.into_bytes()
    }

    /// sha3-256 of [`Outcome::canonical_bytes`].
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        veil_primitives::encoding::sha3_256(&self.canonical_bytes())
    }

    /// Total payments of the winners.
    #[must_use]
    pub fn total_payments(&self) -> Amount {
        Amount(self.winners.iter().fold(0u128, |a, w| a.saturating_add(w.payment.0)))
    }

    /// Total credited to rollup buckets.
    #[must_use]
    pub fn total_payouts(&self) -> Amount {
        Amount(
            self.payouts
                .iter()
                .flat_map(|p| &p.buckets)
                .fold(0u128, |a, b| a.saturating_add(b.amount.0)),
        )
    }

    /// The winning bid that covers `rollup`, if it was sold.
    #[must_use]
    pub fn winning_bid_for(&self, rollup: RollupId) -> Option<(&Winner, &WinningBid)> {
        self.winners.iter().find_map(|w| {
            w.bids.iter().find(|b| b.signed.message.rollups().any(|r| r == rollup)).map(|b| (w, b))
        })
    }
}
