//! `[plugins.config.aks]`, one section for both parts. Unknown keys are refused, so a typo is
//! reported (with its line, by `deckhand check`) instead of being ignored.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{ErrorCode, PluginError};
use deckhand_plugin_shared::target::ClusterDefaults;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AksConfig {
    /// Where the clusters are (else: searched across the subscription).
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Used when a command names no `--cluster` (else: the only one).
    #[serde(default)]
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    #[serde(default)]
    pub kube_cluster: Option<String>,
    /// App definitions, one per `config/apps/APP.toml` (the host expands `files.apps`).
    #[serde(default)]
    pub apps: BTreeMap<String, Value>,
    /// How long `/deploy` waits for a rollout ("5m").
    #[serde(default)]
    pub rollout_timeout: Option<String>,
    /// Between two looks at a rollout ("2s").
    #[serde(default)]
    pub rollout_poll: Option<String>,
    /// When a rollout that does not move is called stuck ("90s").
    #[serde(default)]
    pub rollout_stuck_after: Option<String>,
}

/// A name from config: trimmed, and not empty.
fn name(key: &str, value: &Option<String>) -> Result<Option<String>, PluginError> {
    match value.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(PluginError::new(
            ErrorCode::Config,
            format!("[plugins.config.aks] {key} must be a non-empty string"),
        )
        .with_option(key)),
        Some(name) => Ok(Some(name.to_owned())),
    }
}

impl AksConfig {
    /// The cluster keys: what `--cluster` falls back to, and the Kubernetes name of the default.
    pub fn clusters(&self) -> Result<ClusterDefaults, PluginError> {
        Ok(ClusterDefaults {
            resource_group: name("resource_group", &self.resource_group)?,
            default_cluster: name("default_cluster", &self.default_cluster)?,
            kube_cluster: name("kube_cluster", &self.kube_cluster)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(section: Value) -> Result<AksConfig, PluginError> {
        deckhand_plugin_sdk::config::decode("aks", section)
    }

    #[test]
    fn cluster_keys_are_optional_trimmed_names() {
        let config = decode(json!({
            "resource_group": " pangeo ", "default_cluster": "c", "apps": {}
        }))
        .unwrap();
        let clusters = config.clusters().unwrap();
        assert_eq!(clusters.resource_group.as_deref(), Some("pangeo"));
        assert_eq!(clusters.kube_cluster, None);
        let empty = decode(json!({"default_cluster": " "}))
            .unwrap()
            .clusters()
            .unwrap_err();
        assert_eq!(empty.option.as_deref(), Some("default_cluster"));
        assert!(empty.message.contains("non-empty"), "{}", empty.message);
        let typed = decode(json!({"default_cluster": 3})).unwrap_err();
        assert_eq!(typed.code, ErrorCode::Config);
        assert!(
            typed.message.contains("expected a string"),
            "{}",
            typed.message
        );
    }

    #[test]
    fn a_mistyped_key_is_refused_naming_it() {
        let error = decode(json!({"default_clutser": "c"})).unwrap_err();
        assert_eq!(error.code, ErrorCode::Config);
        assert_eq!(error.option.as_deref(), Some("default_clutser"));
        assert!(
            error
                .message
                .starts_with("[plugins.config.aks]: unknown field `default_clutser`"),
            "{}",
            error.message
        );
    }
}
