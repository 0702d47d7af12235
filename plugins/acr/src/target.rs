//! Which registry a command acts on, and the ARM addresses around it.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError};
use deckhand_plugin_shared::azure::{ACR_API, ArmPath, ArmPathError, List, Registry};

use crate::near::did_you_mean;

pub const PROVIDER: &str = "Microsoft.ContainerRegistry";
pub const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";

/// A name (from config or from Azure) that cannot be part of an Azure address.
pub fn address_error(error: ArmPathError) -> PluginError {
    PluginError::new(ErrorCode::BadInput, error.to_string())
}

/// `[/resourceGroups/{rg}]/providers/Microsoft.ContainerRegistry/registries`.
pub fn registries_address(resource_group: Option<&str>) -> Result<ArmPath, PluginError> {
    match resource_group {
        Some(rg) => ArmPath::resource_group(rg).and_then(|p| p.provider(PROVIDER)),
        None => ArmPath::subscription_provider(PROVIDER),
    }
    .and_then(|p| p.collection("registries"))
    .map_err(address_error)
}

/// A registry as ARM knows it.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub resource_group: String,
    pub resource: Registry,
}

impl Target {
    /// `/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}`.
    pub fn address(&self) -> Result<ArmPath, PluginError> {
        ArmPath::resource_group(&self.resource_group)
            .and_then(|p| p.provider(PROVIDER))
            .and_then(|p| p.resource("registries", &self.name))
            .map_err(address_error)
    }

    pub fn login_server(&self) -> String {
        self.resource
            .properties
            .login_server
            .clone()
            .unwrap_or_else(|| format!("{}.azurecr.io", self.name.to_ascii_lowercase()))
    }

    /// The resource id (`/subscriptions/{sub}/resourceGroups/...`), the scope of role
    /// assignments on it.
    pub fn id(&self) -> String {
        self.resource.id.clone().unwrap_or_default()
    }

    /// The subscription of the resource id.
    pub fn subscription(&self) -> Option<&str> {
        let id = self.resource.id.as_deref()?;
        let mut parts = id
            .split('/')
            .skip_while(|p| !p.eq_ignore_ascii_case("subscriptions"));
        parts.next()?;
        parts.next()
    }
}

/// The resource group named in a resource id.
pub fn resource_group_of(id: &str) -> Option<&str> {
    let mut parts = id
        .split('/')
        .skip_while(|p| !p.eq_ignore_ascii_case("resourceGroups"));
    parts.next()?;
    parts.next()
}

/// The registries ARM lists in `resource_group` (or the subscription).
pub fn list(ctx: &Ctx, resource_group: Option<&str>) -> Result<Vec<Registry>, PluginError> {
    let response = ctx.arm(ArmRequest {
        method: "GET".into(),
        path: registries_address(resource_group)?.to_string(),
        api_version: ACR_API.into(),
        ..Default::default()
    })?;
    let list: List<Registry> = serde_json::from_value(response.body).map_err(|e| {
        PluginError::new(
            ErrorCode::Protocol,
            format!("ARM's registry list is not readable: {e}"),
        )
    })?;
    Ok(list.value)
}

/// `given`, else `configured`, else the only registry ARM lists: its name and, when ARM was
/// asked, the resource.
pub fn pick(
    ctx: &Ctx,
    given: Option<&str>,
    configured: Option<&str>,
    resource_group: Option<&str>,
) -> Result<Target, PluginError> {
    let registries = list(ctx, resource_group)?;
    let wanted = given.or(configured);
    let where_ = resource_group
        .map(|rg| format!("resource group {rg}"))
        .unwrap_or_else(|| "the subscription".into());
    let names: Vec<&str> = registries.iter().map(|r| r.name.as_str()).collect();
    let found = match wanted {
        Some(name) => registries
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                PluginError::bad_input(
                    "registry",
                    format!(
                        "no registry {name} in {where_}{} (registries: {})",
                        did_you_mean(name, names.iter().copied()),
                        list_or_none(&names)
                    ),
                )
            })?,
        None => match registries.as_slice() {
            [only] => only,
            [] => {
                return Err(PluginError::bad_input(
                    "registry",
                    format!("there is no registry in {where_}: `/acr create NAME` makes one"),
                ));
            }
            _ => {
                return Err(PluginError::bad_input(
                    "registry",
                    format!(
                        "{where_} has several registries ({}): pass --registry or set registry in [plugins.config.acr]",
                        names.join(", ")
                    ),
                ));
            }
        },
    };
    let id = found.id.clone().unwrap_or_default();
    let rg = resource_group_of(&id)
        .map(str::to_owned)
        .or_else(|| resource_group.map(str::to_owned))
        .ok_or_else(|| {
            PluginError::new(
                ErrorCode::Protocol,
                format!(
                    "registry {} has no resource group in its id {id:?}",
                    found.name
                ),
            )
        })?;
    Ok(Target {
        name: found.name.clone(),
        resource_group: rg,
        resource: found.clone(),
    })
}

pub fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
