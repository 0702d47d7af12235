//! `Microsoft.ContainerService/managedClusters`: CRUD, start/stop, abort, credentials, upgrade
//! profile, the `aciConnectorLinux` addon, eTags, with AKS's validation errors and LROs. Agent
//! pools are in `agent_pools.rs`.

use std::sync::Arc;

use axum::http::Method;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{body_object, fill, list_body, lro, merge, rand_hex, require_rg, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Cluster, Key, Pool, Shared, World, key};

const PROVIDER: &str = "Microsoft.ContainerService";
const TYPE: &str = "Microsoft.ContainerService/managedClusters";
/// Kubernetes version of new clusters.
pub const K8S_VERSION: &str = "1.33.3";
pub(super) const NODE_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202511.07.0";

/// Routes `.../managedClusters[/...]`; `rest` is lower-case, `raw` as sent.
pub fn route(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    rest: &[String],
    raw: &[&str],
) -> ArmResult {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    match r.as_slice() {
        [] => list(shared, ctx, Some(rg)),
        [_] => cluster(shared, ctx, rg, raw[0]),
        [_, "agentpools"] => super::agent_pools::list_pools(shared, ctx, rg, raw[0]),
        [_, "agentpools", _] => super::agent_pools::pool(shared, ctx, rg, raw[0], raw[2]),
        [_, "start"] | [_, "stop"] => start_stop(shared, ctx, rg, raw[0], r[1] == "start"),
        [_, "listclusterusercredential"] => credentials(shared, ctx, rg, raw[0], false),
        [_, "listclusteradmincredential"] => credentials(shared, ctx, rg, raw[0], true),
        [_, "upgradeprofiles", "default"] => upgrade_profile(shared, ctx, rg, raw[0]),
        [_, "abort"] => abort(shared, ctx, rg, raw[0]),
        _ => Err(super::not_served(ctx)),
    }
}

fn node_rg(c: &Cluster) -> String {
    c.props["nodeResourceGroup"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("MC_{}_{}_{}", c.rg, c.name, c.location))
}

/// The cluster resource as ARM returns it.
pub fn render(shared: &Shared, c: &Cluster) -> Value {
    let mut props = c.props.clone();
    let dns = props["dnsPrefix"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-dns", c.name));
    let suffix = &super::agent_pools::node_digits(&c.kube_id, "fqdn");
    let loc = c.location.to_ascii_lowercase().replace(' ', "");
    let computed = json!({
        "provisioningState": c.state,
        "powerState": {"code": c.power},
        "kubernetesVersion": props["kubernetesVersion"].as_str().unwrap_or(K8S_VERSION),
        "currentKubernetesVersion": props["kubernetesVersion"].as_str().unwrap_or(K8S_VERSION),
        "dnsPrefix": dns,
        "fqdn": format!("{dns}-{suffix}.hcp.{loc}.azmk8s.io"),
        "azurePortalFQDN": format!("{dns}-{suffix}.portal.hcp.{loc}.azmk8s.io"),
        "nodeResourceGroup": node_rg(c),
        "maxAgentPools": 100,
        "agentPoolProfiles": c.pools.values().map(|p| {
            let mut v = super::agent_pools::render_pool_props(p);
            v["name"] = json!(p.name);
            v
        }).collect::<Vec<_>>(),
    });
    merge(&mut props, &computed);
    let mc_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/publicIPAddresses",
        shared.opts.subscription_id,
        node_rg(c)
    );
    let mut net_defaults = json!({
        "networkPlugin": "kubenet", "podCidr": "10.244.0.0/16", "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10", "outboundType": "loadBalancer", "loadBalancerSku": "standard",
        "podCidrs": ["10.244.0.0/16"], "serviceCidrs": ["10.0.0.0/16"], "ipFamilies": ["IPv4"],
    });
    if props["networkProfile"]["outboundType"]
        .as_str()
        .unwrap_or("loadBalancer")
        == "loadBalancer"
    {
        net_defaults["loadBalancerProfile"] = json!({
            "managedOutboundIPs": {"count": 1}, "allocatedOutboundPorts": 0, "idleTimeoutInMinutes": 30,
            "effectiveOutboundIPs": [{"id": format!("{mc_id}/{}", c.etag)}],
            "backendPoolType": "NodeIPConfiguration",
        });
    }
    fill(
        &mut props,
        &json!({"enableRBAC": true, "networkProfile": net_defaults, "supportPlan": "KubernetesOfficial"}),
    );
    let mut b = json!({
        "id": resource_id(shared, &c.rg, TYPE, &c.name),
        "location": c.location,
        "name": c.name,
        "type": TYPE,
        "eTag": c.etag,
        "properties": props,
    });
    if !c.tags.is_null() {
        b["tags"] = c.tags.clone();
    }
    if let Value::Object(top) = &c.top {
        for (k, v) in top {
            b[k] = v.clone();
        }
    }
    b
}

fn valid_cluster_name(n: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    !n.is_empty()
        && n.len() <= 63
        && n.chars().all(|c| ok(c) || c == '-' || c == '_')
        && n.starts_with(ok)
        && n.ends_with(ok)
}

/// Optimistic concurrency with `If-Match` / `If-None-Match`, as AKS does it (412).
pub(super) fn check_etag(ctx: &Ctx, current: Option<&str>) -> ArmResult<()> {
    if let Some(m) = ctx.header("if-match") {
        let m = m.trim_matches('"').to_string();
        match current {
            None if m != "*" => {
                return Err(ArmError::new(
                    412,
                    "PreconditionFailed",
                    "Resource not found but ETag header is provided. If this is a request to create, please do not provide ETag.",
                ));
            }
            Some(cur) if m != "*" && m != cur => {
                return Err(ArmError::new(
                    412,
                    "PreconditionFailed",
                    format!(
                        "Etag provided in if-match header \"{m}\" does not match etag \"{cur}\" of resource."
                    ),
                ));
            }
            _ => {}
        }
    }
    if ctx.header("if-none-match").as_deref() == Some("*") && current.is_some() {
        return Err(ArmError::new(
            412,
            "PreconditionFailed",
            "The resource already exists and If-None-Match '*' was provided.",
        ));
    }
    Ok(())
}

pub(super) fn get<'a>(w: &'a mut World, rg: &str, name: &str) -> ArmResult<&'a mut Cluster> {
    if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(ArmError::rg_not_found(rg));
    }
    w.clusters
        .get_mut(&key(rg, name))
        .ok_or_else(|| ArmError::not_found(TYPE, name, rg))
}

pub(super) fn api(ctx: &Ctx) -> String {
    ctx.query.get("api-version").cloned().unwrap_or_default()
}

/// GET managedClusters (subscription or resource group).
pub fn list(shared: &Arc<Shared>, ctx: &Ctx, rg: Option<&str>) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    if let Some(rg) = rg {
        require_rg(shared, rg)?;
    }
    let w = shared.world();
    let items = w
        .clusters
        .iter()
        .filter(|(k, _)| rg.is_none_or(|r| k.0 == r.to_ascii_lowercase()))
        .map(|(_, c)| render(shared, c))
        .collect();
    Ok(Reply::json(200, list_body(items)))
}

fn busy_cluster(c: &Cluster) -> ArmResult<()> {
    if let Some(b) = &c.busy {
        return Err(ArmError::in_progress(b));
    }
    if let Some(b) = c.pools.values().find_map(|p| p.busy.clone()) {
        return Err(ArmError::in_progress(&b));
    }
    Ok(())
}

fn cluster(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            let c = get(&mut w, rg, name)?;
            Ok(Reply::json(200, render(shared, c)))
        }
        Method::PUT => put_cluster(shared, ctx, rg, name),
        Method::DELETE => {
            let mut w = shared.world();
            if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
                return Err(ArmError::rg_not_found(rg));
            }
            let Some(c) = w.clusters.get_mut(&key(rg, name)) else {
                return Ok(Reply::empty(204));
            };
            check_etag(ctx, Some(&c.etag))?;
            busy_cluster(c)?;
            c.busy = Some("delete managed cluster".into());
            c.state = "Deleting".into();
            let loc = c.location.clone();
            let k = key(rg, name);
            let k2 = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |_s, w| {
                    remove_cluster(w, &k);
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(c) = w.clusters.get_mut(&k2) {
                        c.busy = None;
                        c.state = "Failed".into();
                    }
                }),
            );
            tag(&mut w, &id, rg, name);
            Ok(lro_headers(
                shared,
                Reply::empty(202),
                &loc,
                &id,
                &api(ctx),
                true,
            ))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

pub(super) fn lro_headers(
    shared: &Shared,
    r: Reply,
    loc: &str,
    id: &str,
    api: &str,
    location: bool,
) -> Reply {
    let loc = loc.to_ascii_lowercase().replace(' ', "");
    let mut r = r
        .with(
            "Azure-AsyncOperation",
            lro::async_url(shared, PROVIDER, &loc, id, api),
        )
        .with("Retry-After", lro::retry_after(shared));
    if location {
        r = r.with("Location", lro::result_url(shared, PROVIDER, &loc, id, api));
    }
    r
}

fn put_cluster(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    if !valid_cluster_name(name) {
        return Err(ArmError::bad(
            "InvalidParameter",
            format!(
                "The value of parameter resourceName is invalid. Error details: '{name}' must be 1-63 characters of letters, numbers, '-' and '_', starting and ending with a letter or number. Please see https://aka.ms/aks-naming-rules for more details."
            ),
        ));
    }
    let (rg_name, _) = require_rg(shared, rg)?;
    let req = body_object(ctx)?;
    let location = req
        .get("location")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ArmError::bad(
                "LocationRequired",
                "The location property is required for this definition.",
            )
        })?
        .to_string();
    let mut props = req.get("properties").cloned().unwrap_or(json!({}));
    if !props.is_object() {
        return Err(ArmError::bad(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'properties must be an object'.",
        ));
    }
    let profiles = props
        .as_object_mut()
        .and_then(|m| m.remove("agentPoolProfiles"))
        .unwrap_or(Value::Null);
    for ro in [
        "provisioningState",
        "powerState",
        "currentKubernetesVersion",
        "fqdn",
        "azurePortalFQDN",
        "maxAgentPools",
    ] {
        if let Some(m) = props.as_object_mut() {
            m.remove(ro);
        }
    }
    let mut top = Map::new();
    for k in ["sku", "identity", "extendedLocation", "kind"] {
        if let Some(v) = req.get(k) {
            top.insert(k.into(), v.clone());
        }
    }
    if let Some(id) = top.get_mut("identity") {
        identity_ids(shared, id);
    }
    let tags = req.get("tags").cloned().unwrap_or(Value::Null);
    let version = props["kubernetesVersion"]
        .as_str()
        .unwrap_or(K8S_VERSION)
        .to_string();
    let k = key(rg, name);
    let existing = shared.world().clusters.get(&k).cloned();
    let creating = existing.is_none();
    check_etag(ctx, existing.as_ref().map(|c| c.etag.as_str()))?;
    if creating && props.get("servicePrincipalProfile").is_none() {
        // Managed identity (AKS's default): a system-assigned control-plane identity and a
        // kubelet identity in the node resource group.
        if !top.contains_key("identity") {
            let mut id = json!({"type": "SystemAssigned"});
            identity_ids(shared, &mut id);
            top.insert("identity".into(), id);
        }
        let mc = props["nodeResourceGroup"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("MC_{rg_name}_{name}_{location}"));
        fill(
            &mut props,
            &json!({"identityProfile": {"kubeletidentity": {
                "resourceId": format!("/subscriptions/{}/resourcegroups/{mc}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool", shared.opts.subscription_id),
                "clientId": uuid::Uuid::new_v4().to_string(),
                "objectId": uuid::Uuid::new_v4().to_string(),
            }}}),
        );
    }
    if let Some(c) = &existing {
        busy_cluster(c)?;
        if !c.location.eq_ignore_ascii_case(&location) {
            return Err(ArmError::bad(
                "LocationNotAvailableForResourceType",
                format!(
                    "The location of an existing managed cluster cannot be changed from '{}' to '{location}'.",
                    c.location
                ),
            ));
        }
    }
    // Pools: required on create; on update, listed pools are updated by name.
    let mut pools = existing
        .as_ref()
        .map(|c| c.pools.clone())
        .unwrap_or_default();
    let list = profiles.as_array().cloned().unwrap_or_default();
    if creating && list.is_empty() {
        return Err(ArmError::bad(
            "InvalidParameter",
            "The value of parameter agentPoolProfiles is invalid. Error details: at least one agent pool profile is required. Please see https://aka.ms/aks-naming-rules for more details.",
        ));
    }
    for (i, prof) in list.iter().enumerate() {
        let pname = prof["name"].as_str().unwrap_or_default().to_string();
        let old = pools.get(&pname.to_ascii_lowercase());
        let mode = if creating && i == 0 { "System" } else { "User" };
        let mut p =
            super::agent_pools::normalize_pool(shared, ctx, &pname, prof, old, mode, &version)?;
        p["provisioningState"] = json!(if creating { "Creating" } else { "Updating" });
        let digits = old
            .map(|o| o.node_digits.clone())
            .unwrap_or_else(|| super::agent_pools::node_digits(name, &pname));
        pools.insert(
            pname.to_ascii_lowercase(),
            Pool {
                name: pname,
                props: p,
                busy: None,
                stopped_count: None,
                node_digits: digits,
            },
        );
    }
    if !pools.values().any(Pool::is_system) {
        return Err(ArmError::bad(
            "MustDefineAtLeastOneSystemPool",
            "Must define at least one system pool.",
        ));
    }
    let mut w = shared.world();
    let c = match existing {
        Some(mut c) => {
            merge(&mut c.props, &props);
            c.tags = if tags.is_null() { c.tags } else { tags };
            merge(&mut c.top, &Value::Object(top));
            c.pools = pools;
            c.state = "Updating".into();
            c.busy = Some("update managed cluster".into());
            c.etag = rand_hex(16);
            c
        }
        None => {
            let kube_id = format!("{}-{}", rg, name).to_ascii_lowercase();
            crate::k8s::create_cluster(shared, &mut w, &kube_id, &k);
            let mc = format!("MC_{rg_name}_{name}_{location}");
            w.groups.entry(mc.to_ascii_lowercase()).or_insert_with(|| {
                crate::state::ResourceGroup {
                    name: mc,
                    location: location.clone(),
                    tags: Value::Null,
                    state: "Succeeded".into(),
                    managed_by: Some(super::resource_id(
                        shared,
                        &rg_name,
                        "Microsoft.ContainerService/managedClusters",
                        name,
                    )),
                }
            });
            Cluster {
                name: name.to_string(),
                rg: rg_name,
                location: location.clone(),
                tags,
                top: Value::Object(top),
                props,
                pools,
                state: "Creating".into(),
                power: "Running".into(),
                kube_id,
                busy: Some("create managed cluster".into()),
                etag: rand_hex(16),
            }
        }
    };
    let body = render(shared, &c);
    w.clusters.insert(k.clone(), c);
    let k2 = k.clone();
    let id = lro::start(
        shared,
        ctx,
        &mut w,
        false,
        Box::new(move |s, w| {
            if let Some(c) = w.clusters.get_mut(&k) {
                c.state = "Succeeded".into();
                c.busy = None;
                for p in c.pools.values_mut() {
                    p.props["provisioningState"] = json!("Succeeded");
                }
            }
            super::network::link_aci_subnet(w, &k);
            crate::k8s::nodes::sync(s, w, &k);
            Ok(None)
        }),
        Box::new(move |_s, w, _e| fail_cluster(w, &k2)),
    );
    tag(&mut w, &id, rg, name);
    Ok(lro_headers(
        shared,
        Reply::json(if creating { 201 } else { 200 }, body),
        &location,
        &id,
        &api(ctx),
        false,
    ))
}

/// Fills the ids Azure assigns to managed identities.
fn identity_ids(shared: &Shared, id: &mut Value) {
    let ty = id["type"].as_str().unwrap_or("").to_string();
    if ty.contains("SystemAssigned") {
        fill(
            id,
            &json!({"principalId": uuid::Uuid::new_v4().to_string(), "tenantId": shared.opts.tenant_id}),
        );
    }
    if let Some(m) = id["userAssignedIdentities"].as_object_mut() {
        for v in m.values_mut() {
            fill(
                v,
                &json!({"clientId": uuid::Uuid::new_v4().to_string(), "principalId": uuid::Uuid::new_v4().to_string()}),
            );
        }
    }
}

fn fail_cluster(w: &mut World, k: &Key) {
    if let Some(c) = w.clusters.get_mut(k) {
        c.state = "Failed".into();
        c.busy = None;
        for p in c.pools.values_mut() {
            p.busy = None;
            if p.props["provisioningState"] != json!("Succeeded") {
                p.props["provisioningState"] = json!("Failed");
            }
        }
    }
}

fn start_stop(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str, start: bool) -> ArmResult {
    if ctx.method != Method::POST {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let c = get(&mut w, rg, name)?;
    busy_cluster(c)?;
    let target = if start { "Running" } else { "Stopped" };
    if c.power == target {
        return Ok(Reply::empty(204));
    }
    c.busy = Some(
        if start {
            "start managed cluster"
        } else {
            "stop managed cluster"
        }
        .into(),
    );
    c.state = if start { "Starting" } else { "Stopping" }.into();
    let location = c.location.clone();
    let k = key(rg, name);
    let k2 = k.clone();
    let id = lro::start(
        shared,
        ctx,
        &mut w,
        false,
        Box::new(move |s, w| {
            if let Some(c) = w.clusters.get_mut(&k) {
                c.busy = None;
                c.state = "Succeeded".into();
                c.power = target.into();
            }
            crate::k8s::nodes::sync(s, w, &k);
            Ok(None)
        }),
        Box::new(move |_s, w, _e| fail_cluster(w, &k2)),
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

/// kubeconfig YAML for a cluster (user or admin), or None if it does not exist.
pub fn kubeconfig_for(shared: &Shared, rg: &str, name: &str) -> Option<String> {
    let w = shared.world();
    let c = w.clusters.get(&key(rg, name))?;
    let kc = w.kube.get(&c.kube_id)?;
    Some(kubeconfig(shared, c, &kc.user_token, "clusterUser"))
}

fn kubeconfig(shared: &Shared, c: &Cluster, token: &str, who: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {base}/k8s/{id}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    namespace: default\n    user: {who}_{rg}_{name}\n  name: {name}\ncurrent-context: {name}\npreferences: {{}}\nusers:\n- name: {who}_{rg}_{name}\n  user:\n    token: {token}\n",
        base = shared.base,
        id = c.kube_id,
        name = c.name,
        rg = c.rg,
    )
}

fn credentials(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str, admin: bool) -> ArmResult {
    if ctx.method != Method::POST {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let c = get(&mut w, rg, name)?.clone();
    let kc = w
        .kube
        .get(&c.kube_id)
        .ok_or_else(|| ArmError::not_found(TYPE, name, rg))?;
    let (token, who) = if admin {
        (kc.admin_token.clone(), "clusterAdmin")
    } else {
        (kc.user_token.clone(), "clusterUser")
    };
    let yaml = kubeconfig(shared, &c, &token, who);
    Ok(Reply::json(
        200,
        json!({"kubeconfigs": [{"name": who, "value": base64::engine::general_purpose::STANDARD.encode(yaml)}]}),
    ))
}

fn upgrade_profile(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let c = get(&mut w, rg, name)?;
    let v = c.props["kubernetesVersion"]
        .as_str()
        .unwrap_or(K8S_VERSION)
        .to_string();
    let ups = json!([{"isPreview": false, "kubernetesVersion": "1.33.5"}, {"isPreview": true, "kubernetesVersion": "1.34.1"}]);
    Ok(Reply::json(
        200,
        json!({
            "id": format!("{}/upgradeprofiles/default", resource_id(shared, &c.rg, TYPE, &c.name)),
            "name": "default",
            "type": "Microsoft.ContainerService/managedClusters/upgradeprofiles",
            "properties": {
                "controlPlaneProfile": {"name": "master", "kubernetesVersion": v, "osType": "Linux", "upgrades": ups},
                "agentPoolProfiles": c.pools.values().map(|p| json!({
                    "name": p.name, "kubernetesVersion": v, "osType": "Linux", "upgrades": ups,
                })).collect::<Vec<_>>(),
            }
        }),
    ))
}

pub(super) fn tag(w: &mut World, id: &str, rg: &str, name: &str) {
    if let Some(op) = w.ops.get_mut(id) {
        op.target = format!("{}/{}", rg.to_ascii_lowercase(), name.to_ascii_lowercase());
    }
}

/// POST `.../abort`: cancels the cluster's (and its pools') operations in progress.
fn abort(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    if ctx.method != Method::POST {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let location = get(&mut w, rg, name)?.location.clone();
    let target = format!("{}/{}", rg.to_ascii_lowercase(), name.to_ascii_lowercase());
    let running: Vec<String> = w
        .ops
        .values()
        .filter(|o| o.target == target && !o.is_done())
        .map(|o| o.id.clone())
        .collect();
    if running.is_empty() {
        return Ok(Reply::empty(204));
    }
    let now = chrono::Utc::now();
    for id in &running {
        if let Some(o) = w.ops.get_mut(id) {
            o.status = "Canceled".into();
            o.end = Some(now);
            o.error = Some(ArmError::new(
                400,
                "OperationCancelled",
                "The operation was cancelled by an abort request.",
            ));
        }
    }
    let k = key(rg, name);
    if let Some(c) = w.clusters.get_mut(&k) {
        c.busy = None;
        if c.state != "Succeeded" {
            c.state = "Canceled".into();
        }
        for p in c.pools.values_mut() {
            if p.busy.take().is_some() {
                p.props["provisioningState"] = json!("Canceled");
            }
        }
    }
    let id = lro::start(
        shared,
        ctx,
        &mut w,
        false,
        Box::new(|_s, _w| Ok(None)),
        Box::new(|_s, _w, _e| {}),
    );
    Ok(lro_headers(
        shared,
        Reply::empty(202),
        &location,
        &id,
        &api(ctx),
        true,
    ))
}

/// Removes a cluster with its Kubernetes API and its node resource group (and what is in it).
pub fn remove_cluster(w: &mut World, k: &Key) {
    let Some(c) = w.clusters.remove(k) else {
        return;
    };
    w.kube.remove(&c.kube_id);
    let mc = crate::k8s::nodes::node_rg(&c).to_ascii_lowercase();
    w.groups.remove(&mc);
    w.aci.retain(|key, _| key.0 != mc);
    w.registries.retain(|key, _| key.0 != mc);
}
