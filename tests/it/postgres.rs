//! Issue 19: the bot on a real PostgreSQL server (started by the harness on loopback, stopped
//! by pid): two shells sharing one state, export to SQLite, and PostgreSQL going away and
//! coming back under a running bot.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use deckhand::state::Db;
use deckhand_it::{Shell, config_text, plugin_library, run_deckhand, spawn_shell};
use deckhand_postgres_server::PgServer;

/// A config in `dir` with the echo plugin and `[state] url`.
fn postgres_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = plugin_library("echo");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let unused = dir.join("unused.db");
    let text = config_text(&plugins, &unused, "").replace(
        &format!("path = \"{}\"", unused.display()),
        &format!("url = \"{url}\""),
    );
    assert!(text.contains(url), "the [state] url replaced the path");
    let config = dir.join("deckhand.toml");
    std::fs::write(&config, text).unwrap();
    config
}

/// Sends `line`, then reads reply lines until one satisfies `done` (replies may span lines).
fn ask_until(shell: &mut Shell, line: &str, done: impl Fn(&str) -> bool) -> String {
    writeln!(shell.stdin, "{line}").unwrap();
    shell.stdin.flush().unwrap();
    loop {
        let mut reply = String::new();
        assert!(
            shell.stdout.read_line(&mut reply).unwrap() > 0,
            "the shell ended"
        );
        let reply = reply.trim_end();
        if done(reply) {
            return reply.to_owned();
        }
    }
}

/// Sends `line` and returns the first line of its reply.
fn ask(shell: &mut Shell, line: &str) -> String {
    ask_until(shell, line, |_| true)
}

/// `GET /readyz` on the ops port: status and body.
fn readyz(port: u16) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

fn finish(mut shell: Shell) {
    drop(shell.stdin);
    assert!(shell.child.wait().unwrap().success());
}

#[test]
fn two_shells_share_one_state_and_it_exports_to_sqlite() {
    let server = deckhand_postgres_server::shared();
    let url = server.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let config = postgres_config(dir.path(), &url);

    let mut first = spawn_shell(&config);
    assert_eq!(ask(&mut first, "/kv put colour teal"), "stored colour");
    // A second replica on the same database reads what the first wrote.
    let mut second = spawn_shell(&config);
    assert_eq!(ask(&mut second, "/kv get colour"), "teal");
    finish(first);
    finish(second);

    let db = Db::connect_postgres(&url, None, None).unwrap();
    let commands: Vec<(String, String)> = db
        .audit_recent(10)
        .unwrap()
        .into_iter()
        .map(|r| (r.command, r.outcome))
        .collect();
    assert!(
        commands.contains(&("kv put".into(), "ok".into())),
        "{commands:?}"
    );
    assert!(
        commands.contains(&("kv get".into(), "ok".into())),
        "{commands:?}"
    );

    let file = dir.path().join("export.db");
    let file_arg = file.display().to_string();
    let out = run_deckhand(
        &["state", "export", "--to", "sqlite", &file_arg],
        &config,
        &[],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = Db::open(&file).unwrap();
    let rows = |db: &Db| -> Vec<(i64, String, String)> {
        db.audit_recent(100)
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.invocation_id, r.outcome))
            .collect()
    };
    assert_eq!(rows(&exported), rows(&db), "same rows, same ids");
    let colour = db.kv_get("echo", "colour").unwrap();
    assert!(
        colour.is_some(),
        "the echo plugin's kv namespace holds the key"
    );
    assert_eq!(exported.kv_get("echo", "colour").unwrap(), colour);
}

#[test]
fn while_postgres_is_down_changes_are_refused_and_the_bot_recovers_by_itself() {
    // A server of its own: this test stops it.
    let server = PgServer::start();
    let url = server.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let config = postgres_config(dir.path(), &url);
    let ops = deckhand_it::free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[ops]\nlisten = \"127.0.0.1:{ops}\"\n"));
    std::fs::write(&config, text).unwrap();
    let mut shell = spawn_shell(&config);
    assert_eq!(ask(&mut shell, "/kv put a 1"), "stored a");
    let (status, body) = readyz(ops);
    assert_eq!(status, 200, "{body}");

    // PostgreSQL stops while a command runs: its end is written once the server is back.
    writeln!(shell.stdin, "/slow 1500").unwrap();
    shell.stdin.flush().unwrap();
    let watcher = Db::connect_postgres(&url, None, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !watcher
        .audit_recent(5)
        .unwrap()
        .iter()
        .any(|r| r.command == "slow" && r.outcome == "running")
    {
        assert!(Instant::now() < deadline, "/slow never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(watcher);
    server.stop();
    let mut slept = String::new();
    while !slept.starts_with("slept 1500 ms") {
        slept.clear();
        assert!(
            shell.stdout.read_line(&mut slept).unwrap() > 0,
            "the shell ended"
        );
    }
    let refused = ask_until(&mut shell, "/kv put a 2", |l| l.contains("unreachable"));
    assert!(refused.contains("127.0.0.1"), "{refused}");
    // /readyz says so, naming the database.
    let (status, body) = readyz(ops);
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["state"]["ok"], false, "{report}");
    assert!(
        report["state"]["detail"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{report}"
    );
    // A destructive command is refused too, before any confirmation is filed.
    let wipe = ask_until(&mut shell, "/wipe", |l| {
        l.contains("unreachable") || l.contains("Confirm")
    });
    assert!(wipe.contains("unreachable"), "{wipe}");
    // A built-in that changes nothing still answers.
    ask_until(&mut shell, "/whoami", |l| {
        l.starts_with("You are Local operator")
    });

    server.start_again();
    // The bot reconnects on its own (backoff of at most 5 s): wait for that state.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = ask_until(&mut shell, "/kv put a 3", |l| {
            l == "stored a" || l.contains("unreachable")
        });
        if reply == "stored a" {
            break;
        }
        assert!(Instant::now() < deadline, "not reconnected: {reply}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ask(&mut shell, "/kv get a"), "3");
    assert_eq!(readyz(ops).0, 200);
    finish(shell);
    let db = Db::connect_postgres(&url, None, None).unwrap();
    let outcomes: Vec<String> = db
        .audit_recent(100)
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "kv put")
        .map(|r| r.outcome)
        .collect();
    assert!(outcomes.iter().all(|o| o == "ok"), "{outcomes:?}");
    assert!(outcomes.len() >= 2, "{outcomes:?}");
    let rows = db.audit_recent(100).unwrap();
    let slow: Vec<&str> = rows
        .iter()
        .filter(|r| r.command == "slow")
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(
        slow,
        ["ok"],
        "the end written while the server was down came through"
    );
    assert!(
        !rows.iter().any(|r| r.command == "wipe"),
        "no row: it never started"
    );
}

/// Issue 19: an HA Alertmanager pair sends every webhook to both replicas. Two bots on one
/// PostgreSQL state, each with its own receiver, get the same 1,000 firing alerts (ten
/// webhooks of 100, sent to both at once): every alert is announced by exactly one of them
/// (listed in a message or counted in a digest), the other drops it as the other replica's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_alert_storm_sent_to_both_replicas_is_announced_once() {
    use deckhand::alerts::metrics::DropStage;
    use deckhand::chat::MemoryOutbox;
    use std::sync::Arc;

    const N: usize = 1_000;
    let server = deckhand_postgres_server::shared();
    let url = server.fresh_database();
    let alerts = r#"
[alerts]
listen = "127.0.0.1:0"
default_channel = "alerts-default"
max_body_bytes = 1048576

[alerts.storm]
group_wait = "0s"
channel_window = "1s"
"#;
    let (_dirs, apps) = two_replicas(&url, alerts);
    let mut replicas = Vec::new();
    for app in apps {
        let outbox = Arc::new(MemoryOutbox::default());
        let handle = app.start_alerts(outbox.clone()).await.unwrap().unwrap();
        replicas.push((app, handle, outbox));
    }
    let webhook = |from: usize| {
        let alerts: Vec<serde_json::Value> = (from..from + 100)
            .map(|i| {
                serde_json::json!({
                    "status": "firing",
                    "labels": {"alertname": format!("Storm{}", i % 10), "instance": format!("node-{i}")},
                    "annotations": {"summary": format!("node-{i} is down")},
                    "startsAt": "2026-12-03T18:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": format!("{i:016x}")
                })
            })
            .collect();
        serde_json::json!({
            "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "deckhand", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "alerts": alerts
        })
    };
    let client = reqwest::Client::new();
    let mut sends = Vec::new();
    for from in (0..N).step_by(100) {
        for (_, handle, _) in &replicas {
            let uri = format!("http://{}/alerts/alertmanager", handle.local_addr.unwrap());
            let (client, body) = (client.clone(), webhook(from));
            sends.push(tokio::spawn(async move {
                client.post(uri).json(&body).send().await.unwrap().status()
            }));
        }
    }
    for send in sends {
        assert!(send.await.unwrap().is_success());
    }
    // Settled: every alert received by both, each replica's storm control has nothing left.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let settled = replicas.iter().all(|(_, h, _)| {
            let stats = h.state.storm_stats();
            stats.pending == 0
                && h.state.metrics.routed_total()
                    + h.state.metrics.dropped_total(DropStage::Replica)
                    == N as u64
        });
        let announced: u64 = replicas
            .iter()
            .map(|(_, h, _)| {
                let stats = h.state.storm_stats();
                stats.alerts_in_messages + stats.folded
            })
            .sum();
        if settled && announced == N as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: announced {announced}, {:?}",
            replicas
                .iter()
                .map(|(_, h, _)| h.state.storm_stats())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dropped: u64 = replicas
        .iter()
        .map(|(_, h, _)| h.state.metrics.dropped_total(DropStage::Replica))
        .sum();
    assert_eq!(
        dropped, N as u64,
        "each alert dropped by exactly one replica"
    );
    // What the counters say is what was posted: alerts listed (each node once, over both
    // replicas) plus the digests' counts.
    let mut listed_nodes = std::collections::BTreeSet::new();
    for (_, handle, outbox) in &replicas {
        let stats = handle.state.storm_stats();
        assert!(stats.balanced(), "{stats:?}");
        assert_eq!(stats.deduplicated, 0, "{stats:?}");
        let mut posted = 0u64;
        for message in outbox.messages() {
            if let Some(rest) = message.text.split("Digest: ").nth(1) {
                posted += rest
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no count in {}", message.text));
                continue;
            }
            for node in message.text.lines().filter_map(|l| {
                l.strip_prefix("• ")
                    .and_then(|l| l.rsplit_once(" ["))
                    .map(|(_, n)| n.trim_end_matches(']').to_owned())
            }) {
                posted += 1;
                assert!(listed_nodes.insert(node.clone()), "{node} listed twice");
            }
        }
        assert_eq!(posted, stats.alerts_in_messages + stats.folded);
    }
    let claims = Db::connect_postgres(&url, None, None)
        .unwrap()
        .query("SELECT count(*) FROM alerts_claims", &[])
        .unwrap();
    assert_eq!(claims[0].get::<i64>(0).unwrap(), N as i64);
}

/// Two replicas on one PostgreSQL state, in this process, with `extra` config.
fn two_replicas(url: &str, extra: &str) -> (Vec<tempfile::TempDir>, [deckhand::app::App; 2]) {
    // SAFETY: as in the harness: every test sets the same value.
    unsafe { std::env::set_var("DECKHAND_IT_TOKEN", "it-secret-token") };
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |dir: &tempfile::TempDir| {
        let config = postgres_config(dir.path(), url);
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(extra);
        std::fs::write(&config, text).unwrap();
        deckhand::app::App::start(deckhand::config::Config::load(&config).unwrap()).unwrap()
    };
    let apps = [start(&dirs[0]), start(&dirs[1])];
    (dirs, apps)
}

async fn say(app: &deckhand::app::App, text: &str) -> deckhand::router::Response {
    let invocation = deckhand::router::Invocation::new("test", "ops", deckhand_it::admin(), text);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    app.router.handle(invocation, tx).await
}

/// Issue 19: a destructive command asked on one replica is confirmed on the other; a code
/// confirmed on both at once runs once; an expired code is reported expired on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_filed_on_one_replica_is_taken_once_on_either() {
    let server = deckhand_postgres_server::shared();
    let url = server.fresh_database();
    let (_dirs, [a, b]) = two_replicas(&url, "");
    let asked = say(&a, "/wipe").await;
    let code = asked.confirmation.clone().expect("a confirmation code");
    let done = say(&b, &format!("/confirm {code}")).await;
    assert_eq!(done.text, "wiped");
    let again = say(&a, &format!("/confirm {code}")).await;
    assert!(
        again.text.contains("no pending confirmation"),
        "{}",
        again.text
    );

    // Both replicas confirm the same code at the same moment: one runs it.
    for _ in 0..10 {
        let code = say(&a, "/wipe").await.confirmation.unwrap();
        let line = format!("/confirm {code}");
        let (x, y) = tokio::join!(say(&a, &line), say(&b, &line));
        let ran = [&x, &y].iter().filter(|r| r.text == "wiped").count();
        assert_eq!(ran, 1, "{} / {}", x.text, y.text);
    }
    let db = Db::connect_postgres(&url, None, None).unwrap();
    let wipes: Vec<String> = db
        .audit_recent(100)
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "wipe")
        .map(|r| r.outcome)
        .collect();
    assert_eq!(wipes.len(), 11, "{wipes:?}");
    assert!(wipes.iter().all(|o| o == "ok"), "{wipes:?}");
    let left: i64 = db.query("SELECT count(*) FROM confirmations", &[]).unwrap()[0]
        .get(0)
        .unwrap();
    assert_eq!(
        left, 0,
        "taken codes leave no row (and no command line) behind"
    );
}

/// Issue 19: TLS to PostgreSQL. A server with TLS on (a certificate from a throw-away CA):
/// with `[state] ca_file` naming that CA the connection is encrypted and verified; without
/// it the certificate is refused (rustls, webpki roots), not trusted blindly (libpq's
/// `verify-full` is accepted, as `require`, which verifies as strictly); `sslmode=disable`
/// connects in the clear.
#[test]
fn tls_to_postgres_is_verified_against_the_configured_ca() {
    // A server of its own: turning TLS on restarts it.
    let server = PgServer::start();
    let ca = server.enable_tls();
    let url = server.fresh_database();
    let encrypted = |db: &Db| -> i64 {
        db.query(
            "SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()[0]
            .get::<i64>(0)
            .unwrap()
    };
    for mode in ["require", "verify-full", "prefer"] {
        let db = Db::connect_postgres(&format!("{url}?sslmode={mode}"), None, Some(&ca))
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert_eq!(encrypted(&db), 1, "sslmode={mode}");
    }
    let refused = Db::connect_postgres(&format!("{url}?sslmode=require"), None, None)
        .err()
        .expect("an unknown CA is refused");
    let text = refused.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(!text.contains("password"), "{text}");
    let plain = Db::connect_postgres(&format!("{url}?sslmode=disable"), None, None).unwrap();
    assert_eq!(encrypted(&plain), 0);
}
