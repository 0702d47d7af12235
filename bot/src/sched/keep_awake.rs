//! Keep-awake: `/schedule keep-awake POOL --until TIME` (or the "Keep awake until …" button on a
//! scale-down warning). While it lasts, a scheduled run that scales POOL to zero does not run: it
//! is moved to the keep-awake's end, and runs then — so the pool is not left up all night once
//! the keep-awake is over. It is said in the channel when set, when it holds a run, and when it
//! ends; it ends by itself (the lesson of kube-downscaler's `exclude-until`).

use chrono::{DateTime, Utc};

use super::store::{KeepAwake, ScheduleRow};
use super::timing::Timing;
use super::{Inner, SchedError};

/// The longest keep-awake: a week.
pub const MAX_KEEP_AWAKE_HOURS: i64 = 7 * 24;

/// Pools a schedule's commands scale to zero (`--pool P --count 0`).
pub fn scaled_to_zero(commands: &[String]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| super::summary::pool_change(c))
        .filter(|(_, count)| *count == 0)
        .map(|(pool, _)| pool)
        .collect()
}

impl Inner {
    /// The keep-awake that holds this schedule's run at `now`, if any.
    fn keeping(
        &self,
        row: &ScheduleRow,
        now: DateTime<Utc>,
    ) -> Result<Option<KeepAwake>, SchedError> {
        let pools = scaled_to_zero(&row.commands);
        if pools.is_empty() {
            return Ok(None);
        }
        Ok(self
            .store
            .keep_awakes()?
            .into_iter()
            .filter(|k| k.until > now && pools.contains(&k.pool))
            .max_by_key(|k| k.until))
    }

    /// Moves the firing due at `due` to the end of a keep-awake of a pool it scales down.
    /// Returns true when it did (the run waits).
    pub(super) async fn hold_for_keep_awake(
        &self,
        row: &ScheduleRow,
        timing: &Timing,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, SchedError> {
        let Some(k) = self.keeping(row, now)? else {
            return Ok(false);
        };
        self.store.set_snooze(&row.name, due, k.until)?;
        self.store.set_warned(&row.name, k.until)?;
        self.post(
            &row.channel,
            format!(
                "☕ Schedule {}: pool {} is kept awake until {} (by {}); the run due {} waits until then.",
                row.name,
                k.pool,
                timing.describe(k.until),
                k.set_by,
                timing.describe(due)
            ),
            vec![],
        )
        .await;
        Ok(true)
    }

    /// Says which keep-awakes ended, and returns when the next one ends.
    pub(super) async fn expire_keep_awakes(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SchedError> {
        let mut next = None;
        for k in self.store.keep_awakes()? {
            if k.until > now {
                next = Some(next.map_or(k.until, |n: DateTime<Utc>| n.min(k.until)));
                continue;
            }
            if self.store.end_keep_awake(&k.pool, k.until)? {
                self.post(
                    &k.channel,
                    format!(
                        "☕ Keep-awake of pool {} ended ({} set it until {}); scheduled scale-downs of it run again.",
                        k.pool,
                        k.set_by,
                        super::timing::describe_in(&chrono_tz::UTC, k.until)
                    ),
                    vec![],
                )
                .await;
            }
        }
        Ok(next)
    }
}

/// Reads `--until`: `HH:MM` (the next such time), `YYYY-MM-DD HH:MM`, or RFC 3339.
pub fn parse_until(
    text: &str,
    tz: &chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(local) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(super::timing::resolve(tz, local));
        }
    }
    if let Ok(time) = chrono::NaiveTime::parse_from_str(text, "%H:%M") {
        let today = now.with_timezone(tz).date_naive();
        let at = super::timing::resolve(tz, today.and_time(time));
        if at > now {
            return Ok(at);
        }
        let tomorrow = today
            .succ_opt()
            .ok_or("that date is past the calendar's end")?;
        return Ok(super::timing::resolve(tz, tomorrow.and_time(time)));
    }
    Err(format!(
        "--until {text:?} is not a time: write HH:MM (e.g. 23:00), YYYY-MM-DD HH:MM, or an RFC 3339 instant"
    ))
}

/// `/schedule keep-awake POOL --until TIME [--tz Z]`.
pub(super) fn command(
    inner: &Inner,
    pool: &str,
    until: &str,
    tz: Option<&str>,
    invocation: &crate::router::Invocation,
) -> Result<String, String> {
    deckhand_cloud_names::NameRule::AgentPool
        .check(pool)
        .map_err(|e| format!("pool: {e}"))?;
    let rows = inner.store.all().map_err(|e| e.to_string())?;
    let holding: Vec<&ScheduleRow> = rows
        .iter()
        .filter(|r| scaled_to_zero(&r.commands).iter().any(|p| p == pool))
        .collect();
    let zone = match tz {
        Some(z) => z.to_owned(),
        None => holding.first().map_or("UTC".to_owned(), |r| r.tz.clone()),
    };
    let zone = super::timing::parse_zone(&zone).map_err(|e| e.to_string())?;
    let now = inner.now();
    let until = parse_until(until, &zone, now)?;
    if until <= now {
        return Err(format!(
            "--until {} is in the past; give a later time",
            super::timing::describe_in(&zone, until)
        ));
    }
    if until - now > chrono::Duration::hours(MAX_KEEP_AWAKE_HOURS) {
        return Err(format!(
            "keep awake for at most a week (asked until {}); to stop a schedule for longer, /schedule pause NAME",
            super::timing::describe_in(&zone, until)
        ));
    }
    inner
        .store
        .set_keep_awake(&KeepAwake {
            pool: pool.to_owned(),
            until,
            set_by: invocation.caller.display_name.clone(),
            channel: invocation.channel.clone(),
        })
        .map_err(|e| e.to_string())?;
    let names: Vec<&str> = holding.iter().map(|r| r.name.as_str()).collect();
    Ok(format!(
        "☕ Pool {pool} is kept awake until {} (set by {}). {} It ends by itself.",
        super::timing::describe_in(&zone, until),
        invocation.caller.display_name,
        if names.is_empty() {
            "No schedule scales it to zero now.".to_owned()
        } else {
            format!(
                "Scale-downs by {} wait until then, and run then.",
                names.join(", ")
            )
        }
    ))
}

/// The "Keep awake until …" button under a warning of a run that scales pools to zero: two
/// hours past the run, in the schedule's zone.
pub(super) fn button(
    row: &ScheduleRow,
    timing: &Timing,
    run_at: DateTime<Utc>,
) -> Option<crate::chat::Action> {
    let pool = scaled_to_zero(&row.commands).into_iter().next()?;
    let until = run_at + chrono::Duration::hours(2);
    let local = until.with_timezone(&timing.tz());
    Some(crate::chat::Action {
        label: format!("Keep {pool} awake until {}", local.format("%H:%M")),
        command: format!(
            "/schedule keep-awake {pool} --until '{}' --tz {}",
            local.format("%Y-%m-%d %H:%M"),
            timing.tz().name()
        ),
    })
}
