//! Naming rules Azure and Kubernetes enforce, checked before a request is sent so the user
//! hears the rule, not a 400.

/// AKS agent pool names: 1-12 lowercase letters and digits, starting with a letter (Linux).
pub fn check_pool_name(name: &str) -> Result<(), String> {
    let ok = (1..=12).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pool name {name:?} is not valid: AKS pool names are 1-12 lowercase letters and digits, starting with a letter"
        ))
    }
}

/// Kubernetes object names (RFC 1123 label, as Deployments and Services need): 1-63 of a-z,
/// 0-9 and '-', starting and ending alphanumeric.
pub fn check_dns_label(what: &str, name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not valid: Kubernetes names are 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
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
