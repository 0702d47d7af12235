//! The host's Kubernetes service against the cloud sandbox's per-cluster API server, with the
//! client built from the AKS cluster's `listClusterUserCredential` (as in production).

use std::time::Duration;

use deckhand::router::ResponseKind;
use deckhand_it::cloud::CloudBot;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, WatchEvent, WatchParams};
use serde_json::{Value, json};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_reads_nodes_and_applies_idempotently_with_one_field_manager() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_millis(100), "").await;
    let cluster = &cloud.estate.cluster;
    let nodes = cloud
        .bot
        .say(&format!("/kube list Node --cluster {cluster}"))
        .await;
    assert_eq!(nodes.kind, ResponseKind::Ok, "{}", nodes.text);
    let nodes = json_of(&nodes.text);
    let items = nodes["body"]["items"].as_array().unwrap();
    assert!(!items.is_empty());
    // Every node but the virtual one belongs to an agent pool.
    let (virtual_nodes, pool_nodes): (Vec<&Value>, Vec<&Value>) = items
        .iter()
        .partition(|n| n["metadata"]["labels"]["type"] == "virtual-kubelet");
    assert_eq!(
        virtual_nodes.len(),
        1,
        "virtual nodes are enabled in the seeded estate"
    );
    assert!(
        pool_nodes
            .iter()
            .all(|n| n["metadata"]["labels"]["kubernetes.azure.com/agentpool"].is_string())
    );

    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "studioml-env", "namespace": "default"},
        "data": {"AMQP_URL": "amqp://rabbitmq:5672/"}
    });
    let apply = format!(
        "/kube apply ConfigMap --cluster {cluster} --namespace default --name studioml-env --body '{body}'"
    );
    let first = json_of(&cloud.bot.say(&apply).await.text);
    let version = first["body"]["metadata"]["resourceVersion"].clone();
    let managers: Vec<&str> = first["body"]["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["manager"].as_str())
        .collect();
    assert_eq!(managers, ["deckhand"]);
    let second = json_of(&cloud.bot.say(&apply).await.text);
    assert_eq!(
        second["body"]["metadata"]["resourceVersion"], version,
        "a second apply changes nothing"
    );
    let read = json_of(
        &cloud
            .bot
            .say(&format!(
                "/kube get ConfigMap --cluster {cluster} --namespace default --name studioml-env"
            ))
            .await
            .text,
    );
    assert_eq!(read["body"]["data"]["AMQP_URL"], "amqp://rabbitmq:5672/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_errors_and_capabilities() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_millis(100), "").await;
    let cluster = &cloud.estate.cluster;
    let missing = cloud
        .bot
        .say(&format!(
            "/kube get ConfigMap --cluster {cluster} --namespace default --name nope"
        ))
        .await;
    assert_eq!(missing.kind, ResponseKind::Error);
    assert!(
        missing.text.contains("\"code\":\"not_found\""),
        "{}",
        missing.text
    );
    assert!(missing.text.contains("NotFound"), "{}", missing.text);
    let unknown = cloud.bot.say("/kube list Node --cluster elsewhere").await;
    assert!(
        unknown.text.contains(&format!(
            "no cluster named elsewhere is configured (configured: {cluster})"
        )),
        "{}",
        unknown.text
    );
    let secrets = cloud
        .bot
        .say(&format!(
            "/kube list Secret --cluster {cluster} --namespace default"
        ))
        .await;
    assert!(
        secrets
            .text
            .contains("not allowed to list Kubernetes secrets"),
        "{}",
        secrets.text
    );
    let refused = cloud
        .bot
        .app
        .db
        .refused_service_calls("cloudprobe")
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].service, "kube");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_from_aks_credential_watches_a_node_appear_after_a_pool_scale() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_millis(100), "").await;
    let cluster = cloud.estate.cluster.clone();
    let client = cloud
        .bot
        .app
        .host
        .services()
        .cloud()
        .kube
        .client(&cluster)
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client);
    let before = nodes.list(&Default::default()).await.unwrap();
    let gpu_nodes = before
        .items
        .iter()
        .filter(|n| {
            n.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("agentpool"))
                .is_some_and(|p| p == "gpu")
        })
        .count();
    let version = before.metadata.resource_version.clone().unwrap();
    let mut stream = nodes
        .watch(&WatchParams::default().timeout(20), &version)
        .await
        .unwrap()
        .boxed();

    // Scale the GPU pool up by one through the plugin and ARM.
    let pool_path = format!("{}/agentPools/gpu", cloud.cluster_path());
    let pool = json_of(
        &cloud
            .bot
            .say(&format!("/arm GET {pool_path} --api 2026-08-01"))
            .await
            .text,
    );
    let mut body = pool["body"].clone();
    body["properties"]["count"] = json!(gpu_nodes + 1);
    let scaled = cloud
        .bot
        .say(&format!(
            "/arm PUT {pool_path} --api 2026-08-01 --body '{body}'"
        ))
        .await;
    assert_eq!(scaled.kind, ResponseKind::Ok, "{}", scaled.text);

    let added = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.next().await {
            if let WatchEvent::Added(node) = event.unwrap() {
                return node;
            }
        }
        panic!("watch ended without an ADDED node");
    })
    .await
    .expect("a node appears within 10 s");
    let labels = added.metadata.labels.unwrap();
    assert_eq!(labels["agentpool"], "gpu");
    let capacity = added.status.unwrap().capacity.unwrap();
    assert!(
        capacity.contains_key("nvidia.com/gpu"),
        "GPU nodes advertise nvidia.com/gpu"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_cluster_is_reported_quickly_not_after_the_command_time_limit() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_millis(100), "").await;
    let cluster = &cloud.estate.cluster;
    // Build the client while the cluster runs, then stop it: its API server answers 503.
    let warm = cloud
        .bot
        .say(&format!("/kube list Node --cluster {cluster}"))
        .await;
    assert_eq!(warm.kind, ResponseKind::Ok, "{}", warm.text);
    let stop = cloud
        .bot
        .say(&format!(
            "/arm POST {}/stop --api 2026-08-01",
            cloud.cluster_path()
        ))
        .await;
    assert_eq!(stop.kind, ResponseKind::Ok, "{}", stop.text);
    let started = std::time::Instant::now();
    let reply = cloud
        .bot
        .say(&format!("/kube list Node --cluster {cluster}"))
        .await;
    let waited = started.elapsed();
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(reply.text.contains("503"), "{}", reply.text);
    assert!(
        waited < Duration::from_secs(10),
        "a few bounded retries, then the error: {waited:?}"
    );
}
