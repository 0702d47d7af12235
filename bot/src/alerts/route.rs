//! Routing: rules tried in order, like Alertmanager's routes. A rule whose conditions all hold
//! sends the alert to its channels and webhooks; it stops the search unless it says
//! `continue = true`. An alert no rule took goes to the default channel: never dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use super::alert::{Alert, Severity};
use super::silence::{Matcher, MatcherError};

/// One `[[alerts.routes]]` rule. Every condition given must hold; an empty list means any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs and `/alerts list`.
    #[serde(default)]
    pub name: Option<String>,
    /// `alertmanager`, `azure_monitor`, `kubernetes`, `plugin`.
    #[serde(default)]
    pub source: Vec<String>,
    /// `critical`, `error`, `warning`, `info` (Azure's Sev0..Sev4 are mapped onto these).
    #[serde(default)]
    pub severity: Vec<String>,
    #[serde(default)]
    pub cluster: Vec<String>,
    #[serde(default)]
    pub namespace: Vec<String>,
    /// Plugin that pushed the notification.
    #[serde(default)]
    pub plugin: Vec<String>,
    /// Exact label values: `labels = { team = "ml" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Alertmanager-style matchers for anything else: `["job=~api.*", "env!=dev"]`.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Chat channel ids (Discord channel ids; `terminal` in the shell).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Names from `[alerts.webhooks]`.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Keep trying the following rules after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// A chat channel, posted through the [`crate::chat::Outbox`].
    Channel(String),
    /// A named outbound webhook.
    Webhook(String),
}

impl Destination {
    pub fn is_channel(&self) -> bool {
        matches!(self, Destination::Channel(_))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Channel(c) => write!(f, "channel {c}"),
            Destination::Webhook(w) => write!(f, "webhook {w}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("[[alerts.routes]] #{index}: {source}")]
    Matcher {
        index: usize,
        #[source]
        source: MatcherError,
    },
    #[error(
        "[[alerts.routes]] #{index}: unknown source {given:?} (one of alertmanager, azure_monitor, kubernetes, plugin)"
    )]
    UnknownSource { index: usize, given: String },
    #[error(
        "[[alerts.routes]] #{index}: unknown webhook {given:?}; define it under [alerts.webhooks.{given}]"
    )]
    UnknownWebhook { index: usize, given: String },
    #[error("[[alerts.routes]] #{index}: sends nowhere; give `channels` and/or `webhooks`")]
    NoDestination { index: usize },
}

struct Rule {
    name: String,
    sources: BTreeSet<String>,
    severities: BTreeSet<Severity>,
    clusters: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    plugins: BTreeSet<String>,
    matchers: Vec<Matcher>,
    destinations: Vec<Destination>,
    continue_matching: bool,
}

fn in_set(set: &BTreeSet<String>, value: Option<&str>) -> bool {
    set.is_empty() || value.is_some_and(|v| set.contains(v))
}

impl Rule {
    fn matches(&self, alert: &Alert) -> bool {
        in_set(&self.sources, Some(alert.source.as_str()))
            && (self.severities.is_empty() || self.severities.contains(&alert.severity))
            && in_set(&self.clusters, alert.cluster())
            && in_set(&self.namespaces, alert.namespace())
            && in_set(&self.plugins, alert.plugin())
            && self.matchers.iter().all(|m| m.matches(alert))
    }
}

/// The compiled routing table.
pub struct Routes {
    rules: Vec<Rule>,
    default: Destination,
}

/// Which rules took an alert, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub destinations: Vec<Destination>,
    /// Names of the matching rules; empty when the default channel took it.
    pub rules: Vec<String>,
}

impl Routes {
    pub fn new(
        configs: &[RouteConfig],
        default_channel: &str,
        webhooks: &BTreeSet<String>,
    ) -> Result<Routes, Vec<RouteError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let index = i + 1;
            let mut matchers: Vec<Matcher> = config
                .labels
                .iter()
                .map(|(k, v)| Matcher::parse(&format!("{k}={v:?}")))
                .filter_map(|m| {
                    m.map_err(|source| errors.push(RouteError::Matcher { index, source }))
                        .ok()
                })
                .collect();
            for text in &config.matchers {
                match Matcher::parse(text) {
                    Ok(m) => matchers.push(m),
                    Err(source) => errors.push(RouteError::Matcher { index, source }),
                }
            }
            for given in &config.source {
                if !["alertmanager", "azure_monitor", "kubernetes", "plugin"]
                    .contains(&given.as_str())
                {
                    errors.push(RouteError::UnknownSource {
                        index,
                        given: given.clone(),
                    });
                }
            }
            for given in &config.webhooks {
                if !webhooks.contains(given) {
                    errors.push(RouteError::UnknownWebhook {
                        index,
                        given: given.clone(),
                    });
                }
            }
            if config.channels.is_empty() && config.webhooks.is_empty() {
                errors.push(RouteError::NoDestination { index });
            }
            let destinations = config
                .channels
                .iter()
                .map(|c| Destination::Channel(c.clone()))
                .chain(
                    config
                        .webhooks
                        .iter()
                        .map(|w| Destination::Webhook(w.clone())),
                )
                .collect();
            rules.push(Rule {
                name: config
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("route {index}")),
                sources: config.source.iter().cloned().collect(),
                severities: config.severity.iter().map(|s| Severity::parse(s)).collect(),
                clusters: config.cluster.iter().cloned().collect(),
                namespaces: config.namespace.iter().cloned().collect(),
                plugins: config.plugin.iter().cloned().collect(),
                matchers,
                destinations,
                continue_matching: config.continue_matching,
            });
        }
        if errors.is_empty() {
            Ok(Routes {
                rules,
                default: Destination::Channel(default_channel.to_owned()),
            })
        } else {
            Err(errors)
        }
    }

    pub fn route(&self, alert: &Alert) -> Routed {
        let mut routed = Routed {
            destinations: Vec::new(),
            rules: Vec::new(),
        };
        for rule in &self.rules {
            if !rule.matches(alert) {
                continue;
            }
            routed.rules.push(rule.name.clone());
            for d in &rule.destinations {
                if !routed.destinations.contains(d) {
                    routed.destinations.push(d.clone());
                }
            }
            if !rule.continue_matching {
                break;
            }
        }
        if routed.destinations.is_empty() {
            routed.destinations.push(self.default.clone());
        }
        routed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::alert::{Source, Status};

    fn alert(source: Source, severity: Severity, labels: &[(&str, &str)]) -> Alert {
        Alert {
            source,
            fingerprint: "f".into(),
            status: Status::Firing,
            severity,
            name: "Test".into(),
            summary: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: None,
            ends_at: None,
            url: None,
        }
    }

    fn routes(toml_text: &str) -> Routes {
        #[derive(Deserialize)]
        struct Doc {
            routes: Vec<RouteConfig>,
        }
        let doc: Doc = toml::from_str(toml_text).unwrap();
        let hooks = ["slack".to_owned()].into_iter().collect();
        Routes::new(&doc.routes, "default", &hooks).unwrap()
    }

    #[test]
    fn first_match_continue_and_default() {
        let r = routes(
            r#"
            [[routes]]
            name = "gpu-critical"
            source = ["kubernetes"]
            severity = ["critical"]
            labels = { team = "ml" }
            channels = ["ml"]
            webhooks = ["slack"]
            continue = true
            [[routes]]
            name = "ml"
            labels = { team = "ml" }
            channels = ["ml", "ml-all"]
            [[routes]]
            name = "never reached for ml"
            matchers = ["team=~.+"]
            channels = ["teams"]
            "#,
        );
        let hit = r.route(&alert(
            Source::Kubernetes,
            Severity::Critical,
            &[("team", "ml")],
        ));
        assert_eq!(hit.rules, ["gpu-critical", "ml"]);
        assert_eq!(
            hit.destinations,
            [
                Destination::Channel("ml".into()),
                Destination::Webhook("slack".into()),
                Destination::Channel("ml-all".into())
            ]
        );
        let warn = r.route(&alert(
            Source::Kubernetes,
            Severity::Warning,
            &[("team", "ml")],
        ));
        assert_eq!(warn.rules, ["ml"]);
        let other = r.route(&alert(
            Source::Alertmanager,
            Severity::Info,
            &[("team", "web")],
        ));
        assert_eq!(other.destinations, [Destination::Channel("teams".into())]);
        let none = r.route(&alert(Source::Plugin, Severity::Info, &[]));
        assert!(none.rules.is_empty());
        assert_eq!(none.destinations, [Destination::Channel("default".into())]);
    }

    #[test]
    fn reports_every_config_error() {
        let rule = RouteConfig {
            source: vec!["nagios".into()],
            matchers: vec!["bad".into()],
            webhooks: vec!["nope".into()],
            ..Default::default()
        };
        let errors = Routes::new(&[rule, RouteConfig::default()], "d", &BTreeSet::new())
            .err()
            .unwrap();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, RouteError::NoDestination { index: 2 }))
        );
    }
}
