//! Repository-scoped access for ACR: `registries/{r}/scopeMaps/{m}`, `registries/{r}/tokens/{t}`
//! (PUT with `Azure-AsyncOperation`, GET, list, DELETE) and `registries/{r}/generateCredentials`
//! (200 with the new passwords), after `acr/ScopeMapCreate.json`, `acr/TokenCreate.json` and the
//! REST specs' `RegistryGenerateCredentials.json` example. Passwords are never part of a token's
//! body (Azure answers them only from `generateCredentials`).

use std::sync::Arc;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::acr::{TYPE, get, now, require_post};
use super::{body_object, list_body, lro, rand_hex, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Shared, key};

/// Which child collection a request addresses.
#[derive(Clone, Copy)]
pub enum Child {
    ScopeMaps,
    Tokens,
}

impl Child {
    fn segment(self) -> &'static str {
        match self {
            Child::ScopeMaps => "scopeMaps",
            Child::Tokens => "tokens",
        }
    }

    fn resource_type(self) -> String {
        format!("{TYPE}/{}", self.segment())
    }

    /// Azure's rule for the child's name: 5-50 of letters, digits and `-` (scope maps also `_`).
    fn check_name(self, name: &str) -> ArmResult<()> {
        let allowed = |c: char| {
            c.is_ascii_alphanumeric() || c == '-' || (matches!(self, Child::ScopeMaps) && c == '_')
        };
        if (5..=50).contains(&name.len()) && name.chars().all(allowed) {
            return Ok(());
        }
        Err(ArmError::bad(
            "InvalidParameter",
            format!(
                "The {} name '{name}' is invalid: it must be 5-50 characters of letters, digits and hyphens.",
                self.segment()
            ),
        ))
    }
}

/// Routes `registries/{r}/scopeMaps[/{m}]` and `registries/{r}/tokens[/{t}]`.
pub fn route(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    registry: &str,
    child: Child,
    name: Option<&str>,
) -> ArmResult {
    let Some(name) = name else {
        if ctx.method != Method::GET {
            return Err(super::method_not_allowed(ctx));
        }
        let mut w = shared.world();
        let r = get(&mut w, rg, registry)?;
        let items = children(r, child).values().cloned().collect();
        return Ok(Reply::json(200, list_body(items)));
    };
    let lower = name.to_ascii_lowercase();
    let rtype = child.resource_type();
    match ctx.method {
        Method::GET => {
            let mut w = shared.world();
            let r = get(&mut w, rg, registry)?;
            children(r, child)
                .get(&lower)
                .cloned()
                .map(|b| Reply::json(200, b))
                .ok_or_else(|| ArmError::not_found(&rtype, &format!("{registry}/{name}"), rg))
        }
        Method::PUT => put(shared, ctx, rg, registry, child, name),
        Method::DELETE => {
            let mut w = shared.world();
            let r = get(&mut w, rg, registry)?;
            if matches!(child, Child::Tokens) {
                r.token_passwords.remove(&lower);
            }
            Ok(match children_mut(r, child).remove(&lower) {
                Some(_) => Reply::empty(200),
                None => Reply::empty(204),
            })
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

fn children(
    r: &crate::state::Registry,
    child: Child,
) -> &std::collections::BTreeMap<String, Value> {
    match child {
        Child::ScopeMaps => &r.scope_maps,
        Child::Tokens => &r.tokens,
    }
}

fn children_mut(
    r: &mut crate::state::Registry,
    child: Child,
) -> &mut std::collections::BTreeMap<String, Value> {
    match child {
        Child::ScopeMaps => &mut r.scope_maps,
        Child::Tokens => &mut r.tokens,
    }
}

/// The properties a PUT may set, checked as Azure checks them.
fn properties(
    shared: &Shared,
    r: &crate::state::Registry,
    child: Child,
    req: &serde_json::Map<String, Value>,
) -> ArmResult<Value> {
    let props = req.get("properties").cloned().unwrap_or(json!({}));
    match child {
        Child::ScopeMaps => {
            let actions = props["actions"].as_array().cloned().unwrap_or_default();
            // `repositories/{repository}/{action}` (`content/read`, `metadata/write`, ...).
            let valid = |a: &Value| {
                a.as_str().is_some_and(|a| {
                    let parts: Vec<&str> = a.split('/').collect();
                    parts.len() >= 3
                        && parts[0] == "repositories"
                        && parts.iter().all(|p| !p.is_empty())
                })
            };
            if actions.is_empty() || !actions.iter().all(valid) {
                return Err(ArmError::bad(
                    "InvalidParameter",
                    "The property 'actions' must list one or more actions such as repositories/{repository}/content/read.",
                ));
            }
            Ok(json!({
                "description": props["description"].as_str().unwrap_or(""),
                "type": "IsUserDefined",
                "actions": actions,
            }))
        }
        Child::Tokens => {
            let scope_map = props["scopeMapId"].as_str().unwrap_or_default();
            let prefix = format!("{}/scopeMaps/", resource_id(shared, &r.rg, TYPE, &r.name));
            let known = scope_map
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
                && r.scope_maps
                    .contains_key(&scope_map[prefix.len()..].to_ascii_lowercase());
            if !known {
                return Err(ArmError::bad(
                    "InvalidParameter",
                    format!(
                        "The scope map '{scope_map}' was not found in registry {}.",
                        r.name
                    ),
                ));
            }
            // Certificates are kept as Azure answers them: thumbprint and expiry, not the PEM.
            let certificates: Vec<Value> = props["credentials"]["certificates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({
                        "name": c["name"],
                        "thumbprint": rand_hex(40),
                        "expiry": (Utc::now() + chrono::Duration::days(365)).to_rfc3339(),
                    })
                })
                .collect();
            Ok(json!({
                "scopeMapId": scope_map,
                "status": props["status"].as_str().unwrap_or("enabled"),
                "credentials": {"certificates": certificates},
            }))
        }
    }
}

fn put(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    registry: &str,
    child: Child,
    name: &str,
) -> ArmResult {
    child.check_name(name)?;
    let api = ctx.query.get("api-version").cloned().unwrap_or_default();
    let req = body_object(ctx)?;
    let lower = name.to_ascii_lowercase();
    let mut w = shared.world();
    let r = get(&mut w, rg, registry)?;
    let mut props = properties(shared, r, child, &req)?;
    let existed = children(r, child).contains_key(&lower);
    props["creationDate"] = json!(now());
    props["provisioningState"] = json!(if existed { "Updating" } else { "Creating" });
    let id = format!(
        "{}/{}/{name}",
        resource_id(shared, &r.rg, TYPE, &r.name),
        child.segment()
    );
    let body = json!({"id": id, "name": name, "type": child.resource_type(), "properties": props});
    children_mut(r, child).insert(lower.clone(), body.clone());
    let (k, k2, l2) = (key(rg, registry), key(rg, registry), lower.clone());
    let op = lro::start(
        shared,
        ctx,
        &mut w,
        false,
        Box::new(move |_s, w| {
            if let Some(b) = w
                .registries
                .get_mut(&k)
                .and_then(|r| children_mut(r, child).get_mut(&lower))
            {
                b["properties"]["provisioningState"] = json!("Succeeded");
            }
            Ok(None)
        }),
        Box::new(move |_s, w, _e| {
            if let Some(b) = w
                .registries
                .get_mut(&k2)
                .and_then(|r| children_mut(r, child).get_mut(&l2))
            {
                b["properties"]["provisioningState"] = json!("Failed");
            }
        }),
    );
    let url = format!(
        "{}{id}/operationStatuses/{}-{op}?api-version={api}",
        shared.base,
        child.segment().to_ascii_lowercase()
    );
    Ok(Reply::json(if existed { 200 } else { 201 }, body)
        .with("Azure-AsyncOperation", url)
        .with("Retry-After", lro::retry_after(shared)))
}

/// POST `registries/{r}/generateCredentials`: new password(s) for a token, answered once.
pub fn generate_credentials(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    registry: &str,
) -> ArmResult {
    require_post(ctx)?;
    let req = body_object(ctx)?;
    let token_id = req
        .get("tokenId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expiry = match req.get("expiry").and_then(Value::as_str) {
        None => None,
        Some(e) => Some(DateTime::parse_from_rfc3339(e).map_err(|_| {
            ArmError::bad(
                "InvalidParameter",
                format!("The expiry '{e}' is not a valid date-time."),
            )
        })?),
    };
    if expiry.is_some_and(|e| e.with_timezone(&Utc) <= Utc::now()) {
        return Err(ArmError::bad(
            "InvalidParameter",
            "The expiry must be in the future.",
        ));
    }
    let which: Vec<&str> = match req.get("name").and_then(Value::as_str) {
        None => vec!["password1", "password2"],
        Some(n @ ("password1" | "password2")) => vec![n],
        Some(other) => {
            return Err(ArmError::bad(
                "InvalidParameter",
                format!("The password name '{other}' must be 'password1' or 'password2'."),
            ));
        }
    };
    let mut w = shared.world();
    let r = get(&mut w, rg, registry)?;
    let prefix = format!("{}/tokens/", resource_id(shared, &r.rg, TYPE, &r.name));
    let token = token_id
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(&prefix))
        .map(|_| token_id[prefix.len()..].to_ascii_lowercase())
        .filter(|t| r.tokens.contains_key(t))
        .ok_or_else(|| {
            ArmError::bad(
                "InvalidParameter",
                format!(
                    "The token '{token_id}' was not found in registry {}.",
                    r.name
                ),
            )
        })?;
    let username = r.tokens[&token]["name"].clone();
    let expiry = expiry.map(|e| e.to_rfc3339());
    let passwords: Vec<Value> = which
        .iter()
        .map(|name| {
            let value = rand_hex(32);
            r.token_passwords
                .entry(token.clone())
                .or_default()
                .insert((*name).to_owned(), value.clone());
            let mut p = json!({"name": name, "value": value});
            if let Some(e) = &expiry {
                p["expiry"] = json!(e);
            }
            p
        })
        .collect();
    let entry: Vec<Value> = passwords
        .iter()
        .map(|p| json!({"name": p["name"], "expiry": p.get("expiry"), "creationTime": now()}))
        .collect();
    if let Some(t) = r.tokens.get_mut(&token) {
        t["properties"]["credentials"]["passwords"] = json!(entry);
    }
    Ok(Reply::json(
        200,
        json!({"username": username, "passwords": passwords}),
    ))
}
