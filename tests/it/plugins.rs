//! The plugin host through real `dlopen`: loading, ABI check, duplicates, capabilities,
//! containment of panics and hangs, reload.

use std::time::{Duration, Instant};

use deckhand::router::ResponseKind;
use deckhand_it::{TestBot, admin, plugin_library};

#[tokio::test]
async fn every_answering_test_plugin_loads_and_the_wrong_abi_one_is_refused_naming_both_versions() {
    let bot = TestBot::new(&["echo", "boom", "hang", "wrongabi"]);
    let names: Vec<String> = bot.app.host.registry().plugins.keys().cloned().collect();
    assert_eq!(names, ["boom", "echo", "hang"]);
    assert_eq!(bot.app.load_errors.len(), 1, "{:?}", bot.app.load_errors);
    let error = bot.app.load_errors[0].to_string();
    let abi = deckhand_plugin_abi::ABI_VERSION;
    assert!(error.contains("wrongabi"), "{error}");
    assert!(
        error.contains(&format!("built for plugin ABI version {}", abi + 1))
            && error.contains(&format!("this host speaks version {abi}")),
        "{error}"
    );
    // The refusal is visible to users too.
    let listed = bot.say("/plugins list").await.text;
    assert!(
        listed.contains("not loaded:") && listed.contains("ABI version"),
        "{listed}"
    );
}

#[tokio::test]
async fn config_section_reaches_the_plugin_at_init() {
    let bot = TestBot::new(&["echo"]);
    let reply = bot.say("/count").await;
    assert_eq!(
        reply.text,
        "1 calls served by this copy (configured greeting)"
    );
}

#[tokio::test]
async fn two_plugins_claiming_one_command_the_later_file_is_refused_clearly() {
    // Plugins load in file-name order, so `clash` (…_clash.so) claims /count before `echo`.
    let bot = TestBot::new(&["echo", "clash"]);
    assert!(bot.app.host.registry().plugins.contains_key("clash"));
    assert!(!bot.app.host.registry().plugins.contains_key("echo"));
    let error = bot
        .app
        .load_errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(error.contains("libdeckhand_testplugin_echo.so"), "{error}");
    assert!(
        error.contains("plugin echo claims command /count, which plugin clash already provides"),
        "{error}"
    );
    assert_eq!(bot.say("/count").await.text, "clash");
}

/// Built-ins registered after the plugins load (`/schedule`, `/alerts`) are reserved too: a
/// plugin claiming one is refused at load instead of silently shadowing it.
#[tokio::test]
async fn a_plugin_claiming_a_built_in_is_refused_at_load() {
    let bot = TestBot::new(&["echo", "squatter"]);
    assert!(!bot.app.host.registry().plugins.contains_key("squatter"));
    assert!(bot.app.host.registry().plugins.contains_key("echo"));
    let error = bot
        .app
        .load_errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        error.contains("plugin squatter claims command /schedule, which is a built-in command"),
        "{error}"
    );
    let list = bot.say("/schedule list").await;
    assert_ne!(list.text, "squatter", "the built-in answers");
}

#[tokio::test]
async fn loading_the_same_plugin_twice_is_refused() {
    let bot = TestBot::new(&["echo"]);
    let copy = bot
        .plugin_dir()
        .join("libdeckhand_testplugin_echo_again.so");
    std::fs::copy(plugin_library("echo"), &copy).unwrap();
    let error = bot.app.host.load(&copy).unwrap_err().to_string();
    assert!(
        error.contains("a plugin named echo is already loaded"),
        "{error}"
    );
}

#[tokio::test]
async fn a_panicking_plugin_is_contained_and_the_next_command_is_answered() {
    let bot = TestBot::new(&["echo", "boom"]);
    let reply = bot.say("/boom").await;
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(
        reply
            .text
            .contains("plugin boom crashed while running the command"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("the boom plugin always panics"),
        "{}",
        reply.text
    );
    assert_eq!(bot.say("/echo still-here").await.text, "still-here");
    // And the same plugin answers again (its panic did not poison it).
    assert!(bot.say("/boom").await.text.contains("crashed"));
    let rows = bot.app.db.audit_recent(10).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.command == "boom" && r.outcome == "panic")
    );
}

#[tokio::test]
async fn a_hanging_plugin_times_out_and_the_bot_keeps_answering() {
    let bot = TestBot::new(&["echo", "hang"]);
    let started = Instant::now();
    let reply = bot.say("/hang").await;
    let waited = started.elapsed();
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(
        reply.text.contains("plugin hang timed out after 1 s"),
        "{}",
        reply.text
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(bot.say("/echo next").await.text, "next");
    let rows = bot.app.db.audit_recent(10).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.command == "hang" && r.outcome == "timeout")
    );
}

#[tokio::test]
async fn a_cooperative_plugin_sees_cancellation_and_stops() {
    let bot = std::sync::Arc::new(TestBot::new(&["echo"]));
    let runner = bot.clone();
    let task = tokio::spawn(async move { runner.say_full(admin(), "/slow 20000").await });
    // Wait until the call is registered, then cancel it through the built-in.
    let id = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let rows = bot.app.db.audit_recent(5).unwrap();
        if let Some(row) = rows
            .iter()
            .find(|r| r.command == "slow" && r.outcome == "running")
        {
            break row.invocation_id.clone();
        }
    };
    let cancel = bot.say(&format!("/cancel {id}")).await;
    assert!(cancel.text.contains("Cancellation of"), "{}", cancel.text);
    let (reply, progress, _) = task.await.unwrap();
    assert!(
        reply.text.contains("stopped: the call was cancelled"),
        "{}",
        reply.text
    );
    assert!(
        progress.first().is_some_and(|p| p == "step 1"),
        "{progress:?}"
    );
    assert_eq!(
        bot.app.db.audit_outcome(&id).unwrap().as_deref(),
        Some("cancelled")
    );
}

#[tokio::test]
async fn reload_while_a_call_is_in_flight_finishes_on_the_old_copy() {
    let bot = std::sync::Arc::new(TestBot::new(&["echo"]));
    assert_eq!(
        bot.say("/count").await.text,
        "1 calls served by this copy (configured greeting)"
    );
    let runner = bot.clone();
    let in_flight = tokio::spawn(async move { runner.say("/slow 600").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reload = bot.say("/plugins reload echo").await;
    assert!(
        reload.text.contains("Reloaded plugin echo"),
        "{}",
        reload.text
    );
    assert!(reload.text.contains("generation 2"), "{}", reload.text);
    // New calls reach the fresh copy, whose counter starts again.
    assert_eq!(
        bot.say("/count").await.text,
        "1 calls served by this copy (configured greeting)"
    );
    // The call in flight finished on the old copy: that copy had served /count and /slow.
    let old = in_flight.await.unwrap();
    assert_eq!(old.text, "slept 600 ms; copy has served 2 calls");
    assert_eq!(bot.app.host.registry().plugins["echo"].generation, 2);
}

#[tokio::test]
async fn reloading_an_unknown_plugin_names_the_loaded_ones() {
    let bot = TestBot::new(&["echo"]);
    let reply = bot.say("/plugins reload ecoh").await;
    assert_eq!(reply.text, "no plugin named ecoh is loaded (loaded: echo)");
}

#[tokio::test]
async fn undeclared_host_and_program_are_refused_and_audited() {
    let bot = TestBot::new(&["echo"]);
    let (server, hits) = support_http::serve().await;
    // Declared host, no profile: allowed.
    let ok = bot
        .say(&format!("/fetch http://127.0.0.1:{}/hello", server.port()))
        .await;
    assert_eq!(ok.text, "200 hello from test server", "{}", ok.text);
    // Same server through a name the manifest does not declare: refused before any request.
    let denied = bot
        .say(&format!("/fetch http://localhost:{}/hello", server.port()))
        .await;
    assert_eq!(denied.kind, deckhand::router::ResponseKind::Error);
    assert!(
        denied.text.contains(
            "plugin echo is not allowed to call localhost: its manifest does not declare it"
        ),
        "{}",
        denied.text
    );
    assert_eq!(
        hits.lock().unwrap().len(),
        1,
        "the refused call must not reach the server"
    );
    // Declared program runs; undeclared one (configured in [host.programs], not in the manifest) is refused.
    assert_eq!(bot.say("/run greet hi-there").await.text, "hi-there");
    let refused = bot.say("/run shell -c").await;
    assert!(
        refused
            .text
            .contains("not allowed to run program \"shell\""),
        "{}",
        refused.text
    );
    let audited = bot.app.db.refused_service_calls("echo").unwrap();
    let targets: Vec<&str> = audited.iter().map(|r| r.target.as_str()).collect();
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("GET http://localhost:")),
        "{targets:?}"
    );
    assert!(targets.contains(&"shell -c"), "{targets:?}");
    assert!(
        audited
            .iter()
            .all(|r| !r.allowed && r.outcome == "capability_denied")
    );
    let meter = bot.app.host.services().meter("echo");
    assert_eq!(meter.refused.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn auth_profiles_are_attached_by_the_host_and_never_shown() {
    let bot = TestBot::new(&["echo"]);
    let (server, hits) = support_http::serve().await;
    let reply = bot
        .say(&format!(
            "/fetch http://127.0.0.1:{}/whoami --profile test-bearer",
            server.port()
        ))
        .await;
    assert_eq!(reply.text, "200 hello from test server");
    let seen = hits.lock().unwrap().clone();
    assert_eq!(seen, [Some("Bearer it-secret-token".to_owned())]);
    // An undeclared profile is refused even for a declared host.
    let refused = bot
        .say(&format!(
            "/fetch http://127.0.0.1:{}/x --profile other",
            server.port()
        ))
        .await;
    assert!(
        refused.text.contains("with auth profile \"other\""),
        "{}",
        refused.text
    );
    let audit = bot.say("/audit 10").await.text;
    assert!(!audit.contains("it-secret-token"), "{audit}");
}

#[tokio::test]
async fn key_value_state_persists_per_plugin() {
    let bot = TestBot::new(&["echo"]);
    assert_eq!(bot.say("/kv put colour teal").await.text, "stored colour");
    assert_eq!(bot.say("/kv get colour").await.text, "teal");
    assert_eq!(
        bot.app.db.kv_get("echo", "colour").unwrap(),
        Some(serde_json::json!("teal"))
    );
    assert_eq!(bot.app.db.kv_get("boom", "colour").unwrap(), None);
}

#[tokio::test]
async fn notifications_pushed_by_a_plugin_reach_subscribers() {
    let bot = TestBot::new(&["echo"]);
    let mut rx = bot.app.host.services().subscribe_notifications();
    assert_eq!(bot.say("/notify 'job 42 finished'").await.text, "notified");
    let got = rx.recv().await.unwrap();
    assert_eq!(got.plugin, "echo");
    assert_eq!(got.notification.text, "job 42 finished");
}

#[tokio::test]
async fn autocomplete_is_answered_by_the_owning_plugin() {
    let bot = TestBot::new(&["echo"]);
    let plugin = bot.app.host.owner_of("echo").unwrap();
    let query = deckhand_plugin_abi::proto::AutocompleteQuery {
        command: vec!["echo".into()],
        option: "color".into(),
        partial: "gr".into(),
        options: Default::default(),
        caller: admin(),
    };
    let choices = bot
        .app
        .host
        .autocomplete(plugin, &query, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        choices.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
        ["green"]
    );
}

#[test]
fn plugin_files_only_match_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "libdeckhand_plugin_aks.so",
        "libother.so",
        "libdeckhand_plugin_x.txt",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let files = deckhand::host::plugin_files(dir.path(), "deckhand_plugin_").unwrap();
    assert_eq!(files, [dir.path().join("libdeckhand_plugin_aks.so")]);
}

/// A tiny HTTP server recording the Authorization header of each request.
mod support_http {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderMap;
    use axum::routing::get;

    pub type Hits = Arc<Mutex<Vec<Option<String>>>>;

    pub async fn serve() -> (SocketAddr, Hits) {
        let hits: Hits = Arc::default();
        let recorded = hits.clone();
        let app = axum::Router::new().fallback(get(move |headers: HeaderMap| {
            let recorded = recorded.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                recorded.lock().unwrap().push(auth);
                "hello from test server"
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, hits)
    }
}
