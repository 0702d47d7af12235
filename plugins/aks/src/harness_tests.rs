//! The aks plugin in process, against the SDK's scripted host (`deckhand_plugin_sdk::testing`):
//! the router's grammar checks each line against the derived manifest, and every ARM call must
//! be one the script expects, answered with Azure's own examples.

use deckhand_plugin_sdk::abi::proto::{HostError, Service};
use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError, arm_ok, azure_example};
use serde_json::json;

use crate::Aks;

fn aks() -> PluginTest<Aks> {
    PluginTest::new(json!({"resource_group": "rg1", "default_cluster": "clustername1"}))
}

#[test]
fn clusters_lists_azures_example_cluster() {
    let mut test = aks();
    test.expect(
        Expect::arm(
            "GET",
            "/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters",
        ),
        // The host's ARM service answers `{status, body}` (`ArmResponse`).
        arm_ok(azure_example(
            "aks/ManagedClustersListByResourceGroup.json",
            "200",
        )),
    );
    let reply = test.run("/aks clusters").unwrap();
    let first = reply.text.lines().next().unwrap_or_default();
    assert_eq!(
        first, "1 AKS cluster in resource group rg1:",
        "{}",
        reply.text
    );
    assert!(reply.text.contains("• clustername1 (rg1"), "{}", reply.text);
    test.finish();
}

#[test]
fn a_dot_dot_pool_is_refused_by_the_grammar_before_any_call() {
    let test = aks();
    let error = test.run("/aks pool delete --name ..").unwrap_err();
    assert!(
        matches!(&error, RunError::Parse(_)) && error.to_string().contains("AKS pool names are"),
        "{error}"
    );
    assert!(test.served().is_empty());
}

/// The host's structured fields survive the plugin's rewording: the reply quotes Azure's code
/// and the request id even when the message does not.
#[test]
fn azures_error_code_reaches_the_reply() {
    let mut test = aks();
    test.expect(
        Expect::arm("GET", "/managedClusters"),
        Err(HostError {
            upstream_code: Some("AuthorizationFailed".into()),
            request_id: Some("0f1e2d3c-request".into()),
            status: Some(403),
            ..HostError::new("upstream", "The client does not have authorization")
        }),
    );
    let error = test.run("/aks clusters").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("AuthorizationFailed"), "{text}");
    assert!(text.contains("0f1e2d3c-request"), "{text}");
    test.finish();
}

#[test]
#[should_panic(expected = "unexpected service calls")]
fn a_service_call_the_script_does_not_expect_fails_the_test() {
    // No ARM call is scripted: listing clusters makes one anyway.
    let _ = aks().run("/aks clusters");
}

/// The Kubernetes service's answer to a `list`.
fn kube_items(items: serde_json::Value) -> Result<serde_json::Value, HostError> {
    Ok(json!({ "body": { "items": items } }))
}

fn not_found() -> HostError {
    HostError {
        status: Some(404),
        upstream_code: Some("NotFound".into()),
        ..HostError::new("not_found", "the resource was not found")
    }
}

/// `--labels`, `--taints`, the defaulted `--count` and `--mode` and the GPU taint all reach
/// the pool Azure is asked to create.
#[test]
fn pool_add_sends_the_decoded_labels_taints_and_defaults() {
    let mut test = aks();
    test.expect(Expect::arm("GET", "/agentPools/gpu2"), Err(not_found()))
        .expect(
            Expect::arm("GET", "/managedClusters/clustername1"),
            arm_ok(azure_example("aks/ManagedClustersGet.json", "200")),
        )
        .expect(Expect::arm("PUT", "/agentPools/gpu2"), arm_ok(json!(null)))
        .expect(Expect::kube("list", "Node"), kube_items(json!([])));
    let reply = test
        .run("/aks pool add --name gpu2 --vm-size Standard_NC6s_v3 --labels team=ml,tier=gpu --taints team=ml:NoSchedule")
        .unwrap();
    let put = test
        .served()
        .into_iter()
        .find_map(|s| match s {
            Service::Arm { request } if request.method == "PUT" => Some(request),
            _ => None,
        })
        .unwrap();
    assert!(put.wait, "creating a pool is followed to its end");
    let p = &put.body.unwrap()["properties"];
    assert_eq!(p["count"], 1);
    assert_eq!(p["mode"], "User");
    assert_eq!(p["vmSize"], "Standard_NC6s_v3");
    assert_eq!(p["nodeLabels"], json!({"team": "ml", "tier": "gpu"}));
    assert_eq!(
        p["nodeTaints"],
        json!(["team=ml:NoSchedule", "nvidia.com/gpu=present:NoSchedule"])
    );
    assert!(
        reply
            .text
            .starts_with("✓ Pool gpu2 created in clustername1: 1 × Standard_NC6s_v3"),
        "{}",
        reply.text
    );
    test.finish();
}

/// `/aks scale` refuses to shrink and names the confirmed command with the same cluster.
#[test]
fn scale_down_by_scale_names_scale_down_with_the_cluster() {
    let mut test = aks();
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1/agentPools/agentpool1"),
        arm_ok(azure_example("aks/AgentPoolsGet.json", "200")),
    )
    .expect(Expect::kube("list", "Node"), kube_items(json!([])))
    .expect(Expect::kube("list", "Pod"), kube_items(json!([])));
    let error = test
        .run("/aks scale --pool agentpool1 --count 1 --cluster clustername1")
        .unwrap_err();
    let RunError::Plugin(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.option.as_deref(), Some("count"));
    assert!(
        error
            .message
            .ends_with("run /aks scale-down --pool agentpool1 --count 1 --cluster clustername1"),
        "{}",
        error.message
    );
    test.finish();
}

/// aks with the shipped simsvc app definition.
fn deploy() -> PluginTest<Aks> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/apps/simsvc.toml"
    ))
    .unwrap();
    let simsvc: toml::Value = toml::from_str(&text).unwrap();
    PluginTest::new(json!({
        "resource_group": "rg1", "default_cluster": "clustername1", "apps": {"simsvc": simsvc}
    }))
}

/// The positional app and instance and `--tag` decide which image is checked; a missing tag
/// stops `/deploy` before anything reaches Kubernetes.
#[test]
fn deploy_checks_the_decoded_tag_before_applying_anything() {
    let mut test = deploy();
    test.expect(
        Expect::call(
            "registry manifest",
            |s| matches!(s, Service::Registry { request } if request.op == "manifest"),
        ),
        Err(HostError::new("not_found", "manifest unknown")),
    )
    .expect(
        Expect::call(
            "registry tags",
            |s| matches!(s, Service::Registry { request } if request.op == "tags"),
        ),
        Ok(json!({"op": "tags", "repository": "simsvc-mpt", "tags": ["latest", "v1"]})),
    );
    let error = test.run("/deploy simsvc mpt --tag v9").unwrap_err();
    assert_eq!(
        error.to_string(),
        "image intens.azurecr.io/simsvc-mpt:v9 does not exist; its tags: latest, v1. Build and push it first; nothing was applied (option --tag)"
    );
    let Service::Registry { request } = &test.served()[0] else {
        panic!("{:?}", test.served())
    };
    assert_eq!(
        (request.repository.as_deref(), request.reference.as_deref()),
        (Some("simsvc-mpt"), Some("v9"))
    );
    test.finish();
}

#[test]
fn deploy_refuses_out_of_range_replicas_before_any_call() {
    let test = deploy();
    let error = test.run("/deploy simsvc mpt --replicas 5000").unwrap_err();
    let RunError::Plugin(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.option.as_deref(), Some("replicas"));
    assert!(error.message.contains("0 to 1000"), "{}", error.message);
    assert!(test.served().is_empty());
}

/// A typo in `[plugins.config.aks]` is refused at init, naming the key (which `deckhand check`
/// turns into its line), instead of silently falling back to no default cluster.
#[test]
fn a_config_typo_is_refused_naming_the_key() {
    let Err(error) = PluginTest::<Aks>::try_new(json!({
        "resource_group": "rg1", "default_clustr": "clustername1"
    })) else {
        panic!("a misspelt key was accepted")
    };
    assert_eq!(error.code, deckhand_plugin_sdk::ErrorCode::Config);
    assert_eq!(error.option.as_deref(), Some("default_clustr"));
    assert!(
        error
            .message
            .starts_with("[plugins.config.aks]: unknown field `default_clustr`"),
        "{}",
        error.message
    );
}
