//! The rollup registry (admin-signed, slot-scheduled configuration) and the builder registry
//! (collateral, unsettled payments, delayed withdrawals).
//!
//! # Rollups
//!
//! A rollup registers with a [`SignedRollupUpdate`] signed by its admin key; later updates and
//! key rotations are signed by the admin key in force. Every message carries a nonce strictly
//! above the last accepted one (replays are refused) and an `effective` slot. Configuration
//! changes (reserve, gas limit, revenue policy, active flag) are scheduled for that slot and
//! must land after every slot already opened, so an open auction never sees its terms change.
//! An admin key rotation takes effect on acceptance: it governs only future admin messages.
//!
//! # Builders
//!
//! A builder is known from its first deposit. Its **available** collateral is the balance
//! minus the payments it won but that are not settled yet, minus pending withdrawals. A
//! withdrawal request (signed, nonce-protected) reserves the amount at once and releases it
//! `withdrawal_delay_slots` later.

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use veil_primitives::{Amount, ChainId, PublicKeyBytes, RollupId, Slot};

use veil_primitives::encoding::Encoder;
use veil_primitives::signed::{self, Signed, SignedMessage};

use crate::outcome::LedgerEntry;
use crate::AuctionError;

/// Basis points in a whole revenue policy.
pub const TOTAL_BPS: u32 = 10_000;
/// The rollup treasury bucket, required in every policy.
pub const BUCKET_TREASURY: &str = "treasury";
/// The user rebates bucket, required in every policy.
pub const BUCKET_USER_REBATES: &str = "user_rebates";
/// The protocol fee bucket, required in every policy.
pub const BUCKET_PROTOCOL_FEE: &str = "protocol_fee";
/// The longest bucket name.
pub const MAX_BUCKET_NAME_LEN: usize = 32;

/// One named share of a rollup's revenue and the account it is paid to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bucket {
    /// `[a-z0-9_]{1,32}`, unique within the policy.
    pub name: String,
    /// Share of the rollup's revenue, in basis points.
    pub bps: u16,
    /// The payout account (32 bytes, such as an ed25519 key or a padded address).
    pub account: PublicKeyBytes,
}

/// How a rollup's revenue is split: named buckets whose basis points sum to exactly 10,000.
///
/// Buckets are kept sorted by name, which is also the tie-break order of the rounding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Bucket>", into = "Vec<Bucket>")]
pub struct RevenuePolicy {
    buckets: Vec<Bucket>,
}

impl RevenuePolicy {
    /// Validates and sorts the buckets: names well-formed and unique, the three standard
    /// buckets present (possibly at 0 bps), basis points summing to exactly 10,000.
    pub fn new(mut buckets: Vec<Bucket>) -> Result<RevenuePolicy, AuctionError> {
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sum = 0u32;
        for (i, b) in buckets.iter().enumerate() {
            let ok_name = !b.name.is_empty()
                && b.name.len() <= MAX_BUCKET_NAME_LEN
                && b.name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if !ok_name || (i > 0 && buckets[i - 1].name == b.name) {
                return Err(AuctionError::BadBucketName(b.name.clone()));
            }
            sum += u32::from(b.bps);
        }
        for required in [BUCKET_TREASURY, BUCKET_USER_REBATES, BUCKET_PROTOCOL_FEE] {
            if !buckets.iter().any(|b| b.name == required) {
                return Err(AuctionError::MissingBucket(required));
            }
        }
        if sum != TOTAL_BPS {
            return Err(AuctionError::PolicyNotWhole(sum));
        }
        Ok(RevenuePolicy { buckets })
    }

    /// A policy of the three standard buckets, all paid to `account`.
    pub fn standard(
        treasury_bps: u16,
        user_rebates_bps: u16,
        protocol_fee_bps: u16,
        account: PublicKeyBytes,
    ) -> Result<RevenuePolicy, AuctionError> {
        RevenuePolicy::new(vec![
            Bucket { name: BUCKET_TREASURY.into(), bps: treasury_bps, account },
            Bucket { name: BUCKET_USER_REBATES.into(), bps: user_rebates_bps, account },
            Bucket { name: BUCKET_PROTOCOL_FEE.into(), bps: protocol_fee_bps, account },
        ])
    }

    /// The buckets, sorted by name.
    #[must_use]
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.len(self.buckets.len());
        for b in &self.buckets {
            e.bytes(b.name.as_bytes());
            e.u16(b.bps);
            e.fixed(&b.account.0);
        }
    }
}

impl TryFrom<Vec<Bucket>> for RevenuePolicy {
    type Error = AuctionError;

    fn try_from(buckets: Vec<Bucket>) -> Result<Self, Self::Error> {
        RevenuePolicy::new(buckets)
    }
}

impl From<RevenuePolicy> for Vec<Bucket> {
    fn from(p: RevenuePolicy) -> Self {
        p.buckets
    }
}

/// A rollup's terms for the slots it takes effect in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RollupConfig {
    /// The least a rollup's block sells for; also the rollup's own bid under VCG.
    pub reserve: Amount,
    /// Gas one block of this rollup may use (ciphertext gas limits plus plaintext gas).
    pub gas_limit: u64,
    /// How revenue is split over buckets.
    pub policy: RevenuePolicy,
    /// Whether the rollup's slots are sold. An inactive rollup gets no bids and no block.
    pub active: bool,
}

impl RollupConfig {
    fn validate(&self) -> Result<(), AuctionError> {
        if self.gas_limit == 0 {
            return Err(AuctionError::ZeroGasLimit);
        }
        if self.reserve.0 > crate::MAX_AMOUNT.0 {
            return Err(AuctionError::AmountTooLarge(self.reserve));
        }
        Ok(())
    }

    fn encode(&self, e: &mut Encoder) {
        e.amount(self.reserve);
        e.u64(self.gas_limit);
        self.policy.encode(e);
        e.bool(self.active);
    }
}

/// What a rollup admin message changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupChange {
    /// Registers a new rollup; signed by `admin` itself (proof of possession).
    Register {
        /// The admin key.
        admin: PublicKeyBytes,
        /// The initial terms.
        config: RollupConfig,
    },
    /// Replaces the terms from the effective slot on.
    Configure(RollupConfig),
    /// Hands administration to another key, at once.
    RotateAdmin {
        /// The new admin key.
        new_admin: PublicKeyBytes,
    },
}

/// A rollup admin message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupUpdate {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The rollup.
    pub rollup: RollupId,
    /// Strictly increasing per rollup, across all changes.
    pub nonce: u64,
    /// First slot the change applies to; after every slot already opened.
    pub effective: Slot,
    /// The change.
    pub change: RollupChange,
}

impl SignedMessage for RollupUpdate {
    const DOMAIN: &'static str = "veil/rollup-update/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Rollup, nonce, effective slot, then the change: a tag byte (0 register, 1 configure,
    /// 2 rotate admin) and its fields.
    fn encode_body(&self, e: &mut Encoder) {
        e.u32(self.rollup.0);
        e.u64(self.nonce);
        e.u64(self.effective.0);
        match &self.change {
            RollupChange::Register { admin, config } => {
                e.u8(0);
                e.fixed(&admin.0);
                config.encode(e);
            }
            RollupChange::Configure(config) => {
                e.u8(1);
                config.encode(e);
            }
            RollupChange::RotateAdmin { new_admin } => {
                e.u8(2);
                e.fixed(&new_admin.0);
            }
        }
    }
}

impl RollupUpdate {
    /// Signs the update with `key`.
    #[must_use]
    pub fn sign(self, key: &SigningKey) -> SignedRollupUpdate {
        Signed::sign(self, key)
    }
}

/// A rollup admin message with its admin's signature (domain `veil/rollup-update/v1`).
pub type SignedRollupUpdate = Signed<RollupUpdate>;

#[derive(Debug, Clone)]
struct RollupRecord {
    admin: PublicKeyBytes,
    last_nonce: u64,
    current: Option<RollupConfig>,
    scheduled: BTreeMap<Slot, RollupConfig>,
}

/// The terms of every rollup for one slot, frozen when the slot opens.
pub type RollupTerms = BTreeMap<RollupId, RollupConfig>;

/// A registered rollup as of one slot: what `GET /v1/rollups/{id}` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupState {
    /// The rollup.
    pub rollup: RollupId,
    /// The admin key in force (signs the next update).
    pub admin: PublicKeyBytes,
    /// The last accepted admin nonce (0 for a genesis rollup never updated); the next update
    /// needs a higher one.
    pub last_nonce: u64,
    /// The terms in force at the slot asked about; `None` if the registration takes effect
    /// later.
    pub current: Option<RollupConfig>,
    /// Terms scheduled after that slot, by the slot they take effect in.
    pub scheduled: Vec<ScheduledTerms>,
}

/// Terms that take effect at a later slot boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledTerms {
    /// The first slot they apply to.
    pub effective: Slot,
    /// The terms.
    pub config: RollupConfig,
}

/// Registered rollups and their scheduled changes.
#[derive(Debug, Clone, Default)]
pub struct RollupRegistry {
    rollups: BTreeMap<RollupId, RollupRecord>,
}

impl RollupRegistry {
    /// Every registered rollup with the largest block gas limit among its current and
    /// scheduled configurations: what the mempool admits transactions for.
    #[must_use]
    pub fn gas_limits(&self) -> BTreeMap<RollupId, u64> {
        self.rollups
            .iter()
            .map(|(id, r)| {
                let limit = r.current.iter().chain(r.scheduled.values()).map(|c| c.gas_limit).max();
                (*id, limit.unwrap_or(0))
            })
            .collect()
    }

    /// Registers a rollup from the operator's genesis configuration: no admin signature (the
    /// configuration is the authority at genesis), effective from slot 0. Later changes are
    /// admin-signed updates as usual.
    ///
    /// # Errors
    /// [`AuctionError::RollupExists`], an invalid configuration, or an admin key that is not
    /// a valid ed25519 key.
    pub fn register_genesis(
        &mut self,
        rollup: RollupId,
        admin: PublicKeyBytes,
        config: RollupConfig,
    ) -> Result<(), AuctionError> {
        if self.rollups.contains_key(&rollup) {
            return Err(AuctionError::RollupExists(rollup));
        }
        config.validate()?;
        signed::verifying_key(&admin)?;
        let mut scheduled = BTreeMap::new();
        scheduled.insert(Slot(0), config);
        self.rollups
            .insert(rollup, RollupRecord { admin, last_nonce: 0, current: None, scheduled });
        Ok(())
    }

    /// Checks and applies an admin message. `earliest` is the first slot a change may take
    /// effect in (the slot after the last one opened).
    pub fn apply(
        &mut self,
        chain_id: ChainId,
        signed: &SignedRollupUpdate,
        earliest: Slot,
    ) -> Result<(), AuctionError> {
        let u = &signed.message;
        if u.chain_id != chain_id {
            return Err(AuctionError::WrongChain { expected: chain_id, got: u.chain_id });
        }
        if u.effective < earliest {
            return Err(AuctionError::EffectiveSlotTooEarly { effective: u.effective, earliest });
        }
        match (&u.change, self.rollups.get(&u.rollup)) {
            (RollupChange::Register { .. }, Some(_)) => Err(AuctionError::RollupExists(u.rollup)),
            (RollupChange::Register { admin, config }, None) => {
                config.validate()?;
                signed.verify(admin)?;
                let mut scheduled = BTreeMap::new();
                scheduled.insert(u.effective, config.clone());
                self.rollups.insert(
                    u.rollup,
                    RollupRecord { admin: *admin, last_nonce: u.nonce, current: None, scheduled },
                );
                Ok(())
            }
            (_, None) => Err(AuctionError::UnknownRollup(u.rollup)),
            (change, Some(record)) => {
                if u.nonce <= record.last_nonce {
                    return Err(AuctionError::StaleNonce { got: u.nonce, last: record.last_nonce });
                }
                let new_admin = match change {
                    RollupChange::RotateAdmin { new_admin } => {
                        signed::verifying_key(new_admin)?;
                        Some(*new_admin)
                    }
                    RollupChange::Configure(config) => {
                        config.validate()?;
                        None
                    }
                    RollupChange::Register { .. } => None,
                };
                signed.verify(&record.admin)?;
                let record =
                    self.rollups.get_mut(&u.rollup).ok_or(AuctionError::UnknownRollup(u.rollup))?;
                record.last_nonce = u.nonce;
                match change {
                    RollupChange::Configure(config) => {
                        record.scheduled.insert(u.effective, config.clone());
                    }
                    RollupChange::RotateAdmin { .. } => {
                        record.admin = new_admin.unwrap_or(record.admin);
                    }
                    RollupChange::Register { .. } => {}
                }
                Ok(())
            }
        }
    }

    /// Applies every change scheduled at or before `slot` and returns the terms in force
    /// for `slot` (registered rollups whose first terms are effective, active or not).
    pub fn terms_for(&mut self, slot: Slot) -> RollupTerms {
        let mut out = BTreeMap::new();
        for (id, record) in &mut self.rollups {
            let later = record.scheduled.split_off(&slot.next());
            let due = std::mem::replace(&mut record.scheduled, later);
            if let Some((_, config)) = due.into_iter().next_back() {
                record.current = Some(config);
            }
            if let Some(config) = &record.current {
                out.insert(*id, config.clone());
            }
        }
        out
    }

    /// The current admin key of a rollup.
    #[must_use]
    pub fn admin(&self, rollup: RollupId) -> Option<PublicKeyBytes> {
        self.rollups.get(&rollup).map(|r| r.admin)
    }

    /// The registered rollup ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = RollupId> + '_ {
        self.rollups.keys().copied()
    }

    /// A rollup as of slot `at` (read only: the terms due by `at` are shown as current
    /// whether or not a slot has opened since).
    #[must_use]
    pub fn state(&self, rollup: RollupId, at: Slot) -> Option<RollupState> {
        let r = self.rollups.get(&rollup)?;
        let current = r
            .scheduled
            .range(..=at)
            .next_back()
            .map(|(_, c)| c.clone())
            .or_else(|| r.current.clone());
        let scheduled = r
            .scheduled
            .range(at.next()..)
            .map(|(s, c)| ScheduledTerms { effective: *s, config: c.clone() })
            .collect();
        Some(RollupState { rollup, admin: r.admin, last_nonce: r.last_nonce, current, scheduled })
    }
}

/// A builder's collateral account.
#[derive(Debug, Clone)]
pub struct BuilderAccount {
    key: VerifyingKey,
    balance: Amount,
    unsettled: Amount,
    pending_withdrawals: BTreeMap<Slot, Amount>,
    withdraw_nonce: u64,
}

impl BuilderAccount {
    /// The decoded public key (decoded once, at the first deposit).
    #[must_use]
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Collateral held, including amounts locked for unsettled payments and withdrawals.
    #[must_use]
    pub fn balance(&self) -> Amount {
        self.balance
    }

    /// Payments won and not yet settled.
    #[must_use]
    pub fn unsettled(&self) -> Amount {
        self.unsettled
    }

    /// Requested withdrawals not yet released.
    #[must_use]
    pub fn pending_withdrawals(&self) -> Amount {
        Amount(self.pending_withdrawals.values().fold(0u128, |a, v| a.saturating_add(v.0)))
    }

    /// What a new bid or withdrawal may use: balance minus unsettled payments and pending
    /// withdrawals.
    #[must_use]
    pub fn available(&self) -> Amount {
        self.balance.saturating_sub(self.unsettled).saturating_sub(self.pending_withdrawals())
    }

    /// Pending withdrawals by the slot they are released at, in slot order.
    pub fn withdrawals(&self) -> impl Iterator<Item = (Slot, Amount)> + '_ {
        self.pending_withdrawals.iter().map(|(s, a)| (*s, *a))
    }

    /// The last accepted withdrawal nonce (0 before the first); the next request needs a
    /// higher one.
    #[must_use]
    pub fn withdraw_nonce(&self) -> u64 {
        self.withdraw_nonce
    }
}

/// A builder's request to withdraw collateral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRequest {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The builder.
    pub builder: PublicKeyBytes,
    /// How much.
    pub amount: Amount,
    /// Strictly increasing per builder.
    pub nonce: u64,
}

impl SignedMessage for WithdrawalRequest {
    const DOMAIN: &'static str = "veil/withdraw/v1";

    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Builder, amount, nonce.
    fn encode_body(&self, e: &mut Encoder) {
        e.fixed(&self.builder.0);
        e.amount(self.amount);
        e.u64(self.nonce);
    }
}

impl WithdrawalRequest {
    /// Signs the request.
    #[must_use]
    pub fn sign(self, key: &SigningKey) -> SignedWithdrawal {
        Signed::sign(self, key)
    }
}

/// A withdrawal request with the builder's signature (domain `veil/withdraw/v1`).
pub type SignedWithdrawal = Signed<WithdrawalRequest>;

/// Builder collateral accounts.
#[derive(Debug, Clone, Default)]
pub struct BuilderRegistry {
    accounts: HashMap<PublicKeyBytes, BuilderAccount>,
}

impl BuilderRegistry {
    /// The account of `builder`, if it ever deposited.
    #[must_use]
    pub fn get(&self, builder: &PublicKeyBytes) -> Option<&BuilderAccount> {
        self.accounts.get(builder)
    }

    /// Credits a deposit (observed by the node on the settlement layer).
    pub fn deposit(
        &mut self,
        builder: PublicKeyBytes,
        amount: Amount,
    ) -> Result<LedgerEntry, AuctionError> {
        if amount.0 == 0 {
            return Err(AuctionError::ZeroAmount);
        }
        if let Some(account) = self.accounts.get_mut(&builder) {
            account.balance =
                account.balance.checked_add(amount).ok_or(AuctionError::Overflow("deposit"))?;
        } else {
            let key = signed::verifying_key(&builder)?;
            self.accounts.insert(
                builder,
                BuilderAccount {
                    key,
                    balance: amount,
                    unsettled: Amount::ZERO,
                    pending_withdrawals: BTreeMap::new(),
                    withdraw_nonce: 0,
                },
            );
        }
        Ok(LedgerEntry::Deposit { builder, amount })
    }

    /// Checks a signed withdrawal request and reserves the amount until `now + delay`.
    pub fn request_withdrawal(
        &mut self,
        chain_id: ChainId,
        signed: &SignedWithdrawal,
        now: Slot,
        delay: u64,
    ) -> Result<LedgerEntry, AuctionError> {
        let r = &signed.message;
        if r.chain_id != chain_id {
            return Err(AuctionError::WrongChain { expected: chain_id, got: r.chain_id });
        }
        if r.amount.0 == 0 {
            return Err(AuctionError::ZeroAmount);
        }
        let account =
            self.accounts.get_mut(&r.builder).ok_or(AuctionError::UnknownBuilder(r.builder))?;
        if r.nonce <= account.withdraw_nonce {
            return Err(AuctionError::StaleNonce { got: r.nonce, last: account.withdraw_nonce });
        }
        signed.verify_with(&account.key)?;
        let available = account.available();
        if r.amount > available {
            return Err(AuctionError::InsufficientCollateral { available, required: r.amount });
        }
        let release = Slot(now.0.checked_add(delay).ok_or(AuctionError::Overflow("release slot"))?);
        let slot_total = account.pending_withdrawals.entry(release).or_insert(Amount::ZERO);
        *slot_total =
            slot_total.checked_add(r.amount).ok_or(AuctionError::Overflow("withdrawal"))?;
        account.withdraw_nonce = r.nonce;
        Ok(LedgerEntry::WithdrawalRequested { builder: r.builder, amount: r.amount, release })
    }

    /// Releases every withdrawal due at or before `now`, in builder key order.
    pub fn release_withdrawals(&mut self, now: Slot) -> Vec<LedgerEntry> {
        let mut keys: Vec<PublicKeyBytes> = self.accounts.keys().copied().collect();
        keys.sort_unstable();
        let mut out = Vec::new();
        for key in keys {
            let Some(account) = self.accounts.get_mut(&key) else { continue };
            let later = account.pending_withdrawals.split_off(&now.next());
            let due = std::mem::replace(&mut account.pending_withdrawals, later);
            for (_, amount) in due {
                // A withdrawal was reserved out of `available`, so the balance covers it.
                account.balance = account.balance.saturating_sub(amount);
                out.push(LedgerEntry::Withdrawal { builder: key, amount });
            }
        }
        out
    }

    /// Locks a won payment against the builder's collateral until settlement.
    pub(crate) fn lock(
        &mut self,
        builder: &PublicKeyBytes,
        amount: Amount,
    ) -> Result<(), AuctionError> {
        let account =
            self.accounts.get_mut(builder).ok_or(AuctionError::UnknownBuilder(*builder))?;
        account.unsettled =
            account.unsettled.checked_add(amount).ok_or(AuctionError::Overflow("unsettled"))?;
        Ok(())
    }

    /// Releases a locked payment that will never be settled: `unsettled` drops by `amount`,
    /// the balance stays.
    pub(crate) fn unlock(
        &mut self,
        builder: &PublicKeyBytes,
        amount: Amount,
    ) -> Result<(), AuctionError> {
        let account =
            self.accounts.get_mut(builder).ok_or(AuctionError::UnknownBuilder(*builder))?;
        account.unsettled = account.unsettled.saturating_sub(amount);
        Ok(())
    }

    /// Debits a settled payment: balance and unsettled both drop by `amount`.
    pub(crate) fn settle(
        &mut self,
        builder: &PublicKeyBytes,
        amount: Amount,
    ) -> Result<(), AuctionError> {
        self.unlock(builder, amount)?;
        let account = self.accounts.get_mut(builder).expect("unlock found the account");
        account.balance = account.balance.saturating_sub(amount);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn config(reserve: u128) -> RollupConfig {
        RollupConfig {
            reserve: Amount(reserve),
            gas_limit: 30_000_000,
            policy: RevenuePolicy::standard(7000, 2000, 1000, PublicKeyBytes([9; 32])).unwrap(),
            active: true,
        }
    }

    #[test]
    fn policy_must_be_whole_and_named() {
        let a = PublicKeyBytes([1; 32]);
        assert_eq!(
            RevenuePolicy::standard(7000, 2000, 999, a),
            Err(AuctionError::PolicyNotWhole(9999))
        );
        let mut buckets = RevenuePolicy::standard(7000, 2000, 1000, a).unwrap().buckets().to_vec();
        buckets.push(Bucket { name: "treasury".into(), bps: 0, account: a });
        assert!(matches!(RevenuePolicy::new(buckets), Err(AuctionError::BadBucketName(_))));
        let buckets = vec![Bucket { name: "treasury".into(), bps: 10_000, account: a }];
        assert_eq!(RevenuePolicy::new(buckets), Err(AuctionError::MissingBucket("user_rebates")));
        let json =
            serde_json::to_string(&RevenuePolicy::standard(10_000, 0, 0, a).unwrap()).unwrap();
        assert!(serde_json::from_str::<RevenuePolicy>(&json.replace("10000", "9000")).is_err());
    }

    #[test]
    fn updates_are_scheduled_signed_and_nonced() {
        let chain = ChainId(7);
        let admin = key(1);
        let mut reg = RollupRegistry::default();
        let register = RollupUpdate {
            chain_id: chain,
            rollup: RollupId(3),
            nonce: 1,
            effective: Slot(5),
            change: RollupChange::Register {
                admin: signed::public_key(&admin),
                config: config(10),
            },
        };
        // Signed by someone else: refused.
        assert_eq!(
            reg.apply(chain, &register.clone().sign(&key(2)), Slot(0)),
            Err(AuctionError::BadSignature)
        );
        reg.apply(chain, &register.clone().sign(&admin), Slot(0)).unwrap();
        assert!(reg.terms_for(Slot(4)).is_empty());
        assert_eq!(reg.terms_for(Slot(5))[&RollupId(3)].reserve, Amount(10));
        // Too early: slot 5 is open.
        let configure = RollupUpdate {
            nonce: 2,
            effective: Slot(5),
            change: RollupChange::Configure(config(20)),
            ..register.clone()
        };
        assert!(matches!(
            reg.apply(chain, &configure.clone().sign(&admin), Slot(6)),
            Err(AuctionError::EffectiveSlotTooEarly { .. })
        ));
        let configure = RollupUpdate { effective: Slot(8), ..configure };
        reg.apply(chain, &configure.clone().sign(&admin), Slot(6)).unwrap();
        // Replay refused.
        assert!(matches!(
            reg.apply(chain, &configure.sign(&admin), Slot(6)),
            Err(AuctionError::StaleNonce { .. })
        ));
        assert_eq!(reg.terms_for(Slot(7))[&RollupId(3)].reserve, Amount(10));
        assert_eq!(reg.terms_for(Slot(8))[&RollupId(3)].reserve, Amount(20));
        // Rotation: the old key no longer signs.
        let rotate = RollupUpdate {
            nonce: 3,
            effective: Slot(9),
            change: RollupChange::RotateAdmin { new_admin: signed::public_key(&key(4)) },
            ..register.clone()
        };
        reg.apply(chain, &rotate.sign(&admin), Slot(9)).unwrap();
        let again = RollupUpdate {
            nonce: 4,
            effective: Slot(10),
            change: RollupChange::Configure(config(30)),
            ..register
        };
        assert_eq!(
            reg.apply(chain, &again.clone().sign(&admin), Slot(9)),
            Err(AuctionError::BadSignature)
        );
        reg.apply(chain, &again.sign(&key(4)), Slot(9)).unwrap();
        assert_eq!(reg.terms_for(Slot(10))[&RollupId(3)].reserve, Amount(30));
    }

    #[test]
    fn withdrawals_wait_and_reserve_collateral() {
        let chain = ChainId(1);
        let b = key(3);
        let pk = signed::public_key(&b);
        let mut reg = BuilderRegistry::default();
        reg.deposit(pk, Amount(100)).unwrap();
        let w = WithdrawalRequest { chain_id: chain, builder: pk, amount: Amount(60), nonce: 1 };
        reg.request_withdrawal(chain, &w.clone().sign(&b), Slot(10), 5).unwrap();
        assert_eq!(reg.get(&pk).unwrap().available(), Amount(40));
        let w2 = WithdrawalRequest { amount: Amount(41), nonce: 2, ..w.clone() };
        assert!(matches!(
            reg.request_withdrawal(chain, &w2.sign(&b), Slot(10), 5),
            Err(AuctionError::InsufficientCollateral { .. })
        ));
        assert!(reg.release_withdrawals(Slot(14)).is_empty());
        assert_eq!(
            reg.release_withdrawals(Slot(15)),
            vec![LedgerEntry::Withdrawal { builder: pk, amount: Amount(60) }]
        );
        assert_eq!(reg.get(&pk).unwrap().balance(), Amount(40));
        assert_eq!(reg.get(&pk).unwrap().available(), Amount(40));
    }
}
