//! `allowed_mentions` for everything Deckhand sends: nobody is pinged by text that merely
//! contains `@everyone`, `<@&role>` or `<@user>` (an alert, a log line, a plugin's output).
//! Only the mentions Deckhand writes on purpose notify: the caller in a channel post that
//! answers them, and the approver roles under an Approve button.

use serenity::all::{CreateAllowedMentions, RoleId, UserId};

/// Which mentions of a message may notify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pings {
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
}

impl Pings {
    /// Nobody.
    pub fn none() -> Pings {
        Pings::default()
    }

    pub fn user(id: u64) -> Pings {
        Pings {
            users: vec![id],
            roles: Vec::new(),
        }
    }

    /// The `allowed_mentions` object: `parse` empty, only the listed ids.
    pub fn allowed(&self) -> CreateAllowedMentions {
        CreateAllowedMentions::new()
            .everyone(false)
            .all_users(false)
            .all_roles(false)
            .users(self.users.iter().map(|id| UserId::new(*id)))
            .roles(self.roles.iter().map(|id| RoleId::new(*id)))
    }
}

/// The Discord role ids of approver role names: `[discord.roles]` maps id → name, and a name
/// that is itself a numeric id (an unmapped role) is that id.
pub fn role_ids<'a>(
    names: &[String],
    mapping: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<u64> {
    let mut ids: Vec<u64> = mapping
        .into_iter()
        .filter(|(_, name)| names.contains(name))
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    ids.extend(names.iter().filter_map(|n| n.parse::<u64>().ok()));
    ids.retain(|id| *id != 0);
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn nothing_pings_unless_listed() {
        let json = serde_json::to_value(Pings::none().allowed()).unwrap();
        assert_eq!(json["parse"], serde_json::json!([]));
        let json = serde_json::to_value(Pings::user(42).allowed()).unwrap();
        assert_eq!(json["users"], serde_json::json!(["42"]));
    }

    #[test]
    fn approver_names_map_back_to_role_ids() {
        let mut roles = BTreeMap::new();
        roles.insert("7".to_owned(), "approver".to_owned());
        roles.insert("8".to_owned(), "viewer".to_owned());
        let ids = role_ids(&["approver".into(), "99".into()], &roles);
        assert_eq!(ids, [7, 99]);
    }
}
