//! Schedules declared in the config (`[schedules]` and its file): checked against the loaded
//! commands and the owner's permissions, then written to the store.

use super::store::{ScheduleRow, Source};
use super::{Inner, SchedError, commands, config};
use crate::router::Router;

impl Inner {
    /// Writes the config-declared schedules, dropping those no longer declared. Returns the
    /// entries that were refused, each with its reason.
    pub(super) fn load_config(
        &self,
        section: &config::SchedulesConfig,
        base_dir: &std::path::Path,
    ) -> Result<Vec<String>, SchedError> {
        let checked = checked_config(&self.router, section, base_dir);
        let now = self.now();
        *self.guards.lock().unwrap_or_else(|p| p.into_inner()) = checked
            .valid
            .iter()
            .filter_map(|d| d.guard.clone().map(|g| (d.name.clone(), g)))
            .collect();
        *self.days.lock().unwrap_or_else(|p| p.into_inner()) = checked
            .valid
            .iter()
            .filter_map(|d| {
                checked
                    .calendars
                    .days_for(&d.skip_on, &d.only_on)
                    .ok()
                    .filter(|f| !f.is_empty())
                    .map(|f| (d.name.clone(), f))
            })
            .collect();
        for def in &checked.valid {
            self.store.upsert_config(&ScheduleRow {
                name: def.name.clone(),
                cron: def.cron.clone(),
                tz: def.tz.clone(),
                commands: def.commands.clone(),
                channel: def.channel.clone(),
                warn_secs: def
                    .warn
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                owner: checked.owner.clone(),
                source: Source::Config,
                created_at: now,
                anchor: now,
                paused: false,
                skip_due: None,
                skip_until: None,
                snooze_due: None,
                snooze_to: None,
                warned_for: None,
            })?;
        }
        let keep = checked.names;
        let errors = checked.errors;
        for gone in self.store.prune_config(&keep)? {
            tracing::info!(schedule = %gone, "config schedule removed from config: deleted");
        }
        Ok(errors)
    }
}

struct CheckedConfig {
    owner: deckhand_plugin_abi::proto::Caller,
    calendars: super::calendar::Calendars,
    valid: Vec<config::ScheduleDef>,
    /// Every declared name, valid or not (an invalid entry keeps its stored state).
    names: Vec<String>,
    errors: Vec<String>,
}

/// The schedules the config declares (inline and in `file`), as written; a file that cannot
/// be read gives none (`check` reports it).
fn declared(
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> Vec<config::ScheduleDef> {
    let mut defs = section.schedule.clone();
    if let Some(file) = &section.file
        && let Ok(more) = config::load_file(&crate::config_support::resolve(base_dir, file))
    {
        defs.extend(more);
    }
    defs
}

/// Every channel the config-declared schedules post to: `(schedule NAME, channel)`.
pub fn declared_channels(
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> Vec<(String, String)> {
    declared(section, base_dir)
        .into_iter()
        .map(|d| (format!("schedule {}", d.name), d.channel))
        .collect()
}

/// Reads and validates the config-declared schedules against the loaded commands and the
/// owner's permissions.
fn checked_config(
    router: &Router,
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> CheckedConfig {
    let mut defs = section.schedule.clone();
    let mut errors = Vec::new();
    if let Some(file) = &section.file {
        match config::load_file(&crate::config_support::resolve(base_dir, file)) {
            Ok(more) => defs.extend(more),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let owner = deckhand_plugin_abi::proto::Caller {
        user_id: section.owner.user_id.clone(),
        display_name: section.owner.display_name.clone(),
        roles: section.owner.roles.clone(),
    };
    let (calendars, calendar_errors) = super::calendar::Calendars::parse(&section.calendars);
    errors.extend(calendar_errors);
    let mut valid = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for def in defs {
        if names.contains(&def.name) {
            errors.push(format!("schedule {}: declared twice", def.name));
            continue;
        }
        names.push(def.name.clone());
        let checked =
            commands::validate(router, &owner, &def.name, &def.cron, &def.tz, &def.commands)
                .map(|_| ())
                .and_then(|()| match &def.guard {
                    Some(guard) => commands::validate(
                        router,
                        &owner,
                        &def.name,
                        &def.cron,
                        &def.tz,
                        std::slice::from_ref(&guard.command),
                    )
                    .map(|_| ())
                    .map_err(|e| format!("its guard: {e}")),
                    None => Ok(()),
                })
                .and_then(|()| calendars.days_for(&def.skip_on, &def.only_on).map(|_| ()))
                .and_then(|_| {
                    if def.channel.trim().is_empty() {
                        Err("its channel is empty".to_owned())
                    } else {
                        crate::router::parse::ChannelRef::parse(&def.channel)
                            .map(|_| ())
                            .map_err(|e| format!("its channel: {e}"))
                    }
                });
        match checked {
            Ok(()) => valid.push(def),
            Err(reason) => errors.push(format!("schedule {}: {reason}", def.name)),
        }
    }
    CheckedConfig {
        owner,
        calendars,
        valid,
        names,
        errors,
    }
}

/// Problems with the config-declared schedules, for `deckhand check`: nothing is written.
pub fn check(
    router: &Router,
    section: &config::SchedulesConfig,
    base_dir: &std::path::Path,
) -> Vec<String> {
    checked_config(router, section, base_dir).errors
}
