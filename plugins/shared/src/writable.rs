//! Read-modify-write bodies that send back only what a client may write.
//!
//! A PUT of a managed cluster or an agent pool replaces the resource, so plugins read it, change
//! one thing and send it back. What Azure sent also holds read-only properties (state, versions
//! Azure computed, FQDNs, effective outbound IPs) and labels and taints AKS manages itself
//! (`kubernetes.azure.com/…`, e.g. the spot taint). Those are not ours to send: the lists below
//! are every `readOnly` property of `ManagedCluster` and `AgentPool` in the AKS swagger
//! (`../shared/azure-examples/aks/managedClusters.json`, api-version 2026-08-01), plus ARM's
//! `systemData`.

use serde_json::Value;

/// Read-only paths of a managed cluster; `[]` is each array item, `*` each map value.
const CLUSTER_READ_ONLY: &[&str] = &[
    "systemData",
    "eTag",
    "properties.provisioningState",
    "properties.powerState",
    "properties.maxAgentPools",
    "properties.currentKubernetesVersion",
    "properties.fqdn",
    "properties.privateFQDN",
    "properties.azurePortalFQDN",
    "properties.agentPoolProfiles.[].eTag",
    "properties.agentPoolProfiles.[].currentOrchestratorVersion",
    "properties.agentPoolProfiles.[].provisioningState",
    "properties.agentPoolProfiles.[].status.provisioningError",
    "properties.agentPoolProfiles.[].localDNSProfile.state",
    "properties.addonProfiles.*.identity",
    "properties.podIdentityProfile.userAssignedIdentities.[].provisioningState",
    "properties.podIdentityProfile.userAssignedIdentities.[].provisioningInfo",
    "properties.oidcIssuerProfile.issuerURL",
    "properties.networkProfile.loadBalancerProfile.effectiveOutboundIPs",
    "properties.networkProfile.natGatewayProfile.effectiveOutboundIPs",
    "properties.privateLinkResources.[].privateLinkServiceID",
    "properties.ingressProfile.webAppRouting.identity",
    "properties.resourceUID",
    "properties.status.provisioningError",
    "identity.principalId",
    "identity.tenantId",
    "identity.userAssignedIdentities.*.principalId",
    "identity.userAssignedIdentities.*.clientId",
];

/// Read-only paths of an agent pool resource.
const POOL_READ_ONLY: &[&str] = &[
    "systemData",
    "properties.eTag",
    "properties.currentOrchestratorVersion",
    "properties.provisioningState",
    "properties.status.provisioningError",
    "properties.localDNSProfile.state",
];

/// Labels and taints whose key starts with this belong to AKS.
const AKS_MANAGED_PREFIX: &str = "kubernetes.azure.com/";

/// A managed cluster as read, without what a PUT must not carry.
pub fn writable_cluster(read: &Value) -> Value {
    let mut body = read.clone();
    for path in CLUSTER_READ_ONLY {
        remove(&mut body, &path.split('.').collect::<Vec<_>>());
    }
    if let Some(pools) = body["properties"]["agentPoolProfiles"].as_array_mut() {
        pools.iter_mut().for_each(drop_aks_managed);
    }
    body
}

/// An agent pool as read, without what a PUT must not carry.
pub fn writable_pool(read: &Value) -> Value {
    let mut body = read.clone();
    for path in POOL_READ_ONLY {
        remove(&mut body, &path.split('.').collect::<Vec<_>>());
    }
    if let Some(properties) = body.get_mut("properties") {
        drop_aks_managed(properties);
    }
    body
}

/// Whether a label or taint key is AKS's own.
pub fn is_aks_managed(key: &str) -> bool {
    key.starts_with(AKS_MANAGED_PREFIX)
}

/// Removes AKS-managed `nodeLabels` and `nodeTaints` (`key=value:Effect`) from pool properties.
fn drop_aks_managed(properties: &mut Value) {
    if let Some(labels) = properties
        .get_mut("nodeLabels")
        .and_then(Value::as_object_mut)
    {
        labels.retain(|key, _| !is_aks_managed(key));
    }
    if let Some(taints) = properties
        .get_mut("nodeTaints")
        .and_then(Value::as_array_mut)
    {
        taints.retain(|t| !t.as_str().is_some_and(is_aks_managed));
    }
}

fn remove(value: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            if let Some(object) = value.as_object_mut() {
                object.remove(*last);
            }
        }
        ["[]", rest @ ..] => {
            if let Some(items) = value.as_array_mut() {
                items.iter_mut().for_each(|item| remove(item, rest));
            }
        }
        ["*", rest @ ..] => {
            if let Some(object) = value.as_object_mut() {
                object.values_mut().for_each(|item| remove(item, rest));
            }
        }
        [key, rest @ ..] => {
            if let Some(child) = value.get_mut(*key) {
                remove(child, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example(file: &str) -> Value {
        let path = format!(
            "{}/../../../shared/azure-examples/aks/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let example: Value = serde_json::from_str(&text).unwrap();
        example["responses"]["200"]["body"].clone()
    }

    #[test]
    fn a_cluster_read_from_azure_goes_back_without_read_only_properties() {
        let read = example("ManagedClustersGet.json");
        assert!(read["properties"]["provisioningState"].is_string());
        assert!(read["properties"]["fqdn"].is_string());
        let body = writable_cluster(&read);
        for gone in ["provisioningState", "fqdn", "maxAgentPools", "powerState"] {
            assert!(body["properties"].get(gone).is_none(), "{gone}");
        }
        assert!(
            body["properties"]["networkProfile"]["loadBalancerProfile"]
                .get("effectiveOutboundIPs")
                .is_none()
        );
        // What the client wrote stays.
        assert_eq!(
            body["properties"]["kubernetesVersion"],
            read["properties"]["kubernetesVersion"]
        );
        assert_eq!(
            body["properties"]["dnsPrefix"],
            read["properties"]["dnsPrefix"]
        );
        assert_eq!(body["location"], read["location"]);
        assert_eq!(
            body["properties"]["agentPoolProfiles"][0]["count"],
            read["properties"]["agentPoolProfiles"][0]["count"]
        );
    }

    #[test]
    fn aks_managed_labels_and_taints_are_left_to_aks() {
        let read = json!({"properties": {
            "provisioningState": "Succeeded",
            "currentOrchestratorVersion": "1.33.2",
            "count": 3,
            "nodeLabels": {"team": "ml", "kubernetes.azure.com/scalesetpriority": "spot"},
            "nodeTaints": ["sku=gpu:NoSchedule", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
        }});
        let body = writable_pool(&read);
        assert_eq!(
            body,
            json!({"properties": {
                "count": 3,
                "nodeLabels": {"team": "ml"},
                "nodeTaints": ["sku=gpu:NoSchedule"]
            }})
        );
    }
}
