//! Suggestions for an option being typed (autocomplete): the owning plugin suggests values
//! from live state (`host.autocomplete`), built-ins answer from the bot's own tables
//! (`/plugins reload NAME` from the registry). A caller who may not run the command gets no
//! suggestions, so autocomplete does not leak what the command would show. Adapters apply
//! their own limits (Discord: 25 choices of at most 100 characters).

use std::time::Duration;

use deckhand_plugin_abi::proto::{AutocompleteQuery, Caller, Choice, CommandSpec};
use serde_json::{Map, Value};

use super::parse::Owner;
use super::{Router, permission_for};

/// What the user is typing.
#[derive(Debug, Clone)]
pub struct Typing {
    pub path: Vec<String>,
    pub option: String,
    pub partial: String,
    pub options: Map<String, Value>,
}

fn leaf<'a>(top: &'a CommandSpec, path: &[String]) -> Option<&'a CommandSpec> {
    let mut spec = top;
    for name in path.iter().skip(1) {
        spec = spec.subcommands.iter().find(|s| &s.name == name)?;
    }
    Some(spec)
}

fn matching(candidates: impl IntoIterator<Item = String>, partial: &str) -> Vec<Choice> {
    let partial = partial.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| c.to_lowercase().contains(&partial))
        .map(|c| Choice {
            name: c.clone(),
            value: c,
        })
        .collect()
}

fn builtin(router: &Router, typing: &Typing) -> Vec<Choice> {
    let path: Vec<&str> = typing.path.iter().map(String::as_str).collect();
    match (path.as_slice(), typing.option.as_str()) {
        (["plugins", "reload"], "name") => matching(
            router.host().registry().plugins.keys().cloned(),
            &typing.partial,
        ),
        (["help"], "command") => matching(router.index().entries.keys().cloned(), &typing.partial),
        _ => Vec::new(),
    }
}

/// Suggestions for `typing` by `caller`.
pub async fn suggestions(
    router: &Router,
    caller: &Caller,
    typing: &Typing,
    timeout: Duration,
) -> Vec<Choice> {
    let index = router.index();
    let Some((owner, top)) = typing.path.first().and_then(|n| index.entries.get(n)) else {
        return Vec::new();
    };
    let Some(spec) = leaf(top, &typing.path) else {
        return Vec::new();
    };
    let permission = permission_for(owner, &typing.path, spec);
    if !router.options().permissions.allows(caller, &permission) {
        return Vec::new();
    }
    let fallback = || {
        spec.options
            .iter()
            .find(|o| o.name == typing.option)
            .map(|o| matching(o.choices.clone(), &typing.partial))
            .unwrap_or_default()
    };
    match owner {
        Owner::Builtin => builtin(router, typing),
        Owner::Plugin(name) => match router.host().registry().plugins.get(name).cloned() {
            None => fallback(),
            Some(plugin) => {
                let query = AutocompleteQuery {
                    command: typing.path.clone(),
                    option: typing.option.clone(),
                    partial: typing.partial.clone(),
                    options: typing.options.clone(),
                    caller: caller.clone(),
                };
                match router.host().autocomplete(plugin, &query, timeout).await {
                    Ok(choices) => choices,
                    Err(e) => {
                        tracing::warn!(error = %e, plugin = %name, "autocomplete failed; offering the static choices");
                        fallback()
                    }
                }
            }
        },
    }
}
