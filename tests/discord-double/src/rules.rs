//! Discord's rules for application commands, as a bulk overwrite is checked: names, lengths,
//! nesting, choices, autocomplete, option-type-specific fields, required-before-optional, 25
//! options, 100 chat-input commands per scope, 8000 characters per command. A refusal is 400
//! `Invalid Form Body` (50035) with the errors at the JSON path of the offending field.

use serde_json::{Map, Value, json};

/// Chat-input commands allowed per scope (global, or one guild).
pub(crate) const MAX_COMMANDS: usize = 100;
/// Name, description and value characters of one command with its options and choices.
pub(crate) const MAX_COMMAND_CHARS: usize = 8000;

pub(crate) fn err(code: &str, message: &str) -> Value {
    json!({ "_errors": [{ "code": code, "message": message }] })
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Errors of a whole bulk overwrite (empty when Discord would accept it).
pub(crate) fn validate_list(list: &[Value]) -> Map<String, Value> {
    let mut errors = Map::new();
    let chat_input = list
        .iter()
        .filter(|c| c["type"].as_u64().unwrap_or(1) == 1)
        .count();
    if chat_input > MAX_COMMANDS {
        errors.insert(
            "_errors".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")["_errors"].clone(),
        );
    }
    for (i, c) in list.iter().enumerate() {
        let mut e = validate_command(c);
        let duplicate = list[..i]
            .iter()
            .any(|p| p["name"] == c["name"] && p["type"] == c["type"]);
        if duplicate {
            e.insert(
                "name".into(),
                err(
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                ),
            );
        }
        if !e.is_empty() {
            errors.insert(i.to_string(), Value::Object(e));
        }
    }
    errors
}

fn name_ok(name: &str, lowercase: bool) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|ch| ch == '-' || ch == '_' || ch == '\'' || ch.is_alphanumeric())
        && (!lowercase || !name.chars().any(char::is_uppercase))
}

/// Errors of one command.
pub(crate) fn validate_command(c: &Value) -> Map<String, Value> {
    let mut e = Map::new();
    let kind = c["type"].as_u64().unwrap_or(1);
    let name = c["name"].as_str().unwrap_or_default();
    if !name_ok(name, kind == 1) {
        e.insert(
            "name".into(),
            err(
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ),
        );
    }
    if kind == 1 && !(1..=100).contains(&chars(&c["description"])) {
        e.insert(
            "description".into(),
            err(
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ),
        );
    }
    let dmp = &c["default_member_permissions"];
    if !(dmp.is_null() || dmp.as_str().is_some_and(|s| s.parse::<u64>().is_ok())) {
        e.insert(
            "default_member_permissions".into(),
            err(
                "NUMBER_TYPE_COERCE",
                "Value is not a valid permission bitfield.",
            ),
        );
    }
    if let Some(opts) = c["options"].as_array() {
        let o = validate_options(opts, 0);
        if !o.is_empty() {
            e.insert("options".into(), Value::Object(o));
        }
    }
    if e.is_empty() && total_chars(c) > MAX_COMMAND_CHARS {
        e.insert(
            "_errors".into(),
            err(
                "APPLICATION_COMMAND_TOO_LARGE",
                "Command exceeds maximum size (8000)",
            )["_errors"]
                .clone(),
        );
    }
    e
}

/// What Discord counts against [`MAX_COMMAND_CHARS`].
fn total_chars(c: &Value) -> usize {
    let mut n = chars(&c["name"]) + chars(&c["description"]);
    for choice in c["choices"].as_array().into_iter().flatten() {
        n += chars(&choice["name"])
            + choice["value"]
                .to_string()
                .trim_matches('"')
                .chars()
                .count();
    }
    for o in c["options"].as_array().into_iter().flatten() {
        n += total_chars(o);
    }
    n
}

/// `depth`: 0 = a command's options, 1 = a subcommand group's, 2 = a subcommand's.
fn validate_options(opts: &[Value], depth: u8) -> Map<String, Value> {
    let mut e = Map::new();
    if opts.len() > 25 {
        e.insert(
            "_errors".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")["_errors"].clone(),
        );
    }
    let subs = opts
        .iter()
        .filter(|o| matches!(o["type"].as_u64(), Some(1 | 2)))
        .count();
    if subs > 0 && subs < opts.len() {
        e.insert(
            "_errors".into(),
            err(
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command and sub-command group option types are mutually exclusive to all other types",
            )["_errors"]
                .clone(),
        );
    }
    let mut seen_optional = false;
    for (i, o) in opts.iter().enumerate() {
        let oe = validate_option(o, depth, &mut seen_optional, &opts[..i]);
        if !oe.is_empty() {
            e.insert(i.to_string(), Value::Object(oe));
        }
    }
    e
}

fn validate_option(
    o: &Value,
    depth: u8,
    seen_optional: &mut bool,
    before: &[Value],
) -> Map<String, Value> {
    let mut oe = Map::new();
    let kind = o["type"].as_u64().unwrap_or(0);
    let name = o["name"].as_str().unwrap_or_default();
    if !name_ok(name, true) || before.iter().any(|b| b["name"] == o["name"]) {
        oe.insert(
            "name".into(),
            err(
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ),
        );
    }
    if !(1..=100).contains(&chars(&o["description"])) {
        oe.insert(
            "description".into(),
            err(
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ),
        );
    }
    let nesting_ok = match kind {
        1 => depth <= 1,
        2 => depth == 0,
        3..=11 => depth != 1,
        _ => false,
    };
    if !nesting_ok {
        oe.insert(
            "type".into(),
            err(
                "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                "Option type is invalid here",
            ),
        );
    }
    let valued = matches!(kind, 3 | 4 | 10);
    let choices = o["choices"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !choices.is_empty() && !valued {
        oe.insert(
            "choices".into(),
            err(
                "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
                "Choices are not allowed for this option type",
            ),
        );
    } else if choices.len() > 25 {
        oe.insert(
            "choices".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."),
        );
    } else {
        let mut ce = Map::new();
        for (i, c) in choices.iter().enumerate() {
            let value_ok = match kind {
                3 => (1..=100).contains(&chars(&c["value"])),
                4 => c["value"].is_i64(),
                _ => c["value"].is_number(),
            };
            if !(1..=100).contains(&chars(&c["name"])) || !value_ok {
                ce.insert(
                    i.to_string(),
                    err(
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ),
                );
            }
        }
        if !ce.is_empty() {
            oe.insert("choices".into(), Value::Object(ce));
        }
    }
    if o["autocomplete"] == json!(true) {
        if !valued {
            oe.insert(
                "autocomplete".into(),
                err(
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID",
                    "Autocomplete is not allowed for this option type",
                ),
            );
        } else if !choices.is_empty() {
            oe.insert(
                "autocomplete".into(),
                err(
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                    "Autocomplete cannot be set with choices",
                ),
            );
        }
    }
    // serenity sends `channel_types: []` on every option; Discord accepts an empty list.
    let given = |v: &Value| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty));
    let only_on =
        |field: &str, kinds: &[u64]| o.get(field).is_some_and(given) && !kinds.contains(&kind);
    for (field, kinds) in [
        ("channel_types", &[7][..]),
        ("min_value", &[4, 10]),
        ("max_value", &[4, 10]),
        ("min_length", &[3]),
        ("max_length", &[3]),
    ] {
        if only_on(field, kinds) {
            oe.insert(
                field.into(),
                err(
                    "APPLICATION_COMMAND_OPTION_FIELD_INVALID",
                    "Not allowed for this option type",
                ),
            );
        }
    }
    if kind > 2 {
        let required = o["required"] == json!(true);
        if required && *seen_optional {
            oe.insert(
                "required".into(),
                err(
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                ),
            );
        }
        *seen_optional |= !required;
    }
    if let Some(sub) = o["options"].as_array() {
        let next = if kind == 2 { 1 } else { 2 };
        let se = validate_options(sub, next);
        if !se.is_empty() {
            oe.insert("options".into(), Value::Object(se));
        }
    }
    oe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_limits_are_checked() {
        let bad = json!({"name": "Deploy", "description": "", "options": [
            {"type": 3, "name": "svc", "description": "s", "required": false},
            {"type": 3, "name": "model", "description": "m", "required": true, "autocomplete": true, "choices": [{"name": "a", "value": "a"}]}
        ]});
        let e = validate_command(&bad);
        assert!(
            e.contains_key("name") && e.contains_key("description"),
            "{e:?}"
        );
        let o = &e["options"]["1"];
        assert!(
            o.get("required").is_some() && o.get("autocomplete").is_some(),
            "{o}"
        );
        let good = json!({"name": "deploy", "description": "Deploy", "options": [
            {"type": 3, "name": "svc", "description": "s", "required": true, "autocomplete": true}
        ]});
        assert!(validate_command(&good).is_empty());
    }

    #[test]
    fn type_specific_rules_nesting_and_sizes() {
        let c = json!({"name": "x", "description": "X", "options": [
            {"type": 5, "name": "flag", "description": "f", "autocomplete": true},
            {"type": 4, "name": "n", "description": "n", "choices": [{"name": "one", "value": "1"}]},
            {"type": 3, "name": "s", "description": "s", "choices": [{"name": "", "value": "a"}]},
            {"type": 3, "name": "c", "description": "c", "channel_types": [0]}
        ]});
        let e = validate_command(&c);
        let o = &e["options"];
        assert!(o["0"].get("autocomplete").is_some(), "{o}");
        assert!(
            o["1"].get("choices").is_some(),
            "integer choice values must be integers: {o}"
        );
        assert!(o["2"].get("choices").is_some(), "{o}");
        assert!(o["3"].get("channel_types").is_some(), "{o}");
        let deep = json!({"name": "x", "description": "X", "options": [
            {"type": 2, "name": "g", "description": "g", "options": [
                {"type": 2, "name": "h", "description": "h", "options": []}]}]});
        assert!(
            validate_command(&deep)["options"]["0"]["options"]["0"]
                .get("type")
                .is_some()
        );
        let mixed = json!({"name": "x", "description": "X", "options": [
            {"type": 1, "name": "a", "description": "a"}, {"type": 3, "name": "b", "description": "b"}]});
        assert!(validate_command(&mixed)["options"].get("_errors").is_some());
        let big = json!({"name": "x", "description": "X", "options": (0..25).map(|i| json!({
            "type": 3, "name": format!("o{i}"), "description": "d".repeat(100),
            "choices": (0..25).map(|j| json!({"name": format!("{j}{}", "n".repeat(20)), "value": format!("v{j}")})).collect::<Vec<_>>()
        })).collect::<Vec<_>>()});
        assert!(validate_command(&big).contains_key("_errors"));
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"name": format!("c{i}"), "description": "d"}))
            .collect();
        assert!(validate_list(&many).contains_key("_errors"));
        assert!(validate_list(&many[..100]).is_empty());
        let dup = vec![
            json!({"name": "a", "description": "d"}),
            json!({"name": "a", "description": "d"}),
        ];
        assert!(validate_list(&dup)["1"].get("name").is_some());
    }
}
