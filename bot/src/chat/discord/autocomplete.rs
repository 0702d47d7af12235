//! Autocomplete on Discord: the router's suggestions ([`crate::router::suggest`]) within
//! Discord's limits: at most 25 choices, names and values of 1–100 characters, and an answer
//! within 3 s (the plugin gets `autocomplete_timeout`; on failure the manifest's static choices
//! are offered).

use deckhand_plugin_abi::proto::Choice;
use serenity::all::{
    AutocompleteChoice, CommandInteraction, CreateAutocompleteResponse, CreateInteractionResponse,
    Http,
};

use super::{Adapter, interaction};
use crate::router::suggest::{Typing, suggestions};

pub const MAX_CHOICES: usize = 25;
const MAX_CHOICE_LEN: usize = 100;

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

pub(crate) async fn answer(adapter: &Adapter, http: &Http, request: CommandInteraction) {
    let caller = interaction::caller(&adapter.config, &request.user, request.member.as_deref());
    let (path, option, partial, options) = interaction::autocomplete_parts(&request.data);
    let typing = Typing {
        path,
        option,
        partial,
        options,
    };
    let choices = within_limits(
        suggestions(
            &adapter.router,
            &caller,
            &typing,
            adapter.config.autocomplete_timeout,
        )
        .await,
    );
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

/// An autocomplete request from a guild not in config: no suggestions (they could reveal
/// names of the operator's resources).
pub(crate) async fn refuse(http: &Http, request: CommandInteraction) {
    let empty = CreateInteractionResponse::Autocomplete(CreateAutocompleteResponse::new());
    if let Err(e) = request.create_response(http, empty).await {
        tracing::debug!(error = %e, "cannot answer an autocomplete request");
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
