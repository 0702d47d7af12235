//! Kubernetes for plugins: one client per configured cluster — from an AKS cluster's
//! `listClusterUserCredential`, a kubeconfig file/context, or the in-cluster service account —
//! cached, and rebuilt when the API server stops accepting its credentials. Requests use kube's
//! dynamic API, so plugins can address any kind; writes use one field manager, `deckhand`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use deckhand_plugin_abi::proto::{ArmRequest, HostError, KubeRequest};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use tokio::sync::Mutex;

use super::arm::{ArmClient, CallContext};
use super::config::{ClusterConfig, ClusterSource, RetryConfig};

/// The field manager of every server-side apply Deckhand makes.
pub const FIELD_MANAGER: &str = "deckhand";

/// api-version used for `listClusterUserCredential`.
const AKS_API_VERSION: &str = "2026-08-01";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "no cluster named {name} is configured (configured: {known}); add it under [[kubernetes.clusters]]"
    )]
    UnknownCluster { name: String, known: String },
    #[error("cluster {cluster}: {message}")]
    Credentials { cluster: String, message: String },
    /// `what` is e.g. `get ConfigMap default/studioml-env`.
    #[error("cluster {cluster}: {what}: {reason}: {message} (HTTP {status})")]
    Api {
        cluster: String,
        what: String,
        status: u16,
        reason: String,
        message: String,
    },
    #[error("cluster {cluster}: {message}")]
    Request { cluster: String, message: String },
    #[error("bad Kubernetes request: {0}")]
    BadRequest(String),
}

impl From<KubeError> for HostError {
    fn from(error: KubeError) -> HostError {
        let message = error.to_string();
        match error {
            KubeError::Api { status, reason, .. } => HostError {
                code: if status == 404 {
                    "not_found".into()
                } else {
                    "kube".into()
                },
                message,
                upstream_code: Some(reason),
                request_id: None,
                status: Some(status),
            },
            KubeError::UnknownCluster { .. } | KubeError::BadRequest(_) => {
                HostError::new("bad_request", message)
            }
            KubeError::Credentials { .. } => HostError::new("auth", message),
            KubeError::Request { .. } => HostError::new("unavailable", message),
        }
    }
}

pub struct Clusters {
    configs: Vec<ClusterConfig>,
    arm: Option<Arc<ArmClient>>,
    /// The same retry policy as ARM and the registries (attempts, backoff, Retry-After).
    retry: RetryConfig,
    clients: Mutex<HashMap<String, kube::Client>>,
}

impl Clusters {
    pub fn new(
        configs: Vec<ClusterConfig>,
        arm: Option<Arc<ArmClient>>,
        retry: RetryConfig,
    ) -> Clusters {
        Clusters {
            configs,
            arm,
            retry,
            clients: Mutex::default(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.name.clone()).collect()
    }

    /// A client for the named cluster, built on first use and cached.
    pub async fn client(&self, name: &str) -> Result<kube::Client, KubeError> {
        if let Some(client) = self.clients.lock().await.get(name) {
            return Ok(client.clone());
        }
        let client = self.build(name).await?;
        self.clients
            .lock()
            .await
            .insert(name.to_owned(), client.clone());
        Ok(client)
    }

    /// Forgets a cached client (its credentials were refused).
    pub async fn forget(&self, name: &str) {
        self.clients.lock().await.remove(name);
    }

    async fn build(&self, name: &str) -> Result<kube::Client, KubeError> {
        let config = self
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| KubeError::UnknownCluster {
                name: name.to_owned(),
                known: if self.configs.is_empty() {
                    "none".into()
                } else {
                    self.names().join(", ")
                },
            })?;
        let credentials = |message: String| KubeError::Credentials {
            cluster: name.to_owned(),
            message,
        };
        let source = config.source().map_err(credentials)?;
        let client_config = match source {
            ClusterSource::Aks(aks) => {
                let kubeconfig = self
                    .aks_kubeconfig(&aks.resource_group, &aks.cluster)
                    .await
                    .map_err(credentials)?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| credentials(format!("the AKS kubeconfig is unusable: {e}")))?
            }
            ClusterSource::Kubeconfig { path, context } => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    credentials(format!("cannot read kubeconfig {}: {e}", path.display()))
                })?;
                let options = KubeConfigOptions {
                    context: context.map(str::to_owned),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| credentials(format!("kubeconfig {}: {e}", path.display())))?
            }
            ClusterSource::InCluster => kube::Config::incluster()
                .map_err(|e| credentials(format!("in-cluster config: {e}")))?,
        };
        build_client(client_config, &self.retry)
            .map_err(|e| credentials(format!("cannot build a client: {e}")))
    }

    /// `listClusterUserCredential` → the first kubeconfig it returns.
    async fn aks_kubeconfig(
        &self,
        resource_group: &str,
        cluster: &str,
    ) -> Result<Kubeconfig, String> {
        let arm = self
            .arm
            .as_ref()
            .ok_or("AKS clusters need an [azure] section for their credentials")?;
        let never = || false;
        let ignore = |_: String| {};
        let cx = CallContext {
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
            progress: &ignore,
            cancelled: &never,
        };
        let address = deckhand_cloud_names::ArmPath::resource_group(resource_group)
            .and_then(|p| p.provider("Microsoft.ContainerService"))
            .and_then(|p| p.resource("managedClusters", cluster))
            .and_then(|p| p.action("listClusterUserCredential"))
            .map_err(|e| format!("[[kubernetes.clusters]] names an unusable AKS cluster: {e}"))?;
        let request = ArmRequest {
            method: "POST".into(),
            path: address.to_string(),
            api_version: AKS_API_VERSION.into(),
            body: None,
            wait: true,
            label: None,
        };
        let response = arm.call(&request, &cx).await.map_err(|e| e.to_string())?;
        let encoded = response
            .body
            .pointer("/kubeconfigs/0/value")
            .and_then(Value::as_str)
            .ok_or("listClusterUserCredential returned no kubeconfig")?;
        let yaml = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("kubeconfig is not base64: {e}"))?;
        Kubeconfig::from_yaml(&String::from_utf8_lossy(&yaml))
            .map_err(|e| format!("kubeconfig is not valid: {e}"))
    }

    /// Runs one plugin request; a 401 rebuilds the client once (expired credentials).
    /// Runs one plugin request within `limit`; a 401 rebuilds the client once (expired
    /// credentials).
    pub async fn request(
        &self,
        request: &KubeRequest,
        limit: std::time::Duration,
    ) -> Result<Value, KubeError> {
        check_path(request).map_err(|e| KubeError::BadRequest(e.to_string()))?;
        let attempt = async {
            let client = self.client(&request.cluster).await?;
            match execute(client, request).await {
                Err(KubeError::Api { status: 401, .. }) => {
                    self.forget(&request.cluster).await;
                    let client = self.client(&request.cluster).await?;
                    execute(client, request).await
                }
                other => other,
            }
        };
        // A stopped or unreachable API server must not hold the call until the plugin's own
        // time limit: the host bounds every request.
        let result = tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
            Err(KubeError::Request {
                cluster: request.cluster.clone(),
                message: format!(
                    "the API server did not answer {} {} within {} s (is the cluster stopped or unreachable?)",
                    request.verb,
                    request.kind,
                    limit.as_secs()
                ),
            })
        });
        deckhand_support::metrics::kube_request(&request.verb, kube_outcome(&result));
        result
    }
}

/// The `outcome` label of a Kubernetes request: `ok`, the HTTP status, or the kind of failure.
fn kube_outcome(result: &Result<Value, KubeError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(KubeError::Api { status, .. }) => match status {
            404 => "404",
            403 => "403",
            409 => "409",
            429 => "429",
            400..=499 => "4xx",
            _ => "5xx",
        },
        Err(KubeError::UnknownCluster { .. }) => "unknown_cluster",
        Err(KubeError::Credentials { .. }) => "credentials",
        Err(KubeError::Request { .. }) => "unreachable",
        Err(KubeError::BadRequest(_)) => "bad_request",
    }
}

/// A client on the cloud request policy (`[azure.retry]`): kube's default layer retries
/// 429/503/504 up to 15 times with backoff growing toward 1000 s (right for controllers, but a
/// stopped cluster would hold a chat command for minutes); this one makes the same attempts,
/// with the same backoff and `Retry-After`, as ARM and the registries, and every request is
/// also bounded by its command's time (see [`Clusters::request`]).
fn build_client(
    mut config: kube::Config,
    retry: &RetryConfig,
) -> Result<kube::Client, kube::Error> {
    use kube::client::ClientBuilder;
    use kube::client::retry::RetryPolicy;
    config.default_retry = false;
    let policy = RetryPolicy::new(
        retry.base_delay,
        retry.max_delay.max(retry.base_delay),
        retry.max_attempts.saturating_sub(1),
        true,
    )
    .unwrap_or_default();
    let builder = ClientBuilder::try_from(config)?;
    // Retry needs a cloneable service: a buffer in front of the boxed stack makes it one.
    Ok(builder
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(policy))
        .build())
}

/// The Kubernetes client joins these into the URL as they are: refuse anything that could
/// change the path before a client is even built.
fn check_path(request: &KubeRequest) -> Result<(), deckhand_cloud_names::kube::KubePathError> {
    use deckhand_cloud_names::kube::{check_namespace, check_path_segment};
    if let Some(namespace) = &request.namespace {
        check_namespace(namespace)?;
    }
    if let Some(name) = &request.name {
        check_path_segment("object name", name)?;
    }
    if let Some(sub) = &request.subresource {
        check_path_segment("subresource", sub)?;
    }
    if let Some(container) = &request.container {
        check_path_segment("container", container)?;
    }
    check_path_segment("kind", &request.kind)?;
    for part in request.api_version.split('/') {
        check_path_segment("api version", part)?;
    }
    Ok(())
}

fn api_resource(request: &KubeRequest) -> ApiResource {
    let (group, version) = request
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", request.api_version.as_str()));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, &request.kind),
        &super::resource::plural(&request.kind),
    )
}

async fn execute(client: kube::Client, request: &KubeRequest) -> Result<Value, KubeError> {
    let resource = api_resource(request);
    let api: Api<DynamicObject> = match &request.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let name = || {
        request
            .name
            .clone()
            .ok_or_else(|| KubeError::BadRequest(format!("{} needs a name", request.verb)))
    };
    let body = || {
        request
            .body
            .clone()
            .ok_or_else(|| KubeError::BadRequest(format!("{} needs a body", request.verb)))
    };
    let object = |value: Value| -> Result<DynamicObject, KubeError> {
        serde_json::from_value(value)
            .map_err(|e| KubeError::BadRequest(format!("body is not a Kubernetes object: {e}")))
    };
    let fail = |e: kube::Error| describe(e, request);
    let to_value = |o: DynamicObject| serde_json::to_value(o).expect("objects serialize");
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match request.verb.as_str() {
        "get" => match &request.subresource {
            Some(sub) => api
                .get_subresource(sub, &name()?)
                .await
                .map(to_value)
                .map_err(fail),
            None => api.get(&name()?).await.map(to_value).map_err(fail),
        },
        "list" => {
            let mut params = ListParams::default();
            if let Some(selector) = &request.label_selector {
                params = params.labels(selector);
            }
            if let Some(selector) = &request.field_selector {
                params = params.fields(selector);
            }
            let list = api.list(&params).await.map_err(fail)?;
            Ok(serde_json::json!({
                "items": list.items.into_iter().map(to_value).collect::<Vec<_>>(),
                "resourceVersion": list.metadata.resource_version,
            }))
        }
        "create" => api
            .create(&post, &object(body()?)?)
            .await
            .map(to_value)
            .map_err(fail),
        "replace" => match &request.subresource {
            Some(sub) => api
                .replace_subresource(sub, &name()?, &post, &body()?)
                .await
                .map(to_value)
                .map_err(fail),
            None => api
                .replace(&name()?, &post, &object(body()?)?)
                .await
                .map(to_value)
                .map_err(fail),
        },
        "patch" => {
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let patch = Patch::Merge(body()?);
            match &request.subresource {
                Some(sub) => api
                    .patch_subresource(sub, &name()?, &params, &patch)
                    .await
                    .map(to_value)
                    .map_err(fail),
                None => api
                    .patch(&name()?, &params, &patch)
                    .await
                    .map(to_value)
                    .map_err(fail),
            }
        }
        "apply" => {
            let mut params = PatchParams::apply(FIELD_MANAGER);
            if request.force {
                params = params.force();
            }
            api.patch(&name()?, &params, &Patch::Apply(body()?))
                .await
                .map(to_value)
                .map_err(fail)
        }
        "delete" => {
            let deleted = api
                .delete(&name()?, &DeleteParams::default())
                .await
                .map_err(fail)?;
            Ok(deleted.either(to_value, |status| {
                serde_json::to_value(status).expect("status serializes")
            }))
        }
        "logs" => {
            let namespace = request.namespace.as_deref().unwrap_or("default");
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, namespace);
            let params = LogParams {
                container: request.container.clone(),
                tail_lines: request.tail_lines,
                ..Default::default()
            };
            pods.logs(&name()?, &params)
                .await
                .map(Value::String)
                .map_err(fail)
        }
        other => Err(KubeError::BadRequest(format!(
            "unknown verb {other:?}; use get, list, create, replace, patch, apply, delete or logs"
        ))),
    }
}

fn describe(error: kube::Error, request: &KubeRequest) -> KubeError {
    let target = match (&request.namespace, &request.name) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.clone(),
        (Some(ns), None) => format!("in {ns}"),
        (None, None) => "(all)".into(),
    };
    match error {
        kube::Error::Api(response) => KubeError::Api {
            cluster: request.cluster.clone(),
            what: format!("{} {} {target}", request.verb, request.kind),
            status: response.code,
            reason: response.reason.clone(),
            message: response.message.clone(),
        },
        other => KubeError::Request {
            cluster: request.cluster.clone(),
            message: other.to_string(),
        },
    }
}
