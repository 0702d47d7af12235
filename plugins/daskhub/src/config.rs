//! `[plugins.config.daskhub]`: where the hub and the gateway answer, which auth profiles the
//! host signs their calls with, and the release, namespace and node pools of the seed's
//! deployment. No secrets here: tokens live in the host's auth profiles and, for the release's
//! own tokens, in a Kubernetes Secret. Unknown keys are refused (a typo is reported by
//! `deckhand check` with its line).

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{ErrorCode, PluginError};
use deckhand_plugin_shared::target::ClusterDefaults;
use serde::Deserialize;
use serde_json::Value;

/// Auth profiles the plugin may use start with this (`daskhub-hub`, `daskhub-gateway`, ...).
pub const PROFILE_PREFIX: &str = "daskhub";

const SECTION: &str = "[plugins.config.daskhub]";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaskhubConfig {
    /// Resource group of the AKS cluster.
    pub resource_group: Option<String>,
    /// AKS cluster used when a command names no `--cluster`.
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    pub kube_cluster: Option<String>,
    /// Namespace of the release (the seed's `dhub`).
    pub namespace: Option<String>,
    /// Helm release name (the seed's `dask`).
    pub release: Option<String>,
    /// Chart name in `chart_repo` (`daskhub`).
    pub chart: Option<String>,
    /// Chart repository URL (`https://helm.dask.org`).
    pub chart_repo: Option<String>,
    /// Chart version (default: the newest).
    pub chart_version: Option<String>,
    /// `helm --kube-context` (default: helm's current context).
    pub kube_context: Option<String>,
    /// The hub's public URL, shown by `/daskhub status` (else read from Service proxy-public).
    pub public_url: Option<String>,
    /// Node pool of the Dask workers (`workers`) and of the users (`users`).
    pub worker_pool: Option<String>,
    pub user_pool: Option<String>,
    /// VM size of the pools `/daskhub pools` creates (`Standard_D2s_v3`).
    pub pool_vm_size: Option<String>,
    /// JupyterHub's REST API.
    pub hub: Option<Endpoint>,
    /// Dask Gateway's REST API.
    pub gateway: Option<Endpoint>,
    /// Named extra Helm values, merged by `/daskhub deploy --values NAME`.
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
}

/// One REST endpoint, signed by a host auth profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Base URL, e.g. `http://hub.dhub.svc:8081` or `https://pangeo-hub.westeurope.cloudapp.azure.com`.
    pub url: String,
    /// The host's auth profile (its name starts with `daskhub`).
    pub auth_profile: String,
}

/// A checked endpoint.
#[derive(Debug, Clone)]
pub struct Api {
    /// What the replies call it ("JupyterHub", "Dask Gateway").
    pub what: &'static str,
    pub base: url::Url,
    pub auth_profile: String,
}

impl Api {
    /// The base URL as replies show it (no trailing slash).
    pub fn shown(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub clusters: ClusterDefaults,
    pub namespace: String,
    pub release: String,
    pub chart: String,
    pub chart_repo: String,
    pub chart_version: Option<String>,
    pub kube_context: Option<String>,
    pub public_url: Option<String>,
    pub worker_pool: String,
    pub user_pool: String,
    pub pool_vm_size: String,
    pub hub: Option<Api>,
    pub gateway: Option<Api>,
    pub values: BTreeMap<String, Value>,
}

pub fn config_error(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::Config, message)
}

fn api(
    what: &'static str,
    key: &str,
    endpoint: Option<Endpoint>,
) -> Result<Option<Api>, PluginError> {
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    let base = url::Url::parse(&endpoint.url)
        .map_err(|e| config_error(format!("{SECTION} {key}.url {:?}: {e}", endpoint.url)))?;
    if !matches!(base.scheme(), "http" | "https")
        || base.host_str().is_none()
        || base.query().is_some()
        || base.fragment().is_some()
    {
        return Err(config_error(format!(
            "{SECTION} {key}.url {:?} must be http(s)://HOST[:PORT][/PATH] with no query or fragment",
            endpoint.url
        )));
    }
    if !endpoint.auth_profile.starts_with(PROFILE_PREFIX) {
        return Err(config_error(format!(
            "{SECTION} {key}.auth_profile {:?}: the plugin may only use auth profiles whose names start with {PROFILE_PREFIX:?}",
            endpoint.auth_profile
        )));
    }
    Ok(Some(Api {
        what,
        base,
        auth_profile: endpoint.auth_profile,
    }))
}

fn or(value: Option<String>, default: &str) -> String {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl DaskhubConfig {
    pub fn check(self) -> Result<Settings, PluginError> {
        let namespace = or(self.namespace, "dhub");
        crate::names::check_namespace(&namespace)
            .map_err(|e| config_error(format!("{SECTION} namespace: {e}")))?;
        let release = or(self.release, "dask");
        crate::names::check_release(&release)
            .map_err(|e| config_error(format!("{SECTION} release: {e}")))?;
        for (name, values) in &self.values {
            if !values.is_object() {
                return Err(config_error(format!(
                    "{SECTION} values.{name} must be a table of Helm values"
                )));
            }
        }
        Ok(Settings {
            clusters: ClusterDefaults {
                resource_group: self.resource_group,
                default_cluster: self.default_cluster,
                kube_cluster: self.kube_cluster,
            },
            namespace,
            release,
            chart: or(self.chart, "daskhub"),
            chart_repo: or(self.chart_repo, "https://helm.dask.org"),
            chart_version: self.chart_version,
            kube_context: self.kube_context,
            public_url: self.public_url,
            worker_pool: or(self.worker_pool, "workers"),
            user_pool: or(self.user_pool, "users"),
            pool_vm_size: or(self.pool_vm_size, "Standard_D2s_v3"),
            hub: api("JupyterHub", "hub", self.hub)?,
            gateway: api("Dask Gateway", "gateway", self.gateway)?,
            values: self.values,
        })
    }
}

impl Settings {
    /// The configured endpoint, or the error saying how to configure it.
    pub fn hub(&self) -> Result<&Api, PluginError> {
        self.hub.as_ref().ok_or_else(|| {
            config_error(format!(
                "JupyterHub is not configured: add {SECTION} hub = {{ url = \"https://HUB\", auth_profile = \"daskhub-hub\" }}"
            ))
        })
    }

    pub fn gateway(&self) -> Result<&Api, PluginError> {
        self.gateway.as_ref().ok_or_else(|| {
            config_error(format!(
                "Dask Gateway is not configured: add {SECTION} gateway = {{ url = \"https://HUB/services/dask-gateway\", auth_profile = \"daskhub-gateway\" }}"
            ))
        })
    }

    /// The `[[kubernetes.clusters]]` name of the cluster a command acts on.
    pub fn kube_cluster(&self, given: Option<&str>) -> Result<String, PluginError> {
        let cluster = self.clusters.require_cluster(given, SECTION)?;
        Ok(self.clusters.kube_name(&cluster))
    }
}
