//! Alerts and notifications: sources → silences/acks → routes → storm control → sinks.
//!
//! * Sources ([`sources`]): the Alertmanager webhook and the Azure Monitor common-schema webhook
//!   on the HTTP receiver ([`http::router`]), Kubernetes events per configured cluster, and
//!   plugin notifications. Each becomes an [`Alert`].
//! * [`route`] picks team channels and/or webhooks (first match, or `continue`); an alert no
//!   rule takes goes to the default channel, never dropped.
//! * [`storm`] groups, deduplicates, rate-limits (Discord: 5 messages / 5 s per channel, plus a
//!   global limit) and folds the overflow into digests that count everything they fold. It is a
//!   pure state machine; the driver task here only feeds it and sleeps until its next deadline.
//! * [`sinks`] post through the chat [`crate::chat::Outbox`] or outbound webhooks.
//! * [`commands`]: `/alerts list|ack|silence`.
//!
//! It must not block the HTTP receiver on chat I/O: the receiver only parses and enqueues (a
//! full queue answers 503 so the sender retries), and every stage counts what it drops.

pub mod alert;
mod check;
mod claims;
pub mod commands;
pub mod config;
pub mod http;
pub mod metrics;
mod pipeline;
pub mod route;
pub mod silence;
mod silence_sync;
pub mod sinks;
pub mod sources;
mod state;
pub(crate) mod store;
pub mod storm;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

pub use alert::{Alert, Severity, Source, Status};
pub use check::{channels, check, warnings};
pub use config::{AlertmanagerApi, AlertsConfig, ReceiverAuth};
use metrics::{AlertMetrics, DropStage};
use route::{RouteError, Routes};
use silence::MatcherError;
use sinks::webhook::WebhookSink;
pub use state::{AlertsState, QueueFull, Record};
use storm::Storm;

use crate::chat::Outbox;
use crate::host::services::PluginNotification;
use crate::state::{Db, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("[alerts] routes: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Routes(Vec<RouteError>),
    #[error("[alerts] cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Matchers(#[from] MatcherError),
    #[error("no active alert has id {0}; /alerts list shows them")]
    UnknownAlert(String),
    #[error(
        "{id} names several active alerts: {candidates}; use the long id (the Ack button does)"
    )]
    AmbiguousAlert { id: String, candidates: String },
    #[error("no active silence has id {0}; /alerts list shows them")]
    UnknownSilence(String),
    #[error("Alertmanager silence not created: {0}")]
    Alertmanager(String),
    #[error("alerts state: {0}")]
    State(#[from] StateError),
}

/// The running alert pipeline. Dropping it stops the receiver, watchers and driver.
pub struct AlertsHandle {
    pub state: Arc<AlertsState>,
    /// Where the receiver listens (with the real port when `listen` asked for port 0).
    pub local_addr: Option<SocketAddr>,
    /// Sources that could not start (e.g. an unreadable kubeconfig); the others run.
    pub problems: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for AlertsHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl AlertsHandle {
    /// `/alerts list|ack|silence`, to register with [`crate::router::Router::add_builtins`].
    pub fn commands(&self) -> Arc<commands::AlertsCommands> {
        Arc::new(commands::AlertsCommands::new(self.state.clone()))
    }
}

/// Inputs of [`start`] besides the config.
pub struct StartOptions {
    /// Directory relative kubeconfig paths resolve against.
    pub base_dir: PathBuf,
    /// Plugin notifications (from `host.services().subscribe_notifications()`).
    pub notifications: Option<broadcast::Receiver<PluginNotification>>,
    pub outbox: Arc<dyn Outbox>,
    /// Where silences are kept across restarts (none: in memory only).
    pub db: Option<Db>,
    /// `[[kubernetes.clusters]]` clients, for `[[alerts.kubernetes]]` entries without a
    /// kubeconfig of their own.
    pub clusters: Option<Arc<crate::host::services::Services>>,
}

/// Builds everything, reports all route errors together, then starts the driver, the
/// receiver (when `listen` is set), the Kubernetes watchers and the plugin listener.
pub async fn start(
    config: AlertsConfig,
    options: StartOptions,
) -> Result<AlertsHandle, AlertsError> {
    let hooks: BTreeSet<String> = config.webhooks.keys().cloned().collect();
    let routes = Routes::new(&config.routes, &config.default_channel, &hooks)
        .map_err(AlertsError::Routes)?;
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let mut book = state::Book::default();
    if let Some(db) = &options.db {
        db.ensure(&store::COMPONENT)?;
        (book.silences, book.next_silence) = store::load_silences(db)?;
        book.acks = store::load_acks(db)?;
    }
    let state = Arc::new(AlertsState {
        metrics: AlertMetrics::default(),
        tx,
        claims: claims::Claims::shared(options.db.as_ref(), &config.storm),
        db: options.db.clone(),
        book: Mutex::new(book),
        stats: Mutex::default(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        config,
    });
    let mut tasks = Vec::new();
    let mut problems = Vec::new();
    let webhooks = WebhookSink::new(state.config.webhooks.clone(), Duration::from_secs(10));
    let storm = Storm::new(state.config.storm.clone());
    tasks.push(tokio::spawn(pipeline::drive(
        state.clone(),
        rx,
        routes,
        storm,
        options.outbox,
        webhooks,
    )));

    let mut local_addr = None;
    if let Some(addr) = state.config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AlertsError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| AlertsError::Listen { addr, source })?;
        if let Some(warning) = check::exposed_receiver(&state.config) {
            tracing::warn!(%bound, "{warning}");
        }
        local_addr = Some(bound);
        let app = http::router(state.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "alert receiver stopped");
            }
        }));
        tracing::info!(%bound, "alert receiver listening");
    }

    if state.config.plugin_notifications
        && let Some(mut rx) = options.notifications
    {
        let s = state.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(n) => {
                        let _ = s.submit(vec![sources::plugin::to_alert(&n)]);
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "plugin notifications lost: the alert listener fell behind"
                        );
                        s.metrics.dropped(DropStage::QueueFull, missed);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }));
    }

    for cluster in state.config.kubernetes.clone() {
        let client =
            match (&cluster.kubeconfig, &options.clusters) {
                (Some(kubeconfig), _) => {
                    let path = crate::config_support::resolve(&options.base_dir, kubeconfig);
                    sources::kube_events::client(&cluster, &path).await
                }
                (None, Some(services)) => services
                    .cloud()
                    .kube
                    .client(&cluster.name)
                    .await
                    .map_err(|e| sources::kube_events::KubeSourceError::Cluster {
                        cluster: cluster.name.clone(),
                        message: e.to_string(),
                    }),
                (None, None) => Err(sources::kube_events::KubeSourceError::Cluster {
                    cluster: cluster.name.clone(),
                    message: "no kubeconfig given and no [[kubernetes.clusters]] available".into(),
                }),
            };
        match client {
            Ok(client) => {
                let s = state.clone();
                let sink: sources::kube_events::Sink = Arc::new(move |alerts| {
                    let _ = s.submit(alerts);
                });
                tasks.extend(sources::kube_events::watch(&cluster, client, sink));
            }
            Err(e) => {
                tracing::error!(error = %e, "Kubernetes event source not started");
                problems.push(e.to_string());
            }
        }
    }

    Ok(AlertsHandle {
        state,
        local_addr,
        problems,
        tasks,
    })
}

/// The example in `config/alerts.toml` parses (kept in sync by a test).
pub const EXAMPLE_CONFIG: &str = include_str!("../../../config/alerts.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_every_problem() {
        let text = r#"
[alerts]
default_channel = " "
[alerts.alertmanager]
url = "not a url"
[alerts.webhooks.slack]
kind = "slack"
url = "nope"
[[alerts.routes]]
webhooks = ["teams"]
[[alerts.kubernetes]]
name = "missing-file"
kubeconfig = "does-not-exist.yaml"
[[alerts.kubernetes]]
name = "unknown-cluster"
"#;
        let config = crate::config::Config::parse(
            text,
            std::path::Path::new("deckhand.toml"),
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        let problems = check(config.alerts.as_ref(), &config.base_dir, &config.kubernetes);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("unknown webhook \"teams\""))
        );
        assert!(problems.iter().any(|p| p.contains("does-not-exist.yaml")));
        assert!(problems.iter().any(|p| p.contains("unknown-cluster")));
        assert!(
            !problems.iter().any(|p| p.contains("nope")),
            "webhook URLs are secrets"
        );
    }

    /// `config/alerts.toml` is a valid `[alerts]` section whose routes compile.
    #[test]
    fn example_config_parses_and_its_routes_compile() {
        #[derive(serde::Deserialize)]
        struct Doc {
            alerts: AlertsConfig,
        }
        let text = EXAMPLE_CONFIG
            .replace("${DECKHAND_ALERTS_TOKEN}", "t")
            .replace("${SLACK_ML_WEBHOOK}", "http://127.0.0.1:1/slack")
            .replace("${TEAMS_ONCALL_WEBHOOK}", "http://127.0.0.1:1/teams");
        let doc: Doc = toml::from_str(&text).unwrap();
        let config = doc.alerts;
        assert_eq!(config.routes.len(), 4);
        assert_eq!(config.storm.channel_messages, 4);
        assert_eq!(config.kubernetes[0].name, "pangeoCluster");
        let hooks = config.webhooks.keys().cloned().collect();
        assert!(Routes::new(&config.routes, &config.default_channel, &hooks).is_ok());
    }
}
