//! `/runner watch`: job status notifications, for a schedule to run every minute or so.
//!
//! RabbitMQ's management API lags the broker by seconds, so no notification fires on one
//! sample. Every condition is judged on the broker's exact ready and consumer counts (AMQP
//! passive declare) where the host can get them, and must hold across runs for longer than
//! `confirm_secs` (default 15 s, more than the 3.7–7 s lag measured on RabbitMQ 3.10) before
//! it is reported; runners polling with `basic.get` show no consumer, so in-flight messages and
//! deliveries count as activity. Each episode is reported once; the state between runs lives
//! in the plugin's key-value namespace.

use deckhand_plugin_sdk::{Ctx, Notification, PluginError, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::deploy::Target;
use crate::jobs::{self, QueueStatus, human_secs};
use crate::rabbit::Endpoint;

#[derive(Debug, Clone)]
pub struct Settings {
    pub channel: Option<String>,
    pub confirm_secs: u64,
    pub stranded_secs: u64,
}

/// What `/runner watch` remembers about one queue between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueState {
    /// When the queue was first seen holding work in this episode (unix milliseconds, as
    /// every time here).
    busy_since: Option<u64>,
    /// Most messages (waiting + in progress) seen in this episode.
    peak: u64,
    /// When it was first seen empty after being busy.
    empty_since: Option<u64>,
    /// When messages were first seen waiting with nobody working on them.
    stranded_since: Option<u64>,
    stranded_notified: bool,
}

/// What `/runner watch` remembers about the GPU pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolState {
    zero_since: Option<u64>,
    notified: bool,
}

/// A confirmed change worth a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Drained { jobs: u64, secs: u64 },
    Stranded { waiting: u64, secs: u64 },
}

/// Seconds as milliseconds, for comparing with the times kept.
fn ms(secs: u64) -> u64 {
    secs.saturating_mul(1000)
}

/// One queue's next state from a sample at `now` (ms), and the event it confirms, if any.
pub fn step(
    mut state: QueueState,
    q: &QueueStatus,
    now: u64,
    settings: &Settings,
) -> (QueueState, Option<Event>, Option<String>) {
    let held = |since: u64| now.saturating_sub(since);
    let mut event = None;
    let mut pending = None;
    let total = q.total();
    if total > 0 {
        state.busy_since.get_or_insert(now);
        state.peak = state.peak.max(total);
        state.empty_since = None;
    } else if let Some(busy) = state.busy_since {
        let empty = *state.empty_since.get_or_insert(now);
        if held(empty) >= ms(settings.confirm_secs) {
            event = Some(Event::Drained {
                jobs: state.peak,
                secs: empty.saturating_sub(busy) / 1000,
            });
            state.busy_since = None;
            state.empty_since = None;
            state.peak = 0;
        } else {
            pending = Some(format!(
                "{} looks empty; confirming (it must stay empty for {} s)",
                q.name, settings.confirm_secs
            ));
        }
    }
    let stranded = q.waiting > 0 && !q.active();
    if stranded {
        let since = *state.stranded_since.get_or_insert(now);
        let limit = settings.stranded_secs.max(settings.confirm_secs);
        if held(since) >= ms(limit) && !state.stranded_notified {
            event = event.or(Some(Event::Stranded {
                waiting: q.waiting,
                secs: held(since) / 1000,
            }));
            state.stranded_notified = true;
        } else if !state.stranded_notified {
            pending = pending.or(Some(format!(
                "{} has {} waiting and no runner for {} s (reported after {limit} s)",
                q.name,
                q.waiting,
                held(since) / 1000
            )));
        }
    } else {
        state.stranded_since = None;
        state.stranded_notified = false;
    }
    (state, event, pending)
}

/// The pool's next state: reported once when it has had 0 nodes while jobs waited for longer
/// than `confirm_secs`.
pub fn pool_step(
    mut state: PoolState,
    nodes: i64,
    waiting: u64,
    now: u64,
    settings: &Settings,
) -> (PoolState, Option<u64>) {
    if nodes > 0 || waiting == 0 {
        return (PoolState::default(), None);
    }
    let since = *state.zero_since.get_or_insert(now);
    let held = now.saturating_sub(since);
    if held >= ms(settings.confirm_secs) && !state.notified {
        state.notified = true;
        return (state, Some(held / 1000));
    }
    (state, None)
}

/// ` (a; b)` for a non-empty list of what was sent.
fn listed(sent: &[String]) -> String {
    if sent.is_empty() {
        String::new()
    } else {
        format!(" ({})", sent.join("; "))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn load<T: for<'de> Deserialize<'de> + Default>(ctx: &Ctx, key: &str) -> Result<T, PluginError> {
    Ok(ctx
        .kv_get(key)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

fn store<T: Serialize>(ctx: &Ctx, key: &str, value: &T) -> Result<(), PluginError> {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    ctx.kv_put(key, value)?;
    Ok(())
}

fn labels(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

pub fn run(
    ctx: &Ctx,
    endpoint: &Endpoint,
    settings: &Settings,
    gpu: Option<(&Target, &crate::deploy::Settings)>,
) -> Result<Reply, PluginError> {
    let now = now_ms();
    // RabbitMQ out of reach does not stop the pod checks; it is the answer once they are done.
    let (queues, note, queue_error) = match jobs::collect(ctx, endpoint, None) {
        Ok((queues, note)) => (queues, note, None),
        Err(e) => (Vec::new(), None, Some(e)),
    };
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for q in &queues {
        let key = format!("watch/queue/{}", q.name);
        let (state, event, waiting_on) = step(load(ctx, &key)?, q, now, settings);
        store(ctx, &key, &state)?;
        pending.extend(waiting_on);
        let Some(event) = event else { continue };
        let (title, text, severity) = match event {
            Event::Drained { jobs, secs } => (
                format!("Jobs finished: {}", q.name),
                format!(
                    "Queue {} (project {}, experiment {}) drained: {jobs} job(s) done in {}.",
                    q.name,
                    q.project,
                    q.experiment,
                    human_secs(secs)
                ),
                "info",
            ),
            Event::Stranded { waiting, secs } => (
                format!("Jobs waiting with no runner: {}", q.name),
                format!(
                    "{waiting} job(s) have waited in {} for {} with no runner consuming or polling (runners down?): `/runner status`, `/runner scale N`.",
                    q.name,
                    human_secs(secs)
                ),
                "warning",
            ),
        };
        ctx.notify(Notification {
            title: title.clone(),
            text,
            severity: severity.into(),
            labels: labels(&[("queue", &q.name), ("project", &q.project)]),
            channel: settings.channel.clone(),
        })?;
        sent.push(title);
    }
    let waiting: u64 = queues.iter().map(|q| q.waiting).sum();
    let mut notes = Vec::new();
    notes.extend(note);
    if let Some((target, deploy)) = gpu {
        match pods(ctx, target, deploy, settings) {
            Ok(titles) => sent.extend(titles),
            Err(e) => notes.push(format!("runner pods not checked: {}", e.message)),
        }
        let pool = deploy.pool.as_str();
        match pool_nodes(ctx, target, pool).and_then(|nodes| {
            // Without the queues nothing is known about waiting jobs: keep the pool's state.
            if queue_error.is_some() {
                Err(PluginError::new(
                    deckhand_plugin_sdk::ErrorCode::Unavailable,
                    "the job queues could not be read",
                ))
            } else {
                Ok(nodes)
            }
        }) {
            Ok(nodes) => {
                let key = format!("watch/pool/{}/{pool}", target.cluster);
                let (state, fire) = pool_step(load(ctx, &key)?, nodes, waiting, now, settings);
                store(ctx, &key, &state)?;
                if let Some(secs) = fire {
                    let title = format!("GPU pool {pool} is at 0 nodes while jobs wait");
                    ctx.notify(Notification {
                        title: title.clone(),
                        text: format!(
                            "{waiting} job(s) wait and GPU pool {pool} of {} has had 0 nodes for {}: `/aks scale {pool} 1 --cluster {}` brings one up.",
                            target.cluster,
                            human_secs(secs),
                            target.cluster
                        ),
                        severity: "warning".into(),
                        labels: labels(&[("cluster", &target.cluster), ("pool", pool)]),
                        channel: settings.channel.clone(),
                    })?;
                    sent.push(title);
                }
            }
            Err(e) => notes.push(format!("GPU pool {pool} not checked: {}", e.message)),
        }
    }
    let mut lines = vec![format!(
        "Checked {} job queue(s): {waiting} job(s) waiting; {} notification(s) sent{}.",
        queues.len(),
        sent.len(),
        listed(&sent)
    )];
    lines.extend(pending.into_iter().map(|p| format!("Pending: {p}.")));
    lines.extend(notes.into_iter().map(|n| format!("Note: {n}.")));
    if let Some(mut e) = queue_error {
        e.message = format!(
            "{}; runner pods checked: {} notification(s) sent{}",
            e.message,
            sent.len(),
            listed(&sent)
        );
        return Err(e);
    }
    Ok(Reply::text(lines.join("\n")))
}

/// A runner pod that crash-loops or was OOM-killed: reported once per episode (until the pod
/// is healthy again). Kubernetes' own state, not a lagging sample: no window needed.
fn pods(
    ctx: &Ctx,
    target: &Target,
    deploy: &crate::deploy::Settings,
    settings: &Settings,
) -> Result<Vec<String>, PluginError> {
    let mut sent = Vec::new();
    for pod in crate::pods::runner_pods(ctx, deploy, target)? {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let key = format!("watch/pod/{}/{name}", target.cluster);
        let Some((trouble, restarts)) = crate::pods::pod_trouble(&pod) else {
            // Healthy again: a later failure is a new episode.
            ctx.kv_delete(&key)?;
            continue;
        };
        if ctx.kv_get(&key)?.is_some() {
            continue;
        }
        ctx.kv_put(&key, json!(trouble))?;
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("no node");
        let title = format!("Runner pod {name} is {trouble}");
        ctx.notify(Notification {
            title: title.clone(),
            text: format!(
                "Runner pod {name} on {node} ({}) is {trouble} after {restarts} restart(s); jobs it held go back to their queues. `/runner status` shows the pods{}.",
                target.cluster,
                if trouble == "OOM-killed" {
                    "; the job needs more memory than the pod's limit"
                } else {
                    ""
                }
            ),
            severity: "warning".into(),
            labels: labels(&[("cluster", &target.cluster), ("pod", name)]),
            channel: settings.channel.clone(),
        })?;
        sent.push(title);
    }
    Ok(sent)
}

fn pool_nodes(ctx: &Ctx, target: &Target, pool: &str) -> Result<i64, PluginError> {
    Ok(crate::deploy::read_pool(ctx, target, pool)?
        .properties
        .count
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            channel: None,
            confirm_secs: 15,
            stranded_secs: 60,
        }
    }

    fn q(waiting: u64, in_progress: u64, consumers: u64) -> QueueStatus {
        QueueStatus::sample(waiting, in_progress, consumers, 0.0)
    }

    /// Runs samples `(t, queue)` in order; returns the events with their times.
    fn replay(samples: &[(u64, QueueStatus)]) -> Vec<(u64, Event)> {
        let mut state = QueueState::default();
        let mut events = Vec::new();
        for (t, sample) in samples {
            let (next, event, _) = step(state, sample, ms(*t), &settings());
            state = next;
            events.extend(event.map(|e| (*t, e)));
        }
        events
    }

    #[test]
    fn one_empty_sample_is_not_drained() {
        // Busy, then one empty-looking sample, then busy again (the stale-sample case).
        let events = replay(&[(0, q(40, 2, 2)), (5, q(0, 0, 0)), (25, q(0, 30, 2))]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn drained_once_after_the_window_with_count_and_duration() {
        let events = replay(&[
            (0, q(40, 0, 2)),
            (30, q(10, 2, 2)),
            (60, q(0, 0, 2)),
            (70, q(0, 0, 2)),
            (76, q(0, 0, 2)),
            (90, q(0, 0, 2)),
        ]);
        assert_eq!(events, vec![(76, Event::Drained { jobs: 40, secs: 60 })]);
    }

    #[test]
    fn basic_get_pollers_are_not_runners_down() {
        // No consumer, but messages in flight: someone works on the queue.
        let events = replay(&[(0, q(10, 1, 0)), (100, q(9, 1, 0)), (200, q(8, 1, 0))]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn stranded_is_reported_once_per_episode() {
        let events = replay(&[
            (0, q(10, 0, 0)),
            (30, q(10, 0, 0)),
            (61, q(10, 0, 0)),
            (120, q(10, 0, 0)),
            (130, q(10, 0, 1)),
            (140, q(10, 0, 0)),
            (201, q(10, 0, 0)),
        ]);
        assert_eq!(
            events,
            vec![
                (
                    61,
                    Event::Stranded {
                        waiting: 10,
                        secs: 61
                    }
                ),
                (
                    201,
                    Event::Stranded {
                        waiting: 10,
                        secs: 61
                    }
                ),
            ]
        );
    }

    #[test]
    fn pool_at_zero_needs_the_window_and_waiting_jobs() {
        let s = settings();
        let (state, fire) = pool_step(PoolState::default(), 0, 5, 0, &s);
        assert_eq!(fire, None);
        let (state, fire) = pool_step(state, 0, 5, 14_999, &s);
        assert_eq!(fire, None);
        let (state, fire) = pool_step(state, 0, 5, 16_000, &s);
        assert_eq!(fire, Some(16));
        let (state, fire) = pool_step(state, 0, 5, 40_000, &s);
        assert_eq!(fire, None);
        let (state, _) = pool_step(state, 0, 0, 50_000, &s);
        assert_eq!(state, PoolState::default());
    }
}
