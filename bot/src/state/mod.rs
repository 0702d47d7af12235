//! The state database: one SQLite file holding the audit log and plugins' key-value state.
//!
//! WAL mode with `synchronous = NORMAL`: every committed transaction is in the WAL file before
//! `commit` returns, so a killed process (kill -9) loses nothing it acknowledged. (A power cut
//! could lose the last transactions; `synchronous = FULL` would cover that at an fsync per
//! command.)

pub mod audit;
pub mod kv;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

/// A handle to the state database, cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
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
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&conn, &path.display().to_string())?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// An in-memory database, for benchmarks and unit tests.
    pub fn in_memory() -> Result<Db, StateError> {
        let conn = Connection::open_in_memory()?;
        migrate(&conn, ":memory:")?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
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
