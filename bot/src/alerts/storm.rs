//! Storm control as a pure, clock-driven state machine: the caller passes the time in every
//! call, so tests and the benchmark drive the clock and nothing here sleeps or spawns.
//!
//! For each destination (a channel or a webhook):
//! 1. **dedup** by the alert's full key ([`Alert::key`], never the 32-bit short id): a repeat
//!    with the same status is dropped and refreshes the window, so an alert that keeps firing
//!    is announced once; it is announced again, as a reminder, once `repeat_interval` has
//!    passed since it was last announced. A firing alert not seen for `repeat_interval +
//!    dedup_window` (a resolved one: `dedup_window`) is forgotten;
//! 2. **group**: alerts with the same `group_by` label values and status wait `group_wait`
//!    and leave as one message (at most `max_alerts_per_message` per message);
//! 3. **rate limit** in Discord posts, not messages (a long message is several posts): at
//!    most `channel_messages` posts per `channel_window` per destination (default 4 per 5 s,
//!    a margin under Discord's 5), and for chat channels `global_per_second` across all of
//!    them. A chat post is stamped when the caller reports it sent ([`Storm::posted`]), not
//!    when it was released, and a channel gets its next message only once every post of the
//!    previous one is out;
//! 4. **fold**: a destination queues at most `queue_per_destination` messages; anything more is
//!    folded into one digest message queued behind them, which counts distinct alerts.
//!
//! Nothing is lost: at every moment `received == deduplicated + alerts_in_messages + folded +
//! pending` ([`StormStats::balanced`]), counted in alert events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::Deserialize;

use super::alert::{Alert, AlertKey, Severity, Status};
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
    /// Repeats of an alert with the same status inside this window (from its last sighting)
    /// are dropped.
    #[serde(
        default = "default_dedup_window",
        with = "crate::config_support::duration"
    )]
    pub dedup_window: Duration,
    /// A still-firing alert is announced again, as a reminder, this long after it was last
    /// announced (like Alertmanager's `repeat_interval`).
    #[serde(
        default = "default_repeat_interval",
        with = "crate::config_support::duration"
    )]
    pub repeat_interval: Duration,
    /// Posts per destination per `channel_window` (Discord allows 5 per 5 s; 4 keeps a
    /// margin). A message longer than a Discord post counts as every post it becomes.
    #[serde(default = "default_channel_messages")]
    pub channel_messages: u32,
    #[serde(
        default = "default_channel_window",
        with = "crate::config_support::duration"
    )]
    pub channel_window: Duration,
    /// Posts per second across all chat channels (Discord's global limit is 50/s).
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
fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_channel_messages() -> u32 {
    4
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
            repeat_interval: default_repeat_interval(),
            channel_messages: default_channel_messages(),
            channel_window: default_channel_window(),
            global_per_second: default_global_per_second(),
            queue_per_destination: default_queue(),
            max_alerts_per_message: default_max_alerts(),
        }
    }
}

/// One distinct alert folded into a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestEntry {
    pub name: String,
    pub severity: Severity,
    /// A firing that was news (not a reminder) was folded.
    pub new: bool,
    /// A reminder of a still-firing alert was folded.
    pub reminder: bool,
    /// A resolution was folded while no new firing of it was in this digest: the alert was
    /// announced before.
    pub resolution_of_earlier: bool,
    /// The last status folded.
    pub status: Status,
}

/// Alerts folded into one digest message, counted as distinct alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digest {
    pub entries: HashMap<AlertKey, DigestEntry>,
    /// Alert events folded (an alert firing then resolving is two), for the stats.
    pub events: u64,
    /// When the first folded alert arrived.
    pub since: Millis,
}

impl Digest {
    fn add(&mut self, alerts: &[Alert], reminder: bool) {
        for alert in alerts {
            self.events += 1;
            let entry = self
                .entries
                .entry(alert.key())
                .or_insert_with(|| DigestEntry {
                    name: alert.name.clone(),
                    severity: alert.severity,
                    new: false,
                    reminder: false,
                    resolution_of_earlier: false,
                    status: alert.status,
                });
            match alert.status {
                Status::Firing if reminder => entry.reminder = true,
                Status::Firing => entry.new = true,
                Status::Resolved if !entry.new => entry.resolution_of_earlier = true,
                Status::Resolved => {}
            }
            entry.status = alert.status;
        }
    }

    /// Distinct alerts folded.
    pub fn count(&self) -> u64 {
        self.entries.len() as u64
    }

    fn counting(&self, pred: impl Fn(&DigestEntry) -> bool) -> u64 {
        self.entries.values().filter(|e| pred(e)).count() as u64
    }

    /// Alerts announced here for the first time.
    pub fn new_alerts(&self) -> u64 {
        self.counting(|e| e.new)
    }

    /// Of [`Digest::new_alerts`], those that have resolved since (fired and resolved inside
    /// this digest: counted once).
    pub fn since_resolved(&self) -> u64 {
        self.counting(|e| e.new && e.status == Status::Resolved)
    }

    /// Alerts announced before whose resolution is folded here.
    pub fn resolutions(&self) -> u64 {
        self.counting(|e| e.resolution_of_earlier)
    }

    /// Still-firing alerts whose reminder is folded here (and nothing newer).
    pub fn reminders(&self) -> u64 {
        self.counting(|e| e.reminder && !e.new && !e.resolution_of_earlier)
    }

    /// (alert name, severity, distinct alerts), alphabetically by name then severity.
    pub fn by_name(&self) -> Vec<(String, Severity, u64)> {
        let mut counts: BTreeMap<(&str, Severity), u64> = BTreeMap::new();
        for e in self.entries.values() {
            *counts.entry((e.name.as_str(), e.severity)).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|((name, severity), n)| (name.to_owned(), severity, n))
            .collect()
    }
}

/// What one message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Alerts of one group, all with the same status.
    Alerts {
        status: Status,
        /// Still firing, announced before: `repeat_interval` has passed.
        reminder: bool,
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
    /// How many received alert events this message accounts for.
    pub fn covers(&self) -> u64 {
        match &self.notice {
            Notice::Alerts { alerts, .. } => alerts.len() as u64,
            Notice::Digest(d) => d.events,
        }
    }
}

/// What happened to one alert handed to [`Storm::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Buffered,
    /// Still firing past `repeat_interval`: buffered as a reminder.
    Reminder,
    Duplicate,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StormStats {
    pub received: u64,
    pub deduplicated: u64,
    pub reminders: u64,
    pub messages: u64,
    pub digests: u64,
    /// Chat posts reported sent ([`Storm::posted`]).
    pub posts: u64,
    /// Alerts listed individually in sent messages.
    pub alerts_in_messages: u64,
    /// Alert events counted in sent digests.
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
    /// When recent posts went out.
    sent: VecDeque<Millis>,
    queue: VecDeque<Queued>,
    queued_messages: usize,
    /// Chat posts released but not reported sent yet.
    unsent: u32,
    /// A post handed to the sender and not reported sent yet ([`Storm::sending`]).
    in_flight: bool,
}

struct Buffer {
    due: Millis,
    alerts: Vec<Alert>,
}

#[derive(Clone, Copy)]
struct Seen {
    status: Status,
    /// Last sighting.
    at: Millis,
    /// Last announcement (first sighting or reminder).
    announced: Millis,
}

/// (destination, status, reminder, group key)
type GroupId = (Destination, Status, bool, String);

pub struct Storm {
    config: StormConfig,
    group_wait: Millis,
    dedup_window: Millis,
    repeat_interval: Millis,
    channel_window: Millis,
    buffers: BTreeMap<GroupId, Buffer>,
    dests: BTreeMap<Destination, DestState>,
    global: VecDeque<Millis>,
    /// Chat posts released and not reported sent, across channels (they hold global slots).
    unsent_total: u32,
    /// Posts being sent now, across channels.
    in_flight_total: u32,
    seen: HashMap<(Destination, AlertKey), Seen>,
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
            repeat_interval: ms(config.repeat_interval),
            channel_window: ms(config.channel_window),
            config,
            buffers: BTreeMap::new(),
            dests: BTreeMap::new(),
            global: VecDeque::new(),
            unsent_total: 0,
            in_flight_total: 0,
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

    /// How long an entry of `status` is remembered after its last sighting.
    fn horizon(&self, status: Status) -> Millis {
        match status {
            Status::Firing => self.repeat_interval.saturating_add(self.dedup_window),
            Status::Resolved => self.dedup_window,
        }
    }

    /// Takes one alert for one destination.
    pub fn ingest(&mut self, now: Millis, destination: &Destination, alert: Alert) -> Ingested {
        self.stats.received += 1;
        let seen_key = (destination.clone(), alert.key());
        let repeat_interval = self.repeat_interval;
        let horizon = self.horizon(alert.status);
        let mut reminder = false;
        if let Some(seen) = self.seen.get_mut(&seen_key)
            && seen.status == alert.status
            && now.saturating_sub(seen.at) < horizon
        {
            // A repeat refreshes the window; only `repeat_interval` brings a reminder.
            seen.at = now;
            if alert.status == Status::Resolved
                || now.saturating_sub(seen.announced) < repeat_interval
            {
                self.stats.deduplicated += 1;
                return Ingested::Duplicate;
            }
            seen.announced = now;
            reminder = true;
        } else {
            self.seen.insert(
                seen_key,
                Seen {
                    status: alert.status,
                    at: now,
                    announced: now,
                },
            );
        }
        self.stats.pending += 1;
        if reminder {
            self.stats.reminders += 1;
        }
        let id = (
            destination.clone(),
            alert.status,
            reminder,
            self.group_key(&alert),
        );
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
        if reminder {
            Ingested::Reminder
        } else {
            Ingested::Buffered
        }
    }

    fn enqueue(
        &mut self,
        now: Millis,
        (destination, status, reminder, group): GroupId,
        alerts: Vec<Alert>,
    ) {
        let cap = self.config.queue_per_destination;
        let dest = self.dests.entry(destination).or_default();
        if dest.queued_messages < cap {
            dest.queued_messages += 1;
            dest.queue.push_back(Queued::Message(Notice::Alerts {
                status,
                reminder,
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
            Some(digest) => digest.add(&alerts, reminder),
            None => {
                let mut digest = Digest {
                    since: now,
                    ..Digest::default()
                };
                digest.add(&alerts, reminder);
                dest.queue.push_back(Queued::Digest(digest));
            }
        }
    }

    fn prune_window(sent: &mut VecDeque<Millis>, now: Millis, window: Millis) {
        while sent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            sent.pop_front();
        }
    }

    /// Moves due groups to their queues and returns the messages the rate limits allow now,
    /// taking one per destination in turn so a busy channel cannot starve the others.
    ///
    /// A chat channel gets one message at a time; the caller reports how many posts it
    /// became ([`Storm::split`]) and each post once sent ([`Storm::posted`]). Webhook
    /// messages are one post each, counted now.
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
        Self::prune_window(&mut self.global, now, 1000);
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            for (destination, dest) in self.dests.iter_mut() {
                if dest.queue.is_empty() || dest.unsent > 0 {
                    continue;
                }
                Self::prune_window(&mut dest.sent, now, window);
                if dest.sent.len() >= per_dest {
                    continue;
                }
                let channel = destination.is_channel();
                if channel && self.global.len() + self.unsent_total as usize >= global_limit {
                    continue;
                }
                let Some(item) = dest.queue.pop_front() else {
                    continue;
                };
                if channel {
                    // Stamped when the caller reports each post sent.
                    dest.unsent = 1;
                    self.unsent_total += 1;
                } else {
                    dest.sent.push_back(now);
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
            let (firing, resolved) = (self.horizon(Status::Firing), self.horizon(Status::Resolved));
            self.seen.retain(|_, s| {
                let horizon = match s.status {
                    Status::Firing => firing,
                    Status::Resolved => resolved,
                };
                now.saturating_sub(s.at) < horizon
            });
            self.last_prune = now;
        }
        out
    }

    /// The chat message just released to `destination` became `posts` posts (at least one).
    pub fn split(&mut self, destination: &Destination, posts: u32) {
        if let Some(dest) = self.dests.get_mut(destination) {
            self.unsent_total = (self.unsent_total - dest.unsent).saturating_add(posts.max(1));
            dest.unsent = posts.max(1);
        }
    }

    /// Whether a post to `destination` may start now: none of its posts is being sent, and
    /// its window and the global one (counting posts being sent) have room.
    pub fn may_post(&mut self, destination: &Destination, now: Millis) -> bool {
        let window = self.channel_window;
        let per_dest = self.config.channel_messages as usize;
        Self::prune_window(&mut self.global, now, 1000);
        let global_free = self.global.len() + (self.in_flight_total as usize)
            < self.config.global_per_second as usize;
        self.dests.get_mut(destination).is_some_and(|dest| {
            Self::prune_window(&mut dest.sent, now, window);
            !dest.in_flight && dest.sent.len() < per_dest && global_free
        })
    }

    /// A post to `destination` was handed to its sender: no other post of it starts, and
    /// no deadline is due for it, until [`Storm::posted`] reports it.
    pub fn sending(&mut self, destination: &Destination) {
        if let Some(dest) = self.dests.get_mut(destination)
            && !dest.in_flight
        {
            dest.in_flight = true;
            self.in_flight_total += 1;
        }
    }

    /// One post to `destination` finished (delivered or not) at `at`: it counts from then.
    pub fn posted(&mut self, destination: &Destination, at: Millis) {
        if let Some(dest) = self.dests.get_mut(destination) {
            if dest.in_flight {
                dest.in_flight = false;
                self.in_flight_total = self.in_flight_total.saturating_sub(1);
            }
            if dest.unsent > 0 {
                dest.unsent -= 1;
                self.unsent_total -= 1;
            }
            dest.sent.push_back(at);
            self.global.push_back(at);
            self.stats.posts += 1;
        }
    }

    /// The rest of the message released to `destination` will not be posted (a send failed).
    pub fn abandon(&mut self, destination: &Destination) {
        if let Some(dest) = self.dests.get_mut(destination) {
            self.unsent_total -= dest.unsent;
            dest.unsent = 0;
        }
    }

    /// When the next post to `dest` may start: now (0) when the window has room.
    fn slot_free(&self, dest: &DestState, channel: bool) -> Millis {
        let per_dest = self.config.channel_messages as usize;
        let global_limit = self.config.global_per_second as usize;
        let dest_free = if dest.sent.len() >= per_dest {
            dest.sent[dest.sent.len() - per_dest].saturating_add(self.channel_window)
        } else {
            0
        };
        if channel && self.global.len() >= global_limit {
            let global_free = self.global[self.global.len() - global_limit].saturating_add(1000);
            dest_free.max(global_free)
        } else {
            dest_free
        }
    }

    /// When [`Storm::poll`] or a pending post may next have something to send (`None`:
    /// nothing is waiting).
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut next = self.buffers.values().map(|b| b.due).min();
        let global_limit = self.config.global_per_second as usize;
        let reserved = self.global.len() < global_limit
            && self.global.len() + self.unsent_total as usize >= global_limit;
        for (destination, dest) in &self.dests {
            if dest.queue.is_empty() && dest.unsent == 0 {
                continue;
            }
            // Its sender reports back when the post is out; that wakes the driver.
            if dest.in_flight {
                continue;
            }
            // Held only by posts other channels have in flight: their own deadlines wake us.
            if dest.unsent == 0 && destination.is_channel() && reserved {
                continue;
            }
            let at = self.slot_free(dest, destination.is_channel());
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next
    }

    /// Alert events buffered or queued for a destination (for `/alerts list`).
    pub fn pending_for(&self, destination: &Destination) -> u64 {
        let buffered: u64 = self
            .buffers
            .iter()
            .filter(|((d, _, _, _), _)| d == destination)
            .map(|(_, b)| b.alerts.len() as u64)
            .sum();
        let queued: u64 = self.dests.get(destination).map_or(0, |d| {
            d.queue
                .iter()
                .map(|q| match q {
                    Queued::Message(Notice::Alerts { alerts, .. }) => alerts.len() as u64,
                    Queued::Message(Notice::Digest(d)) | Queued::Digest(d) => d.events,
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
            ends_at: None,
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

    /// Polls at `now` and reports every released chat message sent as one post at `now`.
    fn poll_sent(storm: &mut Storm, now: Millis) -> Vec<Outgoing> {
        let mut all = Vec::new();
        loop {
            let out = storm.poll(now);
            if out.is_empty() {
                return all;
            }
            for o in &out {
                if o.destination.is_channel() {
                    storm.posted(&o.destination, now);
                }
            }
            all.extend(out);
        }
    }

    /// Runs the clock to `until`, waking only at the deadlines the storm asks for; each chat
    /// message is one post, sent instantly.
    fn run_until(storm: &mut Storm, from: Millis, until: Millis) -> Vec<(Millis, Outgoing)> {
        let mut now = from;
        let mut sent = Vec::new();
        loop {
            for o in storm.poll(now) {
                if o.destination.is_channel() {
                    storm.posted(&o.destination, now);
                }
                sent.push((now, o));
            }
            match storm.next_deadline() {
                Some(next) if next <= until => now = next.max(now + 1),
                _ => return sent,
            }
        }
    }

    /// Asserts no `limit + 1` posts fall within one `window`.
    fn assert_rate(times: &[Millis], limit: usize, window: Millis, what: &str) {
        for w in times.windows(limit + 1) {
            assert!(
                w[limit] - w[0] >= window,
                "{} posts within {window} ms in {what}: {w:?}",
                limit + 1
            );
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
        let out = poll_sent(&mut storm, 1000);
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
        let out = poll_sent(&mut storm, 1500);
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
        let first = poll_sent(&mut storm, 1000);
        assert_eq!(first.len(), 1);
        assert_eq!(
            storm.ingest(2000, &d, alert("A", "x", Status::Firing)),
            Ingested::Duplicate
        );
        assert_eq!(
            storm.ingest(3000, &d, alert("A", "x", Status::Resolved)),
            Ingested::Buffered
        );
        let resolved = poll_sent(&mut storm, 4000);
        assert!(matches!(
            &resolved[0].notice,
            Notice::Alerts {
                status: Status::Resolved,
                ..
            }
        ));
        assert_eq!(
            storm.ingest(5000, &d, alert("A", "x", Status::Resolved)),
            Ingested::Duplicate
        );
        // Firing again after it resolved is news.
        assert_eq!(
            storm.ingest(6000, &d, alert("A", "x", Status::Firing)),
            Ingested::Buffered
        );
        // Another channel is deduplicated independently.
        assert_eq!(
            storm.ingest(10, &chan("other"), alert("A", "x", Status::Firing)),
            Ingested::Buffered
        );
        assert_eq!(storm.stats().deduplicated, 3);
        assert!(storm.stats().balanced());
    }

    /// Issue 12, point 10: two alerts whose 32-bit short ids collide are both announced.
    #[test]
    fn colliding_short_ids_are_two_alerts() {
        let (a, b) = crate::alerts::alert::colliding_fingerprints();
        let (a, b) = (
            alert("PodDown", &a, Status::Firing),
            alert("PodDown", &b, Status::Firing),
        );
        assert_eq!(a.id(), b.id());
        let mut storm = Storm::new(config());
        let d = chan("shop");
        assert_eq!(storm.ingest(0, &d, a), Ingested::Buffered);
        assert_eq!(storm.ingest(0, &d, b), Ingested::Buffered);
        let out = poll_sent(&mut storm, 1000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].covers(), 2);
        assert_eq!(storm.stats().deduplicated, 0);
    }

    /// Issue 12, point 12: a storm longer than the dedup window, alerts repeating every
    /// 5 min + 1 s (Alertmanager's group_interval): each is announced once; a reminder,
    /// marked as one, comes after `repeat_interval`; an alert gone quiet is forgotten.
    #[test]
    fn repeats_refresh_the_window_and_remind_after_the_repeat_interval() {
        let mut storm = Storm::new(StormConfig {
            group_wait: Duration::ZERO,
            queue_per_destination: 1_000,
            channel_messages: 1_000,
            global_per_second: 1_000,
            ..StormConfig::default()
        });
        let d = chan("ml");
        let step = 301_000; // just over the 5 min window
        let mut announced = 0;
        let mut reminders = Vec::new();
        let mut t = 0;
        while t <= 4 * 3600 * 1000 + step {
            for i in 0..60 {
                storm.ingest(
                    t,
                    &d,
                    alert(&format!("A{i}"), &i.to_string(), Status::Firing),
                );
            }
            for o in poll_sent(&mut storm, t) {
                match o.notice {
                    Notice::Alerts {
                        reminder: false,
                        alerts,
                        ..
                    } => announced += alerts.len(),
                    Notice::Alerts {
                        reminder: true,
                        alerts,
                        ..
                    } => reminders.push((t, alerts.len())),
                    Notice::Digest(_) => panic!("no digest expected"),
                }
            }
            t += step;
        }
        assert_eq!(announced, 60, "each alert announced once");
        let first_reminder = reminders.first().map(|r| r.0);
        assert!(
            first_reminder.is_some_and(|at| at >= 4 * 3600 * 1000),
            "{reminders:?}"
        );
        assert_eq!(reminders.iter().map(|r| r.1).sum::<usize>(), 60);
        assert_eq!(storm.stats().reminders, 60);
        // Quiet for longer than repeat_interval + dedup_window: forgotten, news again.
        let later = t + 4 * 3600 * 1000 + 300_000;
        storm.poll(later);
        assert_eq!(
            storm.ingest(later, &d, alert("A0", "0", Status::Firing)),
            Ingested::Buffered
        );
        assert!(storm.stats().balanced());
    }

    /// Issue 12, point 11: a digest counts distinct alerts; one that fired and resolved in
    /// it counts once (and as since resolved); a resolution of an alert announced before is
    /// told apart; its lines are alphabetical.
    #[test]
    fn digests_count_distinct_alerts() {
        let mut storm = Storm::new(StormConfig {
            group_wait: Duration::ZERO,
            queue_per_destination: 1,
            channel_messages: 1,
            ..StormConfig::default()
        });
        let d = chan("ml");
        // Announced on its own; its resolution lands in the digest.
        storm.ingest(0, &d, alert("Early", "e", Status::Firing));
        assert_eq!(poll_sent(&mut storm, 0).len(), 1);
        // Fills the queue (the window is full) so what follows is folded.
        storm.ingest(10, &d, alert("Blocker", "b", Status::Firing));
        assert!(storm.poll(10).is_empty(), "the window is full");
        for (name, f) in [
            ("Zeta", "z1"),
            ("Zeta", "z2"),
            ("Alpha", "a1"),
            ("Mid", "m1"),
        ] {
            storm.ingest(11, &d, alert(name, f, Status::Firing));
        }
        storm.ingest(20, &d, alert("Zeta", "z1", Status::Resolved));
        storm.ingest(20, &d, alert("Alpha", "a1", Status::Resolved));
        storm.ingest(20, &d, alert("Early", "e", Status::Resolved));
        let sent = run_until(&mut storm, 11, 60_000);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let Notice::Digest(digest) = &sent[1].1.notice else {
            panic!("{sent:?}")
        };
        assert_eq!(digest.events, 7);
        assert_eq!(digest.count(), 5);
        assert_eq!(digest.new_alerts(), 4);
        assert_eq!(digest.since_resolved(), 2);
        assert_eq!(digest.resolutions(), 1);
        assert_eq!(digest.reminders(), 0);
        let names: Vec<(String, u64)> = digest
            .by_name()
            .into_iter()
            .map(|(n, _, c)| (n, c))
            .collect();
        assert_eq!(
            names,
            [
                ("Alpha".to_string(), 1),
                ("Early".to_string(), 1),
                ("Mid".to_string(), 1),
                ("Zeta".to_string(), 2)
            ]
        );
        assert!(storm.stats().balanced());
        assert_eq!(storm.stats().folded, 7);
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
        // 20 groups of 5: 5 messages queued, the other 15 groups folded into one digest;
        // 4 posts in the first window, the fifth message and the digest in the next.
        assert_eq!(sent.len(), 6, "{sent:?}");
        let times: Vec<Millis> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [1000, 1001, 1002, 1003, 6000, 6001]);
        let (_, digest) = &sent[5];
        match &digest.notice {
            Notice::Digest(d) => {
                assert_eq!(d.count(), 75);
                assert_eq!(d.by_name().iter().map(|e| e.2).sum::<u64>(), 75);
                assert_eq!(d.new_alerts(), 75);
                assert_eq!(d.since_resolved(), 0);
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
            assert_rate(&times, 4, 5000, &format!("c{c}"));
        }
        let times: Vec<Millis> = sent.iter().map(|(t, _)| *t).collect();
        assert_rate(&times, 8, 1000, "all channels");
        assert!(storm.stats().balanced());
    }

    /// Issue 12, point 13: a message that becomes 3 Discord posts takes 3 of the 4 slots;
    /// posts count from when they were sent, not when the message was released.
    #[test]
    fn limits_count_posts_stamped_when_sent() {
        let mut storm = Storm::new(StormConfig {
            group_wait: Duration::ZERO,
            ..StormConfig::default()
        });
        let d = chan("ml");
        for i in 0..3 {
            storm.ingest(
                0,
                &d,
                alert(&format!("Long{i}"), &i.to_string(), Status::Firing),
            );
        }
        let first = storm.poll(0);
        assert_eq!(first.len(), 1, "one message at a time per channel");
        storm.split(&d, 3);
        assert!(storm.poll(0).is_empty(), "its posts are not out yet");
        // A slow Discord: the posts finish at 1.0, 1.5 and 2.0 s.
        for at in [1000, 1500, 2000] {
            assert!(storm.may_post(&d, at));
            storm.posted(&d, at);
        }
        let second = storm.poll(2000);
        assert_eq!(second.len(), 1);
        storm.split(&d, 2);
        assert!(storm.may_post(&d, 2100));
        storm.posted(&d, 2100);
        // Four posts in the window: the next waits for the first post's stamp + 5 s (6.0 s,
        // not 5.0 s, when it was released).
        assert!(!storm.may_post(&d, 5500));
        assert_eq!(storm.next_deadline(), Some(6000));
        assert!(storm.may_post(&d, 6000));
        storm.posted(&d, 6000);
        assert!(storm.poll(6000).is_empty(), "the window is full again");
        assert_eq!(storm.next_deadline(), Some(6500));
        let third = storm.poll(6500);
        assert_eq!(third.len(), 1);
        storm.posted(&d, 6500);
        assert_eq!(storm.stats().posts, 6);
        assert_eq!(storm.next_deadline(), None);
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
        storm.posted(&out[0].destination, 0);
        assert_eq!(storm.next_deadline(), Some(1000));
        assert_eq!(storm.poll(1000).len(), 1);
    }

    #[test]
    fn a_full_group_leaves_without_waiting() {
        let mut storm = Storm::new(config());
        for i in 0..25 {
            storm.ingest(0, &chan("x"), alert("Same", &i.to_string(), Status::Firing));
        }
        let out = poll_sent(&mut storm, 0);
        assert_eq!(out.len(), 2, "two full messages of 10; 5 still wait");
        assert_eq!(storm.pending_for(&chan("x")), 5);
        assert_eq!(poll_sent(&mut storm, 1000).len(), 1);
    }
}
