//! The control loops the sandbox runs after every change: deployments → replica sets → pods,
//! statefulsets, jobs and daemonsets → pods, garbage collection and scheduling; then the kubelet's
//! part (`kubelet.rs`).

use serde_json::{Value, json};

use super::scheduler::{self, Placement};
use super::store::{Store, now};
use crate::state::{Shared, World};

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(super) fn safe_hash(s: &str, n: usize) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    (0..n)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            if h == 0 {
                h = 0x9e3779b97f4a7c15;
            }
            c
        })
        .collect()
}

fn random_suffix(n: usize) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..n)
        .map(|_| ALPHABET[r.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn owner_ref(obj: &Value, api_version: &str, kind: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

fn controller_uid(obj: &Value) -> Option<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == json!(true))
        .and_then(|o| o["uid"].as_str().map(str::to_string))
}

pub(super) fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(super) fn ns(o: &Value) -> String {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Records (or bumps) an Event about `obj`.
pub fn event(
    store: &mut Store,
    obj: &Value,
    kind: &str,
    ty: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let namespace = {
        let n = ns(obj);
        if n.is_empty() {
            "default".to_string()
        } else {
            n
        }
    };
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let existing = store
        .list("events", Some(&namespace))
        .into_iter()
        .find(|e| {
            e["involvedObject"]["uid"] == json!(uid)
                && e["reason"] == json!(reason)
                && e["message"] == json!(message)
        });
    let t = now();
    if let Some(mut e) = existing {
        e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
        e["lastTimestamp"] = json!(t);
        store.update("events", &namespace, e);
        return;
    }
    let res = super::resources::by_kind(kind);
    let e = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{}", name(obj), crate::arm::rand_hex(16)), "namespace": namespace},
        "involvedObject": {"kind": kind, "namespace": ns(obj), "name": name(obj), "uid": uid,
            "apiVersion": res.map(|r| r.api_version()).unwrap_or_else(|| "v1".into()),
            "resourceVersion": obj["metadata"]["resourceVersion"]},
        "reason": reason, "message": message, "type": ty, "count": 1,
        "source": {"component": component}, "firstTimestamp": t, "lastTimestamp": t,
        "reportingComponent": component, "reportingInstance": "",
    });
    store.create("events", &namespace, e);
}

/// Runs every loop until nothing changes (bounded).
pub fn reconcile(shared: &Shared, w: &mut World, id: &str) {
    for _ in 0..8 {
        let before = w.kube.get(id).map(|k| k.store.rv);
        step(shared, w, id);
        if w.kube.get(id).map(|k| k.store.rv) == before {
            break;
        }
    }
}

fn step(shared: &Shared, w: &mut World, id: &str) {
    let Some(arm_key) = w.kube.get(id).map(|k| k.arm_key.clone()) else {
        return;
    };
    let pull = super::kubelet::Pull::snapshot(w, &arm_key);
    let Some(kc) = w.kube.get_mut(id) else { return };
    let st = &mut kc.store;
    namespaces(st);
    deployments(st);
    replicasets(st);
    statefulsets(st);
    jobs(st);
    daemonsets(st);
    node_health(shared, st);
    collect_garbage(st);
    schedule(st);
    super::kubelet::kubelet(shared, st, &pull);
    super::kubelet::virtual_node_groups(shared, w, id, &arm_key);
}

fn namespaces(st: &mut Store) {
    for n in st.list("namespaces", None) {
        let nsn = name(&n);
        if n["status"]["phase"].is_null() {
            let mut n2 = n.clone();
            n2["status"] = json!({"phase": "Active"});
            n2["spec"] = json!({"finalizers": ["kubernetes"]});
            st.update("namespaces", "", n2);
        }
        if st.get("serviceaccounts", &nsn, "default").is_none() {
            st.create("serviceaccounts", &nsn, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}));
        }
    }
}

fn template_hash(tpl: &Value) -> String {
    safe_hash(&serde_json::to_string(tpl).unwrap_or_default(), 10)
}

fn deployments(st: &mut Store) {
    for d in st.list("deployments.apps", None) {
        let (dn, dns) = (name(&d), ns(&d));
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let tpl = d["spec"]["template"].clone();
        let hash = template_hash(&tpl);
        let rs_name = format!("{dn}-{hash}");
        let duid = d["metadata"]["uid"].clone();
        let owned: Vec<Value> = st
            .list("replicasets.apps", Some(&dns))
            .into_iter()
            .filter(|r| controller_uid(r).as_deref() == duid.as_str())
            .collect();
        for r in &owned {
            if name(r) != rs_name && r["spec"]["replicas"] != json!(0) {
                let mut r2 = r.clone();
                r2["spec"]["replicas"] = json!(0);
                st.update("replicasets.apps", &dns, r2);
            }
        }
        let mut labels = tpl["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels["pod-template-hash"] = json!(hash);
        let mut rs_tpl = tpl.clone();
        rs_tpl["metadata"]["labels"] = labels.clone();
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        match st.get("replicasets.apps", &dns, &rs_name).cloned() {
            Some(mut r) => {
                if r["spec"]["replicas"] != json!(replicas) {
                    r["spec"]["replicas"] = json!(replicas);
                    st.update("replicasets.apps", &dns, r);
                }
            }
            None => {
                st.create("replicasets.apps", &dns, json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs_name, "labels": labels,
                        "annotations": {"deployment.kubernetes.io/revision": (owned.len() + 1).to_string(),
                                        "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                        "ownerReferences": owner_ref(&d, "apps/v1", "Deployment")},
                    "spec": {"replicas": replicas, "selector": selector, "template": rs_tpl},
                }));
                let msg = format!("Scaled up replica set {rs_name} from 0 to {replicas}");
                event(
                    st,
                    &d,
                    "Deployment",
                    "Normal",
                    "ScalingReplicaSet",
                    &msg,
                    "deployment-controller",
                );
            }
        }
        // Status from the pods of all owned replica sets.
        let rs_uids: Vec<String> = st
            .list("replicasets.apps", Some(&dns))
            .into_iter()
            .filter(|r| controller_uid(r).as_deref() == duid.as_str())
            .filter_map(|r| r["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        let new_uid = st
            .get("replicasets.apps", &dns, &rs_name)
            .and_then(|r| r["metadata"]["uid"].as_str().map(str::to_string));
        let pods: Vec<Value> = st
            .list("pods", Some(&dns))
            .into_iter()
            .filter(|p| controller_uid(p).is_some_and(|u| rs_uids.contains(&u)))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let updated = pods.iter().filter(|p| controller_uid(p) == new_uid).count() as i64;
        let total = pods.len() as i64;
        let t = now();
        let available = ready >= replicas;
        let old_status = &d["status"];
        let keep_time = |ty: &str, status: &str| -> String {
            old_status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == json!(ty) && c["status"] == json!(status))
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| t.clone())
        };
        let avail_status = if available { "True" } else { "False" };
        let mut status = json!({
            "observedGeneration": d["metadata"]["generation"],
            "replicas": total, "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": avail_status,
                 "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                 "lastUpdateTime": keep_time("Available", avail_status), "lastTransitionTime": keep_time("Available", avail_status)},
                {"type": "Progressing", "status": "True",
                 "reason": if updated == replicas && ready == replicas { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                 "message": format!("ReplicaSet \"{rs_name}\" {}.", if updated == replicas && ready == replicas { "has successfully progressed" } else { "is progressing" }),
                 "lastUpdateTime": keep_time("Progressing", "True"), "lastTransitionTime": keep_time("Progressing", "True")},
            ],
        });
        if total > ready {
            status["unavailableReplicas"] = json!(total - ready);
        }
        for k in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            if status[k] == json!(0)
                && let Some(m) = status.as_object_mut()
            {
                m.remove(k);
            }
        }
        if d["status"] != status {
            let mut d2 = d.clone();
            d2["status"] = status;
            st.update("deployments.apps", &dns, d2);
        }
    }
}

/// True when the pod is Running and Ready.
pub fn pod_ready(p: &Value) -> bool {
    p["status"]["phase"] == json!("Running")
        && p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == json!("Ready") && c["status"] == json!("True"))
}

fn new_pod(
    owner: &Value,
    owner_kind: &str,
    pod_name: &str,
    tpl: &Value,
    extra_labels: Value,
) -> Value {
    let mut labels = tpl["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    if let Some(m) = extra_labels.as_object() {
        for (k, v) in m {
            labels[k] = v.clone();
        }
    }
    let mut spec = tpl["spec"].clone();
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    let mut tol = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for k in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tol.iter().any(|t| t["key"] == json!(k)) {
            tol.push(json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = Value::Array(tol);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "generateName": format!("{}-", name(owner)), "labels": labels,
            "annotations": tpl["metadata"]["annotations"].clone(),
            "ownerReferences": owner_ref(owner, "apps/v1", owner_kind)},
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    })
}

fn owned_pods(st: &Store, owner: &Value) -> Vec<Value> {
    let uid = owner["metadata"]["uid"].as_str().map(str::to_string);
    st.list("pods", Some(&ns(owner)))
        .into_iter()
        .filter(|p| controller_uid(p) == uid)
        .collect()
}

fn replicasets(st: &mut Store) {
    for r in st.list("replicasets.apps", None) {
        let rns = ns(&r);
        let want = r["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut pods = owned_pods(st, &r);
        while pods.len() < want {
            let pn = format!("{}-{}", name(&r), random_suffix(5));
            let p = new_pod(&r, "ReplicaSet", &pn, &r["spec"]["template"], json!({}));
            let p = st.create("pods", &rns, p);
            event(
                st,
                &r,
                "ReplicaSet",
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {pn}"),
                "replicaset-controller",
            );
            pods.push(p);
        }
        if pods.len() > want {
            // Unscheduled first, then not ready, then newest.
            pods.sort_by_key(|p| {
                (
                    p["spec"]["nodeName"].is_string(),
                    pod_ready(p),
                    std::cmp::Reverse(
                        p["metadata"]["creationTimestamp"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    ),
                )
            });
            for p in pods.drain(..pods.len() - want).collect::<Vec<_>>() {
                st.delete("pods", &rns, &name(&p));
                event(
                    st,
                    &r,
                    "ReplicaSet",
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(&p)),
                    "replicaset-controller",
                );
            }
        }
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": r["metadata"]["generation"]});
        for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            if status[k] == json!(0)
                && let Some(m) = status.as_object_mut()
            {
                m.remove(k);
            }
        }
        if r["status"] != status {
            let mut r2 = r.clone();
            r2["status"] = status;
            st.update("replicasets.apps", &rns, r2);
        }
    }
}

fn statefulsets(st: &mut Store) {
    for s in st.list("statefulsets.apps", None) {
        let sns = ns(&s);
        let want = s["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let hash = template_hash(&s["spec"]["template"]);
        let rev = format!("{}-{}", name(&s), hash);
        for i in 0..want {
            let pn = format!("{}-{i}", name(&s));
            if st.get("pods", &sns, &pn).is_none() {
                let p = new_pod(
                    &s,
                    "StatefulSet",
                    &pn,
                    &s["spec"]["template"],
                    json!({"controller-revision-hash": rev, "statefulset.kubernetes.io/pod-name": pn, "apps.kubernetes.io/pod-index": i.to_string()}),
                );
                st.create("pods", &sns, p);
                event(
                    st,
                    &s,
                    "StatefulSet",
                    "Normal",
                    "SuccessfulCreate",
                    &format!("create Pod {pn} in StatefulSet {} successful", name(&s)),
                    "statefulset-controller",
                );
            }
        }
        let pods = owned_pods(st, &s);
        for p in &pods {
            let idx = name(p)
                .rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or(0);
            if idx >= want {
                st.delete("pods", &sns, &name(p));
            }
        }
        let pods = owned_pods(st, &s);
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = json!({"replicas": pods.len(), "readyReplicas": ready, "currentReplicas": pods.len(),
            "updatedReplicas": pods.len(), "availableReplicas": ready, "currentRevision": rev, "updateRevision": rev,
            "observedGeneration": s["metadata"]["generation"], "collisionCount": 0});
        if ready == 0
            && let Some(m) = status.as_object_mut()
        {
            m.remove("readyReplicas");
        }
        if s["status"] != status {
            let mut s2 = s.clone();
            s2["status"] = status;
            st.update("statefulsets.apps", &sns, s2);
        }
    }
}

fn jobs(st: &mut Store) {
    for j in st.list("jobs.batch", None) {
        let jns = ns(&j);
        let completions = j["spec"]["completions"].as_i64().unwrap_or(1).max(0);
        let parallelism = j["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
        let pods = owned_pods(st, &j);
        let phase = |p: &Value, ph: &str| p["status"]["phase"] == json!(ph);
        let succeeded = pods.iter().filter(|p| phase(p, "Succeeded")).count() as i64;
        let failed = pods.iter().filter(|p| phase(p, "Failed")).count() as i64;
        let active = pods.len() as i64 - succeeded - failed;
        let want = (parallelism.min(completions - succeeded) - active).max(0);
        let uid = j["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for _ in 0..want {
            let pn = format!("{}-{}", name(&j), random_suffix(5));
            let mut p = new_pod(
                &j,
                "Job",
                &pn,
                &j["spec"]["template"],
                json!({"batch.kubernetes.io/job-name": name(&j), "job-name": name(&j), "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}),
            );
            p["metadata"]["ownerReferences"][0]["apiVersion"] = json!("batch/v1");
            st.create("pods", &jns, p);
            event(
                st,
                &j,
                "Job",
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {pn}"),
                "job-controller",
            );
        }
        let done = succeeded >= completions;
        let mut status = json!({"active": active + want, "succeeded": succeeded, "failed": failed,
            "ready": pods.iter().filter(|p| pod_ready(p)).count(), "uncountedTerminatedPods": {},
            "startTime": j["status"]["startTime"].as_str().map(str::to_string).unwrap_or_else(now)});
        if done {
            let t = j["status"]["completionTime"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(now);
            status["completionTime"] = json!(t);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t}]);
            if j["status"]["completionTime"].is_null() {
                event(
                    st,
                    &j,
                    "Job",
                    "Normal",
                    "Completed",
                    "Job completed",
                    "job-controller",
                );
            }
        }
        for k in ["active", "succeeded", "failed"] {
            if status[k] == json!(0)
                && let Some(m) = status.as_object_mut()
            {
                m.remove(k);
            }
        }
        if j["status"] != status {
            let mut j2 = j.clone();
            j2["status"] = status;
            st.update("jobs.batch", &jns, j2);
        }
    }
}

fn daemonsets(st: &mut Store) {
    let nodes = st.list("nodes", None);
    for d in st.list("daemonsets.apps", None) {
        let dns = ns(&d);
        let tpl = &d["spec"]["template"];
        let probe = json!({"spec": tpl["spec"].clone()});
        let eligible: Vec<String> = nodes
            .iter()
            .filter(|n| scheduler::fits_empty(&probe, n))
            .map(name)
            .collect();
        let mut pods = owned_pods(st, &d);
        // One pod per eligible node; pods on nodes that are no longer eligible go.
        for p in pods.clone() {
            let on = p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !eligible.contains(&on) {
                st.delete("pods", &dns, &name(&p));
                pods.retain(|x| name(x) != name(&p));
            }
        }
        let hash = template_hash(tpl);
        for n in &eligible {
            if pods.iter().any(|p| p["spec"]["nodeName"] == json!(n)) {
                continue;
            }
            let pn = format!("{}-{}", name(&d), random_suffix(5));
            let mut p = new_pod(
                &d,
                "DaemonSet",
                &pn,
                tpl,
                json!({"controller-revision-hash": hash, "pod-template-generation": "1"}),
            );
            p["spec"]["nodeName"] = json!(n);
            let p = st.create("pods", &dns, p);
            event(
                st,
                &d,
                "DaemonSet",
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {pn}"),
                "daemonset-controller",
            );
            pods.push(p);
        }
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = json!({"currentNumberScheduled": pods.len(), "desiredNumberScheduled": eligible.len(),
            "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": pods.len(),
            "observedGeneration": d["metadata"]["generation"]});
        if pods.len() > ready {
            status["numberUnavailable"] = json!(pods.len() - ready);
        }
        if d["status"] != status {
            let mut d2 = d.clone();
            d2["status"] = status;
            st.update("daemonsets.apps", &dns, d2);
        }
    }
}

/// Node conditions and taints from the `node_not_ready` fault (and back when it is removed).
fn node_health(shared: &Shared, st: &mut Store) {
    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    for n in st.list("nodes", None) {
        let down = crate::faults::node_not_ready(shared, &name(&n));
        let is_down = n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == json!("Ready") && c["status"] != json!("True"));
        if down == is_down {
            continue;
        }
        let mut n2 = n.clone();
        let t = now();
        if let Some(conds) = n2["status"]["conditions"].as_array_mut() {
            for c in conds.iter_mut() {
                if down {
                    c["status"] = json!("Unknown");
                    c["reason"] = json!("NodeStatusUnknown");
                    c["message"] = json!("Kubelet stopped posting node status.");
                } else {
                    let (st_, reason, msg) = match c["type"].as_str().unwrap_or("") {
                        "Ready" => ("True", "KubeletReady", "kubelet is posting ready status"),
                        "MemoryPressure" => (
                            "False",
                            "KubeletHasSufficientMemory",
                            "kubelet has sufficient memory available",
                        ),
                        "DiskPressure" => (
                            "False",
                            "KubeletHasNoDiskPressure",
                            "kubelet has no disk pressure",
                        ),
                        _ => (
                            "False",
                            "KubeletHasSufficientPID",
                            "kubelet has sufficient PID available",
                        ),
                    };
                    c["status"] = json!(st_);
                    c["reason"] = json!(reason);
                    c["message"] = json!(msg);
                }
                c["lastTransitionTime"] = json!(t);
            }
        }
        let mut taints: Vec<Value> = n2["spec"]["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|x| x["key"] != json!(UNREACHABLE));
        if down {
            taints.push(json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": t}));
            taints.push(json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": t}));
        }
        if taints.is_empty() {
            if let Some(m) = n2["spec"].as_object_mut() {
                m.remove("taints");
            }
        } else {
            n2["spec"]["taints"] = Value::Array(taints);
        }
        let n2 = st.update("nodes", "", n2);
        let (reason, msg) = if down {
            (
                "NodeNotReady",
                format!("Node {} status is now: NodeNotReady", name(&n2)),
            )
        } else {
            (
                "NodeReady",
                format!("Node {} status is now: NodeReady", name(&n2)),
            )
        };
        event(st, &n2, "Node", "Normal", reason, &msg, "node-controller");
    }
}

fn collect_garbage(st: &mut Store) {
    let mut uids: Vec<String> = Vec::new();
    for res in [
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "jobs.batch",
    ] {
        uids.extend(
            st.list(res, None)
                .iter()
                .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string)),
        );
    }
    let nodes: Vec<String> = st.list("nodes", None).iter().map(name).collect();
    for res in ["replicasets.apps", "pods"] {
        for o in st.list(res, None) {
            let orphan = controller_uid(&o).is_some_and(|u| !uids.contains(&u));
            let lost = res == "pods"
                && o["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !nodes.iter().any(|x| x == n));
            if orphan || lost {
                st.delete(res, &ns(&o), &name(&o));
            }
        }
    }
    let namespaces: Vec<String> = st.list("namespaces", None).iter().map(name).collect();
    let stale: Vec<_> = st
        .objects
        .keys()
        .filter(|(_, n, _)| !n.is_empty() && !namespaces.contains(n))
        .cloned()
        .collect();
    for (r, n, o) in stale {
        st.delete(&r, &n, &o);
    }
}

fn schedule(st: &mut Store) {
    for p in st.list("pods", None) {
        if p["spec"]["nodeName"].is_string() || p["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        match scheduler::place(st, &p) {
            Placement::Node(n) => {
                let mut p2 = p.clone();
                p2["spec"]["nodeName"] = json!(n);
                let t = now();
                p2["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": t}]);
                let p2 = st.update("pods", &ns(&p), p2);
                event(
                    st,
                    &p2,
                    "Pod",
                    "Normal",
                    "Scheduled",
                    &format!("Successfully assigned {}/{} to {n}", ns(&p), name(&p)),
                    "default-scheduler",
                );
            }
            Placement::Unschedulable(msg) => {
                let cond = json!([{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                    "lastTransitionTime": now(), "reason": "Unschedulable", "message": msg}]);
                let same = p["status"]["conditions"][0]["message"] == json!(msg);
                if !same {
                    let mut p2 = p.clone();
                    p2["status"]["conditions"] = cond;
                    let p2 = st.update("pods", &ns(&p), p2);
                    event(
                        st,
                        &p2,
                        "Pod",
                        "Warning",
                        "FailedScheduling",
                        &msg,
                        "default-scheduler",
                    );
                }
            }
        }
    }
}
