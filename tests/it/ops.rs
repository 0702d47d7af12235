//! The ops endpoints of the real binary (`[ops] listen`): `/healthz`, `/readyz` naming what is
//! not ready, `/metrics` in the OpenMetrics text format moving as commands run.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use deckhand_it::{Shell, free_port, plugin_library, spawn_shell, write_config};

use serde_json::Value;

struct Ops {
    base: String,
    http: reqwest::Client,
}

impl Ops {
    async fn get(&self, path: &str) -> (u16, String, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the ops port answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().await.unwrap())
    }

    /// Polls `/healthz` until it answers (the binary is starting).
    async fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok();
            if answered {
                return;
            }
            assert!(Instant::now() < deadline, "the ops port never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn metric(&self, line_start: &str) -> f64 {
        let (_, _, text) = self.get("/metrics").await;
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

fn say(shell: &mut Shell, line: &str) -> String {
    writeln!(shell.stdin, "{line}").unwrap();
    shell.stdin.flush().unwrap();
    let mut reply = String::new();
    shell.stdout.read_line(&mut reply).unwrap();
    reply.trim_end().to_owned()
}

#[tokio::test]
async fn healthz_readyz_and_metrics_follow_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!("[ops]\nlisten = \"127.0.0.1:{port}\"\n");
    let config = write_config(dir.path(), &[plugin_library("echo")], &extra);
    let state = dir.path().join("state.db");
    let mut shell = spawn_shell(&config);
    let ops = Ops {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
    };
    ops.wait_up().await;

    let (status, _, body) = ops.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, _, body) = ops.get("/readyz").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ready"], true);
    assert_eq!(report["plugins"]["detail"], "1 loaded");
    assert_eq!(report["chat"]["detail"], "connected");
    assert_eq!(report["state"]["ok"], true);

    // The gauges are there before anything ran, in the OpenMetrics format; a labelled family
    // appears with its first sample.
    let (status, content_type, text) = ops.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for family in [
        "deckhand_arm_write_budget_remaining",
        "deckhand_schedule_leader",
        "deckhand_chat_connected",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} gauge")),
            "{family} missing:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("deckhand_chat_connected 1"), "{text}");
    // shell without [schedules.leader] leads
    assert!(text.contains("deckhand_schedule_leader 1"), "{text}");

    let ok = "deckhand_commands_total{plugin=\"echo\",command=\"echo\",outcome=\"ok\"}";
    let count = "deckhand_command_duration_seconds_count{plugin=\"echo\",command=\"echo\"}";
    assert_eq!(ops.metric(ok).await, 0.0);
    assert_eq!(say(&mut shell, "/echo one"), "one");
    assert_eq!(say(&mut shell, "/echo two"), "two");
    assert_eq!(ops.metric(ok).await, 2.0);
    assert_eq!(ops.metric(count).await, 2.0);
    // A plugin error is counted under its outcome, a call outside the manifest as a refusal.
    say(&mut shell, "/kv put busy yes");
    let busy = say(&mut shell, "/busy");
    assert!(busy.contains("deferred"), "{busy}");
    let error = "deckhand_commands_total{plugin=\"echo\",command=\"busy\",outcome=\"error\"}";
    assert_eq!(ops.metric(error).await, 1.0);
    let refused = "deckhand_capability_refusals_total{plugin=\"echo\",service=\"http\"}";
    assert_eq!(ops.metric(refused).await, 0.0);
    let fetched = say(&mut shell, "/fetch --url http://example.invalid/");
    assert!(fetched.starts_with("error:"), "{fetched}");
    assert_eq!(ops.metric(refused).await, 1.0);
    let (_, _, text) = ops.get("/metrics").await;
    for family in [
        "deckhand_commands counter",
        "deckhand_command_duration_seconds histogram",
        "deckhand_capability_refusals counter",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}")),
            "{family} missing:\n{text}"
        );
    }

    // The state file goes away: not ready, and the answer says which check failed.
    std::fs::remove_file(&state).unwrap();
    let (status, _, body) = ops.get("/readyz").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["ready"], false);
    assert_eq!(report["state"]["ok"], false);
    assert!(
        report["state"]["detail"]
            .as_str()
            .unwrap()
            .contains("state.db"),
        "{report}"
    );
    assert_eq!(report["plugins"]["ok"], true, "{report}");
    assert_eq!(report["chat"]["ok"], true, "{report}");
    // /healthz stays up: the process is alive, only not ready.
    assert_eq!(ops.get("/healthz").await.0, 200);

    drop(shell.stdin);
    shell.child.wait().unwrap();
}
