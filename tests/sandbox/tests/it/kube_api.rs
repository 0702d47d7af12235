//! kube's typed Api against a sandbox cluster: discovery, every served resource and verb,
//! watches (including scale and node events), the scheduler and virtual nodes.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchParams,
};
use kube::core::WatchEvent;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Arm, kube_client, next_event, sandbox, seeded};

fn deployment(name: &str, replicas: i32, extra_spec: Value) -> Deployment {
    let mut pod_spec = json!({"containers": [{"name": "app", "image": "intens.azurecr.io/simsvc:latest",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]});
    if let (Some(p), Some(e)) = (pod_spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}
    }))
    .unwrap()
}

async fn events_for(client: &kube::Client, ns: &str, name: &str) -> Vec<Event> {
    let ev: Api<Event> = Api::namespaced(client.clone(), ns);
    ev.list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn version_and_discovery() {
    let (_sb, client) = seeded().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let core = client.list_core_api_versions().await.unwrap();
    assert_eq!(core.versions, vec!["v1".to_string()]);
    let d = kube::Discovery::new(client.clone()).run().await.unwrap();
    let apps = d.get("apps").expect("apps group");
    assert!(
        apps.recommended_resources()
            .iter()
            .any(|(r, _)| r.kind == "Deployment")
    );
    assert!(d.get("coordination.k8s.io").is_some());
    assert!(d.get("networking.k8s.io").is_some());
    let core = d.get("").expect("core group");
    for kind in [
        "Pod",
        "Node",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Event",
        "PersistentVolumeClaim",
        "Namespace",
    ] {
        assert!(
            core.recommended_resources()
                .iter()
                .any(|(r, _)| r.kind == kind),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn nodes_follow_agent_pools_and_virtual_node() {
    let (sb, client) = seeded().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let all = nodes.list(&ListParams::default()).await.unwrap().items;
    let system = nodes
        .list(&ListParams::default().labels("agentpool=system"))
        .await
        .unwrap()
        .items;
    assert_eq!(system.len(), 2);
    let n = &system[0];
    let name = n.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("aks-system-") && name.ends_with("-vmss000000"),
        "{name}"
    );
    let labels = n.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.azure.com/agentpool"], "system");
    assert_eq!(
        labels["node.kubernetes.io/instance-type"],
        "Standard_D4s_v3"
    );
    assert_eq!(labels["kubernetes.azure.com/mode"], "system");
    let vn = nodes.get("virtual-node-aci-linux").await.unwrap();
    assert_eq!(vn.metadata.labels.unwrap()["type"], "virtual-kubelet");
    let taint = &vn.spec.unwrap().taints.unwrap()[0];
    assert_eq!(
        (taint.key.as_str(), taint.effect.as_str()),
        ("virtual-kubelet.io/provider", "NoSchedule")
    );
    assert_eq!(
        all.len(),
        4,
        "2 system + 1 users + virtual node; gpu and workers at 0"
    );
    assert!(
        nodes
            .list(&ListParams::default().labels("agentpool=gpu"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Watch nodes, then scale the GPU and Spot pools through ARM.
    let rv = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = Box::pin(
        nodes
            .watch(&WatchParams::default().timeout(20), &rv)
            .await
            .unwrap(),
    );
    let arm = Arm::new(&sb);
    let pool = "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools";
    let r = arm
        .call(
            Method::GET,
            &format!("{pool}/gpu?api-version=2026-08-01"),
            None,
        )
        .await;
    let mut body = r.body.clone();
    body["properties"]["count"] = json!(1);
    let r = arm
        .call(
            Method::PUT,
            &format!("{pool}/gpu?api-version=2026-08-01"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "Scaling");
    let ev = next_event(&mut w, "a GPU node", |e| matches!(e, WatchEvent::Added(n) if n.metadata.name.as_deref().unwrap_or("").starts_with("aks-gpu-"))).await;
    let WatchEvent::Added(gpu) = ev else {
        unreachable!()
    };
    let st = gpu.status.unwrap();
    assert_eq!(st.capacity.unwrap()["nvidia.com/gpu"].0, "1");
    assert_eq!(
        gpu.metadata.labels.unwrap()["kubernetes.azure.com/accelerator"],
        "nvidia"
    );

    let r = arm
        .call(
            Method::GET,
            &format!("{pool}/workers?api-version=2026-08-01"),
            None,
        )
        .await;
    let mut body = r.body.clone();
    body["properties"]["count"] = json!(2);
    let r = arm
        .call(
            Method::PUT,
            &format!("{pool}/workers?api-version=2026-08-01"),
            Some(&body),
        )
        .await;
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let spot = nodes
        .list(&ListParams::default().labels("kubernetes.azure.com/scalesetpriority=spot"))
        .await
        .unwrap()
        .items;
    assert_eq!(spot.len(), 2);
    let taints = spot[0].spec.clone().unwrap().taints.unwrap();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "kubernetes.azure.com/scalesetpriority"
                && t.value.as_deref() == Some("spot")
                && t.effect == "NoSchedule")
    );
    // Scaling down removes nodes.
    body["properties"]["count"] = json!(0);
    let r = arm
        .call(
            Method::PUT,
            &format!("{pool}/workers?api-version=2026-08-01"),
            Some(&body),
        )
        .await;
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    next_event(&mut w, "a Spot node deleted", |e| matches!(e, WatchEvent::Deleted(n) if n.metadata.name.as_deref().unwrap_or("").starts_with("aks-workers-"))).await;
    assert!(
        nodes
            .list(&ListParams::default().labels("agentpool=workers"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn deployments_scale_with_watch_and_pods_run() {
    let (_sb, client) = seeded().await;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "simsvc"}})).unwrap(),
    )
    .await
    .unwrap();
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "simsvc");
    let created = deps
        .create(&PostParams::default(), &deployment("mpt", 2, json!({})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "simsvc");
    let running = pods
        .list(
            &ListParams::default()
                .labels("app=mpt")
                .fields("status.phase=Running"),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(running.len(), 2);
    let p = &running[0];
    assert!(p.metadata.name.as_ref().unwrap().starts_with("mpt-"));
    assert!(
        p.spec
            .as_ref()
            .unwrap()
            .node_name
            .as_ref()
            .unwrap()
            .starts_with("aks-")
    );
    assert!(
        p.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .ready
    );
    let d = deps.get("mpt").await.unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(2));

    let mut w = Box::pin(
        deps.watch(&WatchParams::default().timeout(20), &rv)
            .await
            .unwrap(),
    );
    let scale = deps
        .patch_scale(
            "mpt",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    next_event(
        &mut w,
        "deployment scaled to 5",
        |e| matches!(e, WatchEvent::Modified(d) if d.spec.replicas == Some(5)),
    )
    .await;
    next_event(&mut w, "5 ready replicas", |e| matches!(e, WatchEvent::Modified(d) if d.status.as_ref().and_then(|s| s.ready_replicas) == Some(5))).await;
    assert_eq!(
        pods.list(&ListParams::default().labels("app=mpt"))
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    assert_eq!(
        deps.get_scale("mpt")
            .await
            .unwrap()
            .status
            .unwrap()
            .replicas,
        5
    );

    let log = pods
        .logs(
            running[0].metadata.name.as_ref().unwrap(),
            &LogParams::default(),
        )
        .await
        .unwrap();
    assert!(log.contains("simsvc:latest"), "{log}");
    let evs = events_for(
        &client,
        "simsvc",
        running[0].metadata.name.as_ref().unwrap(),
    )
    .await;
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("Scheduled")));

    deps.delete("mpt", &DeleteParams::default()).await.unwrap();
    assert!(
        pods.list(&ListParams::default().labels("app=mpt"))
            .await
            .unwrap()
            .items
            .is_empty(),
        "pods are garbage-collected"
    );
}

#[tokio::test]
async fn crud_verbs_on_core_resources() {
    let (_sb, client) = seeded().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "studioml-env", "labels": {"app": "runner"}}, "data": {"AMQP_URL": "amqp://a"}})).unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(
        matches!(cms.create(&PostParams::default(), &cm).await, Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists")
    );
    // replace with the current resourceVersion works; with a stale one it conflicts
    let mut cm2 = cm.clone();
    cm2.data.as_mut().unwrap().insert("X".into(), "1".into());
    let cm3 = cms
        .replace("studioml-env", &PostParams::default(), &cm2)
        .await
        .unwrap();
    let err = cms
        .replace("studioml-env", &PostParams::default(), &cm2)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));
    // merge, json and strategic patches
    let p = cms
        .patch(
            "studioml-env",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"Y": "2", "X": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        p.data.as_ref().unwrap().get("Y").map(String::as_str),
        Some("2")
    );
    assert!(p.data.as_ref().unwrap().get("X").is_none());
    let p = cms
        .patch(
            "studioml-env",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{"op": "add", "path": "/data/Z", "value": "3"}]))
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.data.as_ref().unwrap()["Z"], "3");
    let p = cms
        .patch(
            "studioml-env",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"tier": "x"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["tier"], "x");
    assert!(cm3.metadata.resource_version != p.metadata.resource_version);
    assert_eq!(
        cms.list(&ListParams::default().labels("app=runner,tier in (x)"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        cms.list(&ListParams::default().fields("metadata.name=nope"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    cms.delete("studioml-env", &DeleteParams::default())
        .await
        .unwrap();
    assert!(matches!(cms.get("studioml-env").await, Err(kube::Error::Api(s)) if s.code == 404));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "registry"}, "stringData": {"password": "pw"}}),
    )
    .unwrap();
    let s = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(s.data.unwrap()["password"].0, b"pw".to_vec());
    assert_eq!(s.type_.as_deref(), Some("Opaque"));

    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap();
    let svc = svcs.create(&PostParams::default(), &svc).await.unwrap();
    assert!(svc.spec.unwrap().cluster_ip.is_some());
    assert!(
        svc.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
            .ip
            .is_some()
    );

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    assert!(sas.get("default").await.is_ok());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "work"}, "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}}})).unwrap();
    let pvc = pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    let ings: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let ing: Ingress = serde_json::from_value(json!({"metadata": {"name": "mpt"}, "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [{"path": "/mpt", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})).unwrap();
    let ing = ings.create(&PostParams::default(), &ing).await.unwrap();
    assert!(
        ing.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
            .ip
            .is_some(),
        "the ingress controller publishes an address"
    );
    assert_eq!(
        ings.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let l: Lease = serde_json::from_value(json!({"metadata": {"name": "deckhand-leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})).unwrap();
    let l = leases.create(&PostParams::default(), &l).await.unwrap();
    let mut l2 = l.clone();
    l2.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("deckhand-leader", &PostParams::default(), &l2)
        .await
        .unwrap();
    assert!(
        leases
            .replace("deckhand-leader", &PostParams::default(), &l2)
            .await
            .is_err(),
        "stale lease update conflicts"
    );

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let s: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "rabbitmq"}, "spec": {"replicas": 2, "serviceName": "rabbitmq",
        "selector": {"matchLabels": {"app": "rabbitmq"}}, "template": {"metadata": {"labels": {"app": "rabbitmq"}},
        "spec": {"containers": [{"name": "rabbitmq", "image": "rabbitmq:3"}]}}}})).unwrap();
    sts.create(&PostParams::default(), &s).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(pods.get("rabbitmq-0").await.is_ok() && pods.get("rabbitmq-1").await.is_ok());
    sts.patch_scale(
        "rabbitmq",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    assert!(pods.get("rabbitmq-1").await.is_err());
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let d: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "nvidia-device-plugin"}, "spec": {"selector": {"matchLabels": {"name": "nvidia"}},
        "template": {"metadata": {"labels": {"name": "nvidia"}}, "spec": {"containers": [{"name": "p", "image": "nvidia/k8s-device-plugin:v0.17"}]}}}})).unwrap();
    ds.create(&PostParams::default(), &d).await.unwrap();
    assert!(
        ds.get("nvidia-device-plugin")
            .await
            .unwrap()
            .status
            .is_some()
    );
    // Invalid objects get 422.
    let bad = deployment("Bad_Name", 1, json!({}));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    assert!(
        matches!(deps.create(&PostParams::default(), &bad).await, Err(kube::Error::Api(s)) if s.code == 422)
    );
    // Namespaces cascade.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap(),
    )
    .await
    .unwrap();
    let tmp: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    tmp.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
    )
    .await
    .unwrap();
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    assert!(tmp.get("x").await.is_err());
}

#[tokio::test]
async fn server_side_apply_with_field_managers() {
    let (_sb, client) = seeded().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut cfg = serde_json::to_value(deployment("runner", 1, json!({}))).unwrap();
    let d = deps
        .patch(
            "runner",
            &PatchParams::apply("deckhand"),
            &Patch::Apply(&cfg),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(1));
    let mf = d.metadata.managed_fields.unwrap();
    assert!(mf.iter().any(
        |m| m.manager.as_deref() == Some("deckhand") && m.operation.as_deref() == Some("Apply")
    ));
    cfg["spec"]["replicas"] = json!(3);
    let err = deps
        .patch(
            "runner",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(&cfg),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.message.contains("conflict with \"deckhand\"")),
        "{err:?}"
    );
    let d = deps
        .patch(
            "runner",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&cfg),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(3));
    let missing = deps
        .patch("runner", &PatchParams::default(), &Patch::Apply(&cfg))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(s) if s.code == 422),
        "apply needs a field manager"
    );
}

#[tokio::test]
async fn watch_bookmarks_and_expired_versions() {
    let (sb, client) = seeded().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = Box::pin(
        cms.watch(
            &WatchParams {
                bookmarks: true,
                ..Default::default()
            }
            .timeout(10),
            &rv,
        )
        .await
        .unwrap(),
    );
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap(),
    )
    .await
    .unwrap();
    next_event(
        &mut w,
        "ADDED a",
        |e| matches!(e, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("a")),
    )
    .await;
    let ev = next_event(&mut w, "a bookmark", |e| {
        matches!(e, WatchEvent::Bookmark(_))
    })
    .await;
    let WatchEvent::Bookmark(b) = ev else {
        unreachable!()
    };
    assert!(b.metadata.resource_version.parse::<u64>().unwrap() > rv.parse::<u64>().unwrap());

    sb.compact_watch_history("pangeo", "pangeoCluster").unwrap();
    let mut w = Box::pin(
        cms.watch(&WatchParams::default().timeout(10), &rv)
            .await
            .unwrap(),
    );
    let ev = next_event(&mut w, "410", |e| matches!(e, WatchEvent::Error(_))).await;
    let WatchEvent::Error(s) = ev else {
        unreachable!()
    };
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn scheduler_reports_failed_scheduling_like_kube_scheduler() {
    // A cluster of three plain nodes: the exact wording of the real scheduler.
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    arm.call(
        Method::PUT,
        "/resourcegroups/rg?api-version=2025-04-01",
        Some(&json!({"location": "eastus"})),
    )
    .await;
    let r = arm.call(Method::PUT, "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1?api-version=2026-08-01",
        Some(&json!({"location": "eastus", "properties": {"dnsPrefix": "c1", "agentPoolProfiles": [{"name": "system", "count": 3, "vmSize": "Standard_D4s_v3", "mode": "System"}]}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let client = kube_client(&sb, "rg", "c1").await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let gpu_req = json!({"containers": [{"name": "train", "image": "runner:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}]});
    let mut d = deployment("train", 1, json!({}));
    d.spec.template.spec = Some(serde_json::from_value(gpu_req).unwrap());
    deps.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .list(&ListParams::default().labels("app=train"))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    let evs = events_for(&client, "default", p.metadata.name.as_ref().unwrap()).await;
    let failed = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .expect("FailedScheduling event");
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .starts_with("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
        "{:?}",
        failed.message
    );
}

#[tokio::test]
async fn gpu_pool_scale_up_schedules_pending_pod_and_virtual_node_makes_aci_groups() {
    let (sb, client) = seeded().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let spec = json!({"nodeSelector": {"agentpool": "gpu"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "runner", "image": "runner:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}]});
    let mut d = deployment("runner", 1, json!({}));
    d.spec.template.spec = Some(serde_json::from_value(spec).unwrap());
    deps.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .list(&ListParams::default().labels("app=runner"))
        .await
        .unwrap()
        .items
        .remove(0);
    let evs = events_for(&client, "default", p.metadata.name.as_ref().unwrap()).await;
    let msg = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(msg.starts_with("0/4 nodes are available: "), "{msg}");
    assert!(
        msg.contains("node(s) didn't match Pod's node affinity/selector"),
        "{msg}"
    );
    let arm = Arm::new(&sb);
    let pool = "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools/gpu?api-version=2026-08-01";
    let mut body = arm.call(Method::GET, pool, None).await.body;
    body["properties"]["count"] = json!(1);
    let r = arm.call(Method::PUT, pool, Some(&body)).await;
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let p = pods.get(p.metadata.name.as_ref().unwrap()).await.unwrap();
    assert!(p.spec.unwrap().node_name.unwrap().starts_with("aks-gpu-"));
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));

    // Virtual node: pods selecting it become ACI container groups in the node resource group.
    let vk = json!({"nodeSelector": {"type": "virtual-kubelet"}, "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
        "containers": [{"name": "worker", "image": "intens.azurecr.io/simsvc-mpt:latest", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]});
    let mut d = deployment("mpt-worker", 2, json!({}));
    d.spec.template.spec = Some(serde_json::from_value(vk).unwrap());
    deps.create(&PostParams::default(), &d).await.unwrap();
    let r = arm.call(Method::GET, "/resourceGroups/MC_pangeo_pangeoCluster_westeurope/providers/Microsoft.ContainerInstance/containerGroups?api-version=2025-09-01", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let groups = r.body["value"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{}", r.body);
    assert_eq!(
        groups[0]["properties"]["containers"][0]["properties"]["image"],
        "intens.azurecr.io/simsvc-mpt:latest"
    );
    deps.delete("mpt-worker", &DeleteParams::default())
        .await
        .unwrap();
    let r = arm.call(Method::GET, "/resourceGroups/MC_pangeo_pangeoCluster_westeurope/providers/Microsoft.ContainerInstance/containerGroups?api-version=2025-09-01", None).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn cluster_autoscaler_grows_and_shrinks_autoscaled_pools() {
    let sb = deckhand_sandbox::Sandbox::start(deckhand_sandbox::SandboxOptions {
        lro_delay: std::time::Duration::from_millis(100),
        scale_down_after: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let e = sb.seed_realistic_estate().await.unwrap();
    let client = kube_client(&sb, &e.resource_group, &e.cluster).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let gpu_spec = |gpus: i32| {
        json!({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "containers": [{"name": "runner", "image": "runner:1", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]})
    };
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = Box::pin(
        pods.watch(
            &WatchParams::default().labels("app=runner").timeout(20),
            &rv,
        )
        .await
        .unwrap(),
    );
    let mut d = deployment("runner", 1, json!({}));
    d.spec.template.spec = Some(serde_json::from_value(gpu_spec(1)).unwrap());
    deps.create(&PostParams::default(), &d).await.unwrap();
    let ev = next_event(&mut w, "runner pod running on a new GPU node", |e| matches!(e, WatchEvent::Modified(p)
        if p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| n.starts_with("aks-gpu-")))).await;
    let WatchEvent::Modified(p) = ev else {
        unreachable!()
    };
    let evs = events_for(&client, "default", p.metadata.name.as_ref().unwrap()).await;
    let up = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("TriggeredScaleUp"))
        .expect("TriggeredScaleUp");
    assert!(
        up.message.as_deref().unwrap().contains("0->1 (max: 4)"),
        "{:?}",
        up.message
    );
    let arm = Arm::new(&sb);
    let pool = "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools/gpu?api-version=2026-08-01";
    assert_eq!(
        arm.call(Method::GET, pool, None).await.body["properties"]["count"],
        1
    );

    // Two GPUs fit no pool (Standard_NC6s_v3 has one): the autoscaler says so.
    let mut big = deployment("big", 1, json!({}));
    big.spec.template.spec = Some(serde_json::from_value(gpu_spec(2)).unwrap());
    deps.create(&PostParams::default(), &big).await.unwrap();
    let bp = pods
        .list(&ListParams::default().labels("app=big"))
        .await
        .unwrap()
        .items
        .remove(0);
    let mut seen = false;
    for _ in 0..50 {
        let evs = events_for(&client, "default", bp.metadata.name.as_ref().unwrap()).await;
        if evs
            .iter()
            .any(|e| e.reason.as_deref() == Some("NotTriggerScaleUp"))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "NotTriggerScaleUp event");

    // Scale down once the node is empty.
    deps.delete("runner", &DeleteParams::default())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let mut gone = false;
    for _ in 0..60 {
        if nodes
            .list(&ListParams::default().labels("agentpool=gpu"))
            .await
            .unwrap()
            .items
            .is_empty()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "empty GPU node removed");
    assert_eq!(
        arm.call(Method::GET, pool, None).await.body["properties"]["count"],
        0
    );
}

#[tokio::test]
async fn kube_runtime_watchers_see_initial_state_and_changes() {
    use futures_util::StreamExt;
    use kube::runtime::watcher;
    let (_sb, client) = seeded().await;
    for cfg in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
        watcher::Config::default().page_size(2),
    ] {
        let nodes: Api<Node> = Api::all(client.clone());
        let mut s = Box::pin(watcher(nodes, cfg.clone()));
        let mut init = 0;
        let fut = async {
            while let Some(ev) = s.next().await {
                match ev.expect("watcher event") {
                    watcher::Event::InitApply(_) => init += 1,
                    watcher::Event::InitDone => return,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), fut)
            .await
            .expect("initial list completes");
        assert_eq!(init, 4, "{cfg:?}");
    }
    let events: Api<Event> = Api::all(client.clone());
    let mut s = Box::pin(watcher(events, watcher::Config::default()));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let fut = async {
        let mut created = false;
        while let Some(ev) = s.next().await {
            match ev.expect("watcher event") {
                watcher::Event::InitDone if !created => {
                    deps.create(&PostParams::default(), &deployment("late", 1, json!({})))
                        .await
                        .unwrap();
                    created = true;
                }
                watcher::Event::Apply(e)
                    if e.reason.as_deref() == Some("Started")
                        && e.involved_object
                            .name
                            .as_deref()
                            .unwrap_or("")
                            .starts_with("late-") =>
                {
                    return;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), fut)
        .await
        .expect("watcher sees the new pod's events");
}

#[tokio::test]
async fn jobs_run_to_completion_and_other_resources_are_stored() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
    use k8s_openapi::api::storage::v1::StorageClass;
    let (_sb, client) = seeded().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "migrate"}, "spec": {"completions": 2, "parallelism": 1,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "simsvc:1"}]}}}})).unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let mut done = false;
    for _ in 0..100 {
        let j = jobs.get("migrate").await.unwrap();
        if j.status.as_ref().and_then(|s| s.succeeded) == Some(2) {
            let conds = j.status.unwrap().conditions.unwrap();
            assert!(
                conds
                    .iter()
                    .any(|c| c.type_ == "Complete" && c.status == "True")
            );
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(done, "job completes");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ps = pods
        .list(&ListParams::default().labels("job-name=migrate"))
        .await
        .unwrap()
        .items;
    assert_eq!(ps.len(), 2);
    assert!(
        ps.iter()
            .all(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Succeeded"))
    );
    let bad: Job = serde_json::from_value(json!({"metadata": {"name": "bad"}, "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "x"}]}}}})).unwrap();
    assert!(
        matches!(jobs.create(&PostParams::default(), &bad).await, Err(kube::Error::Api(s)) if s.code == 422)
    );

    let scs: Api<StorageClass> = Api::all(client.clone());
    let default = scs.get("default").await.unwrap();
    assert_eq!(
        default.metadata.annotations.unwrap()["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert!(scs.get("azurefile-csi").await.is_ok());
    let crs: Api<ClusterRole> = Api::all(client.clone());
    crs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "runner"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})).unwrap()).await.unwrap();
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "default");
    rbs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "runner"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "runner"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})).unwrap()).await.unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    hpas.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "web"}, "spec": {"maxReplicas": 5,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    pdbs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})).unwrap()).await.unwrap();
    assert_eq!(
        pdbs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let d = kube::Discovery::new(client.clone()).run().await.unwrap();
    for g in [
        "batch",
        "rbac.authorization.k8s.io",
        "policy",
        "storage.k8s.io",
        "autoscaling",
    ] {
        assert!(d.get(g).is_some(), "{g}");
    }
}

#[tokio::test]
async fn daemonsets_follow_eligible_nodes_and_virtual_nodes_can_be_disabled() {
    let (sb, client) = seeded().await;
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let d: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "nvidia-device-plugin-daemonset"}, "spec": {
        "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
        "template": {"metadata": {"labels": {"name": "nvidia-device-plugin-ds"}}, "spec": {
            "nodeSelector": {"kubernetes.azure.com/accelerator": "nvidia"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "nvidia-device-plugin-ctr", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}]}}}})).unwrap();
    ds.create(&PostParams::default(), &d).await.unwrap();
    let st = ds
        .get("nvidia-device-plugin-daemonset")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.desired_number_scheduled, 0, "no GPU node yet");
    let arm = Arm::new(&sb);
    let pool = "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools/gpu?api-version=2026-08-01";
    let mut body = arm.call(Method::GET, pool, None).await.body;
    body["properties"]["count"] = json!(2);
    let r = arm.call(Method::PUT, pool, Some(&body)).await;
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let st = ds
        .get("nvidia-device-plugin-daemonset")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!((st.desired_number_scheduled, st.number_ready), (2, 2));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let on: Vec<String> = pods
        .list(&ListParams::default().labels("name=nvidia-device-plugin-ds"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.spec.unwrap().node_name.unwrap())
        .collect();
    assert_eq!(on.len(), 2);
    assert!(on.iter().all(|n| n.starts_with("aks-gpu-")), "{on:?}");

    // Turning the aciConnectorLinux addon off removes the virtual node.
    let cluster = "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster?api-version=2026-08-01";
    let mut c = arm.call(Method::GET, cluster, None).await.body;
    c["properties"]["addonProfiles"]["aciConnectorLinux"]["enabled"] = json!(false);
    let r = arm.call(Method::PUT, cluster, Some(&c)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let nodes: Api<Node> = Api::all(client.clone());
    assert!(nodes.get("virtual-node-aci-linux").await.is_err());
}

#[tokio::test]
async fn kubelet_pulls_only_existing_images_it_is_allowed_to() {
    let (sb, client) = seeded().await;
    let arm = Arm::new(&sb);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let with_image = |name: &str, image: &str, secrets: bool| {
        let mut d = deployment(name, 1, json!({}));
        let mut spec = json!({"containers": [{"name": "app", "image": image}]});
        if secrets {
            spec["imagePullSecrets"] = json!([{"name": "acr"}]);
        }
        d.spec.template.spec = Some(serde_json::from_value(spec).unwrap());
        d
    };
    // A tag that does not exist: ImagePullBackOff, as containerd reports it.
    deps.create(
        &PostParams::default(),
        &with_image("v9", "intens.azurecr.io/simsvc-mpt:v9", false),
    )
    .await
    .unwrap();
    let p = pods
        .list(&ListParams::default().labels("app=v9"))
        .await
        .unwrap()
        .items
        .remove(0);
    let st = p.status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let waiting = st.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
    assert!(
        waiting
            .message
            .unwrap()
            .contains("intens.azurecr.io/simsvc-mpt:v9: not found")
    );
    let evs = events_for(&client, "default", p.metadata.name.as_ref().unwrap()).await;
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("Failed")
        && e.message.as_deref() == Some("Error: ErrImagePull")));
    // Build the tag with ACR Tasks: the kubelet's next retry pulls it.
    let reg = "/resourceGroups/pangeo/providers/Microsoft.ContainerRegistry/registries/intens";
    let r = arm.call(Method::POST, &format!("{reg}/scheduleRun?api-version=2019-04-01"), Some(&json!({
        "type": "DockerBuildRequest", "imageNames": ["simsvc-mpt:v9"], "isPushEnabled": true, "sourceLocation": "https://example.invalid/src.tgz",
        "dockerFilePath": "Dockerfile", "platform": {"os": "Linux"}}))).await;
    assert_eq!(r.status, 200);
    let mut running = false;
    for _ in 0..100 {
        let p = pods.get(p.metadata.name.as_ref().unwrap()).await.unwrap();
        if p.status.unwrap().phase.as_deref() == Some("Running") {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(running, "the pod starts once the image exists");

    // Without the AcrPull assignment the pull is unauthorized (unless the pod has pull secrets).
    let scope = format!("{reg}/providers/Microsoft.Authorization/roleAssignments");
    let list = arm
        .call(
            Method::GET,
            &format!("{scope}?api-version=2022-04-01"),
            None,
        )
        .await;
    let ra = list.body["value"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(
        arm.call(
            Method::DELETE,
            &format!("{scope}/{ra}?api-version=2022-04-01"),
            None
        )
        .await
        .status,
        200
    );
    deps.create(
        &PostParams::default(),
        &with_image("noauth", "intens.azurecr.io/simsvc:latest", false),
    )
    .await
    .unwrap();
    deps.create(
        &PostParams::default(),
        &with_image("secret", "intens.azurecr.io/simsvc:latest", true),
    )
    .await
    .unwrap();
    let p = pods
        .list(&ListParams::default().labels("app=noauth"))
        .await
        .unwrap()
        .items
        .remove(0);
    let waiting = p.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert!(waiting.message.unwrap().contains("401 Unauthorized"));
    let p = pods
        .list(&ListParams::default().labels("app=secret"))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
}
