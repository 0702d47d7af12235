//! The driver: takes batches from the receiver's queue, applies silences and acks, routes,
//! feeds storm control, and delivers what it releases to channels and webhooks.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::metrics::DropStage;
use super::route::{Destination, Routes};
use super::sinks::webhook::WebhookSink;
use super::storm::{self, Ingested, Storm};
use super::{Alert, AlertsState, Record, Status, sinks, sources, store};
use crate::chat::Outbox;

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
        let id = alert.id();
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
        *state.stats.lock().unwrap_or_else(|p| p.into_inner()) = storm.stats().clone();
        for out in outgoing {
            let folded = match &out.notice {
                storm::Notice::Digest(d) => d.count,
                storm::Notice::Alerts { .. } => 0,
            };
            match &out.destination {
                Destination::Channel(_) => {
                    let Some(message) = sinks::channel::render(&out) else {
                        continue;
                    };
                    match outbox.post(message).await {
                        Ok(()) => state.metrics.message_sent(folded),
                        Err(e) => {
                            tracing::warn!(destination = %out.destination, error = %e, "alert message not delivered");
                            state.metrics.dropped(DropStage::Send, out.covers());
                        }
                    }
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
    }
}
