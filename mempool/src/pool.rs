//! The sans-IO pool: admission rules, indexes, capacity and eviction, expiry, removal of
//! committed transactions, and the admission-ordered feed.
//!
//! The pool sees only what admission learnt from a ciphertext that already passed the
//! cryptographic checks: its id, its public metadata ([`TxMeta`]), a digest of its ephemeral
//! key and its canonical bytes. It does no I/O and reads no clock: slots come in through
//! [`Pool::on_slot`], durability through [`Pool::mark_durable`].
//!
//! # Units
//!
//! Capacity, eviction and expiry act on *units*: a lone transaction, or every part of an
//! atomic bundle. A unit's fee for eviction is the lowest `max_fee` among its parts, and its
//! expiry is the earliest `expiry_slot` among its parts. A unit is removed whole, so a bundle
//! is never left half in the pool.
//!
//! # Sequence numbers and the feed
//!
//! Every admitted transaction gets the next sequence number ([`Seq`]); sequence numbers are
//! persisted with the row, so they survive restarts and order the feed. The feed is a cursor
//! over the pool's own admission-ordered map, limited to the durable prefix: subscribers hold
//! nothing in the pool, so a slow subscriber can never make it grow. A subscriber reads what
//! is still pending at its cursor; transactions removed before it read them (committed,
//! expired, evicted) are reported as `skipped`, never silently confused with "nothing new".
//!
//! # Committed transactions are spent
//!
//! A committed transaction leaves the pool ([`Pool::remove_committed`]), but its id is
//! remembered as *spent* until its expiry slot passes: its fee payer's signature authorises
//! one charge, so a replay of the same bytes is answered like a pending duplicate (an
//! idempotent ack with the same id) and is never admitted, fed, bid on or charged again.
//! Memory for this is bounded ([`PoolConfig::max_spent`]); past the bound, the ids with the
//! latest expiry are forgotten and their expiry slots refused until they pass (see the
//! `spent` module).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroUsize;

use bytes::Bytes;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use veil_primitives::{
    Amount, BundleId, BundleRef, ChainId, CiphertextIndex, Eon, ErrorCode, PublicKeyBytes,
    RollupId, SignatureBytes, Slot, TxId,
};

use crate::error::Rejection;
use crate::metrics::PoolStats;

mod accounts;
mod slab;
mod spent;
pub use accounts::FeeAccount;
use accounts::Payer;
use slab::Slab;
use spent::SpentIds;

/// Default global capacity: 1,500,000 transactions.
pub const DEFAULT_MAX_TXS: usize = 1_500_000;
/// Default global capacity in ciphertext bytes: 1.5 GiB.
pub const DEFAULT_MAX_BYTES: usize = 1536 * 1024 * 1024;
/// Default per-rollup capacity.
pub const DEFAULT_MAX_PER_ROLLUP: usize = 500_000;
/// Default per-fee-payer capacity.
pub const DEFAULT_MAX_PER_SENDER: usize = 10_000;
/// Default maximum ciphertext size: 8 KiB.
pub const DEFAULT_MAX_CIPHERTEXT_SIZE: usize = veil_crypto::MAX_CIPHERTEXT_LEN;
/// Default maximum number of parts in a bundle.
pub const DEFAULT_MAX_BUNDLE_PARTS: usize = veil_crypto::MAX_BUNDLE_PARTS as usize;
/// Default horizon: a transaction may not expire more than this many slots ahead.
pub const DEFAULT_MAX_EXPIRY_HORIZON: u64 = 10_000;
/// Default bound on committed ids remembered as spent: 2,000,000, between 54 and 70 MB (18 to
/// 37 bytes per id, see [`PoolConfig::max_spent`]): 200 committed transactions per slot for
/// the whole default horizon, if every one of them expires at the horizon.
pub const DEFAULT_MAX_SPENT: usize = 2_000_000;

/// An admission sequence number: the order in which the pool admitted transactions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

/// A position in the feed: the next sequence number the subscriber wants.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct FeedCursor(pub u64);

/// sha3-256 of a ciphertext's ephemeral public key, for the "same ephemeral key in a
/// different ciphertext" rule. A digest keeps the pool independent of the key's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EphemeralKeyDigest(pub [u8; 32]);

/// The public metadata of a ciphertext (the workspace's one type, from veil-primitives).
pub use veil_primitives::TxMeta;

/// A ciphertext that passed decoding and the validity check, ready for the pool's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// sha3-256 of the canonical encoding.
    pub id: TxId,
    /// Its public metadata.
    pub meta: TxMeta,
    /// Digest of its ephemeral key.
    pub ephemeral_key: EphemeralKeyDigest,
    /// Its canonical encoding (owned: not a slice of a larger receive buffer).
    pub body: Bytes,
    /// Its fee payer's signature over its id ([`veil_primitives::PayerAuthorization`]),
    /// checked before the pool sees it. The pool does not keep it in memory: it goes to
    /// storage with the row.
    pub payer_signature: SignatureBytes,
}

/// Limits and policy of a pool. See the `DEFAULT_*` constants.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Only ciphertexts for this chain are admitted.
    pub chain_id: ChainId,
    /// Global capacity in transactions.
    pub max_txs: NonZeroUsize,
    /// Global capacity in ciphertext bytes.
    pub max_bytes: NonZeroUsize,
    /// Capacity per rollup in transactions.
    pub max_per_rollup: NonZeroUsize,
    /// Pending transactions per fee payer; beyond it, [`ErrorCode::SenderQuota`].
    pub max_per_sender: NonZeroUsize,
    /// Minimum `max_fee`.
    pub min_fee: Amount,
    /// Largest accepted ciphertext encoding.
    pub max_ciphertext_size: NonZeroUsize,
    /// Most parts in one bundle.
    pub max_bundle_parts: NonZeroUsize,
    /// How far ahead of the current slot an expiry may lie.
    pub max_expiry_horizon: u64,
    /// Most committed ids remembered as spent (see the module docs, "Committed transactions
    /// are spent"). Each costs 18 to 37 bytes: an 8-byte prefix in a hash table (10.3 to 20.6
    /// bytes with the table's control byte and load factor) and again in an index by expiry
    /// slot (8 to 16 bytes with vector slack). Past the bound, the ids with the latest expiry
    /// slot are forgotten and a candidate expiring in that slot is refused with
    /// [`ErrorCode::Expired`] until the slot passes: the effective horizon is lowered, and
    /// nothing committed is admitted again.
    pub max_spent: NonZeroUsize,
    /// The registered rollups and the gas limit of their blocks: a transaction for another
    /// rollup is refused ([`ErrorCode::UnknownRollup`]), and one whose gas limit is zero or
    /// above its rollup's is refused ([`ErrorCode::InvalidGasLimit`]). `None` (a standalone
    /// ingress with no sequencer behind it) accepts any rollup and only refuses gas limit 0.
    pub rollups: Option<std::collections::BTreeMap<RollupId, u64>>,
    /// Whether fee payers need funded fee accounts: a transaction is admitted only if its
    /// `max_fee` fits its payer's available balance (balance less what its pending and
    /// committed-but-unsettled transactions reserve), refused with
    /// [`ErrorCode::InsufficientBalance`] otherwise. Off for a standalone ingress with no
    /// sequencer (and no ledger) behind it.
    pub fee_accounts: bool,
}

impl PoolConfig {
    /// The defaults for `chain_id`, with no minimum fee.
    #[must_use]
    pub fn new(chain_id: ChainId) -> PoolConfig {
        let nz = |v| NonZeroUsize::new(v).expect("defaults are non-zero");
        PoolConfig {
            chain_id,
            max_txs: nz(DEFAULT_MAX_TXS),
            max_bytes: nz(DEFAULT_MAX_BYTES),
            max_per_rollup: nz(DEFAULT_MAX_PER_ROLLUP),
            max_per_sender: nz(DEFAULT_MAX_PER_SENDER),
            min_fee: Amount::ZERO,
            max_ciphertext_size: nz(DEFAULT_MAX_CIPHERTEXT_SIZE),
            max_bundle_parts: nz(DEFAULT_MAX_BUNDLE_PARTS),
            max_expiry_horizon: DEFAULT_MAX_EXPIRY_HORIZON,
            max_spent: nz(DEFAULT_MAX_SPENT),
            rollups: None,
            fee_accounts: false,
        }
    }
}

/// What admission did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The ids, in request order.
    pub ids: Vec<TxId>,
    /// True if every part was already pending or committed (idempotent repeat, see
    /// [`Pool::remove_committed`]); nothing new to store.
    pub duplicate: bool,
    /// Sequence numbers of the newly inserted transactions, to be stored durably.
    pub inserted: Vec<Seq>,
    /// Transactions evicted to make room, to be deleted from storage: lower-fee transactions
    /// of anyone when the pool or a rollup is full, and the fee payer's own lowest-fee
    /// transactions it replaced at its quota.
    pub evicted: Vec<(Seq, TxId)>,
    /// What [`Pool::withdraw`] needs to put the evicted transactions back if the durable
    /// write of this admission fails.
    pub undo: Undo,
}

/// A committed transaction's id with its expiry slot: remembered as spent until that slot
/// passes ([`Pool::remove_committed`], [`Pool::remember_spent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spent {
    /// The transaction id.
    pub id: TxId,
    /// Its expiry slot: after it, a replay is refused as expired anyway.
    pub expiry: Slot,
}

/// The evicted transactions of one admission, kept until its durable write is known to have
/// succeeded (see [`Pool::withdraw`]). Bodies are shared, not copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo(Vec<(Seq, Candidate)>);

/// A read-only view of one pending transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxView<'a> {
    /// Its sequence number.
    pub seq: Seq,
    /// Its id.
    pub id: &'a TxId,
    /// Its metadata (rebuilt from the pool's compact form).
    pub meta: TxMeta,
    /// Digest of its ephemeral key.
    pub ephemeral_key: &'a EphemeralKeyDigest,
    /// Its canonical bytes.
    pub body: &'a [u8],
}

impl TxView<'_> {
    /// A copy of its canonical bytes as [`Bytes`].
    #[must_use]
    pub fn body_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.body)
    }

    /// The transaction as a [`Candidate`] again, with `payer_signature` (the pool keeps none).
    #[must_use]
    pub fn to_candidate(&self, payer_signature: SignatureBytes) -> Candidate {
        Candidate {
            id: *self.id,
            meta: self.meta,
            ephemeral_key: *self.ephemeral_key,
            body: self.body_bytes(),
            payer_signature,
        }
    }
}

/// A body as the pool keeps it: a boxed slice (16 bytes, no header; a [`Bytes`] costs 32,
/// and 32 more for a shared header once it is cloned). Readers get copies: a copy of 1 KB
/// costs far less than the checks every transaction went through.
fn boxed(body: Bytes) -> Box<[u8]> {
    // Without a copy when `body` owns its whole buffer, as an admitted body does.
    Vec::from(body).into_boxed_slice()
}

/// One feed entry: an admitted, durable, still-pending ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// Its sequence number (admission order).
    pub seq: Seq,
    /// Its id.
    pub id: TxId,
    /// Its public metadata.
    pub meta: TxMeta,
    /// Its canonical bytes.
    pub body: Bytes,
}

/// The result of one feed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedBatch {
    /// Items in admission order.
    pub items: Vec<FeedItem>,
    /// Where to read next.
    pub next: FeedCursor,
    /// Sequence numbers passed over because their transaction left the pool before this read.
    pub skipped: u64,
}

/// No bundle: [`Entry::bundle`] of a lone transaction.
const LONE: u32 = u32::MAX;

/// One pending transaction, compact: the chain id is the pool's, the fee payer is a handle
/// into the payers' slab, and a bundle part names its bundle by handle. [`Pool::meta_of`]
/// rebuilds the full [`TxMeta`].
#[derive(Debug)]
struct Entry {
    id: TxId,
    ephemeral_key: EphemeralKeyDigest,
    body: Box<[u8]>,
    max_fee: Amount,
    seq: u64,
    eon: Eon,
    gas_limit: u64,
    expiry: Slot,
    rollup: RollupId,
    payer: u32,
    /// The bundle's handle, or [`LONE`].
    bundle: u32,
    /// This part's index in its bundle.
    part: u16,
}

/// An atomic bundle: its parts are removed together. A lone transaction is its own unit and
/// has no record here. A unit is named by its first part's sequence number.
#[derive(Debug)]
struct Bundle {
    id: BundleId,
    /// The parts' entry handles, in admission order (the request's order).
    parts: Vec<u32>,
    fee: Amount,
    expiry: Slot,
}

#[derive(Debug, Default)]
struct RollupIndex {
    /// (fee, sequence number): highest fee first, then earliest arrival; so the last is the
    /// lowest fee, newest first, the rollup's first candidate for eviction.
    by_fee: BTreeSet<(Reverse<FeeKey>, u64)>,
}

impl RollupIndex {
    /// The rollup's lowest entry as a key of [`Pool::heads`].
    fn head(&self, rollup: RollupId) -> Option<Head> {
        self.by_fee.last().map(|&(Reverse(fee), seq)| (fee, Reverse(seq), rollup))
    }
}

/// A rollup's lowest entry: (fee, newest first, rollup).
type Head = (FeeKey, Reverse<u64>, RollupId);

/// A walk down one rollup's fee index, lowest first.
type Cursor<'a> = std::iter::Rev<std::collections::btree_set::Iter<'a, (Reverse<FeeKey>, u64)>>;

/// A fee as a B-tree key: two `u64` halves, high first, so it orders like the amount. A
/// `u128` key is 16-byte aligned, which makes every key of a (fee, sequence number) tree 32
/// bytes instead of 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FeeKey([u64; 2]);

impl From<Amount> for FeeKey {
    fn from(a: Amount) -> FeeKey {
        FeeKey([(a.0 >> 64) as u64, a.0 as u64])
    }
}

impl FeeKey {
    fn amount(self) -> Amount {
        Amount((u128::from(self.0[0]) << 64) | u128::from(self.0[1]))
    }
}

/// Every pending entry, lowest fee first, ties newest first: a merge of the rollups' fee
/// indexes, walked from their lowest entries (the pool's `heads`), so that no index of all
/// transactions by fee is kept. Each step costs a heap operation over the rollups touched.
struct LowestFirst<'a> {
    heads: std::iter::Peekable<std::collections::btree_set::Iter<'a, Head>>,
    rollups: &'a HashMap<RollupId, RollupIndex>,
    /// The next entry of each rollup whose head was taken, lowest first.
    heap: std::collections::BinaryHeap<Reverse<Head>>,
    cursors: HashMap<RollupId, Cursor<'a>>,
}

impl Iterator for LowestFirst<'_> {
    /// (fee, sequence number).
    type Item = (Amount, u64);

    fn next(&mut self) -> Option<(Amount, u64)> {
        let from_heap = match (self.heap.peek(), self.heads.peek()) {
            (None, None) => return None,
            (Some(Reverse(a)), Some(b)) => a < *b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let (fee, Reverse(seq), rollup) = if from_heap {
            self.heap.pop().expect("peeked").0
        } else {
            let head = *self.heads.next().expect("peeked");
            let mut cursor = self.rollups[&head.2].by_fee.iter().rev();
            cursor.next(); // the head itself
            self.cursors.insert(head.2, cursor);
            head
        };
        if let Some(&(Reverse(f), s)) = self.cursors.get_mut(&rollup).and_then(Iterator::next) {
            self.heap.push(Reverse((f, Reverse(s), rollup)));
        }
        Some((fee.amount(), seq))
    }
}

/// The pending-transaction pool. See the module docs.
///
/// # Memory
///
/// Transactions live in a slab (`Entry`, 144 bytes each besides the body, which is a boxed
/// slice: readers get copies); every index holds 4-byte handles or (fee, sequence number)
/// keys with 8-byte-aligned fees. The id and ephemeral-key indexes are hash tables of
/// handles hashed by the key the entry holds; fee payers are interned with their fee
/// accounts; and there is no index of all transactions by fee: eviction merges the rollups'
/// fee indexes from the set of their lowest entries. `veil-perf pool-memory` measures about
/// 430 bytes per transaction besides its ciphertext, with a funded payer each: 1,000,000
/// ciphertexts of 512-byte payloads take 1,459 MB, within DESIGN.md's budget of 1.5 GB.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    current_slot: Slot,
    eons: Vec<Eon>,
    next_seq: u64,
    durable: u64,
    hasher: RandomState,
    entries: Slab<Entry>,
    /// Sequence number to entry handle: admission order, for the feed and unit names.
    order: BTreeMap<u64, u32>,
    /// Entry handles by id.
    ids: HashTable<u32>,
    /// Entry handles by ephemeral-key digest.
    ephemeral_keys: HashTable<u32>,
    bundles: Slab<Bundle>,
    bundle_ids: HashMap<BundleId, u32>,
    /// Each rollup's lowest entry (fee, newest first): where [`LowestFirst`] starts.
    heads: BTreeSet<Head>,
    by_expiry: BTreeSet<(Slot, u64)>,
    rollups: HashMap<RollupId, RollupIndex>,
    payers: Slab<Payer>,
    /// Payer handles by key.
    payer_keys: HashTable<u32>,
    units: usize,
    bytes: usize,
    /// Committed ids, until their expiry slot passes.
    spent: SpentIds,
    stats: PoolStats,
}

impl Pool {
    /// An empty pool at slot `current_slot`, accepting ciphertexts of the eons in `eons`.
    #[must_use]
    pub fn new(config: PoolConfig, current_slot: Slot, eons: &[Eon]) -> Pool {
        Pool {
            spent: SpentIds::new(config.max_spent.get()),
            config,
            current_slot,
            eons: eons.to_vec(),
            next_seq: 0,
            durable: 0,
            hasher: RandomState::new(),
            entries: Slab::default(),
            order: BTreeMap::new(),
            ids: HashTable::new(),
            ephemeral_keys: HashTable::new(),
            bundles: Slab::default(),
            bundle_ids: HashMap::new(),
            heads: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
            rollups: HashMap::new(),
            payers: Slab::default(),
            payer_keys: HashTable::new(),
            units: 0,
            bytes: 0,
            stats: PoolStats::default(),
        }
    }

    fn hash<K: Hash>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry handle of a pending id.
    fn handle_of_id(&self, id: &TxId) -> Option<u32> {
        let entries = &self.entries;
        self.ids.find(self.hash(id), |&h| entries.at(h).id == *id).copied()
    }

    fn has_ephemeral_key(&self, key: &EphemeralKeyDigest) -> bool {
        let entries = &self.entries;
        self.ephemeral_keys.find(self.hash(key), |&h| entries.at(h).ephemeral_key == *key).is_some()
    }

    fn payer_handle(&self, key: &PublicKeyBytes) -> Option<u32> {
        let payers = &self.payers;
        self.payer_keys.find(self.hash(key), |&h| payers.at(h).key == *key).copied()
    }

    fn payer(&self, key: &PublicKeyBytes) -> Option<&Payer> {
        self.payer_handle(key).map(|h| self.payers.at(h))
    }

    /// The payer's handle, created if new.
    fn payer_entry(&mut self, key: PublicKeyBytes) -> u32 {
        if let Some(h) = self.payer_handle(&key) {
            return h;
        }
        let h = self.payers.insert(Payer::new(key));
        let hash = self.hash(&key);
        let (payers, hasher) = (&self.payers, &self.hasher);
        self.payer_keys.insert_unique(hash, h, |&x| hasher.hash_one(payers.at(x).key));
        h
    }

    /// Forgets a payer with nothing pending and an empty account.
    fn release_payer(&mut self, h: u32) {
        if !self.payers.at(h).is_idle() {
            return;
        }
        let key = self.payers.at(h).key;
        if let Ok(e) = self.payer_keys.find_entry(self.hash(&key), |&x| x == h) {
            e.remove();
        }
        self.payers.remove(h);
    }

    /// Updates a payer's account (created if new) and forgets the payer if it is left idle.
    fn with_account(&mut self, key: PublicKeyBytes, f: impl FnOnce(&mut FeeAccount)) {
        let h = self.payer_entry(key);
        f(&mut self.payers.at_mut(h).account);
        self.release_payer(h);
    }

    /// The full metadata of an entry.
    fn meta_of(&self, e: &Entry) -> TxMeta {
        TxMeta {
            chain_id: self.config.chain_id,
            eon: e.eon,
            rollup: e.rollup,
            fee_payer: self.payers.at(e.payer).key,
            max_fee: e.max_fee,
            gas_limit: e.gas_limit,
            expiry_slot: e.expiry,
            bundle: (e.bundle != LONE).then(|| {
                let b = self.bundles.at(e.bundle);
                BundleRef {
                    id: b.id,
                    index: e.part,
                    count: u16::try_from(b.parts.len()).expect("at most 2^16 parts"),
                }
            }),
        }
    }

    /// The entry handles of the unit named `unit`.
    fn unit_parts(&self, unit: u64) -> Vec<u32> {
        let Some(&h) = self.order.get(&unit) else { return Vec::new() };
        match self.entries.at(h).bundle {
            LONE => vec![h],
            b => self.bundles.at(b).parts.clone(),
        }
    }

    /// Every pending entry, lowest fee first (see [`LowestFirst`]).
    fn lowest_first(&self) -> LowestFirst<'_> {
        LowestFirst {
            heads: self.heads.iter().peekable(),
            rollups: &self.rollups,
            heap: std::collections::BinaryHeap::new(),
            cursors: HashMap::new(),
        }
    }

    /// The name (first sequence number) and fee of an entry's unit.
    fn unit_of(&self, e: &Entry) -> (u64, Amount) {
        match e.bundle {
            LONE => (e.seq, e.max_fee),
            b => {
                let b = self.bundles.at(b);
                (self.entries.at(b.parts[0]).seq, b.fee)
            }
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Replaces the table of registered rollups and their block gas limits (see
    /// [`PoolConfig::rollups`]): a rollup registered after genesis is admitted from here on,
    /// a changed gas limit applies to new admissions. Pending transactions are kept.
    pub fn set_rollups(&mut self, rollups: Option<std::collections::BTreeMap<RollupId, u64>>) {
        self.config.rollups = rollups;
    }

    /// A fee payer's account as the pool sees it (`None`: never credited, nothing pending).
    #[must_use]
    pub fn fee_account(&self, payer: &PublicKeyBytes) -> Option<FeeAccount> {
        self.payer(payer).map(|p| p.account).filter(|a| !a.is_empty())
    }

    /// How many transactions `payer` has pending.
    #[must_use]
    pub fn pending_of(&self, payer: &PublicKeyBytes) -> usize {
        self.payer(payer).map_or(0, Payer::count)
    }

    /// Sets a fee payer's ledger balance (at start, from the sequencer's restored ledger).
    pub fn set_fee_balance(&mut self, payer: PublicKeyBytes, balance: Amount) {
        self.with_account(payer, |a| a.balance = balance);
    }

    /// A deposit credited to a fee payer by the ledger.
    pub fn credit_fee(&mut self, payer: PublicKeyBytes, amount: Amount) {
        self.with_account(payer, |a| a.balance = a.balance.saturating_add(amount));
    }

    /// A committed transaction's fee settled by the ledger: the hold
    /// [`Pool::remove_committed`] put on it ends, and the payer's balance becomes the
    /// ledger's `balance` after the charge (copied, not computed: a charge replayed after a
    /// restart cannot be counted twice).
    pub fn settle_fee(&mut self, payer: &PublicKeyBytes, amount: Amount, balance: Amount) {
        self.with_account(*payer, |a| a.settle(amount, balance));
    }

    /// The cheap fee-payer check admission runs before the expensive proof check: with fee
    /// accounts on, the payer must hold a balance of at least `meta.max_fee` (what is
    /// reserved is checked later, by the pool's rules). Counted in [`Pool::stats`] when it
    /// refuses.
    ///
    /// # Errors
    /// [`ErrorCode::InsufficientBalance`].
    pub fn check_funded(&self, meta: &TxMeta) -> Result<(), Rejection> {
        if !self.config.fee_accounts {
            return Ok(());
        }
        let balance = self.payer(&meta.fee_payer).map_or(Amount::ZERO, |p| p.account.balance);
        if balance == Amount::ZERO || balance < meta.max_fee {
            return Err(Rejection::new(
                ErrorCode::InsufficientBalance,
                format!("fee payer's balance {balance} does not cover max fee {}", meta.max_fee),
            ));
        }
        Ok(())
    }

    /// Replaces the accepted eons (key rotation). Pending transactions are kept.
    pub fn set_eons(&mut self, eons: &[Eon]) {
        self.eons = eons.to_vec();
    }

    /// The eons whose ciphertexts are admitted now.
    #[must_use]
    pub fn eons(&self) -> &[Eon] {
        &self.eons
    }

    /// The slot the pool believes is current.
    #[must_use]
    pub fn current_slot(&self) -> Slot {
        self.current_slot
    }

    /// Pending transactions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// Ciphertext bytes pending.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Counters and gauges for metrics.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let mut s = self.stats.clone();
        s.pending_txs = self.entries.len() as u64;
        s.pending_bytes = self.bytes as u64;
        s.pending_units = self.units as u64;
        s.durable_seq = self.durable;
        s.spent = self.spent.len() as u64;
        s.spent_forgotten = self.spent.forgotten();
        s.refused_expiry_slots = self.spent.refused_slots() as u64;
        s
    }

    /// Records a rejection made outside the pool (decode or proof failure), for [`Pool::stats`].
    pub fn count_rejection(&mut self, code: ErrorCode) {
        self.stats.count_rejection(code);
    }

    /// A pending transaction by id.
    #[must_use]
    pub fn get(&self, id: &TxId) -> Option<TxView<'_>> {
        self.handle_of_id(id).map(|h| self.view(h))
    }

    /// A pending transaction by sequence number.
    #[must_use]
    pub fn get_seq(&self, seq: Seq) -> Option<TxView<'_>> {
        self.order.get(&seq.0).map(|&h| self.view(h))
    }

    fn view(&self, h: u32) -> TxView<'_> {
        let e = self.entries.at(h);
        TxView {
            seq: Seq(e.seq),
            id: &e.id,
            meta: self.meta_of(e),
            ephemeral_key: &e.ephemeral_key,
            body: &e.body,
        }
    }

    /// A rollup's pending transactions, highest `max_fee` first, ties by arrival.
    pub fn best_by_fee(&self, rollup: RollupId) -> impl Iterator<Item = TxView<'_>> + '_ {
        self.rollups
            .get(&rollup)
            .into_iter()
            .flat_map(|r| r.by_fee.iter().map(|(_, seq)| *seq))
            .filter_map(|seq| self.get_seq(Seq(seq)))
    }

    /// A rollup's pending transactions in arrival order (a scan of the whole pool: for tools
    /// and tests, not for a hot path).
    pub fn by_arrival(&self, rollup: RollupId) -> impl Iterator<Item = TxView<'_>> + '_ {
        self.order
            .values()
            .filter(move |&&h| self.entries.at(h).rollup == rollup)
            .map(|&h| self.view(h))
    }

    /// Pending transactions of a rollup.
    #[must_use]
    pub fn rollup_len(&self, rollup: RollupId) -> usize {
        self.rollups.get(&rollup).map_or(0, |r| r.by_fee.len())
    }

    /// Admits one transaction that is not part of a bundle.
    ///
    /// # Errors
    /// A [`Rejection`] with the wire code; the pool is unchanged then.
    pub fn admit_tx(&mut self, candidate: Candidate) -> Result<Admitted, Rejection> {
        let result = self.admit_unit(vec![candidate], false);
        self.count(&result);
        result
    }

    /// Admits every part of an atomic bundle, or none.
    ///
    /// # Errors
    /// A [`Rejection`] with the wire code (and the offending part); the pool is unchanged then.
    pub fn admit_bundle(&mut self, parts: Vec<Candidate>) -> Result<Admitted, Rejection> {
        let result = self.admit_unit(parts, true);
        self.count(&result);
        result
    }

    fn count(&mut self, result: &Result<Admitted, Rejection>) {
        match result {
            Ok(a) if a.duplicate => self.stats.duplicates += 1,
            Ok(a) => {
                self.stats.admitted += a.inserted.len() as u64;
                self.stats.evicted += a.evicted.len() as u64;
            }
            Err(r) => self.stats.count_rejection(r.code),
        }
    }

    fn check_part(&self, c: &Candidate) -> Result<(), Rejection> {
        if c.body.len() > self.config.max_ciphertext_size.get() {
            return Err(Rejection::new(
                ErrorCode::CiphertextTooLarge,
                format!("{} > {} bytes", c.body.len(), self.config.max_ciphertext_size),
            ));
        }
        if c.meta.chain_id != self.config.chain_id {
            return Err(Rejection::new(
                ErrorCode::WrongChain,
                format!("chain {} != {}", c.meta.chain_id, self.config.chain_id),
            ));
        }
        if !self.eons.contains(&c.meta.eon) {
            return Err(Rejection::new(
                ErrorCode::WrongEon,
                format!("eon {} not accepted", c.meta.eon),
            ));
        }
        if c.meta.expiry_slot < self.current_slot {
            return Err(Rejection::new(
                ErrorCode::Expired,
                format!("expiry {} < current slot {}", c.meta.expiry_slot, self.current_slot),
            ));
        }
        if c.meta.expiry_slot.0 > self.current_slot.0.saturating_add(self.config.max_expiry_horizon)
        {
            return Err(Rejection::new(
                ErrorCode::Expired,
                format!("expiry {} beyond the horizon", c.meta.expiry_slot),
            ));
        }
        if self.spent.refuses(c.meta.expiry_slot) {
            let before = self.spent.first_refused().unwrap_or(c.meta.expiry_slot);
            return Err(Rejection::new(
                ErrorCode::Expired,
                format!(
                    "expiry {} beyond the horizon: the effective horizon is lowered to expiries \
                     before slot {before} while the pool's memory of committed ids is full \
                     (at most {})",
                    c.meta.expiry_slot, self.config.max_spent
                ),
            ));
        }
        if c.meta.max_fee < self.config.min_fee {
            return Err(Rejection::new(
                ErrorCode::FeeTooLow,
                format!("max fee {} < {}", c.meta.max_fee, self.config.min_fee),
            ));
        }
        if c.meta.max_fee > Amount::MAX {
            return Err(Rejection::new(
                ErrorCode::FeeTooHigh,
                format!("max fee {} > {}", c.meta.max_fee, Amount::MAX),
            ));
        }
        let rollup_gas = match &self.config.rollups {
            None => u64::MAX,
            Some(rollups) => *rollups.get(&c.meta.rollup).ok_or_else(|| {
                Rejection::new(
                    ErrorCode::UnknownRollup,
                    format!("rollup {} is not registered", c.meta.rollup),
                )
            })?,
        };
        if c.meta.gas_limit == 0 || c.meta.gas_limit > rollup_gas {
            return Err(Rejection::new(
                ErrorCode::InvalidGasLimit,
                format!("gas limit {} not in 1..={rollup_gas}", c.meta.gas_limit),
            ));
        }
        Ok(())
    }

    fn check_bundle_shape(&self, parts: &[Candidate], is_bundle: bool) -> Result<(), Rejection> {
        if !is_bundle {
            if parts[0].meta.bundle.is_some() {
                return Err(Rejection::new(
                    ErrorCode::BadBundle,
                    "a bundle part must be sent with SubmitBundle, with all its parts",
                ));
            }
            return Ok(());
        }
        if parts.is_empty() || parts.len() > self.config.max_bundle_parts.get() {
            return Err(Rejection::new(
                ErrorCode::BadBundle,
                format!("{} parts (1..={} allowed)", parts.len(), self.config.max_bundle_parts),
            ));
        }
        let Some(first) = parts[0].meta.bundle else {
            return Err(
                Rejection::new(ErrorCode::BadBundle, "part has no bundle reference").at_part(0)
            );
        };
        let mut seen_index = HashSet::new();
        let mut seen_rollup = HashSet::new();
        for (i, p) in parts.iter().enumerate() {
            let Some(b) = p.meta.bundle else {
                return Err(
                    Rejection::new(ErrorCode::BadBundle, "part has no bundle reference").at_part(i)
                );
            };
            let bad = |d: &str| Err(Rejection::new(ErrorCode::BadBundle, d).at_part(i));
            if b.id != first.id {
                return bad("parts name different bundles");
            }
            if usize::from(b.count) != parts.len() {
                return bad("bundle count does not match the number of parts");
            }
            if b.index >= b.count || !seen_index.insert(b.index) {
                return bad("bundle index out of range or repeated");
            }
            if !seen_rollup.insert(p.meta.rollup) {
                return bad("two parts for the same rollup");
            }
        }
        Ok(())
    }

    fn admit_unit(
        &mut self,
        parts: Vec<Candidate>,
        is_bundle: bool,
    ) -> Result<Admitted, Rejection> {
        if parts.is_empty() {
            return Err(Rejection::new(ErrorCode::BadBundle, "empty request"));
        }
        self.check_bundle_shape(&parts, is_bundle)?;
        let ids: Vec<TxId> = parts.iter().map(|p| p.id).collect();
        // Duplicates: all known is an idempotent ack, some known is an error. Known is
        // pending, or committed (spent) and not yet expired: a replay of a committed
        // transaction is answered as its duplicate and never admitted again.
        let pending = ids.iter().filter(|id| self.handle_of_id(id).is_some()).count();
        let spent = ids.iter().filter(|id| self.spent.contains(id)).count();
        let known = pending + spent;
        if known == parts.len() {
            if spent > 0 {
                self.stats.replays += 1;
            }
            return Ok(Admitted {
                ids,
                duplicate: true,
                inserted: vec![],
                evicted: vec![],
                undo: Undo::default(),
            });
        }
        if known > 0 {
            return Err(Rejection::new(
                ErrorCode::BadBundle,
                "some parts of this bundle are pending or committed already, others are not",
            ));
        }
        if let Some(b) = parts[0].meta.bundle {
            if self.bundle_ids.contains_key(&b.id) {
                return Err(Rejection::new(
                    ErrorCode::BadBundle,
                    "a different bundle with this id is pending",
                ));
            }
        }
        let mut keys = HashSet::new();
        for (i, p) in parts.iter().enumerate() {
            self.check_part(p).map_err(|r| if is_bundle { r.at_part(i) } else { r })?;
            if self.has_ephemeral_key(&p.ephemeral_key) || !keys.insert(p.ephemeral_key) {
                let r = Rejection::new(
                    ErrorCode::EphemeralKeyReused,
                    "another pending ciphertext uses this ephemeral key",
                );
                return Err(if is_bundle { r.at_part(i) } else { r });
            }
        }
        let fee = parts.iter().map(|p| p.meta.max_fee).min().expect("non-empty");
        let replaced = self.plan_payers(&parts, fee)?;
        let victims = self.plan_eviction(&parts, fee, replaced)?;
        let mut evicted = Vec::new();
        let mut undo = Vec::new();
        for unit in victims {
            for (seq, c) in self.remove_unit(unit) {
                evicted.push((seq, c.id));
                undo.push((seq, c));
            }
        }
        let inserted = self.insert_unit(parts);
        Ok(Admitted { ids, duplicate: false, inserted, evicted, undo: Undo(undo) })
    }

    /// The fee payers' rules for a request whose unit pays `fee` (its lowest part's
    /// `max_fee`): per payer, the quota of pending transactions and the available balance.
    ///
    /// A payer at its quota is not refused outright: its own lowest-fee lone transactions
    /// (never a bundle part) are replaced, as many as needed, if each pays strictly less than
    /// `fee`; otherwise [`ErrorCode::SenderQuota`]. With fee accounts on, the payer's
    /// available balance, plus what the replaced transactions reserved, must cover the
    /// `max_fee` of its parts; otherwise [`ErrorCode::InsufficientBalance`]. Returns the units
    /// to replace.
    fn plan_payers(&self, parts: &[Candidate], fee: Amount) -> Result<Vec<u64>, Rejection> {
        let mut adding: BTreeMap<PublicKeyBytes, (usize, Amount)> = BTreeMap::new();
        for p in parts {
            let a = adding.entry(p.meta.fee_payer).or_insert((0, Amount::ZERO));
            a.0 += 1;
            a.1 = a.1.saturating_add(p.meta.max_fee);
        }
        let max = self.config.max_per_sender.get();
        let mut replaced = Vec::new();
        let fee_seq = |h: u32| {
            let e = self.entries.at(h);
            (e.max_fee, e.seq)
        };
        for (payer, (n, need)) in &adding {
            let mine = self.payer(payer);
            let have = mine.map_or(0, Payer::count);
            let over = (have + n).saturating_sub(max);
            let mut freed = Amount::ZERO;
            if over > 0 {
                let victims: Vec<(Amount, u64)> =
                    mine.map(|m| m.lowest_lone(fee_seq).take(over).collect()).unwrap_or_default();
                if victims.len() < over || victims.iter().any(|(f, _)| *f >= fee) {
                    return Err(Rejection::new(
                        ErrorCode::SenderQuota,
                        format!(
                            "fee payer has {have} pending transactions (at most {max}) and \
                             none it could replace pays less than {fee}"
                        ),
                    ));
                }
                for (f, seq) in victims {
                    freed = freed.saturating_add(f);
                    // A lone transaction is its own unit.
                    replaced.push(seq);
                }
            }
            if self.config.fee_accounts {
                let account = mine.map(|m| m.account).unwrap_or_default();
                let available = account.available();
                if account.balance == Amount::ZERO || *need > available.saturating_add(freed) {
                    return Err(Rejection::new(
                        ErrorCode::InsufficientBalance,
                        format!("fee payer's available balance {available} < max fee {need}"),
                    ));
                }
            }
        }
        Ok(replaced)
    }

    /// Picks units to evict so that `parts` fit, each paying strictly less than `fee`;
    /// `replaced` (units the payers' quotas replace) are removed in any case and free their
    /// room first. Returns every unit to remove, `replaced` first.
    fn plan_eviction(
        &self,
        parts: &[Candidate],
        fee: Amount,
        replaced: Vec<u64>,
    ) -> Result<Vec<u64>, Rejection> {
        let add_txs = parts.len();
        let add_bytes: usize = parts.iter().map(|p| p.body.len()).sum();
        let mut victims: Vec<u64> = Vec::new();
        let mut chosen = HashSet::new();
        let mut freed_txs = 0usize;
        let mut freed_bytes = 0usize;
        let mut freed_per_rollup: HashMap<RollupId, usize> = HashMap::new();
        let full = |msg: String| Err(Rejection::new(ErrorCode::PoolFull, msg));

        let mut take = |unit: u64,
                        victims: &mut Vec<u64>,
                        freed_txs: &mut usize,
                        freed_bytes: &mut usize,
                        freed_per_rollup: &mut HashMap<RollupId, usize>| {
            if !chosen.insert(unit) {
                return;
            }
            victims.push(unit);
            for h in self.unit_parts(unit) {
                let e = self.entries.at(h);
                *freed_txs += 1;
                *freed_bytes += e.body.len();
                *freed_per_rollup.entry(e.rollup).or_default() += 1;
            }
        };

        for unit in replaced {
            take(unit, &mut victims, &mut freed_txs, &mut freed_bytes, &mut freed_per_rollup);
        }
        // Units in order of their fee: a unit is met first at its lowest-fee part, which
        // pays its unit's fee.
        let mut global = self.lowest_first();
        while self.entries.len() + add_txs - freed_txs > self.config.max_txs.get()
            || self.bytes + add_bytes - freed_bytes > self.config.max_bytes.get()
        {
            let Some((_, seq)) = global.next() else {
                return full("the pool is full of transactions paying at least as much".into());
            };
            let (unit, unit_fee) = self.unit_of(self.entries.at(self.order[&seq]));
            if victims.contains(&unit) {
                continue;
            }
            if unit_fee >= fee {
                return full("the pool is full of transactions paying at least as much".into());
            }
            take(unit, &mut victims, &mut freed_txs, &mut freed_bytes, &mut freed_per_rollup);
        }
        for p in parts {
            let rollup = p.meta.rollup;
            let have = self.rollup_len(rollup);
            let adding = parts.iter().filter(|q| q.meta.rollup == rollup).count();
            let Some(index) = self.rollups.get(&rollup) else { continue };
            let mut lowest = index.by_fee.iter().rev();
            while have + adding - freed_per_rollup.get(&rollup).copied().unwrap_or(0)
                > self.config.max_per_rollup.get()
            {
                let Some(&(_, seq)) = lowest.next() else {
                    return full(format!("rollup {rollup} is full"));
                };
                let (unit, unit_fee) = self.unit_of(self.entries.at(self.order[&seq]));
                if unit_fee >= fee {
                    return full(format!(
                        "rollup {rollup} is full of transactions paying at least as much"
                    ));
                }
                take(unit, &mut victims, &mut freed_txs, &mut freed_bytes, &mut freed_per_rollup);
            }
        }
        Ok(victims)
    }

    fn insert_unit(&mut self, parts: Vec<Candidate>) -> Vec<Seq> {
        let first = self.next_seq;
        let rows: Vec<(u64, Candidate)> = parts
            .into_iter()
            .map(|c| {
                let seq = self.next_seq;
                self.next_seq += 1;
                (seq, c)
            })
            .collect();
        self.insert_rows(rows);
        (first..self.next_seq).map(Seq).collect()
    }

    /// Inserts one unit (a lone transaction, or every part of a bundle) under the given
    /// sequence numbers, with every index and the payers' reservations.
    fn insert_rows(&mut self, rows: Vec<(u64, Candidate)>) {
        let unit = rows[0].0;
        let fee = rows.iter().map(|(_, c)| c.meta.max_fee).min().expect("non-empty");
        let expiry = rows.iter().map(|(_, c)| c.meta.expiry_slot).min().expect("non-empty");
        let bundle = match rows[0].1.meta.bundle {
            None => LONE,
            Some(b) => {
                let h = self.bundles.insert(Bundle {
                    id: b.id,
                    parts: Vec::with_capacity(rows.len()),
                    fee,
                    expiry,
                });
                self.bundle_ids.insert(b.id, h);
                h
            }
        };
        for (seq, c) in rows {
            let h = self.insert_entry(seq, c, bundle);
            if bundle != LONE {
                self.bundles.at_mut(bundle).parts.push(h);
            }
        }
        self.by_expiry.insert((expiry, unit));
        self.units += 1;
    }

    fn insert_entry(&mut self, seq: u64, c: Candidate, bundle: u32) -> u32 {
        let payer = self.payer_entry(c.meta.fee_payer);
        let h = self.entries.insert(Entry {
            id: c.id,
            ephemeral_key: c.ephemeral_key,
            body: boxed(c.body),
            max_fee: c.meta.max_fee,
            seq,
            eon: c.meta.eon,
            gas_limit: c.meta.gas_limit,
            expiry: c.meta.expiry_slot,
            rollup: c.meta.rollup,
            payer,
            bundle,
            part: c.meta.bundle.map_or(0, |b| b.index),
        });
        self.order.insert(seq, h);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.ids.insert_unique(hasher.hash_one(c.id), h, |&x| hasher.hash_one(entries.at(x).id));
        self.ephemeral_keys.insert_unique(hasher.hash_one(c.ephemeral_key), h, |&x| {
            hasher.hash_one(entries.at(x).ephemeral_key)
        });
        let r = self.rollups.entry(c.meta.rollup).or_default();
        let old_head = r.head(c.meta.rollup);
        r.by_fee.insert((Reverse(FeeKey::from(c.meta.max_fee)), seq));
        let new_head = r.head(c.meta.rollup);
        update_head(&mut self.heads, old_head, new_head);
        let fee_seq = |x: u32| {
            let e = entries.at(x);
            (e.max_fee, e.seq)
        };
        let p = self.payers.at_mut(payer);
        p.add(h, c.meta.max_fee, seq, bundle == LONE, fee_seq);
        if self.config.fee_accounts {
            p.account.reserve(c.meta.max_fee);
        }
        self.bytes += self.entries.at(h).body.len();
        h
    }

    /// Removes a whole unit; returns the removed transactions (in admission order, without
    /// payer signatures: the pool keeps none).
    fn remove_unit(&mut self, unit: u64) -> Vec<(Seq, Candidate)> {
        let parts = self.unit_parts(unit);
        let Some(&first) = parts.first() else { return Vec::new() };
        let e = self.entries.at(first);
        let (expiry, bundle) = match e.bundle {
            LONE => (e.expiry, LONE),
            b => (self.bundles.at(b).expiry, b),
        };
        self.by_expiry.remove(&(expiry, unit));
        self.units -= 1;
        let mut out = Vec::with_capacity(parts.len());
        for h in parts {
            let meta = self.meta_of(self.entries.at(h));
            let e = self.entries.remove(h).expect("a live part");
            self.order.remove(&e.seq);
            let hash = self.hash(&e.id);
            if let Ok(x) = self.ids.find_entry(hash, |&x| x == h) {
                x.remove();
            }
            let hash = self.hash(&e.ephemeral_key);
            if let Ok(x) = self.ephemeral_keys.find_entry(hash, |&x| x == h) {
                x.remove();
            }
            if let Some(r) = self.rollups.get_mut(&e.rollup) {
                let old_head = r.head(e.rollup);
                r.by_fee.remove(&(Reverse(FeeKey::from(e.max_fee)), e.seq));
                let new_head = r.head(e.rollup);
                update_head(&mut self.heads, old_head, new_head);
                if r.by_fee.is_empty() {
                    self.rollups.remove(&e.rollup);
                }
            }
            let order = &self.order;
            let p = self.payers.at_mut(e.payer);
            p.remove(h, e.max_fee, e.seq, |seq| order[&seq]);
            if self.config.fee_accounts {
                // Released here; a committed transaction's reservation is held again by
                // `remove_committed` until its fee is settled.
                p.account.unreserve(e.max_fee);
            }
            self.release_payer(e.payer);
            self.bytes -= e.body.len();
            out.push((
                Seq(e.seq),
                Candidate {
                    id: e.id,
                    meta,
                    ephemeral_key: e.ephemeral_key,
                    body: Bytes::from(e.body),
                    payer_signature: SignatureBytes([0; 64]),
                },
            ));
        }
        if bundle != LONE {
            if let Some(b) = self.bundles.remove(bundle) {
                self.bundle_ids.remove(&b.id);
            }
        }
        out
    }

    /// Withdraws a just-admitted request whose durable write failed, as one atomic undo: its
    /// inserted transactions leave (with their units and reservations), and the transactions
    /// it evicted come back under their old sequence numbers, with their reservations, as
    /// the store still holds them. An evicted transaction whose id or ephemeral key was
    /// admitted again since stays out (the store's restore prunes the older row).
    pub fn withdraw(&mut self, admitted: &Admitted) {
        for seq in &admitted.inserted {
            if let Some(&h) = self.order.get(&seq.0) {
                let (unit, _) = self.unit_of(self.entries.at(h));
                let removed = self.remove_unit(unit);
                self.stats.admitted = self.stats.admitted.saturating_sub(removed.len() as u64);
            }
        }
        let back = self.reinsert(admitted.undo.0.clone());
        self.stats.evicted =
            self.stats.evicted.saturating_sub((admitted.undo.0.len() - back.len()) as u64);
    }

    /// Advances the current slot and removes every unit whose expiry slot is before it.
    /// Returns the removed transactions, to be deleted from storage. Spent ids whose expiry
    /// slot is before it are forgotten (a replay is refused as expired from now on).
    #[must_use = "removed transactions must be deleted from storage"]
    pub fn on_slot(&mut self, slot: Slot) -> Vec<(Seq, TxId)> {
        if slot > self.current_slot {
            self.current_slot = slot;
        }
        self.spent.prune(self.current_slot);
        let mut removed = Vec::new();
        while let Some(&(expiry, unit)) = self.by_expiry.first() {
            if expiry >= self.current_slot {
                break;
            }
            removed.extend(self.remove_unit(unit).into_iter().map(|(s, c)| (s, c.id)));
        }
        self.stats.expired += removed.len() as u64;
        removed
    }

    /// Removes committed transactions (and, for a bundle part, its whole bundle: bundles
    /// commit together) and remembers each as spent until its expiry slot passes: a replay
    /// is then answered as a duplicate and never admitted again. Unknown ids are ignored (so
    /// a repeated call is harmless). Transactions of a slot that failed are simply not passed
    /// here, so they stay pending.
    ///
    /// Returns the removed transactions: their rows are to be deleted from storage, and their
    /// ids stored as spent in the same write, so that a restart remembers them too
    /// ([`Pool::remember_spent`]). Every removed id is returned, also one that the memory
    /// bound did not let the pool keep ([`PoolConfig::max_spent`]): storage keeps them all.
    #[must_use = "removed transactions must be deleted from storage and stored as spent"]
    pub fn remove_committed(&mut self, ids: &[TxId]) -> Vec<(Seq, Spent)> {
        self.remove_spent(ids, true)
    }

    /// [`Pool::remove_committed`] for transactions whose fees are settled already, so that
    /// their payers' accounts hold nothing for them: a restart found them pending because the
    /// node stopped after their slot settled but before their removal was stored.
    #[must_use = "removed transactions must be deleted from storage and stored as spent"]
    pub fn remove_settled(&mut self, ids: &[TxId]) -> Vec<(Seq, Spent)> {
        self.remove_spent(ids, false)
    }

    fn remove_spent(&mut self, ids: &[TxId], hold: bool) -> Vec<(Seq, Spent)> {
        let mut removed = Vec::new();
        for id in ids {
            let Some(h) = self.handle_of_id(id) else { continue };
            let (unit, _) = self.unit_of(self.entries.at(h));
            for (seq, c) in self.remove_unit(unit) {
                if hold && self.config.fee_accounts {
                    self.with_account(c.meta.fee_payer, |a| a.hold(c.meta.max_fee));
                }
                let spent = Spent { id: c.id, expiry: c.meta.expiry_slot };
                self.spent.insert(&spent.id, spent.expiry, self.current_slot);
                removed.push((seq, spent));
            }
        }
        self.stats.committed += removed.len() as u64;
        removed
    }

    /// Remembers a committed transaction that is not pending as spent until its expiry slot
    /// passes: at a restart, from storage (call it before [`Pool::restore`], in any order;
    /// in expiry order is cheapest), or at publication for one that had left the pool while
    /// its slot was in flight (evicted). Returns whether it is to be stored as spent: false if
    /// it is pending (see [`Pool::remove_committed`]), expired or already remembered.
    pub fn remember_spent(&mut self, spent: Spent) -> bool {
        if spent.expiry < self.current_slot
            || self.handle_of_id(&spent.id).is_some()
            || self.spent.contains(&spent.id)
        {
            return false;
        }
        self.spent.insert(&spent.id, spent.expiry, self.current_slot);
        true
    }

    /// Whether `id` is remembered as committed (its expiry slot has not passed). Matched by
    /// the id's first 8 bytes (see [`PoolConfig::max_spent`]): a match is a committed
    /// ciphertext's replay, or with probability below `max_spent / 2^64` a new ciphertext.
    #[must_use]
    pub fn is_spent(&self, id: &TxId) -> bool {
        self.spent.contains(id)
    }

    /// Numbers new transactions from at least `floor` (the store's high-water mark, see
    /// `veil_storage`), so that no feed position is reused after a restart.
    pub fn advance_seq(&mut self, floor: Seq) {
        self.next_seq = self.next_seq.max(floor.0);
        self.durable = self.durable.max(self.next_seq);
    }

    /// Declares every sequence number below `end` durable: the feed may now deliver them.
    pub fn mark_durable(&mut self, end: Seq) {
        self.durable = self.durable.max(end.0);
    }

    /// The sequence number the next admitted transaction will get.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        Seq(self.next_seq)
    }

    /// The end of the durable prefix of the feed.
    #[must_use]
    pub fn durable_end(&self) -> FeedCursor {
        FeedCursor(self.durable)
    }

    /// Reads up to `max` durable, still-pending transactions from `cursor` on, in admission
    /// order. A cursor at or past the durable end reads nothing (and never panics).
    #[must_use]
    pub fn feed(&self, cursor: FeedCursor, max: usize) -> FeedBatch {
        if cursor.0 >= self.durable {
            return FeedBatch { items: Vec::new(), next: cursor, skipped: 0 };
        }
        let mut items = Vec::new();
        let mut next = cursor.0;
        let mut skipped = 0;
        for (&seq, &h) in self.order.range(cursor.0..self.durable) {
            if items.len() >= max {
                break;
            }
            skipped += seq - next;
            let e = self.entries.at(h);
            items.push(FeedItem {
                seq: Seq(seq),
                id: e.id,
                meta: self.meta_of(e),
                body: Bytes::copy_from_slice(&e.body),
            });
            next = seq + 1;
        }
        if items.len() < max && next < self.durable {
            // Everything up to the durable end was read; the rest left the pool.
            skipped += self.durable - next;
            next = self.durable;
        }
        FeedBatch { items, next: FeedCursor(next), skipped }
    }

    /// Rebuilds the pool from stored rows (in any order). Rows that expired before the
    /// current slot, duplicates, and rows of transactions remembered as spent (restore those
    /// first, [`Pool::remember_spent`]) are dropped and returned for deletion from storage.
    /// Capacity and quotas are not enforced on restore: what was acknowledged stays.
    #[must_use = "pruned rows must be deleted from storage"]
    pub fn restore(&mut self, rows: Vec<(Seq, Candidate)>) -> Vec<(Seq, TxId)> {
        if let Some(max) = rows.iter().map(|(s, _)| s.0).max() {
            self.next_seq = self.next_seq.max(max + 1);
        }
        let pruned = self.reinsert(rows);
        self.durable = self.next_seq;
        pruned
    }

    /// Puts stored rows back (restore, or an undone eviction) under their own sequence
    /// numbers, bundles whole. Returns the rows left out: expired, for another chain,
    /// duplicates of a pending id or ephemeral key, spent (committed), or parts of an
    /// incomplete bundle.
    fn reinsert(&mut self, mut rows: Vec<(Seq, Candidate)>) -> Vec<(Seq, TxId)> {
        rows.sort_by_key(|(s, _)| *s);
        let mut pruned = Vec::new();
        let mut bundle_parts: HashMap<BundleId, Vec<(u64, Candidate)>> = HashMap::new();
        let mut keys = HashSet::new();
        for (seq, c) in rows {
            if c.meta.expiry_slot < self.current_slot
                || c.meta.chain_id != self.config.chain_id
                || self.handle_of_id(&c.id).is_some()
                || self.spent.contains(&c.id)
                || self.has_ephemeral_key(&c.ephemeral_key)
                || self.order.contains_key(&seq.0)
                || !keys.insert(c.ephemeral_key)
            {
                pruned.push((seq, c.id));
                continue;
            }
            match c.meta.bundle {
                None => self.insert_rows(vec![(seq.0, c)]),
                Some(b) => bundle_parts.entry(b.id).or_default().push((seq.0, c)),
            }
        }
        for (bundle, parts) in bundle_parts {
            // A bundle is written in one transaction and deleted whole, so its parts are
            // either all here or an expired part pruned it; then drop the rest too.
            let count = parts[0].1.meta.bundle.map_or(0, |b| usize::from(b.count));
            if parts.len() != count || self.bundle_ids.contains_key(&bundle) {
                pruned.extend(parts.into_iter().map(|(s, c)| (Seq(s), c.id)));
                continue;
            }
            self.insert_rows(parts);
        }
        pruned
    }
}

/// Keeps [`Pool::heads`] in step with one rollup's lowest entry.
fn update_head(heads: &mut BTreeSet<Head>, old: Option<Head>, new: Option<Head>) {
    if old != new {
        if let Some(o) = old {
            heads.remove(&o);
        }
        if let Some(n) = new {
            heads.insert(n);
        }
    }
}

/// The auction's view of the pool: a bid may name a ciphertext only once it is admitted and
/// durable (acknowledged), which is also when builders can first see it on the feed.
impl CiphertextIndex for Pool {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.get(id).filter(|v| v.seq.0 < self.durable).map(|v| v.meta)
    }
}

#[cfg(test)]
mod tests;
