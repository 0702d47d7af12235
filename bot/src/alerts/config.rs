//! `[alerts]` in the bot's config file: the receiver, its authentication, the routes, storm
//! control, sinks, the Kubernetes watchers and the optional Alertmanager API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::route::RouteConfig;
use super::sinks::webhook::WebhookConfig;
use super::sources::kube_events::KubeClusterConfig;
use super::storm::StormConfig;
use crate::secret::Secret;

/// `[alerts]` in the bot's config file (see `config/alerts.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Off switch that keeps the section.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address of the HTTP receiver (`127.0.0.1:9095`); no receiver when absent.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Where alerts no route takes go.
    pub default_channel: String,
    /// Request bodies above this are refused with 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Credentials the receiver requires.
    #[serde(default)]
    pub auth: ReceiverAuth,
    /// Alerts waiting between the receiver and storm control; more are refused with 503.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// An active alert not seen again for this long leaves `/alerts list` (sources such as
    /// Kubernetes events never send "resolved" for some problems).
    #[serde(
        default = "default_forget_after",
        with = "crate::config_support::duration"
    )]
    pub forget_after: Duration,
    /// Route plugin notifications as alerts.
    #[serde(default = "yes")]
    pub plugin_notifications: bool,
    #[serde(default)]
    pub storm: StormConfig,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// Clusters whose Kubernetes events are watched.
    #[serde(default)]
    pub kubernetes: Vec<KubeClusterConfig>,
    /// Alertmanager's API, for `/alerts silence` to create silences there too.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerApi>,
}

fn yes() -> bool {
    true
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_queue() -> usize {
    100_000
}
fn default_forget_after() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// How senders authenticate to the receiver. Azure Monitor action groups cannot set headers:
/// give them the bearer token as `?token=` in the webhook URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReceiverAuth {
    #[default]
    None,
    Bearer {
        token: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerApi {
    /// Base URL, e.g. `http://alertmanager:9093`.
    pub url: String,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
}
