//! `/aks …`: AKS clusters, node pools, scaling, autoscaler bounds, start/stop, nodes and GPUs.
//!
//! Everything reaches Azure through the host's ARM service (which follows long-running
//! operations and streams their progress under the `label` given here) and the cluster
//! through the host's Kubernetes service; this module only decides what to ask and how to
//! say the answer. One file per command group:
//!
//! * [`clusters`]: `/aks clusters`, `/aks start`, `/aks stop`;
//! * [`list`]: `/aks pools`;
//! * [`scale`]: `/aks scale`, `/aks scale-down`, `/aks autoscale`;
//! * [`pool_add`]: `/aks pool add`, `/aks pool delete`;
//! * [`nodes`]: `/aks nodes`, `/aks gpu`.
//!
//! Writes are reported from what Azure reports after them ([`outcome`]): a refusal, an
//! operation that failed while running, and a change done but not read back (a note on a
//! success) read differently; the subscription's remaining write budget is shown when low.
//! Scale requests for a pool already scaling are merged into it ([`merge`]).
//!
//! **Why two scale commands.** The router confirms per command (`destructive` in the
//! manifest), but only a *reduction* of capacity deserves a confirmation. `/aks scale` grows a
//! pool at once and refuses to shrink it, naming `/aks scale-down`, which is destructive and so
//! asks for `/confirm` (both need permission `aks.scale`). A person who wants fewer nodes
//! gets the confirmation they expect; growing never waits.
//!
//! The commands are declared in [`commands`]; their handlers get the decoded structs. Config
//! ([`crate::config::AksConfig`]): `resource_group` (else clusters are found across the
//! subscription), `default_cluster` (else the only cluster), `kube_cluster` (the
//! `[[kubernetes.clusters]]` name used for Kubernetes reads of the default cluster; default:
//! the cluster's name).

mod clusters;
pub mod commands;
mod error;
mod kube;
mod list;
mod merge;
mod nodes;
mod outcome;
mod pool_add;
mod scale;

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{ArmCapability, ArmRequest, ArmResponse, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Capabilities, Choice, Ctx, HostError, PluginError, Reply,
};
use deckhand_plugin_shared::azure::{
    AKS_API, AgentPool, List, ManagedCluster, cluster_address, cluster_path, clusters_address,
    pool_path,
};
use deckhand_plugin_shared::target::ClusterDefaults;
use serde_json::Value;

use commands::{AksCommand, PoolCommand};
use error::Missing;
pub(crate) use error::{bad_input, cloud_error};

pub fn capabilities() -> Capabilities {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Capabilities {
        arm: vec![
            ArmCapability {
                resource_type: "Microsoft.ContainerService/managedClusters".into(),
                actions: strings(&["read", "start", "stop"]),
            },
            ArmCapability {
                resource_type: "Microsoft.ContainerService/managedClusters/agentPools".into(),
                actions: strings(&["read", "write", "delete"]),
            },
            ArmCapability {
                resource_type: "Microsoft.Compute/locations/vmSizes".into(),
                actions: strings(&["read"]),
            },
        ],
        kube: vec![KubeCapability {
            resources: strings(&["nodes", "pods", "daemonsets"]),
            verbs: strings(&["get", "list"]),
        }],
        ..Default::default()
    }
}

/// The cluster a command acts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub resource_group: String,
    pub cluster: String,
    /// `[[kubernetes.clusters]]` name for Kubernetes reads.
    pub kube: String,
}

impl Target {
    pub fn path(&self) -> Result<String, PluginError> {
        cluster_path(&self.resource_group, &self.cluster).map_err(address_error)
    }

    /// `.../managedClusters/{cluster}/{action}` for a POST (`start`, `stop`).
    pub fn action_path(&self, action: &str) -> Result<String, PluginError> {
        cluster_address(&self.resource_group, &self.cluster)
            .and_then(|a| a.action(action))
            .map(|a| a.to_string())
            .map_err(address_error)
    }

    pub fn pools_path(&self) -> Result<String, PluginError> {
        cluster_address(&self.resource_group, &self.cluster)
            .and_then(|a| a.collection("agentPools"))
            .map(|a| a.to_string())
            .map_err(address_error)
    }

    pub fn pool_path(&self, pool: &str) -> Result<String, PluginError> {
        pool_path(&self.resource_group, &self.cluster, pool).map_err(address_error)
    }
}

/// A name that cannot be part of an Azure address (the option rules catch users' names first;
/// this also guards names from config).
pub(crate) fn address_error(error: deckhand_plugin_shared::azure::ArmPathError) -> PluginError {
    PluginError::new(ErrorCode::BadInput, error.to_string())
}

pub struct Pools {
    /// What `--cluster` falls back to, where clusters are, and their Kubernetes names.
    clusters: ClusterDefaults,
    /// Scale requests for a pool already scaling join it (see [`merge`]).
    merger: merge::ScaleMerger,
}

impl Pools {
    pub fn new(clusters: ClusterDefaults) -> Pools {
        Pools {
            clusters,
            merger: merge::ScaleMerger::default(),
        }
    }

    pub fn call(&self, ctx: &Ctx, command: AksCommand) -> Result<Reply, PluginError> {
        match command {
            AksCommand::Clusters(_) => clusters::list(self, ctx),
            AksCommand::Pools(args) => list::pools(self, ctx, args.cluster.as_deref()),
            AksCommand::Scale(args) => scale::scale(self, ctx, &args, false),
            AksCommand::ScaleDown(args) => scale::scale(self, ctx, &args.into(), true),
            AksCommand::Autoscale(args) => scale::autoscale(self, ctx, &args),
            AksCommand::Pool(PoolCommand::Add(args)) => pool_add::add(self, ctx, &args),
            AksCommand::Pool(PoolCommand::Delete(args)) => pool_add::delete(self, ctx, &args),
            AksCommand::Start(args) => clusters::power(self, ctx, args.cluster.as_deref(), true),
            AksCommand::Stop(args) => clusters::power(self, ctx, args.cluster.as_deref(), false),
            AksCommand::Nodes(args) => nodes::nodes(self, ctx, &args),
            AksCommand::Gpu(args) => nodes::gpu(self, ctx, args.cluster.as_deref()),
        }
    }

    pub fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        let partial = query.partial.to_ascii_lowercase();
        let cluster = query.options.get("cluster").and_then(Value::as_str);
        let names: Vec<String> = match query.option.as_str() {
            "cluster" => self
                .list_clusters(ctx)?
                .into_iter()
                .map(|c| c.name)
                .collect(),
            "pool" | "name" if query.command.last().is_some_and(|c| c != "add") => {
                let target = self.target(ctx, cluster)?;
                self.list_pools(ctx, &target)?
                    .into_iter()
                    .map(|p| p.name)
                    .collect()
            }
            "vm-size" => pool_add::vm_sizes(self, ctx, cluster),
            _ => Vec::new(),
        };
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| n.to_ascii_lowercase().contains(&partial))
            .collect();
        names.sort_by_key(|n| (!n.to_ascii_lowercase().starts_with(&partial), n.clone()));
        names.dedup();
        Ok(names
            .into_iter()
            .take(25)
            .map(|n| Choice {
                name: n.clone(),
                value: n,
            })
            .collect())
    }

    /// Which cluster: `--cluster`, else `default_cluster`, else the only one there is.
    pub(crate) fn target(&self, ctx: &Ctx, cluster: Option<&str>) -> Result<Target, PluginError> {
        let name = self.clusters.cluster(cluster).map(str::to_owned);
        let kube_for = |name: &str| self.clusters.kube_name(name);
        if let (Some(rg), Some(name)) = (&self.clusters.resource_group, &name) {
            return Ok(Target {
                resource_group: rg.clone(),
                cluster: name.clone(),
                kube: kube_for(name),
            });
        }
        let clusters = self.list_clusters(ctx)?;
        let found = match &name {
            Some(name) => clusters
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| unknown_cluster(name, self.scope(), Ok(clusters.as_slice())))?,
            None => match clusters.as_slice() {
                [only] => only,
                [] => {
                    return Err(PluginError::new(
                        ErrorCode::NotFound,
                        format!("there is no AKS cluster in {}", self.scope()),
                    ));
                }
                many => {
                    return Err(bad_input(
                        "cluster",
                        format!(
                            "{} has several clusters ({}); name one with --cluster or set default_cluster in [plugins.config.aks]",
                            self.scope(),
                            names_of(many.iter().map(|c| c.name.as_str()))
                        ),
                    ));
                }
            },
        };
        let resource_group = found
            .id
            .as_deref()
            .and_then(resource_group_of)
            .or_else(|| self.clusters.resource_group.clone())
            .ok_or_else(|| {
                PluginError::new(
                    ErrorCode::Upstream,
                    format!("cannot tell the resource group of cluster {}", found.name),
                )
            })?;
        Ok(Target {
            resource_group,
            kube: kube_for(&found.name),
            cluster: found.name.clone(),
        })
    }

    /// "resource group pangeo" or "the subscription".
    pub(crate) fn scope(&self) -> String {
        match &self.clusters.resource_group {
            Some(rg) => format!("resource group {rg}"),
            None => "the subscription".into(),
        }
    }

    pub(crate) fn list_clusters(&self, ctx: &Ctx) -> Result<Vec<ManagedCluster>, PluginError> {
        let path = clusters_address(self.clusters.resource_group.as_deref())
            .map_err(address_error)?
            .to_string();
        let body = arm_get(ctx, &path).map_err(|e| cloud_error(e, "listing AKS clusters"))?;
        let list: List<ManagedCluster> = parse(body, "the cluster list")?;
        Ok(list.value)
    }

    pub(crate) fn get_cluster(
        &self,
        ctx: &Ctx,
        target: &Target,
    ) -> Result<ManagedCluster, PluginError> {
        match arm_get(ctx, &target.path()?) {
            Ok(body) => parse(body, "the cluster"),
            Err(e) => Err(self.missing_cluster(ctx, target, e, "reading cluster")),
        }
    }

    pub(crate) fn list_pools(
        &self,
        ctx: &Ctx,
        target: &Target,
    ) -> Result<Vec<AgentPool>, PluginError> {
        match arm_get(ctx, &target.pools_path()?) {
            Ok(body) => Ok(parse::<List<AgentPool>>(body, "the pool list")?.value),
            Err(e) => Err(self.missing_cluster(ctx, target, e, "listing the pools of")),
        }
    }

    /// Why Kubernetes cannot be asked about this cluster now (it is stopped), if so. A stopped
    /// cluster's API server is off; asking it would only wait for a timeout.
    pub(crate) fn kube_unavailable(&self, ctx: &Ctx, target: &Target) -> Option<String> {
        let cluster = self.get_cluster(ctx, target).ok()?;
        let power = cluster.properties.power_state?.code;
        (power == "Stopped").then(|| {
            format!(
                "cluster {} is stopped, so its Kubernetes API is off (/aks start brings it back)",
                target.cluster
            )
        })
    }

    /// One pool; a missing one is named with the pools that do exist.
    pub(crate) fn get_pool(
        &self,
        ctx: &Ctx,
        target: &Target,
        pool: &str,
        option: &str,
    ) -> Result<AgentPool, PluginError> {
        match arm_get(ctx, &target.pool_path(pool)?) {
            Ok(body) => parse(body, "the pool"),
            Err(e) => Err(self.missing_pool(ctx, target, pool, option, e)),
        }
    }

    /// A failed read of pool `pool` in words: a missing pool is named with the pools that do
    /// exist, a missing cluster, resource group or subscription as such; Azure's code and
    /// request id are kept.
    pub(crate) fn missing_pool(
        &self,
        ctx: &Ctx,
        target: &Target,
        pool: &str,
        option: &str,
        error: HostError,
    ) -> PluginError {
        if error::missing(&error) != Some(Missing::Resource) {
            return self.missing_cluster(ctx, target, error, &format!("reading pool {pool} of"));
        }
        let known = match self.list_pools(ctx, target) {
            Ok(pools) => format!(
                "its pools are {} (see /aks pools)",
                names_of(pools.iter().map(|p| p.name.as_str()))
            ),
            Err(e) => format!("its pools could not be listed either ({e})"),
        };
        let mut e = PluginError::from_host(
            error,
            format!(
                "there is no pool {pool:?} in cluster {}; {known}",
                target.cluster
            ),
        )
        .with_option(option);
        e.code = ErrorCode::NotFound;
        e
    }

    /// A failed read of the cluster (or of something in it, `doing` "reading pool p of"): a
    /// 404 says which of cluster, resource group or subscription is missing.
    fn missing_cluster(
        &self,
        ctx: &Ctx,
        target: &Target,
        error: HostError,
        doing: &str,
    ) -> PluginError {
        let cluster = &target.cluster;
        let (code, message) = match error::missing(&error) {
            None => return cloud_error(error, &format!("{doing} {cluster}")),
            Some(Missing::ResourceGroup) => (
                ErrorCode::Config,
                format!(
                    "resource group {} does not exist in the subscription (resource_group in [plugins.config.aks])",
                    target.resource_group
                ),
            ),
            Some(Missing::Subscription) => (
                ErrorCode::Config,
                "the subscription does not exist or this identity cannot see it (subscription_id in [azure])".to_owned(),
            ),
            Some(Missing::Resource | Missing::Parent) => {
                let clusters = self.list_clusters(ctx);
                let unknown = unknown_cluster(cluster, self.scope(), clusters.as_deref());
                (ErrorCode::NotFound, unknown.message)
            }
        };
        let mut e = PluginError::from_host(error, message);
        e.code = code;
        if e.code == ErrorCode::NotFound {
            e.option = Some("cluster".into());
        }
        e
    }
}

/// "there is no AKS cluster …" with the clusters that do exist, or why they could not be
/// listed (a failing list is never "none").
fn unknown_cluster(
    name: &str,
    scope: String,
    clusters: Result<&[ManagedCluster], &PluginError>,
) -> PluginError {
    let known = match clusters {
        Ok([]) => "there are none".to_owned(),
        Ok(clusters) => format!(
            "clusters there: {}",
            names_of(clusters.iter().map(|c| c.name.as_str()))
        ),
        Err(e) => format!("the clusters there could not be listed ({e})"),
    };
    PluginError::new(
        ErrorCode::NotFound,
        format!("there is no AKS cluster {name:?} in {scope}; {known}"),
    )
    .with_option("cluster")
}

/// `a, b, c` (or `none`).
pub(crate) fn names_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `pangeo` from `/subscriptions/…/resourceGroups/pangeo/providers/…`.
fn resource_group_of(id: &str) -> Option<String> {
    let mut parts = id.split('/');
    while let Some(part) = parts.next() {
        if part.eq_ignore_ascii_case("resourceGroups") {
            return parts.next().map(str::to_owned);
        }
    }
    None
}

pub(crate) fn arm_get(ctx: &Ctx, path: &str) -> Result<Value, deckhand_plugin_sdk::HostError> {
    ctx.arm(ArmRequest {
        method: "GET".into(),
        path: path.into(),
        api_version: AKS_API.into(),
        body: None,
        wait: false,
        label: None,
    })
    .map(|r| r.body)
}

/// A long-running ARM call the host follows to its end, streaming progress under `label`.
pub(crate) fn arm_wait(
    ctx: &Ctx,
    method: &str,
    path: &str,
    body: Option<Value>,
    label: String,
) -> Result<ArmResponse, HostError> {
    ctx.arm(ArmRequest {
        method: method.into(),
        path: path.into(),
        api_version: AKS_API.into(),
        body,
        wait: true,
        label: Some(label),
    })
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: Value,
    what: &str,
) -> Result<T, PluginError> {
    serde_json::from_value(body).map_err(|e| {
        PluginError::new(
            ErrorCode::Upstream,
            format!("Azure answered {what} in a shape Deckhand does not understand: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_sdk::Command;

    #[test]
    fn resource_group_from_an_id() {
        assert_eq!(
            resource_group_of(
                "/subscriptions/s/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/c"
            ),
            Some("pangeo".into())
        );
        assert_eq!(resource_group_of("/subscriptions/s"), None);
    }

    #[test]
    fn manifest_marks_only_reductions_stop_and_delete_destructive() {
        let aks = AksCommand::spec();
        let destructive: Vec<String> = aks
            .subcommands
            .iter()
            .flat_map(|c| {
                let mut all = vec![(c.name.clone(), c.destructive)];
                all.extend(
                    c.subcommands
                        .iter()
                        .map(|s| (format!("{} {}", c.name, s.name), s.destructive)),
                );
                all
            })
            .filter(|(_, d)| *d)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(destructive, ["scale-down", "pool delete", "stop"]);
    }
}
