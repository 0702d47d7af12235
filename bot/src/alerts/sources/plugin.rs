//! Notifications plugins push (runner job finished, deploy done) as alerts, so they are routed,
//! grouped and rate-limited like everything else.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::alerts::alert::{Alert, Severity, Source, Status, fnv1a};
use crate::host::services::PluginNotification;

/// Label under which a plugin's preferred channel travels; used when no route takes it.
pub const PREFERRED_CHANNEL: &str = "deckhand_channel";

pub fn to_alert(n: &PluginNotification) -> Alert {
    let mut labels: BTreeMap<String, String> = n
        .notification
        .labels
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    labels.insert("plugin".into(), n.plugin.clone());
    if let Some(channel) = &n.notification.channel {
        labels.insert(PREFERRED_CHANNEL.into(), channel.clone());
    }
    let status = match labels.get("status").map(String::as_str) {
        Some("resolved" | "ok" | "succeeded" | "done") => Status::Resolved,
        _ => Status::Firing,
    };
    // The same notification twice is a repeat; a new text is news.
    let flat: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "status")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut parts: Vec<&str> = vec![&n.plugin, &n.notification.title, &n.notification.text];
    parts.extend(flat.iter().map(String::as_str));
    Alert {
        source: Source::Plugin,
        fingerprint: format!("{}/{:016x}", n.plugin, fnv1a(&parts)),
        status,
        severity: Severity::parse(&n.notification.severity),
        name: n.notification.title.clone(),
        summary: n.notification.text.clone(),
        labels,
        starts_at: Some(chrono::Utc::now()),
        ends_at: None,
        url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_abi::proto::Notification;

    #[test]
    fn carries_plugin_labels_and_channel() {
        let mut labels = serde_json::Map::new();
        labels.insert("cluster".into(), Value::String("pangeo".into()));
        labels.insert("attempt".into(), Value::from(3));
        let n = PluginNotification {
            plugin: "runner".into(),
            invocation: None,
            notification: Notification {
                title: "job finished".into(),
                text: "job 42 done".into(),
                severity: "info".into(),
                labels,
                channel: Some("ml-jobs".into()),
            },
        };
        let a = to_alert(&n);
        assert_eq!(a.plugin(), Some("runner"));
        assert_eq!(a.cluster(), Some("pangeo"));
        assert_eq!(a.label("attempt"), Some("3"));
        assert_eq!(a.label(PREFERRED_CHANNEL), Some("ml-jobs"));
        assert_eq!(a.severity, Severity::Info);
        assert_eq!(to_alert(&n).id(), a.id());
    }
}
