//! RabbitMQ as the runner plugin sees it, through host services only: the management API
//! (HTTP with the `rabbitmq` auth profile) for the queues bound to the StudioML exchange, their
//! unacknowledged counts and rates; the broker itself (the host's AMQP service, passive
//! `queue.declare`) for exact ready counts and `basic.consume` consumers.
//!
//! The management API lags the broker by seconds (RabbitMQ 3.10: 0 shown for 5 s while 40
//! messages waited; 3.7–7 s to show 0 after the last ack), so anything that decides — a
//! notification, a scale-down — confirms with [`exact`].

use deckhand_plugin_sdk::abi::proto::{AmqpOp, AmqpRequest, AmqpResponse, Service};
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, HttpRequest, PluginError};
use serde::Deserialize;
use url::Url;

/// The auth profile the manifest declares for the management API (`[auth_profiles.rabbitmq]`).
pub const AUTH_PROFILE: &str = "rabbitmq";
/// The AMQP broker the manifest declares (`[amqp.rabbitmq]` of the host's config).
pub const BROKER: &str = "rabbitmq";
/// Queues of StudioML experiments: `rmq_<project>_<experiment>`.
pub const QUEUE_PREFIX: &str = "rmq_";

/// Where the management API is and which vhost and exchange hold the job queues.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub management: Url,
    pub vhost: String,
    pub exchange: String,
}

/// One queue as the management API last sampled it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ManagedQueue {
    pub name: String,
    #[serde(default)]
    pub messages_ready: u64,
    #[serde(default)]
    pub messages_unacknowledged: u64,
    #[serde(default)]
    pub consumers: u64,
    #[serde(default)]
    pub message_stats: MessageStats,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessageStats {
    #[serde(default)]
    pub ack_details: Rate,
    #[serde(default)]
    pub deliver_get_details: Rate,
    #[serde(default)]
    pub publish_details: Rate,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Rate {
    #[serde(default)]
    pub rate: f64,
}

#[derive(Debug, Deserialize)]
struct Binding {
    destination: String,
    destination_type: String,
}

/// The broker's exact counts of one queue, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    pub ready: u32,
    pub consumers: u32,
}

/// `rmq_<project>_<experiment>` split at the first `_` after the prefix.
pub fn project_of(queue: &str) -> Option<(&str, &str)> {
    queue
        .strip_prefix(QUEUE_PREFIX)?
        .split_once('_')
        .filter(|(p, e)| !p.is_empty() && !e.is_empty())
}

impl Endpoint {
    /// `{management}/api/{segments...}`, each segment percent-encoded (a vhost `/` is `%2F`).
    fn url(&self, segments: &[&str], columns: Option<&str>) -> Result<Url, PluginError> {
        let mut url = self.management.clone();
        url.path_segments_mut()
            .map_err(|()| {
                PluginError::new(
                    ErrorCode::Config,
                    format!("management_url {} cannot take a path", self.management),
                )
            })?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        if let Some(columns) = columns {
            url.query_pairs_mut().append_pair("columns", columns);
        }
        Ok(url)
    }

    /// GET through the host's HTTP service; RabbitMQ's refusals become errors naming the
    /// endpoint, the status and RabbitMQ's own reason.
    fn get<T: serde::de::DeserializeOwned>(
        &self,
        ctx: &Ctx,
        url: Url,
        missing: impl FnOnce() -> PluginError,
    ) -> Result<T, PluginError> {
        let response = ctx
            .http(HttpRequest {
                method: "GET".into(),
                url: url.to_string(),
                headers: vec![("accept".into(), "application/json".into())],
                auth_profile: Some(AUTH_PROFILE.into()),
                ..Default::default()
            })
            .map_err(|e| self.unreachable(e))?;
        match response.status {
            200 => serde_json::from_str(&response.body).map_err(|e| {
                PluginError::new(
                    ErrorCode::Protocol,
                    format!(
                        "RabbitMQ management API at {} answered {} with an unexpected shape: {e}",
                        self.management,
                        url.path()
                    ),
                )
            }),
            404 => Err(missing()),
            status => {
                let reason = rabbit_reason(&response.body);
                let (code, what) = match status {
                    401 => (
                        ErrorCode::Denied,
                        format!(
                            "RabbitMQ management API at {} refused the credentials of auth profile {AUTH_PROFILE} (HTTP 401{reason}): check [auth_profiles.{AUTH_PROFILE}]",
                            self.management
                        ),
                    ),
                    403 => (
                        ErrorCode::Denied,
                        format!(
                            "RabbitMQ management API at {} does not let the {AUTH_PROFILE} user read vhost {} (HTTP 403{reason}): give the user the monitoring tag and permissions on the vhost",
                            self.management, self.vhost
                        ),
                    ),
                    _ => (
                        ErrorCode::Upstream,
                        format!(
                            "RabbitMQ management API at {} answered HTTP {status}{reason}",
                            self.management
                        ),
                    ),
                };
                let mut error = PluginError::new(code, what);
                error.status = Some(status);
                Err(error)
            }
        }
    }

    fn unreachable(&self, e: HostError) -> PluginError {
        let message = if e.code == "capability_denied" {
            format!(
                "the host may not call RabbitMQ's management API at {}: {} (configure [auth_profiles.{AUTH_PROFILE}], kind = \"basic\")",
                self.management, e.message
            )
        } else {
            format!(
                "RabbitMQ management API at {} is unreachable: {}",
                self.management, e.message
            )
        };
        PluginError::from_host(e, message)
    }

    /// Queues bound to the exchange whose names follow `rmq_<project>_<experiment>`, sorted.
    pub fn job_queues(&self, ctx: &Ctx) -> Result<Vec<String>, PluginError> {
        let url = self.url(
            &[
                "exchanges",
                &self.vhost,
                &self.exchange,
                "bindings",
                "source",
            ],
            None,
        )?;
        let bindings: Vec<Binding> = self.get(ctx, url, || {
            PluginError::new(
                ErrorCode::NotFound,
                format!(
                    "RabbitMQ at {} has no exchange {} in vhost {}: no StudioML job was ever submitted there (or vhost/exchange in [plugins.config.runner] are wrong)",
                    self.management, self.exchange, self.vhost
                ),
            )
        })?;
        let mut queues: Vec<String> = bindings
            .into_iter()
            .filter(|b| b.destination_type == "queue" && project_of(&b.destination).is_some())
            .map(|b| b.destination)
            .collect();
        queues.sort();
        queues.dedup();
        Ok(queues)
    }

    /// Every queue of the vhost as the management API last sampled it.
    pub fn queues(&self, ctx: &Ctx) -> Result<Vec<ManagedQueue>, PluginError> {
        let url = self.url(
            &["queues", &self.vhost],
            Some("name,messages_ready,messages_unacknowledged,consumers,message_stats"),
        )?;
        self.get(ctx, url, || {
            PluginError::new(
                ErrorCode::NotFound,
                format!(
                    "RabbitMQ at {} has no vhost {}",
                    self.management, self.vhost
                ),
            )
        })
    }
}

/// `: not_authorized (Login failed)` from RabbitMQ's `{"error", "reason"}` body, if any.
fn rabbit_reason(body: &str) -> String {
    #[derive(Deserialize)]
    struct Reason {
        #[serde(default)]
        error: String,
        #[serde(default)]
        reason: String,
    }
    match serde_json::from_str::<Reason>(body) {
        Ok(r) if !r.error.is_empty() && !r.reason.is_empty() => {
            format!(": {} ({})", r.error, r.reason)
        }
        Ok(r) if !r.error.is_empty() => format!(": {}", r.error),
        _ => String::new(),
    }
}

/// The broker's exact ready count and `basic.consume` consumers of `queue`.
pub fn exact(ctx: &Ctx, queue: &str) -> Result<Exact, HostError> {
    let value = ctx.service_value(Service::Amqp {
        request: AmqpRequest {
            broker: BROKER.into(),
            op: AmqpOp::QueueDeclarePassive {
                queue: queue.to_owned(),
            },
        },
    })?;
    match serde_json::from_value::<AmqpResponse>(value) {
        Ok(AmqpResponse::QueueDeclarePassive {
            message_count,
            consumer_count,
            ..
        }) => Ok(Exact {
            ready: message_count,
            consumers: consumer_count,
        }),
        Err(e) => Err(HostError::new(
            "bad_response",
            format!("the AMQP service answered an unexpected shape: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            management: Url::parse("http://127.0.0.1:15672").unwrap(),
            vhost: "/".into(),
            exchange: "StudioML.topic".into(),
        }
    }

    #[test]
    fn vhost_and_names_are_encoded_as_segments() {
        let e = endpoint();
        let url = e
            .url(
                &["exchanges", "/", "StudioML.topic", "bindings", "source"],
                None,
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:15672/api/exchanges/%2F/StudioML.topic/bindings/source"
        );
        let hostile = e.url(&["queues", "../x?y#z"], Some("a,b")).unwrap();
        assert_eq!(
            hostile.as_str(),
            "http://127.0.0.1:15672/api/queues/..%2Fx%3Fy%23z?columns=a%2Cb"
        );
    }

    #[test]
    fn queue_names_split_into_project_and_experiment() {
        assert_eq!(project_of("rmq_mnist_exp_1"), Some(("mnist", "exp_1")));
        assert_eq!(project_of("rmq__x"), None);
        assert_eq!(project_of("rmq_mnist"), None);
        assert_eq!(project_of("other_a_b"), None);
    }

    #[test]
    fn rabbit_reasons_are_quoted() {
        assert_eq!(
            rabbit_reason(r#"{"error":"not_authorized","reason":"Login failed"}"#),
            ": not_authorized (Login failed)"
        );
        assert_eq!(rabbit_reason("<html>"), "");
    }
}
