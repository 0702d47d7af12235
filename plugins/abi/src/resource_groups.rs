//! The host's typed resource-group service ([`crate::proto::Service::ResourceGroups`]): what a
//! plugin may ask and what it gets back. The host implements it with `azure_mgmt_resources`;
//! these are the plain shapes that cross the ABI (no Azure SDK types in plugins).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The ARM resource type every operation here is authorised as (locations excepted).
pub const RESOURCE_GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";
/// The resource type of `GET /subscriptions/{id}/locations`.
pub const LOCATION_TYPE: &str = "Microsoft.Resources/locations";

/// One resource-group operation. Names are checked by the host (Azure's resource-group rule)
/// before anything is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ResourceGroupRequest {
    /// Every resource group of the subscription.
    List,
    /// One resource group.
    Get { name: String },
    /// Creates the group, or updates its tags (Azure refuses a location change).
    CreateOrUpdate {
        name: String,
        location: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    /// Deletes the group and everything in it, followed to the end of Azure's operation.
    Delete { name: String },
    /// The resources in a group, with type, location and provisioning state.
    Resources { name: String },
    /// The subscription's locations (regions).
    Locations,
}

impl ResourceGroupRequest {
    /// The HTTP method Azure is sent.
    pub fn method(&self) -> &'static str {
        match self {
            ResourceGroupRequest::CreateOrUpdate { .. } => "PUT",
            ResourceGroupRequest::Delete { .. } => "DELETE",
            _ => "GET",
        }
    }

    /// `(resource type, action)` for the capability check, as an [`crate::proto::ArmCapability`]
    /// names them.
    pub fn capability(&self) -> (&'static str, &'static str) {
        match self {
            ResourceGroupRequest::Locations => (LOCATION_TYPE, "read"),
            ResourceGroupRequest::CreateOrUpdate { .. } => (RESOURCE_GROUP_TYPE, "write"),
            ResourceGroupRequest::Delete { .. } => (RESOURCE_GROUP_TYPE, "delete"),
            _ => (RESOURCE_GROUP_TYPE, "read"),
        }
    }

    /// The group named, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            ResourceGroupRequest::Get { name }
            | ResourceGroupRequest::CreateOrUpdate { name, .. }
            | ResourceGroupRequest::Delete { name }
            | ResourceGroupRequest::Resources { name } => Some(name),
            ResourceGroupRequest::List | ResourceGroupRequest::Locations => None,
        }
    }

    /// How the call reads in the audit log: method and path below the subscription.
    pub fn describe(&self) -> String {
        let path = match self {
            ResourceGroupRequest::List => "/resourceGroups".to_owned(),
            ResourceGroupRequest::Locations => "/locations".to_owned(),
            ResourceGroupRequest::Resources { name } => format!("/resourceGroups/{name}/resources"),
            ResourceGroupRequest::Get { name }
            | ResourceGroupRequest::CreateOrUpdate { name, .. }
            | ResourceGroupRequest::Delete { name } => format!("/resourceGroups/{name}"),
        };
        format!("{} {path}", self.method())
    }
}

/// A resource group as Azure describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupInfo {
    pub id: String,
    pub name: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `Succeeded`, `Deleting`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The resource that manages the group (an AKS cluster's id for its node resource group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// A resource inside a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceInfo {
    pub id: String,
    pub name: String,
    /// `Microsoft.ContainerService/managedClusters`, ...
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// A region of the subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocationInfo {
    /// `westeurope`
    pub name: String,
    /// `West Europe`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The host's answer; which lists are filled depends on the operation (`groups` holds one
/// group for get and create-or-update, none after a delete).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ResourceGroupInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<LocationInfo>,
    /// Create-or-update: `true` when the group is new (Azure answered 201).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// The first request's `x-ms-request-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
