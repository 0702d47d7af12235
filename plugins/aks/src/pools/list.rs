//! `/aks pools`: each pool as Azure describes it, and its nodes as Kubernetes sees them.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::gpus_per_node;

use super::{Pools, Target, kube};

/// Nodes per pool as Kubernetes reports them: (nodes, Ready nodes).
pub(crate) fn ready_by_pool(
    ctx: &Ctx,
    target: &Target,
) -> Result<BTreeMap<String, (usize, usize)>, String> {
    let nodes = kube::nodes(ctx, &target.kube).map_err(|e| e.message)?;
    let mut by_pool: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for node in &nodes {
        if let Some(pool) = kube::node_pool(node) {
            let entry = by_pool.entry(pool.to_owned()).or_default();
            entry.0 += 1;
            if kube::node_ready(node) {
                entry.1 += 1;
            }
        }
    }
    Ok(by_pool)
}

pub(crate) fn pools(pools: &Pools, ctx: &Ctx, cluster: Option<&str>) -> Result<Reply, PluginError> {
    let target = pools.target(ctx, cluster)?;
    let list = pools.list_pools(ctx, &target)?;
    let ready = match pools.kube_unavailable(ctx, &target) {
        Some(why) => Err(why),
        None => ready_by_pool(ctx, &target),
    };
    let mut lines = vec![format!(
        "{} pool{} in {}:",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        target.cluster
    )];
    for pool in &list {
        let p = &pool.properties;
        let size = p.vm_size.as_deref().unwrap_or("?");
        let count = p.count.unwrap_or(0);
        let autoscale = if p.enable_auto_scaling == Some(true) {
            format!(
                "autoscale {}..{}",
                p.min_count.unwrap_or(0),
                p.max_count.unwrap_or(0)
            )
        } else {
            "autoscale off".to_owned()
        };
        let nodes = match &ready {
            Ok(by_pool) => {
                let (seen, ready) = by_pool.get(&pool.name).copied().unwrap_or((0, 0));
                format!("{ready}/{seen} Ready in Kubernetes")
            }
            Err(_) => "Kubernetes unreachable".to_owned(),
        };
        let mut state = p.provisioning_state.clone().unwrap_or_else(|| "?".into());
        if let Some(power) = &p.power_state
            && power.code != "Running"
        {
            state = format!("{state}, {}", power.code);
        }
        lines.push(format!(
            "• {}: {count} × {size}, {} GPU/node, {}, {}, {autoscale}, {nodes} — {state}",
            pool.name,
            gpus_per_node(size),
            p.mode.as_deref().unwrap_or("User"),
            p.scale_set_priority.as_deref().unwrap_or("Regular"),
        ));
    }
    if let Err(e) = ready {
        lines.push(format!("(Kubernetes nodes not readable: {e})"));
    }
    Ok(Reply::text(lines.join("\n")))
}
