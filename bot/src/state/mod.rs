//! The state database: the audit log, plugins' key-value state and every component's tables,
//! on one of two backends behind one interface ([`Db`], [`sql::Exec`]):
//!
//! - **SQLite** (the default, one file per replica): WAL mode with `synchronous = NORMAL`:
//!   every committed transaction is in the WAL file before `commit` returns, so a killed process
//!   (kill -9) loses nothing it acknowledged. Statements are prepared once and cached, and WAL
//!   checkpoints run on a thread and connection of their own ([`checkpoint`]), never inside a
//!   command (issue 21).
//! - **PostgreSQL** (`[state] url`, for replicas sharing one state; [`postgres`]).
//!
//! Both get the same migrations (SQLite's column types mapped to PostgreSQL's by
//! [`sql::postgres_types`]) and the same SQL from every component.

pub mod audit;
pub mod checkpoint;
#[cfg(test)]
mod conformance;
pub mod kv;
mod postgres;
pub mod sql;
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use deckhand_support::secret::Secret;
use rusqlite::Connection;
use serde::Deserialize;

use crate::args;
use sql::{Exec, Row, Value};

/// `[state]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite database file, created on first start (used when `url` is absent).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// PostgreSQL instead of the file: `postgres://user@host:port/db?sslmode=require`.
    /// `sslmode` is honoured (`disable`, `prefer` — the default: TLS when the server offers
    /// it —, `require`); the password goes in `password`, never in the URL.
    #[serde(default, deserialize_with = "optional_env_string")]
    pub url: Option<String>,
    /// The PostgreSQL password, as `${ENV_VAR}`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Extra CA certificates (PEM) trusted for PostgreSQL's TLS, besides the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_path() -> PathBuf {
    PathBuf::from("state/deckhand.db")
}

fn optional_env_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    deckhand_support::secret::env_string(d).map(Some)
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: default_path(),
            url: None,
            password: None,
            ca_file: None,
        }
    }
}

impl StateConfig {
    /// A password written into the URL would be logged with it: refused at load.
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "[state] url must be a postgres:// URL (got {:?}); leave it out for SQLite",
                url.split(':').next().unwrap_or("")
            ));
        }
        let authority = url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
        if userinfo.contains(':') || url.contains("password=") {
            return Err(
                "[state] url carries a password: write it as password = \"${ENV_VAR}\" \
                        instead, so it is never logged"
                    .to_owned(),
            );
        }
        Ok(())
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
    #[error("state database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "the state database {url} is unreachable ({detail}); nothing that needs it can run \
         until it is back"
    )]
    Unavailable { url: String, detail: String },
    #[error("state database: {0}")]
    Config(String),
    #[error("state database: column {column} is {found}, expected {expected}")]
    Decode {
        column: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("state database: unreadable stored value: {0}")]
    Stored(String),
    #[error("state database: column {column} has type {ty}, which Deckhand does not store")]
    UnsupportedType { column: usize, ty: String },
    #[error("state database: cannot start the WAL checkpoint thread: {0}")]
    Checkpointer(String),
    #[error("state database {path} has schema version {found}, newer than this build ({known})")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

impl StateError {
    /// The database cannot be reached (as opposed to a statement it refused).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StateError::Unavailable { .. })
    }
}

/// Which backend a [`Db`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
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
    // 3: which replica ran each command, so a restarting replica closes only its own open
    // rows on a shared (PostgreSQL) database.
    "ALTER TABLE audit ADD COLUMN replica TEXT NOT NULL DEFAULT '';",
    // 4: destructive commands waiting for their confirmation (see `router::confirm`), shared
    // by replicas; a restart keeps the audit rows of those still live open. (IF NOT EXISTS:
    // one intermediate build made it as a component table.)
    "CREATE TABLE IF NOT EXISTS confirmations (
        code TEXT PRIMARY KEY,
        invocation_id TEXT NOT NULL,
        invocation TEXT NOT NULL,
        permission TEXT NOT NULL,
        approver_roles TEXT,
        expires_at TEXT NOT NULL,
        expired INTEGER NOT NULL DEFAULT 0
    );",
    // 5: when each replica on a shared database was last heard from, so the others close the
    // open rows of one that is gone (see `Db::replica_heartbeat`).
    "CREATE TABLE replicas (
        name TEXT PRIMARY KEY,
        seen_at TEXT NOT NULL
    );",
];

/// A part of the bot with tables of its own: its name in `schema_versions` and its
/// append-only migrations. Each declares one constant; `deckhand state migrate` lists them.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub name: &'static str,
    pub migrations: &'static [&'static str],
}

/// This process's name among replicas sharing a database: `DECKHAND_REPLICA`, else the pod's
/// `HOSTNAME`, else `local`.
pub fn replica_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        ["DECKHAND_REPLICA", "HOSTNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "local".to_owned())
    })
}

/// Prepared statements kept per connection: the command path's and the components' own.
const STATEMENT_CACHE: usize = 64;

/// Serialises migrations of two replicas starting at once on PostgreSQL.
const MIGRATION_LOCK: i64 = 0x6465_636b_6861_6e64; // "deckhand"

enum Inner {
    Sqlite {
        conn: Mutex<Connection>,
        /// The file (absent in memory), for readiness checks.
        path: Option<PathBuf>,
        /// Present for a database file (WAL); stops when the last handle is dropped.
        checkpointer: Option<checkpoint::Checkpointer>,
    },
    Postgres(Box<postgres::Postgres>),
}

/// A handle to the state database, cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl Db {
    /// Opens (creating if needed) the SQLite database file and brings its schema up to date.
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
        migrate_sqlite(&conn, &shown)?;
        // Checkpoints belong to the checkpointer's connection, never to a command's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        Ok(Db {
            inner: Arc::new(Inner::Sqlite {
                conn: Mutex::new(conn),
                path: Some(path.to_owned()),
                checkpointer: Some(checkpointer),
            }),
        })
    }

    /// Connects to PostgreSQL and brings its schema up to date (under an advisory lock, so
    /// replicas starting together migrate once).
    pub fn connect_postgres(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Db, StateError> {
        let db = Db::inspect_postgres(url, password, ca_file)?;
        db.migrate_postgres()?;
        Ok(db)
    }

    /// Connects to PostgreSQL without migrating anything (for `deckhand check`).
    pub fn inspect_postgres(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Db, StateError> {
        let pg = postgres::Postgres::connect(url, password, ca_file)?;
        Ok(Db {
            inner: Arc::new(Inner::Postgres(Box::new(pg))),
        })
    }

    /// The database `[state]` names: PostgreSQL when `url` is set, else the SQLite file
    /// (`resolve` turns a relative path into one beside the config file).
    pub fn open_config(
        config: &StateConfig,
        resolve: impl Fn(&Path) -> PathBuf,
    ) -> Result<Db, StateError> {
        config.validate().map_err(StateError::Config)?;
        match &config.url {
            Some(url) => Db::connect_postgres(
                url,
                config.password.as_ref().map(Secret::expose),
                config.ca_file.as_deref().map(&resolve).as_deref(),
            ),
            None => Db::open(&resolve(&config.path)),
        }
    }

    /// Opens the database the way the bot starts: [`Db::open_config`], then closes the audit
    /// rows a previous process left open as `interrupted` (see
    /// [`Db::audit_close_interrupted`]); on a shared database, after this replica's first
    /// [`Db::replica_heartbeat`].
    pub fn open_at_start(
        config: &StateConfig,
        resolve: impl Fn(&Path) -> PathBuf,
    ) -> Result<Db, StateError> {
        let db = Db::open_config(config, resolve)?;
        if db.backend() == Backend::Postgres {
            // Heard from before any command runs, so rows it leaves open if killed get closed.
            db.replica_heartbeat(audit::REPLICA_GONE_AFTER)?;
        }
        let closed = db.audit_close_interrupted()?;
        if closed > 0 {
            tracing::warn!(
                state = %db.describe(),
                closed,
                "audit rows left open by a previous process closed as interrupted"
            );
        }
        Ok(db)
    }

    /// [`Db::open_at_start`] for a SQLite file.
    pub fn open_file_at_start(path: &Path) -> Result<Db, StateError> {
        let config = StateConfig {
            path: path.to_owned(),
            ..StateConfig::default()
        };
        Db::open_at_start(&config, Path::to_path_buf)
    }

    /// An in-memory database, for benchmarks and unit tests.
    pub fn in_memory() -> Result<Db, StateError> {
        let conn = Connection::open_in_memory()?;
        migrate_sqlite(&conn, ":memory:")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Db {
            inner: Arc::new(Inner::Sqlite {
                conn: Mutex::new(conn),
                path: None,
                checkpointer: None,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite { .. } => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The file path or the PostgreSQL URL without its password, for messages.
    pub fn describe(&self) -> String {
        match &*self.inner {
            Inner::Sqlite { path: Some(p), .. } => p.display().to_string(),
            Inner::Sqlite { path: None, .. } => ":memory:".to_owned(),
            Inner::Postgres(pg) => pg.shown().to_owned(),
        }
    }

    /// Runs `f` with the statement runner, outside a transaction (each statement commits).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut dyn Exec) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        match &*self.inner {
            Inner::Sqlite {
                conn, checkpointer, ..
            } => on_sqlite(conn, checkpointer, |conn| {
                f(&mut sqlite::SqliteExec { conn })
            }),
            Inner::Postgres(pg) => pg.run(f),
        }
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn transaction<R>(
        &self,
        f: impl FnOnce(&mut dyn Exec) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        match &*self.inner {
            Inner::Sqlite {
                conn, checkpointer, ..
            } => on_sqlite(conn, checkpointer, |conn| {
                let tx = conn.unchecked_transaction()?;
                let value = f(&mut sqlite::SqliteExec { conn: &tx })?;
                tx.commit()?;
                Ok(value)
            }),
            Inner::Postgres(pg) => pg.transaction(f),
        }
    }

    /// Runs one statement in its own transaction; returns the rows it changed.
    pub fn execute(&self, sql: &str, args: &[Value]) -> Result<usize, StateError> {
        self.with(|db| db.execute(sql, args))
    }

    /// Runs one query; returns its rows.
    pub fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StateError> {
        self.with(|db| db.query(sql, args))
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, args: &[Value]) -> Result<Option<Row>, StateError> {
        self.with(|db| db.query_opt(sql, args))
    }

    /// Checkpoints run in the background and WAL pages they copied (none for in-memory or
    /// PostgreSQL).
    pub fn checkpoint_progress(&self) -> Option<(u64, u64)> {
        match &*self.inner {
            Inner::Sqlite {
                checkpointer: Some(c),
                ..
            } => Some(c.progress()),
            _ => None,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, tests); `None` on PostgreSQL.
    pub fn sqlite_conn(&self) -> Option<MutexGuard<'_, Connection>> {
        match &*self.inner {
            Inner::Sqlite { conn, .. } => Some(lock(conn)),
            Inner::Postgres(_) => None,
        }
    }

    /// Whether the database can take a write now, with a short reason either way.
    pub fn health(&self) -> Result<String, String> {
        match &*self.inner {
            Inner::Sqlite {
                conn,
                path: Some(path),
                ..
            } => {
                let shown = path.display();
                match std::fs::metadata(path) {
                    Ok(meta) if meta.permissions().readonly() => {
                        return Err(format!("state file {shown} is read-only"));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("state file {shown}: {e}")),
                }
                // An open connection keeps writing to a deleted file's inode, which the next
                // start would not find: the file must be there and take a write lock.
                match lock(conn).execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
                    Ok(()) => Ok(format!("{shown} writable")),
                    Err(e) => Err(format!("state database {shown}: {e}")),
                }
            }
            Inner::Sqlite { path: None, .. } => Ok(":memory:".to_owned()),
            Inner::Postgres(pg) => match self.query("SELECT 1", &[]) {
                Ok(_) => Ok(format!("{} reachable", pg.shown())),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// Core migrations applied (SQLite's `user_version`, PostgreSQL's `deckhand_schema`).
    pub fn schema_version(&self) -> Result<i64, StateError> {
        match &*self.inner {
            Inner::Sqlite { conn, .. } => {
                Ok(lock(conn).query_row("PRAGMA user_version", [], |row| row.get(0))?)
            }
            Inner::Postgres(_) => {
                let exists = self.query_opt(
                    "SELECT 1 FROM information_schema.tables WHERE table_name = 'deckhand_schema'",
                    &[],
                )?;
                if exists.is_none() {
                    return Ok(0);
                }
                self.query_opt("SELECT version FROM deckhand_schema", &[])?
                    .map_or(Ok(0), |row| row.get(0))
            }
        }
    }

    /// Core migrations this build knows.
    pub fn known_schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    fn migrate_postgres(&self) -> Result<(), StateError> {
        let shown = self.describe();
        self.transaction(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock(?1)",
                &[Value::Int(MIGRATION_LOCK)],
            )?;
            tx.batch("CREATE TABLE IF NOT EXISTS deckhand_schema (version BIGINT NOT NULL)")?;
            let found = match tx.query_opt("SELECT version FROM deckhand_schema", &[])? {
                Some(row) => row.get::<i64>(0)?,
                None => {
                    tx.execute("INSERT INTO deckhand_schema (version) VALUES (0)", &[])?;
                    0
                }
            };
            let known = MIGRATIONS.len() as i64;
            if found > known {
                return Err(StateError::TooNew {
                    path: shown.clone(),
                    found,
                    known,
                });
            }
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                tx.batch(&sql::postgres_types(sql))?;
                tx.execute(
                    "UPDATE deckhand_schema SET version = ?1",
                    &[Value::Int(index as i64 + 1)],
                )?;
            }
            Ok(())
        })
    }

    /// [`Db::ensure_schema`] for a [`Component`].
    pub fn ensure(&self, component: &Component) -> Result<(), StateError> {
        self.ensure_schema(component.name, component.migrations)
    }

    /// Brings a component's own tables up to date (schedules, alerts, ...). Each component
    /// owns an append-only list of migrations; versions are tracked per component, so
    /// components evolve independently of each other and of the core schema.
    pub fn ensure_schema(&self, component: &str, migrations: &[&str]) -> Result<(), StateError> {
        let backend = self.backend();
        self.transaction(|tx| {
            if backend == Backend::Postgres {
                tx.execute(
                    "SELECT pg_advisory_xact_lock(?1)",
                    &[Value::Int(MIGRATION_LOCK)],
                )?;
            }
            let found: i64 = tx
                .query_opt(
                    "SELECT version FROM schema_versions WHERE component = ?1",
                    args![component],
                )?
                .map_or(Ok(0), |row| row.get(0))?;
            let known = migrations.len() as i64;
            if found > known {
                return Err(StateError::TooNew {
                    path: format!("component {component}"),
                    found,
                    known,
                });
            }
            for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
                match backend {
                    Backend::Sqlite => tx.batch(sql)?,
                    Backend::Postgres => tx.batch(&sql::postgres_types(sql))?,
                }
                tx.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)
                     ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    args![component, index as i64 + 1],
                )?;
            }
            Ok(())
        })
    }

    /// Each component's schema version, by name (none before the core schema exists).
    pub fn component_versions(&self) -> Result<Vec<(String, i64)>, StateError> {
        if self.schema_version()? < 2 {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT component, version FROM schema_versions ORDER BY component",
            &[],
        )?
        .iter()
        .map(|row| Ok((row.get(0)?, row.get(1)?)))
        .collect()
    }
}

/// Runs `f` on the locked SQLite connection, then counts the commit for the checkpointer's
/// schedule (after the lock is released).
fn on_sqlite<R>(
    conn: &Mutex<Connection>,
    checkpointer: &Option<checkpoint::Checkpointer>,
    f: impl FnOnce(&Connection) -> Result<R, StateError>,
) -> Result<R, StateError> {
    let result = f(&lock(conn));
    if let Some(checkpointer) = checkpointer {
        checkpointer.note_commit();
    }
    result
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent; keep going.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

fn migrate_sqlite(conn: &Connection, path: &str) -> Result<(), StateError> {
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

/// `t` as RFC 3339 with milliseconds in UTC, the format stored in every table (so text order
/// is time order on both backends).
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The current time as a [`timestamp`].
pub fn now() -> String {
    timestamp(chrono::Utc::now())
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
        db.sqlite_conn()
            .unwrap()
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
        let err = Db::open_file_at_start(&path).err().unwrap().to_string();
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
        let db = Db::open_file_at_start(&path).unwrap();
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
        let db = Db::open_file_at_start(&path).unwrap();
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
