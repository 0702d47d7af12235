//! The audit log survives kill -9: every command acknowledged before the kill is in it, and
//! the restarted bot closes the row that was running as `interrupted`.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use deckhand::state::Db;
use deckhand_it::{Shell, config_text, deckhand_binary, plugin_library, spawn_shell};

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
    // The /audit call is itself recorded once it is done, so the newest row listed is /slow.
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
