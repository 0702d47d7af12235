//! Confirmations of destructive commands: same caller, before the timeout, `--yes` only where
//! allowed, and a second person where config asks for one.

use deckhand::router::ResponseKind;
use deckhand_it::{TestBot, admin, user};

const SHORT_TIMEOUT: &str = "\n[confirm]\ntimeout = \"400ms\"\n";

#[tokio::test]
async fn destructive_command_runs_after_the_same_caller_confirms() {
    let bot = TestBot::new(&["echo"]);
    let asked = bot.say("/wipe").await;
    assert_eq!(asked.kind, ResponseKind::Pending);
    let code = asked.confirmation.clone().unwrap();
    assert_eq!(
        asked.text,
        format!("/wipe is destructive. Confirm with /confirm {code} within 60 s.")
    );
    let other = bot
        .say_as(user("intruder", &["admin"]), &format!("/confirm {code}"))
        .await;
    assert_eq!(other.kind, ResponseKind::Error);
    assert_eq!(
        other.text,
        format!("only Local operator can confirm {code}")
    );
    let done = bot.say(&format!("/confirm {}", code.to_lowercase())).await;
    assert_eq!(done.text, "wiped");
    let again = bot.say(&format!("/confirm {code}")).await;
    assert!(
        again.text.contains("no pending confirmation"),
        "{}",
        again.text
    );
    let rows = bot.app.db.audit_recent(10).unwrap();
    let wipe = rows.iter().find(|r| r.command == "wipe").unwrap();
    assert_eq!(wipe.outcome, "ok");
}

#[tokio::test]
async fn confirmations_expire() {
    let bot = TestBot::with_config(&["echo"], SHORT_TIMEOUT);
    let code = bot.say("/wipe").await.confirmation.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let late = bot.say(&format!("/confirm {code}")).await;
    assert_eq!(late.kind, ResponseKind::Error);
    assert!(
        late.text.contains(&format!("confirmation {code} expired")),
        "{}",
        late.text
    );
    let rows = bot.app.db.audit_recent(10).unwrap();
    assert_eq!(
        rows.iter().find(|r| r.command == "wipe").unwrap().outcome,
        "expired"
    );
}

#[tokio::test]
async fn yes_skips_confirmation_only_where_config_allows() {
    let bot = TestBot::new(&["echo"]);
    let (on_terminal, _, _) = bot.say_on("terminal", admin(), "/wipe --yes").await;
    assert_eq!(on_terminal.text, "wiped");
    let (elsewhere, _, _) = bot.say_on("discord", admin(), "/wipe --yes").await;
    assert_eq!(elsewhere.kind, ResponseKind::Pending);
}

#[tokio::test]
async fn a_second_person_with_an_approver_role_must_approve() {
    let extra =
        "\n[[confirm.approval]]\ncommands = [\"echo.wipe\"]\napprover_roles = [\"ops-lead\"]\n";
    let bot = TestBot::with_config(&["echo"], extra);
    let asked = bot.say_on("terminal", admin(), "/wipe --yes").await.0;
    assert_eq!(
        asked.kind,
        ResponseKind::Pending,
        "--yes never skips an approval"
    );
    // Adapters learn who may approve from the response, not by reading the rules again.
    let waiting = asked.waiting.clone().expect("a waiting command");
    assert_eq!(waiting.command, "/wipe");
    assert_eq!(waiting.approver_roles, Some(vec!["ops-lead".to_owned()]));
    let code = asked.confirmation.unwrap();
    assert!(
        asked
            .text
            .contains("someone with role ops-lead approves with /approve"),
        "{}",
        asked.text
    );
    let own = bot.say(&format!("/confirm {code}")).await;
    assert!(
        own.text
            .contains("needs approval by someone else with role ops-lead"),
        "{}",
        own.text
    );
    let self_approval = bot
        .say_as(
            user("local", &["admin", "ops-lead"]),
            &format!("/approve {code}"),
        )
        .await;
    assert!(
        self_approval
            .text
            .contains("approval must come from a second person"),
        "{}",
        self_approval.text
    );
    let not_lead = bot
        .say_as(user("approver-1", &[]), &format!("/approve {code}"))
        .await;
    assert_eq!(
        not_lead.text,
        format!("approving {code} needs role ops-lead")
    );
    let approved = bot
        .say_as(
            user("approver-1", &["ops-lead"]),
            &format!("/approve {code}"),
        )
        .await;
    assert_eq!(approved.text, "wiped");
}

#[tokio::test]
async fn yes_is_honoured_on_surfaces_config_lists() {
    let bot = TestBot::with_config(&["echo"], "\n[confirm]\nallow_yes_on = [\"schedule\"]\n");
    let (scheduled, _, _) = bot.say_on("schedule", admin(), "/wipe --yes").await;
    assert_eq!(scheduled.text, "wiped");
    let (without_yes, _, _) = bot.say_on("schedule", admin(), "/wipe").await;
    assert_eq!(
        without_yes.kind,
        ResponseKind::Pending,
        "--yes is still needed"
    );
    let (discord, _, _) = bot.say_on("discord", admin(), "/wipe --yes").await;
    assert_eq!(discord.kind, ResponseKind::Pending);
}

/// Issue 19: a confirmation is kept in the state database: the bot restarts (a new process's
/// App over the same file) and the requester confirms it there; its audit row stayed open
/// across the restart and ends ok.
#[tokio::test]
async fn a_confirmation_survives_a_restart() {
    let TestBot { dir, app } = TestBot::new(&["echo"]);
    let invocation = deckhand::router::Invocation::new("test", "ops", admin(), "/wipe");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let code = app
        .router
        .handle(invocation, tx)
        .await
        .confirmation
        .unwrap();
    drop(app);
    let config = deckhand::config::Config::load(&dir.path().join("deckhand.toml")).unwrap();
    let app = deckhand::app::App::start(config).unwrap();
    let invocation =
        deckhand::router::Invocation::new("test", "ops", admin(), &format!("/confirm {code}"));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    assert_eq!(app.router.handle(invocation, tx).await.text, "wiped");
    let rows = app.db.audit_recent(10).unwrap();
    assert_eq!(
        rows.iter().find(|r| r.command == "wipe").unwrap().outcome,
        "ok"
    );
}
