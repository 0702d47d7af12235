//! `/runner scale` and `/runner status`, and what other commands need to know about the
//! runner pods: the GPUs they hold, whether they crash-loop or were OOM-killed.

use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::placement::GPU_RESOURCE;
use serde_json::{Value, json};

use crate::deploy::{MAX_REPLICAS, Settings, Target, get_deployment, kube, not_deployed};

pub fn scale(
    ctx: &Ctx,
    settings: &Settings,
    target: &Target,
    replicas: i64,
) -> Result<Reply, PluginError> {
    if !(0..=MAX_REPLICAS).contains(&replicas) {
        return Err(PluginError::bad_input(
            "replicas",
            format!("{replicas} runner pods: give 0 to {MAX_REPLICAS}"),
        ));
    }
    let before =
        get_deployment(ctx, settings, target)?.ok_or_else(|| not_deployed(settings, target))?;
    let from = before["spec"]["replicas"].as_i64().unwrap_or(0);
    if from == replicas {
        return Ok(Reply::text(format!(
            "Runner Deployment {}/{} already has {replicas} pod(s); nothing to do.",
            settings.namespace, settings.deployment
        )));
    }
    let mut request = kube(target, "patch", "apps/v1", "Deployment");
    request.namespace = Some(settings.namespace.clone());
    request.name = Some(settings.deployment.clone());
    request.subresource = Some("scale".into());
    request.body = Some(json!({"spec": {"replicas": replicas}}));
    let scaled = ctx.kube(request)?;
    let now = scaled.body["spec"]["replicas"].as_i64();
    let result = match now {
        Some(now) if now == replicas => format!("scaled from {from} to {now} pod(s)"),
        Some(now) => format!("asked for {replicas} pod(s), Kubernetes reports {now}"),
        None => format!(
            "scaled from {from} to {replicas} pod(s) (the answer did not say the new count)"
        ),
    };
    let note = if replicas == 0 {
        " Jobs still waiting stay in their queues until runners return (`/jobs`)."
    } else {
        ""
    };
    Ok(Reply::text(format!(
        "Runner Deployment {}/{} on {}: {result}.{note}",
        settings.namespace, settings.deployment, target.cluster
    )))
}

/// GPUs a pod holds: its containers' `nvidia.com/gpu` limits once it is on a node and until it
/// has finished.
pub fn allocated_gpus(pod: &Value) -> u64 {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    if !pod["spec"]["nodeName"].is_string() || matches!(phase, "Succeeded" | "Failed") {
        return 0;
    }
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let limit = &c["resources"]["limits"][GPU_RESOURCE];
            limit
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| limit.as_u64())
        })
        .sum()
}

/// One pod: `name on node: phase, N GPU, restarts R (reason)`.
fn pod_line(pod: &Value) -> (String, u64) {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("no node yet");
    let allocated = allocated_gpus(pod);
    let mut restarts = 0u64;
    let mut trouble = Vec::new();
    for status in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts = restarts.saturating_add(status["restartCount"].as_u64().unwrap_or(0));
        if let Some(reason) = status["state"]["waiting"]["reason"].as_str() {
            trouble.push(reason.to_owned());
        }
        if let Some(reason) = status["lastState"]["terminated"]["reason"].as_str() {
            trouble.push(format!("last exit: {reason}"));
        }
    }
    let trouble = if trouble.is_empty() {
        String::new()
    } else {
        format!(" ({})", trouble.join(", "))
    };
    (
        format!("• {name} on {node}: {phase}, {allocated} GPU, restarts {restarts}{trouble}"),
        allocated,
    )
}

/// The runner Deployment's pods.
pub fn runner_pods(
    ctx: &Ctx,
    settings: &Settings,
    target: &Target,
) -> Result<Vec<Value>, PluginError> {
    let mut request = kube(target, "list", "v1", "Pod");
    request.namespace = Some(settings.namespace.clone());
    request.label_selector = Some(format!("app={}", settings.deployment));
    Ok(ctx.kube(request)?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// A runner pod in trouble: crash-looping or OOM-killed, with its restarts so far.
pub fn pod_trouble(pod: &Value) -> Option<(String, u64)> {
    let mut restarts = 0u64;
    let mut reason = None;
    for status in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts = restarts.saturating_add(status["restartCount"].as_u64().unwrap_or(0));
        let oom = status["lastState"]["terminated"]["reason"] == "OOMKilled"
            || status["state"]["terminated"]["reason"] == "OOMKilled";
        if oom {
            reason = Some("OOM-killed".to_owned());
        } else if status["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            reason = reason.or(Some("crash-looping".to_owned()));
        }
    }
    reason.map(|r| (r, restarts))
}

pub fn status(ctx: &Ctx, settings: &Settings, target: &Target) -> Result<Reply, PluginError> {
    let deployment =
        get_deployment(ctx, settings, target)?.ok_or_else(|| not_deployed(settings, target))?;
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("?");
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(0);
    let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let pods = runner_pods(ctx, settings, target)?;
    let mut lines = vec![format!(
        "Runner Deployment {}/{} on {}: {ready}/{wanted} ready, image {image}.",
        settings.namespace, settings.deployment, target.cluster
    )];
    let mut allocated = 0u64;
    for pod in &pods {
        let (line, gpus) = pod_line(pod);
        allocated = allocated.saturating_add(gpus);
        lines.push(line);
    }
    if pods.is_empty() {
        lines.push("No runner pods.".into());
    }
    lines.push(format!("GPUs allocated to runners: {allocated}."));
    Ok(Reply::text(lines.join("\n")))
}
