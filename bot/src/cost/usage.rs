//! Node-hours from samples: a pool's node count holds from one sample to the next, and the
//! last sample holds until the end of the window (at most "now"). Time before a pool's first
//! sample is not guessed: it is counted as uncovered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::store::Sample;

/// One pool over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUsage {
    pub cluster: String,
    pub pool: String,
    pub vm_size: String,
    pub region: String,
    pub spot: bool,
    pub gpu: bool,
    pub deallocate: bool,
    /// The node count of the last sample in the window.
    pub nodes_now: i64,
    pub node_hours: f64,
    /// Hours of the window before the pool's first sample (not counted).
    pub uncovered_hours: f64,
}

fn hours(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    if b > a {
        (b - a).num_milliseconds() as f64 / 3_600_000.0
    } else {
        0.0
    }
}

/// Usage per (cluster, pool) in `[from, to)` from `samples` (any order; samples before `from`
/// give the state at its start, samples at or after `to` are ignored).
pub fn usage(samples: &[Sample], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<PoolUsage> {
    let mut pools: BTreeMap<(&str, &str), Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.at < to) {
        pools.entry((&s.cluster, &s.pool)).or_default().push(s);
    }
    let mut out = Vec::new();
    for ((cluster, pool), mut list) in pools {
        list.sort_by_key(|s| s.at);
        // Only the last sample at or before `from` matters for the window's start.
        let start = list.iter().rposition(|s| s.at <= from).unwrap_or(0);
        let list = &list[start..];
        let Some(last) = list.last() else { continue };
        let mut node_hours = 0.0;
        for (i, s) in list.iter().enumerate() {
            let end = list.get(i + 1).map_or(to, |n| n.at);
            node_hours += s.count.max(0) as f64 * hours(s.at.max(from), end.min(to));
        }
        out.push(PoolUsage {
            cluster: cluster.to_owned(),
            pool: pool.to_owned(),
            vm_size: last.vm_size.clone(),
            region: last.region.clone(),
            spot: last.spot,
            gpu: last.gpu,
            deallocate: last.deallocate,
            nodes_now: last.count,
            node_hours,
            uncovered_hours: list.first().map_or(0.0, |f| hours(from, f.at.min(to))),
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub fn sample(at: &str, pool: &str, count: i64) -> Sample {
        Sample {
            at: t(at),
            cluster: "c1".into(),
            pool: pool.into(),
            vm_size: "Standard_NC6s_v3".into(),
            region: "westeurope".into(),
            spot: false,
            count,
            deallocate: false,
            gpu: true,
            origin: "sampler".into(),
        }
    }

    #[test]
    fn counts_hold_until_the_next_sample() {
        // 2 nodes from 00:00 (sampled the day before), 0 from 08:00, 3 from 12:30, to 18:00:
        // 2×8 + 0×4.5 + 3×5.5 = 32.5 node-hours.
        let samples = [
            sample("2026-12-01T22:00:00Z", "gpu", 2),
            sample("2026-12-02T08:00:00Z", "gpu", 0),
            sample("2026-12-02T12:30:00Z", "gpu", 3),
            sample("2026-12-02T19:00:00Z", "gpu", 9),
        ];
        let u = usage(
            &samples,
            t("2026-12-02T00:00:00Z"),
            t("2026-12-02T18:00:00Z"),
        );
        assert_eq!(u.len(), 1);
        assert!((u[0].node_hours - 32.5).abs() < 1e-9, "{}", u[0].node_hours);
        assert_eq!(u[0].nodes_now, 3);
        assert_eq!(u[0].uncovered_hours, 0.0);
    }

    #[test]
    fn time_before_the_first_sample_is_uncovered_not_guessed() {
        let samples = [sample("2026-12-02T06:00:00Z", "gpu", 1)];
        let u = usage(
            &samples,
            t("2026-12-02T00:00:00Z"),
            t("2026-12-02T10:00:00Z"),
        );
        assert!((u[0].node_hours - 4.0).abs() < 1e-9);
        assert!((u[0].uncovered_hours - 6.0).abs() < 1e-9);
    }
}
