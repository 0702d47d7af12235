//! Wiring: config → state → services → plugin host → router. Shared by every subcommand and by
//! the tests, so they run exactly what the binary runs.

mod channels;
mod components;
mod ops;
pub mod state_admin;

use std::sync::Arc;

use crate::config::Config;
use crate::host::services::Services;
use crate::host::{HostError, PluginHost};
use crate::router::Router;
use crate::state::audit::{HEARTBEAT_EVERY, REPLICA_GONE_AFTER};
use crate::state::{Backend, Db, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Cloud(#[from] crate::cloud::arm::ArmError),
}

pub struct App {
    pub config: Config,
    pub db: Db,
    pub host: Arc<PluginHost>,
    pub router: Arc<Router>,
    /// Plugins that failed to load; the others are running.
    pub load_errors: Vec<HostError>,
    /// On a shared (PostgreSQL) state: says this replica is alive and closes the rows of
    /// replicas that are gone; stopped with the app.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Opens the state database and loads the configured plugins. Must run inside a tokio
    /// runtime.
    pub fn start(config: Config) -> Result<App, AppError> {
        // Closes audit rows a previous process left open as `interrupted`.
        let db = Db::open_at_start(&config.state, |p| config.resolve(p))?;
        let cloud = crate::cloud::Cloud::new(config.cloud_sections())?;
        let services = Services::new(config.services_config(), db.clone(), cloud);
        let host = Arc::new(PluginHost::new(
            services,
            config.plugin_sections(),
            crate::router::builtins::RESERVED_COMMANDS,
        )?);
        let load_errors = host.load_configured()?;
        let router = Arc::new(Router::new(
            host.clone(),
            db.clone(),
            config.router_options(),
        ));
        let heartbeat = (db.backend() == Backend::Postgres).then(|| spawn_heartbeat(db.clone()));
        Ok(App {
            config,
            db,
            host,
            router,
            load_errors,
            heartbeat,
        })
    }
}

impl Drop for App {
    /// Breaks the router ↔ built-in group cycle (schedules, alerts), so that once the other
    /// holders are gone the plugin host is dropped and removes its folder of plugin copies.
    fn drop(&mut self) {
        self.router.clear_builtins();
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

/// Every [`HEARTBEAT_EVERY`]: [`Db::replica_heartbeat`], on the blocking pool (a database call
/// blocks). The first beat is [`Db::open_at_start`]'s, so this one waits a period first. A
/// failed beat (database unreachable) is logged and retried at the next tick.
fn spawn_heartbeat(db: Db) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + HEARTBEAT_EVERY;
        let mut every = tokio::time::interval_at(first, HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let db = db.clone();
            let beat =
                tokio::task::spawn_blocking(move || db.replica_heartbeat(REPLICA_GONE_AFTER)).await;
            if let Ok(Err(error)) = beat {
                tracing::warn!(error = %error, "replica heartbeat not written");
            }
        }
    })
}
