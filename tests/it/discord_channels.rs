//! Channels by name on Discord (issue 14, points 1 and 8): the shipped config (`#alerts`,
//! `#gpu-ops`, ...) under `deckhand serve` against the Discord double, names resolved to the
//! guild's channel ids; an unknown name stops start-up; renames are followed; one channel's
//! 429 does not hold another channel's posts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deckhand::alerts::{Alert, Severity, Source, Status};
use deckhand::chat::OutboundMessage;
use deckhand::chat::discord::DiscordHandle;
use deckhand_discord_double::{
    CommandOption, DiscordDouble, DoubleBuilder, InteractionBuilder, RateLimit, RecordedRequest,
    Route,
};
use deckhand_it::{TestBot, free_port};
use serde_json::json;

const T: Duration = Duration::from_secs(20);
/// The double's default member role, mapped to `admin` (the shipped config's `*` role).
const ADMIN_ROLE: u64 = 539_082_325_061_836_999;

/// The guild's channels named by the shipped config/alerts.toml and config/schedules.toml.
const ALERTS: u64 = 9001;
const ML_GPU: u64 = 9002;
const ONCALL: u64 = 9003;
const ML_JOBS: u64 = 9004;
const GPU_OPS: u64 = 9005;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(repo().join("config").join(name)).unwrap()
}

/// The POSTs to channel `id`'s messages.
fn posts_to(double: &DiscordDouble, id: u64) -> Vec<RecordedRequest> {
    double
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.api_path() == format!("/channels/{id}/messages"))
        .collect()
}

/// The `deckhand` binary serving the shipped config; killed by pid when dropped.
struct Served {
    child: Child,
    log: PathBuf,
    alerts: u16,
    _dir: tempfile::TempDir,
}

/// `config/deckhand.toml` with `config/alerts.toml` appended (as its header says) and the rest
/// of `config/` next to it, changed only where a test must: the state file, the plugin
/// directory, the receiver's port, and a `[discord]` section for the double.
fn shipped_config(dir: &Path, double: &DiscordDouble, alerts: u16) -> PathBuf {
    let main = shipped("deckhand.toml")
        .replace(
            "path = \"../state/deckhand.db\"",
            &format!("path = \"{}\"", dir.join("state.db").display()),
        )
        .replace(
            "dir = \"../target/debug\"",
            &format!("dir = \"{}\"", deckhand_it::target_dir().display()),
        );
    let alerts_section = shipped("alerts.toml").replace(
        "listen = \"127.0.0.1:9095\"",
        &format!("listen = \"127.0.0.1:{alerts}\""),
    );
    let discord = format!(
        "\n[discord]\ntoken = \"${{DISCORD_TOKEN}}\"\nguild_id = {}\napi_base_url = \"{}\"\n\
         [discord.roles]\n\"{ADMIN_ROLE}\" = \"admin\"\n",
        double.guild_id(),
        double.base_url()
    );
    let config = dir.join("deckhand.toml");
    copy_dir(&repo().join("config"), dir);
    std::fs::write(&config, format!("{main}\n{alerts_section}\n{discord}")).unwrap();
    config
}

/// The environment the shipped config's `${...}` need.
fn shipped_env(command: &mut Command) -> &mut Command {
    command
        .env("DISCORD_TOKEN", "serve-token")
        .env("DECKHAND_ALERTS_TOKEN", "alerts-token")
        .env("SLACK_ML_WEBHOOK", "http://127.0.0.1:9/slack")
        .env("TEAMS_ONCALL_WEBHOOK", "http://127.0.0.1:9/teams")
}

impl Served {
    fn start(double: &DiscordDouble) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let alerts = free_port();
        let config = shipped_config(dir.path(), double, alerts);
        let log = dir.path().join("stderr.log");
        let child = shipped_env(
            Command::new(deckhand_it::deckhand_binary())
                .args(["serve", "--config"])
                .arg(&config),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
        Served {
            child,
            log,
            alerts,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit, while the double keeps answering.
    async fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "deckhand serve still runs:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the shipped config directory (schedules.toml, the aks plugin's apps/, ...).
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn shipped_guild() -> DoubleBuilder {
    DiscordDouble::builder()
        .channel(ALERTS, "alerts")
        .channel(ML_GPU, "ml-gpu")
        .channel(ONCALL, "platform-oncall")
        .channel(ML_JOBS, "ml-jobs")
        .channel(GPU_OPS, "gpu-ops")
}

/// An Alertmanager webhook (version 4) with one firing alert.
fn webhook(name: &str, team: Option<&str>) -> serde_json::Value {
    let mut labels = json!({
        "alertname": name,
        "severity": "warning",
        "cluster": "pangeoCluster",
        "namespace": "dhub",
    });
    if let Some(team) = team {
        labels["team"] = json!(team);
    }
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "status": "firing",
        "receiver": "deckhand",
        "groupLabels": { "alertname": name },
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": { "summary": format!("{name} is firing") },
            "startsAt": "2026-12-03T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("storm-{name}"),
        }],
    })
}

/// The shipped config under `deckhand serve`: an alert storm lands in `#alerts` and
/// `#ml-gpu`, a schedule run in `#gpu-ops`, each by the channel id the guild gave the name;
/// nothing is dropped for want of a channel id.
#[tokio::test]
async fn the_shipped_config_posts_alerts_and_schedule_runs_to_named_channels() {
    let double = shipped_guild().start().await;
    let served = Served::start(&double);
    double
        .wait_for_ready(T)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    double
        .wait_for(|r| matches!(r.route(), Route::RegisterCommands { .. }), T)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    // The receiver is up once it answers its health check.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", served.alerts);
    let deadline = Instant::now() + T;
    while http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "no alert receiver:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The storm: 24 distinct alerts, half for the ML team (`#ml-gpu`), half unrouted
    // (`#alerts`, the default channel).
    for i in 0..24 {
        let team = (i % 2 == 0).then_some("ml");
        let status = http
            .post(format!("{base}/alerts/alertmanager"))
            .bearer_auth("alerts-token")
            .json(&webhook(&format!("Storm{i:02}"), team))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "webhook {i}: {status}");
    }
    for channel in [ALERTS, ML_GPU] {
        double
            .wait_for(
                |r| {
                    r.method == "POST"
                        && r.api_path() == format!("/channels/{channel}/messages")
                        && r.status == 200
                },
                T,
            )
            .await
            .unwrap_or_else(|e| panic!("channel {channel}: {e}\n{}", served.log()));
    }
    let first_default = posts_to(&double, ALERTS)[0].content().unwrap().to_owned();
    assert!(first_default.contains("Storm"), "{first_default}");
    assert!(
        posts_to(&double, ML_GPU)
            .iter()
            .all(|r| !r.content().unwrap_or_default().contains("Storm01")),
        "an odd (unrouted) alert went to #ml-gpu"
    );

    // A schedule run reports to `#gpu-ops`.
    let sent = double
        .send_interaction(
            InteractionBuilder::slash("schedule").option(CommandOption::subcommand(
                "run",
                vec![CommandOption::string("name", "gpu-weekday-warmup")],
            )),
        )
        .await;
    double
        .wait_for(|r| sent.is_answered_by(r), T)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    let report = double
        .wait_for(
            |r| {
                r.method == "POST"
                    && r.api_path() == format!("/channels/{GPU_OPS}/messages")
                    && r.content().is_some_and(|c| c.contains("/aks scale"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    assert_eq!(report.status, 200, "{report}");

    // Every channel post went to a channel the guild has, and none was refused.
    let channel_posts: Vec<RecordedRequest> = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.api_path().starts_with("/channels/"))
        .collect();
    assert!(
        channel_posts.iter().all(|r| r.status == 200),
        "{}",
        double.request_transcript()
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("alerts_dropped_total{stage=\"send\"}") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        !served.log().contains("is not a Discord channel id"),
        "{}",
        served.log()
    );
}

/// A channel name the guild does not have stops `deckhand serve` before anything is posted,
/// naming it and where the config uses it.
#[tokio::test]
async fn an_unresolvable_channel_name_fails_start_up_naming_it() {
    let double = guild_without_gpu_ops().await;
    let mut served = Served::start(&double);
    let status = served.exit_status().await;
    let log = served.log();
    assert!(!status.success(), "{log}");
    names_only_gpu_ops_missing(&log);
    assert!(posted_nothing(&double), "{}", double.request_transcript());
}

/// `text` names both shipped schedules' `#gpu-ops` as missing, and nothing else.
fn names_only_gpu_ops_missing(text: &str) {
    for schedule in ["gpu-nightly-off", "gpu-weekday-warmup"] {
        assert!(
            text.contains(&format!(
                "schedule {schedule}: no text channel #gpu-ops in the guild"
            )),
            "{text}"
        );
    }
    assert!(!text.contains("#alerts in the guild"), "{text}");
}

fn posted_nothing(double: &DiscordDouble) -> bool {
    double
        .requests()
        .iter()
        .all(|r| !r.api_path().starts_with("/channels/"))
}

/// The shipped guild without `#gpu-ops`.
async fn guild_without_gpu_ops() -> DiscordDouble {
    DiscordDouble::builder()
        .channel(ALERTS, "alerts")
        .channel(ML_GPU, "ml-gpu")
        .channel(ONCALL, "platform-oncall")
        .channel(ML_JOBS, "ml-jobs")
        .start()
        .await
}

/// `deckhand check` offline says which names wait for start; `--online` lists the guild's
/// channels (no gateway, nothing posted) and fails naming the missing one.
#[tokio::test]
async fn check_online_resolves_the_names_offline_check_only_lists() {
    let double = guild_without_gpu_ops().await;
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_config(dir.path(), &double, free_port());
    let run = |online: bool| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(deckhand_it::deckhand_binary());
            command.arg("check").arg("--config").arg(&config);
            if online {
                command.arg("--online");
            }
            shipped_env(&mut command).output().unwrap()
        })
    };
    let offline = run(false).await.unwrap();
    let stderr = String::from_utf8_lossy(&offline.stderr);
    assert!(
        stderr.contains("note: channel names (#alerts, #gpu-ops, #ml-gpu, #ml-jobs, #platform-oncall) will be resolved"),
        "{stderr}"
    );
    let online = run(true).await.unwrap();
    let stderr = String::from_utf8_lossy(&online.stderr);
    assert_eq!(online.status.code(), Some(1), "{stderr}");
    names_only_gpu_ops_missing(&stderr);
    assert!(
        double
            .requests()
            .iter()
            .any(|r| r.api_path() == format!("/guilds/{}/channels", double.guild_id())),
        "{}",
        double.request_transcript()
    );
    assert!(
        double.frames().is_empty() && posted_nothing(&double),
        "check connects no gateway and posts nothing"
    );
}

/// In process: the bot on the double with `[discord]` only (`extra` appended to the config).
async fn in_process(double: &DiscordDouble, extra: &str, tls: bool) -> (TestBot, DiscordHandle) {
    let config = format!(
        "{extra}\n[discord]\ntoken = \"${{DECKHAND_IT_TOKEN}}\"\nguild_id = {}\n",
        double.guild_id()
    );
    let bot = TestBot::with_config(&[], &config);
    let handle = crate::discord::connect(&bot, double, tls).await;
    (bot, handle)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !done() {
        assert!(Instant::now() < deadline, "not within {T:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Channel events keep the names current: a channel renamed to `alerts` (CHANNEL_UPDATE)
/// takes `#alerts` over from the one renamed away; a channel created with a name is usable.
#[tokio::test]
async fn a_channel_renamed_on_discord_is_followed() {
    const SPARE: u64 = 9010;
    let double = DiscordDouble::builder()
        .channel(ALERTS, "alerts")
        .channel(SPARE, "spare")
        .start()
        .await;
    let (_bot, handle) = in_process(&double, "", false).await;
    let outbox = handle.outbox();
    let post = |channel: &str, text: &str| OutboundMessage {
        channel: channel.into(),
        text: text.into(),
        actions: Vec::new(),
        files: Vec::new(),
        key: None,
    };
    outbox.post(post("#alerts", "before")).await.unwrap();
    assert_eq!(posts_to(&double, ALERTS).len(), 1);

    double.rename_channel(ALERTS, "alerts-old").await;
    double.rename_channel(SPARE, "alerts").await;
    wait_until("#alerts is the renamed spare channel", || {
        handle.channels.resolve("#alerts") == Ok(SPARE)
    })
    .await;
    outbox.post(post("#alerts", "after")).await.unwrap();
    let after = posts_to(&double, SPARE);
    assert_eq!(after.len(), 1, "{}", double.request_transcript());
    assert_eq!(after[0].content(), Some("after"));
    assert_eq!(after[0].status, 200);

    double.create_channel(9011, "ml-jobs").await;
    wait_until("#ml-jobs is known", || {
        handle.channels.resolve("ml-jobs") == Ok(9011)
    })
    .await;
    let err = outbox.post(post("#nowhere", "lost")).await.unwrap_err();
    assert!(err.contains("no text channel #nowhere"), "{err}");
    handle.shutdown().await;
}

fn alert(name: &str, team: &str) -> Alert {
    Alert {
        source: Source::Alertmanager,
        fingerprint: format!("fp-{name}"),
        status: Status::Firing,
        severity: Severity::Warning,
        name: name.into(),
        summary: format!("{name} for team {team}"),
        labels: [("team".to_owned(), team.to_owned())].into_iter().collect(),
        starts_at: None,
        ends_at: None,
        url: None,
    }
}

/// One channel waiting out a 429 (serenity's ratelimiter sleeps `Retry-After` on that
/// channel's bucket) does not hold the other channel's alert: `#beta`'s post reaches Discord
/// before `#alpha`'s retry.
#[tokio::test]
async fn a_429_on_one_channel_does_not_delay_another_channels_alerts() {
    const ALPHA: u64 = 9101;
    const BETA: u64 = 9102;
    let double = DiscordDouble::builder()
        .channel(ALPHA, "alpha")
        .channel(BETA, "beta")
        .start()
        .await;
    let alerts = r##"
[alerts]
default_channel = "#alpha"
[alerts.storm]
group_wait = "0s"
[[alerts.routes]]
labels = { team = "a" }
channels = ["#alpha"]
[[alerts.routes]]
labels = { team = "b" }
channels = ["#beta"]
"##;
    let (bot, handle) = in_process(&double, alerts, true).await;
    let pipeline = bot
        .app
        .start_alerts(handle.outbox())
        .await
        .unwrap()
        .expect("[alerts] enabled");
    let wait = Duration::from_secs(2);
    double.script_rate_limit(
        RateLimit::on("POST", &format!("/channels/{ALPHA}/messages")).retry_after(wait),
    );
    pipeline
        .state
        .submit(vec![alert("AlphaDown", "a"), alert("BetaDown", "b")])
        .unwrap();
    let alpha_ok = double
        .wait_for(
            |r| r.api_path() == format!("/channels/{ALPHA}/messages") && r.status == 200,
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alpha = posts_to(&double, ALPHA);
    assert_eq!(
        alpha.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200],
        "{}",
        double.request_transcript()
    );
    assert!(alpha_ok.at - alpha[0].at >= wait, "Retry-After honoured");
    let beta = posts_to(&double, BETA);
    assert_eq!(beta.len(), 1, "{}", double.request_transcript());
    assert_eq!(beta[0].status, 200);
    assert!(
        beta[0].index < alpha_ok.index,
        "#beta waited for #alpha's 429:\n{}",
        double.request_transcript()
    );
    assert!(beta[0].content().unwrap().contains("BetaDown"));
    assert!(alpha_ok.content().unwrap().contains("AlphaDown"));
    drop(pipeline);
    handle.shutdown().await;
}
