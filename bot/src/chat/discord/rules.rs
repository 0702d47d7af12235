//! Discord's rules for application commands, checked on the JSON the adapter is about to PUT,
//! so a command Discord would refuse is left out (and reported once, by name and rule) instead
//! of the whole bulk overwrite failing. The rules, from Discord's "Application Commands"
//! documentation: names 1–32 characters of `[-_'\p{L}\p{N}]` (lower case for chat input),
//! descriptions 1–100, at most 25 options and 25 choices, choice names 1–100 and values typed
//! like the option (strings 1–100), autocomplete only on string/integer/number options and
//! never with choices, `min_value`/`max_value` only on integer/number, `min_length`/
//! `max_length` only on string, `channel_types` only on channel options, subcommand groups
//! hold subcommands and nothing deeper, subcommands not mixed with other options, required
//! options before optional ones, unique names on each level, at most 8000 characters per
//! command, at most 100 chat-input commands per scope, `default_member_permissions` a
//! bitfield in a string.

use std::collections::HashSet;

use serde_json::Value;

pub const MAX_COMMANDS: usize = 100;
const MAX_NAME: usize = 32;
const MAX_TEXT: usize = 100;
const MAX_LIST: usize = 25;
const MAX_CHARS: usize = 8000;

/// Option types.
const SUB_COMMAND: u64 = 1;
const GROUP: u64 = 2;
const STRING: u64 = 3;
const INTEGER: u64 = 4;
const CHANNEL: u64 = 7;
const NUMBER: u64 = 10;

/// A rule of Discord's a command breaks: where (`aks pool add count`) and which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/{at}: {rule}")]
pub struct Violation {
    pub at: String,
    pub rule: String,
}

fn count(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn name_valid(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| matches!(c, '-' | '_' | '\'') || c.is_alphanumeric())
        && !name.chars().any(char::is_uppercase)
}

struct Check {
    out: Vec<Violation>,
}

impl Check {
    fn fail(&mut self, at: &str, rule: impl Into<String>) {
        self.out.push(Violation {
            at: at.to_owned(),
            rule: rule.into(),
        });
    }

    fn named(&mut self, at: &str, item: &Value) {
        if !name_valid(item["name"].as_str().unwrap_or_default()) {
            self.fail(
                at,
                "names are 1–32 lower-case letters, digits, `-`, `_` or `'`",
            );
        }
        if !(1..=MAX_TEXT).contains(&count(&item["description"])) {
            self.fail(at, "descriptions are 1–100 characters");
        }
    }

    fn options(&mut self, at: &str, options: &[Value], depth: u8) {
        if options.len() > MAX_LIST {
            self.fail(
                at,
                format!("{} options, Discord allows {MAX_LIST}", options.len()),
            );
        }
        let nested = options
            .iter()
            .filter(|o| matches!(o["type"].as_u64(), Some(SUB_COMMAND | GROUP)))
            .count();
        if nested > 0 && nested < options.len() {
            self.fail(at, "subcommands cannot be mixed with other options");
        }
        let mut names = HashSet::new();
        let mut optional_seen = false;
        for option in options {
            let name = option["name"].as_str().unwrap_or_default();
            let here = format!("{at} {name}");
            if !names.insert(name) {
                self.fail(&here, "option names must be unique on each level");
            }
            self.named(&here, option);
            let kind = option["type"].as_u64().unwrap_or(0);
            let placed = match kind {
                GROUP => depth == 0,
                SUB_COMMAND => depth <= 1,
                3..=11 => depth != 1,
                _ => false,
            };
            if !placed {
                self.fail(
                    &here,
                    "groups hold subcommands, subcommands hold options, nothing deeper",
                );
            }
            if kind > GROUP {
                let required = option["required"] == Value::Bool(true);
                if required && optional_seen {
                    self.fail(&here, "required options must come before optional ones");
                }
                optional_seen |= !required;
                self.value_rules(&here, option, kind);
            }
            if let Some(inner) = option["options"].as_array() {
                self.options(&here, inner, if kind == GROUP { 1 } else { 2 });
            }
        }
    }

    fn value_rules(&mut self, at: &str, option: &Value, kind: u64) {
        let valued = matches!(kind, STRING | INTEGER | NUMBER);
        let choices = option["choices"].as_array().map_or(&[][..], Vec::as_slice);
        if !choices.is_empty() && !valued {
            self.fail(at, "only string, integer and number options have choices");
        }
        if choices.len() > MAX_LIST {
            self.fail(
                at,
                format!("{} choices, Discord allows {MAX_LIST}", choices.len()),
            );
        }
        for choice in choices {
            let value = &choice["value"];
            let typed = match kind {
                STRING => (1..=MAX_TEXT).contains(&count(value)),
                INTEGER => value.is_i64(),
                _ => value.is_number(),
            };
            if !(1..=MAX_TEXT).contains(&count(&choice["name"])) || !typed {
                self.fail(
                    at,
                    "choice names are 1–100 characters and values typed like the option",
                );
            }
        }
        if option["autocomplete"] == Value::Bool(true) {
            if !valued {
                self.fail(
                    at,
                    "autocomplete only on string, integer and number options",
                );
            }
            if !choices.is_empty() {
                self.fail(at, "autocomplete cannot be combined with choices");
            }
        }
        let set = |field: &str| {
            option
                .get(field)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        };
        for (field, kinds) in [
            ("min_value", &[INTEGER, NUMBER][..]),
            ("max_value", &[INTEGER, NUMBER]),
            ("min_length", &[STRING]),
            ("max_length", &[STRING]),
            ("channel_types", &[CHANNEL]),
        ] {
            if set(field) && !kinds.contains(&kind) {
                self.fail(at, format!("`{field}` is not allowed on this option type"));
            }
        }
    }
}

/// Characters Discord counts against the 8000 of one command.
fn size(item: &Value) -> usize {
    let choices: usize = item["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            count(&c["name"])
                + match &c["value"] {
                    Value::String(s) => s.chars().count(),
                    other => other.to_string().len(),
                }
        })
        .sum();
    let options: usize = item["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(size)
        .sum();
    count(&item["name"]) + count(&item["description"]) + choices + options
}

/// What is wrong with one top-level command (empty: Discord accepts it).
pub fn check_command(command: &Value) -> Vec<Violation> {
    let at = command["name"].as_str().unwrap_or_default().to_owned();
    let mut check = Check { out: Vec::new() };
    check.named(&at, command);
    let permissions = &command["default_member_permissions"];
    if !(permissions.is_null()
        || permissions
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok()))
    {
        check.fail(&at, "default_member_permissions is a bitfield in a string");
    }
    if let Some(options) = command["options"].as_array() {
        check.options(&at, options, 0);
    }
    let chars = size(command);
    if chars > MAX_CHARS {
        check.fail(
            &at,
            format!(
                "{chars} characters of names, descriptions and choices; Discord allows {MAX_CHARS}"
            ),
        );
    }
    check.out
}

/// Keeps the commands Discord would accept (unique names, at most [`MAX_COMMANDS`]) and says
/// why the others were left out.
pub fn accepted(commands: Vec<Value>) -> (Vec<Value>, Vec<Violation>) {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    let mut names = HashSet::new();
    for command in commands {
        let name = command["name"].as_str().unwrap_or_default().to_owned();
        let mut problems = check_command(&command);
        if !names.insert(name.clone()) {
            problems.push(Violation {
                at: name.clone(),
                rule: "command names must be unique".into(),
            });
        }
        if problems.is_empty() && kept.len() >= MAX_COMMANDS {
            problems.push(Violation {
                at: name,
                rule: format!("Discord allows {MAX_COMMANDS} commands per scope"),
            });
        }
        if problems.is_empty() {
            kept.push(command);
        } else {
            refused.extend(problems);
        }
    }
    (kept, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(c: Value) -> Vec<String> {
        check_command(&c)
            .into_iter()
            .map(|v| v.to_string())
            .collect()
    }

    #[test]
    fn a_valid_command_passes() {
        let c = json!({"type": 1, "name": "aks", "description": "AKS", "options": [
        {"type": 2, "name": "pool", "description": "Pools", "options": [
            {"type": 1, "name": "scale", "description": "Scale", "options": [
                {"type": 4, "name": "count", "description": "N", "required": true, "min_value": 0},
                {"type": 3, "name": "name", "description": "Pool", "autocomplete": true}
            ]}]}]});
        assert!(check_command(&c).is_empty(), "{:?}", check_command(&c));
    }

    #[test]
    fn each_rule_is_named_with_its_place() {
        let found = rules(
            json!({"type": 1, "name": "Bad", "description": "", "options": [
                {"type": 3, "name": "a", "description": "a"},
                {"type": 5, "name": "b", "description": "b", "required": true, "autocomplete": true},
                {"type": 4, "name": "c", "description": "c", "choices": [{"name": "one", "value": "1"}]},
                {"type": 3, "name": "d", "description": "d", "min_value": 1, "autocomplete": true,
                 "choices": [{"name": "x", "value": "x"}]}
            ]}),
        );
        let has =
            |at: &str, rule: &str| found.iter().any(|f| f.starts_with(at) && f.contains(rule));
        assert!(has("/Bad:", "lower-case"), "{found:?}");
        assert!(has("/Bad:", "descriptions"), "{found:?}");
        assert!(has("/Bad b:", "before optional"), "{found:?}");
        assert!(has("/Bad b:", "autocomplete only"), "{found:?}");
        assert!(has("/Bad c:", "typed like the option"), "{found:?}");
        assert!(has("/Bad d:", "`min_value`"), "{found:?}");
        assert!(has("/Bad d:", "combined with choices"), "{found:?}");
    }

    #[test]
    fn nesting_mixing_sizes_and_counts() {
        let deep = rules(json!({"name": "x", "description": "X", "options": [
            {"type": 2, "name": "g", "description": "g", "options": [
                {"type": 2, "name": "h", "description": "h", "options": []}]}]}));
        assert!(
            deep.iter().any(|r| r.contains("nothing deeper")),
            "{deep:?}"
        );
        let mixed = rules(json!({"name": "x", "description": "X", "options": [
            {"type": 1, "name": "a", "description": "a"}, {"type": 3, "name": "b", "description": "b"}]}));
        assert!(mixed.iter().any(|r| r.contains("mixed")), "{mixed:?}");
        let big = json!({"name": "x", "description": "X", "options": (0..25).map(|i| json!({
            "type": 3, "name": format!("o{i}"), "description": "d".repeat(100),
            "choices": (0..25).map(|j| json!({"name": format!("{j}{}", "n".repeat(20)), "value": format!("v{j}")})).collect::<Vec<_>>()
        })).collect::<Vec<_>>()});
        assert!(rules(big).iter().any(|r| r.contains("8000")));
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"type": 1, "name": format!("c{i}"), "description": "d"}))
            .collect();
        let (kept, refused) = accepted(many);
        assert_eq!((kept.len(), refused.len()), (100, 1));
        assert_eq!(refused[0].at, "c100");
    }
}
