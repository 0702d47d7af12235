//! The `vk` plugin: AKS virtual nodes (Virtual Kubelet on Azure Container Instances, seed 000).
//!
//! * `/vk status [--cluster C]` — is the virtual node Ready, its capacity, and the ACI container
//!   groups behind its pods with state and restarts;
//! * `/vk enable|disable --cluster C` — the managed cluster's `aciConnectorLinux` addon, by a
//!   read-modify-write PUT of the cluster (disable is destructive: the pods there stop);
//!   `--cleanup-network` then deletes the link ACI left on its subnet (seed 000's pain: the
//!   vnet cannot be deleted until it is gone);
//! * `/vk logs POD` — through ACI's container logs for pods on the virtual node (`kubectl logs`
//!   "works funny" there, says the seed), through Kubernetes for the others.
//!
//! No I/O of its own: ARM and Kubernetes through the host's services.

mod addon;
mod addresses;
mod commands;
mod kube;
mod logs;
mod network;
mod status;

use addresses::address_error;
use kube::{pods_on, virtual_nodes};

use commands::VkCommand;
use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{ArmCapability, ArmRequest, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, Command, Ctx, Host, HostError,
    Manifest, Plugin, PluginError, Reply,
};
use deckhand_plugin_shared::azure::{AKS_API, ManagedCluster, cluster_path, clusters_address};
use deckhand_plugin_shared::target::ClusterDefaults;
use serde_json::Value;

/// The AKS addon that runs the virtual node.
pub const ADDON: &str = "aciConnectorLinux";
const DEFAULT_SUBNET: &str = "virtual-node-aci";

pub struct Vk {
    /// Resource group, default cluster and its Kubernetes name: what `--cluster` falls back to.
    clusters: ClusterDefaults,
    /// Subnet for ACI pods when enabling the addon (`aci_subnet`).
    subnet: String,
}

fn bad_input(option: &str, message: impl Into<String>) -> PluginError {
    PluginError::bad_input(option, message)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// `[plugins.config.vk]`. Unknown keys are refused, so a typo is reported with its line by
/// `deckhand check` instead of being ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VkConfig {
    /// Resource group of the clusters.
    pub resource_group: Option<String>,
    /// Cluster used when a command has no `--cluster`.
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    pub kube_cluster: Option<String>,
    /// Subnet for ACI pods when enabling the addon.
    pub aci_subnet: Option<String>,
}

/// A failed read of the cluster, in words, keeping Azure's code and request id: a missing
/// resource group is a config problem, a missing cluster a bad `--cluster`.
fn not_found(error: HostError, rg: &str, cluster: &str) -> PluginError {
    match (error.status, error.upstream_code.as_deref()) {
        (Some(404), Some("ResourceGroupNotFound")) => {
            let mut e = PluginError::from_host(
                error,
                format!(
                    "resource group {rg} does not exist (resource_group in [plugins.config.vk])"
                ),
            );
            e.code = ErrorCode::Config;
            e
        }
        (Some(404), _) => {
            let mut e = PluginError::from_host(
                error,
                format!("there is no AKS cluster {cluster} in resource group {rg}"),
            );
            e.code = ErrorCode::NotFound;
            e.option = Some("cluster".into());
            e
        }
        _ => error.into(),
    }
}

impl Plugin for Vk {
    type Config = VkConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "vk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "AKS virtual nodes (Virtual Kubelet on Azure Container Instances)".into(),
            commands: vec![VkCommand::spec()],
            capabilities: Capabilities {
                arm: vec![
                    ArmCapability {
                        resource_type: "Microsoft.ContainerService/managedClusters".into(),
                        actions: strings(&["read", "write"]),
                    },
                    ArmCapability {
                        resource_type: "Microsoft.ContainerInstance/containerGroups".into(),
                        actions: strings(&["read"]),
                    },
                    ArmCapability {
                        resource_type:
                            "Microsoft.Network/virtualNetworks/subnets/serviceAssociationLinks"
                                .into(),
                        actions: strings(&["read", "delete"]),
                    },
                    ArmCapability {
                        resource_type:
                            "Microsoft.ContainerInstance/containerGroups/containers/logs".into(),
                        actions: strings(&["read"]),
                    },
                ],
                kube: vec![
                    KubeCapability {
                        resources: strings(&["nodes", "pods"]),
                        verbs: strings(&["get", "list"]),
                    },
                    KubeCapability {
                        resources: strings(&["pods/log"]),
                        verbs: strings(&["logs"]),
                    },
                ],
                ..Default::default()
            },
        }
    }

    fn init(config: VkConfig, _host: &Host) -> Result<Self, PluginError> {
        Ok(Vk {
            clusters: ClusterDefaults {
                resource_group: config.resource_group,
                default_cluster: config.default_cluster,
                kube_cluster: config.kube_cluster,
            },
            subnet: config.aci_subnet.unwrap_or_else(|| DEFAULT_SUBNET.into()),
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        match call.decode::<VkCommand>()? {
            VkCommand::Status(args) => self.status(ctx, args.cluster.as_deref()),
            VkCommand::Enable(args) => {
                self.set_enabled(ctx, args.cluster.as_deref(), args.subnet.as_deref(), true)
            }
            VkCommand::Disable(args) => {
                self.disable(ctx, args.cluster.as_deref(), args.cleanup_network)
            }
            VkCommand::Logs(args) => self.logs(ctx, &args),
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        let choice = |s: String| Choice {
            name: s.clone(),
            value: s,
        };
        match query.option.as_str() {
            "cluster" => {
                let Some(rg) = self.clusters.resource_group.as_deref() else {
                    return Ok(Vec::new());
                };
                let path = clusters_address(Some(rg)).map_err(address_error)?;
                let list = ctx.arm(ArmRequest {
                    method: "GET".into(),
                    path: path.to_string(),
                    api_version: AKS_API.into(),
                    ..Default::default()
                })?;
                Ok(deckhand_plugin_sdk::choices_starting_with(
                    list.body["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["name"].as_str()),
                    &query.partial,
                ))
            }
            "pod" => {
                let cluster = query
                    .options
                    .get("cluster")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| self.clusters.default_cluster.clone());
                let Some(cluster) = cluster else {
                    return Ok(Vec::new());
                };
                let kube = self.kube_name(&cluster);
                let mut pods = Vec::new();
                for node in virtual_nodes(ctx, &kube)? {
                    let name = node["metadata"]["name"].as_str().unwrap_or_default();
                    for pod in pods_on(ctx, &kube, name)? {
                        if let Some(p) = pod["metadata"]["name"].as_str()
                            && p.starts_with(&query.partial)
                        {
                            pods.push(choice(p.to_owned()));
                        }
                    }
                }
                Ok(pods)
            }
            _ => Ok(Vec::new()),
        }
    }
}

impl Vk {
    fn cluster(&self, given: Option<&str>) -> Result<String, PluginError> {
        self.clusters.require_cluster(given, "[plugins.config.vk]")
    }

    fn resource_group(&self) -> Result<&str, PluginError> {
        self.clusters.resource_group.as_deref().ok_or_else(|| {
            PluginError::new(
                ErrorCode::Config,
                "resource_group is not set in [plugins.config.vk]",
            )
        })
    }

    /// The `[[kubernetes.clusters]]` name of an AKS cluster.
    fn kube_name(&self, cluster: &str) -> String {
        self.clusters.kube_name(cluster)
    }

    fn get_cluster(
        &self,
        ctx: &Ctx,
        cluster: &str,
    ) -> Result<(Value, ManagedCluster), PluginError> {
        let rg = self.resource_group()?;
        let response = ctx
            .arm(ArmRequest {
                method: "GET".into(),
                path: cluster_path(rg, cluster).map_err(address_error)?,
                api_version: AKS_API.into(),
                ..Default::default()
            })
            .map_err(|e| not_found(e, rg, cluster))?;
        let typed: ManagedCluster = serde_json::from_value(response.body.clone()).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("cluster {cluster} has an unexpected shape: {e}"),
            )
        })?;
        Ok((response.body, typed))
    }
}

deckhand_plugin_sdk::export_plugin!(Vk);

#[cfg(test)]
mod harness_tests;
