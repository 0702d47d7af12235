//! A minimal kube-scheduler: filters nodes by unschedulable, nodeSelector, taints/tolerations and
//! resource requests (cpu, memory, nvidia.com/gpu, pod count), binds to the least-loaded fit, and
//! reports `FailedScheduling` worded as the real scheduler words it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::store::Store;

/// Parses a Kubernetes quantity into a float of base units (cores, bytes, count).
pub fn quantity(q: &Value) -> f64 {
    let s = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64().unwrap_or(0.0),
        _ => return 0.0,
    };
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suf, mul) in suffixes {
        if let Some(n) = s.strip_suffix(suf) {
            return n.parse::<f64>().unwrap_or(0.0) * mul;
        }
    }
    s.parse::<f64>().unwrap_or(0.0)
}

/// Sum of container requests (limits stand in for missing requests, as defaulting does).
pub fn pod_requests(pod: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        let mut keys: Vec<String> = req
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for k in lim
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for k in keys {
            let v = if req.get(&k).is_some() {
                quantity(&req[&k])
            } else {
                quantity(&lim[&k])
            };
            *out.entry(k).or_insert(0.0) += v;
        }
    }
    out
}

fn tolerates(pod: &Value, taint: &Value) -> bool {
    let effect = taint["effect"].as_str().unwrap_or("");
    if effect == "PreferNoSchedule" {
        return true;
    }
    pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            let op = t["operator"].as_str().unwrap_or("Equal");
            let key_ok = match t["key"].as_str() {
                None | Some("") => op == "Exists",
                Some(k) => Some(k) == taint["key"].as_str(),
            };
            let val_ok = op == "Exists"
                || t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("");
            let eff_ok = t["effect"]
                .as_str()
                .is_none_or(|e| e.is_empty() || e == effect);
            key_ok && val_ok && eff_ok
        })
}

fn selector_ok(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let sel_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    let aff_ok = terms.as_array().is_none_or(|ts| {
        ts.is_empty()
            || ts.iter().any(|t| {
                t["matchExpressions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| {
                        let key = e["key"].as_str().unwrap_or("");
                        let have = labels.get(key).and_then(Value::as_str);
                        let vals: Vec<&str> = e["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        match e["operator"].as_str() {
                            Some("In") => have.is_some_and(|h| vals.contains(&h)),
                            Some("NotIn") => have.is_none_or(|h| !vals.contains(&h)),
                            Some("Exists") => have.is_some(),
                            Some("DoesNotExist") => have.is_none(),
                            _ => true,
                        }
                    })
            })
    });
    sel_ok && aff_ok
}

/// Why one node does not fit; empty when it fits.
fn filter(
    pod: &Value,
    node: &Value,
    used: &BTreeMap<String, f64>,
    pods_on_node: usize,
) -> Vec<String> {
    if node["spec"]["unschedulable"] == json!(true) {
        return vec!["node(s) were unschedulable".into()];
    }
    if !selector_ok(pod, node) {
        return vec!["node(s) didn't match Pod's node affinity/selector".into()];
    }
    for t in node["spec"]["taints"].as_array().into_iter().flatten() {
        if !tolerates(pod, t) {
            return vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t["key"].as_str().unwrap_or(""),
                t["value"].as_str().unwrap_or("")
            )];
        }
    }
    let alloc = &node["status"]["allocatable"];
    let mut out = Vec::new();
    if pods_on_node as f64 + 1.0 > quantity(&alloc["pods"]) {
        out.push("Too many pods".to_string());
    }
    for (res, want) in pod_requests(pod) {
        if want <= 0.0
            || !(res == "cpu" || res == "memory" || res.contains('/') || res == "ephemeral-storage")
        {
            continue;
        }
        let have = quantity(&alloc[&res]);
        let in_use = used.get(&res).copied().unwrap_or(0.0);
        if in_use + want > have + 1e-9 {
            out.push(format!("Insufficient {res}"));
        }
    }
    out
}

/// True if `pod` would fit on an empty `node`.
pub fn fits_empty(pod: &Value, node: &Value) -> bool {
    filter(pod, node, &BTreeMap::new(), 0).is_empty()
}

/// Outcome of scheduling one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Bind to this node.
    Node(String),
    /// Fits nowhere: the FailedScheduling message.
    Unschedulable(String),
}

/// Finds a node for `pod` among the store's nodes.
pub fn place(store: &Store, pod: &Value) -> Placement {
    let nodes = store.list("nodes", None);
    let pods = store.list("pods", None);
    let mut usage: BTreeMap<String, (BTreeMap<String, f64>, usize)> = BTreeMap::new();
    for p in &pods {
        let Some(n) = p["spec"]["nodeName"].as_str() else {
            continue;
        };
        if matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            continue;
        }
        let e = usage.entry(n.to_string()).or_default();
        for (k, v) in pod_requests(p) {
            *e.0.entry(k).or_insert(0.0) += v;
        }
        e.1 += 1;
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(f64, String)> = None;
    for n in &nodes {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (used, count) = usage.get(&name).cloned().unwrap_or_default();
        let why = filter(pod, n, &used, count);
        if why.is_empty() {
            let cpu = quantity(&n["status"]["allocatable"]["cpu"]).max(0.001);
            let load = used.get("cpu").copied().unwrap_or(0.0) / cpu + count as f64 * 1e-4;
            if best.as_ref().is_none_or(|(l, _)| load < *l) {
                best = Some((load, name));
            }
        } else {
            for r in why {
                *reasons.entry(r).or_insert(0) += 1;
            }
        }
    }
    if let Some((_, n)) = best {
        return Placement::Node(n);
    }
    let total = nodes.len();
    if total == 0 {
        return Placement::Unschedulable("no nodes available to schedule pods".into());
    }
    let mut parts: Vec<String> = reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
    parts.sort();
    let resources_only = reasons
        .keys()
        .all(|r| r.starts_with("Insufficient") || r == "Too many pods");
    let preemption = if resources_only {
        format!(
            "preemption: 0/{total} nodes are available: {total} No preemption victims found for incoming pod."
        )
    } else {
        format!(
            "preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
        )
    };
    Placement::Unschedulable(format!(
        "0/{total} nodes are available: {}. {preemption}",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("100m")), 0.1);
        assert_eq!(quantity(&json!("2")), 2.0);
        assert_eq!(quantity(&json!("1Gi")), 1073741824.0);
        assert_eq!(quantity(&json!(3)), 3.0);
    }

    #[test]
    fn tolerations_match_taints() {
        let taint = json!({"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"});
        let pod = json!({"spec": {"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}]}});
        assert!(tolerates(&pod, &taint));
        assert!(!tolerates(&json!({"spec": {}}), &taint));
        assert!(tolerates(
            &json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
            &taint
        ));
    }
}
