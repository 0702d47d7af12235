//! Schedules and their runs in the state database (component `schedules`).
//!
//! A run row is inserted — the *claim* — and committed before any of its commands is sent,
//! and completed after the last one answers. `UNIQUE (schedule, kind, due_at)` makes the
//! claim the single point of exactly-once: a second engine over the same database cannot
//! claim the same firing, and a restart finds a claimed, uncompleted row and reports it as
//! interrupted rather than running it again.

use crate::args;
use crate::state::sql::Row;
use crate::state::{Db, StateError, timestamp};
use chrono::{DateTime, Utc};
use deckhand_plugin_abi::proto::Caller;

pub const MIGRATIONS: &[&str] = &[
    // 1: schedules and runs.
    "CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        commands TEXT NOT NULL,
        channel TEXT NOT NULL,
        warn_secs INTEGER NOT NULL,
        owner_id TEXT NOT NULL,
        owner_name TEXT NOT NULL,
        owner_roles TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        anchor TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        skip_due TEXT,
        skip_until TEXT,
        snooze_due TEXT,
        snooze_to TEXT,
        warned_for TEXT
    );
    CREATE TABLE schedule_runs (
        id INTEGER PRIMARY KEY,
        schedule TEXT NOT NULL,
        kind TEXT NOT NULL,
        due_at TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        completed_at TEXT,
        outcome TEXT,
        detail TEXT,
        UNIQUE (schedule, kind, due_at)
    );
    CREATE INDEX schedule_runs_open ON schedule_runs(completed_at) WHERE completed_at IS NULL;",
    // 2: each command of a run, with its outcome (for the node-hours summary and `show`).
    "CREATE TABLE schedule_run_commands (
        run_id INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        command TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reply TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
    );
    CREATE INDEX schedule_run_commands_at ON schedule_run_commands(at);",
    // 3: keep-awake of pools (`/schedule keep-awake`): scale-downs of the pool wait until then.
    "CREATE TABLE schedule_keep_awake (
        pool TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        set_by TEXT NOT NULL,
        channel TEXT NOT NULL,
        ended INTEGER NOT NULL DEFAULT 0
    );",
    // 4: which replica claimed a run, so on a shared database a new leader resumes what the
    // old leader left open but not a `/schedule run` another replica is still executing.
    "ALTER TABLE schedule_runs ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';",
];

/// This component, as `deckhand state migrate` and [`Db::ensure`] know it.
pub(crate) const COMPONENT: crate::state::Component = crate::state::Component {
    name: "schedules",
    migrations: MIGRATIONS,
};

/// One command of a run, as it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResult {
    pub schedule: String,
    pub channel: Option<String>,
    pub command: String,
    pub outcome: String,
    pub at: DateTime<Utc>,
}

/// A pool kept awake: scheduled scale-downs of it wait until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepAwake {
    pub pool: String,
    pub until: DateTime<Utc>,
    pub set_by: String,
    pub channel: String,
}

/// Where a schedule was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Chat,
    Config,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Chat => "chat",
            Source::Config => "config",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub tz: String,
    pub commands: Vec<String>,
    pub channel: String,
    pub warn_secs: i64,
    pub owner: Caller,
    pub source: Source,
    pub created_at: DateTime<Utc>,
    /// Firings at or before this instant are not considered (creation, resume).
    pub anchor: DateTime<Utc>,
    pub paused: bool,
    /// The one firing to skip ("skip tonight").
    pub skip_due: Option<DateTime<Utc>>,
    /// Firings before this instant are skipped.
    pub skip_until: Option<DateTime<Utc>>,
    /// The firing moved by a snooze, and where to.
    pub snooze_due: Option<DateTime<Utc>>,
    pub snooze_to: Option<DateTime<Utc>>,
    /// The effective instant the last warning was posted for.
    pub warned_for: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Cron,
    Manual,
}

impl RunKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunKind::Cron => "cron",
            RunKind::Manual => "manual",
        }
    }
}

/// One command of a run as recorded (see [`Store::run_commands`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand {
    pub index: usize,
    pub command: String,
    pub outcome: String,
    pub reply: String,
}

/// A claimed firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub schedule: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub claimed_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    /// The replica that claimed it (`''` before schedules migration 4).
    pub claimed_by: String,
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StateError::Stored(format!("time {s:?}: {e}")))
}

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StateError> {
    s.as_deref().map(parse_ts).transpose()
}

fn json_err(e: serde_json::Error) -> StateError {
    StateError::Stored(format!("JSON: {e}"))
}

const COLUMNS: &str = "name, cron, tz, commands, channel, warn_secs, owner_id, owner_name, owner_roles, source, created_at, anchor, paused, skip_due, skip_until, snooze_due, snooze_to, warned_for";

fn schedule_from(row: &Row) -> Result<ScheduleRow, StateError> {
    let commands: String = row.get(3)?;
    let roles: String = row.get(8)?;
    let source: String = row.get(9)?;
    Ok(ScheduleRow {
        name: row.get(0)?,
        cron: row.get(1)?,
        tz: row.get(2)?,
        commands: serde_json::from_str(&commands).map_err(json_err)?,
        channel: row.get(4)?,
        warn_secs: row.get(5)?,
        owner: Caller {
            user_id: row.get(6)?,
            display_name: row.get(7)?,
            roles: serde_json::from_str(&roles).map_err(json_err)?,
        },
        source: if source == "config" {
            Source::Config
        } else {
            Source::Chat
        },
        created_at: parse_ts(&row.get::<String>(10)?)?,
        anchor: parse_ts(&row.get::<String>(11)?)?,
        paused: row.get::<i64>(12)? != 0,
        skip_due: opt_ts(row.get(13)?)?,
        skip_until: opt_ts(row.get(14)?)?,
        snooze_due: opt_ts(row.get(15)?)?,
        snooze_to: opt_ts(row.get(16)?)?,
        warned_for: opt_ts(row.get(17)?)?,
    })
}

fn run_from(row: &Row) -> Result<RunRow, StateError> {
    Ok(RunRow {
        id: row.get(0)?,
        schedule: row.get(1)?,
        kind: row.get(2)?,
        due_at: parse_ts(&row.get::<String>(3)?)?,
        claimed_at: parse_ts(&row.get::<String>(4)?)?,
        completed_at: opt_ts(row.get(5)?)?,
        outcome: row.get(6)?,
        detail: row.get(7)?,
        claimed_by: row.get(8)?,
    })
}

const RUN_COLUMNS: &str =
    "id, schedule, kind, due_at, claimed_at, completed_at, outcome, detail, claimed_by";

/// Typed access to the two tables.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn open(db: Db) -> Result<Store, StateError> {
        db.ensure(&COMPONENT)?;
        Ok(Store { db })
    }

    /// Whether replicas may share these tables (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.db.backend() == crate::state::Backend::Postgres
    }

    pub fn insert(&self, s: &ScheduleRow) -> Result<bool, StateError> {
        let n = self.db.execute(
            &format!(
                "INSERT INTO schedules ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL, NULL, NULL, NULL, NULL)
                 ON CONFLICT (name) DO NOTHING"
            ),
            args![
                &s.name,
                &s.cron,
                &s.tz,
                serde_json::to_string(&s.commands).unwrap_or_default(),
                &s.channel,
                s.warn_secs,
                &s.owner.user_id,
                &s.owner.display_name,
                serde_json::to_string(&s.owner.roles).unwrap_or_default(),
                s.source.as_str(),
                timestamp(s.created_at),
                timestamp(s.anchor),
                s.paused,
            ],
        )?;
        Ok(n == 1)
    }

    /// Writes a config-declared schedule's definition, keeping its run state (pause, skip,
    /// snooze) when only those changed. A changed timing restarts it from `now`.
    pub fn upsert_config(&self, s: &ScheduleRow) -> Result<(), StateError> {
        self.db.execute(
            &format!(
                "INSERT INTO schedules ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'config', ?10, ?10, 0, NULL, NULL, NULL, NULL, NULL)
                 ON CONFLICT (name) DO UPDATE SET
                    anchor = CASE WHEN schedules.cron = excluded.cron AND schedules.tz = excluded.tz THEN schedules.anchor WHEN schedules.anchor > excluded.anchor THEN schedules.anchor ELSE excluded.anchor END,
                    cron = excluded.cron, tz = excluded.tz, commands = excluded.commands,
                    channel = excluded.channel, warn_secs = excluded.warn_secs,
                    owner_id = excluded.owner_id, owner_name = excluded.owner_name,
                    owner_roles = excluded.owner_roles, source = 'config'"
            ),
            args![
                &s.name,
                &s.cron,
                &s.tz,
                serde_json::to_string(&s.commands).unwrap_or_default(),
                &s.channel,
                s.warn_secs,
                &s.owner.user_id,
                &s.owner.display_name,
                serde_json::to_string(&s.owner.roles).unwrap_or_default(),
                timestamp(s.created_at),
            ],
        )?;
        Ok(())
    }

    /// Removes config-declared schedules that are no longer in the config.
    pub fn prune_config(&self, keep: &[String]) -> Result<Vec<String>, StateError> {
        let gone: Vec<String> = self
            .all()?
            .into_iter()
            .filter(|s| s.source == Source::Config && !keep.contains(&s.name))
            .map(|s| s.name)
            .collect();
        for name in &gone {
            self.remove(name)?;
        }
        Ok(gone)
    }

    pub fn get(&self, name: &str) -> Result<Option<ScheduleRow>, StateError> {
        self.db
            .query_opt(
                &format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"),
                args![name],
            )?
            .as_ref()
            .map(schedule_from)
            .transpose()
    }

    pub fn all(&self) -> Result<Vec<ScheduleRow>, StateError> {
        self.db
            .query(
                &format!("SELECT {COLUMNS} FROM schedules ORDER BY name"),
                &[],
            )?
            .iter()
            .map(schedule_from)
            .collect()
    }

    pub fn names(&self) -> Result<Vec<String>, StateError> {
        self.db
            .query("SELECT name FROM schedules ORDER BY name", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn remove(&self, name: &str) -> Result<bool, StateError> {
        Ok(self
            .db
            .execute("DELETE FROM schedules WHERE name = ?1", args![name])?
            == 1)
    }

    pub fn set_paused(
        &self,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        if paused {
            self.db.execute(
                "UPDATE schedules SET paused = 1 WHERE name = ?1",
                args![name],
            )?;
        } else {
            // Firings that fell inside the pause are not runs to catch up.
            self.db.execute(
                "UPDATE schedules SET paused = 0,
                        anchor = CASE WHEN anchor > ?2 THEN anchor ELSE ?2 END
                 WHERE name = ?1",
                args![name, timestamp(now)],
            )?;
        }
        Ok(())
    }

    pub fn set_skip_due(&self, name: &str, due: DateTime<Utc>) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE schedules SET skip_due = ?2 WHERE name = ?1",
            args![name, timestamp(due)],
        )?;
        Ok(())
    }

    pub fn set_skip_until(&self, name: &str, until: DateTime<Utc>) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE schedules SET skip_until = ?2 WHERE name = ?1",
            args![name, timestamp(until)],
        )?;
        Ok(())
    }

    pub fn set_snooze(
        &self,
        name: &str,
        due: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE schedules SET snooze_due = ?2, snooze_to = ?3 WHERE name = ?1",
            args![name, timestamp(due), timestamp(to)],
        )?;
        Ok(())
    }

    pub fn set_warned(&self, name: &str, effective: DateTime<Utc>) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE schedules SET warned_for = ?2 WHERE name = ?1",
            args![name, timestamp(effective)],
        )?;
        Ok(())
    }

    /// The latest due instant of a cron run (any outcome) per schedule.
    pub fn last_due(&self) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StateError> {
        self.db
            .query(
                "SELECT schedule, MAX(due_at) FROM schedule_runs WHERE kind = 'cron'
                 GROUP BY schedule",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get::<String>(0)?, parse_ts(&r.get::<String>(1)?)?)))
            .collect()
    }

    /// Claims a firing. `None` when it was already claimed (by another engine, or before a
    /// restart): the caller must not act.
    pub fn claim(
        &self,
        schedule: &str,
        kind: RunKind,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StateError> {
        self.db
            .query_opt(
                "INSERT INTO schedule_runs (schedule, kind, due_at, claimed_at, claimed_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (schedule, kind, due_at) DO NOTHING RETURNING id",
                args![
                    schedule,
                    kind.as_str(),
                    timestamp(due),
                    timestamp(now),
                    crate::state::replica_name()
                ],
            )?
            .map(|row| row.get(0))
            .transpose()
    }

    /// Records a firing that is not run (skipped, missed) as claimed and completed at once.
    pub fn record(
        &self,
        schedule: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        outcome: &str,
        detail: &str,
    ) -> Result<bool, StateError> {
        let n = self.db.execute(
            "INSERT INTO schedule_runs (schedule, kind, due_at, claimed_at, completed_at, outcome, detail)
             VALUES (?1, 'cron', ?2, ?3, ?3, ?4, ?5)
             ON CONFLICT (schedule, kind, due_at) DO NOTHING",
            args![schedule, timestamp(due), timestamp(now), outcome, detail],
        )?;
        Ok(n == 1)
    }

    pub fn complete(
        &self,
        run: i64,
        now: DateTime<Utc>,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE schedule_runs SET completed_at = ?2, outcome = ?3, detail = ?4 WHERE id = ?1",
            args![run, timestamp(now), outcome, detail],
        )?;
        Ok(())
    }

    /// Runs claimed and never completed.
    pub fn open_runs(&self) -> Result<Vec<RunRow>, StateError> {
        self.db
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE completed_at IS NULL ORDER BY id"
                ),
                &[],
            )?
            .iter()
            .map(run_from)
            .collect()
    }

    pub fn record_command(
        &self,
        run: i64,
        index: usize,
        command: &str,
        outcome: &str,
        reply: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.db.execute(
            "INSERT INTO schedule_run_commands (run_id, idx, command, outcome, reply, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_id, idx) DO UPDATE SET command = excluded.command,
                outcome = excluded.outcome, reply = excluded.reply, at = excluded.at",
            args![
                run,
                i64::try_from(index).unwrap_or(i64::MAX),
                command,
                outcome,
                reply,
                timestamp(at)
            ],
        )?;
        Ok(())
    }

    /// What a run's commands recorded so far, by index (`running`: started, never ended).
    pub fn run_commands(&self, run: i64) -> Result<Vec<RunCommand>, StateError> {
        self.db
            .query(
                "SELECT idx, command, outcome, reply FROM schedule_run_commands
                 WHERE run_id = ?1 ORDER BY idx",
                args![run],
            )?
            .iter()
            .map(|r| {
                Ok(RunCommand {
                    index: usize::try_from(r.get::<i64>(0)?).unwrap_or(usize::MAX),
                    command: r.get(1)?,
                    outcome: r.get(2)?,
                    reply: r.get(3)?,
                })
            })
            .collect()
    }

    /// Commands that ended at or before `until`, oldest first, with their schedule and its
    /// current channel (`None` once the schedule is removed).
    pub fn command_results(&self, until: DateTime<Utc>) -> Result<Vec<CommandResult>, StateError> {
        let rows = self.db.query(
            "SELECT r.schedule, s.channel, c.command, c.outcome, c.at
             FROM schedule_run_commands c
             JOIN schedule_runs r ON r.id = c.run_id
             LEFT JOIN schedules s ON s.name = r.schedule
             WHERE c.at <= ?1 ORDER BY c.at, c.run_id, c.idx",
            args![timestamp(until)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(CommandResult {
                    schedule: r.get(0)?,
                    channel: r.get(1)?,
                    command: r.get(2)?,
                    outcome: r.get(3)?,
                    at: parse_ts(&r.get::<String>(4)?)?,
                })
            })
            .collect()
    }

    /// Keeps `pool` awake until `until` (replacing an earlier keep-awake of it).
    pub fn set_keep_awake(&self, k: &KeepAwake) -> Result<(), StateError> {
        self.db.execute(
            "INSERT INTO schedule_keep_awake (pool, until, set_by, channel, ended)
             VALUES (?1, ?2, ?3, ?4, 0)
             ON CONFLICT (pool) DO UPDATE SET until = excluded.until, set_by = excluded.set_by,
                                              channel = excluded.channel, ended = 0",
            args![&k.pool, timestamp(k.until), &k.set_by, &k.channel],
        )?;
        Ok(())
    }

    /// Keep-awakes not yet reported as ended.
    pub fn keep_awakes(&self) -> Result<Vec<KeepAwake>, StateError> {
        let rows = self.db.query(
            "SELECT pool, until, set_by, channel FROM schedule_keep_awake WHERE ended = 0 ORDER BY pool",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(KeepAwake {
                    pool: r.get(0)?,
                    until: parse_ts(&r.get::<String>(1)?)?,
                    set_by: r.get(2)?,
                    channel: r.get(3)?,
                })
            })
            .collect()
    }

    /// Marks a keep-awake as ended; false when it already was (or was replaced).
    pub fn end_keep_awake(&self, pool: &str, until: DateTime<Utc>) -> Result<bool, StateError> {
        let n = self.db.execute(
            "UPDATE schedule_keep_awake SET ended = 1 WHERE pool = ?1 AND until = ?2 AND ended = 0",
            args![pool, timestamp(until)],
        )?;
        Ok(n == 1)
    }

    pub fn runs(&self, schedule: &str, limit: usize) -> Result<Vec<RunRow>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule = ?1
                     ORDER BY id DESC LIMIT ?2"
                ),
                args![schedule, limit],
            )?
            .iter()
            .map(run_from)
            .collect()
    }
}
