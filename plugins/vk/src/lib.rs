//! The `vk` plugin: AKS virtual nodes (Virtual Kubelet on Azure Container Instances, seed 000).
//!
//! * `/vk status [--cluster C]` — is the virtual node Ready, its capacity, and the ACI container
//!   groups behind its pods with state and restarts;
//! * `/vk enable|disable --cluster C` — the managed cluster's `aciConnectorLinux` addon, by a
//!   read-modify-write PUT of the cluster (disable is destructive: the pods there stop);
//! * `/vk logs POD` — through ACI's container logs for pods on the virtual node (`kubectl logs`
//!   "works funny" there, says the seed), through Kubernetes for the others.
//!
//! No I/O of its own: ARM and Kubernetes through the host's services.

mod commands;

use commands::{Logs, VkCommand};
use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{ArmCapability, ArmRequest, KubeCapability, KubeRequest};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, Command, Ctx, Host, Manifest, Plugin,
    PluginError, Reply,
};
use deckhand_plugin_shared::azure::{
    ACI_API, AKS_API, ArmPath, ArmPathError, ManagedCluster, cluster_path, clusters_address,
};
use deckhand_plugin_shared::placement::VIRTUAL_NODE_LABEL;
use deckhand_plugin_shared::target::ClusterDefaults;
use serde_json::{Value, json};

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

/// A name (from config or from Azure) that cannot be part of an Azure address.
fn address_error(error: ArmPathError) -> PluginError {
    PluginError::new(ErrorCode::BadInput, error.to_string())
}

/// `/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups`.
fn container_groups_address(node_rg: &str) -> Result<ArmPath, PluginError> {
    ArmPath::resource_group(node_rg)
        .and_then(|p| p.provider("Microsoft.ContainerInstance"))
        .and_then(|p| p.collection("containerGroups"))
        .map_err(address_error)
}

fn container_group_address(node_rg: &str, name: &str) -> Result<ArmPath, PluginError> {
    ArmPath::resource_group(node_rg)
        .and_then(|p| p.provider("Microsoft.ContainerInstance"))
        .and_then(|p| p.resource("containerGroups", name))
        .map_err(address_error)
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
            VkCommand::Disable(args) => self.set_enabled(ctx, args.cluster.as_deref(), None, false),
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
                Ok(list.body["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str())
                    .filter(|n| n.starts_with(&query.partial))
                    .map(|n| choice(n.to_owned()))
                    .collect())
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

fn kube_request(cluster: &str, verb: &str, kind: &str) -> KubeRequest {
    KubeRequest {
        cluster: cluster.into(),
        verb: verb.into(),
        api_version: "v1".into(),
        kind: kind.into(),
        ..Default::default()
    }
}

fn virtual_nodes(ctx: &Ctx, kube: &str) -> Result<Vec<Value>, PluginError> {
    let mut request = kube_request(kube, "list", "Node");
    request.label_selector = Some(format!("{}={}", VIRTUAL_NODE_LABEL.0, VIRTUAL_NODE_LABEL.1));
    Ok(ctx.kube(request)?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn pods_on(ctx: &Ctx, kube: &str, node: &str) -> Result<Vec<Value>, PluginError> {
    let mut request = kube_request(kube, "list", "Pod");
    request.field_selector = Some(format!("spec.nodeName={node}"));
    Ok(ctx.kube(request)?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The addon's profile, whatever the case of its key.
fn addon(cluster: &ManagedCluster) -> Option<(&String, &Value)> {
    cluster
        .properties
        .addon_profiles
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(ADDON))
}

fn addon_enabled(cluster: &ManagedCluster) -> bool {
    addon(cluster).is_some_and(|(_, v)| v["enabled"] == json!(true))
}

fn ready(node: &Value) -> (bool, String) {
    let condition = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match condition {
        Some(c) if c["status"] == "True" => (true, "Ready".into()),
        Some(c) => (
            false,
            format!(
                "NOT Ready ({}: {})",
                c["reason"].as_str().unwrap_or("unknown"),
                c["message"].as_str().unwrap_or("")
            ),
        ),
        None => (false, "NOT Ready (no Ready condition reported)".into()),
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
            .map_err(|e| {
                if e.status == Some(404) {
                    bad_input(
                        "cluster",
                        format!("there is no AKS cluster {cluster} in resource group {rg}"),
                    )
                } else {
                    e.into()
                }
            })?;
        let typed: ManagedCluster = serde_json::from_value(response.body.clone()).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("cluster {cluster} has an unexpected shape: {e}"),
            )
        })?;
        Ok((response.body, typed))
    }

    fn status(&self, ctx: &Ctx, cluster: Option<&str>) -> Result<Reply, PluginError> {
        let cluster = self.cluster(cluster)?;
        let (_, mc) = self.get_cluster(ctx, &cluster)?;
        if !addon_enabled(&mc) {
            return Ok(Reply::text(format!(
                "Virtual nodes are off on {cluster} (addon {ADDON} not enabled): `/vk enable --cluster {cluster}` turns them on."
            )));
        }
        let kube = self.kube_name(&cluster);
        let nodes = virtual_nodes(ctx, &kube)?;
        let mut lines = Vec::new();
        if nodes.is_empty() {
            lines.push(format!(
                "Virtual nodes are on for {cluster}, but no virtual node is registered in Kubernetes yet (it can take a few minutes after enabling; if it stays away, `/vk disable` and `/vk enable` again)."
            ));
            return Ok(Reply::text(lines.join("\n")));
        }
        let node_rg = mc
            .properties
            .extra
            .get("nodeResourceGroup")
            .and_then(Value::as_str);
        let groups = match node_rg {
            Some(rg) => self.container_groups(ctx, rg, &cluster)?,
            None => Vec::new(),
        };
        for node in &nodes {
            let name = node["metadata"]["name"].as_str().unwrap_or_default();
            let (_, state) = ready(node);
            let capacity = &node["status"]["capacity"];
            let allocatable = &node["status"]["allocatable"];
            let q = |v: &Value| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            };
            lines.push(format!(
                "Virtual node {name} on {cluster}: {state}. Capacity cpu {}, memory {}, pods {} (allocatable cpu {}, memory {}, pods {}).",
                q(&capacity["cpu"]),
                q(&capacity["memory"]),
                q(&capacity["pods"]),
                q(&allocatable["cpu"]),
                q(&allocatable["memory"]),
                q(&allocatable["pods"]),
            ));
            let pods = pods_on(ctx, &kube, name)?;
            if pods.is_empty() {
                lines.push("No pods run on it.".into());
                continue;
            }
            lines.push(format!("{} pod(s) on it:", pods.len()));
            for pod in &pods {
                let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
                let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                let phase = pod["status"]["phase"].as_str().unwrap_or("?");
                let group = groups
                    .iter()
                    .find(|g| g["tags"]["PodName"] == pod_name && g["tags"]["Namespace"] == ns);
                let aci = match group {
                    Some(g) => describe_group(g),
                    None => "no ACI container group yet".into(),
                };
                lines.push(format!("• {ns}/{pod_name} ({phase}) → {aci}"));
            }
        }
        Ok(Reply::text(lines.join("\n")))
    }

    /// Container groups of this cluster's virtual node, with instance views (GET each).
    fn container_groups(
        &self,
        ctx: &Ctx,
        node_rg: &str,
        cluster: &str,
    ) -> Result<Vec<Value>, PluginError> {
        let groups_address = container_groups_address(node_rg)?;
        let list = match ctx.arm(ArmRequest {
            method: "GET".into(),
            path: groups_address.to_string(),
            api_version: ACI_API.into(),
            ..Default::default()
        }) {
            Ok(list) => list,
            // No container group was ever made: the node resource group may not hold any.
            Err(e) if e.status == Some(404) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut groups = Vec::new();
        for g in list.body["value"].as_array().into_iter().flatten() {
            let ours = g["tags"]["ClusterName"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case(cluster));
            let Some(name) = g["name"].as_str().filter(|_| ours) else {
                continue;
            };
            let full = ctx.arm(ArmRequest {
                method: "GET".into(),
                path: container_group_address(node_rg, name)?.to_string(),
                api_version: ACI_API.into(),
                ..Default::default()
            })?;
            groups.push(full.body);
        }
        Ok(groups)
    }

    fn set_enabled(
        &self,
        ctx: &Ctx,
        cluster: Option<&str>,
        subnet: Option<&str>,
        enable: bool,
    ) -> Result<Reply, PluginError> {
        let cluster = self.cluster(cluster)?;
        let rg = self.resource_group()?.to_owned();
        let (raw, mc) = self.get_cluster(ctx, &cluster)?;
        if addon_enabled(&mc) == enable {
            return Ok(Reply::text(format!(
                "Virtual nodes are already {} on {cluster}; nothing to do.",
                if enable { "on" } else { "off" }
            )));
        }
        let kube = self.kube_name(&cluster);
        let stopping = if enable {
            Vec::new()
        } else {
            let mut pods = Vec::new();
            for node in virtual_nodes(ctx, &kube).unwrap_or_default() {
                let name = node["metadata"]["name"].as_str().unwrap_or_default();
                for pod in pods_on(ctx, &kube, name).unwrap_or_default() {
                    pods.push(format!(
                        "{}/{}",
                        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                        pod["metadata"]["name"].as_str().unwrap_or_default()
                    ));
                }
            }
            pods
        };
        // Read-modify-write of the whole resource: everything Azure sent goes back unchanged
        // but the one addon.
        let mut body = raw;
        let key = addon(&mc)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| ADDON.into());
        let mut profile = body["properties"]["addonProfiles"][&key].clone();
        if !profile.is_object() {
            profile = json!({});
        }
        profile["enabled"] = json!(enable);
        if enable {
            let given = subnet;
            let subnet = given.unwrap_or(&self.subnet);
            if given.is_some() || profile["config"]["SubnetName"].is_null() {
                profile["config"]["SubnetName"] = json!(subnet);
            }
        }
        body["properties"]["addonProfiles"][&key] = profile;
        let verb = if enable { "Enabling" } else { "Disabling" };
        ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: cluster_path(&rg, &cluster).map_err(address_error)?,
            api_version: AKS_API.into(),
            body: Some(body),
            wait: true,
            label: Some(format!("{verb} virtual nodes on {cluster}")),
        })?;
        if enable {
            let nodes = virtual_nodes(ctx, &kube)?;
            let node = match nodes.first() {
                Some(n) => format!(
                    "node {} is {}",
                    n["metadata"]["name"].as_str().unwrap_or_default(),
                    ready(n).1
                ),
                None => {
                    "the virtual node has not registered yet; `/vk status` in a few minutes".into()
                }
            };
            Ok(Reply::text(format!(
                "Virtual nodes are on for {cluster} ({ADDON} enabled): {node}. `/deploy APP INSTANCE --virtual` places workloads there."
            )))
        } else {
            let pods = if stopping.is_empty() {
                "no pods were running there".to_owned()
            } else {
                format!(
                    "{} pod(s) that ran there stopped ({}); their Deployments will try to place them on regular nodes",
                    stopping.len(),
                    stopping.join(", ")
                )
            };
            Ok(Reply::text(format!(
                "Virtual nodes are off for {cluster} ({ADDON} disabled): {pods}."
            )))
        }
    }

    fn logs(&self, ctx: &Ctx, args: &Logs) -> Result<Reply, PluginError> {
        let cluster = self.cluster(args.cluster.as_deref())?;
        let kube = self.kube_name(&cluster);
        let pod_name = args.pod.as_str();
        let tail = args.tail;
        if tail < 1 {
            return Err(bad_input(
                "tail",
                format!("--tail {tail}: give at least one line"),
            ));
        }
        let mut request = kube_request(&kube, "list", "Pod");
        request.namespace = args.namespace.clone();
        request.field_selector = Some(format!("metadata.name={pod_name}"));
        let pods = ctx.kube(request)?.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let pod = match pods.as_slice() {
            [] => {
                return Err(bad_input(
                    "pod",
                    format!(
                        "no pod {pod_name} on {cluster}{}",
                        args.namespace
                            .as_deref()
                            .map(|n| format!(" in namespace {n}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            [pod] => pod,
            many => {
                let namespaces: Vec<&str> = many
                    .iter()
                    .filter_map(|p| p["metadata"]["namespace"].as_str())
                    .collect();
                return Err(bad_input(
                    "namespace",
                    format!(
                        "pod {pod_name} exists in several namespaces ({}): pass --namespace",
                        namespaces.join(", ")
                    ),
                ));
            }
        };
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let containers: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match args.container.as_deref() {
            Some(c) if containers.contains(&c) => c.to_owned(),
            Some(c) => {
                return Err(bad_input(
                    "container",
                    format!(
                        "pod {pod_name} has no container {c} (it has: {})",
                        containers.join(", ")
                    ),
                ));
            }
            None => containers
                .first()
                .map(|c| (*c).to_owned())
                .unwrap_or_default(),
        };
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let on_virtual = virtual_nodes(ctx, &kube)?
            .iter()
            .any(|n| n["metadata"]["name"] == node);
        let (source, text) = if on_virtual {
            let (_, mc) = self.get_cluster(ctx, &cluster)?;
            let node_rg = mc
                .properties
                .extra
                .get("nodeResourceGroup")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    PluginError::new(
                        ErrorCode::Protocol,
                        format!("cluster {cluster} reports no nodeResourceGroup"),
                    )
                })?
                .to_owned();
            let groups = self.container_groups(ctx, &node_rg, &cluster)?;
            let group = groups
                .iter()
                .find(|g| g["tags"]["PodName"] == pod_name && g["tags"]["Namespace"] == ns.as_str())
                .ok_or_else(|| {
                    PluginError::new(
                        ErrorCode::NotFound,
                        format!("pod {ns}/{pod_name} is on the virtual node but has no ACI container group yet (see `/vk status`)"),
                    )
                })?;
            let group_name = group["name"].as_str().unwrap_or_default();
            let logs = ctx.arm(ArmRequest {
                method: "GET".into(),
                path: container_group_address(&node_rg, group_name)?
                    .resource("containers", &container)
                    .and_then(|p| p.collection("logs"))
                    .map_err(address_error)?
                    .to_string(),
                api_version: ACI_API.into(),
                ..Default::default()
            })?;
            (
                format!("ACI container group {group_name}"),
                logs.body["content"].as_str().unwrap_or_default().to_owned(),
            )
        } else {
            let mut request = kube_request(&kube, "logs", "Pod");
            request.namespace = Some(ns.clone());
            request.name = Some(pod_name.into());
            request.container = Some(container.clone());
            request.tail_lines = Some(tail);
            let body = ctx.kube(request)?.body;
            (
                format!("node {node}"),
                body.as_str().unwrap_or_default().to_owned(),
            )
        };
        let lines: Vec<&str> = text.lines().collect();
        let shown = &lines[lines.len().saturating_sub(tail as usize)..];
        Ok(Reply::text(format!(
            "Last {} line(s) of {ns}/{pod_name} container {container} ({source}):\n```\n{}\n```",
            shown.len(),
            shown.join("\n")
        )))
    }
}

/// `ACI group G: Running, restarts 2 (container c: CrashLoopBackOff ...)`.
fn describe_group(group: &Value) -> String {
    let name = group["name"].as_str().unwrap_or_default();
    let state = group["properties"]["instanceView"]["state"]
        .as_str()
        .or_else(|| group["properties"]["provisioningState"].as_str())
        .unwrap_or("unknown");
    let mut restarts = 0;
    let mut details = Vec::new();
    for c in group["properties"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let view = &c["properties"]["instanceView"];
        restarts += view["restartCount"].as_i64().unwrap_or(0);
        let current = view["currentState"]["state"].as_str().unwrap_or_default();
        let detail = view["currentState"]["detailStatus"]
            .as_str()
            .unwrap_or_default();
        if current != "Running" && !current.is_empty() {
            details.push(format!(
                "container {}: {current}{}",
                c["name"].as_str().unwrap_or_default(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ));
        }
    }
    let mut text = format!("ACI group {name}: {state}, restarts {restarts}");
    if !details.is_empty() {
        text.push_str(&format!("; {}", details.join("; ")));
    }
    text
}

deckhand_plugin_sdk::export_plugin!(Vk);

#[cfg(test)]
mod harness_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_description_sums_restarts_and_names_trouble() {
        let g = json!({"name": "default-p", "properties": {"instanceView": {"state": "Running"},
        "containers": [
            {"name": "a", "properties": {"instanceView": {"restartCount": 2, "currentState": {"state": "Waiting", "detailStatus": "CrashLoopBackOff"}}}},
            {"name": "b", "properties": {"instanceView": {"restartCount": 1, "currentState": {"state": "Running"}}}}
        ]}});
        assert_eq!(
            describe_group(&g),
            "ACI group default-p: Running, restarts 3; container a: Waiting (CrashLoopBackOff)"
        );
    }
}
