//! [`Indexer`]: keeps the data API's index ([`DataStore`]) up with the sequencer's record log.
//!
//! The slot thread already makes every decision durable in its record log (decided, signed,
//! decrypted, settled, undecryptable). The indexer tails that log on its own thread and its
//! own read connection ([`RecordReader`]) and derives what the HTTP API serves: the slot
//! documents, one row per committed rollup block, and each published transaction's fate. It
//! stores how far it read in the same transaction as what it derived, so after a restart it
//! resumes where it stopped. The slot thread pays nothing for it, and the indexer keeps out of
//! each slot's release window ([`ReleaseWindow::wait_quiet`], at most [`INDEXER_DEFER_MAX`]):
//! the data API shows a commitment a few tens of milliseconds later, and the release path
//! keeps the cores it needs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use veil_sequencer::slot::{SlotRecord, TxResult};
use veil_storage::data::{
    DataStore, DeliveredRow, DeliveryState, IndexOp, SlotDoc, TxFate, TxFateRow,
};
use veil_storage::records::{LogRecord, RecordReader};
use veil_storage::StoreError;

use super::release_window::ReleaseWindow;

/// How often the indexer looks for new records.
pub const DEFAULT_POLL: Duration = Duration::from_millis(20);

/// The indexer thread's nice value where the OS gives threads their own (Linux). It parses
/// and indexes each slot's records (about 200 KB of JSON for a 1,000-transaction slot, its
/// decrypted block 1.3 MB) after the slot's release window, but a slow release or the next
/// slot's window can still overlap that work; nothing on the release path waits for the
/// index, so it yields the cores to it, as the receipt thread does
/// ([`crate::services::receipts::RECEIPTS_NICE`]).
pub const INDEXER_NICE: i32 = 10;

/// The longest the indexer waits for release windows to close before it indexes anyway (per
/// step: builders learn from the data API what became of their slots, so it may lag the
/// record log by about this much, not more).
pub const INDEXER_DEFER_MAX: Duration = Duration::from_millis(250);

/// Records read per step.
const BATCH: usize = 256;

/// A running indexer. Dropping the handle does not stop it; call [`Indexer::stop`].
#[derive(Debug)]
pub struct Indexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts tailing the record log at `records` into `data`, polling every `poll`, each
    /// step once `window` is quiet (see the module docs).
    ///
    /// # Errors
    /// If the record log cannot be opened for reading.
    pub fn spawn(
        records: &Path,
        data: Arc<DataStore>,
        poll: Duration,
        window: ReleaseWindow,
    ) -> anyhow::Result<Indexer> {
        let reader = RecordReader::open(records)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new().name("veil-indexer".into()).spawn(move || {
            crate::priority::lower_this_thread(INDEXER_NICE, "indexer");
            while !stopping.load(Ordering::Relaxed) {
                window.wait_quiet(INDEXER_DEFER_MAX);
                match step(&reader, &data) {
                    Ok(n) if n == BATCH => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "indexing the record log failed; retrying")
                    }
                }
                std::thread::sleep(poll);
            }
        })?;
        Ok(Indexer { stop, thread: Some(thread) })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Indexes the next records; returns how many it read.
fn step(reader: &RecordReader, data: &DataStore) -> Result<usize, StoreError> {
    let records = reader.after(data.position()?, BATCH)?;
    let Some(last) = records.last().map(|r| r.0) else {
        return Ok(0);
    };
    let mut ops = Vec::new();
    for (_, record) in &records {
        derive(record, &mut ops);
    }
    data.apply(last, &ops)?;
    Ok(records.len())
}

/// The index ops of one record.
fn derive(stored: &LogRecord, ops: &mut Vec<IndexOp>) {
    let record: SlotRecord = match serde_json::from_slice(&stored.body) {
        Ok(r) => r,
        Err(e) => {
            // The sequencer refuses to start on such a log; here it is only not indexed.
            tracing::error!(slot = %stored.slot, kind = stored.kind, error = %e, "record does not parse; not indexed");
            return;
        }
    };
    let slot = record.slot();
    match &record {
        SlotRecord::Decided { .. } => {
            ops.push(IndexOp::Doc { slot, kind: SlotDoc::Decided, body: stored.body.clone() });
        }
        SlotRecord::Signed { signed } => {
            ops.push(IndexOp::Doc { slot, kind: SlotDoc::Signed, body: stored.body.clone() });
            for block in &signed.message.blocks {
                ops.push(IndexOp::Committed(DeliveredRow {
                    slot,
                    rollup: block.rollup,
                    builder: block.winner,
                    payment: block.payment,
                    txs: u32::try_from(block.ciphertexts.len()).unwrap_or(u32::MAX),
                    included: 0,
                    failed: 0,
                    dropped: 0,
                    state: DeliveryState::Committed,
                }));
            }
        }
        SlotRecord::Decrypted { published } => {
            ops.push(IndexOp::Doc { slot, kind: SlotDoc::Published, body: stored.body.clone() });
            for block in &published.blocks {
                let (mut included, mut failed, mut dropped) = (0u32, 0u32, 0u32);
                for (position, tx) in block.txs.iter().enumerate() {
                    let fate = match tx.result {
                        TxResult::Included(_) => {
                            included += 1;
                            TxFate::Included
                        }
                        TxResult::Failed => {
                            failed += 1;
                            TxFate::Failed
                        }
                        TxResult::DroppedWithBundle(_) => {
                            dropped += 1;
                            TxFate::Dropped
                        }
                    };
                    ops.push(IndexOp::Fate(TxFateRow {
                        tx: tx.id,
                        slot,
                        rollup: block.rollup,
                        position: u32::try_from(position).unwrap_or(u32::MAX),
                        fate,
                    }));
                }
                ops.push(IndexOp::Published {
                    slot,
                    rollup: block.rollup,
                    included,
                    failed,
                    dropped,
                });
            }
        }
        SlotRecord::Undecryptable { .. } => ops.push(IndexOp::Undecryptable(slot)),
        SlotRecord::Settled { .. } => {
            ops.push(IndexOp::Doc { slot, kind: SlotDoc::Settled, body: stored.body.clone() });
        }
        // The registries are read live from the sequencer thread.
        SlotRecord::Registry { .. } => {}
    }
}
