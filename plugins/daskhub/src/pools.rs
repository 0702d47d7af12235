//! `/daskhub workers --min --max` and `/daskhub pools`, through ARM: the seed's node pools.
//!
//! * `users` — `hub.jupyter.org/node-purpose=user`, autoscaler 0..10, for user pods and Dask
//!   schedulers;
//! * `workers` — `k8s.dask.org/dedicated=worker`, autoscaler 0..50, Spot with eviction Delete
//!   and no price cap (`--spot-max-price -1`), for Dask workers.
//!
//! Pools are changed by read-modify-write with only what a client may write
//! (`writable::writable_pool`); a pool that exists is never recreated.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, PluginError, Reply};
use deckhand_plugin_shared::azure::{AKS_API, AgentPool, AgentPoolProperties, pool_path};
use deckhand_plugin_shared::names::check_pool_name;
use deckhand_plugin_shared::writable::writable_pool;
use serde_json::{Map, Value, json};

use crate::config::Settings;

/// The most nodes an AKS pool can hold.
const MAX_NODES: i64 = 1000;

/// What the seed asks of a pool.
pub struct Wanted {
    pub name: String,
    pub label: (&'static str, &'static str),
    pub min: i64,
    pub max: i64,
    pub spot: bool,
}

pub fn seed_pools(settings: &Settings) -> [Wanted; 2] {
    [
        Wanted {
            name: settings.user_pool.clone(),
            label: ("hub.jupyter.org/node-purpose", "user"),
            min: 0,
            max: 10,
            spot: false,
        },
        Wanted {
            name: settings.worker_pool.clone(),
            label: ("k8s.dask.org/dedicated", "worker"),
            min: 0,
            max: 50,
            spot: true,
        },
    ]
}

struct Target {
    resource_group: String,
    cluster: String,
}

fn target(settings: &Settings, cluster: Option<&str>) -> Result<Target, PluginError> {
    let cluster = settings
        .clusters
        .require_cluster(cluster, "[plugins.config.daskhub]")?;
    let resource_group = settings.clusters.resource_group.clone().ok_or_else(|| {
        PluginError::new(
            ErrorCode::Config,
            "resource_group is not set in [plugins.config.daskhub]",
        )
    })?;
    Ok(Target {
        resource_group,
        cluster,
    })
}

fn path(target: &Target, pool: &str) -> Result<String, PluginError> {
    check_pool_name(pool).map_err(|e| PluginError::new(ErrorCode::Config, e))?;
    pool_path(&target.resource_group, &target.cluster, pool)
        .map_err(|e| PluginError::new(ErrorCode::BadInput, e.to_string()))
}

fn arm(
    ctx: &Ctx,
    method: &str,
    path: &str,
    body: Option<Value>,
    label: Option<String>,
) -> Result<Value, HostError> {
    ctx.arm(ArmRequest {
        method: method.into(),
        path: path.into(),
        api_version: AKS_API.into(),
        wait: label.is_some(),
        body,
        label,
    })
    .map(|r| r.body)
}

fn cloud(error: HostError, doing: &str) -> PluginError {
    let message = format!("{doing}: {}", error.message);
    PluginError::from_host(error, message)
}

/// The pool, or `None` if Azure says it does not exist.
fn read_pool(
    ctx: &Ctx,
    path: &str,
    name: &str,
    cluster: &str,
) -> Result<Option<(Value, AgentPool)>, PluginError> {
    match arm(ctx, "GET", path, None, None) {
        Ok(body) => {
            let pool: AgentPool = serde_json::from_value(body.clone()).map_err(|e| {
                PluginError::new(
                    ErrorCode::Upstream,
                    format!("Azure answered pool {name} in an unexpected shape: {e}"),
                )
            })?;
            Ok(Some((body, pool)))
        }
        Err(e)
            if e.status == Some(404)
                && e.upstream_code.as_deref() != Some("ResourceGroupNotFound") =>
        {
            Ok(None)
        }
        Err(e) => Err(cloud(e, &format!("reading pool {name} of {cluster}"))),
    }
}

/// Where a pool differs from the seed's Spot settings.
fn spot_problems(p: &AgentPoolProperties) -> Vec<String> {
    let mut problems = Vec::new();
    if p.scale_set_priority.as_deref() != Some("Spot") {
        problems.push(format!(
            "not Spot (priority {}; the seed's workers use --priority Spot)",
            p.scale_set_priority.as_deref().unwrap_or("Regular")
        ));
        return problems;
    }
    if p.scale_set_eviction_policy.as_deref() != Some("Delete") {
        problems.push(format!(
            "eviction policy {} (the seed's is Delete)",
            p.scale_set_eviction_policy.as_deref().unwrap_or("unset")
        ));
    }
    if p.spot_max_price != Some(-1.0) {
        problems.push(format!(
            "Spot max price {} (the seed's is -1: pay up to the on-demand price)",
            p.spot_max_price
                .map_or("unset".to_owned(), |v| v.to_string())
        ));
    }
    problems
}

pub fn workers(
    ctx: &Ctx,
    settings: &Settings,
    min: i64,
    max: i64,
    cluster: Option<&str>,
) -> Result<Reply, PluginError> {
    if min < 0 {
        return Err(PluginError::bad_input(
            "min",
            format!("--min is a number of nodes: 0 or more, not {min}"),
        ));
    }
    if max < min {
        return Err(PluginError::bad_input(
            "max",
            format!("--max {max} is below --min {min}: give --min ≤ --max"),
        ));
    }
    if max > MAX_NODES {
        return Err(PluginError::bad_input(
            "max",
            format!("--max {max} is more than the {MAX_NODES} nodes an AKS pool can hold"),
        ));
    }
    let target = target(settings, cluster)?;
    let name = &settings.worker_pool;
    let path = path(&target, name)?;
    let Some((read, pool)) = read_pool(ctx, &path, name, &target.cluster)? else {
        return Err(PluginError::new(
            ErrorCode::NotFound,
            format!(
                "there is no pool {name} in {}: /daskhub pools creates the seed's pools",
                target.cluster
            ),
        ));
    };
    let p = &pool.properties;
    let problems = spot_problems(p);
    let notes = if problems.is_empty() {
        " Spot settings as the seed's (eviction Delete, max price -1).".to_owned()
    } else {
        format!(" ⚠ Pool {name} is {}.", problems.join("; "))
    };
    if p.enable_auto_scaling == Some(true) && p.min_count == Some(min) && p.max_count == Some(max) {
        return Ok(Reply::text(format!(
            "Pool {name} of {} already autoscales {min}..{max} ({} nodes now); nothing changed.{notes}",
            target.cluster,
            p.count.unwrap_or(0)
        )));
    }
    let count = p.count.unwrap_or(min).clamp(min, max);
    let mut body = writable_pool(&read);
    body["properties"]["enableAutoScaling"] = json!(true);
    body["properties"]["minCount"] = json!(min);
    body["properties"]["maxCount"] = json!(max);
    body["properties"]["count"] = json!(count);
    let before = match (p.enable_auto_scaling, p.min_count, p.max_count) {
        (Some(true), Some(a), Some(b)) => format!("was {a}..{b}"),
        _ => "autoscaler was off".to_owned(),
    };
    let done = arm(
        ctx,
        "PUT",
        &path,
        Some(body),
        Some(format!(
            "Setting pool {name} of {} to autoscale {min}..{max}",
            target.cluster
        )),
    )
    .map_err(|e| {
        cloud(
            e,
            &format!(
                "setting the autoscaler of pool {name} in {}",
                target.cluster
            ),
        )
    })?;
    let state = done["properties"]["provisioningState"]
        .as_str()
        .unwrap_or("Succeeded");
    Ok(Reply::text(format!(
        "✓ Pool {name} of {} autoscales {min}..{max} ({before}; {state}).{notes}",
        target.cluster
    )))
}

/// The body that creates a seed pool.
pub fn new_pool(wanted: &Wanted, vm_size: &str) -> Value {
    let mut labels = Map::new();
    labels.insert(wanted.label.0.into(), json!(wanted.label.1));
    let mut properties = json!({
        "count": 1.clamp(wanted.min, wanted.max),
        "vmSize": vm_size,
        "mode": "User",
        "osType": "Linux",
        "type": "VirtualMachineScaleSets",
        "enableAutoScaling": true,
        "minCount": wanted.min,
        "maxCount": wanted.max,
        "nodeLabels": labels,
    });
    if wanted.spot {
        properties["scaleSetPriority"] = json!("Spot");
        properties["scaleSetEvictionPolicy"] = json!("Delete");
        properties["spotMaxPrice"] = json!(-1);
    }
    json!({ "properties": properties })
}

pub fn pools(ctx: &Ctx, settings: &Settings, cluster: Option<&str>) -> Result<Reply, PluginError> {
    let target = target(settings, cluster)?;
    let mut lines = Vec::new();
    for wanted in seed_pools(settings) {
        let name = &wanted.name;
        let path = path(&target, name)?;
        match read_pool(ctx, &path, name, &target.cluster)? {
            Some((_, pool)) => {
                let p = &pool.properties;
                let mut problems = Vec::new();
                let label = p
                    .node_labels
                    .as_ref()
                    .and_then(|l| l.get(wanted.label.0))
                    .and_then(Value::as_str);
                if label != Some(wanted.label.1) {
                    problems.push(format!(
                        "label {}={} missing",
                        wanted.label.0, wanted.label.1
                    ));
                }
                if wanted.spot {
                    problems.extend(spot_problems(p));
                }
                let scale = match (p.enable_auto_scaling, p.min_count, p.max_count) {
                    (Some(true), Some(a), Some(b)) => format!("autoscale {a}..{b}"),
                    _ => "autoscaler off".to_owned(),
                };
                lines.push(format!(
                    "• {name}: already there ({} × {}, {scale}){}",
                    p.count.unwrap_or(0),
                    p.vm_size.as_deref().unwrap_or("?"),
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ⚠ {}", problems.join("; "))
                    }
                ));
            }
            None => {
                let body = new_pool(&wanted, &settings.pool_vm_size);
                arm(
                    ctx,
                    "PUT",
                    &path,
                    Some(body),
                    Some(format!("Creating pool {name} in {}", target.cluster)),
                )
                .map_err(|e| cloud(e, &format!("creating pool {name} in {}", target.cluster)))?;
                lines.push(format!(
                    "• {name}: ✓ created ({}, {}={}, autoscale {}..{}{})",
                    settings.pool_vm_size,
                    wanted.label.0,
                    wanted.label.1,
                    wanted.min,
                    wanted.max,
                    if wanted.spot {
                        ", Spot, eviction Delete, max price -1"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(Reply::text(format!(
        "DaskHub node pools of {}:\n{}",
        target.cluster,
        lines.join("\n")
    )))
}
