//! Per-fee-payer state of the pool: the index behind quotas and replacement ([`Payer`]) and
//! the fee accounts behind reservations ([`FeeAccount`]).
//!
//! A fee account mirrors the ledger's balance of one payer (the sequencer owns the ledger and
//! tells the pool about deposits and settled charges) and adds what only the pool knows: how
//! much the payer's pending transactions reserve, and how much its committed transactions
//! hold until their fees are settled. The available balance is what is left; admission
//! reserves a transaction's `max_fee` against it, so a payer never has more pending and
//! unsettled than it can pay.

use std::collections::BTreeSet;

use veil_primitives::{Amount, PublicKeyBytes};

/// One fee payer as the pool knows it: its key, its fee account, how many transactions it
/// has pending, and its lone (non-bundle) transactions by fee, which is what a payer at its
/// quota may replace. Kept in a slab; transactions name their payer by handle.
///
/// Most payers have one transaction pending, so one is held inline, by its entry's handle,
/// and a tree is allocated only for a second (a one-element `BTreeSet` costs a ~300-byte node
/// per payer).
#[derive(Debug)]
pub(crate) struct Payer {
    pub(crate) key: PublicKeyBytes,
    pub(crate) account: FeeAccount,
    count: u32,
    lone: Lone,
}

#[derive(Debug, Default)]
enum Lone {
    #[default]
    None,
    /// The handle of the one lone entry.
    One(u32),
    /// (fee, sequence number) of each lone entry. Boxed on purpose: an inline `BTreeSet`
    /// (24 bytes) would make every payer 16 bytes larger, and few payers have two.
    #[allow(clippy::box_collection)]
    Many(Box<BTreeSet<(Amount, u64)>>),
}

impl Payer {
    pub(crate) fn new(key: PublicKeyBytes) -> Payer {
        Payer { key, account: FeeAccount::default(), count: 0, lone: Lone::None }
    }

    pub(crate) fn count(&self) -> usize {
        self.count as usize
    }

    /// Whether nothing is left to remember: no pending transaction, an empty account.
    pub(crate) fn is_idle(&self) -> bool {
        self.count == 0 && self.account.is_empty()
    }

    /// Adds the entry `handle` (fee `fee`, sequence number `seq`); `lone` if not a bundle part.
    /// `fee_seq` reads (fee, seq) of an entry by handle.
    pub(crate) fn add(
        &mut self,
        handle: u32,
        fee: Amount,
        seq: u64,
        lone: bool,
        fee_seq: impl Fn(u32) -> (Amount, u64),
    ) {
        self.count += 1;
        if !lone {
            return;
        }
        self.lone = match std::mem::take(&mut self.lone) {
            Lone::None => Lone::One(handle),
            Lone::One(h) => Lone::Many(Box::new([fee_seq(h), (fee, seq)].into())),
            Lone::Many(mut set) => {
                set.insert((fee, seq));
                Lone::Many(set)
            }
        };
    }

    /// Removes the entry `handle` (fee `fee`, sequence number `seq`).
    pub(crate) fn remove(
        &mut self,
        handle: u32,
        fee: Amount,
        seq: u64,
        handle_of: impl Fn(u64) -> u32,
    ) {
        self.count = self.count.saturating_sub(1);
        match &mut self.lone {
            Lone::One(h) if *h == handle => self.lone = Lone::None,
            Lone::Many(set) => {
                set.remove(&(fee, seq));
                self.lone = match set.len() {
                    0 => Lone::None,
                    1 => Lone::One(handle_of(set.first().expect("one left").1)),
                    _ => return,
                };
            }
            _ => {}
        }
    }

    /// Lone transactions as (fee, sequence number), lowest fee first, then oldest first.
    pub(crate) fn lowest_lone<'a>(
        &'a self,
        fee_seq: impl Fn(u32) -> (Amount, u64) + 'a,
    ) -> Box<dyn Iterator<Item = (Amount, u64)> + 'a> {
        match &self.lone {
            Lone::None => Box::new(std::iter::empty()),
            Lone::One(h) => Box::new(std::iter::once(fee_seq(*h))),
            Lone::Many(set) => Box::new(set.iter().copied()),
        }
    }
}

/// A fee payer's account as the pool sees it. All arithmetic saturates: the ledger is the
/// source of truth, and after a crash between a slot's decryption and its settlement the
/// mirror may briefly hold less than it releases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeeAccount {
    /// The ledger's balance: deposits less settled charges.
    pub balance: Amount,
    /// The `max_fee` of the payer's pending transactions.
    pub reserved: Amount,
    /// The `max_fee` of the payer's committed transactions whose fees are not settled yet.
    pub held: Amount,
}

impl FeeAccount {
    /// What admission may still reserve: balance less reserved and held.
    #[must_use]
    pub fn available(&self) -> Amount {
        self.balance.saturating_sub(self.reserved).saturating_sub(self.held)
    }

    pub(crate) fn reserve(&mut self, fee: Amount) {
        self.reserved = self.reserved.saturating_add(fee);
    }

    pub(crate) fn unreserve(&mut self, fee: Amount) {
        self.reserved = self.reserved.saturating_sub(fee);
    }

    pub(crate) fn hold(&mut self, fee: Amount) {
        self.held = self.held.saturating_add(fee);
    }

    /// A settled charge: the hold on it ends and the balance is the ledger's after it.
    pub(crate) fn settle(&mut self, fee: Amount, balance: Amount) {
        self.balance = balance;
        self.held = self.held.saturating_sub(fee);
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == FeeAccount::default()
    }
}
