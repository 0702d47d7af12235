//! How resource groups and their contents read in chat.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::abi::proto::{ResourceGroupInfo, ResourceInfo};

pub const CLUSTER_TYPE: &str = "Microsoft.ContainerService/managedClusters";

/// Resource types as people call them, in the order a delete confirmation lists them.
const KINDS: [(&str, &str); 5] = [
    (CLUSTER_TYPE, "AKS clusters"),
    (
        "Microsoft.ContainerRegistry/registries",
        "container registries",
    ),
    (
        "Microsoft.ContainerInstance/containerGroups",
        "container groups",
    ),
    ("Microsoft.Network/virtualNetworks", "virtual networks"),
    (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "managed identities",
    ),
];

/// The AKS cluster that manages this group (its node resource group), by name: from
/// `managedBy`, else from AKS's default `MC_{group}_{cluster}_{location}` name.
pub fn managing_cluster(group: &ResourceGroupInfo) -> Option<String> {
    const MARK: &str = "/providers/microsoft.containerservice/managedclusters/";
    if let Some(by) = &group.managed_by {
        let lower = by.to_ascii_lowercase();
        if let Some(at) = lower.find(MARK) {
            let name = &by[at + MARK.len()..];
            return Some(name.split('/').next().unwrap_or(name).to_owned());
        }
    }
    let rest = group
        .name
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("MC_"))
        .map(|_| &group.name[3..])?;
    // MC_{rg}_{cluster}_{location}: the cluster is the part before the location.
    let mut parts = rest.rsplitn(3, '_');
    let _location = parts.next();
    Some(
        parts
            .next()
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown")
            .to_owned(),
    )
}

/// `• name (location): state, tags k=v, …` with an AKS node resource group named as such.
pub fn group_line(group: &ResourceGroupInfo) -> String {
    let mut line = format!(
        "• {} ({}): {}",
        group.name,
        group.location,
        group
            .provisioning_state
            .as_deref()
            .unwrap_or("state unknown")
    );
    if !group.tags.is_empty() {
        let tags: Vec<String> = group.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(", tags {}", tags.join(", ")));
    }
    if let Some(cluster) = managing_cluster(group) {
        line.push_str(&format!(
            " — AKS node resource group of cluster {cluster} (managed by AKS)"
        ));
    }
    line
}

fn kind_name(resource_type: &str) -> String {
    KINDS
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(resource_type))
        .map_or_else(|| resource_type.to_owned(), |(_, n)| (*n).to_owned())
}

/// The resources of a group grouped by type (the well-known kinds first), then the node
/// resource groups AKS keeps for its clusters (`nodes`: cluster, group).
pub fn contents(found: &[ResourceInfo], nodes: &[(String, String)]) -> String {
    if found.is_empty() {
        return "It is empty: no resources.".to_owned();
    }
    let mut by_type: BTreeMap<(usize, String), Vec<&ResourceInfo>> = BTreeMap::new();
    for r in found {
        let rank = KINDS
            .iter()
            .position(|(t, _)| t.eq_ignore_ascii_case(&r.resource_type))
            .unwrap_or(KINDS.len());
        by_type
            .entry((rank, kind_name(&r.resource_type)))
            .or_default()
            .push(r);
    }
    let mut lines = vec![format!(
        "{} resource{}:",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    )];
    for ((_, kind), mut items) in by_type {
        items.sort_by_key(|r| r.name.to_ascii_lowercase());
        let names: Vec<String> = items
            .iter()
            .map(|r| {
                let state = r.provisioning_state.as_deref().unwrap_or("state unknown");
                match &r.location {
                    Some(l) => format!("{} ({l}, {state})", r.name),
                    None => format!("{} ({state})", r.name),
                }
            })
            .collect();
        lines.push(format!("• {kind} ({}): {}", items.len(), names.join(", ")));
    }
    for (cluster, group) in nodes {
        lines.push(format!(
            "• AKS node resource group of {cluster}: {group} (managed by AKS, deleted with the cluster)"
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, managed_by: Option<&str>) -> ResourceGroupInfo {
        ResourceGroupInfo {
            name: name.into(),
            location: "westeurope".into(),
            managed_by: managed_by.map(str::to_owned),
            ..ResourceGroupInfo::default()
        }
    }

    #[test]
    fn node_resource_groups_are_named_by_their_cluster() {
        let by = "/subscriptions/s/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster";
        assert_eq!(
            managing_cluster(&group("MC_pangeo_pangeoCluster_westeurope", Some(by))).as_deref(),
            Some("pangeoCluster")
        );
        assert_eq!(
            managing_cluster(&group("mc_rg_c1_westeurope", None)).as_deref(),
            Some("c1")
        );
        assert_eq!(managing_cluster(&group("pangeo", None)), None);
        assert_eq!(managing_cluster(&group("MCP", None)), None);
    }
}
