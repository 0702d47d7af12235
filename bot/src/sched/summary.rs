//! Node-hours avoided by scale-to-zero schedules, from the commands schedules ran.
//!
//! A scheduled command that succeeded and names `--pool NAME --count N` (as `/aks scale` does)
//! is a pool size change at the time it ended. Each interval a pool spent at zero is counted at
//! the size it had before (the last non-zero count seen, e.g. the morning warm-up's; failing
//! that, the next one). `/schedule summary` reports it per pool; scheduling
//! `/schedule summary` weekly (`--cron "0 0 9 * * Mon"`) posts it to the channel.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::store::CommandResult;

/// `--pool gpu --count 0` (or `--pool=gpu --count=0`) in a command line.
pub fn pool_change(command: &str) -> Option<(String, i64)> {
    let words = crate::router::parse::tokenize(command).ok()?;
    let mut pool = None;
    let mut count = None;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (word.as_str(), None),
        };
        let value = || inline.clone().or_else(|| words.clone().next().cloned());
        match name {
            "--pool" => pool = value(),
            "--count" => count = value().and_then(|v| v.parse::<i64>().ok()),
            _ => {}
        }
    }
    Some((pool?, count?))
}

/// What one pool saved in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSavings {
    pub pool: String,
    /// Hours spent at zero inside the window.
    pub hours_at_zero: f64,
    /// Node-hours not run: each zero interval × the pool's size before it.
    pub node_hours: f64,
    /// Hours at zero whose size is unknown (no non-zero count ever recorded).
    pub hours_unknown_size: f64,
}

/// Savings per pool in `[from, to]` from size changes `(at, pool, count)` (any order; changes
/// before `from` give the state at its start).
pub fn node_hours_avoided(
    changes: &[(DateTime<Utc>, String, i64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<PoolSavings> {
    let mut by_pool: BTreeMap<&str, Vec<(DateTime<Utc>, i64)>> = BTreeMap::new();
    for (at, pool, count) in changes {
        if *at <= to {
            by_pool.entry(pool).or_default().push((*at, *count));
        }
    }
    let hours = |a: DateTime<Utc>, b: DateTime<Utc>| {
        let (a, b) = (a.max(from), b.min(to));
        if b > a {
            (b - a).num_seconds() as f64 / 3600.0
        } else {
            0.0
        }
    };
    let mut out = Vec::new();
    for (pool, mut changes) in by_pool {
        changes.sort_by_key(|(at, _)| *at);
        let mut savings = PoolSavings {
            pool: pool.to_owned(),
            hours_at_zero: 0.0,
            node_hours: 0.0,
            hours_unknown_size: 0.0,
        };
        let mut size: Option<i64> = None;
        for (i, (at, count)) in changes.iter().enumerate() {
            if *count > 0 {
                size = Some(*count);
                continue;
            }
            let end = changes
                .iter()
                .skip(i + 1)
                .find(|(_, c)| *c > 0)
                .map_or(to, |(t, _)| *t);
            // Consecutive zeros: count the interval once, from the first.
            if i > 0 && changes[i - 1].1 == 0 {
                continue;
            }
            let h = hours(*at, end);
            let nodes = size.or_else(|| {
                changes
                    .iter()
                    .skip(i + 1)
                    .find(|(_, c)| *c > 0)
                    .map(|(_, c)| *c)
            });
            savings.hours_at_zero += h;
            match nodes {
                Some(n) => savings.node_hours += h * n as f64,
                None => savings.hours_unknown_size += h,
            }
        }
        if savings.hours_at_zero > 0.0 {
            out.push(savings);
        }
    }
    out
}

/// The summary text for a channel (or every channel), over `days` days up to `now`.
pub fn render(
    results: &[CommandResult],
    channel: Option<&str>,
    days: i64,
    now: DateTime<Utc>,
) -> String {
    let from = now - chrono::Duration::days(days);
    let changes: Vec<(DateTime<Utc>, String, i64)> = results
        .iter()
        .filter(|r| r.outcome == "ok")
        .filter(|r| {
            channel.is_none_or(|c| {
                r.channel
                    .as_deref()
                    .is_some_and(|rc| crate::chat::same_channel(rc, c))
            })
        })
        .filter_map(|r| pool_change(&r.command).map(|(pool, count)| (r.at, pool, count)))
        .collect();
    let savings = node_hours_avoided(&changes, from, now);
    let place = channel.map(|c| format!(" in {c}")).unwrap_or_default();
    if savings.is_empty() {
        return format!("No pool was scaled to zero by a schedule{place} in the last {days} days.");
    }
    let total: f64 = savings.iter().map(|s| s.node_hours).sum();
    let mut out =
        format!("Scale-to-zero schedules{place}, last {days} days: {total:.1} node-hours avoided");
    let gpu: f64 = savings
        .iter()
        .filter(|s| s.pool.to_ascii_lowercase().contains("gpu"))
        .map(|s| s.node_hours)
        .sum();
    if gpu > 0.0 {
        out.push_str(&format!(" ({gpu:.1} of them GPU)"));
    }
    out.push('.');
    for s in &savings {
        out.push_str(&format!(
            "\n  {}: {:.1} h at zero, {:.1} node-hours",
            s.pool, s.hours_at_zero, s.node_hours
        ));
        if s.hours_unknown_size > 0.0 {
            out.push_str(&format!(
                " (+{:.1} h at zero of unknown size: no non-zero --count recorded)",
                s.hours_unknown_size
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_pool_and_count_from_a_command() {
        assert_eq!(
            pool_change("/aks scale --pool gpu --count 0"),
            Some(("gpu".into(), 0))
        );
        assert_eq!(
            pool_change("/aks scale --count=3 --pool=workers"),
            Some(("workers".into(), 3))
        );
        assert_eq!(pool_change("/aks scale --pool gpu"), None);
        assert_eq!(pool_change("/echo hi"), None);
    }

    #[test]
    fn nights_at_zero_count_at_the_warm_up_size() {
        // Mon 20:00 → Tue 07:00 off (11 h), Tue 20:00 → Wed 07:00 off (11 h), Wed 20:00 off
        // until the window ends Thu 08:00 (12 h). gpu warms to 1 node, workers to 2.
        let c = |t: &str, pool: &str, n: i64| (utc(t), pool.to_owned(), n);
        let changes = vec![
            c("2026-11-23T07:00:00Z", "gpu", 1),
            c("2026-11-23T07:00:00Z", "workers", 2),
            c("2026-11-23T20:00:00Z", "gpu", 0),
            c("2026-11-23T20:00:00Z", "workers", 0),
            c("2026-11-24T07:00:00Z", "gpu", 1),
            c("2026-11-24T07:00:00Z", "workers", 2),
            c("2026-11-24T20:00:00Z", "gpu", 0),
            c("2026-11-24T20:00:00Z", "workers", 0),
            c("2026-11-25T07:00:00Z", "gpu", 1),
            c("2026-11-25T07:00:00Z", "workers", 2),
            c("2026-11-25T20:00:00Z", "gpu", 0),
            c("2026-11-25T20:00:00Z", "workers", 0),
            // A second scale-to-zero while already at zero is not counted twice.
            c("2026-11-25T21:00:00Z", "gpu", 0),
        ];
        let savings = node_hours_avoided(
            &changes,
            utc("2026-11-23T00:00:00Z"),
            utc("2026-11-26T08:00:00Z"),
        );
        assert_eq!(savings.len(), 2);
        assert_eq!(savings[0].pool, "gpu");
        assert_eq!(savings[0].hours_at_zero, 34.0);
        assert_eq!(savings[0].node_hours, 34.0);
        assert_eq!(savings[1].pool, "workers");
        assert_eq!(savings[1].node_hours, 68.0);
        // Clipped to the window: only the part after 2026-11-24T00:00.
        let savings = node_hours_avoided(
            &changes,
            utc("2026-11-24T00:00:00Z"),
            utc("2026-11-24T12:00:00Z"),
        );
        assert_eq!(savings[0].hours_at_zero, 7.0);
    }

    #[test]
    fn a_pool_never_seen_up_is_reported_as_unknown_size() {
        let changes = vec![(utc("2026-11-23T20:00:00Z"), "gpu".to_owned(), 0)];
        let savings = node_hours_avoided(
            &changes,
            utc("2026-11-23T00:00:00Z"),
            utc("2026-11-24T00:00:00Z"),
        );
        assert_eq!(savings[0].node_hours, 0.0);
        assert_eq!(savings[0].hours_unknown_size, 4.0);
    }
}
