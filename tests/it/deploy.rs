//! `/deploy`, `/undeploy`, `/deployments` of the real `aks` plugin against the cloud sandbox,
//! with the shipped `config/apps/simsvc.toml`; assertions read the sandbox's Kubernetes and ARM
//! state, not only the replies.

use std::path::PathBuf;
use std::time::Duration;

use deckhand::router::ResponseKind;
use deckhand_it::aks::{arm_get, start_aks, start_aks_with};
use deckhand_it::cloud::CloudBot;
use deckhand_sandbox::SandboxOptions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

const SELECTOR: &str = "app.kubernetes.io/managed-by=deckhand,app.kubernetes.io/name=simsvc,app.kubernetes.io/instance=mpt";

fn shipped_apps() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/apps")
}

/// `[plugins.config.aks]` keys for deploy tests (appended to the section), apps from `apps`.
fn deploy_keys(apps: &std::path::Path) -> String {
    format!(
        "files = {{ apps = \"{}/*.toml\" }}\nrollout_poll = \"50ms\"\nrollout_timeout = \"20s\"\nrollout_stuck_after = \"1s\"\n",
        apps.display()
    )
}

/// The basic-auth Secret the seed makes with etc/make-htpasswd.sh (out of band, not by /deploy).
async fn make_auth_secret(cloud: &CloudBot) {
    let secrets: Api<Secret> = Api::namespaced(cloud.kube_client().await, "default");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "simsvc-basic-auth"},
        "stringData": {"auth": "intens:$apr1$test$hash"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
}

/// `Kind/name` → resourceVersion of every object carrying `selector`.
async fn labelled(cloud: &CloudBot, selector: &str) -> Vec<(String, String)> {
    let c = cloud.kube_client().await;
    let lp = ListParams::default().labels(selector);
    let mut out = Vec::new();
    macro_rules! collect {
        ($t:ty, $kind:literal) => {
            for o in Api::<$t>::namespaced(c.clone(), "default")
                .list(&lp)
                .await
                .unwrap()
                .items
            {
                out.push((
                    format!("{}/{}", $kind, o.metadata.name.unwrap()),
                    o.metadata.resource_version.unwrap(),
                ));
            }
        };
    }
    collect!(PersistentVolumeClaim, "PersistentVolumeClaim");
    collect!(Service, "Service");
    collect!(Deployment, "Deployment");
    collect!(Ingress, "Ingress");
    out.sort();
    out
}

fn names(objects: &[(String, String)]) -> Vec<&str> {
    objects.iter().map(|o| o.0.as_str()).collect()
}

async fn pods(cloud: &CloudBot, selector: &str) -> Vec<Value> {
    Api::<Pod>::namespaced(cloud.kube_client().await, "default")
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_simsvc_mpt_creates_exactly_the_objects_is_idempotent_and_undeploys() {
    let cloud = start_aks(Duration::from_millis(100), &deploy_keys(&shipped_apps())).await;
    make_auth_secret(&cloud).await;

    let (reply, progress, _) = cloud
        .bot
        .say_full(deckhand_it::admin(), "/deploy simsvc mpt")
        .await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    assert!(
        reply
            .text
            .contains("URL: https://intens.westeurope.cloudapp.azure.com/mpt"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("7 objects created"), "{}", reply.text);
    assert!(reply.text.contains("workers 2/2 ready"), "{}", reply.text);
    assert!(
        progress
            .iter()
            .any(|l| l.contains("Deployment simsvc-mpt-web created")),
        "{progress:?}"
    );

    let first = labelled(&cloud, SELECTOR).await;
    assert_eq!(
        names(&first),
        [
            "Deployment/simsvc-mpt-scheduler",
            "Deployment/simsvc-mpt-web",
            "Deployment/simsvc-mpt-workers",
            "Ingress/simsvc-mpt",
            "PersistentVolumeClaim/simsvc-mpt-work",
            "Service/simsvc-mpt-scheduler",
            "Service/simsvc-mpt-web",
        ]
    );
    // Nothing else carries Deckhand's label.
    assert_eq!(
        labelled(&cloud, "app.kubernetes.io/managed-by=deckhand")
            .await
            .len(),
        7
    );

    // The objects are what seed 000 describes.
    let c = cloud.kube_client().await;
    let ingress = Api::<Ingress>::namespaced(c.clone(), "default")
        .get("simsvc-mpt")
        .await
        .unwrap();
    let ingress = serde_json::to_value(ingress).unwrap();
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(
        annotations["cert-manager.io/cluster-issuer"],
        "intens-issuer"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/auth-type"],
        "basic"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/auth-secret"],
        "simsvc-basic-auth"
    );
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "intens.westeurope.cloudapp.azure.com");
    assert_eq!(rule["http"]["paths"][0]["path"], "/mpt");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["name"],
        "simsvc-mpt-web"
    );
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "intens-tls");
    let pvc = Api::<PersistentVolumeClaim>::namespaced(c.clone(), "default")
        .get("simsvc-mpt-work")
        .await
        .unwrap();
    assert_eq!(
        pvc.spec.unwrap().storage_class_name.as_deref(),
        Some("azurefile-csi")
    );
    let web = Api::<Deployment>::namespaced(c.clone(), "default")
        .get("simsvc-mpt-web")
        .await
        .unwrap();
    let web = serde_json::to_value(web).unwrap();
    let pod_spec = &web["spec"]["template"]["spec"];
    assert_eq!(
        pod_spec["containers"][0]["image"],
        "intens.azurecr.io/simsvc-mpt:latest"
    );
    assert_eq!(
        pod_spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "simsvc-mpt-work"
    );
    assert!(
        web["spec"]["template"]["metadata"]["annotations"]["deckhand.io/image-digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // Every pod runs, on regular nodes (no --virtual).
    let running = pods(&cloud, SELECTOR).await;
    assert_eq!(running.len(), 4);
    for p in &running {
        assert_eq!(p["status"]["phase"], "Running");
        assert!(
            p["spec"]["nodeName"].as_str().unwrap().starts_with("aks-"),
            "{}",
            p["spec"]["nodeName"]
        );
    }

    // A second run changes nothing.
    let again = cloud.bot.say("/deploy simsvc mpt").await;
    assert_eq!(again.kind, ResponseKind::Ok, "{}", again.text);
    assert!(again.text.contains("no changes"), "{}", again.text);
    assert_eq!(
        labelled(&cloud, SELECTOR).await,
        first,
        "resourceVersions unchanged"
    );

    // --replicas updates only the workers.
    let scaled = cloud.bot.say("/deploy simsvc mpt --replicas 3").await;
    assert_eq!(scaled.kind, ResponseKind::Ok, "{}", scaled.text);
    assert!(
        scaled
            .text
            .contains("updated Deployment simsvc-mpt-workers"),
        "{}",
        scaled.text
    );
    assert!(scaled.text.contains("workers 3/3 ready"), "{}", scaled.text);
    let after = labelled(&cloud, SELECTOR).await;
    let changed: Vec<&str> = after
        .iter()
        .zip(&first)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(changed, ["Deployment/simsvc-mpt-workers"]);

    let list = cloud.bot.say("/deployments").await;
    assert_eq!(list.kind, ResponseKind::Ok, "{}", list.text);
    assert!(
        list.text.contains("simsvc/mpt (default) tag latest"),
        "{}",
        list.text
    );
    assert!(list.text.contains("workers 3/3"), "{}", list.text);
    assert!(list.text.contains("— ready"), "{}", list.text);

    // /undeploy is destructive: Pending, then /confirm CODE removes exactly those objects.
    let pending = cloud.bot.say("/undeploy simsvc mpt").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    assert_eq!(
        labelled(&cloud, SELECTOR).await.len(),
        7,
        "nothing deleted before confirming"
    );
    let code = pending.confirmation.expect("confirmation code");
    let done = cloud.bot.say(&format!("/confirm {code}")).await;
    assert_eq!(done.kind, ResponseKind::Ok, "{}", done.text);
    assert!(done.text.contains("Ingress simsvc-mpt"), "{}", done.text);
    assert!(labelled(&cloud, SELECTOR).await.is_empty());
    assert!(
        pods(&cloud, SELECTOR).await.is_empty(),
        "pods go with their Deployments"
    );
    // What /deploy did not make stays.
    assert!(
        Api::<Secret>::namespaced(c.clone(), "default")
            .get_opt("simsvc-basic-auth")
            .await
            .unwrap()
            .is_some()
    );
    let (nothing, _, _) = cloud
        .bot
        .say_on(
            "terminal",
            deckhand_it::admin(),
            "/undeploy simsvc mpt --yes",
        )
        .await;
    assert_eq!(nothing.kind, ResponseKind::Error, "{}", nothing.text);
    assert!(
        nothing.text.contains("nothing to undeploy"),
        "{}",
        nothing.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_puts_scheduler_and_workers_on_the_virtual_node_and_aci_groups_appear() {
    let cloud = start_aks(Duration::from_millis(100), &deploy_keys(&shipped_apps())).await;
    make_auth_secret(&cloud).await;
    let reply = cloud
        .bot
        .say("/deploy simsvc mpt --virtual --replicas 3")
        .await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    assert!(
        reply.text.contains("workers 3/3 ready (virtual node)"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("web 1/1 ready,"), "{}", reply.text);

    let all = pods(&cloud, SELECTOR).await;
    assert_eq!(all.len(), 5);
    let mut on_virtual = Vec::new();
    for p in &all {
        let component = p["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .unwrap();
        let node = p["spec"]["nodeName"].as_str().unwrap();
        assert_eq!(p["status"]["phase"], "Running", "{component}");
        if component == "web" {
            assert!(
                node.starts_with("aks-"),
                "the web app stays on a regular node: {node}"
            );
            assert!(p["spec"]["dnsConfig"].is_null());
        } else {
            assert_eq!(node, "virtual-node-aci-linux", "{component}");
            assert_eq!(p["spec"]["dnsPolicy"], "None");
            assert_eq!(p["spec"]["dnsConfig"]["nameservers"][0], "10.0.0.10");
            on_virtual.push(p["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(on_virtual.len(), 4, "scheduler + 3 workers");

    // Each pod on the virtual node is an ACI container group in the node resource group.
    let cluster = arm_get(&cloud, &cloud.cluster_path()).await;
    let node_rg = cluster["properties"]["nodeResourceGroup"].as_str().unwrap();
    let groups = arm_get(
        &cloud,
        &format!("/resourceGroups/{node_rg}/providers/Microsoft.ContainerInstance/containerGroups"),
    )
    .await;
    let mut group_pods: Vec<String> = groups["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["tags"]["PodName"].as_str().unwrap().to_owned())
        .collect();
    group_pods.sort();
    on_virtual.sort();
    assert_eq!(group_pods, on_virtual);

    // Back to regular nodes: the same objects, updated; the ACI groups go away.
    let back = cloud.bot.say("/deploy simsvc mpt --replicas 3").await;
    assert_eq!(back.kind, ResponseKind::Ok, "{}", back.text);
    assert!(
        back.text
            .contains("updated Deployment simsvc-mpt-scheduler, Deployment simsvc-mpt-workers"),
        "{}",
        back.text
    );
    let groups = arm_get(
        &cloud,
        &format!("/resourceGroups/{node_rg}/providers/Microsoft.ContainerInstance/containerGroups"),
    )
    .await;
    assert!(groups["value"].as_array().unwrap().is_empty(), "{groups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_and_bad_input_stop_before_anything_is_applied() {
    let cloud = start_aks(Duration::from_millis(100), &deploy_keys(&shipped_apps())).await;
    let nothing_applied = || async {
        assert!(
            labelled(&cloud, "app.kubernetes.io/managed-by=deckhand")
                .await
                .is_empty(),
            "nothing may be applied"
        );
    };

    // The basic-auth Secret is missing.
    let no_secret = cloud.bot.say("/deploy simsvc mpt").await;
    assert_eq!(no_secret.kind, ResponseKind::Error);
    assert!(
        no_secret
            .text
            .contains("basic-auth Secret simsvc-basic-auth does not exist"),
        "{}",
        no_secret.text
    );
    nothing_applied().await;
    make_auth_secret(&cloud).await;

    // A tag the registry does not have.
    let missing = cloud.bot.say("/deploy simsvc mpt --tag v9").await;
    assert_eq!(missing.kind, ResponseKind::Error);
    assert!(
        missing
            .text
            .contains("image intens.azurecr.io/simsvc-mpt:v9 does not exist; its tags: latest"),
        "{}",
        missing.text
    );
    assert!(
        missing.text.contains("nothing was applied"),
        "{}",
        missing.text
    );
    // A model without an image at all.
    let no_repo = cloud.bot.say("/deploy simsvc wave").await;
    assert_eq!(no_repo.kind, ResponseKind::Error);
    assert!(
        no_repo.text.contains(
            "simsvc-wave:latest does not exist; the repository simsvc-wave does not exist"
        ),
        "{}",
        no_repo.text
    );
    nothing_applied().await;

    for (command, rule) in [
        (
            "/deploy simsvc MPT_1",
            "Kubernetes names are 1-63 lowercase",
        ),
        ("/deploy nosuch mpt", "unknown app \"nosuch\""),
        ("/deploy simsvc mpt --replicas -1", "replicas are 0 to 1000"),
        (
            "/deploy simsvc a-very-long-instance-name-that-kubernetes-would-reject-x",
            "1-63",
        ),
    ] {
        let reply = cloud.bot.say(command).await;
        assert_eq!(reply.kind, ResponseKind::Error, "{command}: {}", reply.text);
        assert!(reply.text.contains(rule), "{command}: {}", reply.text);
    }
    nothing_applied().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_without_a_virtual_node_says_how_to_turn_it_on() {
    let cloud = start_aks(Duration::from_millis(100), &deploy_keys(&shipped_apps())).await;
    make_auth_secret(&cloud).await;
    // Virtual nodes off: the addon disabled through ARM (as /vk disable does).
    let mut body = arm_get(&cloud, &cloud.cluster_path()).await;
    body["properties"]["addonProfiles"]["aciConnectorLinux"]["enabled"] = Value::Bool(false);
    let url = format!(
        "{}/subscriptions/{}{}?api-version=2026-08-01",
        cloud.sandbox.base_url(),
        cloud.sandbox.subscription_id(),
        cloud.cluster_path()
    );
    let put = reqwest::Client::new()
        .put(&url)
        .bearer_auth(cloud.sandbox.issue_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    deckhand_it::aks::settle(&cloud).await;
    let reply = cloud.bot.say("/deploy simsvc mpt --virtual").await;
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
    assert!(
        reply.text.contains("/vk enable --cluster pangeoCluster"),
        "{}",
        reply.text
    );
    assert!(
        labelled(&cloud, "app.kubernetes.io/managed-by=deckhand")
            .await
            .is_empty()
    );
}

/// A GPU app with no GPU node (the seeded gpu pool is at 0, autoscaler off): /deploy explains
/// the FailedScheduling and names the command that fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_says_which_command_adds_the_missing_gpu_node() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(
        apps.path().join("trainer.toml"),
        r#"
image = "intens.azurecr.io/simsvc-{instance}"
[[components]]
name = "gpu-worker"
pool = "gpu"
gpus = 1
args = ["train"]
"#,
    )
    .unwrap();
    let cloud = start_aks_with(
        SandboxOptions {
            lro_delay: Duration::from_millis(100),
            cluster_autoscaler: false,
            ..SandboxOptions::default()
        },
        &deploy_keys(apps.path()),
    )
    .await;
    let (reply, progress, _) = cloud
        .bot
        .say_full(deckhand_it::admin(), "/deploy trainer mpt")
        .await;
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
    assert!(reply.text.contains("gpu-worker 0/1"), "{}", reply.text);
    assert!(
        reply
            .text
            .contains("didn't match Pod's node affinity/selector"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("`/aks scale --pool gpu --count 1`"),
        "{}",
        reply.text
    );
    assert!(
        progress
            .iter()
            .any(|l| l.starts_with("rollout: gpu-worker 0/1")),
        "{progress:?}"
    );
    // The object stays applied (the rollout goes on); the pod asks for the GPU pool.
    let pending = pods(
        &cloud,
        "app.kubernetes.io/name=trainer,app.kubernetes.io/instance=mpt",
    )
    .await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["status"]["phase"], "Pending");
    assert_eq!(
        pending[0]["spec"]["nodeSelector"]["kubernetes.azure.com/agentpool"],
        "gpu"
    );
}

/// `deckhand shell --sandbox` with the real aks and vk plugins, driven through piped stdin.
#[test]
fn deploy_and_vk_through_the_real_binary_with_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    for name in ["aks", "vk"] {
        let built = deckhand_it::product_plugin_library(name);
        std::fs::copy(&built, plugin_dir.join(built.file_name().unwrap())).unwrap();
    }
    // The shipped simsvc definition, minus the basic-auth Secret the sandbox does not have
    // (a shell cannot create it, and /deploy refuses to point an Ingress at a missing one).
    let apps = dir.path().join("apps");
    std::fs::create_dir_all(&apps).unwrap();
    let simsvc = std::fs::read_to_string(shipped_apps().join("simsvc.toml")).unwrap();
    let simsvc: String = simsvc
        .lines()
        .filter(|l| !l.starts_with("auth_secret"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(apps.join("simsvc.toml"), simsvc).unwrap();
    let extra = format!(
        "\n[plugins.config.aks]\nfiles = {{ apps = \"{}/*.toml\" }}\nrollout_poll = \"100ms\"\n\n[plugins.config.vk]\nresource_group = \"pangeo\"\ndefault_cluster = \"pangeoCluster\"\n",
        apps.display()
    );
    let config = dir.path().join("deckhand.toml");
    std::fs::write(
        &config,
        deckhand_it::config_text(&plugin_dir, &dir.path().join("state.db"), &extra),
    )
    .unwrap();
    let out = deckhand_it::run_deckhand(
        &["shell", "--sandbox"],
        &config,
        &[],
        b"/deploy simsvc mpt --virtual\n/deployments\n/vk status\n/deploy simsvc mpt --tag v9\n/undeploy simsvc mpt --yes\n/deployments\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "Deployed simsvc/mpt on pangeoCluster",
        "workers 2/2 ready (virtual node)",
        "URL: https://intens.westeurope.cloudapp.azure.com/mpt",
        "simsvc/mpt (default) tag latest",
        "→ ACI group default-simsvc-mpt-workers-",
        "image intens.azurecr.io/simsvc-mpt:v9 does not exist",
        "Undeployed simsvc/mpt from pangeoCluster",
        "No app instances deployed by Deckhand on pangeoCluster",
    ] {
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "missing {expected:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

/// Workers that crash: /deploy names the container, its restarts and how to read its logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_workers_are_reported_with_the_logs_command() {
    let cloud = start_aks(Duration::from_millis(100), &deploy_keys(&shipped_apps())).await;
    make_auth_secret(&cloud).await;
    cloud.sandbox.inject(deckhand_sandbox::FaultSpec::always(
        deckhand_sandbox::FaultKind::CrashLoop {
            pod_prefix: "simsvc-mpt-workers".into(),
            namespace: None,
        },
    ));
    let reply = cloud.bot.say("/deploy simsvc mpt").await;
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
    assert!(
        reply
            .text
            .contains("but not ready: web 1/1, scheduler 1/1, workers 0/2"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("container workers keeps crashing"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("`/vk logs simsvc-mpt-workers-"),
        "{}",
        reply.text
    );
}
