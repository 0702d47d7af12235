//! Issue 21: piped input is read ahead while commands run, yet replies (and a command's
//! progress lines) come in input order, a command sees the effects of the lines before it,
//! and every command acknowledged before a kill -9 is in the audit log as finished.

use std::io::{BufRead, Write};

use deckhand::state::Db;
use deckhand_it::{Shell, plugin_library, spawn_shell, write_config};

/// Enough commits to cross the checkpointer's threshold several times during the burst.
const COMMANDS: usize = 300;

#[test]
fn a_burst_is_answered_in_order_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[plugin_library("echo")], "");
    let state = dir.path().join("state.db");

    let Shell {
        mut child,
        mut stdin,
        mut stdout,
    } = spawn_shell(&config);
    // Every line is written before any reply is read.
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..COMMANDS {
        match i % 3 {
            0 => {
                input.push_str(&format!("/echo line-{i}\n"));
                expected.push(format!("line-{i}"));
            }
            1 => {
                input.push_str(&format!("/kv put k{i} v{i}\n"));
                expected.push(format!("stored k{i}"));
            }
            _ => {
                // Reads back the put of the line before: commands run in input order.
                input.push_str(&format!("/kv get k{}\n", i - 1));
                expected.push(format!("v{}", i - 1));
            }
        }
    }
    input.push_str("/slow 50\n/nosuch\n");
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();

    let mut read_line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };
    for want in &expected {
        assert_eq!(&read_line(), want);
    }
    // /slow's progress lines, numbered from 1, come before its reply; then the next reply.
    let mut step = 0;
    let reply = loop {
        let line = read_line();
        match line.strip_prefix("  … step ") {
            Some(n) => {
                step += 1;
                assert_eq!(n, step.to_string(), "{line}");
            }
            None => break line,
        }
    };
    assert!(step >= 1, "no progress before the reply");
    assert!(reply.starts_with("slept 50 ms"), "{reply}");
    assert_eq!(
        read_line(),
        "error: unknown command /nosuch; /help lists the commands"
    );
    child.kill().unwrap(); // SIGKILL, right after the last acknowledgement
    child.wait().unwrap();

    let db = Db::open(&state).unwrap();
    let rows = db.audit_recent(COMMANDS + 10).unwrap();
    assert_eq!(rows.len(), COMMANDS + 2);
    let mut rows = rows;
    rows.reverse();
    for (row, i) in rows.iter().zip(0..) {
        let outcome = if i == COMMANDS + 1 { "rejected" } else { "ok" };
        assert_eq!(row.outcome, outcome, "row {i}: {row:?}");
        assert!(row.ended_at.is_some(), "row {i}: {row:?}");
    }
    assert_eq!(
        db.kv_get("echo", &format!("k{}", COMMANDS - 2)).unwrap(),
        Some(serde_json::json!(format!("v{}", COMMANDS - 2)))
    );
}
