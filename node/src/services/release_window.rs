//! [`ReleaseWindow`]: which slots are between their commitment going out and their plaintext
//! being published (or the slot being given up), so that work nobody waits for keeps out of
//! that window.
//!
//! From a commitment to its plaintext, the sequencer's slot thread, its keyper links and
//! every keyper's release path race against a latency budget (DESIGN.md: commit→plaintext
//! p99 ≤ 50 ms). Two of the node's own threads used to run in exactly that window, because a
//! commitment is what starts them: the receipt issuer (one ed25519 signature per committed
//! transaction, 20–34 ms of CPU for a 1,000-transaction slot) and the data API's indexer
//! (parsing and indexing the slot's decided and signed records, 5–16 ms). A scheduler trace
//! of `veil-perf pipeline`'s latency case on a 2-core machine (`perf record -e
//! sched:sched_switch,…` over 100 ms after each commitment) found them taking 36–40 of the
//! 166–180 busy CPU-milliseconds of that window, while the keypers' release threads spent
//! most of theirs runnable but waiting for a core. A nice value only shrinks their share;
//! waiting for the window to close takes them out of it.
//!
//! The slot thread [`ReleaseWindow::open`]s a slot when its non-empty commitment is
//! published and [`ReleaseWindow::close`]s it when its plaintext is published or it is
//! abandoned. A background thread calls [`ReleaseWindow::wait_quiet`] before each piece of
//! work: it returns once no slot is in its window, once every slot in its window has been
//! there for at least the caller's bound, or once it has waited that bound, whichever comes
//! first. So a slow release (keypers missing, a fallback round, up to the release timeout),
//! or slots whose windows follow each other without a gap, delay each piece of background
//! work by that bound at most, and never stop it.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use veil_primitives::Slot;

/// Slots remembered in their window at most; an older one is forgotten (and no longer waited
/// for) when a new one opens. Slots overlap by one or two in a healthy node.
const MAX_OPEN: usize = 64;

/// The slots in their release window. Cloning gives another handle to the same window.
#[derive(Debug, Clone, Default)]
pub struct ReleaseWindow {
    inner: Arc<(Mutex<BTreeMap<Slot, Instant>>, Condvar)>,
}

impl ReleaseWindow {
    /// A window with no slot in it.
    #[must_use]
    pub fn new() -> ReleaseWindow {
        ReleaseWindow::default()
    }

    /// `slot`'s commitment went out at `now`: its release has begun.
    pub fn open(&self, slot: Slot, now: Instant) {
        let (open, _) = &*self.inner;
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        open.entry(slot).or_insert(now);
        while open.len() > MAX_OPEN {
            open.pop_first();
        }
    }

    /// `slot` is published or given up: its release is over.
    pub fn close(&self, slot: Slot) {
        let (open, changed) = &*self.inner;
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.remove(&slot).is_some() {
            changed.notify_all();
        }
    }

    /// True if a slot opened less than `bound` before `now` is still in its window.
    #[must_use]
    pub fn busy(&self, now: Instant, bound: Duration) -> bool {
        let (open, _) = &*self.inner;
        let open = open.lock().unwrap_or_else(PoisonError::into_inner);
        Self::hold_until(&open, bound).is_some_and(|until| until > now)
    }

    /// Blocks until no slot opened less than `bound` ago is in its window (at once if none
    /// is), for `bound` at most, and returns how long it waited.
    pub fn wait_quiet(&self, bound: Duration) -> Duration {
        let started = Instant::now();
        let give_up = started + bound;
        let (open, changed) = &*self.inner;
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            match Self::hold_until(&open, bound).map(|until| until.min(give_up)) {
                Some(until) if until > now => {
                    open = changed
                        .wait_timeout(open, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => return started.elapsed(),
            }
        }
    }

    /// When the latest-opened slot's `bound` runs out, if any slot is open.
    fn hold_until(open: &BTreeMap<Slot, Instant>, bound: Duration) -> Option<Instant> {
        open.values().max().map(|&since| since + bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn an_empty_window_does_not_hold_anyone() {
        let w = ReleaseWindow::new();
        assert!(!w.busy(Instant::now(), LONG));
        assert!(w.wait_quiet(LONG) < Duration::from_secs(1));
    }

    #[test]
    fn a_slot_holds_until_it_closes() {
        let w = ReleaseWindow::new();
        w.open(Slot(7), Instant::now());
        assert!(w.busy(Instant::now(), LONG));
        let closer = w.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            closer.close(Slot(7));
        });
        let waited = w.wait_quiet(LONG);
        t.join().unwrap();
        assert!(waited >= Duration::from_millis(30), "returned before the close: {waited:?}");
        assert!(waited < LONG);
        assert!(!w.busy(Instant::now(), LONG));
    }

    #[test]
    fn a_slot_open_past_the_bound_no_longer_holds() {
        let w = ReleaseWindow::new();
        let now = Instant::now();
        w.open(Slot(3), now);
        assert!(w.busy(now, Duration::from_millis(10)));
        assert!(!w.busy(now + Duration::from_millis(10), Duration::from_millis(10)));
        // A wait bounded by 20 ms returns after about that long although the slot stays open.
        let waited = w.wait_quiet(Duration::from_millis(20));
        assert!(waited < LONG);
        assert!(!w.busy(Instant::now(), Duration::from_millis(20)));
    }

    #[test]
    fn windows_that_follow_each_other_hold_a_waiter_for_the_bound_at_most() {
        let w = ReleaseWindow::new();
        w.open(Slot(1), Instant::now());
        let opener = w.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        // A new slot opens every 10 ms and none closes: each is younger than the bound.
        let t = std::thread::spawn(move || {
            let mut s = 2;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                opener.open(Slot(s), Instant::now());
                s += 1;
            }
        });
        let waited = w.wait_quiet(Duration::from_millis(50));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        t.join().unwrap();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn the_latest_slot_sets_the_hold_and_closing_it_alone_is_not_enough() {
        let w = ReleaseWindow::new();
        let now = Instant::now();
        w.open(Slot(1), now - Duration::from_secs(5));
        w.open(Slot(2), now);
        assert!(w.busy(now, Duration::from_secs(1)), "slot 2 opened just now");
        w.close(Slot(2));
        // Slot 1 is still open but has been for longer than the bound.
        assert!(!w.busy(now, Duration::from_secs(1)));
        assert!(w.busy(now, Duration::from_secs(10)));
        w.close(Slot(1));
        assert!(!w.busy(now, Duration::from_secs(10)));
    }

    #[test]
    fn reopening_a_slot_keeps_its_first_time_and_the_map_is_bounded() {
        let w = ReleaseWindow::new();
        let now = Instant::now();
        w.open(Slot(1), now - Duration::from_secs(5));
        w.open(Slot(1), now);
        assert!(!w.busy(now, Duration::from_secs(1)));
        for s in 0..(MAX_OPEN as u64 + 10) {
            w.open(Slot(100 + s), now - Duration::from_secs(5));
        }
        assert_eq!(w.inner.0.lock().unwrap().len(), MAX_OPEN);
    }
}
