//! Kubernetes reads through the host: the virtual nodes, the pods on a node, node readiness.

use deckhand_plugin_sdk::abi::proto::KubeRequest;
use deckhand_plugin_sdk::{Ctx, PluginError};
use deckhand_plugin_shared::placement::VIRTUAL_NODE_LABEL;
use serde_json::Value;

pub(crate) fn kube_request(cluster: &str, verb: &str, kind: &str) -> KubeRequest {
    KubeRequest {
        cluster: cluster.into(),
        verb: verb.into(),
        api_version: "v1".into(),
        kind: kind.into(),
        ..Default::default()
    }
}

pub(crate) fn virtual_nodes(ctx: &Ctx, kube: &str) -> Result<Vec<Value>, PluginError> {
    let mut request = kube_request(kube, "list", "Node");
    request.label_selector = Some(format!("{}={}", VIRTUAL_NODE_LABEL.0, VIRTUAL_NODE_LABEL.1));
    Ok(ctx.kube(request)?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

pub(crate) fn pods_on(ctx: &Ctx, kube: &str, node: &str) -> Result<Vec<Value>, PluginError> {
    let mut request = kube_request(kube, "list", "Pod");
    request.field_selector = Some(format!("spec.nodeName={node}"));
    Ok(ctx.kube(request)?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

pub(crate) fn ready(node: &Value) -> (bool, String) {
    let condition = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match condition {
        Some(c) if c["status"] == "True" => (true, "Ready".into()),
        Some(c) => (
            false,
            format!(
                "NOT Ready ({}: {})",
                c["reason"].as_str().unwrap_or("unknown"),
                c["message"].as_str().unwrap_or("")
            ),
        ),
        None => (false, "NOT Ready (no Ready condition reported)".into()),
    }
}
