//! `/aks clusters`, `/aks start`, `/aks stop`.

use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::{AgentPoolProperties, ManagedCluster, gpus_per_node};

use super::{Pools, arm_wait, cloud_error};

/// `system 2×Standard_D4s_v3 (System)`, `gpu 0×Standard_NC6s_v3 (autoscale 0..4, 1 GPU/node)`.
pub(crate) fn pool_summary(p: &AgentPoolProperties, name: &str) -> String {
    let size = p.vm_size.as_deref().unwrap_or("?");
    let mut notes = Vec::new();
    if p.mode.as_deref() == Some("System") {
        notes.push("System".to_owned());
    }
    if p.scale_set_priority.as_deref() == Some("Spot") {
        notes.push("Spot".to_owned());
    }
    if p.enable_auto_scaling == Some(true) {
        notes.push(format!(
            "autoscale {}..{}",
            p.min_count.unwrap_or(0),
            p.max_count.unwrap_or(0)
        ));
    }
    let gpus = gpus_per_node(size);
    if gpus > 0 {
        notes.push(format!("{gpus} GPU/node"));
    }
    if p.power_state.as_ref().is_some_and(|s| s.code == "Stopped") {
        notes.push("stopped".to_owned());
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    format!("{name} {}×{size}{notes}", p.count.unwrap_or(0))
}

fn power_of(c: &ManagedCluster) -> &str {
    c.properties
        .power_state
        .as_ref()
        .map(|p| p.code.as_str())
        .unwrap_or("unknown")
}

pub(crate) fn list(pools: &Pools, ctx: &Ctx) -> Result<Reply, PluginError> {
    let clusters = pools.list_clusters(ctx)?;
    if clusters.is_empty() {
        return Ok(Reply::text(format!(
            "No AKS clusters in {}.",
            pools.scope()
        )));
    }
    let mut lines = vec![format!(
        "{} AKS cluster{} in {}:",
        clusters.len(),
        if clusters.len() == 1 { "" } else { "s" },
        pools.scope()
    )];
    for c in &clusters {
        let p = &c.properties;
        let version = p
            .current_kubernetes_version
            .as_deref()
            .or(p.kubernetes_version.as_deref())
            .unwrap_or("?");
        let virtual_node = p
            .addon_profiles
            .get("aciConnectorLinux")
            .and_then(|a| a["enabled"].as_bool())
            .unwrap_or(false);
        let pools: Vec<String> = p
            .agent_pool_profiles
            .iter()
            .map(|pool| pool_summary(pool, pool.name.as_deref().unwrap_or("?")))
            .collect();
        lines.push(format!(
            "• {} ({}{}): {}, power {}, Kubernetes {version}{}",
            c.name,
            c.id.as_deref()
                .and_then(super::resource_group_of)
                .unwrap_or_default(),
            c.location
                .as_deref()
                .map(|l| format!(", {l}"))
                .unwrap_or_default(),
            p.provisioning_state.as_deref().unwrap_or("?"),
            power_of(c),
            if virtual_node {
                ", virtual node on"
            } else {
                ""
            },
        ));
        lines.push(format!(
            "  {} pool{}: {}",
            pools.len(),
            if pools.len() == 1 { "" } else { "s" },
            pools.join("; ")
        ));
    }
    Ok(Reply::text(lines.join("\n")))
}

/// `/aks start` (`start = true`) and `/aks stop`.
pub(crate) fn power(
    pools: &Pools,
    ctx: &Ctx,
    cluster: Option<&str>,
    start: bool,
) -> Result<Reply, PluginError> {
    let target = pools.target(ctx, cluster)?;
    let cluster = pools.get_cluster(ctx, &target)?;
    let state = power_of(&cluster).to_owned();
    let name = &target.cluster;
    let (want, verb, doing, action) = if start {
        ("Running", "started", "Starting", "start")
    } else {
        ("Stopped", "stopped", "Stopping", "stop")
    };
    if state == want {
        return Ok(Reply::text(format!(
            "{name} is already {}; nothing to do.",
            want.to_ascii_lowercase()
        )));
    }
    arm_wait(
        ctx,
        "POST",
        &target.action_path(action)?,
        None,
        format!("{doing} cluster {name}"),
    )
    .map_err(|e| cloud_error(e, &format!("{doing} cluster {name}")))?;
    let text = if start {
        // The start is done; a read of the cluster that fails now is a note, not a failure.
        let after = match pools.get_cluster(ctx, &target) {
            Ok(after) => after,
            Err(e) => {
                return Ok(Reply::text(format!(
                    "✓ {name} {verb} (Azure reports the operation Succeeded), but the cluster could not be read back ({e}); /aks clusters shows its state."
                )));
            }
        };
        let nodes: i64 = after
            .properties
            .agent_pool_profiles
            .iter()
            .map(|p| p.count.unwrap_or(0))
            .sum();
        format!(
            "✓ {name} {verb}: power {}, {nodes} node{} across {} pools.",
            power_of(&after),
            if nodes == 1 { "" } else { "s" },
            after.properties.agent_pool_profiles.len()
        )
    } else {
        format!(
            "✓ {name} {verb}: its nodes are deallocated and its Kubernetes API is off until /aks start (pool settings are kept)."
        )
    };
    Ok(Reply::text(text))
}
