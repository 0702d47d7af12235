//! The daskhub plugin in process, against the SDK's scripted host: what reaches the host for
//! each command, and what never does.

use deckhand_plugin_sdk::abi::proto::Service;
use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError};
use deckhand_plugin_sdk::{ErrorCode, HostError};
use serde_json::json;

use crate::Daskhub;

fn daskhub() -> PluginTest<Daskhub> {
    PluginTest::new(json!({
        "resource_group": "pangeo",
        "default_cluster": "pangeoCluster",
        "hub": {"url": "http://hub.example:8081", "auth_profile": "daskhub-hub"},
        "gateway": {"url": "http://gateway.example/services/dask-gateway", "auth_profile": "daskhub-gateway"},
    }))
}

fn plugin_error(
    result: Result<deckhand_plugin_sdk::Reply, RunError>,
) -> deckhand_plugin_sdk::PluginError {
    match result {
        Err(RunError::Plugin(e)) => e,
        other => panic!("expected the plugin to refuse, got {other:?}"),
    }
}

#[test]
fn a_config_with_a_foreign_auth_profile_or_a_typo_is_refused() {
    let foreign = PluginTest::<Daskhub>::try_new(json!({
        "hub": {"url": "http://hub", "auth_profile": "minio"}
    }))
    .err()
    .expect("refused");
    assert_eq!(foreign.code, ErrorCode::Config);
    assert!(
        foreign.message.contains("start with \"daskhub\""),
        "{}",
        foreign.message
    );
    let typo = PluginTest::<Daskhub>::try_new(json!({"namepsace": "dhub"}))
        .err()
        .expect("refused");
    assert!(
        typo.message.contains("unknown field `namepsace`"),
        "{}",
        typo.message
    );
}

#[test]
fn gateway_cluster_names_are_checked_and_encoded_before_any_call() {
    let test = daskhub();
    // Refused by the command grammar (the rule is in the manifest), so before any
    // confirmation of this destructive command and before the plugin is called.
    let error = test
        .run("/daskhub stop '../../api/v1/clusters'")
        .unwrap_err();
    assert!(
        matches!(&error, RunError::Parse(_)) && error.to_string().contains("'/' is not allowed"),
        "{error}"
    );
    assert!(test.served().is_empty());

    let mut test = daskhub();
    test.expect(
        Expect::call("GET the cluster", |s| matches!(s, Service::Http { request }
            if request.method == "GET"
                && request.url == "http://gateway.example/services/dask-gateway/api/v1/clusters/dhub.abc123"
                && request.auth_profile.as_deref() == Some("daskhub-gateway"))),
        Ok(json!({"status": 200, "headers": [], "body": r#"{"name": "dhub.abc123", "status": "RUNNING", "tls_key": "SECRET-KEY"}"#})),
    )
    .expect(
        Expect::call("DELETE the cluster", |s| matches!(s, Service::Http { request } if request.method == "DELETE")),
        Ok(json!({"status": 204, "headers": [], "body": ""})),
    )
    .expect(
        Expect::call("GET it again", |s| matches!(s, Service::Http { request } if request.method == "GET")),
        Ok(json!({"status": 200, "headers": [], "body": r#"{"name": "dhub.abc123", "status": "STOPPED"}"#})),
    );
    let reply = test.run("/daskhub stop dhub.abc123").unwrap();
    assert_eq!(
        reply.text,
        "✓ Stopped Dask Gateway cluster dhub.abc123 (was RUNNING). Now STOPPED."
    );
    assert!(!reply.text.contains("SECRET-KEY"));
    test.finish();
}

#[test]
fn worker_bounds_are_checked_before_arm_is_asked() {
    let test = daskhub();
    let error = plugin_error(test.run("/daskhub workers --min 10 --max 5"));
    assert_eq!(error.option.as_deref(), Some("max"));
    let error = plugin_error(test.run("/daskhub workers --min -1 --max 5"));
    assert_eq!(error.option.as_deref(), Some("min"));
    assert!(test.served().is_empty());
}

#[test]
fn deploy_without_helm_changes_nothing_and_says_how_to_allow_it() {
    let mut test = daskhub();
    test.expect(
        Expect::call("helm version", |s| {
            matches!(s, Service::Run { program, args, .. }
            if program == "helm" && args == &["version", "--short"])
        }),
        Err(HostError::new(
            "capability_denied",
            "program \"helm\" is not configured in [host.programs]",
        )),
    );
    let error = plugin_error(test.run("/daskhub deploy"));
    assert_eq!(error.code, ErrorCode::Precondition);
    assert!(
        error.message.contains("[host.programs] helm = "),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn deploy_passes_tokens_on_stdin_only() {
    let mut test = daskhub();
    let ok = |stdout: &str| Ok(json!({"exit_code": 0, "stdout": stdout, "stderr": ""}));
    test.expect(
        Expect::call("helm version", |s| matches!(s, Service::Run { .. })),
        ok("v3.16.0"),
    )
    .expect(Expect::kube("apply", "Namespace"), Ok(json!({"body": {}})))
    .expect(
        Expect::kube("get", "Secret"),
        Err(HostError {
            status: Some(404),
            ..HostError::new("not_found", "secrets \"dask-daskhub-tokens\" not found")
        }),
    )
    .expect(Expect::kube("apply", "Secret"), Ok(json!({"body": {}})))
    .expect(
        Expect::call(
            "helm upgrade",
            |s| matches!(s, Service::Run { args, stdin: Some(_), .. } if args[0] == "upgrade"),
        ),
        ok(r#"{"name": "dask", "version": 1, "info": {"status": "deployed"}}"#),
    );
    let reply = test.run("/daskhub deploy").unwrap();
    assert!(
        reply.text.contains("deployed, revision 1"),
        "{}",
        reply.text
    );
    let served = test.served();
    let Some(Service::Run {
        args,
        stdin: Some(values),
        ..
    }) = served.last()
    else {
        panic!("helm upgrade last");
    };
    let values: serde_json::Value = serde_json::from_str(values).unwrap();
    let token = values["jupyterhub"]["proxy"]["secretToken"]
        .as_str()
        .unwrap();
    assert_eq!(token.len(), 64);
    assert!(!args.iter().any(|a| a.contains(token)));
    assert!(!reply.text.contains(token));
    test.finish();
}
