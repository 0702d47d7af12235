//! WAL checkpoints off the command path (issue 21).
//!
//! SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages: it copies
//! the WAL into the database and fsyncs both (≈ 20 ms here) while the command holding the
//! database mutex waits. The command connection therefore has `wal_autocheckpoint = 0`, and this
//! thread checkpoints on a connection of its own: `PRAGMA wal_checkpoint(PASSIVE)`, which never
//! waits for (or blocks) the writer, so the command path's mutex is never held for a checkpoint.
//!
//! It runs when [`CHECKPOINT_EVERY`] commits were noted since the last one (the writer unparks
//! it, a cheap call made once per that many commits) and at least every [`CHECKPOINT_PERIOD`]
//! while anything was written (writes from components that do not note theirs included).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StateError;

/// Commits between two checkpoints under load (each commit appends ≈ 2–3 pages).
pub const CHECKPOINT_EVERY: u64 = 256;
/// Longest wait between checkpoints while something is written.
pub const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);

struct Shared {
    commits: AtomicU64,
    stop: AtomicBool,
    /// Checkpoints run, and WAL pages they copied into the database, in all.
    checkpoints: AtomicU64,
    pages_copied: AtomicU64,
}

/// The background checkpointer of one database file; stops (after a last checkpoint) when
/// dropped, that is when the last [`super::Db`] handle goes.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to `path` and starts the thread.
    pub fn start(path: &Path) -> Result<Checkpointer, StateError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let shared = Arc::new(Shared {
            commits: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            pages_copied: AtomicU64::new(0),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&conn, &state))
            .map_err(|e| StateError::Checkpointer(e.to_string()))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Checkpoints this thread ran, and the WAL pages they copied, so far.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.shared.checkpoints.load(Ordering::Relaxed),
            self.shared.pages_copied.load(Ordering::Relaxed),
        )
    }

    /// Counts one commit on the command connection; every [`CHECKPOINT_EVERY`]th wakes the
    /// thread. Costs an atomic increment otherwise.
    pub fn note_commit(&self) {
        let n = self.shared.commits.fetch_add(1, Ordering::Relaxed);
        if n.wrapping_add(1).is_multiple_of(CHECKPOINT_EVERY)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let mut done_at = 0;
    let mut seen_version = data_version(conn);
    loop {
        std::thread::park_timeout(CHECKPOINT_PERIOD);
        let stopping = shared.stop.load(Ordering::Relaxed);
        let commits = shared.commits.load(Ordering::Relaxed);
        // `data_version` changes when another connection (the command one) committed, so
        // writes that were not noted are checkpointed by the timer too.
        let version = data_version(conn);
        if commits != done_at || version != seen_version || stopping {
            done_at = commits;
            seen_version = version;
            // One row: (busy, pages in the WAL, pages copied into the database).
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(2)
            }) {
                Ok(copied) => {
                    shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                    let copied = u64::try_from(copied).unwrap_or_default();
                    shared.pages_copied.fetch_add(copied, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries"),
            }
        }
        if stopping {
            return;
        }
    }
}

fn data_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Db;
    use crate::state::audit::{AuditStart, Outcome};

    #[test]
    fn commits_are_checkpointed_by_the_thread_not_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let db = Db::open(&path).unwrap();
        let autocheckpoint: i64 = db
            .sqlite_conn()
            .unwrap()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            autocheckpoint, 0,
            "the command connection never checkpoints"
        );
        let options = serde_json::json!({});
        let total = CHECKPOINT_EVERY * 3;
        for i in 0..total {
            let id = format!("inv-{i}");
            let start = AuditStart {
                invocation_id: &id,
                surface: "terminal",
                channel: "terminal",
                user_id: "u",
                display_name: "U",
                command: "echo",
                options: &options,
                plugin: Some("echo"),
            };
            db.audit_start(&start, Outcome::Running).unwrap();
        }
        // Woken by the commit count (well before its 1 s timer would fire twice).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db.checkpoint_progress().map_or(0, |(_, pages)| pages) == 0 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(db);
        let probe = Connection::open(&path).unwrap();
        let rows: i64 = probe
            .query_row("SELECT count(*) FROM audit", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, total as i64);
    }

    #[test]
    fn in_memory_databases_have_no_checkpointer() {
        assert!(Db::in_memory().unwrap().checkpoint_progress().is_none());
    }
}
