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

/// Applies silences and acks, routes, and feeds storm control (what this replica claimed,
/// when replicas share the state).
pub(super) fn process(
    state: &AlertsState,
    routes: &Routes,
    storm: &mut Storm,
    now: u64,
    batch: Vec<Alert>,
) {
    let wall = Utc::now();
    let mut announce: Vec<(Alert, Vec<Destination>)> = Vec::new();
    {
        let mut book = state.book();
        book.forget_stale(wall, state.config.forget_after);
        for alert in batch {
            if let Some(destinations) = book_keeping(state, routes, &mut book, &alert, wall) {
                announce.push((alert, destinations));
            }
        }
    }
    let announce = claimed(state, announce, wall);
    for (alert, destinations) in announce {
        state.metrics.routed(1);
        for destination in &destinations {
            if storm.ingest(now, destination, alert.clone()) == Ingested::Duplicate {
                state.metrics.dropped(DropStage::Dedup, 1);
            }
        }
    }
}

/// Records one alert in the book (active, acked, resolved); its destinations when it is to
/// be announced, `None` when silenced or acknowledged.
fn book_keeping(
    state: &AlertsState,
    routes: &Routes,
    book: &mut super::state::Book,
    alert: &Alert,
    wall: chrono::DateTime<Utc>,
) -> Option<Vec<Destination>> {
    if book.silences.iter().any(|s| s.matches(alert, wall)) {
        state.metrics.dropped(DropStage::Silenced, 1);
        return None;
    }
    let id = alert.key();
    let mut routed = routes.route(alert);
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
                    return None;
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
                    return None;
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
    Some(routed.destinations)
}

/// The alerts this replica announces: all of them, unless replicas share the state; then
/// those it claimed first. When the claim cannot be made (database unreachable), all of
/// them: a duplicate is better than a lost alert.
fn claimed(
    state: &AlertsState,
    announce: Vec<(Alert, Vec<Destination>)>,
    wall: chrono::DateTime<Utc>,
) -> Vec<(Alert, Vec<Destination>)> {
    let Some(claims) = &state.claims else {
        return announce;
    };
    let events: Vec<_> = announce.iter().map(|(a, _)| (a.key(), a.status)).collect();
    match claims.claim(&events, wall) {
        Ok(won) => announce
            .into_iter()
            .zip(won)
            .filter_map(|(item, won)| {
                if !won {
                    state.metrics.dropped(DropStage::Replica, 1);
                }
                won.then_some(item)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "alerts not claimed in the state database; announcing them here");
            announce
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
            files: if i == last {
                message.files.clone()
            } else {
                Vec::new()
            },
            key: message.key.as_ref().map(|k| format!("{k}:part{i}")),
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
    let mut lanes = Lanes::new(outbox);
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
            Some(done) = lanes.done.recv() => {
                finished(&state, &mut storm, &mut waiting, done, elapsed(start));
                while let Ok(more) = lanes.done.try_recv() {
                    finished(&state, &mut storm, &mut waiting, more, elapsed(start));
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
                            sending: false,
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
        start_posts(&mut storm, &mut lanes, &mut waiting, elapsed(start));
        *state.stats.lock().unwrap_or_else(|p| p.into_inner()) = storm.stats().clone();
    }
}

/// A released chat message's posts not sent yet.
struct Waiting {
    posts: VecDeque<OutboundMessage>,
    covers: u64,
    folded: u64,
    /// One of its posts is with the channel's lane.
    sending: bool,
}

/// A post a lane finished: its destination and how it went.
type Done = (Destination, Result<(), String>);

/// One sender task per chat channel with posts going out, so a channel waiting out a 429
/// (serenity sleeps `Retry-After` inside the send) holds only its own posts. Each lane has
/// at most one post at a time (the storm lets a channel's next post start only once the
/// previous one is reported), so its queue holds one; a lane with nothing waiting is closed.
struct Lanes {
    outbox: Arc<dyn Outbox>,
    lanes: BTreeMap<Destination, mpsc::Sender<OutboundMessage>>,
    done_tx: mpsc::UnboundedSender<Done>,
    /// At most one report per lane is ever waiting here.
    done: mpsc::UnboundedReceiver<Done>,
}

impl Lanes {
    fn new(outbox: Arc<dyn Outbox>) -> Lanes {
        let (done_tx, done) = mpsc::unbounded_channel();
        Lanes {
            outbox,
            lanes: BTreeMap::new(),
            done_tx,
            done,
        }
    }

    /// Hands `post` to `destination`'s lane, starting the lane if needed.
    fn send(&mut self, destination: &Destination, post: OutboundMessage) {
        let lane = self.lanes.entry(destination.clone()).or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<OutboundMessage>(1);
            let (outbox, done, dest) = (
                self.outbox.clone(),
                self.done_tx.clone(),
                destination.clone(),
            );
            tokio::spawn(async move {
                while let Some(post) = rx.recv().await {
                    let result = outbox.post(post).await;
                    if done.send((dest.clone(), result)).is_err() {
                        break;
                    }
                }
            });
            tx
        });
        if let Err(e) = lane.try_send(post) {
            // Cannot happen (one post per lane at a time); report it as a failed send.
            let post = match e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
            };
            self.lanes.remove(destination);
            let _ = self.done_tx.send((
                destination.clone(),
                Err(format!("the sender for {} was not ready", post.channel)),
            ));
        }
    }

    /// Closes the lanes of channels with nothing waiting.
    fn close_idle(&mut self, waiting: &BTreeMap<Destination, Waiting>) {
        self.lanes.retain(|d, _| waiting.contains_key(d));
    }
}

/// A lane reports a post done: stamp it, count the message once its last post is out, or
/// drop the rest of the message if it failed.
fn finished(
    state: &AlertsState,
    storm: &mut Storm,
    waiting: &mut BTreeMap<Destination, Waiting>,
    (destination, result): Done,
    now: u64,
) {
    storm.posted(&destination, now);
    let Some(message) = waiting.get_mut(&destination) else {
        return;
    };
    message.sending = false;
    if let Err(e) = result {
        tracing::warn!(%destination, error = %e, "alert message not delivered");
        state.metrics.dropped(DropStage::Send, message.covers);
        storm.abandon(&destination);
        message.posts.clear();
    } else if message.posts.is_empty() {
        state.metrics.message_sent(message.folded);
    }
    if message.posts.is_empty() {
        waiting.remove(&destination);
    }
}

/// Starts the next post of every channel whose window allows one now, each on the
/// channel's lane; none waits for another.
fn start_posts(
    storm: &mut Storm,
    lanes: &mut Lanes,
    waiting: &mut BTreeMap<Destination, Waiting>,
    now: u64,
) {
    for (destination, message) in waiting.iter_mut() {
        if message.sending || !storm.may_post(destination, now) {
            continue;
        }
        let Some(post) = message.posts.pop_front() else {
            continue;
        };
        storm.sending(destination);
        message.sending = true;
        lanes.send(destination, post);
    }
    lanes.close_idle(waiting);
}
