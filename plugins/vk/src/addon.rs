//! `/vk enable|disable`: the managed cluster's `aciConnectorLinux` addon, by a read-modify-write
//! PUT of the cluster.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use deckhand_plugin_shared::azure::{AKS_API, ManagedCluster, cluster_path};
use deckhand_plugin_shared::writable::writable_cluster;
use serde_json::{Value, json};

use crate::addresses::address_error;
use crate::kube::{pods_on, ready, virtual_nodes};
use crate::{ADDON, Vk};

/// The addon's profile, whatever the case of its key.
pub(crate) fn addon(cluster: &ManagedCluster) -> Option<(&String, &Value)> {
    cluster
        .properties
        .addon_profiles
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(ADDON))
}

pub(crate) fn addon_enabled(cluster: &ManagedCluster) -> bool {
    addon(cluster).is_some_and(|(_, v)| v["enabled"] == json!(true))
}

/// Provisioning states in which a PUT would race an operation already running.
const BUSY_STATES: &[&str] = &[
    "Creating",
    "Updating",
    "Deleting",
    "Scaling",
    "Starting",
    "Stopping",
    "Upgrading",
    "Migrating",
    "Canceling",
];

/// Why the addon cannot be turned on now, with what to do; `None` when it can.
pub(crate) fn cannot_enable(cluster: &str, mc: &ManagedCluster, raw: &Value) -> Option<String> {
    if let Some(state) = mc.properties.provisioning_state.as_deref()
        && BUSY_STATES.iter().any(|b| b.eq_ignore_ascii_case(state))
    {
        return Some(format!(
            "cluster {cluster} is {state}: wait until it is Succeeded (`/vk status --cluster {cluster}`), then enable virtual nodes"
        ));
    }
    let network = &raw["properties"]["networkProfile"];
    let plugin = network["networkPlugin"].as_str().unwrap_or("kubenet");
    if !plugin.eq_ignore_ascii_case("azure") {
        return Some(format!(
            "cluster {cluster} uses {plugin} networking, and virtual nodes need Azure CNI (networkPlugin azure, not overlay): create the cluster with `--network-plugin azure` to use them"
        ));
    }
    if network["networkPluginMode"]
        .as_str()
        .is_some_and(|m| m.eq_ignore_ascii_case("overlay"))
    {
        return Some(format!(
            "cluster {cluster} uses Azure CNI overlay, and virtual nodes need Azure CNI without overlay: create the cluster without `--network-plugin-mode overlay` to use them"
        ));
    }
    None
}

/// The names of the pods on the virtual nodes (what disabling stops), as `namespace/name`.
fn pods_on_virtual_nodes(ctx: &Ctx, kube: &str) -> Vec<String> {
    let mut pods = Vec::new();
    for node in virtual_nodes(ctx, kube).unwrap_or_default() {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        for pod in pods_on(ctx, kube, name).unwrap_or_default() {
            pods.push(format!(
                "{}/{}",
                pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                pod["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    pods
}

/// The addon profile to send: enabled or not, with the ACI subnet when enabling.
fn addon_profile(current: &Value, enable: bool, subnet: Option<&str>, default: &str) -> Value {
    let mut profile = if current.is_object() {
        current.clone()
    } else {
        json!({})
    };
    profile["enabled"] = json!(enable);
    if enable && (subnet.is_some() || profile["config"]["SubnetName"].is_null()) {
        profile["config"]["SubnetName"] = json!(subnet.unwrap_or(default));
    }
    profile
}

impl Vk {
    pub(crate) fn set_enabled(
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
        if enable && let Some(reason) = cannot_enable(&cluster, &mc, &raw) {
            return Err(PluginError::new(ErrorCode::Precondition, reason));
        }
        let kube = self.kube_name(&cluster);
        let stopping = if enable {
            Vec::new()
        } else {
            pods_on_virtual_nodes(ctx, &kube)
        };
        // Read-modify-write of the whole resource: what the client may write goes back
        // unchanged but the one addon; read-only properties stay with Azure.
        let mut body = writable_cluster(&raw);
        let key = addon(&mc)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| ADDON.into());
        body["properties"]["addonProfiles"][&key] = addon_profile(
            &body["properties"]["addonProfiles"][&key],
            enable,
            subnet,
            &self.subnet,
        );
        let verb = if enable { "Enabling" } else { "Disabling" };
        let after = ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: cluster_path(&rg, &cluster).map_err(address_error)?,
            api_version: AKS_API.into(),
            body: Some(body),
            wait: true,
            label: Some(format!("{verb} virtual nodes on {cluster}")),
        })?;
        // The reply says what Azure reports after the change, not what was asked.
        let now_on = after.body["properties"]["addonProfiles"]
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(ADDON)))
            .is_some_and(|(_, v)| v["enabled"] == json!(true));
        if now_on != enable {
            return Ok(Reply::text(format!(
                "Azure accepted the change, but cluster {cluster} reads back with {ADDON} {}: virtual nodes are still {}. `/vk status --cluster {cluster}` shows the current state.",
                if now_on { "enabled" } else { "disabled" },
                if now_on { "on" } else { "off" }
            )));
        }
        if enable {
            // The change is done; a Kubernetes read that fails now is a note, not a failure.
            let node = match virtual_nodes(ctx, &kube) {
                Ok(nodes) => match nodes.first() {
                    Some(n) => format!(
                        "node {} is {}",
                        n["metadata"]["name"].as_str().unwrap_or_default(),
                        ready(n).1
                    ),
                    None => {
                        "the virtual node has not registered yet; `/vk status` in a few minutes"
                            .into()
                    }
                },
                Err(e) => format!(
                    "the virtual node could not be read from Kubernetes ({}); `/vk status` shows it",
                    e.message
                ),
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
}
