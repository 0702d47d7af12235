//! `/rg` in process against the SDK's scripted host: what each command asks the host's typed
//! resource-group service, and that a delete's preview only reads.

use deckhand_plugin_sdk::abi::proto::{
    ResourceGroupInfo, ResourceGroupRequest, ResourceGroupResponse, ResourceInfo, Service,
};
use deckhand_plugin_sdk::testing::{Expect, PluginTest};
use serde_json::{Value, json};

use crate::Aks;

const CLUSTER_ID: &str = "/subscriptions/s/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster";

fn op(name: &'static str) -> Expect {
    Expect::call(name, move |service| {
        matches!(service, Service::ResourceGroups { request }
            if serde_json::to_value(request).ok().and_then(|v| v["op"].as_str().map(str::to_owned)).as_deref() == Some(name))
    })
}

fn answer(response: ResourceGroupResponse) -> Result<Value, deckhand_plugin_sdk::HostError> {
    Ok(serde_json::to_value(response).unwrap())
}

fn group(name: &str, managed_by: Option<&str>) -> ResourceGroupInfo {
    ResourceGroupInfo {
        id: format!("/subscriptions/s/resourceGroups/{name}"),
        name: name.into(),
        location: "westeurope".into(),
        provisioning_state: Some("Succeeded".into()),
        managed_by: managed_by.map(str::to_owned),
        ..ResourceGroupInfo::default()
    }
}

fn resource(ty: &str, name: &str) -> ResourceInfo {
    ResourceInfo {
        id: if ty.ends_with("managedClusters") {
            CLUSTER_ID.into()
        } else {
            format!("/subscriptions/s/resourceGroups/pangeo/providers/{ty}/{name}")
        },
        name: name.into(),
        resource_type: ty.into(),
        location: Some("westeurope".into()),
        provisioning_state: Some("Succeeded".into()),
    }
}

fn deletes(test: &PluginTest<Aks>) -> usize {
    test.served()
        .iter()
        .filter(|s| {
            matches!(
                s,
                Service::ResourceGroups {
                    request: ResourceGroupRequest::Delete { .. }
                }
            )
        })
        .count()
}

#[test]
fn the_delete_preview_lists_the_contents_and_only_reads() {
    let mut test: PluginTest<Aks> = PluginTest::new(json!({}));
    test.expect(
        op("get"),
        answer(ResourceGroupResponse {
            groups: vec![group("pangeo", None)],
            ..Default::default()
        }),
    )
    .expect(
        op("resources"),
        answer(ResourceGroupResponse {
            resources: vec![
                resource(
                    "Microsoft.ContainerService/managedClusters",
                    "pangeoCluster",
                ),
                resource("Microsoft.ContainerInstance/containerGroups", "cg1"),
                resource("Microsoft.Storage/storageAccounts", "logs1"),
            ],
            ..Default::default()
        }),
    )
    .expect(
        op("list"),
        answer(ResourceGroupResponse {
            groups: vec![
                group("pangeo", None),
                group("MC_pangeo_pangeoCluster_westeurope", Some(CLUSTER_ID)),
            ],
            ..Default::default()
        }),
    );
    let reply = test.preview("/rg delete pangeo").unwrap();
    for line in [
        "Deleting resource group pangeo (westeurope) deletes everything in it.",
        "3 resources:",
        "• AKS clusters (1): pangeoCluster (westeurope, Succeeded)",
        "• container groups (1): cg1 (westeurope, Succeeded)",
        "• Microsoft.Storage/storageAccounts (1): logs1 (westeurope, Succeeded)",
        "• AKS node resource group of pangeoCluster: MC_pangeo_pangeoCluster_westeurope",
    ] {
        assert!(
            reply.text.contains(line),
            "missing {line:?} in {}",
            reply.text
        );
    }
    assert_eq!(deletes(&test), 0);
    test.finish();
}

#[test]
fn an_aks_node_resource_group_is_never_deleted() {
    let mut test: PluginTest<Aks> = PluginTest::new(json!({}));
    test.expect(
        op("get"),
        answer(ResourceGroupResponse {
            groups: vec![group(
                "MC_pangeo_pangeoCluster_westeurope",
                Some(CLUSTER_ID),
            )],
            ..Default::default()
        }),
    );
    let error = test
        .run("/rg delete MC_pangeo_pangeoCluster_westeurope")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is the node resource group AKS manages for cluster pangeoCluster"),
        "{error}"
    );
    assert_eq!(deletes(&test), 0);
    test.finish();
}
