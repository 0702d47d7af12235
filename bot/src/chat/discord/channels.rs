//! Channel names → ids. Config and commands may name a channel (`#gpu-ops`); Discord's API
//! takes ids. The directory is loaded from the guild's channels at start (`GET
//! /guilds/{id}/channels`, every guild the bot is in when no `guild_id` is configured) and
//! kept current from the gateway's CHANNEL_CREATE / CHANNEL_UPDATE / CHANNEL_DELETE.
//!
//! A name is looked up when a message is sent, so a channel created or renamed to the name
//! takes it over. A name that resolved before and whose channel was renamed away (no channel
//! has the name any more) keeps going to that channel, with a warning, so a rename loses no
//! alert; a deleted channel's name no longer resolves.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serenity::all::{ChannelType, GuildChannel, GuildId, Http};

use crate::router::parse::{ChannelRef, ChannelRefError};

/// Why a channel spelling does not give a channel id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Spelling(#[from] ChannelRefError),
    #[error("no text channel #{name} in the guild{}", known_list(.known))]
    Unknown { name: String, known: Vec<String> },
    #[error("#{name} names {} channels ({}); write the id of the one meant", .ids.len(), .ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous { name: String, ids: Vec<u64> },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (it has none the bot can see)".to_owned()
    } else {
        format!(" (it has {})", known.join(", "))
    }
}

/// Loading the guild's channels failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the Discord guild's channels: {0}")]
pub struct LoadError(#[source] pub serenity::Error);

#[derive(Debug, Clone)]
struct Known {
    name: String,
    guild: u64,
}

#[derive(Default)]
struct Inner {
    channels: BTreeMap<u64, Known>,
    /// The channel each name last resolved to, followed through a rename.
    followed: HashMap<String, u64>,
}

/// The guild's postable channels by id and name.
pub struct ChannelDirectory {
    /// Only this guild's channels (the configured `guild_id`); every guild when `None`.
    guild: Option<u64>,
    inner: RwLock<Inner>,
}

/// Channels the bot can post in: text and announcement channels.
fn postable(kind: ChannelType) -> bool {
    matches!(kind, ChannelType::Text | ChannelType::News)
}

impl ChannelDirectory {
    pub fn new(guild: Option<u64>) -> ChannelDirectory {
        ChannelDirectory {
            guild,
            inner: RwLock::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn in_scope(&self, guild: u64) -> bool {
        self.guild.is_none_or(|g| g == guild)
    }

    /// Replaces the directory with the guild's channels; returns how many it has.
    pub async fn load(&self, http: &Http) -> Result<usize, LoadError> {
        let guilds: Vec<u64> = match self.guild {
            Some(g) => vec![g],
            None => http
                .get_guilds(None, None)
                .await
                .map_err(LoadError)?
                .into_iter()
                .map(|g| g.id.get())
                .collect(),
        };
        let mut channels = Vec::new();
        for guild in guilds {
            channels.extend(
                http.get_channels(GuildId::new(guild))
                    .await
                    .map_err(LoadError)?,
            );
        }
        let mut inner = self.write();
        inner.channels.clear();
        for channel in &channels {
            if postable(channel.kind) {
                inner.channels.insert(
                    channel.id.get(),
                    Known {
                        name: channel.name.clone(),
                        guild: channel.guild_id.get(),
                    },
                );
            }
        }
        Ok(inner.channels.len())
    }

    /// CHANNEL_CREATE / CHANNEL_UPDATE: a new or renamed channel.
    pub fn upsert(&self, channel: &GuildChannel) {
        self.put(
            channel.id.get(),
            channel.guild_id.get(),
            &channel.name,
            postable(channel.kind),
        );
    }

    /// A channel with this id, guild and name now exists (`postable`: the bot can post there).
    pub fn put(&self, id: u64, guild: u64, name: &str, postable: bool) {
        if !self.in_scope(guild) {
            return;
        }
        let mut inner = self.write();
        if !postable {
            inner.channels.remove(&id);
            return;
        }
        let old = inner.channels.insert(
            id,
            Known {
                name: name.to_owned(),
                guild,
            },
        );
        if let Some(old) = old.filter(|o| o.name != name) {
            tracing::info!(channel = id, from = %old.name, to = %name, "Discord channel renamed");
        }
    }

    /// CHANNEL_DELETE.
    pub fn remove(&self, id: u64) {
        let mut inner = self.write();
        inner.channels.remove(&id);
        inner.followed.retain(|_, followed| *followed != id);
    }

    /// The channel id `spelling` (`#name`, `name`, an id, `<#id>`) stands for now.
    pub fn resolve(&self, spelling: &str) -> Result<u64, ResolveError> {
        let name = match ChannelRef::parse(spelling)? {
            ChannelRef::Id(id) => return Ok(id),
            ChannelRef::Name(name) => name,
        };
        let found: Vec<u64> = self
            .read()
            .channels
            .iter()
            .filter(|(_, c)| c.name == name)
            .map(|(id, _)| *id)
            .collect();
        match found.as_slice() {
            [id] => {
                self.write().followed.insert(name, *id);
                Ok(*id)
            }
            [] => {
                let inner = self.read();
                if let Some((id, now)) = inner
                    .followed
                    .get(&name)
                    .and_then(|id| inner.channels.get(id).map(|c| (*id, c.name.clone())))
                {
                    tracing::warn!(
                        channel = id,
                        "#{name} was renamed to #{now}; posting there (write #{now} or {id} in the config)"
                    );
                    return Ok(id);
                }
                let mut known: Vec<String> = inner
                    .channels
                    .values()
                    .map(|c| format!("#{}", c.name))
                    .collect();
                known.sort();
                known.dedup();
                Err(ResolveError::Unknown { name, known })
            }
            _ => Err(ResolveError::Ambiguous { name, ids: found }),
        }
    }

    /// How many channels the directory knows.
    pub fn len(&self) -> usize {
        self.read().channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The guild a known channel is in.
    pub fn guild_of(&self, id: u64) -> Option<u64> {
        self.read().channels.get(&id).map(|c| c.guild)
    }
}

/// A channel the config names, and where: `[alerts] default_channel`, `schedule nightly`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredChannel {
    pub place: String,
    pub spelling: String,
}

/// Every configured channel that does not resolve, each as `PLACE: REASON`.
pub fn unresolved(directory: &ChannelDirectory, configured: &[ConfiguredChannel]) -> Vec<String> {
    configured
        .iter()
        .filter_map(|c| {
            directory
                .resolve(&c.spelling)
                .err()
                .map(|e| format!("{}: {e}", c.place))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> ChannelDirectory {
        let d = ChannelDirectory::new(Some(1));
        d.put(10, 1, "alerts", true);
        d.put(20, 1, "gpu-ops", true);
        d.put(30, 1, "voice", false);
        d.put(40, 2, "elsewhere", true);
        d
    }

    #[test]
    fn names_ids_and_mentions_resolve() {
        let d = directory();
        assert_eq!(d.resolve("#alerts"), Ok(10));
        assert_eq!(d.resolve("gpu-ops"), Ok(20));
        assert_eq!(d.resolve("<#99>"), Ok(99));
        assert_eq!(d.resolve("99"), Ok(99));
        assert_eq!(d.len(), 2, "voice and other guilds are left out");
        let err = d.resolve("#voice").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no text channel #voice in the guild (it has #alerts, #gpu-ops)"
        );
        assert!(matches!(
            d.resolve("Bad Name"),
            Err(ResolveError::Spelling(_))
        ));
    }

    #[test]
    fn renames_creates_and_deletes_are_followed() {
        let d = directory();
        assert_eq!(d.resolve("#alerts"), Ok(10));
        // Renamed away: the name keeps going to the channel it was.
        d.put(10, 1, "alerts-archive", true);
        assert_eq!(d.resolve("#alerts"), Ok(10));
        // A channel takes the name: it gets the posts.
        d.put(50, 1, "alerts", true);
        assert_eq!(d.resolve("#alerts"), Ok(50));
        d.remove(50);
        d.remove(10);
        assert!(matches!(
            d.resolve("#alerts"),
            Err(ResolveError::Unknown { .. })
        ));
        d.put(60, 1, "gpu-ops", true);
        assert_eq!(
            d.resolve("#gpu-ops"),
            Err(ResolveError::Ambiguous {
                name: "gpu-ops".into(),
                ids: vec![20, 60]
            })
        );
    }

    #[test]
    fn unresolved_lists_every_place() {
        let d = directory();
        let configured = [
            ConfiguredChannel {
                place: "[alerts] default_channel".into(),
                spelling: "#alerts".into(),
            },
            ConfiguredChannel {
                place: "schedule nightly".into(),
                spelling: "#gpu-opz".into(),
            },
            ConfiguredChannel {
                place: "[[alerts.routes]] 1".into(),
                spelling: "#ml".into(),
            },
        ];
        let problems = unresolved(&d, &configured);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("schedule nightly: no text channel #gpu-opz"));
        assert!(problems[1].starts_with("[[alerts.routes]] 1: no text channel #ml"));
    }
}
