//! Waiting for a rollout, and saying why it is stuck in words a user can act on.

use std::time::Instant;

use deckhand_plugin_sdk::abi::proto::KubeRequest;
use deckhand_plugin_sdk::{Ctx, PluginError};
use serde_json::Value;

use super::app::{App, Settings};
use super::manifests::{COMPONENT_LABEL, placement};
use deckhand_plugin_shared::placement::Placement;

/// Kubernetes requests on one cluster.
pub struct Kube<'a> {
    pub ctx: &'a Ctx,
    pub cluster: String,
}

impl Kube<'_> {
    pub fn request(
        &self,
        verb: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> KubeRequest {
        KubeRequest {
            cluster: self.cluster.clone(),
            verb: verb.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            ..Default::default()
        }
    }

    pub fn send(&self, request: KubeRequest) -> Result<Value, PluginError> {
        Ok(self.ctx.kube(request)?.body)
    }

    /// `None` when the object does not exist.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, PluginError> {
        let mut request = self.request("get", api_version, kind, namespace);
        request.name = Some(name.into());
        match self.ctx.kube(request) {
            Ok(response) => Ok(Some(response.body)),
            Err(e) if e.code == "not_found" => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Vec<Value>, PluginError> {
        let mut request = self.request("list", api_version, kind, namespace);
        request.label_selector = labels.map(str::to_owned);
        request.field_selector = fields.map(str::to_owned);
        let body = self.send(request)?;
        Ok(body["items"].as_array().cloned().unwrap_or_default())
    }
}

/// Ready and desired replicas of one Deployment, from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub component: String,
    pub desired: i64,
    pub ready: i64,
    pub done: bool,
}

pub fn progress(deployment: &Value) -> Progress {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &deployment["status"];
    let observed = int(&status["observedGeneration"]) >= int(&deployment["metadata"]["generation"]);
    let ready = int(&status["readyReplicas"]);
    let updated = int(&status["updatedReplicas"]);
    let total = int(&status["replicas"]);
    Progress {
        component: deployment["metadata"]["labels"][COMPONENT_LABEL]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        desired,
        ready,
        done: observed && updated >= desired && ready >= desired && total <= desired,
    }
}

pub fn summary(progress: &[Progress]) -> String {
    progress
        .iter()
        .map(|p| format!("{} {}/{}", p.component, p.ready, p.desired))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why one pod is not ready, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub pod: String,
    pub reason: String,
    pub advice: Option<String>,
    /// Something is already on its way (the autoscaler adds a node, the container starts).
    pub moving: bool,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {}: {}", self.pod, self.reason)?;
        if let Some(advice) = &self.advice {
            write!(f, " → {advice}")?;
        }
        Ok(())
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// The not-ready pods of an instance and why.
pub fn diagnose(
    kube: &Kube,
    app: &App,
    namespace: &str,
    selector: &str,
    r#virtual: bool,
) -> Result<Vec<Blocker>, PluginError> {
    let pods = kube.list("v1", "Pod", Some(namespace), Some(selector), None)?;
    let mut blockers = Vec::new();
    for pod in &pods {
        if pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ready = condition(pod, "Ready").is_some_and(|c| c["status"] == "True");
        if ready {
            continue;
        }
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let component = pod["metadata"]["labels"][COMPONENT_LABEL]
            .as_str()
            .unwrap_or_default();
        let placement = app
            .components
            .iter()
            .find(|c| c.name == component)
            .map(|c| placement(c, r#virtual))
            .unwrap_or(Placement::Default);
        blockers.push(pod_blocker(kube, namespace, pod, name, &placement)?);
    }
    Ok(blockers)
}

fn pod_blocker(
    kube: &Kube,
    namespace: &str,
    pod: &Value,
    name: String,
    placement: &Placement,
) -> Result<Blocker, PluginError> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for status in &statuses {
        let waiting = &status["state"]["waiting"];
        let reason = waiting["reason"].as_str().unwrap_or_default();
        let message = waiting["message"].as_str().unwrap_or_default();
        let image = status["image"]
            .as_str()
            .or_else(|| pod["spec"]["containers"][0]["image"].as_str())
            .unwrap_or_default();
        match reason {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                let registry = image.split('/').next().unwrap_or_default();
                let attach = registry
                    .strip_suffix(".azurecr.io")
                    .map(|acr| format!(" (for ACR: `az aks update --attach-acr {acr}`)"))
                    .unwrap_or_default();
                return Ok(Blocker {
                    pod: name,
                    reason: format!("the cluster cannot pull image {image} ({reason}): {message}"),
                    advice: Some(format!(
                        "check that {image} exists and that the cluster may pull from {registry}{attach}"
                    )),
                    moving: false,
                });
            }
            "CrashLoopBackOff" => {
                let last = &status["lastState"]["terminated"];
                let exit = match (last["reason"].as_str(), last["exitCode"].as_i64()) {
                    (Some(r), Some(code)) => format!("; last exit {r} ({code})"),
                    _ => String::new(),
                };
                let container = status["name"].as_str().unwrap_or_default();
                return Ok(Blocker {
                    pod: name.clone(),
                    reason: format!(
                        "container {container} keeps crashing ({} restarts{exit})",
                        status["restartCount"].as_i64().unwrap_or(0)
                    ),
                    advice: Some(format!(
                        "read its logs: `/vk logs {name} --namespace {namespace}`"
                    )),
                    moving: false,
                });
            }
            _ => {}
        }
    }
    let scheduled = condition(pod, "PodScheduled");
    if scheduled.is_some_and(|c| c["status"] == "False") {
        let events = kube.list(
            "v1",
            "Event",
            Some(namespace),
            None,
            Some(&format!("involvedObject.name={name}")),
        )?;
        let latest = |reason: &str| {
            events
                .iter()
                .filter(|e| e["reason"] == reason)
                .max_by_key(|e| e["lastTimestamp"].as_str().unwrap_or_default().to_owned())
                .and_then(|e| e["message"].as_str())
                .map(str::to_owned)
        };
        let message = latest("FailedScheduling")
            .or_else(|| {
                scheduled
                    .and_then(|c| c["message"].as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "no node fits it".into());
        if let Some(scale_up) = latest("TriggeredScaleUp") {
            return Ok(Blocker {
                pod: name,
                reason: format!("waiting for a new node: {scale_up}"),
                advice: None,
                moving: true,
            });
        }
        let autoscaler = latest("FailedScaleUp")
            .or_else(|| latest("NotTriggerScaleUp"))
            .map(|m| format!(" The autoscaler: {m}"))
            .unwrap_or_default();
        return Ok(Blocker {
            pod: name,
            reason: format!("cannot be scheduled: {message}{autoscaler}"),
            advice: Some(scheduling_advice(&message, placement)),
            moving: false,
        });
    }
    let reason = statuses
        .iter()
        .find_map(|s| s["state"]["waiting"]["reason"].as_str())
        .map(|r| format!("starting ({r})"))
        .unwrap_or_else(|| {
            format!(
                "{} and not ready yet",
                pod["status"]["phase"].as_str().unwrap_or("Pending")
            )
        });
    Ok(Blocker {
        pod: name,
        reason,
        advice: None,
        moving: true,
    })
}

/// What to do about a `FailedScheduling` message, given where the pod should go.
pub fn scheduling_advice(message: &str, placement: &Placement) -> String {
    let pool = match placement {
        Placement::Pool(p) | Placement::Spot { pool: p } | Placement::Gpu { pool: p, .. } => {
            Some(p.as_str())
        }
        _ => None,
    };
    if message.contains("Insufficient nvidia.com/gpu") {
        let pool = pool.unwrap_or("gpu");
        return format!("no GPU is free: add a GPU node with `/aks scale --pool {pool} --count 1`");
    }
    if message.contains("didn't match Pod's node affinity/selector") {
        return match (placement, pool) {
            (Placement::Virtual, _) => {
                "the virtual node is missing or not ready: see `/vk status`, turn it on with `/vk enable --cluster CLUSTER`".into()
            }
            (_, Some(pool)) => format!(
                "pool {pool} has no node: add one with `/aks scale --pool {pool} --count 1`"
            ),
            _ => "no node carries the labels the pod asks for: see `/aks nodes`".into(),
        };
    }
    if message.contains("Insufficient cpu") || message.contains("Insufficient memory") {
        let target = pool
            .map(|p| format!("`/aks scale --pool {p} --count N`"))
            .unwrap_or_else(|| "`/aks scale --pool POOL --count N` (see `/aks pools`)".into());
        return format!(
            "the nodes are full: add nodes with {target}, or lower the cpu/memory requests in the app definition"
        );
    }
    if message.contains("untolerated taint") {
        return "every fitting node has a taint the pod does not tolerate: see `/aks nodes`".into();
    }
    "see `/aks nodes` and `/aks pools` for what the cluster offers".into()
}

/// How a rollout ended.
pub enum Outcome {
    Ready(Vec<Progress>),
    /// Not ready in time, or clearly stuck: the progress so far and why.
    Stuck(Vec<Progress>, Vec<Blocker>),
    Cancelled(Vec<Progress>),
}

/// Polls the instance's Deployments until all are rolled out, reporting changes as progress.
pub fn wait(
    kube: &Kube,
    settings: &Settings,
    app: &App,
    names: &[String],
    selector: &str,
    r#virtual: bool,
) -> Result<Outcome, PluginError> {
    let namespace = app.namespace.as_str();
    let started = Instant::now();
    let mut last_change = Instant::now();
    let mut last: Option<Vec<Progress>> = None;
    let mut last_blockers = String::new();
    loop {
        let mut now = Vec::new();
        for name in names {
            if let Some(d) = kube.get("apps/v1", "Deployment", Some(namespace), name)? {
                now.push(progress(&d));
            }
        }
        if now.iter().all(|p| p.done) {
            return Ok(Outcome::Ready(now));
        }
        if last.as_ref() != Some(&now) {
            kube.ctx.progress(format!("rollout: {}", summary(&now)));
            last_change = Instant::now();
        }
        last = Some(now.clone());
        let blockers = diagnose(kube, app, namespace, selector, r#virtual)?;
        let text = blockers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        if !text.is_empty() && text != last_blockers {
            kube.ctx.progress(format!("waiting: {text}"));
            last_blockers = text;
        }
        let stuck = !blockers.is_empty()
            && blockers.iter().all(|b| !b.moving)
            && last_change.elapsed() >= settings.rollout_stuck_after;
        if stuck || started.elapsed() >= settings.rollout_timeout {
            return Ok(Outcome::Stuck(now, blockers));
        }
        if kube.ctx.is_cancelled() {
            return Ok(Outcome::Cancelled(now));
        }
        std::thread::sleep(settings.rollout_poll);
        if kube.ctx.is_cancelled() {
            return Ok(Outcome::Cancelled(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_needs_the_new_generation_ready() {
        let d = json!({"metadata": {"generation": 2, "labels": {COMPONENT_LABEL: "web"}},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1}});
        let p = progress(&d);
        assert!(!p.done);
        assert_eq!(summary(&[p]), "web 1/2");
        let mut d2 = d.clone();
        d2["status"]["readyReplicas"] = json!(2);
        assert!(progress(&d2).done);
        d2["status"]["observedGeneration"] = json!(1);
        assert!(
            !progress(&d2).done,
            "an old status says nothing of the new spec"
        );
    }

    #[test]
    fn advice_names_the_command_to_run() {
        let gpu = Placement::Gpu {
            pool: "gpu".into(),
            gpus: 1,
        };
        let message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.";
        assert!(scheduling_advice(message, &gpu).contains("/aks scale --pool gpu --count 1"));
        let selector =
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
        assert!(scheduling_advice(selector, &Placement::Virtual).contains("/vk"));
        assert!(
            scheduling_advice(
                "0/3 nodes are available: 3 Insufficient cpu.",
                &Placement::Default
            )
            .contains("/aks scale")
        );
    }
}
