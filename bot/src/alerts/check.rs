//! `deckhand check` for the `[alerts]` section: every problem at once, nothing started.

use std::collections::BTreeSet;

use super::AlertsConfig;
use super::route::Routes;

/// For `deckhand check`: every problem of the `[alerts]` section (routes, webhook URLs, the
/// Alertmanager URL, each watched cluster's credentials source), without starting anything.
/// Kubeconfig paths resolve against `base_dir`; a cluster without one must be among
/// `kubernetes`' clusters.
pub fn check(
    alerts: Option<&AlertsConfig>,
    base_dir: &std::path::Path,
    kubernetes: &crate::cloud::config::KubernetesConfig,
) -> Vec<String> {
    let Some(alerts) = alerts.filter(|a| a.enabled) else {
        return Vec::new();
    };
    let hooks: BTreeSet<String> = alerts.webhooks.keys().cloned().collect();
    let mut problems: Vec<String> =
        match Routes::new(&alerts.routes, &alerts.default_channel, &hooks) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
    if alerts.default_channel.trim().is_empty() {
        problems.push("[alerts] default_channel is empty: unmatched alerts need a channel".into());
    }
    for (name, hook) in &alerts.webhooks {
        if reqwest::Url::parse(hook.url.expose()).is_err() {
            // The URL holds a token: never print it.
            problems.push(format!("[alerts.webhooks.{name}] url is not a valid URL"));
        }
    }
    if let Some(am) = &alerts.alertmanager
        && reqwest::Url::parse(&am.url).is_err()
    {
        problems.push(format!(
            "[alerts.alertmanager] url {:?} is not a valid URL",
            am.url
        ));
    }
    for cluster in &alerts.kubernetes {
        match &cluster.kubeconfig {
            Some(path) => {
                let path = crate::config_support::resolve(base_dir, path);
                if let Err(e) = kube::config::Kubeconfig::read_from(&path) {
                    problems.push(format!(
                        "[[alerts.kubernetes]] {}: kubeconfig {}: {e}",
                        cluster.name,
                        path.display()
                    ));
                }
            }
            None => {
                if !kubernetes.clusters.iter().any(|c| c.name == cluster.name) {
                    problems.push(format!(
                        "[[alerts.kubernetes]] {}: no kubeconfig, and no [[kubernetes.clusters]] entry of that name",
                        cluster.name
                    ));
                }
            }
        }
    }
    problems
}
