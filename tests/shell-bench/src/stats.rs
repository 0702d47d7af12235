//! One run's figures, and the table of medians over several runs.

use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one `shell-bench run` measured; one JSON line per run in `--json FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub name: String,
    /// Spawn to the first answer.
    pub ready_ms: f64,
    pub rounds: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// CPU (user + system) of the bot's process tree during the round trips, per command.
    pub cpu_us_per_command: f64,
    pub burst_lines: usize,
    /// First line written to last reply read, for `burst_lines` lines written at once.
    pub burst_ms: Option<f64>,
    pub peak_rss_mib: f64,
    /// CPUs the driver (and so the bot) were allowed to run on.
    pub cpus: String,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    let index = ((last as f64) * p).round() as usize;
    sorted
        .get(index.min(last))
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

impl RunResult {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        ready: Duration,
        mut samples: Vec<Duration>,
        cpu: Duration,
        burst: Option<Duration>,
        burst_lines: usize,
        rss_kib: u64,
        cpus: String,
    ) -> RunResult {
        samples.sort();
        let rounds = samples.len();
        let total: Duration = samples.iter().sum();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds.max(1) as f64;
        RunResult {
            name: name.to_owned(),
            ready_ms: ready.as_secs_f64() * 1e3,
            rounds,
            p50_us: percentile(&samples, 0.50),
            p99_us: percentile(&samples, 0.99),
            max_us: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
            mean_us: per(total),
            cpu_us_per_command: per(cpu),
            burst_lines,
            burst_ms: burst.map(|b| b.as_secs_f64() * 1e3),
            peak_rss_mib: rss_kib as f64 / 1024.0,
            cpus,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{}: ready {:.1} ms; {} round trips p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; \
             CPU {:.0} µs/command; burst of {} {}; peak RSS {:.1} MiB; CPUs {}",
            self.name,
            self.ready_ms,
            self.rounds,
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.cpu_us_per_command,
            self.burst_lines,
            self.burst_ms
                .map_or("not run".to_owned(), |b| format!("{b:.0} ms")),
            self.peak_rss_mib,
            self.cpus
        )
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Medians per bot (in the order first seen) of every figure, as a Markdown table, followed by
/// the issue-21 goals for each `deckhand*` column when `hubot` and `errbot` columns exist.
pub fn summary(runs: &[RunResult]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        if !names.contains(&run.name.as_str()) {
            names.push(&run.name);
        }
    }
    let med = |name: &str, f: &dyn Fn(&RunResult) -> Option<f64>| {
        median(
            runs.iter()
                .filter(|r| r.name == name)
                .filter_map(f)
                .collect(),
        )
    };
    type Row<'a> = (&'a str, &'a dyn Fn(&RunResult) -> Option<f64>, &'a str);
    let rows: [Row<'_>; 8] = [
        ("p50", &|r| Some(r.p50_us), "µs"),
        ("p99", &|r| Some(r.p99_us), "µs"),
        ("max", &|r| Some(r.max_us), "µs"),
        ("mean", &|r| Some(r.mean_us), "µs"),
        ("burst", &|r| r.burst_ms, "ms"),
        ("CPU per command", &|r| Some(r.cpu_us_per_command), "µs"),
        ("peak RSS", &|r| Some(r.peak_rss_mib), "MiB"),
        ("ready (spawn → first answer)", &|r| Some(r.ready_ms), "ms"),
    ];
    let mut out = String::new();
    let runs_of = |name: &str| runs.iter().filter(|r| r.name == name).count();
    let _ = write!(out, "| |");
    for name in &names {
        let rounds = runs
            .iter()
            .find(|r| r.name == *name)
            .map_or(0, |r| r.rounds);
        let _ = write!(out, " {name} ({} runs × {rounds}) |", runs_of(name));
    }
    let _ = write!(out, "\n|---|");
    for _ in &names {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    for (label, f, unit) in rows {
        let _ = write!(out, "| {label} |");
        for name in &names {
            match med(name, f) {
                Some(v) => {
                    let _ = write!(out, " {} {unit} |", shown(v));
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push_str(&goals(&names, &med));
    out
}

fn shown(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

type Median<'a> = dyn Fn(&str, &dyn Fn(&RunResult) -> Option<f64>) -> Option<f64> + 'a;

fn goals(names: &[&str], med: &Median<'_>) -> String {
    let mut out = String::new();
    let hubot = names.iter().find(|n| n.starts_with("hubot"));
    let errbot = names.iter().find(|n| n.starts_with("errbot"));
    for name in names.iter().filter(|n| n.starts_with("deckhand")) {
        let _ = writeln!(out, "\nGoals for {name} (medians):");
        let mut check = |goal: String, value: Option<f64>, limit: Option<f64>| {
            let verdict = match (value, limit) {
                (Some(v), Some(l)) if v <= l => format!("met ({} ≤ {})", shown(v), shown(l)),
                (Some(v), Some(l)) => format!("NOT met ({} > {})", shown(v), shown(l)),
                _ => "not measured".to_owned(),
            };
            let _ = writeln!(out, "- {goal}: {verdict}");
        };
        let p50 = med(name, &|r| Some(r.p50_us));
        let p99 = med(name, &|r| Some(r.p99_us));
        let burst = med(name, &|r| r.burst_ms);
        if let Some(h) = hubot {
            check(
                format!("p50 ≤ ½ {h}'s (µs)"),
                p50,
                med(h, &|r| Some(r.p50_us)).map(|v| v / 2.0),
            );
            check(
                format!("burst ≤ {h}'s (ms)"),
                burst,
                med(h, &|r| r.burst_ms),
            );
        }
        let peers: Vec<f64> = [hubot, errbot]
            .into_iter()
            .flatten()
            .filter_map(|p| med(p, &|r| Some(r.p99_us)))
            .collect();
        if !peers.is_empty() {
            let lowest = peers.iter().copied().fold(f64::INFINITY, f64::min);
            check(
                "p99 ≤ ⅒ of every peer's (µs)".into(),
                p99,
                Some(lowest / 10.0),
            );
        }
        check(
            "max ≤ 2 ms (µs; meant over 20,000 rounds)".into(),
            med(name, &|r| Some(r.max_us)),
            Some(2_000.0),
        );
        check(
            "CPU per command ≤ 60 µs".into(),
            med(name, &|r| Some(r.cpu_us_per_command)),
            Some(60.0),
        );
        check(
            "peak RSS ≤ 20 MiB".into(),
            med(name, &|r| Some(r.peak_rss_mib)),
            Some(20.0),
        );
        check(
            "ready ≤ 20 ms".into(),
            med(name, &|r| Some(r.ready_ms)),
            Some(20.0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, p50: f64) -> RunResult {
        RunResult {
            name: name.into(),
            ready_ms: 10.0,
            rounds: 2000,
            p50_us: p50,
            p99_us: p50 * 2.0,
            max_us: p50 * 4.0,
            mean_us: p50,
            cpu_us_per_command: 50.0,
            burst_lines: 2000,
            burst_ms: Some(100.0),
            peak_rss_mib: 12.0,
            cpus: "1".into(),
        }
    }

    #[test]
    fn medians_per_bot_and_goals_against_the_peers() {
        let runs = [
            run("deckhand", 90.0),
            run("hubot", 250.0),
            run("deckhand", 100.0),
            run("hubot", 200.0),
            run("deckhand", 500.0),
            run("errbot", 900.0),
        ];
        let text = summary(&runs);
        assert!(
            text.contains("| p50 | 100 µs | 225 µs | 900 µs |"),
            "{text}"
        );
        assert!(
            text.contains("p50 ≤ ½ hubot's (µs): met (100 ≤ 112)"),
            "{text}"
        );
        // p99 median 200 against the lowest peer p99 (hubot 450) / 10.
        assert!(
            text.contains("p99 ≤ ⅒ of every peer's (µs): NOT met (200 > 45.0)"),
            "{text}"
        );
        assert!(text.contains("CPU per command ≤ 60 µs: met"), "{text}");
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let r = RunResult::new(
            "x",
            Duration::ZERO,
            samples,
            Duration::from_micros(500),
            None,
            0,
            2048,
            "0".into(),
        );
        assert_eq!(r.p50_us.round(), 51.0);
        assert_eq!(r.p99_us.round(), 99.0);
        assert_eq!(r.max_us.round(), 100.0);
        assert_eq!(r.cpu_us_per_command, 5.0);
        assert_eq!(r.peak_rss_mib, 2.0);
    }
}
