//! The realistic estate from the seeds: what `deckhand shell --sandbox` starts with.
//!
//! * resource group `pangeo` in `westeurope` (seed 003);
//! * registry `intens` (seed 000) with `simsvc:latest` and `simsvc-mpt:latest` (and seed 002's
//!   `studio-go-runner:0.9.21`), admin user on;
//! * cluster `pangeoCluster` (seed 003) with pools `system` (System, 2 × Standard_D4s_v3),
//!   `users` (Standard_D8s_v3, autoscaler 0..5, count 1, label `hub.jupyter.org/node-purpose=user`),
//!   `gpu` (Standard_NC6s_v3, autoscaler 0..4, count 0, taint `nvidia.com/gpu=present:NoSchedule`;
//!   seed 002) and Spot `workers` (Standard_D8s_v3, autoscaler 0..50, count 0, label
//!   `k8s.dask.org/dedicated=worker`; seed 003), and virtual nodes (`aciConnectorLinux`, seed 000);
//! * the cluster's kubelet identity holds AcrPull on `intens` (as `az aks update --attach-acr`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};

use crate::SandboxError;
use crate::http::{Ctx, parse_query};
use crate::state::{Shared, key};

/// Names of the seeded estate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estate {
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// AKS cluster name.
    pub cluster: String,
    /// ACR name.
    pub registry: String,
    /// `intens.azurecr.io`.
    pub login_server: String,
}

fn call(
    shared: &Arc<Shared>,
    method: Method,
    path: &str,
    body: Value,
) -> Result<Value, SandboxError> {
    let token = crate::token::issue(shared, &shared.opts.client_id).0;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert("authorization", v);
    }
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let ctx = Ctx {
        method: method.clone(),
        path: p.to_string(),
        segs: p
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        query: parse_query(q),
        raw_query: q.to_string(),
        headers,
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    };
    let r = crate::arm::handle(shared, &ctx);
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status >= 300 {
        return Err(SandboxError::Refused {
            what: format!("{method} {p}"),
            code: v["error"]["code"].as_str().unwrap_or("Unknown").to_string(),
            message: v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    }
    Ok(v)
}

fn pool(name: &str, size: &str, mode: &str, count: u32, auto: Option<(u32, u32)>) -> Value {
    let mut p = json!({"name": name, "vmSize": size, "mode": mode, "count": count, "osType": "Linux", "type": "VirtualMachineScaleSets"});
    if let Some((min, max)) = auto {
        p["enableAutoScaling"] = json!(true);
        p["minCount"] = json!(min);
        p["maxCount"] = json!(max);
    }
    p
}

/// Waits until no long-running operation is in progress.
async fn operations_done(shared: &Arc<Shared>) {
    while shared.world().ops.values().any(|o| !o.is_done()) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Adds User pools `names` (each `count` × `vm_size`, no autoscaler) to a cluster, as setup
/// (not through the HTTP front door, so no AKS write budget is spent), and waits for them.
pub async fn add_pools(
    shared: &Arc<Shared>,
    at: &Estate,
    names: &[&str],
    (vm_size, count): (&str, u32),
) -> Result<(), SandboxError> {
    let sub = &shared.opts.subscription_id;
    let (resource_group, cluster) = (&at.resource_group, &at.cluster);
    for name in names {
        call(
            shared,
            Method::PUT,
            &format!(
                "/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{name}?api-version=2026-08-01"
            ),
            json!({"properties": pool(name, vm_size, "User", count, None)}),
        )?;
    }
    operations_done(shared).await;
    crate::k8s::reconcile_all(shared);
    Ok(())
}

/// Seeds the estate and waits for its operations to finish.
pub async fn seed(shared: &Arc<Shared>) -> Result<Estate, SandboxError> {
    let sub = shared.opts.subscription_id.clone();
    let (rg, loc, cluster, acr) = ("pangeo", "westeurope", "pangeoCluster", "intens");
    let base = format!("/subscriptions/{sub}/resourceGroups/{rg}");
    call(
        shared,
        Method::PUT,
        &format!("{base}?api-version=2025-04-01"),
        json!({"location": loc, "tags": {"project": "simsvc"}}),
    )?;
    call(
        shared,
        Method::PUT,
        &format!(
            "{base}/providers/Microsoft.ContainerRegistry/registries/{acr}?api-version=2025-11-01"
        ),
        json!({"location": loc, "sku": {"name": "Standard"}, "properties": {"adminUserEnabled": true}}),
    )?;
    // Virtual nodes need Azure CNI in a vnet of the operator's, with a second subnet for ACI
    // (seed 000): the pools live in `aks-subnet`, ACI in `virtual-node-aci`.
    call(
        shared,
        Method::PUT,
        &format!(
            "{base}/providers/Microsoft.Network/virtualNetworks/pangeo-vnet?api-version=2026-03-01"
        ),
        json!({"location": loc, "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/8"]},
        "subnets": [
            {"name": "aks-subnet", "properties": {"addressPrefix": "10.240.0.0/16"}},
            {"name": "virtual-node-aci", "properties": {"addressPrefix": "10.241.0.0/16"}}
        ]}}),
    )?;
    let subnet_id = format!(
        "{base}/providers/Microsoft.Network/virtualNetworks/pangeo-vnet/subnets/aks-subnet"
    );
    let mut workers = pool("workers", "Standard_D8s_v3", "User", 0, Some((0, 50)));
    workers["scaleSetPriority"] = json!("Spot");
    workers["scaleSetEvictionPolicy"] = json!("Delete");
    workers["spotMaxPrice"] = json!(-1);
    workers["nodeLabels"] = json!({"k8s.dask.org/dedicated": "worker"});
    let mut users = pool("users", "Standard_D8s_v3", "User", 1, Some((0, 5)));
    users["nodeLabels"] = json!({"hub.jupyter.org/node-purpose": "user"});
    let mut gpu = pool("gpu", "Standard_NC6s_v3", "User", 0, Some((0, 4)));
    gpu["nodeTaints"] = json!(["nvidia.com/gpu=present:NoSchedule"]);
    let mut pools = [
        pool("system", "Standard_D4s_v3", "System", 2, None),
        users,
        gpu,
        workers,
    ];
    for p in &mut pools {
        p["vnetSubnetID"] = json!(subnet_id);
    }
    call(
        shared,
        Method::PUT,
        &format!(
            "{base}/providers/Microsoft.ContainerService/managedClusters/{cluster}?api-version=2026-08-01"
        ),
        json!({"location": loc, "tags": {"project": "pangeo"},
            "properties": {"dnsPrefix": "pangeocluster", "kubernetesVersion": crate::arm::aks::K8S_VERSION, "enableRBAC": true,
                "agentPoolProfiles": pools,
                "networkProfile": {"networkPlugin": "azure", "serviceCidr": "10.0.0.0/16", "dnsServiceIP": "10.0.0.10", "loadBalancerSku": "standard", "outboundType": "loadBalancer"},
                "addonProfiles": {"aciConnectorLinux": {"enabled": true, "config": {"SubnetName": "virtual-node-aci"}}}}}),
    )?;
    operations_done(shared).await;
    {
        let mut w = shared.world();
        if let Some(r) = w.registries.get_mut(&key(rg, acr)) {
            for (repo, tag) in [
                ("simsvc", "latest"),
                ("simsvc", "1.0"),
                ("simsvc-mpt", "latest"),
                // seed 002's runner image, pushed as `${azure_registry_name}/studio-go-runner`
                ("studio-go-runner", "0.9.21"),
            ] {
                r.repos
                    .entry(repo.into())
                    .or_default()
                    .insert(tag.into(), crate::registry::Image::synthetic(repo, tag));
            }
        }
    }
    // `az aks update --attach-acr intens`: the kubelet identity may pull from the registry.
    let c = call(
        shared,
        Method::GET,
        &format!(
            "{base}/providers/Microsoft.ContainerService/managedClusters/{cluster}?api-version=2026-08-01"
        ),
        Value::Null,
    )?;
    let kubelet = c["properties"]["identityProfile"]["kubeletidentity"]["objectId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(
        shared,
        Method::PUT,
        &format!(
            "{base}/providers/Microsoft.ContainerRegistry/registries/{acr}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
            uuid::Uuid::new_v4()
        ),
        json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"),
            "principalId": kubelet, "principalType": "ServicePrincipal"}}),
    )?;
    crate::k8s::reconcile_all(shared);
    Ok(Estate {
        resource_group: rg.into(),
        location: loc.into(),
        cluster: cluster.into(),
        registry: acr.into(),
        login_server: format!("{acr}.azurecr.io"),
    })
}
