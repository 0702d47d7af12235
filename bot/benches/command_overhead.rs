// A benchmark is a harness like a test: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

//! Command overhead benchmark: parse → authorize → audit → call through the C ABI into the echo
//! test plugin (no I/O) → render, measured per command, p50/p99 in µs.
//!
//! Run: `cargo build --release --workspace && cargo bench -p deckhand --bench command_overhead`
//! (the plugin library must be built in the same profile directory as the bench).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deckhand::app::App;
use deckhand::chat::terminal::render;
use deckhand::config::Config;
use deckhand::router::{Invocation, ResponseKind};
use deckhand_plugin_abi::proto::{Call, Caller};
use tokio::sync::mpsc;

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs   (n = {})",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().unwrap().as_secs_f64() * 1e6,
        samples.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run());
    // Leave without waiting on plugin threads.
    runtime.shutdown_background();
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let lib = format!(
        "{}deckhand_testplugin_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let source = profile_dir().join(&lib);
    assert!(
        source.exists(),
        "{} missing: run `cargo build --release --workspace` first",
        source.display()
    );
    std::fs::copy(&source, plugins.join(&lib)).unwrap();
    let text = format!(
        "[state]\npath = \"{}\"\n[plugins]\ndir = \"{}\"\nprefix = \"deckhand_testplugin_\"\n[[permissions]]\nroles = [\"admin\"]\nallow = [\"*\"]\n",
        dir.path().join("state.db").display(),
        plugins.display()
    );
    let config = Config::parse(&text, Path::new("bench.toml"), dir.path()).unwrap();
    let app = App::start(config).unwrap();
    let caller = Caller {
        user_id: "local".into(),
        display_name: "Bench".into(),
        roles: vec!["admin".into()],
    };
    let line = "/echo 'hello there' --times 2 --color green";

    // 1. Parse and authorize only (no plugin, no audit).
    let index = app.router.index();
    let policy = &app.router.options().permissions;
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        let parsed = index.parse(line).unwrap();
        let permission =
            deckhand::router::permission_for(&parsed.owner, &parsed.path, &parsed.spec);
        assert!(policy.allows(&caller, &permission));
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    report("parse + authorize", samples);

    // 2. The command overhead as the issue defines it: parse, authorize, call through the ABI
    //    (pooled-thread hand-off, JSON both ways, the plugin's work), render. No audit.
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let (tx, _rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let parsed = index.parse(line).unwrap();
        let permission =
            deckhand::router::permission_for(&parsed.owner, &parsed.path, &parsed.spec);
        assert!(policy.allows(&caller, &permission));
        let plugin = app.host.owner_of(&parsed.path[0]).unwrap();
        let call = Call {
            invocation_id: format!("bench-{i}"),
            command: parsed.path,
            caller: caller.clone(),
            channel: "bench".into(),
            options: parsed.options,
            timeout_ms: 10_000,
            preview: false,
        };
        let reply = app.host.invoke(plugin, &call, tx).await.unwrap();
        let rendered = render(&deckhand::router::Response::ok(reply.text));
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
        assert_eq!(rendered, "hello there hello there [green]");
    }
    report("parse + authorize + ABI call + render", samples);

    // 3. The whole command as a chat surface runs it, with the audit log on disk.
    full_command(
        &app,
        &caller,
        line,
        "full command (parse..render, audit on disk)",
    )
    .await;

    // 4. The same with the audit on PostgreSQL (issue 19), when a server is given:
    //    DECKHAND_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/DB
    if let Ok(url) = std::env::var("DECKHAND_BENCH_POSTGRES_URL") {
        let text = text.replace(
            &format!("path = \"{}\"", dir.path().join("state.db").display()),
            &format!("url = \"{url}\""),
        );
        let config = Config::parse(&text, Path::new("bench.toml"), dir.path()).unwrap();
        let app = App::start(config).unwrap();
        full_command(&app, &caller, line, "full command (audit on PostgreSQL)").await;
    }
}

async fn full_command(app: &App, caller: &Caller, line: &str, label: &str) {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..WARMUP + SAMPLES {
        let invocation = Invocation::new("bench", "bench", caller.clone(), line);
        let (tx, _rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let response = app.router.handle(invocation, tx).await;
        let rendered = render(&response);
        samples.push(started.elapsed());
        assert_eq!(response.kind, ResponseKind::Ok);
        assert_eq!(rendered, "hello there hello there [green]");
    }
    report(label, samples.split_off(WARMUP));
}
