//! `/alerts list`, `/alerts ack ID`, `/alerts silence MATCHERS --for 2h`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use serde_json::json;

use super::AlertsState;
use crate::router::builtins::BuiltinGroup;
use crate::router::parse::Parsed;
use crate::router::{Invocation, Response, Router, RouterError};
use futures_util::future::BoxFuture;

pub struct AlertsCommands {
    state: Arc<AlertsState>,
}

impl AlertsCommands {
    pub fn new(state: Arc<AlertsState>) -> AlertsCommands {
        AlertsCommands { state }
    }

    fn list(&self, limit: usize) -> String {
        let records = self.state.active();
        let silences = self.state.silences();
        let stats = self.state.storm_stats();
        let mut out = String::new();
        if records.is_empty() {
            out.push_str("No active alerts.");
        } else {
            let _ = write!(out, "{} active alert(s):", records.len());
            for r in records.iter().take(limit) {
                let a = &r.alert;
                let _ = write!(
                    out,
                    "\n{} `{}` {} [{}] {}{}",
                    a.severity.icon(),
                    a.id(),
                    a.name,
                    a.source.as_str(),
                    a.scope(),
                    if a.summary.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", a.summary)
                    }
                );
                if r.repeats > 0 {
                    let _ = write!(out, " (×{})", r.repeats + 1);
                }
                if let Some(by) = &r.acked_by {
                    let _ = write!(out, " ✔ acked by {by}");
                }
            }
            if records.len() > limit {
                let _ = write!(out, "\n… and {} more", records.len() - limit);
            }
        }
        for s in &silences {
            let left = (s.ends_at - Utc::now()).num_seconds().max(0) as u64;
            let _ = write!(
                out,
                "\n🔇 silence {} {} for another {} (by {})",
                s.id,
                s.describe(),
                humantime::format_duration(Duration::from_secs(left)),
                s.created_by
            );
        }
        if stats.pending > 0 || stats.folded > 0 {
            let _ = write!(
                out,
                "\nStorm control: {} waiting, {} folded into digests, {} repeats dropped.",
                stats.pending, stats.folded, stats.deduplicated
            );
        }
        out
    }
}

impl BuiltinGroup for AlertsCommands {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("alerts", "Active alerts, acknowledgements and silences")
                .subcommand(
                    CommandSpec::new("list", "Active alerts, most severe first, and silences")
                        .option(
                            OptionSpec::new("limit", OptionKind::Integer, "How many to show")
                                .default_value(json!(25)),
                        ),
                )
                .subcommand(
                    CommandSpec::new("ack", "Acknowledge an alert: its repeats stop notifying")
                        .option(
                            OptionSpec::new("id", OptionKind::String, "Alert id from the message")
                                .required()
                                .positional(),
                        ),
                )
                .subcommand(
                    CommandSpec::new(
                        "silence",
                        "Silence alerts matching label matchers (also in Alertmanager when configured)",
                    )
                    .option(
                        OptionSpec::new(
                            "matchers",
                            OptionKind::String,
                            "Matchers, comma separated: alertname=X,cluster=Y,job=~api.*",
                        )
                        .required()
                        .positional(),
                    )
                    .option(
                        OptionSpec::new("for", OptionKind::Duration, "How long")
                            .default_value(json!(2 * 3600 * 1000)),
                    )
                    .option(OptionSpec::new("comment", OptionKind::String, "Why")),
                )
                .subcommand(
                    CommandSpec::new("unsilence", "Lift a silence early (in Alertmanager too)")
                        .option(
                            OptionSpec::new("id", OptionKind::String, "Silence id from /alerts list")
                                .required()
                                .positional(),
                        ),
                ),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            let text = |name: &str| {
                parsed
                    .options
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let who = &invocation.caller.display_name;
            match parsed.path.get(1).map(String::as_str) {
                Some("list") => {
                    let limit = parsed
                        .options
                        .get("limit")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(25)
                        .clamp(1, 200) as usize;
                    Ok(Response::ok(self.list(limit)))
                }
                Some("ack") => {
                    let id = text("id");
                    let record = self
                        .state
                        .ack(id.trim_start_matches('`').trim_end_matches('`'), who)
                        .map_err(|e| RouterError::Builtin(e.to_string()))?;
                    Ok(Response::ok(format!(
                        "Acknowledged {} {} ({}); repeats stay quiet until it resolves.",
                        record.alert.id(),
                        record.alert.name,
                        record.alert.scope()
                    )))
                }
                Some("silence") => {
                    let millis = parsed
                        .options
                        .get("for")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(2 * 3600 * 1000);
                    let duration = Duration::from_millis(millis);
                    let (silence, am_error) = self
                        .state
                        .silence(&text("matchers"), duration, who, &text("comment"))
                        .await
                        .map_err(|e| RouterError::Builtin(e.to_string()))?;
                    let mut reply = format!(
                        "Silenced {} for {} (silence {}).",
                        silence.describe(),
                        humantime::format_duration(duration),
                        silence.id
                    );
                    if let Some(id) = &silence.alertmanager_id {
                        let _ = write!(reply, " Alertmanager silence {id} created.");
                    }
                    if let Some(e) = am_error {
                        let _ =
                            write!(reply, " Warning: {e}; only Deckhand's routing is silenced.");
                    }
                    Ok(Response::ok(reply))
                }
                Some("unsilence") => {
                    let (silence, am_error) = self
                        .state
                        .unsilence(&text("id"))
                        .await
                        .map_err(|e| RouterError::Builtin(e.to_string()))?;
                    let mut reply =
                        format!("Lifted silence {} ({}).", silence.id, silence.describe());
                    if let Some(id) = &silence.alertmanager_id
                        && am_error.is_none()
                    {
                        let _ = write!(reply, " Alertmanager silence {id} expired.");
                    }
                    if let Some(e) = am_error {
                        let _ = write!(reply, " Warning: {e}.");
                    }
                    Ok(Response::ok(reply))
                }
                _ => Err(RouterError::Builtin(
                    "/alerts needs list, ack, silence or unsilence".into(),
                )),
            }
        })
    }
}
