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
