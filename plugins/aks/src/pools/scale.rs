//! `/aks scale` (grow), `/aks scale-down` (shrink, confirmed by the router), `/aks autoscale`.

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::{AgentPool, gpus_per_node};
use deckhand_plugin_shared::writable::writable_pool;

use super::commands::{Autoscale, Scale};
use super::merge::Merged;
use super::outcome::PoolWrite;
use super::{Pools, Target, arm_wait, bad_input, cloud_error, kube, list};

/// AKS's bound on a pool's node count.
const MAX_NODES: i64 = 1000;

/// ` --cluster C` when the command named one, so suggested commands act on the same cluster.
fn cluster_suffix(cluster: Option<&str>) -> String {
    cluster
        .map(|c| format!(" --cluster {c}"))
        .unwrap_or_default()
}

fn is_system(pool: &AgentPool) -> bool {
    pool.properties.mode.as_deref() == Some("System")
}

fn autoscaled(pool: &AgentPool) -> Option<(i64, i64)> {
    let p = &pool.properties;
    (p.enable_auto_scaling == Some(true))
        .then(|| (p.min_count.unwrap_or(0), p.max_count.unwrap_or(MAX_NODES)))
}

/// Writes the pool back and follows the operation to its end. Read-modify-write: every
/// property the client may write goes back as read (so nothing is reset), read-only ones and
/// AKS's own labels and taints stay with Azure.
fn put_pool(
    ctx: &Ctx,
    target: &Target,
    pool: &AgentPool,
    label: String,
    doing: &str,
) -> Result<PoolWrite, PluginError> {
    let body = writable_pool(&serde_json::json!({ "properties": pool.properties }));
    let response = arm_wait(
        ctx,
        "PUT",
        &target.pool_path(&pool.name)?,
        Some(body),
        label,
    )
    .map_err(|e| cloud_error(e, doing))?;
    PoolWrite::from_response(response)
}

/// `(Standard_NC6s_v3, 2 GPUs)` for `nodes` nodes of `size`.
fn size_note(size: &str, nodes: i64) -> String {
    let gpus = i64::from(gpus_per_node(size)).saturating_mul(nodes);
    if gpus > 0 {
        format!("({size}, {gpus} GPU{})", plural(gpus))
    } else {
        format!("({size})")
    }
}

/// The words of a finished `/aks scale`: what Azure reports after the change, whether that is
/// what this request asked for, and how it was merged with others.
fn scale_reply(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    (current, count): (i64, i64),
    size: &str,
    merged: Merged,
) -> Result<Reply, PluginError> {
    let cluster = &target.cluster;
    let last = merged.last_asked;
    let written = merged.outcome.map_err(|mut e| {
        if merged.joined {
            e.message = format!(
                "this request joined a scale of pool {name} already running, which failed: {}",
                e.message
            );
        }
        e
    })?;
    let merge_note = match (merged.joined, merged.others) {
        (true, _) => format!(
            " (This request joined a scale of pool {name} already running instead of spending another write.)"
        ),
        (false, 0) => String::new(),
        (false, n) => format!(
            " ({n} other scale request{} for pool {name} arrived while it ran and {} merged into one more write.)",
            plural(n as i64),
            if n == 1 { "was" } else { "were" }
        ),
    };
    let text = match &written.pool {
        Some(done) => {
            let now = done.properties.count.unwrap_or(0);
            let autoscale = autoscaled(done);
            let head = if now == count {
                format!(
                    "✓ Pool {name} of {cluster} scaled from {current} to {now} node{} {}.",
                    plural(now),
                    size_note(size, now)
                )
            } else if now == last {
                format!(
                    "✓ Pool {name} of {cluster} now has {now} node{} {}, not the {count} asked here: a request for {last} that came while it scaled was applied last.",
                    plural(now),
                    size_note(size, now)
                )
            } else {
                format!(
                    "Azure accepted the scale of pool {name} of {cluster} to {last} node{}, but reports {now} node{} after it (it had {current}){}.",
                    plural(last),
                    plural(now),
                    if autoscale.is_some() {
                        "; its autoscaler may have changed the count"
                    } else {
                        ""
                    }
                )
            };
            let autoscale = autoscale
                .map(|(min, max)| {
                    format!(
                        " The autoscaler keeps it within {min}..{max} and may change the count."
                    )
                })
                .unwrap_or_default();
            format!("{head}{}{autoscale}", kube_line(ctx, target, name))
        }
        None => format!(
            "✓ Azure scaled pool {name} of {cluster} from {current} to {last} node{}.{}",
            plural(last),
            written.unread_note()
        ),
    };
    Ok(Reply::text(format!(
        "{text}{merge_note}{}",
        written.budget_note()
    )))
}

/// `--min 1 --max 3` / `off`, for saying what Azure reports.
fn describe_autoscale(bounds: Option<(i64, i64)>) -> String {
    match bounds {
        Some((min, max)) => format!("autoscaling between {min} and {max}"),
        None => "no autoscaler".to_owned(),
    }
}

/// ` Kubernetes: 2/2 nodes Ready.` after a change, or why it could not be read.
fn kube_line(ctx: &Ctx, target: &Target, pool: &str) -> String {
    match list::ready_by_pool(ctx, target) {
        Ok(by_pool) => {
            let (seen, ready) = by_pool.get(pool).copied().unwrap_or((0, 0));
            format!(
                " Kubernetes: {ready}/{seen} node{} Ready.",
                plural(seen as i64)
            )
        }
        Err(e) => format!(" (Kubernetes nodes not readable: {e})"),
    }
}

fn plural(n: impl Into<i64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// Workload pods (not DaemonSet pods) running on a pool's nodes now, as `ns/name`.
fn workloads_on(ctx: &Ctx, target: &Target, pool: &str) -> Option<Vec<String>> {
    let nodes = kube::nodes(ctx, &target.kube).ok()?;
    let names: Vec<&str> = nodes
        .iter()
        .filter(|n| kube::node_pool(n) == Some(pool))
        .map(kube::name)
        .collect();
    let pods = kube::pods(ctx, &target.kube).ok()?;
    Some(
        pods.iter()
            .filter(|p| kube::is_live(p) && !kube::from_daemonset(p))
            .filter(|p| kube::pod_node(p).is_some_and(|n| names.contains(&n)))
            .map(|p| format!("{}/{}", kube::namespace(p), kube::name(p)))
            .collect(),
    )
}

/// `/aks scale` (`confirmed = false`) and `/aks scale-down` (the router has confirmed).
pub(crate) fn scale(
    pools: &Pools,
    ctx: &Ctx,
    args: &Scale,
    confirmed: bool,
) -> Result<Reply, PluginError> {
    let name = args.pool.as_str();
    let count = args.count;
    if count < 0 {
        return Err(bad_input(
            "count",
            format!("--count is a number of nodes: 0 or more, not {count}"),
        ));
    }
    if count > MAX_NODES {
        return Err(bad_input(
            "count",
            format!("--count {count} is more than the {MAX_NODES} nodes an AKS pool can hold"),
        ));
    }
    let target = pools.target(ctx, args.cluster.as_deref())?;
    let pool = pools.get_pool(ctx, &target, name, "pool")?;
    let cluster = &target.cluster;
    let current = pool.properties.count.unwrap_or(0);
    if pool
        .properties
        .power_state
        .as_ref()
        .is_some_and(|p| p.code == "Stopped")
    {
        return Err(PluginError::new(
            ErrorCode::Conflict,
            format!(
                "pool {name} of {cluster} is stopped: start the cluster with /aks start before scaling it"
            ),
        ));
    }
    if is_system(&pool) && count == 0 {
        return Err(bad_input(
            "count",
            format!(
                "pool {name} is a System pool: AKS requires a System pool to keep at least 1 node (it runs the cluster's own pods); scale a User pool to 0 instead"
            ),
        ));
    }
    if let Some((min, max)) = autoscaled(&pool) {
        let suffix = cluster_suffix(args.cluster.as_deref());
        if count > max {
            return Err(bad_input(
                "count",
                format!(
                    "pool {name} autoscales between {min} and {max} nodes, so --count {count} is above its maximum: raise it with /aks autoscale --pool {name} --min {min} --max {count}{suffix}, or turn the autoscaler off with /aks autoscale --pool {name} --off{suffix}"
                ),
            ));
        }
        if count < min {
            return Err(bad_input(
                "count",
                format!(
                    "pool {name} autoscales between {min} and {max} nodes, so --count {count} is below its minimum: lower it with /aks autoscale --pool {name} --min {count} --max {max}{suffix}, or turn the autoscaler off with /aks autoscale --pool {name} --off{suffix}"
                ),
            ));
        }
    }
    if count == current {
        return Ok(Reply::text(format!(
            "Pool {name} of {cluster} already has {count} node{}; nothing to do.",
            plural(count)
        )));
    }
    if count < current && !confirmed {
        let running = match workloads_on(ctx, &target, name) {
            Some(pods) if pods.is_empty() => " (no workload pods run there now)".to_owned(),
            Some(pods) => format!(
                " ({} workload pod{} run there now: {}{})",
                pods.len(),
                plural(pods.len() as i64),
                pods.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if pods.len() > 5 { ", …" } else { "" }
            ),
            None => String::new(),
        };
        return Err(PluginError::new(
            ErrorCode::NeedsConfirmation,
            format!(
                "scaling pool {name} of {cluster} from {current} to {count} node{} reduces capacity{running}. Reductions ask for confirmation: run /aks scale-down --pool {name} --count {count}{}",
                plural(count),
                cluster_suffix(args.cluster.as_deref())
            ),
        )
        .with_option("count"));
    }
    let size = pool.properties.vm_size.clone().unwrap_or_default();
    let key = format!("{}/{cluster}/{name}", target.resource_group);
    let merged = pools.merger.run(&key, count, |asked, round| {
        // A later round writes what a request that joined meanwhile asked for, on the pool
        // as it is now.
        let mut pool = if round == 0 {
            pool.clone()
        } else {
            let fresh = pools.get_pool(ctx, &target, name, "pool")?;
            if fresh.properties.count == Some(asked) {
                return Ok(PoolWrite::unchanged(fresh));
            }
            fresh
        };
        let from = pool.properties.count.unwrap_or(0);
        pool.properties.count = Some(asked);
        put_pool(
            ctx,
            &target,
            &pool,
            format!("Scaling pool {name} of {cluster} from {from} to {asked} nodes"),
            &format!("scaling pool {name} of {cluster}"),
        )
    });
    scale_reply(ctx, &target, name, (current, count), &size, merged)
}

/// `/aks autoscale --pool P --min N --max M`, or `--off`.
pub(crate) fn autoscale(pools: &Pools, ctx: &Ctx, args: &Autoscale) -> Result<Reply, PluginError> {
    let name = args.pool.as_str();
    let (min, max, off) = (args.min, args.max, args.off);
    if off && (min.is_some() || max.is_some()) {
        return Err(bad_input(
            "off",
            "--off turns the autoscaler off and takes no --min or --max",
        ));
    }
    let bounds = if off {
        None
    } else {
        let (Some(min), Some(max)) = (min, max) else {
            return Err(bad_input(
                if min.is_none() { "min" } else { "max" },
                "give both --min and --max (the autoscaler's bounds), or --off",
            ));
        };
        if min < 0 {
            return Err(bad_input(
                "min",
                format!("--min is a number of nodes: 0 or more, not {min}"),
            ));
        }
        if max < min {
            return Err(bad_input(
                "max",
                format!("--max {max} is below --min {min}"),
            ));
        }
        if max > MAX_NODES {
            return Err(bad_input(
                "max",
                format!("--max {max} is more than the {MAX_NODES} nodes an AKS pool can hold"),
            ));
        }
        Some((min, max))
    };
    let target = pools.target(ctx, args.cluster.as_deref())?;
    let mut pool = pools.get_pool(ctx, &target, name, "pool")?;
    let cluster = &target.cluster;
    let current = pool.properties.count.unwrap_or(0);
    let Some((min, max)) = bounds else {
        if autoscaled(&pool).is_none() {
            return Ok(Reply::text(format!(
                "The autoscaler of pool {name} is already off ({current} node{}); nothing to do.",
                plural(current)
            )));
        }
        pool.properties.enable_auto_scaling = Some(false);
        pool.properties.min_count = None;
        pool.properties.max_count = None;
        let written = put_pool(
            ctx,
            &target,
            &pool,
            format!("Turning off the autoscaler of pool {name} of {cluster}"),
            &format!("turning off the autoscaler of pool {name}"),
        )?;
        let text = match &written.pool {
            None => format!(
                "✓ Azure turned off the autoscaler of pool {name} of {cluster}.{}",
                written.unread_note()
            ),
            Some(done) if autoscaled(done).is_none() => {
                let now = done.properties.count.unwrap_or(0);
                format!(
                    "✓ Autoscaler of pool {name} of {cluster} is off; the pool stays at {now} node{} (change it with /aks scale or /aks scale-down).",
                    plural(now)
                )
            }
            Some(done) => format!(
                "Azure accepted turning off the autoscaler of pool {name} of {cluster}, but reports the pool still {} ({} nodes); /aks pools shows it.",
                describe_autoscale(autoscaled(done)),
                done.properties.count.unwrap_or(0)
            ),
        };
        return Ok(Reply::text(format!("{text}{}", written.budget_note())));
    };
    if is_system(&pool) && min < 1 {
        return Err(bad_input(
            "min",
            format!("pool {name} is a System pool: AKS requires --min 1 or more for System pools"),
        ));
    }
    if current > max {
        return Err(bad_input(
            "max",
            format!(
                "pool {name} has {current} nodes, more than --max {max}: scale it down first with /aks scale-down --pool {name} --count {max}{} (asks for confirmation), or choose --max {current} or more",
                cluster_suffix(args.cluster.as_deref())
            ),
        ));
    }
    if autoscaled(&pool) == Some((min, max)) {
        return Ok(Reply::text(format!(
            "Pool {name} already autoscales between {min} and {max}; nothing to do."
        )));
    }
    pool.properties.enable_auto_scaling = Some(true);
    pool.properties.min_count = Some(min);
    pool.properties.max_count = Some(max);
    let grown = current < min;
    if grown {
        pool.properties.count = Some(min);
    }
    let written = put_pool(
        ctx,
        &target,
        &pool,
        format!("Setting the autoscaler of pool {name} of {cluster} to {min}..{max}"),
        &format!("setting the autoscaler of pool {name}"),
    )?;
    let text = match &written.pool {
        None => format!(
            "✓ Azure set the autoscaler of pool {name} of {cluster} to {min}..{max} nodes.{}",
            written.unread_note()
        ),
        Some(done) if autoscaled(done) == Some((min, max)) => {
            let now = done.properties.count.unwrap_or(0);
            let grown = if grown {
                format!(" It grew from {current} to {now} nodes to reach the new minimum.")
            } else {
                String::new()
            };
            format!(
                "✓ Pool {name} of {cluster} autoscales between {min} and {max} nodes (now {now}).{grown}"
            )
        }
        Some(done) => format!(
            "Azure accepted the autoscaler {min}..{max} for pool {name} of {cluster}, but reports the pool with {} ({} node{}) after the change; /aks pools shows it.",
            describe_autoscale(autoscaled(done)),
            done.properties.count.unwrap_or(0),
            plural(done.properties.count.unwrap_or(0))
        ),
    };
    Ok(Reply::text(format!("{text}{}", written.budget_note())))
}
