//! AMQP 0.9.1 for plugins (`Service::Amqp`): exact queue counts from the broker itself, which
//! RabbitMQ's management API only shows seconds late. The broker's address is the host's
//! `[amqp.NAME]` section and its credentials a `basic` auth profile, so a plugin names the
//! broker and never sees either.
//!
//! One short connection per request: the calls are rare (a `/jobs` or a notification check)
//! and a connection kept open would outlive the broker restarts it should notice.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use deckhand_plugin_abi::proto::{AmqpOp, AmqpRequest, AmqpResponse, HostError};
use lapin::options::QueueDeclareOptions;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::uri::{AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties, ErrorKind};
use serde::Deserialize;

use crate::cloud::config::AuthProfile;

/// `[amqp.NAME]`: one broker plugins may query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `amqp://host:5672/%2f` (or `amqps://…`) without user or password.
    pub url: String,
    /// A `kind = "basic"` entry of `[auth_profiles]` with the broker user and password.
    #[serde(default)]
    pub auth_profile: Option<String>,
}

fn host_error(code: &str, message: impl Into<String>) -> HostError {
    HostError::new(code.to_owned(), message.into())
}

/// The broker's URI with the profile's credentials set as fields (never spliced into text).
fn broker_uri(
    name: &str,
    broker: &BrokerConfig,
    profiles: &BTreeMap<String, AuthProfile>,
) -> Result<AMQPUri, HostError> {
    let mut uri = AMQPUri::from_str(&broker.url).map_err(|e| {
        host_error(
            "config",
            format!("[amqp.{name}] url is not an AMQP URI: {e}"),
        )
    })?;
    // AMQPUri fills in guest/guest when the URL names no user: ask a URL parser instead.
    let written = url::Url::parse(&broker.url).ok();
    if written.is_some_and(|u| !u.username().is_empty() || u.password().is_some()) {
        return Err(host_error(
            "config",
            format!(
                "[amqp.{name}] url carries credentials: put them in an [auth_profiles] entry and name it in auth_profile"
            ),
        ));
    }
    match broker.auth_profile.as_deref() {
        None => {}
        Some(profile) => match profiles.get(profile) {
            Some(AuthProfile::Basic { username, password }) => {
                uri.authority.userinfo = AMQPUserInfo {
                    username: username.clone(),
                    password: password.expose().to_owned(),
                };
            }
            Some(_) => {
                return Err(host_error(
                    "config",
                    format!(
                        "[amqp.{name}] auth_profile {profile:?} is not a kind = \"basic\" profile"
                    ),
                ));
            }
            None => {
                return Err(host_error(
                    "config",
                    format!(
                        "[amqp.{name}] auth_profile {profile:?} is not defined in [auth_profiles]"
                    ),
                ));
            }
        },
    }
    Ok(uri)
}

/// `host:port` of the broker, for messages.
fn endpoint(uri: &AMQPUri) -> String {
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// Serves one AMQP request within `timeout`.
pub async fn serve(
    request: &AmqpRequest,
    brokers: &BTreeMap<String, BrokerConfig>,
    profiles: &BTreeMap<String, AuthProfile>,
    timeout: Duration,
) -> Result<AmqpResponse, HostError> {
    let name = request.broker.as_str();
    let broker = brokers.get(name).ok_or_else(|| {
        host_error(
            "config",
            format!("AMQP broker {name:?} is not configured: add an [amqp.{name}] section"),
        )
    })?;
    let uri = broker_uri(name, broker, profiles)?;
    let at = endpoint(&uri);
    match tokio::time::timeout(timeout, run(&request.op, uri, name, &at)).await {
        Ok(result) => result,
        Err(_) => Err(host_error(
            "timeout",
            format!(
                "AMQP broker {name} at {at} did not answer within {} s",
                timeout.as_secs()
            ),
        )),
    }
}

async fn run(op: &AmqpOp, uri: AMQPUri, name: &str, at: &str) -> Result<AmqpResponse, HostError> {
    let connection = Connection::connect_uri(uri, ConnectionProperties::default())
        .await
        .map_err(|e| describe(&e, name, at, None))?;
    let result = match op {
        AmqpOp::QueueDeclarePassive { queue } => declare_passive(&connection, queue)
            .await
            .map_err(|e| describe(&e, name, at, Some(queue))),
    };
    // The answer is already in hand; a failed close changes nothing for the caller.
    let _ = connection.close(200, "deckhand done".into()).await;
    result
}

async fn declare_passive(connection: &Connection, queue: &str) -> lapin::Result<AmqpResponse> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(AmqpResponse::QueueDeclarePassive {
        queue: queue.to_owned(),
        message_count: declared.message_count(),
        consumer_count: declared.consumer_count(),
    })
}

/// A lapin error as the plugin should see it: refused credentials are `auth`, a missing queue
/// `not_found`, an unreachable broker `unavailable`; the broker's reply code is kept.
fn describe(error: &lapin::Error, name: &str, at: &str, queue: Option<&str>) -> HostError {
    let redacted = |text: String| crate::redact::redact(&text).into_owned();
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let text = amqp.get_message().to_string();
            let (code, upstream) = match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => ("not_found", "NOT_FOUND"),
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => ("auth", "ACCESS_REFUSED"),
                AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => ("auth", "NOT_ALLOWED"),
                _ => ("upstream", ""),
            };
            let what = match (code, queue) {
                ("not_found", Some(queue)) => {
                    format!("AMQP broker {name} at {at} has no queue {queue:?}")
                }
                ("auth", _) => format!("AMQP broker {name} at {at} refused the credentials"),
                _ => format!("AMQP broker {name} at {at} failed the request"),
            };
            let mut e = host_error(code, redacted(format!("{what}: {text}")));
            if !upstream.is_empty() {
                e.upstream_code = Some(upstream.to_owned());
            }
            e
        }
        ErrorKind::IOError(io) => host_error(
            "unavailable",
            redacted(format!(
                "cannot connect to AMQP broker {name} at {at}: {io}"
            )),
        ),
        ErrorKind::InvalidConnectionState(_) | ErrorKind::InvalidChannelState(..) => host_error(
            // RabbitMQ closes the socket on a failed login when the client cannot be told why.
            "unavailable",
            redacted(format!(
                "AMQP broker {name} at {at} closed the connection ({error}); wrong credentials or vhost are the usual cause"
            )),
        ),
        _ => host_error(
            "upstream",
            redacted(format!("AMQP broker {name} at {at}: {error}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn profiles() -> BTreeMap<String, AuthProfile> {
        let mut map = BTreeMap::new();
        map.insert(
            "rmq".to_owned(),
            AuthProfile::Basic {
                username: "deckhand".into(),
                password: Secret::new("p@ss/word"),
            },
        );
        map.insert(
            "token".to_owned(),
            AuthProfile::Bearer {
                token: Secret::new("t"),
                scheme: None,
            },
        );
        map
    }

    fn broker(url: &str, profile: Option<&str>) -> BrokerConfig {
        BrokerConfig {
            url: url.into(),
            auth_profile: profile.map(str::to_owned),
        }
    }

    #[test]
    fn credentials_come_from_the_profile_as_fields() {
        let uri = broker_uri(
            "b",
            &broker("amqp://127.0.0.1:5673/%2f", Some("rmq")),
            &profiles(),
        )
        .unwrap();
        assert_eq!(uri.authority.userinfo.username, "deckhand");
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert_eq!(uri.vhost, "/");
        assert_eq!(endpoint(&uri), "127.0.0.1:5673");
    }

    #[test]
    fn bad_broker_configs_are_config_errors() {
        let p = profiles();
        for (b, needle) in [
            (broker("http://x", None), "not an AMQP URI"),
            (broker("amqp://u:pw@h:5672/", None), "carries credentials"),
            (
                broker("amqp://h:5672/", Some("token")),
                "not a kind = \"basic\"",
            ),
            (broker("amqp://h:5672/", Some("nope")), "not defined"),
        ] {
            let e = broker_uri("b", &b, &p).unwrap_err();
            assert_eq!(e.code, "config");
            assert!(e.message.contains(needle), "{}", e.message);
        }
    }
}
