//! [`DataStore`]: the HTTP data API's index, one SQLite file beside the sequencer's record log.
//!
//! The slot thread's hot path must not pay for the data API, so nothing here is written by it:
//!
//! - **Bids received** are written by the node's bid intake after the sequencer thread
//!   accepted them (one transaction per request, a batch of bids in one), never by the slot
//!   machine. Only accepted bids are kept: a bid refused for its signature or its shape would
//!   let anyone fill the table.
//! - **Slot documents, blocks delivered and transaction fates** are written by an indexer that
//!   tails the record log ([`crate::records::RecordReader`]) and remembers how far it read
//!   ([`DataStore::position`]) in the same transaction as what it derived, so a restart
//!   resumes exactly where it stopped and never indexes a record twice.
//!
//! Everything here can be rebuilt from the record log (bids excepted), so the file runs with
//! `synchronous=NORMAL` in WAL mode: a commit survives the process being killed, and a power
//! loss costs at most the last commits, which the indexer redoes.
//!
//! Pages are newest first: a page's cursor is the row number of its last row, and the next
//! page holds rows strictly below it.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use veil_primitives::{Amount, PublicKeyBytes, RollupId, Slot, TxId};

use crate::error::StoreError;

/// An accepted bid, as the data API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidRow {
    /// The bid id (sha3-256 of its signing bytes).
    pub id: [u8; 32],
    /// The slot bid for.
    pub slot: Slot,
    /// The builder.
    pub builder: PublicKeyBytes,
    /// The builder's sequence number.
    pub sequence: u64,
    /// The amount bid.
    pub amount: Amount,
    /// The rollups bid for, sorted.
    pub rollups: Vec<RollupId>,
    /// When the node accepted it, in ms since the Unix epoch.
    pub received_ms: u64,
    /// The signed bid in the workspace's JSON encoding.
    pub body: Vec<u8>,
}

/// How far a committed block got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Committed and signed; not decrypted yet.
    Committed,
    /// Decrypted and published.
    Published,
    /// Abandoned: not decrypted in time, nothing revealed.
    Undecryptable,
}

impl DeliveryState {
    /// The stored (and JSON) name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DeliveryState::Committed => "committed",
            DeliveryState::Published => "published",
            DeliveryState::Undecryptable => "undecryptable",
        }
    }

    fn parse(s: &str) -> Option<DeliveryState> {
        [DeliveryState::Committed, DeliveryState::Published, DeliveryState::Undecryptable]
            .into_iter()
            .find(|d| d.name() == s)
    }
}

/// One rollup's block of one slot, as the data API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredRow {
    /// The slot.
    pub slot: Slot,
    /// The rollup.
    pub rollup: RollupId,
    /// The winning builder, or `None` for the sequencer's fallback block.
    pub builder: Option<PublicKeyBytes>,
    /// The payment attributed to the rollup (zero for a fallback block).
    pub payment: Amount,
    /// Ciphertexts committed.
    pub txs: u32,
    /// Of those, decrypted and included (known once published).
    pub included: u32,
    /// Of those, not decrypted (the sender's fault; the place is kept).
    pub failed: u32,
    /// Of those, dropped with a bundle of which a part failed.
    pub dropped: u32,
    /// How far the block got.
    pub state: DeliveryState,
}

/// What became of a committed transaction in its published block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxFate {
    /// Decrypted and included.
    Included,
    /// Did not decrypt.
    Failed,
    /// Dropped with its atomic bundle.
    Dropped,
}

impl TxFate {
    /// The stored (and JSON) name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TxFate::Included => "included",
            TxFate::Failed => "failed",
            TxFate::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Option<TxFate> {
        [TxFate::Included, TxFate::Failed, TxFate::Dropped].into_iter().find(|d| d.name() == s)
    }
}

/// A published transaction's place and fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFateRow {
    /// The transaction.
    pub tx: TxId,
    /// The slot that published it.
    pub slot: Slot,
    /// Its rollup.
    pub rollup: RollupId,
    /// Its index in the rollup's block.
    pub position: u32,
    /// What became of it.
    pub fate: TxFate,
}

/// Which document of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotDoc {
    /// The decided commitment with the auction outcome.
    Decided,
    /// The signed commitment.
    Signed,
    /// The published plaintext blocks.
    Published,
    /// The settlement's ledger entries and fees.
    Settled,
}

impl SlotDoc {
    const fn name(self) -> &'static str {
        match self {
            SlotDoc::Decided => "decided",
            SlotDoc::Signed => "signed",
            SlotDoc::Published => "published",
            SlotDoc::Settled => "settled",
        }
    }
}

/// One change the indexer derived from the record log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOp {
    /// Store (or replace) a slot's document, in JSON.
    Doc {
        /// The slot.
        slot: Slot,
        /// Which document.
        kind: SlotDoc,
        /// Its JSON.
        body: Vec<u8>,
    },
    /// A block was committed (inserted, or replaced if the record is seen again).
    Committed(DeliveredRow),
    /// A committed block was published with these counts.
    Published {
        /// The slot.
        slot: Slot,
        /// The rollup.
        rollup: RollupId,
        /// Decrypted and included.
        included: u32,
        /// Not decrypted.
        failed: u32,
        /// Dropped with a bundle.
        dropped: u32,
    },
    /// Every block of the slot was abandoned.
    Undecryptable(Slot),
    /// A published transaction's fate.
    Fate(TxFateRow),
}

/// The filters of a data API listing; `None` matches everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this slot.
    pub slot: Option<Slot>,
    /// Only this builder.
    pub builder: Option<PublicKeyBytes>,
    /// Only this rollup.
    pub rollup: Option<RollupId>,
    /// Only slots below this one: the node hides the bids of slots whose bidding is still
    /// open (sealed bids).
    pub below_slot: Option<Slot>,
}

/// The bound parameters of a listing query (see [`Filter::page_params`]).
type PageParams = (Option<i64>, Option<Vec<u8>>, Option<u32>, i64, i64, Option<i64>);

impl Filter {
    /// The parameters `?1..?6` of a listing query: slot, builder, rollup (each `NULL` for
    /// any), the row number to stay below, the page size, and the slot to stay below
    /// (`NULL` for none).
    fn page_params(&self, before: Option<u64>, limit: usize) -> PageParams {
        (
            self.slot.map(|s| i(s.0)),
            self.builder.map(|b| b.0.to_vec()),
            self.rollup.map(|r| r.0),
            before.map_or(i64::MAX, i),
            i64::try_from(limit).unwrap_or(i64::MAX),
            self.below_slot.map(|s| i(s.0)),
        )
    }
}

/// A page of rows, newest first, each with its row number (the cursor).
pub type Page<T> = Vec<(u64, T)>;

/// The data API's index. See the module docs.
#[derive(Debug)]
pub struct DataStore {
    write: Mutex<Connection>,
    read: Mutex<Connection>,
}

fn blob32(v: &[u8]) -> Result<[u8; 32], rusqlite::Error> {
    v.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "blob32".into(), rusqlite::types::Type::Blob)
    })
}

fn amount(s: &str) -> Result<Amount, rusqlite::Error> {
    s.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "amount".into(), rusqlite::types::Type::Text)
    })
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl DataStore {
    /// Opens (or creates) the index at `path`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] or [`StoreError::Io`].
    pub fn open(path: &Path) -> Result<DataStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let write = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        write.pragma_update(None, "journal_mode", "WAL")?;
        write.pragma_update(None, "synchronous", "NORMAL")?;
        write.execute_batch(
            "CREATE TABLE IF NOT EXISTS bid (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id BLOB NOT NULL UNIQUE,
                slot INTEGER NOT NULL,
                builder BLOB NOT NULL,
                sequence INTEGER NOT NULL,
                amount TEXT NOT NULL,
                received_ms INTEGER NOT NULL,
                body BLOB NOT NULL
            );
            CREATE INDEX IF NOT EXISTS bid_slot ON bid (slot, seq);
            CREATE INDEX IF NOT EXISTS bid_builder ON bid (builder, seq);
            CREATE TABLE IF NOT EXISTS bid_rollup (
                rollup INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                PRIMARY KEY (rollup, seq)
            );
            CREATE TABLE IF NOT EXISTS delivered (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                slot INTEGER NOT NULL,
                rollup INTEGER NOT NULL,
                builder BLOB,
                payment TEXT NOT NULL,
                txs INTEGER NOT NULL,
                included INTEGER NOT NULL,
                failed INTEGER NOT NULL,
                dropped INTEGER NOT NULL,
                state TEXT NOT NULL,
                UNIQUE (slot, rollup)
            );
            CREATE INDEX IF NOT EXISTS delivered_rollup ON delivered (rollup, slot);
            CREATE TABLE IF NOT EXISTS slot_doc (
                slot INTEGER NOT NULL,
                kind TEXT NOT NULL,
                body BLOB NOT NULL,
                PRIMARY KEY (slot, kind)
            );
            CREATE TABLE IF NOT EXISTS tx_fate (
                tx BLOB PRIMARY KEY,
                slot INTEGER NOT NULL,
                rollup INTEGER NOT NULL,
                position INTEGER NOT NULL,
                fate TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS position (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            );",
        )?;
        let read = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(DataStore { write: Mutex::new(write), read: Mutex::new(read) })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores accepted bids in one transaction (a bid id stored already is skipped).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails; nothing is stored then.
    pub fn insert_bids(&self, bids: &[BidRow]) -> Result<(), StoreError> {
        if bids.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        {
            let mut bid = tx.prepare_cached(
                "INSERT OR IGNORE INTO bid (id, slot, builder, sequence, amount, received_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut rollup = tx
                .prepare_cached("INSERT OR IGNORE INTO bid_rollup (rollup, seq) VALUES (?1, ?2)")?;
            for b in bids {
                let n = bid.execute(params![
                    &b.id[..],
                    i(b.slot.0),
                    &b.builder.0[..],
                    i(b.sequence),
                    b.amount.to_string(),
                    i(b.received_ms),
                    &b.body
                ])?;
                if n == 1 {
                    let seq = tx.last_insert_rowid();
                    for r in &b.rollups {
                        rollup.execute(params![r.0, seq])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Accepted bids matching `filter`, newest first, below row `before` (all if `None`), at
    /// most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails or a row does not decode.
    pub fn bids(
        &self,
        filter: &Filter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<BidRow>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, slot, builder, sequence, amount, received_ms, body FROM bid
             WHERE (?1 IS NULL OR slot = ?1) AND (?2 IS NULL OR builder = ?2)
               AND (?3 IS NULL OR seq IN (SELECT seq FROM bid_rollup WHERE rollup = ?3))
               AND seq < ?4 AND (?6 IS NULL OR slot < ?6)
             ORDER BY seq DESC LIMIT ?5",
        )?;
        let mut rollups =
            conn.prepare_cached("SELECT rollup FROM bid_rollup WHERE seq = ?1 ORDER BY rollup")?;
        let rows = stmt
            .query_map(filter.page_params(before, limit), |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    BidRow {
                        id: blob32(&r.get::<_, Vec<u8>>(1)?)?,
                        slot: Slot(r.get::<_, i64>(2)? as u64),
                        builder: PublicKeyBytes(blob32(&r.get::<_, Vec<u8>>(3)?)?),
                        sequence: r.get::<_, i64>(4)? as u64,
                        amount: amount(&r.get::<_, String>(5)?)?,
                        rollups: Vec::new(),
                        received_ms: r.get::<_, i64>(6)? as u64,
                        body: r.get(7)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, mut row) in rows {
            row.rollups = rollups
                .query_map(params![i(seq)], |r| Ok(RollupId(r.get(0)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            out.push((seq, row));
        }
        Ok(out)
    }

    /// How far the indexer has read the record log (0 before the first record).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub fn position(&self) -> Result<u64, StoreError> {
        let conn = self.writer();
        let v: Option<i64> = conn
            .query_row("SELECT value FROM position WHERE name = 'records'", [], |r| r.get(0))
            .optional()?;
        Ok(v.map_or(0, |v| v as u64))
    }

    /// Applies the ops derived from the records up to `position`, and the position, in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails; nothing is applied then.
    pub fn apply(&self, position: u64, ops: &[IndexOp]) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        for op in ops {
            match op {
                IndexOp::Doc { slot, kind, body } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO slot_doc (slot, kind, body) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![i(slot.0), kind.name(), body])?;
                }
                IndexOp::Committed(d) => {
                    tx.prepare_cached(
                        "INSERT INTO delivered
                           (slot, rollup, builder, payment, txs, included, failed, dropped, state)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (slot, rollup) DO UPDATE SET builder = excluded.builder,
                           payment = excluded.payment, txs = excluded.txs",
                    )?
                    .execute(params![
                        i(d.slot.0),
                        d.rollup.0,
                        d.builder.map(|b| b.0.to_vec()),
                        d.payment.to_string(),
                        d.txs,
                        d.included,
                        d.failed,
                        d.dropped,
                        d.state.name()
                    ])?;
                }
                IndexOp::Published { slot, rollup, included, failed, dropped } => {
                    tx.prepare_cached(
                        "UPDATE delivered SET included = ?3, failed = ?4, dropped = ?5,
                           state = 'published' WHERE slot = ?1 AND rollup = ?2",
                    )?
                    .execute(params![
                        i(slot.0),
                        rollup.0,
                        included,
                        failed,
                        dropped
                    ])?;
                }
                IndexOp::Undecryptable(slot) => {
                    tx.prepare_cached(
                        "UPDATE delivered SET state = 'undecryptable' WHERE slot = ?1",
                    )?
                    .execute(params![i(slot.0)])?;
                }
                IndexOp::Fate(f) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO tx_fate (tx, slot, rollup, position, fate)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        &f.tx.0[..],
                        i(f.slot.0),
                        f.rollup.0,
                        f.position,
                        f.fate.name()
                    ])?;
                }
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO position (name, value) VALUES ('records', ?1)",
            params![i(position)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A slot's document, if indexed.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub fn doc(&self, slot: Slot, kind: SlotDoc) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader();
        let body = conn
            .prepare_cached("SELECT body FROM slot_doc WHERE slot = ?1 AND kind = ?2")?
            .query_row(params![i(slot.0), kind.name()], |r| r.get(0))
            .optional()?;
        Ok(body)
    }

    /// Blocks matching `filter`, newest first, below row `before`, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails or a row does not decode.
    pub fn delivered(
        &self,
        filter: &Filter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<DeliveredRow>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, slot, rollup, builder, payment, txs, included, failed, dropped, state
             FROM delivered
             WHERE (?1 IS NULL OR slot = ?1) AND (?2 IS NULL OR builder = ?2)
               AND (?3 IS NULL OR rollup = ?3) AND seq < ?4 AND (?6 IS NULL OR slot < ?6)
             ORDER BY seq DESC LIMIT ?5",
        )?;
        let rows = stmt
            .query_map(filter.page_params(before, limit), |r| {
                let builder: Option<Vec<u8>> = r.get(3)?;
                let state: String = r.get(9)?;
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    DeliveredRow {
                        slot: Slot(r.get::<_, i64>(1)? as u64),
                        rollup: RollupId(r.get(2)?),
                        builder: builder.map(|b| blob32(&b).map(PublicKeyBytes)).transpose()?,
                        payment: amount(&r.get::<_, String>(4)?)?,
                        txs: r.get(5)?,
                        included: r.get(6)?,
                        failed: r.get(7)?,
                        dropped: r.get(8)?,
                        state: DeliveryState::parse(&state).ok_or_else(|| {
                            rusqlite::Error::InvalidColumnType(
                                9,
                                "state".into(),
                                rusqlite::types::Type::Text,
                            )
                        })?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The slots from `from` on, in slot order, at most `limit`, in which `rollup` has a
    /// committed block that got to `state`: the rollup API's listings, paginated by slot
    /// (the next page starts after the last slot returned).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub fn rollup_slots(
        &self,
        rollup: RollupId,
        from: Slot,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Slot>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT slot FROM delivered WHERE rollup = ?1 AND slot >= ?2 AND state = ?3
             ORDER BY slot LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![
                    rollup.0,
                    i(from.0),
                    state.name(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok(Slot(r.get::<_, i64>(0)? as u64)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// A published transaction's fate, if indexed.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub fn fate(&self, tx: &TxId) -> Result<Option<TxFateRow>, StoreError> {
        let conn = self.reader();
        let row = conn
            .prepare_cached("SELECT slot, rollup, position, fate FROM tx_fate WHERE tx = ?1")?
            .query_row(params![&tx.0[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()?;
        Ok(row.and_then(|(slot, rollup, position, fate)| {
            Some(TxFateRow {
                tx: *tx,
                slot: Slot(slot as u64),
                rollup: RollupId(rollup),
                position,
                fate: TxFate::parse(&fate)?,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(n: u8, slot: u64, builder: u8, rollups: &[u32]) -> BidRow {
        BidRow {
            id: [n; 32],
            slot: Slot(slot),
            builder: PublicKeyBytes([builder; 32]),
            sequence: u64::from(n),
            amount: Amount(u128::from(n) * 1_000_000_000_000_000_000_000),
            rollups: rollups.iter().map(|r| RollupId(*r)).collect(),
            received_ms: 1000 + u64::from(n),
            body: vec![n],
        }
    }

    #[test]
    fn bids_filter_and_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open(&dir.path().join("data.sqlite")).unwrap();
        store
            .insert_bids(&[bid(1, 5, 1, &[0]), bid(2, 5, 2, &[0, 1]), bid(3, 6, 1, &[1])])
            .unwrap();
        // The same bid again is skipped.
        store.insert_bids(&[bid(1, 5, 1, &[0])]).unwrap();
        let all = store.bids(&Filter::default(), None, 10).unwrap();
        assert_eq!(all.iter().map(|b| b.1.id[0]).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(all[1].1, bid(2, 5, 2, &[0, 1]));
        let page = store.bids(&Filter::default(), None, 2).unwrap();
        let next = store.bids(&Filter::default(), Some(page[1].0), 2).unwrap();
        assert_eq!(next.iter().map(|b| b.1.id[0]).collect::<Vec<_>>(), vec![1]);
        let by = |f: Filter| {
            store.bids(&f, None, 10).unwrap().iter().map(|b| b.1.id[0]).collect::<Vec<_>>()
        };
        assert_eq!(by(Filter { slot: Some(Slot(5)), ..Filter::default() }), vec![2, 1]);
        assert_eq!(
            by(Filter { builder: Some(PublicKeyBytes([1; 32])), ..Filter::default() }),
            vec![3, 1]
        );
        assert_eq!(by(Filter { rollup: Some(RollupId(1)), ..Filter::default() }), vec![3, 2]);
        assert_eq!(
            by(Filter { rollup: Some(RollupId(1)), slot: Some(Slot(5)), ..Filter::default() }),
            vec![2]
        );
        // Sealed: the bids of slot 6 and later are hidden.
        assert_eq!(by(Filter { below_slot: Some(Slot(6)), ..Filter::default() }), vec![2, 1]);
    }

    #[test]
    fn index_ops_apply_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.sqlite");
        let store = DataStore::open(&path).unwrap();
        assert_eq!(store.position().unwrap(), 0);
        let committed = |rollup: u32, builder: Option<u8>| DeliveredRow {
            slot: Slot(4),
            rollup: RollupId(rollup),
            builder: builder.map(|b| PublicKeyBytes([b; 32])),
            payment: Amount(7),
            txs: 3,
            included: 0,
            failed: 0,
            dropped: 0,
            state: DeliveryState::Committed,
        };
        store
            .apply(
                3,
                &[
                    IndexOp::Doc { slot: Slot(4), kind: SlotDoc::Signed, body: b"{}".to_vec() },
                    IndexOp::Committed(committed(0, Some(9))),
                    IndexOp::Committed(committed(1, None)),
                ],
            )
            .unwrap();
        store
            .apply(
                5,
                &[
                    IndexOp::Published {
                        slot: Slot(4),
                        rollup: RollupId(0),
                        included: 1,
                        failed: 1,
                        dropped: 1,
                    },
                    IndexOp::Fate(TxFateRow {
                        tx: TxId([1; 32]),
                        slot: Slot(4),
                        rollup: RollupId(0),
                        position: 2,
                        fate: TxFate::Failed,
                    }),
                ],
            )
            .unwrap();
        drop(store);
        let store = DataStore::open(&path).unwrap();
        assert_eq!(store.position().unwrap(), 5);
        assert_eq!(store.doc(Slot(4), SlotDoc::Signed).unwrap(), Some(b"{}".to_vec()));
        assert_eq!(store.doc(Slot(4), SlotDoc::Published).unwrap(), None);
        let rows = store.delivered(&Filter::default(), None, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, committed(1, None));
        assert_eq!(
            rows[1].1,
            DeliveredRow {
                included: 1,
                failed: 1,
                dropped: 1,
                state: DeliveryState::Published,
                ..committed(0, Some(9))
            }
        );
        let mine = Filter { builder: Some(PublicKeyBytes([9; 32])), ..Filter::default() };
        assert_eq!(store.delivered(&mine, None, 10).unwrap().len(), 1);
        let fate = store.fate(&TxId([1; 32])).unwrap().unwrap();
        assert_eq!((fate.position, fate.fate), (2, TxFate::Failed));
        assert_eq!(store.fate(&TxId([2; 32])).unwrap(), None);
        // A rollup's published slots from a slot on.
        let published = |rollup, from| {
            store.rollup_slots(RollupId(rollup), Slot(from), DeliveryState::Published, 10).unwrap()
        };
        assert_eq!(published(0, 0), vec![Slot(4)]);
        assert_eq!(published(0, 4), vec![Slot(4)]);
        assert!(published(0, 5).is_empty());
        assert!(published(1, 0).is_empty(), "rollup 1's block is only committed");
        store.apply(6, &[IndexOp::Undecryptable(Slot(4))]).unwrap();
        assert!(store
            .delivered(&Filter::default(), None, 10)
            .unwrap()
            .iter()
            .all(|r| r.1.state == DeliveryState::Undecryptable));
    }
}
