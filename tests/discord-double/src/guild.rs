//! The one guild's channels and what the bot may do in them: `GET /guilds/{id}/channels`,
//! `GET /users/@me/guilds`, 404 Unknown Channel (10003) for a channel the guild does not have,
//! 403 Missing Access / Missing Permissions (50001 / 50013) where the test denies the bot.

use serde_json::{Value, json};

use crate::{Shared, State};

/// A guild text channel object (type 0), the fields serenity 0.12.5 needs.
pub(crate) fn channel(id: u64, name: &str, guild_id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "type": 0,
        "guild_id": guild_id.to_string(),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": false,
        "topic": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "parent_id": null,
        "flags": 0,
    })
}

/// The guild as `GET /users/@me/guilds` lists it (a partial guild).
pub(crate) fn partial_guild(shared: &Shared) -> Value {
    json!({
        "id": shared.cfg.guild_id.to_string(),
        "name": "Deckhand double",
        "icon": null,
        "owner": false,
        "permissions": "2147483647",
        "features": [],
    })
}

/// Why the bot may not post in `channel`, as Discord answers: `(status, code, message)`.
pub(crate) fn refuse_post(
    shared: &Shared,
    st: &State,
    channel: u64,
) -> Option<(u16, u64, &'static str)> {
    let id = channel.to_string();
    // A thread inherits its parent channel's permissions.
    let parent = st
        .threads
        .iter()
        .find(|t| t["id"].as_str() == Some(id.as_str()))
        .and_then(|t| t["parent_id"].as_str()?.parse::<u64>().ok());
    let denied = shared
        .cfg
        .denied
        .iter()
        .find(|(d, _)| *d == channel || Some(*d) == parent);
    if let Some((_, code)) = denied {
        let message = if *code == 50001 {
            "Missing Access"
        } else {
            "Missing Permissions"
        };
        return Some((403, *code, message));
    }
    let known = parent.is_some()
        || st
            .channels
            .iter()
            .any(|c| c["id"].as_str() == Some(id.as_str()))
        || st
            .messages
            .iter()
            .any(|m| m["thread"]["id"].as_str() == Some(id.as_str()));
    (!known).then_some((404, 10003, "Unknown Channel"))
}
