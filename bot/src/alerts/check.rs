//! `deckhand check` for the `[alerts]` section: every problem at once, nothing started.

use std::collections::BTreeSet;

use super::route::Routes;
use super::{AlertsConfig, ReceiverAuth};

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
    for (place, spelling) in channels(alerts) {
        if !spelling.trim().is_empty()
            && let Err(e) = crate::router::parse::ChannelRef::parse(&spelling)
        {
            problems.push(format!("{place}: {e}"));
        }
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

/// Every channel `[alerts]` names, with where: `([alerts] default_channel, "#alerts")`.
pub fn channels(alerts: &AlertsConfig) -> Vec<(String, String)> {
    let mut out = vec![(
        "[alerts] default_channel".to_owned(),
        alerts.default_channel.clone(),
    )];
    for (i, route) in alerts.routes.iter().enumerate() {
        let place = match &route.name {
            Some(name) => format!("[[alerts.routes]] {name}"),
            None => format!("[[alerts.routes]] {}", i + 1),
        };
        out.extend(
            route
                .channels
                .iter()
                .map(|c| (format!("{place} channels"), c.clone())),
        );
    }
    out
}

/// Why a receiver at `listen` with `auth` is exposed: it listens beyond loopback and takes
/// alerts from anyone who can reach it.
pub fn exposed_receiver(alerts: &AlertsConfig) -> Option<String> {
    let listen = alerts.listen?;
    if listen.ip().is_loopback() || !matches!(alerts.auth, ReceiverAuth::None) {
        return None;
    }
    Some(format!(
        "[alerts] the receiver listens on {listen}, beyond loopback, without [alerts.auth]: \
         anyone who reaches it can post alerts; set [alerts.auth] (bearer or basic) or listen \
         on 127.0.0.1"
    ))
}

/// For `deckhand check`: what is allowed but risky in `[alerts]` (printed, not failing).
pub fn warnings(alerts: Option<&AlertsConfig>) -> Vec<String> {
    alerts
        .filter(|a| a.enabled)
        .and_then(exposed_receiver)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, auth: &str) -> AlertsConfig {
        toml::from_str(&format!(
            "listen = \"{listen}\"\ndefault_channel = \"a\"\n{auth}"
        ))
        .unwrap()
    }

    #[test]
    fn warns_about_an_open_receiver_beyond_loopback_only() {
        let open = config("0.0.0.0:9095", "");
        let warnings = warnings(Some(&open));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("0.0.0.0:9095"), "{warnings:?}");
        assert!(warnings[0].contains("[alerts.auth]"), "{warnings:?}");
        assert!(super::warnings(Some(&config("127.0.0.1:9095", ""))).is_empty());
        assert!(super::warnings(Some(&config("[::1]:9095", ""))).is_empty());
        let with_auth = config("0.0.0.0:9095", "[auth]\nkind = \"bearer\"\ntoken = \"t\"");
        assert!(super::warnings(Some(&with_auth)).is_empty());
    }
}
