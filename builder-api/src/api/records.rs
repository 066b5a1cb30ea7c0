//! Schema mirrors of the sequencer's records as the API serves them: the auction's outcome
//! record (`veil_auction::Outcome`), the slot commitment and its signed form
//! (`veil_sequencer::Commitment`, `SignedCommitment`), the published plaintext block
//! (`veil_sequencer::PublishedSlot`), a rollup's terms and a signed inclusion receipt.
//!
//! The cores that own these types know nothing of OpenAPI, and the client side of this crate
//! links no storage; so, as for the signed bid ([`super::SignedBidDoc`]), the document's
//! schemas come from mirrors that have the real types' JSON shape field by field. The API's
//! response types keep the real types and name a mirror as their schema. A test round-trips
//! real values with every variant through each mirror (mirrors refuse unknown fields), so a
//! mirror cannot drift from the JSON the node sends.
//!
//! Conventions, as everywhere in the API: byte strings are `0x` hex, amounts decimal strings,
//! slots, rollup ids, chain ids and eons numbers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::SignedBidDoc;

// ----- The slot commitment (`veil_sequencer::commitment`). -----

/// One rollup's committed block (`veil_sequencer::CommittedBlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommittedBlockDoc {
    /// The rollup.
    pub rollup: u32,
    /// The builder that won it (`0x` hex key), or `null` for the sequencer's fallback block
    /// (fee order, for an unsold rollup).
    #[schema(required = true)]
    pub winner: Option<String>,
    /// The part of the winning payment attributed to this rollup (decimal string); `"0"` for
    /// a fallback block.
    #[schema(example = "462")]
    pub payment: String,
    /// The ciphertext ids (`0x` hex), in the order they execute.
    pub ciphertexts: Vec<String>,
}

/// The sequencer's decision for one slot (`veil_sequencer::Commitment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitmentDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The slot.
    pub slot: u64,
    /// The eon whose committee key every committed ciphertext is encrypted to.
    pub eon: u64,
    /// One block per rollup with anything to commit, sorted by rollup id.
    pub blocks: Vec<CommittedBlockDoc>,
    /// sha3-256 of the outcome record's canonical bytes (`0x` hex).
    pub outcome_hash: String,
}

/// A signed commitment (`veil_sequencer::SignedCommitment`): the sequencer key's ed25519
/// signature over the commitment's signing bytes (domain `veil/commitment/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCommitmentDoc {
    /// The commitment.
    pub message: CommitmentDoc,
    /// The signature (`0x` hex, 64 bytes).
    pub signature: String,
}

// ----- Rollup terms (`veil_auction::registry`). -----

/// One named share of a rollup's revenue (`veil_auction::Bucket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketDoc {
    /// `[a-z0-9_]{1,32}`, unique within the policy.
    #[schema(example = "treasury")]
    pub name: String,
    /// Its share, in basis points (a policy's buckets sum to 10,000).
    pub bps: u16,
    /// The payout account (`0x` hex, 32 bytes).
    pub account: String,
}

/// A rollup's terms (`veil_auction::RollupConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupConfigDoc {
    /// The least a block of the rollup sells for (decimal string).
    #[schema(example = "20")]
    pub reserve: String,
    /// Gas one block may use.
    pub gas_limit: u64,
    /// The revenue policy (`veil_auction::RevenuePolicy`): its buckets, in name order; the
    /// standard three (`protocol_fee`, `treasury`, `user_rebates`) are always there.
    pub policy: Vec<BucketDoc>,
    /// Whether its slots are sold (an inactive rollup gets no bids and no block).
    pub active: bool,
}

/// Terms that take effect at a later slot boundary (`veil_auction::ScheduledTerms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledTermsDoc {
    /// The first slot they apply to.
    pub effective: u64,
    /// The terms.
    pub config: RollupConfigDoc,
}

// ----- The outcome record (`veil_auction::outcome`). -----

/// How winners pay (`veil_auction::PaymentRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRuleDoc {
    /// Each winner pays its bids.
    FirstPrice,
    /// Vickrey–Clarke–Groves with reserves as the rollups' own bids.
    Vcg,
}

/// A rollup's terms as they stood for the slot (`veil_auction::RollupTermsRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupTermsRecordDoc {
    /// The rollup.
    pub rollup: u32,
    /// Its terms.
    pub config: RollupConfigDoc,
}

/// One rollup's clipped marginal contribution to a winner's value
/// (`veil_auction::Contribution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContributionDoc {
    /// The rollup.
    pub rollup: u32,
    /// `W(U \ {r})`: the winner's best value over its won rollups without this one.
    pub value_without: String,
    /// `max(0, W(U) - W(U \ {r}))`.
    pub contribution: String,
}

/// A winning bid (`veil_auction::WinningBid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WinningBidDoc {
    /// Its id (`0x` hex).
    pub id: String,
    /// The signed bid.
    pub signed: SignedBidDoc,
}

/// A winning builder, all its winning bids merged as one bidder (`veil_auction::Winner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WinnerDoc {
    /// The builder (`0x` hex key).
    pub builder: String,
    /// Its winning bids, sorted by id.
    pub bids: Vec<WinningBidDoc>,
    /// The sum of its winning amounts.
    pub value: String,
    /// What it pays.
    pub payment: String,
    /// VCG only: the best welfare (surplus over reserves) without any of its bids; `null`
    /// under first price.
    #[schema(required = true)]
    pub welfare_without: Option<String>,
    /// `W(U)`: the best surplus over reserves of its own bids within the rollups it won.
    pub own_value: String,
    /// Per won rollup, sorted by id: the clipped marginal contribution the split used.
    pub contributions: Vec<ContributionDoc>,
}

/// One bucket's payout (`veil_auction::BucketPayout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketPayoutDoc {
    /// The bucket's name.
    pub bucket: String,
    /// Its account (`0x` hex).
    pub account: String,
    /// The amount (decimal string).
    pub amount: String,
}

/// What one sold rollup receives (`veil_auction::RollupPayout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupPayoutDoc {
    /// The rollup.
    pub rollup: u32,
    /// The builder whose payment it comes from.
    pub builder: String,
    /// Its reserve (paid first).
    pub reserve: String,
    /// Reserve plus its part of the surplus; the buckets sum to it.
    pub share: String,
    /// The share by bucket, in bucket name order.
    pub buckets: Vec<BucketPayoutDoc>,
}

/// The block of an unsold rollup: its pending ciphertexts in fee order
/// (`veil_auction::FallbackBlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackBlockDoc {
    /// The rollup.
    pub rollup: u32,
    /// Ciphertext ids (`0x` hex), highest max fee first (ties by id), within the gas limit.
    pub ciphertexts: Vec<String>,
    /// Sum of their gas limits.
    pub gas_used: u64,
}

/// One movement of money (`veil_auction::LedgerEntry`), tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LedgerEntryDoc {
    /// Collateral credited to a builder.
    Deposit {
        /// The builder.
        builder: String,
        /// The amount.
        amount: String,
    },
    /// A builder asked to withdraw; the amount is reserved until `release`.
    WithdrawalRequested {
        /// The builder.
        builder: String,
        /// The amount.
        amount: String,
        /// The slot at which it is released.
        release: u64,
    },
    /// Collateral paid out to a builder after the delay.
    Withdrawal {
        /// The builder.
        builder: String,
        /// The amount.
        amount: String,
    },
    /// A winning payment debited from a builder's collateral.
    Debit {
        /// The slot won.
        slot: u64,
        /// The builder.
        builder: String,
        /// The payment.
        amount: String,
    },
    /// A credit to one bucket of one rollup's revenue policy.
    Payout {
        /// The slot sold.
        slot: u64,
        /// The rollup.
        rollup: u32,
        /// The bucket's name.
        bucket: String,
        /// The bucket's payout account.
        account: String,
        /// The amount.
        amount: String,
    },
}

/// Everything decided when a slot closed (`veil_auction::Outcome`): enough to recompute the
/// winners, payments and payouts; `outcome_hash` is sha3-256 of its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The slot.
    pub slot: u64,
    /// The payment rule applied.
    pub rule: PaymentRuleDoc,
    /// Whether every optimisation in it is proven optimal.
    pub exact: bool,
    /// Bids considered (live at the deadline).
    pub bids_considered: u32,
    /// sha3-256 over the sorted ids of the bids considered (`0x` hex).
    pub bids_digest: String,
    /// The terms of every active rollup for the slot, sorted by id.
    pub terms: Vec<RollupTermsRecordDoc>,
    /// The maximised objective: total winning amounts (first price) or total surplus over
    /// reserves (VCG).
    pub welfare: String,
    /// Ids of bids left out because their builder's winnings would exceed its collateral.
    pub excluded_for_collateral: Vec<String>,
    /// The winning builders, sorted by key.
    pub winners: Vec<WinnerDoc>,
    /// Sold rollups' payouts, sorted by rollup id.
    pub payouts: Vec<RollupPayoutDoc>,
    /// Unsold active rollups' blocks, sorted by rollup id.
    pub fallback: Vec<FallbackBlockDoc>,
    /// The debits and payouts settlement records.
    pub ledger: Vec<LedgerEntryDoc>,
}

// ----- The published block (`veil_sequencer::slot`). -----

/// One ciphertext's fate in a published block (`veil_sequencer::TxResult`): `"Failed"`, or
/// an object with one key, `Included` (the payload, `0x` hex) or `DroppedWithBundle` (the
/// bundle id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TxResultDoc {
    /// It decrypted: the payload (`0x` hex).
    Included(String),
    /// It did not decrypt: the sender's fault, its fee is charged, it keeps its place.
    Failed,
    /// Part of an atomic bundle of which a part failed (the bundle id, `0x` hex): dropped in
    /// every rollup.
    DroppedWithBundle(String),
}

/// One published transaction (`veil_sequencer::PublishedTx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedTxDoc {
    /// The ciphertext id (`0x` hex).
    pub id: String,
    /// What became of it.
    pub result: TxResultDoc,
}

/// One rollup's published block, in committed order (`veil_sequencer::PublishedBlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedBlockDoc {
    /// The rollup.
    pub rollup: u32,
    /// Every committed ciphertext, in order.
    pub txs: Vec<PublishedTxDoc>,
}

/// Why a keyper was blamed (`veil_crypto::BlameReason`), tagged by `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlameReasonDoc {
    /// Its shares failed the per-keyper pairing check.
    WrongShares,
    /// A share had a component outside the prime-order subgroup.
    ShareOutsideSubgroup {
        /// Position in the block of the first such share.
        position: u64,
    },
    /// Its batch for the slot named another block (another digest of the ordered ids, or
    /// another share count).
    MismatchedBatch,
}

/// A keyper blamed while decrypting (`veil_crypto::Blame`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlameDoc {
    /// The keyper's index in the committee, from 1.
    #[schema(minimum = 1)]
    pub keyper: u16,
    /// What was wrong.
    pub reason: BlameReasonDoc,
}

/// Who earns a block's transaction fees (`veil_sequencer::FeeRecipient`): `{"kind":
/// "builder", "id": "0x…"}` or `{"kind": "rollup", "id": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum FeeRecipientDoc {
    /// The builder whose winning bid built the block (`0x` hex key).
    Builder(String),
    /// The rollup itself, for the fallback block of an unsold rollup.
    Rollup(u32),
}

/// A transaction fee moved at settlement (`veil_sequencer::FeeEntry`), tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeeEntryDoc {
    /// A transaction's declared fee charged to its fee payer.
    Charge {
        /// The transaction.
        tx: String,
        /// Its fee payer.
        payer: String,
        /// Its `max_fee`.
        amount: String,
    },
    /// One rollup's block fees credited to who built the block.
    Credit {
        /// The rollup.
        rollup: u32,
        /// The builder, or the rollup for a fallback block.
        to: FeeRecipientDoc,
        /// The sum of the block's charges.
        amount: String,
    },
}

/// A decrypted slot, as published (`veil_sequencer::PublishedSlot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedSlotDoc {
    /// The slot.
    pub slot: u64,
    /// One block per committed rollup, sorted by rollup.
    pub blocks: Vec<PublishedBlockDoc>,
    /// Keypers blamed while decrypting.
    pub blamed: Vec<BlameDoc>,
    /// The transaction fees the slot moves (settled with it): per transaction a charge, per
    /// block a credit; the credits sum to the charges.
    pub fees: Vec<FeeEntryDoc>,
}

// ----- The inclusion receipt (`veil_primitives::receipt`). -----

/// The sequencer's statement that a transaction is committed in a slot
/// (`veil_primitives::Receipt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The slot whose commitment includes the transaction.
    pub slot: u64,
    /// The eon the commitment's ciphertexts are encrypted to.
    pub eon: u64,
    /// The transaction (`0x` hex).
    pub tx: String,
    /// The rollup whose block includes it.
    pub rollup: u32,
    /// Its index in that rollup's ordered ciphertext list.
    pub position: u32,
    /// The commitment it was read from: sha3-256 of its signing bytes (`0x` hex).
    pub commitment: String,
}

/// A receipt with the sequencer key's ed25519 signature (`veil_primitives::SignedReceipt`,
/// domain `veil/receipt/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedReceiptDoc {
    /// The receipt.
    pub message: ReceiptDoc,
    /// The signature (`0x` hex, 64 bytes).
    pub signature: String,
}

/// Real values with every variant of every mirrored type, for the tests of this crate.
#[cfg(test)]
pub(crate) mod samples {
    use ed25519_dalek::SigningKey;
    use veil_auction::outcome::RollupTermsRecord;
    use veil_auction::{
        public_key, Bid, BucketPayout, Contribution, FallbackBlock, LedgerEntry, Outcome,
        PaymentRule, RevenuePolicy, RollupBlock, RollupConfig, RollupPayout, ScheduledTerms,
        Winner, WinningBid,
    };
    use veil_crypto::{Blame, BlameReason, KeyperIndex};
    use veil_primitives::receipt::{CommitmentId, Receipt};
    use veil_primitives::{
        Amount, BundleId, ChainId, Eon, PublicKeyBytes, RollupId, SignedReceipt, Slot, TxId,
    };
    use veil_sequencer::slot::{FeeEntry, FeeRecipient, PublishedBlock, PublishedTx, TxResult};
    use veil_sequencer::{Commitment, CommittedBlock, PublishedSlot, SignedCommitment};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn me() -> PublicKeyBytes {
        public_key(&key())
    }

    /// Terms with a standard policy.
    pub(crate) fn config(reserve: u128) -> RollupConfig {
        RollupConfig {
            reserve: Amount(reserve),
            gas_limit: 30_000_000,
            policy: RevenuePolicy::standard(8_000, 1_500, 500, me()).unwrap(),
            active: true,
        }
    }

    /// Terms scheduled for a later slot.
    pub(crate) fn scheduled() -> ScheduledTerms {
        ScheduledTerms { effective: Slot(40), config: config(9) }
    }

    /// An outcome record: a VCG winner with a contribution, a payout, a fallback block, an
    /// excluded bid and one ledger entry of every kind.
    pub(crate) fn outcome() -> Outcome {
        let bid = Bid {
            chain_id: ChainId(1),
            slot: Slot(7),
            builder: me(),
            sequence: 3,
            amount: Amount(30),
            blocks: vec![RollupBlock {
                rollup: RollupId(0),
                ciphertexts: vec![TxId([5; 32])],
                plaintext: vec![veil_auction::PlaintextTx { gas_limit: 21_000, data: vec![1] }],
            }],
        }
        .sign(&key());
        let buckets = vec![
            BucketPayout { bucket: "protocol_fee".into(), account: me(), amount: Amount(1) },
            BucketPayout { bucket: "treasury".into(), account: me(), amount: Amount(16) },
            BucketPayout { bucket: "user_rebates".into(), account: me(), amount: Amount(3) },
        ];
        Outcome {
            chain_id: ChainId(1),
            slot: Slot(7),
            rule: PaymentRule::Vcg,
            exact: true,
            bids_considered: 2,
            bids_digest: [8; 32],
            terms: vec![
                RollupTermsRecord { rollup: RollupId(0), config: config(5) },
                RollupTermsRecord { rollup: RollupId(1), config: config(0) },
            ],
            welfare: Amount(25),
            excluded_for_collateral: vec![veil_auction::BidId([9; 32])],
            winners: vec![Winner {
                builder: me(),
                bids: vec![WinningBid { id: veil_auction::BidId([4; 32]), signed: bid }],
                value: Amount(30),
                payment: Amount(20),
                welfare_without: Some(Amount(10)),
                own_value: Amount(25),
                contributions: vec![Contribution {
                    rollup: RollupId(0),
                    value_without: Amount(0),
                    contribution: Amount(25),
                }],
            }],
            payouts: vec![RollupPayout {
                rollup: RollupId(0),
                builder: me(),
                reserve: Amount(5),
                share: Amount(20),
                buckets,
            }],
            fallback: vec![FallbackBlock {
                rollup: RollupId(1),
                ciphertexts: vec![TxId([6; 32])],
                gas_used: 21_000,
            }],
            ledger: vec![
                LedgerEntry::Deposit { builder: me(), amount: Amount(100) },
                LedgerEntry::WithdrawalRequested {
                    builder: me(),
                    amount: Amount(10),
                    release: Slot(70),
                },
                LedgerEntry::Withdrawal { builder: me(), amount: Amount(10) },
                LedgerEntry::Debit { slot: Slot(7), builder: me(), amount: Amount(20) },
                LedgerEntry::Payout {
                    slot: Slot(7),
                    rollup: RollupId(0),
                    bucket: "treasury".into(),
                    account: me(),
                    amount: Amount(16),
                },
            ],
        }
    }

    /// The commitment to [`outcome`]: a won block and a fallback block.
    pub(crate) fn commitment() -> Commitment {
        Commitment {
            chain_id: ChainId(1),
            slot: Slot(7),
            eon: Eon(1),
            blocks: vec![
                CommittedBlock {
                    rollup: RollupId(0),
                    winner: Some(me()),
                    payment: Amount(20),
                    ciphertexts: vec![TxId([5; 32])],
                },
                CommittedBlock {
                    rollup: RollupId(1),
                    winner: None,
                    payment: Amount::ZERO,
                    ciphertexts: vec![TxId([6; 32])],
                },
            ],
            outcome_hash: outcome().hash(),
        }
    }

    /// [`commitment`], signed.
    pub(crate) fn signed_commitment() -> SignedCommitment {
        veil_primitives::signed::Signed::sign(commitment(), &key())
    }

    /// Published blocks with every result, a blamed keyper of every reason and both fee
    /// entries.
    pub(crate) fn published() -> PublishedSlot {
        let blame = |i, reason| Blame { keyper: KeyperIndex::new(i).unwrap(), reason };
        PublishedSlot {
            slot: Slot(7),
            blocks: vec![
                PublishedBlock {
                    rollup: RollupId(0),
                    txs: vec![
                        PublishedTx { id: TxId([5; 32]), result: TxResult::Included(vec![0xab]) },
                        PublishedTx { id: TxId([7; 32]), result: TxResult::Failed },
                    ],
                },
                PublishedBlock {
                    rollup: RollupId(1),
                    txs: vec![PublishedTx {
                        id: TxId([6; 32]),
                        result: TxResult::DroppedWithBundle(BundleId([2; 32])),
                    }],
                },
            ],
            blamed: vec![
                blame(1, BlameReason::WrongShares),
                blame(2, BlameReason::ShareOutsideSubgroup { position: 3 }),
                blame(3, BlameReason::MismatchedBatch),
            ],
            fees: vec![
                FeeEntry::Charge { tx: TxId([5; 32]), payer: me(), amount: Amount(4) },
                FeeEntry::Credit {
                    rollup: RollupId(0),
                    to: FeeRecipient::Builder(me()),
                    amount: Amount(4),
                },
                FeeEntry::Credit {
                    rollup: RollupId(1),
                    to: FeeRecipient::Rollup(RollupId(1)),
                    amount: Amount::ZERO,
                },
            ],
        }
    }

    /// A signed receipt.
    pub(crate) fn receipt() -> SignedReceipt {
        veil_primitives::signed::Signed::sign(
            Receipt {
                chain_id: ChainId(1),
                slot: Slot(7),
                eon: Eon(1),
                tx: TxId([5; 32]),
                rollup: RollupId(0),
                position: 0,
                commitment: CommitmentId([1; 32]),
            },
            &key(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::samples;
    use super::*;

    /// `real`'s JSON reads as the mirror `D` (which refuses unknown fields) and the mirror
    /// writes it back byte for byte.
    fn mirrors<D: Serialize + DeserializeOwned>(real: &impl Serialize) {
        let json = serde_json::to_value(real).unwrap();
        let doc: D = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("{}: {e}: {json}", std::any::type_name::<D>()));
        assert_eq!(serde_json::to_value(&doc).unwrap(), json, "{}", std::any::type_name::<D>());
    }

    #[test]
    fn the_record_mirrors_have_the_real_json_shape() {
        let outcome = samples::outcome();
        mirrors::<OutcomeDoc>(&outcome);
        mirrors::<PaymentRuleDoc>(&veil_auction::PaymentRule::FirstPrice);
        mirrors::<WinnerDoc>(&veil_auction::Winner {
            welfare_without: None,
            ..outcome.winners[0].clone()
        });
        mirrors::<CommitmentDoc>(&samples::commitment());
        mirrors::<SignedCommitmentDoc>(&samples::signed_commitment());
        mirrors::<PublishedSlotDoc>(&samples::published());
        mirrors::<RollupConfigDoc>(&samples::config(3));
        mirrors::<ScheduledTermsDoc>(&samples::scheduled());
        mirrors::<SignedReceiptDoc>(&samples::receipt());
        // Every variant is in the samples: a mirror that lost one would fail above.
        let published = serde_json::to_string(&samples::published()).unwrap();
        for v in [
            "Included",
            "\"Failed\"",
            "DroppedWithBundle",
            "wrong_shares",
            "share_outside_subgroup",
            "mismatched_batch",
            "\"charge\"",
            "\"credit\"",
            "\"builder\"",
            "\"rollup\"",
        ] {
            assert!(published.contains(v), "{v} missing from the samples");
        }
        let outcome = serde_json::to_string(&samples::outcome()).unwrap();
        for v in ["deposit", "withdrawal_requested", "\"withdrawal\"", "debit", "payout", "vcg"] {
            assert!(outcome.contains(v), "{v} missing from the samples");
        }
    }
}
