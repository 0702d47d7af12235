//! Names that end up in Kubernetes API paths. The Kubernetes client joins them into the URL as
//! they are, so anything that could change the path is refused here, with the API server's own
//! rule for path segments (`ValidatePathSegmentName`: not `.` or `..`, no `/` or `%`) plus what a
//! URL gives meaning to (`?`, `#`) and control characters.

use crate::rules::{NameError, NameRule};

/// The longest object name Kubernetes accepts (a DNS subdomain).
pub const MAX_NAME: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubePathError {
    #[error("Kubernetes namespace {0}")]
    Namespace(NameError),
    #[error("Kubernetes {what} {} cannot be used: {reason}", crate::quote(value))]
    Segment {
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// A namespace: an RFC 1123 label.
pub fn check_namespace(namespace: &str) -> Result<(), KubePathError> {
    NameRule::KubeLabel
        .check(namespace)
        .map_err(KubePathError::Namespace)
}

/// An object name, kind, subresource or container as it goes into a path.
pub fn check_path_segment(what: &'static str, value: &str) -> Result<(), KubePathError> {
    let fail = |reason: String| {
        Err(KubePathError::Segment {
            what,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("it is empty".into());
    }
    if value == "." || value == ".." {
        return fail("'.' and '..' are not names".into());
    }
    let n = value.chars().count();
    if n > MAX_NAME {
        return fail(format!("{n} characters, at most {MAX_NAME} are allowed"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return fail(format!("control character {c:?}"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | '%' | '?' | '#' | '\\') || c.is_whitespace())
    {
        return fail(format!("{c:?} is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_changes_a_path() {
        assert!(check_namespace("kube-system").is_ok());
        for ns in ["../kube-system", "..", "", "a/b", "A", "x?y"] {
            assert!(check_namespace(ns).is_err(), "{ns:?}");
        }
        assert!(check_path_segment("pod", "simsvc-mpt-web-1").is_ok());
        assert!(check_path_segment("role", "system:controller").is_ok());
        for name in ["x?y", "..", ".", "", "a/b", "%2e", "a#b", "a b", "a\u{7}"] {
            assert!(check_path_segment("pod", name).is_err(), "{name:?}");
        }
        assert!(check_path_segment("pod", &"a".repeat(254)).is_err());
    }
}
