//! Issue 19: two `deckhand serve` replicas (real processes) on one PostgreSQL state (the
//! harness's server), electing a leader through the sandbox's Kubernetes Lease API and posting
//! to the Discord double. In each trial the leader is killed with SIGKILL at a different point
//! of a nightly scale-down of ten GPU pools; the follower takes the run over.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deckhand::state::Db;
use deckhand_discord_double::DiscordDouble;
use deckhand_it::aks::aks_config;
use deckhand_it::cloud::cloud_config;
use deckhand_it::{config_text, deckhand_binary, product_plugin_library};
use deckhand_sandbox::{Estate, Sandbox, SandboxOptions};

const GPU_OPS: u64 = 9005;
const POOLS: usize = 10;
const TRIALS: usize = 20;

/// A `deckhand serve` process; killed by pid when dropped.
struct Replica {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn spawn(name: &'static str, dir: &Path, config: &Path) -> Replica {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(deckhand_binary())
            .args(["serve", "--config"])
            .arg(config)
            .env("DISCORD_TOKEN", "ha-token")
            .env("DECKHAND_IT_TOKEN", "it-secret-token")
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("HOSTNAME", name)
            .env("DECKHAND_REPLICA", name)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pool(i: usize) -> String {
    format!("gpu{i}")
}

/// The config both replicas read: state on PostgreSQL, the aks plugin on the sandbox, the
/// Discord double, a Lease of 3 s, and a one-off nightly scale-down due at `due`.
fn write_config(
    dir: &Path,
    sandbox: &Sandbox,
    estate: &Estate,
    double: &DiscordDouble,
    url: &str,
    due: chrono::DateTime<chrono::Utc>,
) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let aks = product_plugin_library("aks");
    std::fs::copy(&aks, plugins.join(aks.file_name().unwrap())).unwrap();
    let commands: Vec<String> = (0..POOLS)
        .map(|i| format!("\"/aks scale-down --pool {} --count 0 --yes\"", pool(i)))
        .collect();
    let extra = format!(
        r##"{aks}
[discord]
token = "${{DISCORD_TOKEN}}"
guild_id = {guild}
api_base_url = "{discord}"

[confirm]
allow_yes_on = ["schedule"]

[[permissions]]
users = ["sched-bot"]
allow = ["aks.*"]

[schedules]
owner = {{ user_id = "sched-bot", display_name = "Schedule bot" }}

[schedules.leader]
namespace = "default"
duration = "3s"

[[schedules.schedule]]
name = "nightly"
cron = "{cron}"
tz = "UTC"
channel = "#gpu-ops"
commands = [{commands}]
"##,
        aks = aks_config(&estate.resource_group, &estate.cluster),
        guild = double.guild_id(),
        discord = double.base_url(),
        cron = due.format("%S %M %H %d %m * %Y"),
        commands = commands.join(", "),
    );
    let unused = dir.join("unused.db");
    let text = config_text(&plugins, &unused, &cloud_config(sandbox, estate, &extra)).replace(
        &format!("path = \"{}\"", unused.display()),
        &format!("url = \"{url}\""),
    );
    let config = dir.join("deckhand.toml");
    std::fs::write(&config, text).unwrap();
    config
}

/// Polls `check` every 20 ms until it answers, or fails after `limit` with `what`.
async fn until<T>(
    limit: Duration,
    what: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reports posted to #gpu-ops, in order.
fn reports(double: &DiscordDouble) -> Vec<String> {
    double
        .messages()
        .into_iter()
        .filter(|m| m["channel_id"].as_str().and_then(|s| s.parse().ok()) == Some(GPU_OPS))
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

async fn pool_count(sandbox: &Sandbox, estate: &Estate, pool: &str) -> i64 {
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}/agentPools/{pool}?api-version=2026-08-01",
        sandbox.base_url(),
        sandbox.subscription_id(),
        estate.resource_group,
        estate.cluster
    );
    let body: serde_json::Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(sandbox.issue_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["properties"]["count"].as_i64().unwrap_or(-1)
}

/// The Lease's holder, as the sandbox's Kubernetes API has it.
async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "default");
    leases
        .get_opt("deckhand-scheduler")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// One trial: the leader dies after `after_reports` reports and `delay` more.
async fn trial(number: usize, after_reports: usize, delay: Duration) {
    let sandbox = Sandbox::start(SandboxOptions {
        lro_delay: Duration::from_millis(150),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let estate = sandbox.seed_realistic_estate().await.expect("estate seeds");
    let names: Vec<String> = (0..POOLS).map(pool).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    sandbox
        .add_pools(&estate, &names, ("Standard_NC6s_v3", 2))
        .await
        .unwrap();
    sandbox.settle().await;
    let double = DiscordDouble::builder()
        .channel(GPU_OPS, "gpu-ops")
        .start()
        .await;
    let server = deckhand_postgres_server::shared();
    let url = server.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sandbox
        .kubeconfig(&estate.resource_group, &estate.cluster)
        .unwrap();
    std::fs::write(dir.path().join("kubeconfig"), &kubeconfig).unwrap();
    let kube = deckhand_it::cloud::kube_client_from(&kubeconfig).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    let config = write_config(dir.path(), &sandbox, &estate, &double, &url, due);
    let mut replicas = vec![
        Replica::spawn("replica-a", dir.path(), &config),
        Replica::spawn("replica-b", dir.path(), &config),
    ];
    let logs = |replicas: &[Replica]| {
        replicas
            .iter()
            .map(|r| format!("--- {}:\n{}", r.name, r.log()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // The run is claimed, then `after_reports` reports are out; then the leader dies.
    let db = until(
        Duration::from_secs(30),
        || format!("trial {number}: no database"),
        || Db::connect_postgres(&url, None, None).ok(),
    )
    .await;
    let claimed = || {
        db.query(
            "SELECT id FROM schedule_runs WHERE schedule = 'nightly'",
            &[],
        )
        .ok()
        .filter(|rows| !rows.is_empty())
    };
    until(
        Duration::from_secs(60),
        || format!("trial {number}: never claimed\n{}", logs(&replicas)),
        claimed,
    )
    .await;
    until(
        Duration::from_secs(60),
        || {
            format!(
                "trial {number}: reports {:?}\n{}",
                reports(&double),
                logs(&replicas)
            )
        },
        || (reports(&double).len() >= after_reports).then_some(()),
    )
    .await;
    tokio::time::sleep(delay).await;
    let leader = lease_holder(&kube).await.expect("a leader holds the lease");
    let index = replicas
        .iter()
        .position(|r| r.name == leader)
        .unwrap_or_else(|| panic!("unknown holder {leader}"));
    let mut killed = replicas.remove(index);
    killed.child.kill().unwrap(); // SIGKILL
    killed.child.wait().unwrap();
    let before_kill = reports(&double).len();
    assert!(
        before_kill < POOLS,
        "trial {number}: the run ended before the kill; nothing was tested"
    );

    // The follower takes over within a lease period and finishes the run.
    let completed = || {
        db.query(
            "SELECT outcome, detail FROM schedule_runs WHERE schedule = 'nightly' AND completed_at IS NOT NULL",
            &[],
        )
        .ok()
        .filter(|rows| !rows.is_empty())
    };
    let done = until(
        Duration::from_secs(60),
        || {
            format!(
                "trial {number} (killed {leader} after {after_reports} reports + {delay:?}): not completed; reports {:?}\n--- {leader} (killed):\n{}\n{}",
                reports(&double),
                killed.log(),
                logs(&replicas)
            )
        },
        completed,
    )
    .await;
    let outcome: String = done[0].get(0).unwrap();
    let detail: String = done[0].get(1).unwrap();
    let runs = db.query("SELECT count(*) FROM schedule_runs", &[]).unwrap()[0]
        .get::<i64>(0)
        .unwrap();
    let posted = reports(&double);
    let context = format!(
        "trial {number} (killed {leader} after {after_reports} reports + {delay:?}): {outcome} ({detail}); reports {posted:#?}"
    );
    assert_eq!(runs, 1, "{context}");
    assert_eq!(outcome, "ok", "{context}");
    for i in 1..=POOLS {
        let head = format!("Schedule nightly [{i}/{POOLS}] ");
        let n = posted.iter().filter(|p| p.starts_with(&head)).count();
        assert_eq!(n, 1, "report {i} posted {n} times; {context}");
    }
    assert_eq!(posted.len(), POOLS, "{context}");
    // The survivor took the run over where it stopped: the reports of the commands it ran say
    // so, and they are the last ones. A report the killed leader had already sent can land
    // after the kill, so they start at `before_kill` or later; there are none when the leader
    // had recorded every command (the survivor then only closes the run).
    let resumed_here = format!("(resumed on {} ", replicas[0].name);
    let first_resumed = posted
        .iter()
        .position(|p| p.contains("(resumed on "))
        .unwrap_or(posted.len());
    assert!(first_resumed >= before_kill, "{context}");
    if before_kill + 1 < POOLS {
        // At most one of the commands left was the leader's (its report in flight).
        assert!(
            first_resumed < posted.len(),
            "no report was resumed; {context}"
        );
    }
    assert!(
        posted[first_resumed..]
            .iter()
            .all(|p| p.contains(&resumed_here)),
        "{context}"
    );
    assert!(
        replicas[0].log().contains("resuming an interrupted run"),
        "{context}"
    );
    sandbox.settle().await;
    for i in 0..POOLS {
        assert_eq!(
            pool_count(&sandbox, &estate, &pool(i)).await,
            0,
            "{} not at its target; {context}",
            pool(i)
        );
    }
}

/// Issue 19: 20 trials, the leader killed after 0..9 reports and 0–160 ms more: every pool
/// reaches 0, the run is recorded once (ok), each of its ten reports posted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_anywhere_in_a_ten_pool_scale_down_the_follower_finishes_it_once() {
    for number in 0..TRIALS {
        let after_reports = number % POOLS;
        let delay = Duration::from_millis(((number * 53) % 5 * 40) as u64);
        trial(number, after_reports, delay).await;
    }
}
