//! [`BidIntake`]: the one way bids reach the sequencer thread, for the HTTP API and for
//! in-process builders (the devnet's) alike, so both go through the same checks.
//!
//! A bid's signature is verified by its caller ([`VerifiedBid::verify_many`], batch-verified
//! on the caller's threads: the HTTP route's blocking pool), never on the sequencer thread. The
//! bid then goes to the sequencer thread over its input channel ([`SequencerInput::Bid`]),
//! which checks the rest exactly as the auction does (slot and deadline, builder and
//! collateral, rollups, reserves, ciphertexts, gas, bundles, sequence number) and answers with
//! the verdict. The
//! intake sends every bid of a batch before it waits for the first verdict, so a batch costs
//! one channel round trip, not one per bid. Accepted bids are then recorded for the data API
//! ([`DataStore::insert_bids`]) by a writer thread of their own, fed through a bounded queue: the
//! records of many requests go into one SQLite transaction, a request never waits for the write,
//! and a writer that falls behind by [`RECORD_QUEUE`] batches makes the intake wait (nothing is
//! dropped, memory stays bounded). The slot thread never writes them.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use veil_auction::{AuctionError, BidId, BidReceipt, SignedBid, SlotBook, VerifiedBid};
use veil_builder_api::api::{TopBid, TopBidEntry};
use veil_primitives::encoding::sha3_256;
use veil_primitives::signed::SignedMessage;
use veil_primitives::Slot;
use veil_storage::data::{BidRow, DataStore};

use super::sequencer::{now_ms, SequencerInput};

/// The sequencer thread has stopped: no verdict can be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sequencer thread has stopped")]
pub struct IntakeStopped;

/// Batches of accepted bids queued for the data API's writer at most.
pub const RECORD_QUEUE: usize = 64;

/// Rows the writer puts into one transaction at most.
const RECORD_TRANSACTION: usize = 4_096;

/// The bid intake. Cheap to clone; see the module docs.
#[derive(Debug, Clone)]
pub struct BidIntake {
    input: mpsc::Sender<SequencerInput>,
    records: mpsc::SyncSender<Vec<BidRow>>,
}

/// Writes queued bid records, many requests' worth per transaction, until every intake is
/// gone.
fn write_records(data: &DataStore, queue: &mpsc::Receiver<Vec<BidRow>>) {
    while let Ok(mut rows) = queue.recv() {
        while rows.len() < RECORD_TRANSACTION {
            match queue.try_recv() {
                Ok(more) => rows.extend(more),
                Err(_) => break,
            }
        }
        // The auction holds the bids already; the data API's record of them is best effort.
        if let Err(e) = data.insert_bids(&rows) {
            tracing::error!(error = %e, bids = rows.len(), "accepted bids not recorded for the data API");
        }
    }
}

/// A bid's id: sha3-256 of its signing bytes (the auction's [`BidId`]).
#[must_use]
pub fn bid_id(bid: &SignedBid) -> BidId {
    BidId(sha3_256(&bid.message.signing_bytes()))
}

impl BidIntake {
    /// An intake over the sequencer thread's input, recording accepted bids in `data` (by a
    /// writer thread that ends when the last clone of the intake is dropped).
    ///
    /// # Panics
    /// If the writer thread cannot be spawned.
    #[must_use]
    pub fn new(input: mpsc::Sender<SequencerInput>, data: Arc<DataStore>) -> BidIntake {
        let (records, queue) = mpsc::sync_channel(RECORD_QUEUE);
        std::thread::Builder::new()
            .name("veil-bid-records".into())
            .spawn(move || write_records(&data, &queue))
            .expect("spawn the bid record writer");
        BidIntake { input, records }
    }

    /// Hands `bids` to the sequencer thread in order and waits for every verdict: the bid id
    /// if accepted, the auction's refusal if not. Blocks for one round trip to the sequencer
    /// thread; the accepted bids are queued for the data API's writer (waiting only while its
    /// queue is full), so they are listed there a moment later.
    ///
    /// # Errors
    /// [`IntakeStopped`] if the sequencer thread is gone.
    pub fn submit(
        &self,
        bids: Vec<VerifiedBid>,
    ) -> Result<Vec<Result<BidId, AuctionError>>, IntakeStopped> {
        let mut waiting = Vec::with_capacity(bids.len());
        for bid in bids {
            let (reply, verdict) = mpsc::channel();
            let kept = bid.bid().clone();
            self.input
                .send(SequencerInput::Bid(Box::new(bid), reply))
                .map_err(|_| IntakeStopped)?;
            waiting.push((kept, verdict));
        }
        let received_ms = now_ms();
        let mut verdicts = Vec::with_capacity(waiting.len());
        let mut accepted = Vec::new();
        for (bid, verdict) in waiting {
            let id = bid_id(&bid);
            match verdict.recv().map_err(|_| IntakeStopped)? {
                Ok(()) => {
                    accepted.push(BidRow {
                        id: id.0,
                        slot: bid.message.slot,
                        builder: bid.message.builder,
                        sequence: bid.message.sequence,
                        amount: bid.message.amount,
                        rollups: bid.message.rollups().collect(),
                        received_ms,
                        body: serde_json::to_vec(&bid).expect("bids serialise"),
                    });
                    verdicts.push(Ok(id));
                }
                Err(e) => verdicts.push(Err(e)),
            }
        }
        if !accepted.is_empty() && self.records.send(accepted).is_err() {
            tracing::error!("the bid record writer has stopped; accepted bids not recorded");
        }
        Ok(verdicts)
    }
}

/// The top bid of each open slot, kept by the sequencer thread as bids are accepted and read
/// by the HTTP API where the node shows top bids. Cheap to clone (shared).
///
/// An accepted bid above the top becomes the top (O(1)); only when a builder replaces the top
/// bid itself is the slot's book scanned again. Slots two behind the newest are dropped.
#[derive(Debug, Clone, Default)]
pub struct TopBids(Arc<Mutex<BTreeMap<Slot, TopBid>>>);

impl TopBids {
    /// Records an accepted bid (`receipt` from the auction), with the slot's book after it.
    pub fn accepted(&self, bid: &SignedBid, receipt: &BidReceipt, book: Option<&SlotBook>) {
        let slot = bid.message.slot;
        let mut tops = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = tops.entry(slot).or_insert(TopBid { slot, bids: 0, top: None });
        entry.bids = book.map_or(entry.bids + 1, |b| b.len() as u64);
        let replaced_top =
            receipt.replaced.is_some() && entry.top.as_ref().map(|t| t.bid_id) == receipt.replaced;
        if replaced_top {
            // The top bid was replaced (perhaps by a lower one): find the top again.
            entry.top = book.and_then(|b| {
                b.sorted_bids()
                    .into_iter()
                    .max_by_key(|s| s.signed.message.amount)
                    .map(|s| top_entry(s.id, &s.signed))
            });
        } else if entry.top.as_ref().is_none_or(|t| bid.message.amount > t.amount) {
            entry.top = Some(top_entry(receipt.id, bid));
        }
        let keep_from = Slot(slot.0.saturating_sub(2));
        *tops = tops.split_off(&keep_from);
    }

    /// The top bid of `slot`, if the slot has had bids.
    #[must_use]
    pub fn get(&self, slot: Slot) -> Option<TopBid> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&slot).cloned()
    }
}

fn top_entry(id: BidId, bid: &SignedBid) -> TopBidEntry {
    TopBidEntry {
        bid_id: id,
        builder: bid.message.builder,
        amount: bid.message.amount,
        rollups: bid.message.rollups().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ed25519_dalek::SigningKey;
    use veil_auction::{
        public_key, Auction, AuctionConfig, Bid, RevenuePolicy, RollupBlock, RollupConfig,
    };
    use veil_primitives::{Amount, ChainId, RollupId, TxId, TxMeta};

    use super::*;

    /// The top follows the book: a higher bid takes it, a lower one does not, and a builder
    /// lowering its own top bid (a replacement) hands the top to the next highest.
    #[test]
    fn the_top_bid_follows_the_book() {
        let admin = SigningKey::from_bytes(&[1; 32]);
        let mut auction =
            Auction::new(AuctionConfig { chain_id: ChainId(1), ..AuctionConfig::default() });
        let config = RollupConfig {
            reserve: Amount(0),
            gas_limit: 1_000,
            policy: RevenuePolicy::standard(8_000, 1_500, 500, public_key(&admin)).unwrap(),
            active: true,
        };
        auction.register_genesis_rollup(RollupId(0), public_key(&admin), config).unwrap();
        let keys: Vec<SigningKey> = (2..5).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        for k in &keys {
            auction.deposit(public_key(k), Amount(1_000)).unwrap();
        }
        auction.open_slot(Slot(1), u64::MAX).unwrap();
        let index: HashMap<TxId, TxMeta> = HashMap::new();
        let tops = TopBids::default();
        let mut send = |key: &SigningKey, sequence: u64, amount: u128| {
            let bid = Bid {
                chain_id: ChainId(1),
                slot: Slot(1),
                builder: public_key(key),
                sequence,
                amount: Amount(amount),
                blocks: vec![RollupBlock {
                    rollup: RollupId(0),
                    ciphertexts: vec![],
                    plaintext: vec![],
                }],
            }
            .sign(key);
            let verified = VerifiedBid::verify_many(vec![bid.clone()], 8).pop().unwrap().unwrap();
            let receipt = auction.submit_verified_bid(verified, &index, 0).unwrap();
            tops.accepted(&bid, &receipt, auction.book(Slot(1)));
            tops.get(Slot(1)).unwrap()
        };
        let t = send(&keys[0], 1, 50);
        assert_eq!((t.bids, t.top.unwrap().amount), (1, Amount(50)));
        let t = send(&keys[1], 1, 70);
        assert_eq!(t.top.as_ref().unwrap().builder, public_key(&keys[1]));
        let t = send(&keys[2], 1, 60);
        assert_eq!((t.bids, t.top.unwrap().amount), (3, Amount(70)));
        // The top builder lowers its bid: the next highest (60) is the top now.
        let t = send(&keys[1], 2, 10);
        assert_eq!(t.bids, 3, "a replacement does not add a bid");
        let top = t.top.unwrap();
        assert_eq!((top.builder, top.amount), (public_key(&keys[2]), Amount(60)));
        assert!(tops.get(Slot(2)).is_none());
    }
}
