//! The real `vk` plugin (`libdeckhand_plugin_vk`) against the cloud sandbox: the virtual node's
//! status and ACI container groups, the `aciConnectorLinux` addon through ARM, and logs.

use std::time::Duration;

use deckhand::router::ResponseKind;
use deckhand_it::aks::arm_get;
use deckhand_it::cloud::CloudBot;
use deckhand_it::product_plugin_library;
use deckhand_sandbox::{FaultKind, FaultSpec, SandboxOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// A seeded sandbox and a bot running the built `vk` plugin with `[plugins.config.vk]`.
async fn start_vk(lro_delay: Duration) -> CloudBot {
    let options = SandboxOptions {
        lro_delay,
        ..SandboxOptions::default()
    };
    let cloud = CloudBot::start_with(options, &[product_plugin_library("vk")], |estate| {
        format!(
            "\n[plugins.config.vk]\nresource_group = \"{}\"\ndefault_cluster = \"{}\"\n",
            estate.resource_group, estate.cluster
        )
    })
    .await;
    assert!(
        cloud.bot.app.load_errors.is_empty(),
        "{:?}",
        cloud.bot.app.load_errors
    );
    cloud
}

/// A Deployment `vkdemo` with `replicas` pods on the virtual node.
async fn run_on_virtual_node(cloud: &CloudBot, replicas: i32) -> Vec<String> {
    let c = cloud.kube_client().await;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "vkdemo"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "vkdemo"}},
            "template": {"metadata": {"labels": {"app": "vkdemo"}}, "spec": {
                "containers": [{"name": "worker", "image": "intens.azurecr.io/simsvc-mpt:latest"}],
                "nodeSelector": {"type": "virtual-kubelet"},
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(c, "default")
        .list(&ListParams::default().labels("app=vkdemo"))
        .await
        .unwrap();
    let names: Vec<String> = pods
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    for p in &pods.items {
        assert_eq!(
            p.spec.as_ref().unwrap().node_name.as_deref(),
            Some("virtual-node-aci-linux")
        );
    }
    names
}

async fn addon_enabled(cloud: &CloudBot) -> Value {
    arm_get(cloud, &cloud.cluster_path()).await["properties"]["addonProfiles"]["aciConnectorLinux"]
        ["enabled"]
        .clone()
}

async fn virtual_nodes(cloud: &CloudBot) -> usize {
    Api::<Node>::all(cloud.kube_client().await)
        .list(&ListParams::default().labels("type=virtual-kubelet"))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_node_its_capacity_and_the_aci_groups_of_its_pods() {
    let cloud = start_vk(Duration::from_millis(100)).await;
    let empty = cloud.bot.say("/vk status").await;
    assert_eq!(empty.kind, ResponseKind::Ok, "{}", empty.text);
    assert!(
        empty
            .text
            .contains("Virtual node virtual-node-aci-linux on pangeoCluster: Ready. Capacity cpu"),
        "{}",
        empty.text
    );
    assert!(empty.text.contains("No pods run on it."), "{}", empty.text);

    let pods = run_on_virtual_node(&cloud, 2).await;
    let status = cloud.bot.say("/vk status").await;
    assert_eq!(status.kind, ResponseKind::Ok, "{}", status.text);
    assert!(status.text.contains("2 pod(s) on it:"), "{}", status.text);
    for pod in &pods {
        assert!(
            status.text.contains(&format!(
                "• default/{pod} (Running) → ACI group default-{pod}: Running, restarts 0"
            )),
            "{}",
            status.text
        );
    }

    // A crash-looping pod shows in ACI too: state and restarts.
    cloud
        .sandbox
        .inject(FaultSpec::always(FaultKind::CrashLoop {
            pod_prefix: "vkdemo".into(),
            namespace: None,
        }));
    let mut text = String::new();
    for _ in 0..100 {
        // Any change makes the sandbox reconcile; the fault applies to running pods.
        cloud.sandbox.settle().await;
        text = cloud.bot.say("/vk status").await.text;
        if text.contains("CrashLoopBackOff") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("container worker: Waiting (CrashLoopBackOff"),
        "{text}"
    );
    assert!(!text.contains("restarts 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_come_from_aci_on_the_virtual_node_and_from_kubernetes_elsewhere() {
    let cloud = start_vk(Duration::from_millis(100)).await;
    let pods = run_on_virtual_node(&cloud, 1).await;
    let logs = cloud
        .bot
        .say(&format!("/vk logs {} --tail 5", pods[0]))
        .await;
    assert_eq!(logs.kind, ResponseKind::Ok, "{}", logs.text);
    assert!(
        logs.text
            .contains(&format!("(ACI container group default-{})", pods[0])),
        "{}",
        logs.text
    );
    assert!(
        logs.text
            .contains("started from image intens.azurecr.io/simsvc-mpt:latest"),
        "{}",
        logs.text
    );

    // A pod on a regular node: Kubernetes' log endpoint.
    let system = Api::<Pod>::all(cloud.kube_client().await)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| n.starts_with("aks-"))
        })
        .expect("a pod on a regular node");
    let name = system.metadata.name.unwrap();
    let logs = cloud.bot.say(&format!("/vk logs {name}")).await;
    assert_eq!(logs.kind, ResponseKind::Ok, "{}", logs.text);
    assert!(logs.text.contains("(node aks-"), "{}", logs.text);

    let missing = cloud.bot.say("/vk logs nosuch-pod").await;
    assert_eq!(missing.kind, ResponseKind::Error);
    assert!(
        missing.text.contains("no pod nosuch-pod"),
        "{}",
        missing.text
    );
    let bad = cloud
        .bot
        .say(&format!("/vk logs {} --container nope", pods[0]))
        .await;
    assert!(
        bad.text.contains("has no container nope (it has: worker)"),
        "{}",
        bad.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_enable_change_the_addon_through_arm() {
    let cloud = start_vk(Duration::from_millis(100)).await;
    let pods = run_on_virtual_node(&cloud, 1).await;

    let pending = cloud.bot.say("/vk disable --cluster pangeoCluster").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    assert_eq!(addon_enabled(&cloud).await, true, "nothing before /confirm");
    let (done, progress, _) = cloud
        .bot
        .say_full(
            deckhand_it::admin(),
            &format!("/confirm {}", pending.confirmation.unwrap()),
        )
        .await;
    assert_eq!(done.kind, ResponseKind::Ok, "{}", done.text);
    assert!(
        done.text
            .contains(&format!("stopped (default/{})", pods[0])),
        "{}",
        done.text
    );
    assert!(
        progress
            .iter()
            .any(|l| l.contains("Disabling virtual nodes on pangeoCluster")),
        "{progress:?}"
    );
    assert_eq!(addon_enabled(&cloud).await, false);
    // The rest of the cluster went back unchanged (read-modify-write).
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    assert_eq!(
        cluster["properties"]["agentPoolProfiles"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        cluster["properties"]["addonProfiles"]["aciConnectorLinux"]["config"]["SubnetName"],
        "virtual-node-aci"
    );
    assert_eq!(virtual_nodes(&cloud).await, 0);
    let off = cloud.bot.say("/vk status").await;
    assert!(
        off.text.contains("Virtual nodes are off on pangeoCluster"),
        "{}",
        off.text
    );

    let on = cloud.bot.say("/vk enable --cluster pangeoCluster").await;
    assert_eq!(on.kind, ResponseKind::Ok, "{}", on.text);
    assert!(
        on.text.contains("node virtual-node-aci-linux is Ready"),
        "{}",
        on.text
    );
    assert_eq!(addon_enabled(&cloud).await, true);
    assert_eq!(virtual_nodes(&cloud).await, 1);
    let again = cloud.bot.say("/vk enable").await;
    assert!(again.text.contains("already on"), "{}", again.text);
}

/// The sandbox's Microsoft.Network, below the subscription, with Network's api-version.
async fn network(cloud: &CloudBot, method: reqwest::Method, path: &str) -> (u16, Value) {
    let url = format!(
        "{}/subscriptions/{}{path}?api-version=2026-03-01",
        cloud.sandbox.base_url(),
        cloud.sandbox.subscription_id()
    );
    let response = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(cloud.sandbox.issue_token())
        .send()
        .await
        .expect("sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Seed 000: after virtual nodes, deleting the vnet fails until ACI's subnet link is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_with_cleanup_network_removes_the_aci_link_so_the_network_can_be_deleted() {
    let cloud = start_vk(Duration::from_millis(50)).await;
    let vnet = "/resourceGroups/pangeo/providers/Microsoft.Network/virtualNetworks/pangeo-vnet";
    let subnet = format!("{vnet}/subnets/virtual-node-aci");
    let (status, refused) = network(&cloud, reqwest::Method::DELETE, &subnet).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("InUseSubnetCannotBeDeleted"))
    );

    let pending = cloud.bot.say("/vk disable --cleanup-network").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    let done = cloud
        .bot
        .say(&format!("/confirm {}", pending.confirmation.unwrap()))
        .await;
    assert_eq!(done.kind, ResponseKind::Ok, "{}", done.text);
    assert!(
        done.text.contains("Virtual nodes are off for pangeoCluster")
            && done.text.contains(
                "Removed the link acisal that ACI left on subnet virtual-node-aci of vnet pangeo-vnet"
            ),
        "{}",
        done.text
    );
    assert_eq!(addon_enabled(&cloud).await, false);
    let (_, links) = network(
        &cloud,
        reqwest::Method::GET,
        &format!("{subnet}/serviceAssociationLinks"),
    )
    .await;
    assert_eq!(links["value"], json!([]));
    // Now Azure lets the network go.
    assert_eq!(
        network(&cloud, reqwest::Method::DELETE, &subnet).await.0,
        200
    );
    assert_eq!(network(&cloud, reqwest::Method::DELETE, vnet).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cluster_failed_operation_throttling_and_conflict() {
    let cloud = start_vk(Duration::from_millis(300)).await;
    let unknown = cloud.bot.say("/vk status --cluster nope").await;
    assert_eq!(unknown.kind, ResponseKind::Error);
    assert!(
        unknown
            .text
            .contains("there is no AKS cluster nope in resource group pangeo"),
        "{}",
        unknown.text
    );

    // Throttled twice, then served: the host's retries hide it.
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 0,
        })
        .on_path("managedClusters/pangeoCluster")
        .times(2),
    );
    let status = cloud.bot.say("/vk status").await;
    assert_eq!(status.kind, ResponseKind::Ok, "{}", status.text);
    cloud.sandbox.clear_faults();

    // The operation fails in Azure: the user hears Azure's code and message.
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::FailLro {
            code: "SubnetIsFull".into(),
            message: "Subnet virtual-node-aci has no free addresses".into(),
        })
        .on_path("managedClusters/pangeoCluster")
        .on_method("PUT")
        .times(1),
    );
    let disable = cloud
        .bot
        .say_on("terminal", deckhand_it::admin(), "/vk disable --yes")
        .await
        .0;
    assert_eq!(disable.kind, ResponseKind::Error, "{}", disable.text);
    assert!(disable.text.contains("SubnetIsFull"), "{}", disable.text);
    cloud.sandbox.clear_faults();
    deckhand_it::aks::settle(&cloud).await;
    // Azure keeps the requested spec of a failed update (provisioningState Failed).
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    assert_eq!(cluster["properties"]["provisioningState"], "Failed");

    // Another operation is running on the cluster: AKS refuses, and the reply says so.
    let pool = format!("{}/agentPools/users", cloud.cluster_path());
    let mut body = arm_get(&cloud, &pool).await;
    body["properties"]["enableAutoScaling"] = json!(false);
    body["properties"]["count"] = json!(2);
    let url = format!(
        "{}/subscriptions/{}{pool}?api-version=2026-08-01",
        cloud.sandbox.base_url(),
        cloud.sandbox.subscription_id()
    );
    let started = reqwest::Client::new()
        .put(&url)
        .bearer_auth(cloud.sandbox.issue_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(started.status().is_success(), "{}", started.status());
    let conflict = cloud.bot.say("/vk enable").await;
    assert_eq!(conflict.kind, ResponseKind::Error, "{}", conflict.text);
    assert!(
        conflict.text.contains("OperationNotAllowed"),
        "{}",
        conflict.text
    );
}
