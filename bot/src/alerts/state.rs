//! The pipeline's shared state: active alerts, silences and acks (the "book"), the queue into
//! the driver, and what `/alerts` reads and changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::alert::AlertKey;
use super::metrics::{AlertMetrics, DropStage};
use super::route::Destination;
use super::silence::{Matcher, Silence};
use super::storm::StormStats;
use super::{Alert, AlertsConfig, AlertsError, Source, silence_sync, store};
use crate::state::Db;

/// What `/alerts list` shows about an active alert.
#[derive(Debug, Clone)]
pub struct Record {
    pub alert: Alert,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub repeats: u64,
    pub acked_by: Option<String>,
    pub destinations: Vec<Destination>,
}

#[derive(Default)]
pub(super) struct Book {
    pub(super) active: BTreeMap<AlertKey, Record>,
    pub(super) silences: Vec<Silence>,
    pub(super) next_silence: u64,
    pub(super) last_forget: Option<DateTime<Utc>>,
    /// Alert key → (who, when); outlives the in-memory record across restarts.
    pub(super) acks: HashMap<AlertKey, (String, DateTime<Utc>)>,
}

impl Book {
    /// Drops active alerts not seen for `forget_after` (at most once a minute).
    pub(super) fn forget_stale(&mut self, now: DateTime<Utc>, forget_after: Duration) {
        if self
            .last_forget
            .is_some_and(|t| now - t < chrono::Duration::minutes(1))
        {
            return;
        }
        self.last_forget = Some(now);
        let horizon = chrono::Duration::from_std(forget_after).unwrap_or(chrono::Duration::days(1));
        self.active.retain(|_, r| now - r.last_seen < horizon);
        self.silences.retain(|s| s.active(now));
        let active = &self.active;
        self.acks
            .retain(|id, (_, at)| active.contains_key(id) || now - *at < horizon);
    }
}

impl Book {
    /// The active alert a person means by `id` (short id, long id or fingerprint).
    fn find(&self, id: &str) -> Result<AlertKey, AlertsError> {
        let matches: Vec<(&AlertKey, &Record)> = self
            .active
            .iter()
            .filter(|(_, r)| {
                r.alert.id() == id || r.alert.long_id() == id || r.alert.fingerprint == id
            })
            .collect();
        match matches.as_slice() {
            [] => Err(AlertsError::UnknownAlert(id.to_owned())),
            [(key, _)] => Ok((*key).clone()),
            several => Err(AlertsError::AmbiguousAlert {
                id: id.to_owned(),
                candidates: several
                    .iter()
                    .map(|(_, r)| {
                        format!(
                            "{} ({} {})",
                            r.alert.long_id(),
                            r.alert.name,
                            r.alert.scope()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Shared by the receiver, the driver and the commands.
pub struct AlertsState {
    pub(super) config: AlertsConfig,
    pub metrics: AlertMetrics,
    pub(super) tx: mpsc::Sender<Vec<Alert>>,
    pub(super) book: Mutex<Book>,
    pub(super) stats: Mutex<StormStats>,
    pub(super) http: reqwest::Client,
    pub(super) db: Option<Db>,
    /// Who announces what, when the state database is shared by replicas.
    pub(super) claims: Option<super::claims::Claims>,
}

/// Why [`AlertsState::submit`] refused a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the alert queue is full")]
pub struct QueueFull;

impl AlertsState {
    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    pub(super) fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Storm control's counters as of its last step.
    pub fn storm_stats(&self) -> StormStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Hands alerts to the pipeline without waiting; counts them received (or dropped).
    pub fn submit(&self, alerts: Vec<Alert>) -> Result<usize, QueueFull> {
        let n = alerts.len();
        if n == 0 {
            return Ok(0);
        }
        let mut per_source = [0u64; 4];
        for a in &alerts {
            per_source[a.source.index()] += 1;
        }
        match self.tx.try_send(alerts) {
            Ok(()) => {
                for source in Source::ALL {
                    if per_source[source.index()] > 0 {
                        self.metrics.received(source, per_source[source.index()]);
                    }
                }
                Ok(n)
            }
            Err(_) => {
                self.metrics.dropped(DropStage::QueueFull, n as u64);
                Err(QueueFull)
            }
        }
    }

    /// Active alerts, most severe and newest first.
    pub fn active(&self) -> Vec<Record> {
        let horizon = chrono::Duration::from_std(self.config.forget_after)
            .unwrap_or(chrono::Duration::days(1));
        let now = Utc::now();
        let mut records: Vec<Record> = self
            .book()
            .active
            .values()
            .filter(|r| now - r.last_seen < horizon)
            .cloned()
            .collect();
        records.sort_by(|a, b| {
            a.alert
                .severity
                .cmp(&b.alert.severity)
                .then(b.last_seen.cmp(&a.last_seen))
        });
        records
    }

    pub fn silences(&self) -> Vec<Silence> {
        let now = Utc::now();
        self.book()
            .silences
            .iter()
            .filter(|s| s.active(now))
            .cloned()
            .collect()
    }

    /// Marks an active alert acknowledged: its repeats stop notifying until it resolves.
    /// `id` is the short id of the message (when no other active alert shares it), the long
    /// id of an Ack button, or the source's fingerprint.
    pub fn ack(&self, id: &str, by: &str) -> Result<Record, AlertsError> {
        let mut book = self.book();
        let key = book.find(id)?;
        let now = Utc::now();
        let Some(record) = book.active.get_mut(&key) else {
            return Err(AlertsError::UnknownAlert(id.to_owned()));
        };
        record.acked_by = Some(by.to_owned());
        let record = record.clone();
        book.acks.insert(key.clone(), (by.to_owned(), now));
        if let Some(db) = &self.db {
            store::save_ack(db, &key, by, now)?;
        }
        Ok(record)
    }

    /// Adds a Deckhand silence and, when `[alerts.alertmanager]` is set, the same silence in
    /// Alertmanager (API v2). Returns the silence and, if it failed, why Alertmanager's did.
    pub async fn silence(
        &self,
        matchers: &str,
        duration: Duration,
        by: &str,
        comment: &str,
    ) -> Result<(Silence, Option<AlertsError>), AlertsError> {
        let matchers = Matcher::parse_list(matchers)?;
        let now = Utc::now();
        let ends_at =
            now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(2));
        let mut silence = Silence {
            id: String::new(),
            matchers,
            ends_at,
            created_by: by.to_owned(),
            comment: if comment.is_empty() {
                format!("silenced from chat by {by}")
            } else {
                comment.to_owned()
            },
            alertmanager_id: None,
        };
        let mut am_error = None;
        if let Some(api) = &self.config.alertmanager {
            match silence_sync::create(&self.http, api, &silence, now).await {
                Ok(id) => silence.alertmanager_id = Some(id),
                Err(e) => am_error = Some(e),
            }
        }
        let mut book = self.book();
        book.next_silence += 1;
        silence.id = format!("s{}", book.next_silence);
        if let Some(db) = &self.db {
            store::save_silence(db, &silence)?;
        }
        book.silences.retain(|s| s.active(now));
        book.silences.push(silence.clone());
        Ok((silence, am_error))
    }

    /// Lifts a silence early: Deckhand's, and its Alertmanager twin (expired through API v2).
    pub async fn unsilence(&self, id: &str) -> Result<(Silence, Option<AlertsError>), AlertsError> {
        let silence = {
            let mut book = self.book();
            let index = book
                .silences
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| AlertsError::UnknownSilence(id.to_owned()))?;
            book.silences.remove(index)
        };
        if let Some(db) = &self.db {
            store::delete_silence(db, id)?;
        }
        let mut am_error = None;
        if let (Some(api), Some(am_id)) = (&self.config.alertmanager, &silence.alertmanager_id) {
            am_error = silence_sync::expire(&self.http, api, am_id).await.err();
        }
        Ok((silence, am_error))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alerts::{Severity, Status};

    /// Issue 12, point 10: a short id two active alerts share is refused with both long ids;
    /// the long id (the Ack button's) and the fingerprint work.
    #[test]
    fn ambiguous_short_ids_are_refused_with_the_candidates() {
        let (a, b) = crate::alerts::alert::colliding_fingerprints();
        let now = Utc::now();
        let record = |f: &str| Record {
            alert: Alert {
                source: Source::Alertmanager,
                fingerprint: f.into(),
                status: Status::Firing,
                severity: Severity::Error,
                name: "PodDown".into(),
                summary: String::new(),
                labels: BTreeMap::new(),
                starts_at: None,
                ends_at: None,
                url: None,
            },
            first_seen: now,
            last_seen: now,
            repeats: 0,
            acked_by: None,
            destinations: Vec::new(),
        };
        let (ra, rb) = (record(&a), record(&b));
        let mut book = Book::default();
        book.active.insert(ra.alert.key(), ra.clone());
        book.active.insert(rb.alert.key(), rb.clone());
        let short = ra.alert.id();
        match book.find(&short) {
            Err(AlertsError::AmbiguousAlert { candidates, .. }) => {
                assert!(candidates.contains(&ra.alert.long_id()), "{candidates}");
                assert!(candidates.contains(&rb.alert.long_id()), "{candidates}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(book.find(&rb.alert.long_id()).unwrap(), rb.alert.key());
        assert_eq!(book.find(&a).unwrap(), ra.alert.key());
        assert!(matches!(
            book.find("ffffffff"),
            Err(AlertsError::UnknownAlert(_))
        ));
    }

    #[test]
    fn stale_active_alerts_are_forgotten() {
        let now = Utc::now();
        let record = |age_hours: i64| Record {
            alert: Alert {
                source: Source::Kubernetes,
                fingerprint: format!("f{age_hours}"),
                status: Status::Firing,
                severity: Severity::Error,
                name: "FailedScheduling".into(),
                summary: String::new(),
                labels: BTreeMap::new(),
                starts_at: None,
                ends_at: None,
                url: None,
            },
            first_seen: now - chrono::Duration::hours(age_hours),
            last_seen: now - chrono::Duration::hours(age_hours),
            repeats: 0,
            acked_by: None,
            destinations: Vec::new(),
        };
        let mut book = Book::default();
        let key = |f: &str| AlertKey::new(Source::Kubernetes, f);
        book.active.insert(key("old"), record(25));
        book.active.insert(key("new"), record(1));
        book.forget_stale(now, Duration::from_secs(24 * 3600));
        assert_eq!(book.active.keys().collect::<Vec<_>>(), [&key("new")]);
    }
}
