//! Hostile names and values at every command entry point that reaches an Azure or Kubernetes
//! path. Each must be refused with the rule it breaks, and nothing may reach the cloud sandbox
//! (its request journal stays empty) — not even for destructive commands, which must refuse
//! before they ask for a confirmation.

use deckhand::router::ResponseKind;
use deckhand_it::cloud::CloudBot;
use deckhand_it::product_plugin_library;
use deckhand_sandbox::SandboxOptions;

/// At least 100 values no Azure or Kubernetes naming rule accepts: dot segments and their
/// encodings, query/fragment/path injection, every control character, look-alikes, blanks,
/// over-long values and shell/SQL/JSON debris.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "..",
        ".",
        "",
        " ",
        "%2e%2e",
        "%2E%2E",
        "%2e.",
        ".%2e",
        "%252e%252e",
        "..%2f",
        "../kube-system",
        "..\\..",
        "./gpu",
        "gpu/..",
        "gpu/../..",
        "a/b",
        "/",
        "//",
        "gpu?api-version=1",
        "x?api-version=1",
        "gpu#frag",
        "#",
        "?",
        "gpu%3fapi-version%3d1",
        "gpu%23x",
        "gpu%2f..",
        "%00",
        "gpu%00",
        "%0d%0aHost: evil",
        "gpu\r\nX-Injected: 1",
        "gpu\nsecond",
        "gpu\t",
        "\tgpu",
        " gpu",
        "gpu ",
        "g pu",
        "ＧＰＵ",
        "gpu\u{200b}",
        "\u{202e}upg",
        "ｇｐｕ",
        "．．",
        "gpu\u{ff0f}..",
        "ğpu",
        "gpu;rm -rf /",
        "$(reboot)",
        "`id`",
        "gpu|cat",
        "gpu&&x",
        "gpu>out",
        "<script>",
        "' OR 1=1 --",
        "\"quoted\"",
        "{\"a\":1}",
        "gpu*",
        "*",
        "~",
        "@",
        "gpu:80",
        "a\\b",
        "-",
        "--",
        "_/_",
        "-gpu-",
        "%",
        "%zz",
        "%%",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Every C0 control character and DEL, inside a name.
    for c in (0u8..0x20).chain([0x7f]) {
        values.push(format!("g{}pu", c as char));
    }
    for n in [300, 1024, 100_000] {
        values.push("a".repeat(n) + "?");
        values.push(".".repeat(n));
    }
    values
}

/// POSIX single quoting, as a user would type a value with spaces or quotes in it.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

async fn start() -> CloudBot {
    let cloud = CloudBot::start_with(
        SandboxOptions::default(),
        &[product_plugin_library("aks"), product_plugin_library("vk")],
        |estate| {
            format!(
                "\n[plugins.config.aks]\nresource_group = \"{rg}\"\ndefault_cluster = \"{c}\"\nkube_cluster = \"{c}\"\n\
                 \n[plugins.config.vk]\nresource_group = \"{rg}\"\ndefault_cluster = \"{c}\"\n",
                rg = estate.resource_group,
                c = estate.cluster
            )
        },
    )
    .await;
    assert!(
        cloud.bot.app.load_errors.is_empty(),
        "{:?}",
        cloud.bot.app.load_errors
    );
    cloud
}

/// `(entry point, command with {} for the value, words of the rule the error must state)`.
const ENTRY_POINTS: &[(&str, &str, &str)] = &[
    (
        "pool",
        "/aks scale --pool={} --count 3",
        "AKS pool names are",
    ),
    (
        "pool",
        "/aks scale-down --pool={} --count 0",
        "AKS pool names are",
    ),
    (
        "pool",
        "/aks autoscale --pool={} --off",
        "AKS pool names are",
    ),
    ("pool", "/aks pool delete --name={}", "AKS pool names are"),
    (
        "pool",
        "/aks pool add --name={} --vm-size Standard_D4s_v3",
        "AKS pool names are",
    ),
    ("pool", "/aks nodes --pool={}", "AKS pool names are"),
    (
        "cluster",
        "/aks pools --cluster={}",
        "AKS cluster names are",
    ),
    ("cluster", "/aks stop --cluster={}", "AKS cluster names are"),
    (
        "cluster",
        "/aks scale --pool gpu --count 3 --cluster={}",
        "AKS cluster names are",
    ),
    (
        "cluster",
        "/vk status --cluster={}",
        "AKS cluster names are",
    ),
    (
        "cluster",
        "/vk disable --cluster={}",
        "AKS cluster names are",
    ),
    ("subnet", "/vk enable --subnet={}", "subnet names are"),
    (
        "namespace",
        "/vk logs somepod --namespace={}",
        "Kubernetes names are",
    ),
    ("pod", "/vk logs --pod={}", "Kubernetes object names are"),
    (
        "container",
        "/vk logs somepod --container={}",
        "Kubernetes names are",
    ),
    (
        "app",
        "/deploy --app={} --instance mpt",
        "Kubernetes names are",
    ),
    (
        "app",
        "/undeploy --app={} --instance mpt",
        "Kubernetes names are",
    ),
    (
        "instance",
        "/deploy simsvc --instance={}",
        "Kubernetes names are",
    ),
    (
        "instance",
        "/undeploy simsvc --instance={}",
        "Kubernetes names are",
    ),
    ("tag", "/deploy simsvc mpt --tag={}", "tags are"),
    (
        "labels",
        "/aks pool add --name extra --vm-size Standard_D4s_v3 --labels={}",
        "label",
    ),
    (
        "taints",
        "/aks pool add --name extra --vm-size Standard_D4s_v3 --taints={}",
        "taint",
    ),
    (
        "vm size",
        "/aks pool add --name extra --vm-size={}",
        "VM sizes are",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_refused_with_the_rule_before_any_request() {
    let cloud = start().await;
    let values = hostile_values();
    assert!(values.len() >= 100, "{} values", values.len());
    let mut checked = 0;
    for (entry, template, rule) in ENTRY_POINTS {
        for value in &values {
            cloud.sandbox.clear_requests();
            let command = template.replace("{}", &quoted(value));
            let reply = cloud.bot.say(&command).await;
            assert_eq!(
                reply.kind,
                ResponseKind::Error,
                "{entry} {value:?}: {command}: {}",
                reply.text
            );
            assert!(
                reply.confirmation.is_none(),
                "{entry} {value:?} asked for a confirmation"
            );
            // A NUL cannot even be tokenized; everything else reaches its option and its rule.
            if !value.contains('\0') {
                assert!(
                    reply.text.contains(rule),
                    "{entry} {value:?}: expected the rule ({rule}) in: {}",
                    reply.text
                );
            }
            assert!(
                reply.text.len() < 1_000,
                "{entry}: a {}-byte value made a {}-byte reply",
                value.len(),
                reply.text.len()
            );
            assert!(
                !reply.text.chars().any(|c| c.is_control() && c != '\n'),
                "{entry} {value:?}: control characters in the reply {:?}",
                reply.text
            );
            let sent = cloud.sandbox.requests();
            assert!(
                sent.is_empty(),
                "{entry} {value:?}: {command} reached the sandbox: {sent:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= ENTRY_POINTS.len() * 100);
    // And the estate is whole: the cluster and its pools are all still there.
    let reply = cloud.bot.say("/aks pools").await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    for pool in ["system", "users", "gpu"] {
        assert!(reply.text.contains(pool), "{}", reply.text);
    }
}

/// A resource group or cluster from config is checked too: a bad one refuses every command
/// with the reason, and no request names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_from_config_never_reach_a_path() {
    for (rg, cluster) in [
        ("..", "pangeoCluster"),
        ("pangeo", ".."),
        ("pangeo?x=1", "c"),
    ] {
        let cloud = CloudBot::start_with(
            SandboxOptions::default(),
            &[product_plugin_library("aks")],
            |_| {
                format!(
                    "\n[plugins.config.aks]\nresource_group = \"{rg}\"\ndefault_cluster = \"{cluster}\"\n"
                )
            },
        )
        .await;
        cloud.sandbox.clear_requests();
        let reply = cloud.bot.say("/aks pools").await;
        assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
        assert!(
            reply.text.contains("cannot be used in an Azure address"),
            "{rg}/{cluster}: {}",
            reply.text
        );
        assert!(cloud.sandbox.requests().is_empty());
    }
}

/// Paths built elsewhere than the plugins' builders (a plugin that concatenates strings) are
/// parsed by the host and refused there: `echo`-style raw paths reach no resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_raw_paths_that_would_address_another_resource() {
    let cloud = start().await;
    let arm = cloud
        .bot
        .app
        .host
        .services()
        .cloud()
        .arm
        .clone()
        .expect("azure is configured");
    let never = || false;
    let ignore = |_: String| {};
    let cx = deckhand::cloud::arm::CallContext {
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
        progress: &ignore,
        cancelled: &never,
    };
    let pools = format!("{}/agentPools", cloud.cluster_path());
    for tail in [
        "..",
        "%2e%2e",
        "%2E%2e",
        "gpu?api-version=1",
        "gpu#x",
        "",
        "gpu/..",
        "a%2fb",
    ] {
        cloud.sandbox.clear_requests();
        let request = deckhand_plugin_abi::proto::ArmRequest {
            method: "DELETE".into(),
            path: format!("{pools}/{tail}"),
            api_version: "2026-08-01".into(),
            body: None,
            wait: true,
            label: None,
        };
        let result = arm.call(&request, &cx).await;
        assert!(result.is_err(), "{tail:?} was sent");
        assert!(
            cloud.sandbox.requests().is_empty(),
            "{tail:?} reached the sandbox"
        );
    }
    let reply = cloud.bot.say("/aks clusters").await;
    assert!(reply.text.contains(&cloud.estate.cluster), "{}", reply.text);
}
