//! Reading a history file again and again while its writers append to it: what an exporter
//! does at every scrape (`heaplens metrics FILE.db --port`).
//!
//! Writers only append (a process row when one starts, type names as they appear, a sample
//! row and its changed counts per sample), so a reader that remembers the last sample it read
//! need only read the rows after it: a scrape costs the samples taken since the previous one,
//! not the whole day the file holds. A file replaced under the reader (rotated, recreated: a
//! different inode, fewer rows than it read, or a different first process) is read again from
//! the start.
//!
//! Not a writer, and not a cache of anything else: the whole history stays in memory, as one
//! full read would hold it.

use super::store::{check_format, check_header, db_error, ProcessHistory};
use super::{History, Sample};
use crate::error::{Error, Result};
use hashbrown::HashMap;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// A history file read so far, and where to go on from.
pub struct Follower {
    path: PathBuf,
    /// Which file was read: (device, inode) and its first process row, to tell a replaced one.
    identity: Option<Identity>,
    names: HashMap<i64, String>,
    processes: Vec<ProcessHistory>,
    /// Row id of each process -> its index in `processes`.
    index: HashMap<i64, usize>,
    last_process: i64,
    last_sample: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    first_process: Option<(i64, i64, i64)>,
}

impl Follower {
    /// A follower of the file at `path` that has read nothing yet.
    pub fn new(path: &Path) -> Follower {
        Follower {
            path: path.to_path_buf(),
            identity: None,
            names: HashMap::new(),
            processes: Vec::new(),
            index: HashMap::new(),
            last_process: 0,
            last_sample: 0,
        }
    }

    /// Reads what was appended since the last call (everything, the first time or when the
    /// file was replaced) and returns every process of the file, oldest first. A `-wal` beside
    /// the file is folded into it when the file is writable.
    pub fn refresh(&mut self) -> Result<&[ProcessHistory]> {
        if !self.path.exists() {
            return Err(Error::Io {
                path: self.path.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        check_header(&self.path)?;
        // Read-write where the file allows it (never created: it exists), so that a `-wal`
        // left by a killed writer is folded into the file, which can then be copied alone;
        // read-only where that fails (a file of another user's, a read-only directory).
        let conn = match self.open(true) {
            Ok(conn) => conn,
            Err(_) => self.open(false)?,
        };
        let Some(conn) = conn else {
            // An empty database: what a writer killed while it created the file leaves.
            self.reset(None);
            return Ok(&self.processes);
        };
        let identity = self.identity(&conn)?;
        let replaced = self
            .identity
            .as_ref()
            .is_some_and(|known| *known != identity);
        let shrunk =
            self.last_sample > 0 && max_id(&conn, &self.path, "samples")? < self.last_sample;
        if self.identity.is_none() || replaced || shrunk {
            self.reset(Some(identity));
        }
        self.read_new(&conn)?;
        Ok(&self.processes)
    }

    /// Every process read so far.
    pub fn processes(&self) -> &[ProcessHistory] {
        &self.processes
    }

    /// The processes read, given away.
    pub fn into_processes(self) -> Vec<ProcessHistory> {
        self.processes
    }

    fn reset(&mut self, identity: Option<Identity>) {
        *self = Follower {
            identity,
            ..Follower::new(&self.path)
        };
    }

    /// A connection to the file, read-write (`writable`) or read-only; `None` for a database
    /// without tables.
    fn open(&self, writable: bool) -> Result<Option<Connection>> {
        let path = &self.path;
        let mode = if writable {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| db_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error(path, e))?;
        check_format(&conn, path, true)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| db_error(path, e))?;
        if tables == 0 {
            return Ok(None);
        }
        if writable {
            // PASSIVE: a writer still running is not waited for (nor disturbed); when this is
            // the file's last connection, closing it checkpoints again and removes the `-wal`.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
        Ok(Some(conn))
    }

    fn identity(&self, conn: &Connection) -> Result<Identity> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path).map_err(|source| Error::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        let first_process = conn
            .query_row(
                "SELECT id, pid, started_ms FROM processes ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| db_error(&self.path, e))?;
        Ok(Identity {
            device: meta.dev(),
            inode: meta.ino(),
            first_process,
        })
    }

    /// Reads the type names, processes and samples after those already read.
    fn read_new(&mut self, conn: &Connection) -> Result<()> {
        let path = self.path.clone();
        let e = |e| db_error(&path, e);
        // Type names are few and never change; a new one may come with any sample.
        let mut types = conn.prepare("SELECT id, name FROM types").map_err(e)?;
        let names = types
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(e)?;
        for row in names {
            let (id, name) = row.map_err(e)?;
            self.names.entry(id).or_insert(name);
        }
        let mut processes = conn
            .prepare(
                "SELECT id, pid, started_ms, program, python FROM processes WHERE id > ?1 \
                 ORDER BY id",
            )
            .map_err(e)?;
        let rows = processes
            .query_map([self.last_process], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ProcessHistory {
                        pid: r.get::<_, i64>(1)? as u32,
                        started_ms: r.get::<_, i64>(2)? as u64,
                        program: r.get(3)?,
                        python: r.get(4)?,
                        history: History::new(usize::MAX),
                    },
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (id, process) = row.map_err(e)?;
            self.index.insert(id, self.processes.len());
            self.processes.push(process);
            self.last_process = self.last_process.max(id);
        }
        let mut samples = conn
            .prepare(
                "SELECT id, process, taken_ms, rss, objects, bytes, gc_only, census_us
                 FROM samples WHERE id > ?1 ORDER BY id",
            )
            .map_err(e)?;
        let mut counts = conn
            .prepare("SELECT type, count, bytes FROM counts WHERE sample = ?1")
            .map_err(e)?;
        let rows = samples
            .query_map([self.last_sample], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    Sample {
                        taken_ms: r.get::<_, i64>(2)? as u64,
                        pid: 0,
                        rss: r.get::<_, i64>(3)? as u64,
                        objects: r.get::<_, i64>(4)? as u64,
                        bytes: r.get::<_, i64>(5)? as u64,
                        gc_only: r.get(6)?,
                        census_us: r.get::<_, i64>(7)? as u64,
                    },
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (id, process, mut sample) = row.map_err(e)?;
            self.last_sample = self.last_sample.max(id);
            let Some(&p) = self.index.get(&process) else {
                continue;
            };
            let changes: Vec<(i64, i64, i64)> = counts
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(e)?
                .collect::<rusqlite::Result<_>>()
                .map_err(e)?;
            let ph = &mut self.processes[p];
            sample.pid = ph.pid;
            let names = &self.names;
            ph.history.push_changes(
                sample,
                changes.iter().filter_map(|&(t, c, b)| {
                    names
                        .get(&t)
                        .map(|n| (n.as_str(), c.max(0) as u64, b.max(0) as u64))
                }),
            );
        }
        Ok(())
    }
}

/// The largest row id of `table` (0 when empty).
fn max_id(conn: &Connection, path: &Path, table: &str) -> Result<i64> {
    conn.query_row(
        &format!("SELECT coalesce(max(id), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .map_err(|e| db_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::{read, HistoryWriter};

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("heaplens-follow-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("history.db")
    }

    fn sample(taken_ms: u64, objects: u64) -> Sample {
        Sample {
            taken_ms,
            pid: 0,
            rss: 1 << 20,
            objects,
            bytes: objects * 50,
            gc_only: true,
            census_us: 100,
        }
    }

    fn counts(history: &History) -> Vec<u64> {
        history.series("app.Order").iter().map(|v| v.0).collect()
    }

    #[test]
    fn each_refresh_reads_what_was_appended_and_answers_as_a_full_read() {
        let path = temp("appended");
        let mut first = HistoryWriter::open(&path, 11, "app.py", "3.12").unwrap();
        first
            .append(&sample(1_000, 10), &[("app.Order", 1, 56)])
            .unwrap();
        let mut follower = Follower::new(&path);
        assert_eq!(follower.refresh().unwrap().len(), 1);
        first
            .append(&sample(2_000, 20), &[("app.Order", 2, 112)])
            .unwrap();
        let mut second = HistoryWriter::open(&path, 12, "app.py", "3.12").unwrap();
        second
            .append(&sample(2_500, 5), &[("app.Cart", 7, 70)])
            .unwrap();
        first
            .append(&sample(3_000, 30), &[("app.Order", 3, 168)])
            .unwrap();
        let followed = follower.refresh().unwrap().to_vec();
        let full = read(&path).unwrap();
        assert_eq!(followed.len(), 2);
        for (a, b) in followed.iter().zip(&full) {
            assert_eq!((a.pid, a.started_ms), (b.pid, b.started_ms));
            assert_eq!(a.history.len(), b.history.len());
            assert_eq!(counts(&a.history), counts(&b.history));
            assert_eq!(
                a.history.series("app.Cart").len(),
                b.history.series("app.Cart").len()
            );
        }
        assert_eq!(counts(&followed[0].history), [1, 2, 3]);
        // Nothing new: the same answer.
        assert_eq!(follower.refresh().unwrap()[0].history.len(), 3);
    }

    #[test]
    fn a_replaced_file_is_read_from_the_start() {
        let path = temp("replaced");
        let mut old = HistoryWriter::open(&path, 11, "app.py", "3.12").unwrap();
        for i in 0..3 {
            old.append(&sample(1_000 * (i + 1), 10), &[("app.Order", i + 1, 56)])
                .unwrap();
        }
        drop(old);
        let mut follower = Follower::new(&path);
        assert_eq!(follower.refresh().unwrap()[0].history.len(), 3);
        // Rotated: a new file of one process with one sample in its place.
        std::fs::remove_file(&path).unwrap();
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
        let mut new = HistoryWriter::open(&path, 42, "job.py", "3.12").unwrap();
        new.append(&sample(9_000, 1), &[("app.Order", 9, 56)])
            .unwrap();
        let processes = follower.refresh().unwrap();
        assert_eq!(processes.len(), 1);
        assert_eq!(processes[0].pid, 42);
        assert_eq!(counts(&processes[0].history), [9]);
    }
}
