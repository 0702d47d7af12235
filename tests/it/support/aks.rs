//! The real `aks` plugin (`libdeckhand_plugin_aks`) loaded into a bot wired to a seeded cloud
//! sandbox, with `[plugins.config.aks]` pointing at the seeded cluster, plus direct reads of the
//! sandbox's ARM and Kubernetes state for assertions.

use std::time::Duration;

use deckhand_sandbox::SandboxOptions;
use serde_json::Value;

use crate::cloud::CloudBot;
use crate::product_plugin_library;

/// `[plugins.config.aks]` for the seeded estate.
pub fn aks_config(resource_group: &str, cluster: &str) -> String {
    format!(
        r#"
[plugins.config.aks]
resource_group = "{resource_group}"
default_cluster = "{cluster}"
kube_cluster = "{cluster}"
"#
    )
}

/// A seeded sandbox and a bot running the real `aks` plugin on it. `extra` is appended to the
/// config after the `[plugins.config.aks]` section (so it may add keys to it).
pub async fn start_aks(lro_delay: Duration, extra: &str) -> CloudBot {
    start_aks_with(
        SandboxOptions {
            lro_delay,
            ..SandboxOptions::default()
        },
        extra,
    )
    .await
}

pub async fn start_aks_with(options: SandboxOptions, extra: &str) -> CloudBot {
    let cloud = CloudBot::start_with(options, &[product_plugin_library("aks")], |estate| {
        format!(
            "{}{extra}",
            aks_config(&estate.resource_group, &estate.cluster)
        )
    })
    .await;
    assert!(
        cloud.bot.app.load_errors.is_empty(),
        "plugin load errors: {:?}",
        cloud.bot.app.load_errors
    );
    cloud
}

/// GET on the sandbox's ARM (below the subscription), as Azure answers it.
pub async fn arm_get(cloud: &CloudBot, path: &str) -> Value {
    let url = format!(
        "{}/subscriptions/{}{path}?api-version=2026-08-01",
        cloud.sandbox.base_url(),
        cloud.sandbox.subscription_id()
    );
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(cloud.sandbox.issue_token())
        .send()
        .await
        .expect("sandbox answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == 404 {
        return Value::Null;
    }
    assert!(status < 300, "GET {path}: {status} {body}");
    body
}

/// One agent pool's ARM resource (`null` when absent).
pub async fn arm_pool(cloud: &CloudBot, pool: &str) -> Value {
    arm_get(
        cloud,
        &format!("{}/agentPools/{pool}", cloud.cluster_path()),
    )
    .await
}

/// Kubernetes objects of the seeded cluster, as JSON: `nodes`, `pods` or `daemonsets` (all
/// namespaces).
pub async fn kube_list(cloud: &CloudBot, kind: &str) -> Vec<Value> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::Api;
    let client = cloud
        .bot
        .app
        .host
        .services()
        .cloud()
        .kube
        .client(&cloud.estate.cluster)
        .await
        .expect("kube client");
    let params = Default::default();
    let items: Vec<Value> = match kind {
        "nodes" => Api::<Node>::all(client)
            .list(&params)
            .await
            .expect("list nodes")
            .items
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect(),
        "pods" => Api::<Pod>::all(client)
            .list(&params)
            .await
            .expect("list pods")
            .items
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect(),
        "daemonsets" => Api::<DaemonSet>::all(client)
            .list(&params)
            .await
            .expect("list daemonsets")
            .items
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect(),
        other => panic!("kube_list: unsupported kind {other}"),
    };
    items
}

/// Names of the nodes of one pool, and how many of them are Ready.
pub async fn pool_nodes(cloud: &CloudBot, pool: &str) -> (Vec<String>, usize) {
    let nodes = kube_list(cloud, "nodes").await;
    let mine: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == pool)
        .collect();
    let ready = mine
        .iter()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count();
    let names = mine
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    (names, ready)
}

/// Waits (bounded) until the sandbox has no operation running, so a test reads settled state.
pub async fn settle(cloud: &CloudBot) {
    tokio::time::timeout(Duration::from_secs(10), cloud.sandbox.settle())
        .await
        .expect("sandbox settles");
}
