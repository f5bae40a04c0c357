//! History files: samples in an SQLite database, so a process's growth curve outlives it (a
//! crash, an out-of-memory kill) and can be read while it runs.
//!
//! One file can hold several processes (successive runs, or the workers of one server): each
//! writer registers its process and appends samples as they are taken, one short transaction
//! each, in WAL mode so readers never wait.
//!
//! A live file is two files: `app.db` and `app.db-wal`, where SQLite appends each transaction
//! until a checkpoint copies it into `app.db`. A process killed with `kill -9` leaves its newest
//! samples in the `-wal`, and a copy of `app.db` alone would lack them (before checkpoints were
//! taken here, all of them: the WAL is only folded in by itself every 1000 pages, or when the last
//! connection closes). So the writer creates the tables before it turns WAL on (they are in
//! `app.db` from the start), checkpoints once its process is registered, after its first sample,
//! then at most every [`CHECKPOINT_EVERY`], and when it is dropped; and [`read`] folds a `-wal`
//! it finds into the file (a PASSIVE checkpoint, which never waits for a writer). Copying
//! `app.db` alone therefore loses at most the last second of samples of a killed process.
//!
//! Per sample it stores the process figures and, per
//! type, only the values that changed since that process's previous sample (see
//! [`super::History`]); the `changes` view shows them with names and times:
//!
//! ```sh
//! sqlite3 history.db "select * from changes where name = 'myapp.Order'"
//! ```

use super::{History, Sample};
use crate::error::{Error, Result};
use hashbrown::HashMap;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// What the `meta` table says a history file is.
const FORMAT: &str = "heaplens-history";
const VERSION: u32 = 1;

/// How often a writer copies its WAL into the database file: with the default period of
/// `heaplens run` (1 s) that is after every sample; faster samplers pay for the checkpoint's
/// two `fsync`s at most once a second.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processes(
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    program TEXT NOT NULL,
    python TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS samples(
    id INTEGER PRIMARY KEY,
    process INTEGER NOT NULL REFERENCES processes(id),
    taken_ms INTEGER NOT NULL,
    rss INTEGER NOT NULL,
    objects INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    gc_only INTEGER NOT NULL,
    census_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counts(
    sample INTEGER NOT NULL REFERENCES samples(id),
    type INTEGER NOT NULL REFERENCES types(id),
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY(sample, type)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS changes AS
    SELECT p.pid, s.taken_ms, t.name, c.count, c.bytes
    FROM counts c JOIN samples s ON s.id = c.sample JOIN types t ON t.id = c.type
    JOIN processes p ON p.id = s.process;
";

pub(super) fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    let detail = match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            "not an SQLite database".to_string()
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseCorrupt => {
            "the database is corrupt".to_string()
        }
        _ => e.to_string(),
    };
    Error::History {
        path: path.display().to_string(),
        detail,
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Checks that `conn` is a heaplens history of a version this code reads, or an empty database.
/// Refuses a file that has bytes but not an SQLite database's first ones. SQLite takes a file
/// shorter than its header for an empty database, and an empty database is what a writer
/// killed while creating the file leaves (a history with no samples yet): one stray byte must
/// not read as that.
pub(super) fn check_header(path: &Path) -> Result<()> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let mut head = Vec::with_capacity(MAGIC.len());
    let read = std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 16), &mut head));
    match read {
        Ok(0) => Ok(()),
        Ok(_) if head.as_slice() == MAGIC => Ok(()),
        Ok(_) => Err(Error::History {
            path: path.display().to_string(),
            detail: "not an SQLite database".into(),
        }),
        // Unreadable: SQLite says why, with the path.
        Err(_) => Ok(()),
    }
}

pub(super) fn check_format(conn: &Connection, path: &Path, may_be_empty: bool) -> Result<()> {
    let err = |detail: String| Error::History {
        path: path.display().to_string(),
        detail,
    };
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| db_error(path, e))?;
    if tables == 0 && may_be_empty {
        return Ok(());
    }
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| db_error(path, e))?
        > 0;
    let value = |key: &str| -> Result<Option<String>> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| db_error(path, e))
    };
    if !has_meta || value("format")?.as_deref() != Some(FORMAT) {
        return Err(err(
            "an SQLite database, but not a heaplens history (no heaplens tables in it)".into(),
        ));
    }
    let version = value("version")?.and_then(|v| v.parse::<u32>().ok());
    if version != Some(VERSION) {
        return Err(err(format!(
            "history format version {}, but this heaplens reads version {VERSION}",
            version.map_or("unknown".to_string(), |v| v.to_string())
        )));
    }
    Ok(())
}

/// Runs `step` again while another connection holds the lock it needs, for up to 30 s: the
/// busy timeout does not cover every case (switching the journal mode, a transaction that must
/// upgrade its lock).
fn retry_while_busy(mut step: impl FnMut() -> rusqlite::Result<()>) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Appends the samples of one process to a history file.
pub struct HistoryWriter {
    conn: Connection,
    path: std::path::PathBuf,
    process: i64,
    type_ids: HashMap<String, i64>,
    /// When the WAL was last copied into the file (None: not since the process registered).
    checkpointed: Option<std::time::Instant>,
}

impl HistoryWriter {
    /// Opens (or creates) the history file at `path` and registers this process in it.
    /// `program` names what runs (a script, a server); `python` is its Python version.
    pub fn open(path: &Path, pid: u32, program: &str, python: &str) -> Result<HistoryWriter> {
        check_header(path)?;
        let conn = Connection::open(path).map_err(|e| db_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error(path, e))?;
        check_format(&conn, path, true)?;
        // The tables first, in one transaction, before WAL is turned on for a new file: they
        // are then in the database file itself, so a process killed at any later point leaves
        // a file that says it is a history (with no samples yet), never one that looks empty.
        // (A file already in WAL mode stays in it; the statements change nothing there.)
        // IMMEDIATE: the write lock is taken (waiting for it) at BEGIN. A deferred transaction
        // that read first could not upgrade while another process did the same (two gunicorn
        // workers booting together): SQLite answers that "database is locked" at once, without
        // waiting, and the worker failed to boot.
        let schema = format!(
            "BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO meta(key, value) VALUES \
             ('format', '{FORMAT}'), ('version', '{VERSION}'); COMMIT;"
        );
        retry_while_busy(|| conn.execute_batch(&schema)).map_err(|e| db_error(path, e))?;
        // WAL: readers (`heaplens history`, a dashboard) never block the writer, and a process
        // killed mid-write loses at most its last sample. NORMAL sync is enough for that: only
        // an operating-system crash could lose the newest samples.
        retry_while_busy(|| {
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        })
        .map_err(|e| db_error(path, e))?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        conn.execute(
            "INSERT INTO processes(pid, started_ms, program, python) VALUES (?1, ?2, ?3, ?4)",
            params![pid, to_i64(started), program, python],
        )
        .map_err(|e| db_error(path, e))?;
        let process = conn.last_insert_rowid();
        let mut writer = HistoryWriter {
            conn,
            path: path.to_path_buf(),
            process,
            type_ids: HashMap::new(),
            checkpointed: None,
        };
        // The process is in the file itself: killed before its first sample, the file says
        // so (no samples yet) even when copied without its `-wal`.
        writer.checkpoint();
        writer.checkpointed = None;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the WAL into the database file, as far as readers allow (PASSIVE: it never waits
    /// for them, nor for another writer). A checkpoint that cannot finish now is no error: the
    /// samples are safe in the WAL, and the next one copies them.
    pub fn checkpoint(&mut self) {
        self.checkpointed = Some(std::time::Instant::now());
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }

    /// Appends one sample with the type values that changed since this process's previous one
    /// (what [`History::push`] returns).
    pub fn append(&mut self, sample: &Sample, changes: &[(&str, u64, u64)]) -> Result<()> {
        let path = self.path.clone();
        let e = |e| db_error(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO samples(process, taken_ms, rss, objects, bytes, gc_only, census_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                self.process,
                to_i64(sample.taken_ms),
                to_i64(sample.rss),
                to_i64(sample.objects),
                to_i64(sample.bytes),
                sample.gc_only,
                to_i64(sample.census_us)
            ],
        )
        .map_err(e)?;
        let sample_id = tx.last_insert_rowid();
        {
            let mut find = tx
                .prepare_cached("SELECT id FROM types WHERE name = ?1")
                .map_err(e)?;
            let mut add = tx
                .prepare_cached("INSERT INTO types(name) VALUES (?1)")
                .map_err(e)?;
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO counts(sample, type, count, bytes) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            for &(name, count, bytes) in changes {
                let id = match self.type_ids.get(name) {
                    Some(&id) => id,
                    None => {
                        // Another process may have added the name already.
                        let id = match find
                            .query_row([name], |r| r.get::<_, i64>(0))
                            .optional()
                            .map_err(e)?
                        {
                            Some(id) => id,
                            None => {
                                add.execute([name]).map_err(e)?;
                                tx.last_insert_rowid()
                            }
                        };
                        self.type_ids.insert(name.to_string(), id);
                        id
                    }
                };
                put.execute(params![sample_id, id, to_i64(count), to_i64(bytes)])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        if self
            .checkpointed
            .is_none_or(|at| at.elapsed() >= CHECKPOINT_EVERY)
        {
            self.checkpoint();
        }
        Ok(())
    }
}

impl Drop for HistoryWriter {
    /// The last samples go into the file (closing the connection does it too when it is the
    /// file's last one; other processes may still write to it).
    fn drop(&mut self) {
        self.checkpoint();
    }
}

/// One process of a history file.
#[derive(Clone, Debug)]
pub struct ProcessHistory {
    pub pid: u32,
    pub started_ms: u64,
    pub program: String,
    pub python: String,
    pub history: History,
}

/// Reads every process of the history file at `path`, oldest first, keeping all samples (none
/// for an empty database). A `-wal` beside the file is folded into it when the file is writable.
/// To read a file again and again as it grows, [`super::follow::Follower`] reads only what was
/// appended.
pub fn read(path: &Path) -> Result<Vec<ProcessHistory>> {
    let mut follower = super::follow::Follower::new(path);
    follower.refresh()?;
    Ok(follower.into_processes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("heaplens-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("history.db")
    }

    #[test]
    fn samples_written_by_two_processes_read_back_exactly() {
        let path = temp("two");
        let mut a = HistoryWriter::open(&path, 100, "app.py", "3.11.7").unwrap();
        let mut b = HistoryWriter::open(&path, 200, "app.py", "3.11.7").unwrap();
        let mut ha = History::new(10);
        let mut hb = History::new(10);
        for t in 0..5u64 {
            let s = Sample {
                taken_ms: 1000 * t,
                pid: 100,
                rss: 1 << 20,
                objects: 10 + t,
                bytes: 1000,
                gc_only: true,
                census_us: 50,
            };
            let changes = ha.push_values(s, [("Order", t, t * 56), ("dict", 9, 90)]);
            a.append(&s, &changes).unwrap();
            let s = Sample { pid: 200, ..s };
            let changes = hb.push_values(s, [("dict", 9 + t, 90)]);
            b.append(&s, &changes).unwrap();
        }
        drop((a, b));
        let read = read(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].pid, 100);
        assert_eq!(read[0].program, "app.py");
        assert_eq!(read[0].history.series("Order"), ha.series("Order"));
        assert_eq!(read[0].history.series("dict"), vec![(9, 90); 5]);
        assert_eq!(read[1].history.series("dict"), hb.series("dict"));
        assert!(read[1].history.series("Order").is_empty());
        let samples: Vec<Sample> = read[0].history.samples().copied().collect();
        assert_eq!(samples, ha.samples().copied().collect::<Vec<_>>());
    }

    fn sample(t: u64) -> Sample {
        Sample {
            taken_ms: 1000 * t,
            pid: 7,
            rss: 1 << 20,
            objects: 10 + t,
            bytes: 1000,
            gc_only: true,
            census_us: 50,
        }
    }

    /// The database file alone, as `cp app.db elsewhere/` copies it (without its `-wal`).
    fn copy_alone(path: &Path, name: &str) -> std::path::PathBuf {
        let copy = temp(name);
        std::fs::copy(path, &copy).unwrap();
        copy
    }

    #[test]
    fn a_killed_writers_file_alone_holds_its_samples() {
        let path = temp("killed");
        let mut writer = HistoryWriter::open(&path, 7, "app.py", "3.12.1").unwrap();
        let mut history = History::new(10);
        for t in 0..3u64 {
            let changes = history.push_values(sample(t), [("Order", t + 1, 56)]);
            writer.append(&sample(t), &changes).unwrap();
        }
        // Killed: no close, no checkpoint at drop, the connection's `-wal` left as it is.
        std::mem::forget(writer);
        let copy = copy_alone(&path, "killed-copy");
        let read_back = read(&copy).unwrap();
        assert_eq!(read_back.len(), 1);
        // The first sample is checkpointed at once; later ones at most a second later.
        assert!(!read_back[0].history.is_empty());
        assert_eq!(read_back[0].history.series("Order")[0], (1, 56));

        // Reading the file itself folds its `-wal` in: then the file alone has every sample.
        assert_eq!(read(&path).unwrap()[0].history.len(), 3);
        let copy = copy_alone(&path, "killed-folded");
        assert_eq!(read(&copy).unwrap()[0].history.series("Order").len(), 3);
    }

    #[test]
    fn a_writer_killed_before_its_first_sample_leaves_a_history_without_samples() {
        let path = temp("unsampled");
        std::mem::forget(HistoryWriter::open(&path, 7, "app.py", "3.12.1").unwrap());
        let copy = copy_alone(&path, "unsampled-copy");
        let read_back = read(&copy).unwrap();
        assert_eq!(read_back.len(), 1);
        assert_eq!(read_back[0].pid, 7);
        assert!(read_back[0].history.is_empty());

        // Killed while it created the file: an empty database, no process in it yet.
        let empty = temp("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(read(&empty).unwrap().is_empty());
    }

    #[test]
    fn processes_that_open_one_new_history_at_once_all_get_in() {
        // Gunicorn boots its workers together, each opening the history file the app names.
        for round in 0..5 {
            let path = temp(&format!("together-{round}"));
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let opened: Vec<_> = (0..8u32)
                    .map(|pid| {
                        let (path, start) = (&path, &start);
                        s.spawn(move || {
                            start.wait();
                            HistoryWriter::open(path, pid, "app", "3.12").map(drop)
                        })
                    })
                    .collect();
                for (pid, o) in opened.into_iter().enumerate() {
                    let result = o.join().unwrap();
                    assert!(result.is_ok(), "round {round}, process {pid}: {result:?}");
                }
            });
            assert_eq!(read(&path).unwrap().len(), 8);
        }
    }

    #[test]
    fn other_files_are_refused_with_a_reason() {
        let path = temp("bad");
        std::fs::write(
            &path,
            b"this is not a database, just some text padding it out",
        )
        .unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("not an SQLite database"), "{err}");
        assert!(HistoryWriter::open(&path, 1, "x", "3.11").is_err());
        // Shorter than SQLite's header: SQLite alone would take it for an empty database.
        let stray = temp("stray");
        std::fs::write(&stray, b"x").unwrap();
        let err = read(&stray).unwrap_err().to_string();
        assert!(err.contains("not an SQLite database"), "{err}");
        assert!(HistoryWriter::open(&stray, 1, "x", "3.11").is_err());
        assert_eq!(std::fs::read(&stray).unwrap(), b"x", "left as it was");

        let other = temp("other");
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE users(name TEXT)").unwrap();
        drop(conn);
        let err = HistoryWriter::open(&other, 1, "x", "3.11")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a heaplens history"), "{err}");
        assert!(read(&temp("missing")).is_err());
    }
}
