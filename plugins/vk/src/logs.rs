//! `/vk logs POD`: through ACI's container logs for pods on the virtual node (`kubectl logs`
//! "works funny" there, says the seed), through Kubernetes for the others.

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::ACI_API;
use serde_json::Value;

use crate::addresses::{address_error, container_group_address};
use crate::commands::Logs;
use crate::kube::{kube_request, virtual_nodes};
use crate::{Vk, bad_input};

impl Vk {
    pub(crate) fn logs(&self, ctx: &Ctx, args: &Logs) -> Result<Reply, PluginError> {
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
