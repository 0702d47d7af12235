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

pub mod clock;
pub mod commands;
pub mod config;
pub mod leader;
pub mod store;
pub mod summary;
pub mod timing;

/// The longest warning before a run: a day (checked at `/schedule add` and config load).
pub const MAX_WARN_SECS: i64 = 24 * 3600;
/// The longest snooze: a week.
pub const MAX_SNOOZE_SECS: i64 = 7 * 24 * 3600;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, watch};

use crate::chat::{Action, OutboundMessage, Outbox};
use crate::router::{Invocation, ResponseKind, Router};
use crate::state::StateError;
use clock::Clock;
use leader::Leadership;
use store::{RunKind, ScheduleRow, Source, Store};
use timing::{Timing, TimingError};

pub use clock::{ManualClock, SystemClock};
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

pub(crate) struct Inner {
    router: Arc<Router>,
    store: Store,
    outbox: Arc<dyn Outbox>,
    leadership: Arc<dyn Leadership>,
    clock: Arc<dyn Clock>,
    grace: chrono::Duration,
    timings: Mutex<HashMap<(String, String), Arc<Timing>>>,
    wake: Notify,
    status: watch::Sender<Status>,
    recovered: AtomicBool,
    /// Runs in flight, so [`SchedulerHandle::abort`] can stop them as a crash would.
    running: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Run ids claimed by this engine: recovery leaves them alone.
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
        let config = &parts.config;
        let inner = Arc::new(Inner {
            router: parts.router.clone(),
            store,
            outbox,
            leadership,
            clock,
            grace: chrono::Duration::from_std(config.grace)
                .map_err(|_| SchedError::Invalid("[schedules] grace is too large".into()))?,
            timings: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            status: watch::Sender::new(Status::default()),
            recovered: AtomicBool::new(false),
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

    /// Writes the config-declared schedules, dropping those no longer declared. Returns the
    /// entries that were refused, each with its reason.
    fn load_config(
        &self,
        section: &config::SchedulesConfig,
        base_dir: &std::path::Path,
    ) -> Result<Vec<String>, SchedError> {
        let checked = checked_config(&self.router, section, base_dir);
        let now = self.now();
        for def in &checked.valid {
            self.store.upsert_config(&ScheduleRow {
                name: def.name.clone(),
                cron: def.cron.clone(),
                tz: def.tz.clone(),
                commands: def.commands.clone(),
                channel: def.channel.clone(),
                warn_secs: def
                    .warn
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                owner: checked.owner.clone(),
                source: Source::Config,
                created_at: now,
                anchor: now,
                paused: false,
                skip_due: None,
                skip_until: None,
                snooze_due: None,
                snooze_to: None,
                warned_for: None,
            })?;
        }
        let keep = checked.names;
        let errors = checked.errors;
        for gone in self.store.prune_config(&keep)? {
            tracing::info!(schedule = %gone, "config schedule removed from config: deleted");
        }
        Ok(errors)
    }

    async fn run(self: Arc<Self>) {
        loop {
            let now = self.now();
            let leading = match self.leadership.check(now).await {
                Ok(leading) => leading,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election failed; not running schedules");
                    false
                }
            };
            let mut next = None;
            if leading {
                if !self.recovered.swap(true, Ordering::SeqCst) {
                    self.recover(now).await;
                }
                next = match self.pass(now).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "schedule pass failed");
                        Some(now + chrono::Duration::seconds(30))
                    }
                };
            }
            if let Some(every) = self.leadership.recheck_every() {
                let recheck = now + chrono::Duration::from_std(every).unwrap_or_default();
                next = Some(next.map_or(recheck, |n| n.min(recheck)));
            }
            self.status.send_modify(|s| {
                s.processed = Some(now);
                s.next_wake = next;
                s.leading = leading;
                s.passes += 1;
            });
            let clock = self.clock.clone();
            let sleep = async move {
                match next {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Reports runs that were claimed and never completed (the bot died in between). They
    /// are not run again.
    async fn recover(&self, now: DateTime<Utc>) {
        let open = {
            // Held while reading, so a claim of ours cannot slip in between.
            let mine = self.mine.lock().unwrap_or_else(|p| p.into_inner());
            self.store.open_runs().map(|runs| {
                runs.into_iter()
                    .filter(|r| !mine.contains(&r.id))
                    .collect::<Vec<_>>()
            })
        };
        let open = match open {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(error = %e, "cannot read open schedule runs");
                return;
            }
        };
        for run in open {
            let detail = format!(
                "claimed at {} and never completed: the bot stopped while it ran",
                store::ts(run.claimed_at)
            );
            if let Err(e) = self.store.complete(run.id, now, "interrupted", &detail) {
                tracing::error!(error = %e, "cannot mark an interrupted run");
                continue;
            }
            let row = self.store.get(&run.schedule).ok().flatten();
            let (channel, due) = match &row {
                Some(row) => (
                    row.channel.clone(),
                    self.timing(&row.cron, &row.tz)
                        .map(|t| t.describe(run.due_at))
                        .unwrap_or_else(|_| store::ts(run.due_at)),
                ),
                None => continue,
            };
            self.post(
                &channel,
                format!(
                    "⚠ Schedule {}: the run due {due} was interrupted ({detail}). Its commands may have partly acted; it is not run again automatically. Check, then run it by hand if it should still happen.",
                    run.schedule
                ),
                vec![Action {
                    label: "Run now".into(),
                    command: format!("/schedule run {}", run.schedule),
                }],
            )
            .await;
        }
    }

    /// One pass: warnings due, firings due (run, skipped, caught up or missed). Returns the
    /// instant of the next thing to do.
    pub(crate) async fn pass(
        self: &Arc<Self>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SchedError> {
        let rows = self.store.all()?;
        let last_due = self.store.last_due()?;
        let mut next: Option<DateTime<Utc>> = None;
        for row in rows.into_iter().filter(|r| !r.paused) {
            match self
                .pass_one(&row, last_due.get(&row.name).copied(), now)
                .await
            {
                Ok(Some(at)) => next = Some(next.map_or(at, |n| n.min(at))),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(schedule = %row.name, error = %e, "schedule skipped in this pass")
                }
            }
        }
        Ok(next)
    }

    async fn pass_one(
        self: &Arc<Self>,
        row: &ScheduleRow,
        last_due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SchedError> {
        let timing = self.timing(&row.cron, &row.tz)?;
        let mut after = last_due.map_or(row.anchor, |d| d.max(row.anchor));
        let mut overdue = Vec::new();
        let mut finished = false;
        let upcoming = loop {
            let due = match timing.next_after(after) {
                Ok(due) => due,
                // A one-off expression (year field) after its last firing.
                Err(TimingError::Never { .. }) => {
                    finished = true;
                    break None;
                }
                Err(e) => return Err(e.into()),
            };
            let at = effective(row, due);
            if at > now {
                break Some(Upcoming { due, effective: at });
            }
            overdue.push(Upcoming { due, effective: at });
            after = due;
            if overdue.len() >= MAX_OVERDUE {
                break None;
            }
        };
        if !overdue.is_empty() {
            self.handle_overdue(row, &timing, overdue, now).await?;
        }
        let Some(upcoming) = upcoming else {
            // Either it will never fire again, or there are more overdue firings than one
            // pass looks at: then come back at once.
            return Ok((!finished).then_some(now));
        };
        // Rows written by older versions may hold any number: bound it, never overflow.
        let warn = chrono::Duration::try_seconds(row.warn_secs.clamp(0, MAX_WARN_SECS))
            .unwrap_or_default();
        if row.warn_secs > 0
            && row.warned_for != Some(upcoming.effective)
            && !self.is_skipped(row, upcoming.due)
        {
            let warn_at = upcoming.effective.checked_sub_signed(warn).unwrap_or(now);
            if warn_at > now {
                return Ok(Some(warn_at));
            }
            self.warn(row, &timing, upcoming, now).await?;
        }
        Ok(Some(upcoming.effective))
    }

    async fn warn(
        &self,
        row: &ScheduleRow,
        timing: &Timing,
        upcoming: Upcoming,
        now: DateTime<Utc>,
    ) -> Result<(), SchedError> {
        if self.is_skipped(row, upcoming.due) {
            return Ok(());
        }
        self.store.set_warned(&row.name, upcoming.effective)?;
        let minutes = ((upcoming.effective - now).num_seconds().max(0) as u64).div_ceil(60);
        self.post(
            &row.channel,
            format!(
                "⏰ Schedule {} runs in {minutes} min, at {}:\n{}",
                row.name,
                timing.describe(upcoming.effective),
                numbered(&row.commands)
            ),
            vec![
                Action {
                    label: "Snooze 1h".into(),
                    command: format!("/schedule snooze {} 1h", row.name),
                },
                Action {
                    label: "Skip tonight".into(),
                    command: format!("/schedule skip {}", row.name),
                },
            ],
        )
        .await;
        Ok(())
    }

    fn is_skipped(&self, row: &ScheduleRow, due: DateTime<Utc>) -> bool {
        row.skip_due == Some(due) || row.skip_until.is_some_and(|until| due < until)
    }

    async fn handle_overdue(
        self: &Arc<Self>,
        row: &ScheduleRow,
        timing: &Timing,
        overdue: Vec<Upcoming>,
        now: DateTime<Utc>,
    ) -> Result<(), SchedError> {
        let mut live = Vec::new();
        for firing in overdue {
            if self.is_skipped(row, firing.due) {
                if self
                    .store
                    .record(&row.name, firing.due, now, "skipped", "skip requested")?
                {
                    self.post(
                        &row.channel,
                        format!(
                            "Schedule {}: skipped the run due {}, as asked.",
                            row.name,
                            timing.describe(firing.due)
                        ),
                        vec![],
                    )
                    .await;
                }
            } else {
                live.push(firing);
            }
        }
        let Some(last) = live.pop() else {
            return Ok(());
        };
        let late = now - last.effective;
        let runs = late <= self.grace;
        let missed: Vec<Upcoming> = if runs {
            live
        } else {
            live.into_iter().chain([last]).collect()
        };
        if let (Some(first), Some(latest)) = (missed.first(), missed.last()) {
            let detail = if missed.len() == 1 {
                format!("the run due {} was missed", timing.describe(first.due))
            } else {
                format!(
                    "{} runs were missed, due from {} to {}",
                    missed.len(),
                    timing.describe(first.due),
                    timing.describe(latest.due)
                )
            };
            if self
                .store
                .record(&row.name, latest.due, now, "missed", &detail)?
            {
                let tail = if runs {
                    format!(
                        "; only the latest, due {}, runs now",
                        timing.describe(last.due)
                    )
                } else {
                    let (it, is) = if missed.len() == 1 {
                        ("it", "is")
                    } else {
                        ("they", "are")
                    };
                    format!(
                        "; {it} {is} past the {} grace window and {is} not run",
                        humantime::format_duration(self.grace.to_std().unwrap_or_default())
                    )
                };
                self.post(
                    &row.channel,
                    format!(
                        "⚠ Schedule {}: {detail} while the bot was down{tail}.",
                        row.name
                    ),
                    vec![],
                )
                .await;
            }
        }
        if runs {
            let Some(run) = self.claim(&row.name, RunKind::Cron, last.due, now)? else {
                tracing::info!(schedule = %row.name, "firing already claimed elsewhere");
                return Ok(());
            };
            let note = if late > chrono::Duration::seconds(60) {
                Some(format!(
                    "{} late, inside the grace window",
                    humantime::format_duration(std::time::Duration::from_secs(
                        late.num_seconds().max(0) as u64
                    ))
                ))
            } else {
                None
            };
            self.status.send_modify(|s| s.inflight += 1);
            let this = self.clone();
            let row = row.clone();
            let task = tokio::spawn(async move {
                this.execute(&row, run, note).await;
                this.status.send_modify(|s| s.inflight -= 1);
            });
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.retain(|t| !t.is_finished());
            running.push(task.abort_handle());
        }
        Ok(())
    }

    /// Runs a claimed firing's commands one by one, posts each reply, completes the run.
    /// Returns the outcome and a one-line summary.
    pub(crate) async fn execute(
        &self,
        row: &ScheduleRow,
        run: i64,
        note: Option<String>,
    ) -> (String, String) {
        let total = row.commands.len();
        let (mut ok, mut failed, mut pending) = (0, 0, 0);
        for (i, command) in row.commands.iter().enumerate() {
            let invocation = Invocation::new("schedule", &row.channel, row.owner.clone(), command);
            let (progress, mut progress_rx) = mpsc::unbounded_channel();
            let drain = tokio::spawn(async move { while progress_rx.recv().await.is_some() {} });
            let response = self.router.handle(invocation, progress).await;
            let _ = drain.await;
            let head = format!(
                "Schedule {} [{}/{total}] {command}{}",
                row.name,
                i + 1,
                note.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
            let (text, actions) = match response.kind {
                ResponseKind::Ok => {
                    ok += 1;
                    (format!("{head}\n✓ {}", response.text), vec![])
                }
                ResponseKind::Error => {
                    failed += 1;
                    (format!("{head}\n✗ refused: {}", response.text), vec![])
                }
                ResponseKind::Pending => {
                    pending += 1;
                    let actions = response
                        .confirmation
                        .iter()
                        .map(|code| Action {
                            label: "Confirm".into(),
                            command: format!("/confirm {code}"),
                        })
                        .collect();
                    (format!("{head}\n… {}", response.text), actions)
                }
            };
            let outcome = match response.kind {
                ResponseKind::Ok => "ok",
                ResponseKind::Error => "failed",
                ResponseKind::Pending => "pending",
            };
            if let Err(e) =
                self.store
                    .record_command(run, i, command, outcome, &response.text, self.now())
            {
                tracing::error!(schedule = %row.name, error = %e, "cannot record a command result");
            }
            self.post(&row.channel, text, actions).await;
        }
        let outcome = if failed == 0 && pending == 0 {
            "ok"
        } else if ok == 0 && pending == 0 {
            "failed"
        } else if pending > 0 && failed == 0 && ok == 0 {
            "pending"
        } else {
            "partial"
        };
        let summary =
            format!("{ok} ok, {failed} failed, {pending} awaiting confirmation, of {total}");
        if let Err(e) = self.store.complete(run, self.now(), outcome, &summary) {
            tracing::error!(schedule = %row.name, error = %e, "cannot complete the run");
        }
        (outcome.to_owned(), summary)
    }

    pub(crate) async fn post(&self, channel: &str, text: String, actions: Vec<Action>) {
        let message = OutboundMessage {
            channel: channel.to_owned(),
            text,
            actions,
        };
        if let Err(e) = self.outbox.post(message).await {
            tracing::warn!(channel, error = %e, "cannot post a schedule message");
        }
    }
}

struct CheckedConfig {
    owner: deckhand_plugin_abi::proto::Caller,
    valid: Vec<config::ScheduleDef>,
    /// Every declared name, valid or not (an invalid entry keeps its stored state).
    names: Vec<String>,
    errors: Vec<String>,
}

/// Reads and validates the config-declared schedules against the loaded commands and the
/// owner's permissions.
fn checked_config(
    router: &Router,
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> CheckedConfig {
    let mut defs = section.schedule.clone();
    let mut errors = Vec::new();
    if let Some(file) = &section.file {
        match config::load_file(&crate::config_support::resolve(base_dir, file)) {
            Ok(more) => defs.extend(more),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let owner = deckhand_plugin_abi::proto::Caller {
        user_id: section.owner.user_id.clone(),
        display_name: section.owner.display_name.clone(),
        roles: section.owner.roles.clone(),
    };
    let mut valid = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for def in defs {
        if names.contains(&def.name) {
            errors.push(format!("schedule {}: declared twice", def.name));
            continue;
        }
        names.push(def.name.clone());
        let checked =
            commands::validate(router, &owner, &def.name, &def.cron, &def.tz, &def.commands)
                .and_then(|_| {
                    if def.channel.trim().is_empty() {
                        Err("its channel is empty".to_owned())
                    } else {
                        Ok(())
                    }
                });
        match checked {
            Ok(()) => valid.push(def),
            Err(reason) => errors.push(format!("schedule {}: {reason}", def.name)),
        }
    }
    CheckedConfig {
        owner,
        valid,
        names,
        errors,
    }
}

/// Problems with the config-declared schedules, for `deckhand check`: nothing is written.
pub fn check(
    router: &Router,
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> Vec<String> {
    checked_config(router, section, base_dir).errors
}

/// When a firing actually runs: its due instant, or where a snooze moved it.
fn effective(row: &ScheduleRow, due: DateTime<Utc>) -> DateTime<Utc> {
    match (row.snooze_due, row.snooze_to) {
        (Some(d), Some(to)) if d == due => to,
        _ => due,
    }
}

fn numbered(commands: &[String]) -> String {
    commands
        .iter()
        .enumerate()
        .map(|(i, c)| format!("  {}. {c}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}
