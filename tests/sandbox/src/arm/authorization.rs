//! `Microsoft.Authorization`: role assignments at any scope (subscription, resource group,
//! resource) and a few built-in role definitions — enough for `az aks update --attach-acr`
//! (AcrPull for the kubelet identity) and the AKS user roles.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::{body_object, list_body};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::Shared;

/// Built-in roles: (name, GUID).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
    ("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec"),
    (
        "Azure Kubernetes Service Cluster User Role",
        "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    ),
    (
        "Azure Kubernetes Service RBAC Cluster Admin",
        "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    ),
];

/// Roles that allow pulling from a registry.
pub const PULL_ROLES: &[&str] = &["AcrPull", "AcrPush", "Contributor", "Owner"];

fn definition(shared: &Shared, name: &str, guid: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}", shared.opts.subscription_id),
        "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {"roleName": name, "type": "BuiltInRole", "description": format!("{name} (sandbox built-in role)"),
            "assignableScopes": ["/"], "permissions": []},
    })
}

/// Serves `{scope}/providers/Microsoft.Authorization/...`; `at` is the index of `providers`.
pub fn route(shared: &Arc<Shared>, ctx: &Ctx, at: usize) -> ArmResult {
    let scope = format!("/{}", ctx.segs[..at].join("/"));
    let rest: Vec<String> = ctx.segs[at + 2..]
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    check_scope(shared, &ctx.segs[..at])?;
    match r.as_slice() {
        ["roledefinitions"] => {
            let filter = ctx.query.get("$filter").cloned().unwrap_or_default();
            let items = BUILT_IN
                .iter()
                .filter(|(n, _)| filter.is_empty() || filter.contains(&format!("'{n}'")))
                .map(|(n, g)| definition(shared, n, g))
                .collect();
            Ok(Reply::json(200, list_body(items)))
        }
        ["roledefinitions", guid] => BUILT_IN
            .iter()
            .find(|(_, g)| g == guid)
            .map(|(n, g)| Reply::json(200, definition(shared, n, g)))
            .ok_or_else(|| {
                ArmError::new(
                    404,
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{guid}' does not exist."),
                )
            }),
        ["roleassignments"] => {
            let principal = ctx
                .query
                .get("$filter")
                .and_then(|f| f.split('\'').nth(1).map(str::to_string));
            let w = shared.world();
            let lc = scope.to_ascii_lowercase();
            let items = w
                .role_assignments
                .values()
                .filter(|a| {
                    let s = a["properties"]["scope"]
                        .as_str()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    (s.starts_with(&lc) || lc.starts_with(&s))
                        && principal
                            .as_ref()
                            .is_none_or(|p| a["properties"]["principalId"] == json!(p))
                })
                .cloned()
                .collect();
            Ok(Reply::json(200, list_body(items)))
        }
        ["roleassignments", name] => assignment(shared, ctx, &scope, name),
        _ => Err(super::not_served(ctx)),
    }
}

fn check_scope(shared: &Shared, segs: &[String]) -> ArmResult<()> {
    // segs: subscriptions/{sub}[/resourceGroups/{rg}[/providers/{ns}/{type}/{name}...]]
    if segs.len() >= 4 {
        let rg = &segs[3];
        let w = shared.world();
        if !w.groups.contains_key(&rg.to_ascii_lowercase()) {
            return Err(ArmError::rg_not_found(rg));
        }
        if segs.len() >= 8 {
            let (ty, name) = (segs[6].to_ascii_lowercase(), &segs[7]);
            let k = crate::state::key(rg, name);
            let exists = match ty.as_str() {
                "managedclusters" => w.clusters.contains_key(&k),
                "registries" => w.registries.contains_key(&k),
                "containergroups" => w.aci.contains_key(&k),
                _ => true,
            };
            if !exists {
                return Err(ArmError::not_found(
                    &format!("{}/{}", segs[5], segs[6]),
                    name,
                    rg,
                ));
            }
        }
    }
    Ok(())
}

fn assignment(shared: &Arc<Shared>, ctx: &Ctx, scope: &str, name: &str) -> ArmResult {
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let k = id.to_ascii_lowercase();
    match ctx.method {
        Method::GET => {
            let w = shared.world();
            w.role_assignments
                .get(&k)
                .cloned()
                .map(|a| Reply::json(200, a))
                .ok_or_else(|| {
                    ArmError::new(
                        404,
                        "RoleAssignmentNotFound",
                        format!("The role assignment '{name}' is not found."),
                    )
                })
        }
        Method::PUT => {
            if uuid::Uuid::parse_str(name).is_err() {
                return Err(ArmError::bad(
                    "InvalidRoleAssignmentId",
                    format!(
                        "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
                    ),
                ));
            }
            let req = body_object(ctx)?;
            let props = req.get("properties").cloned().unwrap_or(Value::Null);
            let role = props["roleDefinitionId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let principal = props["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let guid = role.rsplit('/').next().unwrap_or_default().to_string();
            if !BUILT_IN.iter().any(|(_, g)| *g == guid) {
                return Err(ArmError::bad(
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{guid}' does not exist."),
                ));
            }
            if uuid::Uuid::parse_str(&principal).is_err() {
                return Err(ArmError::bad(
                    "InvalidPrincipalId",
                    "A valid principal ID must be provided for role assignment.",
                ));
            }
            let mut w = shared.world();
            let dup = w.role_assignments.iter().any(|(other, a)| {
                *other != k
                    && a["properties"]["scope"]
                        .as_str()
                        .unwrap_or("")
                        .eq_ignore_ascii_case(scope)
                    && a["properties"]["principalId"] == json!(principal)
                    && a["properties"]["roleDefinitionId"]
                        .as_str()
                        .unwrap_or("")
                        .ends_with(&guid)
            });
            if dup {
                return Err(ArmError::new(
                    409,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                ));
            }
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let existed = w.role_assignments.contains_key(&k);
            let body = json!({
                "id": id, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}", shared.opts.subscription_id),
                    "principalId": principal,
                    "principalType": props["principalType"].as_str().unwrap_or("ServicePrincipal"),
                    "scope": scope, "condition": null, "conditionVersion": null,
                    "createdOn": now, "updatedOn": now, "createdBy": shared.opts.client_id, "updatedBy": shared.opts.client_id,
                    "delegatedManagedIdentityResourceId": null, "description": props["description"].clone(),
                },
            });
            w.role_assignments.insert(k, body.clone());
            Ok(Reply::json(if existed { 200 } else { 201 }, body))
        }
        Method::DELETE => {
            let mut w = shared.world();
            Ok(match w.role_assignments.remove(&k) {
                Some(a) => Reply::json(200, a),
                None => Reply::empty(204),
            })
        }
        _ => Err(super::method_not_allowed(ctx)),
    }
}

/// True if `principal` holds a pull-capable role on the registry with ARM id `registry_id`.
pub fn can_pull(w: &crate::state::World, principal: &str, registry_id: &str) -> bool {
    let rid = registry_id.to_ascii_lowercase();
    w.role_assignments.values().any(|a| {
        let scope = a["properties"]["scope"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        let role = a["properties"]["roleDefinitionId"].as_str().unwrap_or("");
        a["properties"]["principalId"] == json!(principal)
            && (rid == scope || rid.starts_with(&format!("{scope}/")))
            && BUILT_IN
                .iter()
                .any(|(n, g)| PULL_ROLES.contains(n) && role.ends_with(g))
    })
}
