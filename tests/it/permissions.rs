//! Permissions: config rules by user and role; a denial names the missing permission.

use deckhand::router::ResponseKind;
use deckhand_it::{TestBot, user, viewer};

#[tokio::test]
async fn denied_calls_name_the_permission_and_allowed_ones_run() {
    let bot = TestBot::new(&["echo"]);
    assert_eq!(bot.say_as(viewer(), "/echo hi").await.text, "hi");
    assert!(
        bot.say_as(viewer(), "/count")
            .await
            .text
            .starts_with("2 calls")
    );
    let denied = bot.say_as(viewer(), "/kv put a b").await;
    assert_eq!(denied.kind, ResponseKind::Error);
    assert_eq!(
        denied.text,
        "Vera Viewer may not run /kv put: it needs permission `echo.kv.put`, which no rule in [[permissions]] grants to user viewer-1 or roles [viewer]"
    );
    let stranger = bot.say_as(user("nobody", &[]), "/echo hi").await;
    assert!(
        stranger.text.contains("needs permission `echo`"),
        "{}",
        stranger.text
    );
    // Public built-ins stay open.
    let whoami = bot.say_as(user("nobody", &[]), "/whoami").await;
    assert_eq!(whoami.kind, ResponseKind::Ok);
    assert!(whoami.ephemeral);
    let rows = bot.app.db.audit_recent(10).unwrap();
    assert_eq!(rows.iter().filter(|r| r.outcome == "denied").count(), 2);
    // The plugin never saw the denied calls: only the two allowed ones counted.
    assert!(bot.say("/count").await.text.starts_with("3 calls"));
}
