//! Typed models of the ARM resources Deckhand manages, with the api-versions it speaks. Fields
//! follow the REST API (camelCase); unknown fields are kept in `extra` so a read-modify-write
//! never drops what Azure sent.

pub use deckhand_cloud_names::{ArmPath, ArmPathError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// api-versions (newest stable with examples in ../shared/azure-examples).
pub const AKS_API: &str = "2026-08-01";
pub const ACR_API: &str = "2025-11-01";
pub const ACR_TASKS_API: &str = "2019-04-01";
pub const ACI_API: &str = "2025-09-01";
pub const RESOURCES_API: &str = "2025-04-01";

/// `/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}`, each
/// name checked and encoded (see [`ArmPath`]).
pub fn cluster_address(resource_group: &str, cluster: &str) -> Result<ArmPath, ArmPathError> {
    ArmPath::resource_group(resource_group)?
        .provider("Microsoft.ContainerService")?
        .resource("managedClusters", cluster)
}

/// The AKS clusters of a resource group, or of the whole subscription when none is given:
/// `[/resourceGroups/{rg}]/providers/Microsoft.ContainerService/managedClusters`.
pub fn clusters_address(resource_group: Option<&str>) -> Result<ArmPath, ArmPathError> {
    match resource_group {
        Some(rg) => ArmPath::resource_group(rg)?.provider("Microsoft.ContainerService"),
        None => ArmPath::subscription_provider("Microsoft.ContainerService"),
    }?
    .collection("managedClusters")
}

pub fn cluster_path(resource_group: &str, cluster: &str) -> Result<String, ArmPathError> {
    cluster_address(resource_group, cluster).map(|a| a.to_string())
}

pub fn pool_path(resource_group: &str, cluster: &str, pool: &str) -> Result<String, ArmPathError> {
    Ok(cluster_address(resource_group, cluster)?
        .resource("agentPools", pool)?
        .to_string())
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_pool_profiles: Vec<AgentPoolProperties>,
    /// Add-ons, e.g. `aciConnectorLinux` (virtual nodes): `{"enabled": bool, "config": {...}}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
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

/// A resource group (`Microsoft.Resources/resourceGroups`).
pub type ResourceGroup = Resource<ResourceGroupProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A container registry (`Microsoft.ContainerRegistry/registries`).
pub type Registry = Resource<RegistryProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An ACR task run (`registries/runs`), as `scheduleRun` and its polling return it.
pub type Run = Resource<RunProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Queued, Started, Running, Succeeded, Failed, Canceled, Error, Timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_images: Option<Vec<Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An ACI container group (`Microsoft.ContainerInstance/containerGroups`), as the virtual node
/// creates them.
pub type ContainerGroup = Resource<ContainerGroupProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroupProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A role assignment (`Microsoft.Authorization/roleAssignments`), e.g. AcrPull for a cluster's
/// kubelet identity.
pub type RoleAssignment = Resource<RoleAssignmentProperties>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
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

    fn example_body(file: &str, status: &str) -> Value {
        let path = format!(
            "{}/../../../shared/azure-examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let example: Value = serde_json::from_str(&text).unwrap();
        example["responses"][status]["body"].clone()
    }

    /// Every model reads its real example and writes it back unchanged.
    #[test]
    fn models_round_trip_the_real_examples() {
        fn check<T: serde::de::DeserializeOwned + Serialize>(body: Value) {
            let model: T = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(serde_json::to_value(&model).unwrap(), body);
        }
        check::<ManagedCluster>(example_body("aks/ManagedClustersGet.json", "200"));
        check::<ResourceGroup>(example_body("resources/ResourceGroups_Get.json", "200"));
        check::<Registry>(example_body("acr/RegistryGet.json", "200"));
        check::<ContainerGroup>(example_body("aci/ContainerGroupsGet_Succeeded.json", "200"));
        check::<List<AgentPool>>(example_body("aks/AgentPoolsList.json", "200"));
    }

    #[test]
    fn gpu_sizes() {
        assert_eq!(gpus_per_node("Standard_NC6s_v3"), 1);
        assert_eq!(gpus_per_node("Standard_NC24ads_A100_v4"), 1);
        assert_eq!(gpus_per_node("Standard_D8s_v3"), 0);
    }
}
