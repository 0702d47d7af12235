//! The bot's configuration file (`config/deckhand.toml`).
//!
//! Every section denies unknown keys, so a typo is an error with its line instead of a setting
//! silently ignored. Secrets are written as `${ENV_VAR}` and read from the environment at load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

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
fn toml_error(text: &str, error: &toml::de::Error) -> String {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub state: StateConfig,
    /// Alert receiver, routes and storm control (`config/alerts.toml`); off when absent.
    #[serde(default)]
    pub alerts: Option<crate::alerts::AlertsConfig>,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub host: HostConfig,
    /// Named credentials the host attaches to plugin HTTP calls.
    #[serde(default)]
    pub auth_profiles: BTreeMap<String, AuthProfile>,
    /// AMQP brokers plugins may query by name (`[amqp.NAME]`), credentials from an auth profile.
    #[serde(default)]
    pub amqp: BTreeMap<String, crate::host::services::amqp::BrokerConfig>,
    #[serde(default)]
    pub terminal: TerminalConfig,
    #[serde(default)]
    pub confirm: ConfirmConfig,
    /// Who may run what; a caller gets the union of every matching rule.
    #[serde(default)]
    pub permissions: Vec<PermissionRule>,
    /// Azure access (credentials, endpoints, retries); absent: no ARM service.
    #[serde(default)]
    pub azure: Option<crate::cloud::config::AzureConfig>,
    /// Kubernetes clusters plugins may address.
    #[serde(default)]
    pub kubernetes: crate::cloud::config::KubernetesConfig,
    /// Container registries plugins may query.
    #[serde(default)]
    pub registries: Vec<crate::cloud::config::RegistryConfig>,
    /// Schedules: the file of config-declared ones, catch-up grace, owner, leader election.
    #[serde(default)]
    pub schedules: crate::sched::config::SchedulesConfig,
    /// Discord connection (`deckhand serve`); see docs/discord.md.
    #[serde(default)]
    pub discord: Option<crate::chat::discord::DiscordConfig>,
    /// Directory of the config file; relative paths in it are resolved against this.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite database file, created on first start.
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from("state/deckhand.db"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory scanned for plugin libraries.
    #[serde(default = "default_plugin_dir")]
    pub dir: PathBuf,
    /// Only files named `{lib}{prefix}*.{so,dylib,dll}` are loaded.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// When set, only these plugin names are kept.
    #[serde(default)]
    pub enabled: Option<Vec<String>>,
    /// Time limit for commands whose manifest names none.
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub default_timeout: Duration,
    /// Each plugin's own section, handed to it at init as JSON.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from("target/debug")
}

fn default_prefix() -> String {
    "deckhand_plugin_".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: default_plugin_dir(),
            prefix: default_prefix(),
            enabled: None,
            default_timeout: default_timeout(),
            config: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Programs plugins may run, by the name they use: `helm = "/usr/bin/helm"`.
    #[serde(default)]
    pub programs: BTreeMap<String, PathBuf>,
    /// Time limit of one HTTP call made for a plugin.
    #[serde(default = "default_http_timeout", with = "humantime_serde_compat")]
    pub http_timeout: Duration,
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How the host authenticates an HTTP call a plugin makes with `auth_profile = NAME`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthProfile {
    Bearer {
        token: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
    /// AWS Signature Version 4, as S3 servers (MinIO) expect.
    Sigv4 {
        access_key: Secret,
        secret_key: Secret,
        #[serde(default = "default_region")]
        region: String,
        #[serde(default = "default_sigv4_service")]
        service: String,
    },
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_sigv4_service() -> String {
    "s3".to_owned()
}

/// Who the person at the terminal is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    pub user_id: String,
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub channel: String,
    /// Whether `--yes` may skip confirmations here.
    #[serde(default)]
    pub allow_yes: bool,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            user_id: "local".into(),
            display_name: "Local operator".into(),
            roles: vec!["admin".into()],
            channel: "terminal".into(),
            allow_yes: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmConfig {
    /// How long a destructive command waits for its confirmation.
    #[serde(default = "default_confirm_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Commands that need a second person with an approver role.
    #[serde(default)]
    pub approval: Vec<ApprovalRule>,
    /// Surfaces besides the terminal (`[terminal] allow_yes`) where `--yes` skips a
    /// confirmation, e.g. `["schedule"]` so an unattended nightly scale-down can run.
    #[serde(default)]
    pub allow_yes_on: Vec<String>,
}

fn default_confirm_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            timeout: default_confirm_timeout(),
            approval: Vec::new(),
            allow_yes_on: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Permission patterns of the commands this applies to (`aks.stop`, `aks.pool.*`).
    pub commands: Vec<String>,
    pub approver_roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionRule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permission patterns: `*`, `aks.*`, `*.status`.
    pub allow: Vec<String>,
}

impl Config {
    /// Reads and validates a config file; relative paths inside resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, path, &base_dir)
    }

    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: toml_error(text, &e),
        })?;
        config.base_dir = base_dir.to_owned();
        // Basic auth travels as base64 of `user:password`: the redactor knows that form too.
        for profile in config.auth_profiles.values() {
            if let AuthProfile::Basic { username, password } = profile {
                crate::redact::register_basic(username, password.expose());
            }
        }
        Ok(config)
    }

    /// Resolves a path from the config file against the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The plugin's config section as JSON (`null` when absent).
    ///
    /// A `files = { KEY = "DIR/*.toml" }` table in the section is expanded by the host: each
    /// matching TOML file is read and parsed, and the plugin receives `KEY = { file-stem =
    /// contents, ... }`, so plugins get data files (e.g. app definitions) without doing I/O.
    pub fn plugin_section(&self, plugin: &str) -> Result<serde_json::Value, ConfigError> {
        let Some(section) = self.plugins.config.get(plugin) else {
            return Ok(serde_json::Value::Null);
        };
        let mut value = serde_json::to_value(section).unwrap_or(serde_json::Value::Null);
        let files = value.as_object_mut().and_then(|m| m.remove("files"));
        if let Some(serde_json::Value::Object(files)) = files {
            for (key, pattern) in files {
                let pattern = pattern.as_str().unwrap_or_default();
                value[key.as_str()] = self.read_toml_files(plugin, &key, pattern)?;
            }
        }
        Ok(value)
    }

    /// `DIR/*.EXT` relative to the config file → `{stem: parsed}`, in name order.
    fn read_toml_files(
        &self,
        plugin: &str,
        key: &str,
        pattern: &str,
    ) -> Result<serde_json::Value, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: self.base_dir.join(pattern),
            message: format!("[plugins.config.{plugin}] files.{key}: {message}"),
        };
        let (dir, file_pattern) = pattern.rsplit_once('/').unwrap_or((".", pattern));
        let suffix = file_pattern
            .strip_prefix('*')
            .ok_or_else(|| invalid(format!("{pattern:?} must look like DIR/*.toml")))?;
        let dir = self.resolve(Path::new(dir));
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| invalid(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        paths.sort();
        let mut out = serde_json::Map::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let parsed: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                path: path.clone(),
                message: toml_error(&text, &e),
            })?;
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.insert(
                stem,
                serde_json::to_value(parsed).unwrap_or(serde_json::Value::Null),
            );
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Durations written the human way (`90s`, `15m`, `1h`) in TOML strings; use with
/// `#[serde(with = "crate::config::duration")]`.
pub mod duration {
    pub use super::humantime_serde_compat::deserialize;
}

/// Durations written the human way (`90s`, `15m`, `1h`) in TOML strings.
mod humantime_serde_compat {
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
}

/// The 1-based line of `key` in the `[plugins.config.PLUGIN]` table of a config file's text,
/// for reporting a key a plugin refused.
pub fn plugin_key_line(text: &str, plugin: &str, key: &str) -> Option<usize> {
    let header = format!("[plugins.config.{plugin}]");
    let mut inside = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == header;
            continue;
        }
        let name = trimmed.split('=').next().map(str::trim).unwrap_or_default();
        if inside && name.trim_matches('"') == key {
            return index.checked_add(1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("deckhand.toml"), Path::new("/etc/deckhand"))
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let err = parse("[plugins]\ndir = \"x\"\ncolour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("deckhand.toml: "), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error_with_its_line() {
        let err = parse("[terminal]\nuser_id = \"u\"\ndisplay_name = \"U\"\nchannel = \"c\"\nroles = \"admin\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("sequence"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_format() {
        let err = parse("[confirm]\ntimeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("15m"), "{err}");
    }

    #[test]
    fn plugin_sections_expand_data_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        std::fs::write(
            dir.path().join("apps/simsvc.toml"),
            "image = \"simsvc\"\nport = 8080\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("apps/notes.txt"), "ignored").unwrap();
        let text =
            "[plugins.config.aks]\nresource_group = \"rg\"\nfiles = { apps = \"apps/*.toml\" }\n";
        let config = Config::parse(text, Path::new("deckhand.toml"), dir.path()).unwrap();
        let section = config.plugin_section("aks").unwrap();
        assert_eq!(section["resource_group"], "rg");
        assert_eq!(section["apps"]["simsvc"]["port"], 8080);
        assert!(section.get("files").is_none());
        std::fs::write(dir.path().join("apps/bad.toml"), "port = = 1").unwrap();
        let err = config.plugin_section("aks").unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_dir() {
        let config = parse("").unwrap();
        assert_eq!(
            config.resolve(&config.state.path),
            PathBuf::from("/etc/deckhand/state/deckhand.db")
        );
    }
}
