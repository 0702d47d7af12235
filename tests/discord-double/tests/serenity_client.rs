//! An unmodified serenity 0.12.5 client against the double.

mod support;

use std::time::Duration;

use deckhand_discord_double::{
    CommandOption, Direction, DiscordDouble, InteractionBuilder, RateLimit, RateLimitScope, Route,
};
use serenity::all::{ChannelId, CommandOptionType, CreateCommand, CreateCommandOption, GuildId};
use support::{Bot, Mode, Seen};

const T: Duration = Duration::from_secs(10);

async fn ready_bot(double: &DiscordDouble, mode: Mode) -> Bot {
    let mut bot = Bot::start(double, mode).await;
    double.wait_for_ready(T).await.expect("READY sent");
    bot.expect(T, |s| matches!(s, Seen::Ready { .. })).await;
    bot
}

#[tokio::test]
async fn client_identifies_and_receives_ready() {
    let double = DiscordDouble::start().await;
    let mut bot = Bot::start(&double, Mode::BaseUrlProxy).await;
    let Seen::Ready { session_id } = bot.expect(T, |s| matches!(s, Seen::Ready { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(Some(session_id), double.session_id());
    // The client asked for the gateway URL, got HELLO, identified with its token.
    let gw = double
        .wait_for(|r| r.route() == Route::Gateway, T)
        .await
        .unwrap();
    assert_eq!(gw.status, 200);
    assert!(
        gw.header("authorization")
            .is_some_and(|a| a == format!("Bot {}", support::TOKEN))
    );
    let frames = double.frames();
    let hello = frames
        .iter()
        .position(|f| f.is_op(Direction::ToClient, 10))
        .expect("HELLO");
    let identify = frames
        .iter()
        .position(|f| f.is_op(Direction::FromClient, 2))
        .expect("IDENTIFY");
    let ready = frames
        .iter()
        .position(|f| f.is_dispatch("READY"))
        .expect("READY");
    assert!(
        hello < identify && identify < ready,
        "{}",
        double.gateway_transcript()
    );
    // serenity 0.12.5 sends the token with its "Bot " prefix in IDENTIFY.
    let token = frames[identify].payload["d"]["token"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(token.trim_start_matches("Bot "), support::TOKEN);
    assert_eq!(frames[ready].s, Some(1));
}

#[tokio::test]
async fn slash_command_reaches_the_handler_and_replies_are_recorded() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;

    let sent = double
        .send_interaction(
            InteractionBuilder::slash("deploy")
                .option(CommandOption::string("service", "simsvc"))
                .option(CommandOption::integer("replicas", 3)),
        )
        .await;
    let Seen::Command { name, options } =
        bot.expect(T, |s| matches!(s, Seen::Command { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(name, "deploy");
    assert_eq!(
        options,
        vec![
            ("service".into(), "simsvc".into()),
            ("replicas".into(), "3".into())
        ]
    );

    // Deferred ephemerally (type 5, flags 64) within the deadline, 204.
    let cb = double
        .wait_for(|r| sent.is_answered_by(r), T)
        .await
        .unwrap();
    assert_eq!(
        cb.route(),
        Route::InteractionCallback {
            interaction_id: sent.id,
            token: sent.token.clone()
        }
    );
    assert_eq!(
        (cb.callback_type(), cb.is_ephemeral(), cb.status),
        (Some(5), true, 204)
    );
    // Then the original was edited twice (progress, result), then a followup, then a channel message.
    let channel_msg = double
        .wait_for(|r| matches!(r.route(), Route::ChannelMessage { .. }), T)
        .await
        .unwrap();
    assert_eq!(channel_msg.content(), Some("deploy finished"));
    let answers: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| sent.is_answered_by(r))
        .collect();
    let shape: Vec<_> = answers
        .iter()
        .map(|r| (r.method.as_str(), r.content(), r.status))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("POST", None, 204),
            ("PATCH", Some("deploying…"), 200),
            ("PATCH", Some("deployed simsvc"), 200),
            ("POST", Some("done"), 200),
        ],
        "{}",
        double.request_transcript()
    );
    assert!(matches!(answers[1].route(), Route::EditOriginal { .. }));
    assert!(matches!(answers[3].route(), Route::Followup { .. }));
    // The double keeps the message state: the original now holds the result and the button.
    let original = double
        .messages()
        .into_iter()
        .find(|m| m["content"] == "deployed simsvc")
        .expect("original");
    assert_eq!(
        original["components"][0]["components"][0]["custom_id"],
        "confirm:1"
    );

    // A button press on that message reaches the component handler; the update is recorded.
    let click = double
        .send_interaction(InteractionBuilder::button("confirm:1").user(42, "other"))
        .await;
    assert_eq!(
        click.payload["message"]["id"], original["id"],
        "clicked the bot's own message"
    );
    let seen = bot.expect(T, |s| matches!(s, Seen::Component { .. })).await;
    assert!(
        matches!(seen, Seen::Component { ref custom_id, user: 42 } if custom_id == "confirm:1"),
        "{seen:?}"
    );
    let update = double
        .wait_for(|r| click.is_answered_by(r), T)
        .await
        .unwrap();
    assert_eq!((update.callback_type(), update.status), (Some(7), 204));
    assert!(
        double
            .messages()
            .iter()
            .any(|m| m["id"] == original["id"] && m["content"] == "confirmed")
    );
    assert!(
        !bot.seen
            .try_recv()
            .is_ok_and(|s| matches!(s, Seen::ReplyError(_)))
    );
}

#[tokio::test]
async fn autocomplete_reaches_the_handler_and_limits_are_enforced() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;

    let ok = double
        .send_interaction(
            InteractionBuilder::autocomplete("deploy")
                .option(CommandOption::string("service", "simsvc"))
                .option(CommandOption::string("model", "mp").focused()),
        )
        .await;
    let seen = bot
        .expect(T, |s| matches!(s, Seen::Autocomplete { .. }))
        .await;
    assert!(
        matches!(seen, Seen::Autocomplete { ref name, ref focused, ref value } if name == "deploy" && focused == "model" && value == "mp"),
        "{seen:?}"
    );
    let r = double.wait_for(|r| ok.is_answered_by(r), T).await.unwrap();
    assert_eq!((r.callback_type(), r.status), (Some(8), 204));
    assert_eq!(
        r.body.as_ref().unwrap()["data"]["choices"]
            .as_array()
            .unwrap()
            .len(),
        25
    );

    // 30 choices: Discord's 400 Invalid Form Body, and serenity reports the error.
    let too_many = double
        .send_interaction(
            InteractionBuilder::autocomplete("too-many")
                .option(CommandOption::string("x", "").focused()),
        )
        .await;
    let r = double
        .wait_for(|r| too_many.is_answered_by(r), T)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let Seen::ReplyError(err) = bot.expect(T, |s| matches!(s, Seen::ReplyError(_))).await else {
        unreachable!()
    };
    assert!(err.contains("Invalid Form Body"), "{err}");
}

#[tokio::test]
async fn late_and_double_callbacks_are_refused_like_discord() {
    let double = DiscordDouble::builder()
        .response_deadline(Duration::from_secs(1))
        .start()
        .await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;

    let slow = double
        .send_interaction(InteractionBuilder::slash("slow"))
        .await;
    let r = double
        .wait_for(|r| slow.is_answered_by(r), T)
        .await
        .unwrap();
    assert_eq!(
        r.status, 404,
        "answered after the deadline: Unknown interaction"
    );
    let Seen::ReplyError(err) = bot.expect(T, |s| matches!(s, Seen::ReplyError(_))).await else {
        unreachable!()
    };
    assert!(err.contains("Unknown interaction"), "{err}");

    let twice = double
        .send_interaction(InteractionBuilder::slash("twice"))
        .await;
    let second = double
        .wait_for(|r| twice.is_answered_by(r) && r.status != 204, T)
        .await
        .unwrap();
    assert_eq!(second.status, 400);
    let Seen::ReplyError(err) = bot.expect(T, |s| matches!(s, Seen::ReplyError(_))).await else {
        unreachable!()
    };
    assert!(err.contains("already been acknowledged"), "{err}");
}

#[tokio::test]
async fn command_registration_is_recorded_and_used_by_interactions() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    let guild = GuildId::new(double.guild_id());
    let created = guild
        .set_commands(
            &bot.http,
            vec![
                CreateCommand::new("deploy")
                    .description("Deploy a service")
                    .add_option(
                        CreateCommandOption::new(CommandOptionType::String, "service", "Service")
                            .required(true)
                            .set_autocomplete(true),
                    ),
            ],
        )
        .await
        .expect("registration accepted");
    assert_eq!(created.len(), 1);
    let reg = double.registrations();
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0].0, Some(double.guild_id()));
    assert_eq!(reg[0].1[0]["options"][0]["autocomplete"], true);
    let put = double
        .wait_for(|r| matches!(r.route(), Route::RegisterCommands { .. }), T)
        .await
        .unwrap();
    assert_eq!(
        put.route(),
        Route::RegisterCommands {
            application_id: double.application_id(),
            guild_id: Some(double.guild_id())
        }
    );

    // An invocation carries the registered command id.
    let sent = double
        .send_interaction(InteractionBuilder::slash("deploy"))
        .await;
    assert_eq!(sent.payload["data"]["id"], created[0].id.to_string());
    bot.expect(T, |s| matches!(s, Seen::Command { .. })).await;

    // Invalid registrations get Discord's 400.
    let bad = serenity::all::Command::set_global_commands(
        &bot.http,
        vec![CreateCommand::new("Bad Name")],
    )
    .await;
    assert!(format!("{:?}", bad.expect_err("rejected")).contains("Invalid Form Body"));
    let put = double
        .wait_for(
            |r| {
                r.route()
                    == Route::RegisterCommands {
                        application_id: double.application_id(),
                        guild_id: None,
                    }
            },
            T,
        )
        .await
        .unwrap();
    assert_eq!(put.status, 400);
    assert!(double.commands(None).is_empty());
}

async fn resume_after(double: &DiscordDouble, bot: &mut Bot, disconnect: impl FnOnce()) {
    let first = double
        .send_interaction(InteractionBuilder::slash("ping"))
        .await;
    bot.expect(T, |s| matches!(s, Seen::Command { .. })).await;
    double
        .wait_for(|r| first.is_answered_by(r), T)
        .await
        .unwrap();

    let before = double.frame_count();
    disconnect();
    // Sent while the client is away: must be replayed on RESUME.
    let missed = double
        .send_interaction(InteractionBuilder::slash("missed"))
        .await;
    let resume = double
        .wait_for_frame_after(before, |f| f.is_op(Direction::FromClient, 6), T)
        .await
        .expect("client sent RESUME");
    assert_eq!(
        resume.payload["d"]["session_id"].as_str(),
        double.session_id().as_deref()
    );
    assert_eq!(
        resume.payload["d"]["seq"], first.seq,
        "resumed from the last seen sequence"
    );
    let resumed = double
        .wait_for_frame_after(before, |f| f.is_dispatch("RESUMED"), T)
        .await
        .unwrap();
    let replay = double
        .wait_for_frame_after(
            before,
            |f| f.is_dispatch("INTERACTION_CREATE") && f.s == Some(missed.seq),
            T,
        )
        .await
        .unwrap();
    assert!(replay.index < resumed.index && replay.connection == resumed.connection);
    bot.expect(
        T,
        |s| matches!(s, Seen::Command { name, .. } if name == "missed"),
    )
    .await;
    bot.expect(T, |s| matches!(s, Seen::Resumed)).await;

    // And the session goes on.
    let later = double
        .send_interaction(InteractionBuilder::slash("later"))
        .await;
    bot.expect(
        T,
        |s| matches!(s, Seen::Command { name, .. } if name == "later"),
    )
    .await;
    double
        .wait_for(|r| later.is_answered_by(r), T)
        .await
        .unwrap();
    assert_eq!(
        double
            .frames()
            .iter()
            .filter(|f| f.is_op(Direction::FromClient, 2))
            .count(),
        1,
        "no re-IDENTIFY"
    );
}

#[tokio::test]
async fn dropped_connection_is_resumed_and_missed_dispatches_replayed() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    resume_after(&double, &mut bot, || double.drop_connection()).await;
}

#[tokio::test]
async fn closed_gateway_is_resumed() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    resume_after(&double, &mut bot, || double.close_gateway(4000)).await;
}

#[tokio::test]
async fn rate_limit_without_ratelimiter_is_an_error() {
    // Mode (a): serenity's proxy setting needs the ratelimiter off, and then serenity does not
    // retry a 429 at all: it returns the error to the caller. A bot using this mode must retry.
    let double = DiscordDouble::start().await;
    let bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    double.script_rate_limit(
        RateLimit::on("POST", "/messages").retry_after(Duration::from_millis(300)),
    );
    let err = ChannelId::new(1)
        .say(&bot.http, "hello")
        .await
        .expect_err("429 surfaces");
    assert!(format!("{err:?}").contains("429"), "{err:?}");
    let limited = double
        .requests()
        .into_iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(limited, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        double
            .requests()
            .iter()
            .filter(|r| r.api_path() == "/channels/1/messages")
            .count(),
        1,
        "no retry"
    );
}

async fn check_retry_after_honoured(mode: Mode, scope: RateLimitScope) {
    // Mode (b): serenity's real https://discord.com URLs reach the double, ratelimiter on.
    let double = DiscordDouble::builder().channel(7, "ops").start().await;
    let bot = ready_bot(&double, mode).await;
    let wait = Duration::from_millis(1500);
    double.script_rate_limit(
        RateLimit::on("POST", "/channels/7/messages")
            .retry_after(wait)
            .scope(scope),
    );
    let msg = ChannelId::new(7)
        .say(&bot.http, "after the limit")
        .await
        .expect("retried and delivered");
    assert_eq!(msg.content, "after the limit");
    let attempts: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.api_path() == "/channels/7/messages")
        .collect();
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200],
        "{}",
        double.request_transcript()
    );
    let gap = attempts[1].at - attempts[0].at;
    assert!(
        gap >= wait,
        "retried after {gap:?}, Retry-After was {wait:?}"
    );
    assert!(
        gap < wait + Duration::from_secs(2),
        "waited far too long: {gap:?}"
    );
    assert!(
        attempts.iter().all(|r| r.tls),
        "served over TLS as discord.com"
    );
    if matches!(mode, Mode::HttpsConnectProxy) {
        assert!(!double.connect_targets().is_empty());
        assert!(
            double
                .connect_targets()
                .iter()
                .all(|t| t == "discord.com:443"),
            "{:?}",
            double.connect_targets()
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured_with_ratelimiter_on() {
    check_retry_after_honoured(Mode::HttpsResolve, RateLimitScope::User).await;
}

#[tokio::test]
async fn global_retry_after_is_honoured_with_ratelimiter_on() {
    check_retry_after_honoured(Mode::HttpsResolve, RateLimitScope::Global).await;
}

#[tokio::test]
async fn retry_after_is_honoured_through_the_connect_proxy() {
    check_retry_after_honoured(Mode::HttpsConnectProxy, RateLimitScope::Shared).await;
}

#[tokio::test]
async fn expired_interaction_token_is_refused() {
    let double = DiscordDouble::builder()
        .token_lifetime(Duration::from_millis(500))
        .start()
        .await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    let sent = double
        .send_interaction(InteractionBuilder::slash("late-edit"))
        .await;
    let Seen::ReplyError(err) = bot.expect(T, |s| matches!(s, Seen::ReplyError(_))).await else {
        unreachable!()
    };
    assert!(err.contains("Invalid Webhook Token"), "{err}");
    let statuses: Vec<_> = double
        .requests()
        .iter()
        .filter(|r| sent.is_answered_by(r))
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![("POST".to_string(), 204), ("PATCH".to_string(), 401)]
    );
}

#[tokio::test]
async fn heartbeats_are_acknowledged() {
    let double = DiscordDouble::builder()
        .heartbeat_interval(Duration::from_millis(200))
        .start()
        .await;
    let _bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    let hello = double
        .wait_for_frame(|f| f.is_op(Direction::ToClient, 10), T)
        .await
        .unwrap();
    assert_eq!(hello.payload["d"]["heartbeat_interval"], 200);
    let beat = double
        .wait_for_frame(|f| f.is_op(Direction::FromClient, 1), T)
        .await
        .unwrap();
    double
        .wait_for_frame_after(beat.index, |f| f.is_op(Direction::ToClient, 11), T)
        .await
        .unwrap();
    // Several rounds, and the connection stays up (serenity reconnects on a missing ACK).
    double
        .wait_for_frame(
            |f| f.is_op(Direction::FromClient, 1) && f.index > beat.index + 4,
            T,
        )
        .await
        .unwrap();
    let connections = double.frames().iter().map(|f| f.connection).max();
    assert_eq!(connections, Some(1), "{}", double.gateway_transcript());
}

#[tokio::test]
async fn reconnect_request_resumes_and_invalid_session_reidentifies() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    let first_session = double.session_id().unwrap();

    let before = double.frame_count();
    double.send_reconnect();
    double
        .wait_for_frame_after(before, |f| f.is_op(Direction::FromClient, 6), T)
        .await
        .unwrap();
    double
        .wait_for_frame_after(before, |f| f.is_dispatch("RESUMED"), T)
        .await
        .unwrap();
    bot.expect(T, |s| matches!(s, Seen::Resumed)).await;

    let before = double.frame_count();
    double.send_invalid_session(false);
    double
        .wait_for_frame_after(before, |f| f.is_op(Direction::FromClient, 2), T)
        .await
        .unwrap();
    double
        .wait_for_frame_after(before, |f| f.is_dispatch("READY"), T)
        .await
        .unwrap();
    let Seen::Ready { session_id } = bot.expect(T, |s| matches!(s, Seen::Ready { .. })).await
    else {
        unreachable!()
    };
    assert_ne!(session_id, first_session);
    let sent = double
        .send_interaction(InteractionBuilder::slash("after"))
        .await;
    double
        .wait_for(|r| sent.is_answered_by(r), T)
        .await
        .unwrap();
}

#[tokio::test]
async fn advertised_buckets_keep_serenity_below_the_limit() {
    // With enforcement on, exceeding the bucket would get a 429; serenity's ratelimiter reads the
    // X-RateLimit-* headers and waits instead.
    let window = Duration::from_millis(800);
    let double = DiscordDouble::builder()
        .channel(9, "notes")
        .channel(10, "burst")
        .bucket(2, window)
        .enforce_rate_limits(true)
        .start()
        .await;
    let bot = ready_bot(&double, Mode::HttpsResolve).await;
    for i in 0..4 {
        ChannelId::new(9)
            .say(&bot.http, format!("note {i}"))
            .await
            .expect("delivered");
    }
    let sent: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.api_path() == "/channels/9/messages")
        .collect();
    assert_eq!(
        sent.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200; 4],
        "{}",
        double.request_transcript()
    );
    assert!(
        sent[2].at - sent[0].at >= window,
        "third request waited for the bucket to reset"
    );

    // Without serenity's ratelimiter the same burst hits the limit.
    let plain = support::http_for(&double, Mode::BaseUrlProxy);
    let mut results = Vec::new();
    for i in 0..3 {
        results.push(
            ChannelId::new(10)
                .say(&plain, format!("burst {i}"))
                .await
                .is_ok(),
        );
    }
    assert_eq!(results, vec![true, true, false]);
}

#[tokio::test]
async fn threads_are_created_from_messages_and_take_posts() {
    let double = DiscordDouble::builder()
        .deny_channel(777, 50013)
        .start()
        .await;
    let http = support::http_for(&double, Mode::BaseUrlProxy);
    let channel = ChannelId::new(deckhand_discord_double::example_channel_id());
    let starter = channel
        .send_message(
            &http,
            serenity::all::CreateMessage::new().content("⏳ deploy"),
        )
        .await
        .expect("starter message");
    let thread = channel
        .create_thread_from_message(
            &http,
            starter.id,
            serenity::all::CreateThread::new("deploy simsvc"),
        )
        .await
        .expect("serenity parses the thread");
    assert_eq!(
        thread.id.get(),
        starter.id.get(),
        "a thread from a message has its id"
    );
    assert_eq!(thread.parent_id, Some(channel));
    assert_eq!(thread.kind, serenity::all::ChannelType::PublicThread);
    let created = double
        .wait_for(|r| matches!(r.route(), Route::CreateThread { .. }), T)
        .await
        .unwrap();
    assert_eq!(
        created.route(),
        Route::CreateThread {
            channel_id: channel.get(),
            message_id: Some(starter.id.get())
        }
    );
    assert_eq!(double.threads().len(), 1);
    // Posting into it works like a channel; a second thread on the message is refused.
    thread
        .id
        .send_message(&http, serenity::all::CreateMessage::new().content("step 1"))
        .await
        .expect("post in the thread");
    assert!(
        double
            .messages()
            .iter()
            .any(|m| m["content"] == "step 1" && m["channel_id"] == thread.id.to_string())
    );
    let again = channel
        .create_thread_from_message(&http, starter.id, serenity::all::CreateThread::new("x"))
        .await;
    assert!(again.is_err());
    // A thread cannot be opened where the bot may not post.
    let denied = ChannelId::new(777)
        .create_thread(&http, serenity::all::CreateThread::new("x"))
        .await;
    assert!(
        denied.is_err_and(|e| e.to_string().contains("Missing Permissions")),
        "{}",
        double.request_transcript()
    );
}

#[tokio::test]
async fn dm_interactions_carry_the_user_and_no_member() {
    let double = DiscordDouble::start().await;
    let mut bot = ready_bot(&double, Mode::BaseUrlProxy).await;
    let sent = double
        .send_interaction(InteractionBuilder::slash("whoami").dm())
        .await;
    assert!(sent.payload.get("member").is_none(), "{}", sent.payload);
    assert!(sent.payload.get("guild_id").is_none());
    assert_eq!(sent.payload["user"]["username"], "Mason");
    assert_eq!(sent.payload["context"], 1);
    let seen = bot.expect(T, |s| matches!(s, Seen::Command { .. })).await;
    assert!(matches!(seen, Seen::Command { ref name, .. } if name == "whoami"));
}
