//! Typed commands: `#[derive(Command)]` on a struct (a leaf command, one field per option) or
//! an enum (a group, one variant per subcommand) gives the manifest entry and the decoder of
//! a call from the same declaration, so they cannot drift:
//!
//! ```ignore
//! /// List the tags of a repository
//! #[derive(Command)]
//! #[command(timeout_secs = 30)]
//! struct Tags {
//!     /// Repository, e.g. studio/runner
//!     #[option(positional, rule = Repository)]
//!     repo: String,
//!     /// Newest first, at most this many
//!     #[option(default = 20)]
//!     top: i64,
//! }
//! ```
//!
//! - The doc comment is the help text (required, on the type and on every field).
//! - Field types give the option kind: `String`, `i64`, `bool` (a flag), `std::time::Duration`;
//!   `Option<T>` makes it optional, as does `default = …` (a JSON literal, milliseconds for a
//!   duration); every other field is required.
//! - `#[command(name = "…", destructive, preview, timeout_secs = N, permission = "…", private,
//!   idempotent)]` (`preview`: destructive, and called with `Call::preview` for its
//!   confirmation text; `private`: the reply is for the caller only; `idempotent`: safe to run
//!   again when a scheduled run was interrupted inside it); the name
//!   defaults to the type's name in kebab case (`PoolAdd` → `pool-add`).
//! - `#[option(name = "…", positional, autocomplete, sensitive, rule = NameRule variant,
//!   choices(a, b), default = …, min = N, max = N)]` (`min`/`max`: an integer's inclusive
//!   bounds); the name defaults to the field's (`vm_size` → `vm-size`).
//! - An enum `#[derive(Command)] enum Acr { Tags(Tags), Build(Build) }` is the group `/acr`
//!   with those subcommands; `call.decode::<Acr>()?` gives the variant to `match` on, so a
//!   subcommand without a handler does not compile.
//! - `#[command(root)]` on an enum of a plugin's top-level commands (`/aks`, `/deploy`, …)
//!   gives `specs()` (the manifest's `commands`) and `decode(&Call)`, so a plugin with several
//!   top-level commands dispatches with one exhaustive `match` too.

use std::time::Duration;

use deckhand_plugin_abi::proto::{CommandSpec, PluginError};
use serde_json::{Map, Value};

/// A command (or group) whose manifest entry and decoder come from one declaration.
pub trait Command: Sized {
    /// The manifest entry.
    fn spec() -> CommandSpec;
    /// Decodes the options of a call whose path below this command is `path`.
    fn decode_path(path: &[String], options: &Map<String, Value>) -> Result<Self, PluginError>;
}

fn wrong_type(name: &str, expected: &str, value: &Value) -> PluginError {
    PluginError::bad_input(name, format!("--{name} must be {expected}, not {value}"))
}

pub fn string_option(
    options: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, PluginError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(name, "text", other)),
    }
}

pub fn integer_option(
    options: &Map<String, Value>,
    name: &str,
) -> Result<Option<i64>, PluginError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "an integer", value)),
    }
}

pub fn boolean_option(
    options: &Map<String, Value>,
    name: &str,
) -> Result<Option<bool>, PluginError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_bool()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "true or false", value)),
    }
}

/// Durations travel as whole milliseconds.
pub fn duration_option(
    options: &Map<String, Value>,
    name: &str,
) -> Result<Option<Duration>, PluginError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| wrong_type(name, "a duration in milliseconds", value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallExt, Command};
    use deckhand_plugin_abi::proto::{Call, NameRule, OptionKind};
    use serde_json::json;

    /// List the tags of a repository
    #[derive(Command, Debug, PartialEq)]
    #[command(timeout_secs = 30, private)]
    struct Tags {
        /// Repository, e.g. studio/runner
        #[option(positional, rule = Repository)]
        repo: String,
        /// At most this many
        #[option(default = 20, min = 1, max = 100)]
        top: i64,
        /// Sort order
        #[option(choices(newest, oldest))]
        order: Option<String>,
        /// Include untagged manifests
        untagged: bool,
        /// Wait for the registry at most this long
        wait: Option<Duration>,
    }

    /// Delete a repository
    #[derive(Command, Debug, PartialEq)]
    #[command(name = "delete", destructive)]
    struct DeleteRepo {
        /// Repository
        #[option(name = "repository", rule = Repository)]
        repo_name: String,
    }

    /// Azure Container Registry
    #[derive(Command, Debug, PartialEq)]
    enum Acr {
        Tags(Tags),
        Delete(DeleteRepo),
    }

    #[test]
    fn one_declaration_gives_the_manifest_entry() {
        let spec = Acr::spec();
        assert_eq!(spec.name, "acr");
        assert_eq!(spec.description, "Azure Container Registry");
        let names: Vec<&str> = spec.subcommands.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tags", "delete"]);
        let tags = &spec.subcommands[0];
        assert_eq!(tags.timeout_secs, Some(30));
        let options: Vec<(&str, OptionKind, bool)> = tags
            .options
            .iter()
            .map(|o| (o.name.as_str(), o.kind, o.required))
            .collect();
        assert_eq!(
            options,
            [
                ("repo", OptionKind::String, true),
                ("top", OptionKind::Integer, false),
                ("order", OptionKind::Choice, false),
                ("untagged", OptionKind::Boolean, false),
                ("wait", OptionKind::Duration, false),
            ]
        );
        assert!(tags.options[0].positional);
        assert_eq!(tags.options[0].rule, Some(NameRule::Repository));
        assert_eq!(tags.options[1].default, Some(json!(20)));
        assert_eq!(
            (tags.options[1].min, tags.options[1].max),
            (Some(1), Some(100))
        );
        assert!(tags.private && !spec.subcommands[1].private);
        assert_eq!(tags.options[2].choices, ["newest", "oldest"]);
        assert!(spec.subcommands[1].destructive);
        assert_eq!(spec.subcommands[1].options[0].name, "repository");
    }

    fn call(path: &[&str], options: Value) -> Call {
        Call {
            invocation_id: "i".into(),
            command: path.iter().map(|s| (*s).to_owned()).collect(),
            caller: Default::default(),
            channel: "c".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            timeout_ms: 1000,
            preview: false,
        }
    }

    #[test]
    fn a_call_decodes_into_its_variant() {
        let decoded: Acr = call(
            &["acr", "tags"],
            json!({"repo": "studio/runner", "top": 5, "wait": 1500, "untagged": true}),
        )
        .decode()
        .unwrap();
        assert_eq!(
            decoded,
            Acr::Tags(Tags {
                repo: "studio/runner".into(),
                top: 5,
                order: None,
                untagged: true,
                wait: Some(Duration::from_millis(1500)),
            })
        );
        let delete: Acr = call(&["acr", "delete"], json!({"repository": "old"}))
            .decode()
            .unwrap();
        assert_eq!(
            delete,
            Acr::Delete(DeleteRepo {
                repo_name: "old".into()
            })
        );
    }

    #[test]
    fn calls_that_do_not_fit_are_errors_not_panics() {
        let missing = call(&["acr", "tags"], json!({}))
            .decode::<Acr>()
            .unwrap_err();
        assert_eq!(missing.option.as_deref(), Some("repo"));
        let typed = call(&["acr", "tags"], json!({"repo": "r", "top": "many"}))
            .decode::<Acr>()
            .unwrap_err();
        assert_eq!(
            typed.to_string(),
            "--top must be an integer, not \"many\" (option --top)"
        );
        let unknown = call(&["acr", "push"], json!({}))
            .decode::<Acr>()
            .unwrap_err();
        assert_eq!(unknown.message, "/acr has no subcommand push");
        let other = call(&["aks", "pools"], json!({}))
            .decode::<Acr>()
            .unwrap_err();
        assert_eq!(other.code, crate::ErrorCode::UnknownCommand);
    }
}
