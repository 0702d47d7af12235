//! The Discord surface end to end: the real bot (router, dlopen'd echo plugin) on an
//! unmodified serenity 0.12.5 client, against the Discord double in `tests/discord-double`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deckhand::chat::discord::{self, DiscordHandle, DiscordTransport};
use deckhand::chat::{Action, OutboundMessage, Outbox};
use deckhand::router::builtins::BuiltinGroup;
use deckhand::router::parse::Parsed;
use deckhand::router::{Invocation, Response, Router, RouterError};
use deckhand_discord_double::{
    CommandOption, Direction, DiscordDouble, DoubleBuilder, InteractionBuilder, RateLimit,
    RecordedRequest, Route, SentInteraction, example_user_id,
};
use deckhand_it::TestBot;
use deckhand_plugin_abi::proto::{CommandSpec, OptionSpec};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

pub(crate) const T: Duration = Duration::from_secs(10);
/// The double's default member role ("Mason", the examples' user), mapped to `admin`.
pub(crate) const ADMIN_ROLE: u64 = 539_082_325_061_836_999;
const OTHER_USER: u64 = 4242;

pub(crate) struct Fixture {
    pub(crate) double: DiscordDouble,
    pub(crate) bot: TestBot,
    pub(crate) handle: Option<DiscordHandle>,
}

/// Connects `bot`'s `[discord]` to the double (over TLS with the ratelimiter on, or plain HTTP
/// with it off) and waits for READY.
pub(crate) async fn connect(bot: &TestBot, double: &DiscordDouble, tls: bool) -> DiscordHandle {
    let transport = if tls {
        let ca = reqwest::Certificate::from_pem(double.ca_pem().as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .resolve("discord.com", double.tls_addr())
            .build()
            .unwrap();
        DiscordTransport {
            base_url: None,
            client: Some(client),
        }
    } else {
        DiscordTransport {
            base_url: Some(double.base_url()),
            client: None,
        }
    };
    let handle = discord::start(
        bot.app.router.clone(),
        bot.app.db.clone(),
        bot.app.config.discord.clone().expect("[discord] parsed"),
        transport,
    )
    .await
    .expect("discord client");
    double.wait_for_ready(T).await.expect("READY");
    handle
}

impl Fixture {
    pub(crate) async fn start(builder: DoubleBuilder, extra: &str) -> Fixture {
        let double = builder.start().await;
        let guild = guild_scoped(&double);
        Fixture::on(double, extra, &guild, false).await
    }

    /// The bot with the echo plugin on `double`. `extra` is appended to the config,
    /// `discord_extra` to its `[discord]` section (commands are global unless it names a guild). `tls`: serenity's real `https://discord.com`
    /// URLs resolved to the double, ratelimiter on (mode b); otherwise the base-URL proxy with
    /// the ratelimiter off (mode a).
    pub(crate) async fn on(
        double: DiscordDouble,
        extra: &str,
        discord_extra: &str,
        tls: bool,
    ) -> Fixture {
        Fixture::with_libraries(
            double,
            &[deckhand_it::plugin_library("echo")],
            extra,
            discord_extra,
            tls,
        )
        .await
    }

    /// As [`Fixture::on`] with these plugin libraries instead of the echo plugin.
    pub(crate) async fn with_libraries(
        double: DiscordDouble,
        libraries: &[std::path::PathBuf],
        extra: &str,
        discord_extra: &str,
        tls: bool,
    ) -> Fixture {
        let config = format!(
            "{extra}\n[discord]\ntoken = \"${{DECKHAND_IT_TOKEN}}\"\n\
             progress_interval = \"1s\"\nresync_interval = \"200ms\"\n{discord_extra}\n[discord.roles]\n\"{ADMIN_ROLE}\" = \"admin\"\n",
        );
        let bot = TestBot::with_libraries(libraries, &config);
        let handle = connect(&bot, &double, tls).await;
        double
            .wait_for(|r| matches!(r.route(), Route::RegisterCommands { .. }), T)
            .await
            .expect("commands registered");
        Fixture {
            double,
            bot,
            handle: Some(handle),
        }
    }

    /// The first answer (callback) to `sent`.
    pub(crate) async fn callback(&self, sent: &SentInteraction) -> RecordedRequest {
        self.double
            .wait_for(|r| sent.is_answered_by(r) && r.callback_type().is_some(), T)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) async fn answer_containing(
        &self,
        sent: &SentInteraction,
        text: &str,
    ) -> RecordedRequest {
        self.double
            .wait_for(
                |r| sent.is_answered_by(r) && r.content().is_some_and(|c| c.contains(text)),
                T,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Stop the gateway task with the test; the runtime's shutdown cancels the rest.
        if let Some(handle) = self.handle.take() {
            drop(tokio::spawn(handle.shutdown()));
        }
    }
}

pub(crate) fn guild_scoped(double: &DiscordDouble) -> String {
    format!("guild_id = {}", double.guild_id())
}

fn custom_id(body: &Value) -> Option<String> {
    let data = body.get("data").unwrap_or(body);
    data["components"][0]["components"][0]["custom_id"]
        .as_str()
        .map(str::to_owned)
}

fn option<'a>(command: &'a Value, name: &str) -> &'a Value {
    command["options"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no option {name} in {command}"))
}

#[tokio::test]
async fn registration_matches_the_manifests_and_follows_reloads() {
    let double = DiscordDouble::start().await;
    // A command left over from an earlier version: the bot's PUT must remove it.
    let stale = reqwest::Client::new()
        .post(format!(
            "{}/api/v10/applications/{}/guilds/{}/commands",
            double.base_url(),
            double.application_id(),
            double.guild_id()
        ))
        .json(&json!({"name": "old-command", "description": "gone", "type": 1}))
        .send()
        .await
        .unwrap();
    assert!(stale.status().is_success());
    assert_eq!(double.commands(Some(double.guild_id())).len(), 1);
    let guild = guild_scoped(&double);
    let fx = Fixture::on(double, "", &guild, false).await;
    let (guild, body) = fx.double.registrations().remove(0);
    assert_eq!(guild, Some(fx.double.guild_id()), "guild-scoped");
    let commands = body.as_array().unwrap();
    let names: BTreeSet<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "approve", "audit", "cancel", "confirm", "help", "plugins", "whoami", // built-ins
        "busy", "count", "echo", "fetch", "forever", "kv", "later", "nap", "notify", "run", "slow",
        "wipe", // echo plugin
    ]
    .into();
    assert_eq!(names, expected);

    let echo = commands.iter().find(|c| c["name"] == "echo").unwrap();
    assert_eq!(echo["description"], "Repeat the text back");
    assert_eq!(echo["options"][0]["name"], "text", "required options first");
    assert_eq!(
        option(echo, "text"),
        &json!({"type": 3, "name": "text", "description": "What to say", "required": true})
    );
    assert_eq!(option(echo, "upper")["type"], 5);
    assert_eq!(option(echo, "times")["type"], 4);
    assert_eq!(
        option(echo, "wait")["type"],
        3,
        "durations are typed as text"
    );
    let color = option(echo, "color");
    assert_eq!(color["autocomplete"], true);
    assert!(
        color.get("choices").is_none(),
        "Discord refuses choices with autocomplete"
    );
    let kv = commands.iter().find(|c| c["name"] == "kv").unwrap();
    let put = option(kv, "put");
    assert_eq!(put["type"], 1, "subcommand");
    assert_eq!(
        put["options"],
        json!([
            {"type": 3, "name": "key", "description": "Key", "required": true},
            {"type": 3, "name": "value", "description": "Value", "required": true}
        ])
    );
    let reload = option(
        option(
            commands.iter().find(|c| c["name"] == "plugins").unwrap(),
            "reload",
        ),
        "name",
    );
    assert_eq!(reload["autocomplete"], true);

    // Discord accepted it (the double validates like Discord) and the stale command is gone.
    let registered: BTreeSet<String> = fx
        .double
        .commands(Some(fx.double.guild_id()))
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        registered,
        expected.iter().map(|s| (*s).to_owned()).collect()
    );

    // A built-in group added at run time is registered too; its choices become Discord's.
    fx.bot.app.router.add_builtins(std::sync::Arc::new(Palette));
    let third = fx
        .double
        .wait_for(
            |r| {
                matches!(r.route(), Route::RegisterCommands { .. })
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"palette\""))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let palette = third
        .body
        .as_ref()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "palette")
        .unwrap()
        .clone();
    assert_eq!(
        option(&palette, "shade"),
        &json!({
            "type": 3, "name": "shade", "description": "How dark", "required": true,
            "choices": [{"name": "light", "value": "light"}, {"name": "dark", "value": "dark"}]
        })
    );

    // A plugin loaded at run time is registered without a restart.
    let boom = deckhand_it::plugin_library("boom");
    let copy = fx.bot.plugin_dir().join(boom.file_name().unwrap());
    std::fs::copy(&boom, &copy).unwrap();
    fx.bot.app.host.load(&copy).expect("boom loads");
    let second = fx
        .double
        .wait_for(
            |r| {
                matches!(r.route(), Route::RegisterCommands { .. })
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("\"boom\""))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.status, 200);
    assert!(
        fx.double
            .commands(Some(fx.double.guild_id()))
            .iter()
            .any(|c| c["name"] == "boom")
    );
    // Nothing changed since: no further registration.
    let count = fx.double.registrations().len();
    assert_eq!(count, 3, "{}", fx.double.request_transcript());
}

#[tokio::test]
async fn slow_command_is_deferred_then_edited_with_progress_and_result() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent_at = Instant::now();
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 10_000)),
        )
        .await;
    let first = fx.callback(&sent).await;
    assert_eq!(
        (first.callback_type(), first.status),
        (Some(5), 204),
        "deferred: {}",
        fx.double.request_transcript()
    );
    assert!(
        first.at - sent_at < Duration::from_secs(3),
        "deferred after {:?}",
        first.at - sent_at
    );
    let progress = fx.answer_containing(&sent, "is running").await;
    assert!(matches!(progress.route(), Route::EditOriginal { .. }));
    assert!(
        progress.content().unwrap().contains("/slow")
            && progress.content().unwrap().contains("step"),
        "{progress}"
    );
    let done = fx
        .double
        .wait_for(
            |r| sent.is_answered_by(r) && r.content().is_some_and(|c| c.contains("slept 10000 ms")),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(done.route(), Route::EditOriginal { .. }));
    assert_eq!(done.status, 200);
    let edits: Vec<_> = fx
        .double
        .requests()
        .into_iter()
        .filter(|r| sent.is_answered_by(r) && matches!(r.route(), Route::EditOriginal { .. }))
        .collect();
    // Progress is throttled (1 s in this config): a handful of edits, not one per line.
    assert!(
        (3..=13).contains(&edits.len()),
        "{} edits: {}",
        edits.len(),
        fx.double.request_transcript()
    );
    assert!(edits.iter().all(|r| r.status == 200));
    let original = fx.double.messages().into_iter().find(|m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("slept 10000 ms"))
    });
    assert!(original.is_some(), "the original holds the result");
}

#[tokio::test]
async fn confirmation_buttons_run_for_the_requester_and_refuse_others() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("wipe"))
        .await;
    let asked = fx.callback(&sent).await;
    assert_eq!(asked.callback_type(), Some(4));
    assert!(!asked.is_ephemeral());
    assert!(asked.content().unwrap().contains("/confirm"), "{asked}");
    let button = custom_id(asked.body.as_ref().unwrap()).expect("a Confirm button");
    assert!(button.starts_with("dh:confirm:"), "{button}");

    // Someone else presses: an ephemeral refusal, nothing runs, the message stays.
    let other = fx
        .double
        .send_interaction(
            InteractionBuilder::button(&button)
                .user(OTHER_USER, "Eve")
                .roles(&[]),
        )
        .await;
    let refusal = fx.callback(&other).await;
    assert_eq!(refusal.callback_type(), Some(4));
    assert!(refusal.is_ephemeral(), "{refusal}");
    assert!(
        refusal
            .content()
            .unwrap()
            .contains("only Mason can confirm"),
        "{refusal}"
    );

    // The requester presses: the message is replaced by the result, buttons gone.
    let press = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let done = fx.callback(&press).await;
    assert_eq!(
        done.callback_type(),
        Some(7),
        "{}",
        fx.double.request_transcript()
    );
    let content = done.content().unwrap();
    assert!(
        content.contains("Confirmed by Mason") && content.contains("wiped"),
        "{content}"
    );
    assert_eq!(done.body.as_ref().unwrap()["data"]["components"], json!([]));
    assert!(
        !fx.double
            .messages()
            .iter()
            .any(|m| custom_id(m).as_deref() == Some(button.as_str()))
    );

    // Pressing again (a stale client): the router says it is no longer pending, privately.
    let again = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let late = fx.callback(&again).await;
    assert!(
        late.is_ephemeral() && late.content().unwrap().contains("no pending confirmation"),
        "{late}"
    );
}

#[tokio::test]
async fn approval_button_needs_a_second_person_with_the_approver_role() {
    // Role id 77 is not in [discord.roles]: unmapped ids reach the config as themselves.
    let extra = "[[confirm.approval]]\ncommands = [\"echo.wipe\"]\napprover_roles = [\"77\"]\n";
    let fx = Fixture::start(DiscordDouble::builder(), extra).await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("wipe"))
        .await;
    let asked = fx.callback(&sent).await;
    let button = custom_id(asked.body.as_ref().unwrap()).unwrap();
    assert!(button.starts_with("dh:approve:"), "{button}");
    // The requester cannot approve their own command; nor can someone without the role.
    let own = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let refused = fx.callback(&own).await;
    assert!(
        refused.is_ephemeral() && refused.content().unwrap().contains("second person"),
        "{refused}"
    );
    let eve = fx
        .double
        .send_interaction(
            InteractionBuilder::button(&button)
                .user(OTHER_USER, "Eve")
                .roles(&[78]),
        )
        .await;
    let refused = fx.callback(&eve).await;
    assert!(
        refused.is_ephemeral() && refused.content().unwrap().contains("needs role 77"),
        "{refused}"
    );
    // An approver approves: the message shows who approved and the result.
    let ann = fx
        .double
        .send_interaction(
            InteractionBuilder::button(&button)
                .user(OTHER_USER + 1, "Ann")
                .roles(&[77]),
        )
        .await;
    let done = fx.callback(&ann).await;
    assert_eq!(
        done.callback_type(),
        Some(7),
        "{}",
        fx.double.request_transcript()
    );
    let content = done.content().unwrap();
    assert!(
        content.contains("Approved by Ann") && content.contains("wiped"),
        "{content}"
    );
}

#[tokio::test]
async fn expired_confirmation_button_says_it_expired() {
    let fx = Fixture::start(DiscordDouble::builder(), "[confirm]\ntimeout = \"1s\"\n").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("wipe"))
        .await;
    let asked = fx.callback(&sent).await;
    let button = custom_id(asked.body.as_ref().unwrap()).unwrap();
    // The confirmation book runs on the real clock.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let press = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let answer = fx.callback(&press).await;
    assert_eq!(answer.callback_type(), Some(4));
    assert!(answer.is_ephemeral());
    assert!(answer.content().unwrap().contains("expired"), "{answer}");
    // Nothing ran.
    assert!(
        !fx.double
            .requests()
            .iter()
            .any(|r| r.content().is_some_and(|c| c.contains("wiped"))),
        "{}",
        fx.double.request_transcript()
    );
}

#[tokio::test]
async fn per_user_replies_are_ephemeral_and_roles_map_to_permissions() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent = fx
        .double
        .send_interaction(InteractionBuilder::slash("whoami"))
        .await;
    let reply = fx.callback(&sent).await;
    assert_eq!(reply.callback_type(), Some(4));
    assert!(reply.is_ephemeral(), "{reply}");
    let text = reply.content().unwrap();
    assert!(
        text.contains(&format!("user id {}", example_user_id())),
        "{text}"
    );
    assert!(
        text.contains("roles: admin") && text.contains("on discord"),
        "{text}"
    );

    // A public reply is not ephemeral; a user without a mapped role is refused by the router.
    let echo = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("echo")
                .option(CommandOption::string("text", "hi there"))
                .option(CommandOption::boolean("upper", true)),
        )
        .await;
    let reply = fx.callback(&echo).await;
    assert!(!reply.is_ephemeral());
    assert_eq!(reply.content(), Some("HI THERE"));
    let stranger = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("count")
                .user(OTHER_USER, "Eve")
                .roles(&[1]),
        )
        .await;
    let denied = fx.callback(&stranger).await;
    assert!(
        denied.content().unwrap().contains("Eve may not run /count"),
        "{denied}"
    );
}

#[tokio::test]
async fn autocomplete_is_answered_by_the_plugin_within_limits() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent_at = Instant::now();
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::autocomplete("echo")
                .option(CommandOption::string("text", "hi"))
                .option(CommandOption::string("color", "").focused()),
        )
        .await;
    let answer = fx.callback(&sent).await;
    assert_eq!((answer.callback_type(), answer.status), (Some(8), 204));
    assert!(answer.at - sent_at < Duration::from_secs(3));
    assert_eq!(
        answer.body.as_ref().unwrap()["data"]["choices"],
        json!([
            {"name": "red", "value": "red"},
            {"name": "green", "value": "green"},
            {"name": "blue", "value": "blue"}
        ])
    );

    // A built-in answers from the registry.
    let reload = fx
        .double
        .send_interaction(InteractionBuilder::autocomplete("plugins").option(
            CommandOption::subcommand(
                "reload",
                vec![CommandOption::string("name", "ec").focused()],
            ),
        ))
        .await;
    let answer = fx.callback(&reload).await;
    assert_eq!(
        answer.body.as_ref().unwrap()["data"]["choices"],
        json!([{"name": "echo", "value": "echo"}])
    );

    // Someone who may not run the command learns nothing from its suggestions.
    let stranger = fx
        .double
        .send_interaction(
            InteractionBuilder::autocomplete("echo")
                .user(OTHER_USER, "Eve")
                .roles(&[])
                .option(CommandOption::string("color", "").focused()),
        )
        .await;
    let answer = fx.callback(&stranger).await;
    assert_eq!(answer.body.as_ref().unwrap()["data"]["choices"], json!([]));
}

#[tokio::test]
async fn retry_after_is_honoured_with_the_ratelimiter_on() {
    let double = DiscordDouble::start().await;
    let guild = guild_scoped(&double);
    let fx = Fixture::on(double, "", &guild, true).await;
    let wait = Duration::from_millis(1000);
    fx.double
        .script_rate_limit(RateLimit::on("POST", "/callback").retry_after(wait));
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("echo").option(CommandOption::string("text", "limited")),
        )
        .await;
    let delivered = fx
        .double
        .wait_for(|r| sent.is_answered_by(r) && r.status == 204, T)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(delivered.content(), Some("limited"));
    let attempts: Vec<_> = fx
        .double
        .requests()
        .into_iter()
        .filter(|r| sent.is_answered_by(r))
        .collect();
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 204],
        "{}",
        fx.double.request_transcript()
    );
    let gap = attempts[1].at - attempts[0].at;
    assert!(
        gap >= wait,
        "retried after {gap:?}; Retry-After was {wait:?}"
    );
    assert!(
        attempts.iter().all(|r| r.tls),
        "served as https://discord.com"
    );
}

#[tokio::test]
async fn gateway_closed_mid_command_is_resumed_and_the_reply_delivered() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let slow = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 2500)),
        )
        .await;
    assert_eq!(fx.callback(&slow).await.callback_type(), Some(5));
    let before = fx.double.frame_count();
    fx.double.close_gateway(4000);
    // Sent while the bot is away: replayed on RESUME.
    let missed = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("echo").option(CommandOption::string("text", "missed")),
        )
        .await;
    let resume = fx
        .double
        .wait_for_frame_after(before, |f| f.is_op(Direction::FromClient, 6), T)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resume.payload["d"]["session_id"].as_str(),
        fx.double.session_id().as_deref()
    );
    let done = fx.answer_containing(&slow, "slept 2500 ms").await;
    assert!(matches!(done.route(), Route::EditOriginal { .. }));
    assert_eq!(fx.answer_containing(&missed, "missed").await.status, 204);
    let identifies = fx
        .double
        .frames()
        .iter()
        .filter(|f| f.is_op(Direction::FromClient, 2))
        .count();
    assert_eq!(
        identifies,
        1,
        "resumed, not re-identified: {}",
        fx.double.gateway_transcript()
    );
}

#[tokio::test]
async fn past_the_token_lifetime_the_result_goes_to_the_channel() {
    let double = DiscordDouble::builder()
        .token_lifetime(Duration::from_millis(1500))
        .start()
        .await;
    // The bot is told the same (shortened) lifetime.
    let discord = format!("{}\ntoken_lifetime = \"1500ms\"", guild_scoped(&double));
    let fx = Fixture::on(double, "", &discord, false).await;
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 2000)),
        )
        .await;
    assert_eq!(fx.callback(&sent).await.callback_type(), Some(5));
    let posted = fx
        .double
        .wait_for(
            |r| {
                matches!(r.route(), Route::ChannelMessage { .. })
                    && r.content().is_some_and(|c| c.contains("slept 2000 ms"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        posted
            .content()
            .unwrap()
            .starts_with(&format!("<@{}>", example_user_id()))
    );
    assert_eq!(posted.status, 200);
}

#[tokio::test]
async fn a_keyed_post_sent_twice_makes_one_discord_message_through_its_nonce() {
    // The gap the ledger cannot close: a replica sent a report and died before marking it
    // sent; the one taking over sends it again. Discord (here the double, as documented for
    // `enforce_nonce`) answers the second create with the first message.
    let fx = Fixture::start(DiscordDouble::builder().channel(555, "gpu-ops"), "").await;
    let outbox = fx.handle.as_ref().unwrap().outbox.clone();
    let report = |key: &str| OutboundMessage {
        channel: "555".into(),
        text: "Schedule nightly [1/10] /aks scale-down --pool gpu1 --count 0\n✓ done".into(),
        actions: Vec::new(),
        files: Vec::new(),
        key: Some(key.into()),
    };
    for _ in 0..2 {
        outbox
            .post(report("schedule-run:7:0"))
            .await
            .expect("posted");
    }
    outbox
        .post(report("schedule-run:7:1"))
        .await
        .expect("posted");
    let creates: Vec<_> = fx
        .double
        .requests()
        .into_iter()
        .filter(|r| r.route() == Route::ChannelMessage { channel_id: 555 })
        .collect();
    assert_eq!(creates.len(), 3, "three creates were sent");
    let nonces: Vec<&str> = creates
        .iter()
        .map(|r| r.body.as_ref().unwrap()["nonce"].as_str().unwrap())
        .collect();
    assert_eq!(nonces[0], nonces[1]);
    assert_ne!(nonces[0], nonces[2]);
    assert!(
        creates
            .iter()
            .all(|r| r.body.as_ref().unwrap()["enforce_nonce"] == true)
    );
    let in_channel: Vec<_> = fx
        .double
        .messages()
        .into_iter()
        .filter(|m| m["channel_id"] == "555")
        .collect();
    assert_eq!(in_channel.len(), 2, "{in_channel:?}");
}

#[tokio::test]
async fn outbox_posts_buttons_that_run_as_the_presser() {
    let fx = Fixture::start(DiscordDouble::builder().channel(555, "gpu-ops"), "").await;
    let outbox = fx.handle.as_ref().unwrap().outbox.clone();
    outbox
        .post(OutboundMessage {
            channel: "555".into(),
            text: "Nightly scale-down in 10 min".into(),
            actions: vec![Action {
                label: "Count".into(),
                command: "/count".into(),
            }],
            files: Vec::new(),
            key: None,
        })
        .await
        .expect("posted");
    let posted = fx
        .double
        .wait_for(
            |r| r.route() == Route::ChannelMessage { channel_id: 555 },
            T,
        )
        .await
        .unwrap();
    let button = custom_id(posted.body.as_ref().unwrap()).expect("a button");
    assert!(button.starts_with("dh:run:"), "{button}");
    let press = fx
        .double
        .send_interaction(InteractionBuilder::button(&button))
        .await;
    let ran = fx.callback(&press).await;
    assert_eq!(ran.callback_type(), Some(4));
    assert!(
        !ran.is_ephemeral() && ran.content().unwrap().contains("calls served"),
        "{ran}"
    );
    let stranger = fx
        .double
        .send_interaction(
            InteractionBuilder::button(&button)
                .user(OTHER_USER, "Eve")
                .roles(&[]),
        )
        .await;
    let refused = fx.callback(&stranger).await;
    assert!(
        refused.is_ephemeral() && refused.content().unwrap().contains("may not run"),
        "{refused}"
    );
}

/// A built-in with a choice option.
struct Palette;

impl BuiltinGroup for Palette {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("palette", "Pick a shade")
                .option(OptionSpec::choice("shade", &["light", "dark"], "How dark").required()),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        _invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move { Ok(Response::ok(parsed.options["shade"].to_string())) })
    }
}

/// A built-in added at run time whose reply is private and slow (a per-user report).
pub(crate) struct SlowSecret;

impl BuiltinGroup for SlowSecret {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("mytoken", "Your personal token, slowly").permission("")]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        invocation: &'a Invocation,
        _parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut response =
                Response::ok(format!("token for {}: s3cr3t", invocation.caller.user_id));
            response.ephemeral = true;
            Ok(response)
        })
    }
}

#[tokio::test]
async fn a_call_with_a_sensitive_option_is_answered_privately() {
    let fx = Fixture::start(DiscordDouble::builder(), "").await;
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("echo")
                .option(CommandOption::string("text", "deploy"))
                .option(CommandOption::string("token", "hunter2")),
        )
        .await;
    let reply = fx.callback(&sent).await;
    assert_eq!(reply.callback_type(), Some(4));
    assert!(reply.is_ephemeral(), "{reply}");
    assert!(!reply.content().unwrap().contains("hunter2"), "{reply}");
}

/// The `deckhand` binary, killed when the test ends.
struct Served(std::process::Child, std::path::PathBuf);

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn deckhand_serve_connects_registers_and_answers() {
    let double = DiscordDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let echo = deckhand_it::plugin_library("echo");
    std::fs::copy(&echo, plugin_dir.join(echo.file_name().unwrap())).unwrap();
    let extra = format!(
        "[discord]\ntoken = \"${{DISCORD_TOKEN}}\"\nguild_id = {}\napi_base_url = \"{}\"\n\
         [discord.roles]\n\"{ADMIN_ROLE}\" = \"admin\"\n",
        double.guild_id(),
        double.base_url()
    );
    let config = dir.path().join("deckhand.toml");
    std::fs::write(
        &config,
        deckhand_it::config_text(&plugin_dir, &dir.path().join("state.db"), &extra),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let child = std::process::Command::new(deckhand_it::deckhand_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", "x")
        .env("DISCORD_TOKEN", "serve-token")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let served = Served(child, log);
    double
        .wait_for_ready(T)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    let gateway = double
        .wait_for(|r| r.route() == Route::Gateway, T)
        .await
        .unwrap();
    assert_eq!(gateway.header("authorization"), Some("Bot serve-token"));
    double
        .wait_for(
            |r| {
                matches!(
                    r.route(),
                    Route::RegisterCommands {
                        guild_id: Some(_),
                        ..
                    }
                )
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    let sent = double
        .send_interaction(
            InteractionBuilder::slash("echo")
                .option(CommandOption::string("text", "from the binary")),
        )
        .await;
    let reply = double
        .wait_for(|r| sent.is_answered_by(r), T)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", served.log()));
    assert_eq!(reply.content(), Some("from the binary"));
    assert!(
        !served.log().contains("serve-token"),
        "the token is never logged"
    );
}

#[test]
fn deckhand_serve_without_a_discord_section_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let config = dir.path().join("deckhand.toml");
    std::fs::write(
        &config,
        deckhand_it::config_text(&plugin_dir, &dir.path().join("state.db"), ""),
    )
    .unwrap();
    let out = std::process::Command::new(deckhand_it::deckhand_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env("DECKHAND_IT_TOKEN", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a [discord] section"), "{stderr}");
}

#[tokio::test]
async fn a_first_answer_refused_as_too_late_goes_to_the_channel() {
    // Discord's 3 s, shortened: the bot (defer_after 1 s) answers a 500 ms command directly,
    // after the double's deadline; Discord refuses with 10062 Unknown interaction.
    let double = DiscordDouble::builder()
        .response_deadline(Duration::from_millis(200))
        .start()
        .await;
    let guild = guild_scoped(&double);
    let fx = Fixture::on(double, "", &guild, false).await;
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("slow").option(CommandOption::integer("ms", 500)),
        )
        .await;
    let refused = fx.callback(&sent).await;
    assert_eq!(refused.status, 404, "{refused}");
    let posted = fx
        .double
        .wait_for(
            |r| {
                matches!(r.route(), Route::ChannelMessage { .. })
                    && r.content().is_some_and(|c| c.contains("slept 500 ms"))
            },
            T,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        posted
            .content()
            .unwrap()
            .starts_with(&format!("<@{}> /slow", example_user_id()))
    );
}

#[tokio::test]
async fn without_a_guild_commands_are_registered_globally() {
    let fx = Fixture::on(DiscordDouble::start().await, "", "", false).await;
    let (guild, body) = fx.double.registrations().remove(0);
    assert_eq!(guild, None);
    assert!(body.to_string().contains("\"echo\""));
    assert!(fx.double.commands(Some(fx.double.guild_id())).is_empty());
    // Interactions work the same (the double finds the global command's id).
    let sent = fx
        .double
        .send_interaction(
            InteractionBuilder::slash("echo").option(CommandOption::string("text", "global")),
        )
        .await;
    assert_eq!(fx.callback(&sent).await.content(), Some("global"));
}
