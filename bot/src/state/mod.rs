//! The state database: one SQLite file holding the audit log and plugins' key-value state.
//!
//! WAL mode with `synchronous = NORMAL`: every committed transaction is in the WAL file before
//! `commit` returns, so a killed process (kill -9) loses nothing it acknowledged. (A power cut
//! could lose the last transactions; `synchronous = FULL` would cover that at an fsync per
//! command.)
//!
//! Speed (issue 21): statements on the command path are prepared once and cached
//! (`prepare_cached`), and WAL checkpoints run on a thread and connection of their own
//! ([`checkpoint`]), never inside a command.

pub mod audit;
pub mod checkpoint;
pub mod kv;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;

/// `[state]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite database file, created on first start.
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from("state/deckhand.db"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "state database {path} is corrupt ({detail}): move it aside and restart to begin a \
         fresh one, or restore a backup"
    )]
    Corrupt { path: String, detail: String },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state database: cannot start the WAL checkpoint thread: {0}")]
    Checkpointer(String),
    #[error("state database {path} has schema version {found}, newer than this build ({known})")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

/// Schema migrations, applied in order; the database's `user_version` counts those applied.
/// Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: audit log, service calls, plugin key-value state.
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        invocation_id TEXT NOT NULL UNIQUE,
        surface TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        command TEXT NOT NULL,
        options TEXT NOT NULL,
        plugin TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT NOT NULL,
        error TEXT
    );
    CREATE TABLE service_calls (
        id INTEGER PRIMARY KEY,
        invocation_id TEXT,
        plugin TEXT NOT NULL,
        service TEXT NOT NULL,
        target TEXT NOT NULL,
        allowed INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL
    );
    CREATE INDEX service_calls_invocation ON service_calls(invocation_id);
    CREATE TABLE kv (
        plugin TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (plugin, key)
    );",
    // 2: per-component schema versions (see `Db::ensure_schema`).
    "CREATE TABLE schema_versions (
        component TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );",
];

/// Prepared statements kept per connection: the command path's and the components' own.
const STATEMENT_CACHE: usize = 64;

/// A handle to the state database, cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// Present for a database file (WAL); stops when the last handle is dropped.
    checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

impl Db {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let shown = path.display().to_string();
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            tracing::warn!(path = %shown, "state database is an empty file; initialising it");
            eprintln!("warning: state database {shown} is an empty file; initialising it");
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        check_integrity(&conn, &shown)?;
        let corrupt = |e| corrupt_or(e, &shown);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(corrupt)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(corrupt)?;
        migrate(&conn, &shown)?;
        // Checkpoints belong to the checkpointer's connection, never to a command's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            checkpointer: Some(Arc::new(checkpointer)),
        })
    }

    /// Opens the database the way the bot starts: [`Db::open`], then closes the audit rows a
    /// previous process left open as `interrupted` (see [`Db::audit_close_interrupted`]).
    pub fn open_at_start(path: &Path) -> Result<Db, StateError> {
        let db = Db::open(path)?;
        let closed = db.audit_close_interrupted()?;
        if closed > 0 {
            tracing::warn!(
                path = %path.display(),
                closed,
                "audit rows left open by a previous process closed as interrupted"
            );
        }
        Ok(db)
    }

    /// An in-memory database, for benchmarks and unit tests.
    pub fn in_memory() -> Result<Db, StateError> {
        let conn = Connection::open_in_memory()?;
        migrate(&conn, ":memory:")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            checkpointer: None,
        })
    }

    /// Counts a commit made on the command connection, for the checkpointer's schedule.
    fn committed(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.note_commit();
        }
    }

    /// Runs one write on the command connection with a cached prepared statement (parsed once
    /// per connection, not per command), in its own autocommit transaction. Returns the rows
    /// changed and the last inserted row id.
    pub(crate) fn write(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(usize, i64), StateError> {
        let conn = self.conn();
        let changed = conn.prepare_cached(sql)?.execute(params)?;
        let id = conn.last_insert_rowid();
        drop(conn);
        self.committed();
        Ok((changed, id))
    }

    /// Checkpoints run in the background and WAL pages they copied (none for in-memory).
    pub fn checkpoint_progress(&self) -> Option<(u64, u64)> {
        self.checkpointer.as_ref().map(|c| c.progress())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent; keep going.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn schema_version(&self) -> Result<i64, StateError> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// Brings a component's own tables up to date (schedules, alerts, ...). Each component
    /// owns an append-only list of migrations; versions are tracked per component, so
    /// components evolve independently of each other and of the core schema.
    pub fn ensure_schema(&self, component: &str, migrations: &[&str]) -> Result<(), StateError> {
        let conn = self.conn();
        let found: i64 = conn
            .query_row(
                "SELECT version FROM schema_versions WHERE component = ?1",
                [component],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let known = migrations.len() as i64;
        if found > known {
            return Err(StateError::TooNew {
                path: format!("component {component}"),
                found,
                known,
            });
        }
        for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                rusqlite::params![component, index as i64 + 1],
            )?;
            tx.commit()?;
        }
        Ok(())
    }
}

/// `PRAGMA quick_check` must answer a single `ok`; anything else, or SQLite finding the file is
/// not a database at all, is [`StateError::Corrupt`].
fn check_integrity(conn: &Connection, path: &str) -> Result<(), StateError> {
    let rows: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| corrupt_or(e, path))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| corrupt_or(e, path))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| corrupt_or(e, path))?
    };
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    let mut detail: Vec<&str> = rows.iter().take(3).map(String::as_str).collect();
    if detail.is_empty() {
        detail.push("quick_check returned nothing");
    }
    Err(StateError::Corrupt {
        path: path.to_owned(),
        detail: detail.join("; "),
    })
}

/// SQLite's "not a database" and "malformed" errors become [`StateError::Corrupt`]; others
/// (locked, permissions, ...) stay as they are.
fn corrupt_or(error: rusqlite::Error, path: &str) -> StateError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StateError::Corrupt {
                path: path.to_owned(),
                detail: error.to_string(),
            }
        }
        _ => StateError::Sqlite(error),
    }
}

fn migrate(conn: &Connection, path: &str) -> Result<(), StateError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Current time as RFC 3339 with milliseconds, the format stored in every table.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reopens_at_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.db");
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn component_schemas_apply_once_and_in_order() {
        let db = Db::in_memory().unwrap();
        let v1 = ["CREATE TABLE t (a INTEGER)"];
        db.ensure_schema("demo", &v1).unwrap();
        db.ensure_schema("demo", &v1).unwrap();
        let v2 = [
            "CREATE TABLE t (a INTEGER)",
            "ALTER TABLE t ADD COLUMN b TEXT",
        ];
        db.ensure_schema("demo", &v2).unwrap();
        db.conn()
            .execute("INSERT INTO t (a, b) VALUES (1, 'x')", [])
            .unwrap();
        let err = db.ensure_schema("demo", &v1).unwrap_err().to_string();
        assert!(err.contains("component demo has schema version 2"), "{err}");
    }

    #[test]
    fn garbage_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0xAB_u8; 8192]).unwrap();
        let err = Db::open(&path).err().unwrap();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("is corrupt"), "{text}");
        assert!(text.contains("move it aside and restart"), "{text}");
        let err = Db::open_at_start(&path).err().unwrap().to_string();
        assert!(err.contains("is corrupt"), "{err}");
    }

    #[test]
    fn damaged_pages_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (a TEXT); CREATE INDEX t_a ON t(a);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT printf('%0100d', i) FROM n;",
            )
            .unwrap();
        }
        // Keep the header (page 1) intact, smash the pages after it.
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 16384, "{}", bytes.len());
        for b in &mut bytes[8192..16384] {
            *b = 0xAB;
        }
        std::fs::write(&path, bytes).unwrap();
        let err = Db::open(&path).err().unwrap().to_string();
        assert!(err.contains("is corrupt"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn empty_file_is_initialised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"").unwrap();
        let db = Db::open_at_start(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn open_rows_are_closed_as_interrupted_at_start() {
        use crate::state::audit::{AuditStart, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let options = serde_json::json!({});
        {
            let db = Db::open(&path).unwrap();
            for (id, outcome) in [
                ("inv-run", Outcome::Running),
                ("inv-confirm", Outcome::AwaitingConfirmation),
                ("inv-ok", Outcome::Running),
            ] {
                let start = AuditStart {
                    invocation_id: id,
                    surface: "terminal",
                    channel: "terminal",
                    user_id: "u1",
                    display_name: "User One",
                    command: "aks scale",
                    options: &options,
                    plugin: Some("aks"),
                };
                db.audit_start(&start, outcome).unwrap();
            }
            db.audit_finish("inv-ok", Outcome::Ok, None).unwrap();
        }
        let db = Db::open_at_start(&path).unwrap();
        let rows = db.audit_recent(10).unwrap();
        let by_id = |id: &str| rows.iter().find(|r| r.invocation_id == id).unwrap();
        for id in ["inv-run", "inv-confirm"] {
            let row = by_id(id);
            assert_eq!(row.outcome, "interrupted", "{id}");
            assert!(row.ended_at.is_some(), "{id}");
            assert!(row.error.as_deref().unwrap().contains("stopped"), "{id}");
        }
        assert_eq!(by_id("inv-ok").outcome, "ok");
        assert!(by_id("inv-ok").error.is_none());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Db::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
