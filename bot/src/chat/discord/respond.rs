//! Answering within Discord's deadlines: the first answer within 3 s (the result itself when
//! the command is quick, a defer otherwise), then progress and the result as edits of the
//! original message, and past the interaction token's lifetime (15 min) a channel message.
//!
//! Ephemerality is decided by the [`Response`]: a quick ephemeral result is sent ephemeral
//! directly; a deferred public "thinking" message whose result turns out ephemeral is deleted
//! and the result sent as an ephemeral followup, so private data never lands in the channel.

use std::collections::VecDeque;
use std::sync::Arc;

use serenity::all::{
    ChannelId, CommandInteraction, ComponentInteraction, CreateActionRow,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, EditInteractionResponse, Http, Message, UserId,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Adapter;
use crate::router::{Invocation, Response, ResponseKind};

/// Discord's content limit is 2000 characters; keep a margin for the prefixes we add.
pub const MAX_CONTENT: usize = 1900;
/// Progress lines kept in the "running" message.
const PROGRESS_LINES: usize = 5;

/// What is being answered.
pub(crate) enum Target {
    Command(Box<CommandInteraction>),
    Component(Box<ComponentInteraction>),
}

impl Target {
    fn channel_id(&self) -> ChannelId {
        match self {
            Target::Command(c) => c.channel_id,
            Target::Component(c) => c.channel_id,
        }
    }

    fn user_id(&self) -> UserId {
        match self {
            Target::Command(c) => c.user.id,
            Target::Component(c) => c.user.id,
        }
    }

    pub(crate) async fn callback(
        &self,
        http: &Http,
        response: CreateInteractionResponse,
    ) -> serenity::Result<()> {
        match self {
            Target::Command(c) => c.create_response(http, response).await,
            Target::Component(c) => c.create_response(http, response).await,
        }
    }

    async fn edit(&self, http: &Http, edit: EditInteractionResponse) -> serenity::Result<Message> {
        match self {
            Target::Command(c) => c.edit_response(http, edit).await,
            Target::Component(c) => c.edit_response(http, edit).await,
        }
    }

    async fn delete(&self, http: &Http) -> serenity::Result<()> {
        match self {
            Target::Command(c) => c.delete_response(http).await,
            Target::Component(c) => c.delete_response(http).await,
        }
    }

    async fn followup(
        &self,
        http: &Http,
        followup: CreateInteractionResponseFollowup,
    ) -> serenity::Result<Message> {
        match self {
            Target::Command(c) => c.create_followup(http, followup).await,
            Target::Component(c) => c.create_followup(http, followup).await,
        }
    }
}

/// How the answer is shaped.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// A reply of its own (slash commands, action buttons): type 4, or type 5 then edits.
    Reply { defer_ephemeral: bool },
    /// Replace the clicked message (confirmation buttons): type 7, or type 6 then edits.
    Update { header: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub mode: Mode,
    /// What is running, for progress and channel messages (`/slow 10000`).
    pub label: String,
    /// Show errors only to the presser (refusals of buttons).
    pub errors_private: bool,
    /// Show everything only to the presser.
    pub force_private: bool,
}

/// Splits text into messages Discord accepts, at line breaks where possible.
pub fn chunks(text: &str) -> Vec<String> {
    let text = if text.trim().is_empty() {
        "(no output)"
    } else {
        text
    };
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let room = MAX_CONTENT - current.chars().count();
            if line.chars().count() <= room {
                current.push_str(line);
                break;
            }
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                continue;
            }
            let cut = line
                .char_indices()
                .nth(MAX_CONTENT)
                .map_or(line.len(), |(i, _)| i);
            out.push(line[..cut].to_owned());
            line = &line[cut..];
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The text shown for a response.
pub fn render(response: &Response) -> String {
    match response.kind {
        ResponseKind::Error => format!("❌ {}", response.text),
        ResponseKind::Ok | ResponseKind::Pending => response.text.clone(),
    }
}

fn progress_text(
    label: &str,
    header: Option<&str>,
    lines: &VecDeque<String>,
    started: Instant,
) -> String {
    let mut out = String::new();
    if let Some(header) = header {
        out.push_str(header);
        out.push('\n');
    }
    out.push_str(&format!(
        "⏳ {label} is running ({} s)",
        started.elapsed().as_secs()
    ));
    for line in lines {
        out.push('\n');
        out.push_str(line);
    }
    chunks(&out).pop().unwrap_or_default()
}

/// Whether the answer may be seen only by the caller.
fn is_private(response: &Response, plan: &Plan) -> bool {
    plan.force_private
        || response.ephemeral
        || (plan.errors_private && response.kind == ResponseKind::Error)
}

/// Runs `invocation` through the router and answers `target` as `plan` says. `received` is
/// when the interaction arrived; Discord's 3 s and 15 min count from then.
pub(crate) async fn run_and_answer(
    adapter: Arc<Adapter>,
    http: Arc<Http>,
    target: Target,
    invocation: Invocation,
    plan: Plan,
    received: Instant,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let router = adapter.router.clone();
    let requester = invocation.caller.user_id.clone();
    let mut run = tokio::spawn(async move { router.handle(invocation, tx).await });
    let joined = |r: Result<Response, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Response::error(format!("the command stopped unexpectedly: {e}")))
    };

    // The result itself when it is quick.
    if let Ok(done) = tokio::time::timeout_at(received + adapter.config.defer_after, &mut run).await
    {
        let response = joined(done);
        let rows = adapter.buttons_for(&response, &requester);
        answer_directly(&http, &target, &plan, &response, rows).await;
        return;
    }

    // Otherwise defer, then show progress.
    let defer = match &plan.mode {
        Mode::Reply { defer_ephemeral } => CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new()
                .ephemeral(*defer_ephemeral || plan.force_private),
        ),
        Mode::Update { .. } => CreateInteractionResponse::Acknowledge,
    };
    if let Err(e) = target.callback(&http, defer).await {
        tracing::warn!(error = %e, command = %plan.label, "cannot defer the interaction");
    }
    let deadline = received + adapter.token_usable_for();
    let header = match &plan.mode {
        Mode::Update { header } => Some(header.as_str()),
        Mode::Reply { .. } => None,
    };
    let mut lines: VecDeque<String> = VecDeque::new();
    let mut dirty = false;
    let mut last_edit = Instant::now();
    let interval = adapter.config.progress_interval;
    let response = loop {
        tokio::select! {
            done = &mut run => break joined(done),
            line = rx.recv() => match line {
                Some(line) => {
                    lines.push_back(line);
                    if lines.len() > PROGRESS_LINES {
                        lines.pop_front();
                    }
                    dirty = true;
                }
                None => break joined((&mut run).await),
            },
            _ = tokio::time::sleep_until(last_edit + interval), if dirty => {
                if Instant::now() < deadline {
                    let text = progress_text(&plan.label, header, &lines, received);
                    if let Err(e) = target.edit(&http, EditInteractionResponse::new().content(text)).await {
                        tracing::debug!(error = %e, "progress edit failed");
                    }
                }
                last_edit = Instant::now();
                dirty = false;
            }
        }
    };
    let rows = adapter.buttons_for(&response, &requester);
    if Instant::now() >= deadline {
        to_channel(&http, &target, &plan, &response, rows).await;
        return;
    }
    if let Err(e) = deliver_deferred(&http, &target, &plan, &response, rows.clone()).await {
        tracing::warn!(error = %e, command = %plan.label, "cannot edit the reply; posting it in the channel");
        to_channel(&http, &target, &plan, &response, rows).await;
    }
}

async fn answer_directly(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    rows: Vec<CreateActionRow>,
) {
    let private = is_private(response, plan);
    let kept = rows.clone();
    let mut parts = chunks(&render(response)).into_iter();
    let first = parts.next().unwrap_or_default();
    let (callback, followups_private) = match (&plan.mode, private) {
        (Mode::Reply { .. }, _) => (
            CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(first)
                    .ephemeral(private)
                    .components(rows),
            ),
            private,
        ),
        (Mode::Update { header }, false) => (
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content(joined_header(header, &first))
                    .components(rows),
            ),
            false,
        ),
        (Mode::Update { header }, true) => {
            // The clicked message records what happened; the result goes to the presser only.
            let update = CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content(joined_header(header, "The result was sent privately."))
                    .components(vec![]),
            );
            if let Err(e) = target.callback(http, update).await {
                tracing::warn!(error = %e, "cannot answer the interaction");
            }
            let all: Vec<String> = std::iter::once(first).chain(parts).collect();
            followups(http, target, all, true).await;
            return;
        }
    };
    if let Err(e) = target.callback(http, callback).await {
        // Most likely Discord's 3 s passed (a stalled connection): the caller saw "did not
        // respond", so the result goes to the channel rather than nowhere.
        tracing::warn!(error = %e, command = %plan.label, "cannot answer the interaction; posting in the channel");
        to_channel(http, target, plan, response, kept).await;
        return;
    }
    followups(http, target, parts.collect(), followups_private).await;
}

fn joined_header(header: &str, text: &str) -> String {
    let joined = format!("{header}\n{text}");
    if joined.chars().count() <= MAX_CONTENT {
        joined
    } else {
        text.to_owned()
    }
}

async fn followups(http: &Http, target: &Target, parts: Vec<String>, ephemeral: bool) {
    for part in parts {
        let followup = CreateInteractionResponseFollowup::new()
            .content(part)
            .ephemeral(ephemeral);
        if let Err(e) = target.followup(http, followup).await {
            tracing::warn!(error = %e, "cannot send a followup message");
            return;
        }
    }
}

async fn deliver_deferred(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    rows: Vec<CreateActionRow>,
) -> serenity::Result<()> {
    let private = is_private(response, plan);
    let parts = chunks(&render(response));
    match &plan.mode {
        Mode::Reply { defer_ephemeral } => {
            let deferred_private = *defer_ephemeral || plan.force_private;
            if private && !deferred_private {
                // The public "thinking" message goes; the result comes privately.
                target.delete(http).await?;
                followups(http, target, parts, true).await;
                return Ok(());
            }
            let mut parts = parts.into_iter();
            let first = parts.next().unwrap_or_default();
            target
                .edit(
                    http,
                    EditInteractionResponse::new()
                        .content(first)
                        .components(rows),
                )
                .await?;
            followups(http, target, parts.collect(), deferred_private).await;
        }
        Mode::Update { header } => {
            if private {
                target
                    .edit(
                        http,
                        EditInteractionResponse::new()
                            .content(joined_header(header, "The result was sent privately."))
                            .components(vec![]),
                    )
                    .await?;
                followups(http, target, parts, true).await;
                return Ok(());
            }
            let mut parts = parts.into_iter();
            let first = parts.next().unwrap_or_default();
            target
                .edit(
                    http,
                    EditInteractionResponse::new()
                        .content(joined_header(header, &first))
                        .components(rows),
                )
                .await?;
            followups(http, target, parts.collect(), false).await;
        }
    }
    Ok(())
}

/// Past the token's lifetime the interaction cannot be edited: post in the channel instead,
/// mentioning the caller. A private result is not posted; the caller is told to run it again.
async fn to_channel(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    rows: Vec<CreateActionRow>,
) {
    let mention = format!("<@{}>", target.user_id().get());
    let text = if is_private(response, plan) {
        format!(
            "{mention} {} finished, but its reply is private and can no longer be shown to you alone (the interaction expired); run it again to see it.",
            plan.label
        )
    } else {
        format!("{mention} {}:\n{}", plan.label, render(response))
    };
    let parts = chunks(&text);
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.into_iter().enumerate() {
        let mut message = CreateMessage::new().content(part);
        if i == last {
            message = message.components(rows.clone());
        }
        if let Err(e) = target.channel_id().send_message(http, message).await {
            tracing::error!(error = %e, command = %plan.label, "cannot post the result in the channel");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_and_keep_everything() {
        let text = format!("{}\n{}", "a".repeat(1500), "b".repeat(4000));
        let parts = chunks(&text);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CONTENT));
        assert_eq!(parts.concat(), text);
        assert_eq!(chunks(""), ["(no output)"]);
    }
}
