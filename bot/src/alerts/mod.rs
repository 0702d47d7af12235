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
pub mod commands;
pub mod config;
pub mod http;
pub mod metrics;
pub mod route;
pub mod silence;
pub mod sinks;
pub mod sources;
pub mod storm;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

pub use alert::{Alert, Severity, Source, Status};
pub use config::{AlertmanagerApi, AlertsConfig, ReceiverAuth};
use metrics::{AlertMetrics, DropStage};
use route::{Destination, RouteError, Routes};
use silence::{Matcher, MatcherError, Silence};
use sinks::webhook::WebhookSink;
use storm::{Ingested, Storm, StormStats};

use crate::chat::Outbox;
use crate::host::services::PluginNotification;
use crate::state::{Db, StateError};

/// This component's tables (append only; see [`Db::ensure_schema`]).
const MIGRATIONS: &[&str] = &[
    // 1: silences survive restarts (acks live with the active alerts, in memory).
    "CREATE TABLE alerts_silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        alertmanager_id TEXT,
        created_at TEXT NOT NULL
    );",
    // 2: acknowledgements survive restarts (until the alert resolves).
    "CREATE TABLE alerts_acks (
        alert_id TEXT PRIMARY KEY,
        acked_by TEXT NOT NULL,
        acked_at TEXT NOT NULL
    );",
];

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
    #[error("no active silence has id {0}; /alerts list shows them")]
    UnknownSilence(String),
    #[error("Alertmanager silence not created: {0}")]
    Alertmanager(String),
    #[error("alerts state: {0}")]
    State(#[from] StateError),
}

/// What `/alerts list` shows about an active alert.
#[derive(Debug, Clone)]
pub struct Record {
    pub alert: Alert,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub repeats: u64,
    pub acked_by: Option<String>,
    pub destinations: Vec<Destination>,
}

#[derive(Default)]
struct Book {
    active: BTreeMap<String, Record>,
    silences: Vec<Silence>,
    next_silence: u64,
    last_forget: Option<DateTime<Utc>>,
    /// Alert id → (who, when); outlives the in-memory record across restarts.
    acks: HashMap<String, (String, DateTime<Utc>)>,
}

impl Book {
    /// Drops active alerts not seen for `forget_after` (at most once a minute).
    fn forget_stale(&mut self, now: DateTime<Utc>, forget_after: Duration) {
        if self
            .last_forget
            .is_some_and(|t| now - t < chrono::Duration::minutes(1))
        {
            return;
        }
        self.last_forget = Some(now);
        let horizon = chrono::Duration::from_std(forget_after).unwrap_or(chrono::Duration::days(1));
        self.active.retain(|_, r| now - r.last_seen < horizon);
        self.silences.retain(|s| s.active(now));
        let active = &self.active;
        self.acks
            .retain(|id, (_, at)| active.contains_key(id) || now - *at < horizon);
    }
}

/// Shared by the receiver, the driver and the commands.
pub struct AlertsState {
    config: AlertsConfig,
    pub metrics: AlertMetrics,
    tx: mpsc::Sender<Vec<Alert>>,
    book: Mutex<Book>,
    stats: Mutex<StormStats>,
    http: reqwest::Client,
    db: Option<Db>,
}

/// Why [`AlertsState::submit`] refused a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the alert queue is full")]
pub struct QueueFull;

impl AlertsState {
    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Storm control's counters as of its last step.
    pub fn storm_stats(&self) -> StormStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Hands alerts to the pipeline without waiting; counts them received (or dropped).
    pub fn submit(&self, alerts: Vec<Alert>) -> Result<usize, QueueFull> {
        let n = alerts.len();
        if n == 0 {
            return Ok(0);
        }
        let mut per_source = [0u64; 4];
        for a in &alerts {
            per_source[a.source.index()] += 1;
        }
        match self.tx.try_send(alerts) {
            Ok(()) => {
                for source in Source::ALL {
                    if per_source[source.index()] > 0 {
                        self.metrics.received(source, per_source[source.index()]);
                    }
                }
                Ok(n)
            }
            Err(_) => {
                self.metrics.dropped(DropStage::QueueFull, n as u64);
                Err(QueueFull)
            }
        }
    }

    /// Active alerts, most severe and newest first.
    pub fn active(&self) -> Vec<Record> {
        let horizon = chrono::Duration::from_std(self.config.forget_after)
            .unwrap_or(chrono::Duration::days(1));
        let now = Utc::now();
        let mut records: Vec<Record> = self
            .book()
            .active
            .values()
            .filter(|r| now - r.last_seen < horizon)
            .cloned()
            .collect();
        records.sort_by(|a, b| {
            a.alert
                .severity
                .cmp(&b.alert.severity)
                .then(b.last_seen.cmp(&a.last_seen))
        });
        records
    }

    pub fn silences(&self) -> Vec<Silence> {
        let now = Utc::now();
        self.book()
            .silences
            .iter()
            .filter(|s| s.active(now))
            .cloned()
            .collect()
    }

    /// Marks an active alert acknowledged: its repeats stop notifying until it resolves.
    pub fn ack(&self, id: &str, by: &str) -> Result<Record, AlertsError> {
        let mut book = self.book();
        let record = book
            .active
            .get_mut(id)
            .ok_or_else(|| AlertsError::UnknownAlert(id.to_owned()))?;
        record.acked_by = Some(by.to_owned());
        let record = record.clone();
        let now = Utc::now();
        book.acks.insert(id.to_owned(), (by.to_owned(), now));
        if let Some(db) = &self.db {
            db.conn()
                .execute(
                    "INSERT INTO alerts_acks (alert_id, acked_by, acked_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (alert_id) DO UPDATE SET acked_by = excluded.acked_by,
                     acked_at = excluded.acked_at",
                    rusqlite::params![id, by, now.to_rfc3339()],
                )
                .map_err(StateError::from)?;
        }
        Ok(record)
    }

    /// Adds a Deckhand silence and, when `[alerts.alertmanager]` is set, the same silence in
    /// Alertmanager (API v2). Returns the silence and, if it failed, why Alertmanager's did.
    pub async fn silence(
        &self,
        matchers: &str,
        duration: Duration,
        by: &str,
        comment: &str,
    ) -> Result<(Silence, Option<AlertsError>), AlertsError> {
        let matchers = Matcher::parse_list(matchers)?;
        let now = Utc::now();
        let ends_at =
            now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(2));
        let mut silence = Silence {
            id: String::new(),
            matchers,
            ends_at,
            created_by: by.to_owned(),
            comment: if comment.is_empty() {
                format!("silenced from chat by {by}")
            } else {
                comment.to_owned()
            },
            alertmanager_id: None,
        };
        let mut am_error = None;
        if let Some(api) = &self.config.alertmanager {
            match self.create_am_silence(api, &silence, now).await {
                Ok(id) => silence.alertmanager_id = Some(id),
                Err(e) => am_error = Some(e),
            }
        }
        let mut book = self.book();
        book.next_silence += 1;
        silence.id = format!("s{}", book.next_silence);
        if let Some(db) = &self.db {
            db.conn()
                .execute(
                    "INSERT INTO alerts_silences (id, matchers, ends_at, created_by, comment, alertmanager_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![
                        silence.id,
                        silence.describe(),
                        silence.ends_at.to_rfc3339(),
                        silence.created_by,
                        silence.comment,
                        silence.alertmanager_id,
                        crate::state::now(),
                    ],
                )
                .map_err(StateError::from)?;
        }
        book.silences.retain(|s| s.active(now));
        book.silences.push(silence.clone());
        Ok((silence, am_error))
    }

    /// Lifts a silence early: Deckhand's, and its Alertmanager twin (expired through API v2).
    pub async fn unsilence(&self, id: &str) -> Result<(Silence, Option<AlertsError>), AlertsError> {
        let silence = {
            let mut book = self.book();
            let index = book
                .silences
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| AlertsError::UnknownSilence(id.to_owned()))?;
            book.silences.remove(index)
        };
        if let Some(db) = &self.db {
            db.conn()
                .execute("DELETE FROM alerts_silences WHERE id = ?1", [id])
                .map_err(StateError::from)?;
        }
        let mut am_error = None;
        if let (Some(api), Some(am_id)) = (&self.config.alertmanager, &silence.alertmanager_id) {
            let url = format!("{}/api/v2/silence/{am_id}", api.url.trim_end_matches('/'));
            let mut request = self.http.delete(&url);
            if let Some(token) = &api.bearer_token {
                request = request.bearer_auth(token.expose());
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    am_error = Some(AlertsError::Alertmanager(format!(
                        "{url}: HTTP {}",
                        r.status()
                    )))
                }
                Err(e) => am_error = Some(AlertsError::Alertmanager(format!("{url}: {e}"))),
            }
        }
        Ok((silence, am_error))
    }

    async fn create_am_silence(
        &self,
        api: &AlertmanagerApi,
        silence: &Silence,
        now: DateTime<Utc>,
    ) -> Result<String, AlertsError> {
        let body = sources::alertmanager::PostableSilence::from_silence(silence, now);
        let url = format!("{}/api/v2/silences", api.url.trim_end_matches('/'));
        let mut request = self.http.post(&url).json(&body);
        if let Some(token) = &api.bearer_token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| AlertsError::Alertmanager(format!("{url}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(AlertsError::Alertmanager(format!(
                "{url}: HTTP {status}: {}",
                text.trim()
            )));
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| AlertsError::Alertmanager(format!("{url}: unexpected answer: {e}")))?;
        value["silenceID"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AlertsError::Alertmanager(format!("{url}: no silenceID in {text}")))
    }
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

fn load_acks(db: &Db) -> Result<HashMap<String, (String, DateTime<Utc>)>, StateError> {
    let conn = db.conn();
    let mut statement = conn.prepare("SELECT alert_id, acked_by, acked_at FROM alerts_acks")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut acks = HashMap::new();
    for row in rows {
        let (id, by, at) = row?;
        let at = DateTime::parse_from_rfc3339(&at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        acks.insert(id, (by, at));
    }
    Ok(acks)
}

/// Silences still in force, and the highest silence number used.
fn load_silences(db: &Db) -> Result<(Vec<Silence>, u64), StateError> {
    let conn = db.conn();
    let mut statement = conn.prepare(
        "SELECT id, matchers, ends_at, created_by, comment, alertmanager_id FROM alerts_silences",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, Option<String>>(5)?,
        ))
    })?;
    let now = Utc::now();
    let mut silences = Vec::new();
    let mut highest = 0;
    for row in rows {
        let (id, matchers, ends_at, created_by, comment, alertmanager_id) = row?;
        highest = highest.max(id.trim_start_matches('s').parse().unwrap_or(0));
        let (Ok(matchers), Ok(ends_at)) = (
            Matcher::parse_list(&matchers),
            DateTime::parse_from_rfc3339(&ends_at),
        ) else {
            tracing::warn!(%id, "unreadable stored silence skipped");
            continue;
        };
        let silence = Silence {
            id,
            matchers,
            ends_at: ends_at.with_timezone(&Utc),
            created_by,
            comment,
            alertmanager_id,
        };
        if silence.active(now) {
            silences.push(silence);
        }
    }
    Ok((silences, highest))
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
    let mut book = Book::default();
    if let Some(db) = &options.db {
        db.ensure_schema("alerts", MIGRATIONS)?;
        (book.silences, book.next_silence) = load_silences(db)?;
        book.acks = load_acks(db)?;
    }
    let state = Arc::new(AlertsState {
        metrics: AlertMetrics::default(),
        tx,
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
    tasks.push(tokio::spawn(drive(
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
        if !bound.ip().is_loopback() && matches!(state.config.auth, ReceiverAuth::None) {
            tracing::warn!(%bound, "alert receiver listens beyond loopback without [alerts.auth]");
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
                    let path = resolve(&options.base_dir, kubeconfig);
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

/// For `deckhand check`: every problem of the `[alerts]` section (routes, webhook URLs, the
/// Alertmanager URL, each watched cluster's credentials source), without starting anything.
/// Kubeconfig paths resolve against `base_dir`; a cluster without one must be among
/// `kubernetes`' clusters.
pub fn check(
    alerts: Option<&AlertsConfig>,
    base_dir: &std::path::Path,
    kubernetes: &crate::cloud::config::KubernetesConfig,
) -> Vec<String> {
    let Some(alerts) = alerts.filter(|a| a.enabled) else {
        return Vec::new();
    };
    let hooks: BTreeSet<String> = alerts.webhooks.keys().cloned().collect();
    let mut problems: Vec<String> =
        match Routes::new(&alerts.routes, &alerts.default_channel, &hooks) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
    if alerts.default_channel.trim().is_empty() {
        problems.push("[alerts] default_channel is empty: unmatched alerts need a channel".into());
    }
    for (name, hook) in &alerts.webhooks {
        if reqwest::Url::parse(hook.url.expose()).is_err() {
            // The URL holds a token: never print it.
            problems.push(format!("[alerts.webhooks.{name}] url is not a valid URL"));
        }
    }
    if let Some(am) = &alerts.alertmanager
        && reqwest::Url::parse(&am.url).is_err()
    {
        problems.push(format!(
            "[alerts.alertmanager] url {:?} is not a valid URL",
            am.url
        ));
    }
    for cluster in &alerts.kubernetes {
        match &cluster.kubeconfig {
            Some(path) => {
                let path = crate::config_support::resolve(base_dir, path);
                if let Err(e) = kube::config::Kubeconfig::read_from(&path) {
                    problems.push(format!(
                        "[[alerts.kubernetes]] {}: kubeconfig {}: {e}",
                        cluster.name,
                        path.display()
                    ));
                }
            }
            None => {
                if !kubernetes.clusters.iter().any(|c| c.name == cluster.name) {
                    problems.push(format!(
                        "[[alerts.kubernetes]] {}: no kubeconfig, and no [[kubernetes.clusters]] entry of that name",
                        cluster.name
                    ));
                }
            }
        }
    }
    problems
}

/// Applies silences and acks, routes, and feeds storm control.
fn process(state: &AlertsState, routes: &Routes, storm: &mut Storm, now: u64, batch: Vec<Alert>) {
    let wall = Utc::now();
    let mut book = state.book();
    book.forget_stale(wall, state.config.forget_after);
    for alert in batch {
        if book.silences.iter().any(|s| s.matches(&alert, wall)) {
            state.metrics.dropped(DropStage::Silenced, 1);
            continue;
        }
        let id = alert.id();
        let mut routed = routes.route(&alert);
        if routed.rules.is_empty()
            && let Some(channel) = alert.label(sources::plugin::PREFERRED_CHANNEL)
        {
            routed.destinations = vec![Destination::Channel(channel.to_owned())];
        }
        match alert.status {
            Status::Firing => {
                if let Some(record) = book.active.get_mut(&id) {
                    record.last_seen = wall;
                    record.repeats += 1;
                    if record.acked_by.is_some() {
                        state.metrics.dropped(DropStage::Dedup, 1);
                        continue;
                    }
                } else {
                    // Acknowledged before a restart: known, and still quiet.
                    let acked_by = book.acks.get(&id).map(|(by, _)| by.clone());
                    let quiet = acked_by.is_some();
                    book.active.insert(
                        id,
                        Record {
                            alert: alert.clone(),
                            first_seen: wall,
                            last_seen: wall,
                            repeats: 0,
                            acked_by,
                            destinations: routed.destinations.clone(),
                        },
                    );
                    if quiet {
                        state.metrics.dropped(DropStage::Dedup, 1);
                        continue;
                    }
                }
            }
            Status::Resolved => {
                book.active.remove(&id);
                if book.acks.remove(&id).is_some()
                    && let Some(db) = &state.db
                    && let Err(e) = db
                        .conn()
                        .execute("DELETE FROM alerts_acks WHERE alert_id = ?1", [&id])
                {
                    tracing::warn!(error = %e, "acknowledgement not removed from the state database");
                }
            }
        }
        state.metrics.routed(1);
        for destination in &routed.destinations {
            if storm.ingest(now, destination, alert.clone()) == Ingested::Duplicate {
                state.metrics.dropped(DropStage::Dedup, 1);
            }
        }
    }
}

async fn drive(
    state: Arc<AlertsState>,
    mut rx: mpsc::Receiver<Vec<Alert>>,
    routes: Routes,
    mut storm: Storm,
    outbox: Arc<dyn Outbox>,
    webhooks: WebhookSink,
) {
    let start = tokio::time::Instant::now();
    let elapsed = |start: tokio::time::Instant| start.elapsed().as_millis() as u64;
    loop {
        let deadline = storm
            .next_deadline()
            .map(|t| start + Duration::from_millis(t));
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let now = elapsed(start);
                process(&state, &routes, &mut storm, now, batch);
                while let Ok(more) = rx.try_recv() {
                    process(&state, &routes, &mut storm, now, more);
                }
            }
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let outgoing = storm.poll(elapsed(start));
        *state.stats.lock().unwrap_or_else(|p| p.into_inner()) = storm.stats().clone();
        for out in outgoing {
            let folded = match &out.notice {
                storm::Notice::Digest(d) => d.count,
                storm::Notice::Alerts { .. } => 0,
            };
            match &out.destination {
                Destination::Channel(_) => {
                    let Some(message) = sinks::channel::render(&out) else {
                        continue;
                    };
                    match outbox.post(message).await {
                        Ok(()) => state.metrics.message_sent(folded),
                        Err(e) => {
                            tracing::warn!(destination = %out.destination, error = %e, "alert message not delivered");
                            state.metrics.dropped(DropStage::Send, out.covers());
                        }
                    }
                }
                Destination::Webhook(name) => {
                    let (s, hooks, name) = (state.clone(), webhooks.clone(), name.clone());
                    tokio::spawn(async move {
                        match hooks.send(&name, &out).await {
                            Ok(()) => s.metrics.message_sent(folded),
                            Err(e) => {
                                tracing::warn!(error = %e, "alert webhook not delivered");
                                s.metrics.dropped(DropStage::Send, out.covers());
                            }
                        }
                    });
                }
            }
        }
    }
}

/// The example in `config/alerts.toml` parses (kept in sync by a test).
pub const EXAMPLE_CONFIG: &str = include_str!("../../../config/alerts.toml");

/// Resolves a path from the config file against its directory (for kubeconfigs).
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

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

    #[test]
    fn stale_active_alerts_are_forgotten() {
        let now = Utc::now();
        let record = |age_hours: i64| Record {
            alert: Alert {
                source: Source::Kubernetes,
                fingerprint: format!("f{age_hours}"),
                status: Status::Firing,
                severity: Severity::Error,
                name: "FailedScheduling".into(),
                summary: String::new(),
                labels: BTreeMap::new(),
                starts_at: None,
                url: None,
            },
            first_seen: now - chrono::Duration::hours(age_hours),
            last_seen: now - chrono::Duration::hours(age_hours),
            repeats: 0,
            acked_by: None,
            destinations: Vec::new(),
        };
        let mut book = Book::default();
        book.active.insert("old".into(), record(25));
        book.active.insert("new".into(), record(1));
        book.forget_stale(now, Duration::from_secs(24 * 3600));
        assert_eq!(book.active.keys().collect::<Vec<_>>(), ["new"]);
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
        assert_eq!(config.storm.channel_messages, 5);
        assert_eq!(config.kubernetes[0].name, "pangeoCluster");
        let hooks = config.webhooks.keys().cloned().collect();
        assert!(Routes::new(&config.routes, &config.default_channel, &hooks).is_ok());
    }
}
