//! `Microsoft.ContainerInstance/containerGroups`: CRUD, start/stop/restart and container logs.
//! Virtual-node pods create groups here too (see `k8s::scheduler`).

use std::sync::Arc;

use axum::http::Method;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{body_object, list_body, lro, require_rg, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{ContainerGroup, Shared, World, key};

const TYPE: &str = "Microsoft.ContainerInstance/containerGroups";

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The group as ARM returns it, with instance views.
pub fn render(g: &ContainerGroup) -> Value {
    let mut b = g.body.clone();
    let running = g.state == "Running";
    if let Some(cs) = b["properties"]["containers"].as_array_mut() {
        for c in cs {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            let image = c["properties"]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let current = if g.crashing && running {
                json!({"state": "Waiting", "startTime": g.started, "detailStatus": "CrashLoopBackOff: Back-off restarting failed container"})
            } else if g.state == "Pending" {
                json!({"state": "Waiting", "startTime": g.started, "detailStatus": "ContainerCreating"})
            } else if running {
                json!({"state": "Running", "startTime": g.started, "detailStatus": ""})
            } else {
                json!({"state": "Terminated", "startTime": g.started, "exitCode": 0, "finishTime": now(), "detailStatus": "Completed"})
            };
            c["properties"]["instanceView"] = json!({
                "restartCount": g.restarts,
                "currentState": current,
                "events": [
                    {"count": 1, "firstTimestamp": g.started, "lastTimestamp": g.started, "name": "Pulling", "message": format!("pulling image \"{image}\""), "type": "Normal"},
                    {"count": 1, "firstTimestamp": g.started, "lastTimestamp": g.started, "name": "Pulled", "message": format!("Successfully pulled image \"{image}\""), "type": "Normal"},
                    {"count": 1, "firstTimestamp": g.started, "lastTimestamp": g.started, "name": "Started", "message": format!("Started container {cname}"), "type": "Normal"},
                ],
            });
        }
    }
    b["properties"]["instanceView"] = json!({"state": g.state, "events": g.events});
    b
}

/// Routes `.../containerGroups[/...]`.
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
        [_] => group(shared, ctx, rg, raw[0]),
        [_, action @ ("start" | "stop" | "restart")] => action_(shared, ctx, rg, raw[0], action),
        [_, "containers", _, "logs"] => logs(shared, ctx, rg, raw[0], raw[2]),
        _ => Err(super::not_served(ctx)),
    }
}

/// GET containerGroups.
pub fn list(shared: &Arc<Shared>, ctx: &Ctx, rg: Option<&str>) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    if let Some(rg) = rg {
        require_rg(shared, rg)?;
    }
    let w = shared.world();
    let items = w
        .aci
        .iter()
        .filter(|(k, _)| rg.is_none_or(|r| k.0 == r.to_ascii_lowercase()))
        .map(|(_, g)| render(g))
        .collect();
    Ok(Reply::json(200, list_body(items)))
}

fn get<'a>(w: &'a mut World, rg: &str, name: &str) -> ArmResult<&'a mut ContainerGroup> {
    if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(ArmError::rg_not_found(rg));
    }
    w.aci
        .get_mut(&key(rg, name))
        .ok_or_else(|| ArmError::not_found(TYPE, name, rg))
}

fn async_url(shared: &Shared, loc: &str, id: &str, api: &str) -> String {
    lro::async_url(
        shared,
        "Microsoft.ContainerInstance",
        &loc.to_ascii_lowercase().replace(' ', ""),
        id,
        api,
    )
}

/// Validates a container group body; returns the normalised body.
pub fn validate(
    shared: &Shared,
    rg: &str,
    name: &str,
    req: &serde_json::Map<String, Value>,
) -> ArmResult<Value> {
    let location = req
        .get("location")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ArmError::bad(
                "LocationRequired",
                "The location property is required for this definition.",
            )
        })?;
    let props = req.get("properties").cloned().unwrap_or(json!({}));
    let containers = props["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        return Err(ArmError::bad(
            "ContainerGroupContainersRequired",
            format!("The container group '{name}' must contain at least one container."),
        ));
    }
    for c in &containers {
        let cn = c["name"].as_str().unwrap_or_default();
        if cn.is_empty()
            || c["properties"]["image"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        {
            return Err(ArmError::bad(
                "InvalidContainerImage",
                format!("The container '{cn}' must have a name and an image."),
            ));
        }
        if c["properties"]["resources"]["requests"]["cpu"]
            .as_f64()
            .is_none()
            || c["properties"]["resources"]["requests"]["memoryInGB"]
                .as_f64()
                .is_none()
        {
            return Err(ArmError::bad(
                "ResourceRequestsRequired",
                format!("The container '{cn}' must specify resources.requests.cpu and memoryInGB."),
            ));
        }
    }
    if !matches!(props["osType"].as_str(), Some("Linux" | "Windows")) {
        return Err(ArmError::bad(
            "InvalidOsType",
            "The property 'osType' must be 'Linux' or 'Windows'.",
        ));
    }
    let mut body = Value::Object(req.clone());
    body["id"] = json!(resource_id(shared, rg, TYPE, name));
    body["name"] = json!(name);
    body["type"] = json!(TYPE);
    body["location"] = json!(location);
    if body["properties"]["ipAddress"].is_object()
        && body["properties"]["ipAddress"].get("ip").is_none()
    {
        body["properties"]["ipAddress"]["ip"] = json!("10.240.0.4");
    }
    if let Some(label) = body["properties"]["ipAddress"]["dnsNameLabel"]
        .as_str()
        .map(str::to_string)
    {
        body["properties"]["ipAddress"]["fqdn"] = json!(format!(
            "{label}.{}.azurecontainer.io",
            location.to_ascii_lowercase().replace(' ', "")
        ));
    }
    if let Some(id) = body.get_mut("identity") {
        let ty = id["type"].as_str().unwrap_or("").to_string();
        if ty.contains("SystemAssigned") {
            super::fill(
                id,
                &json!({"principalId": uuid::Uuid::new_v4().to_string(), "tenantId": shared.opts.tenant_id}),
            );
        }
        if let Some(m) = id["userAssignedIdentities"].as_object_mut() {
            for v in m.values_mut() {
                super::fill(
                    v,
                    &json!({"clientId": uuid::Uuid::new_v4().to_string(), "principalId": uuid::Uuid::new_v4().to_string()}),
                );
            }
        }
    }
    body["properties"]["isCreatedFromStandbyPool"] = json!(false);
    body["properties"]["provisioningState"] = json!("Pending");
    Ok(body)
}

fn group(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            Ok(Reply::json(200, render(get(&mut w, rg, name)?)))
        }
        Method::PUT => {
            let valid = name.len() <= 63
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !name.starts_with('-')
                && !name.ends_with('-');
            if !valid {
                return Err(ArmError::bad(
                    "ContainerGroupNameInvalid",
                    format!(
                        "The container group name '{name}' is invalid. The name must contain no more than 63 characters and only lowercase letters, numbers and '-', and cannot start or end with '-'."
                    ),
                ));
            }
            let (rg_name, _) = require_rg(shared, rg)?;
            let req = body_object(ctx)?;
            let body = validate(shared, &rg_name, name, &req)?;
            let loc = body["location"].as_str().unwrap_or_default().to_string();
            let mut w = shared.world();
            let k = key(rg, name);
            let existed = w.aci.contains_key(&k);
            if let Some(b) = w.aci.get(&k).and_then(|g| g.busy.clone()) {
                return Err(ArmError::new(
                    409,
                    "ContainerGroupTransitioning",
                    format!(
                        "The container group '{name}' is still transitioning ({b}), please retry later."
                    ),
                ));
            }
            let g = ContainerGroup {
                name: name.into(),
                rg: rg_name,
                body,
                state: "Pending".into(),
                restarts: 0,
                started: now(),
                busy: Some("create".into()),
                events: vec![],
                crashing: false,
            };
            let out = render(&g);
            w.aci.insert(k.clone(), g);
            let k2 = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |_s, w| {
                    if let Some(g) = w.aci.get_mut(&k) {
                        g.busy = None;
                        g.state = "Running".into();
                        g.started = now();
                        g.body["properties"]["provisioningState"] = json!("Succeeded");
                    }
                    Ok(None)
                }),
                Box::new(move |_s, w, e| {
                    if let Some(g) = w.aci.get_mut(&k2) {
                        let t = now();
                        g.events.push(json!({"count": 1, "firstTimestamp": t, "lastTimestamp": t, "message": e.message, "name": e.code, "type": "Warning"}));
                        g.busy = None;
                        g.state = "Pending".into();
                        g.body["properties"]["provisioningState"] = json!("Failed");
                    }
                }),
            );
            Ok(Reply::json(if existed { 200 } else { 201 }, out)
                .with("Azure-AsyncOperation", async_url(shared, &loc, &id, &api))
                .with("Retry-After", lro::retry_after(shared)))
        }
        Method::DELETE => {
            let mut w = shared.world();
            if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
                return Err(ArmError::rg_not_found(rg));
            }
            match w.aci.remove(&key(rg, name)) {
                Some(g) => Ok(Reply::json(200, render(&g))),
                None => Ok(Reply::empty(204)),
            }
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

fn action_(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str, action: &str) -> ArmResult {
    if ctx.method != Method::POST {
        return Err(super::method_not_allowed(ctx));
    }
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    let mut w = shared.world();
    let g = get(&mut w, rg, name)?;
    if let Some(b) = &g.busy {
        return Err(ArmError::new(
            409,
            "ContainerGroupTransitioning",
            format!(
                "The container group '{name}' is still transitioning ({b}), please retry later."
            ),
        ));
    }
    let loc = g.body["location"].as_str().unwrap_or_default().to_string();
    match action {
        "stop" => {
            g.state = "Stopped".into();
            Ok(Reply::empty(204))
        }
        "restart" | "start" => {
            if action == "restart" {
                g.restarts += 1;
            }
            g.busy = Some(action.to_string());
            g.state = "Pending".into();
            let k = key(rg, name);
            let k2 = k.clone();
            let id = lro::start(
                shared,
                ctx,
                &mut w,
                false,
                Box::new(move |_s, w| {
                    if let Some(g) = w.aci.get_mut(&k) {
                        g.busy = None;
                        g.state = "Running".into();
                        g.started = now();
                    }
                    Ok(None)
                }),
                Box::new(move |_s, w, _e| {
                    if let Some(g) = w.aci.get_mut(&k2) {
                        g.busy = None;
                        g.state = "Stopped".into();
                    }
                }),
            );
            let status = if action == "start" { 202 } else { 204 };
            Ok(Reply::empty(status)
                .with("Azure-AsyncOperation", async_url(shared, &loc, &id, &api))
                .with("Retry-After", lro::retry_after(shared)))
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

fn logs(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str, container: &str) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let g = get(&mut w, rg, name)?;
    let c = g.body["properties"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == json!(container)))
        .cloned()
        .ok_or_else(|| {
            ArmError::new(
                404,
                "ContainerNotFound",
                format!(
                    "The container '{container}' could not be found in container group '{name}'."
                ),
            )
        })?;
    let image = c["properties"]["image"].as_str().unwrap_or_default();
    let mut lines: Vec<String> = vec![
        format!(
            "{} container {container} started from image {image} (sandbox)",
            g.started
        ),
        format!("{} listening", g.started),
    ];
    for i in 0..g.restarts {
        lines.push(format!("{} restart #{}", now(), i + 1));
    }
    if let Some(t) = ctx.query.get("tail").and_then(|t| t.parse::<usize>().ok()) {
        let n = lines.len().saturating_sub(t);
        lines.drain(..n);
    }
    Ok(Reply::json(
        200,
        json!({"content": lines.join("\n") + "\n"}),
    ))
}
