//! The SQLite backend of [`crate::PendingTxStore`] and [`crate::ReceiptStore`]: admitted
//! ciphertexts and inclusion receipts in one database in WAL mode, written by one dedicated
//! thread with group commit (a receipt write and an admission write queued together share one
//! fsync).
//!
//! # Group commit
//!
//! Writers send operations over a channel and get a receipt back. The storage thread takes
//! every operation that is queued, writes all of them in one SQLite transaction and commits
//! once, which is one fsync of the WAL for the whole group; then it answers every receipt of
//! the group. While one fsync is in progress the next group accumulates, so the number of
//! fsyncs per second stays roughly constant while the number of rows per fsync grows with
//! the load. There is never one fsync per transaction.
//!
//! # Why `synchronous=FULL`
//!
//! In WAL mode, `synchronous=NORMAL` does not fsync the WAL at commit, only at checkpoints:
//! a commit survives the process being killed (the WAL is in the page cache) but not a power
//! loss or kernel crash. An ack promises "durably stored", so the store uses
//! `synchronous=FULL`, which fsyncs the WAL at every commit; group commit makes that cheap.
//! Checkpoints (copying the WAL into the database) run on their own thread and connection
//! every [`CHECKPOINT_INTERVAL`], never inside a commit; the writer checkpoints itself only as
//! a backstop, past [`WAL_AUTOCHECKPOINT_PAGES`] pages.
//!
//! # Ordering
//!
//! Operations are applied in the order they were sent. Admission sends rows in sequence
//! number order, so when a receipt reports success, every row with a smaller sequence number
//! sent earlier is durable too. After a failed commit the store is poisoned: every later
//! operation fails with [`StoreError::Poisoned`], so no ack can be given past a gap.
//!
//! The schema keeps the public metadata beside the ciphertext, so a restart rebuilds the pool
//! without decoding a single ciphertext again.
//!
//! # Spent ids
//!
//! Table `spent` holds the id and expiry slot of every committed transaction until that slot
//! passes ([`veil_mempool::pool::Spent`]), keyed by (expiry slot, id) so that pruning is a
//! range delete and loading reads in expiry order. A committed transaction's pending row is
//! deleted and its spent row inserted by one operation ([`PendingTxStore::remove_committed`]),
//! so one group commit: a crash leaves one or the other. The table keeps every spent id, also
//! those the pool's memory bound made it forget (the pool then refuses their expiry slots); a
//! restart gives them all back ([`SqliteTxStore::load_spent`]) and the pool applies its bound
//! again. Databases from before this table get it when opened.
//!
//! # Receipts
//!
//! Table `receipt` holds one row per (transaction, slot): the signed receipt as JSON (the
//! workspace's human-readable encoding, `0x` hex bytes), indexed by slot for pruning. Lookups
//! run on their own read connection, so they never wait for a commit in progress (WAL readers
//! see the last committed state).

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use veil_mempool::pool::{Candidate, EphemeralKeyDigest, Seq, Spent};
use veil_primitives::{SignatureBytes, SignedReceipt, Slot, TxId, TxMeta};

use crate::error::StoreError;
use crate::metrics::StoreStats;
use crate::{Durable, PendingTxStore, ReceiptStore, StoredTx};

/// Pages after which the writer itself checkpoints the WAL into the database (about
/// 256 MiB). Only a backstop: the checkpointer thread normally keeps the WAL far smaller.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 65_536;

/// How often the checkpointer thread copies the WAL into the database.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// The largest number of rows written in one group commit.
pub const MAX_GROUP_ROWS: usize = 16_384;

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "mempool.sqlite";

/// The `meta` column: postcard of this, then the fee payer's 64-byte signature. Rows written
/// before fee payers signed (ingress protocol version 1) end after the postcard part; they
/// load with an all-zero signature.
#[derive(Serialize, Deserialize)]
struct RowMeta {
    id: TxId,
    meta: TxMeta,
    ephemeral_key: EphemeralKeyDigest,
}

fn encode_row_meta(c: &Candidate) -> Vec<u8> {
    let row = RowMeta { id: c.id, meta: c.meta, ephemeral_key: c.ephemeral_key };
    let mut out = postcard::to_allocvec(&row).expect("postcard of plain structs cannot fail");
    out.extend_from_slice(&c.payer_signature.0);
    out
}

fn decode_row_meta(bytes: &[u8]) -> Result<(RowMeta, SignatureBytes), String> {
    let (m, rest) = postcard::take_from_bytes::<RowMeta>(bytes).map_err(|e| e.to_string())?;
    let sig = match rest.len() {
        0 => SignatureBytes([0; 64]),
        64 => SignatureBytes(rest.try_into().expect("64 bytes")),
        n => return Err(format!("{n} bytes after the metadata (0 or 64 expected)")),
    };
    Ok((m, sig))
}

/// An operation for the storage thread.
#[derive(Debug)]
enum StoreOp {
    /// Insert rows, delete others and store spent ids in one step; `done` fires once durable.
    Write {
        /// Rows to insert.
        insert: Vec<StoredTx>,
        /// Sequence numbers to delete (evicted, expired, committed).
        delete: Vec<Seq>,
        /// Committed ids to remember until their expiry.
        spent: Vec<Spent>,
        /// Answered after the group's commit.
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// Store inclusion receipts; `done` fires once durable.
    Receipts {
        /// The receipts.
        insert: Vec<SignedReceipt>,
        /// Answered after the group's commit.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Delete receipts of slots before this one.
    PruneReceipts(Slot),
    /// Delete spent ids whose expiry slot is before this one.
    PruneSpent(Slot),
}

impl StoreOp {
    /// Rows the operation inserts (what bounds a group).
    fn rows(&self) -> usize {
        match self {
            StoreOp::Write { insert, spent, .. } => insert.len() + spent.len(),
            StoreOp::Receipts { insert, .. } => insert.len(),
            StoreOp::PruneReceipts(_) | StoreOp::PruneSpent(_) => 0,
        }
    }
}

/// Handle to the storage thread. Dropping it (or calling [`SqliteTxStore::shutdown`]) stops
/// the thread after the queued operations are written.
#[derive(Debug)]
pub struct SqliteTxStore {
    next_seq_floor: Seq,
    tx: Option<mpsc::Sender<StoreOp>>,
    thread: Option<JoinHandle<()>>,
    checkpoint_stop: Option<mpsc::Sender<()>>,
    checkpointer: Option<JoinHandle<()>>,
    reader: Mutex<Connection>,
    stats: Arc<Mutex<StoreStats>>,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tx (
            seq INTEGER PRIMARY KEY,
            expiry_slot INTEGER NOT NULL,
            meta BLOB NOT NULL,
            body BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS feed (
            k INTEGER PRIMARY KEY CHECK (k = 0),
            next_seq INTEGER NOT NULL
        );

        CREATE TABLE IF NOT EXISTS receipt (
            tx BLOB NOT NULL,
            slot INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (tx, slot)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS receipt_by_slot ON receipt (slot);

        CREATE TABLE IF NOT EXISTS spent (
            expiry_slot INTEGER NOT NULL,
            id BLOB NOT NULL,
            PRIMARY KEY (expiry_slot, id)
        ) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

/// A slot as an SQLite integer (slots beyond `i64::MAX` clamp; none is ever that large).
fn slot_key(slot: Slot) -> i64 {
    i64::try_from(slot.0).unwrap_or(i64::MAX)
}

impl SqliteTxStore {
    /// Opens (or creates) the store in `dir`, loads every stored transaction in sequence
    /// order, and starts the storage thread.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the directory cannot be created, [`StoreError::Sqlite`] or
    /// [`StoreError::CorruptRow`] if the database cannot be read.
    pub fn open(dir: &Path) -> Result<(SqliteTxStore, Vec<StoredTx>), StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let conn = open_connection(&dir.join(DB_FILE))?;
        let rows = load(&conn)?;
        let next_seq_floor: i64 = conn
            .query_row("SELECT next_seq FROM feed WHERE k = 0", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(StoreStats::default()));
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("veil-mempool-store".into())
            .spawn(move || run(conn, rx, &thread_stats))
            .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let reader = Mutex::new(open_connection(&dir.join(DB_FILE))?);
        let checkpoint_conn = open_connection(&dir.join(DB_FILE))?;
        let (checkpoint_stop, stop_rx) = mpsc::channel();
        let checkpointer = std::thread::Builder::new()
            .name("veil-mempool-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &stop_rx))
            .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let store = SqliteTxStore {
            next_seq_floor: Seq(u64::try_from(next_seq_floor).unwrap_or(0)),
            tx: Some(tx),
            thread: Some(thread),
            checkpoint_stop: Some(checkpoint_stop),
            checkpointer: Some(checkpointer),
            reader,
            stats,
        };
        Ok((store, rows))
    }

    /// One past the highest sequence number ever written, deleted rows included: a restarted
    /// pool numbers new transactions from at least here, so that a feed position is never
    /// given to two transactions (keypers and builders resume the feed by position).
    #[must_use]
    pub fn next_seq_floor(&self) -> Seq {
        self.next_seq_floor
    }

    /// Reads every stored spent id whose expiry slot is at or after `from`, in expiry order,
    /// handing each to `f` (a restarting pool: [`veil_mempool::pool::Pool::remember_spent`],
    /// before its pending rows are restored). Reads what is committed, on the read
    /// connection; call it before writing.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails, [`StoreError::CorruptSpent`] for an id that is
    /// not 32 bytes.
    pub fn load_spent(&self, from: Slot, mut f: impl FnMut(Spent)) -> Result<(), StoreError> {
        let conn = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare(
            "SELECT expiry_slot, id FROM spent WHERE expiry_slot >= ?1 ORDER BY expiry_slot, id",
        )?;
        let mut rows = stmt.query(params![slot_key(from)])?;
        while let Some(row) = rows.next()? {
            let expiry = row.get::<_, i64>(0)? as u64;
            let id: Vec<u8> = row.get(1)?;
            let id = <[u8; 32]>::try_from(id.as_slice()).map_err(|_| StoreError::CorruptSpent {
                expiry,
                reason: format!("an id of {} bytes", id.len()),
            })?;
            f(Spent { id: TxId(id), expiry: Slot(expiry) });
        }
        Ok(())
    }

    fn send(&self, op: StoreOp) {
        if let Some(tx) = &self.tx {
            if let Err(mpsc::SendError(
                StoreOp::Write { done: Some(done), .. } | StoreOp::Receipts { done, .. },
            )) = tx.send(op)
            {
                let _ = done.send(Err(StoreError::Stopped));
            }
        }
    }

    /// Stops the thread after the queued operations are written, and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.checkpoint_stop.take();
        if let Some(t) = self.checkpointer.take() {
            let _ = t.join();
        }
    }
}

impl PendingTxStore for SqliteTxStore {
    /// Queues rows to insert and rows to delete; the receipt resolves once they are durable.
    /// An empty write is a barrier: it resolves once everything sent before it is durable.
    fn write(&self, insert: Vec<StoredTx>, delete: Vec<Seq>) -> Durable {
        let (done, durable) = oneshot::channel();
        self.send(StoreOp::Write { insert, delete, spent: vec![], done: Some(done) });
        durable
    }

    /// Queues deletions without waiting for them (expired or committed rows: losing the
    /// deletion in a crash only means pruning again at restart).
    fn delete(&self, delete: Vec<Seq>) {
        if !delete.is_empty() {
            self.send(StoreOp::Write { insert: vec![], delete, spent: vec![], done: None });
        }
    }

    /// Queues the deletion of committed rows and the insertion of their spent ids as one
    /// operation (one group commit, one SQLite transaction), without waiting.
    fn remove_committed(&self, delete: Vec<Seq>, spent: Vec<Spent>) {
        if !delete.is_empty() || !spent.is_empty() {
            self.send(StoreOp::Write { insert: vec![], delete, spent, done: None });
        }
    }

    fn prune_spent(&self, before: Slot) {
        self.send(StoreOp::PruneSpent(before));
    }

    /// A copy of the counters.
    fn stats(&self) -> StoreStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl ReceiptStore for SqliteTxStore {
    fn write_receipts(&self, receipts: Vec<SignedReceipt>) -> Durable {
        let (done, durable) = oneshot::channel();
        self.send(StoreOp::Receipts { insert: receipts, done });
        durable
    }

    fn receipt(&self, tx: &TxId) -> Result<Option<SignedReceipt>, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM receipt WHERE tx = ?1 ORDER BY slot DESC LIMIT 1")?
            .query_row(params![&tx.0[..]], |r| r.get(0))
            .optional()?;
        body.map(|b| {
            serde_json::from_str::<SignedReceipt>(&b)
                .map_err(|e| StoreError::CorruptReceipt { tx: *tx, reason: e.to_string() })
        })
        .transpose()
    }

    fn prune_receipts(&self, before: Slot) {
        self.send(StoreOp::PruneReceipts(before));
    }
}

impl Drop for SqliteTxStore {
    fn drop(&mut self) {
        self.stop();
    }
}

fn load(conn: &Connection) -> Result<Vec<StoredTx>, StoreError> {
    let mut stmt = conn.prepare("SELECT seq, meta, body FROM tx ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let seq = seq as u64;
        let meta: Vec<u8> = row.get(1)?;
        let body: Vec<u8> = row.get(2)?;
        let (m, payer_signature) =
            decode_row_meta(&meta).map_err(|reason| StoreError::CorruptRow { seq, reason })?;
        out.push(StoredTx {
            seq: Seq(seq),
            candidate: Candidate {
                id: m.id,
                meta: m.meta,
                ephemeral_key: m.ephemeral_key,
                body: Bytes::from(body),
                payer_signature,
            },
        });
    }
    Ok(out)
}

/// Copies the WAL into the database every [`CHECKPOINT_INTERVAL`] from its own connection,
/// so that the storage thread's commits never wait for a checkpoint (a 16 MiB checkpoint
/// inside a commit stalled acks by up to 21 ms). `PASSIVE` never blocks the writer; once a
/// checkpoint has caught up, the writer's next transaction restarts the WAL from its start,
/// so the file stays small. Errors are left for the next round (the writer's large
/// auto-checkpoint is the backstop).
fn checkpoint_loop(conn: &Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

type Done = oneshot::Sender<Result<(), StoreError>>;

fn run(mut conn: Connection, rx: mpsc::Receiver<StoreOp>, stats: &Mutex<StoreStats>) {
    let mut poisoned = false;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        let mut rows = 0;
        while rows < MAX_GROUP_ROWS {
            match rx.try_recv() {
                Ok(op) => {
                    rows += op.rows();
                    group.push(op);
                }
                Err(_) => break,
            }
        }
        let mut dones: Vec<Done> = Vec::with_capacity(group.len());
        let result = if poisoned {
            Err(StoreError::Poisoned)
        } else {
            commit_group(&mut conn, group, &mut dones, stats)
        };
        match result {
            Ok(()) => {
                for d in dones {
                    let _ = d.send(Ok(()));
                }
            }
            Err(e) => {
                if !poisoned {
                    tracing::error!(error = %e, "mempool store write failed; refusing further writes");
                }
                poisoned = true;
                for d in dones {
                    let _ = d.send(Err(StoreError::Poisoned));
                }
            }
        }
    }
}

fn commit_group(
    conn: &mut Connection,
    group: Vec<StoreOp>,
    dones: &mut Vec<Done>,
    stats: &Mutex<StoreStats>,
) -> Result<(), StoreError> {
    let ops = group.len() as u64;
    let started = std::time::Instant::now();
    let tx = conn.transaction()?;
    let mut written = 0u64;
    let mut deleted = 0u64;
    let mut receipts_written = 0u64;
    let mut receipts_deleted = 0u64;
    let mut spent_written = 0u64;
    let mut spent_deleted = 0u64;
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO tx (seq, expiry_slot, meta, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM tx WHERE seq = ?1")?;
        let mut high: Option<u64> = None;
        let mut put_receipt = tx.prepare_cached(
            "INSERT OR REPLACE INTO receipt (tx, slot, body) VALUES (?1, ?2, ?3)",
        )?;
        let mut prune = tx.prepare_cached("DELETE FROM receipt WHERE slot < ?1")?;
        let mut put_spent =
            tx.prepare_cached("INSERT OR IGNORE INTO spent (expiry_slot, id) VALUES (?1, ?2)")?;
        let mut prune_spent = tx.prepare_cached("DELETE FROM spent WHERE expiry_slot < ?1")?;
        for op in group {
            let (insert, delete, spent, done) = match op {
                StoreOp::Write { insert, delete, spent, done } => (insert, delete, spent, done),
                StoreOp::Receipts { insert, done } => {
                    dones.push(done);
                    for r in insert {
                        let body =
                            serde_json::to_string(&r).expect("JSON of plain structs cannot fail");
                        put_receipt.execute(params![
                            &r.message.tx.0[..],
                            slot_key(r.message.slot),
                            body
                        ])?;
                        receipts_written += 1;
                    }
                    continue;
                }
                StoreOp::PruneReceipts(before) => {
                    receipts_deleted += prune.execute(params![slot_key(before)])? as u64;
                    continue;
                }
                StoreOp::PruneSpent(before) => {
                    spent_deleted += prune_spent.execute(params![slot_key(before)])? as u64;
                    continue;
                }
            };
            if let Some(d) = done {
                dones.push(d);
            }
            for row in insert {
                let c = &row.candidate;
                let meta = encode_row_meta(c);
                ins.execute(params![
                    row.seq.0 as i64,
                    c.meta.expiry_slot.0 as i64,
                    meta,
                    &c.body[..]
                ])?;
                high = Some(high.map_or(row.seq.0, |h| h.max(row.seq.0)));
                written += 1;
            }
            for seq in delete {
                deleted += del.execute(params![seq.0 as i64])? as u64;
            }
            for s in spent {
                spent_written +=
                    put_spent.execute(params![slot_key(s.expiry), &s.id.0[..]])? as u64;
            }
        }
        if let Some(h) = high {
            tx.prepare_cached(
                "INSERT INTO feed (k, next_seq) VALUES (0, ?1)
                 ON CONFLICT(k) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            )?
            .execute(params![(h + 1) as i64])?;
        }
    }
    tx.commit()?;
    let took = started.elapsed().as_micros() as u64;
    if let Ok(mut s) = stats.lock() {
        s.commit_us_total += took;
        s.commit_us_max = s.commit_us_max.max(took);
        s.commits += 1;
        s.rows_written += written;
        s.rows_deleted += deleted;
        s.spent_written += spent_written;
        s.spent_deleted += spent_deleted;
        s.receipts_written += receipts_written;
        s.receipts_deleted += receipts_deleted;
        s.max_group = s.max_group.max(ops);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use veil_primitives::{Amount, ChainId, Eon, PublicKeyBytes, RollupId, Slot};

    use super::*;

    /// Deleting the newest rows does not make their positions reusable after a restart.
    #[test]
    fn the_feed_high_water_mark_survives_deletion() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(store.next_seq_floor(), Seq(0));
        store.write(vec![row(1), row(2), row(7)], vec![]).blocking_recv().unwrap().unwrap();
        store.write(vec![], vec![Seq(7), Seq(2)]).blocking_recv().unwrap().unwrap();
        store.shutdown();
        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(store.next_seq_floor(), Seq(8));
    }

    fn row(n: u64) -> StoredTx {
        StoredTx {
            seq: Seq(n),
            candidate: Candidate {
                id: TxId([n as u8; 32]),
                meta: TxMeta {
                    chain_id: ChainId(1),
                    eon: Eon(1),
                    rollup: RollupId(2),
                    fee_payer: PublicKeyBytes([3; 32]),
                    max_fee: Amount(u128::from(n)),
                    gas_limit: 5,
                    expiry_slot: Slot(n),
                    bundle: None,
                },
                ephemeral_key: EphemeralKeyDigest([n as u8; 32]),
                body: Bytes::from(vec![n as u8; 64]),
                payer_signature: SignatureBytes([n as u8; 64]),
            },
        }
    }

    /// Rows written before fee payers signed load with a zero signature; other lengths are
    /// corrupt.
    #[test]
    fn row_meta_reads_rows_without_a_signature() {
        let c = row(4).candidate;
        let (m, sig) = decode_row_meta(&encode_row_meta(&c)).unwrap();
        assert_eq!((m.id, m.meta, sig), (c.id, c.meta, c.payer_signature));
        let legacy = postcard::to_allocvec(&RowMeta {
            id: c.id,
            meta: c.meta,
            ephemeral_key: c.ephemeral_key,
        })
        .unwrap();
        assert_eq!(decode_row_meta(&legacy).unwrap().1, SignatureBytes([0; 64]));
        let mut odd = legacy;
        odd.push(1);
        assert!(decode_row_meta(&odd).is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writes_are_durable_and_reload_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (store, rows) = SqliteTxStore::open(dir).unwrap();
        assert!(rows.is_empty());
        let receipts: Vec<Durable> = (0..50).map(|n| store.write(vec![row(n)], vec![])).collect();
        for r in receipts {
            r.await.unwrap().unwrap();
        }
        store.write(vec![], vec![Seq(3), Seq(7)]).await.unwrap().unwrap();
        let stats = store.stats();
        assert_eq!(stats.rows_written, 50);
        assert_eq!(stats.rows_deleted, 2);
        assert!(stats.commits <= 51);
        store.shutdown();
        let (_store, rows) = SqliteTxStore::open(dir).unwrap();
        assert_eq!(rows.len(), 48);
        assert_eq!(rows[0], row(0));
        assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(!rows.iter().any(|r| r.seq == Seq(3) || r.seq == Seq(7)));
    }

    fn receipt(tx: u8, slot: u64, position: u32) -> SignedReceipt {
        use veil_primitives::receipt::{CommitmentId, Receipt};
        SignedReceipt {
            message: Receipt {
                chain_id: ChainId(1),
                slot: Slot(slot),
                eon: Eon(1),
                tx: TxId([tx; 32]),
                rollup: RollupId(2),
                position,
                commitment: CommitmentId([slot as u8; 32]),
            },
            signature: veil_primitives::SignatureBytes([tx; 64]),
        }
    }

    #[test]
    fn receipts_survive_reopen_latest_slot_wins_and_prune() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(store.receipt(&TxId([1; 32])).unwrap(), None);
        // Receipts and an admission write queued together land in one group.
        let a = store.write_receipts(vec![receipt(1, 5, 0), receipt(2, 5, 1)]);
        let b = store.write(vec![row(1)], vec![]);
        a.blocking_recv().unwrap().unwrap();
        b.blocking_recv().unwrap().unwrap();
        assert_eq!(store.receipt(&TxId([2; 32])).unwrap(), Some(receipt(2, 5, 1)));
        // Committed again in a later slot: the later receipt is the one looked up; writing
        // the same receipt twice is harmless.
        store.write_receipts(vec![receipt(1, 9, 3)]).blocking_recv().unwrap().unwrap();
        store.write_receipts(vec![receipt(1, 9, 3)]).blocking_recv().unwrap().unwrap();
        assert_eq!(store.receipt(&TxId([1; 32])).unwrap(), Some(receipt(1, 9, 3)));
        assert_eq!(store.stats().receipts_written, 4);
        store.shutdown();

        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows, vec![row(1)]);
        assert_eq!(store.receipt(&TxId([1; 32])).unwrap(), Some(receipt(1, 9, 3)));
        assert_eq!(store.receipt(&TxId([2; 32])).unwrap(), Some(receipt(2, 5, 1)));
        // Retention: everything before slot 9 goes.
        store.prune_receipts(Slot(9));
        store.write(vec![], vec![]).blocking_recv().unwrap().unwrap();
        assert_eq!(store.receipt(&TxId([2; 32])).unwrap(), None);
        assert_eq!(store.receipt(&TxId([1; 32])).unwrap(), Some(receipt(1, 9, 3)));
        assert_eq!(store.stats().receipts_deleted, 2);
    }

    #[test]
    fn a_corrupt_receipt_is_a_typed_error() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        {
            let conn = store.reader.lock().unwrap();
            conn.execute(
                "INSERT INTO receipt (tx, slot, body) VALUES (?1, 1, 'not json')",
                params![&[7u8; 32][..]],
            )
            .unwrap();
        }
        assert!(matches!(
            store.receipt(&TxId([7; 32])),
            Err(StoreError::CorruptReceipt { tx, .. }) if tx == TxId([7; 32])
        ));
    }

    fn spent_ids(store: &SqliteTxStore, from: u64) -> Vec<Spent> {
        let mut out = Vec::new();
        store.load_spent(Slot(from), |s| out.push(s)).unwrap();
        out
    }

    fn spent(n: u64, expiry: u64) -> Spent {
        Spent { id: row(n).candidate.id, expiry: Slot(expiry) }
    }

    /// Committed rows leave and their ids stay, across a reopen, in expiry order, until their
    /// expiry slot passes; repeats change nothing.
    #[test]
    fn spent_ids_survive_reopen_until_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        store.write(vec![row(1), row(2), row(3)], vec![]).blocking_recv().unwrap().unwrap();
        // Row 2's id, and one that was never pending here.
        store.remove_committed(vec![Seq(1), Seq(2)], vec![spent(2, 9), spent(1, 5), spent(8, 7)]);
        store.remove_committed(vec![Seq(1)], vec![spent(1, 5)]);
        store.write(vec![], vec![]).blocking_recv().unwrap().unwrap();
        let stats = store.stats();
        assert_eq!((stats.rows_deleted, stats.spent_written), (2, 3));
        store.shutdown();

        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows, vec![row(3)]);
        assert_eq!(spent_ids(&store, 0), vec![spent(1, 5), spent(8, 7), spent(2, 9)]);
        assert_eq!(spent_ids(&store, 7), vec![spent(8, 7), spent(2, 9)]);
        // Slot 7 is current: ids expiring before it go.
        store.prune_spent(Slot(7));
        store.write(vec![], vec![]).blocking_recv().unwrap().unwrap();
        assert_eq!(spent_ids(&store, 0), vec![spent(8, 7), spent(2, 9)]);
        assert_eq!(store.stats().spent_deleted, 1);
    }

    /// The deletion of a committed row and the insertion of its spent id are one
    /// transaction: if the insertion fails, the row is still there (and the store refuses
    /// further writes).
    #[test]
    fn a_committed_row_leaves_only_with_its_spent_id() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        store.write(vec![row(1), row(2)], vec![]).blocking_recv().unwrap().unwrap();
        store
            .reader
            .lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER no_spent BEFORE INSERT ON spent
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        store.remove_committed(vec![Seq(1)], vec![spent(1, 5)]);
        // The barrier fails with the group (or, grouped after it, is never answered).
        let barrier = store.write(vec![], vec![]).blocking_recv();
        assert!(!matches!(barrier, Ok(Ok(()))), "{barrier:?}");
        store.reader.lock().unwrap().execute_batch("DROP TRIGGER no_spent").unwrap();
        store.shutdown();
        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows, vec![row(1), row(2)]);
        assert!(spent_ids(&store, 0).is_empty());
        // Without the failure both happen.
        store.remove_committed(vec![Seq(1)], vec![spent(1, 5)]);
        store.write(vec![], vec![]).blocking_recv().unwrap().unwrap();
        drop(store);
        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows, vec![row(2)]);
        assert_eq!(spent_ids(&store, 0), vec![spent(1, 5)]);
    }

    /// A database written before the spent table existed opens, and gets it.
    #[test]
    fn a_database_without_the_spent_table_opens() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
            store.write(vec![row(1)], vec![]).blocking_recv().unwrap().unwrap();
            store.reader.lock().unwrap().execute_batch("DROP TABLE spent").unwrap();
        }
        let (store, rows) = SqliteTxStore::open(tmp.path()).unwrap();
        assert_eq!(rows, vec![row(1)]);
        assert!(spent_ids(&store, 0).is_empty());
        store.remove_committed(vec![Seq(1)], vec![spent(1, 5)]);
        store.write(vec![], vec![]).blocking_recv().unwrap().unwrap();
        assert_eq!(spent_ids(&store, 0), vec![spent(1, 5)]);
    }

    #[test]
    fn queued_writes_are_grouped() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = SqliteTxStore::open(tmp.path()).unwrap();
        let receipts: Vec<Durable> = (0..2000).map(|n| store.write(vec![row(n)], vec![])).collect();
        for r in receipts {
            r.blocking_recv().unwrap().unwrap();
        }
        let stats = store.stats();
        assert_eq!(stats.rows_written, 2000);
        assert!(stats.commits < 2000, "group commit merged writes: {stats:?}");
        drop(store);
    }
}
