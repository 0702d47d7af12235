//! `Microsoft.ContainerService/managedClusters/{cluster}/agentPools`: create, update, scale,
//! start/stop (a PUT of `powerState.code`), delete, with AKS's validation of names, sizes, counts,
//! autoscaler bounds, Spot and System-mode rules, and the GPU quota fault.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::aks::{K8S_VERSION, NODE_IMAGE, api, check_etag, get, lro_headers, tag};
use super::{body_object, fill, list_body, lro, merge, rand_hex, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Cluster, Pool, Shared, key};
use crate::vmsizes;

const TYPE: &str = "Microsoft.ContainerService/managedClusters";

pub(super) fn render_pool_props(p: &Pool) -> Value {
    let mut v = p.props.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("name");
    }
    v
}

pub(super) fn render_pool(shared: &Shared, c: &Cluster, p: &Pool) -> Value {
    json!({
        "id": format!("{}/agentPools/{}", resource_id(shared, &c.rg, TYPE, &c.name), p.name),
        "name": p.name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": render_pool_props(p),
    })
}

fn valid_pool_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 12
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn invalid(param: &str, detail: &str) -> ArmError {
    ArmError::bad(
        "InvalidParameter",
        format!(
            "The value of parameter {param} is invalid. {detail}Please see https://aka.ms/aks-naming-rules for more details."
        ),
    )
}

/// Validates and fills in a pool's properties. `old` is the current pool on update.
pub(super) fn normalize_pool(
    shared: &Shared,
    ctx: &Ctx,
    name: &str,
    req: &Value,
    old: Option<&Pool>,
    default_mode: &str,
    version: &str,
) -> ArmResult<Value> {
    if !valid_pool_name(name) {
        return Err(ArmError::bad(
            "InvalidParameter",
            format!(
                "The value of parameter agentPoolProfile.name is invalid. Error details: Agent pool name '{name}' must start with a lowercase letter, contain only lowercase letters and numbers, and be at most 12 characters long. Please see https://aka.ms/aks-naming-rules for more details."
            ),
        ));
    }
    let mut p = match old {
        Some(o) => o.props.clone(),
        None => json!({
            "count": 1, "vmSize": "Standard_DS2_v2", "mode": default_mode, "osType": "Linux",
            "osSKU": "Ubuntu", "type": "VirtualMachineScaleSets", "maxPods": 110, "osDiskSizeGB": 128,
            "orchestratorVersion": version, "currentOrchestratorVersion": version,
            "nodeImageVersion": NODE_IMAGE, "enableAutoScaling": false,
            "powerState": {"code": "Running"}, "scaleSetPriority": "Regular",
            "upgradeSettings": {"maxSurge": "10%", "maxUnavailable": "0"},
        }),
    };
    let mut req = req.clone();
    if let Some(m) = req.as_object_mut() {
        for ro in [
            "provisioningState",
            "currentOrchestratorVersion",
            "nodeImageVersion",
            "eTag",
            "name",
        ] {
            m.remove(ro);
        }
    }
    merge(&mut p, &req);
    if p["orchestratorVersion"].as_str().is_none_or(str::is_empty) {
        p["orchestratorVersion"] = json!(version);
    }
    p["currentOrchestratorVersion"] = p["orchestratorVersion"].clone();
    if p["type"] == json!("VirtualMachines") {
        let scale = &p["virtualMachinesProfile"]["scale"];
        let first = scale["autoscale"]
            .get(0)
            .or_else(|| scale["manual"].get(0))
            .cloned();
        if let Some(f) = first {
            let n = f["minCount"]
                .as_u64()
                .or_else(|| f["count"].as_u64())
                .unwrap_or(1);
            p["vmSize"] = f["size"].clone();
            p["count"] = json!(n);
            p["virtualMachineNodesStatus"] = json!([{"size": f["size"], "count": n}]);
        }
    }
    if req.get("count").is_none() && old.is_none() && p["enableAutoScaling"] == json!(true) {
        p["count"] = p["minCount"].clone();
    }
    let size = p["vmSize"].as_str().unwrap_or_default().to_string();
    let vm = vmsizes::lookup(&size).ok_or_else(|| {
        ArmError::bad(
            "InvalidParameter",
            format!("The value of parameter agentPoolProfile.vmSize is invalid. Error details: VM size '{size}' is not available in the sandbox's table of sizes. Please see https://aka.ms/aks-naming-rules for more details."),
        )
    })?;
    let count = p["count"].as_i64().unwrap_or(-1);
    let system = p["mode"].as_str() == Some("System");
    let spot = p["scaleSetPriority"].as_str() == Some("Spot");
    if !(0..=1000).contains(&count) {
        return Err(invalid("agentPoolProfile.count", ""));
    }
    if system && spot {
        return Err(ArmError::bad(
            "InvalidParameter",
            "The value of parameter agentPoolProfile.mode is invalid. Error details: Spot agent pools cannot be in System mode. Please see https://aka.ms/aks-naming-rules for more details.",
        ));
    }
    let stopping = p["powerState"]["code"].as_str() == Some("Stopped");
    if system && count == 0 && !stopping {
        return Err(ArmError::bad(
            "InvalidParameter",
            format!(
                "agentPoolProfile.count was 0. It must be greater or equal to minCount:1 and less than or equal to maxCount:1000. If allowedMinCount was expected to be 0 but is 1: 1) The nodepool is a VMAS pool. 2) api Version is less than 2020-03-01. 3) The node is a system pool. (agent pool '{name}')"
            ),
        ));
    }
    if p["enableAutoScaling"] == json!(true) {
        let (min, max) = (p["minCount"].as_i64(), p["maxCount"].as_i64());
        let (Some(min), Some(max)) = (min, max) else {
            return Err(ArmError::bad(
                "InvalidParameter",
                "The value of parameter agentPoolProfile.minCount/maxCount is invalid. Error details: both minCount and maxCount must be set when enableAutoScaling is true. Please see https://aka.ms/aks-naming-rules for more details.",
            ));
        };
        if min > max || max > 1000 || min < if system { 1 } else { 0 } {
            return Err(invalid(
                "agentPoolProfile.minCount",
                &format!(
                    "Error details: minCount {min} and maxCount {max} must satisfy {}<=minCount<=maxCount<=1000. ",
                    if system { 1 } else { 0 }
                ),
            ));
        }
        // AKS validates the count against the bounds when a pool is created; on update the
        // autoscaler takes over (the AgentPools_Update example sends count 3 with max 2).
        if !stopping && old.is_none() && (count < min || count > max) {
            return Err(ArmError::bad(
                "InvalidParameter",
                format!(
                    "agentPoolProfile.count was {count}. It must be greater or equal to minCount:{min} and less than or equal to maxCount:{max}."
                ),
            ));
        }
    } else if let Some(m) = p.as_object_mut() {
        m.remove("minCount");
        m.remove("maxCount");
    }
    if spot {
        if p.get("scaleSetEvictionPolicy").is_none() {
            p["scaleSetEvictionPolicy"] = json!("Delete");
        }
        if p.get("spotMaxPrice").is_none() {
            p["spotMaxPrice"] = json!(-1);
        }
    }
    let grows = count as u32 > old.map(Pool::count).unwrap_or(0);
    if vm.gpus > 0 && grows && crate::faults::gpu_quota(shared, ctx) {
        let loc = shared
            .world()
            .groups
            .values()
            .next()
            .map(|g| g.location.clone())
            .unwrap_or_default();
        return Err(ArmError::bad(
            "QuotaExceeded",
            format!(
                "Preflight validation check for resource(s) for container service failed. Message: Operation could not be completed as it results in exceeding approved {} Cores quota. Additional details - Deployment Model: Resource Manager, Location: {loc}, Current Limit: 0, Current Usage: 0, Additional Required: {}, (Minimum) New Limit Required: {}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP. Details: ",
                vm.family,
                vm.cpus as i64 * count,
                vm.cpus as i64 * count
            ),
        ));
    }
    if p["kubeletConfig"].is_object() {
        fill(&mut p["kubeletConfig"], &json!({"podMaxPids": -1}));
    }
    p["eTag"] = json!(rand_hex(12));
    Ok(p)
}

pub(super) fn node_digits(cluster: &str, pool: &str) -> String {
    let h = format!("{cluster}/{pool}")
        .bytes()
        .fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
    format!("{:08}", h % 100_000_000)
}

pub(super) fn list_pools(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let c = get(&mut w, rg, name)?;
    Ok(Reply::json(
        200,
        list_body(
            c.pools
                .values()
                .map(|p| render_pool(shared, c, p))
                .collect(),
        ),
    ))
}

pub(super) fn pool(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    name: &str,
    pname: &str,
) -> ArmResult {
    let k = key(rg, name);
    let pk = pname.to_ascii_lowercase();
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            let c = get(&mut w, rg, name)?;
            let p = c.pools.get(&pk).ok_or_else(|| {
                ArmError::not_found(
                    "Microsoft.ContainerService/managedClusters/agentPools",
                    &format!("{name}/{pname}"),
                    rg,
                )
            })?;
            Ok(Reply::json(200, render_pool(shared, c, p)))
        }
        Method::PUT => {
            let req = body_object(ctx)?;
            let props = req.get("properties").cloned().unwrap_or(json!({}));
            let (old, version, location) = {
                let mut w = shared.world();
                let c = get(&mut w, rg, name)?;
                if let Some(b) = &c.busy {
                    return Err(ArmError::in_progress(b));
                }
                let old = c.pools.get(&pk).cloned();
                check_etag(ctx, old.as_ref().and_then(|p| p.props["eTag"].as_str()))?;
                if let Some(b) = old.as_ref().and_then(|p| p.busy.clone()) {
                    return Err(ArmError::in_progress(&b));
                }
                (
                    old,
                    c.props["kubernetesVersion"]
                        .as_str()
                        .unwrap_or(K8S_VERSION)
                        .to_string(),
                    c.location.clone(),
                )
            };
            let was_power = old.as_ref().map(|p| {
                p.props["powerState"]["code"]
                    .as_str()
                    .unwrap_or("Running")
                    .to_string()
            });
            let mut new_props =
                normalize_pool(shared, ctx, pname, &props, old.as_ref(), "User", &version)?;
            let new_power = new_props["powerState"]["code"]
                .as_str()
                .unwrap_or("Running")
                .to_string();
            let mut stopped_count = old.as_ref().and_then(|p| p.stopped_count);
            let (state, busy) = match (&old, was_power.as_deref(), new_power.as_str()) {
                (None, _, _) => ("Creating", "create agent pool"),
                (Some(o), Some("Running"), "Stopped") => {
                    stopped_count = Some(o.count());
                    new_props["count"] = json!(0);
                    ("Stopping", "stop agent pool")
                }
                (Some(_), Some("Stopped"), "Running") => {
                    if props.get("count").is_none() {
                        new_props["count"] = json!(stopped_count.unwrap_or(1));
                    }
                    stopped_count = None;
                    ("Starting", "start agent pool")
                }
                (Some(o), _, _) if o.count() != new_props["count"].as_u64().unwrap_or(0) as u32 => {
                    ("Scaling", "scale agent pool")
                }
                _ => ("Updating", "update agent pool"),
            };
            if old.is_none() && new_power == "Stopped" {
                new_props["powerState"] = json!({"code": "Running"});
            }
            new_props["provisioningState"] = json!(state);
            let mut w = shared.world();
            let c = get(&mut w, rg, name)?;
            let digits = old
                .as_ref()
                .map(|o| o.node_digits.clone())
                .unwrap_or_else(|| node_digits(name, pname));
            let p = Pool {
                name: old
                    .as_ref()
                    .map(|o| o.name.clone())
                    .unwrap_or_else(|| pname.to_string()),
                props: new_props,
                busy: Some(busy.into()),
                stopped_count,
                node_digits: digits,
            };
            let body = render_pool(shared, c, &p);
            c.pools.insert(pk.clone(), p);
            let (k2, pk2) = (k.clone(), pk.clone());
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |s, w| {
                    if let Some(p) = w.clusters.get_mut(&k).and_then(|c| c.pools.get_mut(&pk)) {
                        p.busy = None;
                        p.props["provisioningState"] = json!("Succeeded");
                    }
                    crate::k8s::nodes::sync(s, w, &k);
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(p) = w.clusters.get_mut(&k2).and_then(|c| c.pools.get_mut(&pk2)) {
                        p.busy = None;
                        p.props["provisioningState"] = json!("Failed");
                    }
                }),
            );
            tag(&mut w, &id, rg, name);
            let status = if old.is_none() { 201 } else { 200 };
            Ok(lro_headers(
                shared,
                Reply::json(status, body),
                &location,
                &id,
                &api(ctx),
                false,
            ))
        }
        Method::DELETE => {
            let mut w = shared.world();
            let c = get(&mut w, rg, name)?;
            if let Some(b) = &c.busy {
                return Err(ArmError::in_progress(b));
            }
            let location = c.location.clone();
            let systems = c.pools.values().filter(|p| p.is_system()).count();
            let Some(p) = c.pools.get_mut(&pk) else {
                return Ok(Reply::empty(204));
            };
            if let Some(b) = &p.busy {
                return Err(ArmError::in_progress(b));
            }
            if p.is_system() && systems == 1 {
                return Err(ArmError::bad(
                    "OperationNotAllowed",
                    format!(
                        "Cannot delete agent pool '{}': it is the last system pool of the cluster; a cluster must have at least one system pool.",
                        p.name
                    ),
                ));
            }
            p.busy = Some("delete agent pool".into());
            p.props["provisioningState"] = json!("Deleting");
            let (k2, pk2) = (k.clone(), pk.clone());
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |s, w| {
                    if let Some(c) = w.clusters.get_mut(&k) {
                        c.pools.remove(&pk);
                    }
                    crate::k8s::nodes::sync(s, w, &k);
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(p) = w.clusters.get_mut(&k2).and_then(|c| c.pools.get_mut(&pk2)) {
                        p.busy = None;
                        p.props["provisioningState"] = json!("Failed");
                    }
                }),
            );
            tag(&mut w, &id, rg, name);
            Ok(lro_headers(
                shared,
                Reply::empty(202),
                &location,
                &id,
                &api(ctx),
                true,
            ))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}
