//! The audit log: one row per command, written when the command starts and closed when it ends,
//! plus one row per host service call a plugin makes (and every refusal).

use std::time::Duration;

use serde::Serialize;

use super::sql::{Exec, Row};
use super::{Db, StateError, now, timestamp};
use crate::args;

/// How often a replica on a shared database says it is alive ([`Db::replica_heartbeat`]).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A replica not heard from for this long is gone: the others close its open rows.
pub const REPLICA_GONE_AFTER: Duration = Duration::from_secs(60);

/// How a command ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    AwaitingConfirmation,
    Ok,
    /// Bad input, unknown command: refused before any plugin ran.
    Rejected,
    Denied,
    Expired,
    Error,
    Panic,
    Timeout,
    Cancelled,
    /// The process stopped (crash, kill -9, restart) before the command finished; closed at
    /// the next start by [`Db::audit_close_interrupted`].
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::AwaitingConfirmation => "awaiting_confirmation",
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// The start of an audited command.
#[derive(Debug, Clone)]
pub struct AuditStart<'a> {
    pub invocation_id: &'a str,
    pub surface: &'a str,
    pub channel: &'a str,
    pub user_id: &'a str,
    pub display_name: &'a str,
    /// Command path, e.g. `aks scale`.
    pub command: &'a str,
    /// Options as JSON with sensitive values already redacted.
    pub options: &'a serde_json::Value,
    pub plugin: Option<&'a str>,
}

/// One row of the audit log as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub invocation_id: String,
    pub surface: String,
    pub channel: String,
    pub user_id: String,
    pub display_name: String,
    pub command: String,
    pub options: String,
    pub plugin: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: String,
    pub error: Option<String>,
}

/// A host service call, allowed or refused.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCallRecord {
    pub invocation_id: Option<String>,
    pub plugin: String,
    pub service: String,
    pub target: String,
    pub allowed: bool,
    pub outcome: String,
    pub duration_ms: i64,
}

impl Db {
    /// Records that a command started; committed before the command runs.
    pub fn audit_start(&self, start: &AuditStart<'_>, outcome: Outcome) -> Result<(), StateError> {
        self.audit_insert(start, outcome, None)
    }

    /// Records a command that already ended (a refusal, help text, a read-only built-in) as
    /// one row in one transaction, where [`Db::audit_start`] + [`Db::audit_finish`] take two.
    pub fn audit_record(
        &self,
        start: &AuditStart<'_>,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.audit_insert(start, outcome, Some(error))
    }

    /// `ended`: `Some(error)` writes a closed row, `None` an open one.
    fn audit_insert(
        &self,
        start: &AuditStart<'_>,
        outcome: Outcome,
        ended: Option<Option<&str>>,
    ) -> Result<(), StateError> {
        let at = now();
        let ended_at = ended.is_some().then_some(at.as_str());
        self.execute(
            "INSERT INTO audit (invocation_id, surface, channel, user_id, display_name, command,
                                options, plugin, started_at, outcome, ended_at, error, replica)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            args![
                start.invocation_id,
                start.surface,
                start.channel,
                start.user_id,
                start.display_name,
                start.command,
                start.options.to_string(),
                start.plugin,
                at.as_str(),
                outcome.as_str(),
                ended_at,
                ended.flatten(),
                super::replica_name(),
            ],
        )?;
        Ok(())
    }

    /// Closes a command's row with its outcome.
    pub fn audit_finish(
        &self,
        invocation_id: &str,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        let ended =
            (outcome != Outcome::AwaitingConfirmation && outcome != Outcome::Running).then(now);
        self.execute(
            "UPDATE audit SET outcome = ?2, error = ?3, ended_at = ?4 WHERE invocation_id = ?1",
            args![invocation_id, outcome.as_str(), error, ended],
        )?;
        Ok(())
    }

    /// Closes every row a previous process left open (`running`, and `awaiting_confirmation`,
    /// which also covers commands awaiting an approval, unless its confirmation is still live
    /// in the `confirmations` table: it can still be confirmed) as `interrupted`, ended now.
    /// Returns how many.
    ///
    /// Called once at start, before any command runs. One SQLite file belongs to one host
    /// process, so every open row at start is from a process that is gone. On a database
    /// shared by replicas only this replica's rows ([`super::replica_name`]) are closed: the
    /// others' may still be running.
    pub fn audit_close_interrupted(&self) -> Result<usize, StateError> {
        let shared = self.backend() == super::Backend::Postgres;
        let replica = if shared { super::replica_name() } else { "" };
        self.transaction(|tx| close_open_rows(tx, replica))
    }

    /// On a database shared by replicas: records that this replica is alive, then closes as
    /// `interrupted` the open rows of every other replica not heard from for `gone_after`
    /// (a pod killed and replaced under a new name never comes back to close its own), and
    /// forgets those replicas. Returns how many commands it closed.
    ///
    /// A replica cut off from the database longer than that has its rows closed too; the end
    /// it could not write is written on a later command ([`Db::audit_finish`]) and replaces
    /// `interrupted`. Times are each replica's clock: a skew shorter than `gone_after` less
    /// [`HEARTBEAT_EVERY`] is harmless.
    pub fn replica_heartbeat(&self, gone_after: Duration) -> Result<usize, StateError> {
        let me = super::replica_name();
        let seen = chrono::Utc::now();
        let cutoff = timestamp(
            chrono::Duration::from_std(gone_after)
                .ok()
                .and_then(|gone| seen.checked_sub_signed(gone))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        );
        let seen = timestamp(seen);
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO replicas (name, seen_at) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
                args![me, seen.as_str()],
            )?;
            let gone = tx.query(
                "SELECT name FROM replicas WHERE seen_at < ?1 AND name <> ?2 ORDER BY name",
                args![cutoff.as_str(), me],
            )?;
            let mut closed = 0;
            for row in gone {
                let name: String = row.get(0)?;
                let rows = close_open_rows(tx, &name)?;
                if rows > 0 {
                    tracing::warn!(
                        replica = %name,
                        closed = rows,
                        "a replica not heard from is gone: its open audit rows closed as interrupted"
                    );
                }
                closed += rows;
                tx.execute("DELETE FROM replicas WHERE name = ?1", args![name])?;
            }
            Ok(closed)
        })
    }

    /// The last `limit` commands, newest first.
    pub fn audit_recent(&self, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            "SELECT id, invocation_id, surface, channel, user_id, display_name, command, options,
                    plugin, started_at, ended_at, outcome, error
             FROM audit ORDER BY id DESC LIMIT ?1",
            args![limit],
        )?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.get(0)?,
                    invocation_id: row.get(1)?,
                    surface: row.get(2)?,
                    channel: row.get(3)?,
                    user_id: row.get(4)?,
                    display_name: row.get(5)?,
                    command: row.get(6)?,
                    options: row.get(7)?,
                    plugin: row.get(8)?,
                    started_at: row.get(9)?,
                    ended_at: row.get(10)?,
                    outcome: row.get(11)?,
                    error: row.get(12)?,
                })
            })
            .collect()
    }

    pub fn audit_outcome(&self, invocation_id: &str) -> Result<Option<String>, StateError> {
        self.query_opt(
            "SELECT outcome FROM audit WHERE invocation_id = ?1",
            args![invocation_id],
        )?
        .map(|row| row.get(0))
        .transpose()
    }

    /// Records a service call before it is sent, as `pending`; returns its row id for
    /// [`Db::finish_service_call`]. A kill -9 between the two leaves the row `pending`, and the
    /// next start closes it as `interrupted`: a write that went out is never missing.
    pub fn begin_service_call(&self, call: &ServiceCallRecord) -> Result<i64, StateError> {
        self.insert_service_call(call, PENDING_CALL, 0)
    }

    /// Sets the outcome and duration of a call recorded by [`Db::begin_service_call`].
    pub fn finish_service_call(
        &self,
        id: i64,
        outcome: &str,
        duration_ms: i64,
    ) -> Result<(), StateError> {
        self.execute(
            "UPDATE service_calls SET outcome = ?2, duration_ms = ?3 WHERE id = ?1",
            args![id, outcome, duration_ms],
        )?;
        Ok(())
    }

    /// Service calls of one invocation, oldest first.
    pub fn service_calls(&self, invocation_id: &str) -> Result<Vec<ServiceCallRecord>, StateError> {
        self.query(
            "SELECT invocation_id, plugin, service, target, allowed, outcome, duration_ms
             FROM service_calls WHERE invocation_id = ?1 ORDER BY id",
            args![invocation_id],
        )?
        .iter()
        .map(service_call_row)
        .collect()
    }

    /// Records a call that was answered (or refused) in one write.
    pub fn record_service_call(&self, call: &ServiceCallRecord) -> Result<(), StateError> {
        self.insert_service_call(call, &call.outcome, call.duration_ms)
            .map(|_| ())
    }

    fn insert_service_call(
        &self,
        call: &ServiceCallRecord,
        outcome: &str,
        duration_ms: i64,
    ) -> Result<i64, StateError> {
        let row = self.query_opt(
            "INSERT INTO service_calls (invocation_id, plugin, service, target, allowed, outcome,
                                        at, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            args![
                &call.invocation_id,
                &call.plugin,
                &call.service,
                &call.target,
                call.allowed,
                outcome,
                now(),
                duration_ms,
            ],
        )?;
        row.map_or(Ok(0), |row| row.get(0))
    }

    /// Service calls refused for lack of a capability, newest first.
    pub fn refused_service_calls(
        &self,
        plugin: &str,
    ) -> Result<Vec<ServiceCallRecord>, StateError> {
        self.query(
            "SELECT invocation_id, plugin, service, target, allowed, outcome, duration_ms
             FROM service_calls WHERE plugin = ?1 AND allowed = 0 ORDER BY id DESC",
            args![plugin],
        )?
        .iter()
        .map(service_call_row)
        .collect()
    }
}

/// The outcome of a service call recorded before it was sent and not yet answered.
pub const PENDING_CALL: &str = "pending";

/// Closes the open rows of `replica` (every replica's when empty) as `interrupted`: its
/// commands still `running`, those awaiting a confirmation that is no longer live, and their
/// unfinished service calls.
fn close_open_rows(tx: &mut dyn Exec, replica: &str) -> Result<usize, StateError> {
    tx.execute(
        "UPDATE service_calls SET outcome = ?1 WHERE outcome = ?2 AND (?3 = '' OR
           invocation_id IN (SELECT invocation_id FROM audit WHERE replica = ?3))",
        args![Outcome::Interrupted.as_str(), PENDING_CALL, replica],
    )?;
    tx.execute(
        "UPDATE audit SET outcome = ?1, ended_at = ?2,
                error = COALESCE(error, 'the bot stopped before this command finished')
         WHERE (outcome = ?3 OR (outcome = ?4 AND invocation_id NOT IN
                (SELECT invocation_id FROM confirmations WHERE expired = 0)))
           AND (?5 = '' OR replica = ?5)",
        args![
            Outcome::Interrupted.as_str(),
            now(),
            Outcome::Running.as_str(),
            Outcome::AwaitingConfirmation.as_str(),
            replica,
        ],
    )
}

fn service_call_row(row: &Row) -> Result<ServiceCallRecord, StateError> {
    Ok(ServiceCallRecord {
        invocation_id: row.get(0)?,
        plugin: row.get(1)?,
        service: row.get(2)?,
        target: row.get(3)?,
        allowed: row.get(4)?,
        outcome: row.get(5)?,
        duration_ms: row.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_then_finish_reads_back() {
        let db = Db::in_memory().unwrap();
        let options = serde_json::json!({"count": 0});
        db.audit_start(
            &AuditStart {
                invocation_id: "inv-1",
                surface: "terminal",
                channel: "terminal",
                user_id: "u1",
                display_name: "User One",
                command: "aks scale",
                options: &options,
                plugin: Some("aks"),
            },
            Outcome::Running,
        )
        .unwrap();
        assert_eq!(
            db.audit_outcome("inv-1").unwrap().as_deref(),
            Some("running")
        );
        db.audit_finish("inv-1", Outcome::Error, Some("boom"))
            .unwrap();
        let rows = db.audit_recent(10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome, "error");
        assert_eq!(rows[0].error.as_deref(), Some("boom"));
        assert_eq!(rows[0].options, r#"{"count":0}"#);
        assert!(rows[0].ended_at.is_some());
    }
}
