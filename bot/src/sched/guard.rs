//! Guarded runs: before a firing of a schedule with a `[schedule.guard]` runs, its guard command
//! (e.g. `/runner guard --pool gpu`) is asked. While the guard fails — jobs in progress, or it
//! cannot tell — the firing is deferred (snoozed by `recheck`, unclaimed, so exactly-once holds),
//! never forced: "Scale down anyway" (`/schedule run NAME`, still confirmed) and "Keep awake"
//! (`/schedule skip NAME`) are offered once. Past `until` after the due time the firing is
//! recorded as `deferred` and not run.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::config::GuardDef;
use super::store::ScheduleRow;
use super::{Inner, SchedError};
use crate::chat::Action;
use crate::router::{Invocation, ResponseKind};

/// What the guard decided for one firing.
pub(super) enum Verdict {
    /// Run now; the note says how long it was deferred, if it was.
    Run(Option<String>),
    /// Not now (deferred, or given up).
    Hold,
}

impl Inner {
    pub(super) fn guard_of(&self, schedule: &str) -> Option<GuardDef> {
        self.guards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(schedule)
            .cloned()
    }

    /// Asks the guard about the firing due at `due`.
    pub(super) async fn ask_guard(
        &self,
        row: &ScheduleRow,
        guard: &GuardDef,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Verdict, SchedError> {
        let invocation =
            Invocation::new("schedule", &row.channel, row.owner.clone(), &guard.command);
        let (progress, mut progress_rx) = mpsc::unbounded_channel();
        let drain = tokio::spawn(async move { while progress_rx.recv().await.is_some() {} });
        let response = self.router.handle(invocation, progress).await;
        let _ = drain.await;
        let key = (row.name.clone(), due);
        let since = self
            .deferred
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        if response.kind == ResponseKind::Ok {
            self.deferred
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Ok(Verdict::Run(since.map(|s| {
                format!("deferred {} by {}", minutes(now - s), guard.command)
            })));
        }
        let reason = response.text;
        let until = chrono::Duration::from_std(guard.until).unwrap_or(chrono::Duration::hours(2));
        if now - due >= until {
            self.deferred
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            let detail = format!(
                "not run: {} still said no after {}: {reason}",
                guard.command,
                minutes(until)
            );
            if self
                .store
                .record(&row.name, due, now, "deferred", &detail)?
            {
                self.post(
                    &row.channel,
                    format!(
                        "Schedule {}: {detail}. Nothing was changed; `/schedule run {}` runs it anyway.",
                        row.name, row.name
                    ),
                    vec![],
                )
                .await;
            }
            return Ok(Verdict::Hold);
        }
        let recheck =
            chrono::Duration::from_std(guard.recheck).unwrap_or(chrono::Duration::minutes(10));
        let next = now + recheck;
        self.store.set_snooze(&row.name, due, next)?;
        // The deferral is its own notice: no "runs in 15 min" warning before each re-check.
        self.store.set_warned(&row.name, next)?;
        if since.is_none() {
            self.deferred
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, now);
            self.post(
                &row.channel,
                format!(
                    "⏸ Schedule {} deferred: {reason}. Asking `{}` again every {} until {} past the due time; nothing runs while it says no.",
                    row.name,
                    guard.command,
                    minutes(recheck),
                    minutes(until)
                ),
                vec![
                    Action {
                        label: "Run anyway".into(),
                        command: format!("/schedule run {}", row.name),
                    },
                    Action {
                        label: "Keep awake tonight".into(),
                        command: format!("/schedule skip {}", row.name),
                    },
                ],
            )
            .await;
        }
        Ok(Verdict::Hold)
    }
}

/// `25 min`, `2 h 5 min`.
fn minutes(d: chrono::Duration) -> String {
    let total = d.num_minutes().max(0);
    match (total / 60, total % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}
