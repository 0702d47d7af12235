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
//! **Why two scale commands.** The router confirms per command (`destructive` in the
//! manifest), but only a *reduction* of capacity deserves a confirmation. `/aks scale` grows a
//! pool at once and refuses to shrink it, naming `/aks scale-down`, which is destructive and so
//! asks for `/confirm` (both need permission `aks.scale`). A person who wants fewer nodes
//! gets the confirmation they expect; growing never waits.
//!
//! Config (`[plugins.config.aks]`, shared with the deploy part, which reads its own keys):
//! `resource_group` (else clusters are found across the subscription), `default_cluster`
//! (else the only cluster), `kube_cluster` (the `[[kubernetes.clusters]]` name used for
//! Kubernetes reads of the default cluster; default: the cluster's name).

mod clusters;
mod error;
mod kube;
mod list;
mod nodes;
mod pool_add;
mod scale;

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{ArmCapability, ArmRequest, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, CommandSpec, Ctx, OptionKind,
    OptionSpec, PluginError, Reply,
};
use deckhand_plugin_shared::azure::{
    AKS_API, AgentPool, List, ManagedCluster, cluster_address, cluster_path, clusters_address,
    pool_path,
};
use deckhand_plugin_shared::names::NameRule;
use deckhand_plugin_shared::target::ClusterDefaults;
use serde_json::Value;

pub(crate) use error::{bad_input, cloud_error};

/// Long-running commands: Azure operations take up to ~15 minutes.
const LONG_SECS: u64 = 1800;
/// Reads: ARM and Kubernetes lists.
const READ_SECS: u64 = 120;

fn cluster_option() -> OptionSpec {
    OptionSpec::new(
        "cluster",
        OptionKind::String,
        "AKS cluster (default: the configured default cluster)",
    )
    .autocomplete()
    .rule(NameRule::AksCluster)
}

fn pool_option(name: &str, description: &str) -> OptionSpec {
    OptionSpec::new(name, OptionKind::String, description)
        .required()
        .autocomplete()
        .rule(NameRule::AgentPool)
}

fn int(name: &str, description: &str) -> OptionSpec {
    OptionSpec::new(name, OptionKind::Integer, description)
}

fn flag(name: &str, description: &str) -> OptionSpec {
    OptionSpec::new(name, OptionKind::Boolean, description)
}

pub fn commands() -> Vec<CommandSpec> {
    let scale = |name: &str, description: &str| {
        CommandSpec::new(name, description)
            .option(pool_option("pool", "Node pool"))
            .option(int("count", "Number of nodes").required())
            .option(cluster_option())
            .permission("aks.scale")
            .timeout_secs(LONG_SECS)
    };
    vec![
        CommandSpec::new("aks", "AKS clusters and node pools")
            .subcommand(
                CommandSpec::new(
                    "clusters",
                    "Clusters: state, Kubernetes version, power state, pools",
                )
                .timeout_secs(READ_SECS),
            )
            .subcommand(
                CommandSpec::new(
                    "pools",
                    "Node pools: size, nodes, autoscaler, mode, priority, GPUs, Ready nodes",
                )
                .option(cluster_option())
                .timeout_secs(READ_SECS),
            )
            .subcommand(scale(
                "scale",
                "Set a pool's node count (growing only; shrinking is /aks scale-down)",
            ))
            .subcommand(
                scale(
                    "scale-down",
                    "Reduce a pool's node count (asks for confirmation)",
                )
                .destructive(),
            )
            .subcommand(
                CommandSpec::new(
                    "autoscale",
                    "Set a pool's autoscaler bounds, or turn it off",
                )
                .option(pool_option("pool", "Node pool"))
                .option(int("min", "Fewest nodes"))
                .option(int("max", "Most nodes"))
                .option(flag("off", "Turn the autoscaler off (keeps the count)"))
                .option(cluster_option())
                .timeout_secs(LONG_SECS),
            )
            .subcommand(
                CommandSpec::new("pool", "Add or delete node pools")
                    .subcommand(
                        CommandSpec::new("add", "Add a node pool")
                            .option(
                                OptionSpec::new(
                                    "name",
                                    OptionKind::String,
                                    "Pool name (1-12 lowercase letters and digits)",
                                )
                                .required()
                                .rule(NameRule::AgentPool),
                            )
                            .option(
                                OptionSpec::new("vm-size", OptionKind::String, "VM size")
                                    .required()
                                    .autocomplete()
                                    .rule(NameRule::VmSize),
                            )
                            .option(int("count", "Number of nodes").default_value(Value::from(1)))
                            .option(flag("spot", "Spot VMs (cheaper, may be evicted)"))
                            .option(int("min", "Autoscaler: fewest nodes"))
                            .option(int("max", "Autoscaler: most nodes"))
                            .option(
                                OptionSpec::new(
                                    "labels",
                                    OptionKind::String,
                                    "Node labels k=v,k2=v2",
                                )
                                .rule(NameRule::Labels),
                            )
                            .option(
                                OptionSpec::new(
                                    "taints",
                                    OptionKind::String,
                                    "Node taints k=v:NoSchedule,...",
                                )
                                .rule(NameRule::Taints),
                            )
                            .option(flag(
                                "gpu",
                                "The pool is for GPU work (its VM size must have GPUs)",
                            ))
                            .option(flag(
                                "no-gpu-taint",
                                "Do not taint GPU nodes with nvidia.com/gpu",
                            ))
                            .option(
                                OptionSpec::choice("mode", &["User", "System"], "Pool mode")
                                    .default_value(Value::from("User")),
                            )
                            .option(cluster_option())
                            .timeout_secs(LONG_SECS),
                    )
                    .subcommand(
                        CommandSpec::new("delete", "Delete a node pool and its nodes")
                            .option(pool_option("name", "Node pool"))
                            .option(cluster_option())
                            .destructive()
                            .timeout_secs(LONG_SECS),
                    ),
            )
            .subcommand(
                CommandSpec::new("start", "Start a stopped cluster")
                    .option(cluster_option())
                    .timeout_secs(LONG_SECS),
            )
            .subcommand(
                CommandSpec::new("stop", "Stop a cluster: all nodes go away until /aks start")
                    .option(cluster_option())
                    .destructive()
                    .timeout_secs(LONG_SECS),
            )
            .subcommand(
                CommandSpec::new(
                    "nodes",
                    "Kubernetes nodes: pool, size, readiness, GPUs, pods",
                )
                .option(cluster_option())
                .option(
                    OptionSpec::new("pool", OptionKind::String, "Only this pool")
                        .autocomplete()
                        .rule(NameRule::AgentPool),
                )
                .timeout_secs(READ_SECS),
            )
            .subcommand(
                CommandSpec::new(
                    "gpu",
                    "GPU capacity against GPU requests, and the NVIDIA device plugin",
                )
                .option(cluster_option())
                .timeout_secs(READ_SECS),
            ),
    ]
}

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

/// The `/aks` part's own config keys.
#[derive(Debug, Clone, Default)]
pub struct AksConfig {
    pub resource_group: Option<String>,
    pub default_cluster: Option<String>,
    pub kube_cluster: Option<String>,
}

impl AksConfig {
    pub fn from_value(config: &Value) -> Result<AksConfig, PluginError> {
        let key = |name: &str| -> Result<Option<String>, PluginError> {
            match config.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
                Some(other) => Err(PluginError::new(
                    ErrorCode::Config,
                    format!("[plugins.config.aks] {name} must be a non-empty string, not {other}"),
                )),
            }
        };
        Ok(AksConfig {
            resource_group: key("resource_group")?,
            default_cluster: key("default_cluster")?,
            kube_cluster: key("kube_cluster")?,
        })
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
    config: AksConfig,
}

impl Pools {
    pub fn from_config(config: &Value) -> Result<Pools, PluginError> {
        Ok(Pools {
            config: AksConfig::from_value(config)?,
        })
    }

    pub fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        let sub = call.subcommand();
        match sub.as_slice() {
            ["clusters"] => clusters::list(self, ctx),
            ["pools"] => list::pools(self, ctx, call),
            ["scale"] => scale::scale(self, ctx, call, false),
            ["scale-down"] => scale::scale(self, ctx, call, true),
            ["autoscale"] => scale::autoscale(self, ctx, call),
            ["pool", "add"] => pool_add::add(self, ctx, call),
            ["pool", "delete"] => pool_add::delete(self, ctx, call),
            ["start"] => clusters::power(self, ctx, call, true),
            ["stop"] => clusters::power(self, ctx, call, false),
            ["nodes"] => nodes::nodes(self, ctx, call),
            ["gpu"] => nodes::gpu(self, ctx, call),
            other => Err(PluginError::new(
                ErrorCode::UnknownCommand,
                format!("/aks {} is not a command of this plugin", other.join(" ")),
            )),
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
        let name = cluster
            .map(str::to_owned)
            .or_else(|| self.config.default_cluster.clone());
        let defaults = ClusterDefaults {
            resource_group: self.config.resource_group.clone(),
            default_cluster: self.config.default_cluster.clone(),
            kube_cluster: self.config.kube_cluster.clone(),
        };
        let kube_for = |name: &str| defaults.kube_name(name);
        if let (Some(rg), Some(name)) = (&self.config.resource_group, &name) {
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
                .ok_or_else(|| unknown_cluster(name, self.scope(), &clusters))?,
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
            .or_else(|| self.config.resource_group.clone())
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
        match &self.config.resource_group {
            Some(rg) => format!("resource group {rg}"),
            None => "the subscription".into(),
        }
    }

    pub(crate) fn list_clusters(&self, ctx: &Ctx) -> Result<Vec<ManagedCluster>, PluginError> {
        let path = clusters_address(self.config.resource_group.as_deref())
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
            Err(e) if e.status == Some(404) => {
                let clusters = self.list_clusters(ctx).unwrap_or_default();
                Err(unknown_cluster(&target.cluster, self.scope(), &clusters))
            }
            Err(e) => Err(cloud_error(
                e,
                &format!("reading cluster {}", target.cluster),
            )),
        }
    }

    pub(crate) fn list_pools(
        &self,
        ctx: &Ctx,
        target: &Target,
    ) -> Result<Vec<AgentPool>, PluginError> {
        match arm_get(ctx, &target.pools_path()?) {
            Ok(body) => Ok(parse::<List<AgentPool>>(body, "the pool list")?.value),
            Err(e) if e.status == Some(404) => {
                let clusters = self.list_clusters(ctx).unwrap_or_default();
                Err(unknown_cluster(&target.cluster, self.scope(), &clusters))
            }
            Err(e) => Err(cloud_error(
                e,
                &format!("listing the pools of {}", target.cluster),
            )),
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
            Err(e) if e.status == Some(404) => {
                let pools = self.list_pools(ctx, target)?;
                Err(PluginError::new(
                    ErrorCode::NotFound,
                    format!(
                        "there is no pool {pool:?} in cluster {}; its pools are {} (see /aks pools)",
                        target.cluster,
                        names_of(pools.iter().map(|p| p.name.as_str()))
                    ),
                )
                .with_option(option))
            }
            Err(e) => Err(cloud_error(
                e,
                &format!("reading pool {pool} of {}", target.cluster),
            )),
        }
    }
}

fn unknown_cluster(name: &str, scope: String, clusters: &[ManagedCluster]) -> PluginError {
    let known = if clusters.is_empty() {
        "there are none".to_owned()
    } else {
        format!(
            "clusters there: {}",
            names_of(clusters.iter().map(|c| c.name.as_str()))
        )
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
) -> Result<Value, deckhand_plugin_sdk::HostError> {
    ctx.arm(ArmRequest {
        method: method.into(),
        path: path.into(),
        api_version: AKS_API.into(),
        body,
        wait: true,
        label: Some(label),
    })
    .map(|r| r.body)
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
    fn config_keys_are_optional_strings() {
        let config = AksConfig::from_value(&serde_json::json!({
            "resource_group": "pangeo", "default_cluster": "c", "apps": {}
        }))
        .unwrap();
        assert_eq!(config.resource_group.as_deref(), Some("pangeo"));
        assert_eq!(config.kube_cluster, None);
        let err = AksConfig::from_value(&serde_json::json!({"default_cluster": 3})).unwrap_err();
        assert!(err.message.contains("default_cluster"), "{}", err.message);
    }

    #[test]
    fn manifest_marks_only_reductions_stop_and_delete_destructive() {
        let aks = &commands()[0];
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
