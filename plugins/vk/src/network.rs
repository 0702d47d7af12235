//! `/vk disable --cleanup-network`: seed 000's known pain. ACI leaves a service association
//! link on the subnet it used; until that link is deleted Azure refuses to delete the subnet
//! or its vnet (`InUseSubnetCannotBeDeleted`). After the addon is off, this deletes the link.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use deckhand_plugin_shared::azure::{ArmPath, ManagedCluster};
use serde_json::Value;

use crate::Vk;
use crate::addon::addon;
use crate::addresses::address_error;

/// Microsoft.Network's api-version (as in `../shared/azure-examples/network/`).
const NETWORK_API: &str = "2026-03-01";
/// What ACI's links say they link.
const ACI_LINK: &str = "Microsoft.ContainerInstance/containerGroups";

/// The ACI subnet of a cluster: in the vnet of its pools, named by the addon's `SubnetName`.
pub(crate) struct AciSubnet {
    pub resource_group: String,
    pub vnet: String,
    pub subnet: String,
}

impl AciSubnet {
    fn address(&self) -> Result<ArmPath, PluginError> {
        ArmPath::resource_group(&self.resource_group)
            .and_then(|p| p.provider("Microsoft.Network"))
            .and_then(|p| p.resource("virtualNetworks", &self.vnet))
            .and_then(|p| p.resource("subnets", &self.subnet))
            .map_err(address_error)
    }

    /// Finds it from the cluster as read, before anything changes.
    pub(crate) fn of(
        raw: &Value,
        mc: &ManagedCluster,
        default_subnet: &str,
    ) -> Result<AciSubnet, PluginError> {
        let subnet = addon(mc)
            .and_then(|(_, v)| v["config"]["SubnetName"].as_str())
            .unwrap_or(default_subnet)
            .to_owned();
        let pool_subnet = raw["properties"]["agentPoolProfiles"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|p| p["vnetSubnetID"].as_str())
            .ok_or_else(|| {
                PluginError::new(
                    ErrorCode::Precondition,
                    "the cluster's pools name no vnet (vnetSubnetID): it uses a network AKS manages, which AKS removes with the cluster; there is no link to clean up",
                )
            })?;
        let address = ArmPath::parse(pool_subnet).map_err(address_error)?;
        let words = address.segments(None);
        let after = |key: &str| {
            words
                .iter()
                .position(|w| w.eq_ignore_ascii_case(key))
                .and_then(|i| words.get(i + 1))
                .map(|w| (*w).to_owned())
        };
        match (after("resourceGroups"), after("virtualNetworks")) {
            (Some(resource_group), Some(vnet)) => Ok(AciSubnet {
                resource_group,
                vnet,
                subnet,
            }),
            _ => Err(PluginError::new(
                ErrorCode::Protocol,
                format!("the pools' vnetSubnetID {pool_subnet} names no vnet"),
            )),
        }
    }

    /// Deletes the links ACI left on the subnet; says what it did.
    fn remove_links(&self, ctx: &Ctx) -> Result<String, PluginError> {
        let subnet = self.address()?;
        let links = subnet
            .clone()
            .collection("serviceAssociationLinks")
            .map_err(address_error)?;
        let list = ctx.arm(ArmRequest {
            method: "GET".into(),
            path: links.to_string(),
            api_version: NETWORK_API.into(),
            ..Default::default()
        })?;
        let names: Vec<String> = list.body["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["properties"]["linkedResourceType"].as_str() == Some(ACI_LINK))
            .filter_map(|l| l["name"].as_str().map(str::to_owned))
            .collect();
        if names.is_empty() {
            return Ok(format!(
                "No ACI link was left on subnet {} of vnet {}: nothing to remove.",
                self.subnet, self.vnet
            ));
        }
        for name in &names {
            ctx.arm(ArmRequest {
                method: "DELETE".into(),
                path: subnet
                    .clone()
                    .resource("serviceAssociationLinks", name)
                    .map_err(address_error)?
                    .to_string(),
                api_version: NETWORK_API.into(),
                label: Some(format!(
                    "Removing the ACI link {name} from subnet {}",
                    self.subnet
                )),
                ..Default::default()
            })?;
        }
        Ok(format!(
            "Removed the link {} that ACI left on subnet {} of vnet {}: the subnet and the vnet can now be deleted.",
            names.join(", "),
            self.subnet,
            self.vnet
        ))
    }
}

impl Vk {
    /// `/vk disable [--cleanup-network]`.
    pub(crate) fn disable(
        &self,
        ctx: &Ctx,
        cluster: Option<&str>,
        cleanup: bool,
    ) -> Result<Reply, PluginError> {
        if !cleanup {
            return self.set_enabled(ctx, cluster, None, false);
        }
        let name = self.cluster(cluster)?;
        // Where the link is, found before anything changes (and refused before it, too).
        let (raw, mc) = self.get_cluster(ctx, &name)?;
        let subnet = AciSubnet::of(&raw, &mc, &self.subnet)?;
        let disabled = self.set_enabled(ctx, Some(&name), None, false)?;
        let cleaned = match subnet.remove_links(ctx) {
            Ok(text) => text,
            // The addon is off either way: say so, and what is left to do.
            Err(e) => format!(
                "The ACI link on subnet {} was not removed: {e}. `/vk disable --cleanup-network` again retries it.",
                subnet.subnet
            ),
        };
        Ok(Reply::text(format!("{}\n{cleaned}", disabled.text)))
    }
}
