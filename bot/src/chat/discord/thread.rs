//! Commands that may run past the interaction token's 15 minutes (pool add, deploy, builds:
//! their time limit says so) run in a thread the bot opens on the deferred reply (`POST
//! /channels/{id}/messages/{message}/threads`). Progress and the result are posted there with
//! the bot token, which does not expire; the interaction message points to the thread and,
//! while the token still works, is edited once more when the command finished.
//!
//! Where no thread can be opened (no permission, a DM, an ephemeral reply) the command is
//! answered in the interaction as any other, and past the token in the channel.

use serenity::all::{AutoArchiveDuration, ChannelId, CreateThread, EditInteractionResponse, Http};
use tokio::time::Instant;

use super::mentions::Pings;
use super::respond::{
    Outgoing, Plan, Target, followups, is_private, post, posted_text, private_note,
    undelivered_privately,
};
use super::split;
use crate::router::{Response, ResponseKind};

/// Discord: thread names are 1–100 characters.
const MAX_NAME: usize = 100;

fn name(label: &str) -> String {
    let name: String = label
        .trim_start_matches('/')
        .chars()
        .take(MAX_NAME)
        .collect();
    if name.trim().is_empty() {
        "deckhand".into()
    } else {
        name
    }
}

async fn edit_original(http: &Http, target: &Target, text: String) {
    let edit = EditInteractionResponse::new()
        .content(text)
        .allowed_mentions(Pings::none().allowed());
    if let Err(e) = target.edit(http, edit).await {
        tracing::debug!(error = %e, "cannot edit the interaction message");
    }
}

/// Opens the invocation's thread on the deferred reply and points the reply to it.
pub(crate) async fn open(http: &Http, target: &Target, label: &str) -> Option<ChannelId> {
    let original = match target.original(http).await {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, command = %label, "cannot read the deferred reply; no thread");
            return None;
        }
    };
    let builder = CreateThread::new(name(label)).auto_archive_duration(AutoArchiveDuration::OneDay);
    match target
        .channel_id()
        .create_thread_from_message(http, original.id, builder)
        .await
    {
        Ok(thread) => {
            edit_original(
                http,
                target,
                format!(
                    "🧵 {label} is running in <#{}>: progress and the result are posted there.",
                    thread.id.get()
                ),
            )
            .await;
            Some(thread.id)
        }
        Err(e) => {
            tracing::warn!(error = %e, command = %label, "cannot open a thread; answering in the interaction");
            None
        }
    }
}

/// The result of a command that ran in `thread`.
pub(crate) async fn finish(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    out: Outgoing,
    thread: ChannelId,
    deadline: Instant,
) {
    let in_time = Instant::now() < deadline;
    if is_private(response, plan) && in_time {
        edit_original(http, target, private_note(&plan.label)).await;
        if let Err(e) = followups(http, target, &out.parts, true, &out.pings).await {
            undelivered_privately(http, target, plan, None, &e).await;
        }
        return;
    }
    let user = target.user_id();
    let text = posted_text(user, plan, response);
    let parts = split::layout(&text, &plan.label, &split::file_stem(&plan.label));
    let pings = Pings {
        users: vec![user.get()],
        roles: out.pings.roles.clone(),
    };
    let posted = post(http, thread, &parts, out.rows.clone(), &pings, &plan.label).await;
    if !posted {
        // The thread went away (deleted, archived and locked): the channel, as without one.
        post(
            http,
            target.channel_id(),
            &parts,
            out.rows,
            &pings,
            &plan.label,
        )
        .await;
    }
    if in_time {
        let outcome = match response.kind {
            ResponseKind::Error => "failed",
            ResponseKind::Ok | ResponseKind::Pending => "finished",
        };
        let place = if posted {
            format!("<#{}>", thread.get())
        } else {
            "this channel".into()
        };
        edit_original(
            http,
            target,
            format!("🧵 {} {outcome}: the result is in {place}.", plan.label),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_fit_discord() {
        assert_eq!(name("/aks pool add"), "aks pool add");
        assert_eq!(name(&"x".repeat(300)).chars().count(), MAX_NAME);
        assert_eq!(name("/"), "deckhand");
    }
}
