//! Dask Gateway's REST API: the clusters of the auth profile's identity
//! (`GET /api/v1/clusters/`), their schedulers' worker lists (distributed's
//! `json/identity.json` behind the gateway's dashboard route), and stopping one
//! (`DELETE /api/v1/clusters/{name}`).
//!
//! The gateway shows each user only their own clusters: the plugin sees those of the identity
//! whose token its auth profile holds. Cluster records carry the cluster's TLS key; the plugin
//! reads only the fields below and never repeats anything else.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Api;
use crate::rest;

/// One cluster as the gateway lists it (only what the plugin shows).
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub name: String,
    /// PENDING, STARTING, RUNNING, STOPPING, STOPPED, FAILED.
    pub status: String,
    #[serde(default)]
    pub dashboard_route: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, Value>,
}

/// What the cluster's scheduler says about its workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workers {
    pub count: usize,
    pub cores: u64,
    pub memory_bytes: u64,
}

pub fn clusters(ctx: &Ctx, api: &Api) -> Result<Vec<Cluster>, PluginError> {
    let url = rest::url(api, &["api", "v1", "clusters", ""], &[])?;
    let body = rest::get_json(ctx, api, &url, Vec::new())?;
    let by_name: BTreeMap<String, Cluster> = serde_json::from_value(body).map_err(|e| {
        PluginError::new(
            ErrorCode::Upstream,
            format!("{} answered clusters in an unexpected shape: {e}", api.what),
        )
    })?;
    Ok(by_name.into_values().collect())
}

/// The scheduler's workers, read through the gateway's dashboard route; `None` when the
/// cluster has no dashboard or it does not answer (the listing goes on without it).
pub fn workers(ctx: &Ctx, api: &Api, cluster: &Cluster) -> Option<Workers> {
    cluster.dashboard_route.as_ref()?;
    let url = rest::url(
        api,
        &["clusters", &cluster.name, "json", "identity.json"],
        &[],
    )
    .ok()?;
    let identity = rest::get_json(ctx, api, &url, Vec::new()).ok()?;
    let workers = identity["workers"].as_object()?;
    let mut total = Workers {
        count: workers.len(),
        ..Workers::default()
    };
    for worker in workers.values() {
        total.cores = total
            .cores
            .saturating_add(worker["nthreads"].as_u64().unwrap_or(0));
        total.memory_bytes = total
            .memory_bytes
            .saturating_add(worker["memory_limit"].as_u64().unwrap_or(0));
    }
    Some(total)
}

/// Stops a cluster; the gateway answers 204 whether or not it was running.
pub fn stop(ctx: &Ctx, api: &Api, name: &str) -> Result<(), PluginError> {
    let url = rest::url(api, &["api", "v1", "clusters", name], &[])?;
    rest::call(ctx, api, "DELETE", &url, Vec::new()).map(drop)
}

/// One cluster by name, or `None` when the gateway does not know it.
pub fn cluster(ctx: &Ctx, api: &Api, name: &str) -> Result<Option<Cluster>, PluginError> {
    let url = rest::url(api, &["api", "v1", "clusters", name], &[])?;
    match rest::get_json(ctx, api, &url, Vec::new()) {
        Ok(body) => serde_json::from_value(body).map(Some).map_err(|e| {
            PluginError::new(
                ErrorCode::Upstream,
                format!(
                    "{} answered cluster {name} in an unexpected shape: {e}",
                    api.what
                ),
            )
        }),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `2.0 GiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `• NAME: RUNNING, 2 workers, 4 cores, 8.0 GiB` (or what the options promise per worker).
pub fn line(cluster: &Cluster, workers: Option<&Workers>) -> String {
    let mut parts = vec![cluster.status.clone()];
    match workers {
        Some(w) => parts.push(format!(
            "{} worker{}, {} core{}, {}",
            w.count,
            if w.count == 1 { "" } else { "s" },
            w.cores,
            if w.cores == 1 { "" } else { "s" },
            bytes(w.memory_bytes)
        )),
        None if cluster.status == "RUNNING" => parts.push("workers not readable".into()),
        None => {}
    }
    let per_worker: Vec<String> = ["worker_cores", "worker_memory"]
        .iter()
        .filter_map(|key| cluster.options.get(*key).map(|v| format!("{key} {v}")))
        .collect();
    if !per_worker.is_empty() {
        parts.push(format!("options: {}", per_worker.join(", ")));
    }
    format!("  • {}: {}", cluster.name, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2 * 1024 * 1024 * 1024), "2.0 GiB");
    }
}
