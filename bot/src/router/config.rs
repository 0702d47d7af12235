//! The router's sections: `[confirm]` (confirmation and approval) and `[[permissions]]`.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmConfig {
    /// How long a destructive command waits for its confirmation.
    #[serde(
        default = "default_confirm_timeout",
        with = "crate::config_support::duration"
    )]
    pub timeout: Duration,
    /// Commands that need a second person with an approver role.
    #[serde(default)]
    pub approval: Vec<ApprovalRule>,
    /// Surfaces besides the terminal (`[terminal] allow_yes`) where `--yes` skips a
    /// confirmation, e.g. `["schedule"]` so an unattended nightly scale-down can run.
    #[serde(default)]
    pub allow_yes_on: Vec<String>,
}

fn default_confirm_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            timeout: default_confirm_timeout(),
            approval: Vec::new(),
            allow_yes_on: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Permission patterns of the commands this applies to (`aks.stop`, `aks.pool.*`).
    pub commands: Vec<String>,
    pub approver_roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionRule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permission patterns: `*`, `aks.*`, `*.status`.
    pub allow: Vec<String>,
}
