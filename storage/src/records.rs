//! [`RecordLog`]: the append-only, fsync'd log of a state machine's persist events (the
//! sequencer's slot records, a keyper's release records), with the one-commitment-per-slot
//! rule enforced by the database itself.
//!
//! Each record is a kind, a slot and an opaque body (the caller's serialisation). A write
//! returns only once it is durable (`synchronous=FULL`), which is what "a `Persist` event is
//! durable before the core gets its next input" needs. Records of kind
//! [`RecordLog::DECIDED`] go through a table keyed by slot: a second, *different* decision for
//! a slot is refused with [`StoreError::Conflict`] (an identical one is accepted again, so a
//! restarted writer may repeat itself), so no bug above the store can make a sequencer commit
//! twice to one slot.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use veil_primitives::Slot;

use crate::error::StoreError;

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The caller's record kind.
    pub kind: String,
    /// The slot it is about.
    pub slot: Slot,
    /// The caller's serialised body.
    pub body: Vec<u8>,
}

/// An append-only record log in one SQLite file. See the module docs.
#[derive(Debug)]
pub struct RecordLog {
    conn: Mutex<Connection>,
}

impl RecordLog {
    /// The kind whose records are unique per slot.
    pub const DECIDED: &'static str = "decided";

    /// Opens (or creates) the log at `path` and returns every record in write order.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] or [`StoreError::Io`].
    pub fn open(path: &Path) -> Result<(RecordLog, Vec<LogRecord>), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS record (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                slot INTEGER NOT NULL,
                body BLOB NOT NULL
            );
            CREATE TABLE IF NOT EXISTS decided (
                slot INTEGER PRIMARY KEY,
                body BLOB NOT NULL
            );",
        )?;
        let records = {
            let mut stmt = conn.prepare("SELECT kind, slot, body FROM record ORDER BY seq")?;
            let rows = stmt.query_map([], |r| {
                Ok(LogRecord {
                    kind: r.get(0)?,
                    slot: Slot(r.get::<_, i64>(1)? as u64),
                    body: r.get(2)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        Ok((RecordLog { conn: Mutex::new(conn) }, records))
    }

    /// Appends a record and returns once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a [`RecordLog::DECIDED`] record that differs from the one
    /// already stored for its slot; [`StoreError::Sqlite`] if the write fails.
    pub fn append(&self, kind: &str, slot: Slot, body: &[u8]) -> Result<(), StoreError> {
        self.append_all(&[(kind, slot, body)])
    }

    /// Appends records in order, in one transaction (one fsync), and returns once all are
    /// durable; on an error none is. A shell that has several persist events queued at once
    /// (a keyper's first commitment of a slot and its release record) writes them so.
    ///
    /// # Errors
    /// As [`RecordLog::append`], for any of the records.
    pub fn append_all(&self, records: &[(&str, Slot, &[u8])]) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction()?;
        for &(kind, slot, body) in records {
            let slot_i = i64::try_from(slot.0).map_err(|_| StoreError::Conflict(slot.0))?;
            if kind == Self::DECIDED {
                let existing: Option<Vec<u8>> = tx
                    .query_row("SELECT body FROM decided WHERE slot = ?1", params![slot_i], |r| {
                        r.get(0)
                    })
                    .optional()?;
                match existing {
                    Some(b) if b != body => return Err(StoreError::Conflict(slot.0)),
                    Some(_) => {}
                    None => {
                        tx.execute(
                            "INSERT INTO decided (slot, body) VALUES (?1, ?2)",
                            params![slot_i, body],
                        )?;
                    }
                }
            }
            tx.execute(
                "INSERT INTO record (kind, slot, body) VALUES (?1, ?2, ?3)",
                params![kind, slot_i, body],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A read-only view of a [`RecordLog`] file for another reader than its writer (the HTTP
/// API's indexer): records in write order after a given position. It runs on its own
/// connection (WAL readers never wait for the writer, nor the writer for them) and sees what
/// is committed, which is what is durable.
#[derive(Debug)]
pub struct RecordReader {
    conn: Mutex<Connection>,
}

impl RecordReader {
    /// Opens the log at `path` read-only. The file must exist (its writer creates it).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the file cannot be opened.
    pub fn open(path: &Path) -> Result<RecordReader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(RecordReader { conn: Mutex::new(conn) })
    }

    /// Up to `limit` records written after position `after` (0 for the start), each with its
    /// position, in write order. Pass the last position returned to read on.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<(u64, LogRecord)>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, slot, body FROM record WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                LogRecord {
                    kind: r.get(1)?,
                    slot: Slot(r.get::<_, i64>(2)? as u64),
                    body: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_decisions_are_unique_per_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let (log, records) = RecordLog::open(&path).unwrap();
        assert!(records.is_empty());
        log.append(RecordLog::DECIDED, Slot(1), b"first").unwrap();
        log.append("signed", Slot(1), b"sig").unwrap();
        // The same decision again is accepted (a restarted writer repeating itself)...
        log.append(RecordLog::DECIDED, Slot(1), b"first").unwrap();
        // ...a different one never.
        assert!(matches!(
            log.append(RecordLog::DECIDED, Slot(1), b"second"),
            Err(StoreError::Conflict(1))
        ));
        drop(log);
        let (log, records) = RecordLog::open(&path).unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, vec!["decided", "signed", "decided"]);
        assert!(log.append(RecordLog::DECIDED, Slot(1), b"second").is_err(), "also after reopen");
    }

    #[test]
    fn records_appended_together_are_stored_in_order_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let (log, _) = RecordLog::open(&path).unwrap();
        log.append(RecordLog::DECIDED, Slot(1), b"first").unwrap();
        log.append_all(&[("keyper", Slot(2), b"a"), ("keyper", Slot(2), b"b")]).unwrap();
        // A conflicting decision anywhere in the group: nothing of the group is written.
        assert!(matches!(
            log.append_all(&[("signed", Slot(1), b"x"), (RecordLog::DECIDED, Slot(1), b"other")]),
            Err(StoreError::Conflict(1))
        ));
        drop(log);
        let (_, records) = RecordLog::open(&path).unwrap();
        let bodies: Vec<&[u8]> = records.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies, vec![&b"first"[..], b"a", b"b"]);
    }

    #[test]
    fn reader_reads_on_from_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let (log, _) = RecordLog::open(&path).unwrap();
        let reader = RecordReader::open(&path).unwrap();
        assert!(reader.after(0, 10).unwrap().is_empty());
        for slot in 1..=3 {
            log.append("signed", Slot(slot), &[slot as u8]).unwrap();
        }
        let first = reader.after(0, 2).unwrap();
        assert_eq!(first.iter().map(|r| r.1.slot.0).collect::<Vec<_>>(), vec![1, 2]);
        let rest = reader.after(first[1].0, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1.body, vec![3]);
        assert!(reader.after(rest[0].0, 10).unwrap().is_empty());
    }
}
