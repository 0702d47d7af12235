//! The driver: takes batches from the receiver's queue, applies silences and acks, routes,
//! feeds storm control, and delivers what it releases to channels and webhooks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::metrics::DropStage;
use super::route::{Destination, Routes};
use super::sinks::webhook::WebhookSink;
use super::storm::{self, Ingested, Storm};
use super::{Alert, AlertsState, Record, Status, sinks, sources, store};
use crate::chat::discord::respond::chunks;
use crate::chat::{OutboundMessage, Outbox};

/// Applies silences and acks, routes, and feeds storm control.
pub(super) fn process(
    state: &AlertsState,
    routes: &Routes,
    storm: &mut Storm,
    now: u64,
    batch: Vec<Alert>,
) {
    let wall = Utc::now();
    let mut book = state.book();
    book.forget_stale(wall, state.config.forget_after);
    for alert in batch {
        if book.silences.iter().any(|s| s.matches(&alert, wall)) {
            state.metrics.dropped(DropStage::Silenced, 1);
            continue;
        }
        let id = alert.key();
        let mut routed = routes.route(&alert);
        if routed.rules.is_empty()
            && let Some(channel) = alert.label(sources::plugin::PREFERRED_CHANNEL)
        {
            routed.destinations = vec![Destination::Channel(channel.to_owned())];
        }
        match alert.status {
            Status::Firing => {
                if let Some(record) = book.active.get_mut(&id) {
                    record.last_seen = wall;
                    record.repeats += 1;
                    if record.acked_by.is_some() {
                        state.metrics.dropped(DropStage::Dedup, 1);
                        continue;
                    }
                } else {
                    // Acknowledged before a restart: known, and still quiet.
                    let acked_by = book.acks.get(&id).map(|(by, _)| by.clone());
                    let quiet = acked_by.is_some();
                    book.active.insert(
                        id,
                        Record {
                            alert: alert.clone(),
                            first_seen: wall,
                            last_seen: wall,
                            repeats: 0,
                            acked_by,
                            destinations: routed.destinations.clone(),
                        },
                    );
                    if quiet {
                        state.metrics.dropped(DropStage::Dedup, 1);
                        continue;
                    }
                }
            }
            Status::Resolved => {
                book.active.remove(&id);
                if book.acks.remove(&id).is_some()
                    && let Some(db) = &state.db
                    && let Err(e) = store::delete_ack(db, &id)
                {
                    tracing::warn!(error = %e, "acknowledgement not removed from the state database");
                }
            }
        }
        state.metrics.routed(1);
        for destination in &routed.destinations {
            if storm.ingest(now, destination, alert.clone()) == Ingested::Duplicate {
                state.metrics.dropped(DropStage::Dedup, 1);
            }
        }
    }
}

/// The Discord posts one chat message becomes: split where the Discord adapter splits
/// ([`chunks`]), each a message of its own so storm control can pace and count it. A
/// continuation says what it continues; the buttons go with the last post.
pub(super) fn posts(message: OutboundMessage) -> Vec<OutboundMessage> {
    let parts = chunks(&message.text);
    if parts.len() <= 1 {
        return vec![message];
    }
    let head: String = message
        .text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| OutboundMessage {
            channel: message.channel.clone(),
            text: if i == 0 {
                part
            } else {
                format!("(continued) {head}\n{part}")
            },
            actions: if i == last {
                message.actions.clone()
            } else {
                Vec::new()
            },
        })
        .collect()
}

pub(super) async fn drive(
    state: Arc<AlertsState>,
    mut rx: mpsc::Receiver<Vec<Alert>>,
    routes: Routes,
    mut storm: Storm,
    outbox: Arc<dyn Outbox>,
    webhooks: WebhookSink,
) {
    let start = tokio::time::Instant::now();
    let elapsed = |start: tokio::time::Instant| start.elapsed().as_millis() as u64;
    // Posts of released chat messages, waiting for their slot in the channel's window.
    let mut waiting: BTreeMap<Destination, Waiting> = BTreeMap::new();
    loop {
        let deadline = storm
            .next_deadline()
            .map(|t| start + Duration::from_millis(t));
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let now = elapsed(start);
                process(&state, &routes, &mut storm, now, batch);
                while let Ok(more) = rx.try_recv() {
                    process(&state, &routes, &mut storm, now, more);
                }
            }
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let outgoing = storm.poll(elapsed(start));
        for out in outgoing {
            let folded = match &out.notice {
                storm::Notice::Digest(d) => d.events,
                storm::Notice::Alerts { .. } => 0,
            };
            match &out.destination {
                Destination::Channel(_) => {
                    let Some(message) = sinks::channel::render(&out) else {
                        storm.abandon(&out.destination);
                        continue;
                    };
                    let posts: VecDeque<OutboundMessage> = posts(message).into();
                    storm.split(&out.destination, posts.len() as u32);
                    waiting.insert(
                        out.destination.clone(),
                        Waiting {
                            posts,
                            covers: out.covers(),
                            folded,
                        },
                    );
                }
                Destination::Webhook(name) => {
                    let (s, hooks, name) = (state.clone(), webhooks.clone(), name.clone());
                    tokio::spawn(async move {
                        match hooks.send(&name, &out).await {
                            Ok(()) => s.metrics.message_sent(folded),
                            Err(e) => {
                                tracing::warn!(error = %e, "alert webhook not delivered");
                                s.metrics.dropped(DropStage::Send, out.covers());
                            }
                        }
                    });
                }
            }
        }
        send_waiting(&state, &mut storm, outbox.as_ref(), &mut waiting, || {
            elapsed(start)
        })
        .await;
        *state.stats.lock().unwrap_or_else(|p| p.into_inner()) = storm.stats().clone();
    }
}

/// A released chat message's posts not sent yet.
struct Waiting {
    posts: VecDeque<OutboundMessage>,
    covers: u64,
    folded: u64,
}

/// Sends every waiting post its channel's window allows now, one at a time, each stamped
/// when its send finished.
async fn send_waiting(
    state: &AlertsState,
    storm: &mut Storm,
    outbox: &dyn Outbox,
    waiting: &mut BTreeMap<Destination, Waiting>,
    now: impl Fn() -> u64,
) {
    for (destination, message) in waiting.iter_mut() {
        while !message.posts.is_empty() && storm.may_post(destination, now()) {
            let Some(post) = message.posts.pop_front() else {
                break;
            };
            let result = outbox.post(post).await;
            storm.posted(destination, now());
            if let Err(e) = result {
                tracing::warn!(%destination, error = %e, "alert message not delivered");
                state.metrics.dropped(DropStage::Send, message.covers);
                storm.abandon(destination);
                message.posts.clear();
            } else if message.posts.is_empty() {
                state.metrics.message_sent(message.folded);
            }
        }
    }
    waiting.retain(|_, m| !m.posts.is_empty());
}
