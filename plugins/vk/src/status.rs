//! `/vk status`: the virtual node's readiness and capacity, and the ACI container groups of its
//! pods.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::ACI_API;
use serde_json::Value;

use crate::addon::addon_enabled;
use crate::addresses::{container_group_address, container_groups_address};
use crate::kube::{pods_on, ready, virtual_nodes};
use crate::{ADDON, Vk};

impl Vk {
    pub(crate) fn status(&self, ctx: &Ctx, cluster: Option<&str>) -> Result<Reply, PluginError> {
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
    pub(crate) fn container_groups(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
