//! Fuzzes `deckhand_command_grammar`: `CommandIndex::parse` on arbitrary chat lines against a
//! manifest shaped like the real ones (aks, vk, schedules): subcommands, positional and rest
//! options, every option kind, naming rules, choices, defaults and required options.
//! Run: `cd fuzz && cargo +nightly fuzz run command_line` (see docs/fuzzing.md).
#![no_main]

use deckhand_cloud_names::NameRule;
use deckhand_command_grammar::{CommandIndex, MAX_DURATION, Owner, Parsed};
use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::OnceLock;

fn string(name: &str) -> OptionSpec {
    OptionSpec::new(name, OptionKind::String, name)
}

fn index() -> &'static CommandIndex {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = CommandIndex::default();
        let pool = || string("pool").rule(NameRule::AgentPool);
        let cluster = || string("cluster").rule(NameRule::AksCluster).autocomplete();
        index.insert(
            Owner::Plugin("aks".into()),
            CommandSpec::new("aks", "AKS")
                .subcommand(CommandSpec::new("pools", "list").option(cluster()))
                .subcommand(
                    CommandSpec::new("scale", "scale")
                        .option(pool().required().positional())
                        .option(OptionSpec::new("count", OptionKind::Integer, "n").required())
                        .option(cluster())
                        .option(OptionSpec::new("wait", OptionKind::Boolean, "wait"))
                        .option(
                            OptionSpec::new("timeout", OptionKind::Duration, "t")
                                .default_value(json!(600_000)),
                        ),
                )
                .subcommand(
                    CommandSpec::new("pool", "pools")
                        .subcommand(
                            CommandSpec::new("add", "add")
                                .option(string("name").rule(NameRule::AgentPool).required())
                                .option(string("vm-size").rule(NameRule::VmSize))
                                .option(string("labels").rule(NameRule::Labels))
                                .option(string("taints").rule(NameRule::Taints))
                                .option(OptionSpec::choice("mode", &["User", "System"], "mode")),
                        )
                        .subcommand(
                            CommandSpec::new("delete", "delete")
                                .option(string("name").rule(NameRule::AgentPool).required())
                                .destructive(),
                        ),
                ),
        );
        index.insert(
            Owner::Plugin("vk".into()),
            CommandSpec::new("vk", "virtual nodes").subcommand(
                CommandSpec::new("logs", "logs")
                    .option(
                        string("pod")
                            .rule(NameRule::KubeName)
                            .required()
                            .positional(),
                    )
                    .option(string("namespace").rule(NameRule::KubeLabel))
                    .option(string("token").sensitive()),
            ),
        );
        index.insert(
            Owner::Builtin,
            CommandSpec::new("schedule", "schedules").subcommand(
                CommandSpec::new("add", "add")
                    .option(
                        string("name")
                            .rule(NameRule::KubeLabel)
                            .required()
                            .positional(),
                    )
                    .option(string("cron").required())
                    .option(OptionSpec::new("warn", OptionKind::Duration, "w"))
                    .option(string("command").positional()),
            ),
        );
        index
    })
}

/// The leaf spec at `path`, walking the index the way the parser does.
fn leaf<'a>(index: &'a CommandIndex, path: &[String]) -> Option<&'a CommandSpec> {
    let (first, rest) = path.split_first()?;
    let mut spec = &index.entries.get(first)?.1;
    for name in rest {
        spec = spec.subcommands.iter().find(|s| &s.name == name)?;
    }
    Some(spec)
}

/// What a successful parse promises the plugin: a real leaf command, every value of the type
/// and rule its option declares, durations within bounds, required options present.
fn check(parsed: &Parsed) {
    let spec = leaf(index(), &parsed.path).expect("parsed path names a command in the index");
    assert_eq!(&parsed.spec, spec);
    // `--help` may ask about a group (`/vk --help`); anything that runs is a leaf command.
    if parsed.help {
        return;
    }
    assert!(
        spec.subcommands.is_empty(),
        "a parse that runs ends at a leaf command"
    );
    for (name, value) in &parsed.options {
        let option = spec
            .options
            .iter()
            .find(|o| &o.name == name)
            .expect("only declared options are passed");
        match option.kind {
            OptionKind::String => {
                let text = value.as_str().expect("string option is a JSON string");
                if let Some(rule) = option.rule {
                    assert!(rule.check(text).is_ok(), "{name}={text:?} breaks its rule");
                }
            }
            OptionKind::Integer => assert!(value.is_i64(), "{name} is an integer"),
            OptionKind::Boolean => assert!(value.is_boolean(), "{name} is a bool"),
            OptionKind::Duration => {
                let ms = value.as_u64().expect("duration is whole milliseconds");
                assert!(
                    u128::from(ms) <= MAX_DURATION.as_millis(),
                    "{name} is bounded"
                );
            }
            OptionKind::Channel => {
                let text = value.as_str().expect("channel is a JSON string");
                assert!(
                    deckhand_command_grammar::ChannelRef::parse(text).is_ok(),
                    "{name} is a channel"
                );
            }
            OptionKind::Choice => {
                let text = value.as_str().expect("choice is a JSON string");
                assert!(
                    option.choices.iter().any(|c| c == text),
                    "{name} is a choice"
                );
            }
        }
    }
    for option in spec.options.iter().filter(|o| o.required) {
        assert!(
            parsed
                .options
                .get(&option.name)
                .is_some_and(|v| *v != Value::Null),
            "required --{} present",
            option.name
        );
    }
}

/// `parsed` as a command line, every option in `--name=value` form; `None` when a value cannot
/// be quoted (shlex refuses NUL).
fn render(parsed: &Parsed) -> Option<String> {
    let mut words = vec![format!("/{}", parsed.path.join(" "))];
    for (name, value) in &parsed.options {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n)
                if parsed
                    .spec
                    .options
                    .iter()
                    .any(|o| &o.name == name && o.kind == OptionKind::Duration) =>
            {
                format!("{n}ms")
            }
            other => other.to_string(),
        };
        words.push(
            shlex::try_quote(&format!("--{name}={text}"))
                .ok()?
                .into_owned(),
        );
    }
    if parsed.yes {
        words.push("--yes".into());
    }
    Some(words.join(" "))
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let index = index();
    let result = index.parse(line);
    if let Ok(parsed) = &result {
        check(parsed);
    }
    // Round trip: the parsed command written back as `/path --name=value ...` parses to the
    // same command, so no value changes meaning between the parser and the plugin.
    if let Ok(parsed) = &result {
        if !parsed.help {
            if let Some(line) = render(parsed) {
                assert_eq!(index.parse(&line).as_ref(), Ok(parsed), "line {line:?}");
            }
        }
    }
    // Error messages are built from user input; building them must not panic either.
    if let Err(error) = &result {
        let _ = error.to_string();
    }
});
