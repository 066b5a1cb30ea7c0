//! [`NodeApi`]: the node's implementation of the HTTP API's backend
//! ([`veil_builder_api::server::ApiBackend`]) over its services and stores.
//!
//! | route | answered from |
//! |---|---|
//! | schedule | the slot clock, the live rollup registry (read on the sequencer thread), the committee key |
//! | rollups, collateral, deposits, withdrawals | see [`super::registry_api`] |
//! | bids | the [`BidIntake`] (the sequencer thread's input channel, as for in-process builders) |
//! | outcome, blocks, data API | the data API's index ([`DataStore`]), fed from the record log by the [`super::indexer::Indexer`] |
//! | mempool page and stream | the ingress's feed, without the ids in flight (the sequencer's in-flight set) |
//! | transaction status | the index (published fates), the ingress's receipt store (committed), the pool (pending) |
//! | readiness, metrics | the sequencer thread's liveness, the keyper links, the metrics registry |
//!
//! Nothing here takes a lock the slot thread takes on its hot path: bids, registry changes and
//! registry reads go over its channel, everything else is read from stores it already writes
//! or from copies made at start.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use veil_auction::{BidId, VerifiedBid};
use veil_builder_api::api::{
    ApiError, BidReceived, BidsPage, BlockDelivered, BlocksPage, DeliveryState, MempoolBundle,
    MempoolPage, MempoolTx, Readiness, RollupSchedule, SlotBlocks, SlotOutcome, SlotSchedule,
    SlotTimes, TopBid, TxState, TxStatus,
};
use veil_builder_api::server::{ApiBackend, DataFilter, MempoolRead, MempoolWatch, PageRequest};
use veil_mempool::pool::FeedCursor;
use veil_primitives::{hexbytes, ChainId, CiphertextIndex, Eon, ErrorCode, Slot, TxId};

/// Pool entries a mempool read scans at most for one page (a rollup filter passes over the
/// others): a page never holds the pool's lock for long.
const MEMPOOL_SCAN: usize = 8_192;

/// Reads one mempool page from the ingress's feed: pending transactions after
/// `read.cursor`, oldest first, filtered by rollup, without the ones in flight (committed in
/// a signed commitment, not yet published: the auction refuses bids naming them).
fn mempool_page(
    ingress: &Ingress,
    in_flight: &Mutex<HashSet<TxId>>,
    read: &MempoolRead,
) -> MempoolPage {
    let limit = read.limit.max(1) as usize;
    let mut cursor = read.cursor;
    let mut txs = Vec::with_capacity(limit.min(256));
    let mut skipped = 0;
    let mut scanned = 0;
    'pages: while txs.len() < limit && scanned < MEMPOOL_SCAN {
        let batch = ingress.feed(FeedCursor(cursor), (limit - txs.len()).clamp(64, 1024));
        if batch.items.is_empty() {
            skipped += batch.skipped;
            cursor = batch.next.0;
            break;
        }
        let end = batch.next.0;
        // The pool's lock is released: take the in-flight set's alone, once per batch.
        let taken: HashSet<TxId> = {
            let in_flight = in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            batch.items.iter().filter(|i| in_flight.contains(&i.id)).map(|i| i.id).collect()
        };
        for item in batch.items {
            skipped += item.seq.0 - cursor;
            cursor = item.seq.0 + 1;
            scanned += 1;
            if taken.contains(&item.id) {
                skipped += 1;
                continue;
            }
            if read.rollup.is_some_and(|r| r != item.meta.rollup) {
                continue;
            }
            txs.push(MempoolTx {
                seq: item.seq.0,
                id: item.id,
                eon: item.meta.eon,
                rollup: item.meta.rollup,
                fee_payer: item.meta.fee_payer,
                max_fee: item.meta.max_fee,
                gas_limit: item.meta.gas_limit,
                expiry_slot: item.meta.expiry_slot,
                bundle: item.meta.bundle.map(|b| MempoolBundle {
                    id: b.id,
                    index: b.index,
                    count: b.count,
                }),
                size: u32::try_from(item.body.len()).unwrap_or(u32::MAX),
                ciphertext: read.bodies.then(|| hexbytes::encode(&item.body)),
            });
            if txs.len() == limit {
                break 'pages;
            }
        }
        // The batch was read whole: what follows its last item up to `end` left the pool.
        skipped += end - cursor;
        cursor = end;
    }
    let caught_up = cursor >= ingress.feed_updates().borrow().0;
    // From 0 the client asked for whatever is pending: what left before is not news to it.
    let skipped = if read.cursor == 0 { 0 } else { skipped };
    MempoolPage { txs, next_cursor: cursor, skipped, caught_up }
}

/// A mempool stream's wake-up: the ingress's watch of the feed's durable end.
struct FeedWatch(tokio::sync::watch::Receiver<FeedCursor>);

impl MempoolWatch for FeedWatch {
    fn changed(&mut self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.0.changed().await.is_ok() })
    }
}
use veil_sequencer::slot::SlotRecord;
use veil_sequencer::SlotClock;
use veil_storage::data::{self, DataStore, SlotDoc, TxFate};
use veil_storage::StoreError;

use super::bids::{BidIntake, TopBids};
use super::ingress::{Departure, Ingress};
use super::keyper_server::KeyperLinks;
use super::sequencer::{now_ms, SequencerInput};
use crate::metrics::NodeMetrics;

/// What [`NodeApi`] reads; see the module docs.
pub struct NodeApi {
    /// The Veil network.
    pub chain_id: ChainId,
    /// The committee's eon.
    pub eon: Eon,
    /// The committee's public key set, as JSON.
    pub committee: serde_json::Value,
    /// Keypers a slot needs (threshold + 1).
    pub keypers_needed: u64,
    /// The slot clock.
    pub clock: SlotClock,
    /// The sequencer thread's input: registry changes and live reads of the registries.
    pub sequencer: mpsc::Sender<SequencerInput>,
    /// The bid intake.
    pub intake: BidIntake,
    /// The data API's index.
    pub data: Arc<DataStore>,
    /// The top bid of each open slot, kept by the sequencer thread.
    pub top_bids: TopBids,
    /// The ingress (pool and receipts).
    pub ingress: Arc<Ingress>,
    /// The ciphertexts committed and not yet published ([`super::sequencer::SequencerService::in_flight`]):
    /// the mempool reads leave them out.
    pub in_flight: Arc<Mutex<HashSet<TxId>>>,
    /// The keyper endpoint's links.
    pub keypers: KeyperLinks,
    /// The sequencer thread's liveness.
    pub running: Arc<AtomicBool>,
    /// The metrics registry.
    pub metrics: Arc<NodeMetrics>,
}

impl std::fmt::Debug for NodeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeApi").field("chain_id", &self.chain_id).finish_non_exhaustive()
    }
}

fn storage(e: StoreError) -> ApiError {
    ApiError::new(ErrorCode::StorageUnavailable, e.to_string())
}

fn corrupt(what: &str, e: serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::StorageUnavailable, format!("stored {what} does not decode: {e}"))
}

fn filter(f: &DataFilter) -> data::Filter {
    data::Filter { slot: f.slot, builder: f.builder, rollup: f.rollup, below_slot: None }
}

fn next_cursor<T>(rows: &[(u64, T)], page: PageRequest) -> Option<String> {
    (rows.len() == page.limit as usize).then(|| rows.last().map(|r| r.0.to_string())).flatten()
}

impl NodeApi {
    fn record(&self, slot: Slot, kind: SlotDoc) -> Result<Option<SlotRecord>, ApiError> {
        match self.data.doc(slot, kind).map_err(storage)? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body).map(Some).map_err(|e| corrupt("record", e)),
        }
    }

    fn slot_times(&self, slot: Slot) -> SlotTimes {
        SlotTimes {
            slot,
            start_ms: self.clock.start_ms(slot),
            bidding_deadline_ms: self.clock.deadline_ms(slot),
        }
    }
}

impl ApiBackend for NodeApi {
    fn schedule(&self) -> Result<SlotSchedule, ApiError> {
        let now = now_ms();
        let current = self.clock.slot_at(now);
        let terms = self
            .read(move |a, _| {
                a.rollups()
                    .ids()
                    .filter_map(|id| Some((id, a.rollups().state(id, current)?.current?)))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| ApiError::new(ErrorCode::NotReady, e.message))?;
        Ok(SlotSchedule {
            chain_id: self.chain_id,
            now_ms: now,
            slot_ms: self.clock.slot_ms.get(),
            bid_window_ms: self.clock.bid_window_ms,
            current: self.slot_times(current),
            current_open: now <= self.clock.deadline_ms(current),
            next: self.slot_times(current.next()),
            eon: self.eon,
            committee: self.committee.clone(),
            rollups: terms
                .into_iter()
                .map(|(rollup, c)| RollupSchedule {
                    rollup,
                    reserve: c.reserve,
                    gas_limit: c.gas_limit,
                    active: c.active,
                })
                .collect(),
        })
    }

    fn submit_bids(
        &self,
        bids: Vec<VerifiedBid>,
    ) -> Result<Vec<Result<BidId, ApiError>>, ApiError> {
        let verdicts = self
            .intake
            .submit(bids)
            .map_err(|e| ApiError::new(ErrorCode::ShuttingDown, e.to_string()))?;
        Ok(verdicts
            .into_iter()
            .map(|v| v.map_err(|e| ApiError::new(e.code(), e.to_string())))
            .collect())
    }

    fn outcome(&self, slot: Slot) -> Result<SlotOutcome, ApiError> {
        let Some(SlotRecord::Decided { commitment, outcome }) =
            self.record(slot, SlotDoc::Decided)?
        else {
            return Err(ApiError::new(ErrorCode::NotFound, format!("slot {slot} is not decided")));
        };
        let signed = match self.record(slot, SlotDoc::Signed)? {
            Some(SlotRecord::Signed { signed }) => Some(signed),
            _ => None,
        };
        Ok(SlotOutcome {
            slot,
            outcome_hash: hexbytes::encode(&outcome.hash()),
            commitment,
            outcome: *outcome,
            signed,
        })
    }

    fn blocks(&self, slot: Slot) -> Result<SlotBlocks, ApiError> {
        match self.record(slot, SlotDoc::Published)? {
            Some(SlotRecord::Decrypted { published }) => Ok(SlotBlocks { slot, published }),
            _ => Err(ApiError::new(ErrorCode::NotFound, format!("slot {slot} is not published"))),
        }
    }

    fn bids_received(&self, f: &DataFilter, page: PageRequest) -> Result<BidsPage, ApiError> {
        // Bids are sealed: a slot's bids are listed once its bidding deadline has passed.
        let now = now_ms();
        let current = self.clock.slot_at(now);
        let sealed_from =
            if now <= self.clock.deadline_ms(current) { current } else { current.next() };
        let f = data::Filter { below_slot: Some(sealed_from), ..filter(f) };
        let rows = self.data.bids(&f, page.before, page.limit as usize).map_err(storage)?;
        let next_cursor = next_cursor(&rows, page);
        let bids = rows
            .into_iter()
            .map(|(_, r)| {
                Ok(BidReceived {
                    bid_id: BidId(r.id),
                    slot: r.slot,
                    builder: r.builder,
                    sequence: r.sequence,
                    amount: r.amount,
                    rollups: r.rollups,
                    received_ms: r.received_ms,
                    bid: serde_json::from_slice(&r.body).map_err(|e| corrupt("bid", e))?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(BidsPage { bids, next_cursor })
    }

    fn blocks_delivered(&self, f: &DataFilter, page: PageRequest) -> Result<BlocksPage, ApiError> {
        let rows =
            self.data.delivered(&filter(f), page.before, page.limit as usize).map_err(storage)?;
        let next_cursor = next_cursor(&rows, page);
        let blocks = rows
            .into_iter()
            .map(|(_, r)| BlockDelivered {
                slot: r.slot,
                rollup: r.rollup,
                builder: r.builder,
                payment: r.payment,
                txs: r.txs,
                included: r.included,
                failed: r.failed,
                dropped: r.dropped,
                state: match r.state {
                    data::DeliveryState::Committed => DeliveryState::Committed,
                    data::DeliveryState::Published => DeliveryState::Published,
                    data::DeliveryState::Undecryptable => DeliveryState::Undecryptable,
                },
            })
            .collect();
        Ok(BlocksPage { blocks, next_cursor })
    }

    fn tx_status(&self, tx: TxId) -> Result<TxStatus, ApiError> {
        let receipt = self.ingress.receipt(&tx).map_err(storage)?;
        if let Some(fate) = self.data.fate(&tx).map_err(storage)? {
            return Ok(TxStatus {
                tx,
                state: match fate.fate {
                    TxFate::Included => TxState::Included,
                    TxFate::Failed => TxState::Failed,
                    TxFate::Dropped => TxState::Dropped,
                },
                slot: Some(fate.slot),
                rollup: Some(fate.rollup),
                position: Some(fate.position),
                receipt,
            });
        }
        if let Some(receipt) = receipt {
            let r = &receipt.message;
            return Ok(TxStatus {
                tx,
                state: TxState::Committed,
                slot: Some(r.slot),
                rollup: Some(r.rollup),
                position: Some(r.position),
                receipt: Some(receipt),
            });
        }
        if let Some(meta) = self.ingress.with_pool(|p| p.lookup(&tx)) {
            return Ok(TxStatus {
                tx,
                state: TxState::Pending,
                slot: None,
                rollup: Some(meta.rollup),
                position: None,
                receipt: None,
            });
        }
        if let Some(departure) = self.ingress.departure(&tx) {
            let (state, slot) = match departure {
                Departure::Expired { slot } => (TxState::Expired, slot),
                Departure::Evicted { slot } => (TxState::Evicted, slot),
            };
            return Ok(TxStatus {
                tx,
                state,
                slot: Some(slot),
                rollup: None,
                position: None,
                receipt: None,
            });
        }
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no record of {tx} (never admitted, or it left the pool before the node's last \
                 start or too long ago to be remembered, or its receipt was pruned)"
            ),
        ))
    }

    fn top_bid(&self, slot: Option<Slot>) -> Result<TopBid, ApiError> {
        let now = now_ms();
        let current = self.clock.slot_at(now);
        let open = if now <= self.clock.deadline_ms(current) { current } else { current.next() };
        let slot = slot.unwrap_or(open);
        if slot < open {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("slot {slot} is closed: its bids are in the data API"),
            ));
        }
        if slot > open.next() {
            return Err(ApiError::new(ErrorCode::NotFound, format!("slot {slot} is not open yet")));
        }
        Ok(self.top_bids.get(slot).unwrap_or(TopBid { slot, bids: 0, top: None }))
    }

    fn mempool(&self, read: &MempoolRead) -> Result<MempoolPage, ApiError> {
        Ok(mempool_page(&self.ingress, &self.in_flight, read))
    }

    fn mempool_watch(&self) -> Box<dyn MempoolWatch> {
        Box::new(FeedWatch(self.ingress.feed_updates()))
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            sequencer_running: self.running.load(Ordering::Relaxed),
            keypers_linked: self.keypers.connected_count(),
            keypers_needed: self.keypers_needed,
        }
    }

    fn metrics(&self) -> String {
        self.metrics.encode()
    }
}
