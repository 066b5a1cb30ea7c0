//! The node's own counters (the shells'); the cores' `Stats` structs are exported beside them.

use std::sync::atomic::{AtomicU64, Ordering};

/// The ingress shell's counters, shared between connection tasks.
#[derive(Debug, Default)]
pub struct IngressStats {
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections refused (per-address or global limit).
    pub connections_refused: AtomicU64,
    /// Connections closed for idling (no stream or no frame within the timeout).
    pub idle_closed: AtomicU64,
    /// Frames received (well-formed or not).
    pub frames_in: AtomicU64,
    /// Frames refused before admission (bad framing, unknown kind, oversized), by code.
    pub bad_frames: AtomicU64,
    /// Requests refused by the per-connection rate quota.
    pub quota_rejects: AtomicU64,
    /// Acks sent.
    pub acks: AtomicU64,
    /// Rejections sent (all codes).
    pub rejects: AtomicU64,
    /// Sum over answered requests of the time from reading the frame to queueing the
    /// answer, in µs (validation, admission, durable write).
    pub answer_us_total: AtomicU64,
    /// Requests counted in `answer_us_total`.
    pub answered: AtomicU64,
    /// Inclusion receipts queued on their submitter's connection.
    pub receipts_pushed: AtomicU64,
    /// Inclusion receipts not pushed because the connection's receipt queue was full or the
    /// connection was ending (they are still stored).
    pub receipts_push_dropped: AtomicU64,
    /// Inclusion receipts with no open connection to push to (stored only).
    pub receipts_unrouted: AtomicU64,
}

/// A point-in-time copy of [`IngressStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngressStatsSnapshot {
    /// See [`IngressStats::connections_accepted`].
    pub connections_accepted: u64,
    /// See [`IngressStats::connections_refused`].
    pub connections_refused: u64,
    /// See [`IngressStats::idle_closed`].
    pub idle_closed: u64,
    /// See [`IngressStats::frames_in`].
    pub frames_in: u64,
    /// See [`IngressStats::bad_frames`].
    pub bad_frames: u64,
    /// See [`IngressStats::quota_rejects`].
    pub quota_rejects: u64,
    /// See [`IngressStats::acks`].
    pub acks: u64,
    /// See [`IngressStats::rejects`].
    pub rejects: u64,
    /// See [`IngressStats::answer_us_total`].
    pub answer_us_total: u64,
    /// See [`IngressStats::answered`].
    pub answered: u64,
    /// See [`IngressStats::receipts_pushed`].
    pub receipts_pushed: u64,
    /// See [`IngressStats::receipts_push_dropped`].
    pub receipts_push_dropped: u64,
    /// See [`IngressStats::receipts_unrouted`].
    pub receipts_unrouted: u64,
}

impl IngressStats {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter.
    #[must_use]
    pub fn snapshot(&self) -> IngressStatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngressStatsSnapshot {
            connections_accepted: g(&self.connections_accepted),
            connections_refused: g(&self.connections_refused),
            idle_closed: g(&self.idle_closed),
            frames_in: g(&self.frames_in),
            bad_frames: g(&self.bad_frames),
            quota_rejects: g(&self.quota_rejects),
            acks: g(&self.acks),
            rejects: g(&self.rejects),
            answer_us_total: g(&self.answer_us_total),
            answered: g(&self.answered),
            receipts_pushed: g(&self.receipts_pushed),
            receipts_push_dropped: g(&self.receipts_push_dropped),
            receipts_unrouted: g(&self.receipts_unrouted),
        }
    }
}
