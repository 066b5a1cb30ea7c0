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
    /// The same times, as a histogram (for quantiles: the ack tail inside the server).
    pub answer_latency: LatencyHistogram,
    /// Per request, the stages of that time, in µs: waiting for the admission task (the
    /// batch before it being checked), its batch's check, the pool's rules under the lock
    /// (and handing the rows to the store), and the durable write.
    pub stage_latency: [LatencyHistogram; 4],
    /// Inclusion receipts queued on their submitter's connection.
    pub receipts_pushed: AtomicU64,
    /// Inclusion receipts not pushed because the connection's receipt queue was full or the
    /// connection was ending (they are still stored).
    pub receipts_push_dropped: AtomicU64,
    /// Inclusion receipts with no open connection to push to (stored only).
    pub receipts_unrouted: AtomicU64,
    /// Connections closed for sending more failing proofs than allowed.
    pub abuse_closed: AtomicU64,
    /// Connections refused because their address's connections were closed so.
    pub abuse_refused: AtomicU64,
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
    /// See [`IngressStats::answer_latency`]: the count of each bucket.
    pub answer_latency: Vec<u64>,
    /// See [`IngressStats::stage_latency`]: the count of each bucket, per stage.
    pub stage_latency: [Vec<u64>; 4],
    /// See [`IngressStats::receipts_pushed`].
    pub receipts_pushed: u64,
    /// See [`IngressStats::receipts_push_dropped`].
    pub receipts_push_dropped: u64,
    /// See [`IngressStats::receipts_unrouted`].
    pub receipts_unrouted: u64,
    /// See [`IngressStats::abuse_closed`].
    pub abuse_closed: u64,
    /// See [`IngressStats::abuse_refused`].
    pub abuse_refused: u64,
}

/// The stages of [`IngressStats::stage_latency`], in order.
pub const INGRESS_STAGES: [&str; 4] = ["queue", "check", "admit", "durable"];

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
            answer_latency: self.answer_latency.counts(),
            stage_latency: self.stage_latency.each_ref().map(LatencyHistogram::counts),
            receipts_pushed: g(&self.receipts_pushed),
            receipts_push_dropped: g(&self.receipts_push_dropped),
            receipts_unrouted: g(&self.receipts_unrouted),
            abuse_closed: g(&self.abuse_closed),
            abuse_refused: g(&self.abuse_refused),
        }
    }
}

/// Latencies in µs, lock-free: log-linear buckets, eight per power of two (each within 12.5%
/// of its neighbours), exact below 8 µs.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

const LATENCY_BUCKETS: usize = 8 * 64;

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram { buckets: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl LatencyHistogram {
    fn bucket(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let p = 63 - us.leading_zeros() as usize; // at least 3
        (p - 2) * 8 + ((us >> (p - 3)) & 7) as usize
    }

    /// The largest value of bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let (p, sub) = (i / 8 + 2, (i % 8) as u128);
        u64::try_from(((8 + sub + 1) << (p - 3)) - 1).unwrap_or(u64::MAX)
    }

    /// Counts one latency of `us` µs.
    pub fn record(&self, us: u64) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of each bucket.
    #[must_use]
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }

    /// The `q`-quantile (0..=1) in µs of what was recorded between two [`Self::counts`]
    /// (an upper bound, within 12.5%), or `None` if nothing was.
    #[must_use]
    pub fn quantile_between(before: &[u64], after: &[u64], q: f64) -> Option<u64> {
        let diff: Vec<u64> = after
            .iter()
            .zip(before.iter().chain(std::iter::repeat(&0)))
            .map(|(a, b)| a - b)
            .collect();
        let total: u64 = diff.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in diff.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        None
    }
}

/// The sequencer node's Prometheus metrics: histograms and counters the shells update, and a
/// collector that reads the cores' and services' counters at each scrape.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `veil_slot_stage_seconds` | histogram | `stage`: `close` (deadline → commitment decided and durable), `commit` (→ signed, durable, sent), `decrypt` (→ plaintext decided), `settle` (→ settled, durable) |
/// | `veil_slots_total` | counter | `outcome`: `settled`, `undecryptable` |
/// | `veil_bids_total` | counter | `result`: `accepted` or an error-code name |
/// | `veil_payments_total` / `veil_payouts_total` | counter | — (settlement units) |
/// | `veil_fees_charged_total` / `veil_fees_credited_total` | counter | — (settlement units) |
/// | `veil_ingress_admitted_total`, `veil_ingress_duplicates_total`, `veil_ingress_replays_total`, `veil_ingress_evicted_total`, `veil_ingress_expired_total` | counter | — |
/// | `veil_ingress_rejected_total` | counter | `code`: error-code name |
/// | `veil_mempool_pending`, `veil_mempool_spent` | gauge | — |
/// | `veil_mempool_spent_forgotten_total` | counter | — |
/// | `veil_receipts_pushed_total`, `veil_receipts_push_dropped_total`, `veil_receipts_unrouted_total` | counter | — |
/// | `veil_share_batches_total` | counter | `result`: `forwarded`, `dropped`, `refused` (failed verification) |
/// | `veil_keypers_blamed_total`, `veil_fallback_rounds_total` | counter | — |
/// | `veil_keyper_links` | gauge | — (authenticated links now) |
/// | `veil_keyper_fetched_total` | counter | — (bodies served to keypers catching up) |
#[derive(Debug)]
pub struct NodeMetrics {
    registry: std::sync::Mutex<prometheus_client::registry::Registry>,
    /// Per-stage slot timings.
    pub stage: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::histogram::Histogram,
    >,
    /// Finished slots by outcome.
    pub slots: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::counter::Counter,
    >,
    /// Bids by result.
    pub bids: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::counter::Counter,
    >,
    /// Winning payments debited, in units.
    pub payments: prometheus_client::metrics::counter::Counter,
    /// Payouts credited, in units.
    pub payouts: prometheus_client::metrics::counter::Counter,
    /// Transaction fees charged to payers, in units.
    pub fees_charged: prometheus_client::metrics::counter::Counter,
    /// Transaction fees credited to block builders (or rollups), in units.
    pub fees_credited: prometheus_client::metrics::counter::Counter,
}

/// What the collector reads at each scrape.
pub trait Scraped: Send + Sync + std::fmt::Debug + 'static {
    /// `(name, help, labels, value, is_counter)` rows.
    fn rows(&self) -> Vec<Row>;
}

/// One scraped value.
#[derive(Debug, Clone)]
pub struct Row {
    /// The metric name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// One label, if any.
    pub label: Option<(&'static str, String)>,
    /// The value.
    pub value: u64,
    /// Counter (true) or gauge.
    pub counter: bool,
}

#[derive(Debug)]
struct ScrapeCollector(std::sync::Arc<dyn Scraped>);

impl prometheus_client::collector::Collector for ScrapeCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let rows = self.0.rows();
        let mut names: Vec<&'static str> = rows.iter().map(|r| r.name).collect();
        names.dedup();
        for name in names {
            let family: Vec<&Row> = rows.iter().filter(|r| r.name == name).collect();
            let first = family[0];
            let metric_type = if first.counter {
                ConstCounter::new(0u64).metric_type()
            } else {
                ConstGauge::new(0i64).metric_type()
            };
            let mut m = encoder.encode_descriptor(name, first.help, None, metric_type)?;
            for row in family {
                let labels: Vec<(&str, &str)> =
                    row.label.as_ref().map(|(k, v)| vec![(*k, v.as_str())]).unwrap_or_default();
                let target = m.encode_family(&labels)?;
                if row.counter {
                    ConstCounter::new(row.value).encode(target)?;
                } else {
                    ConstGauge::new(i64::try_from(row.value).unwrap_or(i64::MAX)).encode(target)?;
                }
            }
        }
        Ok(())
    }
}

impl Default for NodeMetrics {
    fn default() -> NodeMetrics {
        NodeMetrics::new()
    }
}

impl NodeMetrics {
    /// A registry with the node's metrics.
    #[must_use]
    pub fn new() -> NodeMetrics {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        let mut registry = prometheus_client::registry::Registry::default();
        let stage =
            prometheus_client::metrics::family::Family::<_, Histogram>::new_with_constructor(
                || Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            );
        registry.register(
            "veil_slot_stage_seconds",
            "Time per slot stage: close, commit, decrypt, settle",
            stage.clone(),
        );
        let slots = prometheus_client::metrics::family::Family::default();
        registry.register("veil_slots", "Finished slots by outcome", slots.clone());
        let bids = prometheus_client::metrics::family::Family::default();
        registry.register("veil_bids", "Bids by result (accepted or an error code)", bids.clone());
        let payments = prometheus_client::metrics::counter::Counter::default();
        registry.register("veil_payments", "Winning payments debited (units)", payments.clone());
        let payouts = prometheus_client::metrics::counter::Counter::default();
        registry.register("veil_payouts", "Payouts credited to rollups (units)", payouts.clone());
        let fees_charged = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "veil_fees_charged",
            "Transaction fees charged (units)",
            fees_charged.clone(),
        );
        let fees_credited = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "veil_fees_credited",
            "Transaction fees credited to block builders or rollups (units)",
            fees_credited.clone(),
        );
        NodeMetrics {
            registry: std::sync::Mutex::new(registry),
            stage,
            slots,
            bids,
            payments,
            payouts,
            fees_charged,
            fees_credited,
        }
    }

    /// Adds a source of values read at each scrape.
    pub fn register_scraped(&self, source: std::sync::Arc<dyn Scraped>) {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register_collector(Box::new(ScrapeCollector(source)));
    }

    /// Records a stage's duration.
    pub fn observe_stage(&self, stage: &'static str, ms: u64) {
        self.stage.get_or_create(&vec![("stage", stage)]).observe(ms as f64 / 1000.0);
    }

    /// The OpenMetrics text of every metric.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod latency_tests {
    use super::LatencyHistogram;

    #[test]
    fn buckets_bound_their_values_within_an_eighth() {
        for us in [0u64, 1, 7, 8, 9, 15, 16, 17, 100, 1_000, 48_500, 1 << 40, u64::MAX] {
            let i = LatencyHistogram::bucket(us);
            assert!(LatencyHistogram::upper(i) >= us, "{us}");
            assert!(i == 0 || LatencyHistogram::upper(i - 1) < us, "{us}");
            if us >= 8 {
                assert!(LatencyHistogram::upper(i) as f64 <= us as f64 * 1.125 + 1.0, "{us}");
            }
        }
    }

    #[test]
    fn quantiles_count_only_what_was_recorded_between() {
        let h = LatencyHistogram::default();
        h.record(50_000);
        let before = h.counts();
        for us in 1..=100u64 {
            h.record(us * 100);
        }
        let after = h.counts();
        let p50 = LatencyHistogram::quantile_between(&before, &after, 0.5).unwrap();
        let p99 = LatencyHistogram::quantile_between(&before, &after, 0.99).unwrap();
        assert!((5_000..=5_700).contains(&p50), "{p50}");
        assert!((9_900..=11_200).contains(&p99), "{p99}");
        assert_eq!(LatencyHistogram::quantile_between(&after, &after, 0.5), None);
    }
}
