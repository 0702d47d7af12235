//! Answering within Discord's deadlines: the first answer within 3 s (the result itself when
//! the command is quick, a defer otherwise), then progress and the result as edits of the
//! original message, and past the interaction token's lifetime (15 min) a channel message.
//!
//! Commands that may run longer than the token (`Plan::long`) run in a thread the bot opens on
//! the deferred message ([`super::thread`]): progress and result there, with the bot token.
//!
//! Ephemerality is decided by the [`Response`]: a quick ephemeral result is sent ephemeral
//! directly; a deferred public "thinking" message whose result turns out ephemeral is first
//! edited to say the reply was sent privately (Discord's first followup after a deferral
//! would otherwise *become* that public message), then the result follows as an ephemeral
//! message. A delivery that fails is never dropped silently: public parts fall back to the
//! channel, private ones are logged and the caller told to run it again.
//!
//! Output longer than three messages is one `.txt` attachment ([`super::split`]); nothing
//! sent pings anyone but the mentions Deckhand makes on purpose ([`super::mentions`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ChannelId, CommandInteraction, ComponentInteraction, CreateActionRow,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, EditInteractionResponse, EditMessage, Http, Message, MessageId, UserId,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::mentions::{self, Pings};
use super::split::{self, Part};
use super::{Adapter, buttons, thread};
use crate::router::{Invocation, Response, ResponseKind};

pub use super::split::{MAX_CONTENT, chunks};
/// Progress lines kept in the "running" message.
const PROGRESS_LINES: usize = 5;

/// What is being answered.
pub(crate) enum Target {
    Command(Box<CommandInteraction>),
    Component(Box<ComponentInteraction>),
}

impl Target {
    pub(crate) fn channel_id(&self) -> ChannelId {
        match self {
            Target::Command(c) => c.channel_id,
            Target::Component(c) => c.channel_id,
        }
    }

    pub(crate) fn user_id(&self) -> UserId {
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

    pub(crate) async fn edit(
        &self,
        http: &Http,
        edit: EditInteractionResponse,
    ) -> serenity::Result<Message> {
        match self {
            Target::Command(c) => c.edit_response(http, edit).await,
            Target::Component(c) => c.edit_response(http, edit).await,
        }
    }

    /// The interaction's original message (the deferred reply).
    pub(crate) async fn original(&self, http: &Http) -> serenity::Result<Message> {
        match self {
            Target::Command(c) => c.get_response(http).await,
            Target::Component(c) => c.get_response(http).await,
        }
    }

    pub(crate) async fn followup(
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
    /// The command may run past the interaction token's lifetime: it runs in a thread.
    pub long: bool,
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
pub(crate) fn is_private(response: &Response, plan: &Plan) -> bool {
    plan.force_private
        || response.ephemeral
        || (plan.errors_private && response.kind == ResponseKind::Error)
}

/// Progress edits happen at least this often while a command runs (with the elapsed time).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Where progress goes: the interaction's original message, or (long commands) a message
/// the bot posts in the invocation's thread and edits with its own token.
enum Progress {
    Original,
    Thread {
        thread: ChannelId,
        message: Option<MessageId>,
    },
}

impl Progress {
    /// Shows `text` with `rows` (the Cancel button while running, none when done).
    async fn show(
        &mut self,
        http: &Http,
        target: &Target,
        text: String,
        rows: Vec<CreateActionRow>,
    ) {
        let none = Pings::none().allowed();
        let result = match self {
            Progress::Original => target
                .edit(
                    http,
                    EditInteractionResponse::new()
                        .content(text)
                        .components(rows)
                        .allowed_mentions(none),
                )
                .await
                .map(|_| ()),
            Progress::Thread {
                thread,
                message: Some(id),
            } => thread
                .edit_message(
                    http,
                    *id,
                    EditMessage::new()
                        .content(text)
                        .components(rows)
                        .allowed_mentions(none),
                )
                .await
                .map(|_| ()),
            Progress::Thread { thread, message } => thread
                .send_message(
                    http,
                    CreateMessage::new()
                        .content(text)
                        .components(rows)
                        .allowed_mentions(none),
                )
                .await
                .map(|m| *message = Some(m.id)),
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "progress edit failed");
        }
    }
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
    let channel = invocation.channel.clone();
    let cancel = vec![buttons::cancel_row(&invocation.id)];
    let mut run = tokio::spawn(async move { router.handle(invocation, tx).await });
    let joined = |r: Result<Response, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Response::error(format!("the command stopped unexpectedly: {e}")))
    };

    // The result itself when it is quick.
    if let Ok(done) = tokio::time::timeout_at(received + adapter.config.defer_after, &mut run).await
    {
        let response = joined(done);
        let out = Outgoing::new(&adapter, &response, &plan, &requester, &channel);
        answer_directly(&http, &target, &plan, &response, out).await;
        return;
    }

    // Otherwise defer, then show progress.
    let deferred_private = match &plan.mode {
        Mode::Reply { defer_ephemeral } => *defer_ephemeral || plan.force_private,
        Mode::Update { .. } => false,
    };
    let defer = match &plan.mode {
        Mode::Reply { .. } => CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(deferred_private),
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
    // A command that may outlive the interaction token runs in a thread of its own.
    let mut thread = None;
    if plan.long && !deferred_private && matches!(plan.mode, Mode::Reply { .. }) {
        thread = thread::open(&http, &target, &plan.label).await;
    }
    let mut progress = match thread {
        Some(id) => Progress::Thread {
            thread: id,
            message: None,
        },
        None => Progress::Original,
    };
    let mut lines: VecDeque<String> = VecDeque::new();
    let mut dirty = false;
    let mut last_edit = Instant::now();
    let interval = adapter.config.progress_interval;
    let response = loop {
        let next_edit = last_edit
            + if dirty {
                interval
            } else {
                HEARTBEAT.max(interval)
            };
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
            _ = tokio::time::sleep_until(next_edit) => {
                if thread.is_some() || Instant::now() < deadline {
                    let text = progress_text(&plan.label, header, &lines, received);
                    progress.show(&http, &target, text, cancel.clone()).await;
                }
                last_edit = Instant::now();
                dirty = false;
            }
        }
    };
    let out = Outgoing::new(&adapter, &response, &plan, &requester, &channel);
    if let Progress::Thread {
        message: Some(_), ..
    } = &progress
    {
        // The thread's progress message stays as the last state, without its Cancel button.
        let text =
            progress_text(&plan.label, header, &lines, received).replace("is running", "ran");
        progress.show(&http, &target, text, Vec::new()).await;
    }
    if let Some(id) = thread {
        thread::finish(&http, &target, &plan, &response, out, id, deadline).await;
        return;
    }
    if Instant::now() >= deadline {
        to_channel(&http, &target, &plan, &response, out.rows).await;
        return;
    }
    let rows = out.rows.clone();
    if let Err(e) = deliver_deferred(&http, &target, &plan, &response, out).await {
        tracing::warn!(error = %e, command = %plan.label, "cannot edit the reply; posting it in the channel");
        to_channel(&http, &target, &plan, &response, rows).await;
    }
}

/// What goes out for a response: its messages (or one file), the buttons, and who may be
/// pinged.
pub(crate) struct Outgoing {
    pub parts: Vec<Part>,
    pub rows: Vec<CreateActionRow>,
    pub pings: Pings,
}

impl Outgoing {
    fn new(
        adapter: &Adapter,
        response: &Response,
        plan: &Plan,
        requester: &str,
        channel: &str,
    ) -> Outgoing {
        let rows = adapter.buttons_for(response, requester, channel);
        let mut text = render(response);
        let mut pings = Pings::none();
        // The one mention Deckhand makes in a reply on purpose: the approvers of a command
        // waiting for a second person.
        if !is_private(response, plan)
            && let Some(waiting) = &response.waiting
            && let Some(roles) = &waiting.approver_roles
        {
            let ids = mentions::role_ids(roles, &adapter.config.roles);
            if !ids.is_empty() {
                let who: Vec<String> = ids.iter().map(|id| format!("<@&{id}>")).collect();
                text.push_str(&format!("\n🔔 {}: your approval is needed.", who.join(" ")));
                pings.roles = ids;
            }
        }
        Outgoing {
            parts: split::with_files(
                split::layout(&text, &plan.label, &split::file_stem(&plan.label)),
                &response.files,
            ),
            rows,
            pings,
        }
    }
}

fn callback_message(
    part: &Part,
    text: String,
    rows: Vec<CreateActionRow>,
    pings: &Pings,
) -> CreateInteractionResponseMessage {
    let mut message = CreateInteractionResponseMessage::new()
        .content(text)
        .components(rows)
        .allowed_mentions(pings.allowed());
    for file in part.attachments() {
        message = message.add_file(file);
    }
    message
}

fn edit_message(
    part: &Part,
    text: String,
    rows: Vec<CreateActionRow>,
    pings: &Pings,
) -> EditInteractionResponse {
    let mut edit = EditInteractionResponse::new()
        .content(text)
        .components(rows)
        .allowed_mentions(pings.allowed());
    for file in part.attachments() {
        edit = edit.new_attachment(file);
    }
    edit
}

fn channel_message(part: &Part, rows: Vec<CreateActionRow>, pings: &Pings) -> CreateMessage {
    let mut message = CreateMessage::new()
        .content(part.text.clone())
        .components(rows)
        .allowed_mentions(pings.allowed());
    for file in part.attachments() {
        message = message.add_file(file);
    }
    message
}

pub(crate) fn private_note(label: &str) -> String {
    format!("🔒 The reply of {label} was sent to you privately.")
}

async fn answer_directly(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    out: Outgoing,
) {
    let private = is_private(response, plan);
    let kept = out.rows.clone();
    let Some((first, rest)) = out.parts.split_first() else {
        return;
    };
    let callback = match (&plan.mode, private) {
        (Mode::Reply { .. }, _) => CreateInteractionResponse::Message(
            callback_message(first, first.text.clone(), out.rows, &out.pings).ephemeral(private),
        ),
        (Mode::Update { header }, false) => {
            CreateInteractionResponse::UpdateMessage(callback_message(
                first,
                joined_header(header, &first.text),
                out.rows,
                &out.pings,
            ))
        }
        (Mode::Update { header }, true) => {
            // The clicked message records what happened; the result goes to the presser only.
            let update = CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content(joined_header(header, "The result was sent privately."))
                    .components(vec![])
                    .allowed_mentions(Pings::none().allowed()),
            );
            if let Err(e) = target.callback(http, update).await {
                tracing::warn!(error = %e, "cannot answer the interaction");
            }
            if let Err(e) = followups(http, target, &out.parts, true, &out.pings).await {
                undelivered_privately(http, target, plan, Some(header), &e).await;
            }
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
    if let Err(e) = followups(http, target, rest, private, &out.pings).await {
        rest_undelivered(http, target, plan, rest, private, &out.pings, &e).await;
    }
}

fn joined_header(header: &str, text: &str) -> String {
    let joined = format!("{header}\n{text}");
    if joined.chars().count() <= MAX_CONTENT {
        joined
    } else {
        text.to_owned()
    }
}

/// Sends `parts` as followup messages; the first failure stops and is returned with the
/// parts not delivered.
pub(crate) async fn followups(
    http: &Http,
    target: &Target,
    parts: &[Part],
    ephemeral: bool,
    pings: &Pings,
) -> Result<(), serenity::Error> {
    for part in parts {
        let mut followup = CreateInteractionResponseFollowup::new()
            .content(part.text.clone())
            .ephemeral(ephemeral)
            .allowed_mentions(pings.allowed());
        for file in part.attachments() {
            followup = followup.add_file(file);
        }
        target.followup(http, followup).await?;
    }
    Ok(())
}

/// Later parts of a reply that could not be sent as followups: public ones go to the channel;
/// private ones cannot, so the failure is logged and the caller told where possible.
async fn rest_undelivered(
    http: &Http,
    target: &Target,
    plan: &Plan,
    parts: &[Part],
    private: bool,
    pings: &Pings,
    error: &serenity::Error,
) {
    if private {
        tracing::error!(error = %error, command = %plan.label, "a private followup could not be delivered");
        return;
    }
    tracing::warn!(error = %error, command = %plan.label, "a followup could not be sent; posting the rest in the channel");
    post(
        http,
        target.channel_id(),
        parts,
        Vec::new(),
        pings,
        &plan.label,
    )
    .await;
}

/// A private reply whose followup failed: the public message says so (never the reply).
pub(crate) async fn undelivered_privately(
    http: &Http,
    target: &Target,
    plan: &Plan,
    header: Option<&str>,
    error: &serenity::Error,
) {
    tracing::error!(error = %error, command = %plan.label, "the private reply could not be delivered");
    let note = format!(
        "❌ The reply of {} could not be delivered to you privately (Discord said: {error}); run it again.",
        plan.label
    );
    let text = match header {
        Some(h) => joined_header(h, &note),
        None => note,
    };
    let edit = EditInteractionResponse::new()
        .content(text)
        .components(vec![])
        .allowed_mentions(Pings::none().allowed());
    if let Err(e) = target.edit(http, edit).await {
        tracing::error!(error = %e, command = %plan.label, "cannot tell the caller either");
    }
}

async fn deliver_deferred(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    out: Outgoing,
) -> serenity::Result<()> {
    let private = is_private(response, plan);
    let Some((first, rest)) = out.parts.split_first() else {
        return Ok(());
    };
    let (header, deferred_private) = match &plan.mode {
        Mode::Reply { defer_ephemeral } => (None, *defer_ephemeral || plan.force_private),
        Mode::Update { header } => (Some(header.as_str()), false),
    };
    if private && !deferred_private {
        // Discord: the first followup after a deferral edits the deferred (public) message
        // and ignores its ephemeral flag. So the public message is edited first, then the
        // reply follows as a real ephemeral message.
        let note = private_note(&plan.label);
        let text = match header {
            Some(h) => joined_header(h, &note),
            None => note,
        };
        target
            .edit(
                http,
                EditInteractionResponse::new()
                    .content(text)
                    .components(vec![])
                    .allowed_mentions(Pings::none().allowed()),
            )
            .await?;
        if let Err(e) = followups(http, target, &out.parts, true, &out.pings).await {
            undelivered_privately(http, target, plan, header, &e).await;
        }
        return Ok(());
    }
    let text = match header {
        Some(h) => joined_header(h, &first.text),
        None => first.text.clone(),
    };
    target
        .edit(http, edit_message(first, text, out.rows, &out.pings))
        .await?;
    if let Err(e) = followups(http, target, rest, deferred_private, &out.pings).await {
        rest_undelivered(http, target, plan, rest, deferred_private, &out.pings, &e).await;
    }
    Ok(())
}

/// Posts `parts` in `channel` with the bot token (no 15-minute limit), buttons on the last.
pub(crate) async fn post(
    http: &Http,
    channel: ChannelId,
    parts: &[Part],
    rows: Vec<CreateActionRow>,
    pings: &Pings,
    label: &str,
) -> bool {
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        let rows = if i == last { rows.clone() } else { Vec::new() };
        if let Err(e) = channel
            .send_message(http, channel_message(part, rows, pings))
            .await
        {
            tracing::error!(error = %e, command = %label, channel = channel.get(), "cannot post the result in the channel");
            return false;
        }
    }
    true
}

/// The text of a result posted outside the interaction, mentioning the caller. A private
/// result is not posted; the caller is told to run it again.
pub(crate) fn posted_text(user: UserId, plan: &Plan, response: &Response) -> String {
    let mention = format!("<@{}>", user.get());
    if is_private(response, plan) {
        format!(
            "{mention} {} finished, but its reply is private and can no longer be shown to you alone (the interaction expired); run it again to see it.",
            plan.label
        )
    } else {
        format!("{mention} {}:\n{}", plan.label, render(response))
    }
}

/// Past the token's lifetime the interaction cannot be edited: post in the channel instead,
/// mentioning the caller (the one mention allowed to ping).
async fn to_channel(
    http: &Http,
    target: &Target,
    plan: &Plan,
    response: &Response,
    rows: Vec<CreateActionRow>,
) {
    let text = posted_text(target.user_id(), plan, response);
    let parts = split::layout(&text, &plan.label, &split::file_stem(&plan.label));
    let pings = Pings::user(target.user_id().get());
    post(http, target.channel_id(), &parts, rows, &pings, &plan.label).await;
}
