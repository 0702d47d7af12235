//! The aks plugin in process, against the SDK's scripted host (`deckhand_plugin_sdk::testing`):
//! the router's grammar checks each line against the derived manifest, and every ARM call must
//! be one the script expects, answered with Azure's own examples.

use deckhand_plugin_sdk::abi::proto::HostError;
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
