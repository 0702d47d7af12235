//! The one alert shape every source is turned into before routing and storm control.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an alert came from; routes match on [`Source::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Alertmanager,
    AzureMonitor,
    Kubernetes,
    Plugin,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Alertmanager,
        Source::AzureMonitor,
        Source::Kubernetes,
        Source::Plugin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::AzureMonitor => "azure_monitor",
            Source::Kubernetes => "kubernetes",
            Source::Plugin => "plugin",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Severity, most severe first (so sorting puts critical alerts on top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    /// Reads the usual spellings (`critical`, `page`, `high`, `warn`, Azure's `Sev0`..`Sev4`);
    /// anything unknown counts as a warning rather than being dropped.
    pub fn parse(text: &str) -> Severity {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "fatal" | "emergency" | "sev0" => Severity::Critical,
            "error" | "err" | "high" | "major" | "sev1" => Severity::Error,
            "warning" | "warn" | "medium" | "minor" | "sev2" => Severity::Warning,
            "info" | "informational" | "low" | "none" | "notice" | "verbose" | "debug" | "sev3"
            | "sev4" => Severity::Info,
            _ => Severity::Warning,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Severity::Critical => "🔴",
            Severity::Error => "🟠",
            Severity::Warning => "🟡",
            Severity::Info => "🔵",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert, whatever its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub source: Source,
    /// Stable identity within the source: the same problem firing again has the same one.
    pub fingerprint: String,
    pub status: Status,
    pub severity: Severity,
    /// `alertname`, Azure rule name, Kubernetes reason, plugin notification title.
    pub name: String,
    pub summary: String,
    /// Routing labels; `cluster`, `namespace` and `plugin` have their usual meaning.
    pub labels: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stopped firing, as the source says (Alertmanager's `endsAt` of a resolved
    /// alert); `None` when the source does not say.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to the source (generator URL, Azure portal, ...).
    pub url: Option<String>,
}

impl Alert {
    /// The identity storm control and the book key on: source and the full fingerprint
    /// (Alertmanager's 64-bit fingerprint, Azure's alert id, ...), never a hash of it.
    pub fn key(&self) -> AlertKey {
        AlertKey::new(self.source, &self.fingerprint)
    }

    /// A short id for people (8 hex digits, stable across restarts and channels). Two alerts
    /// can share one (32 bits): it is shown and accepted by `/alerts ack` when unambiguous,
    /// never used as a key.
    pub fn id(&self) -> String {
        alert_id(self.source, &self.fingerprint)
    }

    /// 16 hex digits that tell any two alerts apart in practice (64 bits); Ack buttons use it.
    pub fn long_id(&self) -> String {
        format!("{:016x}", fnv1a(&[self.source.as_str(), &self.fingerprint]))
    }

    /// A label, with `alertname`, `severity` and `source` always available.
    pub fn label(&self, name: &str) -> Option<&str> {
        match self.labels.get(name) {
            Some(value) => Some(value.as_str()),
            None => match name {
                "alertname" => Some(self.name.as_str()),
                "severity" => Some(self.severity.as_str()),
                "source" => Some(self.source.as_str()),
                _ => None,
            },
        }
    }

    pub fn cluster(&self) -> Option<&str> {
        self.label("cluster")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.label("namespace")
    }

    pub fn plugin(&self) -> Option<&str> {
        self.label("plugin")
    }

    /// `cluster/namespace`, or whichever is known.
    pub fn scope(&self) -> String {
        match (self.cluster(), self.namespace()) {
            (Some(c), Some(n)) => format!("{c}/{n}"),
            (Some(c), None) => c.to_owned(),
            (None, Some(n)) => n.to_owned(),
            (None, None) => String::new(),
        }
    }
}

/// FNV-1a: stable across builds and platforms (std's hasher promises neither).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The short id: the low 32 bits of [`Alert::long_id`].
pub fn alert_id(source: Source, fingerprint: &str) -> String {
    format!("{:08x}", fnv1a(&[source.as_str(), fingerprint]) as u32)
}

/// Source and full fingerprint: what deduplication, acks and `/alerts list` key on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey(String);

impl AlertKey {
    pub fn new(source: Source, fingerprint: &str) -> AlertKey {
        AlertKey(format!("{}:{fingerprint}", source.as_str()))
    }

    /// As stored in the state database.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> AlertKey {
        AlertKey(text)
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Two Alertmanager fingerprints whose short ids collide, found by search.
#[cfg(test)]
pub(crate) fn colliding_fingerprints() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    (0u32..)
        .find_map(|i| {
            let fingerprint = format!("checkout-{i:07}");
            seen.insert(
                alert_id(Source::Alertmanager, &fingerprint),
                fingerprint.clone(),
            )
            .map(|other| (other, fingerprint))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_spellings() {
        assert_eq!(Severity::parse("Sev0"), Severity::Critical);
        assert_eq!(Severity::parse("sev1"), Severity::Error);
        assert_eq!(Severity::parse("Sev2"), Severity::Warning);
        assert_eq!(Severity::parse("Sev4"), Severity::Info);
        assert_eq!(Severity::parse("page"), Severity::Critical);
        assert_eq!(Severity::parse("whatever"), Severity::Warning);
        assert!(Severity::Critical < Severity::Info);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(
            alert_id(Source::Alertmanager, "abc"),
            alert_id(Source::Alertmanager, "abc")
        );
        assert_ne!(
            alert_id(Source::Alertmanager, "abc"),
            alert_id(Source::Kubernetes, "abc")
        );
        assert_eq!(alert_id(Source::Plugin, "x").len(), 8);
    }

    /// Two fingerprints whose short ids collide (32 bits collide after ~80,000 alerts) still
    /// have different keys and long ids.
    #[test]
    fn colliding_short_ids_keep_distinct_keys() {
        let (a, b) = colliding_fingerprints();
        let alert = |f: &str| Alert {
            source: Source::Alertmanager,
            fingerprint: f.into(),
            status: Status::Firing,
            severity: Severity::Error,
            name: "PodDown".into(),
            summary: String::new(),
            labels: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            url: None,
        };
        let (a, b) = (alert(&a), alert(&b));
        assert_eq!(a.id(), b.id());
        assert_ne!(a.key(), b.key());
        assert_ne!(a.long_id(), b.long_id());
        assert!(a.long_id().ends_with(&a.id()));
    }
}
