//! The bot's own commands: help, plugins, whoami, audit, confirm, approve, cancel; and the
//! [`BuiltinGroup`] seam through which other parts of the bot (schedules, alerts) add theirs.

use std::sync::atomic::Ordering;

use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::sync::mpsc;

use super::help;
use super::parse::Parsed;
use super::{Invocation, Response, Router, RouterError};

/// Every top-level name the router keeps: its own built-ins and the groups other components
/// add (`/schedule`, `/alerts`). The app hands this list to the plugin host, which refuses a
/// plugin claiming one of them, so no plugin can shadow a built-in.
pub const RESERVED_COMMANDS: &[&str] = &[
    "help", "plugins", "whoami", "audit", "confirm", "approve", "cancel", "schedule", "alerts",
    "cost",
];

/// Commands served inside the bot rather than by a plugin (e.g. `/schedule`, `/alerts`).
/// Registered with [`Router::add_builtins`]; parsed, authorized, audited like any command.
pub trait BuiltinGroup: Send + Sync {
    /// Top-level commands this group serves (their names must not clash with others).
    fn specs(&self) -> Vec<CommandSpec>;

    /// Runs one parsed command whose top-level name is in [`BuiltinGroup::specs`].
    fn run<'a>(
        &'a self,
        router: &'a Router,
        invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>>;
}

/// Specs of the built-ins; an empty permission means anyone may run it.
pub fn specs() -> Vec<CommandSpec> {
    vec![
        CommandSpec::new("help", "List commands, or explain one")
            .option(
                OptionSpec::new(
                    "command",
                    OptionKind::String,
                    "Command path, e.g. `aks scale`",
                )
                .positional()
                .autocomplete(),
            )
            .permission(""),
        CommandSpec::new("plugins", "Loaded plugins")
            .subcommand(CommandSpec::new(
                "list",
                "Loaded plugins, their commands and service calls",
            ))
            .subcommand(
                CommandSpec::new("reload", "Load a rebuilt plugin library without restarting")
                    .option(
                        OptionSpec::new("name", OptionKind::String, "Plugin name")
                            .required()
                            .positional()
                            .autocomplete(),
                    ),
            ),
        CommandSpec::new("whoami", "Who the bot thinks you are, and what you may run")
            .permission("")
            .private(),
        CommandSpec::new("audit", "The last commands run, newest first").option(
            OptionSpec::new("count", OptionKind::Integer, "How many")
                .positional()
                .range(1, 500)
                .default_value(json!(10)),
        ),
        CommandSpec::new("confirm", "Confirm a destructive command you asked for")
            .option(
                OptionSpec::new("code", OptionKind::String, "The code shown")
                    .required()
                    .positional(),
            )
            .permission(""),
        CommandSpec::new(
            "approve",
            "Approve someone else's destructive command (approver role)",
        )
        .option(
            OptionSpec::new("code", OptionKind::String, "The code shown")
                .required()
                .positional(),
        )
        .permission(""),
        CommandSpec::new("cancel", "Cancel a running command").option(
            OptionSpec::new("invocation", OptionKind::String, "Invocation id")
                .required()
                .positional(),
        ),
    ]
}

/// `/help aks scale` takes the whole rest of the line as the topic.
pub fn normalize(text: &str) -> String {
    let trimmed = text.trim();
    let mut words = trimmed.splitn(2, char::is_whitespace);
    let first = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim();
    if matches!(first, "/help" | "help") && !rest.is_empty() && !rest.contains("--") {
        format!("{first} -- {rest}")
    } else {
        trimmed.to_owned()
    }
}

/// Built-ins that change nothing and call no plugin, so their audit row can be written once,
/// closed, after they ran (see `Router::handle`). Groups added by other parts of the bot are
/// never in this list.
pub fn is_read_only(path: &[String]) -> bool {
    matches!(
        path.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["help"] | ["whoami"] | ["plugins", "list"]
    )
}

pub async fn run(
    router: &Router,
    invocation: &Invocation,
    parsed: &Parsed,
    progress: mpsc::UnboundedSender<String>,
) -> Result<Response, RouterError> {
    if let Some(group) = router.builtin_group(&parsed.path[0]) {
        return group.run(router, invocation, parsed).await;
    }
    let arg = |name: &str| {
        parsed
            .options
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    match parsed
        .path
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["help"] => help_topic(router, &arg("command")),
        ["plugins", "list"] => Ok(Response::ok(plugins_list(router))),
        ["plugins", "reload"] => {
            let name = arg("name");
            let loaded = router
                .host()
                .reload(&name)
                .map_err(|e| RouterError::Builtin(e.to_string()))?;
            Ok(Response::ok(format!(
                "Reloaded plugin {} {} (generation {}) from {}; calls already running finish on the previous copy.",
                loaded.manifest.name,
                loaded.manifest.version,
                loaded.generation,
                loaded.source.display()
            )))
        }
        ["whoami"] => Ok(whoami(router, invocation)),
        ["audit"] => audit(
            router,
            invocation,
            parsed
                .options
                .get("count")
                .and_then(|v| v.as_i64())
                .unwrap_or(10),
        ),
        ["confirm"] => {
            let pending = router
                .confirms()
                .confirm(&arg("code"), &invocation.caller.user_id)
                .map_err(|f| router.confirmation_failed(f))?;
            Ok(router.run_pending(pending, progress).await)
        }
        ["approve"] => {
            let pending = router
                .confirms()
                .approve(
                    &arg("code"),
                    &invocation.caller.user_id,
                    &invocation.caller.roles,
                )
                .map_err(|f| router.confirmation_failed(f))?;
            Ok(router.run_pending(pending, progress).await)
        }
        ["cancel"] => {
            let id = arg("invocation");
            if router.host().services().cancel(&id) {
                Ok(Response::ok(format!(
                    "Cancellation of {id} requested; the plugin stops at its next check."
                )))
            } else {
                Err(RouterError::Builtin(format!(
                    "no running command has invocation id {id}"
                )))
            }
        }
        other => Err(RouterError::Builtin(format!(
            "built-in /{} is not implemented",
            other.join(" ")
        ))),
    }
}

fn help_topic(router: &Router, topic: &str) -> Result<Response, RouterError> {
    let index = router.index();
    if topic.trim().is_empty() {
        return Ok(Response::ok(help::overview(&index)));
    }
    let mut words: Vec<String> = super::parse::tokenize(topic)?;
    if let Some(first) = words.first_mut() {
        *first = first.trim_start_matches('/').to_owned();
    }
    words.push("--help".into());
    let parsed = index.parse_tokens(&words)?;
    Ok(Response::ok(help::command_help(&parsed.path, &parsed.spec)))
}

fn plugins_list(router: &Router) -> String {
    let registry = router.host().registry();
    let mut out = String::new();
    if registry.plugins.is_empty() {
        out.push_str("No plugins loaded.");
    }
    for plugin in registry.plugins.values() {
        let meter = router.host().services().meter(&plugin.manifest.name);
        let commands: Vec<String> = plugin
            .manifest
            .commands
            .iter()
            .map(|c| format!("/{}", c.name))
            .collect();
        out.push_str(&format!(
            "{} {} (generation {}) — {}\n  commands: {}\n  service calls: {} ({} refused, {} failed)\n  file: {}\n",
            plugin.manifest.name,
            plugin.manifest.version,
            plugin.generation,
            plugin.manifest.description,
            commands.join(" "),
            meter.service_calls.load(Ordering::Relaxed),
            meter.refused.load(Ordering::Relaxed),
            meter.failed.load(Ordering::Relaxed),
            plugin.source.display(),
        ));
    }
    for error in router.host().load_errors() {
        out.push_str(&format!("not loaded: {error}\n"));
    }
    out.trim_end().to_owned()
}

fn whoami(router: &Router, invocation: &Invocation) -> Response {
    let caller = &invocation.caller;
    let grants: Vec<&str> = router.options().permissions.grants(caller).collect();
    let mut response = Response::ok(format!(
        "You are {} (user id {}), roles: {}; on {} in channel {}.\nYou may run: {}",
        caller.display_name,
        caller.user_id,
        if caller.roles.is_empty() {
            "none".to_owned()
        } else {
            caller.roles.join(", ")
        },
        invocation.surface,
        invocation.channel,
        if grants.is_empty() {
            "only public commands (help, whoami, confirm)".to_owned()
        } else {
            grants.join(", ")
        }
    ));
    response.ephemeral = true;
    response
}

fn audit(router: &Router, invocation: &Invocation, count: i64) -> Result<Response, RouterError> {
    if !(1..=500).contains(&count) {
        return Err(RouterError::Builtin(format!(
            "/audit takes a count from 1 to 500, not {count}"
        )));
    }
    // The /audit call's own row (open while it runs) is not part of the answer.
    let rows: Vec<_> = router
        .db()
        .audit_recent(count as usize + 1)
        .map_err(|e| RouterError::Builtin(e.to_string()))?
        .into_iter()
        .filter(|r| r.invocation_id != invocation.id)
        .take(count as usize)
        .collect();
    if rows.is_empty() {
        return Ok(Response::ok("The audit log is empty."));
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let error = r
                .error
                .as_deref()
                .map(|e| format!(" — {}", e.lines().next().unwrap_or(e)))
                .unwrap_or_default();
            format!(
                "#{} {} {} /{} {} → {}{}",
                r.id, r.started_at, r.user_id, r.command, r.options, r.outcome, error
            )
        })
        .collect();
    Ok(Response::ok(lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_is_reserved() {
        for spec in specs() {
            assert!(
                RESERVED_COMMANDS.contains(&spec.name.as_str()),
                "/{} is served by the router but not reserved",
                spec.name
            );
        }
    }
}
