//! The real `daskhub` plugin (`libdeckhand_plugin_daskhub`):
//!
//! * against a real JupyterHub and a real Dask Gateway (`tests/it/support/daskhub.rs`, started
//!   once for the test that needs them), through `deckhand shell --sandbox`: status, clusters
//!   made by the real `dask-gateway` client, stop, a refused token, an unreachable service;
//! * `/daskhub deploy` with a **stand-in `helm`** (no helm binary installs here; it records
//!   its argument list and the values it reads on standard input) and the sandbox's
//!   Kubernetes for the tokens' Secret;
//! * `/daskhub workers` and `/daskhub pools` on the sandbox's ARM; `/dask` on its Kubernetes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use deckhand::router::ResponseKind;
use deckhand_it::aks::arm_get;
use deckhand_it::cloud::{CloudBot, cloud_config};
use deckhand_it::daskhub::{DaskHub, bot_with_programs, helm_calls, helm_stand_in};
use deckhand_it::product_plugin_library;
use deckhand_sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use serde_json::Value;

fn library() -> PathBuf {
    product_plugin_library("daskhub")
}

/// The outcome of one shell session.
struct Session {
    stdout: String,
    everything: String,
}

/// Runs `lines` in `deckhand shell --sandbox` with the plugin pointed at `hub` and `gateway`
/// URLs, their profiles holding `hub_token` and `gateway_token`.
fn shell(
    hub: &str,
    gateway: &str,
    hub_token: &str,
    gateway_token: &str,
    lines: &[&str],
) -> Session {
    shell_with_scheme(hub, gateway, hub_token, gateway_token, "jupyterhub", lines)
}

/// [`shell`] with the gateway profile's `Authorization` scheme.
fn shell_with_scheme(
    hub: &str,
    gateway: &str,
    hub_token: &str,
    gateway_token: &str,
    scheme: &str,
    lines: &[&str],
) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let config = deckhand_it::write_config(
        dir.path(),
        &[library()],
        &format!(
            r#"
[auth_profiles.daskhub-hub]
kind = "bearer"
token = "${{DASKHUB_IT_HUB_TOKEN}}"

[auth_profiles.daskhub-gateway]
kind = "bearer"
scheme = "{scheme}"
token = "${{DASKHUB_IT_GATEWAY_TOKEN}}"

[plugins.config.daskhub]
hub = {{ url = "{hub}", auth_profile = "daskhub-hub" }}
gateway = {{ url = "{gateway}", auth_profile = "daskhub-gateway" }}
"#
        ),
    );
    let mut input = lines.join("\n");
    input.push('\n');
    let out = deckhand_it::run_deckhand(
        &["shell", "--sandbox"],
        &config,
        &[
            ("DASKHUB_IT_HUB_TOKEN", OsStr::new(hub_token)),
            ("DASKHUB_IT_GATEWAY_TOKEN", OsStr::new(gateway_token)),
            ("RUST_LOG", OsStr::new("deckhand=debug")),
        ],
        input.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let db = std::fs::read(dir.path().join("state.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
    let everything = format!(
        "{stdout}\n{stderr}\n{}\n{}",
        String::from_utf8_lossy(&db),
        String::from_utf8_lossy(&wal)
    );
    Session { stdout, everything }
}

fn wait_for_status(hub: &DaskHub, cluster: &str, want: &str) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let status = hub.cluster_status(cluster);
        if status == want {
            return;
        }
        assert!(
            Instant::now() < end,
            "cluster {cluster} is {status}, not {want}:\n{}",
            hub.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_clusters_and_stop_against_a_real_jupyterhub_and_dask_gateway() {
    let hub = DaskHub::start();
    hub.add_user("alice");
    hub.add_user("bob");
    hub.start_server("alice");
    let cluster = hub.new_cluster(1);
    assert_eq!(hub.cluster_status(&cluster), "RUNNING");

    let session = shell(
        &hub.hub_url,
        &hub.gateway_url,
        &hub.admin_token,
        &hub.ops_token,
        &[
            "/daskhub status",
            "/daskhub clusters",
            "/daskhub stop no-such-cluster --yes",
            &format!("/daskhub stop {cluster} --yes"),
        ],
    );
    let out = &session.stdout;
    // Users and servers as the hub's REST API lists them: ops (the gateway identity), alice
    // with a ready server, bob without one.
    assert!(
        out.contains("JupyterHub: 3 users, 1 server running"),
        "{out}\n{}",
        hub.logs()
    );
    assert!(out.contains("  • alice: ready since "), "{out}");
    assert!(!out.contains("• bob"), "{out}");
    // The cluster made by the dask-gateway client, with the worker its scheduler reports.
    assert!(out.contains("Dask Gateway: 1 cluster"), "{out}");
    assert!(
        out.contains(&format!("  • {cluster}: RUNNING, 1 worker, ")),
        "{out}\n{}",
        hub.logs()
    );
    assert!(
        out.contains(&format!("1 Dask Gateway cluster at {}", hub.gateway_url)),
        "{out}"
    );
    // No release in the sandbox's cluster: the pods line and the URL say so.
    assert!(
        out.contains("Pods in pangeoCluster/dhub: ✗ hub 0/0, ✗ proxy 0/0"),
        "{out}"
    );
    assert!(
        out.contains("Public URL: none (no Service proxy-public in dhub)"),
        "{out}"
    );
    // Stop: an unknown name is answered with the clusters there are; then the real one stops.
    assert!(
        out.contains(&format!(
            "Dask Gateway has no cluster no-such-cluster; it has {cluster}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "✓ Stopped Dask Gateway cluster {cluster} (was RUNNING)"
        )),
        "{out}"
    );
    wait_for_status(&hub, &cluster, "STOPPED");
    let again = shell(
        &hub.hub_url,
        &hub.gateway_url,
        &hub.admin_token,
        &hub.ops_token,
        &[
            &format!("/daskhub stop {cluster} --yes"),
            "/daskhub stop ../x --yes",
        ],
    );
    assert!(
        again.stdout.contains(&format!(
            "Dask Gateway cluster {cluster} is already STOPPED"
        )),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains(
            "option --cluster of /daskhub stop: \"../x\" is not valid: Dask Gateway cluster names are"
        ),
        "{}",
        again.stdout
    );
    for token in [&hub.admin_token, &hub.ops_token] {
        assert!(
            !session.everything.contains(token.as_str()),
            "a token leaked"
        );
    }

    // Refused tokens: the hub answers 403; the gateway, which asks the hub, answers 500 for
    // a token the hub refuses and 401 when the profile sends no `jupyterhub` credential. Each
    // reply names the service, its URL and the auth profile to fix.
    let refused = shell(
        &hub.hub_url,
        &hub.gateway_url,
        "wrong-hub-token-000",
        "wrong-gateway-token-000",
        &["/daskhub status", "/daskhub clusters"],
    );
    let out = &refused.stdout;
    assert!(
        out.contains(&format!(
            "JupyterHub: ✗ JupyterHub at {}/hub/api/users refused the credentials of auth profile \"daskhub-hub\" (HTTP 403: Missing or invalid credentials.)",
            hub.hub_url
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Dask Gateway at {}/api/v1/clusters/ could not verify the token of auth profile \"daskhub-gateway\" with JupyterHub (HTTP 500",
            hub.gateway_url
        )),
        "{out}"
    );
    let wrong_scheme = shell_with_scheme(
        &hub.hub_url,
        &hub.gateway_url,
        &hub.admin_token,
        &hub.ops_token,
        "Bearer",
        &["/daskhub clusters"],
    );
    assert!(
        wrong_scheme.stdout.contains(&format!(
            "Dask Gateway at {}/api/v1/clusters/ refused the credentials of auth profile \"daskhub-gateway\" (HTTP 401: Authentication required)",
            hub.gateway_url
        )),
        "{}",
        wrong_scheme.stdout
    );

    // Nothing listens: the reply names what is unreachable, and where.
    let nowhere = format!("http://127.0.0.1:{}", deckhand_it::free_port());
    let unreachable = shell(
        &nowhere,
        &nowhere,
        "x-token-000",
        "y-token-000",
        &["/daskhub status", "/daskhub clusters"],
    );
    let out = &unreachable.stdout;
    assert!(
        out.contains(&format!(
            "JupyterHub: ✗ JupyterHub at {nowhere}/hub/api/users is unreachable"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Dask Gateway at {nowhere}/api/v1/clusters/ is unreachable"
        )),
        "{out}"
    );
}

/// A seeded sandbox and a bot with the daskhub plugin, `[host.programs]` holding `programs`.
async fn cloud_bot(programs: &[(&str, &Path)], section: &str) -> CloudBot {
    let sandbox = Sandbox::start(SandboxOptions {
        lro_delay: Duration::from_millis(200),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let estate = sandbox.seed_realistic_estate().await.expect("estate seeds");
    sandbox.settle().await;
    let extra = format!(
        "\n[plugins.config.daskhub]\nresource_group = \"{}\"\ndefault_cluster = \"{}\"\n{section}\n",
        estate.resource_group, estate.cluster
    );
    let config = cloud_config(&sandbox, &estate, &extra);
    let bot = bot_with_programs(&[library()], programs, &config);
    assert!(bot.app.load_errors.is_empty(), "{:?}", bot.app.load_errors);
    CloudBot {
        sandbox,
        estate,
        bot,
    }
}

fn secret_tokens(secret: &Secret) -> (String, String) {
    let data = secret.data.as_ref().expect("secret data");
    let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    (text("proxy-secret-token"), text("gateway-api-token"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_runs_helm_with_an_argument_list_and_values_on_stdin_and_keeps_tokens_in_a_secret() {
    let tools = tempfile::tempdir().unwrap();
    let helm = helm_stand_in(tools.path());
    let cloud = cloud_bot(
        &[("helm", &helm)],
        "[plugins.config.daskhub.values.lb]\njupyterhub = { proxy = { service = { type = \"LoadBalancer\" } } }\n",
    )
    .await;
    let first = cloud.bot.say("/daskhub deploy --values lb").await;
    assert_eq!(first.kind, ResponseKind::Ok, "{}", first.text);
    assert!(
        first.text.starts_with("✓ Release dask (daskhub) in pangeoCluster/dhub: deployed, revision 1. Tokens in Secret dhub/dask-daskhub-tokens (generated)"),
        "{}",
        first.text
    );
    let calls = helm_calls(tools.path());
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, ["version", "--short"]);
    assert_eq!(
        calls[1].0,
        [
            "upgrade",
            "--install",
            "--wait",
            "--create-namespace",
            "dask",
            "daskhub",
            "--repo",
            "https://helm.dask.org",
            "--namespace",
            "dhub",
            "--values",
            "-",
            "--output",
            "json"
        ]
    );
    let values: Value = serde_json::from_str(&calls[1].1).expect("helm read JSON values");
    let proxy = values["jupyterhub"]["proxy"]["secretToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateway = values["dask-gateway"]["gateway"]["auth"]["jupyterhub"]["apiToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&proxy, &gateway] {
        assert_eq!(token.len(), 64, "{token}");
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(proxy, gateway);
    assert_eq!(
        values["jupyterhub"]["hub"]["services"]["dask-gateway"]["apiToken"],
        gateway.as_str()
    );
    assert_eq!(
        values["jupyterhub"]["hub"]["networkPolicy"]["enabled"],
        false
    );
    assert_eq!(
        values["jupyterhub"]["proxy"]["service"]["type"],
        "LoadBalancer"
    );
    assert_eq!(
        values["dask-gateway"]["gateway"]["backend"]["worker"]["extraPodConfig"]["nodeSelector"]["k8s.dask.org/dedicated"],
        "worker"
    );

    // The tokens are kept in the Secret, and reused by the next deploy.
    let secrets: Api<Secret> = Api::namespaced(cloud.kube_client().await, "dhub");
    let secret = secrets.get("dask-daskhub-tokens").await.unwrap();
    assert_eq!(secret_tokens(&secret), (proxy.clone(), gateway.clone()));
    let second = cloud.bot.say("/daskhub deploy").await;
    assert_eq!(second.kind, ResponseKind::Ok, "{}", second.text);
    assert!(
        second
            .text
            .contains("revision 2. Tokens in Secret dhub/dask-daskhub-tokens (kept)"),
        "{}",
        second.text
    );
    let calls = helm_calls(tools.path());
    let again: Value = serde_json::from_str(&calls[3].1).unwrap();
    assert_eq!(again["jupyterhub"]["proxy"]["secretToken"], proxy.as_str());
    let after = secrets.get("dask-daskhub-tokens").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, secret.metadata.resource_version,
        "a second deploy changed the Secret"
    );

    // Tokens are in no argument list, reply or audit row.
    for (args, _) in &calls {
        assert!(
            !args
                .iter()
                .any(|a| a.contains(&proxy) || a.contains(&gateway)),
            "{args:?}"
        );
    }
    let db = std::fs::read(cloud.bot.dir.path().join("state.db")).unwrap_or_default();
    let wal = std::fs::read(cloud.bot.dir.path().join("state.db-wal")).unwrap_or_default();
    let stored = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&db),
        String::from_utf8_lossy(&wal),
        first.text,
        second.text
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    for token in [&proxy, &gateway] {
        assert!(
            !stored.contains(token.as_str()) && !stored.contains(&b64.encode(token)),
            "a token was stored or shown"
        );
    }

    // Bad input is answered before anything runs.
    let unknown = cloud.bot.say("/daskhub deploy --values nope").await;
    assert_eq!(unknown.kind, ResponseKind::Error);
    assert!(
        unknown
            .text
            .contains("there are no values \"nope\": configured are lb"),
        "{}",
        unknown.text
    );
    let bad = cloud.bot.say("/daskhub deploy --namespace Bad_NS").await;
    assert_eq!(bad.kind, ResponseKind::Error);
    assert_eq!(helm_calls(tools.path()).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_says_how_to_get_helm_when_it_is_missing_or_not_allowed() {
    let not_allowed = cloud_bot(&[], "").await;
    let reply = not_allowed.bot.say("/daskhub deploy").await;
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(
        reply
            .text
            .contains("helm cannot be run: program \"helm\" is not configured in [host.programs]")
            && reply
                .text
                .contains("[host.programs] helm = \"/usr/local/bin/helm\""),
        "{}",
        reply.text
    );
    let missing = cloud_bot(&[("helm", Path::new("/nonexistent/bin/helm"))], "").await;
    let reply = missing.bot.say("/daskhub deploy").await;
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(
        reply
            .text
            .contains("helm cannot be run: cannot start /nonexistent/bin/helm")
            && reply.text.contains("install helm 3"),
        "{}",
        reply.text
    );
    // Nothing was written before helm was found.
    let secrets: Api<Secret> = Api::namespaced(missing.kube_client().await, "dhub");
    assert!(
        secrets
            .get_opt("dask-daskhub-tokens")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_bounds_and_seed_pools_through_arm() {
    let cloud = cloud_bot(&[], "user_pool = \"dhusers\"\n").await;
    let bad = cloud.bot.say("/daskhub workers --min 5 --max 2").await;
    assert_eq!(bad.kind, ResponseKind::Error);
    assert!(
        bad.text.contains("--max 2 is below --min 5"),
        "{}",
        bad.text
    );
    let too_many = cloud.bot.say("/daskhub workers --min 0 --max 5000").await;
    assert!(
        too_many.text.contains("more than the 1000 nodes"),
        "{}",
        too_many.text
    );

    let set = cloud.bot.say("/daskhub workers --min 0 --max 40").await;
    assert_eq!(set.kind, ResponseKind::Ok, "{}", set.text);
    assert!(
        set.text
            .starts_with("✓ Pool workers of pangeoCluster autoscales 0..40 (was 0..50"),
        "{}",
        set.text
    );
    let pool = arm_get(
        &cloud,
        &format!("{}/agentPools/workers", cloud.cluster_path()),
    )
    .await;
    assert_eq!(pool["properties"]["minCount"], 0);
    assert_eq!(pool["properties"]["maxCount"], 40);
    assert_eq!(pool["properties"]["scaleSetPriority"], "Spot");
    let same = cloud.bot.say("/daskhub workers --min 0 --max 40").await;
    assert!(
        same.text.contains("already autoscales 0..40") && same.text.contains("nothing changed"),
        "{}",
        same.text
    );

    let pools = cloud.bot.say("/daskhub pools").await;
    assert_eq!(pools.kind, ResponseKind::Ok, "{}", pools.text);
    assert!(pools.text.contains("• dhusers: ✓ created (Standard_D2s_v3, hub.jupyter.org/node-purpose=user, autoscale 0..10)"), "{}", pools.text);
    assert!(
        pools.text.contains("• workers: already there"),
        "{}",
        pools.text
    );
    let created = arm_get(
        &cloud,
        &format!("{}/agentPools/dhusers", cloud.cluster_path()),
    )
    .await;
    assert_eq!(
        created["properties"]["nodeLabels"]["hub.jupyter.org/node-purpose"],
        "user"
    );
    assert_eq!(created["properties"]["maxCount"], 10);
    let again = cloud.bot.say("/daskhub pools").await;
    assert!(
        again
            .text
            .contains("• dhusers: already there (1 × Standard_D2s_v3, autoscale 0..10)\n"),
        "{}",
        again.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_dask_deploy_scale_endpoints_and_delete_on_kubernetes() {
    let cloud = cloud_bot(&[], "").await;
    let bad = cloud
        .bot
        .say("/dask deploy arl --worker-memory 512MB")
        .await;
    assert_eq!(bad.kind, ResponseKind::Error);
    assert!(
        bad.text.contains("\"512MB\" is not a Kubernetes quantity"),
        "{}",
        bad.text
    );
    let bad_nfs = cloud.bot.say("/dask deploy arl --nfs nfs-server").await;
    assert!(
        bad_nfs.text.contains("is not SERVER:/PATH"),
        "{}",
        bad_nfs.text
    );

    let line = "/dask deploy arl --workers 2 --nfs 192.168.0.168:/arl --pull-secret arlregcred";
    let first = cloud.bot.say(line).await;
    assert_eq!(first.kind, ResponseKind::Ok, "{}", first.text);
    assert!(first.ephemeral, "the password is for the caller only");
    let password = first.text.split("): ").last().unwrap().trim().to_owned();
    assert_eq!(password.len(), 24, "{}", first.text);
    let client = cloud.kube_client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let workers = deployments.get("arl-worker").await.unwrap();
    let spec = &workers.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.image_pull_secrets.as_ref().unwrap()[0].name,
        "arlregcred"
    );
    assert_eq!(
        pod.volumes.as_ref().unwrap()[0].nfs.as_ref().unwrap().path,
        "/arl"
    );
    let limits = pod.containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits["cpu"].0, "500m");
    assert_eq!(limits["memory"].0, "512Mi");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let ports: Vec<i32> = services
        .get("arl-scheduler")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [8786, 8787]);
    let secret: Api<Secret> = Api::namespaced(client.clone(), "default");
    let kept = secret.get("arl-notebook").await.unwrap();
    assert_eq!(kept.data.unwrap()["password"].0, password.as_bytes());

    let second = cloud.bot.say(line).await;
    assert!(
        second.text.contains("nothing changed") && second.text.contains("password unchanged"),
        "{}",
        second.text
    );
    assert!(!second.text.contains(&password));

    let scaled = cloud.bot.say("/dask scale arl 3").await;
    assert_eq!(
        scaled.text,
        "✓ Dask arl workers: 2 → 3 in pangeoCluster/default."
    );
    assert_eq!(
        deployments.get("arl-worker").await.unwrap().spec.replicas,
        Some(3)
    );
    let endpoints = cloud.bot.say("/dask endpoints arl").await;
    assert!(
        endpoints.text.contains("scheduler 8786")
            && endpoints.text.contains("dashboard 8787")
            && endpoints.text.contains("notebook 8888"),
        "{}",
        endpoints.text
    );
    let missing = cloud.bot.say("/dask scale nope 2").await;
    assert!(
        missing.text.contains("there is no Dask nope"),
        "{}",
        missing.text
    );

    let deleted = cloud
        .bot
        .say_on("terminal", deckhand_it::admin(), "/dask delete arl --yes")
        .await
        .0;
    assert_eq!(deleted.kind, ResponseKind::Ok, "{}", deleted.text);
    assert!(deployments.get_opt("arl-worker").await.unwrap().is_none());
    assert!(services.get_opt("arl-notebook").await.unwrap().is_none());
}
