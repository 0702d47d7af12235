// A benchmark is a harness like a test: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

//! Alerts benchmark (issue 7).
//!
//! 1. Ingest: Alertmanager webhook payloads (version 4) through the real axum receiver router
//!    (in-process `oneshot`, and over loopback TCP), until storm control has taken every alert;
//!    throughput in alerts/s and per-request latency p50/p99.
//! 2. Storm: 10,000 alerts into storm control on a virtual clock: messages sent against the
//!    rate limit (5 messages / 5 s per channel, 50/s global) and digest totals adding up.
//!
//! Run: `cargo bench -p deckhand --bench alerts` (results go to docs/performance.md by hand).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use deckhand::alerts::route::Destination;
use deckhand::alerts::storm::{Notice, Storm, StormConfig};
use deckhand::alerts::{self, Alert, AlertsConfig, Severity, Source, StartOptions, Status};
use deckhand::chat::{MemoryOutbox, OutboundMessage, Outbox};
use futures_util::future::BoxFuture;
use serde_json::json;
use tower::ServiceExt as _;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn config(listen: Option<&str>) -> AlertsConfig {
    let text = format!(
        r#"
{listen}
default_channel = "alerts"
max_body_bytes = 4194304
[auth]
kind = "bearer"
token = "bench-token"
[[routes]]
labels = {{ team = "ml" }}
channels = ["ml"]
[[routes]]
severity = ["critical"]
channels = ["oncall"]
"#,
        listen = listen
            .map(|l| format!("listen = \"{l}\""))
            .unwrap_or_default()
    );
    toml::from_str(&text).expect("bench config")
}

/// One webhook body with `n` distinct alerts, numbered from `first`.
fn payload(first: usize, n: usize) -> String {
    let alerts: Vec<_> = (first..first + n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": format!("Alert{}", i % 50), "instance": format!("node-{i}"),
                           "severity": if i.is_multiple_of(3) { "critical" } else { "warning" },
                           "team": if i.is_multiple_of(2) { "ml" } else { "web" }, "cluster": "pangeo"},
                "annotations": {"summary": format!("alert number {i}")},
                "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("{i:016x}")
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"bench\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "deckhand", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": alerts
    })
    .to_string()
}

async fn wait_processed(handle: &alerts::AlertsHandle, total: u64) {
    while handle.state.storm_stats().received < total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `requests` webhook calls of `batch` alerts each, `concurrency` at a time, in process.
async fn ingest_oneshot(requests: usize, batch: usize, concurrency: usize) {
    let outbox = Arc::new(MemoryOutbox::default());
    let handle = alerts::start(
        config(None),
        StartOptions {
            base_dir: ".".into(),
            notifications: None,
            db: None,
            clusters: None,
            outbox: outbox.clone(),
        },
    )
    .await
    .unwrap();
    let app = alerts::http::router(handle.state.clone());
    let bodies: Vec<String> = (0..requests).map(|r| payload(r * batch, batch)).collect();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (app, bodies) = (app.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for r in (worker..bodies.len()).step_by(concurrency) {
                let request = Request::post("/alerts/alertmanager")
                    .header("authorization", "Bearer bench-token")
                    .header("content-type", "application/json")
                    .body(Body::from(bodies[r].clone()))
                    .unwrap();
                let t = Instant::now();
                let response = app.clone().oneshot(request).await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let accepted = started.elapsed();
    let total = (requests * batch) as u64;
    wait_processed(&handle, total).await;
    let processed = started.elapsed();
    latencies.sort();
    let stats = handle.state.storm_stats();
    println!(
        "oneshot  batch {batch:>4} × {requests:>6} req, {concurrency} concurrent: {:>9.0} alerts/s accepted, \
         {:>9.0} alerts/s through storm control; request p50 {:>7.1} µs p99 {:>7.1} µs; \
         accounting balanced {}",
        total as f64 / accepted.as_secs_f64(),
        total as f64 / processed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        stats.balanced(),
    );
}

/// The same over loopback TCP with reqwest (HTTP/1.1 keep-alive).
async fn ingest_loopback(requests: usize, batch: usize, concurrency: usize) {
    let outbox = Arc::new(MemoryOutbox::default());
    let handle = alerts::start(
        config(Some("127.0.0.1:0")),
        StartOptions {
            base_dir: ".".into(),
            notifications: None,
            db: None,
            clusters: None,
            outbox,
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}/alerts/alertmanager", handle.local_addr.unwrap());
    let client = reqwest::Client::new();
    let bodies = Arc::new(
        (0..requests)
            .map(|r| payload(r * batch, batch))
            .collect::<Vec<_>>(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, bodies, url) = (client.clone(), bodies.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for r in (worker..bodies.len()).step_by(concurrency) {
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth("bench-token")
                    .header("content-type", "application/json")
                    .body(bodies[r].clone())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let total = (requests * batch) as u64;
    wait_processed(&handle, total).await;
    let processed = started.elapsed();
    latencies.sort();
    println!(
        "loopback batch {batch:>4} × {requests:>6} req, {concurrency} concurrent: {:>9.0} alerts/s through storm control; \
         request p50 {:>7.1} µs p99 {:>7.1} µs",
        total as f64 / processed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
}

/// Posts land here; the bench waits on the channel.
struct NotifyOutbox(tokio::sync::mpsc::UnboundedSender<Instant>);

impl Outbox for NotifyOutbox {
    fn deliver(&self, _message: OutboundMessage) -> BoxFuture<'_, Result<(), String>> {
        let _ = self.0.send(Instant::now());
        Box::pin(async { Ok(()) })
    }
}

/// Receive → route → storm control → Outbox, one alert at a time, with grouping and rate
/// limits out of the way: the pipeline's own latency.
async fn end_to_end_latency(samples: usize) {
    let mut config = config(None);
    config.storm.group_wait = Duration::ZERO;
    config.storm.channel_messages = u32::MAX;
    config.storm.global_per_second = u32::MAX;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = alerts::start(
        config,
        StartOptions {
            base_dir: ".".into(),
            notifications: None,
            db: None,
            clusters: None,
            outbox: Arc::new(NotifyOutbox(tx)),
        },
    )
    .await
    .unwrap();
    let app = alerts::http::router(handle.state.clone());
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let request = Request::post("/alerts/alertmanager")
            .header("authorization", "Bearer bench-token")
            .header("content-type", "application/json")
            .body(Body::from(payload(1_000_000 + i, 1)))
            .unwrap();
        let t = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success());
        let posted = rx.recv().await.unwrap();
        latencies.push(posted - t);
    }
    latencies.sort();
    println!(
        "end to end (webhook → Outbox.post), one alert at a time: p50 {:>7.1} µs p99 {:>7.1} µs (n = {samples})",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
}

fn alert(i: usize) -> Alert {
    Alert {
        source: Source::Kubernetes,
        fingerprint: format!("storm-{i}"),
        status: Status::Firing,
        severity: if i.is_multiple_of(10) {
            Severity::Critical
        } else {
            Severity::Error
        },
        name: format!("Reason{}", i % 200),
        summary: format!("pod {i} is failing"),
        labels: [
            ("cluster".to_owned(), "pangeo".to_owned()),
            ("namespace".to_owned(), format!("ns{}", i % 4)),
        ]
        .into_iter()
        .collect(),
        starts_at: None,
        ends_at: None,
        url: None,
    }
}

/// 10,000 alerts arriving over `spread_ms` (virtual) into `channels` channels.
fn storm(channels: usize, spread_ms: u64) {
    const N: usize = 10_000;
    let config = StormConfig::default();
    let (limit, window) = (
        config.channel_messages as usize,
        config.channel_window.as_millis() as u64,
    );
    let mut storm = Storm::new(config);
    let mut sent: Vec<(u64, Destination, u64, bool)> = Vec::new();
    let wall = Instant::now();
    let mut now = 0u64;
    let mut next = 0usize;
    loop {
        // Alerts due by `now` arrive.
        while next < N && (next as u64 * spread_ms) / N as u64 <= now {
            let destination = Destination::Channel(format!("c{}", next % channels));
            storm.ingest(now, &destination, alert(next));
            next += 1;
        }
        for o in storm.poll(now) {
            // Each message is one post, sent instantly.
            storm.posted(&o.destination, now);
            let digest = matches!(o.notice, Notice::Digest(_));
            sent.push((now, o.destination.clone(), o.covers(), digest));
        }
        let arrival = (next < N).then(|| (next as u64 * spread_ms) / N as u64);
        match (storm.next_deadline(), arrival) {
            (None, None) => break,
            (Some(d), None) => now = d.max(now + 1),
            (None, Some(a)) => now = a.max(now + 1),
            (Some(d), Some(a)) => now = d.min(a).max(now + 1),
        }
    }
    let cpu = wall.elapsed();
    let stats = storm.stats();
    let total: u64 = sent.iter().map(|s| s.2).sum();
    let digests: Vec<u64> = sent.iter().filter(|s| s.3).map(|s| s.2).collect();
    let listed: u64 = sent.iter().filter(|s| !s.3).map(|s| s.2).sum();
    // The worst 5-second window of any channel.
    let mut worst = 0;
    for c in 0..channels {
        let d = Destination::Channel(format!("c{c}"));
        let times: Vec<u64> = sent.iter().filter(|s| s.1 == d).map(|s| s.0).collect();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < t + window).count();
            worst = worst.max(in_window);
        }
    }
    let last = sent.last().map_or(0, |s| s.0);
    println!(
        "storm 10,000 alerts over {:>5} ms into {channels} channel(s): {} messages in {:.1} s virtual \
         ({} listing {listed} alerts + {} digests folding {}); total {total}; worst 5 s window {worst} \
         messages/channel (limit {limit}); deduplicated {}; balanced {}; {:.0} ns/alert CPU",
        spread_ms,
        sent.len(),
        last as f64 / 1000.0,
        sent.len() - digests.len(),
        digests.len(),
        digests.iter().sum::<u64>(),
        stats.deduplicated,
        stats.balanced(),
        cpu.as_nanos() as f64 / N as f64,
    );
    assert_eq!(total, N as u64, "every alert accounted for");
    assert!(worst <= limit);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "# alerts benchmark ({} CPUs available, 2 tokio workers)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    runtime.block_on(async {
        // Warm-up.
        ingest_oneshot(200, 10, 4).await;
        ingest_oneshot(20_000, 1, 4).await;
        ingest_oneshot(2_000, 10, 4).await;
        ingest_oneshot(1_000, 100, 4).await;
        ingest_loopback(5_000, 1, 8).await;
        ingest_loopback(5_000, 1, 32).await;
        ingest_loopback(1_000, 100, 8).await;
        end_to_end_latency(5_000).await;
    });
    storm(1, 0);
    storm(1, 10_000);
    storm(4, 1_000);
    storm(20, 60_000);
    runtime.shutdown_background();
}
