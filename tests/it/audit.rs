//! The audit log survives kill -9: every command acknowledged before the kill is in it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use deckhand::state::Db;
use deckhand_it::{config_text, deckhand_binary, plugin_library};

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

    let mut child = Command::new(deckhand_binary())
        .args(["shell", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", "x")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
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
}
