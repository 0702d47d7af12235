//! Autocomplete: the owning plugin suggests values from live state (`host.autocomplete`),
//! built-ins answer from the bot's own tables (`/plugins reload NAME` from the registry).
//! Within Discord's limits: at most 25 choices, names and values of 1–100 characters, and an
//! answer within 3 s (the plugin gets `autocomplete_timeout`; on failure the manifest's static
//! choices are offered). Callers who may not run the command get no suggestions, so
//! autocomplete does not leak what the command would show.

use std::time::Duration;

use deckhand_plugin_abi::proto::{AutocompleteQuery, Caller, Choice, CommandSpec};
use serde_json::{Map, Value};
use serenity::all::{
    AutocompleteChoice, CommandInteraction, CreateAutocompleteResponse, CreateInteractionResponse,
    Http,
};

use super::{Adapter, interaction};
use crate::router::parse::Owner;
use crate::router::{Router, permission_for};

pub const MAX_CHOICES: usize = 25;
const MAX_CHOICE_LEN: usize = 100;

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

/// Keeps what Discord accepts.
pub fn within_limits(choices: Vec<Choice>) -> Vec<Choice> {
    choices
        .into_iter()
        .filter(|c| !c.value.is_empty() && c.value.chars().count() <= MAX_CHOICE_LEN)
        .map(|c| {
            let name = if c.name.trim().is_empty() {
                c.value.clone()
            } else if c.name.chars().count() > MAX_CHOICE_LEN {
                let mut cut: String = c.name.chars().take(MAX_CHOICE_LEN - 1).collect();
                cut.push('…');
                cut
            } else {
                c.name
            };
            Choice {
                name,
                value: c.value,
            }
        })
        .take(MAX_CHOICES)
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
    let choices = match owner {
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
    };
    within_limits(choices)
}

pub(crate) async fn answer(adapter: &Adapter, http: &Http, request: CommandInteraction) {
    let caller = interaction::caller(&adapter.config, &request.user, request.member.as_deref());
    let (path, option, partial, options) = interaction::autocomplete_parts(&request.data);
    let typing = Typing {
        path,
        option,
        partial,
        options,
    };
    let choices = suggestions(
        &adapter.router,
        &caller,
        &typing,
        adapter.config.autocomplete_timeout,
    )
    .await;
    let response = CreateAutocompleteResponse::new().set_choices(
        choices
            .into_iter()
            .map(|c| AutocompleteChoice::new(c.name, c.value))
            .collect(),
    );
    if let Err(e) = request
        .create_response(http, CreateInteractionResponse::Autocomplete(response))
        .await
    {
        tracing::warn!(error = %e, "cannot answer an autocomplete request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_applied() {
        let many: Vec<Choice> = (0..40)
            .map(|i| Choice {
                name: format!("{}{i}", "n".repeat(if i == 0 { 150 } else { 1 })),
                value: format!("v{i}"),
            })
            .chain([Choice {
                name: "long value".into(),
                value: "x".repeat(101),
            }])
            .collect();
        let kept = within_limits(many);
        assert_eq!(kept.len(), MAX_CHOICES);
        assert_eq!(kept[0].name.chars().count(), MAX_CHOICE_LEN);
        assert!(kept.iter().all(|c| c.value.len() <= MAX_CHOICE_LEN));
    }
}
