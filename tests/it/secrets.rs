//! Canaries in every secret slot of the config, upstreams that echo back whatever they were
//! sent (a registry's 401, Alertmanager's 500, an Entra token endpoint's error, an HTTP API's
//! 401), and an alert whose annotation quotes a secret: no canary, in any of its encoded forms,
//! reaches a reply, a posted message, the log (at debug level), or the state database.
//!
//! The upstreams are a local echo server: no real registry or Alertmanager echoes credentials,
//! which is the point of the hostile double. The alert webhook's URL (a credential for Slack and
//! Teams) is a slot too. Discord's token sits in the config, but `deckhand shell` does not
//! connect to Discord, so no upstream echoes it here.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use deckhand_it::{config_text, deckhand_binary, free_port, plugin_library};

/// One distinct value per secret slot, long enough to be registered.
const BEARER_PROFILE: &str = "canary-bearer-profile-1f2e";
const BASIC_PASSWORD: &str = "canary-basic-password-3d4c";
const BASIC_USER: &str = "deckha";
const CLIENT_SECRET: &str = "canary-client-secret-5b6a";
const RECEIVER_TOKEN: &str = "canary-receiver-token-7988";
const ALERTMANAGER_TOKEN: &str = "canary-alertmanager-token-a9b0";
/// A webhook URL is a secret (Slack's and Teams' URLs are their credentials).
const WEBHOOK_PATH: &str = "canary-webhook-path-c1d2";
const DISCORD_TOKEN: &str = "canary-discord-token-e3f4";

/// Each canary as it may travel: raw, base64, URL-safe base64, percent-encoded, and the basic
/// `user:password` pair in base64.
fn leaks() -> Vec<(String, String)> {
    let std = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = Vec::new();
    for canary in [
        BEARER_PROFILE,
        BASIC_PASSWORD,
        CLIENT_SECRET,
        RECEIVER_TOKEN,
        ALERTMANAGER_TOKEN,
        WEBHOOK_PATH,
        DISCORD_TOKEN,
    ] {
        forms.push((canary.to_owned(), canary.to_owned()));
        forms.push((format!("{canary} (base64)"), std.encode(canary)));
        forms.push((format!("{canary} (url base64)"), url.encode(canary)));
        forms.push((format!("{canary} (percent)"), canary.replace('-', "%2D")));
    }
    forms.push((
        "basic user:password (base64)".into(),
        std.encode(format!("{BASIC_USER}:{BASIC_PASSWORD}")),
    ));
    forms
}

/// Everything the echo server received, as text.
type Received = Arc<Mutex<Vec<String>>>;

/// Answers every request with an error whose body repeats the request: method, URI, every
/// header (Authorization included) and the body. Registry paths get a Basic challenge first.
async fn echo(
    received: axum::extract::State<Received>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut text = format!("you sent {method} {uri}\n");
    for (name, value) in &headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str(&String::from_utf8_lossy(&body));
    received.lock().unwrap().push(text.clone());
    let path = uri.path();
    if path.starts_with("/v2/") {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", r#"Basic realm="echo""#)],
            text,
        )
            .into_response();
    }
    if path.starts_with("/api/v2/") {
        return (StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
    }
    (StatusCode::UNAUTHORIZED, text).into_response()
}

/// Polls `path` until it contains `needle` (up to 60 s); returns its text.
async fn wait_for_text(path: &std::path::Path, needle: &str) -> String {
    for _ in 0..600 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} never contained {needle:?}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_in_every_secret_slot_never_leave_the_host_even_when_upstreams_echo_them() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(echo)
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in ["echo", "cloudprobe"] {
        let library = plugin_library(name);
        std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    }
    let receiver_port = free_port();
    let state = dir.path().join("state.db");
    let extra = format!(
        r#"
[auth_profiles.echo-basic]
kind = "basic"
username = "{BASIC_USER}"
password = "{BASIC_PASSWORD}"

[[registries]]
name = "echo"
url = "{upstream}"
auth = "echo-basic"

[azure]
subscription_id = "00000000-0000-0000-0000-000000000000"
authority_host = "{upstream}"
arm_endpoint = "{upstream}"

[azure.credential]
kind = "client_secret"
tenant_id = "11111111-1111-1111-1111-111111111111"
client_id = "22222222-2222-2222-2222-222222222222"
client_secret = "{CLIENT_SECRET}"

[azure.retry]
max_attempts = 1

[alerts]
listen = "127.0.0.1:{receiver_port}"
default_channel = "terminal"

[alerts.storm]
group_wait = "0s"

[alerts.auth]
kind = "bearer"
token = "{RECEIVER_TOKEN}"

[alerts.alertmanager]
url = "{upstream}"
bearer_token = "{ALERTMANAGER_TOKEN}"

[[alerts.routes]]
name = "leaky"
labels = {{ alertname = "LeakyAlert" }}
channels = ["terminal"]
webhooks = ["echo-hook"]

[alerts.webhooks.echo-hook]
kind = "json"
url = "{upstream}/hook/{WEBHOOK_PATH}"

[discord]
token = "{DISCORD_TOKEN}"
"#
    );
    let config = dir.path().join("deckhand.toml");
    std::fs::write(&config, config_text(&plugins, &state, &extra)).unwrap();

    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(deckhand_binary())
        .args(["shell", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", BEARER_PROFILE)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let commands = [
        format!("/fetch {upstream}/api/data --profile test-bearer"),
        "/registry tags echo --repository simsvc".to_owned(),
        "/arm GET /resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c --api 2025-10-01"
            .to_owned(),
        "/alerts silence alertname=DiskFull --for 2h".to_owned(),
        // A command line that quotes a secret itself.
        format!("/echo 'the token is {BEARER_PROFILE}'"),
    ];
    for command in &commands {
        writeln!(stdin, "{command}").unwrap();
    }
    writeln!(stdin, "/echo commands-done").unwrap();
    stdin.flush().unwrap();
    wait_for_text(&stdout_path, "commands-done").await;

    // An alert whose annotation quotes two secrets is posted to the terminal channel.
    let alert = format!(
        r#"{{"version":"4","groupKey":"k","truncatedAlerts":0,"status":"firing","receiver":"deckhand",
  "groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"http://am",
  "alerts":[{{"status":"firing","labels":{{"alertname":"LeakyAlert"}},
  "annotations":{{"summary":"login with {CLIENT_SECRET} or Basic {basic}"}},
  "startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f1"}}]}}"#,
        basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{BASIC_USER}:{BASIC_PASSWORD}")),
    );
    let posted = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{receiver_port}/alerts/alertmanager"
        ))
        .bearer_auth(RECEIVER_TOKEN)
        .header("content-type", "application/json")
        .body(alert)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "{:?}", posted.text().await);
    let stdout = wait_for_text(&stdout_path, "LeakyAlert").await;
    // The webhook got the alert too (the echo server answered 401), and said so in the log.
    wait_for_text(&stderr_path, "alert webhook not delivered").await;
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();

    // The upstreams did receive the canaries (so the echoes were real) ...
    let upstream_saw = received.lock().unwrap().join("\n");
    for canary in [
        BEARER_PROFILE,
        CLIENT_SECRET,
        ALERTMANAGER_TOKEN,
        WEBHOOK_PATH,
    ] {
        assert!(
            upstream_saw.contains(canary),
            "{canary} was not sent: {upstream_saw}\nreplies:\n{stdout}"
        );
    }
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{BASIC_USER}:{BASIC_PASSWORD}"));
    assert!(upstream_saw.contains(&basic), "{upstream_saw}");
    // ... and each echo was answered with its masked text, not dropped.
    assert!(stdout.contains("you sent GET /api/data"), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(!stderr.is_empty(), "debug logging is on");

    // Nothing else the host wrote holds any form of any canary.
    let mut database = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.to_string_lossy().contains("state.db") {
            database.extend(std::fs::read(&path).unwrap());
        }
    }
    let database = String::from_utf8_lossy(&database);
    assert!(
        database.contains("registry"),
        "the database holds the audit log"
    );
    for (what, form) in leaks() {
        assert!(
            !stdout.contains(&form),
            "{what} in a reply or message:\n{stdout}"
        );
        assert!(!stderr.contains(&form), "{what} in the log:\n{stderr}");
        assert!(!database.contains(&form), "{what} in the state database");
    }
}
