//! `Microsoft.ContainerRegistry/registries`: CRUD, name checks, admin credentials, webhooks and
//! `importImage` (a finished import adds the image). ACR Tasks runs are in `acr_tasks.rs`.

use std::sync::Arc;

use axum::http::Method;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::acr_tokens::{self, Child};
use super::{body_object, list_body, lro, merge, rand_hex, require_rg, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Registry, Shared, World, key};

pub(super) const TYPE: &str = "Microsoft.ContainerRegistry/registries";

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A fresh registry body in Azure's shape.
pub fn new_body(
    shared: &Shared,
    rg: &str,
    name: &str,
    location: &str,
    sku: &str,
    admin: bool,
) -> Value {
    json!({
        "id": resource_id(shared, rg, TYPE, name),
        "name": name,
        "type": TYPE,
        "location": location,
        "sku": {"name": sku, "tier": sku},
        "properties": {
            "loginServer": format!("{}.azurecr.io", name.to_ascii_lowercase()),
            "creationDate": now(),
            "provisioningState": "Succeeded",
            "adminUserEnabled": admin,
            "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "lastUpdatedTime": now(), "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
            },
            "encryption": {"status": "disabled"},
            "status": null,
            "dataEndpointEnabled": false,
            "dataEndpointHostNames": [],
            "privateEndpointConnections": [],
            "publicNetworkAccess": "Enabled",
            "networkRuleBypassOptions": "AzureServices",
            "networkRuleBypassAllowedForTasks": false,
            "zoneRedundancy": "Disabled",
            "anonymousPullEnabled": false,
            "roleAssignmentMode": "LegacyRegistryPermissions",
        }
    })
}

fn password() -> String {
    let mut s = rand_hex(32);
    s.make_ascii_uppercase();
    s
}

/// Routes `.../registries[/...]`.
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
        [_] => registry(shared, ctx, rg, raw[0]),
        [_, "listcredentials"] => list_credentials(shared, ctx, rg, raw[0]),
        [_, "regeneratecredential"] => regenerate(shared, ctx, rg, raw[0]),
        [_, "importimage"] => import(shared, ctx, rg, raw[0]),
        [_, "schedulerun"] => super::acr_tasks::schedule_run(shared, ctx, rg, raw[0]),
        [_, "runs"] => super::acr_tasks::runs(shared, ctx, rg, raw[0], None),
        [_, "runs", id] => super::acr_tasks::runs(shared, ctx, rg, raw[0], Some(id)),
        [_, "runs", id, "listlogsasurl"] => super::acr_tasks::log_url(shared, ctx, rg, raw[0], id),
        [_, "operationstatuses", id] => Ok(lro::poll(shared, ctx, id, false)),
        [_, "webhooks"] => webhooks(shared, ctx, rg, raw[0], None),
        [_, "webhooks", _] => webhooks(shared, ctx, rg, raw[0], Some(raw[2])),
        [_, "webhooks", _, "operationstatuses", id] => Ok(lro::poll(shared, ctx, id, false)),
        [_, "scopemaps"] => acr_tokens::route(shared, ctx, rg, raw[0], Child::ScopeMaps, None),
        [_, "scopemaps", _] => {
            acr_tokens::route(shared, ctx, rg, raw[0], Child::ScopeMaps, Some(raw[2]))
        }
        [_, "tokens"] => acr_tokens::route(shared, ctx, rg, raw[0], Child::Tokens, None),
        [_, "tokens", _] => acr_tokens::route(shared, ctx, rg, raw[0], Child::Tokens, Some(raw[2])),
        [_, "scopemaps" | "tokens", _, "operationstatuses", id] => {
            Ok(lro::poll(shared, ctx, id, false))
        }
        [_, "generatecredentials"] => acr_tokens::generate_credentials(shared, ctx, rg, raw[0]),
        _ => Err(super::not_served(ctx)),
    }
}

/// GET registries.
pub fn list(shared: &Arc<Shared>, ctx: &Ctx, rg: Option<&str>) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    if let Some(rg) = rg {
        require_rg(shared, rg)?;
    }
    let w = shared.world();
    let items = w
        .registries
        .iter()
        .filter(|(k, _)| rg.is_none_or(|r| k.0 == r.to_ascii_lowercase()))
        .map(|(_, r)| r.body.clone())
        .collect();
    Ok(Reply::json(200, list_body(items)))
}

pub(super) fn get<'a>(w: &'a mut World, rg: &str, name: &str) -> ArmResult<&'a mut Registry> {
    if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(ArmError::rg_not_found(rg));
    }
    w.registries
        .get_mut(&key(rg, name))
        .ok_or_else(|| ArmError::not_found(TYPE, name, rg))
}

fn status_url(shared: &Shared, rg: &str, name: &str, id: &str, api: &str) -> String {
    format!(
        "{}{}/operationStatuses/registries-{id}?api-version={api}",
        shared.base,
        resource_id(shared, rg, TYPE, name)
    )
}

/// Creates a registry synchronously (used by seeding and by PUT).
pub fn insert(shared: &Shared, w: &mut World, rg: &str, name: &str, body: Value) {
    w.registries.insert(
        key(rg, name),
        Registry {
            name: name.to_string(),
            rg: rg.to_string(),
            body,
            repos: Default::default(),
            webhooks: Default::default(),
            runs: Default::default(),
            passwords: [password(), password()],
            scope_maps: Default::default(),
            tokens: Default::default(),
            token_passwords: Default::default(),
            busy: None,
        },
    );
    let _ = shared;
}

fn registry(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            Ok(Reply::json(200, get(&mut w, rg, name)?.body.clone()))
        }
        Method::PUT => {
            if !(5..=50).contains(&name.len()) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ArmError::bad(
                    "InvalidRegistryName",
                    format!(
                        "The specified resource name '{name}' is invalid. Registry names may contain only alpha numeric characters and must be between 5 and 50 characters."
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
            let sku = req
                .get("sku")
                .and_then(|s| s["name"].as_str())
                .unwrap_or_default()
                .to_string();
            if !["Basic", "Standard", "Premium"].contains(&sku.as_str()) {
                return Err(ArmError::bad(
                    "InvalidSku",
                    format!(
                        "The sku '{sku}' is invalid. Supported values are 'Basic', 'Standard' and 'Premium'."
                    ),
                ));
            }
            let mut w = shared.world();
            if let Some(r) = w.registries.get_mut(&key(rg, name)) {
                if let Some(b) = &r.busy {
                    return Err(ArmError::new(
                        409,
                        "OperationNotAllowed",
                        format!(
                            "Operation is not allowed because there's an in progress {b} operation on registry '{name}'."
                        ),
                    ));
                }
                let mut patch = json!({"sku": {"name": sku, "tier": sku}, "properties": req.get("properties").cloned().unwrap_or(json!({}))});
                if let Some(t) = req.get("tags") {
                    patch["tags"] = t.clone();
                }
                merge(&mut r.body, &patch);
                return Ok(Reply::json(200, r.body.clone()));
            }
            let admin = req
                .get("properties")
                .and_then(|p| p["adminUserEnabled"].as_bool())
                .unwrap_or(false);
            let mut body = new_body(shared, &rg_name, name, &location, &sku, admin);
            if let Some(p) = req.get("properties") {
                let mut p = p.clone();
                if let Some(m) = p.as_object_mut() {
                    m.remove("loginServer");
                    m.remove("provisioningState");
                }
                merge(&mut body["properties"], &p);
            }
            if let Some(t) = req.get("tags") {
                body["tags"] = t.clone();
            }
            body["properties"]["provisioningState"] = json!("Creating");
            let reply_body = body.clone();
            insert(shared, &mut w, &rg_name, name, body);
            let k = key(rg, name);
            if let Some(r) = w.registries.get_mut(&k) {
                r.busy = Some("create registry".into());
            }
            let k2 = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |_s, w| {
                    if let Some(r) = w.registries.get_mut(&k) {
                        r.busy = None;
                        r.body["properties"]["provisioningState"] = json!("Succeeded");
                    }
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(r) = w.registries.get_mut(&k2) {
                        r.busy = None;
                        r.body["properties"]["provisioningState"] = json!("Failed");
                    }
                }),
            );
            Ok(Reply::json(201, reply_body)
                .with(
                    "Azure-AsyncOperation",
                    status_url(shared, rg, name, &id, &api),
                )
                .with("Retry-After", lro::retry_after(shared)))
        }
        Method::PATCH => {
            let req = body_object(ctx)?;
            let mut w = shared.world();
            let r = get(&mut w, rg, name)?;
            let mut patch = json!({});
            for k in ["tags", "sku", "properties", "identity"] {
                if let Some(v) = req.get(k) {
                    patch[k] = v.clone();
                }
            }
            if let Some(s) = patch["sku"]["name"].as_str().map(str::to_string) {
                patch["sku"]["tier"] = json!(s);
            }
            merge(&mut r.body, &patch);
            Ok(Reply::json(200, r.body.clone()))
        }
        Method::DELETE => {
            let mut w = shared.world();
            if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
                return Err(ArmError::rg_not_found(rg));
            }
            let k = key(rg, name);
            let Some(r) = w.registries.get_mut(&k) else {
                return Ok(Reply::empty(204));
            };
            r.busy = Some("delete registry".into());
            r.body["properties"]["provisioningState"] = json!("Deleting");
            let k2 = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                true,
                Box::new(move |_s, w| {
                    w.registries.remove(&k);
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(r) = w.registries.get_mut(&k2) {
                        r.busy = None;
                        r.body["properties"]["provisioningState"] = json!("Failed");
                    }
                }),
            );
            Ok(Reply::empty(202)
                .with("Location", status_url(shared, rg, name, &id, &api))
                .with("Retry-After", lro::retry_after(shared)))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

pub(super) fn require_post(ctx: &Ctx) -> ArmResult<()> {
    if ctx.method != Method::POST {
        return Err(super::method_not_allowed(ctx));
    }
    Ok(())
}

fn creds_body(r: &Registry) -> Value {
    json!({"username": r.name, "passwords": [
        {"name": "password", "value": r.passwords[0]},
        {"name": "password2", "value": r.passwords[1]},
    ]})
}

fn admin_required(shared: &Shared, r: &Registry) -> ArmResult<()> {
    if r.body["properties"]["adminUserEnabled"] != json!(true) {
        return Err(ArmError::bad(
            "UnAuthorizedForCredentialOperations",
            format!(
                "Cannot perform credential operations for {} as admin user is disabled. Kindly enable admin user as per docs: https://docs.microsoft.com/azure/container-registry/container-registry-authentication#admin-account",
                resource_id(shared, &r.rg, TYPE, &r.name)
            ),
        ));
    }
    Ok(())
}

fn list_credentials(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    require_post(ctx)?;
    let mut w = shared.world();
    let r = get(&mut w, rg, name)?;
    admin_required(shared, r)?;
    Ok(Reply::json(200, creds_body(r)))
}

fn regenerate(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    require_post(ctx)?;
    let req = body_object(ctx)?;
    let mut w = shared.world();
    let r = get(&mut w, rg, name)?;
    admin_required(shared, r)?;
    match req.get("name").and_then(Value::as_str) {
        Some("password") => r.passwords[0] = password(),
        Some("password2") => r.passwords[1] = password(),
        _ => {
            return Err(ArmError::bad(
                "InvalidParameter",
                "The 'name' must be 'password' or 'password2'.",
            ));
        }
    }
    Ok(Reply::json(200, creds_body(r)))
}

pub(super) fn split_image(s: &str) -> (String, String) {
    let s = s.split('@').next().unwrap_or(s);
    match s.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (s.to_string(), "latest".to_string()),
    }
}

fn import(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    require_post(ctx)?;
    let req = body_object(ctx)?;
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    let source = req.get("source").cloned().unwrap_or(Value::Null);
    let src_image = source["sourceImage"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if src_image.is_empty() {
        return Err(ArmError::bad(
            "InvalidParameters",
            "The parameter 'source.sourceImage' is required.",
        ));
    }
    let (src_repo, src_tag) = split_image(&src_image);
    let src_repo = src_repo.trim_start_matches("library/").to_string();
    let targets: Vec<String> = req
        .get("targetTags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec![format!("{src_repo}:{src_tag}")]);
    let force = req.get("mode").and_then(Value::as_str) == Some("Force");
    let src_resource = source["resourceId"].as_str().map(str::to_string);
    let mut w = shared.world();
    get(&mut w, rg, name)?;
    let k = key(rg, name);
    let id = lro::start(
        shared,
        ctx,
        &mut w,
        true,
        Box::new(move |_s, w| {
            let image = match &src_resource {
                Some(rid) => {
                    let parts: Vec<&str> = rid.split('/').collect();
                    let (srg, sname) = (
                        parts.get(4).copied().unwrap_or(""),
                        parts.last().copied().unwrap_or(""),
                    );
                    let img = w
                        .registries
                        .get(&key(srg, sname))
                        .and_then(|r| r.repos.get(&src_repo))
                        .and_then(|t| t.get(&src_tag))
                        .cloned();
                    img.ok_or_else(|| ArmError::bad("ImportSourceImageNotFound", format!("Source image '{src_repo}:{src_tag}' was not found in registry '{sname}'.")))?
                }
                None => crate::registry::Image::synthetic(&src_repo, &src_tag),
            };
            let r = w.registries.get_mut(&k).ok_or_else(|| {
                ArmError::new(404, "ResourceNotFound", "The target registry was deleted.")
            })?;
            for t in &targets {
                let (repo, tag) = split_image(t);
                let tags = r.repos.entry(repo.clone()).or_default();
                if tags.contains_key(&tag) && !force {
                    return Err(ArmError::bad(
                        "TagAlreadyExists",
                        format!(
                            "Tag '{repo}:{tag}' already exists in target registry; use mode 'Force' to overwrite."
                        ),
                    ));
                }
                tags.insert(tag, image.clone());
            }
            Ok(None)
        }),
        Box::new(|_s, _w, _e| {}),
    );
    let loc = format!(
        "{}/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/locations/location/operationResults/operationStatuses/registries-{id}?api-version={api}",
        shared.base, shared.opts.subscription_id
    );
    Ok(Reply::empty(202)
        .with("Location", loc)
        .with("Retry-After", lro::retry_after(shared)))
}

fn webhooks(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    name: &str,
    hook: Option<&str>,
) -> ArmResult {
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    let Some(hook) = hook else {
        if ctx.method != Method::GET {
            return Err(super::method_not_allowed(ctx));
        }
        let mut w = shared.world();
        let r = get(&mut w, rg, name)?;
        return Ok(Reply::json(
            200,
            list_body(r.webhooks.values().cloned().collect()),
        ));
    };
    let hk = hook.to_ascii_lowercase();
    let hook_type = "Microsoft.ContainerRegistry/registries/webhooks";
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            let r = get(&mut w, rg, name)?;
            r.webhooks
                .get(&hk)
                .cloned()
                .map(|b| Reply::json(200, b))
                .ok_or_else(|| ArmError::not_found(hook_type, &format!("{name}/{hook}"), rg))
        }
        Method::PUT => {
            if !(5..=50).contains(&hook.len()) || !hook.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ArmError::bad(
                    "InvalidWebhookName",
                    format!(
                        "The webhook name '{hook}' is invalid. Webhook names may contain only alpha numeric characters and must be between 5 and 50 characters."
                    ),
                ));
            }
            let req = body_object(ctx)?;
            let props = req.get("properties").cloned().unwrap_or(json!({}));
            if props["serviceUri"].as_str().is_none_or(str::is_empty) {
                return Err(ArmError::bad(
                    "InvalidParameter",
                    "The property 'serviceUri' is required.",
                ));
            }
            let actions = props["actions"].as_array().cloned().unwrap_or_default();
            if actions.is_empty()
                || !actions.iter().all(|a| {
                    matches!(
                        a.as_str(),
                        Some("push" | "delete" | "quarantine" | "chart_push" | "chart_delete")
                    )
                })
            {
                return Err(ArmError::bad(
                    "InvalidParameter",
                    "The property 'actions' must list one or more of push, delete, quarantine, chart_push, chart_delete.",
                ));
            }
            let mut w = shared.world();
            let r = get(&mut w, rg, name)?;
            let location = req
                .get("location")
                .cloned()
                .unwrap_or_else(|| r.body["location"].clone());
            let existed = r.webhooks.contains_key(&hk);
            let mut body = json!({
                "id": format!("{}/webhooks/{hook}", resource_id(shared, &r.rg, TYPE, &r.name)),
                "name": hook, "type": hook_type, "location": location,
                "properties": {"status": props["status"].as_str().unwrap_or("enabled"), "scope": props["scope"].as_str().unwrap_or(""),
                    "actions": actions, "provisioningState": if existed { "Updating" } else { "Creating" }},
            });
            if let Some(t) = req.get("tags") {
                body["tags"] = t.clone();
            }
            r.webhooks.insert(hk.clone(), body.clone());
            let (k, k2, hk2) = (key(rg, name), key(rg, name), hk.clone());
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |_s, w| {
                    if let Some(b) = w
                        .registries
                        .get_mut(&k)
                        .and_then(|r| r.webhooks.get_mut(&hk))
                    {
                        b["properties"]["provisioningState"] = json!("Succeeded");
                    }
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(b) = w
                        .registries
                        .get_mut(&k2)
                        .and_then(|r| r.webhooks.get_mut(&hk2))
                    {
                        b["properties"]["provisioningState"] = json!("Failed");
                    }
                }),
            );
            let url = format!(
                "{}{}/webhooks/{hook}/operationStatuses/webhooks-{id}?api-version={api}",
                shared.base,
                resource_id(shared, rg, TYPE, name)
            );
            Ok(Reply::json(if existed { 200 } else { 201 }, body)
                .with("Azure-AsyncOperation", url)
                .with("Retry-After", lro::retry_after(shared)))
        }
        Method::DELETE => {
            let mut w = shared.world();
            let r = get(&mut w, rg, name)?;
            Ok(match r.webhooks.remove(&hk) {
                Some(_) => Reply::empty(200),
                None => Reply::empty(204),
            })
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

/// POST `/providers/Microsoft.ContainerRegistry/checkNameAvailability`.
pub fn check_name(shared: &Arc<Shared>, ctx: &Ctx) -> ArmResult {
    require_post(ctx)?;
    let req = body_object(ctx)?;
    let name = req
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if req.get("type").and_then(Value::as_str) != Some(TYPE) {
        return Err(ArmError::bad(
            "InvalidParameter",
            format!("The 'type' must be '{TYPE}'."),
        ));
    }
    let valid = (5..=50).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric());
    let taken = shared
        .world()
        .registries
        .values()
        .any(|r| r.name.eq_ignore_ascii_case(&name));
    Ok(Reply::json(
        200,
        if !valid {
            json!({"nameAvailable": false, "reason": "Invalid", "message": "The specified resource name is invalid. Registry names may contain only alpha numeric characters and must be between 5 and 50 characters."})
        } else if taken {
            json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The registry {name} is already in use.")})
        } else {
            json!({"nameAvailable": true})
        },
    ))
}
