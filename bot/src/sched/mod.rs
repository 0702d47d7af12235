//! Schedules: a command list, a cron expression and a time zone, run on behalf of an owner.
//!
//! A schedule's commands go through [`Router::handle`] with the owner as caller and surface
//! `schedule`, so permissions, confirmations and the audit log apply exactly as if the owner
//! typed them; each command's reply is posted to the schedule's channel through an
//! [`Outbox`], one message per command, and a refused command does not stop the others.
//!
//! # Time
//! Expressions have six or seven fields, seconds first (`"0 0 20 * * Mon-Fri"`), and are read
//! as wall-clock times in the schedule's IANA zone. Daylight saving:
//! - a local time that does not exist (spring forward, e.g. 03:30 in Helsinki on the last
//!   Sunday of March) runs **once, at the first instant after the gap** (04:00 EEST); several
//!   such times (every 15 minutes) merge into that one run;
//! - a local time that happens twice (fall back, e.g. 01:30 in New York on the first Sunday
//!   of November) runs **once, at its first occurrence**.
//!
//! # Exactly once
//! Each firing is *claimed* — a row inserted and committed, unique per (schedule, due
//! instant) — before any command is sent, and completed after the last reply. On start (on
//! becoming leader), a claimed but uncompleted run is reported as **interrupted** and not run
//! again: its commands may have acted, and the owner decides (`/schedule run NAME`). Firings
//! missed while the bot was down run once if the bot is back within the grace window
//! (`[schedules] grace`, default 30 min; only the latest of them runs); older ones are
//! reported as missed.
//!
//! # Warnings, snooze, skip, pause
//! With `--warn 15m` a warning is posted that long before each run, with the actions
//! "Snooze 1h" (`/schedule snooze NAME 1h`: the pending run moves an hour later, and is warned
//! about again) and "Skip tonight" (`/schedule skip NAME`: the pending run is recorded as
//! skipped). `/schedule pause` stops all runs until `resume`; firings inside the pause are
//! not caught up.
//!
//! # Replicas
//! Only the holder of the [`leader::Leadership`] runs schedules (a Kubernetes Lease with
//! more than one replica); the others keep answering `/schedule` commands.

pub mod calendar;
pub mod clock;
pub mod commands;
pub mod config;
mod declared;
mod engine;
mod guard;
pub mod keep_awake;
pub mod leader;
mod preview;
pub mod store;
pub mod summary;
pub mod timing;

/// The longest warning before a run: a day (checked at `/schedule add` and config load).
pub const MAX_WARN_SECS: i64 = 24 * 3600;
/// The longest snooze: a week.
pub const MAX_SNOOZE_SECS: i64 = 7 * 24 * 3600;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::chat::Outbox;
use crate::chat::ledger::{Ledger, LedgerOutbox};
use crate::router::Router;
use crate::state::StateError;
use clock::Clock;
use leader::Leadership;
use store::{RunKind, ScheduleRow, Store};
use timing::{Timing, TimingError};

pub use clock::{ManualClock, SystemClock};
pub use declared::{check, declared_channels};
use engine::{effective, numbered};
pub use leader::{AlwaysLeader, KubeLease};

/// How many overdue firings of one schedule are looked at in one pass.
const MAX_OVERDUE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Timing(#[from] TimingError),
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
    #[error("{0}")]
    Invalid(String),
}

/// What the engine is doing, for `settle` in tests and for `/schedule list`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// The clock time of the last completed pass.
    pub processed: Option<DateTime<Utc>>,
    /// When the engine next wakes on its own.
    pub next_wake: Option<DateTime<Utc>>,
    /// Runs claimed and not yet completed by this engine.
    pub inflight: usize,
    pub leading: bool,
    /// Passes made, for tests that must see a fresh one.
    pub passes: u64,
}

/// A firing waiting to happen: its due instant and when it will actually run (a snooze
/// moves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upcoming {
    pub due: DateTime<Utc>,
    pub effective: DateTime<Utc>,
}

/// One firing of a schedule: its name and due instant.
type Firing = (String, DateTime<Utc>);

pub(crate) struct Inner {
    /// Guards of config schedules, by schedule name.
    guards: Mutex<HashMap<String, config::GuardDef>>,
    /// Holiday rules (`skip_on`/`only_on`) of config schedules, by schedule name.
    days: Mutex<HashMap<String, calendar::DayFilter>>,
    /// Firings deferred by their guard, and when each deferral began.
    deferred: Mutex<HashMap<Firing, DateTime<Utc>>>,
    router: Arc<Router>,
    store: Store,
    /// Posts through [`Inner::ledger`]: keyed reports go out once across replicas.
    outbox: Arc<dyn Outbox>,
    ledger: Ledger,
    leadership: Arc<dyn Leadership>,
    clock: Arc<dyn Clock>,
    grace: chrono::Duration,
    timings: Mutex<HashMap<(String, String), Arc<Timing>>>,
    wake: Notify,
    status: watch::Sender<Status>,
    /// Leading as of the last check: recovery runs on every change to leading.
    leading: AtomicBool,
    /// Runs in flight, so [`SchedulerHandle::abort`] can stop them as a crash would.
    running: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Runs this engine is executing: recovery leaves them alone.
    mine: Mutex<std::collections::HashSet<i64>>,
}

/// What the engine is built from: the router it runs commands through, the state database,
/// the `[schedules]` section and the config file's directory (for its `file`).
pub struct SchedulerParts {
    pub router: Arc<Router>,
    pub db: crate::state::Db,
    pub config: config::SchedulesConfig,
    pub base_dir: std::path::PathBuf,
}

/// The schedule engine. [`Scheduler::start`] registers `/schedule` with the router and
/// starts the loop.
pub struct Scheduler;

/// A running engine.
pub struct SchedulerHandle {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
    /// Config-declared schedules that were not loaded, and why.
    pub load_errors: Vec<String>,
}

impl Scheduler {
    /// Loads config-declared schedules, adds `/schedule` to the router and starts the engine
    /// on its own task. Must run inside a tokio runtime.
    pub fn start(
        parts: SchedulerParts,
        outbox: Arc<dyn Outbox>,
        leadership: Arc<dyn Leadership>,
        clock: Arc<dyn Clock>,
    ) -> Result<SchedulerHandle, SchedError> {
        let store = Store::open(parts.db.clone())?;
        let ledger = Ledger::new(parts.db.clone())?;
        let outbox: Arc<dyn Outbox> = Arc::new(LedgerOutbox::new(outbox, ledger.clone()));
        let config = &parts.config;
        let inner = Arc::new(Inner {
            guards: Mutex::default(),
            days: Mutex::default(),
            deferred: Mutex::default(),
            router: parts.router.clone(),
            store,
            outbox,
            ledger,
            leadership,
            clock,
            grace: chrono::Duration::from_std(config.grace)
                .map_err(|_| SchedError::Invalid("[schedules] grace is too large".into()))?,
            timings: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            status: watch::Sender::new(Status::default()),
            leading: AtomicBool::new(false),
            running: Mutex::new(Vec::new()),
            mine: Mutex::new(Default::default()),
        });
        let load_errors = inner.load_config(&parts.config, &parts.base_dir)?;
        for error in &load_errors {
            tracing::warn!(%error, "config schedule not loaded");
        }
        parts
            .router
            .add_builtins(Arc::new(commands::ScheduleCommands::new(inner.clone())));
        let task = tokio::spawn(inner.clone().run());
        Ok(SchedulerHandle {
            inner,
            task,
            load_errors,
        })
    }
}

impl SchedulerHandle {
    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// Makes the engine look at the clock now, and waits until that pass is done and every
    /// run it started has completed. For tests driving a [`ManualClock`].
    pub async fn settle(&self) {
        let target = self.inner.now();
        let passes = self.status().passes;
        self.inner.wake.notify_one();
        self.wait_for(|s| {
            s.passes > passes && s.processed.is_some_and(|p| p >= target) && s.inflight == 0
        })
        .await;
    }

    /// Waits until the engine's status satisfies `f`.
    pub async fn wait_for(&self, f: impl FnMut(&Status) -> bool) {
        let mut rx = self.inner.status.subscribe();
        let _ = rx.wait_for(f).await;
    }

    /// When the engine next wakes on its own.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.status().next_wake
    }

    /// Stops the engine at once, as a crash would: runs in flight are abandoned unfinished.
    pub fn abort(&self) {
        self.task.abort();
        for run in self
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            run.abort();
        }
    }

    /// Stops the engine and gives up leadership.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
        self.inner.leadership.release().await;
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn timing(&self, cron: &str, tz: &str) -> Result<Arc<Timing>, TimingError> {
        let key = (cron.to_owned(), tz.to_owned());
        let mut cache = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let timing = Arc::new(Timing::new(cron, tz)?);
        cache.insert(key, timing.clone());
        Ok(timing)
    }

    /// Claims a firing for this engine (see [`Store::claim`]).
    pub(crate) fn claim(
        &self,
        schedule: &str,
        kind: RunKind,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StateError> {
        let mut mine = self.mine.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.store.claim(schedule, kind, due, now)?;
        mine.extend(id);
        Ok(id)
    }

    /// Why the firing due at `due` does not run by its calendars (`skip_on`/`only_on`, read
    /// on the local day in the schedule's zone), or `None`.
    pub(crate) fn calendar_excludes(
        &self,
        row: &ScheduleRow,
        due: DateTime<Utc>,
    ) -> Option<String> {
        let days = self.days.lock().unwrap_or_else(|p| p.into_inner());
        let filter = days.get(&row.name)?;
        let tz = timing::parse_zone(&row.tz).ok()?;
        filter.excludes(due.with_timezone(&tz).date_naive())
    }

    pub(crate) fn poke(&self) {
        self.wake.notify_one();
    }

    /// The next firing of a schedule after what has been run or recorded.
    pub(crate) fn upcoming(
        &self,
        row: &ScheduleRow,
        last_due: Option<DateTime<Utc>>,
    ) -> Result<Upcoming, TimingError> {
        let timing = self.timing(&row.cron, &row.tz)?;
        let anchor = last_due.map_or(row.anchor, |d| d.max(row.anchor));
        let due = timing.next_after(anchor)?;
        Ok(Upcoming {
            due,
            effective: effective(row, due),
        })
    }
}
