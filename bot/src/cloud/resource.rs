//! What an ARM path names: its resource type and the action a request takes on it, for the
//! capability check (`Microsoft.ContainerService/managedClusters/agentPools` + `write`).

/// `(resource type, action)` of a request on `path` (after `/subscriptions/{id}`).
pub fn classify(method: &str, path: &str) -> Result<(String, String), String> {
    let mut segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // A POST names an action in its last segment (`.../managedClusters/c/stop`).
    let post_action = if method == "POST" {
        segments.pop()
    } else {
        None
    };
    let mut rest: &[&str] = &segments;
    if rest
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
    {
        rest = rest.get(2..).unwrap_or(&[]);
    }
    let resource_type = match rest {
        [] => return Err(format!("ARM path {path:?} names no resource")),
        [rg, rest @ ..] if rg.eq_ignore_ascii_case("resourceGroups") => match rest {
            [] | [_] => "Microsoft.Resources/resourceGroups".to_owned(),
            [_, providers, namespace, tail @ ..] if providers.eq_ignore_ascii_case("providers") => {
                provider_type(namespace, tail)
            }
            [_, other, ..] => {
                return Err(format!(
                    "ARM path {path:?}: unexpected {other:?} in a resource group"
                ));
            }
        },
        [providers, namespace, tail @ ..] if providers.eq_ignore_ascii_case("providers") => {
            provider_type(namespace, tail)
        }
        _ => {
            return Err(format!(
                "ARM path {path:?} is not under /resourceGroups or /providers"
            ));
        }
    };
    let action = match (method, post_action) {
        ("POST", Some(action)) => action.to_owned(),
        ("GET" | "HEAD", _) => "read".into(),
        ("PUT" | "PATCH", _) => "write".into(),
        ("DELETE", _) => "delete".into(),
        (other, _) => return Err(format!("unsupported ARM method {other}")),
    };
    Ok((resource_type, action))
}

/// After `providers/{namespace}`: alternating type/name segments (a trailing type without a
/// name is a collection). The caller strips a POST action first.
fn provider_type(namespace: &str, segments: &[&str]) -> String {
    let mut resource_type = namespace.to_owned();
    for kind in segments.iter().step_by(2) {
        resource_type.push('/');
        resource_type.push_str(kind);
    }
    resource_type
}

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
    use super::{classify, plural};

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

    fn c(method: &str, path: &str) -> (String, String) {
        classify(method, path).unwrap()
    }

    #[test]
    fn resource_types_and_actions() {
        let aks = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c";
        assert_eq!(
            c("GET", aks),
            (
                "Microsoft.ContainerService/managedClusters".into(),
                "read".into()
            )
        );
        assert_eq!(
            c("POST", &format!("{aks}/stop")),
            (
                "Microsoft.ContainerService/managedClusters".into(),
                "stop".into()
            )
        );
        assert_eq!(
            c("PUT", &format!("{aks}/agentPools/gpu")),
            (
                "Microsoft.ContainerService/managedClusters/agentPools".into(),
                "write".into()
            )
        );
        assert_eq!(
            c("GET", &format!("{aks}/agentPools")),
            (
                "Microsoft.ContainerService/managedClusters/agentPools".into(),
                "read".into()
            )
        );
        assert_eq!(
            c(
                "GET",
                "/subscriptions/s/providers/Microsoft.ContainerRegistry/registries"
            ),
            (
                "Microsoft.ContainerRegistry/registries".into(),
                "read".into()
            )
        );
        assert_eq!(
            c("PUT", "/resourceGroups/rg"),
            ("Microsoft.Resources/resourceGroups".into(), "write".into())
        );
        assert_eq!(
            c("GET", "/subscriptions/s/resourceGroups"),
            ("Microsoft.Resources/resourceGroups".into(), "read".into())
        );
    }
}
