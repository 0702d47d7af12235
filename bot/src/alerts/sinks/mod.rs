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

fn span(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)).to_string()
}

/// "since 13:00 UTC (12m)" for a firing alert.
fn age(alert: &Alert) -> String {
    match alert.starts_at {
        Some(t) => format!(
            "since {} ({})",
            t.format("%H:%M UTC"),
            span((Utc::now() - t).num_seconds())
        ),
        None => String::new(),
    }
}

/// "was firing for 10m (13:00–13:10 UTC)" for a resolved alert: from its own `startsAt` to
/// its own `endsAt` (now when the source does not say when it ended).
fn fired_for(alert: &Alert) -> String {
    let Some(start) = alert.starts_at else {
        return String::new();
    };
    let end = alert.ends_at.unwrap_or_else(Utc::now);
    format!(
        "was firing for {} ({}–{})",
        span((end - start).num_seconds()),
        start.format("%H:%M"),
        end.format("%H:%M UTC")
    )
}

/// Labels whose values tell the alerts of one message apart (`pod=checkout-1`).
fn distinguishing(alerts: &[Alert], alert: &Alert) -> String {
    let first = &alerts[0];
    let mut out = Vec::new();
    for (name, value) in &alert.labels {
        if alerts
            .iter()
            .any(|a| a.labels.get(name) != first.labels.get(name))
        {
            out.push(format!("{name}={value}"));
        }
    }
    out.join(" ")
}

/// The text of one message, secrets masked (alert annotations come from outside: an
/// Alertmanager template can carry anything).
pub fn render_text(outgoing: &Outgoing, flavor: Flavor) -> String {
    crate::redact::redact(&compose_text(outgoing, flavor)).into_owned()
}

fn compose_text(outgoing: &Outgoing, flavor: Flavor) -> String {
    let mut out = String::new();
    match &outgoing.notice {
        Notice::Alerts {
            status,
            reminder,
            alerts,
            ..
        } => {
            let Some(first) = alerts.first() else {
                return out;
            };
            let worst = alerts
                .iter()
                .map(|a| a.severity)
                .min()
                .unwrap_or(first.severity);
            let scope = first.scope();
            let head = match (status, reminder) {
                (Status::Firing, false) => format!("{} FIRING {}", worst.icon(), worst),
                (Status::Firing, true) => {
                    format!("🔁 REMINDER: still firing {} {}", worst.icon(), worst)
                }
                (Status::Resolved, _) => "✅ RESOLVED".to_owned(),
            };
            let _ = write!(out, "{}", bold(flavor, &format!("{head} · {}", first.name)));
            if !scope.is_empty() {
                let _ = write!(out, " · {scope}");
            }
            if alerts.len() > 1 {
                let _ = write!(out, " ({} alerts)", alerts.len());
            }
            let summary = |a: &Alert| {
                if a.summary.is_empty() {
                    a.name.clone()
                } else {
                    a.summary.clone()
                }
            };
            // One summary for all: said once, the lines tell the alerts apart by label.
            let shared = alerts.len() > 1 && alerts.iter().all(|a| summary(a) == summary(first));
            if shared {
                let _ = write!(out, "\n{}", summary(first));
            }
            for alert in alerts {
                let _ = write!(out, "\n• {}", code(flavor, &alert.id()));
                if shared {
                    let labels = distinguishing(alerts, alert);
                    if !labels.is_empty() {
                        let _ = write!(out, " {labels}");
                    }
                } else {
                    let _ = write!(out, " {}", summary(alert));
                }
                if *status == Status::Resolved {
                    let fired = fired_for(alert);
                    if !fired.is_empty() {
                        let _ = write!(out, " ({fired})");
                    }
                } else {
                    if !shared
                        && alert.source.as_str() == "alertmanager"
                        && let Some(instance) = alert.label("instance")
                    {
                        let _ = write!(out, " [{instance}]");
                    }
                    let since = age(alert);
                    if *reminder && !since.is_empty() {
                        let _ = write!(out, " ({since})");
                    }
                }
                if let Some(url) = &alert.url {
                    let _ = write!(out, " <{url}>");
                }
            }
        }
        Notice::Digest(d) => {
            let mut parts = Vec::new();
            if d.new_alerts() > 0 {
                let mut part = format!("{} new", d.new_alerts());
                if d.since_resolved() > 0 {
                    let _ = write!(part, " ({} since resolved)", d.since_resolved());
                }
                parts.push(part);
            }
            if d.resolutions() > 0 {
                parts.push(format!("{} resolved (announced earlier)", d.resolutions()));
            }
            if d.reminders() > 0 {
                parts.push(format!("{} still firing (reminder)", d.reminders()));
            }
            let _ = write!(
                out,
                "{}",
                bold(
                    flavor,
                    &format!(
                        "📦 Digest: {} alerts folded to respect this channel's rate limit: {}",
                        d.count(),
                        parts.join(", ")
                    )
                )
            );
            let lines = d.by_name();
            for (i, (name, severity, count)) in lines.iter().enumerate() {
                if i == 10 {
                    let rest: u64 = lines.iter().skip(10).map(|l| l.2).sum();
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::alerts::alert::{Severity, Source};
    use crate::alerts::route::Destination;

    fn pod(i: usize, status: Status, summary: &str) -> Alert {
        Alert {
            source: Source::Alertmanager,
            fingerprint: format!("f{i}"),
            status,
            severity: Severity::Warning,
            name: "KubePodCrashLooping".into(),
            summary: summary.into(),
            labels: [
                ("alertname".to_owned(), "KubePodCrashLooping".to_owned()),
                ("namespace".to_owned(), "shop".to_owned()),
                ("pod".to_owned(), format!("checkout-{i}")),
            ]
            .into_iter()
            .collect(),
            starts_at: Some(Utc.with_ymd_and_hms(2026, 2, 6, 13, 0, 0).unwrap()),
            ends_at: None,
            url: None,
        }
    }

    fn text(status: Status, reminder: bool, alerts: Vec<Alert>) -> String {
        compose_text(
            &Outgoing {
                destination: Destination::Channel("c".into()),
                notice: Notice::Alerts {
                    status,
                    reminder,
                    group: "g".into(),
                    alerts,
                },
            },
            Flavor::Plain,
        )
    }

    /// Issue 12, point 15: ten alerts with one summary say it once.
    #[test]
    fn a_shared_summary_is_said_once() {
        let summary = "Pod is restarting more than 3 times in 10 minutes";
        let alerts: Vec<Alert> = (0..10).map(|i| pod(i, Status::Firing, summary)).collect();
        let out = text(Status::Firing, false, alerts);
        assert_eq!(out.matches(summary).count(), 1, "{out}");
        assert!(out.contains("(10 alerts)"), "{out}");
        for i in 0..10 {
            assert!(out.contains(&format!("pod=checkout-{i}")), "{out}");
        }
        assert!(
            !out.contains("namespace=shop"),
            "shared labels are not repeated: {out}"
        );
        // Different summaries stay on their lines.
        let out = text(
            Status::Firing,
            false,
            vec![pod(1, Status::Firing, "one"), pod(2, Status::Firing, "two")],
        );
        assert!(out.contains(" one") && out.contains(" two"), "{out}");
    }

    /// Issue 12, point 15: "was firing for" is from the alert's own startsAt to its endsAt.
    #[test]
    fn was_firing_for_uses_the_alerts_own_end() {
        let mut a = pod(1, Status::Resolved, "a");
        a.ends_at = Some(Utc.with_ymd_and_hms(2026, 2, 6, 13, 10, 0).unwrap());
        let mut b = pod(2, Status::Resolved, "b");
        b.ends_at = Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 0, 0).unwrap());
        let out = text(Status::Resolved, false, vec![a, b]);
        assert!(
            out.contains("was firing for 10m (13:00–13:10 UTC)"),
            "{out}"
        );
        assert!(out.contains("was firing for 2h (13:00–15:00 UTC)"), "{out}");
    }

    #[test]
    fn reminders_say_so() {
        let out = text(Status::Firing, true, vec![pod(1, Status::Firing, "a")]);
        assert!(out.starts_with("🔁 REMINDER: still firing"), "{out}");
        assert!(out.contains("since 13:00 UTC"), "{out}");
    }
}
