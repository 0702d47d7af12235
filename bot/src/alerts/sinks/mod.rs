//! Where storm control's messages go: chat channels through the [`crate::chat::Outbox`], and
//! outbound webhooks (Slack, Teams, Mattermost, generic JSON). One text renderer for all.

pub mod channel;
pub mod webhook;

use std::fmt::Write as _;

use chrono::Utc;

use super::alert::{Alert, Status};
use super::storm::{Notice, Outgoing};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{destination}: {message}")]
    Failed {
        destination: String,
        message: String,
    },
}

/// Markup flavours of the chat systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Discord and Mattermost (Markdown: `**bold**`).
    Markdown,
    /// Slack mrkdwn (`*bold*`).
    Slack,
    Plain,
}

fn bold(flavor: Flavor, text: &str) -> String {
    match flavor {
        Flavor::Markdown => format!("**{text}**"),
        Flavor::Slack => format!("*{text}*"),
        Flavor::Plain => text.to_owned(),
    }
}

fn code(flavor: Flavor, text: &str) -> String {
    match flavor {
        Flavor::Plain => text.to_owned(),
        _ => format!("`{text}`"),
    }
}

fn age(alert: &Alert) -> String {
    match alert.starts_at {
        Some(t) => {
            let secs = (Utc::now() - t).num_seconds().max(0) as u64;
            let since = t.format("%H:%M UTC");
            format!(
                "since {since} ({})",
                humantime::format_duration(std::time::Duration::from_secs(secs))
            )
        }
        None => String::new(),
    }
}

/// The text of one message, secrets masked (alert annotations come from outside: an
/// Alertmanager template can carry anything).
pub fn render_text(outgoing: &Outgoing, flavor: Flavor) -> String {
    crate::redact::redact(&compose_text(outgoing, flavor)).into_owned()
}

fn compose_text(outgoing: &Outgoing, flavor: Flavor) -> String {
    let mut out = String::new();
    match &outgoing.notice {
        Notice::Alerts { status, alerts, .. } => {
            let first = &alerts[0];
            let worst = alerts
                .iter()
                .map(|a| a.severity)
                .min()
                .unwrap_or(first.severity);
            let scope = first.scope();
            let head = match status {
                Status::Firing => format!("{} FIRING {}", worst.icon(), worst),
                Status::Resolved => "✅ RESOLVED".to_owned(),
            };
            let _ = write!(out, "{}", bold(flavor, &format!("{head} · {}", first.name)));
            if !scope.is_empty() {
                let _ = write!(out, " · {scope}");
            }
            if alerts.len() > 1 {
                let _ = write!(out, " ({} alerts)", alerts.len());
            }
            for alert in alerts {
                let summary = if alert.summary.is_empty() {
                    alert.name.as_str()
                } else {
                    alert.summary.as_str()
                };
                let _ = write!(out, "\n• {} {summary}", code(flavor, &alert.id()));
                if *status == Status::Resolved {
                    let since = age(alert);
                    if !since.is_empty() {
                        let _ = write!(out, " (was firing {since})");
                    }
                } else if alert.source.as_str() == "alertmanager"
                    && let Some(instance) = alert.label("instance")
                {
                    let _ = write!(out, " [{instance}]");
                }
                if let Some(url) = &alert.url {
                    let _ = write!(out, " <{url}>");
                }
            }
        }
        Notice::Digest(d) => {
            let _ = write!(
                out,
                "{}",
                bold(
                    flavor,
                    &format!(
                        "📦 Digest: {} alerts folded to respect this channel's rate limit ({} firing, {} resolved)",
                        d.count, d.firing, d.resolved
                    )
                )
            );
            for (i, ((severity, name), count)) in d.by_name.iter().enumerate() {
                if i == 10 {
                    let rest: u64 = d.by_name.values().skip(10).sum();
                    let _ = write!(out, "\n• … and {rest} more");
                    break;
                }
                let _ = write!(out, "\n• {count} × {name} ({severity})");
            }
            let _ = write!(
                out,
                "\n{} lists the active ones.",
                code(flavor, "/alerts list")
            );
        }
    }
    out
}
