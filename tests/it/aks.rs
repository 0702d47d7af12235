//! The `aks` plugin's `/aks …` commands through the real plugin host against the cloud sandbox
//! (seeded estate: cluster pangeoCluster with pools system 2×D4s_v3, users 1×D8s_v3 0..5,
//! gpu 0×NC6s_v3 0..4 tainted, Spot workers 0×D8s_v3 0..50). Each test asserts the sandbox's
//! ARM and Kubernetes state, not only the reply.

use std::time::Duration;

use deckhand::router::{Response, ResponseKind};
use deckhand_it::aks::{
    arm_get, arm_pool, kube_list, pool_nodes, settle, start_aks, start_aks_with,
};
use deckhand_it::cloud::CloudBot;
use deckhand_plugin_abi::proto::{AutocompleteQuery, Choice};
use deckhand_sandbox::{FaultKind, FaultSpec, SandboxOptions};
use serde_json::{Value, json};

const LRO: Duration = Duration::from_millis(200);

async fn start() -> CloudBot {
    start_aks(LRO, "").await
}

fn ok(reply: &Response) {
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
}

fn err(reply: &Response) {
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
}

/// Runs a destructive command: it waits for a confirmation, which then runs it.
async fn confirmed(cloud: &CloudBot, command: &str) -> Response {
    let pending = cloud.bot.say(command).await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    let code = pending.confirmation.clone().expect("a confirmation code");
    cloud.bot.say(&format!("/confirm {code}")).await
}

async fn pool_count(cloud: &CloudBot, pool: &str) -> i64 {
    arm_pool(cloud, pool).await["properties"]["count"]
        .as_i64()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_and_pools_describe_the_estate_from_arm_and_kubernetes() {
    let cloud = start().await;
    let clusters = cloud.bot.say("/aks clusters").await;
    ok(&clusters);
    let text = &clusters.text;
    assert!(
        text.starts_with("1 AKS cluster in resource group pangeo:"),
        "{text}"
    );
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    let version = cluster["properties"]["currentKubernetesVersion"]
        .as_str()
        .unwrap();
    assert!(
        text.contains(&format!(
            "• pangeoCluster (pangeo, westeurope): Succeeded, power Running, Kubernetes {version}, virtual node on"
        )),
        "{text}"
    );
    assert!(
        text.contains("4 pools: gpu 0×Standard_NC6s_v3 (autoscale 0..4, 1 GPU/node); system 2×Standard_D4s_v3 (System); users 1×Standard_D8s_v3 (autoscale 0..5); workers 0×Standard_D8s_v3 (Spot, autoscale 0..50)"),
        "{text}"
    );

    let pools = cloud.bot.say("/aks pools").await;
    ok(&pools);
    let (system_nodes, system_ready) = pool_nodes(&cloud, "system").await;
    assert_eq!((system_nodes.len(), system_ready), (2, 2));
    assert!(
        pools.text.contains(
            "• system: 2 × Standard_D4s_v3, 0 GPU/node, System, Regular, autoscale off, 2/2 Ready in Kubernetes — Succeeded"
        ),
        "{}",
        pools.text
    );
    assert!(
        pools.text.contains(
            "• gpu: 0 × Standard_NC6s_v3, 1 GPU/node, User, Regular, autoscale 0..4, 0/0 Ready in Kubernetes"
        ),
        "{}",
        pools.text
    );
    assert!(
        pools
            .text
            .contains("• workers: 0 × Standard_D8s_v3, 0 GPU/node, User, Spot, autoscale 0..50"),
        "{}",
        pools.text
    );

    // The cluster may be named; an unknown one is refused naming those that exist.
    ok(&cloud.bot.say("/aks pools --cluster pangeoCluster").await);
    let unknown = cloud.bot.say("/aks pools --cluster nosuch").await;
    err(&unknown);
    assert!(
        unknown.text.contains(
            "there is no AKS cluster \"nosuch\" in resource group pangeo; clusters there: pangeoCluster"
        ),
        "{}",
        unknown.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_grows_a_pool_with_progress_and_kubernetes_sees_the_nodes() {
    let cloud = start().await;
    let (reply, progress, _) = cloud
        .bot
        .say_full(deckhand_it::admin(), "/aks scale --pool gpu --count 2")
        .await;
    ok(&reply);
    assert!(
        progress
            .iter()
            .any(|p| p.starts_with("Scaling pool gpu of pangeoCluster from 0 to 2 nodes… ")),
        "{progress:?}"
    );
    assert_eq!(
        reply.text,
        "✓ Pool gpu of pangeoCluster scaled from 0 to 2 nodes (Standard_NC6s_v3, 2 GPUs). Kubernetes: 2/2 nodes Ready. The autoscaler keeps it within 0..4 and may change the count."
    );
    assert_eq!(pool_count(&cloud, "gpu").await, 2);
    let (nodes, ready) = pool_nodes(&cloud, "gpu").await;
    assert_eq!((nodes.len(), ready), (2, 2), "{nodes:?}");

    // The same count again changes nothing.
    let again = cloud.bot.say("/aks scale --pool gpu --count 2").await;
    ok(&again);
    assert_eq!(
        again.text,
        "Pool gpu of pangeoCluster already has 2 nodes; nothing to do."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reducing_capacity_goes_through_scale_down_and_a_confirmation() {
    let cloud = start().await;
    let refused = cloud.bot.say("/aks scale --pool system --count 1").await;
    err(&refused);
    assert!(
        refused
            .text
            .contains("scaling pool system of pangeoCluster from 2 to 1 node reduces capacity")
            && refused.text.contains(
                "Reductions ask for confirmation: run /aks scale-down --pool system --count 1"
            ),
        "{}",
        refused.text
    );
    assert_eq!(pool_count(&cloud, "system").await, 2, "nothing changed");

    let pending = cloud
        .bot
        .say("/aks scale-down --pool system --count 1")
        .await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    assert_eq!(pool_count(&cloud, "system").await, 2, "waits for /confirm");
    let code = pending.confirmation.unwrap();
    let done = cloud.bot.say(&format!("/confirm {code}")).await;
    ok(&done);
    assert!(
        done.text
            .starts_with("✓ Pool system of pangeoCluster scaled from 2 to 1 node (Standard_D4s_v3). Kubernetes: 1/1 node Ready."),
        "{}",
        done.text
    );
    assert_eq!(pool_count(&cloud, "system").await, 1);
    assert_eq!(pool_nodes(&cloud, "system").await.0.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_refuses_bad_counts_naming_the_rule() {
    let cloud = start().await;
    let cases = [
        (
            "/aks scale --pool gpu --count -1",
            "--count is a number of nodes: 0 or more, not -1 (option --count)",
        ),
        (
            "/aks scale --pool gpu --count 5",
            "pool gpu autoscales between 0 and 4 nodes, so --count 5 is above its maximum: raise it with /aks autoscale --pool gpu --min 0 --max 5, or turn the autoscaler off with /aks autoscale --pool gpu --off",
        ),
        (
            "/aks scale --pool system --count 0",
            "pool system is a System pool: AKS requires a System pool to keep at least 1 node",
        ),
        (
            "/aks scale --pool nope --count 1",
            "there is no pool \"nope\" in cluster pangeoCluster; its pools are gpu, system, users, workers",
        ),
        (
            "/aks scale --pool gpu --count 1 --cluster other",
            "there is no AKS cluster \"other\" in resource group pangeo",
        ),
    ];
    for (command, expected) in cases {
        let reply = cloud.bot.say(command).await;
        err(&reply);
        assert!(reply.text.contains(expected), "{command}: {}", reply.text);
    }
    assert_eq!(pool_count(&cloud, "gpu").await, 0);
    assert_eq!(pool_count(&cloud, "system").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscale_sets_bounds_and_turns_off() {
    let cloud = start().await;
    let reply = cloud
        .bot
        .say("/aks autoscale --pool workers --min 0 --max 20")
        .await;
    ok(&reply);
    assert_eq!(
        reply.text,
        "✓ Pool workers of pangeoCluster autoscales between 0 and 20 nodes (now 0)."
    );
    let workers = arm_pool(&cloud, "workers").await["properties"].clone();
    assert_eq!(
        (
            &workers["enableAutoScaling"],
            &workers["minCount"],
            &workers["maxCount"]
        ),
        (&json!(true), &json!(0), &json!(20))
    );
    assert_eq!(workers["scaleSetPriority"], "Spot", "read-modify-write");

    // Raising the minimum above the count grows the pool to it.
    let grown = cloud
        .bot
        .say("/aks autoscale --pool gpu --min 1 --max 4")
        .await;
    ok(&grown);
    assert!(
        grown.text.contains("It grew from 0 to 1 nodes"),
        "{}",
        grown.text
    );
    assert_eq!(pool_nodes(&cloud, "gpu").await.1, 1);

    let off = cloud.bot.say("/aks autoscale --pool users --off").await;
    ok(&off);
    assert!(
        off.text
            .starts_with("✓ Autoscaler of pool users of pangeoCluster is off")
    );
    let users = arm_pool(&cloud, "users").await["properties"].clone();
    assert_eq!(users["enableAutoScaling"], false);
    assert_eq!(users["count"], 1);
    assert!(users.get("maxCount").is_none(), "{users}");

    for (command, expected) in [
        (
            "/aks autoscale --pool users --min 3 --max 2",
            "--max 2 is below --min 3",
        ),
        (
            "/aks autoscale --pool users --min 1",
            "give both --min and --max",
        ),
        (
            "/aks autoscale --pool system --min 0 --max 3",
            "AKS requires --min 1 or more for System pools",
        ),
        (
            "/aks autoscale --pool system --min 1 --max 1",
            "pool system has 2 nodes, more than --max 1: scale it down first with /aks scale-down --pool system --count 1",
        ),
    ] {
        let reply = cloud.bot.say(command).await;
        err(&reply);
        assert!(reply.text.contains(expected), "{command}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_add_creates_a_tainted_gpu_pool_and_a_spot_pool() {
    let cloud = start().await;
    let (reply, progress, _) = cloud
        .bot
        .say_full(
            deckhand_it::admin(),
            "/aks pool add --name gpu2 --vm-size Standard_NC6s_v3 --count 1 --labels team=ml",
        )
        .await;
    ok(&reply);
    assert!(
        progress
            .iter()
            .any(|p| p.starts_with("Creating pool gpu2 (1 × Standard_NC6s_v3) in pangeoCluster… ")),
        "{progress:?}"
    );
    assert!(
        reply.text.starts_with(
            "✓ Pool gpu2 created in pangeoCluster: 1 × Standard_NC6s_v3 (1 GPU/node; taints nvidia.com/gpu=present:NoSchedule; labels team=ml). Kubernetes: 1/1 nodes Ready."
        ),
        "{}",
        reply.text
    );
    let pool = arm_pool(&cloud, "gpu2").await["properties"].clone();
    assert_eq!(
        pool["nodeTaints"],
        json!(["nvidia.com/gpu=present:NoSchedule"])
    );
    assert_eq!(pool["nodeLabels"]["team"], "ml");
    assert_eq!(pool["mode"], "User");
    let nodes = kube_list(&cloud, "nodes").await;
    let node = nodes
        .iter()
        .find(|n| n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == "gpu2")
        .expect("a gpu2 node");
    assert_eq!(node["metadata"]["labels"]["team"], "ml");
    assert_eq!(node["spec"]["taints"][0]["key"], "nvidia.com/gpu");
    assert_eq!(node["status"]["capacity"]["nvidia.com/gpu"], "1");

    // Spot with autoscaler bounds, no GPU taint for a CPU size.
    let spot = cloud
        .bot
        .say("/aks pool add --name dask2 --vm-size Standard_D4s_v3 --count 0 --spot --min 0 --max 3 --taints dedicated=dask:NoSchedule")
        .await;
    ok(&spot);
    let pool = arm_pool(&cloud, "dask2").await["properties"].clone();
    assert_eq!(pool["scaleSetPriority"], "Spot");
    assert_eq!(pool["scaleSetEvictionPolicy"], "Delete");
    assert_eq!(
        (&pool["minCount"], &pool["maxCount"]),
        (&json!(0), &json!(3))
    );
    assert_eq!(pool["nodeTaints"], json!(["dedicated=dask:NoSchedule"]));

    // --no-gpu-taint leaves GPU nodes untainted.
    ok(&cloud
        .bot
        .say("/aks pool add --name gpu4 --vm-size Standard_NC6s_v3 --count 0 --no-gpu-taint")
        .await);
    assert!(
        arm_pool(&cloud, "gpu4").await["properties"]
            .get("nodeTaints")
            .is_none_or(|t| t.as_array().is_some_and(|t| t.is_empty()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_add_refuses_what_azure_or_kubernetes_would_reject() {
    let cloud = start().await;
    let cases = [
        (
            "/aks pool add --name gpu3 --vm-size Standard_D4s_v3",
            "pool gpu3 is meant for GPUs (its name \"gpu3\" starts with \"gpu\") but Standard_D4s_v3 has no GPU",
        ),
        (
            "/aks pool add --name train --vm-size Standard_D4s_v3 --gpu",
            "(--gpu was given) but Standard_D4s_v3 has no GPU",
        ),
        (
            "/aks pool add --name GPU_3 --vm-size Standard_NC6s_v3",
            "AKS pool names are 1-12 lowercase letters and digits, starting with a letter",
        ),
        (
            "/aks pool add --name users --vm-size Standard_D4s_v3",
            "pool users already exists in pangeoCluster (1 × Standard_D8s_v3)",
        ),
        (
            "/aks pool add --name extra --vm-size Standard_D4s_v3 --taints a=b:Sometimes",
            "effect \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute",
        ),
        (
            "/aks pool add --name extra --vm-size Standard_D4s_v3 --labels bad",
            "\"bad\" has no '='",
        ),
        (
            "/aks pool add --name extra --vm-size Standard_D4s_v3 --spot --mode System",
            "a System pool cannot use Spot VMs",
        ),
        (
            "/aks pool add --name extra --vm-size Standard_D4s_v3 --count 7 --min 0 --max 5",
            "--count 7 must lie between --min 0 and --max 5",
        ),
        (
            "/aks pool add --name extra --vm-size Standard_D4s_v3 --count -2",
            "0 or more, not -2",
        ),
    ];
    for (command, expected) in cases {
        let reply = cloud.bot.say(command).await;
        err(&reply);
        assert!(reply.text.contains(expected), "{command}: {}", reply.text);
    }
    for pool in ["gpu3", "train", "extra"] {
        assert!(arm_pool(&cloud, pool).await.is_null(), "{pool} was created");
    }
    // Azure's own refusal (a size unknown to it) is reported with its code and request id.
    let unknown = cloud
        .bot
        .say("/aks pool add --name odd --vm-size Standard_Nope_v9")
        .await;
    err(&unknown);
    assert!(
        unknown
            .text
            .contains("creating pool odd in pangeoCluster: Azure refused PUT")
            && unknown.text.contains("InvalidParameter")
            && unknown.text.contains("request id"),
        "{}",
        unknown.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_delete_is_confirmed_and_removes_the_nodes() {
    let cloud = start().await;
    let pending = cloud.bot.say("/aks pool delete --name users").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    assert!(
        !arm_pool(&cloud, "users").await.is_null(),
        "waits for /confirm"
    );
    let code = pending.confirmation.unwrap();
    let done = cloud.bot.say(&format!("/confirm {code}")).await;
    ok(&done);
    assert_eq!(
        done.text,
        "✓ Pool users deleted from pangeoCluster (1 node removed; pods there are rescheduled elsewhere if they fit)."
    );
    assert!(arm_pool(&cloud, "users").await.is_null());
    assert!(pool_nodes(&cloud, "users").await.0.is_empty());

    let last_system = confirmed(&cloud, "/aks pool delete --name system").await;
    err(&last_system);
    assert!(
        last_system
            .text
            .contains("pool system is the only System pool of pangeoCluster: AKS requires at least one System pool"),
        "{}",
        last_system.text
    );
    let missing = confirmed(&cloud, "/aks pool delete --name users").await;
    err(&missing);
    assert!(
        missing.text.contains("there is no pool \"users\""),
        "{}",
        missing.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_confirmed_and_start_brings_the_nodes_back() {
    let cloud = start().await;
    let stopped = confirmed(&cloud, "/aks stop").await;
    ok(&stopped);
    assert!(
        stopped.text.starts_with("✓ pangeoCluster stopped"),
        "{}",
        stopped.text
    );
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    assert_eq!(cluster["properties"]["powerState"]["code"], "Stopped");

    let pools = cloud.bot.say("/aks pools").await;
    ok(&pools);
    assert!(
        pools.text.contains("Kubernetes unreachable"),
        "{}",
        pools.text
    );
    let again = confirmed(&cloud, "/aks stop").await;
    ok(&again);
    assert_eq!(
        again.text,
        "pangeoCluster is already stopped; nothing to do."
    );

    let started = cloud.bot.say("/aks start").await;
    ok(&started);
    assert!(
        started
            .text
            .starts_with("✓ pangeoCluster started: power Running, 3 nodes across 4 pools."),
        "{}",
        started.text
    );
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    assert_eq!(cluster["properties"]["powerState"]["code"], "Running");
    settle(&cloud).await;
    assert_eq!(pool_nodes(&cloud, "system").await.1, 2);
}

/// A GPU pod and the NVIDIA device plugin DaemonSet, created straight in the sandbox.
async fn create(cloud: &CloudBot, kind: &str, namespace: &str, object: Value) {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use kube::api::PostParams;
    let client = cloud
        .bot
        .app
        .host
        .services()
        .cloud()
        .kube
        .client(&cloud.estate.cluster)
        .await
        .unwrap();
    let params = PostParams::default();
    match kind {
        "Pod" => {
            Api::<Pod>::namespaced(client, namespace)
                .create(&params, &serde_json::from_value(object).unwrap())
                .await
                .unwrap();
        }
        _ => {
            Api::<DaemonSet>::namespaced(client, namespace)
                .create(&params, &serde_json::from_value(object).unwrap())
                .await
                .unwrap();
        }
    }
}

fn gpu_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [{"name": "train", "image": "nvidia/cuda:12.4.0-base-ubuntu22.04",
                "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"kubernetes.azure.com/agentpool": "gpu"}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_reports_capacity_requests_and_the_device_plugin() {
    // The sandbox's cluster autoscaler would grow the gpu pool for the pending pods while the
    // test counts GPUs (it failed 1 run in 3): this test is about reporting, not autoscaling.
    let options = SandboxOptions {
        lro_delay: LRO,
        cluster_autoscaler: false,
        ..SandboxOptions::default()
    };
    let cloud = start_aks_with(options, "").await;
    ok(&cloud.bot.say("/aks scale --pool gpu --count 1").await);
    let (gpu_nodes, _) = pool_nodes(&cloud, "gpu").await;
    let gpu_node = gpu_nodes[0].clone();

    let empty = cloud.bot.say("/aks gpu").await;
    ok(&empty);
    assert!(
        empty
            .text
            .starts_with("GPUs in pangeoCluster: 0 of 1 in use, 1 free."),
        "{}",
        empty.text
    );
    assert!(
        empty.text.contains(
            "• Pool gpu: 1 × Standard_NC6s_v3 (1 GPU/node), autoscale 0..4 (up to 4 GPUs)"
        ),
        "{}",
        empty.text
    );
    assert!(
        empty
            .text
            .contains("• NVIDIA device plugin: no DaemonSet found"),
        "{}",
        empty.text
    );

    create(&cloud, "Pod", "default", gpu_pod("train-1")).await;
    create(&cloud, "Pod", "default", gpu_pod("train-2")).await;
    create(
        &cloud,
        "DaemonSet",
        "kube-system",
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
                "template": {
                    "metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
                    "spec": {
                        "containers": [{"name": "nvidia-device-plugin-ctr",
                            "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}],
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "nodeSelector": {"kubernetes.azure.com/accelerator": "nvidia"}
                    }
                }
            }
        }),
    )
    .await;
    let pods = kube_list(&cloud, "pods").await;
    let placed = pods
        .iter()
        .filter(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("train-"))
        })
        .filter(|p| p["spec"]["nodeName"] == gpu_node.as_str())
        .count();
    assert_eq!(placed, 1, "one GPU: one training pod placed, one pending");

    let report = cloud.bot.say("/aks gpu").await;
    ok(&report);
    let text = &report.text;
    assert!(
        text.starts_with(
            "GPUs in pangeoCluster: 1 of 1 in use, 0 free, 1 more wanted by 1 pending pod."
        ),
        "{text}"
    );
    assert!(
        text.contains("• NVIDIA device plugin kube-system/nvidia-device-plugin-daemonset: 1/1 pods ready, ready on all 1 GPU node."),
        "{text}"
    );
    assert!(text.contains("• Pending: default/train-"), "{text}");
    assert!(
        text.contains("To make room: /aks scale --pool gpu --count 2"),
        "{text}"
    );

    let nodes = cloud.bot.say("/aks nodes --pool gpu").await;
    ok(&nodes);
    assert!(
        nodes
            .text
            .starts_with("1 node in pangeoCluster pool gpu, 1 Ready:"),
        "{}",
        nodes.text
    );
    assert!(
        nodes.text.contains(&format!(
            "• {gpu_node}: gpu, Standard_NC6s_v3, Ready, 1 GPU, 2 pods, taints nvidia.com/gpu=present:NoSchedule"
        )),
        "{}",
        nodes.text
    );
    let all = cloud.bot.say("/aks nodes").await;
    ok(&all);
    assert!(all.text.contains("virtual node (ACI)"), "{}", all.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_operation_is_reported_with_azures_words() {
    let cloud = start().await;
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::FailLro {
            code: "ScaleVMSSAgentPoolFailed".into(),
            message: "The VMSS could not be scaled: allocation failed".into(),
        })
        .on_path("agentPools/users")
        .on_method("PUT")
        .times(1),
    );
    let reply = cloud.bot.say("/aks scale --pool users --count 3").await;
    err(&reply);
    assert!(
        reply
            .text
            .contains("scaling pool users of pangeoCluster: Azure accepted PUT managedClusters/pangeoCluster/agentPools/users, but the operation failed while running: ScaleVMSSAgentPoolFailed: The VMSS could not be scaled: allocation failed (operation Failed, request id ")
            && reply.text.contains("/aks pools shows the pool's state now"),
        "{}",
        reply.text
    );
    assert_eq!(
        arm_pool(&cloud, "users").await["properties"]["provisioningState"],
        "Failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out_and_persistent_throttling_is_explained() {
    let cloud = start().await;
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .on_path("agentPools")
        .on_method("GET")
        .times(1),
    );
    ok(&cloud.bot.say("/aks pools").await);

    cloud.sandbox.clear_faults();
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 0,
        })
        .on_path("agentPools"),
    );
    let reply = cloud.bot.say("/aks pools").await;
    err(&reply);
    assert!(
        reply.text.contains("listing the pools of pangeoCluster")
            && reply
                .text
                .contains("Azure is throttling this subscription: try again in a minute"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_already_in_progress_is_a_conflict_to_wait_out() {
    let cloud = start_aks(Duration::from_secs(3), "").await;
    // Someone else (the portal) starts scaling the pool; Deckhand does not wait for it.
    let url = format!(
        "{}/subscriptions/{}{}/agentPools/users?api-version=2026-08-01",
        cloud.sandbox.base_url(),
        cloud.sandbox.subscription_id(),
        cloud.cluster_path()
    );
    let mut pool = arm_pool(&cloud, "users").await;
    pool["properties"]["count"] = json!(2);
    let started = reqwest::Client::new()
        .put(&url)
        .bearer_auth(cloud.sandbox.issue_token())
        .json(&pool)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 200);

    let reply = cloud.bot.say("/aks scale --pool users --count 3").await;
    err(&reply);
    assert!(
        reply.text.contains("OperationNotAllowed")
            && reply.text.contains("wait for it to finish (/aks pools shows each pool's state) and run the command again"),
        "{}",
        reply.text
    );
    settle(&cloud).await;
    assert_eq!(
        pool_count(&cloud, "users").await,
        2,
        "only the first change happened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_answers_from_live_state() {
    let cloud = start().await;
    ok(&cloud
        .bot
        .say("/aks pool add --name extra --vm-size Standard_E4s_v3 --count 0")
        .await);
    let host = cloud.bot.router().host().clone();
    let plugin = host
        .registry()
        .plugins
        .get("aks")
        .cloned()
        .expect("aks loaded");
    let ask = |command: &[&str], option: &str, partial: &str| AutocompleteQuery {
        command: command.iter().map(|c| (*c).to_owned()).collect(),
        option: option.into(),
        partial: partial.into(),
        options: Default::default(),
        caller: deckhand_it::admin(),
    };
    let names = |choices: Vec<Choice>| choices.into_iter().map(|c| c.value).collect::<Vec<_>>();
    let timeout = Duration::from_secs(10);
    let clusters = host
        .autocomplete(
            plugin.clone(),
            &ask(&["aks", "pools"], "cluster", "pan"),
            timeout,
        )
        .await
        .unwrap();
    assert_eq!(names(clusters), ["pangeoCluster"]);
    let pools = host
        .autocomplete(plugin.clone(), &ask(&["aks", "scale"], "pool", ""), timeout)
        .await
        .unwrap();
    assert_eq!(names(pools), ["extra", "gpu", "system", "users", "workers"]);
    let pools = host
        .autocomplete(
            plugin.clone(),
            &ask(&["aks", "pool", "delete"], "name", "ex"),
            timeout,
        )
        .await
        .unwrap();
    assert_eq!(names(pools), ["extra"]);
    let sizes = names(
        host.autocomplete(
            plugin,
            &ask(&["aks", "pool", "add"], "vm-size", "nc6"),
            timeout,
        )
        .await
        .unwrap(),
    );
    assert!(sizes.contains(&"Standard_NC6s_v3".to_owned()), "{sizes:?}");
    assert!(
        sizes.iter().all(|s| s.to_ascii_lowercase().contains("nc6")),
        "{sizes:?}"
    );
}

/// The real binary: `deckhand shell --sandbox` with the aks plugin, commands piped in; the
/// sandbox fills `[plugins.config.aks]` with the seeded cluster.
#[test]
fn shell_with_sandbox_runs_aks_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = deckhand_it::write_config(
        dir.path(),
        &[deckhand_it::product_plugin_library("aks")],
        "",
    );
    let out = deckhand_it::run_deckhand(
        &["shell", "--sandbox"],
        &config,
        &[],
        b"/aks scale --pool gpu --count 1\n/aks scale --pool gpu --count 0\n/aks scale-down --pool gpu --count 0 --yes\n/aks pools\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✓ Pool gpu of pangeoCluster scaled from 0 to 1 node (Standard_NC6s_v3, 1 GPU). Kubernetes: 1/1 node Ready."),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .contains("Reductions ask for confirmation: run /aks scale-down --pool gpu --count 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ Pool gpu of pangeoCluster scaled from 1 to 0 nodes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("• gpu: 0 × Standard_NC6s_v3, 1 GPU/node, User, Regular, autoscale 0..4, 0/0 Ready in Kubernetes"),
        "{stdout}"
    );
}

/// `--log-format json` at debug level: every event of one `/aks scale`, from parsing through
/// the plugin thread to the ARM calls, is inside the command's span with its invocation id.
#[test]
fn one_scale_logs_its_invocation_id_from_parse_to_arm_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = deckhand_it::write_config(
        dir.path(),
        &[deckhand_it::product_plugin_library("aks")],
        "",
    );
    let out = deckhand_it::run_deckhand(
        &["--log-format", "json", "shell", "--sandbox"],
        &config,
        &[("RUST_LOG", std::ffi::OsStr::new("deckhand=debug"))],
        b"/aks scale --pool users --count 2 --yes\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✓ Pool users of pangeoCluster scaled from 1 to 2"),
        "{stdout}"
    );

    // stderr also has the sandbox's banner for people; log events are the JSON lines.
    let events: Vec<Value> = stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let invocation = |event: &Value| -> Option<String> {
        event["spans"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "command")
            .and_then(|s| s["invocation"].as_str().map(str::to_owned))
    };
    // Every event from the first (`parsed`) to the last (`answered`) belongs to the command.
    let first = events
        .iter()
        .position(|e| e["fields"]["message"] == "parsed")
        .unwrap_or_else(|| panic!("no parsed event: {stderr}"));
    let last = events
        .iter()
        .rposition(|e| e["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no answered event: {stderr}"));
    let id = invocation(&events[first]).expect("parsed carries the invocation id");
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let command = &events[first..=last];
    for event in command {
        assert_eq!(invocation(event).as_deref(), Some(id.as_str()), "{event}");
    }
    let messages: Vec<&str> = command
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    for step in [
        "parsed",
        "calling the plugin",
        "service call",
        "ARM answered",
        "answered",
    ] {
        assert!(messages.contains(&step), "{step} missing from {messages:?}");
    }
    let put = command
        .iter()
        .find(|e| {
            e["fields"]["message"] == "ARM answered"
                && e["fields"]["operation"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("PUT "))
        })
        .unwrap_or_else(|| panic!("no PUT: {messages:?}"));
    assert!(
        put["fields"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{put}"
    );
    let span = &put["spans"][0];
    assert_eq!(span["command"], "aks scale", "{put}");
    assert_eq!(span["plugin"], "aks", "{put}");
    assert_eq!(span["user"], "local", "{put}");
}

/// PUTs of pool `pool` the sandbox served.
fn pool_puts(cloud: &CloudBot, pool: &str) -> usize {
    pool_requests(cloud, "PUT", pool)
}

/// Requests with `method` on pool `pool` in the sandbox's journal.
fn pool_requests(cloud: &CloudBot, method: &str, pool: &str) -> usize {
    let end = format!("/agentPools/{pool}").to_ascii_lowercase();
    cloud
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.to_ascii_lowercase().ends_with(&end))
        .count()
}

/// Issue 12 point 8: AKS gives a subscription 20 pool writes, refilled 1 a minute. The
/// nightly warm-up of 20 pools spends exactly one write each, fits, and the replies show the
/// budget once it runs low.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_up_of_20_pools_fits_the_aks_write_bucket_and_shows_the_budget_when_low() {
    let cloud = start_aks_with(
        SandboxOptions {
            lro_delay: LRO,
            cluster_autoscaler: false,
            ..SandboxOptions::default()
        },
        "",
    )
    .await;
    let extra: Vec<String> = (1..=16).map(|i| format!("p{i:02}")).collect();
    let names: Vec<&str> = extra.iter().map(String::as_str).collect();
    cloud
        .sandbox
        .add_pools(&cloud.estate, &names, ("Standard_D4s_v3", 0))
        .await
        .expect("pools added");
    let mut plan: Vec<(String, i64)> = vec![
        ("gpu".into(), 1),
        ("workers".into(), 1),
        ("users".into(), 2),
        ("system".into(), 3),
    ];
    plan.extend(extra.iter().map(|p| (p.clone(), 1)));
    cloud.sandbox.clear_requests();
    let mut replies = Vec::new();
    for (pool, count) in &plan {
        let reply = cloud
            .bot
            .say(&format!("/aks scale --pool {pool} --count {count}"))
            .await;
        ok(&reply);
        assert!(reply.text.starts_with("✓ Pool "), "{}", reply.text);
        replies.push(reply.text);
    }
    for (pool, count) in &plan {
        assert_eq!(pool_count(&cloud, pool).await, *count, "{pool}");
        assert_eq!(pool_puts(&cloud, pool), 1, "{pool}: one write each");
    }
    // 20 writes from a bucket of 20: the budget is shown once fewer than 5 are left.
    for (i, text) in replies.iter().enumerate() {
        let left = 19 - i;
        let shown = format!(
            "Azure write budget: {left} write{} left for this subscription",
            if left == 1 { "" } else { "s" }
        );
        assert_eq!(text.contains(&shown), left < 5, "reply {i}: {text}");
        assert_eq!(
            text.contains("Azure write budget"),
            left < 5,
            "reply {i}: {text}"
        );
    }
}

/// Issue 12 point 8: scales of one pool that arrive while one runs are merged into one more
/// write with the newest count, instead of three writes (two of which AKS would refuse as an
/// operation in progress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scales_of_one_pool_are_merged_into_one_more_write() {
    // The three requests must all read the pool before the first write reaches Azure: one
    // that reads it after finds a bigger pool and is a reduction. The sandbox holds the first
    // PUT until all three reads have arrived; the 6 s operation then leaves the other two
    // ample time to join it.
    let cloud = start_aks_with(
        SandboxOptions {
            lro_delay: Duration::from_secs(6),
            cluster_autoscaler: false,
            ..SandboxOptions::default()
        },
        "",
    )
    .await;
    cloud.sandbox.clear_requests();
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Hold {
            gate: "all-read".into(),
        })
        .on_path("agentPools/gpu")
        .on_method("PUT")
        .times(1),
    );
    let reads_then_open = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while pool_requests(&cloud, "GET", "gpu") < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "three reads of pool gpu within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cloud.sandbox.open_gate("all-read");
    };
    let (a, b, c, ()) = tokio::join!(
        cloud.bot.say("/aks scale --pool gpu --count 1"),
        cloud.bot.say("/aks scale --pool gpu --count 2"),
        cloud.bot.say("/aks scale --pool gpu --count 3"),
        reads_then_open,
    );
    let replies = [a, b, c];
    for reply in &replies {
        ok(reply);
    }
    let texts: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(pool_puts(&cloud, "gpu"), 2, "{texts:#?}");
    let last = pool_count(&cloud, "gpu").await;
    let led: Vec<&&str> = texts
        .iter()
        .filter(|t| t.contains("2 other scale requests for pool gpu arrived while it ran and were merged into one more write"))
        .collect();
    assert_eq!(led.len(), 1, "{texts:#?}");
    let joined = texts
        .iter()
        .filter(|t| t.contains("This request joined a scale of pool gpu already running instead of spending another write."))
        .count();
    assert_eq!(joined, 2, "{texts:#?}");
    // Every reply reports the pool as Azure has it at the end.
    let now = format!("{last} node");
    for text in &texts {
        assert!(
            text.contains(&format!("to {now}")) || text.contains(&format!("now has {now}")),
            "{text}"
        );
    }
}

/// Issue 12 point 2: the operation succeeded and only the read-back failed: the pool is
/// reported created, with a note, and it is there in Azure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_add_whose_read_back_fails_is_reported_done_with_a_note() {
    let cloud = start().await;
    // The existence check before the PUT passes; every GET of the pool after it fails.
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 500 })
            .on_path("agentPools/spot1")
            .on_method("GET")
            .after(1),
    );
    let reply = cloud
        .bot
        .say(
            "/aks pool add --name spot1 --vm-size Standard_D8s_v3 --spot --count 0 --min 0 --max 3",
        )
        .await;
    ok(&reply);
    assert!(
        reply.text.starts_with(
            "✓ Pool spot1 created in pangeoCluster (0 × Standard_D8s_v3 asked). Azure reports the operation Succeeded, but the pool could not be read back (Azure refused GET managedClusters/pangeoCluster/agentPools/spot1 (reading back the result): InternalServerError: "
        ) && reply.text.ends_with("/aks pools shows its state."),
        "{}",
        reply.text
    );
    cloud.sandbox.clear_faults();
    let pool = arm_pool(&cloud, "spot1").await;
    assert_eq!(pool["properties"]["provisioningState"], "Succeeded");
    assert_eq!(pool["properties"]["scaleSetPriority"], "Spot");
}

/// Issue 12 point 7: a missing pool or resource group keeps Azure's code and request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pool_or_resource_group_keeps_azures_code() {
    let cloud = start().await;
    let reply = cloud.bot.say("/aks scale --pool nosuch --count 1").await;
    err(&reply);
    assert!(
        reply.text.contains(
            "there is no pool \"nosuch\" in cluster pangeoCluster; its pools are gpu, system, users, workers (see /aks pools)"
        ) && reply.text.contains("ResourceNotFound")
            && reply.text.contains("request id"),
        "{}",
        reply.text
    );

    // A resource group that does not exist is a config problem, said with Azure's code.
    let wrong = CloudBot::start_with(
        SandboxOptions {
            lro_delay: LRO,
            ..SandboxOptions::default()
        },
        &[deckhand_it::product_plugin_library("aks")],
        |estate| deckhand_it::aks::aks_config("nosuchrg", &estate.cluster),
    )
    .await;
    let reply = wrong.bot.say("/aks scale --pool gpu --count 1").await;
    err(&reply);
    assert!(
        reply.text.contains(
            "/aks scale failed: resource group nosuchrg does not exist in the subscription (resource_group in [plugins.config.aks])"
        ) && reply.text.contains("ResourceGroupNotFound")
            && reply.text.contains("request id"),
        "{}",
        reply.text
    );
}
