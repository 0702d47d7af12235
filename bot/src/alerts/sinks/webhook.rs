//! Outbound webhooks: Slack incoming webhooks, Microsoft Teams workflow webhooks (Adaptive
//! Card), Mattermost incoming webhooks and a generic JSON body.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::alerts::storm::{Notice, Outgoing};
use crate::secret::Secret;

use super::{Flavor, SinkError, render_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    Slack,
    Teams,
    Mattermost,
    /// `{"destination", "kind", "text", "covers", "alerts": [...]}`
    Json,
}

/// `[alerts.webhooks.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub kind: WebhookKind,
    /// The webhook URL; it usually embeds a token, so it is a secret (`${SLACK_ML_WEBHOOK}`).
    pub url: Secret,
    /// Display name where the service allows one (Slack, Mattermost).
    #[serde(default)]
    pub username: Option<String>,
}

/// The request body for one message.
pub fn body(kind: WebhookKind, config: &WebhookConfig, outgoing: &Outgoing) -> Value {
    match kind {
        WebhookKind::Slack => {
            let mut v = json!({ "text": render_text(outgoing, Flavor::Slack) });
            if let Some(u) = &config.username {
                v["username"] = json!(u);
            }
            v
        }
        WebhookKind::Mattermost => {
            let mut v = json!({ "text": render_text(outgoing, Flavor::Markdown) });
            if let Some(u) = &config.username {
                v["username"] = json!(u);
            }
            v
        }
        WebhookKind::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{
                        "type": "TextBlock",
                        "text": render_text(outgoing, Flavor::Markdown),
                        "wrap": true
                    }]
                }
            }]
        }),
        WebhookKind::Json => {
            let (kind, alerts) = match &outgoing.notice {
                Notice::Alerts {
                    reminder: true,
                    alerts,
                    ..
                } => ("reminder", json!(alerts)),
                Notice::Alerts { status, alerts, .. } => (status.as_str(), json!(alerts)),
                Notice::Digest(_) => ("digest", json!([])),
            };
            json!({
                "destination": outgoing.destination.to_string(),
                "kind": kind,
                "text": render_text(outgoing, Flavor::Plain),
                "covers": outgoing.covers(),
                "alerts": alerts,
            })
        }
    }
}

/// Posts to the configured webhooks.
#[derive(Clone)]
pub struct WebhookSink {
    client: reqwest::Client,
    hooks: BTreeMap<String, WebhookConfig>,
}

impl WebhookSink {
    pub fn new(hooks: BTreeMap<String, WebhookConfig>, timeout: Duration) -> WebhookSink {
        WebhookSink {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            hooks,
        }
    }

    /// Posts one message; a 429, a 5xx or a transport error is retried up to `ATTEMPTS` times,
    /// waiting `Retry-After` when the service gives one (Slack does), else 1 s, 2 s, ...
    pub async fn send(&self, name: &str, outgoing: &Outgoing) -> Result<(), SinkError> {
        const ATTEMPTS: u32 = 3;
        let failed = |message: String| SinkError::Failed {
            destination: format!("webhook {name}"),
            message,
        };
        let config = self
            .hooks
            .get(name)
            .ok_or_else(|| failed("not configured".into()))?;
        let body = body(config.kind, config, outgoing);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let wait = match self
                .client
                .post(config.url.expose())
                .json(&body)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable || attempt >= ATTEMPTS {
                        return Err(failed(format!("HTTP {status} (attempt {attempt})")));
                    }
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|secs| Duration::from_secs(secs.min(60)))
                }
                // reqwest's error names the URL, which holds the token: keep only the kind.
                Err(e) => {
                    if attempt >= ATTEMPTS {
                        let kind = if e.is_timeout() {
                            "timeout"
                        } else if e.is_connect() {
                            "connect"
                        } else {
                            "transport"
                        };
                        return Err(failed(format!(
                            "request failed ({kind}, attempt {attempt})"
                        )));
                    }
                    None
                }
            };
            let wait = wait.unwrap_or(Duration::from_secs(1 << (attempt - 1)));
            tracing::debug!(webhook = name, attempt, ?wait, "webhook retry");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::alert::{Alert, Severity, Source, Status};
    use crate::alerts::route::Destination;

    fn outgoing() -> Outgoing {
        Outgoing {
            destination: Destination::Webhook("hook".into()),
            notice: Notice::Alerts {
                status: Status::Firing,
                reminder: false,
                group: "g".into(),
                alerts: vec![Alert {
                    source: Source::Kubernetes,
                    fingerprint: "f".into(),
                    status: Status::Firing,
                    severity: Severity::Critical,
                    name: "NodeNotReady".into(),
                    summary: "node aks-gpu-0 is NotReady".into(),
                    labels: Default::default(),
                    starts_at: None,
                    ends_at: None,
                    url: None,
                }],
            },
        }
    }

    #[test]
    fn bodies_per_kind() {
        let config = |kind| WebhookConfig {
            kind,
            url: Secret::new("http://x"),
            username: Some("deckhand".into()),
        };
        let o = outgoing();
        let slack = body(WebhookKind::Slack, &config(WebhookKind::Slack), &o);
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .starts_with("*🔴 FIRING critical · NodeNotReady*")
        );
        assert_eq!(slack["username"], "deckhand");
        let teams = body(WebhookKind::Teams, &config(WebhookKind::Teams), &o);
        assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
        let generic = body(WebhookKind::Json, &config(WebhookKind::Json), &o);
        assert_eq!(generic["covers"], 1);
        assert_eq!(generic["alerts"][0]["name"], "NodeNotReady");
        let mm = body(
            WebhookKind::Mattermost,
            &config(WebhookKind::Mattermost),
            &o,
        );
        assert!(mm["text"].as_str().unwrap().contains("**"));
    }
}
