//! The audit log survives kill -9: every command acknowledged before the kill is in it, and
//! the restarted bot closes the row that was running as `interrupted`.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use std::time::Duration;

use deckhand::router::ResponseKind;
use deckhand::state::Db;
use deckhand_it::aks::aks_config;
use deckhand_it::cloud::cloud_config;
use deckhand_it::{
    Shell, TestBot, config_text, deckhand_binary, plugin_library, product_plugin_library,
    spawn_shell,
};
use deckhand_sandbox::{FaultKind, FaultSpec, Sandbox, SandboxOptions};

#[test]
fn audit_log_has_every_call_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let echo = plugin_library("echo");
    std::fs::copy(&echo, plugins.join(echo.file_name().unwrap())).unwrap();
    let state = dir.path().join("state.db");
    let config = dir.path().join("deckhand.toml");
    std::fs::write(&config, config_text(&plugins, &state, "")).unwrap();

    let Shell {
        mut child,
        mut stdin,
        mut stdout,
    } = spawn_shell(&config);
    let mut say = |line: &str, expect: &str| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut reply = String::new();
        stdout.read_line(&mut reply).unwrap();
        assert_eq!(reply.trim_end(), expect, "reply to {line}");
    };
    say("/echo one", "one");
    say("/echo two --upper", "TWO");
    say(
        "/nosuch",
        "error: unknown command /nosuch; /help lists the commands",
    );
    say("/kv put k v", "stored k");
    // A long call is running (its row is written before the plugin starts) when we kill.
    writeln!(stdin, "/slow 60000").unwrap();
    stdin.flush().unwrap();
    let mut progress = String::new();
    stdout.read_line(&mut progress).unwrap();
    assert_eq!(progress.trim_end(), "  … step 1");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Plain `Db::open` reads the file as the killed process left it.
    let db = Db::open(&state).unwrap();
    let mut rows = db.audit_recent(10).unwrap();
    rows.reverse();
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.command.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("echo", "ok"),
            ("echo", "ok"),
            ("nosuch", "rejected"),
            ("kv put", "ok"),
            ("slow", "running")
        ]
    );
    assert_eq!(rows[1].options, r#"{"text":"two","times":1,"upper":true}"#);
    assert_eq!(
        db.kv_get("echo", "k").unwrap(),
        Some(serde_json::json!("v"))
    );
    drop(db);

    // The restarted bot closes the row the killed one left running, and /audit shows it.
    let Shell {
        mut child,
        mut stdin,
        mut stdout,
    } = spawn_shell(&config);
    // /audit leaves its own (open) row out, so the newest row listed is /slow.
    writeln!(stdin, "/audit 1").unwrap();
    stdin.flush().unwrap();
    let mut slow = String::new();
    stdout.read_line(&mut slow).unwrap();
    assert!(slow.contains("/slow"), "{slow}");
    assert!(
        slow.contains("→ interrupted — the bot stopped before this command finished"),
        "{slow}"
    );
    drop(stdin);
    child.wait().unwrap();

    let db = Db::open(&state).unwrap();
    let rows = db.audit_recent(10).unwrap();
    let slow = rows.iter().find(|r| r.command == "slow").unwrap();
    assert_eq!(slow.outcome, "interrupted");
    assert!(slow.ended_at.is_some());
    assert!(
        rows.iter()
            .all(|r| r.outcome != "running" && r.outcome != "awaiting_confirmation"),
        "{rows:?}"
    );
}

#[test]
fn corrupt_state_database_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let state = dir.path().join("state.db");
    std::fs::write(&state, vec![0xAB_u8; 8192]).unwrap();
    let config = dir.path().join("deckhand.toml");
    std::fs::write(&config, config_text(&plugins, &state, "")).unwrap();

    let out = Command::new(deckhand_binary())
        .args(["shell", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", "x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("state database {} is corrupt", state.display())),
        "{stderr}"
    );
    assert!(stderr.contains("move it aside and restart"), "{stderr}");
}

/// A config for the real binary on `sandbox` with the aks plugin, with timeouts long enough
/// that a call the test holds open stays open until the kill.
fn aks_shell_config(
    dir: &std::path::Path,
    sandbox: &deckhand_sandbox::Sandbox,
    estate: &deckhand_sandbox::Estate,
) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let aks = product_plugin_library("aks");
    std::fs::copy(&aks, plugins.join(aks.file_name().unwrap())).unwrap();
    let cloud = cloud_config(
        sandbox,
        estate,
        &aks_config(&estate.resource_group, &estate.cluster),
    )
    .replace(r#"try_timeout = "2s""#, r#"try_timeout = "10m""#)
    .replace(
        r#"operation_timeout = "15s""#,
        r#"operation_timeout = "1h""#,
    );
    let text = config_text(&plugins, &dir.join("state.db"), &cloud)
        .replace(r#"default_timeout = "10s""#, r#"default_timeout = "1h""#);
    let config = dir.join("deckhand.toml");
    std::fs::write(&config, text).unwrap();
    config
}

/// Waits (polling the sandbox's journal, up to 60 s) until a request matching `method` and
/// `path_end` has arrived.
async fn arrived(sandbox: &deckhand_sandbox::Sandbox, method: &str, path_end: &str) {
    for _ in 0..600 {
        if sandbox
            .requests()
            .iter()
            .any(|r| r.method == method && r.path.ends_with(path_end))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {method} …{path_end} reached the sandbox: {:?}",
        sandbox.requests()
    );
}

/// kill -9 at three points of `/aks pool delete`: waiting for /confirm (the row still waits
/// after the restart: the confirmation is kept), while its GET is in flight, and after its
/// DELETE went out (while its operation is polled). After the last two restarts the row is
/// `interrupted`, and every write the sandbox received has its service-call row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_three_points_of_a_destructive_command_leaves_nothing_unrecorded() {
    let options = SandboxOptions {
        lro_delay: Duration::from_millis(100),
        cluster_autoscaler: false,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(options).await.unwrap();
    let estate = sandbox.seed_realistic_estate().await.unwrap();
    sandbox.settle().await;
    let dir = tempfile::tempdir().unwrap();
    let config = aks_shell_config(dir.path(), &sandbox, &estate);
    let state = dir.path().join("state.db");
    let pool = "/agentPools/users";

    // 1. Waiting for /confirm: nothing was sent.
    sandbox.clear_requests();
    let mut shell = spawn_shell(&config);
    writeln!(shell.stdin, "/aks pool delete --name users").unwrap();
    shell.stdin.flush().unwrap();
    let mut reply = String::new();
    shell.stdout.read_line(&mut reply).unwrap();
    assert!(reply.contains("/confirm"), "{reply}");
    kill(shell);
    assert!(
        !sandbox.requests().iter().any(|r| r.method != "GET"),
        "{:?}",
        sandbox.requests()
    );
    // Its confirmation is kept in the state database (issue 19): after the restart the row
    // still waits for it, and nothing was called.
    let mut shell = spawn_shell(&config);
    writeln!(shell.stdin, "/audit 1").unwrap();
    shell.stdin.flush().unwrap();
    let mut line = String::new();
    shell.stdout.read_line(&mut line).unwrap();
    assert!(
        line.contains("/aks pool delete") && line.contains("→ awaiting_confirmation"),
        "{line}"
    );
    drop(shell.stdin);
    shell.child.wait().unwrap();
    let db = Db::open(&state).unwrap();
    let waiting = db.audit_recent(1).unwrap().remove(0);
    assert!(
        db.service_calls(&waiting.invocation_id).unwrap().is_empty(),
        "no service call before /confirm"
    );

    // 2. The GET of the pool is in flight (the sandbox holds it): it is recorded, nothing else.
    sandbox.clear_requests();
    let slow = sandbox.inject(
        FaultSpec::always(FaultKind::Slow {
            delay_ms: 3_600_000,
        })
        .on_path(pool)
        .on_method("GET"),
    );
    let shell = send(&config, "/aks pool delete --name users --yes");
    arrived(&sandbox, "GET", pool).await;
    kill(shell);
    let calls = restart_and_check(&config, &state, "GET in flight");
    let get = calls
        .iter()
        .find(|c| c.target.starts_with("GET ") && c.target.ends_with(pool))
        .unwrap_or_else(|| panic!("the GET in flight is recorded: {calls:?}"));
    assert_eq!(get.outcome, "interrupted", "{get:?}");
    assert!(
        !calls.iter().any(|c| c.target.starts_with("DELETE")),
        "{calls:?}"
    );
    sandbox.remove_fault(slow);

    // 3. The DELETE went out and the bot is polling its operation (the sandbox holds the
    // poll): the write is recorded.
    sandbox.clear_requests();
    sandbox.inject(
        FaultSpec::always(FaultKind::Slow {
            delay_ms: 3_600_000,
        })
        .on_path("/operations/")
        .on_method("GET"),
    );
    let shell = send(&config, "/aks pool delete --name users --yes");
    arrived(&sandbox, "DELETE", pool).await;
    kill(shell);
    let calls = restart_and_check(&config, &state, "DELETE sent");
    let writes: Vec<_> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/oauth2/"))
        .collect();
    assert!(!writes.is_empty());
    for write in &writes {
        let path = write
            .path
            .split("/resourceGroups/")
            .nth(1)
            .unwrap_or(&write.path);
        assert!(
            calls
                .iter()
                .any(|c| c.target.starts_with(&write.method) && c.target.ends_with(path)),
            "{} {} reached Azure but has no service-call row: {calls:?}",
            write.method,
            write.path
        );
    }
    let delete = calls
        .iter()
        .find(|c| c.target.starts_with("DELETE"))
        .unwrap();
    assert_eq!(delete.outcome, "interrupted", "{delete:?}");
}

/// Starts `deckhand shell` and sends it one line without waiting for the answer.
fn send(config: &std::path::Path, line: &str) -> Shell {
    let mut shell = spawn_shell(config);
    writeln!(shell.stdin, "{line}").unwrap();
    shell.stdin.flush().unwrap();
    shell
}

fn kill(mut shell: Shell) {
    shell.child.kill().unwrap(); // SIGKILL
    shell.child.wait().unwrap();
}

/// Restarts the bot (which closes what the killed one left open), asks `/audit 1`, and returns
/// the service calls of the newest command after checking its row is `interrupted`.
fn restart_and_check(
    config: &std::path::Path,
    state: &std::path::Path,
    point: &str,
) -> Vec<deckhand::state::audit::ServiceCallRecord> {
    let mut shell = spawn_shell(config);
    writeln!(shell.stdin, "/audit 1").unwrap();
    shell.stdin.flush().unwrap();
    let mut line = String::new();
    shell.stdout.read_line(&mut line).unwrap();
    assert!(line.contains("/aks pool delete"), "{point}: {line}");
    assert!(line.contains("→ interrupted"), "{point}: {line}");
    drop(shell.stdin);
    shell.child.wait().unwrap();

    let db = Db::open(state).unwrap();
    let rows = db.audit_recent(50).unwrap();
    // (A confirmation still live stays open: it can be confirmed after the restart.)
    assert!(
        rows.iter().all(|r| r.outcome != "running"),
        "{point}: {rows:?}"
    );
    let newest = rows
        .iter()
        .find(|r| r.command == "aks pool delete")
        .unwrap();
    assert_eq!(newest.outcome, "interrupted", "{point}");
    let calls = db.service_calls(&newest.invocation_id).unwrap();
    assert!(
        calls.iter().all(|c| c.outcome != "pending"),
        "{point}: {calls:?}"
    );
    calls
}

/// A command never runs without its audit row, and a write a plugin asks for is not made
/// when its service-call row cannot be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_runs_and_nothing_is_written_without_an_audit_row() {
    let bot = TestBot::new(&["echo"]);
    let state = bot.dir.path().join("state.db");
    // A second connection renames the service-call table: the bot's inserts there fail.
    let db = rusqlite::Connection::open(&state).unwrap();
    db.execute_batch("ALTER TABLE service_calls RENAME TO service_calls_gone")
        .unwrap();
    let put = bot.say("/kv put k v").await;
    assert_eq!(put.kind, ResponseKind::Error, "{}", put.text);
    assert!(
        put.text.contains("cannot write its audit log"),
        "{}",
        put.text
    );
    assert_eq!(bot.app.router.db().kv_get("echo", "k").unwrap(), None);

    // Now the command's own row cannot be written: the plugin is not called at all.
    db.execute_batch(
        "ALTER TABLE service_calls_gone RENAME TO service_calls;
         ALTER TABLE audit RENAME TO audit_gone;",
    )
    .unwrap();
    let put = bot.say("/kv put k2 v").await;
    assert_eq!(put.kind, ResponseKind::Error, "{}", put.text);
    assert_eq!(
        put.text,
        "/kv put was not run: Deckhand cannot write its audit log (state database: no such table: audit); nothing runs unaudited, so check the state database and its disk"
    );
    db.execute_batch("ALTER TABLE audit_gone RENAME TO audit;")
        .unwrap();
    assert_eq!(bot.app.router.db().kv_get("echo", "k2").unwrap(), None);
    // With the table back, the same command runs and is audited.
    let put = bot.say("/kv put k3 v").await;
    assert_eq!(put.text, "stored k3");
}
