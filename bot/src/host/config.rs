//! The `[plugins]` and `[host]` sections: where plugins are loaded from, their own config
//! sections, and the limits of the services the host gives them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cloud::config::AuthProfile;
use crate::config_support::{ConfigError, resolve, toml_error};

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
    #[serde(default = "default_timeout", with = "crate::config_support::duration")]
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
    #[serde(
        default = "default_http_timeout",
        with = "crate::config_support::duration"
    )]
    pub http_timeout: Duration,
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What the host's services read of the config.
#[derive(Debug, Clone, Default)]
pub struct ServicesConfig {
    pub host: HostConfig,
    pub auth_profiles: BTreeMap<String, AuthProfile>,
    /// `[amqp.NAME]` brokers.
    pub amqp: BTreeMap<String, crate::host::services::amqp::BrokerConfig>,
}

/// `[plugins]` with the config file's directory, against which its relative paths resolve.
#[derive(Debug, Clone, Default)]
pub struct PluginSections {
    pub plugins: PluginsConfig,
    pub base_dir: PathBuf,
}

impl PluginSections {
    /// The directory scanned for plugin libraries.
    pub fn dir(&self) -> PathBuf {
        resolve(&self.base_dir, &self.plugins.dir)
    }

    /// The plugin's config section as JSON (`null` when absent).
    ///
    /// A `files = { KEY = "DIR/*.toml" }` table in the section is expanded by the host: each
    /// matching TOML file is read and parsed, and the plugin receives `KEY = { file-stem =
    /// contents, ... }`, so plugins get data files (e.g. app definitions) without doing I/O.
    pub fn section(&self, plugin: &str) -> Result<serde_json::Value, ConfigError> {
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
        let dir = resolve(&self.base_dir, Path::new(dir));
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
