//! `/aks nodes` and `/aks gpu`: the cluster as Kubernetes sees it.

use deckhand_plugin_sdk::ErrorCode;
use std::collections::BTreeMap;

use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::gpus_per_node;
use serde_json::Value;

use super::commands::Nodes;
use super::{Pools, Target, cloud_error, kube};

fn kube_error(target: &Target, e: deckhand_plugin_sdk::HostError) -> PluginError {
    let mut error = cloud_error(
        e,
        &format!(
            "reading Kubernetes of {} (cluster {:?} in [[kubernetes.clusters]])",
            target.cluster, target.kube
        ),
    );
    if error.message.contains("503") || error.message.to_ascii_lowercase().contains("stopped") {
        error
            .message
            .push_str(" — if the cluster is stopped, /aks start brings it back");
    }
    error
}

/// Refuses Kubernetes reads of a stopped cluster at once, instead of waiting for a timeout.
fn ensure_running(pools: &Pools, ctx: &Ctx, target: &Target) -> Result<(), PluginError> {
    match pools.kube_unavailable(ctx, target) {
        Some(why) => Err(PluginError::new(ErrorCode::Unavailable, why)),
        None => Ok(()),
    }
}

fn label<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node["metadata"]["labels"][key].as_str()
}

fn taints(node: &Value) -> Vec<String> {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let value = t["value"].as_str().filter(|v| !v.is_empty());
            format!(
                "{}{}:{}",
                t["key"].as_str().unwrap_or_default(),
                value.map(|v| format!("={v}")).unwrap_or_default(),
                t["effect"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

pub(crate) fn nodes(pools: &Pools, ctx: &Ctx, args: &Nodes) -> Result<Reply, PluginError> {
    let target = pools.target(ctx, args.cluster.as_deref())?;
    let only = args.pool.as_deref();
    ensure_running(pools, ctx, &target)?;
    let nodes = kube::nodes(ctx, &target.kube).map_err(|e| kube_error(&target, e))?;
    let pods = kube::pods(ctx, &target.kube).map_err(|e| kube_error(&target, e))?;
    let mut pods_on: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in pods.iter().filter(|p| kube::is_live(p)) {
        if let Some(node) = kube::pod_node(pod) {
            *pods_on.entry(node).or_default() += 1;
        }
    }
    let shown: Vec<&Value> = nodes
        .iter()
        .filter(|n| only.is_none_or(|p| kube::node_pool(n) == Some(p)))
        .collect();
    if shown.is_empty() {
        return Ok(Reply::text(match only {
            Some(pool) => format!("Pool {pool} of {} has no nodes now.", target.cluster),
            None => format!("{} has no nodes now.", target.cluster),
        }));
    }
    let ready = shown.iter().filter(|n| kube::node_ready(n)).count();
    let mut lines = vec![format!(
        "{} node{} in {}{}, {ready} Ready:",
        shown.len(),
        if shown.len() == 1 { "" } else { "s" },
        target.cluster,
        only.map(|p| format!(" pool {p}")).unwrap_or_default()
    )];
    for node in shown {
        let name = kube::name(node);
        let pool = kube::node_pool(node).map(str::to_owned).unwrap_or_else(|| {
            if kube::is_virtual(node) {
                "virtual node (ACI)".into()
            } else {
                "no pool".into()
            }
        });
        let size = label(node, "node.kubernetes.io/instance-type").unwrap_or("?");
        let mut notes = vec![
            pool,
            size.to_owned(),
            if kube::node_ready(node) {
                "Ready".to_owned()
            } else {
                "NOT Ready".to_owned()
            },
        ];
        let gpus = kube::node_gpus(node);
        if gpus > 0 {
            notes.push(format!("{gpus} GPU"));
        }
        if label(node, "kubernetes.azure.com/scalesetpriority") == Some("spot") {
            notes.push("Spot".into());
        }
        notes.push(format!("{} pods", pods_on.get(name).copied().unwrap_or(0)));
        let taints = taints(node);
        if !taints.is_empty() {
            notes.push(format!("taints {}", taints.join(", ")));
        }
        lines.push(format!("• {name}: {}", notes.join(", ")));
    }
    Ok(Reply::text(lines.join("\n")))
}

/// Whether a DaemonSet is the NVIDIA device plugin (by name or image).
fn is_device_plugin(ds: &Value) -> bool {
    kube::name(ds).contains("nvidia-device-plugin")
        || ds["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["image"]
                    .as_str()
                    .is_some_and(|i| i.contains("k8s-device-plugin"))
            })
}

pub(crate) fn gpu(pools: &Pools, ctx: &Ctx, cluster: Option<&str>) -> Result<Reply, PluginError> {
    let target = pools.target(ctx, cluster)?;
    let cluster = &target.cluster;
    ensure_running(pools, ctx, &target)?;
    let agent_pools = pools.list_pools(ctx, &target)?;
    let gpu_pools: Vec<_> = agent_pools
        .iter()
        .filter(|p| gpus_per_node(p.properties.vm_size.as_deref().unwrap_or_default()) > 0)
        .collect();
    let nodes = kube::nodes(ctx, &target.kube).map_err(|e| kube_error(&target, e))?;
    let pods = kube::pods(ctx, &target.kube).map_err(|e| kube_error(&target, e))?;
    let daemonsets = kube::daemonsets(ctx, &target.kube).map_err(|e| kube_error(&target, e))?;

    // GPU nodes: advertising nvidia.com/gpu, or in a pool of a GPU size.
    let gpu_pool_names: Vec<&str> = gpu_pools.iter().map(|p| p.name.as_str()).collect();
    let gpu_nodes: Vec<&Value> = nodes
        .iter()
        .filter(|n| {
            kube::node_gpus(n) > 0
                || kube::node_pool(n).is_some_and(|p| gpu_pool_names.contains(&p))
        })
        .collect();
    let allocatable: i64 = gpu_nodes
        .iter()
        .filter(|n| kube::node_ready(n))
        .map(|n| kube::node_gpus(n))
        .sum();
    let expected: i64 = gpu_pools
        .iter()
        .map(|p| {
            i64::from(gpus_per_node(
                p.properties.vm_size.as_deref().unwrap_or_default(),
            )) * p.properties.count.unwrap_or(0)
        })
        .sum();

    let gpu_pods: Vec<&Value> = pods
        .iter()
        .filter(|p| kube::is_live(p) && kube::pod_gpus(p) > 0)
        .collect();
    let (placed, waiting): (Vec<&Value>, Vec<&Value>) =
        gpu_pods.iter().partition(|p| kube::pod_node(p).is_some());
    let requested: i64 = placed.iter().map(|p| kube::pod_gpus(p)).sum();
    let pending: i64 = waiting.iter().map(|p| kube::pod_gpus(p)).sum();
    let free = (allocatable - requested).max(0);

    let mut lines = vec![format!(
        "GPUs in {cluster}: {requested} of {allocatable} in use, {free} free{}.",
        if pending > 0 {
            format!(
                ", {pending} more wanted by {} pending pod{}",
                waiting.len(),
                if waiting.len() == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    )];
    if gpu_pools.is_empty() {
        lines.push("• No GPU pool (add one with /aks pool add --name gpu --vm-size Standard_NC6s_v3 --count 1).".into());
    }
    for p in &gpu_pools {
        let pp = &p.properties;
        let size = pp.vm_size.as_deref().unwrap_or_default();
        let per = gpus_per_node(size);
        let bounds = if pp.enable_auto_scaling == Some(true) {
            format!(
                ", autoscale {}..{} (up to {} GPUs)",
                pp.min_count.unwrap_or(0),
                pp.max_count.unwrap_or(0),
                i64::from(per) * pp.max_count.unwrap_or(0)
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "• Pool {}: {} × {size} ({per} GPU/node){bounds}",
            p.name,
            pp.count.unwrap_or(0)
        ));
    }
    let ready_gpu_nodes = gpu_nodes.iter().filter(|n| kube::node_ready(n)).count();
    lines.push(format!(
        "• Kubernetes: {} GPU node{} ({ready_gpu_nodes} Ready) advertising {allocatable} GPU{} (the pools' sizes give {expected}).",
        gpu_nodes.len(),
        if gpu_nodes.len() == 1 { "" } else { "s" },
        if allocatable == 1 { "" } else { "s" },
    ));

    // The device plugin: present, ready, and on every GPU node?
    let plugins: Vec<&Value> = daemonsets.iter().filter(|d| is_device_plugin(d)).collect();
    match plugins.as_slice() {
        [] => lines.push(
            "• NVIDIA device plugin: no DaemonSet found — without it GPU nodes advertise no nvidia.com/gpu on a real cluster; install it (e.g. the nvidia-device-plugin-daemonset manifest in kube-system, tolerating nvidia.com/gpu).".into(),
        ),
        found => {
            for ds in found {
                let ds_name = kube::name(ds);
                let ns = kube::namespace(ds);
                let status = &ds["status"];
                let desired = status["desiredNumberScheduled"].as_i64().unwrap_or(0);
                let ready = status["numberReady"].as_i64().unwrap_or(0);
                let ready_on: Vec<&str> = pods
                    .iter()
                    .filter(|p| kube::namespace(p) == ns && kube::pod_ready(p))
                    .filter(|p| {
                        p["metadata"]["ownerReferences"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|o| o["kind"] == "DaemonSet" && o["name"] == ds_name)
                    })
                    .filter_map(kube::pod_node)
                    .collect();
                let missing: Vec<&str> = gpu_nodes
                    .iter()
                    .map(|n| kube::name(n))
                    .filter(|n| !ready_on.contains(n))
                    .collect();
                let verdict = if missing.is_empty() {
                    format!("ready on all {} GPU node{}", gpu_nodes.len(), if gpu_nodes.len() == 1 { "" } else { "s" })
                } else {
                    format!(
                        "NOT ready on {} of {} GPU nodes ({}) — check that it tolerates the nvidia.com/gpu taint",
                        missing.len(),
                        gpu_nodes.len(),
                        missing.join(", ")
                    )
                };
                lines.push(format!(
                    "• NVIDIA device plugin {ns}/{ds_name}: {ready}/{desired} pods ready, {verdict}."
                ));
            }
        }
    }
    for pod in waiting.iter().take(5) {
        lines.push(format!(
            "• Pending: {}/{} wants {} GPU{}",
            kube::namespace(pod),
            kube::name(pod),
            kube::pod_gpus(pod),
            if kube::pod_gpus(pod) == 1 { "" } else { "s" }
        ));
    }
    if pending > 0
        && let Some(p) = gpu_pools.first()
    {
        let per = i64::from(gpus_per_node(
            p.properties.vm_size.as_deref().unwrap_or_default(),
        ))
        .max(1);
        let want = p.properties.count.unwrap_or(0) + ((pending - free).max(0) + per - 1) / per;
        lines.push(format!(
            "To make room: /aks scale --pool {} --count {want}",
            p.name
        ));
    }
    Ok(Reply::text(lines.join("\n")))
}
