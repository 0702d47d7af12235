//! One command grammar for every chat surface:
//! `/deploy simsvc mpt`, `/aks scale --pool gpu --count 0`, `--name=value`, quoting, `--help`,
//! `--yes`, and `--` after which the rest of the line fills the next positional option.
//! Values are checked against the manifest's types here, so plugins receive typed options.

pub mod channel;

use std::collections::BTreeMap;

use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use serde_json::{Map, Value};

pub use channel::{ChannelRef, ChannelRefError};

/// Who serves a top-level command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Builtin,
    Plugin(String),
}

/// Every top-level command the router knows, built-ins and plugins alike.
#[derive(Debug, Clone, Default)]
pub struct CommandIndex {
    pub entries: BTreeMap<String, (Owner, CommandSpec)>,
}

/// A command line matched against its manifest, with typed options.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub owner: Owner,
    /// Command path, e.g. `["aks", "scale"]`.
    pub path: Vec<String>,
    /// The leaf command's spec.
    pub spec: CommandSpec,
    pub options: Map<String, Value>,
    pub yes: bool,
    pub help: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command; try /help")]
    Empty,
    #[error("cannot read the command line: {0}")]
    Quoting(String),
    #[error("unknown command /{given}{}; /help lists the commands", did_you_mean(suggestion.as_deref(), "/"))]
    UnknownCommand {
        given: String,
        suggestion: Option<String>,
    },
    #[error("/{path} needs a subcommand: one of {}", available.join(", "))]
    MissingSubcommand {
        path: String,
        available: Vec<String>,
    },
    #[error("/{path} has no subcommand {given:?}{}; choose one of {}", did_you_mean(suggestion.as_deref(), ""), available.join(", "))]
    UnknownSubcommand {
        path: String,
        given: String,
        suggestion: Option<String>,
        available: Vec<String>,
    },
    #[error("/{path} has no option --{given}{}\nusage: {usage}", did_you_mean(suggestion.as_deref(), "--"))]
    UnknownOption {
        path: String,
        given: String,
        suggestion: Option<String>,
        usage: String,
    },
    #[error("option --{option} of /{path} needs a value: {expected}")]
    MissingValue {
        path: String,
        option: String,
        expected: String,
    },
    #[error("option --{option} of /{path}: {value:?} is not valid: expected {expected}")]
    BadValue {
        path: String,
        option: String,
        value: String,
        expected: String,
    },
    /// A name that breaks its Azure or Kubernetes naming rule.
    #[error("option --{option} of /{path}: {error}")]
    BadName {
        path: String,
        option: String,
        error: deckhand_cloud_names::NameError,
    },
    #[error("option --{option} of /{path}: {value:?} is not one of {}{}", choices.join(", "), did_you_mean(suggestion.as_deref(), ""))]
    NotAChoice {
        path: String,
        option: String,
        value: String,
        choices: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("/{path} is missing its required option --{option} ({description})\nusage: {usage}")]
    MissingOption {
        path: String,
        option: String,
        description: String,
        usage: String,
    },
    #[error("option --{option} of /{path} is given twice")]
    Repeated { path: String, option: String },
    #[error("/{path} takes no further argument {extra:?}\nusage: {usage}")]
    TooManyArguments {
        path: String,
        extra: String,
        usage: String,
    },
}

fn did_you_mean(suggestion: Option<&str>, prefix: &str) -> String {
    suggestion
        .map(|s| format!(" (did you mean {prefix}{s}?)"))
        .unwrap_or_default()
}

/// The closest candidate to a mistyped name, if one is close enough to be a likely typo.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = strsim::damerau_levenshtein(given, candidate);
            let close = distance <= (given.len().max(candidate.len()) / 3).max(1)
                || (given.len() >= 3 && candidate.starts_with(given));
            close.then_some((distance, candidate))
        })
        .min()
        .map(|(_, c)| c.to_owned())
}

/// Splits a line the way a shell would (quotes, escapes), without running anything.
pub fn tokenize(line: &str) -> Result<Vec<String>, ParseError> {
    shlex::split(&literal_hashes(line))
        .ok_or_else(|| ParseError::Quoting("unbalanced quotes or a trailing backslash".into()))
}

/// A chat line has no comments: a word starting with `#` is a word (`--channel #gpu-ops`), so
/// such a `#` outside quotes is escaped before shlex, which would read it as a comment.
fn literal_hashes(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('#') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 4);
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut word_start = true;
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && word_start && !single && !double {
            out.push('\\');
        }
        word_start = !single && !double && !escaped && c.is_whitespace();
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// `/aks scale --pool NAME --count INTEGER [--wait DURATION]`
pub fn usage(path: &[String], spec: &CommandSpec) -> String {
    let mut out = format!("/{}", path.join(" "));
    if !spec.subcommands.is_empty() {
        let subs: Vec<&str> = spec.subcommands.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(" <{}>", subs.join("|")));
        return out;
    }
    for option in &spec.options {
        let value = value_hint(option);
        let word = if option.positional {
            option.name.to_uppercase()
        } else if option.kind == OptionKind::Boolean {
            format!("--{}", option.name)
        } else {
            format!("--{} {value}", option.name)
        };
        if option.required {
            out.push_str(&format!(" {word}"));
        } else {
            out.push_str(&format!(" [{word}]"));
        }
    }
    out
}

fn value_hint(option: &OptionSpec) -> String {
    match option.kind {
        OptionKind::String => option.name.to_uppercase(),
        OptionKind::Integer => "INTEGER".into(),
        OptionKind::Boolean => "true|false".into(),
        OptionKind::Duration => "DURATION".into(),
        OptionKind::Choice => option.choices.join("|"),
        OptionKind::Channel => "#CHANNEL".into(),
    }
}

fn expected(option: &OptionSpec) -> String {
    match option.kind {
        OptionKind::String => "some text".into(),
        OptionKind::Integer => match (option.min, option.max) {
            (Some(min), Some(max)) => format!("a whole number from {min} to {max}"),
            (Some(min), None) => format!("a whole number of at least {min}"),
            (None, Some(max)) => format!("a whole number of at most {max}"),
            (None, None) => "a whole number such as 3 or -1".into(),
        },
        OptionKind::Boolean => "true or false".into(),
        OptionKind::Duration => "a duration such as 90s, 15m or 1h30m".into(),
        OptionKind::Choice => format!("one of {}", option.choices.join(", ")),
        OptionKind::Channel => "a channel: #name, its id, or <#id>".into(),
    }
}

/// The longest duration any option accepts; commands set tighter bounds of their own.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// Converts text to the option's type.
pub fn typed_value(path: &str, option: &OptionSpec, raw: &str) -> Result<Value, ParseError> {
    let bad = || ParseError::BadValue {
        path: path.to_owned(),
        option: option.name.clone(),
        value: raw.to_owned(),
        expected: expected(option),
    };
    match option.kind {
        OptionKind::String => {
            if let Some(rule) = option.rule {
                rule.check(raw).map_err(|e| ParseError::BadName {
                    path: path.to_owned(),
                    option: option.name.clone(),
                    error: e,
                })?;
            }
            Ok(Value::String(raw.to_owned()))
        }
        OptionKind::Integer => {
            let n = raw.parse::<i64>().map_err(|_| bad())?;
            let within =
                option.min.is_none_or(|min| n >= min) && option.max.is_none_or(|max| n <= max);
            if within {
                Ok(Value::from(n))
            } else {
                Err(bad())
            }
        }
        OptionKind::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        OptionKind::Duration => {
            let duration = humantime::parse_duration(raw).map_err(|_| bad())?;
            if duration > MAX_DURATION {
                return Err(ParseError::BadValue {
                    path: path.to_owned(),
                    option: option.name.clone(),
                    value: raw.to_owned(),
                    expected: "a duration of at most 366 days, such as 15m or 2h".into(),
                });
            }
            // At most 366 days: fits a u64 of milliseconds.
            Ok(Value::from(
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            ))
        }
        OptionKind::Channel => ChannelRef::parse(raw)
            .map(|c| Value::String(c.canonical()))
            .map_err(|e| ParseError::BadValue {
                path: path.to_owned(),
                option: option.name.clone(),
                value: raw.to_owned(),
                expected: format!("a channel ({})", e.why),
            }),
        OptionKind::Choice => {
            if option.choices.iter().any(|c| c == raw) {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err(ParseError::NotAChoice {
                    path: path.to_owned(),
                    option: option.name.clone(),
                    value: raw.to_owned(),
                    choices: option.choices.clone(),
                    suggestion: suggest(raw, option.choices.iter().map(String::as_str)),
                })
            }
        }
    }
}

impl CommandIndex {
    pub fn insert(&mut self, owner: Owner, spec: CommandSpec) {
        self.entries.insert(spec.name.clone(), (owner, spec));
    }

    /// Parses one command line.
    pub fn parse(&self, line: &str) -> Result<Parsed, ParseError> {
        let tokens = tokenize(line.trim())?;
        self.parse_tokens(&tokens)
    }

    pub fn parse_tokens(&self, tokens: &[String]) -> Result<Parsed, ParseError> {
        let (first, rest) = tokens.split_first().ok_or(ParseError::Empty)?;
        let name = first.strip_prefix('/').unwrap_or(first);
        if name.is_empty() {
            return Err(ParseError::Empty);
        }
        let (owner, top) = self
            .entries
            .get(name)
            .ok_or_else(|| ParseError::UnknownCommand {
                given: name.to_owned(),
                suggestion: suggest(name, self.entries.keys().map(String::as_str)),
            })?;
        let mut path = vec![name.to_owned()];
        let mut spec = top;
        let mut rest = rest;
        while !spec.subcommands.is_empty() {
            let available: Vec<String> = spec.subcommands.iter().map(|s| s.name.clone()).collect();
            match rest.split_first() {
                Some((word, tail)) if word == "--help" => {
                    let _ = tail;
                    return Ok(Parsed {
                        owner: owner.clone(),
                        path,
                        spec: spec.clone(),
                        options: Map::new(),
                        yes: false,
                        help: true,
                    });
                }
                Some((word, tail)) if !word.starts_with("--") => {
                    spec = spec
                        .subcommands
                        .iter()
                        .find(|s| &s.name == word)
                        .ok_or_else(|| ParseError::UnknownSubcommand {
                            path: path.join(" "),
                            given: word.clone(),
                            suggestion: suggest(word, available.iter().map(String::as_str)),
                            available: available.clone(),
                        })?;
                    path.push(word.clone());
                    rest = tail;
                }
                _ => {
                    return Err(ParseError::MissingSubcommand {
                        path: path.join(" "),
                        available,
                    });
                }
            }
        }
        let mut parsed = Parsed {
            owner: owner.clone(),
            path,
            spec: spec.clone(),
            options: Map::new(),
            yes: false,
            help: false,
        };
        bind_options(&mut parsed, rest)?;
        Ok(parsed)
    }
}

/// Fills `parsed.options` from the words after the command path.
fn bind_options(parsed: &mut Parsed, words: &[String]) -> Result<(), ParseError> {
    let path = parsed.path.join(" ");
    let spec = parsed.spec.clone();
    let usage_line = || usage(&parsed.path, &spec);
    let mut positionals = spec.options.iter().filter(|o| o.positional);
    let mut words = words.iter();
    let mut given = Map::new();
    let set = |option: &OptionSpec, value: Value, given: &mut Map<String, Value>| {
        if given.insert(option.name.clone(), value).is_some() {
            return Err(ParseError::Repeated {
                path: path.clone(),
                option: option.name.clone(),
            });
        }
        Ok(())
    };
    while let Some(word) = words.next() {
        if word == "--" {
            // The rest of the line, re-quoted, is the next positional option's value.
            let rest: Vec<&str> = words.by_ref().map(String::as_str).collect();
            if rest.is_empty() {
                break;
            }
            let joined = shlex::try_join(rest.iter().copied())
                .map_err(|e| ParseError::Quoting(e.to_string()))?;
            let option = positionals
                .by_ref()
                .find(|o| !given.contains_key(&o.name))
                .ok_or_else(|| ParseError::TooManyArguments {
                    path: path.clone(),
                    extra: joined.clone(),
                    usage: usage_line(),
                })?;
            set(option, typed_value(&path, option, &joined)?, &mut given)?;
            break;
        }
        let Some(flag) = word.strip_prefix("--") else {
            let option = positionals
                .by_ref()
                .find(|o| !given.contains_key(&o.name))
                .ok_or_else(|| ParseError::TooManyArguments {
                    path: path.clone(),
                    extra: word.clone(),
                    usage: usage_line(),
                })?;
            set(option, typed_value(&path, option, word)?, &mut given)?;
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        match name {
            "help" => parsed.help = true,
            "yes" => parsed.yes = true,
            _ => {
                let (option, negated) = match spec.options.iter().find(|o| o.name == name) {
                    Some(option) => (option, false),
                    None => match name.strip_prefix("no-").and_then(|n| {
                        spec.options
                            .iter()
                            .find(|o| o.name == n && o.kind == OptionKind::Boolean)
                    }) {
                        Some(option) => (option, true),
                        None => {
                            return Err(ParseError::UnknownOption {
                                path: path.clone(),
                                given: name.to_owned(),
                                suggestion: suggest(
                                    name,
                                    spec.options.iter().map(|o| o.name.as_str()),
                                ),
                                usage: usage_line(),
                            });
                        }
                    },
                };
                let value = match (option.kind, inline, negated) {
                    (OptionKind::Boolean, None, negated) => Value::Bool(!negated),
                    (_, Some(raw), _) => typed_value(&path, option, &raw)?,
                    (_, None, _) => {
                        let raw = words.next().ok_or_else(|| ParseError::MissingValue {
                            path: path.clone(),
                            option: option.name.clone(),
                            expected: expected(option),
                        })?;
                        typed_value(&path, option, raw)?
                    }
                };
                set(option, value, &mut given)?;
            }
        }
    }
    if parsed.help {
        parsed.options = given;
        return Ok(());
    }
    for option in &spec.options {
        if given.contains_key(&option.name) {
            continue;
        }
        if let Some(default) = &option.default {
            given.insert(option.name.clone(), default.clone());
        } else if option.required {
            return Err(ParseError::MissingOption {
                path: path.clone(),
                option: option.name.clone(),
                description: option.description.clone(),
                usage: usage_line(),
            });
        }
    }
    parsed.options = given;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_word_starting_with_a_hash_is_a_word() {
        assert_eq!(
            super::tokenize("/schedule add n --channel #gpu-ops -- /echo '#x' \"#y\" \\#z a#b")
                .unwrap(),
            [
                "/schedule",
                "add",
                "n",
                "--channel",
                "#gpu-ops",
                "--",
                "/echo",
                "#x",
                "#y",
                "#z",
                "a#b"
            ]
        );
        assert_eq!(super::tokenize("#only").unwrap(), ["#only"]);
    }

    use super::*;
    use serde_json::json;

    fn index() -> CommandIndex {
        let mut index = CommandIndex::default();
        index.insert(
            Owner::Plugin("aks".into()),
            CommandSpec::new("aks", "AKS")
                .subcommand(
                    CommandSpec::new("scale", "Scale a pool")
                        .option(OptionSpec::new("pool", OptionKind::String, "Pool name").required())
                        .option(OptionSpec::new("count", OptionKind::Integer, "Nodes").required())
                        .option(OptionSpec::new("wait", OptionKind::Duration, "Wait")),
                )
                .subcommand(
                    CommandSpec::new("pool", "Pools").subcommand(
                        CommandSpec::new("add", "Add a pool")
                            .option(OptionSpec::new("name", OptionKind::String, "Name").required())
                            .option(OptionSpec::new("spot", OptionKind::Boolean, "Spot"))
                            .option(OptionSpec::choice("mode", &["System", "User"], "Mode")),
                    ),
                ),
        );
        index.insert(
            Owner::Plugin("aks".into()),
            CommandSpec::new("deploy", "Deploy")
                .option(
                    OptionSpec::new("app", OptionKind::String, "App")
                        .required()
                        .positional(),
                )
                .option(
                    OptionSpec::new("instance", OptionKind::String, "Instance")
                        .required()
                        .positional(),
                )
                .option(
                    OptionSpec::new("replicas", OptionKind::Integer, "Replicas")
                        .default_value(json!(1)),
                ),
        );
        index.insert(
            Owner::Builtin,
            CommandSpec::new("schedule", "Schedules")
                .option(
                    OptionSpec::new("name", OptionKind::String, "Name")
                        .required()
                        .positional(),
                )
                .option(OptionSpec::new("command", OptionKind::String, "Command").positional()),
        );
        index
    }

    #[test]
    fn integer_bounds_are_checked_and_explained() {
        let option = OptionSpec::new("count", OptionKind::Integer, "Nodes").range(0, 100);
        assert_eq!(typed_value("aks scale", &option, "7").unwrap(), json!(7));
        for bad in ["-1", "101"] {
            let e = typed_value("aks scale", &option, bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("from 0 to 100"), "{e}");
        }
        let low = OptionSpec::new("n", OptionKind::Integer, "N").min(1);
        assert!(
            typed_value("x", &low, "0")
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
    }

    #[test]
    fn positional_and_defaults() {
        let parsed = index().parse("/deploy simsvc mpt").unwrap();
        assert_eq!(parsed.path, ["deploy"]);
        assert_eq!(
            parsed.options,
            json!({"app": "simsvc", "instance": "mpt", "replicas": 1})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn nested_subcommands_flags_and_quoting() {
        let parsed = index()
            .parse("/aks pool add --name='gpu 2' --spot --mode User")
            .unwrap();
        assert_eq!(parsed.path, ["aks", "pool", "add"]);
        assert_eq!(parsed.options["name"], json!("gpu 2"));
        assert_eq!(parsed.options["spot"], json!(true));
        let parsed = index()
            .parse("aks scale --pool gpu --count -1 --wait 15m --yes")
            .unwrap();
        assert_eq!(parsed.options["count"], json!(-1));
        assert_eq!(parsed.options["wait"], json!(900_000));
        assert!(parsed.yes);
    }

    #[test]
    fn rest_after_double_dash_fills_the_next_positional() {
        let parsed = index()
            .parse("/schedule nightly -- /aks scale --pool 'gpu x' --count 0")
            .unwrap();
        assert_eq!(
            parsed.options["command"],
            json!("/aks scale --pool 'gpu x' --count 0")
        );
    }

    #[test]
    fn each_bad_input_class_has_a_clear_message() {
        let err = |line: &str| index().parse(line).unwrap_err().to_string();
        assert_eq!(
            err("/deplyo a b"),
            "unknown command /deplyo (did you mean /deploy?); /help lists the commands"
        );
        assert!(err("/aks").contains("needs a subcommand: one of scale, pool"));
        assert!(err("/aks scael").contains("(did you mean scale?)"));
        assert!(err("/aks scale --pool gpu").contains("missing its required option --count"));
        assert!(
            err("/aks scale --pool gpu")
                .contains("usage: /aks scale --pool POOL --count INTEGER [--wait DURATION]")
        );
        assert!(err("/aks scale --pool gpu --count many").contains("expected a whole number"));
        assert!(
            err("/aks scale --pool gpu --count 1 --wait soon").contains("a duration such as 90s")
        );
        assert!(
            err("/aks pool add --name g --mode user")
                .contains("\"user\" is not one of System, User (did you mean User?)")
        );
        assert!(
            err("/aks scale --pool gpu --cuont 1")
                .contains("no option --cuont (did you mean --count?)")
        );
        assert!(err("/deploy a b c").contains("takes no further argument \"c\""));
        assert!(err("/aks scale --pool").contains("--pool of /aks scale needs a value"));
        assert!(err("/deploy 'a b").contains("unbalanced quotes"));
        assert!(err("/deploy a b --replicas 1 --replicas 2").contains("given twice"));
    }

    #[test]
    fn help_skips_required_checks() {
        let parsed = index().parse("/aks scale --help").unwrap();
        assert!(parsed.help);
        let parsed = index().parse("/aks --help").unwrap();
        assert!(parsed.help && parsed.path == ["aks"]);
    }
}
