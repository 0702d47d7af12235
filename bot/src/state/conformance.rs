//! The state tests every backend must pass: each test runs on SQLite and on PostgreSQL
//! ([`testing::on_each_backend`]), through the same stores the bot uses.

use chrono::{Duration, TimeZone, Utc};
use deckhand_plugin_abi::proto::Caller;
use serde_json::json;

use super::audit::{AuditStart, Outcome, ServiceCallRecord};
use super::testing::on_each_backend;
use super::{Db, StateError};
use crate::args;
use crate::cost::store::{CachedPrice, CostStore, Sample};
use crate::sched::store::{KeepAwake, RunKind, ScheduleRow, Source, Store};

fn start<'a>(id: &'a str, options: &'a serde_json::Value) -> AuditStart<'a> {
    AuditStart {
        invocation_id: id,
        surface: "terminal",
        channel: "#ops",
        user_id: "u1",
        display_name: "User One",
        command: "aks scale",
        options,
        plugin: Some("aks"),
    }
}

#[test]
fn audit_rows_and_service_calls() {
    on_each_backend(|db| {
        let options = json!({"count": 3});
        db.audit_start(&start("inv-1", &options), Outcome::Running)
            .unwrap();
        db.audit_record(&start("inv-2", &options), Outcome::Rejected, Some("bad"))
            .unwrap();
        assert_eq!(
            db.audit_outcome("inv-1").unwrap().as_deref(),
            Some("running")
        );
        assert_eq!(db.audit_outcome("nope").unwrap(), None);
        let call = ServiceCallRecord {
            invocation_id: Some("inv-1".into()),
            plugin: "aks".into(),
            service: "arm".into(),
            target: "PUT /subscriptions/x".into(),
            allowed: true,
            outcome: "ok".into(),
            duration_ms: 12,
        };
        let id = db.begin_service_call(&call).unwrap();
        assert!(id > 0);
        db.finish_service_call(id, "200", 40).unwrap();
        let refused = ServiceCallRecord {
            allowed: false,
            outcome: "refused".into(),
            ..call.clone()
        };
        db.record_service_call(&refused).unwrap();
        let calls = db.service_calls("inv-1").unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].outcome.as_str(), calls[0].duration_ms),
            ("200", 40)
        );
        assert!(calls[0].allowed && !calls[1].allowed);
        assert_eq!(db.refused_service_calls("aks").unwrap().len(), 1);
        db.audit_finish("inv-1", Outcome::Ok, None).unwrap();
        let rows = db.audit_recent(10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].invocation_id, "inv-2", "newest first");
        assert_eq!(rows[0].error.as_deref(), Some("bad"));
        assert_eq!(rows[1].outcome, "ok");
        assert_eq!(rows[1].options, r#"{"count":3}"#);
        assert!(rows[1].ended_at.is_some());
        assert_eq!(db.audit_recent(1).unwrap().len(), 1);
    });
}

#[test]
fn open_rows_are_closed_as_interrupted() {
    on_each_backend(|db| {
        let options = json!({});
        db.audit_start(&start("inv-a", &options), Outcome::Running)
            .unwrap();
        db.audit_start(&start("inv-b", &options), Outcome::AwaitingConfirmation)
            .unwrap();
        db.audit_record(&start("inv-c", &options), Outcome::Ok, None)
            .unwrap();
        // Another replica's command, still running.
        db.execute(
            "INSERT INTO audit (invocation_id, surface, channel, user_id, display_name, command,
                                options, started_at, outcome, replica)
             VALUES ('inv-other', 'discord', '1', 'u2', 'U2', 'aks scale', '{}', 'now',
                     'running', 'replica-b')",
            &[],
        )
        .unwrap();
        let shared = db.backend() == super::Backend::Postgres;
        let closed = db.audit_close_interrupted().unwrap();
        assert_eq!(closed, if shared { 2 } else { 3 });
        assert_eq!(
            db.audit_outcome("inv-other").unwrap().as_deref(),
            Some(if shared { "running" } else { "interrupted" }),
            "a shared database keeps the other replica's rows open"
        );
        assert_eq!(
            db.audit_outcome("inv-b").unwrap().as_deref(),
            Some("interrupted")
        );
        assert_eq!(db.audit_outcome("inv-c").unwrap().as_deref(), Some("ok"));
    });
}

#[test]
fn the_open_rows_of_a_replica_not_heard_from_are_closed_by_another() {
    on_each_backend(|db| {
        let stamp = |ago: i64| {
            (Utc::now() - Duration::seconds(ago))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        for (invocation, replica) in [("inv-gone", "replica-gone"), ("inv-alive", "replica-alive")]
        {
            db.execute(
                "INSERT INTO audit (invocation_id, surface, channel, user_id, display_name,
                                    command, options, started_at, outcome, replica)
                 VALUES (?1, 'discord', '1', 'u2', 'U2', 'aks scale', '{}', ?2, 'running', ?3)",
                args![invocation, stamp(300), replica],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO service_calls (invocation_id, plugin, service, target, allowed,
                                        outcome, at, duration_ms)
             VALUES ('inv-gone', 'aks', 'arm', 'PUT /x', 1, 'pending', ?1, 0)",
            args![stamp(300)],
        )
        .unwrap();
        db.execute(
            "INSERT INTO replicas (name, seen_at) VALUES ('replica-gone', ?1), ('replica-alive', ?2)",
            args![stamp(120), stamp(5)],
        )
        .unwrap();

        let closed = db
            .replica_heartbeat(std::time::Duration::from_secs(60))
            .unwrap();

        assert_eq!(closed, 1);
        assert_eq!(
            db.audit_outcome("inv-gone").unwrap().as_deref(),
            Some("interrupted")
        );
        assert_eq!(
            db.audit_outcome("inv-alive").unwrap().as_deref(),
            Some("running"),
            "a replica heard from 5 s ago may still be running it"
        );
        assert_eq!(
            db.service_calls("inv-gone").unwrap()[0].outcome,
            "interrupted"
        );
        let names: Vec<String> = db
            .query("SELECT name FROM replicas ORDER BY name", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0).unwrap())
            .collect();
        let mut expected = vec!["replica-alive".to_owned(), super::replica_name().to_owned()];
        expected.sort();
        assert_eq!(
            names, expected,
            "the gone replica is forgotten, this one is recorded"
        );
        assert_eq!(
            db.replica_heartbeat(std::time::Duration::from_secs(60))
                .unwrap(),
            0
        );
    });
}

#[test]
fn kv_namespaces_prefixes_and_byte_order() {
    on_each_backend(|db| {
        for key in ["b", "B", "a_1", "a%2", "a", "ä"] {
            db.kv_put("p", key, &json!(key)).unwrap();
        }
        db.kv_put("other", "a", &json!(1)).unwrap();
        db.kv_put("p", "a", &json!({"v": 2})).unwrap();
        assert_eq!(db.kv_get("p", "a").unwrap(), Some(json!({"v": 2})));
        let keys: Vec<String> = db
            .kv_list("p", "")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // Byte order on both backends (SQLite's BINARY, PostgreSQL's "C").
        assert_eq!(keys, ["B", "a", "a%2", "a_1", "b", "ä"]);
        let keys: Vec<String> = db
            .kv_list("p", "a_")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["a_1"], "the prefix is literal, not a pattern");
        assert!(db.kv_delete("p", "a").unwrap());
        assert!(!db.kv_delete("p", "a").unwrap());
        assert_eq!(db.kv_get("other", "a").unwrap(), Some(json!(1)));
    });
}

#[test]
fn component_schemas_apply_once() {
    on_each_backend(|db| {
        let v1 = ["CREATE TABLE demo_t (a INTEGER, b TEXT)"];
        db.ensure_schema("demo", &v1).unwrap();
        db.ensure_schema("demo", &v1).unwrap();
        let v2 = [v1[0], "ALTER TABLE demo_t ADD COLUMN c REAL"];
        db.ensure_schema("demo", &v2).unwrap();
        db.execute(
            "INSERT INTO demo_t (a, b, c) VALUES (?1, ?2, ?3)",
            args![7_i64, "x", 1.5],
        )
        .unwrap();
        let row = db
            .query_opt("SELECT a, b, c FROM demo_t", &[])
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<String>(1).unwrap(), "x");
        assert_eq!(row.get::<f64>(2).unwrap(), 1.5);
        let err = db.ensure_schema("demo", &v1).unwrap_err().to_string();
        assert!(err.contains("component demo has schema version 2"), "{err}");
        assert!(
            db.component_versions()
                .unwrap()
                .contains(&("demo".to_owned(), 2))
        );
        assert_eq!(db.schema_version().unwrap(), Db::known_schema_version());
    });
}

#[test]
fn a_failed_transaction_leaves_nothing() {
    on_each_backend(|db| {
        let result: Result<(), StateError> = db.transaction(|tx| {
            tx.execute(
                "INSERT INTO kv (plugin, key, value, updated_at) VALUES ('p', 'k', '1', 'now')",
                &[],
            )?;
            Err(StateError::Stored("stop".into()))
        });
        assert!(result.is_err());
        assert_eq!(db.kv_get("p", "k").unwrap(), None);
        // The connection is still usable after the rollback.
        db.kv_put("p", "k", &json!(2)).unwrap();
        assert_eq!(db.kv_get("p", "k").unwrap(), Some(json!(2)));
    });
}

fn schedule(name: &str, at: chrono::DateTime<Utc>) -> ScheduleRow {
    ScheduleRow {
        name: name.into(),
        cron: "0 22 * * *".into(),
        tz: "Europe/Helsinki".into(),
        commands: vec!["/aks scale-down --pool gpu --count 0".into()],
        channel: "#gpu-ops".into(),
        warn_secs: 600,
        owner: Caller {
            user_id: "u1".into(),
            display_name: "User One".into(),
            roles: vec!["ops".into()],
        },
        source: Source::Chat,
        created_at: at,
        anchor: at,
        paused: false,
        skip_due: None,
        skip_until: None,
        snooze_due: None,
        snooze_to: None,
        warned_for: None,
    }
}

#[test]
fn schedules_runs_and_claims() {
    on_each_backend(|db| {
        let store = Store::open(db.clone()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 20, 0, 0).unwrap();
        assert!(store.insert(&schedule("nightly", t0)).unwrap());
        assert!(
            !store.insert(&schedule("nightly", t0)).unwrap(),
            "names are unique"
        );
        assert!(store.insert(&schedule("Alpha", t0)).unwrap());
        assert_eq!(store.names().unwrap(), ["Alpha", "nightly"]);
        let got = store.get("nightly").unwrap().unwrap();
        assert_eq!(got, schedule("nightly", t0));

        // Resuming moves the anchor forward only.
        store.set_paused("nightly", true, t0).unwrap();
        assert!(store.get("nightly").unwrap().unwrap().paused);
        let later = t0 + Duration::hours(5);
        store.set_paused("nightly", false, later).unwrap();
        assert_eq!(store.get("nightly").unwrap().unwrap().anchor, later);
        store.set_paused("nightly", false, t0).unwrap();
        assert_eq!(store.get("nightly").unwrap().unwrap().anchor, later);

        // A config upsert keeps the anchor when the timing is unchanged.
        let mut declared = schedule("nightly", t0 + Duration::hours(9));
        declared.commands = vec!["/aks pools".into()];
        store.upsert_config(&declared).unwrap();
        let after = store.get("nightly").unwrap().unwrap();
        assert_eq!((after.anchor, after.source), (later, Source::Config));
        assert_eq!(after.commands, ["/aks pools"]);

        // A firing is claimed once.
        let due = t0 + Duration::hours(2);
        let run = store
            .claim("nightly", RunKind::Cron, due, t0)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.claim("nightly", RunKind::Cron, due, t0).unwrap(),
            None
        );
        assert!(
            store
                .claim("nightly", RunKind::Manual, due, t0)
                .unwrap()
                .is_some()
        );
        assert_eq!(store.open_runs().unwrap().len(), 2);
        store
            .record_command(run, 0, "/aks pools", "error", "boom", due)
            .unwrap();
        store
            .record_command(run, 0, "/aks pools", "ok", "fine", due)
            .unwrap();
        store.complete(run, due, "ok", "1 command").unwrap();
        let results = store.command_results(due).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].outcome, "ok");
        assert_eq!(results[0].channel.as_deref(), Some("#gpu-ops"));
        assert!(
            store
                .record(
                    "nightly",
                    due + Duration::days(1),
                    due,
                    "skipped",
                    "holiday"
                )
                .unwrap()
        );
        assert_eq!(
            store.last_due().unwrap()["nightly"],
            due + Duration::days(1)
        );
        assert_eq!(store.runs("nightly", 2).unwrap().len(), 2);
        assert_eq!(store.open_runs().unwrap().len(), 1);

        let keep = KeepAwake {
            pool: "gpu".into(),
            until: due,
            set_by: "u1".into(),
            channel: "#gpu-ops".into(),
        };
        store.set_keep_awake(&keep).unwrap();
        assert_eq!(store.keep_awakes().unwrap(), std::slice::from_ref(&keep));
        assert!(store.end_keep_awake("gpu", due).unwrap());
        assert!(!store.end_keep_awake("gpu", due).unwrap());
        assert!(store.remove("Alpha").unwrap());
        assert!(!store.remove("Alpha").unwrap());
    });
}

#[test]
fn cost_prices_and_samples() {
    on_each_backend(|db| {
        let store = CostStore::open(db.clone()).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let price = CachedPrice {
            on_demand: Some(3.06),
            spot: None,
            currency: "USD".into(),
            fetched_at: at,
        };
        store
            .put_price("Standard_NC6s_v3", "westeurope", &price)
            .unwrap();
        assert_eq!(
            store
                .price("Standard_NC6s_v3", "westeurope", "USD")
                .unwrap(),
            Some(price)
        );
        assert_eq!(store.price("x", "westeurope", "USD").unwrap(), None);
        let sample = |hours: i64, count: i64| Sample {
            at: at + Duration::hours(hours),
            cluster: "aks1".into(),
            pool: "gpu".into(),
            vm_size: "Standard_NC6s_v3".into(),
            region: "westeurope".into(),
            spot: false,
            count,
            deallocate: true,
            gpu: true,
            origin: "sampler".into(),
        };
        for (hours, count) in [(0, 2), (1, 3), (5, 0), (9, 1)] {
            store.add_sample(&sample(hours, count)).unwrap();
        }
        let window = store
            .samples(at + Duration::hours(2), at + Duration::hours(6))
            .unwrap();
        let counts: Vec<i64> = window.iter().map(|s| s.count).collect();
        assert_eq!(
            counts,
            [3, 0],
            "the state the window starts in, then the window"
        );
        assert!(window[0].deallocate && window[0].gpu && !window[0].spot);
    });
}

#[test]
fn postgres_health_follows_the_server_down_and_back() {
    // A server of its own: this test stops it.
    let server = deckhand_postgres_server::PgServer::start();
    let db = Db::connect_postgres(&server.fresh_database(), None, None).unwrap();
    assert!(db.health().unwrap().contains("reachable"));
    server.stop();
    let down = db.health().unwrap_err();
    assert!(down.contains("unreachable"), "{down}");
    let err = db.kv_put("p", "k", &json!(1)).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    server.start_again();
    // Reconnects on a later call once the backoff (at most 5 s) allows: wait for that state.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db.health().is_err() {
        assert!(std::time::Instant::now() < deadline, "not reconnected");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    db.kv_put("p", "k", &json!(2)).unwrap();
    assert_eq!(db.kv_get("p", "k").unwrap(), Some(json!(2)));
}
