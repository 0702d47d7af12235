//! Kubernetes RBAC derived from the plugins' declared capabilities (`deckhand plugins rbac`):
//! the bot's identity in a cluster needs exactly what its plugins may ask for, no more.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use deckhand_plugin_abi::proto::Manifest;

/// The API group of a resource Deckhand's plugins use ("" is the core group).
fn api_group(resource: &str) -> &'static str {
    match resource.split('/').next().unwrap_or(resource) {
        "deployments" | "statefulsets" | "daemonsets" | "replicasets" => "apps",
        "ingresses" | "networkpolicies" => "networking.k8s.io",
        "jobs" | "cronjobs" => "batch",
        "leases" => "coordination.k8s.io",
        "storageclasses" | "volumeattachments" | "csidrivers" => "storage.k8s.io",
        "horizontalpodautoscalers" => "autoscaling",
        "poddisruptionbudgets" => "policy",
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => {
            "rbac.authorization.k8s.io"
        }
        _ => "",
    }
}

/// Kubernetes verbs behind one Deckhand verb: server-side apply is a patch (and a create when
/// the object is new); logs read `pods/log`.
fn kube_verbs(verb: &str) -> &'static [&'static str] {
    match verb {
        "get" | "logs" => &["get"],
        "list" => &["list", "watch"],
        "create" => &["create"],
        "replace" => &["update"],
        "patch" => &["patch"],
        "apply" => &["create", "patch"],
        "delete" => &["delete"],
        "*" => &["*"],
        _ => &[],
    }
}

/// A ClusterRole (YAML) granting the union of every plugin's Kubernetes capabilities.
pub fn cluster_role(name: &str, manifests: &[&Manifest]) -> String {
    // (group, resource) → verbs
    let mut rules: BTreeMap<(&'static str, String), BTreeSet<&'static str>> = BTreeMap::new();
    for manifest in manifests {
        for cap in &manifest.capabilities.kube {
            for resource in &cap.resources {
                for verb in &cap.verbs {
                    let resource = if verb == "logs" && !resource.contains('/') {
                        format!("{resource}/log")
                    } else {
                        resource.clone()
                    };
                    rules
                        .entry((api_group(&resource), resource))
                        .or_default()
                        .extend(kube_verbs(verb));
                }
            }
        }
    }
    let sources: Vec<&str> = manifests.iter().map(|m| m.name.as_str()).collect();
    let mut out = format!(
        "# Derived by `deckhand plugins rbac` from the capabilities of: {}\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n",
        sources.join(", ")
    );
    if rules.is_empty() {
        out.push_str("  []\n");
    }
    for ((group, resource), verbs) in rules {
        let verbs: Vec<&str> = verbs.into_iter().collect();
        out.push_str(&format!(
            "  - apiGroups: [\"{group}\"]\n    resources: [\"{resource}\"]\n    verbs: [{}]\n",
            verbs
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_abi::proto::{Capabilities, KubeCapability};

    #[test]
    fn union_of_capabilities_by_group() {
        let manifest = Manifest {
            name: "aks".into(),
            version: "1".into(),
            description: String::new(),
            commands: vec![],
            capabilities: Capabilities {
                kube: vec![
                    KubeCapability {
                        resources: vec!["deployments".into(), "pods".into()],
                        verbs: vec!["apply".into(), "list".into()],
                    },
                    KubeCapability {
                        resources: vec!["pods".into()],
                        verbs: vec!["logs".into()],
                    },
                    KubeCapability {
                        resources: vec!["storageclasses".into()],
                        verbs: vec!["get".into()],
                    },
                ],
                ..Default::default()
            },
        };
        let yaml = cluster_role("deckhand-plugins", &[&manifest]);
        assert!(yaml.contains("  - apiGroups: [\"apps\"]\n    resources: [\"deployments\"]\n    verbs: [\"create\", \"list\", \"patch\", \"watch\"]\n"), "{yaml}");
        assert!(
            yaml.contains(
                "  - apiGroups: [\"\"]\n    resources: [\"pods/log\"]\n    verbs: [\"get\"]\n"
            ),
            "{yaml}"
        );
        assert!(
            yaml.contains(
                "resources: [\"pods\"]\n    verbs: [\"create\", \"list\", \"patch\", \"watch\"]"
            ),
            "{yaml}"
        );
        assert!(
            yaml.contains(
                "  - apiGroups: [\"storage.k8s.io\"]\n    resources: [\"storageclasses\"]\n    verbs: [\"get\"]\n"
            ),
            "{yaml}"
        );
    }
}
