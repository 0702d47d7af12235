//! The bot's configuration file (`config/deckhand.toml`), assembled from the sections each
//! component owns (as in Vector): this module only puts them together, and only the app reads
//! the whole. Every section denies unknown keys, so a typo is an error with its line instead of
//! a setting silently ignored. Secrets are written as `${ENV_VAR}` and read from the
//! environment at load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::alerts::config::AlertsConfig;
use crate::chat::discord::config::DiscordConfig;
use crate::chat::terminal::TerminalConfig;
use crate::cloud::CloudSections;
use crate::cloud::config::{AuthProfile, AzureConfig, KubernetesConfig, RegistryConfig};
pub use crate::config_support::ConfigError;
use crate::config_support::toml_error;
use crate::host::config::{HostConfig, PluginSections, PluginsConfig, ServicesConfig};
use crate::router::RouterOptions;
use crate::router::config::{ConfirmConfig, PermissionRule};
use crate::sched::config::SchedulesConfig;
use crate::state::StateConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub state: StateConfig,
    /// Alert receiver, routes and storm control (`config/alerts.toml`); off when absent.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
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
    pub azure: Option<AzureConfig>,
    /// Kubernetes clusters plugins may address.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// Container registries plugins may query.
    #[serde(default)]
    pub registries: Vec<RegistryConfig>,
    /// Schedules: the file of config-declared ones, catch-up grace, owner, leader election.
    #[serde(default)]
    pub schedules: SchedulesConfig,
    /// `/healthz`, `/readyz`, `/metrics` on their own port (docs/operations.md); off when absent.
    #[serde(default)]
    pub ops: Option<crate::ops::OpsConfig>,
    /// `/cost` and the pool-size sampler (docs/cost.md); off when absent.
    #[serde(default)]
    pub cost: Option<crate::cost::CostConfig>,
    /// Discord connection (`deckhand serve`); see docs/discord.md.
    #[serde(default)]
    pub discord: Option<DiscordConfig>,
    /// Directory of the config file; relative paths in it are resolved against this.
    #[serde(skip)]
    pub base_dir: PathBuf,
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
        crate::config_support::resolve(&self.base_dir, path)
    }

    /// The sections cloud access is built from.
    pub fn cloud_sections(&self) -> CloudSections<'_> {
        CloudSections {
            azure: self.azure.as_ref(),
            kubernetes: &self.kubernetes,
            registries: &self.registries,
            auth_profiles: &self.auth_profiles,
        }
    }

    /// What the host's services read: `[host]`, `[auth_profiles]` and `[amqp]`.
    pub fn services_config(&self) -> ServicesConfig {
        ServicesConfig {
            host: self.host.clone(),
            auth_profiles: self.auth_profiles.clone(),
            amqp: self.amqp.clone(),
        }
    }

    /// The router's settings, from `[confirm]`, `[[permissions]]`, `[terminal] allow_yes` and
    /// `[plugins] default_timeout`.
    pub fn router_options(&self) -> RouterOptions {
        RouterOptions::new(
            &self.confirm,
            &self.permissions,
            self.terminal.allow_yes,
            self.plugins.default_timeout,
        )
    }

    /// The `[plugins]` section with the directory its relative paths resolve against: what
    /// the plugin host needs.
    pub fn plugin_sections(&self) -> PluginSections {
        PluginSections {
            plugins: self.plugins.clone(),
            base_dir: self.base_dir.clone(),
        }
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
        let section = config.plugin_sections().section("aks").unwrap();
        assert_eq!(section["resource_group"], "rg");
        assert_eq!(section["apps"]["simsvc"]["port"], 8080);
        assert!(section.get("files").is_none());
        std::fs::write(dir.path().join("apps/bad.toml"), "port = = 1").unwrap();
        let err = config
            .plugin_sections()
            .section("aks")
            .unwrap_err()
            .to_string();
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
