//! Claims of alert events in a shared state database. Two replicas receiving the same
//! webhooks (an HA Alertmanager pair posts to both) each keep their own `/alerts` book, but
//! only the replica that claims an alert's status first hands it to storm control; the other
//! drops it ([`DropStage::Replica`](super::metrics::DropStage)). A claim lasts as storm
//! control's own memory does: `repeat_interval` for a firing alert (then the next sighting
//! may bring a reminder), `dedup_window` for a resolved one; a change of status is always a
//! new claim. Used on PostgreSQL only: a SQLite file belongs to one replica, whose storm
//! control already drops repeats.

use chrono::{DateTime, Utc};

use super::Status;
use super::alert::AlertKey;
use super::storm::StormConfig;
use crate::args;
use crate::state::{Backend, Db, StateError, timestamp};

pub(super) struct Claims {
    db: Db,
    firing: chrono::Duration,
    resolved: chrono::Duration,
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    }
}

impl Claims {
    /// Claims on `db` when it is shared (PostgreSQL); `None` otherwise.
    pub(super) fn shared(db: Option<&Db>, storm: &StormConfig) -> Option<Claims> {
        let db = db.filter(|db| db.backend() == Backend::Postgres)?;
        let lasting = |d: std::time::Duration| {
            chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
        };
        Some(Claims {
            db: db.clone(),
            firing: lasting(storm.repeat_interval),
            resolved: lasting(storm.dedup_window),
        })
    }

    /// Claims each `(key, status)` for this replica; `true` where this replica won. One
    /// transaction, keys taken in sorted order so two replicas' batches cannot deadlock.
    pub(super) fn claim(
        &self,
        events: &[(AlertKey, Status)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StateError> {
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| events[a].0.as_str().cmp(events[b].0.as_str()));
        let me = crate::state::replica_name();
        self.db.transaction(|tx| {
            let mut won = vec![false; events.len()];
            // A repeat inside the batch goes where its first went (storm control drops it).
            let mut decided: std::collections::HashMap<(&str, Status), bool> = Default::default();
            for i in order {
                let (key, status) = &events[i];
                if let Some(&first) = decided.get(&(key.as_str(), *status)) {
                    won[i] = first;
                    continue;
                }
                let lasts = match status {
                    Status::Firing => self.firing,
                    Status::Resolved => self.resolved,
                };
                let stale = now.checked_sub_signed(lasts).unwrap_or(now);
                won[i] = tx
                    .query_opt(
                        "INSERT INTO alerts_claims (alert_key, status, claimed_at, claimed_by)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (alert_key) DO UPDATE SET status = excluded.status,
                            claimed_at = excluded.claimed_at, claimed_by = excluded.claimed_by
                         WHERE alerts_claims.status <> excluded.status
                            OR alerts_claims.claimed_at < ?5
                         RETURNING claimed_by",
                        args![
                            key.as_str(),
                            status_text(*status),
                            timestamp(now),
                            me,
                            timestamp(stale)
                        ],
                    )?
                    .is_some();
                decided.insert((key.as_str(), *status), won[i]);
            }
            Ok(won)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alerts::Source;

    #[test]
    fn the_first_replica_claims_each_status_and_a_claim_lasts_as_storm_memory_does() {
        let pg = crate::state::testing::postgres();
        let db = &pg.db;
        db.ensure(&crate::alerts::store::COMPONENT).unwrap();
        let storm = StormConfig {
            repeat_interval: Duration::from_secs(4 * 3600),
            dedup_window: Duration::from_secs(300),
            ..StormConfig::default()
        };
        let (a, b) = (
            Claims::shared(Some(db), &storm).unwrap(),
            Claims::shared(Some(db), &storm).unwrap(),
        );
        let key = |f: &str| AlertKey::new(Source::Alertmanager, f);
        let t0 = Utc::now();
        let firing = [(key("f1"), Status::Firing), (key("f2"), Status::Firing)];
        assert_eq!(a.claim(&firing, t0).unwrap(), [true, true]);
        assert_eq!(b.claim(&firing, t0).unwrap(), [false, false]);
        // A repeat inside one batch follows its first.
        let twice = [(key("f3"), Status::Firing), (key("f3"), Status::Firing)];
        assert_eq!(b.claim(&twice, t0).unwrap(), [true, true]);
        // Resolved: a new claim; then firing again: a new claim too.
        let resolved = [(key("f1"), Status::Resolved)];
        assert_eq!(b.claim(&resolved, t0).unwrap(), [true]);
        assert_eq!(a.claim(&resolved, t0).unwrap(), [false]);
        assert_eq!(a.claim(&firing[..1], t0).unwrap(), [true]);
        // Still firing past repeat_interval: claimable again (the reminder's turn).
        let later = t0 + chrono::Duration::hours(4) + chrono::Duration::seconds(1);
        assert_eq!(b.claim(&firing[1..], later).unwrap(), [true]);
        assert_eq!(a.claim(&firing[1..], later).unwrap(), [false]);
        assert!(Claims::shared(Some(&crate::state::Db::in_memory().unwrap()), &storm).is_none());
    }
}
