//! The slot machine: one slot's way from bids to settled payouts, sans-IO.
//!
//! ```text
//!  Open ──deadline──▶ Closed ──persisted──▶ (Sign) ──signed+persisted──▶ Committed
//!   bids                 auction close,                                   │ share batches
//!                        commitment decided                               ▼
//!  Settled ◀──persisted── Decrypted ◀──t+1 good batches── Released ◀──────┘
//!                                              └── release timeout ──▶ Undecryptable
//! ```
//!
//! [`SlotMachine`] runs every slot of a chain. Slots are pipelined: slot `s + 1` opens for
//! bids at its start time while `s` is still being released and decrypted. Time comes in as
//! `now_ms` on every input, randomness as an RNG argument, and the pool as a [`PoolView`].
//!
//! # The rules
//!
//! - **Persist, then sign; persist, then publish.** The decided commitment is persisted before
//!   the machine asks for its signature ([`SlotEvent::Sign`]); the signed commitment is
//!   persisted before it goes to the keypers. **One commitment per slot, ever:** a restart
//!   restores the persisted commitment rather than deciding again ([`SlotMachine::restore`]).
//! - **Committed ciphertexts are in flight.** From the moment a slot closes until it is
//!   decrypted or abandoned, its ciphertexts cannot be named by a bid for a later slot nor
//!   fill a later fallback block.
//! - **Decryption.** Batches are verified on arrival and summed into the block's
//!   [`BlockCombiner`] for the target responder set as they come; when every member of the
//!   set has sent one, only the aggregate check and the openings are left (if they do not
//!   conclude, [`decrypt_block`] combines from scratch and blames). A blamed keyper is
//!   excluded and the `t + 1` lowest-indexed others are asked for batches scaled for that new
//!   set (the fallback round, [`KeyperRequest::Rescale`]), rather than recombining slowly.
//! - **Undecryptable.** With fewer than `t + 1` good batches by the release deadline, the
//!   slot is abandoned: nothing is revealed, the winners' locked payments are released, and
//!   the ciphertexts are free again for a later slot.
//! - **Publication** per rollup in committed order: a ciphertext that does not decrypt is
//!   marked failed and keeps its place; an atomic bundle with a failed part is dropped whole,
//!   in every rollup it touches.
//!
//! # Restart
//!
//! Every step of a slot is persisted before the machine acts on it ([`SlotRecord`]), and
//! [`SlotMachine::restore`] rebuilds a fresh machine from those records after a crash
//! (`kill -9` included). Each slot resumes where its latest record left it, and the auction
//! inside the machine gets back the state it would have had without the crash:
//!
//! - **The outcome is persisted with the commitment.** The `Decided` record carries the
//!   auction's [`Outcome`] beside the commitment, whose `outcome_hash` binds it. Restore
//!   checks the hash (and that the signed commitment is the decided one, and a settled ledger
//!   the outcome's) and refuses the whole log on a mismatch: the outcome is the only record
//!   of what the winners owe, so a log that contradicts itself is corrupt or from an
//!   incompatible version, and skipping the slot would either lose its money or decide it a
//!   second time.
//! - **Money.** A closed, committed or decrypted slot has its winners' payments locked again
//!   and its outcome waiting to be settled or abandoned; a settled slot has them debited; an
//!   abandoned one neither. Balances, locked payments and available collateral are those of
//!   the uninterrupted run, so payouts credited still equal payments debited, exactly.
//! - **Slot order.** No slot up to the last restored one opens again, and no rollup change
//!   can take effect in one.
//! - **Registry changes** accepted after genesis (rollup updates, deposit notices, withdrawal
//!   requests, withdrawals released at slot boundaries) are [`SlotRecord::Registry`] records,
//!   persisted before anyone is told they were accepted ([`SlotMachine::handle_registry`]).
//!   Restore replays them in log order, interleaved with the slots (each slot at its first
//!   record), so admin keys, nonces, scheduled terms, deposits credited, balances and pending
//!   withdrawals come back exactly; a replayed admin or withdrawal nonce is refused as stale
//!   afterwards, as before the restart.
//! - **Not restored here:** the genesis registries (the caller rebuilds the genesis auction
//!   first), and the bids of a slot that was still open at the crash (it opens again with an
//!   empty book if its deadline has not passed).
//! - **Old logs.** Records written before the `Decided` record carried the outcome do not
//!   decode as [`SlotRecord`]s; such logs are not supported (devnets start from a fresh data
//!   directory).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::num::NonZeroU64;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use veil_auction::{
    Auction, AuctionError, BidReceipt, LedgerEntry, Outcome, SignedBid, SignedRollupUpdate,
    SignedWithdrawal, VerifiedBid,
};
use veil_crypto::{
    decrypt_block, Blame, BlockCombiner, Ciphertext, CryptoError, DecryptOutcome, KeyperIndex,
    PublicKeySet, ResponderSet, SignedShareBatch, VerifiedShareBatch,
};
use veil_primitives::{
    hexbytes, Amount, BundleId, CiphertextIndex, PublicKeyBytes, RollupId, SignedDepositNotice,
    Slot, TxId, TxMeta,
};

use crate::commitment::{Commitment, SignedCommitment};
use crate::error::SequencerError;
use crate::keyper::PersistToken;

/// Default slot length.
pub const DEFAULT_SLOT_MS: u64 = 2_000;
/// Default bidding window from the slot's start.
pub const DEFAULT_BID_WINDOW_MS: u64 = 1_000;
/// Default time after the commitment within which `t + 1` good batches must arrive.
pub const DEFAULT_RELEASE_TIMEOUT_MS: u64 = 2_000;

/// The slot clock: when each slot opens, closes and must be released by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotClock {
    /// The start of slot 0, in the caller's millisecond clock.
    pub genesis_ms: u64,
    /// Slot length.
    pub slot_ms: NonZeroU64,
    /// Bidding window from a slot's start (its deadline); at most the slot length.
    pub bid_window_ms: u64,
    /// Time after the close within which `t + 1` good batches must arrive.
    pub release_timeout_ms: u64,
}

impl SlotClock {
    /// The default timings from `genesis_ms`.
    #[must_use]
    pub fn new(genesis_ms: u64) -> SlotClock {
        SlotClock {
            genesis_ms,
            slot_ms: NonZeroU64::new(DEFAULT_SLOT_MS).expect("non-zero"),
            bid_window_ms: DEFAULT_BID_WINDOW_MS,
            release_timeout_ms: DEFAULT_RELEASE_TIMEOUT_MS,
        }
    }

    /// When `slot` opens for bids.
    #[must_use]
    pub fn start_ms(&self, slot: Slot) -> u64 {
        self.genesis_ms.saturating_add(slot.0.saturating_mul(self.slot_ms.get()))
    }

    /// When bidding for `slot` closes.
    #[must_use]
    pub fn deadline_ms(&self, slot: Slot) -> u64 {
        self.start_ms(slot).saturating_add(self.bid_window_ms.min(self.slot_ms.get()))
    }

    /// When `slot` becomes undecryptable if it is not decrypted.
    #[must_use]
    pub fn release_deadline_ms(&self, slot: Slot) -> u64 {
        self.deadline_ms(slot).saturating_add(self.release_timeout_ms)
    }

    /// The slot in progress at `now_ms` (slot 0 before genesis).
    #[must_use]
    pub fn slot_at(&self, now_ms: u64) -> Slot {
        Slot(now_ms.saturating_sub(self.genesis_ms) / self.slot_ms.get())
    }
}

/// What the slot machine reads from the mempool.
pub trait PoolView: CiphertextIndex {
    /// Every pending, durable ciphertext with its metadata (for fallback blocks).
    fn pending(&self) -> Vec<(TxId, TxMeta)>;
    /// The canonical bytes of a pending ciphertext.
    fn body(&self, id: &TxId) -> Option<Vec<u8>>;
}

/// Where a slot is. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SlotState {
    /// Taking bids.
    Open,
    /// Closed; the commitment is decided and being persisted and signed.
    Closed,
    /// The signed commitment is out; waiting for share batches.
    Committed,
    /// Decrypted; the plaintext block is being persisted.
    Decrypted,
    /// Published and settled: done.
    Settled,
    /// Not decrypted in time: abandoned, nothing revealed.
    Undecryptable,
}

/// One ciphertext's fate in a published block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxResult {
    /// It decrypted; the payload.
    Included(#[serde(with = "hexbytes::serde_vec")] Vec<u8>),
    /// It did not decrypt: the sender's fault, its fee is charged, it keeps its place.
    Failed,
    /// It is part of an atomic bundle of which a part failed: dropped, in every rollup.
    DroppedWithBundle(BundleId),
}

/// One published transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedTx {
    /// The ciphertext.
    pub id: TxId,
    /// What became of it.
    pub result: TxResult,
}

/// One rollup's published block, in committed order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedBlock {
    /// The rollup.
    pub rollup: RollupId,
    /// Every committed ciphertext, in order.
    pub txs: Vec<PublishedTx>,
}

/// A decrypted slot, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedSlot {
    /// The slot.
    pub slot: Slot,
    /// One block per committed rollup, sorted by rollup.
    pub blocks: Vec<PublishedBlock>,
    /// Keypers blamed while decrypting.
    pub blamed: Vec<Blame>,
    /// The transaction fees this slot moves (settled with it).
    #[serde(default)]
    pub fees: Vec<FeeEntry>,
}

/// Who earns a block's transaction fees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum FeeRecipient {
    /// The builder whose winning bid built the block.
    Builder(PublicKeyBytes),
    /// The rollup itself, for the sequencer's fallback block of an unsold rollup.
    Rollup(RollupId),
}

/// A transaction fee moved at settlement (DESIGN.md, "Fees and spam"): every committed
/// transaction of a decrypted slot pays its declared fee (`max_fee`), whether its payload
/// decrypted, failed or was dropped with its bundle, and each block's fees go to who built it.
/// Per slot, the credits sum exactly to the charges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeeEntry {
    /// A transaction's declared fee charged to its fee payer.
    Charge {
        /// The transaction.
        tx: TxId,
        /// Its fee payer.
        payer: PublicKeyBytes,
        /// Its `max_fee`.
        amount: Amount,
    },
    /// One rollup's block fees credited to who built the block.
    Credit {
        /// The rollup.
        rollup: RollupId,
        /// The builder, or the rollup for a fallback block.
        to: FeeRecipient,
        /// The sum of the block's charges.
        amount: Amount,
    },
}

impl FeeEntry {
    /// The amount moved.
    #[must_use]
    pub fn amount(&self) -> Amount {
        match self {
            FeeEntry::Charge { amount, .. } | FeeEntry::Credit { amount, .. } => *amount,
        }
    }
}

/// What the machine persists before it acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotRecord {
    /// The decided (unsigned) commitment and the auction outcome it commits to: restoring it
    /// means never deciding again, and gives the auction back what the slot's winners owe.
    Decided {
        /// The commitment.
        commitment: Commitment,
        /// The auction's outcome of the close; `commitment.outcome_hash` is its hash.
        outcome: Box<Outcome>,
    },
    /// The signed commitment.
    Signed {
        /// The commitment with its signature.
        signed: SignedCommitment,
    },
    /// The published plaintext block.
    Decrypted {
        /// The block.
        published: PublishedSlot,
    },
    /// The settlement's ledger entries.
    Settled {
        /// The slot.
        slot: Slot,
        /// Debits and payouts.
        ledger: Vec<LedgerEntry>,
        /// The transaction fees charged and credited.
        #[serde(default)]
        fees: Vec<FeeEntry>,
    },
    /// The slot was abandoned.
    Undecryptable {
        /// The slot.
        slot: Slot,
    },
    /// A registry change (rollup update, deposit, withdrawal, release), in the order it was
    /// accepted among the slot records: restore replays it at its place.
    Registry {
        /// The change.
        change: RegistryRecord,
    },
}

impl SlotRecord {
    /// The slot the record is about (for a registry change, the slot it was accepted at).
    #[must_use]
    pub fn slot(&self) -> Slot {
        match self {
            SlotRecord::Decided { commitment, .. } => commitment.slot,
            SlotRecord::Signed { signed } => signed.message.slot,
            SlotRecord::Decrypted { published } => published.slot,
            SlotRecord::Settled { slot, .. } | SlotRecord::Undecryptable { slot } => *slot,
            SlotRecord::Registry { change } => change.at(),
        }
    }
}

/// A change to the registries, handed to [`SlotMachine::handle_registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    /// A rollup admin message: register, configure, rotate the admin key.
    RollupUpdate(Box<SignedRollupUpdate>),
    /// A bridge-signed deposit notice crediting a builder's collateral.
    Deposit(Box<SignedDepositNotice>),
    /// A builder's signed withdrawal request.
    Withdrawal(Box<SignedWithdrawal>),
}

/// A registry change as persisted ([`SlotRecord::Registry`]). Each carries the slot it was
/// accepted at, and what restore needs to apply it again exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RegistryRecord {
    /// An accepted rollup admin message.
    RollupUpdate {
        /// The earliest slot a change could take effect in when it was accepted.
        at: Slot,
        /// The signed message.
        update: SignedRollupUpdate,
    },
    /// A credited deposit notice.
    Deposit {
        /// The slot in progress when it was credited.
        at: Slot,
        /// The signed notice.
        notice: SignedDepositNotice,
        /// The credit.
        entry: LedgerEntry,
    },
    /// An accepted withdrawal request; released `withdrawal_delay_slots` after `at`.
    Withdrawal {
        /// The slot in progress when it was accepted (the release counts from it).
        at: Slot,
        /// The signed request.
        request: SignedWithdrawal,
        /// The reservation (`WithdrawalRequested`, with the release slot).
        entry: LedgerEntry,
    },
    /// Withdrawals released at a slot boundary.
    Released {
        /// The slot whose start released them.
        at: Slot,
        /// One `Withdrawal` entry per release, in builder key order.
        ledger: Vec<LedgerEntry>,
    },
}

impl RegistryRecord {
    /// The slot the change was accepted (or, for a release, made) at.
    #[must_use]
    pub fn at(&self) -> Slot {
        match self {
            RegistryRecord::RollupUpdate { at, .. }
            | RegistryRecord::Deposit { at, .. }
            | RegistryRecord::Withdrawal { at, .. }
            | RegistryRecord::Released { at, .. } => *at,
        }
    }
}

/// What [`SlotMachine::handle_registry`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAccepted {
    /// The ledger entry of a deposit or withdrawal (`None` for a rollup update).
    pub entry: Option<LedgerEntry>,
    /// A deposit notice credited before: nothing changed and nothing is persisted now.
    pub repeat: bool,
}

/// A message for the keypers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyperRequest {
    /// Release your shares for this commitment.
    Commitment(SignedCommitment),
    /// Send batches for `slot` scaled for `responders` (the fallback round).
    Rescale {
        /// The slot.
        slot: Slot,
        /// The new responder set (the keypers to ask are its members).
        responders: ResponderSet,
    },
}

/// Something to make public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// A slot's commitment is final (inclusion receipts go out here).
    Committed(SignedCommitment),
    /// A slot's plaintext blocks.
    Decrypted(PublishedSlot),
    /// A slot's ledger entries are durable.
    Settled {
        /// The slot.
        slot: Slot,
        /// Debits and payouts.
        ledger: Vec<LedgerEntry>,
        /// The transaction fees charged and credited.
        fees: Vec<FeeEntry>,
    },
    /// A slot could not be decrypted in time; its ciphertexts are free again.
    Undecryptable {
        /// The slot.
        slot: Slot,
        /// The committed ids, back to the pool.
        ids: Vec<TxId>,
    },
}

/// What the machine asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvent {
    /// Write `record` durably, then call [`SlotMachine::handle_persisted`] with `token`.
    Persist {
        /// Names this write.
        token: PersistToken,
        /// What to write.
        record: SlotRecord,
    },
    /// Finalize this commitment (the [`crate::Finalizer`]) and hand the result to
    /// [`SlotMachine::handle_signed`].
    Sign(Commitment),
    /// Send to the keypers.
    SendToKeypers(KeyperRequest),
    /// Publish.
    Publish(Publication),
}

/// Counters and timings for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Slots opened.
    pub opened: u64,
    /// Slots committed (signed commitment out).
    pub committed: u64,
    /// Slots decrypted.
    pub decrypted: u64,
    /// Slots settled.
    pub settled: u64,
    /// Slots abandoned as undecryptable.
    pub undecryptable: u64,
    /// Share batches refused at verification.
    pub bad_batches: u64,
    /// Keypers blamed.
    pub blamed: u64,
    /// Fallback rounds requested.
    pub rescales: u64,
    /// Fee charges that exceeded their payer's balance (the balance stopped at zero). Zero
    /// unless records predate fee accounts: admission reserves every fee it admits.
    pub fee_shortfalls: u64,
    /// The last slot's time from commitment out to plaintext decided, in ms.
    pub last_commit_to_plaintext_ms: Option<u64>,
}

struct SlotRun {
    state: SlotState,
    commitment: Option<Commitment>,
    signed: Option<SignedCommitment>,
    cts: Vec<Ciphertext>,
    batches: BTreeMap<KeyperIndex, Vec<VerifiedShareBatch>>,
    excluded: BTreeSet<KeyperIndex>,
    target: Option<ResponderSet>,
    blamed: Vec<Blame>,
    committed_at_ms: u64,
    /// How many keypers had batches at the last failed combination attempt.
    tried_with: Option<usize>,
    /// Target responders that had sent nothing by half the release timeout: the fallback
    /// round was asked of a set without them (their batches are still used if they come).
    silent: BTreeSet<KeyperIndex>,
    /// The target set's batches summed as they arrive: made for the default responders when
    /// the slot closes, so that its setup (`Σ ρ_j·U_j`, on the rayon pool) runs while the
    /// commitment is persisted, signed and released; made again, with the same `ρ_j`, when
    /// the target changes, and after a restart as soon as the slot is committed
    /// ([`SlotMachine::poll_timeout`] asks for the call).
    combiner: Option<BlockCombiner>,
    /// The target set the combiner was last made for (`None`: not tried since the target
    /// was set); a block the combiner refuses is not tried again for the same set.
    prepared: Option<ResponderSet>,
}

impl SlotRun {
    fn new(state: SlotState) -> SlotRun {
        SlotRun {
            state,
            commitment: None,
            signed: None,
            cts: Vec::new(),
            batches: BTreeMap::new(),
            excluded: BTreeSet::new(),
            target: None,
            blamed: Vec::new(),
            committed_at_ms: 0,
            tried_with: None,
            silent: BTreeSet::new(),
            combiner: None,
            prepared: None,
        }
    }

    /// Whether the combiner for the current target set is still to be made.
    fn needs_combiner(&self) -> bool {
        self.state == SlotState::Committed && self.target.is_some() && self.prepared != self.target
    }
}

/// A combiner for the block `cts` of `slot` and the responder set `target`, or `None` if the
/// crypto core refuses the block (an id twice, a ciphertext of another key): the slow path
/// then decides.
fn new_combiner(
    pks: &PublicKeySet,
    slot: Slot,
    cts: &[Ciphertext],
    target: &ResponderSet,
    rng: &mut dyn CryptoRngCore,
) -> Option<BlockCombiner> {
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let mut rng = rng;
    BlockCombiner::new(pks, slot, &refs, target.clone(), &mut rng).ok()
}

/// The slot machine of one chain. See the module docs.
pub struct SlotMachine {
    clock: SlotClock,
    pks: PublicKeySet,
    auction: Auction,
    next_open: Slot,
    slots: BTreeMap<Slot, SlotRun>,
    in_flight: HashSet<TxId>,
    pending: BTreeMap<PersistToken, SlotRecord>,
    next_token: u64,
    events: VecDeque<SlotEvent>,
    stats: SlotStats,
}

impl std::fmt::Debug for SlotMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMachine")
            .field("next_open", &self.next_open)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// After a failed late attempt the next one waits for new batches, so the half-timeout mark
/// is not a deadline any more: poll again at the release deadline.
fn now_floor(run: &SlotRun) -> u64 {
    if run.tried_with.is_some() || !run.silent.is_empty() {
        u64::MAX
    } else {
        0
    }
}

/// The pool without the ciphertexts of slots in flight.
struct Unclaimed<'a, P: PoolView> {
    pool: &'a P,
    in_flight: &'a HashSet<TxId>,
}

impl<P: PoolView> CiphertextIndex for Unclaimed<'_, P> {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        if self.in_flight.contains(id) {
            None
        } else {
            self.pool.lookup(id)
        }
    }
}

/// One slot's persisted records, checked against each other by [`collate`].
struct RestoredSlot {
    /// The decided commitment and its outcome, if the slot got that far.
    decided: Option<(Commitment, Box<Outcome>)>,
    /// The last record written.
    latest: SlotRecord,
}

/// Groups `records` by slot (in write order, the last one wins) and checks each record against
/// the slot's decided one, which every later step of a slot follows. See
/// [`SlotMachine::restore`].
fn collate(records: &[SlotRecord]) -> Result<BTreeMap<Slot, RestoredSlot>, SequencerError> {
    let mismatch = |slot, what| Err(SequencerError::RecordMismatch { slot, what });
    let mut decided: BTreeMap<Slot, (Commitment, Box<Outcome>)> = BTreeMap::new();
    let mut latest: BTreeMap<Slot, SlotRecord> = BTreeMap::new();
    for r in records.iter().filter(|r| !matches!(r, SlotRecord::Registry { .. })) {
        let slot = r.slot();
        match (&r, decided.get(&slot)) {
            (SlotRecord::Decided { commitment, outcome }, first) => {
                if outcome.slot != slot || outcome.chain_id != commitment.chain_id {
                    return mismatch(slot, "the outcome is for another slot or chain");
                }
                if commitment.outcome_hash != outcome.hash() {
                    return mismatch(slot, "the outcome does not hash to the commitment's");
                }
                match first {
                    Some((c, o)) if c != commitment || o != outcome => {
                        return mismatch(slot, "two different decided records");
                    }
                    Some(_) => {}
                    None => {
                        decided.insert(slot, (commitment.clone(), outcome.clone()));
                    }
                }
            }
            (SlotRecord::Undecryptable { .. }, _) => {}
            (_, None) => return Err(SequencerError::MissingOutcome(slot)),
            (SlotRecord::Signed { signed }, Some((c, _))) if signed.message != *c => {
                return mismatch(slot, "the signed commitment is not the decided one");
            }
            (SlotRecord::Settled { ledger, .. }, Some((_, o))) if *ledger != o.ledger => {
                return mismatch(slot, "the settled ledger is not the outcome's");
            }
            _ => {}
        }
        latest.insert(slot, r.clone());
    }
    Ok(latest
        .into_iter()
        .map(|(slot, latest)| (slot, RestoredSlot { decided: decided.remove(&slot), latest }))
        .collect())
}

impl SlotMachine {
    /// A machine for the committee `pks` running `auction` on `clock`, whose first slot to
    /// open is `first`.
    #[must_use]
    pub fn new(clock: SlotClock, pks: PublicKeySet, auction: Auction, first: Slot) -> SlotMachine {
        SlotMachine {
            clock,
            pks,
            auction,
            next_open: first,
            slots: BTreeMap::new(),
            in_flight: HashSet::new(),
            pending: BTreeMap::new(),
            next_token: 0,
            events: VecDeque::new(),
            stats: SlotStats::default(),
        }
    }

    /// Rebuilds the slots and the auction's part in them from the records persisted before a
    /// restart (in the order they were written), and resumes each slot where it stopped.
    ///
    /// Call it once, on a machine built like the one that wrote the records (same clock,
    /// committee and genesis auction: registries, deposits and withdrawals already restored),
    /// before any other input. Per slot, in slot order, the latest record decides:
    ///
    /// | latest record | the slot | the auction |
    /// |---|---|---|
    /// | `Decided` | closed: the same commitment is signed again ([`SlotEvent::Sign`]), never decided again | [`Auction::restore_closed`] |
    /// | `Signed` | committed: the signed commitment is published and sent to the keypers again | [`Auction::restore_closed`] |
    /// | `Decrypted` | published again, then settled (a `Settled` record follows) | [`Auction::restore_closed`], then settled |
    /// | `Settled` | settled | [`Auction::restore_settled`] |
    /// | `Undecryptable` | abandoned | [`Auction::restore_abandoned`] |
    ///
    /// So collateral, locked payments and unsettled outcomes are what they were, a restored
    /// committed slot still settles (or is abandoned and releases its payments), and no slot
    /// up to the last restored one opens again: the next slot to open is the one after it
    /// (or `first`, if later).
    ///
    /// # Errors
    /// The records are checked against each other before anything changes:
    /// [`SequencerError::RecordMismatch`] if a decided outcome does not hash to its
    /// commitment's `outcome_hash` (or the signed commitment is not the decided one, or the
    /// settled ledger is not the outcome's), [`SequencerError::MissingOutcome`] for a signed,
    /// decrypted or settled slot without its decided record. Then
    /// [`SequencerError::RestoreRefused`] if the auction refuses an outcome (the records do
    /// not fit its genesis state). On error no slot is rebuilt and no event is emitted, but
    /// the auction may already hold some slots: drop the machine, and do not start the shell.
    /// Skipping the slot instead would risk a wrong debit or a second commitment for it.
    pub fn restore<P: PoolView>(
        &mut self,
        records: Vec<SlotRecord>,
        pool: &P,
    ) -> Result<(), SequencerError> {
        let slots = collate(&records)?;
        // The auction first, in log order: each slot where its first record was written (slots
        // close in slot order), each registry change where it was accepted. The machine's
        // slots change only once the auction agrees.
        let mut seen: BTreeSet<Slot> = BTreeSet::new();
        for record in &records {
            let slot = record.slot();
            if let SlotRecord::Registry { change } = record {
                self.restore_registry(change)?;
                continue;
            }
            if !seen.insert(slot) {
                continue;
            }
            let Some(restored) = slots.get(&slot) else { continue };
            let result = match (&restored.latest, &restored.decided) {
                (SlotRecord::Undecryptable { .. }, _) => self.auction.restore_abandoned(slot),
                (SlotRecord::Settled { fees, .. }, Some((_, outcome))) => {
                    self.charge_fees(fees);
                    self.auction.restore_settled(outcome)
                }
                (_, Some((_, outcome))) => self.auction.restore_closed((**outcome).clone()),
                (_, None) => return Err(SequencerError::MissingOutcome(slot)),
            };
            result.map_err(|error| SequencerError::RestoreRefused { slot, error })?;
        }
        for (slot, restored) in slots {
            self.next_open = self.next_open.max(slot.next());
            let mut run = SlotRun::new(SlotState::Closed);
            run.commitment = restored.decided.map(|(c, _)| c);
            if let Some(c) = &run.commitment {
                run.cts = c
                    .ordered_ids()
                    .filter_map(|id| pool.body(id))
                    .filter_map(|b| Ciphertext::from_bytes(&b).ok())
                    .collect();
            }
            match restored.latest {
                SlotRecord::Decided { commitment: c, .. } => {
                    self.in_flight.extend(c.ordered_ids().copied());
                    self.events.push_back(SlotEvent::Sign(c));
                }
                SlotRecord::Signed { signed } => {
                    self.in_flight.extend(signed.message.ordered_ids().copied());
                    run.state = SlotState::Committed;
                    run.target = Some(self.pks.default_responders());
                    run.signed = Some(signed.clone());
                    // Published again (receipts may have been cut off by the crash), then the
                    // keypers asked again.
                    self.events
                        .push_back(SlotEvent::Publish(Publication::Committed(signed.clone())));
                    self.events
                        .push_back(SlotEvent::SendToKeypers(KeyperRequest::Commitment(signed)));
                }
                SlotRecord::Decrypted { published } => {
                    run.state = SlotState::Decrypted;
                    let token = PersistToken(self.next_token);
                    self.next_token += 1;
                    self.pending.insert(token, SlotRecord::Decrypted { published });
                    // Already durable: take the next step (settlement) at once.
                    self.slots.insert(slot, run);
                    self.handle_persisted(token, 0);
                    continue;
                }
                SlotRecord::Settled { .. } => run.state = SlotState::Settled,
                SlotRecord::Undecryptable { .. } => run.state = SlotState::Undecryptable,
                // Filtered out by `collate`.
                SlotRecord::Registry { .. } => continue,
            }
            self.slots.insert(slot, run);
        }
        self.prune();
        Ok(())
    }

    /// Charges a settled slot's transaction fees to their payers' fee accounts.
    fn charge_fees(&mut self, fees: &[FeeEntry]) {
        for f in fees {
            if let FeeEntry::Charge { payer, amount, .. } = f {
                if self.auction.charge_fee(payer, *amount) > Amount::ZERO {
                    self.stats.fee_shortfalls += 1;
                }
            }
        }
    }

    /// Applies a registry change persisted before a restart, exactly as it was applied then.
    fn restore_registry(&mut self, change: &RegistryRecord) -> Result<(), SequencerError> {
        let slot = change.at();
        let refused = |error| SequencerError::RestoreRefused { slot, error };
        match change {
            RegistryRecord::RollupUpdate { update, .. } => {
                self.auction.apply_rollup_update(update).map_err(refused)?;
            }
            RegistryRecord::Deposit { notice, entry, .. } => {
                let credit = self.auction.restore_deposit(&notice.message).map_err(refused)?;
                if credit.entry != *entry {
                    return Err(SequencerError::RecordMismatch {
                        slot,
                        what: "the deposit credits another entry",
                    });
                }
            }
            RegistryRecord::Withdrawal { at, request, entry } => {
                let got = self.auction.request_withdrawal(request, *at).map_err(refused)?;
                if got != *entry {
                    return Err(SequencerError::RecordMismatch {
                        slot,
                        what: "the withdrawal reserves another entry",
                    });
                }
            }
            RegistryRecord::Released { at, ledger } => {
                if self.auction.release_withdrawals(*at) != *ledger {
                    return Err(SequencerError::RecordMismatch {
                        slot,
                        what: "the released withdrawals differ",
                    });
                }
            }
        }
        Ok(())
    }

    /// A registry change: a rollup admin message, a deposit notice or a withdrawal request,
    /// checked and applied by the auction. An accepted change is persisted
    /// ([`SlotEvent::Persist`] of a [`SlotRecord::Registry`]): the shell must make it durable
    /// before it tells anyone it was accepted. A repeated deposit notice changes nothing and
    /// persists nothing.
    ///
    /// A rollup change takes effect at a slot boundary after every opened slot; a withdrawal
    /// is released `withdrawal_delay_slots` after the slot in progress at `now_ms`, when that
    /// slot starts (a [`RegistryRecord::Released`] record).
    ///
    /// # Errors
    /// The auction's typed refusal; nothing changes then.
    pub fn handle_registry(
        &mut self,
        change: RegistryChange,
        now_ms: u64,
    ) -> Result<RegistryAccepted, AuctionError> {
        let now = self.clock.slot_at(now_ms);
        let (record, accepted) = match change {
            RegistryChange::RollupUpdate(update) => {
                let at = self.auction.earliest_effective_slot();
                self.auction.apply_rollup_update(&update)?;
                (
                    RegistryRecord::RollupUpdate { at, update: *update },
                    RegistryAccepted { entry: None, repeat: false },
                )
            }
            RegistryChange::Deposit(notice) => {
                let credit = self.auction.credit_deposit(&notice)?;
                let accepted =
                    RegistryAccepted { entry: Some(credit.entry.clone()), repeat: credit.repeat };
                if credit.repeat {
                    return Ok(accepted);
                }
                (
                    RegistryRecord::Deposit { at: now, notice: *notice, entry: credit.entry },
                    accepted,
                )
            }
            RegistryChange::Withdrawal(request) => {
                let entry = self.auction.request_withdrawal(&request, now)?;
                (
                    RegistryRecord::Withdrawal { at: now, request: *request, entry: entry.clone() },
                    RegistryAccepted { entry: Some(entry), repeat: false },
                )
            }
        };
        self.persist(SlotRecord::Registry { change: record });
        Ok(accepted)
    }

    /// The auction (registries, books, stats).
    #[must_use]
    pub fn auction(&self) -> &Auction {
        &self.auction
    }

    /// The auction, to apply registry changes (deposits, rollup updates).
    pub fn auction_mut(&mut self) -> &mut Auction {
        &mut self.auction
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &SlotClock {
        &self.clock
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &SlotStats {
        &self.stats
    }

    /// Where `slot` is, if the machine knows it.
    #[must_use]
    pub fn state(&self, slot: Slot) -> Option<SlotState> {
        self.slots.get(&slot).map(|s| s.state)
    }

    /// Whether `id` is committed in a slot not yet decrypted or abandoned.
    #[must_use]
    pub fn is_in_flight(&self, id: &TxId) -> bool {
        self.in_flight.contains(id)
    }

    /// Every ciphertext committed in a slot not yet decrypted or abandoned.
    #[must_use]
    pub fn in_flight(&self) -> &HashSet<TxId> {
        &self.in_flight
    }

    /// The id and public metadata of each ciphertext committed in `slot` that the machine
    /// holds: all of them for a slot it closed, those the pool still had for a slot restored
    /// after a restart; none for a slot it does not know (never closed, or forgotten: the
    /// last 64 finished slots are kept). The shell reads the expiry slots here when a slot is
    /// published, for the pool's memory of committed ids.
    pub fn committed(&self, slot: Slot) -> impl Iterator<Item = (TxId, &TxMeta)> + '_ {
        self.slots.get(&slot).into_iter().flat_map(|r| r.cts.iter().map(|c| (c.id(), c.ad())))
    }

    /// When the machine next needs [`SlotMachine::handle_timeout`]: at once (0) when a slot
    /// committed since the last call still needs its combiner made.
    #[must_use]
    pub fn poll_timeout(&self) -> u64 {
        let mut next = self.clock.start_ms(self.next_open);
        for (slot, run) in &self.slots {
            if run.needs_combiner() {
                return 0;
            }
            let t = match run.state {
                SlotState::Open => self.clock.deadline_ms(*slot),
                SlotState::Committed => self
                    .clock
                    .deadline_ms(*slot)
                    .saturating_add(self.clock.release_timeout_ms / 2)
                    .max(now_floor(run))
                    .min(self.clock.release_deadline_ms(*slot)),
                _ => continue,
            };
            next = next.min(t);
        }
        next
    }

    /// A bid for an open slot.
    ///
    /// # Errors
    /// The auction's typed refusal (naming a ciphertext in flight is
    /// [`AuctionError::UnknownCiphertext`]).
    pub fn handle_bid<P: PoolView>(
        &mut self,
        bid: SignedBid,
        pool: &P,
        now_ms: u64,
    ) -> Result<(), AuctionError> {
        let view = Unclaimed { pool, in_flight: &self.in_flight };
        self.auction.submit_bid(bid, &view, now_ms).map(|_| ())
    }

    /// A bid for an open slot whose signature the shell verified ([`VerifiedBid`]): its
    /// receipt (its id, and the bid it replaced) if accepted.
    ///
    /// # Errors
    /// As [`SlotMachine::handle_bid`].
    pub fn handle_verified_bid<P: PoolView>(
        &mut self,
        bid: VerifiedBid,
        pool: &P,
        now_ms: u64,
    ) -> Result<BidReceipt, AuctionError> {
        let view = Unclaimed { pool, in_flight: &self.in_flight };
        self.auction.submit_verified_bid(bid, &view, now_ms)
    }

    /// Advances time: opens slots that started, closes those whose bidding deadline passed
    /// (deciding their commitments), combines late slots from whatever keypers answered (past
    /// half the release timeout, randomness from `rng`), and abandons committed slots past
    /// their release deadline.
    ///
    /// # Errors
    /// The auction's refusal to open or close (for a clock that runs backwards).
    pub fn handle_timeout<P: PoolView>(
        &mut self,
        now_ms: u64,
        pool: &P,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), SequencerError> {
        // Open every slot whose start has come, one at a time (a slow shell skips none).
        while self.clock.start_ms(self.next_open) <= now_ms {
            let slot = self.next_open;
            let released = self.auction.release_withdrawals(slot);
            if !released.is_empty() {
                self.persist(SlotRecord::Registry {
                    change: RegistryRecord::Released { at: slot, ledger: released },
                });
            }
            if self.clock.deadline_ms(slot) > now_ms {
                self.auction
                    .open_slot(slot, self.clock.deadline_ms(slot))
                    .map_err(SequencerError::Auction)?;
                self.slots.insert(slot, SlotRun::new(SlotState::Open));
                self.stats.opened += 1;
            }
            self.next_open = slot.next();
        }
        let due: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(s, r)| r.state == SlotState::Open && self.clock.deadline_ms(**s) <= now_ms)
            .map(|(s, _)| *s)
            .collect();
        for slot in due {
            self.close(slot, now_ms, pool, rng)?;
        }
        for (slot, run) in self.slots.iter_mut().filter(|(_, r)| r.needs_combiner()) {
            Self::prepare_combiner(&self.pks, *slot, run, rng);
        }
        self.try_late(now_ms, rng);
        let late: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(s, r)| {
                r.state == SlotState::Committed && self.clock.release_deadline_ms(**s) <= now_ms
            })
            .map(|(s, _)| *s)
            .collect();
        for slot in late {
            self.abandon(slot);
        }
        Ok(())
    }

    fn close<P: PoolView>(
        &mut self,
        slot: Slot,
        now_ms: u64,
        pool: &P,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), SequencerError> {
        let pending: Vec<(TxId, TxMeta)> = pool
            .pending()
            .into_iter()
            .filter(|(id, m)| !self.in_flight.contains(id) && m.eon == self.pks.eon())
            .collect();
        let outcome =
            self.auction.close_slot(slot, now_ms, &pending).map_err(SequencerError::Auction)?;
        let mut commitment = Commitment::from_outcome(&outcome, self.pks.eon());
        // Bodies of the committed ids, decoded now (before the commitment: off the
        // commit-to-plaintext path). An id whose body left the pool since the bid cannot be
        // released by keypers either; it is left out of the commitment.
        let bodies: Vec<Vec<Option<_>>> = commitment
            .blocks
            .iter()
            .map(|block| block.ciphertexts.iter().map(|id| pool.body(id)).collect())
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().flatten().flatten().map(|b| &b[..]).collect();
        let mut decoded = Ciphertext::decode_many(&refs).into_iter();
        let mut cts = Vec::with_capacity(refs.len());
        for (block, bodies) in commitment.blocks.iter_mut().zip(&bodies) {
            let mut keep = bodies.iter().map(|body| {
                body.is_some()
                    && match decoded.next() {
                        Some(Ok(ct)) => {
                            cts.push(ct);
                            true
                        }
                        _ => false,
                    }
            });
            block.ciphertexts.retain(|_| keep.next().unwrap_or(false));
        }
        for ct in &cts {
            self.in_flight.insert(ct.id());
        }
        let target = self.pks.default_responders();
        let combiner = new_combiner(&self.pks, slot, &cts, &target, rng);
        let run = self.slots.get_mut(&slot).expect("closing an open slot");
        run.state = SlotState::Closed;
        run.combiner = combiner;
        run.prepared = Some(target);
        run.cts = cts;
        run.commitment = Some(commitment.clone());
        self.persist(SlotRecord::Decided { commitment, outcome: Box::new(outcome) });
        Ok(())
    }

    /// The finalizer's answer to [`SlotEvent::Sign`].
    ///
    /// # Errors
    /// [`SequencerError::BadSignature`] if it is not the decided commitment of a closed slot.
    pub fn handle_signed(&mut self, signed: SignedCommitment) -> Result<(), SequencerError> {
        let slot = signed.message.slot;
        let run = self.slots.get(&slot).ok_or(SequencerError::NotReleased(slot))?;
        if run.state != SlotState::Closed || run.commitment.as_ref() != Some(&signed.message) {
            return Err(SequencerError::BadSignature);
        }
        self.persist(SlotRecord::Signed { signed });
        Ok(())
    }

    /// The shell reports `token`'s record durable; the machine takes the next step.
    pub fn handle_persisted(&mut self, token: PersistToken, now_ms: u64) {
        let Some(record) = self.pending.remove(&token) else { return };
        match record {
            SlotRecord::Decided { commitment: c, .. } => {
                self.events.push_back(SlotEvent::Sign(c));
            }
            SlotRecord::Signed { signed } => {
                let slot = signed.message.slot;
                if let Some(run) = self.slots.get_mut(&slot) {
                    run.state = SlotState::Committed;
                    run.signed = Some(signed.clone());
                    run.committed_at_ms = now_ms;
                    run.target = Some(self.pks.default_responders());
                }
                self.stats.committed += 1;
                self.events.push_back(SlotEvent::Publish(Publication::Committed(signed.clone())));
                if signed.message.is_empty() {
                    self.finish_decryption(signed.message.slot, Vec::new(), Vec::new(), now_ms);
                } else {
                    self.events
                        .push_back(SlotEvent::SendToKeypers(KeyperRequest::Commitment(signed)));
                }
            }
            SlotRecord::Decrypted { published } => {
                let slot = published.slot;
                // Every closed slot's outcome (a restored one too) waits in the auction until
                // here, so this settles; a slot without winners settles with an empty ledger.
                let ledger = self.auction.settle(slot).unwrap_or_default();
                let fees = published.fees.clone();
                self.charge_fees(&fees);
                self.events.push_back(SlotEvent::Publish(Publication::Decrypted(published)));
                self.persist(SlotRecord::Settled { slot, ledger, fees });
            }
            SlotRecord::Settled { slot, ledger, fees } => {
                if let Some(run) = self.slots.get_mut(&slot) {
                    run.state = SlotState::Settled;
                }
                self.stats.settled += 1;
                self.events.push_back(SlotEvent::Publish(Publication::Settled {
                    slot,
                    ledger,
                    fees,
                }));
                self.prune();
            }
            // Applied when accepted; durable now, nothing further to do.
            SlotRecord::Registry { .. } => {}
            SlotRecord::Undecryptable { slot } => {
                let ids: Vec<TxId> = self
                    .slots
                    .get(&slot)
                    .and_then(|r| r.commitment.as_ref())
                    .map(|c| c.ordered_ids().copied().collect())
                    .unwrap_or_default();
                for id in &ids {
                    self.in_flight.remove(id);
                }
                self.events.push_back(SlotEvent::Publish(Publication::Undecryptable { slot, ids }));
                self.prune();
            }
        }
    }

    /// A keyper's share batch. Verified on arrival; when every member of the target responder
    /// set has one, the block is combined (randomness from `rng`).
    ///
    /// # Errors
    /// [`SequencerError::Crypto`] for a batch that does not verify (counted, otherwise
    /// ignored), [`SequencerError::NotReleased`] for a slot not awaiting shares.
    pub fn handle_share_batch(
        &mut self,
        batch: &SignedShareBatch,
        now_ms: u64,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), SequencerError> {
        let verified = match self.pks.verify_share_batch(batch) {
            Ok(v) => v,
            Err(e) => {
                self.stats.bad_batches += 1;
                return Err(SequencerError::Crypto(e));
            }
        };
        self.handle_verified_share_batch(verified, now_ms, rng)
    }

    /// [`SlotMachine::handle_share_batch`] for a batch the shell has already verified, off the
    /// slot thread (a shell with many keyper links checks their batches in parallel as they
    /// arrive, so that the last one to arrive is combined at once).
    ///
    /// **Precondition:** `verified` came from [`PublicKeySet::verify_share_batch`] of this
    /// machine's committee key set. A batch that failed verification goes to
    /// [`SlotMachine::handle_share_batch`] instead, which counts it.
    ///
    /// # Errors
    /// [`SequencerError::NotReleased`] for a slot not awaiting shares.
    pub fn handle_verified_share_batch(
        &mut self,
        verified: VerifiedShareBatch,
        now_ms: u64,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), SequencerError> {
        let slot = verified.slot();
        let run = self.slots.get_mut(&slot).ok_or(SequencerError::NotReleased(slot))?;
        if run.state != SlotState::Committed {
            return Err(SequencerError::NotReleased(slot));
        }
        if run.excluded.contains(&verified.keyper()) {
            return Ok(());
        }
        if run
            .batches
            .get(&verified.keyper())
            .is_some_and(|held| held.iter().any(|b| b.scaled_for() == verified.scaled_for()))
        {
            return Ok(());
        }
        let Some(target) = run.target.clone() else {
            run.batches.entry(verified.keyper()).or_default().push(verified);
            return Ok(());
        };
        // Summed now, so that the last batch to arrive leaves only the check and openings.
        if run.needs_combiner() {
            Self::prepare_combiner(&self.pks, slot, run, rng);
        }
        if let Some(c) = run.combiner.as_mut() {
            c.offer(&verified);
        }
        run.batches.entry(verified.keyper()).or_default().push(verified);
        let ready = target.members().iter().all(|m| {
            run.batches.get(m).is_some_and(|bs| bs.iter().any(|b| b.scaled_for() == Some(&target)))
        });
        // Every keyper that is not excluded has answered: nothing more to wait for.
        let everyone = run.batches.len() + run.excluded.len() >= self.pks.committee_size();
        // Past half the release timeout any t + 1 batches are worth a try (the slow path).
        let late = now_ms
            >= self.clock.deadline_ms(slot).saturating_add(self.clock.release_timeout_ms / 2)
            && run.batches.len() >= self.pks.shares_needed();
        if ready || ((everyone || late) && run.tried_with != Some(run.batches.len())) {
            self.try_decrypt(slot, now_ms, rng);
        }
        Ok(())
    }

    /// Makes `run`'s combiner for its target set and adds the batches it holds already.
    fn prepare_combiner(
        pks: &PublicKeySet,
        slot: Slot,
        run: &mut SlotRun,
        rng: &mut dyn CryptoRngCore,
    ) {
        let Some(target) = run.target.clone() else { return };
        run.combiner = match run.combiner.take() {
            Some(c) => Some(c.retarget(target.clone())),
            None => new_combiner(pks, slot, &run.cts, &target, rng),
        };
        run.prepared = Some(target);
        if let Some(c) = run.combiner.as_mut() {
            for b in run.batches.values().flatten() {
                c.offer(b);
            }
        }
    }

    /// Past half the release timeout: combine from whatever `t + 1` or more keypers sent
    /// (the slow path, shares rescaled by the combiner), tried again only when new batches
    /// have arrived; or, with fewer, start the fallback round without the target responders
    /// that have sent nothing (keypers outside the target set send only when asked).
    fn try_late(&mut self, now_ms: u64, rng: &mut dyn CryptoRngCore) {
        let half = self.clock.release_timeout_ms / 2;
        let due: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(s, r)| {
                r.state == SlotState::Committed
                    && now_ms >= self.clock.deadline_ms(**s).saturating_add(half)
            })
            .map(|(s, _)| *s)
            .collect();
        for slot in due {
            let run = self.slots.get_mut(&slot).expect("present");
            if run.batches.len() >= self.pks.shares_needed() {
                if run.tried_with != Some(run.batches.len()) {
                    self.try_decrypt(slot, now_ms, rng);
                }
            } else if run.silent.is_empty() {
                let silent: BTreeSet<KeyperIndex> = run
                    .target
                    .iter()
                    .flat_map(|t| t.members().iter().copied())
                    .filter(|m| !run.batches.contains_key(m) && !run.excluded.contains(m))
                    .collect();
                if !silent.is_empty() {
                    run.silent = silent;
                    self.start_fallback_round(slot);
                }
            }
        }
    }

    /// Asks the `t + 1` lowest-indexed keypers that are neither excluded (blamed) nor silent
    /// for batches scaled for them, if that set differs from the current target.
    fn start_fallback_round(&mut self, slot: Slot) {
        let Some(run) = self.slots.get_mut(&slot) else { return };
        let members: Vec<KeyperIndex> = self
            .pks
            .keypers()
            .iter()
            .map(|k| k.index)
            .filter(|i| !run.excluded.contains(i) && !run.silent.contains(i))
            .take(self.pks.shares_needed())
            .collect();
        if let Ok(set) = ResponderSet::new(&self.pks, members) {
            if run.target.as_ref() != Some(&set) {
                run.target = Some(set.clone());
                self.stats.rescales += 1;
                self.events.push_back(SlotEvent::SendToKeypers(KeyperRequest::Rescale {
                    slot,
                    responders: set,
                }));
            }
        }
    }

    fn try_decrypt(&mut self, slot: Slot, now_ms: u64, rng: &mut dyn CryptoRngCore) {
        let Some(run) = self.slots.get_mut(&slot) else { return };
        if let Some(c) = run.combiner.as_ref().filter(|c| c.is_complete()) {
            let refs: Vec<&Ciphertext> = run.cts.iter().collect();
            if let Some(block) = c.finish(&self.pks, &refs) {
                self.decrypted(slot, block, now_ms);
                return;
            }
        }
        let target = run.target.clone();
        // The target set's batches first, so that the fast path is taken.
        let mut batches: Vec<VerifiedShareBatch> = Vec::new();
        for bs in run.batches.values() {
            let pick = bs.iter().find(|b| b.scaled_for() == target.as_ref()).unwrap_or(&bs[0]);
            batches.push(pick.clone());
        }
        let refs: Vec<&Ciphertext> = run.cts.iter().collect();
        let mut rng = rng;
        match decrypt_block(&self.pks, slot, &refs, &batches, &mut rng) {
            Ok(block) => self.decrypted(slot, block, now_ms),
            Err(CryptoError::NotEnoughShares { blamed, .. }) => {
                self.stats.blamed += blamed.len() as u64;
                let run = self.slots.get_mut(&slot).expect("present");
                for b in &blamed {
                    run.excluded.insert(b.keyper);
                    run.batches.remove(&b.keyper);
                }
                run.tried_with = Some(run.batches.len());
                run.blamed.extend(blamed);
                self.start_fallback_round(slot);
            }
            // Every committed ciphertext was decoded and is of this eon: not reachable.
            Err(_) => {}
        }
    }

    fn decrypted(&mut self, slot: Slot, block: veil_crypto::DecryptedBlock, now_ms: u64) {
        self.stats.blamed += block.blamed.len() as u64;
        let Some(run) = self.slots.get_mut(&slot) else { return };
        run.combiner = None;
        run.blamed.extend(block.blamed);
        let blamed = run.blamed.clone();
        self.finish_decryption(slot, block.outcomes, blamed, now_ms);
    }

    fn finish_decryption(
        &mut self,
        slot: Slot,
        outcomes: Vec<DecryptOutcome>,
        blamed: Vec<Blame>,
        now_ms: u64,
    ) {
        let Some(run) = self.slots.get_mut(&slot) else { return };
        let Some(commitment) = run.commitment.clone() else { return };
        let mut results: HashMap<TxId, TxResult> = HashMap::new();
        let mut failed_bundles: HashSet<BundleId> = HashSet::new();
        for (ct, outcome) in run.cts.iter().zip(outcomes) {
            let result = match outcome {
                DecryptOutcome::Plaintext(p) => TxResult::Included(p),
                DecryptOutcome::Undecryptable => {
                    if let Some(b) = ct.ad().bundle {
                        failed_bundles.insert(b.id);
                    }
                    TxResult::Failed
                }
            };
            results.insert(ct.id(), result);
        }
        for ct in &run.cts {
            if let Some(b) = ct.ad().bundle {
                if failed_bundles.contains(&b.id) {
                    if let Some(r) = results.get_mut(&ct.id()) {
                        if matches!(r, TxResult::Included(_)) {
                            *r = TxResult::DroppedWithBundle(b.id);
                        }
                    }
                }
            }
        }
        let blocks = commitment
            .blocks
            .iter()
            .map(|b| PublishedBlock {
                rollup: b.rollup,
                txs: b
                    .ciphertexts
                    .iter()
                    .map(|id| PublishedTx {
                        id: *id,
                        result: results.remove(id).unwrap_or(TxResult::Failed),
                    })
                    .collect(),
            })
            .collect();
        run.state = SlotState::Decrypted;
        self.stats.decrypted += 1;
        self.stats.last_commit_to_plaintext_ms = Some(now_ms.saturating_sub(run.committed_at_ms));
        for id in commitment.ordered_ids() {
            self.in_flight.remove(id);
        }
        let metas: HashMap<TxId, TxMeta> = run.cts.iter().map(|c| (c.id(), *c.ad())).collect();
        let fees = fees_for(&commitment, &metas);
        self.persist(SlotRecord::Decrypted {
            published: PublishedSlot { slot, blocks, blamed, fees },
        });
    }

    fn abandon(&mut self, slot: Slot) {
        if let Some(run) = self.slots.get_mut(&slot) {
            run.state = SlotState::Undecryptable;
            run.combiner = None;
        }
        // Every closed slot's outcome (a restored one too) waits in the auction until here,
        // so this releases the winners' locked payments.
        let _ = self.auction.abandon(slot);
        self.stats.undecryptable += 1;
        self.persist(SlotRecord::Undecryptable { slot });
    }

    /// Forgets finished slots, keeping the last few for queries.
    fn prune(&mut self) {
        const KEEP: usize = 64;
        let finished: Vec<Slot> = self
            .slots
            .iter()
            .filter(|(_, r)| matches!(r.state, SlotState::Settled | SlotState::Undecryptable))
            .map(|(s, _)| *s)
            .collect();
        if finished.len() > KEEP {
            for s in &finished[..finished.len() - KEEP] {
                self.slots.remove(s);
            }
        }
    }

    fn persist(&mut self, record: SlotRecord) {
        let token = PersistToken(self.next_token);
        self.next_token += 1;
        self.pending.insert(token, record.clone());
        self.events.push_back(SlotEvent::Persist { token, record });
    }

    /// The next thing for the shell to do.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SlotEvent> {
        self.events.pop_front()
    }
}

/// The fee entries of a decrypted slot: a charge per committed transaction (its `max_fee`),
/// then a credit per block to its winner (or to the rollup for a fallback block) of exactly
/// the block's charges. A committed id without metadata (cannot happen: every committed
/// ciphertext is held to decrypt it) is charged nothing.
#[must_use]
pub fn fees_for(commitment: &Commitment, metas: &HashMap<TxId, TxMeta>) -> Vec<FeeEntry> {
    let mut out = Vec::new();
    for block in &commitment.blocks {
        let mut total = Amount(0);
        for id in &block.ciphertexts {
            let Some(meta) = metas.get(id) else { continue };
            out.push(FeeEntry::Charge { tx: *id, payer: meta.fee_payer, amount: meta.max_fee });
            total = Amount(total.0.saturating_add(meta.max_fee.0));
        }
        let to = block.winner.map_or(FeeRecipient::Rollup(block.rollup), FeeRecipient::Builder);
        out.push(FeeEntry::Credit { rollup: block.rollup, to, amount: total });
    }
    out
}

#[cfg(test)]
mod fee_tests {
    use super::*;
    use crate::commitment::CommittedBlock;

    fn meta(payer: u8, fee: u128) -> TxMeta {
        TxMeta {
            chain_id: veil_primitives::ChainId(1),
            eon: veil_primitives::Eon(1),
            rollup: RollupId(0),
            fee_payer: PublicKeyBytes([payer; 32]),
            max_fee: Amount(fee),
            gas_limit: 21_000,
            expiry_slot: Slot(9),
            bundle: None,
        }
    }

    #[test]
    fn every_committed_transaction_pays_and_each_block_is_credited_exactly() {
        let builder = PublicKeyBytes([0xb0; 32]);
        let commitment = Commitment {
            chain_id: veil_primitives::ChainId(1),
            slot: Slot(4),
            eon: veil_primitives::Eon(1),
            blocks: vec![
                CommittedBlock {
                    rollup: RollupId(0),
                    winner: Some(builder),
                    payment: Amount(10),
                    ciphertexts: vec![TxId([1; 32]), TxId([2; 32])],
                },
                CommittedBlock {
                    rollup: RollupId(1),
                    winner: None,
                    payment: Amount(0),
                    ciphertexts: vec![TxId([3; 32])],
                },
            ],
            outcome_hash: [0; 32],
        };
        let metas: HashMap<TxId, TxMeta> = [
            (TxId([1; 32]), meta(7, 5)),
            (TxId([2; 32]), meta(8, u128::from(u64::MAX) + 3)),
            (TxId([3; 32]), meta(7, 2)),
        ]
        .into_iter()
        .collect();
        let fees = fees_for(&commitment, &metas);
        let charged: u128 = fees
            .iter()
            .filter(|f| matches!(f, FeeEntry::Charge { .. }))
            .map(|f| f.amount().0)
            .sum();
        let credited: u128 = fees
            .iter()
            .filter(|f| matches!(f, FeeEntry::Credit { .. }))
            .map(|f| f.amount().0)
            .sum();
        assert_eq!(charged, credited, "exact to the unit");
        assert_eq!(charged, 5 + u128::from(u64::MAX) + 3 + 2);
        assert_eq!(fees.iter().filter(|f| matches!(f, FeeEntry::Charge { .. })).count(), 3);
        assert!(fees.contains(&FeeEntry::Credit {
            rollup: RollupId(0),
            to: FeeRecipient::Builder(builder),
            amount: Amount(5 + u128::from(u64::MAX) + 3),
        }));
        assert!(fees.contains(&FeeEntry::Credit {
            rollup: RollupId(1),
            to: FeeRecipient::Rollup(RollupId(1)),
            amount: Amount(2),
        }));
        // The entries survive the record format.
        let json = serde_json::to_string(&fees).unwrap();
        assert_eq!(serde_json::from_str::<Vec<FeeEntry>>(&json).unwrap(), fees);
    }
}
