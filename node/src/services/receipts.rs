//! The receipt issuer: signs the inclusion receipts of each final commitment off the slot
//! thread and hands them to the ingress (DESIGN.md, slot lifecycle step 6).
//!
//! The sequencer shell calls [`ReceiptIssuer::issue`] when a commitment is published; that
//! only queues it. One worker thread builds the receipts
//! ([`veil_sequencer::receipt::receipts_for`]), signs them with the node's
//! [`ReceiptSigner`] (one ed25519 signature per committed transaction: tens of milliseconds
//! for a full slot, see the `sequencer::sign_receipts` bench), and calls
//! [`Ingress::deliver_receipts`], which stores and pushes them. The slot thread never waits
//! for signing, so the next slot's close is never late because of receipts.
//!
//! Signing waits until the commitment's release is over ([`ReleaseWindow::wait_quiet`], at
//! most [`RECEIPTS_DEFER_MAX`]): on a machine that the sequencer shares with its keypers, the
//! signatures would otherwise take a core from the release path in exactly the milliseconds
//! that decide commit→plaintext. A receipt is a signed promise of inclusion; it still comes
//! within a few tens of milliseconds of the plaintext, and never later than the bound plus
//! the signing after its commitment.
//!
//! The queue holds at most [`DEFAULT_QUEUED_COMMITMENTS`] commitments. If signing ever falls
//! that far behind, a further commitment's receipts are skipped and counted
//! ([`ReceiptIssuerStats::commitments_skipped`]), rather than letting the queue grow or
//! blocking the slot thread; the commitment itself is unaffected (it is what a receipt
//! attests, and it is published either way).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use veil_sequencer::receipt::{receipts_for, ReceiptSigner};
use veil_sequencer::SignedCommitment;

use super::ingress::Ingress;
use super::release_window::ReleaseWindow;

/// Commitments queued for signing before further ones are skipped.
pub const DEFAULT_QUEUED_COMMITMENTS: usize = 16;

/// The issuer's counters.
#[derive(Debug, Default)]
pub struct ReceiptIssuerStats {
    /// Commitments whose receipts were signed and delivered.
    pub commitments: AtomicU64,
    /// Receipts signed.
    pub receipts: AtomicU64,
    /// Commitments whose receipts were skipped because the queue was full.
    pub commitments_skipped: AtomicU64,
    /// Time spent building and signing receipts, summed, in µs.
    pub sign_us_total: AtomicU64,
    /// The longest building and signing of one commitment's receipts, in µs.
    pub sign_us_max: AtomicU64,
    /// Time spent waiting for release windows to close before signing, summed, in µs.
    pub deferred_us_total: AtomicU64,
}

/// A running receipt issuer. Dropping it lets the worker finish the queued commitments and
/// waits for it.
#[derive(Debug)]
pub struct ReceiptIssuer {
    queue: Option<mpsc::SyncSender<SignedCommitment>>,
    stats: Arc<ReceiptIssuerStats>,
    thread: Option<JoinHandle<()>>,
}

impl ReceiptIssuer {
    /// Starts the worker thread signing with `signer` and delivering to `ingress`, each
    /// commitment's receipts once `window` is quiet (see the module docs).
    ///
    /// # Errors
    /// The OS refused to start the thread.
    pub fn spawn(
        signer: Box<dyn ReceiptSigner>,
        ingress: Arc<Ingress>,
        queued: usize,
        window: ReleaseWindow,
    ) -> std::io::Result<ReceiptIssuer> {
        let (queue, rx) = mpsc::sync_channel::<SignedCommitment>(queued.max(1));
        let stats = Arc::new(ReceiptIssuerStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new().name("veil-receipts".into()).spawn(move || {
            crate::priority::lower_this_thread(RECEIPTS_NICE, "receipts");
            run(signer.as_ref(), &ingress, &rx, &window, &thread_stats);
        })?;
        Ok(ReceiptIssuer { queue: Some(queue), stats, thread: Some(thread) })
    }

    /// Queues the receipts of a final commitment; never blocks. See the module docs for what
    /// happens when the queue is full.
    pub fn issue(&self, commitment: SignedCommitment) {
        if commitment.message.is_empty() {
            return;
        }
        let Some(queue) = &self.queue else { return };
        if let Err(mpsc::TrySendError::Full(c) | mpsc::TrySendError::Disconnected(c)) =
            queue.try_send(commitment)
        {
            self.stats.commitments_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(slot = %c.message.slot, "receipt signing is behind; this slot's receipts are skipped");
        }
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> Arc<ReceiptIssuerStats> {
        self.stats.clone()
    }
}

impl Drop for ReceiptIssuer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The nice value of the receipt thread where the OS gives threads their own (Linux).
///
/// A commitment's receipts are signed (one ed25519 signature per transaction, about 20 ms
/// for a 1,000-transaction slot) after its release window (see the module docs), but a slow
/// release or the next slot's window can still overlap the signing. At nice 5 the thread
/// gets about a third of a normal thread's share while the release path is busy, and all of
/// an idle machine.
pub const RECEIPTS_NICE: i32 = 5;

/// The longest a commitment's receipts wait for release windows to close before they are
/// signed anyway. A healthy release takes tens of milliseconds; this bounds the delay when
/// one is slow (keypers missing, a fallback round, up to the release timeout).
pub const RECEIPTS_DEFER_MAX: std::time::Duration = std::time::Duration::from_millis(250);

fn run(
    signer: &dyn ReceiptSigner,
    ingress: &Ingress,
    rx: &mpsc::Receiver<SignedCommitment>,
    window: &ReleaseWindow,
    stats: &ReceiptIssuerStats,
) {
    while let Ok(signed) = rx.recv() {
        let deferred = window.wait_quiet(RECEIPTS_DEFER_MAX);
        let deferred_us = u64::try_from(deferred.as_micros()).unwrap_or(u64::MAX);
        stats.deferred_us_total.fetch_add(deferred_us, Ordering::Relaxed);
        let started = Instant::now();
        let receipts = signer.sign_receipts(receipts_for(&signed.message));
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let n = receipts.len();
        // The durable write completes on the store's thread; nothing here waits for it.
        drop(ingress.deliver_receipts(receipts));
        stats.commitments.fetch_add(1, Ordering::Relaxed);
        stats.receipts.fetch_add(n as u64, Ordering::Relaxed);
        stats.sign_us_total.fetch_add(took, Ordering::Relaxed);
        stats.sign_us_max.fetch_max(took, Ordering::Relaxed);
        tracing::debug!(slot = %signed.message.slot, receipts = n, deferred_us, sign_us = took, "receipts issued");
    }
}
