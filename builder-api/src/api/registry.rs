//! The rollup and collateral API's vocabulary: routes, bodies and the schema mirrors of the
//! signed messages it takes.
//!
//! - **Rollups** register and change their terms with signed admin messages
//!   (`veil_auction::SignedRollupUpdate`, domain `veil/rollup-update/v1`), read their
//!   registration, their ordered plaintext blocks and their payouts.
//! - **Builders** read their collateral, have deposits credited (a bridge-signed
//!   `veil_primitives::SignedDepositNotice`, domain `veil/deposit/v1`) and withdraw
//!   (`veil_auction::SignedWithdrawal`, domain `veil/withdraw/v1`).
//!
//! Every `POST` here is idempotent or refused on replay, so a client may resend one whose
//! answer it lost: an admin message or a withdrawal request carries a nonce (the same one
//! again is `STALE_NONCE`: it was applied once), and a deposit notice its settlement-layer
//! deposit id (the same notice again gets the same answer and is not credited twice).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_auction::{BucketPayout, RollupConfig, ScheduledTerms};
use veil_primitives::{AccountKind, Amount, DepositId, PublicKeyBytes, RollupId, Slot};
use veil_sequencer::slot::PublishedTx;

/// The routes of this part of the API (templates in braces).
pub mod paths {
    /// `POST`: a signed rollup admin message ([`super::RollupUpdateAccepted`]).
    pub const ROLLUP_UPDATES: &str = "/v1/rollups/updates";
    /// `GET`: the registered rollups, a page at a time ([`super::RollupList`]).
    pub const ROLLUPS: &str = "/v1/rollups";
    /// `GET`: one rollup ([`super::RollupInfo`]).
    pub const ROLLUP: &str = "/v1/rollups/{rollup}";
    /// `GET`: a rollup's published blocks from a slot on ([`super::RollupBlocksPage`]).
    pub const ROLLUP_BLOCKS: &str = "/v1/rollups/{rollup}/blocks";
    /// `GET`: a rollup's payouts from a slot on ([`super::RollupPayoutsPage`]).
    pub const ROLLUP_PAYOUTS: &str = "/v1/rollups/{rollup}/payouts";
    /// `GET`: a builder's collateral ([`super::BuilderCollateral`]).
    pub const BUILDER: &str = "/v1/builders/{key}";
    /// `POST`: a bridge-signed deposit notice ([`super::DepositAccepted`]): builder collateral
    /// or a user's fee account, by the notice's account kind.
    pub const DEPOSITS: &str = "/v1/builders/deposits";
    /// `GET`: a fee payer's fee account ([`super::FeeAccountInfo`]).
    pub const USER: &str = "/v1/users/{payer}";
    /// `POST`: a builder-signed withdrawal request ([`super::WithdrawalAccepted`]).
    pub const WITHDRAWALS: &str = "/v1/builders/withdrawals";
}

/// An accepted (and durable) rollup admin message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupUpdateAccepted {
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// The nonce now in force (the next message needs a higher one).
    pub nonce: u64,
    /// The slot the change takes effect in (an admin key rotation: at once).
    #[schema(value_type = u64)]
    pub effective: Slot,
}

/// A registered rollup as of the slot in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupInfo {
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// The admin key in force: it signs the next update.
    #[schema(value_type = String)]
    pub admin: PublicKeyBytes,
    /// The last accepted admin nonce (0 for a genesis rollup never updated).
    pub last_nonce: u64,
    /// The terms in force now (`veil_auction::RollupConfig`: reserve, gas limit, revenue
    /// policy buckets, active); absent if the registration takes effect later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::records::RollupConfigDoc>)]
    pub current: Option<RollupConfig>,
    /// Terms scheduled for later slots (`veil_auction::ScheduledTerms`: `effective`,
    /// `config`), in slot order.
    #[schema(value_type = Vec<super::records::ScheduledTermsDoc>)]
    pub scheduled: Vec<ScheduledTerms>,
}

/// A page of the registered rollups, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupList {
    /// The slot in progress when the page was read: `current` terms are those in force in it.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The rollups, by id.
    pub rollups: Vec<RollupInfo>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of the rollup listing (query parameters of `GET /v1/rollups`), with the data API's
/// conventions: a cursor from the previous page and a page size up to the maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RollupListQuery {
    /// The `next_cursor` of the previous page (the rollups with larger ids follow); absent
    /// for the first page.
    pub cursor: Option<String>,
    /// Rollups per page, 1 to the server's maximum (`PAGE_LIMIT_EXCEEDED` above it).
    pub limit: Option<u32>,
}

/// The page of a rollup listing (query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RollupPageQuery {
    /// The first slot to list (0 if absent); pass the previous page's `next_from` to read on.
    pub from: Option<u64>,
    /// Slots per page, 1 to the server's maximum (`PAGE_LIMIT_EXCEEDED` above it).
    pub limit: Option<u32>,
}

/// One published block of a rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupBlock {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// Every committed ciphertext in committed order, with its result
    /// (`veil_sequencer::PublishedTx`: `id`, and `result`: `Included` with the payload in
    /// hex, `Failed`, or `DroppedWithBundle`).
    #[schema(value_type = Vec<super::records::PublishedTxDoc>)]
    pub txs: Vec<PublishedTx>,
}

/// A page of a rollup's published blocks, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupBlocksPage {
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// The blocks, in slot order.
    pub blocks: Vec<RollupBlock>,
    /// Pass as `from` for the next page; absent when this page was not full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<u64>,
}

/// What a rollup was paid in one slot, by policy bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupPayoutRecord {
    /// The slot.
    #[schema(value_type = u64)]
    pub slot: Slot,
    /// The winning builder whose payment it comes from.
    #[schema(value_type = String)]
    pub builder: PublicKeyBytes,
    /// The rollup's reserve (paid first).
    #[schema(value_type = String)]
    pub reserve: Amount,
    /// Reserve plus its part of the surplus; the buckets sum to it.
    #[schema(value_type = String)]
    pub share: Amount,
    /// By bucket (`veil_auction::BucketPayout`: name, account, amount), in name order.
    #[schema(value_type = Vec<super::records::BucketPayoutDoc>)]
    pub buckets: Vec<BucketPayout>,
    /// The hash of the outcome record behind it (`GET /v1/slots/{slot}/outcome` serves the
    /// record; the signed commitment binds the hash).
    pub outcome_hash: String,
    /// Whether the ledger entries are durable (the slot settled); until then the payout is
    /// decided but not yet credited.
    pub settled: bool,
}

/// A page of a rollup's payouts, oldest first (slots where it was sold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollupPayoutsPage {
    /// The rollup.
    #[schema(value_type = u32)]
    pub rollup: RollupId,
    /// The payouts, in slot order.
    pub payouts: Vec<RollupPayoutRecord>,
    /// Pass as `from` for the next page; absent when this page was not full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<u64>,
}

/// A withdrawal waiting for its release slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingWithdrawal {
    /// The slot whose start releases it.
    #[schema(value_type = u64)]
    pub release_slot: Slot,
    /// How much (all requests released at that slot, summed).
    #[schema(value_type = String)]
    pub amount: Amount,
}

/// A user's fee account: what the ledger holds for a fee payer, and what its transactions in
/// the mempool reserve. A transaction is admitted only if its `max_fee` fits `available`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeAccountInfo {
    /// The fee payer.
    #[schema(value_type = String)]
    pub payer: PublicKeyBytes,
    /// The ledger's balance: deposits less the fees charged at settlement.
    #[schema(value_type = String)]
    pub balance: Amount,
    /// The `max_fee` of the payer's pending transactions.
    #[schema(value_type = String)]
    pub reserved: Amount,
    /// The `max_fee` of its committed transactions whose fees are not settled yet.
    #[schema(value_type = String)]
    pub held: Amount,
    /// What new transactions may still reserve: balance − reserved − held.
    #[schema(value_type = String)]
    pub available: Amount,
    /// Its pending transactions.
    pub pending: u64,
}

/// A builder's collateral account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuilderCollateral {
    /// The builder.
    #[schema(value_type = String)]
    pub builder: PublicKeyBytes,
    /// Collateral held, including what is locked.
    #[schema(value_type = String)]
    pub balance: Amount,
    /// Payments won and not settled yet.
    #[schema(value_type = String)]
    pub unsettled: Amount,
    /// Withdrawals requested and not released yet, by release slot.
    pub pending_withdrawals: Vec<PendingWithdrawal>,
    /// What a new bid or withdrawal may use: balance − unsettled − pending withdrawals.
    #[schema(value_type = String)]
    pub available: Amount,
    /// The last accepted withdrawal nonce; the next request needs a higher one.
    pub withdraw_nonce: u64,
}

/// A credited deposit notice (the same answer for the same notice sent again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositAccepted {
    /// The settlement-layer deposit id.
    #[schema(value_type = String)]
    pub deposit_id: DepositId,
    /// The kind of account credited.
    #[schema(value_type = String, example = "builder")]
    pub kind: AccountKind,
    /// The account credited.
    #[schema(value_type = String)]
    pub account: PublicKeyBytes,
    /// The amount credited.
    #[schema(value_type = String)]
    pub amount: Amount,
}

/// An accepted (and durable) withdrawal request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalAccepted {
    /// The builder.
    #[schema(value_type = String)]
    pub builder: PublicKeyBytes,
    /// The amount reserved now and paid out at the release.
    #[schema(value_type = String)]
    pub amount: Amount,
    /// The request's nonce.
    pub nonce: u64,
    /// The slot whose start releases it.
    #[schema(value_type = u64)]
    pub release_slot: Slot,
}

// ----- Schema mirrors of the signed messages (the routes take the real types). -----

/// A rollup admin message (`veil_auction::RollupUpdate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RollupUpdateDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The rollup.
    pub rollup: u32,
    /// Strictly above the rollup's last accepted nonce.
    pub nonce: u64,
    /// The first slot the change applies to; after every slot already opened.
    pub effective: u64,
    /// What it changes.
    pub change: RollupChangeDoc,
}

/// What a rollup admin message changes (`veil_auction::RollupChange`): an object with one
/// key, `register`, `configure` or `rotate_admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RollupChangeDoc {
    /// Registers a new rollup; signed by `admin` itself (proof of possession).
    Register {
        /// The admin key (`0x` hex).
        admin: String,
        /// The initial terms.
        config: super::records::RollupConfigDoc,
    },
    /// Replaces the terms from the effective slot on.
    Configure(super::records::RollupConfigDoc),
    /// Hands administration to another key, at once.
    RotateAdmin {
        /// The new admin key (`0x` hex).
        new_admin: String,
    },
}

/// A signed rollup admin message (`veil_auction::SignedRollupUpdate`): signed by the new
/// admin key for a registration, by the admin key in force otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedRollupUpdateDoc {
    /// The message.
    pub message: RollupUpdateDoc,
    /// The ed25519 signature (`0x` hex, 64 bytes).
    pub signature: String,
}

/// A deposit notice (`veil_primitives::DepositNotice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DepositNoticeDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The bridge key (`0x` hex); must be the node's configured `[bridge] key`.
    pub bridge: String,
    /// The settlement-layer transfer's id (`0x` hex, 32 bytes).
    pub deposit_id: String,
    /// `builder` (`fee_payer` is refused until fee accounts exist).
    pub kind: String,
    /// The account credited (`0x` hex ed25519 key).
    pub account: String,
    /// The amount (decimal string).
    pub amount: String,
}

/// A bridge-signed deposit notice (`veil_primitives::SignedDepositNotice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedDepositNoticeDoc {
    /// The notice.
    pub message: DepositNoticeDoc,
    /// The bridge's ed25519 signature (`0x` hex, 64 bytes).
    pub signature: String,
}

/// A withdrawal request (`veil_auction::WithdrawalRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalRequestDoc {
    /// The Veil network.
    pub chain_id: u64,
    /// The builder (`0x` hex).
    pub builder: String,
    /// The amount (decimal string); at most the available collateral.
    pub amount: String,
    /// Strictly above the builder's last withdrawal nonce.
    pub nonce: u64,
}

/// A builder-signed withdrawal request (`veil_auction::SignedWithdrawal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedWithdrawalDoc {
    /// The request.
    pub message: WithdrawalRequestDoc,
    /// The builder's ed25519 signature (`0x` hex, 64 bytes).
    pub signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use veil_auction::{public_key, RevenuePolicy, RollupChange, RollupUpdate, WithdrawalRequest};
    use veil_primitives::{ChainId, DepositNotice};

    /// The mirrors have the real messages' JSON shape.
    #[test]
    fn the_signed_message_mirrors_match_the_real_json() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let update = RollupUpdate {
            chain_id: ChainId(1),
            rollup: RollupId(4),
            nonce: 1,
            effective: Slot(9),
            change: RollupChange::Register {
                admin: public_key(&key),
                config: RollupConfig {
                    reserve: Amount(10),
                    gas_limit: 1_000,
                    policy: RevenuePolicy::standard(10_000, 0, 0, public_key(&key)).unwrap(),
                    active: true,
                },
            },
        }
        .sign(&key);
        let doc: SignedRollupUpdateDoc =
            serde_json::from_value(serde_json::to_value(&update).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), serde_json::to_value(&update).unwrap());
        let RollupChange::Register { config, .. } = update.message.change.clone() else {
            unreachable!()
        };
        for change in [
            RollupChange::Configure(config),
            RollupChange::RotateAdmin { new_admin: public_key(&key) },
        ] {
            let json = serde_json::to_value(&change).unwrap();
            let doc: RollupChangeDoc = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&doc).unwrap(), json);
        }
        let notice = DepositNotice {
            chain_id: ChainId(1),
            bridge: public_key(&key),
            deposit_id: DepositId([1; 32]),
            kind: AccountKind::Builder,
            account: public_key(&key),
            amount: Amount(5),
        }
        .sign(&key);
        let doc: SignedDepositNoticeDoc =
            serde_json::from_value(serde_json::to_value(&notice).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), serde_json::to_value(&notice).unwrap());
        let w = WithdrawalRequest {
            chain_id: ChainId(1),
            builder: public_key(&key),
            amount: Amount(5),
            nonce: 2,
        }
        .sign(&key);
        let doc: SignedWithdrawalDoc =
            serde_json::from_value(serde_json::to_value(&w).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), serde_json::to_value(&w).unwrap());
    }
}
