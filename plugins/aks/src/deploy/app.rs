//! App definitions: what `/deploy APP INSTANCE` makes, read from `config/apps/APP.toml` (the
//! host hands the parsed files over as `apps = { APP = {...} }`). Nothing about a particular
//! app lives in code.

use std::collections::BTreeMap;
use std::time::Duration;

use deckhand_plugin_shared::names::check_dns_label;
use deckhand_plugin_shared::target::ClusterDefaults;
use serde::Deserialize;
use serde_json::Value;

use crate::config::AksConfig;

/// Why an app definition or the plugin's deploy settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("app definition {app}: {message}")]
    Invalid { app: String, message: String },
    #[error("[plugins.config.aks] {key}: {message}")]
    Setting { key: String, message: String },
}

/// One app, as written in its TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    #[serde(default)]
    pub description: String,
    /// Kubernetes namespace the instances go to (must exist).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Image without tag; templates `{app}`, `{instance}` apply (`intens.azurecr.io/simsvc-{instance}`).
    pub image: String,
    /// Tag used when `/deploy` gets no `--tag`.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Kubernetes cluster (a `[[kubernetes.clusters]]` name); the plugin's default otherwise.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub ingress: Option<Ingress>,
    #[serde(default)]
    pub volume: Option<Volume>,
    /// Pod settings for components placed on the virtual node (`--virtual`).
    #[serde(default)]
    pub r#virtual: VirtualSettings,
    pub components: Vec<Component>,
}

/// The web entry point: an Ingress routing `path` on `host` to a component's Service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    pub component: String,
    pub host: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_ingress_class")]
    pub class: String,
    /// cert-manager ClusterIssuer that signs the TLS certificate.
    #[serde(default)]
    pub cluster_issuer: Option<String>,
    /// Secret cert-manager writes the certificate to.
    #[serde(default)]
    pub tls_secret: Option<String>,
    /// An existing Secret with an htpasswd `auth` key (nginx-ingress basic auth). Only its
    /// name is configured; the values never pass through Deckhand.
    #[serde(default)]
    pub auth_secret: Option<String>,
    #[serde(default = "default_realm")]
    pub auth_realm: String,
    /// Extra Ingress annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A per-instance work volume (PersistentVolumeClaim).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default = "default_volume_name")]
    pub name: String,
    pub storage_class: String,
    pub size: String,
    #[serde(default = "default_access_mode")]
    pub access_mode: String,
}

/// DNS settings of pods on the virtual node (ACI pods do not get the cluster's DNS by default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualSettings {
    /// `dnsPolicy` (`None` to use `nameservers`/`searches` only).
    #[serde(default)]
    pub dns_policy: Option<String>,
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Search domains; templates `{namespace}` apply.
    #[serde(default)]
    pub searches: Vec<String>,
    /// resolv.conf options, e.g. `{ ndots = "5" }`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// One Deployment (and a Service when it has a port).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    #[serde(default = "one")]
    pub replicas: u32,
    /// `/deploy --replicas N` sets this component's replicas.
    #[serde(default)]
    pub scalable: bool,
    /// Goes to the virtual node with `--virtual`.
    #[serde(default)]
    pub r#virtual: bool,
    /// Container port; a ClusterIP Service `{name}-{component}` exposes it.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment; templates `{app}`, `{instance}`, `{name}` (the instance's object prefix),
    /// `{namespace}` apply.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    /// Mount the work volume here.
    #[serde(default)]
    pub volume_mount: Option<String>,
    /// Run on this node pool (GPU pools get the GPU toleration and limit with `gpus`).
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub gpus: Option<u32>,
    /// The pool is a Spot pool (tolerate its taint).
    #[serde(default)]
    pub spot: bool,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_tag() -> String {
    "latest".into()
}
fn default_path() -> String {
    "/{instance}".into()
}
fn default_ingress_class() -> String {
    "nginx".into()
}
fn default_realm() -> String {
    "Authentication required".into()
}
fn default_volume_name() -> String {
    "work".into()
}
fn default_access_mode() -> String {
    "ReadWriteMany".into()
}
fn one() -> u32 {
    1
}

/// Fills `{app}`, `{instance}`, `{name}`, `{namespace}` in a template.
pub fn fill(template: &str, app: &str, instance: &str, namespace: &str) -> String {
    template
        .replace("{app}", app)
        .replace("{instance}", instance)
        .replace("{name}", &format!("{app}-{instance}"))
        .replace("{namespace}", namespace)
}

impl App {
    /// Parses one app file's contents and checks what Kubernetes would reject later.
    pub fn parse(name: &str, value: &Value) -> Result<App, AppError> {
        let invalid = |message: String| AppError::Invalid {
            app: name.to_owned(),
            message,
        };
        check_dns_label("app name", name).map_err(invalid)?;
        let app: App = serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        check_dns_label("namespace", &app.namespace).map_err(invalid)?;
        if app.components.is_empty() {
            return Err(invalid("lists no components".into()));
        }
        let mut seen = Vec::new();
        for c in &app.components {
            check_dns_label("component", &c.name).map_err(invalid)?;
            if seen.contains(&c.name) {
                return Err(invalid(format!("component {} is listed twice", c.name)));
            }
            seen.push(c.name.clone());
            if c.r#virtual && c.volume_mount.is_some() {
                return Err(invalid(format!(
                    "component {} mounts the work volume but may run on the virtual node: virtual nodes have no persistent volumes",
                    c.name
                )));
            }
            if c.volume_mount.is_some() && app.volume.is_none() {
                return Err(invalid(format!(
                    "component {} mounts a volume but the app has no [volume]",
                    c.name
                )));
            }
            if c.gpus.is_some() && c.pool.is_none() {
                return Err(invalid(format!(
                    "component {} asks for GPUs but names no GPU pool (pool = \"gpu\")",
                    c.name
                )));
            }
        }
        if app.components.iter().filter(|c| c.scalable).count() > 1 {
            return Err(invalid(
                "more than one component is scalable: --replicas must mean one thing".into(),
            ));
        }
        if let Some(ingress) = &app.ingress {
            let target = app
                .components
                .iter()
                .find(|c| c.name == ingress.component)
                .ok_or_else(|| {
                    invalid(format!(
                        "[ingress] component {} is not among the components",
                        ingress.component
                    ))
                })?;
            if target.port.is_none() {
                return Err(invalid(format!(
                    "[ingress] component {} has no port to route to",
                    ingress.component
                )));
            }
            if !ingress.path.starts_with('/') {
                return Err(invalid(format!(
                    "[ingress] path {:?} must start with '/'",
                    ingress.path
                )));
            }
        }
        Ok(app)
    }

    /// `/deploy --replicas` applies to this component.
    pub fn scalable(&self) -> Option<&Component> {
        self.components.iter().find(|c| c.scalable)
    }

    /// `registry`, `repository` of the instance's image.
    pub fn image_parts(&self, app: &str, instance: &str) -> (String, String) {
        let image = fill(&self.image, app, instance, &self.namespace);
        match image.split_once('/') {
            Some((registry, repository)) if registry.contains('.') || registry.contains(':') => {
                (registry.to_owned(), repository.to_owned())
            }
            _ => ("docker.io".to_owned(), image),
        }
    }

    pub fn url(&self, app: &str, instance: &str) -> Option<String> {
        self.ingress.as_ref().map(|i| {
            format!(
                "https://{}{}",
                i.host,
                fill(&i.path, app, instance, &self.namespace)
            )
        })
    }
}

/// Settings of the deploy part in `[plugins.config.aks]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[[kubernetes.clusters]]` name used when neither the app nor `--cluster` names one.
    pub kube_cluster: Option<String>,
    /// How long `/deploy` waits for the rollout.
    pub rollout_timeout: Duration,
    /// Between two looks at the rollout.
    pub rollout_poll: Duration,
    /// Report a rollout as stuck once nothing moved for this long and a reason is known.
    pub rollout_stuck_after: Duration,
    pub apps: BTreeMap<String, App>,
}

fn duration(key: &str, text: Option<&str>, default: Duration) -> Result<Duration, AppError> {
    let Some(text) = text else {
        return Ok(default);
    };
    humantime::parse_duration(text).map_err(|e| AppError::Setting {
        key: key.into(),
        message: format!("{text:?} is not a duration like 90s or 5m: {e}"),
    })
}

impl Settings {
    /// The deploy part's keys of `[plugins.config.aks]`; `clusters` are its cluster keys, checked.
    pub fn new(config: &AksConfig, clusters: &ClusterDefaults) -> Result<Settings, AppError> {
        let mut apps = BTreeMap::new();
        for (name, value) in &config.apps {
            apps.insert(name.clone(), App::parse(name, value)?);
        }
        let setting = |key: &str, text: &Option<String>, default: u64| {
            duration(key, text.as_deref(), Duration::from_secs(default))
        };
        Ok(Settings {
            kube_cluster: clusters
                .kube_cluster
                .clone()
                .or_else(|| clusters.default_cluster.clone()),
            rollout_timeout: setting("rollout_timeout", &config.rollout_timeout, 300)?,
            rollout_poll: setting("rollout_poll", &config.rollout_poll, 2)?,
            rollout_stuck_after: setting("rollout_stuck_after", &config.rollout_stuck_after, 90)?,
            apps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn simsvc() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/apps/simsvc.toml"
        ))
        .unwrap();
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        serde_json::to_value(parsed).unwrap()
    }

    #[test]
    fn the_shipped_simsvc_definition_parses() {
        let app = App::parse("simsvc", &simsvc()).unwrap();
        assert_eq!(
            app.image_parts("simsvc", "mpt"),
            ("intens.azurecr.io".into(), "simsvc-mpt".into())
        );
        assert_eq!(
            app.url("simsvc", "mpt").unwrap(),
            "https://intens.westeurope.cloudapp.azure.com/mpt"
        );
        assert_eq!(app.scalable().unwrap().name, "workers");
    }

    #[test]
    fn a_volume_on_the_virtual_node_is_refused() {
        let mut value = simsvc();
        value["components"][1]["volume_mount"] = json!("/work");
        value["components"][1]["virtual"] = json!(true);
        let error = App::parse("simsvc", &value).unwrap_err().to_string();
        assert!(
            error.contains("virtual nodes have no persistent volumes"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_names_are_refused() {
        let mut value = simsvc();
        value["imagee"] = json!("x");
        assert!(
            App::parse("simsvc", &value)
                .unwrap_err()
                .to_string()
                .contains("imagee")
        );
        assert!(App::parse("Simsvc", &simsvc()).is_err());
    }

    #[test]
    fn settings_read_durations() {
        let config: AksConfig = serde_json::from_value(json!({
            "default_cluster": "c", "rollout_timeout": "20s", "apps": {"simsvc": simsvc()}
        }))
        .unwrap();
        let settings = Settings::new(&config, &config.clusters().unwrap()).unwrap();
        assert_eq!(settings.kube_cluster.as_deref(), Some("c"));
        assert_eq!(settings.rollout_timeout, Duration::from_secs(20));
        assert_eq!(settings.rollout_poll, Duration::from_secs(2));
        assert!(settings.apps.contains_key("simsvc"));
        let config = AksConfig {
            rollout_timeout: Some("soon".into()),
            ..AksConfig::default()
        };
        let bad = Settings::new(&config, &ClusterDefaults::default()).unwrap_err();
        assert!(bad.to_string().contains("rollout_timeout"), "{bad}");
    }
}
