//! What is in a resource group (`GET /resourceGroups/{rg}/resources`, the generic resource list
//! with `$expand=provisioningState`) and the subscription's regions (`GET /locations`), in the
//! shapes Resource Manager answers them (`Resources_ListByResourceGroup`,
//! `Subscriptions_ListLocations`).

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::{list_body, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::Shared;

/// Regions the sandbox subscription offers: (name, display name).
pub const LOCATIONS: [(&str, &str); 8] = [
    ("westeurope", "West Europe"),
    ("northeurope", "North Europe"),
    ("germanywestcentral", "Germany West Central"),
    ("swedencentral", "Sweden Central"),
    ("uksouth", "UK South"),
    ("eastus", "East US"),
    ("eastus2", "East US 2"),
    ("westus2", "West US 2"),
];

/// GET `/locations`.
pub fn locations(shared: &Arc<Shared>, ctx: &Ctx) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let sub = &shared.opts.subscription_id;
    let items = LOCATIONS
        .iter()
        .map(|(name, display)| {
            json!({
                "id": format!("/subscriptions/{sub}/locations/{name}"),
                "name": name,
                "type": "Region",
                "displayName": display,
                "regionalDisplayName": format!("(Europe) {display}"),
                "metadata": {"regionType": "Physical", "regionCategory": "Recommended"},
            })
        })
        .collect();
    Ok(Reply::json(200, list_body(items)))
}

/// GET `/resourceGroups/{rg}/resources`: every resource the sandbox models in the group.
/// `provisioningState` is a top-level field only with `$expand=provisioningState`, as in Azure.
pub fn resources(shared: &Arc<Shared>, ctx: &Ctx, rg: &str) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let expand = ctx
        .query
        .get("$expand")
        .is_some_and(|e| e.split(',').any(|p| p.trim() == "provisioningState"));
    let w = shared.world();
    let group = w
        .groups
        .get(&rg.to_ascii_lowercase())
        .ok_or_else(|| ArmError::rg_not_found(rg))?;
    let k = rg.to_ascii_lowercase();
    let item = |ty: &str, name: &str, location: &str, state: &str| {
        let mut b = json!({
            "id": resource_id(shared, &group.name, ty, name),
            "name": name,
            "type": ty,
            "location": location,
        });
        if expand {
            b["provisioningState"] = json!(state);
        }
        b
    };
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut items = Vec::new();
    for c in w
        .clusters
        .iter()
        .filter(|(key, _)| key.0 == k)
        .map(|(_, c)| c)
    {
        items.push(item(
            "Microsoft.ContainerService/managedClusters",
            &c.name,
            &c.location,
            &c.state,
        ));
    }
    for r in w
        .registries
        .iter()
        .filter(|(key, _)| key.0 == k)
        .map(|(_, r)| r)
    {
        items.push(item(
            "Microsoft.ContainerRegistry/registries",
            &r.name,
            &text(&r.body, "/location"),
            &text(&r.body, "/properties/provisioningState"),
        ));
    }
    for g in w.aci.iter().filter(|(key, _)| key.0 == k).map(|(_, g)| g) {
        items.push(item(
            "Microsoft.ContainerInstance/containerGroups",
            &g.name,
            &text(&g.body, "/location"),
            &text(&g.body, "/properties/provisioningState"),
        ));
    }
    for v in w.vnets.iter().filter(|(key, _)| key.0 == k).map(|(_, v)| v) {
        items.push(item(
            "Microsoft.Network/virtualNetworks",
            &v.name,
            &v.location,
            "Succeeded",
        ));
    }
    Ok(Reply::json(200, list_body(items)))
}
