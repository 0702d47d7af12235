//! Naming rules Azure and Kubernetes enforce, checked before a request is sent so the user
//! hears the rule, not a 400. The rules themselves live in `deckhand-cloud-names` (the host
//! checks option values against them too); these are the plugins' shorthands.

pub use deckhand_cloud_names::{NameError, NameRule};

/// AKS agent pool names: 1-12 lowercase letters and digits, starting with a letter (Linux).
pub fn check_pool_name(name: &str) -> Result<(), String> {
    NameRule::AgentPool
        .check(name)
        .map_err(|e| format!("pool name {e}"))
}

/// Kubernetes object names (RFC 1123 label, as Deployments and Services need).
pub fn check_dns_label(what: &str, name: &str) -> Result<(), String> {
    NameRule::KubeLabel
        .check(name)
        .map_err(|e| format!("{what} {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_pool_name("gpu2").is_ok());
        assert!(check_pool_name("GPU").unwrap_err().contains("lowercase"));
        assert!(check_pool_name("2gpu").is_err());
        assert!(check_pool_name("thisnameistoolong").is_err());
        assert!(check_dns_label("instance", "mpt").is_ok());
        assert!(check_dns_label("instance", "MPT_1").is_err());
        assert!(check_dns_label("instance", "-a").is_err());
    }
}
