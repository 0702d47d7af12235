//! Manifests → Discord application commands (the JSON of a bulk overwrite, `PUT
//! /applications/{app}/[guilds/{guild}/]commands`). A PUT replaces the whole list, so commands
//! of a plugin that went away, or options a reload removed, disappear with the next PUT.
//!
//! Mapping: a command with subcommands becomes options of type 1 (subcommand) or 2 (group of
//! subcommands); Discord allows no deeper nesting. Option kinds: string → 3, integer → 4,
//! boolean → 5, duration → 3 (text such as `90s`, checked by the router), choice → 3 with
//! `choices`, or with `autocomplete` instead when the manifest asks for autocomplete or lists
//! more than 25 choices (Discord refuses both on one option). Required options come first, as
//! Discord demands; values are sent back by name, so the order does not matter to the router.

use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use serde_json::{Value, json};

use crate::router::parse::CommandIndex;

/// Discord's limits on application commands.
pub const MAX_OPTIONS: usize = 25;
pub const MAX_CHOICES: usize = 25;
pub const MAX_DESCRIPTION: usize = 100;

/// Application command option types.
pub mod kind {
    pub const SUB_COMMAND: u8 = 1;
    pub const SUB_COMMAND_GROUP: u8 = 2;
    pub const STRING: u8 = 3;
    pub const INTEGER: u8 = 4;
    pub const BOOLEAN: u8 = 5;
    pub const CHANNEL: u8 = 7;
}

/// Channel types a channel option offers: text (0) and announcement (5) channels, where the
/// bot posts.
pub const POSTABLE_CHANNEL_TYPES: [u8; 2] = [0, 5];

/// A command that cannot be represented on Discord; the others are registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("/{path}: Discord allows subcommand groups of subcommands, not deeper nesting")]
    TooDeep { path: String },
    #[error("/{path}: {count} options or subcommands, Discord allows {MAX_OPTIONS}")]
    TooManyOptions { path: String, count: usize },
}

/// Discord's description: 1–100 characters.
fn description(text: &str, fallback: &str) -> String {
    let text = text.trim();
    let text = if text.is_empty() { fallback } else { text };
    if text.chars().count() <= MAX_DESCRIPTION {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
        cut.push('…');
        cut
    }
}

fn option_json(option: &OptionSpec) -> Value {
    let kind = match option.kind {
        OptionKind::String | OptionKind::Duration | OptionKind::Choice => kind::STRING,
        OptionKind::Integer => kind::INTEGER,
        OptionKind::Boolean => kind::BOOLEAN,
        OptionKind::Channel => kind::CHANNEL,
    };
    let mut out = json!({
        "type": kind,
        "name": option.name,
        "description": description(&option.description, &option.name),
        "required": option.required,
    });
    if option.kind == OptionKind::Channel {
        out["channel_types"] = json!(POSTABLE_CHANNEL_TYPES);
        return out;
    }
    if option.kind == OptionKind::Integer {
        if let Some(min) = option.min {
            out["min_value"] = json!(min);
        }
        if let Some(max) = option.max {
            out["max_value"] = json!(max);
        }
    }
    let too_many_choices = option.choices.len() > MAX_CHOICES;
    if option.autocomplete || too_many_choices {
        out["autocomplete"] = json!(true);
    } else if option.kind == OptionKind::Choice {
        out["choices"] = option
            .choices
            .iter()
            .map(|c| json!({ "name": c, "value": c }))
            .collect();
    }
    out
}

fn options_json(path: &str, options: &[OptionSpec]) -> Result<Vec<Value>, RegisterError> {
    if options.len() > MAX_OPTIONS {
        return Err(RegisterError::TooManyOptions {
            path: path.to_owned(),
            count: options.len(),
        });
    }
    let mut sorted: Vec<&OptionSpec> = options.iter().collect();
    sorted.sort_by_key(|o| !o.required);
    Ok(sorted.into_iter().map(option_json).collect())
}

fn subcommand_json(path: &str, spec: &CommandSpec, depth: usize) -> Result<Value, RegisterError> {
    let path = format!("{path} {}", spec.name);
    let mut out = json!({
        "name": spec.name,
        "description": description(&spec.description, &spec.name),
    });
    if spec.subcommands.is_empty() {
        out["type"] = json!(kind::SUB_COMMAND);
        out["options"] = Value::Array(options_json(&path, &spec.options)?);
    } else if depth == 1 {
        out["type"] = json!(kind::SUB_COMMAND_GROUP);
        out["options"] = Value::Array(subcommands_json(&path, &spec.subcommands, 2)?);
    } else {
        return Err(RegisterError::TooDeep { path });
    }
    Ok(out)
}

fn subcommands_json(
    path: &str,
    subs: &[CommandSpec],
    depth: usize,
) -> Result<Vec<Value>, RegisterError> {
    if subs.len() > MAX_OPTIONS {
        return Err(RegisterError::TooManyOptions {
            path: path.to_owned(),
            count: subs.len(),
        });
    }
    subs.iter()
        .map(|s| subcommand_json(path, s, depth))
        .collect()
}

/// `MANAGE_GUILD` (`1 << 5`): the default Discord applies to destructive commands, so only
/// server managers see them until an admin grants them to roles under Server Settings →
/// Integrations. Deckhand's `[[permissions]]` still decide who may run them.
pub const DESTRUCTIVE_PERMISSIONS: &str = "32";

/// Whether every command reachable under `spec` is destructive (Discord's
/// `default_member_permissions` applies to a whole top-level command, so a command with
/// harmless subcommands stays visible to everyone).
fn all_destructive(spec: &CommandSpec) -> bool {
    if spec.subcommands.is_empty() {
        spec.destructive
    } else {
        spec.subcommands.iter().all(all_destructive)
    }
}

/// One top-level command (`type` 1, chat input).
pub fn command_json(spec: &CommandSpec) -> Result<Value, RegisterError> {
    let options = if spec.subcommands.is_empty() {
        options_json(&spec.name, &spec.options)?
    } else {
        subcommands_json(&spec.name, &spec.subcommands, 1)?
    };
    let mut out = json!({
        "type": 1,
        "name": spec.name,
        "description": description(&spec.description, &spec.name),
        "options": options,
    });
    if all_destructive(spec) {
        out["default_member_permissions"] = json!(DESTRUCTIVE_PERMISSIONS);
    }
    Ok(out)
}

/// Every command of the index (built-ins and plugins), sorted by name, plus the ones that
/// could not be represented.
pub fn commands_json(index: &CommandIndex) -> (Vec<Value>, Vec<RegisterError>) {
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    for (_, spec) in index.entries.values() {
        match command_json(spec) {
            Ok(command) => commands.push(command),
            Err(e) => errors.push(e),
        }
    }
    (commands, errors)
}

/// Wait before sending a refused command list again: 5 s doubling to at most 10 min.
pub fn retry_backoff(attempts: u32) -> std::time::Duration {
    let secs = 5u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(10));
    std::time::Duration::from_secs(secs.min(600))
}

/// Discord's refusal of a bulk overwrite in words: the offending command (Discord names it
/// by its index in the list) and the rule (`0.options.1.name: Command name is invalid`).
pub fn refusal(error: &serenity::Error, payload: &Value) -> String {
    let serenity::Error::Http(serenity::all::HttpError::UnsuccessfulRequest(response)) = error
    else {
        return error.to_string();
    };
    let json = &response.error;
    if json.errors.is_empty() {
        return format!("{} ({})", json.message, json.code);
    }
    json.errors
        .iter()
        .map(|e| {
            let mut path = e.path.split('.');
            let command = path
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| payload.get(i))
                .and_then(|c| c["name"].as_str())
                .map_or_else(|| "the list".to_owned(), |n| format!("/{n}"));
            let rest: Vec<&str> = path.collect();
            format!("{command} {}: {} ({})", rest.join("."), e.message, e.code)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::parse::Owner;

    #[test]
    fn options_map_to_discord_types() {
        let spec = CommandSpec::new("echo", "Repeat")
            .option(OptionSpec::new("upper", OptionKind::Boolean, "Shout"))
            .option(OptionSpec::new("text", OptionKind::String, "What").required())
            .option(OptionSpec::choice("color", &["red", "blue"], "A color"))
            .option(OptionSpec::choice("shade", &["a", "b"], "A shade").autocomplete())
            .option(OptionSpec::new("wait", OptionKind::Duration, ""))
            .option(OptionSpec::new("count", OptionKind::Integer, "N").range(0, 50));
        let json = command_json(&spec).unwrap();
        let options = json["options"].as_array().unwrap();
        let names: Vec<&str> = options
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["text", "upper", "color", "shade", "wait", "count"]);
        assert_eq!(
            (&options[5]["min_value"], &options[5]["max_value"]),
            (&json!(0), &json!(50))
        );
        assert_eq!(options[0]["type"], 3);
        assert_eq!(options[0]["required"], true);
        assert_eq!(options[1]["type"], 5);
        assert_eq!(
            options[2]["choices"],
            json!([{"name": "red", "value": "red"}, {"name": "blue", "value": "blue"}])
        );
        assert_eq!(options[3]["autocomplete"], true);
        assert!(options[3].get("choices").is_none());
        assert_eq!(options[4]["description"], "wait");
    }

    #[test]
    fn subcommands_and_groups_and_too_deep() {
        let leaf =
            CommandSpec::new("add", "Add").option(OptionSpec::new("n", OptionKind::Integer, "N"));
        let group = CommandSpec::new("pool", "Pools").subcommand(leaf.clone());
        let spec = CommandSpec::new("aks", "AKS")
            .subcommand(group.clone())
            .subcommand(CommandSpec::new("status", "Status"));
        let json = command_json(&spec).unwrap();
        assert_eq!(json["options"][0]["type"], 2);
        assert_eq!(json["options"][0]["options"][0]["type"], 1);
        assert_eq!(json["options"][0]["options"][0]["options"][0]["type"], 4);
        assert_eq!(json["options"][1]["type"], 1);
        let deep =
            CommandSpec::new("x", "X").subcommand(CommandSpec::new("y", "Y").subcommand(group));
        assert_eq!(
            command_json(&deep).unwrap_err(),
            RegisterError::TooDeep {
                path: "x y pool".into()
            }
        );
        let mut index = CommandIndex::default();
        index.insert(Owner::Builtin, spec);
        index.insert(Owner::Builtin, deep);
        let (ok, errors) = commands_json(&index);
        assert_eq!((ok.len(), errors.len()), (1, 1));
    }

    #[test]
    fn destructive_commands_default_to_server_managers() {
        let wipe = CommandSpec::new("wipe", "Wipe").destructive();
        assert_eq!(
            command_json(&wipe).unwrap()["default_member_permissions"],
            DESTRUCTIVE_PERMISSIONS
        );
        let mixed = CommandSpec::new("pool", "Pools")
            .subcommand(CommandSpec::new("delete", "Delete").destructive())
            .subcommand(CommandSpec::new("list", "List"));
        assert!(
            command_json(&mixed)
                .unwrap()
                .get("default_member_permissions")
                .is_none()
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let secs: Vec<u64> = [1, 2, 3, 20]
            .iter()
            .map(|a| retry_backoff(*a).as_secs())
            .collect();
        assert_eq!(secs, [5, 10, 20, 600]);
    }

    #[test]
    fn long_descriptions_are_cut() {
        let d = description(&"x".repeat(300), "n");
        assert_eq!(d.chars().count(), MAX_DESCRIPTION);
    }
}
