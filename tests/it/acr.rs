//! The real `acr` plugin (`libdeckhand_plugin_acr`): against the cloud sandbox (ARM, ACR's data
//! plane, ACR Tasks, role assignments), each command asserted on the sandbox's state; against a
//! real registry (Debian's `docker-registry`) for tags beyond one page; and once through
//! `deckhand shell --sandbox`, where the credentials reply is searched for in the audit log
//! and the logs.

use std::time::Duration;

use deckhand::router::{Response, ResponseKind};
use deckhand_it::aks::arm_get;
use deckhand_it::cloud::CloudBot;
use deckhand_it::registry::{LocalRegistry, OCI_MANIFEST};
use deckhand_it::{TestBot, product_plugin_library};
use deckhand_sandbox::{FaultKind, FaultSpec, SandboxOptions};

async fn start_acr() -> CloudBot {
    start_acr_with(Duration::from_millis(200), "").await
}

/// The acr plugin against a sandbox whose operations take `lro_delay`; `extra` is added to
/// its config section.
async fn start_acr_with(lro_delay: Duration, extra: &str) -> CloudBot {
    let options = SandboxOptions {
        lro_delay,
        ..SandboxOptions::default()
    };
    let cloud = CloudBot::start_with(options, &[product_plugin_library("acr")], |estate| {
        format!(
            "\n[plugins.config.acr]\nresource_group = \"{}\"\ndefault_cluster = \"{}\"\nregistry = \"{}\"\nbuild_poll_ms = 50\n{extra}",
            estate.resource_group, estate.cluster, estate.registry
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

fn ok(reply: &Response) {
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
}

async fn confirmed(bot: &TestBot, command: &str) -> Response {
    let pending = bot.say(command).await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    let code = pending.confirmation.clone().expect("a confirmation code");
    bot.say(&format!("/confirm {code}")).await
}

fn registry_path(cloud: &CloudBot, name: &str) -> String {
    format!(
        "/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{name}",
        cloud.estate.resource_group
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_newest_first_and_delete_tag_removes_one_after_confirmation() {
    let cloud = start_acr().await;
    assert!(cloud.sandbox.push_image("intens", "simsvc", "2.0"));
    let tags = cloud.bot.say("/acr tags simsvc").await;
    ok(&tags);
    let lines: Vec<&str> = tags.text.lines().collect();
    assert_eq!(
        lines[0], "intens/simsvc: 3 tags, newest first",
        "{}",
        tags.text
    );
    assert!(lines[1].starts_with("• 2.0  sha256:"), "{}", tags.text);

    let typo = cloud.bot.say("/acr tags simsvc-mtp").await;
    assert_eq!(typo.kind, ResponseKind::Error);
    assert!(
        typo.text.contains("(did you mean simsvc-mpt?)"),
        "{}",
        typo.text
    );

    let deleted = confirmed(&cloud.bot, "/acr delete-tag simsvc:1.0").await;
    ok(&deleted);
    assert_eq!(
        cloud.sandbox.registry_tags("intens", "simsvc"),
        Some(vec!["2.0".to_owned(), "latest".to_owned()])
    );
    let missing = confirmed(&cloud.bot, "/acr delete-tag simsvc:1.0").await;
    assert_eq!(missing.kind, ResponseKind::Error);
    assert!(
        missing.text.contains("simsvc has no tag 1.0 in intens"),
        "{}",
        missing.text
    );
    // A malformed image is refused before any confirmation.
    let bad = cloud.bot.say("/acr delete-tag simsvc").await;
    assert_eq!(bad.kind, ResponseKind::Error, "{}", bad.text);
    assert!(bad.confirmation.is_none());
}

/// More tags than ACR's page of 100: every page is followed (the `Link` of `/acr/v1/_tags`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_beyond_acrs_first_page_are_all_listed() {
    let cloud = start_acr().await;
    for i in 0..130 {
        assert!(
            cloud
                .sandbox
                .push_image("intens", "many", &format!("t{i:03}"))
        );
    }
    cloud.sandbox.clear_requests();
    let tags = cloud.bot.say("/acr tags many --top 200").await;
    ok(&tags);
    assert!(
        tags.text
            .starts_with("intens/many: 130 tags, newest first\n• t129  sha256:"),
        "{}",
        tags.text
    );
    assert!(tags.text.trim_end().ends_with("ago"), "{}", tags.text);
    assert!(tags.text.contains("\n• t000  sha256:"), "{}", tags.text);
    // The first page is asked twice: once unauthenticated (the token challenge), then with
    // the token.
    let mut pages = cloud
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/acr/v1/many/_tags"))
        .map(|r| r.query.clone())
        .collect::<Vec<_>>();
    pages.dedup();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("last=t030"), "{pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_import_and_attach_change_the_sandbox() {
    let cloud = start_acr().await;
    let taken = cloud.bot.say("/acr create intens").await;
    assert_eq!(taken.kind, ResponseKind::Error);
    assert!(taken.text.contains("AlreadyExists"), "{}", taken.text);

    ok(&cloud.bot.say("/acr create simsvc2 --sku Premium").await);
    let made = arm_get(&cloud, &registry_path(&cloud, "simsvc2")).await;
    assert_eq!(made["sku"]["name"], "Premium");
    assert_eq!(made["properties"]["provisioningState"], "Succeeded");
    assert_eq!(made["location"], "westeurope");

    let imported = cloud
        .bot
        .say("/acr import docker.io/library/hello-world:latest hello:1")
        .await;
    ok(&imported);
    assert!(
        imported.text.contains("(digest sha256:"),
        "{}",
        imported.text
    );
    assert_eq!(
        cloud.sandbox.registry_tags("intens", "hello"),
        Some(vec!["1".to_owned()])
    );

    let before = cloud.bot.say("/acr check --registry simsvc2").await;
    ok(&before);
    assert!(
        before.text.starts_with("No: pangeoCluster cannot pull"),
        "{}",
        before.text
    );
    let assignments = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments",
        registry_path(&cloud, "simsvc2")
    );
    let count = |v: serde_json::Value| v["value"].as_array().map_or(0, Vec::len);
    for _ in 0..2 {
        ok(&cloud.bot.say("/acr attach --registry simsvc2").await);
        assert_eq!(count(arm_get(&cloud, &assignments).await), 1, "idempotent");
    }
    let after = cloud.bot.say("/acr check --registry simsvc2").await;
    assert!(
        after.text.starts_with("Yes: pangeoCluster can pull"),
        "{}",
        after.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_push_their_image_and_a_failed_one_shows_its_log_tail() {
    let cloud = start_acr().await;
    let built = cloud
        .bot
        .say("/acr build simsvc-mpt:1.2 --context https://github.com/intens/simsvc.git#main:models --arg model=mpt.py")
        .await;
    ok(&built);
    assert!(built.text.contains("in run ca1 (sha256:"), "{}", built.text);
    assert!(
        built.text.contains("Run ID: ca1 was successful"),
        "{}",
        built.text
    );
    let tags = cloud.sandbox.registry_tags("intens", "simsvc-mpt").unwrap();
    assert!(tags.contains(&"1.2".to_owned()), "{tags:?}");

    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::FailLro {
            code: "BuildFailed".into(),
            message: "exit status 1".into(),
        })
        .on_path("scheduleRun"),
    );
    let failed = cloud
        .bot
        .say("/acr build simsvc-mpt:1.3 --context https://github.com/intens/simsvc.git")
        .await;
    assert_eq!(failed.kind, ResponseKind::Error, "{}", failed.text);
    assert!(
        failed.text.contains("ended Failed at Step 3/3"),
        "{}",
        failed.text
    );
    assert!(
        failed.text.contains("Error: BuildFailed: exit status 1"),
        "{}",
        failed.text
    );
    let tags = cloud.sandbox.registry_tags("intens", "simsvc-mpt").unwrap();
    assert!(!tags.contains(&"1.3".to_owned()), "{tags:?}");
}

/// Tags from a real registry, newest first by their image configs' times; and a tag deleted
/// there (by digest: docker-registry has no untag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_registry_gives_every_tag_newest_first_and_deletes_one() {
    let registry = LocalRegistry::start().await;
    let count = 25;
    for i in 0..count {
        // An hour apart, in push order: v24 is the newest.
        let created = format!("2026-01-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24);
        registry
            .push_dated_image("simsvc", &format!("v{i}"), OCI_MANIFEST, Some(&created))
            .await;
    }
    // docker-registry 2.8 answers the whole tag list whatever `n` asks (it pages only the
    // catalog); the host asks for pages of 10 and must still see all 25.
    let extra = format!(
        "[[registries]]\nname = \"local\"\nurl = \"{}\"\nauth = \"anonymous\"\npage_size = 10\n\n[plugins.config.acr]\nregistry = \"local\"\n",
        registry.url
    );
    let bot = TestBot::with_libraries(&[product_plugin_library("acr")], &extra);
    let tags = bot.say("/acr tags simsvc --top 30").await;
    ok(&tags);
    let names: Vec<&str> = tags
        .text
        .lines()
        .skip(1)
        .filter_map(|l| l.strip_prefix("• ")?.split("  ").next())
        .collect();
    let expected: Vec<String> = (0..count).rev().map(|i| format!("v{i}")).collect();
    assert_eq!(names, expected, "{}", tags.text);
    assert!(
        tags.text.starts_with("local/simsvc: 25 tags, newest first"),
        "{}",
        tags.text
    );

    ok(&confirmed(&bot, "/acr delete-tag simsvc:v3").await);
    let listed: serde_json::Value = registry
        .http
        .get(format!("{}/v2/simsvc/tags/list", registry.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let left = listed["tags"].as_array().unwrap();
    assert_eq!(left.len(), count - 1);
    assert!(!left.contains(&serde_json::json!("v3")));
}

/// `deckhand shell --sandbox` with the shipped section: the commands run end to end, and the
/// admin password and a new token's password shown to the caller are nowhere in the audit log or
/// the logs.
#[test]
fn shell_with_sandbox_runs_acr_and_keeps_credentials_out_of_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = deckhand_it::write_config(dir.path(), &[product_plugin_library("acr")], "");
    let out = deckhand_it::run_deckhand(
        &["--log-format", "json", "shell", "--sandbox"],
        &config,
        &[("RUST_LOG", std::ffi::OsStr::new("deckhand=debug"))],
        b"/acr registries\n/acr tags simsvc\n/acr import hello-world hello:1\n/acr tags hello\n/acr credentials\n/acr token create ci-simsvc --repos simsvc\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "• intens — intens.azurecr.io, Standard, admin user on, Succeeded (pangeo, westeurope)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("intens/simsvc: 2 tags, newest first"),
        "{stdout}"
    );
    assert!(
        stdout.contains("intens/hello: 1 tag, newest first"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Token ci-simsvc for intens.azurecr.io: pull on simsvc"),
        "{stdout}"
    );
    // The admin password, then the token's.
    let passwords: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("password: "))
        .map(|p| p.trim().to_owned())
        .collect();
    assert_eq!(passwords.len(), 2, "{stdout}");
    for password in &passwords {
        assert!(password.len() >= 16, "{password}");
        assert!(!stderr.contains(password), "a password is in the log");
    }
    let mut audited = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("state.db") {
            let bytes = std::fs::read(&path).unwrap();
            audited += bytes.len();
            for password in &passwords {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(password),
                    "a password is in {}",
                    path.display()
                );
            }
        }
    }
    assert!(audited > 0, "the state database was written");
}

/// A build that outlives what its command may wait (`build_wait_secs`) keeps being followed by
/// follow-ups, and its result is posted in the conversation once, when the run ends; the links
/// that only handed over post nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_outliving_its_command_posts_its_result_when_it_ends() {
    // The sandbox's run takes 3 s; each command follows it for 1 s.
    let cloud = start_acr_with(
        Duration::from_secs(3),
        "build_wait_secs = 1\ndeploy_apps = [\"simsvc\"]\n",
    )
    .await;
    let outbox = std::sync::Arc::new(deckhand::chat::MemoryOutbox::default());
    let runner = cloud
        .bot
        .app
        .start_follow_ups(outbox.clone())
        .expect("one runner");
    let first = cloud
        .bot
        .say("/acr build simsvc-mpt:1.4 --context https://github.com/intens/simsvc.git")
        .await;
    ok(&first);
    assert!(
        first
            .text
            .contains("Run ca1 of simsvc-mpt:1.4 is still Queued after")
            && first
                .text
                .contains("its result will be posted here when it ends"),
        "{}",
        first.text
    );
    tokio::time::timeout(
        Duration::from_secs(60),
        cloud.bot.app.host.services().follow_ups_settled(),
    )
    .await
    .expect("the follow-ups end with the run");
    let posts = outbox.messages();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].channel, "test-channel");
    assert!(
        posts[0]
            .text
            .starts_with("Built and pushed intens.azurecr.io/simsvc-mpt:1.4 in run ca1 (sha256:"),
        "{}",
        posts[0].text
    );
    // The model image of a configured app offers its deploy as a button.
    assert_eq!(
        posts[0].actions,
        vec![deckhand::chat::Action {
            label: "Deploy simsvc mpt".into(),
            command: "/deploy simsvc mpt --tag 1.4".into(),
        }]
    );
    let tags = cloud.sandbox.registry_tags("intens", "simsvc-mpt").unwrap();
    assert!(tags.contains(&"1.4".to_owned()), "{tags:?}");
    runner.abort();
}
