//! `/runner deploy`: what seed 002's kustomize creates, by server-side apply —
//! the `studioml-env` ConfigMap (`AMQP_URL` without credentials) and the runner Deployment on
//! the GPU pool (`nvidia.com/gpu`, the pool's taints tolerated, a node selector for the pool),
//! whose `AMQP_URL` takes user and password from a Secret at pod start. Deckhand never reads
//! or writes the password.

use deckhand_plugin_sdk::abi::proto::{
    ArmRequest, KubeRequest, NameRule, RegistryRequest, RegistryResponse,
};
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, PluginError, Reply};
use deckhand_plugin_shared::azure::{AKS_API, AgentPool, gpus_per_node, pool_path};
use deckhand_plugin_shared::placement::{GPU_RESOURCE, Placement, apply_to_pod_spec};
use serde_json::{Value, json};

use crate::commands::Deploy;
use crate::{RunnerConfig, config_error};

/// The ConfigMap seed 002 creates.
pub const CONFIG_MAP: &str = "studioml-env";
/// The container's name in the Deployment.
const CONTAINER: &str = "studioml-go-runner";
/// Most runner pods one command may ask for.
pub(crate) const MAX_REPLICAS: i64 = 100;

/// The deploy-related part of `[plugins.config.runner]`, checked at init.
#[derive(Debug, Clone)]
pub struct Settings {
    amqp_url: Option<url::Url>,
    credentials_secret: String,
    pull_secret: Option<String>,
    image: Option<String>,
    pub pool: String,
    pub(crate) namespace: String,
    pub(crate) deployment: String,
}

/// The cluster a command acts on.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: String,
    pub resource_group: String,
    /// Its `[[kubernetes.clusters]]` name.
    pub kube: String,
}

impl Settings {
    pub fn from_config(config: &RunnerConfig) -> Result<Settings, PluginError> {
        let amqp_url = match config.amqp_url.as_deref() {
            None => None,
            Some(text) => {
                let url = url::Url::parse(text).map_err(|e| {
                    config_error("amqp_url", format!("amqp_url {text:?} is not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "amqp" | "amqps") || url.host_str().is_none() {
                    return Err(config_error(
                        "amqp_url",
                        format!("amqp_url {text:?} must be amqp://HOST:PORT/VHOST"),
                    ));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(config_error(
                        "amqp_url",
                        "amqp_url must not carry a user or password: the runners read them from credentials_secret".into(),
                    ));
                }
                Some(url)
            }
        };
        for (key, value) in [
            (
                "credentials_secret",
                Some(config.credentials_secret.as_str()),
            ),
            ("pull_secret", config.pull_secret.as_deref()),
            ("namespace", Some(config.namespace.as_str())),
            ("deployment", Some(config.deployment.as_str())),
        ] {
            if let Some(value) = value
                && let Err(e) = NameRule::KubeName.check(value)
            {
                return Err(config_error(key, format!("{key}: {e}")));
            }
        }
        if let Some(image) = &config.image {
            Image::parse(image)
                .map_err(|e| config_error("image", format!("image: {}", e.message)))?;
        }
        Ok(Settings {
            amqp_url,
            credentials_secret: config.credentials_secret.clone(),
            pull_secret: config.pull_secret.clone(),
            image: config.image.clone(),
            pool: config.pool.clone(),
            namespace: config.namespace.clone(),
            deployment: config.deployment.clone(),
        })
    }
}

/// REGISTRY/REPOSITORY:TAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

impl Image {
    pub fn parse(text: &str) -> Result<Image, PluginError> {
        let bad = |why: &str| {
            PluginError::bad_input(
                "image",
                format!(
                    "--image {text:?}: {why}; give REGISTRY/REPOSITORY:TAG, e.g. intens.azurecr.io/studio-go-runner:0.9.21"
                ),
            )
        };
        let (registry, rest) = text.split_once('/').ok_or_else(|| bad("no registry"))?;
        if !registry.contains('.') && !registry.contains(':') {
            return Err(bad("the part before the first '/' must be a registry host"));
        }
        let (repository, tag) = rest.rsplit_once(':').ok_or_else(|| bad("no :TAG"))?;
        NameRule::Repository
            .check(repository)
            .and_then(|()| NameRule::ImageTag.check(tag))
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Image {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }

    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

pub(crate) fn kube(target: &Target, verb: &str, api_version: &str, kind: &str) -> KubeRequest {
    KubeRequest {
        cluster: target.kube.clone(),
        verb: verb.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

/// The Deployment, or None if it does not exist.
pub(crate) fn get_deployment(
    ctx: &Ctx,
    settings: &Settings,
    target: &Target,
) -> Result<Option<Value>, PluginError> {
    let mut request = kube(target, "get", "apps/v1", "Deployment");
    request.namespace = Some(settings.namespace.clone());
    request.name = Some(settings.deployment.clone());
    match ctx.kube(request) {
        Ok(response) => Ok(Some(response.body)),
        Err(e) if e.status == Some(404) || e.code == "not_found" => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn not_deployed(settings: &Settings, target: &Target) -> PluginError {
    PluginError::new(
        ErrorCode::NotFound,
        format!(
            "studio-go-runner is not deployed: no Deployment {}/{} on {} (`/runner deploy` creates it)",
            settings.namespace, settings.deployment, target.cluster
        ),
    )
}

pub fn read_pool(ctx: &Ctx, target: &Target, pool: &str) -> Result<AgentPool, PluginError> {
    let path = pool_path(&target.resource_group, &target.cluster, pool)
        .map_err(|e| PluginError::bad_input("pool", e.to_string()))?;
    let response = ctx
        .arm(ArmRequest {
            method: "GET".into(),
            path,
            api_version: AKS_API.into(),
            ..Default::default()
        })
        .map_err(|e| {
            if e.status == Some(404) {
                PluginError::bad_input(
                    "pool",
                    format!(
                        "cluster {} has no node pool {pool}: add a GPU pool first (`/aks pool add {pool} --vm-size Standard_NC6s_v3`) or name another with --pool",
                        target.cluster
                    ),
                )
            } else {
                e.into()
            }
        })?;
    serde_json::from_value(response.body).map_err(|e| {
        PluginError::new(
            ErrorCode::Protocol,
            format!("node pool {pool} has an unexpected shape: {e}"),
        )
    })
}

/// `key=value:Effect` taints of the pool as tolerations (the GPU one comes from placement).
fn tolerations_for(pool: &AgentPool) -> Vec<Value> {
    pool.properties
        .node_taints
        .iter()
        .flatten()
        .filter_map(|taint| {
            let (kv, effect) = taint.split_once(':')?;
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            (key != GPU_RESOURCE).then(|| {
                if value.is_empty() {
                    json!({"key": key, "operator": "Exists", "effect": effect})
                } else {
                    json!({"key": key, "operator": "Equal", "value": value, "effect": effect})
                }
            })
        })
        .collect()
}

/// The NVIDIA device plugin DaemonSet (any namespace), by name.
fn device_plugin(ctx: &Ctx, target: &Target) -> Result<Option<String>, PluginError> {
    let list = ctx.kube(kube(target, "list", "apps/v1", "DaemonSet"))?;
    Ok(list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("nvidia-device-plugin"))
        })
        .map(|d| {
            format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap_or("default"),
                d["metadata"]["name"].as_str().unwrap_or_default()
            )
        }))
}

/// `amqp://$(AMQP_USER):$(AMQP_PASSWORD)@host:port/vhost`: Kubernetes expands the two
/// variables (set from the Secret just before) when the container starts.
fn url_with_secret_refs(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://$(AMQP_USER):$(AMQP_PASSWORD)@{host}{port}{}",
        url.scheme(),
        url.path()
    )
}

fn config_map(settings: &Settings, amqp_url: &url::Url) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": "deckhand"}},
        "data": {"AMQP_URL": amqp_url.as_str()}
    })
}

fn deployment(
    settings: &Settings,
    image: &Image,
    amqp_url: &url::Url,
    pool: &AgentPool,
    pool_name: &str,
    replicas: i64,
    gpus: u32,
) -> Value {
    let secret = &settings.credentials_secret;
    let mut pod = json!({
        "containers": [{
            "name": CONTAINER,
            "image": image.reference(),
            "imagePullPolicy": "IfNotPresent",
            "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
            "env": [
                {"name": "AMQP_USER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "username"}}},
                {"name": "AMQP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}},
                {"name": "AMQP_URL", "value": url_with_secret_refs(amqp_url)}
            ]
        }],
        "tolerations": tolerations_for(pool)
    });
    if let Some(pull) = &settings.pull_secret {
        pod["imagePullSecrets"] = json!([{"name": pull}]);
    }
    apply_to_pod_spec(
        &mut pod,
        &Placement::Gpu {
            pool: pool_name.to_owned(),
            gpus,
        },
    );
    let labels = json!({"app": settings.deployment});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": settings.deployment, "namespace": settings.namespace,
            "labels": {"app": settings.deployment, "app.kubernetes.io/managed-by": "deckhand"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod}
        }
    })
}

fn apply(ctx: &Ctx, target: &Target, object: Value) -> Result<Value, HostError> {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let mut request = kube(
        target,
        "apply",
        object["apiVersion"].as_str().unwrap_or_default(),
        &kind,
    );
    request.namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
    request.name = object["metadata"]["name"].as_str().map(str::to_owned);
    request.body = Some(object);
    Ok(ctx.kube(request)?.body)
}

fn generation(object: &Value) -> i64 {
    object["metadata"]["generation"].as_i64().unwrap_or(0)
}

pub fn deploy(
    ctx: &Ctx,
    settings: &Settings,
    target: &Target,
    args: &Deploy,
) -> Result<Reply, PluginError> {
    // Input first, before anything is asked of the cloud.
    let image_text = args.image.as_deref().or(settings.image.as_deref()).ok_or_else(|| {
        PluginError::bad_input(
            "image",
            "no image given and none configured: pass --image REGISTRY/REPOSITORY:TAG or set image in [plugins.config.runner]",
        )
    })?;
    let image = Image::parse(image_text)?;
    if let Some(replicas) = args.replicas
        && !(0..=MAX_REPLICAS).contains(&replicas)
    {
        return Err(PluginError::bad_input(
            "replicas",
            format!("--replicas {replicas}: give 0 to {MAX_REPLICAS} runner pods"),
        ));
    }
    let amqp_url = settings.amqp_url.as_ref().ok_or_else(|| {
        config_error(
            "amqp_url",
            "amqp_url is not set: the runners need the broker's address (amqp://HOST:5672/, no credentials)".into(),
        )
    })?;
    let pool_name = args.pool.as_deref().unwrap_or(&settings.pool);

    // Checks, in the order a person would make them; nothing is applied until all pass.
    ctx.progress(format!("Checking {} in the registry", image.reference()));
    check_tag(ctx, &image)?;
    let pool = read_pool(ctx, target, pool_name)?;
    let vm_size = pool.properties.vm_size.clone().unwrap_or_default();
    let per_node = gpus_per_node(&vm_size);
    if per_node == 0 {
        return Err(PluginError::bad_input(
            "pool",
            format!(
                "node pool {pool_name} runs {vm_size}, which has no GPU: name a GPU pool with --pool"
            ),
        ));
    }
    let gpus = u32::try_from(args.gpus)
        .ok()
        .filter(|g| (1..=per_node).contains(g))
        .ok_or_else(|| {
            PluginError::bad_input(
                "gpus",
                format!(
                    "--gpus {}: a {vm_size} node has {per_node} GPU(s); give 1 to {per_node}",
                    args.gpus
                ),
            )
        })?;
    let Some(device_plugin) = device_plugin(ctx, target)? else {
        return Err(PluginError::new(
            ErrorCode::Precondition,
            format!(
                "cluster {} has no NVIDIA device plugin DaemonSet, so no node offers {GPU_RESOURCE} and the runners would stay Pending: apply NVIDIA's nvidia-device-plugin DaemonSet (seed 002: `kubectl create namespace gpu-resources` then `kubectl apply -f nvidia-device-plugin-ds.yaml`) and deploy again",
                target.cluster
            ),
        ));
    };
    let existing = get_deployment(ctx, settings, target)?;
    let replicas = args.replicas.unwrap_or_else(|| {
        existing
            .as_ref()
            .and_then(|d| d["spec"]["replicas"].as_i64())
            .unwrap_or(1)
    });

    ctx.progress(format!(
        "Applying ConfigMap {CONFIG_MAP} and Deployment {}",
        settings.deployment
    ));
    apply(ctx, target, config_map(settings, amqp_url))?;
    let applied = apply(
        ctx,
        target,
        deployment(settings, &image, amqp_url, &pool, pool_name, replicas, gpus),
    )?;
    let change = match &existing {
        None => "created",
        Some(before) if generation(before) == generation(&applied) => {
            "unchanged (already as asked)"
        }
        Some(_) => "updated",
    };
    let pull = match &settings.pull_secret {
        Some(secret) => format!("pulls with secret {secret}"),
        None => format!(
            "pulls with the cluster's AcrPull identity (`/acr attach` if {} is not attached)",
            image.registry
        ),
    };
    Ok(Reply::text(format!(
        "Runner Deployment {ns}/{name} on {cluster} {change}: {replicas} pod(s) of {image}, {gpus} GPU each, on pool {pool_name} ({vm_size}; NVIDIA device plugin {device_plugin}). ConfigMap {CONFIG_MAP} holds AMQP_URL {url} (no credentials); the pods take user and password from Secret {secret} (keys username, password), which Deckhand never reads — create it once with `kubectl create secret generic {secret} --from-literal=username=… --from-literal=password=…` if it does not exist. Image {pull}. `/runner status` shows the pods.",
        ns = settings.namespace,
        name = settings.deployment,
        cluster = target.cluster,
        image = image.reference(),
        url = amqp_url,
        secret = settings.credentials_secret,
    )))
}

fn check_tag(ctx: &Ctx, image: &Image) -> Result<(), PluginError> {
    let found = ctx.registry(RegistryRequest {
        registry: image.registry.clone(),
        op: "manifest".into(),
        repository: Some(image.repository.clone()),
        reference: Some(image.tag.clone()),
    });
    match found {
        Ok(RegistryResponse::Manifest { .. }) => Ok(()),
        Ok(_) => Err(PluginError::new(
            ErrorCode::Protocol,
            "the registry service answered something other than a manifest",
        )),
        Err(e) if e.status == Some(404) || e.code == "not_found" => {
            let tags = match ctx.registry(RegistryRequest {
                registry: image.registry.clone(),
                op: "tags".into(),
                repository: Some(image.repository.clone()),
                reference: None,
            }) {
                Ok(RegistryResponse::Tags { tags, .. }) if !tags.is_empty() => {
                    let last: Vec<&str> = tags.iter().rev().take(5).map(String::as_str).collect();
                    format!("its tags include {}", last.join(", "))
                }
                _ => "the repository has no tags there".to_owned(),
            };
            Err(PluginError::bad_input(
                "image",
                format!(
                    "{} is not in registry {} ({tags}); nothing was applied",
                    image.reference(),
                    image.registry
                ),
            ))
        }
        Err(e) => {
            let message = format!(
                "cannot check {} in the registry: {}",
                image.reference(),
                e.message
            );
            Err(PluginError::from_host(e, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_parse_or_say_what_is_wrong() {
        let image = Image::parse("intens.azurecr.io/leafai/studio-go-runner:0.9.21").unwrap();
        assert_eq!(image.registry, "intens.azurecr.io");
        assert_eq!(image.repository, "leafai/studio-go-runner");
        assert_eq!(image.tag, "0.9.21");
        assert_eq!(
            image.reference(),
            "intens.azurecr.io/leafai/studio-go-runner:0.9.21"
        );
        for (bad, why) in [
            ("studio-go-runner:1", "no registry"),
            ("runner/x:1", "registry host"),
            ("intens.azurecr.io/x", "no :TAG"),
            ("intens.azurecr.io/X:1", "repository"),
            ("intens.azurecr.io/x:-1", "tag"),
            ("intens.azurecr.io/../x:1", "repository"),
            ("intens.azurecr.io/x:1;rm", "tag"),
        ] {
            let e = Image::parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert_eq!(e.option.as_deref(), Some("image"));
        }
    }

    #[test]
    fn the_runner_url_refers_to_the_secret_not_the_password() {
        let url = url::Url::parse("amqp://10.0.0.4:5672/%2f").unwrap();
        assert_eq!(
            url_with_secret_refs(&url),
            "amqp://$(AMQP_USER):$(AMQP_PASSWORD)@10.0.0.4:5672/%2f"
        );
    }
}
