//! Storm control as a pure, clock-driven state machine: the caller passes the time in every
//! call, so tests and the benchmark drive the clock and nothing here sleeps or spawns.
//!
//! For each destination (a channel or a webhook):
//! 1. **dedup**: the same alert (by id) with the same status inside `dedup_window` is dropped;
//! 2. **group**: alerts with the same `group_by` label values and status wait `group_wait`
//!    and leave as one message (at most `max_alerts_per_message` per message);
//! 3. **rate limit**: at most `channel_messages` per `channel_window` per destination (Discord:
//!    5 per 5 s), and for chat channels `global_per_second` across all of them;
//! 4. **fold**: a destination queues at most `queue_per_destination` messages; anything more is
//!    folded into one digest message queued behind them, which counts everything it folded.
//!
//! Nothing is lost: at every moment `received == deduplicated + alerts_in_messages + folded +
//! pending` ([`StormStats::balanced`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::Deserialize;

use super::alert::{Alert, Severity, Status};
use super::route::Destination;

/// Milliseconds on the caller's clock.
pub type Millis = u64;

/// `[alerts.storm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormConfig {
    /// How long the first alert of a group waits for siblings.
    #[serde(
        default = "default_group_wait",
        with = "crate::config_support::duration"
    )]
    pub group_wait: Duration,
    /// Labels whose values form the group key.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// Repeats of an alert with the same status inside this window are dropped.
    #[serde(
        default = "default_dedup_window",
        with = "crate::config_support::duration"
    )]
    pub dedup_window: Duration,
    /// Messages per destination per `channel_window` (Discord: 5 per 5 s).
    #[serde(default = "default_channel_messages")]
    pub channel_messages: u32,
    #[serde(
        default = "default_channel_window",
        with = "crate::config_support::duration"
    )]
    pub channel_window: Duration,
    /// Messages per second across all chat channels (Discord's global limit is 50/s).
    #[serde(default = "default_global_per_second")]
    pub global_per_second: u32,
    /// Messages a destination may have waiting; more are folded into a digest.
    #[serde(default = "default_queue")]
    pub queue_per_destination: usize,
    /// Alerts listed in one message; a bigger group becomes several messages.
    #[serde(default = "default_max_alerts")]
    pub max_alerts_per_message: usize,
}

fn default_group_wait() -> Duration {
    Duration::from_secs(2)
}
fn default_group_by() -> Vec<String> {
    vec!["alertname".into(), "cluster".into(), "namespace".into()]
}
fn default_dedup_window() -> Duration {
    Duration::from_secs(300)
}
fn default_channel_messages() -> u32 {
    5
}
fn default_channel_window() -> Duration {
    Duration::from_secs(5)
}
fn default_global_per_second() -> u32 {
    50
}
fn default_queue() -> usize {
    5
}
fn default_max_alerts() -> usize {
    10
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            group_wait: default_group_wait(),
            group_by: default_group_by(),
            dedup_window: default_dedup_window(),
            channel_messages: default_channel_messages(),
            channel_window: default_channel_window(),
            global_per_second: default_global_per_second(),
            queue_per_destination: default_queue(),
            max_alerts_per_message: default_max_alerts(),
        }
    }
}

/// Alerts folded into one digest message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digest {
    pub count: u64,
    pub firing: u64,
    pub resolved: u64,
    /// (severity, alert name) → how many.
    pub by_name: BTreeMap<(Severity, String), u64>,
    /// When the first folded alert arrived.
    pub since: Millis,
}

impl Digest {
    fn add(&mut self, alerts: &[Alert]) {
        for alert in alerts {
            self.count += 1;
            match alert.status {
                Status::Firing => self.firing += 1,
                Status::Resolved => self.resolved += 1,
            }
            *self
                .by_name
                .entry((alert.severity, alert.name.clone()))
                .or_default() += 1;
        }
    }
}

/// What one message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Alerts of one group, all with the same status.
    Alerts {
        status: Status,
        /// `alertname=X,cluster=Y,...`
        group: String,
        alerts: Vec<Alert>,
    },
    Digest(Digest),
}

/// A message storm control lets out now.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub destination: Destination,
    pub notice: Notice,
}

impl Outgoing {
    /// How many received alerts this message accounts for.
    pub fn covers(&self) -> u64 {
        match &self.notice {
            Notice::Alerts { alerts, .. } => alerts.len() as u64,
            Notice::Digest(d) => d.count,
        }
    }
}

/// What happened to one alert handed to [`Storm::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Buffered,
    Duplicate,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StormStats {
    pub received: u64,
    pub deduplicated: u64,
    pub messages: u64,
    pub digests: u64,
    /// Alerts listed individually in sent messages.
    pub alerts_in_messages: u64,
    /// Alerts counted in sent digests.
    pub folded: u64,
    /// Alerts buffered or queued, not sent yet.
    pub pending: u64,
}

impl StormStats {
    /// Every alert received is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.received == self.deduplicated + self.alerts_in_messages + self.folded + self.pending
    }
}

enum Queued {
    Message(Notice),
    Digest(Digest),
}

#[derive(Default)]
struct DestState {
    sent: VecDeque<Millis>,
    queue: VecDeque<Queued>,
    queued_messages: usize,
}

struct Buffer {
    due: Millis,
    alerts: Vec<Alert>,
}

#[derive(Clone, Copy)]
struct Seen {
    status: Status,
    at: Millis,
}

type GroupId = (Destination, Status, String);

pub struct Storm {
    config: StormConfig,
    group_wait: Millis,
    dedup_window: Millis,
    channel_window: Millis,
    buffers: BTreeMap<GroupId, Buffer>,
    dests: BTreeMap<Destination, DestState>,
    global: VecDeque<Millis>,
    seen: HashMap<(Destination, String), Seen>,
    last_prune: Millis,
    stats: StormStats,
}

fn ms(d: Duration) -> Millis {
    d.as_millis().min(u128::from(u64::MAX)) as Millis
}

impl Storm {
    pub fn new(config: StormConfig) -> Storm {
        let mut config = config;
        config.channel_messages = config.channel_messages.max(1);
        config.global_per_second = config.global_per_second.max(1);
        config.max_alerts_per_message = config.max_alerts_per_message.max(1);
        Storm {
            group_wait: ms(config.group_wait),
            dedup_window: ms(config.dedup_window),
            channel_window: ms(config.channel_window),
            config,
            buffers: BTreeMap::new(),
            dests: BTreeMap::new(),
            global: VecDeque::new(),
            seen: HashMap::new(),
            last_prune: 0,
            stats: StormStats::default(),
        }
    }

    pub fn config(&self) -> &StormConfig {
        &self.config
    }

    pub fn stats(&self) -> &StormStats {
        &self.stats
    }

    fn group_key(&self, alert: &Alert) -> String {
        let mut key = String::new();
        for (i, label) in self.config.group_by.iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(label);
            key.push('=');
            key.push_str(alert.label(label).unwrap_or(""));
        }
        key
    }

    /// Takes one alert for one destination.
    pub fn ingest(&mut self, now: Millis, destination: &Destination, alert: Alert) -> Ingested {
        self.stats.received += 1;
        let seen_key = (destination.clone(), alert.id());
        if let Some(seen) = self.seen.get(&seen_key)
            && seen.status == alert.status
            && now.saturating_sub(seen.at) < self.dedup_window
        {
            self.stats.deduplicated += 1;
            return Ingested::Duplicate;
        }
        self.seen.insert(
            seen_key,
            Seen {
                status: alert.status,
                at: now,
            },
        );
        self.stats.pending += 1;
        let id = (destination.clone(), alert.status, self.group_key(&alert));
        let due = now.saturating_add(self.group_wait);
        let buffer = self.buffers.entry(id.clone()).or_insert_with(|| Buffer {
            due,
            alerts: Vec::new(),
        });
        buffer.alerts.push(alert);
        if buffer.alerts.len() >= self.config.max_alerts_per_message
            && let Some(full) = self.buffers.remove(&id)
        {
            self.enqueue(now, id, full.alerts);
        }
        Ingested::Buffered
    }

    fn enqueue(&mut self, now: Millis, (destination, status, group): GroupId, alerts: Vec<Alert>) {
        let cap = self.config.queue_per_destination;
        let dest = self.dests.entry(destination).or_default();
        if dest.queued_messages < cap {
            dest.queued_messages += 1;
            dest.queue.push_back(Queued::Message(Notice::Alerts {
                status,
                group,
                alerts,
            }));
            return;
        }
        // Fold into the digest waiting in the queue, or start one behind the messages.
        let open = dest.queue.iter_mut().rev().find_map(|q| match q {
            Queued::Digest(d) => Some(d),
            Queued::Message(_) => None,
        });
        match open {
            Some(digest) => digest.add(&alerts),
            None => {
                let mut digest = Digest {
                    since: now,
                    ..Digest::default()
                };
                digest.add(&alerts);
                dest.queue.push_back(Queued::Digest(digest));
            }
        }
    }

    /// Moves due groups to their queues and returns the messages the rate limits allow now,
    /// taking one per destination in turn so a busy channel cannot starve the others.
    pub fn poll(&mut self, now: Millis) -> Vec<Outgoing> {
        let due: Vec<GroupId> = self
            .buffers
            .iter()
            .filter(|(_, b)| b.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(buffer) = self.buffers.remove(&id) {
                self.enqueue(now, id, buffer.alerts);
            }
        }
        let window = self.channel_window;
        let per_dest = self.config.channel_messages as usize;
        let global_limit = self.config.global_per_second as usize;
        while self
            .global
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= 1000)
        {
            self.global.pop_front();
        }
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            for (destination, dest) in self.dests.iter_mut() {
                if dest.queue.is_empty() {
                    continue;
                }
                while dest
                    .sent
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) >= window)
                {
                    dest.sent.pop_front();
                }
                if dest.sent.len() >= per_dest {
                    continue;
                }
                let channel = destination.is_channel();
                if channel && self.global.len() >= global_limit {
                    continue;
                }
                let Some(item) = dest.queue.pop_front() else {
                    continue;
                };
                dest.sent.push_back(now);
                if channel {
                    self.global.push_back(now);
                }
                let notice = match item {
                    Queued::Message(notice) => {
                        dest.queued_messages -= 1;
                        notice
                    }
                    Queued::Digest(d) => Notice::Digest(d),
                };
                let outgoing = Outgoing {
                    destination: destination.clone(),
                    notice,
                };
                let covers = outgoing.covers();
                self.stats.pending -= covers;
                self.stats.messages += 1;
                match outgoing.notice {
                    Notice::Digest(_) => {
                        self.stats.digests += 1;
                        self.stats.folded += covers;
                    }
                    Notice::Alerts { .. } => self.stats.alerts_in_messages += covers,
                }
                out.push(outgoing);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if now.saturating_sub(self.last_prune) >= self.dedup_window.max(1000) {
            let horizon = self.dedup_window;
            self.seen.retain(|_, s| now.saturating_sub(s.at) < horizon);
            self.last_prune = now;
        }
        out
    }

    /// When [`Storm::poll`] may next have something to send (`None`: nothing is waiting).
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut next = self.buffers.values().map(|b| b.due).min();
        let per_dest = self.config.channel_messages as usize;
        let global_limit = self.config.global_per_second as usize;
        let global_free = if self.global.len() >= global_limit {
            self.global[self.global.len() - global_limit].saturating_add(1000)
        } else {
            0
        };
        for (destination, dest) in &self.dests {
            if dest.queue.is_empty() {
                continue;
            }
            let dest_free = if dest.sent.len() >= per_dest {
                dest.sent[dest.sent.len() - per_dest].saturating_add(self.channel_window)
            } else {
                0
            };
            let at = if destination.is_channel() {
                dest_free.max(global_free)
            } else {
                dest_free
            };
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next
    }

    /// Alerts buffered or queued for a destination (for `/alerts list`).
    pub fn pending_for(&self, destination: &Destination) -> u64 {
        let buffered: u64 = self
            .buffers
            .iter()
            .filter(|((d, _, _), _)| d == destination)
            .map(|(_, b)| b.alerts.len() as u64)
            .sum();
        let queued: u64 = self.dests.get(destination).map_or(0, |d| {
            d.queue
                .iter()
                .map(|q| match q {
                    Queued::Message(Notice::Alerts { alerts, .. }) => alerts.len() as u64,
                    Queued::Message(Notice::Digest(d)) | Queued::Digest(d) => d.count,
                })
                .sum()
        });
        buffered + queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::alert::Source;

    fn alert(name: &str, fingerprint: &str, status: Status) -> Alert {
        Alert {
            source: Source::Alertmanager,
            fingerprint: fingerprint.into(),
            status,
            severity: Severity::Critical,
            name: name.into(),
            summary: format!("{name} {fingerprint}"),
            labels: [("cluster".to_string(), "pangeo".to_string())]
                .into_iter()
                .collect(),
            starts_at: None,
            url: None,
        }
    }

    fn chan(name: &str) -> Destination {
        Destination::Channel(name.into())
    }

    fn config() -> StormConfig {
        StormConfig {
            group_wait: Duration::from_secs(1),
            ..StormConfig::default()
        }
    }

    /// Runs the clock to `until`, waking only at the deadlines the storm asks for.
    fn run_until(storm: &mut Storm, from: Millis, until: Millis) -> Vec<(Millis, Outgoing)> {
        let mut now = from;
        let mut sent = Vec::new();
        loop {
            for o in storm.poll(now) {
                sent.push((now, o));
            }
            match storm.next_deadline() {
                Some(next) if next <= until => now = next.max(now + 1),
                _ => return sent,
            }
        }
    }

    #[test]
    fn groups_alerts_arriving_within_group_wait() {
        let mut storm = Storm::new(config());
        storm.ingest(0, &chan("ml"), alert("GpuDown", "a", Status::Firing));
        storm.ingest(400, &chan("ml"), alert("GpuDown", "b", Status::Firing));
        storm.ingest(500, &chan("ml"), alert("DiskFull", "c", Status::Firing));
        assert!(storm.poll(999).is_empty(), "group_wait not over");
        assert_eq!(storm.next_deadline(), Some(1000));
        let out = storm.poll(1000);
        assert_eq!(out.len(), 1);
        match &out[0].notice {
            Notice::Alerts { alerts, group, .. } => {
                assert_eq!(alerts.len(), 2);
                assert!(
                    group.starts_with("alertname=GpuDown,cluster=pangeo"),
                    "{group}"
                );
            }
            other => panic!("{other:?}"),
        }
        let out = storm.poll(1500);
        assert_eq!(out.len(), 1, "DiskFull waits its own group_wait");
        assert!(storm.stats().balanced());
        assert_eq!(storm.stats().pending, 0);
    }

    #[test]
    fn dedups_inside_the_window_and_lets_resolved_through() {
        let mut storm = Storm::new(config());
        let d = chan("ml");
        assert_eq!(
            storm.ingest(0, &d, alert("A", "x", Status::Firing)),
            Ingested::Buffered
        );
        assert_eq!(
            storm.ingest(10, &d, alert("A", "x", Status::Firing)),
            Ingested::Duplicate
        );
        let first = storm.poll(1000);
        assert_eq!(first.len(), 1);
        assert_eq!(
            storm.ingest(2000, &d, alert("A", "x", Status::Firing)),
            Ingested::Duplicate
        );
        assert_eq!(
            storm.ingest(3000, &d, alert("A", "x", Status::Resolved)),
            Ingested::Buffered
        );
        let resolved = storm.poll(4000);
        assert!(matches!(
            &resolved[0].notice,
            Notice::Alerts {
                status: Status::Resolved,
                ..
            }
        ));
        // After the window the same firing alert is news again.
        let later = 4000 + 300_000;
        assert_eq!(
            storm.ingest(later, &d, alert("A", "x", Status::Firing)),
            Ingested::Buffered
        );
        // Another channel is deduplicated independently.
        assert_eq!(
            storm.ingest(10, &chan("other"), alert("A", "x", Status::Firing)),
            Ingested::Buffered
        );
        assert_eq!(storm.stats().deduplicated, 2);
        assert!(storm.stats().balanced());
    }

    #[test]
    fn rate_limit_folds_overflow_into_one_digest_that_counts_everything() {
        let mut storm = Storm::new(config());
        let d = chan("ml");
        for i in 0..100 {
            storm.ingest(
                0,
                &d,
                alert(&format!("Alert{}", i % 20), &i.to_string(), Status::Firing),
            );
        }
        let sent = run_until(&mut storm, 0, 60_000);
        // 20 groups of 5: 5 messages right away, the other 15 groups folded into one digest
        // that goes out when the window frees a slot.
        assert_eq!(sent.len(), 6, "{sent:?}");
        assert!(sent[..5].iter().all(|(t, _)| *t == 1000));
        let (at, digest) = &sent[5];
        assert_eq!(*at, 6000);
        match &digest.notice {
            Notice::Digest(d) => {
                assert_eq!(d.count, 75);
                assert_eq!(d.by_name.values().sum::<u64>(), 75);
                assert_eq!(d.firing, 75);
            }
            other => panic!("{other:?}"),
        }
        let total: u64 = sent.iter().map(|(_, o)| o.covers()).sum();
        assert_eq!(total, 100);
        assert!(storm.stats().balanced());
        assert_eq!(storm.stats().folded, 75);
    }

    #[test]
    fn never_more_than_the_channel_rate_and_global_limit_holds() {
        let mut storm = Storm::new(StormConfig {
            group_wait: Duration::ZERO,
            global_per_second: 8,
            queue_per_destination: 50,
            ..StormConfig::default()
        });
        // A steady trickle into 4 channels: each alert its own group.
        for t in 0..200u64 {
            let d = chan(&format!("c{}", t % 4));
            storm.ingest(
                t * 50,
                &d,
                alert(&format!("N{t}"), &t.to_string(), Status::Firing),
            );
        }
        let sent = run_until(&mut storm, 0, 600_000);
        let total: u64 = sent.iter().map(|(_, o)| o.covers()).sum();
        assert_eq!(total, 200);
        for c in 0..4 {
            let times: Vec<Millis> = sent
                .iter()
                .filter(|(_, o)| o.destination == chan(&format!("c{c}")))
                .map(|(t, _)| *t)
                .collect();
            for w in times.windows(6) {
                assert!(w[5] - w[0] >= 5000, "6 messages within 5 s in c{c}: {w:?}");
            }
        }
        let times: Vec<Millis> = sent.iter().map(|(t, _)| *t).collect();
        for w in times.windows(9) {
            assert!(w[8] - w[0] >= 1000, "9 messages within 1 s overall: {w:?}");
        }
        assert!(storm.stats().balanced());
    }

    #[test]
    fn webhooks_are_not_held_by_the_chat_global_limit() {
        let mut storm = Storm::new(StormConfig {
            group_wait: Duration::ZERO,
            global_per_second: 1,
            ..StormConfig::default()
        });
        storm.ingest(0, &chan("a"), alert("A", "1", Status::Firing));
        storm.ingest(0, &chan("b"), alert("A", "1", Status::Firing));
        storm.ingest(
            0,
            &Destination::Webhook("slack".into()),
            alert("A", "1", Status::Firing),
        );
        let out = storm.poll(0);
        assert_eq!(
            out.len(),
            2,
            "one chat message (global 1/s) and the webhook"
        );
        assert_eq!(storm.next_deadline(), Some(1000));
        assert_eq!(storm.poll(1000).len(), 1);
    }

    #[test]
    fn a_full_group_leaves_without_waiting() {
        let mut storm = Storm::new(config());
        for i in 0..25 {
            storm.ingest(0, &chan("x"), alert("Same", &i.to_string(), Status::Firing));
        }
        let out = storm.poll(0);
        assert_eq!(out.len(), 2, "two full messages of 10; 5 still wait");
        assert_eq!(storm.pending_for(&chan("x")), 5);
        assert_eq!(storm.poll(1000).len(), 1);
    }
}
