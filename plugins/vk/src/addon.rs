//! `/vk enable|disable`: the managed cluster's `aciConnectorLinux` addon, by a read-modify-write
//! PUT of the cluster.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::{AKS_API, ManagedCluster, cluster_path};
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
}
