//! Buttons. Every press runs a command through the router as the person who pressed, so it
//! is authorized and audited like typing it:
//!
//! - `dh:confirm:CODE` / `dh:approve:CODE` under a destructive command waiting for its
//!   confirmation run `/confirm CODE` / `/approve CODE`. The requester (or, where `[confirm]`
//!   asks for approval, a second person with an approver role) replaces the message with the
//!   result; anyone else gets the router's refusal as an ephemeral message; a press after the
//!   confirmation timed out answers, ephemerally, that the button expired.
//! - `dh:cancel:INVOCATION` under a running command's progress runs `/cancel INVOCATION`; the
//!   answer goes to the presser only, the command's own message shows how it ended.
//! - `dh:run:ID` under unprompted messages ([`super::outbox`]) runs the stored command; errors
//!   (a refusal included) are shown to the presser only.

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ButtonStyle, ComponentInteraction, CreateActionRow, CreateButton, CreateInteractionResponse,
    CreateInteractionResponseMessage, Http,
};
use tokio::time::Instant;

use super::respond::{Mode, Plan, Target, run_and_answer};
use super::{Adapter, interaction};
use crate::router::Invocation;

pub const CONFIRM_PREFIX: &str = "dh:confirm:";
pub const APPROVE_PREFIX: &str = "dh:approve:";
pub const RUN_PREFIX: &str = "dh:run:";
pub const CANCEL_PREFIX: &str = "dh:cancel:";

/// A confirmation the adapter showed a button for.
#[derive(Debug, Clone)]
pub(crate) struct PendingButton {
    pub requester: String,
    pub approver_roles: Option<Vec<String>>,
    pub command: String,
    pub expires_at: Instant,
    pub timeout: Duration,
}

/// The Confirm (or Approve) button for a pending confirmation.
pub fn confirmation_row(code: &str, approval: bool) -> CreateActionRow {
    let button = if approval {
        CreateButton::new(format!("{APPROVE_PREFIX}{code}"))
            .label("Approve")
            .style(ButtonStyle::Danger)
    } else {
        CreateButton::new(format!("{CONFIRM_PREFIX}{code}"))
            .label("Confirm")
            .style(ButtonStyle::Danger)
    };
    CreateActionRow::Buttons(vec![button])
}

/// The Cancel button under a running command's progress: `/cancel INVOCATION` as the presser
/// (the router decides who may; the answer is shown to the presser only).
pub fn cancel_row(invocation_id: &str) -> CreateActionRow {
    CreateActionRow::Buttons(vec![
        CreateButton::new(format!("{CANCEL_PREFIX}{invocation_id}"))
            .label("Cancel")
            .style(ButtonStyle::Secondary),
    ])
}

fn allowed(pending: &PendingButton, user_id: &str, roles: &[String], approve: bool) -> bool {
    match (&pending.approver_roles, approve) {
        (None, false) => pending.requester == user_id,
        (Some(needed), true) => {
            pending.requester != user_id && needed.iter().any(|r| roles.contains(r))
        }
        _ => false,
    }
}

async fn private_answer(http: &Http, press: &ComponentInteraction, text: String) {
    let answer = CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(super::mentions::Pings::none().allowed()),
    );
    if let Err(e) = press.create_response(http, answer).await {
        tracing::warn!(error = %e, "cannot answer a button press");
    }
}

fn private_plan(label: String) -> Plan {
    Plan {
        mode: Mode::Reply {
            defer_ephemeral: true,
        },
        label,
        errors_private: true,
        force_private: true,
        long: false,
    }
}

/// A press from a guild not in config: refused to the presser only, nothing runs.
pub(crate) async fn refuse_foreign(http: &Http, press: &ComponentInteraction) {
    private_answer(http, press, super::FOREIGN_GUILD.into()).await;
}

pub(crate) async fn press(adapter: Arc<Adapter>, http: Arc<Http>, press: ComponentInteraction) {
    let received = Instant::now();
    let caller = interaction::caller(&adapter.config, &press.user, press.member.as_ref());
    let channel = press.channel_id.get().to_string();
    let custom_id = press.data.custom_id.clone();

    let confirm = custom_id
        .strip_prefix(CONFIRM_PREFIX)
        .map(|c| (c, false))
        .or_else(|| custom_id.strip_prefix(APPROVE_PREFIX).map(|c| (c, true)));
    if let Some((code, approve)) = confirm {
        let verb = if approve { "approve" } else { "confirm" };
        let line = format!("/{verb} {code}");
        let plan = match adapter.pending_button(code) {
            Some(pending) if Instant::now() >= pending.expires_at => {
                let text = format!(
                    "⌛ This button expired: the confirmation of {} timed out after {} s. Run the command again.",
                    pending.command,
                    pending.timeout.as_secs()
                );
                private_answer(&http, &press, text).await;
                return;
            }
            Some(pending) if allowed(&pending, &caller.user_id, &caller.roles, approve) => {
                adapter.forget_pending(code);
                let done = if approve { "Approved" } else { "Confirmed" };
                Plan {
                    mode: Mode::Update {
                        header: format!(
                            "{}\n\n✅ {done} by {}",
                            press.message.content, caller.display_name
                        ),
                    },
                    label: pending.command,
                    errors_private: false,
                    force_private: false,
                    long: false,
                }
            }
            // Someone else, or a button this process did not show (restart): the router
            // decides and explains; only the presser sees it.
            _ => private_plan(line.clone()),
        };
        let invocation = Invocation::new("discord", &channel, caller, &line);
        run_and_answer(
            adapter,
            http,
            Target::Component(Box::new(press)),
            invocation,
            plan,
            received,
        )
        .await;
        return;
    }

    if let Some(id) = custom_id.strip_prefix(CANCEL_PREFIX) {
        let line = format!("/cancel {id}");
        let invocation = Invocation::new("discord", &channel, caller, &line);
        run_and_answer(
            adapter,
            http,
            Target::Component(Box::new(press)),
            invocation,
            private_plan(line),
            received,
        )
        .await;
        return;
    }

    if let Some(id) = custom_id.strip_prefix(RUN_PREFIX) {
        let action = match adapter.actions.get(id) {
            Ok(action) => action,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a button's action");
                private_answer(&http, &press, format!("❌ Cannot read this button: {e}")).await;
                return;
            }
        };
        let Some(action) = action.filter(|a| !a.expired) else {
            private_answer(
                &http,
                &press,
                "⌛ This button expired; run the command by hand if it is still needed.".into(),
            )
            .await;
            return;
        };
        let plan = Plan {
            mode: Mode::Reply {
                defer_ephemeral: false,
            },
            label: action.command.clone(),
            errors_private: true,
            force_private: false,
            long: false,
        };
        let invocation = Invocation::new("discord", &channel, caller, &action.command);
        run_and_answer(
            adapter,
            http,
            Target::Component(Box::new(press)),
            invocation,
            plan,
            received,
        )
        .await;
        return;
    }

    private_answer(
        &http,
        &press,
        "This button is not one Deckhand knows (an older version's?).".into(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(approvers: Option<&[&str]>) -> PendingButton {
        PendingButton {
            requester: "1".into(),
            approver_roles: approvers.map(|r| r.iter().map(|s| (*s).to_owned()).collect()),
            command: "/wipe".into(),
            expires_at: Instant::now(),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn who_may_press() {
        let own = pending(None);
        assert!(allowed(&own, "1", &[], false));
        assert!(!allowed(&own, "2", &["admin".into()], false));
        assert!(!allowed(&own, "1", &[], true));
        let approval = pending(Some(&["approver"]));
        assert!(allowed(&approval, "2", &["approver".into()], true));
        assert!(
            !allowed(&approval, "1", &["approver".into()], true),
            "no self-approval"
        );
        assert!(!allowed(&approval, "2", &["viewer".into()], true));
        assert!(!allowed(&approval, "1", &[], false));
    }
}
