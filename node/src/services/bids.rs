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
//! ([`DataStore::insert_bids`]) on the caller's thread: the slot thread never writes them.

use std::sync::mpsc;
use std::sync::Arc;

use veil_auction::{AuctionError, BidId, SignedBid, VerifiedBid};
use veil_primitives::encoding::sha3_256;
use veil_primitives::signed::SignedMessage;
use veil_storage::data::{BidRow, DataStore};

use super::sequencer::{now_ms, SequencerInput};

/// The sequencer thread has stopped: no verdict can be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sequencer thread has stopped")]
pub struct IntakeStopped;

/// The bid intake. Cheap to clone; see the module docs.
#[derive(Debug, Clone)]
pub struct BidIntake {
    input: mpsc::Sender<SequencerInput>,
    data: Arc<DataStore>,
}

/// A bid's id: sha3-256 of its signing bytes (the auction's [`BidId`]).
#[must_use]
pub fn bid_id(bid: &SignedBid) -> BidId {
    BidId(sha3_256(&bid.message.signing_bytes()))
}

impl BidIntake {
    /// An intake over the sequencer thread's input, recording accepted bids in `data`.
    #[must_use]
    pub fn new(input: mpsc::Sender<SequencerInput>, data: Arc<DataStore>) -> BidIntake {
        BidIntake { input, data }
    }

    /// Hands `bids` to the sequencer thread in order and waits for every verdict: the bid id
    /// if accepted, the auction's refusal if not. Blocks for one round trip to the sequencer
    /// thread and, if any bid was accepted, one write of the data API's index.
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
        // The auction holds the bids already; the data API's record of them is best effort.
        if let Err(e) = self.data.insert_bids(&accepted) {
            tracing::error!(error = %e, bids = accepted.len(), "accepted bids not recorded for the data API");
        }
        Ok(verdicts)
    }
}
