//! `Microsoft.Resources/resourceGroups`: create (synchronous), get, head, list, delete (202 +
//! Location, removes everything inside).

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::{body_object, list_body, lro};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{ResourceGroup, Shared};

fn body(shared: &Shared, g: &ResourceGroup) -> Value {
    let mut b = json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}", shared.opts.subscription_id, g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "properties": {"provisioningState": g.state},
    });
    if !g.tags.is_null() {
        b["tags"] = g.tags.clone();
    }
    if let Some(by) = &g.managed_by {
        b["managedBy"] = json!(by);
    }
    b
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 90
        && !n.ends_with('.')
        && n.chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
}

/// GET `/resourcegroups`.
pub fn list(shared: &Arc<Shared>, ctx: &Ctx) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let w = shared.world();
    Ok(Reply::json(
        200,
        list_body(w.groups.values().map(|g| body(shared, g)).collect()),
    ))
}

/// `/resourcegroups/{name}`.
pub fn one(shared: &Arc<Shared>, ctx: &Ctx, name: &str) -> ArmResult {
    let k = name.to_ascii_lowercase();
    match ctx.method {
        Method::GET | Method::HEAD => {
            let w = shared.world();
            let g = w
                .groups
                .get(&k)
                .ok_or_else(|| ArmError::rg_not_found(name))?;
            if ctx.method == Method::HEAD {
                return Ok(Reply::empty(204));
            }
            Ok(Reply::json(200, body(shared, g)))
        }
        Method::PUT => {
            if !valid_name(name) {
                return Err(ArmError::bad(
                    "InvalidResourceGroupName",
                    format!(
                        "The resource group name '{name}' is invalid. Resource group names can only include alphanumeric, underscore, parentheses, hyphen, period (except at end), and Unicode characters that match the allowed characters."
                    ),
                ));
            }
            let req = body_object(ctx)?;
            let location = req
                .get("location")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    ArmError::bad(
                        "LocationRequired",
                        "The location property is required for this definition.",
                    )
                })?
                .to_string();
            if !super::group_contents::LOCATIONS
                .iter()
                .any(|(l, _)| l.eq_ignore_ascii_case(&location))
            {
                return Err(ArmError::bad(
                    "LocationNotAvailableForResourceGroup",
                    format!(
                        "The provided location '{location}' is not available for resource group. List of available regions is '{}'.",
                        super::group_contents::LOCATIONS.map(|(l, _)| l).join(",")
                    ),
                ));
            }
            let tags = req.get("tags").cloned().unwrap_or(Value::Null);
            let mut w = shared.world();
            if let Some(g) = w.groups.get_mut(&k) {
                if g.state == "Deleting" {
                    return Err(ArmError::new(
                        409,
                        "ResourceGroupBeingDeleted",
                        format!(
                            "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                            g.name
                        ),
                    ));
                }
                if !g.location.eq_ignore_ascii_case(&location) {
                    return Err(ArmError::new(
                        409,
                        "InvalidResourceGroupLocation",
                        format!(
                            "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                            g.location
                        ),
                    ));
                }
                g.tags = tags;
                return Ok(Reply::json(200, body(shared, g)));
            }
            let g = ResourceGroup {
                name: name.to_string(),
                location,
                tags,
                state: "Succeeded".into(),
                managed_by: None,
            };
            let b = body(shared, &g);
            w.groups.insert(k, g);
            Ok(Reply::json(201, b))
        }
        Method::DELETE => {
            let mut w = shared.world();
            let g = w
                .groups
                .get_mut(&k)
                .ok_or_else(|| ArmError::rg_not_found(name))?;
            if g.state == "Deleting" {
                return Ok(Reply::empty(202));
            }
            g.state = "Deleting".into();
            let kk = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                true,
                Box::new(move |_s, w| {
                    w.groups.remove(&kk);
                    let gone: Vec<_> = w
                        .clusters
                        .keys()
                        .filter(|key| key.0 == kk)
                        .cloned()
                        .collect();
                    for key in gone {
                        super::aks::remove_cluster(w, &key);
                    }
                    w.registries.retain(|key, _| key.0 != kk);
                    w.aci.retain(|key, _| key.0 != kk);
                    w.vnets.retain(|key, _| key.0 != kk);
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(g) = w.groups.get_mut(&k) {
                        g.state = "Succeeded".into();
                    }
                }),
            );
            let loc = format!(
                "{}/subscriptions/{}/operationresults/{id}?api-version=2018-08-01",
                shared.base, shared.opts.subscription_id
            );
            Ok(Reply::empty(202)
                .with("Location", loc)
                .with("Retry-After", lro::retry_after(shared)))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}
