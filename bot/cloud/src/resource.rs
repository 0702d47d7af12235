//! What a Kubernetes request touches, as capabilities name it. (ARM paths are classified by
//! `deckhand_cloud_names::ArmPath`, the same typed address the ARM client sends.)

/// The plural resource name of a kind (`Deployment` → `deployments`, `Ingress` → `ingresses`,
/// `NetworkPolicy` → `networkpolicies`), as Kubernetes' own pluralization does it for the
/// built-in kinds.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// The resource a Kubernetes request touches, as capabilities name it: `deployments`,
/// `deployments/scale`, `pods/log`.
pub fn kube_resource(request: &deckhand_plugin_abi::proto::KubeRequest) -> String {
    let plural = plural(&request.kind);
    match (request.verb.as_str(), &request.subresource) {
        ("logs", _) => format!("{plural}/log"),
        (_, Some(sub)) => format!("{plural}/{sub}"),
        _ => plural,
    }
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn plurals_of_the_kinds_deckhand_uses() {
        for (kind, expected) in [
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("PersistentVolumeClaim", "persistentvolumeclaims"),
            ("Endpoints", "endpoints"),
            ("ConfigMap", "configmaps"),
        ] {
            assert_eq!(plural(kind), expected);
        }
    }
}
