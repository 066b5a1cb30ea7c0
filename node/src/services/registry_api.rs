//! [`NodeApi`]'s side of the rollup and collateral routes
//! ([`veil_builder_api::server::RegistryBackend`]).
//!
//! | route | answered from |
//! |---|---|
//! | rollup updates, deposits, withdrawals | the sequencer thread ([`SequencerInput::Registry`]): applied by the auction, answered once the record is durable |
//! | rollups, one rollup, a builder's collateral | the sequencer thread's auction, read between two steps ([`SequencerInput::Read`]): always the live state, never a copy |
//! | a rollup's blocks and payouts | the data API's index (published blocks, decided outcomes, settlements) |

use std::sync::mpsc;

use veil_auction::{Auction, LedgerEntry, SignedRollupUpdate, SignedWithdrawal};
use veil_builder_api::api::registry::{
    BuilderCollateral, DepositAccepted, FeeAccountInfo, PendingWithdrawal, RollupBlock,
    RollupBlocksPage, RollupInfo, RollupList, RollupPayoutRecord, RollupPayoutsPage,
    RollupUpdateAccepted, WithdrawalAccepted,
};
use veil_builder_api::api::ApiError;
use veil_builder_api::server::RegistryBackend;
use veil_primitives::{hexbytes, ErrorCode, PublicKeyBytes, RollupId, SignedDepositNotice, Slot};
use veil_sequencer::slot::{RegistryAccepted, RegistryChange, SlotRecord};
use veil_storage::data::{DeliveryState, SlotDoc};

use super::api::NodeApi;
use super::sequencer::{RegistryRefusal, SequencerInput};

fn stopped() -> ApiError {
    ApiError::new(ErrorCode::ShuttingDown, "the sequencer thread has stopped")
}

fn info(auction: &Auction, rollup: RollupId, at: Slot) -> Option<RollupInfo> {
    let s = auction.rollups().state(rollup, at)?;
    Some(RollupInfo {
        rollup: s.rollup,
        admin: s.admin,
        last_nonce: s.last_nonce,
        current: s.current,
        scheduled: s.scheduled,
    })
}

impl NodeApi {
    /// Runs `f` on the sequencer thread's auction between two steps, with the slot in
    /// progress.
    pub(super) fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Auction, Slot) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::channel();
        self.sequencer
            .send(SequencerInput::Read(Box::new(move |auction, slot| {
                let _ = tx.send(f(auction, slot));
            })))
            .map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())
    }

    /// Hands a change to the sequencer thread and waits until it is durable or refused.
    fn change(&self, change: RegistryChange) -> Result<RegistryAccepted, ApiError> {
        let (tx, rx) = mpsc::channel();
        self.sequencer.send(SequencerInput::Registry(change, tx)).map_err(|_| stopped())?;
        match rx.recv() {
            Ok(Ok(accepted)) => Ok(accepted),
            Ok(Err(RegistryRefusal::Refused(e))) => Err(ApiError::new(e.code(), e.to_string())),
            Ok(Err(RegistryRefusal::NotDurable)) => Err(ApiError::new(
                ErrorCode::StorageUnavailable,
                RegistryRefusal::NotDurable.to_string(),
            )),
            Err(_) => Err(stopped()),
        }
    }

    fn known_rollup(&self, rollup: RollupId) -> Result<(), ApiError> {
        if self.read(move |a, _| a.rollups().admin(rollup).is_some())? {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::NotFound, format!("rollup {rollup} is not registered")))
        }
    }

    fn slot_record(&self, slot: Slot, kind: SlotDoc) -> Result<Option<SlotRecord>, ApiError> {
        let storage = |e: veil_storage::StoreError| {
            ApiError::new(ErrorCode::StorageUnavailable, e.to_string())
        };
        match self.data.doc(slot, kind).map_err(storage)? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
                ApiError::new(
                    ErrorCode::StorageUnavailable,
                    format!("stored record does not decode: {e}"),
                )
            }),
        }
    }

    /// The published slots of `rollup` from `from` on, and the `next_from` of the page.
    fn published_slots(
        &self,
        rollup: RollupId,
        from: Slot,
        limit: u32,
    ) -> Result<(Vec<Slot>, Option<u64>), ApiError> {
        self.known_rollup(rollup)?;
        let slots = self
            .data
            .rollup_slots(rollup, from, DeliveryState::Published, limit as usize)
            .map_err(|e| ApiError::new(ErrorCode::StorageUnavailable, e.to_string()))?;
        let next = (slots.len() == limit as usize)
            .then(|| slots.last().map(|s| s.0.saturating_add(1)))
            .flatten();
        Ok((slots, next))
    }
}

impl RegistryBackend for NodeApi {
    fn rollup_update(&self, update: SignedRollupUpdate) -> Result<RollupUpdateAccepted, ApiError> {
        let m = &update.message;
        let answer =
            RollupUpdateAccepted { rollup: m.rollup, nonce: m.nonce, effective: m.effective };
        self.change(RegistryChange::RollupUpdate(Box::new(update)))?;
        Ok(answer)
    }

    fn rollups(&self, after: Option<RollupId>, limit: u32) -> Result<RollupList, ApiError> {
        let limit = limit as usize;
        self.read(move |a, slot| {
            let rollups: Vec<RollupInfo> = a
                .rollups()
                .ids()
                .filter(|id| after.is_none_or(|after| *id > after))
                .filter_map(|id| info(a, id, slot))
                .take(limit)
                .collect();
            let next_cursor = (rollups.len() == limit)
                .then(|| rollups.last().map(|r| r.rollup.0.to_string()))
                .flatten();
            RollupList { slot, rollups, next_cursor }
        })
    }

    fn rollup(&self, rollup: RollupId) -> Result<RollupInfo, ApiError> {
        self.read(move |a, slot| info(a, rollup, slot))?.ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("rollup {rollup} is not registered"))
        })
    }

    fn rollup_blocks(
        &self,
        rollup: RollupId,
        from: Slot,
        limit: u32,
    ) -> Result<RollupBlocksPage, ApiError> {
        let (slots, next_from) = self.published_slots(rollup, from, limit)?;
        let mut blocks = Vec::with_capacity(slots.len());
        for slot in slots {
            if let Some(SlotRecord::Decrypted { published }) =
                self.slot_record(slot, SlotDoc::Published)?
            {
                if let Some(b) = published.blocks.into_iter().find(|b| b.rollup == rollup) {
                    blocks.push(RollupBlock { slot, txs: b.txs });
                }
            }
        }
        Ok(RollupBlocksPage { rollup, blocks, next_from })
    }

    fn rollup_payouts(
        &self,
        rollup: RollupId,
        from: Slot,
        limit: u32,
    ) -> Result<RollupPayoutsPage, ApiError> {
        let (slots, next_from) = self.published_slots(rollup, from, limit)?;
        let mut payouts = Vec::new();
        for slot in slots {
            let Some(SlotRecord::Decided { outcome, .. }) =
                self.slot_record(slot, SlotDoc::Decided)?
            else {
                continue;
            };
            let settled = self.slot_record(slot, SlotDoc::Settled)?.is_some();
            let hash = hexbytes::encode(&outcome.hash());
            for p in outcome.payouts.iter().filter(|p| p.rollup == rollup) {
                payouts.push(RollupPayoutRecord {
                    slot,
                    builder: p.builder,
                    reserve: p.reserve,
                    share: p.share,
                    buckets: p.buckets.clone(),
                    outcome_hash: hash.clone(),
                    settled,
                });
            }
        }
        Ok(RollupPayoutsPage { rollup, payouts, next_from })
    }

    fn builder_collateral(&self, builder: PublicKeyBytes) -> Result<BuilderCollateral, ApiError> {
        self.read(move |a, _| {
            a.builder(&builder).map(|acc| BuilderCollateral {
                builder,
                balance: acc.balance(),
                unsettled: acc.unsettled(),
                pending_withdrawals: acc
                    .withdrawals()
                    .map(|(release_slot, amount)| PendingWithdrawal { release_slot, amount })
                    .collect(),
                available: acc.available(),
                withdraw_nonce: acc.withdraw_nonce(),
            })
        })?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("builder {builder} never deposited"))
        })
    }

    fn fee_account(&self, payer: PublicKeyBytes) -> Result<FeeAccountInfo, ApiError> {
        let (account, pending) = self.ingress.fee_account(&payer);
        let Some(a) = account else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("fee payer {payer} never deposited and has nothing pending"),
            ));
        };
        Ok(FeeAccountInfo {
            payer,
            balance: a.balance,
            reserved: a.reserved,
            held: a.held,
            available: a.available(),
            pending: pending as u64,
        })
    }

    fn deposit(&self, notice: SignedDepositNotice) -> Result<DepositAccepted, ApiError> {
        let n = &notice.message;
        let answer = DepositAccepted {
            deposit_id: n.deposit_id,
            kind: n.kind,
            account: n.account,
            amount: n.amount,
        };
        self.change(RegistryChange::Deposit(Box::new(notice)))?;
        Ok(answer)
    }

    fn withdraw(&self, request: SignedWithdrawal) -> Result<WithdrawalAccepted, ApiError> {
        let nonce = request.message.nonce;
        let accepted = self.change(RegistryChange::Withdrawal(Box::new(request)))?;
        match accepted.entry {
            Some(LedgerEntry::WithdrawalRequested { builder, amount, release }) => {
                Ok(WithdrawalAccepted { builder, amount, nonce, release_slot: release })
            }
            _ => Err(ApiError::new(ErrorCode::StorageUnavailable, "no reservation entry")),
        }
    }
}
