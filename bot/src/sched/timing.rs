//! When a schedule fires: a cron expression evaluated on the wall clock of a time zone, with
//! the daylight-saving rule of [`crate::sched`] applied to times that do not exist or exist
//! twice.
//!
//! The `cron` crate, asked for times in a zone, silently drops local times that fall into a
//! spring-forward gap. So the expression is evaluated on naive local time (cron over `Utc`,
//! which has no transitions), and each local time is then mapped to an instant here.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A cron expression or time zone that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error(
        "bad cron expression {expr:?}: {reason}. Six or seven fields are expected: seconds minutes hours day-of-month month day-of-week [year], e.g. \"0 0 20 * * Mon-Fri\" for 20:00 on weekdays"
    )]
    Cron { expr: String, reason: String },
    #[error(
        "unknown time zone {zone:?}{}: use an IANA name such as Europe/Helsinki, America/New_York or UTC",
        suggestion.as_deref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
    )]
    Zone {
        zone: String,
        suggestion: Option<String>,
    },
    #[error(
        "cron expression {expr:?} fires {gap_secs} s apart; schedules run at most once a minute (the first field is seconds: \"0 */5 * * * *\" is every 5 minutes)"
    )]
    TooFrequent { expr: String, gap_secs: i64 },
    #[error("cron expression {expr:?} never fires after {after}")]
    Never { expr: String, after: String },
}

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: cron::Schedule,
    tz: Tz,
}

/// How many candidate local times to examine before giving up on finding the next instant.
/// Only a fall-back hour of a every-second expression needs thousands; a year of them would
/// need millions, which no real expression does.
const MAX_CANDIDATES: usize = 100_000;

/// The shortest time between two runs of a schedule.
pub const MIN_INTERVAL_SECS: i64 = 60;
/// How many upcoming firings [`Timing::new`] checks against [`MIN_INTERVAL_SECS`].
const INTERVAL_SAMPLES: usize = 50;

impl Timing {
    pub fn new(expr: &str, zone: &str) -> Result<Timing, TimingError> {
        let tz = parse_zone(zone)?;
        let cron = cron::Schedule::from_str(expr.trim()).map_err(|e| TimingError::Cron {
            expr: expr.to_owned(),
            reason: e.to_string(),
        })?;
        let timing = Timing { cron, tz };
        // An expression such as "0 0 0 30 2 *" (February 30th) parses but never fires.
        let first = timing.next_after(Utc::now())?;
        timing.check_interval(first)?;
        Ok(timing)
    }

    /// Refuses expressions that fire less than [`MIN_INTERVAL_SECS`] apart, looking at the
    /// next [`INTERVAL_SAMPLES`] firings.
    fn check_interval(&self, first: DateTime<Utc>) -> Result<(), TimingError> {
        let mut previous = first;
        for _ in 0..INTERVAL_SAMPLES {
            let Ok(next) = self.next_after(previous) else {
                return Ok(());
            };
            let gap = (next - previous).num_seconds();
            if gap < MIN_INTERVAL_SECS {
                return Err(TimingError::TooFrequent {
                    expr: self.expr().to_owned(),
                    gap_secs: gap,
                });
            }
            previous = next;
        }
        Ok(())
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn expr(&self) -> &str {
        self.cron.source()
    }

    /// The first instant strictly after `after` at which the schedule fires.
    ///
    /// Local times in a spring-forward gap fire at the first instant after the gap (several
    /// of them merge into that one firing); a local time that occurs twice (fall back) fires
    /// at its first occurrence only.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, TimingError> {
        let local = after.with_timezone(&self.tz).naive_local();
        let start = Utc.from_utc_datetime(&local);
        for candidate in self.cron.after(&start).take(MAX_CANDIDATES) {
            let instant = resolve(&self.tz, candidate.naive_utc());
            if instant > after {
                return Ok(instant);
            }
        }
        Err(TimingError::Never {
            expr: self.expr().to_owned(),
            after: after.to_rfc3339(),
        })
    }

    /// Every firing in `(after, until]`, at most `limit` of them.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < limit {
            match self.next_after(at) {
                Ok(next) if next <= until => {
                    out.push(next);
                    at = next;
                }
                _ => break,
            }
        }
        out
    }

    /// `2026-03-29 04:00 EEST (01:00 UTC)`.
    pub fn describe(&self, instant: DateTime<Utc>) -> String {
        describe_in(&self.tz, instant)
    }
}

/// An instant in a zone and in UTC, for people.
pub fn describe_in(tz: &Tz, instant: DateTime<Utc>) -> String {
    let local = instant.with_timezone(tz);
    if *tz == Tz::UTC {
        return local.format("%a %Y-%m-%d %H:%M:%S UTC").to_string();
    }
    format!(
        "{} ({} UTC)",
        local.format("%a %Y-%m-%d %H:%M:%S %Z"),
        instant.format("%H:%M:%S")
    )
}

pub fn parse_zone(zone: &str) -> Result<Tz, TimingError> {
    zone.trim().parse::<Tz>().map_err(|_| TimingError::Zone {
        zone: zone.to_owned(),
        suggestion: crate::router::parse::suggest(
            zone,
            chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
        ),
    })
}

/// The instant a local wall-clock time stands for, under the documented DST rule.
pub fn resolve(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(tz, local),
    }
}

/// The first instant whose local time is at or after `local` — for a time inside a gap, the
/// instant the gap ends (the transition itself). Offsets lie within ±26 h, so the answer is
/// in that window around `local` read as UTC; local time only moves backwards at a fall-back,
/// which is never this close to a gap.
fn first_instant_at_or_after(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let target = local.and_utc().timestamp();
    let window = 26 * 3600;
    let mut lo = target - window; // its local time is before `local`
    let mut hi = target + window; // its local time is after `local`
    let local_of = |secs: i64| {
        let utc = DateTime::from_timestamp(secs, 0).unwrap_or_default();
        tz.from_utc_datetime(&utc.naive_utc()).naive_local()
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_of(mid) >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Sub-second parts of `local` (cron has none) are kept.
    DateTime::from_timestamp(hi, local.and_utc().timestamp_subsec_nanos()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fires(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let timing = Timing::new(expr, zone).unwrap();
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = timing.next_after(at).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn helsinki_spring_forward_runs_a_missing_time_once_at_the_end_of_the_gap() {
        // 2026-03-29: 03:00 EET jumps to 04:00 EEST (01:00 UTC); 03:30 does not exist.
        assert_eq!(
            fires("0 30 3 * * *", "Europe/Helsinki", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00+00:00", // 03:30 EET
                "2026-03-29T01:00:00+00:00", // gap → 04:00 EEST
                "2026-03-30T00:30:00+00:00", // 03:30 EEST
            ]
        );
        // Every 15 minutes: 03:00..03:45 and 04:00 all land on 04:00 EEST, once.
        assert_eq!(
            fires(
                "0 */15 * * * *",
                "Europe/Helsinki",
                "2026-03-29T00:30:00Z",
                4
            ),
            [
                "2026-03-29T00:45:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T01:15:00+00:00",
                "2026-03-29T01:30:00+00:00",
            ]
        );
    }

    #[test]
    fn new_york_fall_back_runs_a_repeated_time_once_at_its_first_occurrence() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        assert_eq!(
            fires(
                "0 30 1 * * *",
                "America/New_York",
                "2026-10-31T12:00:00Z",
                3
            ),
            [
                "2026-11-01T05:30:00+00:00", // 01:30 EDT, the first one
                "2026-11-02T06:30:00+00:00", // 01:30 EST
                "2026-11-03T06:30:00+00:00",
            ]
        );
        // Asked from inside the repeated hour (01:10 EST), the 01:30 of that day is over.
        assert_eq!(
            fires(
                "0 30 1 * * *",
                "America/New_York",
                "2026-11-01T06:10:00Z",
                1
            ),
            ["2026-11-02T06:30:00+00:00"]
        );
    }

    #[test]
    fn twenty_hundred_stays_local_across_both_transitions() {
        // 20:00 Helsinki is 18:00 UTC in winter and 17:00 UTC in summer.
        assert_eq!(
            fires(
                "0 0 20 * * Mon-Fri",
                "Europe/Helsinki",
                "2026-03-26T00:00:00Z",
                3
            ),
            [
                "2026-03-26T18:00:00+00:00",
                "2026-03-27T18:00:00+00:00",
                "2026-03-30T17:00:00+00:00",
            ]
        );
    }

    #[test]
    fn schedules_run_at_most_once_a_minute() {
        for expr in [
            "* * * * * *",
            "*/30 * * * * *",
            "0,59 * * * * *",
            "0-5 0 20 * * *",
        ] {
            let err = Timing::new(expr, "UTC").unwrap_err().to_string();
            assert!(err.contains("at most once a minute"), "{expr}: {err}");
        }
        for expr in ["0 * * * * *", "0 */5 * * * *", "0 0 20 * * Mon-Fri"] {
            assert!(Timing::new(expr, "UTC").is_ok(), "{expr}");
        }
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        let err = Timing::new("0 0 25 * * *", "UTC").unwrap_err().to_string();
        assert!(
            err.starts_with("bad cron expression \"0 0 25 * * *\""),
            "{err}"
        );
        assert!(err.contains("0 0 20 * * Mon-Fri"), "{err}");
        let err = Timing::new("0 0 20 * * *", "Europe/Helsinky")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown time zone \"Europe/Helsinky\" (did you mean Europe/Helsinki?)"),
            "{err}"
        );
        let err = Timing::new("0 0 0 30 2 *", "UTC").unwrap_err().to_string();
        assert!(err.contains("never fires"), "{err}");
    }
}
