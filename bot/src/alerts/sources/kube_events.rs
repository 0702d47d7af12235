//! Kubernetes failures that matter for Deckhand's workloads, watched per configured cluster:
//! CrashLoopBackOff, OOMKilled, FailedScheduling (naming the missing resource, e.g.
//! `nvidia.com/gpu`), ImagePullBackOff (often a missing registry pull secret), node NotReady
//! and Spot node evictions.
//!
//! Classification is pure (`classify_event`, `classify_pod`, `classify_node`); [`watch`] runs
//! kube-runtime watchers on Events, Pods and Nodes and feeds what they classify to the pipeline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde::Deserialize;

use crate::alerts::alert::{Alert, Severity, Source, Status};

/// `[[alerts.kubernetes]]`: one cluster to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeClusterConfig {
    /// The cluster's name in alerts and routes (`cluster = [...]`). Without `kubeconfig`, the
    /// `[[kubernetes.clusters]]` entry of this name gives the credentials (AKS user
    /// credential, kubeconfig or in-cluster), shared with the plugins' Kubernetes service.
    pub name: String,
    /// Kubeconfig file (relative to the config file).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Context inside it; the current context when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// Events older than this when the watch (re)starts are not alerted again.
    #[serde(
        default = "default_max_event_age",
        with = "crate::config_support::duration"
    )]
    pub max_event_age: Duration,
}

fn default_max_event_age() -> Duration {
    Duration::from_secs(600)
}

#[derive(Debug, thiserror::Error)]
pub enum KubeSourceError {
    #[error("cluster {cluster}: kubeconfig {path}: {message}")]
    Kubeconfig {
        cluster: String,
        path: String,
        message: String,
    },
    #[error("cluster {cluster}: {message}")]
    Cluster { cluster: String, message: String },
    #[error("cluster {cluster}: cannot build a client: {source}")]
    Client {
        cluster: String,
        #[source]
        source: kube::Error,
    },
}

fn alert(
    cluster: &str,
    namespace: &str,
    kind: &str,
    object: &str,
    reason: &str,
    severity: Severity,
    summary: String,
) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("cluster".to_owned(), cluster.to_owned());
    if !namespace.is_empty() {
        labels.insert("namespace".to_owned(), namespace.to_owned());
    }
    labels.insert(kind.to_ascii_lowercase(), object.to_owned());
    labels.insert("reason".to_owned(), reason.to_owned());
    Alert {
        source: Source::Kubernetes,
        fingerprint: format!("{cluster}/{namespace}/{kind}/{object}/{reason}"),
        status: Status::Firing,
        severity,
        name: reason.to_owned(),
        summary,
        labels,
        starts_at: Some(Utc::now()),
        ends_at: None,
        url: None,
    }
}

/// The resources a FailedScheduling message says no node has enough of:
/// `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.` → `["nvidia.com/gpu"]`.
pub fn missing_resources(message: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("Insufficient ") {
        rest = &rest[at + "Insufficient ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
            .collect();
        let name = name.trim_end_matches('.').to_owned();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

fn pull_secret_hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("401")
        || m.contains("403")
        || m.contains("pull access denied")
    {
        " (the registry refused the credentials: is the image pull secret missing or stale?)"
    } else {
        ""
    }
}

/// Classifies a core/v1 Event; `None` for the ones that do not matter here.
pub fn classify_event(cluster: &str, event: &Event) -> Option<Alert> {
    let reason = event.reason.as_deref().unwrap_or_default();
    let message = event.message.as_deref().unwrap_or_default();
    let involved = &event.involved_object;
    let kind = involved.kind.as_deref().unwrap_or_default();
    let object = involved.name.as_deref().unwrap_or_default();
    let namespace = involved
        .namespace
        .as_deref()
        .or(event.metadata.namespace.as_deref())
        .unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    let (name, severity, summary) = match reason {
        "FailedScheduling" => {
            let missing = missing_resources(message);
            let summary = if missing.is_empty() {
                format!("pod {object} cannot be scheduled: {message}")
            } else {
                format!(
                    "pod {object} cannot be scheduled: no node has enough {}: {message}",
                    missing.join(", ")
                )
            };
            let mut a = alert(
                cluster,
                namespace,
                kind,
                object,
                "FailedScheduling",
                Severity::Warning,
                summary,
            );
            if !missing.is_empty() {
                a.labels.insert("resource".into(), missing.join(","));
            }
            return Some(a);
        }
        "BackOff" if lower.contains("restarting failed container") => (
            "CrashLoopBackOff",
            Severity::Error,
            format!("pod {object} is crash-looping: {message}"),
        ),
        "BackOff" if lower.contains("pulling image") => (
            "ImagePullBackOff",
            Severity::Error,
            format!(
                "pod {object} cannot pull its image: {message}{}",
                pull_secret_hint(message)
            ),
        ),
        "Failed" | "ErrImagePull" | "ImagePullBackOff"
            if lower.contains("pull") || reason != "Failed" =>
        {
            (
                "ImagePullBackOff",
                Severity::Error,
                format!(
                    "pod {object} cannot pull its image: {message}{}",
                    pull_secret_hint(message)
                ),
            )
        }
        "OOMKilling" | "OOMKilled" => (
            "OOMKilled",
            Severity::Error,
            format!("pod {object} was OOM-killed: {message}"),
        ),
        "NodeNotReady" => (
            "NodeNotReady",
            Severity::Critical,
            format!("node {object} is NotReady: {message}"),
        ),
        "PreemptScheduled" | "SpotEviction" | "SpotInterruption" | "Preempted" => (
            "SpotEviction",
            Severity::Warning,
            format!("Spot node {object} is being evicted: {message}"),
        ),
        _ if kind == "Node" && lower.contains("spot") && lower.contains("evict") => (
            "SpotEviction",
            Severity::Warning,
            format!("Spot node {object} is being evicted: {message}"),
        ),
        _ => return None,
    };
    Some(alert(
        cluster, namespace, kind, object, name, severity, summary,
    ))
}

/// A pod's current problems: unschedulable (FailedScheduling), and per container OOMKilled
/// (last termination, while not ready), CrashLoopBackOff and ImagePullBackOff/ErrImagePull
/// (waiting). The watcher resolves a problem once it is no longer listed.
pub fn classify_pod(cluster: &str, pod: &Pod) -> Vec<Alert> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    if let Some(condition) = unschedulable {
        let message = condition.message.as_deref().unwrap_or_default();
        let missing = missing_resources(message);
        let mut a = alert(
            cluster,
            namespace,
            "Pod",
            name,
            "FailedScheduling",
            Severity::Warning,
            if missing.is_empty() {
                format!("pod {name} cannot be scheduled: {message}")
            } else {
                format!(
                    "pod {name} cannot be scheduled: no node has enough {}: {message}",
                    missing.join(", ")
                )
            },
        );
        if !missing.is_empty() {
            a.labels.insert("resource".into(), missing.join(","));
        }
        out.push(a);
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    for cs in statuses.into_iter().flatten() {
        let oom = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"));
        if oom && !cs.ready {
            out.push(alert(
                cluster,
                namespace,
                "Pod",
                name,
                "OOMKilled",
                Severity::Error,
                format!(
                    "pod {name}: container {} was OOM-killed (exit 137, {} restarts); raise its memory limit",
                    cs.name, cs.restart_count
                ),
            ));
        }
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting
            .and_then(|w| w.reason.as_deref())
            .unwrap_or_default();
        let message = waiting
            .and_then(|w| w.message.as_deref())
            .unwrap_or_default();
        match reason {
            "CrashLoopBackOff" => out.push(alert(
                cluster,
                namespace,
                "Pod",
                name,
                "CrashLoopBackOff",
                Severity::Error,
                format!(
                    "pod {name}: container {} is crash-looping ({} restarts)",
                    cs.name, cs.restart_count
                ),
            )),
            "ImagePullBackOff" | "ErrImagePull" => out.push(alert(
                cluster,
                namespace,
                "Pod",
                name,
                "ImagePullBackOff",
                Severity::Error,
                format!(
                    "pod {name}: container {} cannot pull {}: {message}{}",
                    cs.name,
                    cs.image,
                    pull_secret_hint(message)
                ),
            )),
            _ => {}
        }
    }
    out
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// New problems (firing) and problems gone (resolved) between two looks at one pod.
pub fn pod_changes(previous: &[Alert], current: &[Alert]) -> Vec<Alert> {
    let mut out: Vec<Alert> = current
        .iter()
        .filter(|a| !previous.iter().any(|p| p.fingerprint == a.fingerprint))
        .cloned()
        .collect();
    for gone in previous
        .iter()
        .filter(|p| !current.iter().any(|a| a.fingerprint == p.fingerprint))
    {
        let mut resolved = gone.clone();
        resolved.status = Status::Resolved;
        out.push(resolved);
    }
    out
}

/// `Some(firing)` when the node's Ready condition is not True, `Some(resolved)` when it is.
pub fn classify_node(cluster: &str, node: &Node) -> Option<Alert> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))?;
    let spot = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.azure.com/scalesetpriority"))
        .is_some_and(|p| p == "spot");
    let mut a = alert(
        cluster,
        "",
        "Node",
        name,
        "NodeNotReady",
        Severity::Critical,
        format!(
            "node {name} is {}{}: {}",
            if ready.status == "Unknown" {
                "unreachable"
            } else {
                "NotReady"
            },
            if spot {
                " (Spot node: possibly evicted)"
            } else {
                ""
            },
            ready.message.as_deref().unwrap_or_default()
        ),
    );
    if ready.status == "True" {
        a.status = Status::Resolved;
        a.summary = format!("node {name} is Ready again");
    }
    Some(a)
}

/// Builds a client for one configured cluster.
pub async fn client(
    config: &KubeClusterConfig,
    path: &std::path::Path,
) -> Result<Client, KubeSourceError> {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).map_err(|e| KubeSourceError::Kubeconfig {
            cluster: config.name.clone(),
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let options = kube::config::KubeConfigOptions {
        context: config.context.clone(),
        ..Default::default()
    };
    let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| KubeSourceError::Kubeconfig {
            cluster: config.name.clone(),
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    Client::try_from(client_config).map_err(|source| KubeSourceError::Client {
        cluster: config.name.clone(),
        source,
    })
}

/// Something the watchers classified.
pub type Sink = Arc<dyn Fn(Vec<Alert>) + Send + Sync>;

/// Watches Events, Pods and Nodes of one cluster until the returned tasks are aborted.
/// Watch errors are retried with kube-runtime's default backoff.
pub fn watch(
    cluster: &KubeClusterConfig,
    client: Client,
    sink: Sink,
) -> Vec<tokio::task::JoinHandle<()>> {
    let name = cluster.name.clone();
    let max_age =
        chrono::Duration::from_std(cluster.max_event_age).unwrap_or(chrono::Duration::minutes(10));
    let mut tasks = Vec::new();

    let (n, s, c) = (name.clone(), sink.clone(), client.clone());
    tasks.push(tokio::spawn(async move {
        let api: Api<Event> = Api::all(c);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            let (event, initial) = match item {
                Ok(watcher::Event::Apply(e)) => (e, false),
                Ok(watcher::Event::InitApply(e)) => (e, true),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(cluster = %n, error = %e, "event watch failed; retrying");
                    continue;
                }
            };
            if initial {
                let last = event
                    .last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(event.event_time.as_ref().map(|t| t.0));
                let old = last.is_some_and(|t| {
                    let age = Utc::now().timestamp() - t.as_second();
                    age > max_age.num_seconds()
                });
                if old {
                    continue;
                }
            }
            if let Some(alert) = classify_event(&n, &event) {
                s(vec![alert]);
            }
        }
    }));

    let (n, s, c) = (name.clone(), sink.clone(), client.clone());
    tasks.push(tokio::spawn(async move {
        let api: Api<Pod> = Api::all(c);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        // Problems reported per pod, so each is fired once and resolved when it goes away.
        let mut flagged: HashMap<String, Vec<Alert>> = HashMap::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    let key = pod_key(&p);
                    let current = classify_pod(&n, &p);
                    let previous = flagged.remove(&key).unwrap_or_default();
                    let changes = pod_changes(&previous, &current);
                    if !current.is_empty() {
                        flagged.insert(key, current);
                    }
                    if !changes.is_empty() {
                        s(changes);
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    let previous = flagged.remove(&pod_key(&p)).unwrap_or_default();
                    let changes = pod_changes(&previous, &[]);
                    if !changes.is_empty() {
                        s(changes);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(cluster = %n, error = %e, "pod watch failed; retrying"),
            }
        }
    }));

    let (n, s, c) = (name, sink, client);
    tasks.push(tokio::spawn(async move {
        let api: Api<Node> = Api::all(c);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut not_ready: HashSet<String> = HashSet::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::Apply(node) | watcher::Event::InitApply(node)) => {
                    let Some(alert) = classify_node(&n, &node) else {
                        continue;
                    };
                    let key = node.metadata.name.clone().unwrap_or_default();
                    // Only a node seen NotReady gets a "resolved"; healthy updates are quiet.
                    let news = match alert.status {
                        Status::Firing => not_ready.insert(key),
                        Status::Resolved => not_ready.remove(&key),
                    };
                    if news {
                        s(vec![alert]);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(cluster = %n, error = %e, "node watch failed; retrying"),
            }
        }
    }));
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn event(reason: &str, kind: &str, message: &str) -> Event {
        Event {
            reason: Some(reason.into()),
            message: Some(message.into()),
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                name: Some("worker-0".into()),
                namespace: Some("ml".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn failed_scheduling_names_the_missing_resource() {
        let a = classify_event(
            "pangeo",
            &event(
                "FailedScheduling",
                "Pod",
                "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
            ),
        )
        .unwrap();
        assert_eq!(a.name, "FailedScheduling");
        assert_eq!(a.label("resource"), Some("nvidia.com/gpu"));
        assert!(
            a.summary.contains("no node has enough nvidia.com/gpu"),
            "{}",
            a.summary
        );
        assert_eq!(a.cluster(), Some("pangeo"));
        assert_eq!(a.namespace(), Some("ml"));
        assert_eq!(
            missing_resources(
                "0/5 nodes are available: 2 Insufficient cpu, 3 Insufficient memory."
            ),
            ["cpu", "memory"]
        );
    }

    #[test]
    fn classifies_the_failures_that_matter() {
        let cases = [
            (
                "BackOff",
                "Pod",
                "Back-off restarting failed container main in pod x",
                "CrashLoopBackOff",
            ),
            (
                "BackOff",
                "Pod",
                "Back-off pulling image \"intens.azurecr.io/simsvc\"",
                "ImagePullBackOff",
            ),
            (
                "Failed",
                "Pod",
                "Failed to pull image: 401 Unauthorized",
                "ImagePullBackOff",
            ),
            (
                "OOMKilling",
                "Pod",
                "Memory cgroup out of memory",
                "OOMKilled",
            ),
            ("NodeNotReady", "Node", "Node is not ready", "NodeNotReady"),
            (
                "PreemptScheduled",
                "Node",
                "Spot VM eviction scheduled",
                "SpotEviction",
            ),
        ];
        for (reason, kind, message, expected) in cases {
            let a = classify_event("c", &event(reason, kind, message)).unwrap();
            assert_eq!(a.name, expected, "{reason}: {message}");
        }
        let pull = classify_event(
            "c",
            &event("Failed", "Pod", "Failed to pull image: 401 Unauthorized"),
        )
        .unwrap();
        assert!(pull.summary.contains("pull secret"), "{}", pull.summary);
        assert!(classify_event("c", &event("Scheduled", "Pod", "Successfully assigned")).is_none());
        assert!(classify_event("c", &event("Failed", "Pod", "Error: context deadline")).is_none());
    }

    #[test]
    fn pod_status_oom_and_crash_loop() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "dask-worker-1", "namespace": "dask"},
            "status": {"containerStatuses": [{
                "name": "worker", "image": "daskdev/dask", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            }]}
        }))
        .unwrap();
        let alerts = classify_pod("pangeo", &pod);
        let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["OOMKilled", "CrashLoopBackOff"]);
        assert_eq!(
            alerts[0].fingerprint,
            "pangeo/dask/Pod/dask-worker-1/OOMKilled"
        );
    }

    #[test]
    fn unschedulable_pods_and_resolution() {
        let pending: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "train-0", "namespace": "ml"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}
        }))
        .unwrap();
        let before = classify_pod("c", &pending);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].label("resource"), Some("nvidia.com/gpu"));
        let fired = pod_changes(&[], &before);
        assert_eq!(fired[0].status, Status::Firing);
        assert!(
            pod_changes(&before, &before).is_empty(),
            "no repeat while unchanged"
        );
        let resolved = pod_changes(&before, &[]);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Resolved);
        assert_eq!(resolved[0].fingerprint, before[0].fingerprint);
    }

    #[test]
    fn node_ready_condition() {
        let node = |status: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "aks-workers-0", "labels": {"kubernetes.azure.com/scalesetpriority": "spot"}},
                "status": {"conditions": [{"type": "Ready", "status": status, "message": "kubelet stopped posting node status"}]}
            }))
            .unwrap()
        };
        let down = classify_node("c", &node("Unknown")).unwrap();
        assert_eq!(down.status, Status::Firing);
        assert!(down.summary.contains("Spot"), "{}", down.summary);
        assert_eq!(
            classify_node("c", &node("True")).unwrap().status,
            Status::Resolved
        );
    }
}
