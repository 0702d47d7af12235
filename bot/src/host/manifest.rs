//! Checks a manifest before any of its commands is registered.

use std::collections::HashSet;

use deckhand_plugin_abi::proto::{CommandSpec, Manifest, OptionKind};

/// Names of plugins, commands and options: what Discord accepts for application commands.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub fn validate_manifest(manifest: &Manifest) -> Result<(), String> {
    if !valid_name(&manifest.name) {
        return Err(format!(
            "plugin name {:?} must be 1-32 characters of a-z, 0-9, - or _",
            manifest.name
        ));
    }
    if manifest.commands.is_empty() {
        return Err("the manifest declares no commands".into());
    }
    check_unique(manifest.commands.iter().map(|c| c.name.as_str()), "command")?;
    for command in &manifest.commands {
        validate_command(command, &command.name)?;
    }
    Ok(())
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("{what} {name:?} is declared twice"));
        }
    }
    Ok(())
}

fn validate_command(command: &CommandSpec, path: &str) -> Result<(), String> {
    if !valid_name(&command.name) {
        return Err(format!(
            "command {path:?}: name must be 1-32 characters of a-z, 0-9, - or _"
        ));
    }
    if !command.subcommands.is_empty() && !command.options.is_empty() {
        return Err(format!(
            "command {path:?} has both subcommands and options; options belong on the subcommands"
        ));
    }
    check_unique(
        command.subcommands.iter().map(|c| c.name.as_str()),
        "subcommand",
    )?;
    check_unique(command.options.iter().map(|o| o.name.as_str()), "option")?;
    let mut optional_positional_seen = false;
    for option in &command.options {
        if !valid_name(&option.name) || matches!(option.name.as_str(), "help" | "yes") {
            return Err(format!(
                "command {path:?}: option {:?} must be 1-32 characters of a-z, 0-9, - or _ and not `help` or `yes`",
                option.name
            ));
        }
        if (option.min.is_some() || option.max.is_some()) && option.kind != OptionKind::Integer {
            return Err(format!(
                "command {path:?}: option {:?} has min/max but is not an integer",
                option.name
            ));
        }
        if let (Some(min), Some(max)) = (option.min, option.max)
            && min > max
        {
            return Err(format!(
                "command {path:?}: option {:?} has min {min} above max {max}",
                option.name
            ));
        }
        if option.kind == OptionKind::Choice && option.choices.is_empty() {
            return Err(format!(
                "command {path:?}: choice option {:?} lists no choices",
                option.name
            ));
        }
        if option.positional {
            if option.required && optional_positional_seen {
                return Err(format!(
                    "command {path:?}: required positional option {:?} follows an optional one",
                    option.name
                ));
            }
            optional_positional_seen |= !option.required;
        }
    }
    for sub in &command.subcommands {
        validate_command(sub, &format!("{path} {}", sub.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_abi::proto::OptionSpec;

    fn manifest(commands: Vec<CommandSpec>) -> Manifest {
        Manifest {
            name: "t".into(),
            version: "1".into(),
            description: String::new(),
            commands,
            capabilities: Default::default(),
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let bad_name = manifest(vec![CommandSpec::new("Scale", "x")]);
        assert!(validate_manifest(&bad_name).unwrap_err().contains("a-z"));
        let twice = manifest(vec![CommandSpec::new("a", "x"), CommandSpec::new("a", "y")]);
        assert!(
            validate_manifest(&twice)
                .unwrap_err()
                .contains("declared twice")
        );
        let no_choices = manifest(vec![CommandSpec::new("a", "x").option(OptionSpec::new(
            "c",
            OptionKind::Choice,
            "c",
        ))]);
        assert!(
            validate_manifest(&no_choices)
                .unwrap_err()
                .contains("no choices")
        );
        let inverted =
            manifest(vec![CommandSpec::new("a", "x").option(
                OptionSpec::new("n", OptionKind::Integer, "n").range(5, 1),
            )]);
        assert!(
            validate_manifest(&inverted)
                .unwrap_err()
                .contains("above max")
        );
        let bounded_text = manifest(vec![
            CommandSpec::new("a", "x").option(OptionSpec::new("s", OptionKind::String, "s").min(1)),
        ]);
        assert!(
            validate_manifest(&bounded_text)
                .unwrap_err()
                .contains("not an integer")
        );
        let reserved = manifest(vec![CommandSpec::new("a", "x").option(OptionSpec::new(
            "yes",
            OptionKind::Boolean,
            "c",
        ))]);
        assert!(validate_manifest(&reserved).is_err());
        let ok = manifest(vec![
            CommandSpec::new("a", "x").option(
                OptionSpec::new("n", OptionKind::Integer, "n")
                    .required()
                    .positional(),
            ),
        ]);
        assert!(validate_manifest(&ok).is_ok());
    }
}
