//! `[plugins.config.minio]`: the S3 endpoints the plugin may use. Credentials are not here:
//! each endpoint names a `sigv4` auth profile of the host (`[auth_profiles.minio]`), whose keys
//! come from the environment; the host signs every request.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{ErrorCode, PluginError};
use serde::Deserialize;

/// Auth profiles the manifest may use start with this (`minio`, `minio-lab`, ...).
pub const PROFILE_PREFIX: &str = "minio";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinioConfig {
    /// Endpoint used when a command has no `--endpoint` (default: the only one).
    pub default_endpoint: Option<String>,
    /// Endpoints by the name `--endpoint` uses.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// One S3 server (the seed's standalone VM on :9000, an in-cluster MinIO, ...).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL, e.g. `http://40.117.155.103:9000`.
    pub url: String,
    /// The host's `sigv4` auth profile that signs requests (its name starts with `minio`).
    pub auth_profile: String,
    /// Path-style addressing (`host/bucket/key`, MinIO's default); `false` for virtual-hosted
    /// (`bucket.host/key`).
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Region sent as `LocationConstraint` when creating buckets (none for us-east-1).
    pub region: Option<String>,
}

fn yes() -> bool {
    true
}

/// A checked endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub base: url::Url,
    pub auth_profile: String,
    pub path_style: bool,
    pub region: Option<String>,
}

fn config_error(message: String) -> PluginError {
    PluginError::new(ErrorCode::Config, message)
}

impl EndpointConfig {
    pub fn check(self, name: &str) -> Result<Endpoint, PluginError> {
        let section = format!("[plugins.config.minio.endpoints.{name}]");
        let base = url::Url::parse(&self.url)
            .map_err(|e| config_error(format!("{section} url {:?}: {e}", self.url)))?;
        if !matches!(base.scheme(), "http" | "https")
            || base.host_str().is_none()
            || base.query().is_some()
            || base.fragment().is_some()
            || base.path() != "/"
        {
            return Err(config_error(format!(
                "{section} url {:?} must be http(s)://HOST[:PORT] with no path, query or fragment",
                self.url
            )));
        }
        if !self.auth_profile.starts_with(PROFILE_PREFIX) {
            return Err(config_error(format!(
                "{section} auth_profile {:?}: the plugin may only use auth profiles whose names start with {PROFILE_PREFIX:?}",
                self.auth_profile
            )));
        }
        Ok(Endpoint {
            name: name.to_owned(),
            base,
            auth_profile: self.auth_profile,
            path_style: self.path_style,
            region: self.region.filter(|r| r != "us-east-1"),
        })
    }
}

/// The endpoints and the default, checked at init.
#[derive(Debug, Default)]
pub struct Endpoints {
    default: Option<String>,
    by_name: BTreeMap<String, Endpoint>,
}

impl Endpoints {
    pub fn from_config(config: MinioConfig) -> Result<Endpoints, PluginError> {
        let mut by_name = BTreeMap::new();
        for (name, endpoint) in config.endpoints {
            let checked = endpoint.check(&name)?;
            by_name.insert(name, checked);
        }
        if let Some(default) = &config.default_endpoint
            && !by_name.contains_key(default)
        {
            return Err(config_error(format!(
                "[plugins.config.minio] default_endpoint {default:?} is not one of the endpoints ({})",
                names(&by_name)
            )));
        }
        Ok(Endpoints {
            default: config.default_endpoint,
            by_name,
        })
    }

    /// `--endpoint NAME`, else the default, else the only one.
    pub fn pick(&self, given: Option<&str>) -> Result<&Endpoint, PluginError> {
        if self.by_name.is_empty() {
            return Err(config_error(
                "no S3 endpoint is configured: add [plugins.config.minio.endpoints.NAME] with url and auth_profile".into(),
            ));
        }
        let name = match (given, &self.default) {
            (Some(given), _) => given,
            (None, Some(default)) => default.as_str(),
            (None, None) if self.by_name.len() == 1 => {
                return self
                    .by_name
                    .values()
                    .next()
                    .ok_or_else(|| config_error("no S3 endpoint is configured".into()));
            }
            (None, None) => {
                return Err(PluginError::bad_input(
                    "endpoint",
                    format!(
                        "several endpoints are configured ({}) and no default_endpoint: pass --endpoint",
                        names(&self.by_name)
                    ),
                ));
            }
        };
        self.by_name.get(name).ok_or_else(|| {
            PluginError::bad_input(
                "endpoint",
                format!(
                    "there is no endpoint {name:?}; configured: {}",
                    names(&self.by_name)
                ),
            )
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

fn names(by_name: &BTreeMap<String, Endpoint>) -> String {
    by_name.keys().cloned().collect::<Vec<_>>().join(", ")
}
