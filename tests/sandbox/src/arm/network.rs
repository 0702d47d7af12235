//! `Microsoft.Network/virtualNetworks`: vnets with their subnets, and the service association
//! link ACI leaves on a delegated subnet (`serviceAssociationLinks/acisal`, as in
//! `../shared/azure-examples/network/VirtualNetworkGetServiceAssociationLinks.json`).
//!
//! Seed 000's pain, modelled: turning virtual nodes on links the ACI subnet; turning them off
//! leaves the link, and Azure refuses to delete a subnet (or its vnet) that still has one
//! (`InUseSubnetCannotBeDeleted`) until the link itself is deleted.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::{body_object, list_body, require_rg, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Key, Shared, Vnet, World, key};

const TYPE: &str = "Microsoft.Network/virtualNetworks";
const ACI: &str = "Microsoft.ContainerInstance/containerGroups";

/// Routes `.../virtualNetworks[/...]`.
pub fn route(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    rest: &[String],
    raw: &[&str],
) -> ArmResult {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    match r.as_slice() {
        [_] => vnet(shared, ctx, rg, raw[0]),
        [_, "subnets", _] => subnet(shared, ctx, rg, raw[0], raw[2]),
        [_, "subnets", _, "serviceassociationlinks"] => links(shared, ctx, rg, raw[0], raw[2]),
        [_, "subnets", _, "serviceassociationlinks", _] => {
            link(shared, ctx, rg, raw[0], raw[2], raw[4])
        }
        _ => Err(super::not_served(ctx)),
    }
}

fn vnet_id(shared: &Shared, rg: &str, name: &str) -> String {
    resource_id(shared, rg, TYPE, name)
}

fn render_subnet(shared: &Shared, v: &Vnet, name: &str) -> Value {
    let id = format!("{}/subnets/{name}", vnet_id(shared, &v.rg, &v.name));
    let links: Vec<Value> = v
        .links
        .get(&name.to_ascii_lowercase())
        .into_iter()
        .flatten()
        .map(|l| render_link(&id, l))
        .collect();
    let prefix = v
        .subnets
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| p.clone())
        .unwrap_or_default();
    json!({"name": name, "id": id, "type": format!("{TYPE}/subnets"),
        "properties": {"addressPrefix": prefix, "provisioningState": "Succeeded",
            "serviceAssociationLinks": links}})
}

fn render_link(subnet_id: &str, name: &str) -> Value {
    json!({"name": name,
        "type": "Microsoft.Network/virtualNetworks/subnets/serviceAssociationLinks",
        "etag": "W/\"00000000-0000-0000-0000-000000000000\"",
        "id": format!("{subnet_id}/serviceAssociationLinks/{name}"),
        "properties": {"allowDelete": true, "linkedResourceType": ACI,
            "locations": ["westeurope"], "provisioningState": "Succeeded"}})
}

fn render(shared: &Shared, v: &Vnet) -> Value {
    let subnets: Vec<Value> = v
        .subnets
        .iter()
        .map(|(n, _)| render_subnet(shared, v, n))
        .collect();
    json!({"name": v.name, "id": vnet_id(shared, &v.rg, &v.name), "type": TYPE,
        "location": v.location,
        "properties": {"addressSpace": {"addressPrefixes": v.address_space},
            "subnets": subnets, "provisioningState": "Succeeded"}})
}

fn get<'a>(w: &'a mut World, rg: &str, name: &str) -> ArmResult<&'a mut Vnet> {
    if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(ArmError::rg_not_found(rg));
    }
    w.vnets
        .get_mut(&key(rg, name))
        .ok_or_else(|| ArmError::not_found(TYPE, name, rg))
}

/// The first subnet of `v` that still has a link, with the link's id.
fn in_use(shared: &Shared, v: &Vnet) -> Option<(String, String)> {
    v.links.iter().find(|(_, l)| !l.is_empty()).map(|(s, l)| {
        let subnet = v
            .subnets
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| n.eq_ignore_ascii_case(s))
            .unwrap_or_else(|| s.clone());
        let id = format!(
            "{}/subnets/{subnet}/serviceAssociationLinks/{}",
            vnet_id(shared, &v.rg, &v.name),
            l[0]
        );
        (subnet, id)
    })
}

fn in_use_error(subnet: &str, link_id: &str) -> ArmError {
    ArmError::bad(
        "InUseSubnetCannotBeDeleted",
        format!(
            "Subnet {subnet} is in use by {link_id} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet."
        ),
    )
}

fn vnet(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            let v = get(&mut w, rg, name)?.clone();
            Ok(Reply::json(200, render(shared, &v)))
        }
        Method::PUT => {
            let (rg_name, _) = require_rg(shared, rg)?;
            let req = body_object(ctx)?;
            let location = req
                .get("location")
                .and_then(Value::as_str)
                .unwrap_or("westeurope")
                .to_owned();
            let props = req.get("properties").cloned().unwrap_or(json!({}));
            let subnets = props["subnets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    let name = s["name"].as_str()?.to_owned();
                    let prefix = s["properties"]["addressPrefix"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    Some((name, prefix))
                })
                .collect();
            let address_space = props["addressSpace"]["addressPrefixes"].clone();
            let mut w = shared.world();
            let k = key(rg, name);
            let links = w.vnets.remove(&k).map(|v| v.links).unwrap_or_default();
            let v = Vnet {
                name: name.to_owned(),
                rg: rg_name,
                location,
                address_space,
                subnets,
                links,
            };
            let body = render(shared, &v);
            w.vnets.insert(k, v);
            Ok(Reply::json(200, body))
        }
        Method::DELETE => {
            let mut w = shared.world();
            let k = key(rg, name);
            let Some(v) = w.vnets.get(&k) else {
                return Ok(Reply::empty(204));
            };
            if let Some((subnet, link)) = in_use(shared, v) {
                return Err(in_use_error(&subnet, &link));
            }
            w.vnets.remove(&k);
            Ok(Reply::empty(200))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

fn subnet(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, vnet: &str, name: &str) -> ArmResult {
    let mut w = shared.world();
    let v = get(&mut w, rg, vnet)?;
    let Some(index) = v
        .subnets
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
    else {
        return Err(ArmError::not_found(&format!("{TYPE}/subnets"), name, rg));
    };
    match ctx.method {
        Method::GET => {
            let v = v.clone();
            Ok(Reply::json(200, render_subnet(shared, &v, name)))
        }
        Method::DELETE => {
            let lc = name.to_ascii_lowercase();
            if let Some(link) = v.links.get(&lc).and_then(|l| l.first()) {
                let id = format!(
                    "{}/subnets/{name}/serviceAssociationLinks/{link}",
                    vnet_id(shared, &v.rg, &v.name)
                );
                return Err(in_use_error(name, &id));
            }
            v.subnets.remove(index);
            Ok(Reply::empty(200))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

fn links(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, vnet: &str, subnet: &str) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let v = get(&mut w, rg, vnet)?.clone();
    if !v
        .subnets
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(subnet))
    {
        return Err(ArmError::not_found(&format!("{TYPE}/subnets"), subnet, rg));
    }
    let body = render_subnet(shared, &v, subnet);
    Ok(Reply::json(
        200,
        list_body(
            body["properties"]["serviceAssociationLinks"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        ),
    ))
}

fn link(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    vnet: &str,
    subnet: &str,
    name: &str,
) -> ArmResult {
    let mut w = shared.world();
    let v = get(&mut w, rg, vnet)?;
    let lc = subnet.to_ascii_lowercase();
    let found = v
        .links
        .get(&lc)
        .is_some_and(|l| l.iter().any(|n| n.eq_ignore_ascii_case(name)));
    match ctx.method {
        Method::DELETE => {
            if let Some(l) = v.links.get_mut(&lc) {
                l.retain(|n| !n.eq_ignore_ascii_case(name));
            }
            Ok(Reply::empty(if found { 200 } else { 204 }))
        }
        Method::GET if found => {
            let id = format!("{}/subnets/{subnet}", vnet_id(shared, &v.rg, &v.name));
            Ok(Reply::json(200, render_link(&id, name)))
        }
        Method::GET => Err(ArmError::not_found(
            "Microsoft.Network/virtualNetworks/subnets/serviceAssociationLinks",
            name,
            rg,
        )),
        _ => Err(super::method_not_allowed(ctx)),
    }
}

/// What ACI does when virtual nodes come on: links the cluster's ACI subnet (named by the
/// addon's `SubnetName`, in the vnet of the cluster's pools' `vnetSubnetID`).
pub fn link_aci_subnet(w: &mut World, cluster: &Key) {
    let Some(c) = w.clusters.get(cluster) else {
        return;
    };
    let addon = c.props["addonProfiles"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("aciConnectorLinux"))
        })
        .map(|(_, v)| v.clone());
    let Some(addon) = addon.filter(|a| a["enabled"] == json!(true)) else {
        return;
    };
    let Some(subnet) = addon["config"]["SubnetName"].as_str() else {
        return;
    };
    let vnet = c
        .pools
        .values()
        .filter_map(|p| p.props["vnetSubnetID"].as_str())
        .find_map(vnet_of);
    let Some((rg, vnet)) = vnet else {
        return;
    };
    if let Some(v) = w.vnets.get_mut(&key(&rg, &vnet))
        && v.subnets
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(subnet))
    {
        let links = v.links.entry(subnet.to_ascii_lowercase()).or_default();
        if links.is_empty() {
            links.push("acisal".into());
        }
    }
}

/// `(resource group, vnet)` of a subnet id.
fn vnet_of(subnet_id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = subnet_id.split('/').collect();
    let at = |name: &str| {
        parts
            .iter()
            .position(|p| p.eq_ignore_ascii_case(name))
            .and_then(|i| parts.get(i + 1))
            .map(|s| (*s).to_owned())
    };
    Some((at("resourceGroups")?, at("virtualNetworks")?))
}
