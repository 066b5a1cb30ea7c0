//! [`Auction`]: the sans-IO state machine that ties registries, books and close together.
//!
//! Every input is a method call that carries the time (`now` as a slot and/or a millisecond
//! timestamp chosen by the caller); every output is a return value the node persists. Nothing
//! here reads a clock, draws randomness, or does I/O.
//!
//! # Restart
//!
//! The auction persists nothing itself. After a restart the node rebuilds it from its genesis
//! state (registries, deposits, withdrawals), then replays each slot's last persisted step in
//! slot order: [`Auction::restore_closed`] for a slot closed but not settled yet (its payments
//! locked again, its outcome awaiting `settle` or `abandon`), [`Auction::restore_settled`] for
//! a settled slot (its payments debited) and [`Auction::restore_abandoned`] for an abandoned
//! one. The result is the state the auction would have had without the restart: the same
//! balances, locked payments, available collateral and unsettled outcomes, and no slot up to
//! the last restored one opens again (so no registry change can take effect in it).
//!
//! Each restored payment is checked against the builder's available collateral, as close
//! checked it. Replaying in slot order never needs more than the original run had: a settled
//! slot debits what it had locked (available collateral does not move), an abandoned one
//! locks nothing, so a log that fits its genesis state always restores, and one that does not
//! (a winner unknown to the genesis deposits, collateral short) is refused with a typed error
//! instead of driving an account negative. Open books (bids of slots not closed before the
//! restart) are not restored here.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use tracing::{debug, info_span};
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot, TxId};

use crate::bid::{check_bid, BidContext, CheckedBid, SignedBid, VerifiedBid};
use crate::book::{BidReceipt, SlotBook};
use crate::config::AuctionConfig;
use crate::deposit::{DepositBook, DepositCredit};
use crate::metrics::AuctionStats;
use crate::outcome::{LedgerEntry, Outcome};
use crate::payment::{close, CloseInput};
use crate::registry::{
    BuilderAccount, BuilderRegistry, RollupConfig, RollupRegistry, SignedRollupUpdate,
    SignedWithdrawal,
};
use crate::wdp::MAX_ROLLUPS;
use crate::AuctionError;
use veil_primitives::signed::{self, SignedItem};
use veil_primitives::{AccountKind, CiphertextIndex, DepositNotice, SignedDepositNotice, TxMeta};

/// The slot auction of one Veil network.
#[derive(Debug)]
pub struct Auction {
    config: AuctionConfig,
    rollups: RollupRegistry,
    builders: BuilderRegistry,
    deposits: DepositBook,
    fee_accounts: HashMap<PublicKeyBytes, Amount>,
    last_opened: Option<Slot>,
    open: BTreeMap<Slot, SlotBook>,
    unsettled: BTreeMap<Slot, Outcome>,
    stats: AuctionStats,
}

impl Auction {
    /// An auction with empty registries.
    #[must_use]
    pub fn new(config: AuctionConfig) -> Auction {
        Auction {
            config,
            rollups: RollupRegistry::default(),
            builders: BuilderRegistry::default(),
            deposits: DepositBook::default(),
            fee_accounts: HashMap::new(),
            last_opened: None,
            open: BTreeMap::new(),
            unsettled: BTreeMap::new(),
            stats: AuctionStats::default(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AuctionConfig {
        &self.config
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &AuctionStats {
        &self.stats
    }

    /// A builder's collateral account.
    #[must_use]
    pub fn builder(&self, key: &PublicKeyBytes) -> Option<&BuilderAccount> {
        self.builders.get(key)
    }

    /// The book of an open slot.
    #[must_use]
    pub fn book(&self, slot: Slot) -> Option<&SlotBook> {
        self.open.get(&slot)
    }

    /// The rollup registry (admin keys).
    #[must_use]
    pub fn rollups(&self) -> &RollupRegistry {
        &self.rollups
    }

    /// The outcomes of closed slots awaiting [`Auction::settle`] or [`Auction::abandon`], in
    /// slot order (restored ones included, see [`Auction::restore_closed`]).
    pub fn unsettled_outcomes(&self) -> impl Iterator<Item = &Outcome> + '_ {
        self.unsettled.values()
    }

    /// The earliest slot a registry change may take effect in: after every opened slot.
    #[must_use]
    pub fn earliest_effective_slot(&self) -> Slot {
        self.last_opened.map_or(Slot(0), Slot::next)
    }

    /// Registers a rollup from the genesis configuration (no signature; before any slot
    /// opens). See [`RollupRegistry::register_genesis`].
    ///
    /// # Errors
    /// [`AuctionError::EffectiveSlotTooEarly`] once a slot has opened, or the registry's
    /// errors.
    pub fn register_genesis_rollup(
        &mut self,
        rollup: RollupId,
        admin: PublicKeyBytes,
        config: RollupConfig,
    ) -> Result<(), AuctionError> {
        if self.last_opened.is_some() {
            return Err(AuctionError::EffectiveSlotTooEarly {
                effective: Slot(0),
                earliest: self.earliest_effective_slot(),
            });
        }
        self.rollups.register_genesis(rollup, admin, config)
    }

    /// Registers or updates a rollup (admin-signed; effective at a future slot boundary).
    pub fn apply_rollup_update(&mut self, signed: &SignedRollupUpdate) -> Result<(), AuctionError> {
        let earliest = self.earliest_effective_slot();
        self.rollups.apply(self.config.chain_id, signed, earliest)
    }

    /// Credits a builder's deposit (the first deposit makes the builder known).
    pub fn deposit(
        &mut self,
        builder: PublicKeyBytes,
        amount: Amount,
    ) -> Result<LedgerEntry, AuctionError> {
        self.builders.deposit(builder, amount)
    }

    /// The deposit notices credited and the bridge key they must be signed by.
    #[must_use]
    pub fn deposits(&self) -> &DepositBook {
        &self.deposits
    }

    /// Sets the bridge key that deposit notices must name and be signed by (`None`: every
    /// notice is refused with [`AuctionError::UnknownBridgeKey`]).
    pub fn set_bridge_key(&mut self, bridge: Option<PublicKeyBytes>) {
        self.deposits.set_bridge(bridge);
    }

    /// Credits a user's fee account (genesis, or a fee-payer deposit notice). The payer must be
    /// a valid ed25519 key: it signs its transactions.
    ///
    /// # Errors
    /// [`AuctionError::ZeroAmount`], [`AuctionError::AmountTooLarge`],
    /// [`AuctionError::InvalidPublicKey`], [`AuctionError::Overflow`]; nothing changes then.
    pub fn deposit_fee(
        &mut self,
        payer: PublicKeyBytes,
        amount: Amount,
    ) -> Result<LedgerEntry, AuctionError> {
        if amount.0 == 0 {
            return Err(AuctionError::ZeroAmount);
        }
        if amount > crate::MAX_AMOUNT {
            return Err(AuctionError::AmountTooLarge(amount));
        }
        veil_primitives::signed::verifying_key(&payer)?;
        let balance = self.fee_accounts.get(&payer).copied().unwrap_or(Amount::ZERO);
        let balance = balance.checked_add(amount).ok_or(AuctionError::Overflow("fee deposit"))?;
        self.fee_accounts.insert(payer, balance);
        Ok(LedgerEntry::FeeDeposit { payer, amount })
    }

    /// A fee payer's balance: deposits less the fees charged (zero if it never deposited).
    #[must_use]
    pub fn fee_balance(&self, payer: &PublicKeyBytes) -> Amount {
        self.fee_accounts.get(payer).copied().unwrap_or(Amount::ZERO)
    }

    /// Every fee account with its balance.
    pub fn fee_balances(&self) -> impl Iterator<Item = (PublicKeyBytes, Amount)> + '_ {
        self.fee_accounts.iter().map(|(k, v)| (*k, *v))
    }

    /// Charges a settled transaction fee to its payer. Admission reserved it against the
    /// payer's balance, so it is covered; should it not be (a ledger restored from records
    /// that predate fee accounts), the balance stops at zero and the shortfall is returned.
    pub fn charge_fee(&mut self, payer: &PublicKeyBytes, amount: Amount) -> Amount {
        let balance = self.fee_balance(payer);
        let shortfall = amount.saturating_sub(balance);
        let left = balance.saturating_sub(amount);
        if left == Amount::ZERO {
            self.fee_accounts.remove(payer);
        } else {
            self.fee_accounts.insert(*payer, left);
        }
        shortfall
    }

    /// Credits a bridge-signed deposit notice, once per deposit id (see [`crate::deposit`]):
    /// to a builder's collateral or to a user's fee account, by its account kind. The same
    /// notice again is answered as the first time with `repeat: true` and changes nothing.
    ///
    /// # Errors
    /// Nothing changes on error: [`AuctionError::WrongChain`],
    /// [`AuctionError::UnknownBridgeKey`], [`AuctionError::BadSignature`],
    /// [`AuctionError::DepositConflict`] (another notice under the same deposit id), and the
    /// deposit's own refusals ([`AuctionError::ZeroAmount`], an invalid account key, an
    /// overflow).
    pub fn credit_deposit(
        &mut self,
        signed: &SignedDepositNotice,
    ) -> Result<DepositCredit, AuctionError> {
        if let Some(repeat) = self.deposits.check(self.config.chain_id, signed)? {
            return Ok(repeat);
        }
        self.credit(signed.message.clone())
    }

    /// Credits a notice accepted before a restart, from the node's own log: the checks of
    /// [`Auction::credit_deposit`] except the bridge key and the signature (the key may have
    /// been rotated since).
    ///
    /// # Errors
    /// As [`Auction::credit_deposit`].
    pub fn restore_deposit(
        &mut self,
        notice: &DepositNotice,
    ) -> Result<DepositCredit, AuctionError> {
        if let Some(repeat) = self.deposits.check_trusted(notice)? {
            return Ok(repeat);
        }
        self.credit(notice.clone())
    }

    fn credit(&mut self, notice: DepositNotice) -> Result<DepositCredit, AuctionError> {
        if notice.amount > crate::MAX_AMOUNT {
            return Err(AuctionError::AmountTooLarge(notice.amount));
        }
        let entry = match notice.kind {
            AccountKind::Builder => self.builders.deposit(notice.account, notice.amount)?,
            AccountKind::FeePayer => self.deposit_fee(notice.account, notice.amount)?,
        };
        self.deposits.record(notice);
        Ok(DepositCredit { entry, repeat: false })
    }

    /// Reserves a signed withdrawal; it is released `withdrawal_delay_slots` after `now`.
    pub fn request_withdrawal(
        &mut self,
        signed: &SignedWithdrawal,
        now: Slot,
    ) -> Result<LedgerEntry, AuctionError> {
        self.builders.request_withdrawal(
            self.config.chain_id,
            signed,
            now,
            self.config.withdrawal_delay_slots,
        )
    }

    /// Releases the withdrawals due at or before `now`.
    pub fn release_withdrawals(&mut self, now: Slot) -> Vec<LedgerEntry> {
        self.builders.release_withdrawals(now)
    }

    /// Opens bidding for `slot` until `deadline_ms`, freezing the rollup terms in force.
    /// Slots open in strictly increasing order.
    pub fn open_slot(&mut self, slot: Slot, deadline_ms: u64) -> Result<(), AuctionError> {
        if let Some(last) = self.last_opened {
            if slot <= last {
                return Err(AuctionError::SlotOutOfOrder { slot, last });
            }
        }
        let terms = self.rollups.terms_for(slot);
        let active = terms.values().filter(|c| c.active).count();
        if active > MAX_ROLLUPS {
            return Err(AuctionError::TooManyRollups { count: active, max: MAX_ROLLUPS });
        }
        self.last_opened = Some(slot);
        self.open.insert(slot, SlotBook::new(slot, deadline_ms, terms));
        self.stats.slots_opened += 1;
        Ok(())
    }

    fn context(&self, bid: &SignedBid, now_ms: u64) -> Result<BidContext<'_>, AuctionError> {
        let book =
            self.open.get(&bid.message.slot).ok_or(AuctionError::SlotNotOpen(bid.message.slot))?;
        Ok(BidContext {
            config: &self.config,
            slot: book.slot(),
            deadline_ms: book.deadline_ms(),
            now_ms,
            terms: book.terms(),
            available: self.builders.get(&bid.message.builder).map(BuilderAccount::available),
        })
    }

    fn check(
        &self,
        signed: SignedBid,
        index: &impl CiphertextIndex,
        now_ms: u64,
    ) -> Result<CheckedBid, AuctionError> {
        let ctx = self.context(&signed, now_ms)?;
        check_bid(signed, &ctx, index)
    }

    fn admit(
        &mut self,
        checked: Result<CheckedBid, AuctionError>,
    ) -> Result<BidReceipt, AuctionError> {
        let result = checked.and_then(|c| {
            let slot = c.signed.message.slot;
            let book = self.open.get_mut(&slot).ok_or(AuctionError::SlotNotOpen(slot))?;
            book.insert(c, self.config.max_bids_per_builder_per_slot)
        });
        match &result {
            Ok(receipt) => {
                self.stats.bids_accepted += 1;
                if receipt.replaced.is_some() {
                    self.stats.bids_replaced += 1;
                }
            }
            Err(e) => self.stats.reject(e.code()),
        }
        result
    }

    /// Validates one bid completely (signature checked on its own) and adds it to its book.
    pub fn submit_bid(
        &mut self,
        signed: SignedBid,
        index: &impl CiphertextIndex,
        now_ms: u64,
    ) -> Result<BidReceipt, AuctionError> {
        self.stats.bids_received += 1;
        let checked = self.check(signed, index, now_ms).and_then(|c| {
            let account = self
                .builders
                .get(&c.signed.message.builder)
                .ok_or(AuctionError::UnknownBuilder(c.signed.message.builder))?;
            signed::verify(account.key(), &c.message, &c.signed.signature)?;
            Ok(c)
        });
        self.admit(checked)
    }

    /// Validates one bid whose signature the shell verified already ([`VerifiedBid`]) and adds
    /// it to its book: every check of [`Auction::submit_bid`] but the signature (the builder's
    /// registered key is the key the bid names, which signed it).
    pub fn submit_verified_bid(
        &mut self,
        bid: VerifiedBid,
        index: &impl CiphertextIndex,
        now_ms: u64,
    ) -> Result<BidReceipt, AuctionError> {
        self.stats.bids_received += 1;
        let checked = self.check(bid.into_inner(), index, now_ms);
        self.admit(checked)
    }

    /// Validates many bids at once and adds the valid ones, in order; one result per bid.
    ///
    /// The checks that need no book state run in parallel, signatures are batch-verified in
    /// parallel chunks, then sequence numbers and caps are applied in submission order. A
    /// rejected bid never affects another.
    pub fn submit_bids(
        &mut self,
        bids: Vec<SignedBid>,
        index: &(impl CiphertextIndex + Sync),
        now_ms: u64,
    ) -> Vec<Result<BidReceipt, AuctionError>> {
        self.stats.bids_received += bids.len() as u64;
        let this = &*self;
        let mut checked: Vec<Result<CheckedBid, AuctionError>> =
            bids.into_par_iter().with_min_len(16).map(|b| this.check(b, index, now_ms)).collect();
        let (positions, items): (Vec<usize>, Vec<SignedItem<'_>>) = checked
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.as_ref().ok()?;
                let account = this.builders.get(&c.signed.message.builder)?;
                Some((
                    i,
                    SignedItem {
                        key: account.key(),
                        message: &c.message,
                        signature: &c.signed.signature,
                    },
                ))
            })
            .unzip();
        let verdicts = signed::verify_many(&items, this.config.signature_batch_size);
        drop(items);
        self.stats.signatures_batched += verdicts.len() as u64;
        for (i, ok) in positions.into_iter().zip(verdicts) {
            if !ok {
                checked[i] = Err(AuctionError::BadSignature);
            }
        }
        checked.into_iter().map(|c| self.admit(c)).collect()
    }

    /// Closes `slot` at or after its deadline: winners, payments, split, fallback blocks for
    /// unsold rollups (from `pending`, the pool's pending ciphertexts) and ledger entries.
    /// The payments are locked against the winners' collateral until [`Auction::settle`].
    pub fn close_slot(
        &mut self,
        slot: Slot,
        now_ms: u64,
        pending: &[(TxId, TxMeta)],
    ) -> Result<Outcome, AuctionError> {
        let span = info_span!("auction_close", slot = slot.0);
        let _guard = span.enter();
        let book = self.open.get(&slot).ok_or(AuctionError::SlotNotOpen(slot))?;
        if now_ms < book.deadline_ms() {
            return Err(AuctionError::DeadlineNotReached {
                slot,
                deadline_ms: book.deadline_ms(),
                now_ms,
            });
        }
        let bids = book.sorted_bids();
        let available: HashMap<PublicKeyBytes, Amount> = bids
            .iter()
            .filter_map(|b| {
                let key = b.signed.message.builder;
                self.builders.get(&key).map(|a| (key, a.available()))
            })
            .collect();
        let (outcome, close_stats) = close(&CloseInput {
            chain_id: self.config.chain_id,
            slot,
            rule: self.config.payment_rule,
            node_budget: self.config.search_node_budget,
            terms: book.terms(),
            bids: &bids,
            available: &available,
            pending,
        })?;
        for w in &outcome.winners {
            self.builders.lock(&w.builder, w.payment)?;
        }
        debug!(winners = outcome.winners.len(), exact = outcome.exact, "closed");
        self.open.remove(&slot);
        self.stats.slots_closed += 1;
        if !outcome.exact {
            self.stats.slots_inexact += 1;
        }
        self.stats.last_close = Some((slot, close_stats));
        self.unsettled.insert(slot, outcome.clone());
        Ok(outcome)
    }

    /// Settles a closed slot: debits the winners' collateral and returns the ledger entries
    /// (debits and payouts) to persist.
    pub fn settle(&mut self, slot: Slot) -> Result<Vec<LedgerEntry>, AuctionError> {
        let outcome = self.unsettled.remove(&slot).ok_or(AuctionError::NothingToSettle(slot))?;
        for w in &outcome.winners {
            self.builders.settle(&w.builder, w.payment)?;
        }
        self.stats.slots_settled += 1;
        Ok(outcome.ledger)
    }

    /// Abandons a closed slot that will never be settled (its block could not be decrypted):
    /// every winner's locked payment is released, nothing is debited or paid out. Returns the
    /// abandoned outcome.
    ///
    /// # Errors
    /// [`AuctionError::NothingToSettle`] if the slot has no unsettled outcome.
    pub fn abandon(&mut self, slot: Slot) -> Result<Outcome, AuctionError> {
        let outcome = self.unsettled.remove(&slot).ok_or(AuctionError::NothingToSettle(slot))?;
        for w in &outcome.winners {
            self.builders.unlock(&w.builder, w.payment)?;
        }
        self.stats.slots_abandoned += 1;
        Ok(outcome)
    }

    /// Restores a slot that was closed before a restart and is neither settled nor abandoned
    /// yet: the winners' payments are locked again, exactly as [`Auction::close_slot`] locked
    /// them, and `outcome` waits for [`Auction::settle`] or [`Auction::abandon`]. No slot up to
    /// `outcome.slot` opens again and no registry change can take effect in it.
    ///
    /// Call the `restore_*` methods on an auction rebuilt from its genesis state (registries,
    /// deposits and withdrawals restored first), before any slot opens, once per slot whose
    /// latest record says how far it got, in slot order.
    ///
    /// # Errors
    /// Nothing changes on error:
    /// - [`AuctionError::WrongChain`] for an outcome of another network;
    /// - [`AuctionError::SlotOutOfOrder`] unless the slot is after every slot opened or
    ///   restored so far (a slot restored twice, or out of order);
    /// - [`AuctionError::UnknownBuilder`] for a winner that never deposited;
    /// - [`AuctionError::InsufficientCollateral`] for a winner whose payment exceeds its
    ///   available collateral (close never makes such an outcome: the records do not fit this
    ///   auction's deposits).
    pub fn restore_closed(&mut self, outcome: Outcome) -> Result<(), AuctionError> {
        self.check_restorable(&outcome)?;
        for w in &outcome.winners {
            self.builders.lock(&w.builder, w.payment)?;
        }
        debug!(slot = outcome.slot.0, winners = outcome.winners.len(), "restored closed slot");
        self.last_opened = Some(outcome.slot);
        self.unsettled.insert(outcome.slot, outcome);
        Ok(())
    }

    /// Restores a slot that was settled before a restart: the winners' payments are debited
    /// from their collateral exactly as [`Auction::close_slot`] then [`Auction::settle`] did
    /// (the ledger entries were persisted then and are not returned again). No slot up to
    /// `outcome.slot` opens again.
    ///
    /// # Errors
    /// As [`Auction::restore_closed`]; nothing changes on error.
    pub fn restore_settled(&mut self, outcome: &Outcome) -> Result<(), AuctionError> {
        self.check_restorable(outcome)?;
        for w in &outcome.winners {
            self.builders.lock(&w.builder, w.payment)?;
            self.builders.settle(&w.builder, w.payment)?;
        }
        debug!(slot = outcome.slot.0, winners = outcome.winners.len(), "restored settled slot");
        self.last_opened = Some(outcome.slot);
        Ok(())
    }

    /// Restores a slot that was abandoned before a restart ([`Auction::abandon`]: its block
    /// could not be decrypted): its payments were released and nothing was debited, so only
    /// the slot order is restored. No slot up to `slot` opens again.
    ///
    /// # Errors
    /// [`AuctionError::SlotOutOfOrder`] unless `slot` is after every slot opened or restored
    /// so far; nothing changes on error.
    pub fn restore_abandoned(&mut self, slot: Slot) -> Result<(), AuctionError> {
        self.check_restore_order(slot)?;
        self.last_opened = Some(slot);
        Ok(())
    }

    fn check_restore_order(&self, slot: Slot) -> Result<(), AuctionError> {
        match self.last_opened {
            Some(last) if slot <= last => Err(AuctionError::SlotOutOfOrder { slot, last }),
            _ => Ok(()),
        }
    }

    /// The checks of `restore_closed` and `restore_settled`, all before anything changes.
    fn check_restorable(&self, outcome: &Outcome) -> Result<(), AuctionError> {
        if outcome.chain_id != self.config.chain_id {
            return Err(AuctionError::WrongChain {
                expected: self.config.chain_id,
                got: outcome.chain_id,
            });
        }
        self.check_restore_order(outcome.slot)?;
        // Winners are distinct builders, but sum per builder anyway: one account, one check.
        let mut owed: BTreeMap<PublicKeyBytes, Amount> = BTreeMap::new();
        for w in &outcome.winners {
            let total = owed.entry(w.builder).or_insert(Amount::ZERO);
            *total = total.checked_add(w.payment).ok_or(AuctionError::Overflow("restore"))?;
        }
        for (builder, required) in owed {
            let account =
                self.builders.get(&builder).ok_or(AuctionError::UnknownBuilder(builder))?;
            let available = account.available();
            if required > available {
                return Err(AuctionError::InsufficientCollateral { available, required });
            }
        }
        Ok(())
    }
}
