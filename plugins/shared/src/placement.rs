//! Placement rules for AKS: GPU pools, virtual nodes (ACI), Spot pools. A pod spec gets its
//! `nodeSelector`, `tolerations` and resource limits from here, so every plugin places workloads
//! the same way.

use serde_json::{Value, json};

/// The taint AKS puts on GPU pools when asked (and Deckhand does by default for GPU sizes).
pub const GPU_TAINT_KEY: &str = "nvidia.com/gpu";
/// Resource name of NVIDIA GPUs in Kubernetes.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Label AKS puts on every node: its pool.
pub const AGENTPOOL_LABEL: &str = "kubernetes.azure.com/agentpool";
/// Label and taint of Spot pools.
pub const SPOT_KEY: &str = "kubernetes.azure.com/scalesetpriority";
/// The virtual node (Virtual Kubelet on ACI).
pub const VIRTUAL_NODE_LABEL: (&str, &str) = ("type", "virtual-kubelet");
pub const VIRTUAL_NODE_TAINT_KEY: &str = "virtual-kubelet.io/provider";

/// Where a workload should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere the scheduler likes (regular pools).
    Default,
    /// A named pool (e.g. `users`).
    Pool(String),
    /// A GPU pool, with this many GPUs per pod.
    Gpu { pool: String, gpus: u32 },
    /// The virtual node (ACI): no persistent volumes there.
    Virtual,
    /// A Spot pool (may be evicted).
    Spot { pool: String },
}

/// `nodeSelector`, `tolerations`, and extra resource limits for a pod spec.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPlacement {
    pub node_selector: Value,
    pub tolerations: Value,
    /// Limits to merge into the container's `resources.limits`.
    pub limits: Value,
}

pub fn pod_placement(placement: &Placement) -> PodPlacement {
    match placement {
        Placement::Default => PodPlacement {
            node_selector: json!({}),
            tolerations: json!([]),
            limits: json!({}),
        },
        Placement::Pool(pool) => PodPlacement {
            node_selector: json!({ AGENTPOOL_LABEL: pool }),
            tolerations: json!([]),
            limits: json!({}),
        },
        Placement::Gpu { pool, gpus } => PodPlacement {
            node_selector: json!({ AGENTPOOL_LABEL: pool }),
            tolerations: json!([{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]),
            limits: json!({ GPU_RESOURCE: gpus.to_string() }),
        },
        Placement::Virtual => PodPlacement {
            node_selector: json!({ "kubernetes.io/os": "linux", VIRTUAL_NODE_LABEL.0: VIRTUAL_NODE_LABEL.1 }),
            tolerations: json!([
                {"key": VIRTUAL_NODE_TAINT_KEY, "operator": "Exists"},
                {"key": "azure.com/aci", "effect": "NoSchedule"}
            ]),
            limits: json!({}),
        },
        Placement::Spot { pool } => PodPlacement {
            node_selector: json!({ AGENTPOOL_LABEL: pool }),
            tolerations: json!([{"key": SPOT_KEY, "operator": "Equal", "value": "spot", "effect": "NoSchedule"}]),
            limits: json!({}),
        },
    }
}

/// Applies a placement to a pod spec (`spec.template.spec` of a Deployment), merging into what
/// is there.
pub fn apply_to_pod_spec(pod_spec: &mut Value, placement: &Placement) {
    let rules = pod_placement(placement);
    if let Some(selector) = rules.node_selector.as_object() {
        // Indexing a missing key creates it, so this merges into any existing selector.
        for (k, v) in selector {
            pod_spec["nodeSelector"][k] = v.clone();
        }
    }
    if let Some(tolerations) = rules.tolerations.as_array().filter(|t| !t.is_empty()) {
        let mut merged = pod_spec["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        merged.extend(tolerations.iter().cloned());
        pod_spec["tolerations"] = Value::Array(merged);
    }
    if let Some(limits) = rules.limits.as_object().filter(|l| !l.is_empty())
        && let Some(containers) = pod_spec["containers"].as_array_mut()
    {
        for container in containers {
            for (k, v) in limits {
                container["resources"]["limits"][k] = v.clone();
            }
        }
    }
}

/// The default node taints of a new pool: GPU sizes get the GPU taint unless told otherwise.
pub fn default_taints(vm_size: &str) -> Vec<String> {
    if crate::azure::gpus_per_node(vm_size) > 0 {
        vec![format!("{GPU_TAINT_KEY}=present:NoSchedule")]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_placement_selects_tolerates_and_limits() {
        let mut spec = json!({"containers": [{"name": "w", "image": "x"}]});
        apply_to_pod_spec(
            &mut spec,
            &Placement::Gpu {
                pool: "gpu".into(),
                gpus: 1,
            },
        );
        assert_eq!(spec["nodeSelector"][AGENTPOOL_LABEL], "gpu");
        assert_eq!(spec["tolerations"][0]["key"], "nvidia.com/gpu");
        assert_eq!(
            spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            "1"
        );
    }

    #[test]
    fn virtual_node_placement() {
        let mut spec = json!({"containers": [{"name": "w"}], "nodeSelector": {"a": "b"}});
        apply_to_pod_spec(&mut spec, &Placement::Virtual);
        assert_eq!(spec["nodeSelector"]["type"], "virtual-kubelet");
        assert_eq!(spec["nodeSelector"]["a"], "b");
        assert_eq!(spec["tolerations"][0]["key"], VIRTUAL_NODE_TAINT_KEY);
    }

    #[test]
    fn gpu_sizes_get_the_gpu_taint() {
        assert_eq!(
            default_taints("Standard_NC6s_v3"),
            ["nvidia.com/gpu=present:NoSchedule"]
        );
        assert!(default_taints("Standard_D4s_v3").is_empty());
    }
}
