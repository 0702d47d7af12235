//! Chat surfaces. Each turns what a person typed into an [`crate::router::Invocation`] and
//! shows the [`crate::router::Response`]; none of them parses or authorizes on its own.
//!
//! Messages the bot sends on its own (schedule warnings, alerts, plugin notifications) go
//! through an [`Outbox`]. Their buttons are [`Action`]s: a label and the command a press runs
//! as the person who pressed it, so a button is authorized and audited like typing it.

pub mod discord;
pub mod ledger;
pub mod terminal;

use std::sync::Mutex;

pub use crate::router::Attachment;

/// Whether two spellings name the same channel as written (`gpu-ops`, `#gpu-ops`; `<#1>`,
/// `1`). A name and an id are not compared: that needs the guild's channel list.
pub fn same_channel(a: &str, b: &str) -> bool {
    use crate::router::parse::ChannelRef;
    match (ChannelRef::parse(a), ChannelRef::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A button under a message: pressing it runs `command` as the presser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub label: String,
    pub command: String,
}

/// A message the bot posts unprompted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Surface-specific channel id (a Discord channel id, `terminal`, ...).
    pub channel: String,
    pub text: String,
    pub actions: Vec<Action>,
    /// Files attached to the message (a chart).
    pub files: Vec<Attachment>,
    /// The notification's deterministic key (a schedule report: its run and command). With
    /// one, the message is recorded before it is sent, so no replica posts it twice
    /// ([`ledger`]); without, it is simply sent.
    pub key: Option<String>,
}

/// Where unprompted messages go. Implemented by each chat surface (`deliver`); everyone posts
/// with [`Outbox::post`], which masks secrets first, so no surface can forget to.
pub trait Outbox: Send + Sync {
    /// Sends a message whose text and button labels are already redacted.
    fn deliver(
        &self,
        message: OutboundMessage,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>>;

    /// Posts `message` with every configured secret and echoed credential masked.
    fn post(
        &self,
        mut message: OutboundMessage,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        message.text = crate::redact::redact(&message.text).into_owned();
        for action in &mut message.actions {
            action.label = crate::redact::redact(&action.label).into_owned();
        }
        self.deliver(message)
    }
}

/// Prints messages to stdout; buttons become the commands to type.
pub struct TerminalOutbox;

impl Outbox for TerminalOutbox {
    fn deliver(
        &self,
        message: OutboundMessage,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            println!("{}", terminal::render_outbound(&message));
            Ok(())
        })
    }
}

/// Keeps messages in memory, for tests and for surfaces that read them back.
#[derive(Default)]
pub struct MemoryOutbox {
    messages: Mutex<Vec<OutboundMessage>>,
}

impl MemoryOutbox {
    pub fn messages(&self) -> Vec<OutboundMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Outbox for MemoryOutbox {
    fn deliver(
        &self,
        message: OutboundMessage,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
        Box::pin(async { Ok(()) })
    }
}
