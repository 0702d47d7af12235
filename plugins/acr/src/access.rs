//! Cluster pull access: `attach` gives the cluster's kubelet identity AcrPull on the registry
//! (what `az aks update --attach-acr` does), `check` says whether the cluster can pull.

use base64::Engine;
use deckhand_plugin_sdk::abi::proto::{ArmRequest, KubeRequest};
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use deckhand_plugin_shared::azure::{AKS_API, ArmPath, cluster_path};
use serde_json::{Value, json};

use crate::Acr;
use crate::commands::{Attach, Check};
use crate::target::{Target, address_error};

pub const AUTHORIZATION_API: &str = "2022-04-01";
const AUTHORIZATION: &str = "Microsoft.Authorization";
/// The built-in AcrPull role.
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/// Built-in roles that include pulling: AcrPull, AcrPush, Contributor, Owner.
const PULL_ROLES: &[(&str, &str)] = &[
    (ACR_PULL, "AcrPull"),
    ("8311e382-0749-4cb8-b61a-304f252e45ec", "AcrPush"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
];

fn assignments_address(target: &Target) -> Result<ArmPath, PluginError> {
    target
        .address()?
        .extension(AUTHORIZATION)
        .and_then(|p| p.collection("roleAssignments"))
        .map_err(address_error)
}

/// A pull-capable role held by `principal` at the registry or above: (role name, assignment).
fn pull_role(assignments: &Value, principal: &str, registry_id: &str) -> Option<(String, String)> {
    let registry = registry_id.to_ascii_lowercase();
    assignments["value"].as_array()?.iter().find_map(|a| {
        let p = &a["properties"];
        let scope = p["scope"].as_str().unwrap_or_default().to_ascii_lowercase();
        let covers = registry == scope || registry.starts_with(&format!("{scope}/"));
        let role = p["roleDefinitionId"].as_str().unwrap_or_default();
        let (_, name) = PULL_ROLES
            .iter()
            .find(|(guid, _)| role.to_ascii_lowercase().ends_with(guid))?;
        (covers && p["principalId"] == json!(principal)).then(|| {
            (
                (*name).to_owned(),
                a["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
    })
}

/// Whether a `kubernetes.io/dockerconfigjson` Secret holds credentials for `login_server`.
fn secret_for(secret: &Value, login_server: &str) -> bool {
    if secret["type"] != "kubernetes.io/dockerconfigjson" {
        return false;
    }
    let Some(encoded) = secret["data"][".dockerconfigjson"].as_str() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let config: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    config["auths"].as_object().is_some_and(|auths| {
        auths.keys().any(|k| {
            let host = k.trim_start_matches("https://").trim_end_matches('/');
            host.eq_ignore_ascii_case(login_server)
        })
    })
}

impl Acr {
    /// The kubelet identity's object id of `cluster`.
    fn kubelet_identity(&self, ctx: &Ctx, cluster: &str) -> Result<String, PluginError> {
        let rg = self.resource_group()?;
        let response = ctx
            .arm(ArmRequest {
                method: "GET".into(),
                path: cluster_path(rg, cluster).map_err(address_error)?,
                api_version: AKS_API.into(),
                ..Default::default()
            })
            .map_err(|e| {
                if e.status == Some(404) {
                    PluginError::bad_input(
                        "cluster",
                        format!("no AKS cluster {cluster} in resource group {rg}"),
                    )
                } else {
                    e.into()
                }
            })?;
        response.body["properties"]["identityProfile"]["kubeletidentity"]["objectId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                PluginError::new(
                    ErrorCode::Precondition,
                    format!("cluster {cluster} has no kubelet managed identity (a service-principal cluster): give its service principal AcrPull by hand, or use a pull secret"),
                )
            })
    }

    fn role_assignments(&self, ctx: &Ctx, target: &Target) -> Result<Value, PluginError> {
        Ok(ctx
            .arm(ArmRequest {
                method: "GET".into(),
                path: assignments_address(target)?.to_string(),
                api_version: AUTHORIZATION_API.into(),
                ..Default::default()
            })?
            .body)
    }

    pub fn attach(&self, ctx: &Ctx, args: &Attach) -> Result<Reply, PluginError> {
        let cluster = self.cluster(args.cluster.as_deref())?;
        let target = self.target(ctx, args.registry.as_deref())?;
        let kubelet = self.kubelet_identity(ctx, &cluster)?;
        let assignments = self.role_assignments(ctx, &target)?;
        if let Some((role, name)) = pull_role(&assignments, &kubelet, &target.id()) {
            return Ok(Reply::text(format!(
                "{cluster} can already pull from {}: its kubelet identity holds {role} (role assignment {name}); nothing to do.",
                target.name
            )));
        }
        let subscription = target.subscription().ok_or_else(|| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("registry {} has no subscription in its id", target.name),
            )
        })?;
        let name = uuid::Uuid::new_v4().to_string();
        let path = target
            .address()?
            .extension(AUTHORIZATION)
            .and_then(|p| p.resource("roleAssignments", &name))
            .map_err(address_error)?;
        let result = ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: path.to_string(),
            api_version: AUTHORIZATION_API.into(),
            body: Some(json!({"properties": {
                "roleDefinitionId": format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
                "principalId": kubelet,
                "principalType": "ServicePrincipal",
            }})),
            wait: true,
            label: Some(format!("Granting {cluster} AcrPull on {}", target.name)),
        });
        match result {
            Ok(_) => Ok(Reply::text(format!(
                "Attached {} to {cluster}: its kubelet identity {kubelet} now holds AcrPull on the registry (role assignment {name}). Pods can pull {}/… without a pull secret.",
                target.name,
                target.login_server()
            ))),
            // Made meanwhile (by someone else, or a retried PUT): attached is attached.
            Err(e) if e.upstream_code.as_deref() == Some("RoleAssignmentExists") => {
                Ok(Reply::text(format!(
                    "{cluster} can already pull from {}: its kubelet identity holds AcrPull; nothing to do.",
                    target.name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn check(&self, ctx: &Ctx, args: &Check) -> Result<Reply, PluginError> {
        let cluster = self.cluster(args.cluster.as_deref())?;
        let target = self.target(ctx, args.registry.as_deref())?;
        let kubelet = self.kubelet_identity(ctx, &cluster)?;
        let assignments = self.role_assignments(ctx, &target)?;
        if let Some((role, name)) = pull_role(&assignments, &kubelet, &target.id()) {
            return Ok(Reply::text(format!(
                "Yes: {cluster} can pull from {}: its kubelet identity {kubelet} holds {role} (role assignment {name}).",
                target.login_server()
            )));
        }
        let secrets = ctx.kube(KubeRequest {
            cluster: self.kube_name(&cluster),
            verb: "list".into(),
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some(args.namespace.clone()),
            ..Default::default()
        })?;
        let login = target.login_server();
        let with_secret: Vec<&str> = secrets.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| secret_for(s, &login))
            .filter_map(|s| s["metadata"]["name"].as_str())
            .collect();
        if !with_secret.is_empty() {
            return Ok(Reply::text(format!(
                "Yes, in namespace {}: pull secret(s) {} hold credentials for {login} (pods must name them in imagePullSecrets). The kubelet identity has no pull role: `/acr attach --cluster {cluster}` makes secrets unnecessary.",
                args.namespace,
                with_secret.join(", ")
            )));
        }
        Ok(Reply::text(format!(
            "No: {cluster} cannot pull from {login}: its kubelet identity {kubelet} holds no AcrPull, AcrPush, Contributor or Owner role on the registry, and namespace {} has no pull secret for it. `/acr attach --cluster {cluster}` fixes that.",
            args.namespace
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_counts_at_the_registry_or_above_for_the_right_principal() {
        let registry = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/intens";
        let a = |scope: &str, principal: &str, role: &str| {
            json!({"value": [{"name": "ra1", "properties": {"scope": scope, "principalId": principal,
                "roleDefinitionId": format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}")}}]})
        };
        assert_eq!(
            pull_role(&a(registry, "p", ACR_PULL), "p", registry),
            Some(("AcrPull".into(), "ra1".into()))
        );
        assert!(
            pull_role(
                &a("/subscriptions/s/resourceGroups/rg", "p", PULL_ROLES[2].0),
                "p",
                registry
            )
            .is_some()
        );
        assert!(pull_role(&a(registry, "other", ACR_PULL), "p", registry).is_none());
        // Reader does not pull; a sibling registry's scope does not cover this one.
        assert!(
            pull_role(
                &a(registry, "p", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                "p",
                registry
            )
            .is_none()
        );
        assert!(pull_role(&a(&format!("{registry}2"), "p", ACR_PULL), "p", registry).is_none());
    }

    #[test]
    fn pull_secrets_are_matched_by_login_server() {
        let config = base64::engine::general_purpose::STANDARD
            .encode(r#"{"auths":{"https://intens.azurecr.io":{"auth":"eDp5"}}}"#);
        let secret = json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": config}});
        assert!(secret_for(&secret, "intens.azurecr.io"));
        assert!(!secret_for(&secret, "other.azurecr.io"));
        assert!(!secret_for(
            &json!({"type": "Opaque", "data": {}}),
            "intens.azurecr.io"
        ));
    }
}
