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
    let mut shell = spawn_shell(&config);
    assert_eq!(ask(&mut shell, "/kv put a 1"), "stored a");

    server.stop();
    let refused = ask_until(&mut shell, "/kv put a 2", |l| l.contains("unreachable"));
    assert!(refused.contains("127.0.0.1"), "{refused}");
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
}
