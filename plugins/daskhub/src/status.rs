//! `/daskhub status`, `/daskhub clusters` and `/daskhub stop CLUSTER`.
//!
//! Status reads four things and shows each, or why it could not be read: the release's pods
//! (Kubernetes), JupyterHub's users and servers, Dask Gateway's clusters, the public URL.

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use serde_json::Value;

use crate::config::Settings;
use crate::{gateway, hub, kube};
use deckhand_plugin_shared::names::NameRule;

/// The release's parts and how their pods are recognised (the jupyterhub chart's `component`
/// label, the dask-gateway chart's `app.kubernetes.io/component`).
const PARTS: [(&str, &str, &str); 4] = [
    ("hub", "component", "hub"),
    ("proxy", "component", "proxy"),
    ("gateway", "app.kubernetes.io/component", "gateway"),
    (
        "gateway controller",
        "app.kubernetes.io/component",
        "controller",
    ),
];

fn pods_line(ctx: &Ctx, settings: &Settings, cluster: Option<&str>) -> String {
    let namespace = &settings.namespace;
    let kube_cluster = match settings.kube_cluster(cluster) {
        Ok(c) => c,
        Err(e) => return format!("Pods: not readable ({e})"),
    };
    let pods = match kube::list(ctx, &kube_cluster, "v1", "Pod", namespace, None) {
        Ok(pods) => pods,
        Err(e) => {
            return format!(
                "Pods: not readable in {kube_cluster}/{namespace} ({})",
                e.message
            );
        }
    };
    let parts: Vec<String> = PARTS
        .iter()
        .map(|(part, key, value)| {
            let mine: Vec<&Value> = pods
                .iter()
                .filter(|p| p["metadata"]["labels"][*key] == *value)
                .collect();
            let ready = mine.iter().filter(|p| kube::pod_ready(p)).count();
            let mark = if !mine.is_empty() && ready == mine.len() {
                "✓"
            } else {
                "✗"
            };
            format!("{mark} {part} {ready}/{}", mine.len())
        })
        .collect();
    format!("Pods in {kube_cluster}/{namespace}: {}", parts.join(", "))
}

fn public_url(ctx: &Ctx, settings: &Settings, cluster: Option<&str>) -> String {
    if let Some(url) = &settings.public_url {
        return url.clone();
    }
    let Ok(kube_cluster) = settings.kube_cluster(cluster) else {
        return "unknown (set public_url in [plugins.config.daskhub])".into();
    };
    match kube::get(
        ctx,
        &kube_cluster,
        "v1",
        "Service",
        &settings.namespace,
        "proxy-public",
    ) {
        Ok(Some(service)) => {
            let ingress = &service["status"]["loadBalancer"]["ingress"][0];
            match ingress["hostname"].as_str().or(ingress["ip"].as_str()) {
                Some(host) => format!("http://{host}"),
                None => "not assigned yet (Service proxy-public has no external address)".into(),
            }
        }
        Ok(None) => format!("none (no Service proxy-public in {})", settings.namespace),
        Err(e) => format!("not readable ({})", e.message),
    }
}

pub fn status(ctx: &Ctx, settings: &Settings, cluster: Option<&str>) -> Result<Reply, PluginError> {
    let mut lines = vec![format!(
        "DaskHub release {} in {}",
        settings.release, settings.namespace
    )];
    lines.push(pods_line(ctx, settings, cluster));
    match settings.hub().and_then(|api| hub::users(ctx, api)) {
        Ok(users) => {
            let summary = hub::summarize(&users);
            lines.push(format!(
                "JupyterHub: {} user{}, {} server{} running{}",
                summary.users,
                if summary.users == 1 { "" } else { "s" },
                summary.running,
                if summary.running == 1 { "" } else { "s" },
                if summary.pending > 0 {
                    format!(", {} pending", summary.pending)
                } else {
                    String::new()
                }
            ));
            lines.extend(summary.lines);
        }
        Err(e) => lines.push(format!("JupyterHub: ✗ {e}")),
    }
    match settings
        .gateway()
        .and_then(|api| Ok((api, gateway::clusters(ctx, api)?)))
    {
        Ok((api, clusters)) => {
            lines.push(format!(
                "Dask Gateway: {} cluster{}",
                clusters.len(),
                if clusters.len() == 1 { "" } else { "s" }
            ));
            for cluster in &clusters {
                lines.push(gateway::line(
                    cluster,
                    gateway::workers(ctx, api, cluster).as_ref(),
                ));
            }
        }
        Err(e) => lines.push(format!("Dask Gateway: ✗ {e}")),
    }
    lines.push(format!(
        "Public URL: {}",
        public_url(ctx, settings, cluster)
    ));
    Ok(Reply::text(lines.join("\n")))
}

pub fn clusters(ctx: &Ctx, settings: &Settings) -> Result<Reply, PluginError> {
    let api = settings.gateway()?;
    let clusters = gateway::clusters(ctx, api)?;
    if clusters.is_empty() {
        return Ok(Reply::text(format!(
            "No Dask Gateway clusters at {} (for the identity of auth profile {:?}).",
            api.shown(),
            api.auth_profile
        )));
    }
    let mut lines = vec![format!(
        "{} Dask Gateway cluster{} at {}:",
        clusters.len(),
        if clusters.len() == 1 { "" } else { "s" },
        api.shown()
    )];
    for cluster in &clusters {
        lines.push(gateway::line(
            cluster,
            gateway::workers(ctx, api, cluster).as_ref(),
        ));
    }
    Ok(Reply::text(lines.join("\n")))
}

pub fn stop(ctx: &Ctx, settings: &Settings, name: &str) -> Result<Reply, PluginError> {
    NameRule::DaskCluster
        .check(name)
        .map_err(|e| PluginError::bad_input("cluster", e.to_string()))?;
    let api = settings.gateway()?;
    let Some(cluster) = gateway::cluster(ctx, api, name)? else {
        let known: Vec<String> = gateway::clusters(ctx, api)
            .map(|c| c.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        return Err(PluginError::new(
            ErrorCode::NotFound,
            format!(
                "Dask Gateway has no cluster {name}; {}",
                if known.is_empty() {
                    "it has none at all".to_owned()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ),
        )
        .with_option("cluster"));
    };
    if matches!(cluster.status.as_str(), "STOPPING" | "STOPPED" | "FAILED") {
        return Ok(Reply::text(format!(
            "Dask Gateway cluster {name} is already {}.",
            cluster.status
        )));
    }
    gateway::stop(ctx, api, name)?;
    let after = match gateway::cluster(ctx, api, name) {
        Ok(Some(c)) => format!(" Now {}.", c.status),
        Ok(None) => " It is gone.".to_owned(),
        Err(e) => format!(" (Its state could not be read back: {e})"),
    };
    Ok(Reply::text(format!(
        "✓ Stopped Dask Gateway cluster {name} (was {}).{after}",
        cluster.status
    )))
}
