//! Azure Resource Manager: authentication, `api-version`, subscription check and routing to the
//! resource providers we model.

pub mod aci;
pub mod acr;
pub mod acr_tasks;
pub mod acr_tokens;
pub mod agent_pools;
pub mod aks;
pub mod authorization;
pub mod group_contents;
pub mod lro;
pub mod network;
pub mod resource_groups;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::Shared;

/// Serves one ARM request.
pub fn handle(shared: &Arc<Shared>, ctx: &Ctx) -> Reply {
    match route(shared, ctx) {
        Ok(r) => r,
        Err(e) => e.reply(),
    }
}

fn route(shared: &Arc<Shared>, ctx: &Ctx) -> ArmResult {
    if let Err(r) = crate::token::check_bearer(shared, ctx) {
        return Ok(r);
    }
    if ctx.segs.len() == 1 {
        if !ctx.query.contains_key("api-version") {
            return Err(ArmError::bad(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
        return Ok(Reply::json(200, list_body(vec![subscription(shared)])));
    }
    let sub = ctx.segs.get(1).cloned().unwrap_or_default();
    if !sub.eq_ignore_ascii_case(&shared.opts.subscription_id) {
        return Err(ArmError::new(
            404,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    let api = match ctx.query.get("api-version") {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            return Err(ArmError::bad(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
    };
    if !valid_api_version(&api) {
        return Err(ArmError::bad(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{api}' is invalid. The supported versions are '2025-04-01,2025-11-01,2025-09-01,2026-08-01'."
            ),
        ));
    }
    if let Some(at) = ctx.segs.iter().enumerate().skip(2).position(|(i, s)| {
        s.eq_ignore_ascii_case("providers")
            && ctx
                .segs
                .get(i + 1)
                .is_some_and(|n| n.eq_ignore_ascii_case("Microsoft.Authorization"))
    }) {
        return authorization::route(shared, ctx, at + 2);
    }
    let lc: Vec<String> = ctx.segs[2..]
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let raw = &ctx.segs[2..];
    let l: Vec<&str> = lc.iter().map(String::as_str).collect();
    match l.as_slice() {
        [] if ctx.method == axum::http::Method::GET => Ok(Reply::json(200, subscription(shared))),
        [
            "providers",
            "microsoft.containerregistry",
            "checknameavailability",
        ] => acr::check_name(shared, ctx),
        ["resourcegroups"] => resource_groups::list(shared, ctx),
        ["resourcegroups", _] => resource_groups::one(shared, ctx, &raw[1]),
        ["resourcegroups", _, "resources"] => group_contents::resources(shared, ctx, &raw[1]),
        ["locations"] => group_contents::locations(shared, ctx),
        ["operationresults", id] => Ok(lro::poll(shared, ctx, id, true)),
        ["providers", _, "locations", _, kind, id] => {
            Ok(lro::poll(shared, ctx, id, *kind == "operationresults"))
        }
        [
            "providers",
            _,
            "locations",
            _,
            "operationresults",
            "operationstatuses",
            id,
        ] => Ok(lro::poll(shared, ctx, id, true)),
        ["providers", ns, ty] => list_sub(shared, ctx, ns, ty),
        [
            "resourcegroups",
            _,
            "providers",
            ns,
            "locations",
            _,
            "operationresults",
            _,
            id,
        ] if ns.starts_with("microsoft.") => Ok(lro::poll(shared, ctx, id, true)),
        ["resourcegroups", _, "providers", ns, ty, ..] => {
            let rg = raw[1].as_str();
            let rest_raw: Vec<&str> = raw[5..].iter().map(String::as_str).collect();
            match (*ns, *ty) {
                ("microsoft.containerservice", "managedclusters") => {
                    aks::route(shared, ctx, rg, &lc[5..], &rest_raw)
                }
                ("microsoft.containerregistry", "registries") => {
                    acr::route(shared, ctx, rg, &lc[5..], &rest_raw)
                }
                ("microsoft.containerinstance", "containergroups") => {
                    aci::route(shared, ctx, rg, &lc[5..], &rest_raw)
                }
                ("microsoft.network", "virtualnetworks") => {
                    network::route(shared, ctx, rg, &lc[5..], &rest_raw)
                }
                _ => Err(no_provider(ns, ty)),
            }
        }
        _ => Err(ArmError::new(
            404,
            "InvalidResourceType",
            format!(
                "The resource path '{}' is not served by the sandbox.",
                ctx.path
            ),
        )),
    }
}

fn subscription(shared: &Shared) -> Value {
    json!({
        "id": format!("/subscriptions/{}", shared.opts.subscription_id),
        "subscriptionId": shared.opts.subscription_id,
        "tenantId": shared.opts.tenant_id,
        "displayName": "Deckhand sandbox (not a real subscription)",
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
    })
}

fn list_sub(shared: &Arc<Shared>, ctx: &Ctx, ns: &str, ty: &str) -> ArmResult {
    match (ns, ty) {
        ("microsoft.containerservice", "managedclusters") => aks::list(shared, ctx, None),
        ("microsoft.containerregistry", "registries") => acr::list(shared, ctx, None),
        ("microsoft.containerinstance", "containergroups") => aci::list(shared, ctx, None),
        _ => Err(no_provider(ns, ty)),
    }
}

fn no_provider(ns: &str, ty: &str) -> ArmError {
    ArmError::bad(
        "InvalidResourceType",
        format!(
            "The resource type '{ty}' could not be found in the namespace '{ns}' for api version in the sandbox."
        ),
    )
}

fn valid_api_version(v: &str) -> bool {
    let date = v.split('-').take(3).collect::<Vec<_>>();
    date.len() == 3
        && date[0].len() == 4
        && date[1].len() == 2
        && date[2].len() == 2
        && date.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// 405 for a method a resource does not support.
pub fn method_not_allowed(ctx: &Ctx) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!(
            "The requested resource does not support http method '{}'.",
            ctx.method
        ),
    )
}

/// The request body as an object, or Azure's 400.
pub fn body_object(ctx: &Ctx) -> ArmResult<Map<String, Value>> {
    match ctx.json() {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(ArmError::bad(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'expected a JSON object'.",
        )),
    }
}

/// Checks the resource group exists (and is not being deleted); returns its name and location.
pub fn require_rg(shared: &Shared, rg: &str) -> ArmResult<(String, String)> {
    let w = shared.world();
    match w.groups.get(&rg.to_ascii_lowercase()) {
        Some(g) if g.state == "Deleting" => Err(ArmError::new(
            409,
            "ResourceGroupBeingDeleted",
            format!(
                "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                g.name
            ),
        )),
        Some(g) => Ok((g.name.clone(), g.location.clone())),
        None => Err(ArmError::rg_not_found(rg)),
    }
}

/// ARM id of a resource in a group.
pub fn resource_id(shared: &Shared, rg: &str, provider_type: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{provider_type}/{name}",
        shared.opts.subscription_id
    )
}

/// `{"value": [...]}`.
pub fn list_body(items: Vec<Value>) -> Value {
    json!({ "value": items })
}

/// Deep-merges `patch` into `base` (objects merged, everything else replaced; null removes).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Fills keys missing from `target` with `defaults` (recursively); never overwrites.
pub fn fill(target: &mut Value, defaults: &Value) {
    match (target, defaults) {
        (Value::Object(t), Value::Object(d)) => {
            for (k, dv) in d {
                match t.get_mut(k) {
                    Some(tv) if !tv.is_null() => fill(tv, dv),
                    _ => {
                        t.insert(k.clone(), dv.clone());
                    }
                }
            }
        }
        (t, d) if t.is_null() => *t = d.clone(),
        _ => {}
    }
}

/// A short random lower-case hex string.
pub fn rand_hex(n: usize) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..n)
        .map(|_| char::from_digit(r.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// 404 for a path under a provider the sandbox models but does not serve.
pub(crate) fn not_served(ctx: &Ctx) -> ArmError {
    ArmError::new(
        404,
        "NotFound",
        format!("The sandbox does not serve '{}'.", ctx.path),
    )
}
