//! The `[discord]` section of the config file.
//!
//! ```toml
//! [discord]
//! token = "${DISCORD_TOKEN}"
//! guild_id = 123456789012345678       # optional: guild-scoped commands (instant updates)
//!
//! [discord.roles]                    # optional: Discord role id → role name in [[permissions]]
//! "539082325061836999" = "admin"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

/// How the bot connects to Discord and how it answers there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Bot token (Developer Portal → Bot → Token), normally `"${DISCORD_TOKEN}"`.
    pub token: Secret,
    /// Application id; learned from the gateway's READY when absent.
    #[serde(default)]
    pub application_id: Option<u64>,
    /// Register commands in this guild only (instant updates); global when absent.
    #[serde(default)]
    pub guild_id: Option<u64>,
    /// Further guilds whose interactions are served (besides `guild_id`). Interactions from
    /// other guilds get a short private refusal and run nothing. Without `guild_id` and this,
    /// every guild the bot was invited to is served.
    #[serde(default)]
    pub allowed_guilds: Vec<u64>,
    /// Discord role id → the role name used in `[[permissions]]` and `[confirm]`. A role id
    /// that is not listed is passed through as the id itself, so rules may also name ids.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// How long to wait for a command before deferring (Discord allows 3 s for the first
    /// answer). A command done by then is answered directly, ephemeral when it asks to be.
    #[serde(
        default = "default_defer_after",
        with = "crate::config_support::duration"
    )]
    pub defer_after: Duration,
    /// At most one progress edit of the original reply per this interval.
    #[serde(
        default = "default_progress_interval",
        with = "crate::config_support::duration"
    )]
    pub progress_interval: Duration,
    /// Lifetime of an interaction token (Discord: 15 min). Results of commands that run
    /// longer are posted as channel messages instead of edits.
    #[serde(
        default = "default_token_lifetime",
        with = "crate::config_support::duration"
    )]
    pub token_lifetime: Duration,
    /// Time the owning plugin gets to suggest autocomplete choices.
    #[serde(
        default = "default_autocomplete_timeout",
        with = "crate::config_support::duration"
    )]
    pub autocomplete_timeout: Duration,
    /// How long buttons under unprompted messages (alerts, schedule warnings) stay usable.
    #[serde(
        default = "default_action_ttl",
        with = "crate::config_support::duration"
    )]
    pub action_ttl: Duration,
    /// How often the command list is compared with what was registered (plugin reloads).
    #[serde(
        default = "default_resync_interval",
        with = "crate::config_support::duration"
    )]
    pub resync_interval: Duration,
    /// Testing only: send REST calls to this base URL instead of `https://discord.com` (a
    /// local Discord double). Turns serenity's ratelimiter off (serenity #1739), so never set
    /// it in production.
    #[serde(default)]
    pub api_base_url: Option<String>,
}

fn default_defer_after() -> Duration {
    Duration::from_millis(1000)
}
fn default_progress_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_token_lifetime() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_autocomplete_timeout() -> Duration {
    Duration::from_millis(2000)
}
fn default_action_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_resync_interval() -> Duration {
    Duration::from_secs(2)
}

impl DiscordConfig {
    /// A config with defaults around `token`.
    pub fn new(token: Secret) -> DiscordConfig {
        DiscordConfig {
            token,
            application_id: None,
            guild_id: None,
            allowed_guilds: Vec::new(),
            roles: BTreeMap::new(),
            defer_after: default_defer_after(),
            progress_interval: default_progress_interval(),
            token_lifetime: default_token_lifetime(),
            autocomplete_timeout: default_autocomplete_timeout(),
            action_ttl: default_action_ttl(),
            resync_interval: default_resync_interval(),
            api_base_url: None,
        }
    }

    /// The role name a Discord role id maps to (the id itself when unmapped).
    pub fn role_name(&self, role_id: &str) -> String {
        self.roles
            .get(role_id)
            .cloned()
            .unwrap_or_else(|| role_id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_maps_roles() {
        let config: DiscordConfig = toml::from_str(
            "token = \"t\"\nguild_id = 42\ndefer_after = \"500ms\"\n[roles]\n\"7\" = \"admin\"\n",
        )
        .unwrap();
        assert_eq!(config.guild_id, Some(42));
        assert_eq!(config.defer_after, Duration::from_millis(500));
        assert_eq!(config.token_lifetime, Duration::from_secs(900));
        assert_eq!(config.role_name("7"), "admin");
        assert_eq!(config.role_name("8"), "8");
        assert!(!format!("{config:?}").contains("\"t\""));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<DiscordConfig>("token = \"t\"\ngild_id = 1\n").unwrap_err();
        assert!(err.to_string().contains("gild_id"), "{err}");
    }
}
