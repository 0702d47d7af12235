//! Follow-ups (`Service::FollowUp`): a command a plugin asks to run after its own, posted in the
//! same conversation; only the plugin's own commands, and at most `MAX_FOLLOW_UPS` in a row.

use std::sync::Arc;
use std::time::Duration;

use deckhand::chat::MemoryOutbox;
use deckhand::router::ResponseKind;
use deckhand_it::TestBot;
use deckhand_plugin_abi::proto::MAX_FOLLOW_UPS;

/// Starts the runner, runs `line` and waits (with a deadline) until its follow-ups are done.
async fn posts_after(bot: &TestBot, line: &str) -> Vec<deckhand::chat::OutboundMessage> {
    let outbox = Arc::new(MemoryOutbox::default());
    let runner = bot
        .app
        .start_follow_ups(outbox.clone())
        .expect("one runner");
    let first = bot.say(line).await;
    assert_eq!(first.kind, ResponseKind::Ok, "{}", first.text);
    tokio::time::timeout(
        Duration::from_secs(30),
        bot.app.host.services().follow_ups_settled(),
    )
    .await
    .expect("follow-ups settle");
    runner.abort();
    outbox.messages()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_runs_as_the_caller_and_posts_in_the_same_channel() {
    let bot = TestBot::new(&["echo"]);
    let posts = posts_after(&bot, "/later \"/echo hello\"").await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].channel, "test-channel");
    assert_eq!(posts[0].text, "hello");
    // Audited as its own command, by the same person, under the follow-up surface.
    let rows = bot.app.db.audit_recent(5).unwrap();
    let echo = rows
        .iter()
        .find(|r| r.command == "echo")
        .expect("the follow-up is audited");
    assert_eq!(echo.surface, "follow-up");
    assert_eq!(echo.user_id, "local");
    assert_eq!(echo.channel, "test-channel");
    assert_eq!(echo.outcome, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_may_not_follow_up_with_another_owners_command() {
    let bot = TestBot::new(&["echo"]);
    let posts = posts_after(&bot, "/later /whoami").await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0]
            .text
            .contains("plugins may only follow up with their own commands, so it was not run"),
        "{}",
        posts[0].text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_follow_ups_stops_at_the_limit_with_one_post() {
    let bot = TestBot::new(&["echo"]);
    let posts = posts_after(&bot, "/forever").await;
    // Every link handed over quietly; the last could not, and says why.
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0]
            .text
            .contains(&format!("at most {MAX_FOLLOW_UPS} follow-ups in a row")),
        "{}",
        posts[0].text
    );
}
