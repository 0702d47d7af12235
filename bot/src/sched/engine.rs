//! The engine's loop: leadership, recovery of interrupted runs, each pass over due firings,
//! warnings before runs, and running a firing's commands through the router.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::guard::Verdict;
use super::store::{self, RunKind, ScheduleRow};
use super::timing::{Timing, TimingError};
use super::{Inner, MAX_OVERDUE, MAX_WARN_SECS, SchedError, Upcoming};
use crate::chat::{Action, OutboundMessage};
use crate::router::{Invocation, ResponseKind};
use crate::state::timestamp;

impl Inner {
    pub(super) async fn run(self: Arc<Self>) {
        loop {
            let now = self.now();
            let leading = match self.leadership.check(now).await {
                Ok(leading) => leading,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election failed; not running schedules");
                    false
                }
            };
            crate::metrics::leader(leading);
            let mut next = None;
            // Each time leadership is (re)gained, take over what the last leader left open.
            let gained = leading && !self.leading.swap(leading, Ordering::SeqCst);
            if !leading {
                self.leading.store(false, Ordering::SeqCst);
            }
            if leading {
                if gained {
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

    /// Runs that were claimed and never completed (the replica running them died, or this
    /// one before a restart): resumed where they stopped when every command that may have
    /// acted is idempotent, else reported as interrupted and not run again.
    async fn recover(self: &Arc<Self>, now: DateTime<Utc>) {
        let open = {
            // Held while reading, so a claim of ours cannot slip in between.
            let mine = self.mine.lock().unwrap_or_else(|p| p.into_inner());
            let shared = self.store.shared();
            self.store.open_runs().map(|runs| {
                runs.into_iter()
                    .filter(|r| !mine.contains(&r.id))
                    // On a shared database a `/schedule run` belongs to the replica running
                    // it; only leaders run firings, and the last one has stopped acting.
                    .filter(|r| {
                        !shared
                            || r.kind == RunKind::Cron.as_str()
                            || r.claimed_by == crate::state::replica_name()
                    })
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
            let row = self.store.get(&run.schedule).ok().flatten();
            let recorded = self.store.run_commands(run.id).unwrap_or_default();
            match row.as_ref().map(|row| self.resume_point(row, &recorded)) {
                Some(Ok(start)) => {
                    let Some(row) = row else { continue };
                    self.resume(row, run, recorded, start).await;
                }
                Some(Err(stopped_in)) => {
                    self.interrupted(row.as_ref(), &run, stopped_in, now).await
                }
                None => self.interrupted(None, &run, None, now).await,
            }
        }
    }

    /// Where an open run can go on: the first command that did not end, when it never
    /// started or is idempotent. `Err` with the command that may have half-acted otherwise.
    fn resume_point(
        &self,
        row: &ScheduleRow,
        recorded: &[store::RunCommand],
    ) -> Result<usize, Option<String>> {
        for (i, command) in row.commands.iter().enumerate() {
            match recorded.iter().find(|c| c.index == i) {
                None => return Ok(i),
                // The schedule changed since the run started: nothing to resume safely.
                Some(c) if c.command != *command => return Err(None),
                Some(c) if c.outcome == "running" => {
                    return if self.router.is_idempotent(command) {
                        Ok(i)
                    } else {
                        Err(Some(command.clone()))
                    };
                }
                Some(_) => {}
            }
        }
        Ok(row.commands.len())
    }

    /// Takes over an open run at command `start`: first the reports of commands that ended
    /// (the replica that ran them may have died before posting; the ledger posts each once),
    /// then the rest of the commands, on this engine.
    async fn resume(
        self: &Arc<Self>,
        row: ScheduleRow,
        run: store::RunRow,
        recorded: Vec<store::RunCommand>,
        start: usize,
    ) {
        self.mine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id);
        if let Err(e) = self
            .ledger
            .release_unsent(&format!("schedule-run:{}:", run.id))
        {
            tracing::warn!(error = %e, "cannot take over the unsent reports of a run");
        }
        let mut tally = Tally::default();
        for done in recorded.iter().filter(|c| c.index < start) {
            tally.count(&done.outcome);
            self.post_with_files(
                &row.channel,
                report(&row, done.index, None, &done.outcome, &done.reply),
                Vec::new(),
                Vec::new(),
                Some(report_key(run.id, done.index)),
            )
            .await;
        }
        tracing::info!(schedule = %row.name, run = run.id, start, "resuming an interrupted run");
        let note = Some(format!(
            "resumed on {} after the replica running it stopped",
            crate::state::replica_name()
        ));
        self.status.send_modify(|s| s.inflight += 1);
        let this = self.clone();
        let task = tokio::spawn(async move {
            this.execute_from(&row, run.id, note, start, tally, Led::Yes)
                .await;
            this.status.send_modify(|s| s.inflight -= 1);
        });
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|t| !t.is_finished());
        running.push(task.abort_handle());
    }

    /// Closes an open run that cannot be resumed and says so in its channel, once.
    async fn interrupted(
        &self,
        row: Option<&ScheduleRow>,
        run: &store::RunRow,
        stopped_in: Option<String>,
        now: DateTime<Utc>,
    ) {
        let within = stopped_in
            .map(|c| format!(", inside {c}, which may not be run twice"))
            .unwrap_or_default();
        let detail = format!(
            "claimed at {} and never completed: the bot stopped while it ran{within}",
            timestamp(run.claimed_at)
        );
        if let Err(e) = self.store.complete(run.id, now, "interrupted", &detail) {
            tracing::error!(error = %e, "cannot mark an interrupted run");
            return;
        }
        let Some(row) = row else { return };
        let due = self
            .timing(&row.cron, &row.tz)
            .map(|t| t.describe(run.due_at))
            .unwrap_or_else(|_| timestamp(run.due_at));
        self.post_with_files(
            &row.channel,
            format!(
                "⚠ Schedule {}: the run due {due} was interrupted ({detail}). Its commands may have partly acted; it is not run again automatically. Check, then run it by hand if it should still happen.",
                run.schedule
            ),
            vec![Action {
                label: "Run now".into(),
                command: format!("/schedule run {}", run.schedule),
            }],
            Vec::new(),
            Some(format!("schedule-run:{}:interrupted", run.id)),
        )
        .await;
    }

    /// One pass: warnings due, firings due (run, skipped, caught up or missed). Returns the
    /// instant of the next thing to do.
    pub(crate) async fn pass(
        self: &Arc<Self>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SchedError> {
        let mut next: Option<DateTime<Utc>> = self.expire_keep_awakes(now).await?;
        let rows = self.store.all()?;
        let last_due = self.store.last_due()?;
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
            && self.calendar_excludes(row, upcoming.due).is_none()
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
        self.post_with_files(
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
            ]
            .into_iter()
            .chain(super::keep_awake::button(row, timing, upcoming.effective))
            .collect(),
            Vec::new(),
            Some(format!(
                "schedule:{}:warn:{}",
                row.name,
                timestamp(upcoming.effective)
            )),
        )
        .await;
        Ok(())
    }

    pub(super) fn is_skipped(&self, row: &ScheduleRow, due: DateTime<Utc>) -> bool {
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
            if let Some(reason) = self.calendar_excludes(row, firing.due) {
                if self
                    .store
                    .record(&row.name, firing.due, now, "skipped", &reason)?
                {
                    self.post(
                        &row.channel,
                        format!(
                            "📅 Schedule {}: not run at {}: {reason}.",
                            row.name,
                            timing.describe(firing.due)
                        ),
                        vec![],
                    )
                    .await;
                }
            } else if self.is_skipped(row, firing.due) {
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
        if runs && self.hold_for_keep_awake(row, timing, last.due, now).await? {
            return Ok(());
        }
        let mut deferred = None;
        if runs && let Some(guard) = self.guard_of(&row.name) {
            match self.ask_guard(row, &guard, last.due, now).await? {
                Verdict::Run(note) => deferred = note,
                Verdict::Hold => return Ok(()),
            }
        }
        if runs && !self.leadership.holds() {
            tracing::warn!(schedule = %row.name,
                "leadership not renewed within its deadline; not starting this firing");
            return Ok(());
        }
        if runs {
            let Some(run) = self.claim(&row.name, RunKind::Cron, last.due, now)? else {
                tracing::info!(schedule = %row.name, "firing already claimed elsewhere");
                return Ok(());
            };
            let note = if let Some(deferred) = deferred {
                Some(deferred)
            } else if late > chrono::Duration::seconds(60) {
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
                this.execute_from(&row, run, note, 0, Tally::default(), Led::Yes)
                    .await;
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
        self.execute_from(row, run, note, 0, Tally::default(), Led::No)
            .await
    }

    /// Runs commands `start..` of a claimed run (the earlier ones ended as `tally` counts).
    /// A run the engine leads stops between commands once leadership is not held, and stays
    /// open for the replica that takes over.
    pub(crate) async fn execute_from(
        &self,
        row: &ScheduleRow,
        run: i64,
        note: Option<String>,
        start: usize,
        mut tally: Tally,
        led: Led,
    ) -> (String, String) {
        let total = row.commands.len();
        for (i, command) in row.commands.iter().enumerate().skip(start) {
            if led == Led::Yes && !self.leadership.holds() {
                tracing::warn!(schedule = %row.name, run,
                    "leadership lost mid-run; the replica that takes over resumes it");
                // No longer ours: if leadership comes back here, recovery resumes it.
                self.forget_run(run);
                return ("stopped".into(), "stopped: leadership lost".into());
            }
            // Before it runs, so a replica taking over knows it may have acted.
            if let Err(e) = self
                .store
                .record_command(run, i, command, "running", "", self.now())
            {
                tracing::error!(schedule = %row.name, error = %e, "cannot record a command start");
            }
            let invocation = Invocation::new("schedule", &row.channel, row.owner.clone(), command);
            let (progress, mut progress_rx) = mpsc::unbounded_channel();
            let drain = tokio::spawn(async move { while progress_rx.recv().await.is_some() {} });
            let response = self.router.handle(invocation, progress).await;
            let _ = drain.await;
            let outcome = match response.kind {
                ResponseKind::Ok => "ok",
                ResponseKind::Error => "failed",
                ResponseKind::Pending => "pending",
            };
            tally.count(outcome);
            if let Err(e) =
                self.store
                    .record_command(run, i, command, outcome, &response.text, self.now())
            {
                tracing::error!(schedule = %row.name, error = %e, "cannot record a command result");
            }
            let actions = response
                .confirmation
                .iter()
                .map(|code| Action {
                    label: "Confirm".into(),
                    command: format!("/confirm {code}"),
                })
                .collect();
            // A command's files go with its report (`/cost --week`'s chart in a weekly summary).
            self.post_with_files(
                &row.channel,
                report(row, i, note.as_deref(), outcome, &response.text),
                actions,
                response.files,
                Some(report_key(run, i)),
            )
            .await;
        }
        let outcome = tally.outcome();
        crate::metrics::schedule_run(outcome);
        let summary = tally.summary(total);
        if let Err(e) = self.store.complete(run, self.now(), outcome, &summary) {
            tracing::error!(schedule = %row.name, error = %e, "cannot complete the run");
        }
        self.forget_run(run);
        (outcome.to_owned(), summary)
    }

    /// Drops `run` from the runs this engine is executing.
    fn forget_run(&self, run: i64) {
        self.mine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run);
    }

    pub(crate) async fn post(&self, channel: &str, text: String, actions: Vec<Action>) {
        self.post_with_files(channel, text, actions, Vec::new(), None)
            .await;
    }

    /// Posts a message; one with a `key` goes out once whichever replica posts it.
    async fn post_with_files(
        &self,
        channel: &str,
        text: String,
        actions: Vec<Action>,
        files: Vec<crate::chat::Attachment>,
        key: Option<String>,
    ) {
        let message = OutboundMessage {
            channel: channel.to_owned(),
            text,
            actions,
            files,
            key,
        };
        if let Err(e) = self.outbox.post(message).await {
            tracing::warn!(channel, error = %e, "cannot post a schedule message");
        }
    }
}

/// When a firing actually runs: its due instant, or where a snooze moved it.
pub(super) fn effective(row: &ScheduleRow, due: DateTime<Utc>) -> DateTime<Utc> {
    match (row.snooze_due, row.snooze_to) {
        (Some(d), Some(to)) if d == due => to,
        _ => due,
    }
}

pub(super) fn numbered(commands: &[String]) -> String {
    commands
        .iter()
        .enumerate()
        .map(|(i, c)| format!("  {}. {c}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The notification key of command `index`'s report in run `run`: the same on every replica.
pub(super) fn report_key(run: i64, index: usize) -> String {
    format!("schedule-run:{run}:{index}")
}

/// A command's report: which schedule, which command of how many, how it ended.
fn report(
    row: &ScheduleRow,
    index: usize,
    note: Option<&str>,
    outcome: &str,
    reply: &str,
) -> String {
    let head = format!(
        "Schedule {} [{}/{}] {}{}",
        row.name,
        index + 1,
        row.commands.len(),
        row.commands.get(index).map(String::as_str).unwrap_or(""),
        note.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    match outcome {
        "ok" => format!("{head}\n✓ {reply}"),
        "pending" => format!("{head}\n… {reply}"),
        _ => format!("{head}\n✗ refused: {reply}"),
    }
}

/// Whether a run is the engine's own (it stops when leadership is lost) or asked for by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Led {
    Yes,
    No,
}

/// How a run's commands ended so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    ok: usize,
    failed: usize,
    pending: usize,
}

impl Tally {
    fn count(&mut self, outcome: &str) {
        match outcome {
            "ok" => self.ok += 1,
            "pending" => self.pending += 1,
            _ => self.failed += 1,
        }
    }

    fn outcome(&self) -> &'static str {
        let Tally {
            ok,
            failed,
            pending,
        } = *self;
        if failed == 0 && pending == 0 {
            "ok"
        } else if ok == 0 && pending == 0 {
            "failed"
        } else if pending > 0 && failed == 0 && ok == 0 {
            "pending"
        } else {
            "partial"
        }
    }

    fn summary(&self, total: usize) -> String {
        format!(
            "{} ok, {} failed, {} awaiting confirmation, of {total}",
            self.ok, self.failed, self.pending
        )
    }
}
