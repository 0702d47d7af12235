//! Pieces every component's config section shares: the error type with file and line, human
//! durations, and paths relative to the config file. The lowest layer: it imports no
//! component, so each component can own its section without reaching up to the root config.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the line, column and key.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// toml's error as `line L, column C: message`, without the source line toml would quote: a
/// file that does not parse may hold a literal secret on that very line, and which value is
/// secret is unknown until it parses.
pub fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = crate::redact::redact(error.message().trim_end()).into_owned();
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count().saturating_add(1);
            let column = before
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count())
                .saturating_add(1);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A path from the config file, resolved against the file's directory.
pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

/// Durations written the human way (`90s`, `15m`, `1h`) in TOML strings; use with
/// `#[serde(with = "crate::config_support::duration")]`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: {e} (write e.g. \"90s\", \"15m\", \"1h\")"
            ))
        })
    }

    /// For `Option<Duration>` fields (with `#[serde(default)]`).
    pub mod option {
        use std::time::Duration;

        use serde::Deserializer;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}
