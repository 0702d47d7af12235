//! Every fault kind, injected through the control API or the Rust API, observed by a client.

use std::time::{Duration, Instant};

use deckhand_sandbox::{FaultKind, FaultSpec};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use reqwest::Method;
use serde_json::json;

use crate::support::{Arm, sandbox, seeded};

const RGS: &str = "/resourcegroups?api-version=2025-04-01";

#[tokio::test]
async fn throttling_via_control_api_gives_429_with_retry_after_then_recovers() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/faults", sb.control_url()))
        .json(&json!({"path_contains": "/resourcegroups", "method": "GET", "count": 2, "fault": {"kind": "throttle", "retry_after_secs": 7}}))
        .send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let listed: serde_json::Value = http
        .get(format!("{}/faults", sb.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    for _ in 0..2 {
        let r = arm.call(Method::GET, RGS, None).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after").as_deref(), Some("7"));
        assert_eq!(r.body["error"]["code"], "TooManyRequests");
        assert!(r.header("x-ms-request-id").is_some());
    }
    assert_eq!(
        arm.call(Method::GET, RGS, None).await.status,
        200,
        "count exhausted"
    );
    // Other methods/paths were never affected.
    let listed: serde_json::Value = http
        .get(format!("{}/faults", sb.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["value"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn server_errors_500_and_503() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let id = sb.inject(
        FaultSpec::always(FaultKind::ServerError { status: 503 }).on_path("resourcegroups"),
    );
    let r = arm.call(Method::GET, RGS, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    assert_eq!(
        arm.call(Method::GET, RGS, None).await.status,
        503,
        "no count: fires until removed"
    );
    assert!(sb.remove_fault(id));
    sb.inject(FaultSpec::always(FaultKind::ServerError { status: 500 }).times(1));
    let r = arm.call(Method::GET, RGS, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (500, Some("InternalServerError"))
    );
    assert_eq!(arm.call(Method::GET, RGS, None).await.status, 200);
}

#[tokio::test]
async fn dropped_connection_is_an_error_for_the_client() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    sb.inject(FaultSpec::always(FaultKind::DropConnection).times(1));
    let err = arm
        .http
        .get(arm.url(RGS))
        .bearer_auth(&arm.token)
        .send()
        .await
        .expect_err("no response at all");
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("connection"),
        "{err:?}"
    );
    assert_eq!(arm.call(Method::GET, RGS, None).await.status, 200);
}

#[tokio::test]
async fn slow_responses_are_delayed() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    sb.inject(FaultSpec::always(FaultKind::Slow { delay_ms: 300 }).times(1));
    let t = Instant::now();
    assert_eq!(arm.call(Method::GET, RGS, None).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let r = tokio::time::timeout(Duration::from_millis(100), async {
        sb.inject(FaultSpec::always(FaultKind::Slow { delay_ms: 2000 }).times(1));
        arm.call(Method::GET, RGS, None).await
    })
    .await;
    assert!(r.is_err(), "a client with a short timeout gives up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_waits_untouched_until_its_gate_opens() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/faults", sb.control_url()))
        .json(&json!({"path_contains": "/resourcegroups/held", "method": "PUT", "count": 1, "fault": {"kind": "hold", "gate": "g1"}}))
        .send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let put = tokio::spawn({
        let arm = Arm::new(&sb);
        async move {
            arm.call(
                Method::PUT,
                "/resourcegroups/held?api-version=2025-04-01",
                Some(&json!({"location": "eastus"})),
            )
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sb.requests().iter().any(|r| r.method == "PUT") {
        assert!(Instant::now() < deadline, "the PUT reaches the sandbox");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let get = "/resourcegroups/held?api-version=2025-04-01";
    assert_eq!(
        arm.call(Method::GET, get, None).await.status,
        404,
        "the held PUT has not been applied"
    );
    assert!(!put.is_finished());
    let opened = http
        .post(format!("{}/gates/g1", sb.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status().as_u16(), 204);
    assert_eq!(put.await.unwrap().status, 201);
    assert_eq!(arm.call(Method::GET, get, None).await.status, 200);
}

async fn cluster(arm: &Arm) -> String {
    arm.call(
        Method::PUT,
        "/resourcegroups/rg?api-version=2025-04-01",
        Some(&json!({"location": "eastus"})),
    )
    .await;
    let path =
        "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1".to_string();
    let r = arm.call(Method::PUT, &format!("{path}?api-version=2026-08-01"),
        Some(&json!({"location": "eastus", "properties": {"agentPoolProfiles": [{"name": "system", "count": 1, "vmSize": "Standard_D4s_v3", "mode": "System"}]}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    path
}

#[tokio::test]
async fn failing_long_running_operation() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let path = cluster(&arm).await;
    sb.inject(
        FaultSpec::always(FaultKind::FailLro {
            code: "VMExtensionProvisioningError".into(),
            message: "VM has reported a failure".into(),
        })
        .on_path("agentPools/users")
        .times(1),
    );
    let pool = format!("{path}/agentPools/users?api-version=2026-08-01");
    let r = arm
        .call(
            Method::PUT,
            &pool,
            Some(&json!({"properties": {"count": 2, "vmSize": "Standard_D8s_v3"}})),
        )
        .await;
    assert_eq!(r.status, 201);
    let st = arm
        .wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "VMExtensionProvisioningError");
    let got = arm.call(Method::GET, &pool, None).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Failed");
    // The next attempt (rule consumed) succeeds.
    let r = arm
        .call(
            Method::PUT,
            &pool,
            Some(&json!({"properties": {"count": 2, "vmSize": "Standard_D8s_v3"}})),
        )
        .await;
    assert_eq!(
        arm.wait_async(&r.header("azure-asyncoperation").unwrap())
            .await["status"],
        "Succeeded"
    );
}

#[tokio::test]
async fn gpu_quota_errors_only_for_gpu_sizes() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let path = cluster(&arm).await;
    sb.inject(FaultSpec::always(FaultKind::GpuQuota));
    let r = arm
        .call(
            Method::PUT,
            &format!("{path}/agentPools/gpu?api-version=2026-08-01"),
            Some(&json!({"properties": {"count": 1, "vmSize": "Standard_NC6s_v3"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "QuotaExceeded");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("standardNCSv3Family")
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{path}/agentPools/cpu?api-version=2026-08-01"),
            Some(&json!({"properties": {"count": 1, "vmSize": "Standard_D4s_v3"}})),
        )
        .await;
    assert_eq!(r.status, 201, "CPU sizes are not affected: {}", r.body);
}

#[tokio::test]
async fn kubernetes_api_faults_use_status_bodies() {
    let (sb, client) = seeded().await;
    sb.inject(
        FaultSpec::always(FaultKind::ServerError { status: 500 })
            .on_path("/k8s/")
            .on_method("GET")
            .times(1),
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let err = pods.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 500),
        "{err:?}"
    );
    assert!(pods.list(&ListParams::default()).await.is_ok());
    // kube retries 429s by itself; a raw client sees the Status body and Retry-After.
    sb.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 2,
        })
        .on_path("/k8s/")
        .times(1),
    );
    let id = sb.cluster_kube_id("pangeo", "pangeoCluster").unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/k8s/{id}/api/v1/pods", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("TooManyRequests"))
    );
}

fn crashing_deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "simsvc:1"}]}}}})).unwrap()
}

async fn reason_events(client: &kube::Client, pod: &str) -> Vec<(String, String)> {
    let ev: Api<Event> = Api::namespaced(client.clone(), "default");
    ev.list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn crash_loops_and_oom_kills_show_in_container_statuses_and_events() {
    let (sb, client) = seeded().await;
    sb.inject(FaultSpec::always(FaultKind::CrashLoop {
        pod_prefix: "crashy-".into(),
        namespace: None,
    }));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &crashing_deployment("crashy"))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .list(&ListParams::default().labels("app=crashy"))
        .await
        .unwrap()
        .items
        .remove(0);
    let cs = &p
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert!(!cs.ready);
    assert!(cs.restart_count > 0);
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    let term = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (1, Some("Error")));
    let evs = reason_events(&client, p.metadata.name.as_ref().unwrap()).await;
    assert!(
        evs.iter().any(|(r, m)| r == "BackOff"
            && m.starts_with("Back-off restarting failed container main in pod")),
        "{evs:?}"
    );
    assert_eq!(
        deps.get("crashy")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas,
        None
    );

    // OOM kill applies to pods already running when the fault is injected.
    deps.create(&PostParams::default(), &crashing_deployment("hungry"))
        .await
        .unwrap();
    let p = pods
        .list(&ListParams::default().labels("app=hungry"))
        .await
        .unwrap()
        .items
        .remove(0);
    assert!(
        p.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .ready
    );
    let id = sb.inject(FaultSpec::always(FaultKind::OomKill {
        pod_prefix: "hungry-".into(),
        namespace: Some("default".into()),
    }));
    let p = pods.get(p.metadata.name.as_ref().unwrap()).await.unwrap();
    let cs = &p
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let term = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (137, Some("OOMKilled"))
    );
    let evs = reason_events(&client, p.metadata.name.as_ref().unwrap()).await;
    assert!(evs.iter().any(|(r, _)| r == "BackOff"), "{evs:?}");
    // Removing the fault lets the pod run again (after the next change the controllers see).
    assert!(sb.remove_fault(id));
    deps.patch_scale(
        "hungry",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let p = pods.get(p.metadata.name.as_ref().unwrap()).await.unwrap();
    assert!(p.status.unwrap().container_statuses.unwrap()[0].ready);
}

#[tokio::test]
async fn gpu_quota_also_stops_the_cluster_autoscaler() {
    let (sb, client) = seeded().await;
    sb.inject(FaultSpec::always(FaultKind::GpuQuota));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "train"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "train"}},
        "template": {"metadata": {"labels": {"app": "train"}}, "spec": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "t", "image": "runner:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}})).unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .list(&ListParams::default().labels("app=train"))
        .await
        .unwrap()
        .items
        .remove(0);
    let name = p.metadata.name.clone().unwrap();
    let mut msg = None;
    for _ in 0..60 {
        if let Some((_, m)) = reason_events(&client, &name)
            .await
            .into_iter()
            .find(|(r, _)| r == "FailedScaleUp")
        {
            msg = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msg = msg.expect("FailedScaleUp event");
    assert!(msg.contains("standardNCSv3Family"), "{msg}");
    let p = pods.get(&name).await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let arm = Arm::new(&sb);
    let pool = arm.call(Method::GET, "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools/gpu?api-version=2026-08-01", None).await;
    assert_eq!(pool.body["properties"]["count"], 0);
}

#[tokio::test]
async fn crash_loop_on_the_virtual_node_shows_in_aci() {
    let (sb, client) = seeded().await;
    sb.inject(FaultSpec::always(FaultKind::CrashLoop {
        pod_prefix: "vkcrash-".into(),
        namespace: None,
    }));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "vkcrash"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "vkcrash"}},
        "template": {"metadata": {"labels": {"app": "vkcrash"}}, "spec": {
            "nodeSelector": {"type": "virtual-kubelet"}, "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [{"name": "w", "image": "simsvc:1"}]}}}})).unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let arm = Arm::new(&sb);
    let groups = arm.call(Method::GET, "/resourceGroups/MC_pangeo_pangeoCluster_westeurope/providers/Microsoft.ContainerInstance/containerGroups?api-version=2025-09-01", None).await;
    let g = &groups.body["value"][0];
    let iv = &g["properties"]["containers"][0]["properties"]["instanceView"];
    assert_eq!(iv["restartCount"], 4, "{g}");
    assert_eq!(iv["currentState"]["state"], "Waiting");
    assert!(
        iv["currentState"]["detailStatus"]
            .as_str()
            .unwrap()
            .starts_with("CrashLoopBackOff")
    );
}

#[tokio::test]
async fn node_not_ready_sets_conditions_and_taints_and_recovers() {
    use k8s_openapi::api::core::v1::Node;
    let (sb, client) = seeded().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let users = nodes
        .list(&ListParams::default().labels("agentpool=users"))
        .await
        .unwrap()
        .items
        .remove(0);
    let name = users.metadata.name.clone().unwrap();
    let id = sb.inject(FaultSpec::always(FaultKind::NodeNotReady {
        node_prefix: "aks-users-".into(),
    }));
    let n = nodes.get(&name).await.unwrap();
    let ready = n
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("Unknown", Some("NodeStatusUnknown"))
    );
    let taints = n.spec.unwrap().taints.unwrap();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
    );
    let evs = reason_events(&client, &name).await;
    assert!(evs.iter().any(|(r, _)| r == "NodeNotReady"), "{evs:?}");
    // New pods avoid it.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = crashing_deployment("placed");
    d.spec.replicas = Some(4);
    deps.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in pods
        .list(&ListParams::default().labels("app=placed"))
        .await
        .unwrap()
        .items
    {
        assert_ne!(p.spec.unwrap().node_name.as_deref(), Some(name.as_str()));
    }
    assert!(sb.remove_fault(id));
    deps.patch_scale(
        "placed",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    sb.settle().await;
    let mut back = false;
    for _ in 0..50 {
        let n = nodes.get(&name).await.unwrap();
        if n.status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            assert!(
                n.spec
                    .unwrap()
                    .taints
                    .is_none_or(|t| t.iter().all(|t| t.key != "node.kubernetes.io/unreachable"))
            );
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(back, "the node is Ready again once the fault is removed");
}
