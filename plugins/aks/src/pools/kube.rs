//! Kubernetes reads for `/aks`: nodes, pods and DaemonSets through the host, and the few
//! facts the commands need from them (pool, readiness, GPUs, who runs where).

use deckhand_plugin_sdk::abi::proto::KubeRequest;
use deckhand_plugin_sdk::{Ctx, HostError};
use deckhand_plugin_shared::placement::{AGENTPOOL_LABEL, GPU_RESOURCE};
use serde_json::Value;

fn list(ctx: &Ctx, cluster: &str, api_version: &str, kind: &str) -> Result<Vec<Value>, HostError> {
    let response = ctx.kube(KubeRequest {
        cluster: cluster.into(),
        verb: "list".into(),
        api_version: api_version.into(),
        kind: kind.into(),
        ..Default::default()
    })?;
    Ok(response.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

pub(crate) fn nodes(ctx: &Ctx, cluster: &str) -> Result<Vec<Value>, HostError> {
    list(ctx, cluster, "v1", "Node")
}

/// Pods in all namespaces.
pub(crate) fn pods(ctx: &Ctx, cluster: &str) -> Result<Vec<Value>, HostError> {
    list(ctx, cluster, "v1", "Pod")
}

/// DaemonSets in all namespaces.
pub(crate) fn daemonsets(ctx: &Ctx, cluster: &str) -> Result<Vec<Value>, HostError> {
    list(ctx, cluster, "apps/v1", "DaemonSet")
}

pub(crate) fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub(crate) fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// The AKS pool a node belongs to (`None` for the virtual node).
pub(crate) fn node_pool(node: &Value) -> Option<&str> {
    node["metadata"]["labels"][AGENTPOOL_LABEL].as_str()
}

pub(crate) fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// `nvidia.com/gpu` the node offers to pods (allocatable, else capacity).
pub(crate) fn node_gpus(node: &Value) -> i64 {
    let status = &node["status"];
    quantity(&status["allocatable"][GPU_RESOURCE])
        .or_else(|| quantity(&status["capacity"][GPU_RESOURCE]))
        .unwrap_or(0)
}

pub(crate) fn is_virtual(node: &Value) -> bool {
    node["metadata"]["labels"]["type"] == "virtual-kubelet"
}

/// A whole-number quantity (`"1"`, `1`); GPUs are never fractional.
fn quantity(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Pods that hold or wait for resources (not Succeeded/Failed).
pub(crate) fn is_live(pod: &Value) -> bool {
    !matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

pub(crate) fn from_daemonset(pod: &Value) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["kind"] == "DaemonSet")
}

pub(crate) fn pod_node(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// GPUs a pod asks for: each container's request (its limit stands in for a missing request,
/// as Kubernetes defaults it).
pub(crate) fn pod_gpus(pod: &Value) -> i64 {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let resources = &c["resources"];
            quantity(&resources["requests"][GPU_RESOURCE])
                .or_else(|| quantity(&resources["limits"][GPU_RESOURCE]))
                .unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gpu_requests_default_to_limits() {
        let pod = json!({"spec": {"containers": [
            {"resources": {"limits": {"nvidia.com/gpu": "2"}}},
            {"resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}},
            {"name": "sidecar"}
        ]}});
        assert_eq!(pod_gpus(&pod), 3);
    }

    #[test]
    fn node_facts() {
        let node = json!({
            "metadata": {"labels": {"kubernetes.azure.com/agentpool": "gpu"}},
            "status": {"allocatable": {"nvidia.com/gpu": "1"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        assert_eq!(node_pool(&node), Some("gpu"));
        assert!(node_ready(&node));
        assert_eq!(node_gpus(&node), 1);
    }
}
