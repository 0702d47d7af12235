//! Alerts (issue 7): a real Prometheus Alertmanager feeding the receiver; Kubernetes events from
//! the sandbox's fault injection; Azure Monitor and plugin notifications; refusals counted;
//! storm control through the running pipeline; `/alerts list|ack|silence`.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use deckhand::alerts::metrics::DropStage;
use deckhand::alerts::{self, Alert, AlertsHandle, Severity, Source, Status};
use deckhand::chat::{MemoryOutbox, OutboundMessage};
use deckhand::router::ResponseKind;
use deckhand_it::{TestBot, free_port};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// An `[alerts]` section for tests: receiver on an ephemeral loopback port, no group wait.
fn section(extra: &str) -> String {
    format!(
        r#"
[alerts]
listen = "127.0.0.1:0"
default_channel = "alerts-default"
max_body_bytes = 4096

[alerts.storm]
group_wait = "0s"
{extra}
"#
    )
}

async fn start(bot: &TestBot) -> (AlertsHandle, Arc<MemoryOutbox>) {
    let outbox = Arc::new(MemoryOutbox::default());
    let handle = bot
        .app
        .start_alerts(outbox.clone())
        .await
        .expect("alerts start")
        .expect("[alerts] is enabled");
    assert!(handle.problems.is_empty(), "{:?}", handle.problems);
    (handle, outbox)
}

fn transcript(outbox: &MemoryOutbox) -> String {
    outbox
        .messages()
        .iter()
        .map(|m| format!("[{}] {}", m.channel, m.text))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Waits (bounded) until a message satisfying `pred` has been posted; panics with every
/// message posted so far.
async fn wait_for(
    outbox: &MemoryOutbox,
    what: &str,
    pred: impl Fn(&OutboundMessage) -> bool,
) -> OutboundMessage {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = outbox.messages().into_iter().find(|m| pred(m)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no message {what} within 30 s; messages:\n{}",
            transcript(outbox)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real Prometheus Alertmanager on a free loopback port, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(port: u16, webhook: &str, token: &str) -> Alertmanager {
        let binary = std::env::var("ALERTMANAGER_BIN").unwrap_or_else(|_| ALERTMANAGER.into());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: run .ci/install-alerts.sh (installs the Debian package \
             prometheus-alertmanager; CI runs it) or set ALERTMANAGER_BIN"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"
route:
  receiver: deckhand
  group_by: ['alertname']
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: deckhand
    webhook_configs:
      - url: '{webhook}'
        send_resolved: true
        http_config:
          authorization:
            credentials: '{token}'
"#
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("alertmanager.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/-/ready", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("alertmanager exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager not ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post_alerts(&self, http: &reqwest::Client, alerts: Value) {
        let r = http
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gpu_alerts(ends_at: Option<String>) -> Value {
    let alerts: Vec<Value> = (0..3)
        .map(|i| {
            let mut a = json!({
                "labels": {"alertname": "GpuNodeDown", "severity": "critical", "team": "ml",
                           "cluster": "pangeo", "instance": format!("aks-gpu-{i}")},
                "annotations": {"summary": format!("GPU node aks-gpu-{i} is down")},
                "generatorURL": "http://prometheus:9090/graph"
            });
            if let Some(end) = &ends_at {
                a["endsAt"] = json!(end);
            }
            a
        })
        .collect();
    Value::Array(alerts)
}

/// Real Alertmanager → Deckhand's receiver → MemoryOutbox: firing (grouped), resolved, and a
/// silence created from chat in Alertmanager through its API v2.
#[tokio::test]
async fn real_alertmanager_firing_grouped_resolved_and_silenced() {
    let am_port = free_port();
    let extra = format!(
        r#"
[alerts.auth]
kind = "bearer"
token = "am-webhook-secret"

[alerts.alertmanager]
url = "http://127.0.0.1:{am_port}"

[[alerts.routes]]
name = "ml"
labels = {{ team = "ml" }}
channels = ["ml-alerts"]
"#
    );
    let bot = TestBot::with_config(&[], &section(&extra));
    let (handle, outbox) = start(&bot).await;
    let receiver = handle.local_addr.expect("receiver listens");
    let mut am = Alertmanager::start(
        am_port,
        &format!("http://{receiver}/alerts/alertmanager"),
        "am-webhook-secret",
    );
    let http = reqwest::Client::new();
    am.wait_ready(&http).await;

    // Firing: three alerts of one Alertmanager group arrive as one grouped message.
    am.post_alerts(&http, gpu_alerts(None)).await;
    let firing = wait_for(&outbox, "firing GpuNodeDown", |m| {
        m.text.contains("FIRING") && m.text.contains("GpuNodeDown")
    })
    .await;
    assert_eq!(firing.channel, "ml-alerts", "{}", transcript(&outbox));
    assert!(firing.text.contains("(3 alerts)"), "{}", firing.text);
    for i in 0..3 {
        assert!(
            firing
                .text
                .contains(&format!("GPU node aks-gpu-{i} is down")),
            "{}",
            firing.text
        );
    }
    let ack = firing
        .actions
        .iter()
        .find(|a| a.command.starts_with("/alerts ack "))
        .expect("an Ack button");
    assert!(
        firing
            .actions
            .iter()
            .any(|a| a.command.contains("--for 2h"))
    );

    let list = bot.say("/alerts list").await;
    assert_eq!(list.kind, ResponseKind::Ok, "{}", list.text);
    assert!(list.text.starts_with("3 active alert(s)"), "{}", list.text);
    let acked = bot.say(&ack.command).await;
    assert_eq!(acked.kind, ResponseKind::Ok, "{}", acked.text);

    // Resolved: Alertmanager sends the group again as resolved; it follows up in the channel.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    am.post_alerts(&http, gpu_alerts(Some(past))).await;
    let resolved = wait_for(&outbox, "resolved GpuNodeDown", |m| {
        m.text.contains("RESOLVED") && m.text.contains("GpuNodeDown")
    })
    .await;
    assert_eq!(resolved.channel, "ml-alerts");
    assert!(resolved.text.contains("(3 alerts)"), "{}", resolved.text);
    assert!(resolved.actions.is_empty());
    let list = bot.say("/alerts list").await;
    assert_eq!(
        list.text.lines().next(),
        Some("No active alerts."),
        "{}",
        list.text
    );

    // Silenced: `/alerts silence` creates the silence in Alertmanager, which then keeps the
    // alert to itself; an unrouted sentinel sent alongside reaches the default channel.
    let silenced = bot
        .say("/alerts silence alertname=DiskFull,cluster=pangeo --for 2h --comment maintenance")
        .await;
    assert_eq!(silenced.kind, ResponseKind::Ok, "{}", silenced.text);
    assert!(
        silenced.text.contains("Alertmanager silence"),
        "{}",
        silenced.text
    );
    let silences: Value = http
        .get(format!("{}/api/v2/silences", am.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let active: Vec<&Value> = silences
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"]["state"] == "active")
        .collect();
    assert_eq!(active.len(), 1, "{silences}");
    assert_eq!(active[0]["comment"], "maintenance");
    assert_eq!(active[0]["createdBy"], "Local operator");
    assert!(
        active[0]["matchers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "alertname" && m["value"] == "DiskFull" && m["isEqual"] == true)
    );
    am.post_alerts(
        &http,
        json!([
            {"labels": {"alertname": "DiskFull", "cluster": "pangeo", "severity": "warning"}},
            {"labels": {"alertname": "Sentinel", "cluster": "pangeo"}}
        ]),
    )
    .await;
    let sentinel = wait_for(&outbox, "Sentinel", |m| m.text.contains("Sentinel")).await;
    assert_eq!(
        sentinel.channel, "alerts-default",
        "unrouted alerts go to the default channel"
    );
    let suppressed: Value = http
        .get(format!(
            "{}/api/v2/alerts?filter=alertname%3D%22DiskFull%22",
            am.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        suppressed[0]["status"]["state"], "suppressed",
        "{suppressed}"
    );
    assert!(
        !outbox
            .messages()
            .iter()
            .any(|m| m.text.contains("DiskFull")),
        "{}",
        transcript(&outbox)
    );
    // Lifting it expires the Alertmanager silence too.
    let lifted = bot.say("/alerts unsilence s1").await;
    assert_eq!(lifted.kind, ResponseKind::Ok, "{}", lifted.text);
    assert!(lifted.text.contains("expired"), "{}", lifted.text);
    let silences: Value = http
        .get(format!("{}/api/v2/silences", am.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        silences
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"]["state"] == "expired"),
        "{silences}"
    );
    assert_eq!(
        bot.say("/alerts unsilence s1").await.kind,
        ResponseKind::Error
    );

    let m = &handle.state.metrics;
    assert_eq!(
        m.dropped_total(DropStage::Silenced),
        0,
        "Alertmanager kept it"
    );
    assert_eq!(m.dropped_total(DropStage::Auth), 0);
    assert!(m.received_total(Source::Alertmanager) >= 7);
}

async fn send(
    app: axum::Router,
    uri: &str,
    auth: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, String) {
    let mut request = Request::post(uri).header("content-type", "application/json");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = app
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

const AM_PAYLOAD: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"X\"}","truncatedAlerts":0,
  "status":"firing","receiver":"deckhand","groupLabels":{},"commonLabels":{},"commonAnnotations":{},
  "externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"X"},"annotations":{},
  "startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"abc"}]}"#;

/// Wrong or missing credentials, oversized and malformed bodies: 4xx, counted, and the
/// receiver keeps serving.
#[tokio::test]
async fn refusals_are_4xx_counted_and_survived() {
    let extra = "[alerts.auth]\nkind = \"bearer\"\ntoken = \"right\"\n";
    let bot = TestBot::with_config(&[], &section(extra));
    let (handle, outbox) = start(&bot).await;
    let app = alerts::http::router(handle.state.clone());
    let uri = "/alerts/alertmanager";

    let (status, _) = send(app.clone(), uri, None, AM_PAYLOAD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(app.clone(), uri, Some("Bearer wrong"), AM_PAYLOAD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(app.clone(), uri, Some("Basic cmlnaHQ6"), AM_PAYLOAD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000));
    let (status, _) = send(app.clone(), uri, Some("Bearer right"), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = send(app.clone(), uri, Some("Bearer right"), "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("JSON"), "{body}");
    let v3 = AM_PAYLOAD.replace(r#""version":"4""#, r#""version":"3""#);
    let (status, body) = send(app.clone(), uri, Some("Bearer right"), v3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("payload version"), "{body}");
    let (status, _) = send(app.clone(), "/alerts/azure-monitor?token=right", None, "[]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let binary: Vec<u8> = (0..=255u8).collect();
    let (status, _) = send(app.clone(), uri, Some("Bearer right"), binary).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Issue 12, point 14: a body a web page could send cross-origin without a preflight
    // (text/plain, a form) or without any type is refused with 415.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = Request::post(uri).header("authorization", "Bearer right");
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(AM_PAYLOAD)).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
    }
    let request = Request::post(uri)
        .header("authorization", "Bearer right")
        .header("content-type", "application/json; charset=utf-8");
    let response = app
        .clone()
        .oneshot(request.body(Body::from(AM_PAYLOAD)).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Still serving.
    let (status, body) = send(app.clone(), uri, Some("Bearer right"), AM_PAYLOAD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for(&outbox, "X", |m| m.text.contains("FIRING")).await;

    let m = &handle.state.metrics;
    assert_eq!(m.dropped_total(DropStage::Auth), 3);
    assert_eq!(m.dropped_total(DropStage::BodySize), 1);
    assert_eq!(m.dropped_total(DropStage::Decode), 7);
    assert_eq!(m.received_total(Source::Alertmanager), 2);
    let metrics = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(metrics.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "alerts_dropped_total{stage=\"auth\"} 3",
        "alerts_dropped_total{stage=\"body_size\"} 1",
        "alerts_dropped_total{stage=\"decode\"} 7",
        "alerts_received_total{source=\"alertmanager\"} 2",
        "alerts_routed_total 2",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn basic_auth_receiver_on_a_bound_port() {
    let extra = "[alerts.auth]\nkind = \"basic\"\nusername = \"am\"\npassword = \"pw\"\n";
    let bot = TestBot::with_config(&[], &section(extra));
    let (handle, outbox) = start(&bot).await;
    let url = format!("http://{}/alerts/alertmanager", handle.local_addr.unwrap());
    let http = reqwest::Client::new();
    let wrong = http
        .post(&url)
        .basic_auth("am", Some("nope"))
        .body(AM_PAYLOAD)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"deckhand\""
    );
    let right = http
        .post(&url)
        .basic_auth("am", Some("pw"))
        .header("content-type", "application/json")
        .body(AM_PAYLOAD)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let m = wait_for(&outbox, "X", |m| m.text.contains("FIRING")).await;
    assert_eq!(m.channel, "alerts-default");
}

const AZURE: &str = r#"{
  "schemaId": "azureMonitorCommonAlertSchema",
  "data": {
    "essentials": {
      "alertId": "/subscriptions/3f2c/providers/Microsoft.AlertsManagement/alerts/b9569717",
      "alertRule": "gpu-pool-cpu-high", "severity": "Sev0", "signalType": "Metric",
      "monitorCondition": "Fired", "monitoringService": "Platform",
      "alertTargetIDs": ["/subscriptions/3f2c/resourcegroups/pangeo/providers/microsoft.containerservice/managedclusters/pangeoCluster"],
      "configurationItems": ["pangeoCluster"], "originAlertId": "o",
      "firedDateTime": "2026-03-22T13:58:24.3713213Z", "description": "CPU above 95% on the GPU pool",
      "essentialsVersion": "1.0", "alertContextVersion": "1.0"
    },
    "alertContext": {},
    "customProperties": {"team": "ml"}
  }
}"#;

/// Azure Monitor's common schema: routed on cluster and severity; resolved follows up.
#[tokio::test]
async fn azure_monitor_webhook_routes_and_resolves() {
    let extra = r#"
[alerts.auth]
kind = "bearer"
token = "az"

[[alerts.routes]]
name = "platform critical"
source = ["azure_monitor"]
severity = ["critical"]
cluster = ["pangeoCluster"]
channels = ["platform"]
"#;
    let bot = TestBot::with_config(&[], &section(extra));
    let (handle, outbox) = start(&bot).await;
    let app = alerts::http::router(handle.state.clone());
    let (status, body) = send(app.clone(), "/alerts/azure-monitor?token=az", None, AZURE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fired = wait_for(&outbox, "fired", |m| m.text.contains("gpu-pool-cpu-high")).await;
    assert_eq!(fired.channel, "platform");
    assert!(fired.text.contains("FIRING critical"), "{}", fired.text);
    assert!(fired.text.contains("CPU above 95% on the GPU pool"));
    let resolved = AZURE.replace("\"Fired\"", "\"Resolved\"");
    let (status, _) = send(app, "/alerts/azure-monitor", Some("Bearer az"), resolved).await;
    assert_eq!(status, StatusCode::OK);
    let r = wait_for(&outbox, "resolved", |m| m.text.contains("RESOLVED")).await;
    assert_eq!(r.channel, "platform");
    assert_eq!(handle.state.metrics.received_total(Source::AzureMonitor), 2);
}

/// A plugin's notification (the echo test plugin's `/notify`) is routed by plugin name.
#[tokio::test]
async fn plugin_notifications_are_routed_by_plugin() {
    let extra = r#"
[[alerts.routes]]
plugin = ["echo"]
channels = ["echo-news"]
"#;
    let bot = TestBot::with_config(&["echo"], &section(extra));
    let (handle, outbox) = start(&bot).await;
    let reply = bot.say("/notify 'job 42 finished'").await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    let m = wait_for(&outbox, "the notification", |m| {
        m.text.contains("job 42 finished")
    })
    .await;
    assert_eq!(m.channel, "echo-news");
    assert_eq!(handle.state.metrics.received_total(Source::Plugin), 1);
}

fn alert(name: &str, fingerprint: &str, status: Status) -> Alert {
    Alert {
        source: Source::Alertmanager,
        fingerprint: fingerprint.into(),
        status,
        severity: Severity::Warning,
        name: name.into(),
        summary: format!("{name} {fingerprint}"),
        labels: [("cluster".to_owned(), "pangeo".to_owned())]
            .into_iter()
            .collect(),
        starts_at: None,
        ends_at: None,
        url: None,
    }
}

/// `/alerts ack` quiets repeats, `/alerts silence` (no Alertmanager configured) mutes
/// Deckhand's routing, bad input is an error naming the problem.
#[tokio::test]
async fn ack_and_silence_from_chat() {
    let bot = TestBot::with_config(&[], &section("dedup_window = \"0s\""));
    let (handle, outbox) = start(&bot).await;
    let state = &handle.state;
    let noisy = alert("Noisy", "n1", Status::Firing);
    let id = noisy.id();
    state.submit(vec![noisy.clone()]).unwrap();
    wait_for(&outbox, "Noisy", |m| m.text.contains("Noisy")).await;

    let acked = bot.say(&format!("/alerts ack {id}")).await;
    assert_eq!(acked.kind, ResponseKind::Ok, "{}", acked.text);
    assert!(acked.text.contains(&id));
    let list = bot.say("/alerts list").await;
    assert!(
        list.text.contains("acked by Local operator"),
        "{}",
        list.text
    );

    // A repeat of the acked alert stays quiet even with no dedup window.
    state.submit(vec![noisy.clone()]).unwrap();
    state
        .submit(vec![alert("Marker1", "m1", Status::Firing)])
        .unwrap();
    wait_for(&outbox, "Marker1", |m| m.text.contains("Marker1")).await;
    assert_eq!(
        outbox
            .messages()
            .iter()
            .filter(|m| m.text.contains("Noisy"))
            .count(),
        1
    );
    assert_eq!(state.metrics.dropped_total(DropStage::Dedup), 1);

    let silenced = bot.say("/alerts silence alertname=~Loud.* --for 30m").await;
    assert_eq!(silenced.kind, ResponseKind::Ok, "{}", silenced.text);
    assert!(
        silenced.text.contains("alertname=~Loud.*"),
        "{}",
        silenced.text
    );
    assert!(!silenced.text.contains("Alertmanager"), "{}", silenced.text);
    state
        .submit(vec![alert("LoudFan", "l1", Status::Firing)])
        .unwrap();
    state
        .submit(vec![alert("Marker2", "m2", Status::Firing)])
        .unwrap();
    wait_for(&outbox, "Marker2", |m| m.text.contains("Marker2")).await;
    assert!(!outbox.messages().iter().any(|m| m.text.contains("LoudFan")));
    assert_eq!(state.metrics.dropped_total(DropStage::Silenced), 1);
    assert!(
        bot.say("/alerts list")
            .await
            .text
            .contains("silence s1 alertname=~Loud.*")
    );

    // The silence and the acknowledgement survive a restart of the pipeline (state database).
    let restarted = || async {
        let outbox = Arc::new(MemoryOutbox::default());
        let handle = alerts::start(
            bot.app.config.alerts.clone().unwrap(),
            alerts::StartOptions {
                base_dir: bot.dir.path().to_owned(),
                notifications: None,
                outbox: outbox.clone(),
                db: Some(bot.app.db.clone()),
                clusters: None,
            },
        )
        .await
        .unwrap();
        (handle, outbox)
    };
    let (again, again_out) = restarted().await;
    let kept = again.state.silences();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, "s1");
    assert_eq!(kept[0].describe(), "alertname=~Loud.*");
    again.state.submit(vec![noisy.clone()]).unwrap();
    again
        .state
        .submit(vec![alert("Marker3", "m3", Status::Firing)])
        .unwrap();
    wait_for(&again_out, "Marker3", |m| m.text.contains("Marker3")).await;
    assert!(
        !again_out
            .messages()
            .iter()
            .any(|m| m.text.contains("Noisy")),
        "the ack outlived the restart:\n{}",
        transcript(&again_out)
    );
    let record = again
        .state
        .active()
        .into_iter()
        .find(|r| r.alert.name == "Noisy")
        .expect("Noisy is active");
    assert_eq!(record.acked_by.as_deref(), Some("Local operator"));
    // Resolving clears the ack: the next firing is news again.
    let mut resolved = noisy.clone();
    resolved.status = Status::Resolved;
    again.state.submit(vec![resolved]).unwrap();
    wait_for(&again_out, "Noisy resolved", |m| {
        m.text.contains("RESOLVED")
    })
    .await;
    drop(again);
    let (third, third_out) = restarted().await;
    third.state.submit(vec![noisy.clone()]).unwrap();
    wait_for(&third_out, "Noisy firing again", |m| {
        m.text.contains("FIRING") && m.text.contains("Noisy")
    })
    .await;

    let unknown = bot.say("/alerts ack ffffffff").await;
    assert_eq!(unknown.kind, ResponseKind::Error);
    assert!(
        unknown.text.contains("no active alert has id ffffffff"),
        "{}",
        unknown.text
    );
    let bad = bot.say("/alerts silence nonsense").await;
    assert_eq!(bad.kind, ResponseKind::Error);
    assert!(bad.text.contains("name=value"), "{}", bad.text);
}

/// 1,000 alerts at once into one channel, through the running pipeline on tokio's paused
/// clock: 4 posts in the first window (Discord allows 5: a margin), the fifth queued message
/// and one digest of everything else in the next; totals add up.
#[tokio::test(start_paused = true)]
async fn storm_through_the_pipeline_folds_into_a_digest() {
    let bot = TestBot::with_config(&[], &section(""));
    let (handle, outbox) = start(&bot).await;
    let batch: Vec<Alert> = (0..1000)
        .map(|i| alert(&format!("Storm{}", i % 10), &i.to_string(), Status::Firing))
        .collect();
    handle.state.submit(batch).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = outbox.messages();
    assert_eq!(first.len(), 4, "{}", transcript(&outbox));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let all = outbox.messages();
    assert_eq!(all.len(), 6, "{}", transcript(&outbox));
    let listed: usize = all[..5]
        .iter()
        .map(|m| m.text.matches("\n• ").count())
        .sum();
    let digest = &all[5].text;
    let folded: usize = digest
        .split("Digest: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {digest}"));
    assert_eq!(listed, 50);
    assert_eq!(listed + folded, 1000, "{digest}");
    let stats = handle.state.storm_stats();
    assert!(stats.balanced(), "{stats:?}");
    assert_eq!(stats.folded, 950);
    assert_eq!(stats.pending, 0);
}

/// The sandbox's fault injection (crash loop, OOM kill, GPU pod that fits nowhere) reaches
/// the right team channels through the Kubernetes event watcher.
#[tokio::test]
async fn kubernetes_faults_from_the_sandbox_reach_the_right_channels() {
    use deckhand_sandbox::{FaultKind, FaultSpec, Sandbox, SandboxOptions};
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, PostParams};

    let sandbox = Sandbox::start(SandboxOptions {
        lro_delay: Duration::from_millis(50),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let estate = sandbox.seed_realistic_estate().await.unwrap();
    let kubeconfig = sandbox
        .kubeconfig(&estate.resource_group, &estate.cluster)
        .unwrap();
    let extra = format!(
        r#"
channel_messages = 100

[[alerts.routes]]
name = "gpu"
source = ["kubernetes"]
matchers = ["resource=~nvidia.com/gpu"]
channels = ["ml-gpu"]

[[alerts.routes]]
name = "platform"
source = ["kubernetes"]
cluster = ["{cluster}"]
channels = ["platform"]

[[alerts.kubernetes]]
name = "{cluster}"
kubeconfig = "kubeconfig.yaml"
"#,
        cluster = estate.cluster
    );
    let bot = TestBot::with_config(&[], &section(&extra));
    std::fs::write(bot.dir.path().join("kubeconfig.yaml"), &kubeconfig).unwrap();
    let (_handle, outbox) = start(&bot).await;

    let client = deckhand_it::cloud::kube_client_from(&kubeconfig).await;
    let kube_client = client.clone();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let deployment = |name: &str, resources: Value| -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "main", "image": "simsvc:1", "resources": resources}]}}}}))
        .unwrap()
    };

    let crash_fault = sandbox.inject(FaultSpec::always(FaultKind::CrashLoop {
        pod_prefix: "crashy-".into(),
        namespace: None,
    }));
    sandbox.inject(FaultSpec::always(FaultKind::OomKill {
        pod_prefix: "hungry-".into(),
        namespace: None,
    }));
    let pp = PostParams::default();
    deployments
        .create(&pp, &deployment("crashy", json!({})))
        .await
        .unwrap();
    deployments
        .create(&pp, &deployment("hungry", json!({})))
        .await
        .unwrap();
    deployments
        .create(
            &pp,
            &deployment("train", json!({"limits": {"nvidia.com/gpu": 1}})),
        )
        .await
        .unwrap();

    let gpu = wait_for(&outbox, "FailedScheduling for train", |m| {
        m.text.contains("FailedScheduling") && m.text.contains("train-")
    })
    .await;
    assert_eq!(gpu.channel, "ml-gpu", "{}", transcript(&outbox));
    assert!(
        gpu.text.contains("no node has enough nvidia.com/gpu"),
        "{}",
        gpu.text
    );
    let crash = wait_for(&outbox, "CrashLoopBackOff for crashy", |m| {
        m.text.contains("CrashLoopBackOff") && m.text.contains("crashy-")
    })
    .await;
    assert_eq!(crash.channel, "platform");
    let oom = wait_for(&outbox, "OOMKilled for hungry", |m| {
        m.text.contains("OOMKilled") && m.text.contains("hungry-")
    })
    .await;
    assert_eq!(oom.channel, "platform");
    assert!(
        !outbox
            .messages()
            .iter()
            .any(|m| m.text.contains("OOMKilled") && m.text.contains("crashy-")),
        "a crash loop is not an OOM kill:\n{}",
        transcript(&outbox)
    );

    // The fault goes away; the next change the controllers see lets the pod run: resolved.
    assert!(sandbox.remove_fault(crash_fault));
    deployments
        .patch_scale(
            "crashy",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    let resolved = wait_for(&outbox, "CrashLoopBackOff resolved", |m| {
        m.text.contains("RESOLVED") && m.text.contains("crashy-")
    })
    .await;
    assert_eq!(resolved.channel, "platform");
    assert!(
        resolved.text.contains("CrashLoopBackOff"),
        "{}",
        resolved.text
    );

    // Node problems arrive as Events posted by the node controller and AKS's node problem
    // detector (Spot evictions are `PreemptScheduled`); post them the way those do.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(kube_client.clone(), "default");
    for (reason, message) in [
        (
            "NodeNotReady",
            "Node aks-workers-0 status is now: NodeNotReady",
        ),
        (
            "PreemptScheduled",
            "Spot VM eviction scheduled: Preempt at 2026-01-01T00:00:30Z",
        ),
    ] {
        let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
            "metadata": {"name": format!("aks-workers-0.{}", reason.to_lowercase()), "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "aks-workers-0", "apiVersion": "v1"},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "node-controller"},
            "firstTimestamp": chrono::Utc::now().to_rfc3339(),
            "lastTimestamp": chrono::Utc::now().to_rfc3339()
        }))
        .unwrap();
        events.create(&pp, &event).await.unwrap();
    }
    let not_ready = wait_for(&outbox, "NodeNotReady", |m| m.text.contains("NodeNotReady")).await;
    assert_eq!(not_ready.channel, "platform");
    assert!(
        not_ready.text.contains("FIRING critical"),
        "{}",
        not_ready.text
    );
    let spot = wait_for(&outbox, "SpotEviction", |m| m.text.contains("SpotEviction")).await;
    assert!(
        spot.text
            .contains("Spot node aks-workers-0 is being evicted"),
        "{}",
        spot.text
    );
}

/// Outbound webhooks: a route with `continue` sends to a Slack-style and a generic JSON
/// webhook and still reaches the next rule's channel.
#[tokio::test]
async fn webhooks_receive_rendered_bodies() {
    use axum::routing::post;
    use tokio::sync::mpsc;

    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    // The generic hook is "overloaded" once: 503 with Retry-After, then fine.
    let generic_calls = Arc::new(AtomicUsize::new(0));
    let calls = generic_calls.clone();
    let app = axum::Router::new().route(
        "/{hook}",
        post(
            move |axum::extract::Path(hook): axum::extract::Path<String>,
                  axum::Json(body): axum::Json<Value>| {
                let (tx, calls) = (tx.clone(), calls.clone());
                async move {
                    if hook == "generic" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [("retry-after", "0")],
                            "busy",
                        )
                            .into_response();
                    }
                    let _ = tx.send((hook, body));
                    "ok".into_response()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let extra = format!(
        r#"
[[alerts.routes]]
severity = ["critical"]
webhooks = ["slack", "generic"]
continue = true

[[alerts.routes]]
channels = ["everything"]

[alerts.webhooks.slack]
kind = "slack"
url = "http://{addr}/slack"
username = "deckhand"

[alerts.webhooks.generic]
kind = "json"
url = "http://{addr}/generic"
"#
    );
    let bot = TestBot::with_config(&[], &section(&extra));
    let (handle, outbox) = start(&bot).await;
    let mut critical = alert("GpuNodeDown", "w1", Status::Firing);
    critical.severity = Severity::Critical;
    handle.state.submit(vec![critical]).unwrap();
    let mut bodies = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let (hook, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("webhook called")
            .unwrap();
        bodies.insert(hook, body);
    }
    let slack = &bodies["slack"];
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("*🔴 FIRING critical · GpuNodeDown*"),
        "{slack}"
    );
    assert_eq!(slack["username"], "deckhand");
    let generic = &bodies["generic"];
    assert_eq!(generic["kind"], "firing");
    assert_eq!(generic["covers"], 1);
    assert_eq!(generic["alerts"][0]["fingerprint"], "w1");
    let m = wait_for(&outbox, "the channel copy", |m| {
        m.text.contains("GpuNodeDown")
    })
    .await;
    assert_eq!(m.channel, "everything");
    assert_eq!(
        generic_calls.load(Ordering::SeqCst),
        2,
        "one retry after the 503"
    );
    assert_eq!(handle.state.metrics.dropped_total(DropStage::Send), 0);
}

/// `deckhand shell` with `[alerts]` starts the receiver and prints alerts in the terminal;
/// `/alerts` is available at the prompt.
#[tokio::test]
async fn deckhand_shell_starts_the_receiver() {
    use std::io::{BufRead, BufReader, Write};

    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let config = dir.path().join("deckhand.toml");
    std::fs::write(
        &config,
        deckhand_it::config_text(&plugins, &dir.path().join("state.db"), &section("")),
    )
    .unwrap();
    let mut child = Command::new(deckhand_it::deckhand_binary())
        .args(["shell", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", "x")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let mut next_line = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no line {what}; output so far:\n{}", seen.join("\n")),
            }
        }
    };
    let banner = next_line("announcing the receiver", &|l| {
        l.starts_with("alerts: receiving on")
    });
    let url = banner
        .split_whitespace()
        .find(|w| w.ends_with("/alerts/alertmanager"))
        .unwrap()
        .to_owned();
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(AM_PAYLOAD)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let printed = next_line("with the alert", &|l| l.contains("FIRING"));
    assert!(printed.starts_with("[alerts-default]"), "{printed}");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/alerts list\n").unwrap();
    drop(stdin);
    next_line("listing it", &|l| l.starts_with("1 active alert(s)"));
    assert!(child.wait().unwrap().success());
}

/// `[[alerts.kubernetes]]` without a kubeconfig uses the `[[kubernetes.clusters]]` entry of the
/// same name: here an AKS cluster whose credentials come from `listClusterUserCredential`.
#[tokio::test]
async fn kubernetes_watcher_uses_the_aks_cluster_credentials() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};

    let extra = section(
        r#"
[[alerts.kubernetes]]
name = "pangeoCluster"
"#,
    );
    let cloud = deckhand_it::cloud::CloudBot::start(&[], Duration::from_millis(50), &extra).await;
    let (handle, outbox) = start(&cloud.bot).await;
    assert!(handle.problems.is_empty(), "{:?}", handle.problems);
    let kubeconfig = cloud
        .sandbox
        .kubeconfig(&cloud.estate.resource_group, &cloud.estate.cluster)
        .unwrap();
    let client = deckhand_it::cloud::kube_client_from(&kubeconfig).await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "gpu-trainer", "namespace": "default"},
        "spec": {"containers": [{"name": "train", "image": "runner:1",
            "resources": {"limits": {"nvidia.com/gpu": 4}}}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(client, "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let m = wait_for(&outbox, "FailedScheduling for gpu-trainer", |m| {
        m.text.contains("gpu-trainer") && m.text.contains("FailedScheduling")
    })
    .await;
    assert_eq!(m.channel, "alerts-default");
    assert!(m.text.contains("nvidia.com/gpu"), "{}", m.text);
    assert!(m.text.contains("pangeoCluster/default"), "{}", m.text);
}

/// A webhook URL carries its token (Slack's path, `?token=`): a failing delivery is logged and
/// counted without it.
#[tokio::test]
async fn failed_webhook_is_counted_and_its_token_never_logged() {
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);

    // Refuses everything with 400 (not retried).
    let app = axum::Router::new().fallback(|| async { (StatusCode::BAD_REQUEST, "invalid_token") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let extra = format!(
        r#"
[[alerts.routes]]
webhooks = ["slack"]

[alerts.webhooks.slack]
kind = "slack"
url = "http://{addr}/services/T0001/B0001/SUPERSECRETTOKEN?token=ALSOSECRET"
"#
    );
    let bot = TestBot::with_config(&[], &section(&extra));
    let (handle, _outbox) = start(&bot).await;
    handle
        .state
        .submit(vec![alert("Webhooked", "h1", Status::Firing)])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.state.metrics.dropped_total(DropStage::Send) == 0 {
        assert!(
            Instant::now() < deadline,
            "the failed delivery was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(handle.state.metrics.dropped_total(DropStage::Send), 1);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("alert webhook not delivered"), "{logs}");
    assert!(logs.contains("HTTP 400"), "{logs}");
    assert!(
        !logs.contains("SUPERSECRETTOKEN") && !logs.contains("ALSOSECRET"),
        "{logs}"
    );
}

/// Posts as a chat surface sees them, each stamped when its send started; every post takes
/// `latency` (a Discord round trip), so a limiter stamping at schedule time would be caught.
struct TimedOutbox {
    posts: std::sync::Mutex<Vec<(Instant, OutboundMessage)>>,
    latency: Duration,
}

impl deckhand::chat::Outbox for TimedOutbox {
    fn deliver(
        &self,
        message: OutboundMessage,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        self.posts.lock().unwrap().push((Instant::now(), message));
        let latency = self.latency;
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            Ok(())
        })
    }
}

/// Alertmanager's fingerprint of a label set (prometheus/common `model.LabelSet.Fingerprint`:
/// FNV-1a 64 over the sorted names and values, each followed by 0xff), as hex.
fn am_fingerprint(labels: &std::collections::BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

fn short_id(fingerprint: &str) -> String {
    Alert {
        source: Source::Alertmanager,
        fingerprint: fingerprint.into(),
        status: Status::Firing,
        severity: Severity::Warning,
        name: String::new(),
        summary: String::new(),
        labels: Default::default(),
        starts_at: None,
        ends_at: None,
        url: None,
    }
    .id()
}

/// Two `PodDown` label sets whose Alertmanager fingerprints get the same 32-bit short id.
fn colliding_pods() -> [std::collections::BTreeMap<String, String>; 2] {
    let labels = |i: u32| {
        [
            ("alertname", "PodDown".to_owned()),
            ("team", "a".to_owned()),
            ("pod", format!("payment-{i:07}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect::<std::collections::BTreeMap<String, String>>()
    };
    let mut seen = std::collections::HashMap::new();
    for i in 0u32.. {
        if let Some(j) = seen.insert(short_id(&am_fingerprint(&labels(i))), i) {
            return [labels(j), labels(i)];
        }
    }
    unreachable!()
}

/// What one channel's posts say, counted per pod (summaries name the pod).
#[derive(Debug, Default)]
struct Tally {
    firing: Vec<String>,
    resolved: Vec<String>,
    reminders: usize,
    digest_new: u64,
    digest_since_resolved: u64,
    digest_resolutions: u64,
    continuations: usize,
    times: Vec<Instant>,
}

fn number_before(text: &str, marker: &str) -> u64 {
    text.split(marker)
        .next()
        .and_then(|t| t.rsplit(|c: char| !c.is_ascii_digit()).next())
        .filter(|_| text.contains(marker))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn pods_in(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("• "))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("checkout-") || w.starts_with("payment-"))
                .map(str::to_owned)
        })
        .collect()
}

fn tally(posts: &[(Instant, OutboundMessage)], channel: &str) -> Tally {
    let mut t = Tally::default();
    for (at, post) in posts.iter().filter(|(_, p)| p.channel == channel) {
        t.times.push(*at);
        let head = post.text.lines().next().unwrap_or_default();
        if head.starts_with("(continued)") {
            t.continuations += 1;
        }
        if head.contains("Digest:") {
            t.digest_new += number_before(head, " new");
            t.digest_since_resolved += number_before(head, " since resolved");
            t.digest_resolutions += number_before(head, " resolved (announced earlier)");
        } else if head.contains("REMINDER") {
            t.reminders += 1;
        } else if head.contains("FIRING") {
            t.firing.extend(pods_in(&post.text));
        } else if head.contains("RESOLVED") {
            t.resolved.extend(pods_in(&post.text));
        }
    }
    t
}

/// Issue 12, points 10–13: a storm of 5,202 distinct alerts through a real Alertmanager,
/// 650 of them resolved, running longer than a shortened dedup window (1 s) while
/// Alertmanager re-sends the still-firing ones (every group it re-sends after a resolution). Counted per channel, the posts account for
/// every distinct alert exactly once (firing: listed or counted new in a digest; resolved:
/// listed, or counted in a digest), two alerts whose short ids collide are both announced,
/// nothing is announced again, messages over 1,900 characters became several posts, and no
/// 5 s window of a channel holds more than 4 posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_through_real_alertmanager_accounts_for_every_alert_once() {
    const N: usize = 5_200;
    let resolved = |i: usize| i.is_multiple_of(8);
    let config = r#"
[alerts]
listen = "127.0.0.1:0"
default_channel = "alerts-default"
max_body_bytes = 16777216

[alerts.auth]
kind = "bearer"
token = "storm-token"

[alerts.storm]
group_wait = "0s"
dedup_window = "1s"

[[alerts.routes]]
labels = { team = "a" }
channels = ["ch-a"]

[[alerts.routes]]
labels = { team = "b" }
channels = ["ch-b"]
"#;
    let bot = TestBot::with_config(&[], config);
    let outbox = Arc::new(TimedOutbox {
        posts: Default::default(),
        latency: Duration::from_millis(30),
    });
    let handle = bot.app.start_alerts(outbox.clone()).await.unwrap().unwrap();
    let receiver = handle.local_addr.unwrap();
    let mut am = Alertmanager::start(
        free_port(),
        &format!("http://{receiver}/alerts/alertmanager"),
        "storm-token",
    );
    let http = reqwest::Client::new();
    am.wait_ready(&http).await;

    let team = |i: usize| ["a", "b", "c"][i % 3];
    // Long summaries: ten of them are more than one Discord post.
    let storm_alert = |i: usize, ends_at: Option<&str>| {
        let mut a = json!({
            "labels": {"alertname": format!("Storm{:02}", i % 37), "team": team(i),
                       "pod": format!("checkout-{i:07}"), "severity": "warning"},
            "annotations": {"summary": format!(
                "Pod checkout-{i:07} in namespace shop keeps crashing: {}",
                "back-off restarting failed container ".repeat(4)
            )},
        });
        if let Some(end) = ends_at {
            a["endsAt"] = json!(end);
        }
        a
    };
    let pair = colliding_pods();
    let pair_json: Vec<Value> = pair
        .iter()
        .map(|labels| {
            json!({"labels": labels, "annotations": {"summary": format!(
                "Pod {} is down", labels["pod"])}})
        })
        .collect();
    // The colliding pair first, so both are listed by name in ch-a's first message.
    am.post_alerts(&http, Value::Array(pair_json)).await;
    let first_post = Instant::now() + Duration::from_secs(30);
    while !outbox
        .posts
        .lock()
        .unwrap()
        .iter()
        .any(|(_, p)| p.text.contains("payment-"))
    {
        assert!(Instant::now() < first_post, "the pair was not announced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for chunk in (0..N).collect::<Vec<_>>().chunks(650) {
        let batch: Vec<Value> = chunk.iter().map(|i| storm_alert(*i, None)).collect();
        am.post_alerts(&http, Value::Array(batch)).await;
    }

    // Alertmanager computed the fingerprints the pair was chosen by.
    let listed: Value = http
        .get(format!(
            "{}/api/v2/alerts?filter=alertname%3D%22PodDown%22",
            am.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut fingerprints: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    fingerprints.sort();
    let mut expected: Vec<String> = pair.iter().map(am_fingerprint).collect();
    expected.sort();
    assert_eq!(fingerprints, expected);
    assert_eq!(short_id(&expected[0]), short_id(&expected[1]));

    let posts = || outbox.posts.lock().unwrap().clone();
    let wait = |what: &str, done: &dyn Fn() -> bool, deadline: Instant| {
        assert!(
            Instant::now() < deadline,
            "{what} not reached in time; storm {:?}; {} posts; alertmanager log tail:\n{}",
            handle.state.storm_stats(),
            posts().len(),
            am.log()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        done()
    };
    let deadline = Instant::now() + Duration::from_secs(50);
    // Every alert arrived, and the storm has lasted past the dedup window: a channel's
    // second rate window (≥ 5 s after its first post) has begun.
    while !wait(
        "all alerts received and a second window",
        &|| {
            handle.state.active().len() == N + 2
                && ["ch-a", "ch-b", "alerts-default"]
                    .iter()
                    .any(|c| tally(&posts(), c).times.len() > 4)
        },
        deadline,
    ) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Resolve 650; Alertmanager re-sends the rest of those groups, still firing, with them.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let batch: Vec<Value> = (0..N)
        .filter(|i| resolved(*i))
        .map(|i| storm_alert(i, Some(&past)))
        .collect();
    am.post_alerts(&http, Value::Array(batch)).await;

    let channels = [("ch-a", "a"), ("ch-b", "b"), ("alerts-default", "c")];
    let expect = |t: &str| {
        let firing = (0..N).filter(|i| team(*i) == t).count() + if t == "a" { 2 } else { 0 };
        let gone = (0..N).filter(|i| team(*i) == t && resolved(*i)).count();
        (firing as u64, gone as u64)
    };
    let complete = || {
        let posts = posts();
        let stats = handle.state.storm_stats();
        stats.pending == 0
            && stats.posts as usize == posts.len()
            && channels.iter().all(|(c, t)| {
                let tally = tally(&posts, c);
                let (_, gone) = expect(t);
                tally.resolved.len() as u64 + tally.digest_since_resolved + tally.digest_resolutions
                    >= gone
            })
    };
    while !wait("every resolution posted", &complete, deadline) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let posts = posts();
    let mut continuations = 0;
    for (channel, t) in channels {
        let tally = tally(&posts, channel);
        let (firing, gone) = expect(t);
        let mut listed = tally.firing.clone();
        listed.sort();
        listed.dedup();
        assert_eq!(
            listed.len(),
            tally.firing.len(),
            "{channel}: an alert was announced twice"
        );
        assert_eq!(tally.reminders, 0, "{channel}");
        assert_eq!(
            tally.firing.len() as u64 + tally.digest_new,
            firing,
            "{channel}: firing alerts listed {} + new in digests {}",
            tally.firing.len(),
            tally.digest_new
        );
        assert_eq!(
            tally.resolved.len() as u64 + tally.digest_since_resolved + tally.digest_resolutions,
            gone,
            "{channel}: {tally:?}"
        );
        for w in tally.times.windows(5) {
            assert!(
                w[4] - w[0] >= Duration::from_secs(5),
                "{channel}: 5 posts within {:?}",
                w[4] - w[0]
            );
        }
        continuations += tally.continuations;
    }
    assert!(continuations > 0, "no message was long enough to split");
    assert!(posts.iter().all(|(_, p)| p.text.chars().count() <= 2000));
    let stats = handle.state.storm_stats();
    assert!(stats.balanced(), "{stats:?}");
    // Every Alertmanager group held a resolved alert (37 groups, every 8th alert resolved),
    // so each was re-sent with all its still-firing alerts, seconds after the 1 s window.
    assert!(
        stats.deduplicated >= (N - 650) as u64,
        "Alertmanager's re-sends were not all deduplicated: {stats:?}"
    );
    assert_eq!(stats.posts as usize, posts.len());

    // Point 10: both colliding alerts are active; the short id they share is refused with
    // their long ids, which work.
    let a_tally = tally(&posts, "ch-a");
    let pair_listed: Vec<&String> = a_tally
        .firing
        .iter()
        .filter(|p| p.starts_with("payment-"))
        .collect();
    assert_eq!(pair_listed.len(), 2, "{pair_listed:?}");
    let short = short_id(&expected[0]);
    let refused = bot.say(&format!("/alerts ack {short}")).await;
    assert_eq!(refused.kind, ResponseKind::Error, "{}", refused.text);
    assert!(
        refused.text.contains("names several active alerts"),
        "{}",
        refused.text
    );
    let long = refused
        .text
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 16)
        .expect("a long id")
        .to_owned();
    let acked = bot.say(&format!("/alerts ack {long}")).await;
    assert_eq!(acked.kind, ResponseKind::Ok, "{}", acked.text);
    drop(am);
}

/// Issue 12, point 14: `deckhand check` warns (without failing) about a receiver listening
/// beyond loopback without `[alerts.auth]`, and says nothing when it is on loopback.
#[test]
fn check_warns_about_an_open_receiver() {
    let run = |listen: &str| {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let config = dir.path().join("deckhand.toml");
        let section =
            format!("[alerts]\nlisten = \"{listen}\"\ndefault_channel = \"alerts-default\"\n");
        std::fs::write(
            &config,
            deckhand_it::config_text(&plugins, &dir.path().join("state.db"), &section),
        )
        .unwrap();
        let out = Command::new(deckhand_it::deckhand_binary())
            .args(["check", "--config"])
            .arg(&config)
            .env("DECKHAND_IT_TOKEN", "x")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run("0.0.0.0:9095");
    assert!(ok, "a warning, not a failure: {stderr}");
    assert!(
        stderr.contains("warning: [alerts] the receiver listens on 0.0.0.0:9095, beyond loopback, without [alerts.auth]"),
        "{stderr}"
    );
    let (ok, stderr) = run("127.0.0.1:9095");
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}
