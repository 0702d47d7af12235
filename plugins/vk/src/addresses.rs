//! Typed Azure addresses of the resources vk reads (container groups of the node resource group).

use deckhand_plugin_sdk::{ErrorCode, PluginError};
use deckhand_plugin_shared::azure::{ArmPath, ArmPathError};

/// A name (from config or from Azure) that cannot be part of an Azure address.
pub(crate) fn address_error(error: ArmPathError) -> PluginError {
    PluginError::new(ErrorCode::BadInput, error.to_string())
}

/// `/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups`.
pub(crate) fn container_groups_address(node_rg: &str) -> Result<ArmPath, PluginError> {
    ArmPath::resource_group(node_rg)
        .and_then(|p| p.provider("Microsoft.ContainerInstance"))
        .and_then(|p| p.collection("containerGroups"))
        .map_err(address_error)
}

pub(crate) fn container_group_address(node_rg: &str, name: &str) -> Result<ArmPath, PluginError> {
    ArmPath::resource_group(node_rg)
        .and_then(|p| p.provider("Microsoft.ContainerInstance"))
        .and_then(|p| p.resource("containerGroups", name))
        .map_err(address_error)
}
