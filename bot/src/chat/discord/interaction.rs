//! Interactions → the router's neutral input: who is calling ([`Caller`]) and the command line
//! the options spell (`/aks pool scale --name=gpu --count=0`). Typing the options back into a
//! command line keeps one parser, one validation and one audit format for every surface.

use deckhand_plugin_abi::proto::{Caller, CommandSpec};
use serde_json::{Map, Value};
use serenity::all::{CommandData, CommandDataOption, CommandDataOptionValue, Member, User};

use super::config::DiscordConfig;

/// The caller as the permission config sees them: the Discord user id, the name shown in the
/// guild, and the member's role ids mapped through `[discord.roles]`.
pub fn caller(config: &DiscordConfig, user: &User, member: Option<&Member>) -> Caller {
    let display_name = member
        .map(|m| m.display_name().to_owned())
        .unwrap_or_else(|| user.display_name().to_owned());
    let roles = member
        .map(|m| {
            m.roles
                .iter()
                .map(|r| config.role_name(&r.get().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Caller {
        user_id: user.id.get().to_string(),
        display_name,
        roles,
    }
}

/// A leaf value as the router's parser reads it; `None` for nested or unknown kinds.
fn value_text(value: &CommandDataOptionValue) -> Option<String> {
    Some(match value {
        CommandDataOptionValue::String(s) => s.clone(),
        CommandDataOptionValue::Integer(i) => i.to_string(),
        CommandDataOptionValue::Number(n) => n.to_string(),
        CommandDataOptionValue::Boolean(b) => b.to_string(),
        CommandDataOptionValue::User(id) => id.get().to_string(),
        CommandDataOptionValue::Channel(id) => id.get().to_string(),
        CommandDataOptionValue::Role(id) => id.get().to_string(),
        CommandDataOptionValue::Mentionable(id) => id.get().to_string(),
        CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
        _ => return None,
    })
}

/// The subcommand path below the command and the leaf options.
pub fn split_path(data: &CommandData) -> (Vec<String>, &[CommandDataOption]) {
    let mut path = vec![data.name.clone()];
    let mut options: &[CommandDataOption] = &data.options;
    loop {
        match options.first().map(|o| (&o.name, &o.value)) {
            Some((name, CommandDataOptionValue::SubCommand(inner)))
            | Some((name, CommandDataOptionValue::SubCommandGroup(inner))) => {
                path.push(name.clone());
                options = inner;
            }
            _ => return (path, options),
        }
    }
}

fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=.,:/@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_owned();
    }
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| word.replace('\0', ""))
}

/// `/name sub --option=value ...`, each word quoted so the parser gets the values back intact
/// (`--name=value` never mistakes a value starting with `--` for an option).
pub fn command_line(data: &CommandData) -> String {
    let (path, options) = split_path(data);
    let mut words = vec![format!("/{}", path.join(" "))];
    for option in options {
        if let Some(value) = value_text(&option.value) {
            words.push(quote(&format!("--{}={value}", option.name)));
        }
    }
    words.join(" ")
}

/// For autocomplete: the path, the focused option's name and partial text, and the other
/// options filled in so far (loosely typed).
pub fn autocomplete_parts(data: &CommandData) -> (Vec<String>, String, String, Map<String, Value>) {
    let (path, options) = split_path(data);
    let mut focused = (String::new(), String::new());
    let mut others = Map::new();
    for option in options {
        match &option.value {
            CommandDataOptionValue::Autocomplete { value, .. } => {
                focused = (option.name.clone(), value.clone());
            }
            CommandDataOptionValue::Integer(i) => {
                others.insert(option.name.clone(), Value::from(*i));
            }
            CommandDataOptionValue::Boolean(b) => {
                others.insert(option.name.clone(), Value::from(*b));
            }
            other => {
                if let Some(text) = value_text(other) {
                    others.insert(option.name.clone(), Value::String(text));
                }
            }
        }
    }
    (path, focused.0, focused.1, others)
}

/// The manifest entry of the (sub)command at `path` (`["aks", "pool", "add"]`).
pub fn leaf_spec<'a>(spec: Option<&'a CommandSpec>, path: &[String]) -> Option<&'a CommandSpec> {
    let mut leaf = spec?;
    for name in path.iter().skip(1) {
        leaf = leaf.subcommands.iter().find(|s| &s.name == name)?;
    }
    Some(leaf)
}

/// Whether any option given is marked sensitive in the manifest (then the whole answer is
/// ephemeral: Discord shows the invocation's options with the reply).
pub fn has_sensitive_option(spec: Option<&CommandSpec>, data: &CommandData) -> bool {
    let (path, options) = split_path(data);
    let Some(leaf) = leaf_spec(spec, &path) else {
        return false;
    };
    options
        .iter()
        .any(|o| leaf.options.iter().any(|s| s.name == o.name && s.sensitive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> CommandData {
        serde_json::from_value(value).expect("command data")
    }

    #[test]
    fn options_become_a_quoted_command_line() {
        let d = data(json!({
            "id": "1", "name": "echo", "type": 1,
            "options": [
                {"name": "text", "type": 3, "value": "hello 'world' --x"},
                {"name": "times", "type": 4, "value": 2},
                {"name": "upper", "type": 5, "value": false}
            ]
        }));
        let line = command_line(&d);
        assert_eq!(
            crate::router::parse::tokenize(&line).unwrap(),
            [
                "/echo",
                "--text=hello 'world' --x",
                "--times=2",
                "--upper=false"
            ]
        );
    }

    #[test]
    fn subcommand_groups_become_the_path() {
        let d = data(json!({
            "id": "1", "name": "aks", "type": 1,
            "options": [{"name": "pool", "type": 2, "options": [
                {"name": "scale", "type": 1, "options": [{"name": "count", "type": 4, "value": 0}]}
            ]}]
        }));
        assert_eq!(command_line(&d), "/aks pool scale --count=0");
    }

    #[test]
    fn autocomplete_finds_the_focused_option() {
        let d = data(json!({
            "id": "1", "name": "echo", "type": 1,
            "options": [
                {"name": "text", "type": 3, "value": "hi"},
                {"name": "color", "type": 3, "value": "gr", "focused": true}
            ]
        }));
        let (path, name, partial, others) = autocomplete_parts(&d);
        assert_eq!(
            (path, name.as_str(), partial.as_str()),
            (vec!["echo".to_owned()], "color", "gr")
        );
        assert_eq!(others.get("text"), Some(&json!("hi")));
    }
}
