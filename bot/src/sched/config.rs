//! The `[schedules]` section of `deckhand.toml` and the schedules file it names
//! (`config/schedules.toml`): schedules declared by the operators rather than in chat.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config_support::{ConfigError, toml_error};

/// `[schedules]` in `deckhand.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulesConfig {
    /// A file of `[[schedule]]` entries (relative to the config file).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Schedules declared inline, same shape as in the file.
    #[serde(default)]
    pub schedule: Vec<ScheduleDef>,
    /// A firing missed while the bot was down still runs (once) if the bot is back within
    /// this long after its due time; older ones are reported as missed.
    #[serde(default = "default_grace", with = "crate::config_support::duration")]
    pub grace: Duration,
    /// The user config-declared schedules run as (permissions apply to this id and roles).
    #[serde(default)]
    pub owner: OwnerConfig,
    /// Leader election through a Kubernetes Lease; absent: this replica always leads.
    #[serde(default)]
    pub leader: Option<LeaderConfig>,
    /// Named lists of days (`YYYY-MM-DD`, or `*-MM-DD` every year) for `skip_on`/`only_on`.
    #[serde(default)]
    pub calendars: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        SchedulesConfig {
            file: None,
            schedule: Vec::new(),
            grace: default_grace(),
            owner: OwnerConfig::default(),
            leader: None,
            calendars: Default::default(),
        }
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(30 * 60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerConfig {
    pub user_id: String,
    #[serde(default = "default_owner_name")]
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

fn default_owner_name() -> String {
    "Deckhand schedules (config)".into()
}

impl Default for OwnerConfig {
    fn default() -> Self {
        OwnerConfig {
            user_id: "deckhand-schedules".into(),
            display_name: default_owner_name(),
            roles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderConfig {
    pub namespace: String,
    /// Name of the Lease object.
    #[serde(default = "default_lease_name")]
    pub lease: String,
    /// This replica's identity; default: the HOSTNAME variable (the pod name).
    #[serde(default)]
    pub identity: Option<String>,
    /// How long a lease is valid without renewal.
    #[serde(
        default = "default_lease_duration",
        with = "crate::config_support::duration"
    )]
    pub duration: Duration,
}

fn default_lease_name() -> String {
    "deckhand-scheduler".into()
}

fn default_lease_duration() -> Duration {
    Duration::from_secs(15)
}

/// One schedule, as written in config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    pub name: String,
    /// Six or seven fields, seconds first: `"0 0 20 * * Mon-Fri"`.
    pub cron: String,
    #[serde(default = "default_tz")]
    pub tz: String,
    /// Commands run in order, each reported on its own; one failing does not stop the rest.
    pub commands: Vec<String>,
    pub channel: String,
    /// Warn this long before each run (`"15m"`).
    #[serde(default, with = "crate::config_support::duration::option")]
    pub warn: Option<Duration>,
    /// Asked before each run; while it fails the run is deferred (see [`GuardDef`]).
    #[serde(default)]
    pub guard: Option<GuardDef>,
    /// Not run on the days of these calendars (`[schedules.calendars]`), in the schedule's zone.
    #[serde(default)]
    pub skip_on: Vec<String>,
    /// When set: run only on the days of these calendars.
    #[serde(default)]
    pub only_on: Vec<String>,
}

/// `[schedule.guard]`: a command asked before each run, e.g. `/runner guard --pool gpu` before
/// a GPU scale-down. While it fails (jobs in progress, or it cannot tell) the run is deferred and
/// asked again every `recheck`, never forced; after `until` past the due time the run is given up
/// for that night and said so. Config schedules only.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GuardDef {
    pub command: String,
    #[serde(default = "default_recheck", with = "crate::config_support::duration")]
    pub recheck: Duration,
    #[serde(default = "default_until", with = "crate::config_support::duration")]
    pub until: Duration,
}

fn default_recheck() -> Duration {
    Duration::from_secs(600)
}

fn default_until() -> Duration {
    Duration::from_secs(2 * 3600)
}

fn default_tz() -> String {
    "UTC".into()
}

/// The schedules file: `[[schedule]]` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulesFile {
    #[serde(default)]
    pub schedule: Vec<ScheduleDef>,
}

/// Reads a schedules file; the error names line, column and key (not the line's text, which
/// could hold a secret).
pub fn load_file(path: &Path) -> Result<Vec<ScheduleDef>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: SchedulesFile = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: toml_error(&text, &e),
    })?;
    Ok(file.schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_schedules_file_parses_and_every_entry_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/schedules.toml");
        let defs = load_file(&path).unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["gpu-nightly-off", "gpu-weekday-warmup"]);
        for def in &defs {
            crate::sched::timing::Timing::new(&def.cron, &def.tz).unwrap();
            assert_eq!(def.tz, "Europe/Helsinki");
            assert_eq!(def.channel, "#gpu-ops");
        }
        assert!(
            defs[0]
                .commands
                .iter()
                .any(|c| c.contains("--pool gpu --count 0"))
        );
        assert!(
            defs[0]
                .commands
                .iter()
                .any(|c| c.contains("--pool workers --count 0"))
        );
    }

    #[test]
    fn a_typo_in_the_schedules_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[[schedule]]\nname = \"a\"\ncron = \"0 0 20 * * *\"\nchanel = \"x\"\ncommands = []\n",
        )
        .unwrap();
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 4") && err.contains("chanel"), "{err}");
    }
}
