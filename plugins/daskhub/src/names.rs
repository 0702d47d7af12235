//! The names this plugin takes that no shared rule covers: Helm release names and Dask Gateway
//! cluster names. Kubernetes names go through the shared rules (`deckhand-cloud-names`).

use deckhand_plugin_shared::names::check_dns_label;

/// A namespace: an RFC 1123 label.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    check_dns_label("namespace", namespace)
}

/// Helm's release rule: an RFC 1123 label of at most 53 characters (Helm keeps room for the
/// suffixes of the objects it names after the release).
pub fn check_release(release: &str) -> Result<(), String> {
    check_dns_label("release", release)?;
    if release.len() > 53 {
        return Err(format!(
            "release {release:?} is {} characters long; Helm allows at most 53",
            release.len()
        ));
    }
    Ok(())
}

/// Dask Gateway cluster names: `[namespace.]hex-id` as the gateway makes them (the Kubernetes
/// backend prefixes its namespace, the local backend gives 32 hex digits).
pub fn check_gateway_cluster(name: &str) -> Result<(), String> {
    let ok = (1..=253).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.starts_with('.')
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a Dask Gateway cluster name: letters, digits, '.', '-' and '_' as /daskhub clusters shows them (e.g. dhub.0d1f3c6a4b5e4f2a9c3b1e2d4f5a6b7c)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_cluster_names() {
        assert!(check_release("dask").is_ok());
        assert!(check_release("Dask").is_err());
        assert!(check_release(&"a".repeat(54)).unwrap_err().contains("53"));
        assert!(check_gateway_cluster("dhub.0d1f3c6a4b5e").is_ok());
        assert!(check_gateway_cluster("0d1f3c6a4b5e4f2a9c3b1e2d4f5a6b7c").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "..", "a b"] {
            assert!(check_gateway_cluster(bad).is_err(), "{bad}");
        }
    }
}
