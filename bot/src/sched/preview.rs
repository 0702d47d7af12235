//! `/schedule preview NAME [--days 14]`: the next firings in the schedule's zone and in UTC,
//! marking where the UTC offset changes (DST) and which days are skipped and why.

use std::fmt::Write as _;

use chrono::{DateTime, Offset, Utc};

use super::Inner;
use super::engine::effective;
use super::store::ScheduleRow;
use super::timing::Timing;

/// The longest preview.
pub const MAX_DAYS: i64 = 92;
/// At most this many firings are listed.
const MAX_LINES: usize = 200;

fn offset(timing: &Timing, at: DateTime<Utc>) -> chrono::FixedOffset {
    at.with_timezone(&timing.tz()).offset().fix()
}

pub(super) fn render(
    inner: &Inner,
    row: &ScheduleRow,
    timing: &Timing,
    now: DateTime<Utc>,
    days: i64,
) -> String {
    let until = now + chrono::Duration::days(days);
    let after = row.anchor.max(now);
    let firings = timing.between(after, until, MAX_LINES);
    let mut out = format!(
        "Schedule {} (`{}` in {}): {} firing{} in the next {days} days{}",
        row.name,
        row.cron,
        row.tz,
        firings.len(),
        if firings.len() == 1 { "" } else { "s" },
        if row.paused {
            " — paused: none of them runs until /schedule resume"
        } else {
            ""
        }
    );
    let mut previous = offset(timing, now);
    for due in firings {
        let local = due.with_timezone(&timing.tz());
        let _ = write!(
            out,
            "\n{} · {} UTC",
            local.format("%a %Y-%m-%d %H:%M %Z"),
            due.format("%H:%M")
        );
        let here = offset(timing, due);
        if here != previous {
            let _ = write!(out, " · 🕑 DST shift: UTC{} (was UTC{})", here, previous);
            previous = here;
        }
        if let Some(reason) = inner.calendar_excludes(row, due) {
            let _ = write!(out, " · ⛔ skipped: {reason}");
        } else if inner.is_skipped(row, due) {
            out.push_str(" · ⛔ skipped (/schedule skip)");
        } else if effective(row, due) != due {
            let _ = write!(
                out,
                " · snoozed to {}",
                timing.describe(effective(row, due))
            );
        }
    }
    out
}
