//! The alert tables in the state database: acknowledgements and silences, kept across
//! restarts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::alert::AlertKey;
use super::silence::{Matcher, Silence};
use crate::args;
use crate::state::{Db, StateError};

/// This component's tables (append only; see [`Db::ensure_schema`]).
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: silences survive restarts (acks live with the active alerts, in memory).
    "CREATE TABLE alerts_silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        alertmanager_id TEXT,
        created_at TEXT NOT NULL
    );",
    // 2: acknowledgements survive restarts (until the alert resolves). `alert_id` holds the
    // alert's key (`source:fingerprint`); rows from before keys (short ids) match nothing
    // and are forgotten after `forget_after`.
    "CREATE TABLE alerts_acks (
        alert_id TEXT PRIMARY KEY,
        acked_by TEXT NOT NULL,
        acked_at TEXT NOT NULL
    );",
    // 3: which replica announces an alert's status (see `claims`): used on PostgreSQL.
    "CREATE TABLE alerts_claims (
        alert_key TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        claimed_by TEXT NOT NULL
    );",
];

/// This component, as `deckhand state migrate` and [`Db::ensure`] know it.
pub(crate) const COMPONENT: crate::state::Component = crate::state::Component {
    name: "alerts",
    migrations: MIGRATIONS,
};

pub(super) fn load_acks(db: &Db) -> Result<HashMap<AlertKey, (String, DateTime<Utc>)>, StateError> {
    let rows = db.query("SELECT alert_id, acked_by, acked_at FROM alerts_acks", &[])?;
    let mut acks = HashMap::new();
    for row in rows {
        let (id, by, at): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let at = DateTime::parse_from_rfc3339(&at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        acks.insert(AlertKey::from_stored(id), (by, at));
    }
    Ok(acks)
}

/// Silences still in force, and the highest silence number used.
pub(super) fn load_silences(db: &Db) -> Result<(Vec<Silence>, u64), StateError> {
    let rows = db.query(
        "SELECT id, matchers, ends_at, created_by, comment, alertmanager_id FROM alerts_silences",
        &[],
    )?;
    let now = Utc::now();
    let mut silences = Vec::new();
    let mut highest = 0;
    for row in rows {
        let (id, matchers, ends_at, created_by, comment): (String, String, String, String, String) = (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        );
        let alertmanager_id: Option<String> = row.get(5)?;
        highest = highest.max(id.trim_start_matches('s').parse().unwrap_or(0));
        let (Ok(matchers), Ok(ends_at)) = (
            Matcher::parse_list(&matchers),
            DateTime::parse_from_rfc3339(&ends_at),
        ) else {
            tracing::warn!(%id, "unreadable stored silence skipped");
            continue;
        };
        let silence = Silence {
            id,
            matchers,
            ends_at: ends_at.with_timezone(&Utc),
            created_by,
            comment,
            alertmanager_id,
        };
        if silence.active(now) {
            silences.push(silence);
        }
    }
    Ok((silences, highest))
}

pub(super) fn save_ack(
    db: &Db,
    key: &AlertKey,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), StateError> {
    db.execute(
        "INSERT INTO alerts_acks (alert_id, acked_by, acked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (alert_id) DO UPDATE SET acked_by = excluded.acked_by,
         acked_at = excluded.acked_at",
        args![key.as_str(), by, at.to_rfc3339()],
    )?;
    Ok(())
}

pub(super) fn delete_ack(db: &Db, key: &AlertKey) -> Result<(), StateError> {
    db.execute(
        "DELETE FROM alerts_acks WHERE alert_id = ?1",
        args![key.as_str()],
    )?;
    Ok(())
}

pub(super) fn save_silence(db: &Db, silence: &Silence) -> Result<(), StateError> {
    db.execute(
        "INSERT INTO alerts_silences (id, matchers, ends_at, created_by, comment, alertmanager_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            &silence.id,
            silence.describe(),
            silence.ends_at.to_rfc3339(),
            &silence.created_by,
            &silence.comment,
            &silence.alertmanager_id,
            crate::state::now(),
        ],
    )?;
    Ok(())
}

pub(super) fn delete_silence(db: &Db, id: &str) -> Result<(), StateError> {
    db.execute("DELETE FROM alerts_silences WHERE id = ?1", args![id])?;
    Ok(())
}
