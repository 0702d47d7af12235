//! Test support: the same test on both backends (an in-memory SQLite database and a fresh
//! database on a real PostgreSQL server started for the test process).

use std::sync::Arc;

use deckhand_postgres_server::PgServer;

use super::Db;

/// A database for one test; holds the PostgreSQL server while the test runs.
pub(crate) struct TestDb {
    pub db: Db,
    _server: Option<Arc<PgServer>>,
}

/// A fresh database on the shared test server (a missing PostgreSQL fails the test, saying
/// what to install, as the other real-server tests do).
pub(crate) fn postgres() -> TestDb {
    let server = deckhand_postgres_server::shared();
    let url = server.fresh_database();
    let db = Db::connect_postgres(&url, None, None).expect("connect to the test database");
    TestDb {
        db,
        _server: Some(server),
    }
}

/// SQLite in memory, then PostgreSQL.
pub(crate) fn backends() -> Vec<TestDb> {
    let sqlite = TestDb {
        db: Db::in_memory().expect("in-memory SQLite"),
        _server: None,
    };
    vec![sqlite, postgres()]
}

/// Runs `test` on each backend, naming the backend when it fails.
pub(crate) fn on_each_backend(test: impl Fn(&Db)) {
    for t in backends() {
        let backend = t.db.backend();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&t.db)));
        if let Err(panic) = result {
            eprintln!("failed on {backend:?}");
            std::panic::resume_unwind(panic);
        }
    }
}
