//! `/readyz`: the three things a replica needs before it should get traffic or count as
//! available: its plugins loaded, its chat surface connected, its state database reachable.

use std::sync::Arc;

use serde::Serialize;

use crate::host::PluginHost;
use crate::state::Db;

/// What readiness is checked against; built once at start.
pub struct Readiness {
    pub host: Arc<PluginHost>,
    /// Plugins that failed to load at start (`App::load_errors`), as text.
    pub load_errors: Vec<String>,
    pub db: Db,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    pub plugins: Check,
    pub chat: Check,
    pub state: Check,
}

fn check(ok: bool, detail: String) -> Check {
    Check { ok, detail }
}

impl Readiness {
    pub fn report(&self) -> Report {
        let plugins = self.plugins();
        let chat = if crate::metrics::is_chat_connected() {
            check(true, "connected".into())
        } else {
            check(false, "the chat surface is not connected".into())
        };
        let state = self.state();
        Report {
            ready: plugins.ok && chat.ok && state.ok,
            plugins,
            chat,
            state,
        }
    }

    fn plugins(&self) -> Check {
        let loaded = self.host.registry().plugins.len();
        if !self.load_errors.is_empty() {
            return check(
                false,
                format!(
                    "{loaded} loaded, {} failed: {}",
                    self.load_errors.len(),
                    self.load_errors.join("; ")
                ),
            );
        }
        if loaded == 0 {
            return check(false, "no plugin is loaded".into());
        }
        check(true, format!("{loaded} loaded"))
    }

    /// SQLite: the file is still there (an open connection keeps writing to a deleted file's
    /// inode, which the next start would not find) and takes a write lock; PostgreSQL: the
    /// server answers.
    fn state(&self) -> Check {
        match self.db.health() {
            Ok(detail) => check(true, detail),
            Err(detail) => check(false, detail),
        }
    }
}
