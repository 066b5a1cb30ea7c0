//! [`DepositBook`]: bridge-signed deposit notices credited once per settlement-layer deposit
//! id (see [`veil_primitives::deposit`]).
//!
//! A notice is credited only if it names the configured bridge key and is signed by it. The
//! book remembers every credited notice by its deposit id: the same notice again is answered
//! as the first time ([`DepositCredit::repeat`]) and not credited again, so a bridge (or a
//! client) may resend a notice whose answer it lost; a *different* notice under a used id is
//! refused ([`AuctionError::DepositConflict`]). A notice credits either a builder's collateral
//! ([`AccountKind::Builder`]) or a user's fee account ([`AccountKind::FeePayer`]).

use std::collections::HashMap;

use veil_primitives::{AccountKind, DepositId, DepositNotice, PublicKeyBytes, SignedDepositNotice};

use crate::outcome::LedgerEntry;
use crate::AuctionError;

/// The ledger entry a notice credits.
pub(crate) fn entry(n: &DepositNotice) -> LedgerEntry {
    match n.kind {
        AccountKind::Builder => LedgerEntry::Deposit { builder: n.account, amount: n.amount },
        AccountKind::FeePayer => LedgerEntry::FeeDeposit { payer: n.account, amount: n.amount },
    }
}

/// The answer to a deposit notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositCredit {
    /// The ledger entry of the credit (the first one, for a repeat).
    pub entry: LedgerEntry,
    /// True if the notice had been credited already: nothing changed now.
    pub repeat: bool,
}

/// The configured bridge key and every credited notice. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct DepositBook {
    bridge: Option<PublicKeyBytes>,
    credited: HashMap<DepositId, DepositNotice>,
}

impl DepositBook {
    /// The bridge key notices must be signed by (`None`: every notice is refused).
    #[must_use]
    pub fn bridge(&self) -> Option<PublicKeyBytes> {
        self.bridge
    }

    /// Sets the bridge key.
    pub fn set_bridge(&mut self, bridge: Option<PublicKeyBytes>) {
        self.bridge = bridge;
    }

    /// The notice credited under `id`, if any.
    #[must_use]
    pub fn get(&self, id: &DepositId) -> Option<&DepositNotice> {
        self.credited.get(id)
    }

    /// Checks a signed notice: chain, bridge key, signature, account kind. Returns the
    /// answer for a repeat (nothing to credit), `None` for a new notice to credit.
    pub(crate) fn check(
        &self,
        chain_id: veil_primitives::ChainId,
        signed: &SignedDepositNotice,
    ) -> Result<Option<DepositCredit>, AuctionError> {
        let n = &signed.message;
        if n.chain_id != chain_id {
            return Err(AuctionError::WrongChain { expected: chain_id, got: n.chain_id });
        }
        if self.bridge != Some(n.bridge) {
            return Err(AuctionError::UnknownBridgeKey(n.bridge));
        }
        signed.verify(&n.bridge)?;
        self.check_trusted(n)
    }

    /// The checks that do not need the signature (a notice replayed from the node's own log
    /// was verified when it was accepted).
    pub(crate) fn check_trusted(
        &self,
        n: &DepositNotice,
    ) -> Result<Option<DepositCredit>, AuctionError> {
        match self.credited.get(&n.deposit_id) {
            Some(first) if first == n => Ok(Some(DepositCredit { entry: entry(n), repeat: true })),
            Some(_) => Err(AuctionError::DepositConflict(n.deposit_id)),
            None => Ok(None),
        }
    }

    /// Remembers a credited notice.
    pub(crate) fn record(&mut self, n: DepositNotice) {
        self.credited.insert(n.deposit_id, n);
    }
}
