//! The idle-GPU warning: a GPU pool with nodes up and no GPU requested by any pod on them for
//! longer than `[cost.idle] after` gets one warning in `[cost.idle] channel`, with a "Scale to 0"
//! button that runs `/aks scale-down … --count 0` (destructive: it asks for a confirmation, and
//! the presser needs its permission). Another warning comes only after the pool was busy again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use crate::chat::{Action, OutboundMessage};

/// `[cost.idle]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdleConfig {
    pub channel: String,
    /// How long a GPU pool may hold nodes nobody uses before the warning.
    #[serde(with = "crate::config_support::duration")]
    pub after: Duration,
}

/// What is known of one GPU pool at one look.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUse {
    /// The AKS cluster's name (as `/aks --cluster` takes it).
    pub cluster: String,
    pub pool: String,
    pub nodes: i64,
    /// GPUs requested by running or pending pods on the pool's nodes.
    pub gpus_requested: i64,
}

/// A pool: (cluster, pool).
type PoolKey = (String, String);

/// Since when each pool has been idle, and which were warned about.
#[derive(Default)]
pub struct IdleWatch {
    state: Mutex<IdleState>,
}

#[derive(Default)]
struct IdleState {
    since: BTreeMap<PoolKey, DateTime<Utc>>,
    warned: BTreeSet<PoolKey>,
}

impl IdleWatch {
    /// Takes one look at a pool; answers the warning to post when it has just been idle for
    /// `after`.
    pub fn observe(
        &self,
        config: &IdleConfig,
        seen: &PoolUse,
        now: DateTime<Utc>,
    ) -> Option<OutboundMessage> {
        let key = (seen.cluster.clone(), seen.pool.clone());
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let IdleState { since, warned } = &mut *state;
        if seen.nodes <= 0 || seen.gpus_requested > 0 {
            since.remove(&key);
            warned.remove(&key);
            return None;
        }
        let idle_since = *since.entry(key.clone()).or_insert(now);
        let after = chrono::Duration::from_std(config.after).ok()?;
        let due = idle_since.checked_add_signed(after)?;
        if now < due || warned.contains(&key) {
            return None;
        }
        warned.insert(key);
        let minutes = now.signed_duration_since(idle_since).num_minutes();
        Some(OutboundMessage {
            channel: config.channel.clone(),
            text: format!(
                "💤 GPU pool {} of {} has {} node{} up and no pod has asked for a GPU for {} min. Scale it to 0?",
                seen.pool,
                seen.cluster,
                seen.nodes,
                if seen.nodes == 1 { "" } else { "s" },
                minutes
            ),
            actions: vec![Action {
                label: format!("Scale {} to 0", seen.pool),
                command: format!(
                    "/aks scale-down --pool {} --count 0 --cluster {}",
                    seen.pool, seen.cluster
                ),
            }],
            files: Vec::new(),
            key: None,
        })
    }
}

/// GPUs (`nvidia.com/gpu`) that pods not yet finished ask for on `nodes`: limits (which GPU
/// requests must equal), else requests.
pub fn gpus_requested(pods: &[Pod], nodes: &BTreeSet<String>) -> i64 {
    pods.iter()
        .filter(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            nodes.contains(spec.node_name.as_deref()?).then_some(spec)
        })
        .flat_map(|spec| spec.containers.iter())
        .filter_map(|c| {
            let resources = c.resources.as_ref()?;
            let quantity = resources
                .limits
                .as_ref()
                .and_then(|l| l.get("nvidia.com/gpu"))
                .or_else(|| resources.requests.as_ref()?.get("nvidia.com/gpu"))?;
            quantity.0.parse::<i64>().ok()
        })
        .fold(0i64, i64::saturating_add)
}

/// Looks at every GPU pool with nodes once per `every` (after the sampler's latest samples) and
/// posts each warning `watch` answers, until the task is dropped.
pub async fn run(
    cost: std::sync::Arc<super::Cost>,
    config: IdleConfig,
    kube: std::sync::Arc<crate::host::services::Services>,
    outbox: std::sync::Arc<dyn crate::chat::Outbox>,
    clock: std::sync::Arc<dyn crate::sched::clock::Clock>,
    every: Duration,
) {
    let watch = IdleWatch::default();
    let step = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::minutes(5));
    loop {
        let now = clock.now();
        for seen in pool_uses(&cost, &kube, now, step).await {
            if let Some(message) = watch.observe(&config, &seen, now)
                && let Err(e) = outbox.post(message).await
            {
                tracing::warn!(pool = %seen.pool, error = %e, "cannot post the idle-GPU warning");
            }
        }
        let Some(next) = now.checked_add_signed(step) else {
            return;
        };
        clock.sleep_until(next).await;
    }
}

/// The GPU pools with nodes in the latest samples, with the GPUs their pods ask for now. A
/// cluster Kubernetes cannot be asked about is skipped (and logged): no guess is made.
async fn pool_uses(
    cost: &super::Cost,
    services: &std::sync::Arc<crate::host::services::Services>,
    now: DateTime<Utc>,
    step: chrono::Duration,
) -> Vec<PoolUse> {
    let from = now.checked_sub_signed(step * 2).unwrap_or(now);
    let Ok(samples) = cost.store.samples(from, now) else {
        return Vec::new();
    };
    let mut latest: BTreeMap<(String, String), i64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.gpu) {
        latest.insert((s.cluster.clone(), s.pool.clone()), s.count);
    }
    let mut out = Vec::new();
    for ((cluster, pool), nodes) in latest.into_iter().filter(|(_, n)| *n > 0) {
        let Some(aks) = cost.sampler.aks_name(&cluster) else {
            continue;
        };
        match gpus_on_pool(services.clone(), cluster.clone(), pool.clone()).await {
            Ok(gpus_requested) => out.push(PoolUse {
                cluster: aks,
                pool,
                nodes,
                gpus_requested,
            }),
            Err(e) => {
                tracing::warn!(%cluster, %pool, error = %e, "cannot tell whether the GPU pool is used")
            }
        }
    }
    out
}

/// The GPUs pods ask for on `pool`'s nodes. Run on a blocking thread of its own (as the
/// sampler's ARM calls): the Kubernetes client's futures are not `Send` for every lifetime, so
/// they cannot live in a spawned task.
async fn gpus_on_pool(
    services: std::sync::Arc<crate::host::services::Services>,
    cluster: String,
    pool: String,
) -> Result<i64, String> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(ask_kubernetes(&services, &cluster, &pool))
    })
    .await
    .map_err(|e| format!("the Kubernetes calls did not finish: {e}"))?
}

async fn ask_kubernetes(
    services: &crate::host::services::Services,
    cluster: &str,
    pool: &str,
) -> Result<i64, String> {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, ListParams};
    let client = services
        .cloud()
        .kube
        .client(cluster)
        .await
        .map_err(|e| e.to_string())?;
    let on_pool = ListParams::default().labels(&format!("agentpool={pool}"));
    let nodes: Api<Node> = Api::all(client.clone());
    let names: BTreeSet<String> = nodes
        .list(&on_pool)
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let every_pod = ListParams::default();
    let pods: Api<Pod> = Api::all(client);
    let pods = pods
        .list(&every_pod)
        .await
        .map_err(|e| e.to_string())?
        .items;
    Ok(gpus_requested(&pods, &names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::usage::tests::t;
    use serde_json::json;

    fn config() -> IdleConfig {
        IdleConfig {
            channel: "#gpu-ops".into(),
            after: Duration::from_secs(2 * 3600),
        }
    }

    fn seen(nodes: i64, gpus: i64) -> PoolUse {
        PoolUse {
            cluster: "pangeoCluster".into(),
            pool: "gpu".into(),
            nodes,
            gpus_requested: gpus,
        }
    }

    #[test]
    fn an_idle_gpu_pool_is_warned_about_once_after_the_threshold_with_a_scale_to_zero_button() {
        let watch = IdleWatch::default();
        let c = config();
        assert_eq!(
            watch.observe(&c, &seen(2, 0), t("2026-12-02T08:00:00Z")),
            None
        );
        assert_eq!(
            watch.observe(&c, &seen(2, 0), t("2026-12-02T09:59:00Z")),
            None
        );
        let warning = watch
            .observe(&c, &seen(2, 0), t("2026-12-02T10:00:00Z"))
            .expect("idle for 2 h");
        assert_eq!(warning.channel, "#gpu-ops");
        assert!(
            warning.text.contains("2 nodes up") && warning.text.contains("120 min"),
            "{}",
            warning.text
        );
        assert_eq!(
            warning.actions,
            vec![Action {
                label: "Scale gpu to 0".into(),
                command: "/aks scale-down --pool gpu --count 0 --cluster pangeoCluster".into(),
            }]
        );
        // Once per idle period.
        assert_eq!(
            watch.observe(&c, &seen(2, 0), t("2026-12-02T11:00:00Z")),
            None
        );
        // Busy again, then idle again: a new period, a new warning 2 h later.
        assert_eq!(
            watch.observe(&c, &seen(2, 1), t("2026-12-02T11:30:00Z")),
            None
        );
        assert_eq!(
            watch.observe(&c, &seen(2, 0), t("2026-12-02T12:00:00Z")),
            None
        );
        assert!(
            watch
                .observe(&c, &seen(2, 0), t("2026-12-02T14:00:00Z"))
                .is_some()
        );
        // A pool at zero is not idle.
        let watch = IdleWatch::default();
        assert_eq!(
            watch.observe(&c, &seen(0, 0), t("2026-12-02T08:00:00Z")),
            None
        );
        assert_eq!(
            watch.observe(&c, &seen(0, 0), t("2026-12-02T20:00:00Z")),
            None
        );
    }

    fn pod(node: &str, phase: &str, gpus: Option<&str>) -> Pod {
        let resources = match gpus {
            Some(n) => json!({"limits": {"nvidia.com/gpu": n}}),
            None => json!({"requests": {"cpu": "1"}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": resources}]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn only_unfinished_pods_on_the_pools_nodes_count_their_gpus() {
        let nodes: BTreeSet<String> = ["aks-gpu-1".to_owned()].into();
        let pods = [
            pod("aks-gpu-1", "Running", Some("2")),
            pod("aks-gpu-1", "Pending", Some("1")),
            pod("aks-gpu-1", "Succeeded", Some("4")),
            pod("aks-gpu-1", "Running", None),
            pod("aks-cpu-1", "Running", Some("8")),
        ];
        assert_eq!(gpus_requested(&pods, &nodes), 3);
        assert_eq!(gpus_requested(&pods[3..4], &nodes), 0);
    }
}
