// A benchmark is a harness like a test: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

//! Schedules benchmark (issue 6).
//!
//! 1. Next fire times: 10,000 schedules (a mix of expressions in four zones), next firing
//!    computed for each — cold (parse + compute) and warm (compute only), total and per
//!    schedule.
//! 2. A full engine pass over 10,000 schedules stored in the state database with nothing due
//!    (read all rows, compute every next firing and warning): what the engine pays each time
//!    it wakes.
//! 3. Fire jitter on the real clock: 50 schedules due over the next 5 s (10 per second) next to
//!    the 10,000 idle ones; how late each firing is claimed, and how late its reply is posted,
//!    after its due instant. The command is the built-in `/whoami`, so no plugin is involved.
//!
//! Run: `cargo bench -p deckhand --bench schedules`

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Timelike, Utc};
use deckhand::app::App;
use deckhand::chat::{OutboundMessage, Outbox};
use deckhand::config::Config;
use deckhand::sched::store::{ScheduleRow, Source, Store};
use deckhand::sched::timing::Timing;
use deckhand::sched::{AlwaysLeader, ManualClock, SystemClock};
use deckhand_plugin_abi::proto::Caller;
use futures_util::future::BoxFuture;

const SCHEDULES: usize = 10_000;
const DUE: usize = 50;

const ZONES: [&str; 4] = ["Europe/Helsinki", "America/New_York", "UTC", "Asia/Tokyo"];

fn expression(i: usize) -> String {
    match i % 5 {
        0 => format!("0 {} 20 * * Mon-Fri", i % 60),
        1 => format!("0 0 {} * * *", i % 24),
        2 => format!("0 */{} * * * *", 5 + i % 25),
        3 => format!("{} {} 7 1-7 * Mon", i % 60, (i / 60) % 60),
        _ => format!("0 30 {} * Jan-Jun,Sep-Dec Sat,Sun", i % 24),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn stats(label: &str, unit: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{label:<52} p50 {:>8.1} {unit}  p99 {:>8.1} {unit}  max {:>8.1} {unit}  (n = {})",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values.last().copied().unwrap_or_default(),
        values.len()
    );
}

fn owner() -> Caller {
    Caller {
        user_id: "bench".into(),
        display_name: "Bench".into(),
        roles: vec![],
    }
}

fn row(name: String, cron: String, tz: &str, now: DateTime<Utc>) -> ScheduleRow {
    ScheduleRow {
        name,
        cron,
        tz: tz.into(),
        commands: vec!["/whoami".into()],
        channel: "bench".into(),
        warn_secs: 0,
        owner: owner(),
        source: Source::Chat,
        created_at: now,
        anchor: now,
        paused: false,
        skip_due: None,
        skip_until: None,
        snooze_due: None,
        snooze_to: None,
        warned_for: None,
    }
}

/// Records when each message arrives.
#[derive(Default)]
struct TimedOutbox {
    posted: Mutex<Vec<(DateTime<Utc>, String)>>,
}

impl Outbox for TimedOutbox {
    fn deliver(&self, message: OutboundMessage) -> BoxFuture<'_, Result<(), String>> {
        let at = Utc::now();
        self.posted
            .lock()
            .unwrap()
            .push((at, message.text.lines().next().unwrap_or("").to_owned()));
        Box::pin(async { Ok(()) })
    }
}

fn next_fire_times() {
    let now = Utc::now();
    let defs: Vec<(String, &str)> = (0..SCHEDULES)
        .map(|i| (expression(i), ZONES[i % ZONES.len()]))
        .collect();
    let started = Instant::now();
    let timings: Vec<Timing> = defs
        .iter()
        .map(|(e, z)| {
            let t = Timing::new(e, z).unwrap();
            t.next_after(now).unwrap();
            t
        })
        .collect();
    let cold = started.elapsed();
    println!(
        "next fire, cold (parse + validate + next) x {SCHEDULES}: total {:.1} ms, {:.2} µs per schedule",
        cold.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e6 / SCHEDULES as f64
    );
    let mut per = Vec::with_capacity(SCHEDULES);
    let started = Instant::now();
    for timing in &timings {
        let one = Instant::now();
        std::hint::black_box(timing.next_after(now).unwrap());
        per.push(one.elapsed().as_secs_f64() * 1e6);
    }
    let warm = started.elapsed();
    println!(
        "next fire, warm (next only) x {SCHEDULES}: total {:.1} ms, {:.2} µs per schedule",
        warm.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e6 / SCHEDULES as f64
    );
    stats("next fire, warm, per schedule", "µs", per);
}

fn app(dir: &std::path::Path) -> App {
    let text = format!(
        "[state]\npath = \"{}\"\n[plugins]\ndir = \"{}\"\n",
        dir.join("state.db").display(),
        dir.join("plugins").display()
    );
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    let config = Config::parse(&text, &dir.join("deckhand.toml"), dir).unwrap();
    App::start(config).unwrap()
}

async fn engine_pass() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let now = Utc::now();
    let store = Store::open(app.db.clone()).unwrap();
    for i in 0..SCHEDULES {
        store
            .insert(&row(format!("s{i:05}"), expression(i), ZONES[i % 4], now))
            .unwrap();
    }
    let clock = Arc::new(ManualClock::new(now));
    let handle = app
        .start_scheduler(
            Arc::new(TimedOutbox::default()),
            Arc::new(AlwaysLeader),
            clock,
        )
        .unwrap();
    handle.settle().await;
    let mut passes = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        handle.settle().await;
        passes.push(started.elapsed().as_secs_f64() * 1e3);
    }
    stats(
        &format!("engine pass, {SCHEDULES} stored, none due"),
        "ms",
        passes,
    );
    handle.shutdown().await;
}

async fn jitter() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let now = Utc::now();
    let store = Store::open(app.db.clone()).unwrap();
    // The idle ones fire daily at a time far from now.
    let idle_hour = (now.hour() + 12) % 24;
    for i in 0..SCHEDULES {
        store
            .insert(&row(
                format!("idle{i:05}"),
                format!("{} {} {idle_hour} * * *", i % 60, (i / 60) % 60),
                "UTC",
                now,
            ))
            .unwrap();
    }
    let base = now.with_nanosecond(0).unwrap() + chrono::Duration::seconds(3);
    let mut dues = Vec::new();
    for i in 0..DUE {
        let due = base + chrono::Duration::seconds((i / 10) as i64);
        let cron = due.format("%S %M %H %d %m * %Y").to_string();
        store
            .insert(&row(format!("due{i:03}"), cron, "UTC", now))
            .unwrap();
        dues.push((format!("due{i:03}"), due));
    }
    let outbox = Arc::new(TimedOutbox::default());
    let handle = app
        .start_scheduler(
            outbox.clone(),
            Arc::new(AlwaysLeader),
            Arc::new(SystemClock),
        )
        .unwrap();
    let last = dues.last().unwrap().1;
    tokio::time::sleep(
        (last - Utc::now() + chrono::Duration::seconds(2))
            .to_std()
            .unwrap_or_default(),
    )
    .await;
    handle.settle().await;
    let mut claimed = Vec::new();
    for (name, due) in &dues {
        let runs = store.runs(name, 1).unwrap();
        let run = runs.first().expect("every due schedule ran");
        claimed.push((run.claimed_at - *due).num_microseconds().unwrap() as f64 / 1e3);
    }
    let posted = outbox.posted.lock().unwrap().clone();
    let mut reported = Vec::new();
    for (name, due) in &dues {
        let head = format!("Schedule {name} [1/1]");
        let (at, _) = posted
            .iter()
            .find(|(_, text)| text.starts_with(&head))
            .expect("every due schedule reported");
        reported.push((*at - *due).num_microseconds().unwrap() as f64 / 1e3);
    }
    stats(
        &format!("fire jitter: claimed after due ({DUE} due, {SCHEDULES} idle)"),
        "ms",
        claimed,
    );
    stats(
        &format!("fire jitter: reply posted after due ({DUE} due)"),
        "ms",
        reported,
    );
    handle.shutdown().await;
}

fn main() {
    next_fire_times();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        engine_pass().await;
        jitter().await;
    });
    runtime.shutdown_background();
}
