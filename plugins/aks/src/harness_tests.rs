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

/// `/aks pool add --name POOL …` scripted up to its PUT, answered with `put`: the pool is
/// missing, its cluster is there.
fn pool_add_answered(pool: &str, put: Result<serde_json::Value, HostError>) -> PluginTest<Aks> {
    let mut test = aks();
    test.expect(
        Expect::arm("GET", &format!("/agentPools/{pool}")),
        Err(not_found()),
    )
    .expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(azure_example("aks/ManagedClustersGet.json", "200")),
    )
    .expect(Expect::arm("PUT", &format!("/agentPools/{pool}")), put);
    test
}

/// `--labels`, `--taints`, the defaulted `--count` and `--mode` and the GPU taint all reach
/// the pool Azure is asked to create.
#[test]
fn pool_add_sends_the_decoded_labels_taints_and_defaults() {
    let mut test = pool_add_answered(
        "gpu2",
        // What Azure reads back: the pool as asked, now Succeeded.
        arm_ok(json!({"name": "gpu2", "properties": {
            "count": 1, "vmSize": "Standard_NC6s_v3", "mode": "User", "provisioningState": "Succeeded",
            "enableAutoScaling": false,
            "nodeLabels": {"team": "ml", "tier": "gpu"},
            "nodeTaints": ["team=ml:NoSchedule", "nvidia.com/gpu=present:NoSchedule"]
        }})),
    );
    test.expect(Expect::kube("list", "Node"), kube_items(json!([])));
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

const POOL: &str = "/managedClusters/clustername1/agentPools/agentpool1";

/// Azure's example pool (3 × Standard_DS1_v2, no autoscaler) as `GET` returns it.
fn example_pool() -> serde_json::Value {
    azure_example("aks/AgentPoolsGet.json", "200")
}

/// Azure's refusal as the host reports it.
fn refused(status: u16, code: &str, message: &str) -> Result<serde_json::Value, HostError> {
    Err(host_error("azure", code, Some(status), message))
}

/// The plugin's own error for `line` (not a grammar refusal).
fn plugin_error(test: &PluginTest<Aks>, line: &str) -> deckhand_plugin_sdk::PluginError {
    match test.run(line) {
        Err(RunError::Plugin(error)) => error,
        other => panic!("expected the plugin's error, got {other:?}"),
    }
}

/// Azure's code and the request id reach the words of the reply.
fn assert_quotes_azure(text: &str, code: &str) {
    assert!(text.contains(code) && text.contains("7d1e-req"), "{text}");
}

fn host_error(code: &str, upstream: &str, status: Option<u16>, message: &str) -> HostError {
    HostError {
        upstream_code: Some(upstream.into()),
        request_id: Some("7d1e-req".into()),
        status,
        ..HostError::new(code, message)
    }
}

/// Point 2: a change Azure finished whose read-back failed is a success, with a note.
#[test]
fn pool_add_whose_read_back_failed_is_a_success_with_a_note() {
    let test = pool_add_answered(
        "spot1",
        Ok(
            json!({"status": 200, "body": null, "request_id": "put-req", "read_back_error": host_error(
                "azure", "InternalServerError", Some(500),
                "Azure refused PUT managedClusters/clustername1/agentPools/spot1: InternalServerError: An unexpected error occured (HTTP 500, request id get-req)"
            )}),
        ),
    );
    let reply = test
        .run(
            "/aks pool add --name spot1 --vm-size Standard_D8s_v3 --spot --count 0 --min 0 --max 3",
        )
        .unwrap();
    assert_eq!(
        reply.text,
        "✓ Pool spot1 created in clustername1 (0 × Standard_D8s_v3 asked). Azure reports the operation Succeeded, but the pool could not be read back (Azure refused PUT managedClusters/clustername1/agentPools/spot1: InternalServerError: An unexpected error occured (HTTP 500, request id get-req)); /aks pools shows its state."
    );
    test.finish();
}

/// Point 2: an operation that failed while running is not "refused": it names the
/// operation's code and request id and says what to do.
#[test]
fn pool_add_whose_operation_failed_while_running_says_so() {
    let test = pool_add_answered(
        "spot1",
        Err(host_error(
            "operation_failed",
            "VMExtensionProvisioningError",
            None,
            "Azure accepted PUT managedClusters/clustername1/agentPools/spot1, but the operation failed while running: VMExtensionProvisioningError: Provisioning of VM extension vmssCSE has timed out (operation Failed, request id 7d1e-req)",
        )),
    );
    let error = plugin_error(
        &test,
        "/aks pool add --name spot1 --vm-size Standard_D8s_v3",
    );
    assert_eq!(
        error.upstream_code.as_deref(),
        Some("VMExtensionProvisioningError")
    );
    assert_eq!(
        error.to_string(),
        "creating pool spot1 in clustername1: Azure accepted PUT managedClusters/clustername1/agentPools/spot1, but the operation failed while running: VMExtensionProvisioningError: Provisioning of VM extension vmssCSE has timed out (operation Failed, request id 7d1e-req). Azure accepted the change but could not carry it out: /aks pools shows the pool's state now; fix the cause above and run the command again"
    );
    test.finish();
}

/// The PUT a scale sends, from the served calls.
fn sent_put(test: &PluginTest<Aks>) -> serde_json::Value {
    test.served()
        .into_iter()
        .find_map(|s| match s {
            Service::Arm { request } if request.method == "PUT" => request.body,
            _ => None,
        })
        .expect("a PUT was sent")
}

/// Points 3 and 4: the read-modify-write sends only writable properties (no state, versions
/// Azure computed or AKS's own labels and taints), and the reply says what Azure reports
/// after the change when it is not what was asked.
#[test]
fn scale_sends_only_writable_properties_and_says_when_azure_reports_another_count() {
    let mut test = aks();
    let mut read = example_pool();
    read["properties"]["nodeLabels"] =
        json!({"team": "ml", "kubernetes.azure.com/scalesetpriority": "spot"});
    read["properties"]["nodeTaints"] = json!([
        "sku=gpu:NoSchedule",
        "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
    ]);
    test.expect(Expect::arm("GET", POOL), arm_ok(read))
        // Azure's answer after the operation: still 3 nodes.
        .expect(Expect::arm("PUT", POOL), arm_ok(example_pool()))
        .expect(Expect::kube("list", "Node"), kube_items(json!([])));
    let reply = test.run("/aks scale --pool agentpool1 --count 5").unwrap();
    assert_eq!(
        reply.text,
        "Azure accepted the scale of pool agentpool1 of clustername1 to 5 nodes, but reports 3 nodes after it (it had 3). Kubernetes: 0/0 nodes Ready."
    );
    let body = sent_put(&test);
    let p = &body["properties"];
    assert_eq!(p["count"], 5);
    for gone in ["provisioningState", "currentOrchestratorVersion", "eTag"] {
        assert!(p.get(gone).is_none(), "{gone} was sent: {body}");
    }
    assert_eq!(p["nodeLabels"], json!({"team": "ml"}));
    assert_eq!(p["nodeTaints"], json!(["sku=gpu:NoSchedule"]));
    // What the client may write goes back as read.
    assert_eq!(p["orchestratorVersion"], "1.9.6");
    assert_eq!(p["maxPods"], 110);
    assert_eq!(p["upgradeSettings"], json!({"maxSurge": "33%"}));
    test.finish();
}

/// Point 3: the autoscaler reply is built from the read-back.
#[test]
fn autoscale_reply_says_when_the_pool_reads_back_without_an_autoscaler() {
    let mut test = aks();
    test.expect(Expect::arm("GET", POOL), arm_ok(example_pool()))
        .expect(Expect::arm("PUT", POOL), arm_ok(example_pool()));
    let reply = test
        .run("/aks autoscale --pool agentpool1 --min 1 --max 4")
        .unwrap();
    assert_eq!(
        reply.text,
        "Azure accepted the autoscaler 1..4 for pool agentpool1 of clustername1, but reports the pool with no autoscaler (3 nodes) after the change; /aks pools shows it."
    );
    let body = sent_put(&test);
    assert_eq!(
        (
            &body["properties"]["enableAutoScaling"],
            &body["properties"]["minCount"],
            &body["properties"]["maxCount"]
        ),
        (&json!(true), &json!(1), &json!(4))
    );
    test.finish();
}

/// Point 8: a low write budget is shown on the reply.
#[test]
fn a_low_write_budget_is_shown_with_the_reply() {
    let mut test = aks();
    let mut after = example_pool();
    after["properties"]["count"] = json!(4);
    test.expect(Expect::arm("GET", POOL), arm_ok(example_pool()))
        .expect(
            Expect::arm("PUT", POOL),
            Ok(json!({"status": 200, "body": after, "remaining_writes": 3, "remaining_reads": 240})),
        )
        .expect(Expect::kube("list", "Node"), kube_items(json!([])));
    let reply = test.run("/aks scale --pool agentpool1 --count 4").unwrap();
    assert_eq!(
        reply.text,
        "✓ Pool agentpool1 of clustername1 scaled from 3 to 4 nodes (Standard_DS1_v2). Kubernetes: 0/0 nodes Ready. Azure write budget: 3 writes left for this subscription (AKS gives back about one a minute; more changes now wait for it)."
    );
    test.finish();
}

/// Point 7: a 404 keeps Azure's code and request id, and a list that fails is never "none".
#[test]
fn a_missing_pool_keeps_azures_code_and_a_failing_list_is_not_none() {
    let mut test = aks();
    test.expect(
        Expect::arm("GET", "/agentPools/gpux"),
        refused(404, "ResourceNotFound", "Azure refused GET managedClusters/clustername1/agentPools/gpux: ResourceNotFound: not found"),
    )
    .expect(
        Expect::arm("GET", "/managedClusters/clustername1/agentPools"),
        refused(500, "InternalServerError", "Azure refused GET managedClusters/clustername1/agentPools: InternalServerError: oops (HTTP 500)"),
    );
    let error = plugin_error(&test, "/aks scale --pool gpux --count 2");
    assert_eq!(error.code, deckhand_plugin_sdk::ErrorCode::NotFound);
    let text = error.to_string();
    assert!(
        text.starts_with("there is no pool \"gpux\" in cluster clustername1; its pools could not be listed either (listing the pools of clustername1: Azure refused GET managedClusters/clustername1/agentPools: InternalServerError"),
        "{text}"
    );
    assert_quotes_azure(&text, "ResourceNotFound");
    assert!(!text.contains("none"), "{text}");
    test.finish();
}

/// Point 7: which parent is missing is said from Azure's code.
#[test]
fn a_missing_cluster_or_resource_group_is_named_from_azures_code() {
    let mut test = aks();
    test.expect(
        Expect::arm("GET", "/agentPools/gpu"),
        refused(
            404,
            "ParentResourceNotFound",
            "Azure refused GET …: ParentResourceNotFound: parent not found",
        ),
    )
    .expect(
        Expect::arm("GET", "/managedClusters"),
        arm_ok(azure_example(
            "aks/ManagedClustersListByResourceGroup.json",
            "200",
        )),
    );
    let error = test
        .run("/aks scale --pool gpu --count 2 --cluster other")
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("there is no AKS cluster \"other\" in resource group rg1; clusters there: clustername1 (option --cluster)"),
        "{text}"
    );
    assert_quotes_azure(&text, "ParentResourceNotFound");
    test.finish();

    let mut test = aks();
    test.expect(
        Expect::arm("GET", "/agentPools/gpu"),
        refused(
            404,
            "ResourceGroupNotFound",
            "Azure refused GET …: ResourceGroupNotFound: Resource group 'rg1' could not be found.",
        ),
    );
    let error = plugin_error(&test, "/aks scale --pool gpu --count 2");
    assert_eq!(error.code, deckhand_plugin_sdk::ErrorCode::Config);
    let text = error.to_string();
    assert!(
        text.starts_with("resource group rg1 does not exist in the subscription (resource_group in [plugins.config.aks])"),
        "{text}"
    );
    assert_quotes_azure(&text, "ResourceGroupNotFound");
    test.finish();
}

/// A start that succeeded is reported done even when the cluster cannot be read after it.
#[test]
fn a_start_whose_read_back_fails_is_done_with_a_note() {
    let mut test = aks();
    let mut stopped = azure_example("aks/ManagedClustersGet.json", "200");
    stopped["properties"]["powerState"] = json!({"code": "Stopped"});
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(stopped),
    )
    .expect(
        Expect::arm("POST", "/managedClusters/clustername1/start"),
        arm_ok(json!(null)),
    )
    .expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        refused(503, "ServiceUnavailable", "Azure refused GET managedClusters/clustername1: ServiceUnavailable: try later (HTTP 503)"),
    );
    let reply = test.run("/aks start").unwrap();
    assert!(
        reply.text.starts_with("✓ clustername1 started (Azure reports the operation Succeeded), but the cluster could not be read back (reading cluster clustername1: Azure refused GET managedClusters/clustername1: ServiceUnavailable"),
        "{}",
        reply.text
    );
    test.finish();
}
