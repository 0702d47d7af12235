//! The Discord adapter's reply side (issue 14) against the Discord double: private replies
//! after a public defer, long output, mentions, long commands in threads, registration
//! (refusals, scopes, destructive defaults, the real plugins' manifests), foreign guilds, DMs.

use std::sync::Arc;
use std::time::Duration;

use deckhand::chat::{OutboundMessage, Outbox};
use deckhand::router::builtins::BuiltinGroup;
use deckhand::router::parse::Parsed;
use deckhand::router::{Invocation, Response, Router, RouterError};
use deckhand_discord_double::{
    CommandOption, DiscordDouble, InteractionBuilder, RateLimit, RecordedRequest, Route,
    example_channel_id, example_user_id,
};
use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::discord::{Fixture, SlowSecret, T, guild_scoped};

/// Built-ins with the output these tests need.
struct Output;

fn fenced_logs(lines: usize) -> String {
    let body: String = (0..lines)
        .map(|i| format!("2026-12-03T12:00:{:02} pod web-1 line {i:04}\n", i % 60))
        .collect();
    format!("Logs of web-1:\n```text\n{body}```\n")
}

impl BuiltinGroup for Output {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("logs", "Fenced log lines")
                .permission("")
                .option(OptionSpec::new("lines", OptionKind::Integer, "How many").required()),
            CommandSpec::new("shout", "Text with mentions").permission(""),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        _invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            Ok(match parsed.path[0].as_str() {
                "logs" => Response::ok(fenced_logs(
                    parsed.options["lines"].as_u64().unwrap_or(1) as usize
                )),
                _ => Response::ok("@everyone look: <@&539082325061836999> and <@42> @here"),
            })
        })
    }
}

async fn with_builtins(fx: &Fixture, group: Arc<dyn BuiltinGroup>, name: &str) {
    fx.bot.app.router.add_builtins(group);
    let quoted = format!("\"{name}\"");
    fx.double
        .wait_for(
            |r| {
                matches!(r.route(), Route::RegisterCommands { .. })
                    && r.status == 200
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains(&quoted))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

fn balanced(text: &str) -> bool {
    text.lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
        % 2
        == 0
}

fn answers(fx: &Fixture, token: &str) -> Vec<RecordedRequest> {
    fx.double
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(token))
        .collect()
}

#[tokio::test]
async fn a_slow_private_reply_after_a_public_defer_edits_it_first_then_follows_up_privately() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(SlowSecret), "mytoken").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("mytoken"))
        .await;
    let deferred = fx.callback(&sent).await;
    assert_eq!(
        (deferred.callback_type(), deferred.is_ephemeral()),
        (Some(5), false)
    );
    let secret = fx.answer_containing(&sent, "s3cr3t").await;
    assert!(matches!(secret.route(), Route::Followup { .. }), "{secret}");
    assert!(secret.is_ephemeral(), "{secret}");
    // The public message was edited before the followup, so Discord's "first followup after
    // a deferral edits the original" cannot turn the secret public.
    let note = answers(&fx, &sent.token)
        .into_iter()
        .find(|r| matches!(r.route(), Route::EditOriginal { .. }))
        .expect("the original was edited");
    assert!(note.index < secret.index);
    assert!(
        note.content().unwrap().contains("sent to you privately"),
        "{note}"
    );
    let messages = fx.double.messages();
    let public = messages
        .iter()
        .find(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("privately"))
        })
        .expect("the public message says where the reply went");
    assert_eq!(public["flags"].as_u64().unwrap_or(0) & 64, 0);
    let private = messages
        .iter()
        .find(|m| m["content"].as_str().is_some_and(|c| c.contains("s3cr3t")))
        .expect("the reply is a message of its own");
    assert_eq!(private["flags"].as_u64().unwrap_or(0) & 64, 64, "ephemeral");
    assert_ne!(public["id"], private["id"]);
}

#[tokio::test]
async fn a_failed_private_followup_is_not_swallowed() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(SlowSecret), "mytoken").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("mytoken"))
        .await;
    // The followup is refused (429 without serenity's ratelimiter is an error).
    fx.double.script_rate_limit(RateLimit::on(
        "POST",
        &format!("/webhooks/{}/{}", fx.double.application_id(), sent.token),
    ));
    let told = fx.answer_containing(&sent, "could not be delivered").await;
    assert!(matches!(told.route(), Route::EditOriginal { .. }), "{told}");
    assert!(
        !fx.double
            .requests()
            .iter()
            .any(|r| r.content().is_some_and(|c| c.contains("s3cr3t")) && !r.is_ephemeral()),
        "the secret never went public: {}",
        fx.double.request_transcript()
    );
}

#[tokio::test]
async fn long_output_keeps_fences_balanced_and_beyond_three_messages_is_one_file() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(Output), "logs").await;
    // About two messages of fenced logs: every message renders as code.
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("logs").option(CommandOption::integer("lines", 60)),
        )
        .await;
    let first = fx.callback(&sent).await;
    let rest = fx
        .double
        .wait_for(
            |r| sent.is_answered_by(r) && matches!(r.route(), Route::Followup { .. }),
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for part in [&first, &rest] {
        let text = part.content().unwrap();
        assert!(text.chars().count() <= 2000);
        assert!(balanced(text), "unbalanced:\n{text}");
    }
    assert!(rest.content().unwrap().starts_with("```text\n"), "{rest}");
    assert!(rest.content().unwrap().contains("line 0059"));

    // Far beyond three messages: one message, the whole output attached as a .txt file.
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("logs").option(CommandOption::integer("lines", 500)),
        )
        .await;
    let reply = fx.callback(&sent).await;
    assert_eq!(
        (reply.callback_type(), reply.status),
        (Some(4), 204),
        "{reply}"
    );
    let files = reply.files();
    assert_eq!(files.len(), 1, "{reply}");
    assert_eq!(files[0].0, "logs.txt");
    assert_eq!(files[0].1, fenced_logs(500));
    let summary = reply.content().unwrap();
    assert!(
        summary.contains("/logs") && summary.contains("logs.txt"),
        "{summary}"
    );
    assert!(balanced(summary));
    assert!(
        !answers(&fx, &sent.token)
            .iter()
            .any(|r| matches!(r.route(), Route::Followup { .. })),
        "no followups: {}",
        fx.double.request_transcript()
    );
}

#[tokio::test]
async fn nothing_pings_except_the_mentions_deckhand_intends() {
    let extra = "[[confirm.approval]]\ncommands = [\"echo.wipe\"]\napprover_roles = [\"77\"]\n";
    let fx = Fixture::start(DiscordDouble::builder().channel(555, "alerts"), extra).await;
    with_builtins(&fx, Arc::new(Output), "shout").await;
    // A reply whose text mentions everyone, a role and a user pings nobody.
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("shout"))
        .await;
    let reply = fx.callback(&sent).await;
    assert!(reply.content().unwrap().contains("@everyone"));
    assert_eq!(reply.pings(), Vec::<String>::new(), "{reply}");
    // Nor does an unprompted channel post (an alert quoting a log line).
    let outbox = fx.handle.as_ref().unwrap().outbox.clone();
    outbox
        .post(OutboundMessage {
            channel: "555".into(),
            text: "FIRING: @here disk full on <@&1> (<@2>)".into(),
            actions: vec![],
            files: Vec::new(),
            key: None,
        })
        .await
        .expect("posted");
    let alert = fx
        .double
        .wait_for(
            |r| r.route() == Route::ChannelMessage { channel_id: 555 },
            T,
        )
        .await
        .unwrap();
    assert_eq!(alert.pings(), Vec::<String>::new(), "{alert}");
    // The approvers of a command waiting for a second person are pinged on purpose.
    let wipe = fx
        .double
        .send_interaction(InteractionBuilder::slash("wipe"))
        .await;
    let asked = fx.callback(&wipe).await;
    assert_eq!(asked.pings(), ["<@&77>"], "{asked}");
}

#[tokio::test]
async fn a_command_that_may_outlive_the_token_runs_in_a_thread() {
    // /slow's limit (30 s) is past the token's usable lifetime (20 s less a margin).
    let double = DiscordDouble::builder()
        .token_lifetime(Duration::from_secs(20))
        .start()
        .await;
    let discord = format!("{}\ntoken_lifetime = \"20s\"", guild_scoped(&double));
    let fx = Fixture::on(double, "", &discord, false).await;
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 3000)),
        )
        .await;
    assert_eq!(fx.callback(&sent).await.callback_type(), Some(5));
    let created = fx
        .double
        .wait_for(|r| matches!(r.route(), Route::CreateThread { .. }), T)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.status, 201, "{created}");
    let Route::CreateThread {
        channel_id,
        message_id: Some(starter),
    } = created.route()
    else {
        panic!("a thread on the deferred reply: {created}");
    };
    assert_eq!(channel_id, example_channel_id());
    let thread = fx.double.threads()[0]["id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(thread, starter);
    let pointer = fx.answer_containing(&sent, "is running in").await;
    assert!(pointer.content().unwrap().contains(&format!("<#{thread}>")));
    // Progress and the result are posted in the thread with the bot token.
    let progress = fx
        .double
        .wait_for(
            |r| {
                r.route() == Route::ChannelMessage { channel_id: thread }
                    && r.content().is_some_and(|c| c.contains("is running"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(progress.status, 200);
    let result = fx
        .double
        .wait_for(
            |r| {
                r.route() == Route::ChannelMessage { channel_id: thread }
                    && r.content().is_some_and(|c| c.contains("slept 3000 ms"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.status, 200);
    assert_eq!(result.pings(), [format!("<@{}>", example_user_id())]);
    // The interaction message finally points to the thread.
    let last = fx.answer_containing(&sent, "finished").await;
    assert!(
        last.content().unwrap().contains(&format!("<#{thread}>")),
        "{last}"
    );
    assert!(last.index > result.index);
    assert!(
        !fx.double.requests().iter().any(|r| r.route()
            == Route::ChannelMessage {
                channel_id: example_channel_id()
            }),
        "nothing posted in the channel itself: {}",
        fx.double.request_transcript()
    );
}

fn registration_puts(double: &DiscordDouble) -> Vec<RecordedRequest> {
    double
        .requests()
        .into_iter()
        .filter(|r| matches!(r.route(), Route::RegisterCommands { .. }))
        .collect()
}

#[tokio::test]
async fn a_refused_command_list_is_sent_again_with_backoff() {
    let double = DiscordDouble::start().await;
    double.refuse_registrations(1);
    let guild = guild_scoped(&double);
    let fx = Fixture::on(double, "", &guild, false).await;
    let accepted = fx
        .double
        .wait_for(
            |r| matches!(r.route(), Route::RegisterCommands { .. }) && r.status == 200,
            Duration::from_secs(15),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let puts = registration_puts(&fx.double);
    assert_eq!(puts.len(), 2, "{}", fx.double.request_transcript());
    assert_eq!(puts[0].status, 400);
    let waited = accepted.at - puts[0].at;
    // Not every resync (200 ms here), but after the backoff (5 s).
    assert!(waited >= Duration::from_secs(5), "retried after {waited:?}");
    assert!(
        fx.double
            .commands(Some(fx.double.guild_id()))
            .iter()
            .any(|c| c["name"] == "echo")
    );
}

async fn put(double: &DiscordDouble, guild: Option<u64>, body: Value) {
    let scope = guild.map_or(String::new(), |g| format!("guilds/{g}/"));
    let url = format!(
        "{}/api/v10/applications/{}/{scope}commands",
        double.base_url(),
        double.application_id()
    );
    let response = reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn switching_guild_id_removes_the_other_scopes_commands() {
    let old = json!([{"type": 1, "name": "old", "description": "left over"}]);
    // Global before, guild-scoped now: the global list is emptied.
    let double = DiscordDouble::start().await;
    put(&double, None, old.clone()).await;
    let guild = guild_scoped(&double);
    let fx = Fixture::on(double, "", &guild, false).await;
    fx.double
        .wait_for(
            |r| {
                r.route()
                    == (Route::RegisterCommands {
                        application_id: fx.double.application_id(),
                        guild_id: None,
                    })
                    && r.body == Some(json!([]))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fx.double.commands(None).is_empty());
    assert!(!fx.double.commands(Some(fx.double.guild_id())).is_empty());
    drop(fx);

    // Guild-scoped before, global now: the guild's list is emptied.
    let double = DiscordDouble::start().await;
    put(&double, Some(double.guild_id()), old).await;
    let fx = Fixture::on(double, "", "", false).await;
    let guild = fx.double.guild_id();
    fx.double
        .wait_for(
            |r| {
                r.route()
                    == (Route::RegisterCommands {
                        application_id: fx.double.application_id(),
                        guild_id: Some(guild),
                    })
                    && r.body == Some(json!([]))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fx.double.commands(Some(guild)).is_empty());
    assert!(fx.double.commands(None).iter().any(|c| c["name"] == "echo"));
}

#[tokio::test]
async fn the_real_plugins_register_by_discords_full_rules() {
    let plugins = ["aks", "vk", "acr", "runner", "minio", "daskhub"];
    let libraries: Vec<_> = plugins
        .iter()
        .map(|p| deckhand_it::product_plugin_library(p))
        .collect();
    let double = DiscordDouble::start().await;
    let guild = guild_scoped(&double);
    let fx = Fixture::with_libraries(double, &libraries, "", &guild, false).await;
    let loaded: Vec<String> = fx.bot.app.host.registry().plugins.keys().cloned().collect();
    for plugin in plugins {
        assert!(
            loaded.iter().any(|l| l == plugin),
            "{plugin} not loaded: {loaded:?}"
        );
    }
    let puts = registration_puts(&fx.double);
    assert!(
        puts.iter().all(|r| r.status == 200),
        "{}",
        fx.double.request_transcript()
    );
    let registered: Vec<String> = fx
        .double
        .commands(Some(fx.double.guild_id()))
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    // Every top-level command of every plugin's manifest made it (none left out by the
    // adapter's validator, none refused by the double's rules).
    for (name, _) in fx.bot.app.router.index().entries.iter() {
        assert!(registered.contains(name), "/{name} missing: {registered:?}");
    }
}

#[tokio::test]
async fn destructive_commands_default_to_managers_and_foreign_guilds_are_refused() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let commands = fx.double.commands(Some(fx.double.guild_id()));
    let wipe = commands.iter().find(|c| c["name"] == "wipe").unwrap();
    assert_eq!(wipe["default_member_permissions"], "32", "MANAGE_GUILD");
    let echo = commands.iter().find(|c| c["name"] == "echo").unwrap();
    assert!(echo["default_member_permissions"].is_null());

    // Another guild: a short private refusal, nothing runs (no audit row).
    let audited = fx.bot.app.db.audit_recent(100).unwrap().len();
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("count").guild(1234))
        .await;
    let refused = fx.callback(&sent).await;
    assert!(refused.is_ephemeral(), "{refused}");
    assert!(
        refused
            .content()
            .unwrap()
            .contains("does not serve this server")
    );
    assert_eq!(fx.bot.app.db.audit_recent(100).unwrap().len(), audited);
}

#[tokio::test]
async fn a_dm_without_a_member_is_answered_as_the_user_without_roles() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("whoami").dm())
        .await;
    let reply = fx.callback(&sent).await;
    let text = reply.content().unwrap();
    assert!(text.contains(&example_user_id().to_string()), "{text}");
    assert!(text.contains("roles: none"), "no member, no roles: {text}");
}

/// A slow built-in whose manifest says its reply is private.
struct SlowPrivate;

impl BuiltinGroup for SlowPrivate {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("mykeys", "Your keys, slowly")
                .permission("")
                .private(),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        _invocation: &'a Invocation,
        _parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut response = Response::ok("key: k3y");
            response.ephemeral = true;
            Ok(response)
        })
    }
}

#[tokio::test]
async fn a_reply_the_manifest_calls_private_is_deferred_privately() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(SlowPrivate), "mykeys").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("mykeys"))
        .await;
    let deferred = fx.callback(&sent).await;
    assert_eq!(
        (deferred.callback_type(), deferred.is_ephemeral()),
        (Some(5), true),
        "{deferred}"
    );
    let result = fx.answer_containing(&sent, "k3y").await;
    assert!(
        matches!(result.route(), Route::EditOriginal { .. }),
        "{result}"
    );
    let original = fx
        .double
        .messages()
        .into_iter()
        .find(|m| m["content"] == "key: k3y")
        .expect("the original holds the reply");
    assert_eq!(original["flags"].as_u64().unwrap_or(0) & 64, 64);
}

#[tokio::test]
async fn integer_bounds_reach_discord_and_help_autocompletes() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let commands = fx.double.commands(Some(fx.double.guild_id()));
    let option = |command: &str, name: &str| -> Value {
        commands
            .iter()
            .find(|c| c["name"] == command)
            .and_then(|c| c["options"].as_array())
            .and_then(|o| o.iter().find(|o| o["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no /{command} {name}"))
    };
    let count = option("audit", "count");
    assert_eq!(
        (&count["min_value"], &count["max_value"]),
        (&json!(1), &json!(500))
    );
    assert_eq!(option("help", "command")["autocomplete"], true);
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::autocomplete("help")
                .option(CommandOption::string("command", "ec").focused()),
        )
        .await;
    let answer = fx.callback(&sent).await;
    assert_eq!(answer.callback_type(), Some(8));
    let choices = answer.body.as_ref().unwrap()["data"]["choices"].clone();
    assert!(
        choices
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["value"] == "echo"),
        "{choices}"
    );
}

#[tokio::test]
async fn a_running_command_has_a_cancel_button_that_stops_it() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 20_000)),
        )
        .await;
    let progress = fx
        .double
        .wait_for(
            |r| {
                sent.is_answered_by(r)
                    && r.body
                        .as_ref()
                        .and_then(|b| b["components"][0]["components"][0]["custom_id"].as_str())
                        .is_some_and(|c| c.starts_with("dh:cancel:"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(progress.content().unwrap().contains("is running"));
    let button = progress.body.as_ref().unwrap()["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let press = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let answer = fx.callback(&press).await;
    assert!(answer.is_ephemeral(), "{answer}");
    assert!(
        answer.content().unwrap().contains("Cancellation"),
        "{answer}"
    );
    // The command stops well before its 20 s and its message says so, without the button.
    let ended = fx
        .double
        .wait_for(
            |r| sent.is_answered_by(r) && r.content().is_some_and(|c| c.contains("cancelled")),
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ended.body.as_ref().unwrap()["components"],
        json!([]),
        "{ended}"
    );
    assert!(ended.at - progress.at < Duration::from_secs(10));
}

/// A built-in answering `response` to `/NAME` (a reply with buttons or files).
struct Fixed {
    name: &'static str,
    response: Response,
}

impl BuiltinGroup for Fixed {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new(self.name, "A fixed reply").permission("")]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        _invocation: &'a Invocation,
        _parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move { Ok(self.response.clone()) })
    }
}

/// `/offer` offers a button (as `/acr build` offers "Deploy").
fn offers() -> Fixed {
    let mut response = Response::ok("built simsvc-mpt:1.2");
    response.actions = vec![deckhand_plugin_abi::proto::ReplyAction {
        label: "Say hi".into(),
        command: "/echo hi --upper".into(),
    }];
    Fixed {
        name: "offer",
        response,
    }
}

#[tokio::test]
async fn a_replys_actions_are_buttons_that_run_their_command_as_the_presser() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(offers()), "offer").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("offer"))
        .await;
    let reply = fx.callback(&sent).await;
    let body = reply.body.as_ref().unwrap();
    let button = &body["data"]["components"][0]["components"][0];
    assert_eq!(button["label"], "Say hi", "{reply}");
    let custom_id = button["custom_id"].as_str().unwrap().to_owned();
    assert!(custom_id.starts_with("dh:run:"), "{custom_id}");
    let press = fx
        .double
        .send_interaction(InteractionBuilder::button(&custom_id))
        .await;
    fx.answer_containing(&press, "HI").await;
}

/// The 8-byte PNG signature and an IHDR chunk header: enough to recognise the file.
const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// `/chart` carries a file (as `/cost --week` carries its chart).
fn charts() -> Fixed {
    let mut response = Response::ok("Node-hours this week: see the chart");
    response.files = vec![deckhand::router::Attachment {
        name: "cost-week.png".into(),
        bytes: PNG_HEAD.to_vec(),
    }];
    Fixed {
        name: "chart",
        response,
    }
}

#[tokio::test]
async fn a_replys_files_are_attached() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    with_builtins(&fx, Arc::new(charts()), "chart").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("chart"))
        .await;
    let reply = fx.callback(&sent).await;
    assert_eq!(
        reply.content(),
        Some("Node-hours this week: see the chart"),
        "{reply}"
    );
    let files = reply.files();
    assert_eq!(files.len(), 1, "{reply}");
    assert_eq!(files[0].0, "cost-week.png");
    assert!(
        files[0].1.contains("PNG") && files[0].1.contains("IHDR"),
        "{:?}",
        files[0].1
    );
}
