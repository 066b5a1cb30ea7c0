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

use veil_primitives::Amount;

/// One fee payer's pending transactions: how many, and its lone (non-bundle) transactions by
/// fee, which is what a payer at its quota may replace.
///
/// Most payers have one transaction pending, so one is held inline and a tree is allocated
/// only for a second (a one-element `BTreeSet` costs a ~300-byte node per payer).
#[derive(Debug, Default)]
pub(crate) struct Payer {
    count: usize,
    lone: Lone,
}

#[derive(Debug, Default)]
enum Lone {
    #[default]
    None,
    One(Amount, u64),
    Many(BTreeSet<(Amount, u64)>),
}

impl Payer {
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn add(&mut self, fee: Amount, seq: u64, lone: bool) {
        self.count += 1;
        if !lone {
            return;
        }
        self.lone = match std::mem::take(&mut self.lone) {
            Lone::None => Lone::One(fee, seq),
            Lone::One(f, s) => Lone::Many([(f, s), (fee, seq)].into()),
            Lone::Many(mut set) => {
                set.insert((fee, seq));
                Lone::Many(set)
            }
        };
    }

    /// Removes one transaction; true when the payer has none left.
    pub(crate) fn remove(&mut self, fee: Amount, seq: u64) -> bool {
        self.count = self.count.saturating_sub(1);
        match &mut self.lone {
            Lone::One(f, s) if (*f, *s) == (fee, seq) => self.lone = Lone::None,
            Lone::Many(set) => {
                set.remove(&(fee, seq));
                self.lone = match set.len() {
                    0 => Lone::None,
                    1 => {
                        let (f, s) = *set.first().expect("one left");
                        Lone::One(f, s)
                    }
                    _ => return self.count == 0,
                };
            }
            _ => {}
        }
        self.count == 0
    }

    /// Lone transactions, lowest fee first, then oldest first.
    pub(crate) fn lowest_lone(&self) -> Box<dyn Iterator<Item = (Amount, u64)> + '_> {
        match &self.lone {
            Lone::None => Box::new(std::iter::empty()),
            Lone::One(f, s) => Box::new(std::iter::once((*f, *s))),
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
