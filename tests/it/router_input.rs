//! Every bad-input class gets a clear message, through the real plugin manifests.

use deckhand::router::ResponseKind;
use deckhand_it::TestBot;

async fn error_of(bot: &TestBot, line: &str) -> String {
    let reply = bot.say(line).await;
    assert_eq!(
        reply.kind,
        ResponseKind::Error,
        "{line} should fail, got {}",
        reply.text
    );
    reply.text
}

#[tokio::test]
async fn typed_options_reach_the_plugin() {
    let bot = TestBot::new(&["echo"]);
    let reply = bot
        .say("/echo 'two words' --upper --times 2 --color green --wait 1m30s")
        .await;
    assert_eq!(reply.text, "TWO WORDS TWO WORDS [green] (wait 90000 ms)");
    assert_eq!(bot.say("echo --times=3 x").await.text, "x x x");
    assert_eq!(bot.say("/echo x --no-upper").await.text, "x");
}

#[tokio::test]
async fn bad_input_classes() {
    let bot = TestBot::new(&["echo"]);
    let unknown = error_of(&bot, "/ecoh hi").await;
    assert!(
        unknown.contains("unknown command /ecoh (did you mean /echo?)"),
        "{unknown}"
    );
    let missing = error_of(&bot, "/echo --upper").await;
    assert!(
        missing.contains("/echo is missing its required option --text (What to say)"),
        "{missing}"
    );
    assert!(missing.contains("usage: /echo TEXT [--upper]"), "{missing}");
    let wrong_type = error_of(&bot, "/echo hi --times lots").await;
    assert!(
        wrong_type
            .contains("option --times of /echo: \"lots\" is not valid: expected a whole number"),
        "{wrong_type}"
    );
    let not_choice = error_of(&bot, "/echo hi --color gren").await;
    assert!(
        not_choice.contains("\"gren\" is not one of red, green, blue (did you mean green?)"),
        "{not_choice}"
    );
    let unknown_flag = error_of(&bot, "/echo hi --uper").await;
    assert!(
        unknown_flag.contains("/echo has no option --uper (did you mean --upper?)"),
        "{unknown_flag}"
    );
    let sub = error_of(&bot, "/kv fetch a").await;
    assert!(sub.contains("/kv has no subcommand \"fetch\""), "{sub}");
    assert!(sub.contains("choose one of put, get"), "{sub}");
    let extra = error_of(&bot, "/count now").await;
    assert!(
        extra.contains("/count takes no further argument \"now\""),
        "{extra}"
    );
    let duration = error_of(&bot, "/echo hi --wait soon").await;
    assert!(
        duration.contains("a duration such as 90s, 15m or 1h30m"),
        "{duration}"
    );
    // Every rejection is audited as such.
    let rows = bot.app.db.audit_recent(20).unwrap();
    assert_eq!(rows.iter().filter(|r| r.outcome == "rejected").count(), 8);
}

#[tokio::test]
async fn help_is_generated_from_manifests() {
    let bot = TestBot::new(&["echo"]);
    let overview = bot.say("/help").await.text;
    assert!(overview.contains("plugin echo:"), "{overview}");
    assert!(overview.contains("/kv"), "{overview}");
    let detail = bot.say("/help kv put").await.text;
    assert!(
        detail.starts_with("/kv put — Store a value\nusage: /kv put KEY VALUE"),
        "{detail}"
    );
    assert_eq!(bot.say("/kv put --help").await.text, detail);
    let destructive = bot.say("/wipe --help").await.text;
    assert!(
        destructive.contains("destructive: asks for confirmation"),
        "{destructive}"
    );
}

#[tokio::test]
async fn sensitive_options_are_redacted_in_the_audit_log() {
    let bot = TestBot::new(&["echo"]);
    bot.say("/echo hi --token hunter2").await;
    let rows = bot.app.db.audit_recent(1).unwrap();
    assert_eq!(rows[0].options, r#"{"text":"hi","times":1,"token":"***"}"#);
}
