//! Secrets in config: written as `${ENV_VAR}` (or literally, for local tests), never printed.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret value. `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Every secret is known to the redactor from the moment it exists.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        crate::redact::register(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every `${NAME}` with the environment variable `NAME`.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let name = &after[..end];
        if name.is_empty() {
            return Err("empty `${}` reference".to_owned());
        }
        let value =
            lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A config string that is not secret but may come from the environment (`${NAME}`).
pub fn env_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    expand_env(&raw, |name| std::env::var(name).ok()).map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw, |name| std::env::var(name).ok())
            .map(Secret::new)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references_and_reports_missing_ones() {
        let lookup = |name: &str| (name == "TOKEN").then(|| "s3cr3t".to_owned());
        assert_eq!(
            expand_env("Bearer ${TOKEN}", lookup).unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(expand_env("plain", lookup).unwrap(), "plain");
        assert_eq!(
            expand_env("${NOPE}", lookup).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(expand_env("${OPEN", lookup).is_err());
    }

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("s3cr3t");
        assert!(!format!("{secret:?} {secret}").contains("s3cr3t"));
    }
}
