//! A cluster autoscaler for agent pools with `enableAutoScaling`: pods that fit nowhere make a
//! pool whose VM shape fits them grow (up to `maxCount`) on the next tick; nodes of such pools
//! that stay empty for `SandboxOptions::scale_down_after` are removed (down to `minCount`).
//! Runs as a background task started by `Sandbox::start`, which also lets Job pods finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::controllers::event;
use super::nodes::{node_name, pool_node, sync};
use super::scheduler::fits_empty;
use crate::state::{Key, Shared};

/// Runs forever, one pass per tick.
pub async fn run(shared: Arc<Shared>) {
    let tick = shared
        .opts
        .lro_delay
        .max(std::time::Duration::from_millis(20));
    let mut empty_since: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(tick).await;
        if shared.opts.cluster_autoscaler {
            pass(&shared, &mut empty_since);
        }
        super::kubelet::complete_job_pods(&shared);
        // The kubelet retries (image pulls) and controllers resync on every tick.
        super::reconcile_all(&shared);
    }
}

fn unschedulable(p: &Value) -> bool {
    p["spec"]["nodeName"].is_null()
        && p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == json!("PodScheduled") && c["reason"] == json!("Unschedulable"))
}

/// One autoscaler pass over every cluster.
pub fn pass(shared: &Shared, empty_since: &mut HashMap<String, Instant>) {
    let mut w = shared.world();
    let keys: Vec<Key> = w.clusters.keys().cloned().collect();
    let mut changed = Vec::new();
    for k in keys {
        let Some(c) = w.clusters.get(&k).cloned() else {
            continue;
        };
        if c.power != "Running" || c.busy.is_some() {
            continue;
        }
        let Some(kc) = w.kube.get_mut(&c.kube_id) else {
            continue;
        };
        let pending: Vec<Value> = kc
            .store
            .list("pods", None)
            .into_iter()
            .filter(unschedulable)
            .collect();
        let mut grow: HashMap<String, u32> = HashMap::new();
        for pod in &pending {
            let mut hit = None;
            let mut quota_blocked = None;
            for p in c.pools.values() {
                let auto = p.props["enableAutoScaling"] == json!(true)
                    && p.busy.is_none()
                    && p.props["powerState"]["code"].as_str() != Some("Stopped");
                let max = p.props["maxCount"].as_u64().unwrap_or(0) as u32;
                let planned = p.count() + grow.get(&p.name).copied().unwrap_or(0);
                if auto && planned < max && fits_empty(pod, &pool_node(shared, &c, p, planned, 0)) {
                    let vm = crate::vmsizes::lookup(&p.vm_size());
                    if let Some(vm) =
                        vm.filter(|v| v.gpus > 0 && crate::faults::gpu_quota_active(shared))
                    {
                        quota_blocked = Some((p.name.clone(), vm.family));
                        continue;
                    }
                    hit = Some((p.name.clone(), planned, max));
                    break;
                }
            }
            if hit.is_none()
                && let Some((pool, family)) = quota_blocked
            {
                let ns = pod["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string();
                let uid = pod["metadata"]["uid"].clone();
                let told = kc.store.list("events", Some(&ns)).iter().any(|e| {
                    e["involvedObject"]["uid"] == uid && e["reason"] == json!("FailedScaleUp")
                });
                if !told {
                    let msg = format!(
                        "Node scale up in zones {}-1 associated with this pod failed: QuotaExceeded: Operation could not be completed as it results in exceeding approved {family} Cores quota (agent pool {pool}). Pod is at risk of not being scheduled.",
                        c.location.to_ascii_lowercase()
                    );
                    event(
                        &mut kc.store,
                        pod,
                        "Pod",
                        "Warning",
                        "FailedScaleUp",
                        &msg,
                        "cluster-autoscaler",
                    );
                }
                continue;
            }
            let ns = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            match hit {
                Some((pool, from, max)) => {
                    *grow.entry(pool.clone()).or_insert(0) += 1;
                    let digits = c
                        .pools
                        .get(&pool.to_ascii_lowercase())
                        .map(|p| p.node_digits.clone())
                        .unwrap_or_default();
                    let msg = format!(
                        "pod triggered scale-up: [{{aks-{pool}-{digits}-vmss {from}->{} (max: {max})}}]",
                        from + 1
                    );
                    event(
                        &mut kc.store,
                        pod,
                        "Pod",
                        "Normal",
                        "TriggeredScaleUp",
                        &msg,
                        "cluster-autoscaler",
                    );
                }
                None => {
                    let uid = pod["metadata"]["uid"].clone();
                    let told = kc.store.list("events", Some(&ns)).iter().any(|e| {
                        e["involvedObject"]["uid"] == uid
                            && e["reason"] == json!("NotTriggerScaleUp")
                    });
                    if !told {
                        let groups = c
                            .pools
                            .values()
                            .filter(|p| p.props["enableAutoScaling"] == json!(true))
                            .count();
                        let msg = format!(
                            "pod didn't trigger scale-up: {groups} node group(s) could not fit the pod or reached their maximum size"
                        );
                        event(
                            &mut kc.store,
                            pod,
                            "Pod",
                            "Normal",
                            "NotTriggerScaleUp",
                            &msg,
                            "cluster-autoscaler",
                        );
                    }
                }
            }
        }
        // Scale down: the highest-numbered node of an autoscaled pool, empty long enough.
        let pods = kc.store.list("pods", None);
        let mut shrink: Vec<String> = Vec::new();
        for p in c.pools.values() {
            let min = p.props["minCount"].as_u64().unwrap_or(0) as u32;
            if p.props["enableAutoScaling"] != json!(true)
                || p.busy.is_some()
                || p.count() <= min
                || grow.contains_key(&p.name)
            {
                continue;
            }
            let last = node_name(p, p.count() - 1);
            // DaemonSet pods do not keep a node (as in the real cluster autoscaler).
            let busy = pods.iter().any(|x| {
                x["spec"]["nodeName"] == json!(last)
                    && !x["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|o| o["kind"] == json!("DaemonSet"))
            });
            if busy {
                empty_since.remove(&last);
                continue;
            }
            let since = *empty_since.entry(last.clone()).or_insert_with(Instant::now);
            if since.elapsed() >= shared.opts.scale_down_after {
                empty_since.remove(&last);
                shrink.push(p.name.clone());
            }
        }
        if let Some(cm) = w.clusters.get_mut(&k) {
            for (pool, n) in &grow {
                if let Some(p) = cm.pools.get_mut(&pool.to_ascii_lowercase()) {
                    p.props["count"] = json!(p.count() + n);
                }
            }
            for pool in &shrink {
                if let Some(p) = cm.pools.get_mut(&pool.to_ascii_lowercase()) {
                    p.props["count"] = json!(p.count() - 1);
                }
            }
        }
        if !grow.is_empty() || !shrink.is_empty() {
            sync(shared, &mut w, &k);
            changed.push(c.kube_id.clone());
        }
    }
    for id in changed {
        super::controllers::reconcile(shared, &mut w, &id);
    }
}
