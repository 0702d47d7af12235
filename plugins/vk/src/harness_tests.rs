//! The vk plugin in process, against the SDK's scripted host (`deckhand_plugin_sdk::testing`),
//! answered with Azure's own examples.

use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError, arm_ok, azure_example};
use serde_json::json;

use crate::Vk;

fn vk() -> PluginTest<Vk> {
    PluginTest::new(json!({"resource_group": "rg1", "default_cluster": "clustername1"}))
}

#[test]
fn status_of_a_cluster_without_the_addon_says_how_to_turn_it_on() {
    let mut test = vk();
    test.expect(
        Expect::arm(
            "GET",
            "/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1",
        ),
        arm_ok(azure_example("aks/ManagedClustersGet.json", "200")),
    );
    let reply = test.run("/vk status").unwrap();
    assert_eq!(
        reply.text,
        "Virtual nodes are off on clustername1 (addon aciConnectorLinux not enabled): `/vk enable --cluster clustername1` turns them on."
    );
    test.finish();
}

#[test]
fn hostile_pod_and_namespace_never_reach_kubernetes() {
    let test = vk();
    for line in [
        "/vk logs 'x?y'",
        "/vk logs simsvc-0 --namespace ../kube-system",
        "/vk logs %2e%2e",
    ] {
        let error = test.run(line).unwrap_err();
        assert!(matches!(error, RunError::Parse(_)), "{line}: {error}");
    }
    assert!(test.served().is_empty());
}

/// The example cluster, on Azure CNI (virtual nodes need it), in `state`.
fn cni_cluster(state: &str) -> serde_json::Value {
    let mut cluster = azure_example("aks/ManagedClustersGet.json", "200");
    cluster["properties"]["networkProfile"]["networkPlugin"] = json!("azure");
    cluster["properties"]["provisioningState"] = json!(state);
    cluster
}

const CLUSTER: &str =
    "/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1";

#[test]
fn enabling_on_kubenet_is_refused_with_the_reason_before_any_change() {
    let mut test = vk();
    // Azure's own example cluster uses kubenet.
    test.expect(
        Expect::arm("GET", CLUSTER),
        arm_ok(azure_example("aks/ManagedClustersGet.json", "200")),
    );
    let RunError::Plugin(error) = test.run("/vk enable").unwrap_err() else {
        panic!("expected the plugin to refuse");
    };
    assert_eq!(error.code, deckhand_plugin_sdk::ErrorCode::Precondition);
    assert!(
        error.message.contains("uses kubenet networking")
            && error.message.contains("Azure CNI")
            && error.message.contains("--network-plugin azure"),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn enabling_while_the_cluster_is_creating_is_refused() {
    let mut test = vk();
    test.expect(Expect::arm("GET", CLUSTER), arm_ok(cni_cluster("Creating")));
    let RunError::Plugin(error) = test.run("/vk enable").unwrap_err() else {
        panic!("expected the plugin to refuse");
    };
    assert!(
        error.message.contains("is Creating") && error.message.contains("wait until"),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn enable_sends_only_writable_properties_and_a_failed_kubernetes_read_after_it_is_a_note() {
    let mut test = vk();
    let mut after = cni_cluster("Succeeded");
    after["properties"]["addonProfiles"]["aciConnectorLinux"] =
        json!({"enabled": true, "config": {"SubnetName": "virtual-node-aci"}});
    test.expect(
        Expect::arm("GET", CLUSTER),
        arm_ok(cni_cluster("Succeeded")),
    )
    .expect(Expect::arm("PUT", CLUSTER), arm_ok(after))
    .expect(
        Expect::kube("list", "Node"),
        Err(deckhand_plugin_sdk::HostError::new(
            "unavailable",
            "no cluster named clustername1 is configured",
        )),
    );
    let reply = test.run("/vk enable").unwrap();
    assert!(
        reply
            .text
            .starts_with("Virtual nodes are on for clustername1")
            && reply.text.contains("could not be read from Kubernetes"),
        "{}",
        reply.text
    );
    let put = test
        .served()
        .into_iter()
        .find_map(|s| match s {
            deckhand_plugin_sdk::abi::proto::Service::Arm { request }
                if request.method == "PUT" =>
            {
                request.body
            }
            _ => None,
        })
        .expect("a PUT was sent");
    for read_only in ["provisioningState", "fqdn", "maxAgentPools", "powerState"] {
        assert!(
            put["properties"].get(read_only).is_none(),
            "{read_only} sent"
        );
    }
    assert_eq!(
        put["properties"]["addonProfiles"]["aciConnectorLinux"]["enabled"],
        json!(true)
    );
    test.finish();
}

#[test]
fn a_change_azure_did_not_apply_is_said_plainly() {
    let mut test = vk();
    test.expect(
        Expect::arm("GET", CLUSTER),
        arm_ok(cni_cluster("Succeeded")),
    )
    // The read-back still has the addon off.
    .expect(
        Expect::arm("PUT", CLUSTER),
        arm_ok(cni_cluster("Succeeded")),
    );
    let reply = test.run("/vk enable").unwrap();
    assert!(
        reply
            .text
            .contains("reads back with aciConnectorLinux disabled"),
        "{}",
        reply.text
    );
    test.finish();
}

#[test]
fn a_missing_cluster_keeps_azures_code_and_request_id() {
    let mut test = vk();
    let mut error = deckhand_plugin_sdk::HostError::new(
        "upstream",
        "Azure refused GET …/managedClusters/clustername1: The Resource was not found",
    );
    error.status = Some(404);
    error.upstream_code = Some("ResourceNotFound".into());
    error.request_id = Some("0c3a1f4e-req".into());
    test.expect(Expect::arm("GET", CLUSTER), Err(error));
    let RunError::Plugin(error) = test.run("/vk status").unwrap_err() else {
        panic!("expected an error");
    };
    assert_eq!(error.code, deckhand_plugin_sdk::ErrorCode::NotFound);
    let text = error.to_string();
    assert!(
        text.contains("there is no AKS cluster clustername1 in resource group rg1")
            && text.contains("ResourceNotFound")
            && text.contains("0c3a1f4e-req"),
        "{text}"
    );
    test.finish();
}
