//! The control loops the sandbox runs after every change: deployments → replica sets → pods,
//! statefulsets → pods, garbage collection, scheduling, kubelet-reported pod status (including
//! injected crash loops and OOM kills) and virtual-node pods → ACI container groups.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::scheduler::{self, Placement};
use super::store::{Store, now};
use crate::faults::{self, PodFault};
use crate::state::{ContainerGroup, Shared, World, key};

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn safe_hash(s: &str, n: usize) -> String {
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

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ns(o: &Value) -> String {
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
    let pull = Pull::snapshot(w, &arm_key);
    let Some(kc) = w.kube.get_mut(id) else { return };
    let st = &mut kc.store;
    namespaces(st);
    deployments(st);
    replicasets(st);
    statefulsets(st);
    jobs(st);
    daemonsets(st);
    collect_garbage(st);
    schedule(st);
    kubelet(shared, st, &pull);
    virtual_node_groups(shared, w, id, &arm_key);
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

/// Lets running Job pods finish (called by the background loop, so they run for a tick).
pub fn complete_job_pods(shared: &Shared) {
    let mut w = shared.world();
    let ids: Vec<String> = w.kube.keys().cloned().collect();
    for id in ids {
        let Some(kc) = w.kube.get_mut(&id) else {
            continue;
        };
        let mut changed = false;
        for p in kc.store.list("pods", None) {
            let job_owned = p["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["kind"] == json!("Job"));
            if !job_owned
                || p["status"]["phase"] != json!("Running")
                || faults::pod_fault(shared, &ns(&p), &name(&p)).is_some()
            {
                continue;
            }
            let t = now();
            let mut p2 = p.clone();
            p2["status"]["phase"] = json!("Succeeded");
            if let Some(cs) = p2["status"]["containerStatuses"].as_array_mut() {
                for c in cs {
                    let started = c["state"]["running"]["startedAt"].clone();
                    c["ready"] = json!(false);
                    c["started"] = json!(false);
                    c["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": t, "containerID": c["containerID"]}});
                }
            }
            if let Some(conds) = p2["status"]["conditions"].as_array_mut() {
                for c in conds {
                    if c["type"] == json!("Ready") || c["type"] == json!("ContainersReady") {
                        c["status"] = json!("False");
                        c["reason"] = json!("PodCompleted");
                    }
                }
            }
            kc.store.update("pods", &ns(&p), p2);
            changed = true;
        }
        if changed {
            reconcile(shared, &mut w, &id);
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

/// What the kubelet can pull from the sandbox's registries.
#[derive(Debug, Default)]
pub struct Pull {
    /// login server (lower-case) → (available `repo:tag` and `repo@digest`, kubelet may pull).
    registries: HashMap<String, (HashSet<String>, bool)>,
}

impl Pull {
    /// Snapshot for the cluster whose ARM key is `arm_key`.
    pub fn snapshot(w: &World, arm_key: &crate::state::Key) -> Self {
        let kubelet = w.clusters.get(arm_key).and_then(|c| {
            c.props["identityProfile"]["kubeletidentity"]["objectId"]
                .as_str()
                .map(str::to_string)
        });
        let mut registries = HashMap::new();
        for r in w.registries.values() {
            let login = r.body["properties"]["loginServer"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let mut refs = HashSet::new();
            for (repo, tags) in &r.repos {
                for (tag, img) in tags {
                    refs.insert(format!("{repo}:{tag}"));
                    refs.insert(format!("{repo}@{}", img.digest));
                }
            }
            let rid = r.body["id"].as_str().unwrap_or_default();
            let anonymous = r.body["properties"]["anonymousPullEnabled"] == json!(true);
            let allowed = anonymous
                || kubelet
                    .as_deref()
                    .is_some_and(|k| crate::arm::authorization::can_pull(w, k, rid));
            registries.insert(login, (refs, allowed));
        }
        Self { registries }
    }

    /// Why `image` cannot be pulled, if it cannot (only sandbox registries are checked).
    pub fn error(&self, image: &str, pull_secrets: bool) -> Option<String> {
        let (host, rest) = image.split_once('/')?;
        let (refs, allowed) = self.registries.get(&host.to_ascii_lowercase())?;
        let reference = if rest.contains('@')
            || rest
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            rest.to_string()
        } else {
            format!("{rest}:latest")
        };
        let repo = reference.split(['@', ':']).next().unwrap_or_default();
        if !allowed && !pull_secrets {
            return Some(format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://{host}/oauth2/token?scope=repository%3A{}%3Apull&service={host}: 401 Unauthorized",
                repo.replace('/', "%2F")
            ));
        }
        if !refs.contains(&reference) {
            return Some(format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {host}/{reference}: not found"
            ));
        }
        None
    }
}

fn kubelet(shared: &Shared, st: &mut Store, pull: &Pull) {
    for p in st.list("pods", None) {
        let Some(node) = p["spec"]["nodeName"].as_str().map(str::to_string) else {
            continue;
        };
        if matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            continue;
        }
        let (pns, pn) = (ns(&p), name(&p));
        let fault = faults::pod_fault(shared, &pns, &pn);
        let started = p["status"]["startTime"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(now);
        let node_ip = st
            .get("nodes", "", &node)
            .and_then(|n| {
                n["status"]["addresses"][0]["address"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let pod_ip = p["status"]["podIP"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let h = safe_hash(&pn, 2)
                    .bytes()
                    .fold(0u32, |a, b| a * 7 + b as u32);
                format!("10.244.{}.{}", h % 200, 2 + h % 250)
            });
        let containers: Vec<Value> = p["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let secrets = p["spec"]["imagePullSecrets"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        let pull_errors: Vec<Option<String>> = containers
            .iter()
            .map(|c| pull.error(c["image"].as_str().unwrap_or_default(), secrets))
            .collect();
        let pulling_failed = pull_errors.iter().any(Option::is_some);
        let statuses: Vec<Value> = containers.iter().zip(&pull_errors).map(|(c, pull_err)| {
            let cn = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let cid = format!("containerd://{}", safe_hash(&format!("{pn}/{cn}"), 32));
            let mut s = json!({"name": cn, "image": image, "restartCount": 0, "lastState": {}});
            if let Some(err) = pull_err {
                s["ready"] = json!(false);
                s["started"] = json!(false);
                s["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\": ErrImagePull: {err}")}});
                return s;
            }
            s["imageID"] = json!(format!("{image}@sha256:{}", safe_hash(image, 32)));
            s["containerID"] = json!(cid);
            match fault {
                None => {
                    s["ready"] = json!(true);
                    s["started"] = json!(true);
                    s["state"] = json!({"running": {"startedAt": started}});
                }
                Some(f) => {
                    let (reason, code) = match f { PodFault::CrashLoop => ("Error", 1), PodFault::OomKill => ("OOMKilled", 137) };
                    s["ready"] = json!(false);
                    s["started"] = json!(false);
                    s["restartCount"] = json!(4);
                    s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off 1m20s restarting failed container={cn} pod={pn}_{pns}({})", p["metadata"]["uid"].as_str().unwrap_or(""))}});
                    s["lastState"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": started, "containerID": cid}});
                }
            }
            s
        }).collect();
        let ready = fault.is_none() && !pulling_failed;
        let rs = if ready { "True" } else { "False" };
        let mut conds = vec![
            json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
            json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
            json!({"type": "Ready", "status": rs, "lastProbeTime": null, "lastTransitionTime": started}),
            json!({"type": "ContainersReady", "status": rs, "lastProbeTime": null, "lastTransitionTime": started}),
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
        ];
        if !ready {
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            for i in [2, 3] {
                conds[i]["reason"] = json!("ContainersNotReady");
                conds[i]["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    names.join(" ")
                ));
            }
        }
        let qos = if scheduler::pod_requests(&p).is_empty() {
            "BestEffort"
        } else {
            "Burstable"
        };
        let phase = if pulling_failed { "Pending" } else { "Running" };
        let status = json!({"phase": phase, "conditions": conds, "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": started, "containerStatuses": statuses, "qosClass": qos});
        if p["status"] == status {
            continue;
        }
        let old_states: Vec<Value> = p["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let old_state = |cn: &str| {
            old_states
                .iter()
                .find(|s| s["name"] == json!(cn))
                .map(|s| s["state"].clone())
                .unwrap_or(Value::Null)
        };
        let mut p2 = p.clone();
        p2["status"] = status;
        let p2 = st.update("pods", &pns, p2);
        for (c, pull_err) in containers.iter().zip(&pull_errors) {
            let cn = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let before = old_state(cn);
            let was_pull_failing = before["waiting"]["reason"] == json!("ImagePullBackOff");
            let ev = |st: &mut Store, ty: &str, reason: &str, msg: String| {
                event(st, &p2, "Pod", ty, reason, &msg, "kubelet")
            };
            if let Some(err) = pull_err {
                if !was_pull_failing {
                    ev(
                        st,
                        "Normal",
                        "Pulling",
                        format!("Pulling image \"{image}\""),
                    );
                    ev(
                        st,
                        "Warning",
                        "Failed",
                        format!("Failed to pull image \"{image}\": {err}"),
                    );
                    ev(st, "Warning", "Failed", "Error: ErrImagePull".into());
                    ev(
                        st,
                        "Normal",
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                    );
                    ev(st, "Warning", "Failed", "Error: ImagePullBackOff".into());
                }
                continue;
            }
            let never_started = before.is_null() || was_pull_failing;
            if never_started {
                if was_pull_failing {
                    ev(
                        st,
                        "Normal",
                        "Pulled",
                        format!("Successfully pulled image \"{image}\""),
                    );
                } else {
                    ev(
                        st,
                        "Normal",
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                    );
                }
                ev(st, "Normal", "Created", format!("Created container: {cn}"));
                ev(st, "Normal", "Started", format!("Started container {cn}"));
            }
            let was_crashing = before["waiting"]["reason"] == json!("CrashLoopBackOff");
            if fault.is_some() && !was_crashing {
                if fault == Some(PodFault::OomKill) {
                    ev(
                        st,
                        "Warning",
                        "OOMKilling",
                        format!("Memory cgroup out of memory: Killed process in container {cn}"),
                    );
                }
                ev(
                    st,
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {cn} in pod {pn}_{pns}({})",
                        p2["metadata"]["uid"].as_str().unwrap_or("")
                    ),
                );
            }
        }
    }
}

fn virtual_node_groups(shared: &Shared, w: &mut World, id: &str, arm_key: &crate::state::Key) {
    let Some(c) = w.clusters.get(arm_key).cloned() else {
        return;
    };
    let mc = super::nodes::node_rg(&c);
    let Some(kc) = w.kube.get(id) else { return };
    let pods: Vec<Value> = kc
        .store
        .list("pods", None)
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == json!(super::nodes::VIRTUAL_NODE))
        .collect();
    let mut wanted = Vec::new();
    for p in &pods {
        let gname: String = format!("{}-{}", ns(p), name(p))
            .chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string();
        wanted.push(key(&mc, &gname));
        // The container group mirrors its pod: restarts and crash loops show in ACI too.
        let cs = &p["status"]["containerStatuses"][0];
        let restarts = cs["restartCount"].as_u64().unwrap_or(0) as u32;
        let crashing = cs["state"]["waiting"]["reason"] == json!("CrashLoopBackOff");
        if let Some(g) = w.aci.get_mut(&key(&mc, &gname)) {
            g.restarts = restarts;
            g.crashing = crashing;
            continue;
        }
        let containers: Vec<Value> = p["spec"]["containers"].as_array().into_iter().flatten().map(|ct| {
            let req = &ct["resources"]["requests"];
            let cpu = if req["cpu"].is_null() { 1.0 } else { scheduler::quantity(&req["cpu"]) };
            let mem = if req["memory"].is_null() { 1.5 } else { scheduler::quantity(&req["memory"]) / 1073741824.0 };
            json!({"name": ct["name"], "properties": {"image": ct["image"], "command": ct["command"].as_array().cloned().unwrap_or_default(),
                "environmentVariables": [], "ports": [], "resources": {"requests": {"cpu": cpu, "memoryInGB": (mem * 10.0).ceil() / 10.0}}}})
        }).collect();
        let body = json!({
            "id": crate::arm::resource_id(shared, &mc, "Microsoft.ContainerInstance/containerGroups", &gname),
            "name": gname, "type": "Microsoft.ContainerInstance/containerGroups", "location": c.location,
            "tags": {"ClusterName": c.name, "NodeName": super::nodes::VIRTUAL_NODE, "Namespace": ns(p), "PodName": name(p),
                     "CreationTimestamp": p["metadata"]["creationTimestamp"]},
            "properties": {"containers": containers, "osType": "Linux", "restartPolicy": "Always", "provisioningState": "Succeeded",
                "ipAddress": {"ip": p["status"]["podIP"].as_str().unwrap_or("10.241.0.10"), "type": "Private", "ports": []}},
        });
        w.groups
            .entry(mc.to_ascii_lowercase())
            .or_insert_with(|| crate::state::ResourceGroup {
                name: mc.clone(),
                location: c.location.clone(),
                tags: Value::Null,
                state: "Succeeded".into(),
            });
        w.aci.insert(
            key(&mc, &gname),
            ContainerGroup {
                name: gname,
                rg: mc.clone(),
                body,
                state: "Running".into(),
                restarts,
                started: now(),
                busy: None,
                events: vec![],
                crashing,
            },
        );
    }
    w.aci.retain(|k, g| {
        let ours = g.body["tags"]["ClusterName"] == json!(c.name)
            && g.body["tags"]["NodeName"] == json!(super::nodes::VIRTUAL_NODE);
        !ours || wanted.contains(k)
    });
}
