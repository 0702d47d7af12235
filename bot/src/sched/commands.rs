//! `/schedule add|list|show|remove|pause|resume|run|skip|snooze`, served inside the bot.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deckhand_plugin_abi::proto::{Caller, CommandSpec, OptionKind, OptionSpec};

use super::store::{RunKind, ScheduleRow, Source};
use super::timing::{self, Timing};
use super::{Inner, numbered};
use crate::router::builtins::BuiltinGroup;
use crate::router::parse::Parsed;
use crate::router::{Invocation, Response, Router, RouterError, permission_for};
use futures_util::future::BoxFuture;

pub struct ScheduleCommands {
    inner: Arc<Inner>,
}

impl ScheduleCommands {
    pub(crate) fn new(inner: Arc<Inner>) -> ScheduleCommands {
        ScheduleCommands { inner }
    }
}

fn name_option() -> OptionSpec {
    OptionSpec::new("name", OptionKind::String, "Schedule name")
        .required()
        .positional()
}

/// The `/schedule` command tree.
pub fn spec() -> CommandSpec {
    CommandSpec::new("schedule", "Commands run on a timetable, as their owner")
        .subcommand(
            CommandSpec::new(
                "add",
                "Add a schedule: /schedule add NAME --cron \"0 0 20 * * Mon-Fri\" --tz Europe/Helsinki [--warn 15m] [--channel C] -- /cmd ... [; /cmd ...]",
            )
            .option(name_option())
            .option(
                OptionSpec::new(
                    "cron",
                    OptionKind::String,
                    "sec min hour day month weekday, e.g. \"0 0 20 * * Mon-Fri\"",
                )
                .required(),
            )
            .option(
                OptionSpec::new("tz", OptionKind::String, "IANA time zone, e.g. Europe/Helsinki")
                    .default_value(serde_json::json!("UTC")),
            )
            .option(OptionSpec::new(
                "warn",
                OptionKind::Duration,
                "Post a warning this long before each run",
            ))
            .option(OptionSpec::new(
                "channel",
                OptionKind::Channel,
                "Where runs are reported (default: this channel)",
            ))
            .option(
                OptionSpec::new(
                    "command",
                    OptionKind::String,
                    "After --: the commands, separated by ` ; `",
                )
                .required()
                .positional(),
            ),
        )
        .subcommand(CommandSpec::new(
            "list",
            "Schedules with their next run, in their zone and in UTC",
        ))
        .subcommand(CommandSpec::new("show", "One schedule and its last runs").option(name_option()))
        .subcommand(CommandSpec::new("remove", "Delete a schedule").option(name_option()))
        .subcommand(CommandSpec::new("pause", "Stop running a schedule until resumed").option(name_option()))
        .subcommand(CommandSpec::new("resume", "Run a paused schedule again").option(name_option()))
        .subcommand(CommandSpec::new("run", "Run a schedule's commands now").option(name_option()))
        .subcommand(
            CommandSpec::new("skip", "Skip the next run, or every run until a date")
                .option(name_option())
                .option(OptionSpec::new(
                    "until",
                    OptionKind::String,
                    "YYYY-MM-DD in the schedule's zone: runs before that day are skipped",
                )),
        )
        .subcommand(
            CommandSpec::new(
                "summary",
                "Node-hours avoided by scale-to-zero schedules (schedule it weekly to post it)",
            )
            .option(
                OptionSpec::new("days", OptionKind::Integer, "How many days back")
                    .default_value(serde_json::json!(7)),
            )
            .option(OptionSpec::new(
                "channel",
                OptionKind::Channel,
                "Schedules reporting to this channel (default: this channel)",
            ))
            .option(OptionSpec::new(
                "all",
                OptionKind::Boolean,
                "Every channel's schedules",
            )),
        )
        .subcommand(
            CommandSpec::new(
                "keep-awake",
                "Keep a pool up: scheduled scale-downs of it wait until --until (at most a week)",
            )
            .option(
                OptionSpec::new("pool", OptionKind::String, "Node pool, e.g. gpu")
                    .required()
                    .positional(),
            )
            .option(
                OptionSpec::new(
                    "until",
                    OptionKind::String,
                    "HH:MM (the next one), YYYY-MM-DD HH:MM, or an RFC 3339 instant",
                )
                .required(),
            )
            .option(OptionSpec::new(
                "tz",
                OptionKind::String,
                "Zone of --until (default: that of the schedule scaling the pool down, else UTC)",
            )),
        )
        .subcommand(
            CommandSpec::new(
                "preview",
                "The next firings in local time and UTC, marking DST shifts and skipped days",
            )
            .option(name_option())
            .option(
                OptionSpec::new("days", OptionKind::Integer, "How many days ahead")
                    .default_value(serde_json::json!(14)),
            ),
        )
        .subcommand(
            CommandSpec::new("snooze", "Move the next run later")
                .option(name_option())
                .option(
                    OptionSpec::new("by", OptionKind::Duration, "How much later, e.g. 1h")
                        .required()
                        .positional(),
                ),
        )
}

/// Splits `/a x ; /b y` into commands. A lone `;` word separates them.
pub fn split_commands(text: &str) -> Result<Vec<String>, String> {
    let words = crate::router::parse::tokenize(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for group in words.split(|w| w == ";") {
        if group.is_empty() {
            continue;
        }
        out.push(shlex::try_join(group.iter().map(String::as_str)).map_err(|e| e.to_string())?);
    }
    if out.is_empty() {
        return Err("no command given after --".into());
    }
    Ok(out)
}

/// Checks a schedule before it is stored: name, cron, zone, and that every command parses and
/// that `owner` may run it.
pub fn validate(
    router: &Router,
    owner: &Caller,
    name: &str,
    cron: &str,
    tz: &str,
    commands: &[String],
) -> Result<Timing, String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "schedule name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    let timing = Timing::new(cron, tz).map_err(|e| e.to_string())?;
    if commands.is_empty() {
        return Err("it has no commands".into());
    }
    let index = router.index();
    for (i, command) in commands.iter().enumerate() {
        let place = if commands.len() > 1 {
            format!("command {} ({command})", i + 1)
        } else {
            format!("command {command}")
        };
        let parsed = index
            .parse(&crate::router::builtins::normalize(command))
            .map_err(|e| format!("{place}: {e}"))?;
        if parsed.help {
            return Err(format!("{place}: --help cannot be scheduled"));
        }
        let permission = permission_for(&parsed.owner, &parsed.path, &parsed.spec);
        if !router.options().permissions.allows(owner, &permission) {
            return Err(format!(
                "{place}: {} (user id {}) may not run /{}: it needs permission `{permission}`, and a schedule runs with its owner's permissions",
                owner.display_name,
                owner.user_id,
                parsed.path.join(" ")
            ));
        }
    }
    Ok(timing)
}

fn builtin(e: impl std::fmt::Display) -> RouterError {
    RouterError::Builtin(e.to_string())
}

impl BuiltinGroup for ScheduleCommands {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![spec()]
    }

    fn run<'a>(
        &'a self,
        router: &'a Router,
        invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            let str_opt = |name: &str| {
                parsed
                    .options
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let name = str_opt("name").unwrap_or_default();
            let sub = parsed.path.get(1).map(String::as_str).unwrap_or_default();
            let inner = &self.inner;
            if sub == "add" {
                return self.add(router, invocation, parsed, &name).await;
            }
            if sub == "list" {
                return self.list();
            }
            if sub == "keep-awake" {
                let reply = super::keep_awake::command(
                    inner,
                    &str_opt("pool").unwrap_or_default(),
                    &str_opt("until").unwrap_or_default(),
                    str_opt("tz").as_deref(),
                    invocation,
                )
                .map_err(builtin)?;
                inner.poke();
                return Ok(Response::ok(reply));
            }
            if sub == "summary" {
                let days = parsed
                    .options
                    .get("days")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(7);
                if !(1..=366).contains(&days) {
                    return Err(builtin(format!("--days takes 1 to 366, not {days}")));
                }
                let channel = str_opt("channel").unwrap_or_else(|| invocation.channel.clone());
                // `--channel all` is the older spelling of `--all`.
                let all = parsed.options.get("all").and_then(|v| v.as_bool()) == Some(true)
                    || channel == "#all";
                let channel = (!all).then_some(channel);
                let now = inner.now();
                let results = inner.store.command_results(now).map_err(builtin)?;
                return Ok(Response::ok(super::summary::render(
                    &results,
                    channel.as_deref(),
                    days,
                    now,
                )));
            }
            let row = inner.store.get(&name).map_err(builtin)?.ok_or_else(|| {
                let names = inner.store.names().unwrap_or_default();
                let hint = crate::router::parse::suggest(&name, names.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                builtin(format!(
                    "no schedule named {name:?}{hint}; /schedule list shows them"
                ))
            })?;
            let timing = inner.timing(&row.cron, &row.tz).map_err(builtin)?;
            let now = inner.now();
            let reply = match sub {
                "show" => self.show(&row, &timing)?,
                "preview" => {
                    let days = parsed
                        .options
                        .get("days")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(14);
                    if !(1..=super::preview::MAX_DAYS).contains(&days) {
                        return Err(builtin(format!(
                            "--days takes 1 to {}, not {days}",
                            super::preview::MAX_DAYS
                        )));
                    }
                    return Ok(Response::ok(super::preview::render(
                        inner, &row, &timing, now, days,
                    )));
                }
                "remove" => {
                    if row.source == Source::Config {
                        return Err(builtin(format!(
                            "schedule {name} is declared in the config file; remove it there (or /schedule pause {name})"
                        )));
                    }
                    inner.store.remove(&name).map_err(builtin)?;
                    format!("Removed schedule {name}.")
                }
                "pause" => {
                    inner.store.set_paused(&name, true, now).map_err(builtin)?;
                    format!("Paused schedule {name}; nothing runs until /schedule resume {name}.")
                }
                "resume" => {
                    inner.store.set_paused(&name, false, now).map_err(builtin)?;
                    let row = inner.store.get(&name).map_err(builtin)?.unwrap_or(row);
                    let next = self.next_text(&row, &timing);
                    format!(
                        "Resumed schedule {name}; runs missed while paused are not caught up. Next run: {next}."
                    )
                }
                "run" => return self.run_now(router, invocation, &row).await,
                "skip" => {
                    if let Some(date) = str_opt("until") {
                        let day =
                            NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                                builtin(format!("--until {date:?} is not a date: write YYYY-MM-DD"))
                            })?;
                        let until = timing::resolve(
                            &timing.tz(),
                            day.and_hms_opt(0, 0, 0).unwrap_or_default(),
                        );
                        inner.store.set_skip_until(&name, until).map_err(builtin)?;
                        let row = inner.store.get(&name).map_err(builtin)?.unwrap_or(row);
                        format!(
                            "Schedule {name}: runs before {} are skipped. Next run: {}.",
                            timing.describe(until),
                            self.next_text(&row, &timing)
                        )
                    } else {
                        let upcoming = self.upcoming_live(&row).map_err(builtin)?;
                        inner
                            .store
                            .set_skip_due(&name, upcoming.due)
                            .map_err(builtin)?;
                        format!(
                            "Schedule {name}: the run at {} is skipped (asked by {}).",
                            timing.describe(upcoming.effective),
                            invocation.caller.display_name
                        )
                    }
                }
                "snooze" => {
                    let ms = parsed
                        .options
                        .get("by")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0);
                    if ms == 0 {
                        return Err(builtin("snooze by how long? e.g. /schedule snooze NAME 1h"));
                    }
                    let max_ms = super::MAX_SNOOZE_SECS.unsigned_abs() * 1000;
                    if ms > max_ms {
                        return Err(builtin(format!(
                            "snooze by at most {} (asked: {}); to stop the schedule for longer, /schedule pause {name}",
                            humantime::format_duration(std::time::Duration::from_millis(max_ms)),
                            humantime::format_duration(std::time::Duration::from_millis(ms))
                        )));
                    }
                    let upcoming = self.upcoming_live(&row).map_err(builtin)?;
                    let to =
                        chrono::Duration::try_milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
                            .and_then(|by| upcoming.effective.max(now).checked_add_signed(by))
                            .ok_or_else(|| {
                                builtin("that snooze would end past the calendar's end")
                            })?;
                    inner
                        .store
                        .set_snooze(&name, upcoming.due, to)
                        .map_err(builtin)?;
                    format!(
                        "Schedule {name}: the run due {} now runs at {} (snoozed {} by {}).",
                        timing.describe(upcoming.due),
                        timing.describe(to),
                        humantime::format_duration(std::time::Duration::from_millis(ms)),
                        invocation.caller.display_name
                    )
                }
                other => return Err(builtin(format!("/schedule {other} is not implemented"))),
            };
            inner.poke();
            Ok(Response::ok(reply))
        })
    }
}

impl ScheduleCommands {
    async fn add(
        &self,
        router: &Router,
        invocation: &Invocation,
        parsed: &Parsed,
        name: &str,
    ) -> Result<Response, RouterError> {
        let opt = |key: &str| {
            parsed
                .options
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let cron = opt("cron");
        let tz = opt("tz");
        let commands = split_commands(&opt("command"))
            .map_err(|e| builtin(format!("cannot add schedule {name}: {e}")))?;
        let owner = invocation.caller.clone();
        let timing = validate(router, &owner, name, &cron, &tz, &commands)
            .map_err(|e| builtin(format!("cannot add schedule {name}: {e}")))?;
        let channel = parsed
            .options
            .get("channel")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| invocation.channel.clone());
        let warn_secs = parsed
            .options
            .get("warn")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            / 1000;
        if warn_secs > super::MAX_WARN_SECS.unsigned_abs() {
            return Err(RouterError::Builtin(format!(
                "--warn is at most {} before each run (asked: {}); e.g. --warn 15m",
                humantime::format_duration(std::time::Duration::from_secs(
                    super::MAX_WARN_SECS.unsigned_abs()
                )),
                humantime::format_duration(std::time::Duration::from_secs(warn_secs))
            )));
        }
        let now = self.inner.now();
        let row = ScheduleRow {
            name: name.to_owned(),
            cron: cron.trim().to_owned(),
            tz: timing.tz().name().to_owned(),
            commands,
            channel,
            warn_secs: i64::try_from(warn_secs).unwrap_or(i64::MAX),
            owner,
            source: Source::Chat,
            created_at: now,
            anchor: now,
            paused: false,
            skip_due: None,
            skip_until: None,
            snooze_due: None,
            snooze_to: None,
            warned_for: None,
        };
        if !self.inner.store.insert(&row).map_err(builtin)? {
            return Err(builtin(format!(
                "a schedule named {name} already exists; /schedule show {name}, or remove it first"
            )));
        }
        self.inner.poke();
        let next = timing.next_after(now).map_err(builtin)?;
        Ok(Response::ok(format!(
            "Added schedule {name} ({} in {}), run as {} and reported in {}. Next run: {}.\n{}",
            row.cron,
            row.tz,
            row.owner.display_name,
            row.channel,
            timing.describe(next),
            numbered(&row.commands)
        )))
    }

    /// The pending firing, counting runs recorded so far.
    fn upcoming_live(&self, row: &ScheduleRow) -> Result<super::Upcoming, String> {
        let last = self.inner.store.last_due().map_err(|e| e.to_string())?;
        self.inner
            .upcoming(row, last.get(&row.name).copied())
            .map_err(|e| e.to_string())
    }

    fn next_text(&self, row: &ScheduleRow, timing: &Timing) -> String {
        if row.paused {
            return "paused".into();
        }
        match self.upcoming_live(row) {
            Ok(up) => {
                let mut text = timing.describe(up.effective);
                if up.effective != up.due {
                    text.push_str(&format!(" (snoozed from {})", timing.describe(up.due)));
                }
                if self.inner.is_skipped(row, up.due) {
                    text.push_str(" — will be skipped");
                }
                text
            }
            Err(e) => format!("none ({e})"),
        }
    }

    fn list(&self) -> Result<Response, RouterError> {
        let rows = self.inner.store.all().map_err(builtin)?;
        if rows.is_empty() {
            return Ok(Response::ok(
                "No schedules. Add one with /schedule add NAME --cron \"0 0 20 * * Mon-Fri\" --tz Europe/Helsinki -- /command",
            ));
        }
        let mut lines = Vec::new();
        for row in rows {
            let next = match self.inner.timing(&row.cron, &row.tz) {
                Ok(timing) => self.next_text(&row, &timing),
                Err(e) => format!("invalid: {e}"),
            };
            lines.push(format!(
                "{} — \"{}\" {} — next: {} — {} command(s) as {} in {}{}",
                row.name,
                row.cron,
                row.tz,
                next,
                row.commands.len(),
                row.owner.display_name,
                row.channel,
                if row.source == Source::Config {
                    " (config)"
                } else {
                    ""
                }
            ));
        }
        Ok(Response::ok(lines.join("\n")))
    }

    fn show(&self, row: &ScheduleRow, timing: &Timing) -> Result<String, RouterError> {
        let runs = self.inner.store.runs(&row.name, 10).map_err(builtin)?;
        let mut out = format!(
            "Schedule {} ({})\ncron \"{}\" in {}; warn {}; channel {}; owner {} (user id {})\nnext: {}\ncommands:\n{}",
            row.name,
            if row.source == Source::Config {
                "from config"
            } else {
                "added in chat"
            },
            row.cron,
            row.tz,
            if row.warn_secs > 0 {
                humantime::format_duration(std::time::Duration::from_secs(row.warn_secs as u64))
                    .to_string()
            } else {
                "off".into()
            },
            row.channel,
            row.owner.display_name,
            row.owner.user_id,
            self.next_text(row, timing),
            numbered(&row.commands)
        );
        if runs.is_empty() {
            out.push_str("\nno runs yet");
        } else {
            out.push_str("\nlast runs:");
            for run in runs {
                out.push_str(&format!(
                    "\n  {} {} due {} → {}{}",
                    run.kind,
                    run.id,
                    timing.describe(run.due_at),
                    run.outcome.as_deref().unwrap_or("running"),
                    run.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                ));
            }
        }
        Ok(out)
    }

    /// Runs the commands now, as the owner; the caller must be allowed to run them too.
    async fn run_now(
        &self,
        router: &Router,
        invocation: &Invocation,
        row: &ScheduleRow,
    ) -> Result<Response, RouterError> {
        if invocation.caller.user_id != row.owner.user_id {
            validate(
                router,
                &invocation.caller,
                &row.name,
                &row.cron,
                &row.tz,
                &row.commands,
            )
            .map_err(|e| builtin(format!("cannot run schedule {} now: {e}", row.name)))?;
        }
        let now: DateTime<Utc> = self.inner.now();
        let run = self
            .inner
            .claim(&row.name, RunKind::Manual, now, now)
            .map_err(builtin)?
            .ok_or_else(|| builtin(format!("schedule {} was just run; try again", row.name)))?;
        let (outcome, summary) = self
            .inner
            .execute(
                row,
                run,
                Some(format!("run by {}", invocation.caller.display_name)),
            )
            .await;
        let text = format!(
            "Ran schedule {}: {summary} (reported in {}).",
            row.name, row.channel
        );
        Ok(if outcome == "ok" {
            Response::ok(text)
        } else {
            Response::error(text)
        })
    }
}
