//! Chat channels: a message with buttons to acknowledge or silence, posted via the Outbox.

use crate::alerts::alert::Status;
use crate::alerts::route::Destination;
use crate::alerts::storm::{Notice, Outgoing};
use crate::chat::{Action, OutboundMessage};

use super::{Flavor, render_text};

/// Builds the chat message for a channel destination (`None` for webhooks).
pub fn render(outgoing: &Outgoing) -> Option<OutboundMessage> {
    let Destination::Channel(channel) = &outgoing.destination else {
        return None;
    };
    let mut actions = Vec::new();
    if let Notice::Alerts {
        status: Status::Firing,
        alerts,
        ..
    } = &outgoing.notice
    {
        for alert in alerts.iter().take(3) {
            actions.push(Action {
                label: format!("Ack {}", alert.id()),
                // The long id: a short one may be shared by another active alert.
                command: format!("/alerts ack {}", alert.long_id()),
            });
        }
        let first = alerts.first()?;
        let mut matchers = vec![format!("alertname={}", quote(&first.name))];
        for label in ["cluster", "namespace"] {
            if let Some(value) = first.label(label)
                && alerts.iter().all(|a| a.label(label) == Some(value))
            {
                matchers.push(format!("{label}={}", quote(value)));
            }
        }
        actions.push(Action {
            label: "Silence 2h".into(),
            command: format!("/alerts silence {} --for 2h", matchers.join(",")),
        });
    }
    Some(OutboundMessage {
        channel: channel.clone(),
        text: render_text(outgoing, Flavor::Markdown),
        actions,
        files: Vec::new(),
        key: None,
    })
}

/// Quotes a matcher value when the command line would split it.
fn quote(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        value.to_owned()
    } else {
        format!("'\"{}\"'", value.replace(['"', '\''], ""))
    }
}
