//! Typed models of the ARM resources Deckhand manages, with the api-versions it speaks. Fields
//! follow the REST API (camelCase); unknown fields are kept in `extra` so a read-modify-write
//! never drops what Azure sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// api-versions (newest stable with examples in ../shared/azure-examples).
pub const AKS_API: &str = "2026-08-01";
pub const ACR_API: &str = "2025-11-01";
pub const ACR_TASKS_API: &str = "2019-04-01";
pub const ACI_API: &str = "2025-09-01";
pub const RESOURCES_API: &str = "2025-04-01";

pub fn cluster_path(resource_group: &str, cluster: &str) -> String {
    format!(
        "/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{cluster}"
    )
}

pub fn pool_path(resource_group: &str, cluster: &str, pool: &str) -> String {
    format!(
        "{}/agentPools/{pool}",
        cluster_path(resource_group, cluster)
    )
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource<P> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Map<String, Value>>,
    pub properties: P,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"value": [...], "nextLink"?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub value: Vec<T>,
    #[serde(default, rename = "nextLink", skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerState {
    pub code: String,
}

pub type ManagedCluster = Resource<ManagedClusterProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub power_state: Option<PowerState>,
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub current_kubernetes_version: Option<String>,
    #[serde(default)]
    pub fqdn: Option<String>,
    #[serde(default)]
    pub agent_pool_profiles: Vec<AgentPoolProperties>,
    /// Add-ons, e.g. `aciConnectorLinux` (virtual nodes): `{"enabled": bool, "config": {...}}`.
    #[serde(default)]
    pub addon_profiles: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub type AgentPool = Resource<AgentPoolProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProperties {
    /// Present in a cluster's `agentPoolProfiles`, absent in an agent pool resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_scaling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_set_priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_set_eviction_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_max_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_taints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GPUs per node of the VM sizes Deckhand knows (NC, ND, NV families); 0 for others.
pub fn gpus_per_node(vm_size: &str) -> u32 {
    match vm_size.to_ascii_lowercase().as_str() {
        "standard_nc6"
        | "standard_nc6s_v2"
        | "standard_nc6s_v3"
        | "standard_nc4as_t4_v3"
        | "standard_nc8as_t4_v3"
        | "standard_nc16as_t4_v3"
        | "standard_nc24ads_a100_v4"
        | "standard_nv6"
        | "standard_nv12s_v3" => 1,
        "standard_nc12"
        | "standard_nc12s_v2"
        | "standard_nc12s_v3"
        | "standard_nc48ads_a100_v4"
        | "standard_nv12" => 2,
        "standard_nc24"
        | "standard_nc24s_v2"
        | "standard_nc24s_v3"
        | "standard_nc64as_t4_v3"
        | "standard_nc96ads_a100_v4"
        | "standard_nv24" => 4,
        "standard_nd96asr_v4" | "standard_nd96amsr_a100_v4" | "standard_nd96isr_h100_v5" => 8,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real example from Azure's specs round-trips without losing fields.
    #[test]
    fn agent_pool_example_round_trips() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/azure-examples/aks/AgentPoolsGet.json"
        ))
        .expect("../shared/azure-examples is beside the repository");
        let example: Value = serde_json::from_str(&text).unwrap();
        let body = &example["responses"]["200"]["body"];
        let pool: AgentPool = serde_json::from_value(body.clone()).unwrap();
        assert!(pool.properties.count.is_some());
        assert_eq!(&serde_json::to_value(&pool).unwrap(), body);
    }

    #[test]
    fn gpu_sizes() {
        assert_eq!(gpus_per_node("Standard_NC6s_v3"), 1);
        assert_eq!(gpus_per_node("Standard_NC24ads_A100_v4"), 1);
        assert_eq!(gpus_per_node("Standard_D8s_v3"), 0);
    }
}
