//! The in-process keyper service: one [`KeyperMachine`] on its own thread, fed by the
//! ingress's admitted-ciphertext feed, persisting its release records through a
//! [`RecordLog`] before it sends a batch.
//!
//! In the devnet a keyper can be made byzantine (it sends wrong shares, re-signed so that they
//! pass the signature check) or silent (it never sends), to watch blame and the threshold.
//! The QUIC keyper protocol and `veil keyper` as a separate process replace the channels
//! here next; the machine and the record log stay as they are.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use veil_primitives::Signed;
use veil_sequencer::keyper::{KeyperEvent, KeyperMachine, KeyperRecord};
use veil_sequencer::slot::KeyperRequest;
use veil_sequencer::SignedCommitment;
use veil_storage::records::RecordLog;
use veil_storage::StoreError;

use super::sequencer::SequencerInput;

/// How a devnet keyper behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Sends shares that are wrong (two swapped), correctly signed.
    WrongShares,
    /// Never sends a batch.
    Silent,
}

/// An input for a keyper thread.
pub enum KeyperInput {
    /// Admitted ciphertexts from the feed.
    Feed(Vec<Bytes>),
    /// A request from the sequencer.
    Request(KeyperRequest),
    /// Stop after the current input.
    Stop,
}

/// A running keyper.
pub struct KeyperService {
    input: mpsc::Sender<KeyperInput>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KeyperService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyperService").finish_non_exhaustive()
    }
}

impl KeyperService {
    /// Starts the keyper thread; restores its release records from `log_path` first.
    ///
    /// # Errors
    /// [`StoreError`] if the record log cannot be opened.
    pub fn spawn(
        mut machine: KeyperMachine,
        identity: SigningKey,
        behaviour: Behaviour,
        log_path: &Path,
        sequencer: mpsc::Sender<SequencerInput>,
    ) -> Result<KeyperService, StoreError> {
        let (log, stored) = RecordLog::open(log_path)?;
        machine
            .restore(stored.iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect());
        let (input, rx) = mpsc::channel::<KeyperInput>();
        let name = format!("veil-keyper-{}", machine.index());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(machine, identity, behaviour, &log, &rx, &sequencer))
            .expect("spawn a keyper thread");
        Ok(KeyperService { input, thread: Some(thread) })
    }

    /// A sender for feed items and requests.
    #[must_use]
    pub fn input(&self) -> mpsc::Sender<KeyperInput> {
        self.input.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        let _ = self.input.send(KeyperInput::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut machine: KeyperMachine,
    identity: SigningKey,
    behaviour: Behaviour,
    log: &RecordLog,
    rx: &mpsc::Receiver<KeyperInput>,
    sequencer: &mpsc::Sender<SequencerInput>,
) {
    let mut rng = rand_core::OsRng;
    // Commitments that named ciphertexts not validated yet: offered again after each feed.
    let mut waiting: Vec<SignedCommitment> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(KeyperInput::Feed(bodies)) => {
                let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
                let _ = machine.handle_ciphertexts(&refs, &mut rng);
                for c in std::mem::take(&mut waiting) {
                    offer(&mut machine, c, &mut waiting);
                }
            }
            Ok(KeyperInput::Request(KeyperRequest::Commitment(signed))) => {
                offer(&mut machine, signed, &mut waiting);
            }
            Ok(KeyperInput::Request(KeyperRequest::Rescale { slot, responders })) => {
                if responders.contains(machine.index()) {
                    if let Err(e) = machine.handle_rescale(slot, responders) {
                        tracing::debug!(error = %e, %slot, "rescale refused");
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(KeyperInput::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Some(event) = machine.poll_event() {
            match event {
                KeyperEvent::Persist { token, record } => {
                    let slot = match &record {
                        KeyperRecord::FirstCommitment { signed } => signed.message.slot,
                        KeyperRecord::Released { slot } => *slot,
                    };
                    let body = serde_json::to_vec(&record).expect("records serialise");
                    if let Err(e) = log.append("keyper", slot, &body) {
                        tracing::error!(error = %e, "keyper record not durable; stopping");
                        return;
                    }
                    machine.handle_persisted(token);
                }
                KeyperEvent::SendShares(batch) => {
                    let batch = match behaviour {
                        Behaviour::Silent => continue,
                        Behaviour::Honest => batch,
                        Behaviour::WrongShares => tamper(batch, &identity),
                    };
                    let _ = sequencer.send(SequencerInput::Batch(Box::new(batch)));
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

fn offer(
    machine: &mut KeyperMachine,
    signed: SignedCommitment,
    waiting: &mut Vec<SignedCommitment>,
) {
    match machine.handle_commitment(signed.clone()) {
        Ok(()) => {}
        Err(veil_sequencer::SequencerError::UnvalidatedCiphertext(_)) => waiting.push(signed),
        Err(e) => tracing::warn!(error = %e, "commitment refused"),
    }
}

/// Swaps the first two shares and signs again: wrong shares under a valid signature.
fn tamper(
    batch: veil_crypto::SignedShareBatch,
    identity: &SigningKey,
) -> veil_crypto::SignedShareBatch {
    let mut m = batch.message;
    if m.entries.len() > 1 {
        let first = m.entries[0].share;
        m.entries[0].share = m.entries[1].share;
        m.entries[1].share = first;
    } else if let Some(e) = m.entries.first_mut() {
        e.share[60] ^= 1;
    }
    Signed::sign(m, identity)
}
