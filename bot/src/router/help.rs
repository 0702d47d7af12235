//! Help text generated from manifests, so it never drifts from what the parser accepts.

use deckhand_plugin_abi::proto::{CommandSpec, OptionKind};

use super::parse::{CommandIndex, Owner, usage};

/// `/help`: every command, grouped by who provides it.
pub fn overview(index: &CommandIndex) -> String {
    let mut out = String::from("Commands (/help COMMAND for details):\n");
    let mut groups: Vec<(String, Vec<&CommandSpec>)> = Vec::new();
    for (owner, spec) in index.entries.values() {
        let group = match owner {
            Owner::Builtin => "built-in".to_owned(),
            Owner::Plugin(name) => format!("plugin {name}"),
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, specs)) => specs.push(spec),
            None => groups.push((group, vec![spec])),
        }
    }
    groups.sort_by_key(|(g, _)| (g != "built-in", g.clone()));
    for (group, specs) in groups {
        out.push_str(&format!("\n{group}:\n"));
        for spec in specs {
            out.push_str(&format!("  /{:<12} {}\n", spec.name, spec.description));
        }
    }
    out.trim_end().to_owned()
}

/// `/help aks scale` or `/aks scale --help`.
pub fn command_help(path: &[String], spec: &CommandSpec) -> String {
    let mut out = format!(
        "/{} — {}\nusage: {}",
        path.join(" "),
        spec.description,
        usage(path, spec)
    );
    if spec.destructive {
        out.push_str("\ndestructive: asks for confirmation before it runs");
    }
    if !spec.subcommands.is_empty() {
        out.push_str("\nsubcommands:");
        for sub in &spec.subcommands {
            let mut sub_path = path.to_vec();
            sub_path.push(sub.name.clone());
            out.push_str(&format!("\n  {:<14} {}", sub.name, sub.description));
            if sub.subcommands.is_empty() {
                out.push_str(&format!("\n  {:<14} {}", "", usage(&sub_path, sub)));
            }
        }
    }
    if !spec.options.is_empty() {
        out.push_str("\noptions:");
        for option in &spec.options {
            let mut notes = Vec::new();
            if option.required {
                notes.push("required".to_owned());
            }
            if let Some(default) = &option.default {
                notes.push(format!("default {default}"));
            }
            if option.kind == OptionKind::Choice {
                notes.push(format!("one of {}", option.choices.join(", ")));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            out.push_str(&format!(
                "\n  --{:<12} {}{}",
                option.name, option.description, notes
            ));
        }
    }
    out
}
