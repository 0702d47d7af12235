//! The names this plugin takes that no shared rule covers: Helm release names. Dask Gateway
//! cluster names are the shared `NameRule::DaskCluster`, checked by the router; Kubernetes
//! names go through the shared rules (`deckhand-cloud-names`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        assert!(check_release("dask").is_ok());
        assert!(check_release("Dask").is_err());
        assert!(check_release(&"a".repeat(54)).unwrap_err().contains("53"));
    }
}
