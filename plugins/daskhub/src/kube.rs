//! Kubernetes requests of this plugin, through the host's Kubernetes service.

use deckhand_plugin_sdk::abi::proto::KubeRequest;
use deckhand_plugin_sdk::{Ctx, HostError, PluginError};
use serde_json::Value;

pub fn request(
    cluster: &str,
    verb: &str,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> KubeRequest {
    KubeRequest {
        cluster: cluster.into(),
        verb: verb.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(namespace.into()),
        ..Default::default()
    }
}

/// Objects of `kind` in `namespace` (with a label selector when given).
pub fn list(
    ctx: &Ctx,
    cluster: &str,
    api_version: &str,
    kind: &str,
    namespace: &str,
    selector: Option<&str>,
) -> Result<Vec<Value>, HostError> {
    let mut request = request(cluster, "list", api_version, kind, namespace);
    request.label_selector = selector.map(str::to_owned);
    let response = ctx.kube(request)?;
    Ok(response.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// One object, or `None` when Kubernetes answers 404.
pub fn get(
    ctx: &Ctx,
    cluster: &str,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, HostError> {
    let mut request = request(cluster, "get", api_version, kind, namespace);
    request.name = Some(name.into());
    match ctx.kube(request) {
        Ok(response) => Ok(Some(response.body)),
        Err(e) if e.status == Some(404) || e.code == "not_found" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Server-side apply of `object` (its apiVersion, kind, namespace and name are its own).
pub fn apply(ctx: &Ctx, cluster: &str, object: Value) -> Result<Value, HostError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
    let name = object["metadata"]["name"].as_str().map(str::to_owned);
    let response = ctx.kube(KubeRequest {
        cluster: cluster.into(),
        verb: "apply".into(),
        api_version,
        kind,
        namespace,
        name,
        body: Some(object),
        force: true,
        ..Default::default()
    })?;
    Ok(response.body)
}

/// Deletes one object; `false` when it was not there.
pub fn delete(
    ctx: &Ctx,
    cluster: &str,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<bool, HostError> {
    let mut request = request(cluster, "delete", api_version, kind, namespace);
    request.name = Some(name.into());
    match ctx.kube(request) {
        Ok(_) => Ok(true),
        Err(e) if e.status == Some(404) || e.code == "not_found" => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A failed Kubernetes call in words, keeping the host's codes.
pub fn failure(error: HostError, doing: &str) -> PluginError {
    let message = format!("{doing}: {}", error.message);
    PluginError::from_host(error, message)
}
