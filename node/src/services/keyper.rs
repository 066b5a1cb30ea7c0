//! The keyper service: one [`KeyperMachine`] on its own thread, fed by its link to the
//! sequencer ([`super::keyper_client`]), persisting its release records through a
//! [`RecordLog`] before it sends a batch.
//!
//! The thread takes [`KeyperInput`]s (feed runs, fetched bodies, commitments, rescale
//! requests) and emits [`KeyperOutput`]s (share batches, fetches of ciphertexts it lacks). A
//! commitment naming ciphertexts the keyper has not validated is kept, the missing bodies are
//! fetched from the sequencer's storage, and the commitment is offered again once they are
//! validated: a keyper that connects late or restarts catches up this way.
//!
//! For devnets and tests a keyper can be made byzantine (it sends wrong shares, re-signed so
//! that they pass the signature check) or silent (it never sends), to watch blame and the
//! threshold.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use veil_primitives::{Signed, Slot, TxId};
use veil_sequencer::keyper::{FeedValidator, KeyperEvent, KeyperMachine, KeyperRecord};
use veil_sequencer::slot::KeyperRequest;
use veil_sequencer::SignedCommitment;
use veil_storage::records::{LogRecord, RecordLog};
use veil_storage::StoreError;

/// The `tracing` target of the events that time a slot's way through a keyper and the
/// sequencer (`RUST_LOG=timeline=debug`): commitment received, validation steps, records
/// durable, batch out.
pub const TIMELINE: &str = "timeline";

/// Inputs queued for a keyper thread before its link waits (each is a feed run of up to
/// 1 MiB, a commitment or a request).
pub const INPUT_QUEUE: usize = 32;

/// How a devnet keyper behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Sends shares that are wrong (two swapped), correctly signed.
    WrongShares,
    /// Never sends a batch.
    Silent,
}

/// An input for a keyper thread.
#[derive(Debug)]
pub enum KeyperInput {
    /// Ciphertexts: a run of the feed, or bodies fetched for a commitment.
    Feed(Vec<Bytes>),
    /// A request from the sequencer.
    Request(KeyperRequest),
    /// Stop after the current input.
    Stop,
}

/// What a keyper thread sends to the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyperOutput {
    /// A signed share batch.
    Shares(Box<veil_crypto::SignedShareBatch>),
    /// The bodies of these committed ciphertexts are needed.
    Fetch(Vec<TxId>),
}

/// A running keyper.
pub struct KeyperService {
    input: mpsc::SyncSender<KeyperInput>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KeyperService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyperService").finish_non_exhaustive()
    }
}

/// The nice value of a keyper's validation thread (Linux; elsewhere it runs at the
/// process's priority): the release thread of its own keyper, of the others and the
/// sequencer's slot work all win the cores from validation while a slot is between its
/// commitment and its plaintext. A nice-10 thread weighs about a tenth of a normal one, so
/// validation still takes every core nothing else wants (the feed keeps up on a machine
/// with spare CPU), and a commitment that names ciphertexts not validated yet has them
/// validated on the release thread instead of waiting.
pub const VALIDATION_NICE: i32 = 10;

impl KeyperService {
    /// Starts the keyper's two threads; restores its release records from `log_path` first.
    ///
    /// - The release thread takes the inputs, handles commitments and rescale requests,
    ///   persists the release records and sends the batches; ciphertexts a commitment names
    ///   and that are not validated yet it validates itself.
    /// - The validation thread checks the feed in steps ([`VALIDATION_STEP`]) at
    ///   [`VALIDATION_NICE`] and hands each step's result to the machine.
    ///
    /// With `threads`, validation gets its own worker pool of that many threads (the
    /// validation thread one of them) and the release thread runs its parallel work inline;
    /// without, both use the process's shared pool (keypers in one process).
    ///
    /// # Errors
    /// [`StoreError`] if the record log cannot be opened.
    pub fn spawn(
        mut machine: KeyperMachine,
        identity: SigningKey,
        behaviour: Behaviour,
        log_path: &Path,
        threads: Option<usize>,
        output: tokio::sync::mpsc::UnboundedSender<KeyperOutput>,
    ) -> Result<KeyperService, StoreError> {
        let (log, stored) = RecordLog::open(log_path)?;
        machine.restore(parse_records(&stored)?);
        let (input, rx) = mpsc::sync_channel::<KeyperInput>(INPUT_QUEUE);
        let name = format!("veil-keyper-{}", machine.index());
        let validator = machine.validator();
        let index = machine.index();
        let shared = Arc::new(Shared {
            machine: Mutex::new(machine),
            feed: Mutex::new(Backlog::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let release_validator = validator.clone();
        let feed_thread = {
            let (shared, name) = (Arc::clone(&shared), name.clone());
            std::thread::Builder::new()
                .name(format!("{name}-validate"))
                .spawn(move || {
                    crate::priority::lower_this_thread(VALIDATION_NICE, "keyper validation");
                    let work = || validate_feed(&shared, &validator, index);
                    // Built here, after the priority is lowered: the pool's workers inherit it.
                    match pool(threads, &format!("{name}-worker")) {
                        Some(pool) => pool.install(work),
                        None => work(),
                    }
                })
                .expect("spawn a keyper validation thread")
        };
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let in_pool = Arc::clone(&shared);
                let work = move || {
                    let mut release = Release {
                        shared: &in_pool,
                        identity: &identity,
                        behaviour,
                        log: &log,
                        output: &output,
                        index,
                        validator: release_validator,
                        waiting: Vec::new(),
                        fetched: BTreeSet::new(),
                        rng: rand_core::OsRng,
                    };
                    release.run(&rx);
                };
                // One thread: parallel work of the release path runs inline, at its priority.
                match pool(threads.map(|_| 1), &format!("{name}-release")) {
                    Some(pool) => pool.install(work),
                    None => work(),
                }
                shared.stop.store(true, Ordering::SeqCst);
                shared.changed.notify_all();
                let _ = feed_thread.join();
            })
            .expect("spawn a keyper thread");
        Ok(KeyperService { input, thread: Some(thread) })
    }

    /// A sender for feed items and requests.
    #[must_use]
    pub fn input(&self) -> mpsc::SyncSender<KeyperInput> {
        self.input.clone()
    }

    /// Stops both threads and waits for them.
    pub fn stop(mut self) {
        let _ = self.input.send(KeyperInput::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A rayon pool of `threads` threads, the calling thread one of them; `None` without
/// `threads` or if it cannot be built (the shared pool is used then).
fn pool(threads: Option<usize>, name: &str) -> Option<rayon::ThreadPool> {
    let name = name.to_string();
    threads.and_then(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .use_current_thread()
            .thread_name(move |i| format!("{name}-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no keyper pool; using the shared one"))
            .ok()
    })
}

/// Bytes of feed a keyper holds in its backlog, beyond the input queue. The release thread
/// drains its queue eagerly into the backlog, so that a commitment or rescale request
/// behind feed runs is acted on at once; past this bound it stops draining until a
/// validation step makes room, the queue fills and the link stops reading, which pushes
/// back on the sequencer through QUIC flow control.
pub const BACKLOG_BYTES: usize = 64 << 20;

/// Ciphertexts validated per step. A commitment does not wait for a large step: what it
/// names and the validation thread has not finished, the release thread validates itself
/// (see `Release::retry_waiting`).
pub const VALIDATION_STEP: usize = 256;

/// A step smaller than this waits up to [`ACCUMULATE`] for more feed: batched proof checks
/// and share computations cost far less per ciphertext in runs of tens than one by one, and
/// a keyper has until the commitment to validate.
pub const MIN_STEP: usize = 64;

/// The longest a ciphertext waits in the backlog for a step to fill up.
pub const ACCUMULATE: Duration = Duration::from_millis(50);

/// The longest a waiting commitment waits for a small validation step that holds what it
/// names, before the release thread validates those ciphertexts itself as well.
pub const STEP_WAIT: Duration = Duration::from_millis(50);

/// What a keyper's release and validation threads share. Lock order: `machine`, then
/// `feed`.
struct Shared {
    machine: Mutex<KeyperMachine>,
    feed: Mutex<Backlog>,
    /// Feed arrived or the keyper stops (for the validation thread); a step finished (for
    /// the release thread waiting for room in a full backlog).
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn machine(&self) -> MutexGuard<'_, KeyperMachine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn feed(&self) -> MutexGuard<'_, Backlog> {
        self.feed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feed bodies received but not validated yet, first in first out, with their ids, so that
/// the ciphertexts a commitment names can be validated ahead of the rest; and the step the
/// validation thread is working on.
#[derive(Default)]
struct Backlog {
    order: std::collections::VecDeque<TxId>,
    bodies: std::collections::HashMap<TxId, Bytes>,
    bytes: usize,
    /// When the backlog last became non-empty.
    since: Option<std::time::Instant>,
    /// The bodies of the step being validated.
    in_step: std::collections::HashMap<TxId, Bytes>,
}

impl Backlog {
    /// Adds `body`, whose id is `id` (hashed by the caller, outside the lock).
    fn push(&mut self, id: TxId, body: Bytes) {
        if self.bodies.contains_key(&id) || self.in_step.contains_key(&id) {
            return;
        }
        self.since.get_or_insert_with(std::time::Instant::now);
        self.bytes += body.len();
        self.bodies.insert(id, body);
        self.order.push_back(id);
    }

    fn take(&mut self, id: &TxId) -> Option<Bytes> {
        let body = self.bodies.remove(id)?;
        self.bytes -= body.len();
        if self.bodies.is_empty() {
            self.since = None;
            self.order.clear();
        }
        Some(body)
    }

    /// Whether the body of `id` is here, waiting or in the current step.
    fn has(&self, id: &TxId) -> bool {
        self.bodies.contains_key(id) || self.in_step.contains_key(id)
    }

    /// The body of `id` for the release thread: taken out if waiting, copied if in the
    /// current step.
    fn take_urgent(&mut self, id: &TxId) -> Option<Bytes> {
        self.take(id).or_else(|| self.in_step.get(id).cloned())
    }

    /// How long the next step may still wait for more feed: zero when it is due.
    fn wait(&self) -> Duration {
        match self.since {
            Some(since) if self.bodies.len() < MIN_STEP => {
                ACCUMULATE.saturating_sub(since.elapsed())
            }
            _ => Duration::ZERO,
        }
    }

    /// Starts a step of up to `n` bodies from the front (ids taken out of order already are
    /// passed over): they stay findable until [`Backlog::end_step`].
    fn start_step(&mut self, n: usize) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(n.min(self.bodies.len()));
        while out.len() < n {
            let Some(id) = self.order.pop_front() else { break };
            if let Some(body) = self.take(&id) {
                self.in_step.insert(id, body.clone());
                out.push(body);
            }
        }
        out
    }

    fn end_step(&mut self) {
        self.in_step.clear();
    }

    fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    fn full(&self) -> bool {
        self.bytes >= BACKLOG_BYTES
    }
}

/// The validation thread: takes a step from the backlog when one is due, validates it with
/// no lock held, and gives the result to the machine. It never wakes the release thread: a
/// waiting commitment has what it names from the backlog or the current step validated on
/// the release thread, and waits only for bodies that come as input.
fn validate_feed(shared: &Shared, validator: &FeedValidator, index: veil_crypto::KeyperIndex) {
    let mut rng = rand_core::OsRng;
    loop {
        let step = {
            let mut feed = shared.feed();
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let wait = if feed.is_empty() { Duration::from_millis(200) } else { feed.wait() };
                if wait.is_zero() {
                    break feed.start_step(VALIDATION_STEP);
                }
                feed = shared
                    .changed
                    .wait_timeout(feed, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        };
        let started = std::time::Instant::now();
        let refs: Vec<&[u8]> = step.iter().map(|b| &b[..]).collect();
        // The machine is locked only to look the decoded ids up: this thread runs at a low
        // priority, and a lock it holds while it waits for a core stops the release thread.
        let held = |ids: &[TxId]| {
            let machine = shared.machine();
            ids.iter().map(|id| machine.holds(id)).collect()
        };
        let run = validator.validate(&refs, held, &mut rng);
        shared.machine().accept(run);
        let backlog = {
            let mut feed = shared.feed();
            feed.end_step();
            feed.bodies.len()
        };
        shared.changed.notify_all();
        tracing::debug!(
            target: TIMELINE,
            keyper = index.get(),
            n = refs.len(),
            backlog,
            took_us = started.elapsed().as_micros() as u64,
            "validated"
        );
    }
}

/// The release thread's state.
struct Release<'a> {
    shared: &'a Shared,
    identity: &'a SigningKey,
    behaviour: Behaviour,
    log: &'a RecordLog,
    output: &'a tokio::sync::mpsc::UnboundedSender<KeyperOutput>,
    index: veil_crypto::KeyperIndex,
    /// The machine's stateless validation, for what a waiting commitment names.
    validator: FeedValidator,
    /// Commitments that named ciphertexts not validated yet: offered again on each input.
    waiting: Vec<SignedCommitment>,
    /// Slots whose missing bodies were fetched already: the retries do not fetch again, but
    /// a commitment arriving from the link again (the sequencer replays them after a
    /// reconnect) does, in case the answer was lost with the old link.
    fetched: BTreeSet<Slot>,
    rng: rand_core::OsRng,
}

impl Release<'_> {
    fn run(&mut self, rx: &mpsc::Receiver<KeyperInput>) {
        loop {
            // Everything queued is taken now: requests act at once, feed goes to the backlog
            // (unless it is full: then the queue waits for a validation step to make room).
            let feed = self.shared.feed();
            if feed.full() {
                let _ = self.shared.changed.wait_timeout(feed, Duration::from_millis(50));
                continue;
            }
            drop(feed);
            let mut next = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(input) => Some(input),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            loop {
                let Some(input) = next.take() else { break };
                match input {
                    KeyperInput::Feed(bodies) => {
                        let bodies: Vec<(TxId, Bytes)> =
                            bodies.into_iter().map(|b| (veil_crypto::tx_id(&b), b)).collect();
                        let mut feed = self.shared.feed();
                        bodies.into_iter().for_each(|(id, b)| feed.push(id, b));
                        drop(feed);
                        self.shared.changed.notify_all();
                    }
                    KeyperInput::Request(KeyperRequest::Commitment(signed)) => {
                        tracing::debug!(
                            target: TIMELINE,
                            slot = signed.message.slot.0,
                            keyper = self.index.get(),
                            "commitment dequeued"
                        );
                        self.fetched.remove(&signed.message.slot);
                        self.offer(signed);
                    }
                    KeyperInput::Request(KeyperRequest::Rescale { slot, responders }) => {
                        if responders.contains(self.index) {
                            if let Err(e) = self.shared.machine().handle_rescale(slot, responders) {
                                tracing::debug!(error = %e, %slot, "rescale refused");
                            }
                        }
                    }
                    KeyperInput::Stop => return,
                }
                if self.shared.feed().full() {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(input) => Some(input),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                };
            }
            // A commitment released just now goes out before anything else is validated.
            if !self.carry_out() {
                return;
            }
            self.retry_waiting();
            if !self.carry_out() {
                return;
            }
        }
    }

    /// Validates, on this thread, what the waiting commitments name and the backlog holds,
    /// then offers them again. What the validation thread's current step holds is left to
    /// it when the step is small (the feed's trickle between slots: the step is that same
    /// work, and it finishes while this thread validates the rest), up to [`STEP_WAIT`];
    /// from a large step (a burst still being validated) or after that wait, it is copied
    /// and validated here too.
    fn retry_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        self.validate_named(false);
        self.wait_for_small_step();
        self.validate_named(true);
        for c in std::mem::take(&mut self.waiting) {
            self.offer(c);
        }
        while self.fetched.len() > 256 {
            self.fetched.pop_first();
        }
    }

    /// Validates here the ciphertexts the waiting commitments name that are not held: those
    /// waiting in the backlog, and with `in_step` those of the current step too.
    fn validate_named(&mut self, in_step: bool) {
        let bodies: Vec<Bytes> = {
            let machine = self.shared.machine();
            let mut feed = self.shared.feed();
            let mut seen = std::collections::HashSet::new();
            self.waiting
                .iter()
                .flat_map(|c| c.message.ordered_ids())
                .filter(|id| !machine.holds(id) && seen.insert(**id))
                .filter_map(|id| if in_step { feed.take_urgent(id) } else { feed.take(id) })
                .collect()
        };
        if bodies.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
        let run = self.validator.validate(&refs, |ids| vec![false; ids.len()], &mut self.rng);
        self.shared.machine().accept(run);
        tracing::debug!(
            target: TIMELINE,
            keyper = self.index.get(),
            n = refs.len(),
            from_step = in_step,
            took_us = started.elapsed().as_micros() as u64,
            "validated for a waiting commitment"
        );
    }

    /// Waits, up to [`STEP_WAIT`], for the validation thread's current step to end if it is
    /// at most [`MIN_STEP`] ciphertexts and holds one a waiting commitment names.
    fn wait_for_small_step(&self) {
        let deadline = std::time::Instant::now() + STEP_WAIT;
        let mut feed = self.shared.feed();
        loop {
            if feed.in_step.is_empty() || feed.in_step.len() > MIN_STEP {
                return;
            }
            let named = self
                .waiting
                .iter()
                .flat_map(|c| c.message.ordered_ids())
                .any(|id| feed.in_step.contains_key(id));
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if !named || left.is_zero() {
                return;
            }
            feed = self
                .shared
                .changed
                .wait_timeout(feed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn offer(&mut self, signed: SignedCommitment) {
        let outcome = self.shared.machine().handle_commitment(signed.clone());
        match outcome {
            Ok(()) => {
                tracing::debug!(
                    target: TIMELINE,
                    slot = signed.message.slot.0,
                    keyper = self.index.get(),
                    "commitment accepted"
                );
            }
            Err(veil_sequencer::SequencerError::UnvalidatedCiphertext(_)) => {
                // Bodies neither validated nor in the backlog are fetched from the
                // sequencer's storage (once per slot); the others are validated on this
                // thread when the commitment is offered again.
                let (missing, unvalidated) = {
                    let machine = self.shared.machine();
                    let feed = self.shared.feed();
                    let unvalidated: Vec<TxId> = signed
                        .message
                        .ordered_ids()
                        .filter(|id| !machine.holds(id))
                        .copied()
                        .collect();
                    let missing: Vec<TxId> =
                        unvalidated.iter().filter(|id| !feed.has(id)).copied().collect();
                    (missing, unvalidated.len())
                };
                if !missing.is_empty() && self.fetched.insert(signed.message.slot) {
                    tracing::info!(slot = %signed.message.slot, missing = missing.len(), "fetching committed ciphertexts not seen on the feed");
                    let _ = self.output.send(KeyperOutput::Fetch(missing));
                }
                if self.waiting.len() < 64 && !self.waiting.contains(&signed) {
                    tracing::debug!(
                        target: TIMELINE,
                        slot = signed.message.slot.0,
                        keyper = self.index.get(),
                        unvalidated,
                        "commitment waits"
                    );
                    self.waiting.push(signed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "commitment refused"),
        }
    }

    fn carry_out(&mut self) -> bool {
        carry_out(&self.shared.machine, self.identity, self.behaviour, self.log, self.output)
    }
}

/// The release records in write order. One that does not parse is refused, never skipped:
/// a skipped first commitment would let this keyper release shares for a second commitment
/// of its slot after a restart.
fn parse_records(stored: &[LogRecord]) -> Result<Vec<KeyperRecord>, StoreError> {
    stored
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::from_slice(&r.body).map_err(|e| StoreError::CorruptRow {
                seq: i as u64 + 1,
                reason: format!("keyper record {:?} of slot {}: {e}", r.kind, r.slot),
            })
        })
        .collect()
}

/// Carries out the machine's events until it has none; false if the thread must stop (a
/// record could not be made durable). The persist events queued together (a slot's first
/// commitment and its release record) are written in one transaction, one fsync instead of
/// one each, and all are durable before the machine hears of any of them: the release path
/// after a commitment waits for one disk flush, not two. The machine is not locked while
/// the records are written.
fn carry_out(
    machine: &Mutex<KeyperMachine>,
    identity: &SigningKey,
    behaviour: Behaviour,
    log: &RecordLog,
    output: &tokio::sync::mpsc::UnboundedSender<KeyperOutput>,
) -> bool {
    let lock = || machine.lock().unwrap_or_else(PoisonError::into_inner);
    let index = lock().index();
    loop {
        let events: Vec<KeyperEvent> = {
            let mut m = lock();
            std::iter::from_fn(|| m.poll_event()).collect()
        };
        if events.is_empty() {
            return true;
        }
        let records: Vec<(Slot, Vec<u8>)> = events
            .iter()
            .filter_map(|e| match e {
                KeyperEvent::Persist { record, .. } => {
                    let slot = match record {
                        KeyperRecord::FirstCommitment { signed } => signed.message.slot,
                        KeyperRecord::Released { slot } => *slot,
                    };
                    Some((slot, serde_json::to_vec(record).expect("records serialise")))
                }
                _ => None,
            })
            .collect();
        if !records.is_empty() {
            let started = std::time::Instant::now();
            let rows: Vec<(&str, Slot, &[u8])> =
                records.iter().map(|(slot, body)| ("keyper", *slot, &body[..])).collect();
            if let Err(e) = log.append_all(&rows) {
                tracing::error!(error = %e, "keyper record not durable; stopping");
                return false;
            }
            tracing::debug!(
                target: TIMELINE,
                slot = records[0].0 .0,
                keyper = index.get(),
                records = records.len(),
                bytes = records.iter().map(|(_, b)| b.len()).sum::<usize>(),
                took_us = started.elapsed().as_micros() as u64,
                "records durable"
            );
        }
        for event in events {
            match event {
                KeyperEvent::Persist { token, .. } => lock().handle_persisted(token),
                KeyperEvent::SendShares(batch) => {
                    let batch = match behaviour {
                        Behaviour::Silent => continue,
                        Behaviour::Honest => batch,
                        Behaviour::WrongShares => tamper(batch, identity),
                    };
                    tracing::debug!(
                        target: TIMELINE,
                        slot = batch.message.slot.0,
                        keyper = index.get(),
                        "batch out"
                    );
                    let _ = output.send(KeyperOutput::Shares(Box::new(batch)));
                }
                KeyperEvent::Equivocation { first, second } => {
                    tracing::error!(
                        slot = %first.message.slot,
                        first = %veil_primitives::hexbytes::encode(&first.message.id()),
                        second = %veil_primitives::hexbytes::encode(&second.message.id()),
                        "EQUIVOCATION: two commitments for one slot; the second is refused"
                    );
                }
            }
        }
    }
}

/// Swaps the first two shares and signs again: wrong shares under a valid signature.
fn tamper(
    batch: veil_crypto::SignedShareBatch,
    identity: &SigningKey,
) -> veil_crypto::SignedShareBatch {
    let mut m = batch.message;
    if m.shares.len() > 1 {
        let first = m.shares[0].0;
        m.shares[0].0 = m.shares[1].0;
        m.shares[1].0 = first;
    } else if let Some(s) = m.shares.first_mut() {
        s.0[60] ^= 1;
    }
    Signed::sign(m, identity)
}

/// Everything one keyper needs to run: its keys, where the sequencer is, where its records go.
pub struct KeyperSetup {
    /// The committee.
    pub pks: veil_crypto::PublicKeySet,
    /// This keyper's secret share.
    pub share: veil_crypto::SecretKeyShare,
    /// This keyper's identity key (the committee's identity for its index).
    pub identity: SigningKey,
    /// The sequencer's keyper endpoint.
    pub sequencer: std::net::SocketAddr,
    /// The sequencer's key: commitments and the welcome are signed by it.
    pub sequencer_key: veil_primitives::PublicKeyBytes,
    /// The release-record log.
    pub log_path: std::path::PathBuf,
    /// Honest, or a fault for devnets and tests.
    pub behaviour: Behaviour,
    /// Worker threads of the keyper's own pool; `None`: the process's shared pool.
    pub threads: Option<usize>,
}

/// A keyper thread and its link to the sequencer.
pub struct RunningKeyper {
    service: Option<KeyperService>,
    link: tokio::task::JoinHandle<()>,
    status: std::sync::Arc<super::keyper_client::LinkStatus>,
}

impl std::fmt::Debug for RunningKeyper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningKeyper").field("status", &self.status).finish_non_exhaustive()
    }
}

impl RunningKeyper {
    /// Checks the keys against the committee, restores the records, starts the thread and the
    /// link. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// If the share or identity does not belong to the committee, or the log cannot be opened.
    pub fn start(setup: KeyperSetup) -> anyhow::Result<RunningKeyper> {
        let index = setup.share.index();
        let member = setup.pks.keyper(index)?;
        if member.identity != setup.identity.verifying_key() {
            anyhow::bail!("the identity key is not keyper {}'s in the committee", index.get());
        }
        let machine = KeyperMachine::new(
            setup.pks.clone(),
            setup.share,
            setup.identity.clone(),
            veil_sequencer::CommitmentVerifier::Key(setup.sequencer_key),
            veil_sequencer::KeyperConfig::default(),
        )?;
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let service = KeyperService::spawn(
            machine,
            setup.identity.clone(),
            setup.behaviour,
            &setup.log_path,
            setup.threads,
            out_tx,
        )?;
        let status = std::sync::Arc::new(super::keyper_client::LinkStatus::default());
        let link = tokio::spawn(super::keyper_client::run(
            super::keyper_client::LinkConfig {
                sequencer: setup.sequencer,
                sequencer_key: setup.sequencer_key,
                chain_id: setup.pks.chain_id(),
                eon: setup.pks.eon(),
                keyper: index,
                identity: setup.identity,
            },
            service.input(),
            out_rx,
            status.clone(),
        ));
        Ok(RunningKeyper { service: Some(service), link, status })
    }

    /// The link's state.
    #[must_use]
    pub fn status(&self) -> &super::keyper_client::LinkStatus {
        &self.status
    }

    /// Stops the link and the thread.
    pub async fn stop(mut self) {
        self.link.abort();
        if let Some(service) = self.service.take() {
            let _ = tokio::task::spawn_blocking(move || service.stop()).await;
        }
    }
}

/// A keyper's key file: its secret share and identity key, JSON, written mode 0600.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyperKeyFile {
    /// The secret share file (`veil_crypto::SecretKeyShare::to_json`), embedded.
    pub share: serde_json::Value,
    /// The ed25519 identity secret key, `0x` hex.
    pub identity: zeroize::Zeroizing<String>,
}

impl KeyperKeyFile {
    /// The file for `share` and `identity`.
    #[must_use]
    pub fn new(share: &veil_crypto::SecretKeyShare, identity: &SigningKey) -> KeyperKeyFile {
        KeyperKeyFile {
            share: serde_json::from_str(&share.to_json()).expect("the share file is JSON"),
            identity: zeroize::Zeroizing::new(veil_primitives::hexbytes::encode(
                &identity.to_bytes(),
            )),
        }
    }

    /// Parses the file's keys.
    ///
    /// # Errors
    /// If a field is malformed.
    pub fn keys(&self) -> anyhow::Result<(veil_crypto::SecretKeyShare, SigningKey)> {
        let share = veil_crypto::SecretKeyShare::from_json(&self.share.to_string())?;
        let bytes = veil_primitives::hexbytes::decode_fixed::<32>(&self.identity)
            .map_err(|e| anyhow::anyhow!("identity: {e}"))?;
        Ok((share, SigningKey::from_bytes(&bytes)))
    }

    /// Writes the file readable by its owner only.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let json = zeroize::Zeroizing::new(serde_json::to_string_pretty(self)?);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        f.write_all(json.as_bytes())?;
        f.sync_all()?;
        Ok(())
    }
}

/// How to start one `veil keyper` child process on this machine (the devnet's
/// `--keyper-processes` and `veil-perf pipeline` use it): writes the keyper's key file and
/// builds the command.
#[derive(Debug, Clone)]
pub struct KeyperLaunch {
    /// The `veil` executable.
    pub exe: std::path::PathBuf,
    /// The committee's public key set file (written by the caller once for all keypers).
    pub committee: std::path::PathBuf,
    /// The sequencer's keyper endpoint.
    pub sequencer: std::net::SocketAddr,
    /// The sequencer's key.
    pub sequencer_key: veil_primitives::PublicKeyBytes,
    /// Worker threads per keyper (`veil keyper --threads`); keypers that share a machine
    /// should split its cores rather than each start one thread per core.
    pub threads: usize,
    /// `RUST_LOG` for the child when the caller's environment sets none.
    pub default_log: &'static str,
    /// The keypers that run at normal priority: the committee's default responder set, whose
    /// shares every slot waits for. The others run at `background_nice` (`veil keyper
    /// --nice`): they validate ahead of time too, but their shares are asked for only in a
    /// fallback round, so on a shared machine they yield the cores to the responders.
    /// `None`: every keyper at normal priority.
    pub foreground: Option<veil_crypto::ResponderSet>,
    /// The nice value of keypers outside `foreground` ([`BACKGROUND_NICE`] by default).
    pub background_nice: i32,
}

/// The Unix nice value [`KeyperLaunch`] gives keypers outside the default responder set.
///
/// Low enough that the responders win the cores while all validate a burst (a nice-10
/// thread weighs about a tenth of a normal one), high enough that the background keypers
/// keep up with the feed on a machine busy with other work, which they must to serve a
/// fallback round. At 19 (a seventieth) they did not: with two CPU-bound processes beside
/// `veil devnet --keyper-processes --byzantine 1`, 4 of 6 slots were undecryptable, twice;
/// at 10, none. `veil-perf pipeline` at 10 gave commit→plaintext p99 296 ms (p50 140),
/// within the spread of runs at 19 (207–439 ms, p50 116–136).
pub const BACKGROUND_NICE: i32 = 10;

impl KeyperLaunch {
    /// Threads per keyper when `keypers` processes share this machine's cores.
    #[must_use]
    pub fn threads_for(keypers: usize) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (cores / keypers.max(1)).max(1)
    }

    /// The nice value keyper `index` starts with.
    #[must_use]
    pub fn nice_for(&self, index: veil_crypto::KeyperIndex) -> i32 {
        match &self.foreground {
            Some(set) if !set.contains(index) => self.background_nice,
            _ => 0,
        }
    }

    /// Writes `share` and `identity` to `dir/key.json` (mode 0600) and starts the keyper with
    /// its records in `dir`, its output to `log`.
    ///
    /// # Errors
    /// If the key file cannot be written or the process cannot start.
    pub fn spawn(
        &self,
        share: &veil_crypto::SecretKeyShare,
        identity: &SigningKey,
        dir: &Path,
        behaviour: Behaviour,
        log: std::fs::File,
    ) -> anyhow::Result<std::process::Child> {
        use anyhow::Context;
        std::fs::create_dir_all(dir)?;
        let key_file = dir.join("key.json");
        KeyperKeyFile::new(share, identity).write(&key_file)?;
        let behaviour = match behaviour {
            Behaviour::Honest => "honest",
            Behaviour::WrongShares => "wrong-shares",
            Behaviour::Silent => "silent",
        };
        std::process::Command::new(&self.exe)
            .arg("keyper")
            .arg("--committee")
            .arg(&self.committee)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--sequencer")
            .arg(self.sequencer.to_string())
            .arg("--sequencer-key")
            .arg(veil_primitives::hexbytes::encode(&self.sequencer_key.0))
            .arg("--data-dir")
            .arg(dir)
            .arg("--behaviour")
            .arg(behaviour)
            .arg("--threads")
            .arg(self.threads.to_string())
            .arg("--nice")
            .arg(self.nice_for(share.index()).to_string())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| self.default_log.into()))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} keyper", self.exe.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_crypto::testing::{rng, TestCommittee};
    use veil_crypto::{Ciphertext, SecretKeyShare};
    use veil_primitives::{Amount, RollupId};
    use veil_sequencer::{Commitment, CommittedBlock, Finalizer, KeyFinalizer, KeyperConfig};

    /// Co-located keypers: the default responders at normal priority, the rest in the
    /// background; without a foreground set, everyone at normal priority.
    #[test]
    fn only_keypers_outside_the_default_responders_run_in_the_background() {
        let c = TestCommittee::new(16, 11, 3);
        let mut launch = KeyperLaunch {
            exe: "veil".into(),
            committee: "committee.json".into(),
            sequencer: "127.0.0.1:1".parse().unwrap(),
            sequencer_key: veil_primitives::PublicKeyBytes([0; 32]),
            threads: 1,
            default_log: "warn",
            foreground: Some(c.pks.default_responders()),
            background_nice: BACKGROUND_NICE,
        };
        let nice: Vec<i32> = c.shares.iter().map(|s| launch.nice_for(s.index())).collect();
        assert_eq!(nice.iter().filter(|&&n| n == 0).count(), 12);
        assert_eq!(nice.iter().filter(|&&n| n == BACKGROUND_NICE).count(), 4);
        for s in &c.shares {
            let responder = c.pks.default_responders().contains(s.index());
            assert_eq!(launch.nice_for(s.index()) == 0, responder);
        }
        launch.foreground = None;
        assert!(c.shares.iter().all(|s| launch.nice_for(s.index()) == 0));
    }

    /// A default responder's release: the first commitment and the release record are both
    /// durable, in that order, when the batch goes out (one write for both).
    #[test]
    fn both_records_of_a_release_are_durable_before_its_batch() {
        let c = TestCommittee::new(4, 1, 11);
        let finalizer = KeyFinalizer::new(SigningKey::from_bytes(&[42; 32]));
        let share = SecretKeyShare::from_json(&c.shares[0].to_json()).unwrap();
        let mut machine = KeyperMachine::new(
            c.pks.clone(),
            share,
            c.identities[0].clone(),
            finalizer.verifier(),
            KeyperConfig::default(),
        )
        .unwrap();
        let cts: Vec<Ciphertext> = (1..=3u8)
            .map(|n| c.pks.encrypt(&c.ad(0, 10), &[n; 64], &mut rng(u64::from(n))).unwrap())
            .collect();
        let bodies: Vec<&[u8]> = cts.iter().map(Ciphertext::as_bytes).collect();
        assert!(machine.handle_ciphertexts(&bodies, &mut rng(5)).iter().all(Result::is_ok));
        let signed = finalizer
            .finalize(Commitment {
                chain_id: c.pks.chain_id(),
                slot: Slot(7),
                eon: c.pks.eon(),
                blocks: vec![CommittedBlock {
                    rollup: RollupId(0),
                    winner: None,
                    payment: Amount::ZERO,
                    ciphertexts: cts.iter().map(Ciphertext::id).collect(),
                }],
                outcome_hash: [7; 32],
            })
            .unwrap();
        machine.handle_commitment(signed.clone()).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyper.sqlite");
        let (log, _) = RecordLog::open(&path).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let machine = Mutex::new(machine);
        assert!(carry_out(&machine, &c.identities[0], Behaviour::Honest, &log, &tx));
        let Ok(KeyperOutput::Shares(batch)) = rx.try_recv() else { panic!("no batch sent") };
        assert_eq!(batch.message.slot, Slot(7));
        assert_eq!(batch.message.shares.len(), 3);
        assert!(rx.try_recv().is_err(), "one batch");
        assert!(machine.lock().unwrap().poll_event().is_none(), "every event carried out");

        drop(log);
        let (_, stored) = RecordLog::open(&path).unwrap();
        let records: Vec<KeyperRecord> =
            stored.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
        assert_eq!(
            records,
            vec![
                KeyperRecord::FirstCommitment { signed },
                KeyperRecord::Released { slot: Slot(7) }
            ]
        );
    }

    /// A release record that does not parse stops the keyper with a typed error naming it;
    /// it is not skipped (a forgotten first commitment would let a second one through).
    #[test]
    fn an_unreadable_release_record_is_refused_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyper.sqlite");
        let (log, _) = RecordLog::open(&path).unwrap();
        let good = serde_json::to_vec(&KeyperRecord::Released { slot: Slot(3) }).unwrap();
        log.append("keyper", Slot(3), &good).unwrap();
        log.append("keyper", Slot(4), b"{\"kind\":\"first_commitment\",\"signed\":7}").unwrap();
        drop(log);
        let (_, stored) = RecordLog::open(&path).unwrap();
        assert_eq!(
            parse_records(&stored[..1]).unwrap(),
            vec![KeyperRecord::Released { slot: Slot(3) }]
        );
        match parse_records(&stored) {
            Err(StoreError::CorruptRow { seq: 2, reason }) => {
                assert!(reason.contains("slot 4"), "{reason}");
            }
            other => panic!("expected the second record refused: {other:?}"),
        }
    }
}
