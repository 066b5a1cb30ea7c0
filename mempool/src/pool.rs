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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use veil_primitives::{
    Amount, BundleId, ChainId, CiphertextIndex, Eon, ErrorCode, PublicKeyBytes, RollupId,
    SignatureBytes, Slot, TxId,
};

use crate::error::Rejection;
use crate::metrics::PoolStats;

mod accounts;
pub use accounts::FeeAccount;
use accounts::Payer;

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
    /// True if every part was already pending (idempotent repeat); nothing new to store.
    pub duplicate: bool,
    /// Sequence numbers of the newly inserted transactions, to be stored durably.
    pub inserted: Vec<Seq>,
    /// Transactions evicted to make room, to be deleted from storage: lower-fee transactions
    /// of anyone when the pool or a rollup is full, and the fee payer's own lowest-fee
    /// transactions it replaced at its quota.
    pub evicted: Vec<(Seq, TxId)>,
}

/// A read-only view of one pending transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxView<'a> {
    /// Its sequence number.
    pub seq: Seq,
    /// Its id.
    pub id: &'a TxId,
    /// Its metadata.
    pub meta: &'a TxMeta,
    /// Digest of its ephemeral key.
    pub ephemeral_key: &'a EphemeralKeyDigest,
    /// Its canonical bytes.
    pub body: &'a Bytes,
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

#[derive(Debug)]
struct Entry {
    id: TxId,
    meta: TxMeta,
    ephemeral_key: EphemeralKeyDigest,
    body: Bytes,
    unit: u64,
}

#[derive(Debug)]
struct Unit {
    parts: Vec<u64>,
    fee: Amount,
    expiry: Slot,
    bundle: Option<BundleId>,
}

#[derive(Debug, Default)]
struct RollupIndex {
    /// Highest fee first, then earliest arrival.
    by_fee: BTreeSet<(Reverse<Amount>, u64)>,
    by_arrival: BTreeSet<u64>,
}

/// The pending-transaction pool. See the module docs.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    current_slot: Slot,
    eons: Vec<Eon>,
    next_seq: u64,
    durable: u64,
    ids: HashMap<TxId, u64>,
    entries: BTreeMap<u64, Entry>,
    ephemeral_keys: HashMap<EphemeralKeyDigest, u64>,
    units: HashMap<u64, Unit>,
    bundles: HashMap<BundleId, u64>,
    by_unit_fee: BTreeSet<(Amount, Reverse<u64>)>,
    by_expiry: BTreeSet<(Slot, u64)>,
    rollups: HashMap<RollupId, RollupIndex>,
    senders: HashMap<PublicKeyBytes, Payer>,
    accounts: HashMap<PublicKeyBytes, FeeAccount>,
    bytes: usize,
    stats: PoolStats,
}

impl Pool {
    /// An empty pool at slot `current_slot`, accepting ciphertexts of the eons in `eons`.
    #[must_use]
    pub fn new(config: PoolConfig, current_slot: Slot, eons: &[Eon]) -> Pool {
        Pool {
            config,
            current_slot,
            eons: eons.to_vec(),
            next_seq: 0,
            durable: 0,
            ids: HashMap::new(),
            entries: BTreeMap::new(),
            ephemeral_keys: HashMap::new(),
            units: HashMap::new(),
            bundles: HashMap::new(),
            by_unit_fee: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
            rollups: HashMap::new(),
            senders: HashMap::new(),
            accounts: HashMap::new(),
            bytes: 0,
            stats: PoolStats::default(),
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
        self.accounts.get(payer).copied()
    }

    /// How many transactions `payer` has pending.
    #[must_use]
    pub fn pending_of(&self, payer: &PublicKeyBytes) -> usize {
        self.senders.get(payer).map_or(0, Payer::count)
    }

    /// Sets a fee payer's ledger balance (at start, from the sequencer's restored ledger).
    pub fn set_fee_balance(&mut self, payer: PublicKeyBytes, balance: Amount) {
        let a = self.accounts.entry(payer).or_default();
        a.balance = balance;
        if a.is_empty() {
            self.accounts.remove(&payer);
        }
    }

    /// A deposit credited to a fee payer by the ledger.
    pub fn credit_fee(&mut self, payer: PublicKeyBytes, amount: Amount) {
        let a = self.accounts.entry(payer).or_default();
        a.balance = a.balance.saturating_add(amount);
    }

    /// A committed transaction's fee settled by the ledger: the hold
    /// [`Pool::remove_committed`] put on it ends, and the payer's balance becomes the
    /// ledger's `balance` after the charge (copied, not computed: a charge replayed after a
    /// restart cannot be counted twice).
    pub fn settle_fee(&mut self, payer: &PublicKeyBytes, amount: Amount, balance: Amount) {
        let a = self.accounts.entry(*payer).or_default();
        a.settle(amount, balance);
        if a.is_empty() {
            self.accounts.remove(payer);
        }
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
        let balance = self.accounts.get(&meta.fee_payer).map_or(Amount::ZERO, |a| a.balance);
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
        self.entries.is_empty()
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
        s.pending_units = self.units.len() as u64;
        s.durable_seq = self.durable;
        s
    }

    /// Records a rejection made outside the pool (decode or proof failure), for [`Pool::stats`].
    pub fn count_rejection(&mut self, code: ErrorCode) {
        self.stats.count_rejection(code);
    }

    /// A pending transaction by id.
    #[must_use]
    pub fn get(&self, id: &TxId) -> Option<TxView<'_>> {
        let seq = *self.ids.get(id)?;
        self.view(seq)
    }

    /// A pending transaction by sequence number.
    #[must_use]
    pub fn get_seq(&self, seq: Seq) -> Option<TxView<'_>> {
        self.view(seq.0)
    }

    fn view(&self, seq: u64) -> Option<TxView<'_>> {
        let e = self.entries.get(&seq)?;
        Some(TxView {
            seq: Seq(seq),
            id: &e.id,
            meta: &e.meta,
            ephemeral_key: &e.ephemeral_key,
            body: &e.body,
        })
    }

    /// A rollup's pending transactions, highest `max_fee` first, ties by arrival.
    pub fn best_by_fee(&self, rollup: RollupId) -> impl Iterator<Item = TxView<'_>> + '_ {
        self.rollups
            .get(&rollup)
            .into_iter()
            .flat_map(|r| r.by_fee.iter().map(|(_, seq)| *seq))
            .filter_map(|seq| self.view(seq))
    }

    /// A rollup's pending transactions in arrival order.
    pub fn by_arrival(&self, rollup: RollupId) -> impl Iterator<Item = TxView<'_>> + '_ {
        self.rollups
            .get(&rollup)
            .into_iter()
            .flat_map(|r| r.by_arrival.iter().copied())
            .filter_map(|seq| self.view(seq))
    }

    /// Pending transactions of a rollup.
    #[must_use]
    pub fn rollup_len(&self, rollup: RollupId) -> usize {
        self.rollups.get(&rollup).map_or(0, |r| r.by_arrival.len())
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
        // Duplicates: all known is an idempotent ack, some known is an error.
        let known = ids.iter().filter(|id| self.ids.contains_key(id)).count();
        if known == parts.len() {
            return Ok(Admitted { ids, duplicate: true, inserted: vec![], evicted: vec![] });
        }
        if known > 0 {
            return Err(Rejection::new(
                ErrorCode::BadBundle,
                "some parts of this bundle are pending already, others are not",
            ));
        }
        if let Some(b) = parts[0].meta.bundle {
            if self.bundles.contains_key(&b.id) {
                return Err(Rejection::new(
                    ErrorCode::BadBundle,
                    "a different bundle with this id is pending",
                ));
            }
        }
        let mut keys = HashSet::new();
        for (i, p) in parts.iter().enumerate() {
            self.check_part(p).map_err(|r| if is_bundle { r.at_part(i) } else { r })?;
            if self.ephemeral_keys.contains_key(&p.ephemeral_key) || !keys.insert(p.ephemeral_key) {
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
        for unit in victims {
            evicted.extend(self.remove_unit(unit));
        }
        let inserted = self.insert_unit(parts);
        Ok(Admitted { ids, duplicate: false, inserted, evicted })
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
        for (payer, (n, need)) in &adding {
            let mine = self.senders.get(payer);
            let have = mine.map_or(0, Payer::count);
            let over = (have + n).saturating_sub(max);
            let mut freed = Amount::ZERO;
            if over > 0 {
                let victims: Vec<(Amount, u64)> =
                    mine.map(|m| m.lowest_lone().take(over).collect()).unwrap_or_default();
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
                    replaced.push(self.entries[&seq].unit);
                }
            }
            if self.config.fee_accounts {
                let account = self.accounts.get(payer).copied().unwrap_or_default();
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
            for seq in &self.units[&unit].parts {
                let e = &self.entries[seq];
                *freed_txs += 1;
                *freed_bytes += e.body.len();
                *freed_per_rollup.entry(e.meta.rollup).or_default() += 1;
            }
        };

        for unit in replaced {
            take(unit, &mut victims, &mut freed_txs, &mut freed_bytes, &mut freed_per_rollup);
        }
        let mut global = self.by_unit_fee.iter();
        while self.entries.len() + add_txs - freed_txs > self.config.max_txs.get()
            || self.bytes + add_bytes - freed_bytes > self.config.max_bytes.get()
        {
            match global.next() {
                Some(&(victim_fee, Reverse(unit))) if victim_fee < fee => take(
                    unit,
                    &mut victims,
                    &mut freed_txs,
                    &mut freed_bytes,
                    &mut freed_per_rollup,
                ),
                _ => {
                    return full("the pool is full of transactions paying at least as much".into())
                }
            }
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
                let unit = self.entries[&seq].unit;
                if self.units[&unit].fee >= fee {
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
        let unit_id = self.next_seq;
        let fee = parts.iter().map(|p| p.meta.max_fee).min().expect("non-empty");
        let expiry = parts.iter().map(|p| p.meta.expiry_slot).min().expect("non-empty");
        let bundle = parts[0].meta.bundle.map(|b| b.id);
        let mut seqs = Vec::with_capacity(parts.len());
        for c in parts {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.insert_entry(seq, c, unit_id);
            seqs.push(seq);
        }
        self.by_unit_fee.insert((fee, Reverse(unit_id)));
        self.by_expiry.insert((expiry, unit_id));
        if let Some(b) = bundle {
            self.bundles.insert(b, unit_id);
        }
        let out = seqs.iter().map(|s| Seq(*s)).collect();
        self.units.insert(unit_id, Unit { parts: seqs, fee, expiry, bundle });
        out
    }

    fn insert_entry(&mut self, seq: u64, c: Candidate, unit: u64) {
        self.ids.insert(c.id, seq);
        self.ephemeral_keys.insert(c.ephemeral_key, seq);
        let r = self.rollups.entry(c.meta.rollup).or_default();
        r.by_fee.insert((Reverse(c.meta.max_fee), seq));
        r.by_arrival.insert(seq);
        let lone = unit == seq && c.meta.bundle.is_none();
        self.senders.entry(c.meta.fee_payer).or_default().add(c.meta.max_fee, seq, lone);
        if self.config.fee_accounts {
            self.accounts.entry(c.meta.fee_payer).or_default().reserve(c.meta.max_fee);
        }
        self.bytes += c.body.len();
        self.entries.insert(
            seq,
            Entry { id: c.id, meta: c.meta, ephemeral_key: c.ephemeral_key, body: c.body, unit },
        );
    }

    /// Removes a whole unit; returns the removed (seq, id) pairs.
    fn remove_unit(&mut self, unit_id: u64) -> Vec<(Seq, TxId)> {
        let Some(unit) = self.units.remove(&unit_id) else { return vec![] };
        self.by_unit_fee.remove(&(unit.fee, Reverse(unit_id)));
        self.by_expiry.remove(&(unit.expiry, unit_id));
        if let Some(b) = unit.bundle {
            self.bundles.remove(&b);
        }
        let mut out = Vec::with_capacity(unit.parts.len());
        for seq in unit.parts {
            let Some(e) = self.entries.remove(&seq) else { continue };
            if self.config.fee_accounts {
                // Released here; a committed transaction's reservation is held again by
                // `remove_committed` until its fee is settled.
                if let Some(a) = self.accounts.get_mut(&e.meta.fee_payer) {
                    a.unreserve(e.meta.max_fee);
                    if a.is_empty() {
                        self.accounts.remove(&e.meta.fee_payer);
                    }
                }
            }
            self.ids.remove(&e.id);
            self.ephemeral_keys.remove(&e.ephemeral_key);
            if let Some(r) = self.rollups.get_mut(&e.meta.rollup) {
                r.by_fee.remove(&(Reverse(e.meta.max_fee), seq));
                r.by_arrival.remove(&seq);
                if r.by_arrival.is_empty() {
                    self.rollups.remove(&e.meta.rollup);
                }
            }
            if let Some(p) = self.senders.get_mut(&e.meta.fee_payer) {
                if p.remove(e.meta.max_fee, seq) {
                    self.senders.remove(&e.meta.fee_payer);
                }
            }
            self.bytes -= e.body.len();
            out.push((Seq(seq), e.id));
        }
        out
    }

    /// Withdraws a just-admitted request whose durable write failed. Only the given
    /// sequence numbers are removed (with their units).
    pub fn withdraw(&mut self, seqs: &[Seq]) {
        for seq in seqs {
            if let Some(unit) = self.entries.get(&seq.0).map(|e| e.unit) {
                let removed = self.remove_unit(unit);
                self.stats.admitted = self.stats.admitted.saturating_sub(removed.len() as u64);
            }
        }
    }

    /// Advances the current slot and removes every unit whose expiry slot is before it.
    /// Returns the removed transactions, to be deleted from storage.
    #[must_use = "removed transactions must be deleted from storage"]
    pub fn on_slot(&mut self, slot: Slot) -> Vec<(Seq, TxId)> {
        if slot > self.current_slot {
            self.current_slot = slot;
        }
        let mut removed = Vec::new();
        while let Some(&(expiry, unit)) = self.by_expiry.first() {
            if expiry >= self.current_slot {
                break;
            }
            removed.extend(self.remove_unit(unit));
        }
        self.stats.expired += removed.len() as u64;
        removed
    }

    /// Removes committed transactions (and, for a bundle part, its whole bundle: bundles
    /// commit together). Unknown ids are ignored. Transactions of a slot that failed are
    /// simply not passed here, so they stay pending.
    #[must_use = "removed transactions must be deleted from storage"]
    pub fn remove_committed(&mut self, ids: &[TxId]) -> Vec<(Seq, TxId)> {
        let mut removed = Vec::new();
        for id in ids {
            let Some(seq) = self.ids.get(id) else { continue };
            let unit = self.entries[seq].unit;
            let held: Vec<(PublicKeyBytes, Amount)> = if self.config.fee_accounts {
                self.units[&unit]
                    .parts
                    .iter()
                    .map(|s| (self.entries[s].meta.fee_payer, self.entries[s].meta.max_fee))
                    .collect()
            } else {
                Vec::new()
            };
            removed.extend(self.remove_unit(unit));
            for (payer, fee) in held {
                self.accounts.entry(payer).or_default().hold(fee);
            }
        }
        self.stats.committed += removed.len() as u64;
        removed
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
        for (seq, e) in self.entries.range(cursor.0..self.durable) {
            if items.len() >= max {
                break;
            }
            skipped += seq - next;
            items.push(FeedItem { seq: Seq(*seq), id: e.id, meta: e.meta, body: e.body.clone() });
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
    /// current slot, and duplicates, are dropped and returned for deletion from storage.
    /// Capacity and quotas are not enforced on restore: what was acknowledged stays.
    #[must_use = "pruned rows must be deleted from storage"]
    pub fn restore(&mut self, mut rows: Vec<(Seq, Candidate)>) -> Vec<(Seq, TxId)> {
        rows.sort_by_key(|(s, _)| *s);
        let mut pruned = Vec::new();
        let mut bundle_parts: HashMap<BundleId, Vec<(u64, Candidate)>> = HashMap::new();
        for (seq, c) in rows {
            self.next_seq = self.next_seq.max(seq.0 + 1);
            if c.meta.expiry_slot < self.current_slot
                || self.ids.contains_key(&c.id)
                || self.ephemeral_keys.contains_key(&c.ephemeral_key)
            {
                pruned.push((seq, c.id));
                continue;
            }
            match c.meta.bundle {
                None => {
                    let fee = c.meta.max_fee;
                    let expiry = c.meta.expiry_slot;
                    self.insert_entry(seq.0, c, seq.0);
                    self.by_unit_fee.insert((fee, Reverse(seq.0)));
                    self.by_expiry.insert((expiry, seq.0));
                    self.units
                        .insert(seq.0, Unit { parts: vec![seq.0], fee, expiry, bundle: None });
                }
                Some(b) => bundle_parts.entry(b.id).or_default().push((seq.0, c)),
            }
        }
        for (bundle, parts) in bundle_parts {
            // A bundle is written in one transaction and deleted whole, so its parts are
            // either all here or an expired part pruned it; then drop the rest too.
            let count = parts[0].1.meta.bundle.map_or(0, |b| usize::from(b.count));
            if parts.len() != count {
                pruned.extend(parts.into_iter().map(|(s, c)| (Seq(s), c.id)));
                continue;
            }
            let unit_id = parts[0].0;
            let fee = parts.iter().map(|p| p.1.meta.max_fee).min().expect("non-empty");
            let expiry = parts.iter().map(|p| p.1.meta.expiry_slot).min().expect("non-empty");
            let mut seqs = Vec::new();
            for (seq, c) in parts {
                self.insert_entry(seq, c, unit_id);
                seqs.push(seq);
            }
            self.by_unit_fee.insert((fee, Reverse(unit_id)));
            self.by_expiry.insert((expiry, unit_id));
            self.bundles.insert(bundle, unit_id);
            self.units.insert(unit_id, Unit { parts: seqs, fee, expiry, bundle: Some(bundle) });
        }
        self.durable = self.next_seq;
        pruned
    }
}

/// The auction's view of the pool: a bid may name a ciphertext only once it is admitted and
/// durable (acknowledged), which is also when builders can first see it on the feed.
impl CiphertextIndex for Pool {
    fn lookup(&self, id: &TxId) -> Option<TxMeta> {
        self.get(id).filter(|v| v.seq.0 < self.durable).map(|v| *v.meta)
    }
}

#[cfg(test)]
mod tests;
