//! The kubelet's part: pod status from placement (Running/Ready, IPs, container statuses), image
//! pulls checked against the sandbox's registries, injected crash loops and OOM kills, Job pods
//! finishing, and virtual-node pods mirrored as ACI container groups.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::api::status;
use super::controllers::{event, name, ns, reconcile, safe_hash};
use super::scheduler;
use super::store::{Store, now};
use crate::faults::{self, PodFault};
use crate::http::{Ctx, Reply};
use crate::state::{ContainerGroup, Shared, World, key};

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

pub(super) fn kubelet(shared: &Shared, st: &mut Store, pull: &Pull) {
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

pub(super) fn virtual_node_groups(
    shared: &Shared,
    w: &mut World,
    id: &str,
    arm_key: &crate::state::Key,
) {
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
                managed_by: Some(crate::arm::resource_id(
                    shared,
                    &c.rg,
                    "Microsoft.ContainerService/managedClusters",
                    &c.name,
                )),
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

/// Serves `pods/{name}/log` (synthetic lines; `container`, `tailLines`).
pub(super) fn pod_log(shared: &Shared, ctx: &Ctx, pod: &Value) -> Reply {
    let pn = pod["metadata"]["name"].as_str().unwrap_or_default();
    let pns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let cname = match ctx.query.get("container") {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        None => {
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            return status(
                400,
                "BadRequest",
                &format!(
                    "a container name must be specified for pod {pn}, choose one of: [{}]",
                    names.join(" ")
                ),
                None,
            );
        }
    };
    let Some(c) = containers.iter().find(|c| c["name"] == json!(cname)) else {
        return status(
            400,
            "BadRequest",
            &format!("container {cname} is not valid for pod {pn}"),
            None,
        );
    };
    if pod["spec"]["nodeName"].is_null() {
        return status(
            400,
            "BadRequest",
            &format!(
                "container \"{cname}\" in pod \"{pn}\" is waiting to start: ContainerCreating"
            ),
            None,
        );
    }
    let start = pod["status"]["startTime"]
        .as_str()
        .unwrap_or("2026-01-01T00:00:00Z");
    let image = c["image"].as_str().unwrap_or_default();
    let mut lines = vec![
        format!("{start} [sandbox] container {cname} of pod {pns}/{pn} started from image {image}"),
        format!("{start} [sandbox] no real process runs in the cloud sandbox"),
    ];
    match crate::faults::pod_fault(shared, pns, pn) {
        Some(crate::faults::PodFault::CrashLoop) => lines.push(format!(
            "{start} Error: simulated crash (sandbox fault crash_loop); exiting with code 1"
        )),
        Some(crate::faults::PodFault::OomKill) => lines.push(format!(
            "{start} allocating memory... (sandbox fault oom_kill)"
        )),
        None => lines.push(format!("{start} ready")),
    }
    if let Some(n) = ctx
        .query
        .get("tailLines")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let k = lines.len().saturating_sub(n);
        lines.drain(..k);
    }
    Reply::text(200, lines.join("\n") + "\n")
}
