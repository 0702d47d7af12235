//! Follow-ups: commands a plugin asked to run after its own ([`Service::FollowUp`] in the ABI),
//! e.g. `/acr run ID --follow` for a build that outlives `/acr build`'s limit. Each runs as the
//! person who typed the first command (authorized and audited like typing it), in the same
//! conversation, and its reply is posted there through the surface's [`Outbox`].
//!
//! [`Service::FollowUp`]: deckhand_plugin_abi::proto::Service::FollowUp

use std::sync::Arc;

use crate::router::parse::Owner;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::chat::{Action, Attachment, OutboundMessage, Outbox};
use crate::host::services::{FollowUpRequest, Services};
use crate::router::{Invocation, Response, ResponseKind, Router};

/// The surface follow-ups are audited under.
pub const SURFACE: &str = "follow-up";

/// Starts the bot's one follow-up runner; `None` when one already runs.
pub fn start(router: Arc<Router>, outbox: Arc<dyn Outbox>) -> Option<JoinHandle<()>> {
    let mut requests = router.host().services().take_follow_ups()?;
    Some(tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            tokio::spawn(run(router.clone(), outbox.clone(), request));
        }
    }))
}

async fn run(router: Arc<Router>, outbox: Arc<dyn Outbox>, request: FollowUpRequest) {
    tokio::time::sleep(request.after).await;
    let invocation = Invocation::new(
        SURFACE,
        &request.channel,
        request.caller.clone(),
        &request.line,
    );
    let span = tracing::info_span!(
        "follow_up",
        asked_by = %request.invocation,
        invocation = %invocation.id,
        plugin = %request.plugin,
        depth = request.depth,
    );
    follow_up(router, outbox, request, invocation)
        .instrument(span)
        .await;
}

async fn run_line(
    router: &Router,
    services: &Services,
    invocation: Invocation,
    depth: u32,
) -> (String, Vec<Action>, Vec<Attachment>, bool) {
    let id = invocation.id.clone();
    services.mark_follow_up(&id, depth);
    // A follow-up's progress has no one waiting on it; only its reply is posted.
    let (progress, _ignored) = mpsc::unbounded_channel();
    let response = router.handle(invocation, progress).await;
    let actions = response
        .actions
        .iter()
        .map(|a| Action {
            label: a.label.clone(),
            command: a.command.clone(),
        })
        .collect();
    let files = response.files.clone();
    (
        posted_text(&response),
        actions,
        files,
        services.handed_over(&id),
    )
}

async fn follow_up(
    router: Arc<Router>,
    outbox: Arc<dyn Outbox>,
    request: FollowUpRequest,
    invocation: Invocation,
) {
    let services = router.host().services().clone();
    let owner = router
        .index()
        .parse(&crate::router::builtins::normalize(&request.line))
        .map(|parsed| parsed.owner);
    let (text, actions, files, handed_over) = match owner {
        // A line that does not parse is answered with the router's own explanation.
        Ok(Owner::Plugin(name)) if name == request.plugin => {
            run_line(&router, &services, invocation.clone(), request.depth).await
        }
        Err(_) => run_line(&router, &services, invocation.clone(), request.depth).await,
        Ok(_) => {
            tracing::warn!(line = %request.line, "a follow-up that is not the plugin's own command is refused");
            let text = format!(
                "error: plugin {} asked to run `{}` as a follow-up; plugins may only follow up with their own commands, so it was not run",
                request.plugin, request.line
            );
            (text, Vec::new(), Vec::new(), false)
        }
    };
    // The first command already said the work goes on; links that only hand it over again
    // stay quiet, so a long build ends with one post, its result.
    if handed_over {
        tracing::debug!("the follow-up handed over to another");
    } else {
        let message = OutboundMessage {
            channel: request.channel.clone(),
            text,
            actions,
            files,
            key: None,
        };
        if let Err(e) = outbox.post(message).await {
            tracing::warn!(channel = %request.channel, error = %e, "cannot post a follow-up's reply");
        }
    }
    // Counted as done only once posted, so `deckhand shell` does not exit before the post.
    services.follow_up_done(&invocation.id);
}

/// What is posted for a follow-up's reply; a private one is never posted in the channel.
fn posted_text(response: &Response) -> String {
    if response.ephemeral {
        return "A follow-up answered privately; private replies are not posted in a channel."
            .to_owned();
    }
    match response.kind {
        ResponseKind::Error => format!("error: {}", response.text),
        ResponseKind::Ok | ResponseKind::Pending => response.text.clone(),
    }
}
