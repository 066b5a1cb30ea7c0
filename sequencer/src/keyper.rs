//! The keyper machine: one committee member's release rule, sans-IO.
//!
//! A keyper follows the admitted-ciphertext feed and checks every ciphertext itself (strict
//! decoding and the batched validity-proof check). A member of the committee's default
//! responder set (the `t + 1` keypers the combiner asks first) computes its decryption share
//! at once, pre-scaled for that set, and holds it; the others hold the checked ciphertext
//! only and compute shares when the sequencer asks them for a fallback round (a blamed or
//! silent responder), so that a block costs `n` validations but only `t + 1` share sets. A
//! keyper releases shares only when all of these hold:
//!
//! 1. the commitment is final ([`CommitmentVerifier`]) and for this keyper's chain and eon;
//! 2. it is the first commitment this keyper has seen for that slot — a second, different one
//!    is equivocation: refused ([`SequencerError::Equivocation`]) and reported with both
//!    commitments as evidence ([`KeyperEvent::Equivocation`]);
//! 3. every committed id is a ciphertext this keyper validated itself (a share for an
//!    unchecked ciphertext with a copied ephemeral key would decrypt someone else's payload);
//! 4. the release record is durable: the machine emits [`KeyperEvent::Persist`] and sends the
//!    batch only after [`KeyperMachine::handle_persisted`]. A restart rebuilds the first
//!    commitment per slot from those records ([`KeyperMachine::restore`]), so equivocation is
//!    caught across restarts too.
//!
//! The first final commitment for a slot is recorded (persisted) as soon as its signature
//! checks, even if the keyper cannot release yet because it has not validated every id (it
//! may still be catching up on the feed): offering the same commitment again later releases;
//! offering another one is equivocation.
//!
//! Validation needs none of the machine's state: [`KeyperMachine::handle_ciphertexts`] is
//! [`FeedValidator::validate`] (decode, proof check, shares) followed by
//! [`KeyperMachine::accept`] (hold), and a shell may run the first on a thread of its own,
//! below the priority of its release path, so that a commitment never waits for a
//! validation step to end.
//!
//! # Memory
//!
//! The validated set is bounded ([`KeyperConfig::max_validated`]): past the bound the oldest
//! entries are dropped (they are the likeliest to have expired), and a commitment naming one
//! is refused like any unvalidated id until the keyper sees that ciphertext again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use veil_crypto::{
    Ciphertext, CryptoError, DecryptionShare, PublicKeySet, ResponderSet, SecretKeyShare,
    ShareBatch, SignedShareBatch,
};
use veil_primitives::{Slot, TxId};

use crate::commitment::{CommitmentVerifier, SignedCommitment};
use crate::error::SequencerError;

/// Default bound on held validated ciphertexts.
pub const DEFAULT_MAX_VALIDATED: usize = 200_000;

/// A keyper's limits. See the `DEFAULT_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyperConfig {
    /// Most validated ciphertexts held (with their precomputed shares).
    pub max_validated: NonZeroUsize,
}

impl Default for KeyperConfig {
    fn default() -> KeyperConfig {
        KeyperConfig { max_validated: NonZeroUsize::new(DEFAULT_MAX_VALIDATED).expect("non-zero") }
    }
}

/// An opaque handle naming one pending persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistToken(pub u64);

/// What a keyper persists before it acts on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyperRecord {
    /// The first final commitment seen for its slot.
    FirstCommitment {
        /// The commitment.
        signed: SignedCommitment,
    },
    /// "Released for slot s": shares for this slot's commitment may be (and are) sent.
    Released {
        /// The slot.
        slot: Slot,
    },
}

/// What the machine asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyperEvent {
    /// Write `record` durably, then call [`KeyperMachine::handle_persisted`] with `token`.
    Persist {
        /// Names this write.
        token: PersistToken,
        /// What to write.
        record: KeyperRecord,
    },
    /// Send this signed share batch to the sequencer.
    SendShares(SignedShareBatch),
    /// Two different final commitments for one slot: keep and report both.
    Equivocation {
        /// The first one seen (the one this keyper honours).
        first: Box<SignedCommitment>,
        /// The refused one.
        second: Box<SignedCommitment>,
    },
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyperStats {
    /// Ciphertexts validated (and their shares precomputed).
    pub validated: u64,
    /// Ciphertexts refused by the validity check.
    pub invalid: u64,
    /// Validated ciphertexts dropped at the memory bound.
    pub dropped: u64,
    /// Share batches released.
    pub batches_released: u64,
    /// Shares released.
    pub shares_released: u64,
    /// Equivocations detected.
    pub equivocations: u64,
}

/// What a keyper does with the feed that needs none of its state: strict decoding, the
/// batched proof check and, for a member of the default responder set, the shares. A shell
/// may run it on a thread of its own, below the priority of its release path, and hand each
/// [`ValidatedRun`] to [`KeyperMachine::accept`]. Made by [`KeyperMachine::validator`].
#[derive(Clone)]
pub struct FeedValidator {
    pks: PublicKeySet,
    share: Arc<SecretKeyShare>,
    /// The default responder set when this keyper is a member of it.
    scaled_for: Option<ResponderSet>,
}

impl std::fmt::Debug for FeedValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedValidator")
            .field("keyper", &self.share.index())
            .field("precomputes_shares", &self.scaled_for.is_some())
            .finish_non_exhaustive()
    }
}

/// Ciphertexts checked by a [`FeedValidator`], to hand to [`KeyperMachine::accept`].
#[derive(Debug)]
pub struct ValidatedRun {
    /// One per input: the id, or why it was refused.
    results: Vec<Result<TxId, CryptoError>>,
    /// The valid ones not skipped, with their shares when precomputed.
    valid: Vec<(Ciphertext, Option<DecryptionShare>)>,
}

impl FeedValidator {
    /// Checks `bodies` and computes the shares of the valid ones. `held` gets the ids of the
    /// bodies that decode and says, for each, whether it is held already: those are
    /// reported valid without the proof check or a share (feed runs overlap fetched bodies,
    /// and a resumed feed repeats what was seen). Decoding comes first because it hashes
    /// each body for its id anyway.
    pub fn validate(
        &self,
        bodies: &[&[u8]],
        held: impl FnOnce(&[TxId]) -> Vec<bool>,
        rng: &mut dyn CryptoRngCore,
    ) -> ValidatedRun {
        let mut results: Vec<Result<TxId, CryptoError>> = Vec::with_capacity(bodies.len());
        let mut decoded: Vec<(usize, Ciphertext)> = Vec::with_capacity(bodies.len());
        for (i, d) in Ciphertext::decode_many(bodies).into_iter().enumerate() {
            match d {
                Ok(ct) => {
                    results.push(Ok(ct.id()));
                    decoded.push((i, ct));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let ids: Vec<TxId> = decoded.iter().map(|(_, ct)| ct.id()).collect();
        let held = held(&ids);
        // An id `held` says nothing about is checked.
        let fresh: Vec<(usize, Ciphertext)> = decoded
            .into_iter()
            .enumerate()
            .filter(|(j, _)| !held.get(*j).copied().unwrap_or(false))
            .map(|(_, c)| c)
            .collect();
        let mut rng = rng;
        let refs: Vec<&Ciphertext> = fresh.iter().map(|(_, ct)| ct).collect();
        let mut bad: HashMap<usize, CryptoError> =
            self.pks.verify_batch(&refs, &mut rng).into_iter().collect();
        let good: Vec<(usize, Ciphertext)> = fresh
            .into_iter()
            .enumerate()
            .filter_map(|(j, (i, ct))| match bad.remove(&j) {
                Some(e) => {
                    results[i] = Err(e);
                    None
                }
                None => Some((i, ct)),
            })
            .collect();
        let refs: Vec<&Ciphertext> = good.iter().map(|(_, ct)| ct).collect();
        // Only members of the default responder set precompute their shares: the others
        // release only when the sequencer asks them for a fallback round.
        let shares = match &self.scaled_for {
            Some(set) => self
                .share
                .decryption_shares(&refs, Some(set))
                .map(|shares| shares.into_iter().map(Some).collect()),
            // The proof check above refused other chains and eons already.
            None => Ok(vec![None; refs.len()]),
        };
        let valid = match shares {
            Ok(shares) => good.into_iter().map(|(_, ct)| ct).zip(shares).collect(),
            // Only a ciphertext of another chain or eon fails here (the proof check passed
            // under this committee's key, so none should): refuse them all with the reason.
            Err(e) => {
                for (i, _) in good {
                    results[i] = Err(e.clone());
                }
                Vec::new()
            }
        };
        ValidatedRun { results, valid }
    }
}

struct Held {
    ciphertext: Ciphertext,
    /// Precomputed for the default responder set; `None` outside it (computed when asked).
    share: Option<DecryptionShare>,
}

struct SlotRelease {
    commitment: SignedCommitment,
    released: bool,
}

/// One keyper's sans-IO state machine. See the module docs.
pub struct KeyperMachine {
    pks: PublicKeySet,
    share: Arc<SecretKeyShare>,
    identity: SigningKey,
    verifier: CommitmentVerifier,
    config: KeyperConfig,
    scaled_for: Option<ResponderSet>,
    feed: FeedValidator,
    held: HashMap<TxId, Held>,
    order: VecDeque<TxId>,
    slots: BTreeMap<Slot, SlotRelease>,
    pending: BTreeMap<PersistToken, KeyperRecord>,
    next_token: u64,
    events: VecDeque<KeyperEvent>,
    stats: KeyperStats,
}

impl std::fmt::Debug for KeyperMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyperMachine")
            .field("keyper", &self.share.index())
            .field("held", &self.held.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl KeyperMachine {
    /// A keyper with its secret share and identity key, trusting `verifier` for finality.
    ///
    /// # Errors
    /// [`SequencerError::Crypto`] if the share does not belong to `pks`.
    pub fn new(
        pks: PublicKeySet,
        share: SecretKeyShare,
        identity: SigningKey,
        verifier: CommitmentVerifier,
        config: KeyperConfig,
    ) -> Result<KeyperMachine, SequencerError> {
        share.check_against(&pks)?;
        let defaults = pks.default_responders();
        let scaled_for = defaults.contains(share.index()).then_some(defaults);
        let share = Arc::new(share);
        let feed = FeedValidator {
            pks: pks.clone(),
            share: Arc::clone(&share),
            scaled_for: scaled_for.clone(),
        };
        Ok(KeyperMachine {
            pks,
            share,
            feed,
            identity,
            verifier,
            config,
            scaled_for,
            held: HashMap::new(),
            order: VecDeque::new(),
            slots: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_token: 0,
            events: VecDeque::new(),
            stats: KeyperStats::default(),
        })
    }

    /// Rebuilds the per-slot state from the records persisted before a restart (in any
    /// order). Validated ciphertexts are not persisted: the keyper re-reads the feed.
    pub fn restore(&mut self, records: Vec<KeyperRecord>) {
        let mut released = Vec::new();
        for r in records {
            match r {
                KeyperRecord::FirstCommitment { signed: c } => {
                    self.slots
                        .entry(c.message.slot)
                        .or_insert(SlotRelease { commitment: c, released: false });
                }
                KeyperRecord::Released { slot } => released.push(slot),
            }
        }
        for slot in released {
            if let Some(s) = self.slots.get_mut(&slot) {
                s.released = true;
            }
        }
    }

    /// This keyper's index in the committee.
    #[must_use]
    pub fn index(&self) -> veil_crypto::KeyperIndex {
        self.share.index()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &KeyperStats {
        &self.stats
    }

    /// Whether `id` is validated and held.
    #[must_use]
    pub fn holds(&self, id: &TxId) -> bool {
        self.held.contains_key(id)
    }

    /// The first commitment recorded for `slot`, if any.
    #[must_use]
    pub fn commitment(&self, slot: Slot) -> Option<&SignedCommitment> {
        self.slots.get(&slot).map(|s| &s.commitment)
    }

    /// Validates ciphertexts from the feed (strict decoding, one batched proof check with
    /// coefficients from `rng`) and precomputes this keyper's shares for the valid ones.
    /// Returns one result per input: the id, or why it was refused. Ids held already are
    /// accepted without rework. The same as [`FeedValidator::validate`] then
    /// [`KeyperMachine::accept`].
    pub fn handle_ciphertexts(
        &mut self,
        bodies: &[&[u8]],
        rng: &mut dyn CryptoRngCore,
    ) -> Vec<Result<TxId, CryptoError>> {
        let held = &self.held;
        let run = self.feed.validate(
            bodies,
            |ids| ids.iter().map(|id| held.contains_key(id)).collect(),
            rng,
        );
        self.accept(run)
    }

    /// The stateless part of [`KeyperMachine::handle_ciphertexts`], for a shell that runs it
    /// on another thread.
    #[must_use]
    pub fn validator(&self) -> FeedValidator {
        self.feed.clone()
    }

    /// Holds the ciphertexts a [`FeedValidator`] of this keyper found valid (with their
    /// shares) and counts the refused ones. Returns the run's results (see
    /// [`KeyperMachine::handle_ciphertexts`]).
    pub fn accept(&mut self, run: ValidatedRun) -> Vec<Result<TxId, CryptoError>> {
        for (ciphertext, share) in run.valid {
            let id = ciphertext.id();
            self.hold(id, Held { ciphertext, share });
        }
        self.stats.invalid += run.results.iter().filter(|r| r.is_err()).count() as u64;
        run.results
    }

    fn hold(&mut self, id: TxId, held: Held) {
        if self.held.insert(id, held).is_none() {
            self.stats.validated += 1;
            self.order.push_back(id);
        }
        while self.held.len() > self.config.max_validated.get() {
            let Some(old) = self.order.pop_front() else { break };
            if self.held.remove(&old).is_some() {
                self.stats.dropped += 1;
            }
        }
    }

    /// Forgets validated ciphertexts that left the pool (committed and released, expired or
    /// evicted), freeing their memory.
    pub fn forget(&mut self, ids: &[TxId]) {
        for id in ids {
            self.held.remove(id);
        }
        if self.order.len() > 2 * self.held.len() + 1024 {
            let held = &self.held;
            self.order.retain(|id| held.contains_key(id));
        }
    }

    /// Handles a final commitment. See the module docs for the rule. On success the keyper
    /// has emitted the persist of its release record (and, for a commitment seen first now,
    /// of the commitment itself); the batch follows [`KeyperMachine::handle_persisted`].
    /// Offering a commitment already released emits its batch again (the sequencer may have
    /// missed it).
    ///
    /// # Errors
    /// [`SequencerError::WrongChain`], [`SequencerError::BadSignature`],
    /// [`SequencerError::WrongEon`], [`SequencerError::Equivocation`] (also reported as an
    /// event) or [`SequencerError::UnvalidatedCiphertext`] (retry once caught up).
    pub fn handle_commitment(&mut self, signed: SignedCommitment) -> Result<(), SequencerError> {
        self.verifier.verify(self.pks.chain_id(), &signed)?;
        if signed.message.eon != self.pks.eon() {
            return Err(SequencerError::WrongEon);
        }
        let slot = signed.message.slot;
        let id = signed.message.id();
        let seen = self.slots.get(&slot).map(|s| (s.commitment.message.id(), s.released));
        match seen {
            Some((first, _)) if first != id => {
                self.stats.equivocations += 1;
                let first_commitment = self.slots[&slot].commitment.clone();
                self.events.push_back(KeyperEvent::Equivocation {
                    first: Box::new(first_commitment),
                    second: Box::new(signed),
                });
                return Err(SequencerError::Equivocation { slot, first, second: id });
            }
            Some((_, true)) => {
                let batch = self.batch_for(slot, self.scaled_for.clone())?;
                self.events.push_back(KeyperEvent::SendShares(batch));
                return Ok(());
            }
            Some((_, false)) => {}
            None => {
                self.slots
                    .insert(slot, SlotRelease { commitment: signed.clone(), released: false });
                self.persist(KeyperRecord::FirstCommitment { signed: signed.clone() });
            }
        }
        if let Some(missing) = signed.message.ordered_ids().find(|id| !self.held.contains_key(id)) {
            return Err(SequencerError::UnvalidatedCiphertext(*missing));
        }
        if !self.pending.values().any(|r| *r == KeyperRecord::Released { slot }) {
            self.persist(KeyperRecord::Released { slot });
        }
        Ok(())
    }

    /// The shell reports `token`'s record durable. A release record's batch is emitted now.
    pub fn handle_persisted(&mut self, token: PersistToken) {
        let Some(record) = self.pending.remove(&token) else { return };
        if let KeyperRecord::Released { slot } = record {
            if let Some(s) = self.slots.get_mut(&slot) {
                s.released = true;
            }
            // A keyper outside the default responder set sends only when asked (a rescale).
            // An error means the ciphertexts left the validated set between the check and the
            // write; offering the commitment again retries.
            if self.scaled_for.is_some() {
                if let Ok(batch) = self.batch_for(slot, self.scaled_for.clone()) {
                    self.events.push_back(KeyperEvent::SendShares(batch));
                }
            }
        }
    }

    /// The fallback round: shares for a released slot, scaled for another responder set
    /// (after the sequencer blamed a keyper of the default set).
    ///
    /// # Errors
    /// [`SequencerError::NotReleased`] for a slot not released here,
    /// [`SequencerError::InvalidResponders`] for a set that is invalid or omits this keyper.
    pub fn handle_rescale(
        &mut self,
        slot: Slot,
        responders: ResponderSet,
    ) -> Result<(), SequencerError> {
        responders.check(&self.pks).map_err(SequencerError::InvalidResponders)?;
        if !responders.contains(self.share.index()) {
            return Err(SequencerError::InvalidResponders(CryptoError::InvalidResponderSet(
                "the set does not name this keyper",
            )));
        }
        if !self.slots.get(&slot).is_some_and(|s| s.released) {
            return Err(SequencerError::NotReleased(slot));
        }
        let batch = self.batch_for(slot, Some(responders))?;
        self.events.push_back(KeyperEvent::SendShares(batch));
        Ok(())
    }

    fn batch_for(
        &mut self,
        slot: Slot,
        scaled_for: Option<ResponderSet>,
    ) -> Result<SignedShareBatch, SequencerError> {
        let commitment =
            &self.slots.get(&slot).ok_or(SequencerError::NotReleased(slot))?.commitment;
        let ids: Vec<TxId> = commitment.message.ordered_ids().copied().collect();
        let mut held = Vec::with_capacity(ids.len());
        for id in &ids {
            held.push(self.held.get(id).ok_or(SequencerError::UnvalidatedCiphertext(*id))?);
        }
        let precomputed: Option<Vec<DecryptionShare>> = if scaled_for == self.scaled_for {
            held.iter().map(|h| h.share).collect()
        } else {
            None
        };
        let shares: Vec<DecryptionShare> = if let Some(shares) = precomputed {
            shares
        } else {
            let cts: Vec<&Ciphertext> = held.iter().map(|h| &h.ciphertext).collect();
            self.share.decryption_shares(&cts, scaled_for.as_ref())?
        };
        self.stats.batches_released += 1;
        self.stats.shares_released += shares.len() as u64;
        Ok(ShareBatch::sign(&self.share, &self.identity, slot, scaled_for, &ids, &shares))
    }

    fn persist(&mut self, record: KeyperRecord) {
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.pending.insert(token, record.clone());
        self.events.push_back(KeyperEvent::Persist { token, record });
    }

    /// The next thing for the shell to do.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<KeyperEvent> {
        self.events.pop_front()
    }
}
