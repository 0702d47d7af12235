//! One meaning of `--cluster` for every cloud plugin: it names an **AKS cluster**. The
//! Kubernetes side is reached through the `[[kubernetes.clusters]]` entry of the same name,
//! except for the default cluster, whose entry may be named differently (`kube_cluster`).

use deckhand_plugin_abi::proto::PluginError;
use serde::Deserialize;

/// The cluster keys of a plugin's config section (`[plugins.config.aks]`, `…vk]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ClusterDefaults {
    /// Resource group of the clusters.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// AKS cluster used when a command has no `--cluster`.
    #[serde(default)]
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    #[serde(default)]
    pub kube_cluster: Option<String>,
}

impl ClusterDefaults {
    /// The AKS cluster a command acts on: `--cluster`, else `default_cluster`.
    pub fn cluster<'a>(&'a self, given: Option<&'a str>) -> Option<&'a str> {
        given.or(self.default_cluster.as_deref())
    }

    /// [`ClusterDefaults::cluster`], or the error saying how to name one (`section` is the
    /// plugin's config table, e.g. `[plugins.config.vk]`).
    pub fn require_cluster(
        &self,
        given: Option<&str>,
        section: &str,
    ) -> Result<String, PluginError> {
        self.cluster(given).map(str::to_owned).ok_or_else(|| {
            PluginError::bad_input(
                "cluster",
                format!(
                    "no cluster given and none configured: pass --cluster or set default_cluster in {section}"
                ),
            )
        })
    }

    /// The `[[kubernetes.clusters]]` name of AKS cluster `cluster`: `kube_cluster` for the
    /// default cluster (AKS names compare case-insensitively), else the AKS name itself.
    pub fn kube_name(&self, cluster: &str) -> String {
        match (&self.default_cluster, &self.kube_cluster) {
            (Some(default), Some(kube)) if default.eq_ignore_ascii_case(cluster) => kube.clone(),
            _ => cluster.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ClusterDefaults {
        ClusterDefaults {
            resource_group: Some("pangeo".into()),
            default_cluster: Some("pangeoCluster".into()),
            kube_cluster: Some("pangeo-kube".into()),
        }
    }

    #[test]
    fn cluster_names_an_aks_cluster_and_maps_the_default_to_its_kube_entry() {
        let d = defaults();
        assert_eq!(d.cluster(None), Some("pangeoCluster"));
        assert_eq!(d.cluster(Some("other")), Some("other"));
        assert_eq!(d.kube_name("pangeoCluster"), "pangeo-kube");
        assert_eq!(d.kube_name("PANGEOCLUSTER"), "pangeo-kube");
        assert_eq!(d.kube_name("other"), "other");
        let none = ClusterDefaults::default();
        let error = none
            .require_cluster(None, "[plugins.config.vk]")
            .unwrap_err();
        assert_eq!(error.option.as_deref(), Some("cluster"));
        assert!(
            error
                .message
                .ends_with("set default_cluster in [plugins.config.vk]")
        );
    }

    #[test]
    fn reads_its_keys_from_a_whole_section() {
        let d: ClusterDefaults = serde_json::from_value(serde_json::json!({
            "resource_group": "pangeo", "default_cluster": "c", "apps": {}
        }))
        .unwrap();
        assert_eq!(d.default_cluster.as_deref(), Some("c"));
        assert_eq!(d.kube_cluster, None);
    }
}
