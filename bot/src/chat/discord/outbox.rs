//! Unprompted messages (alerts, schedule warnings, notifications) as channel messages, their
//! [`Action`]s as buttons. A button's command is stored in the state database under a short
//! id (`dh:run:ID`), so buttons keep working across restarts until `action_ttl` runs out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serenity::all::{
    ButtonStyle, ChannelId, CreateActionRow, CreateButton, CreateMessage, Http, Nonce,
};

use super::buttons::RUN_PREFIX;
use super::channels::ChannelDirectory;
use super::mentions::Pings;
use super::split::{layout, with_files};
use crate::args;
use crate::chat::{Action, OutboundMessage, Outbox};
use crate::state::{Db, StateError};
use futures_util::future::BoxFuture;

pub(crate) const MIGRATIONS: &[&str] = &["CREATE TABLE discord_actions (
        id TEXT PRIMARY KEY,
        command TEXT NOT NULL,
        channel TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );"];

/// This component, as `deckhand state migrate` and [`Db::ensure`] know it.
pub(crate) const COMPONENT: crate::state::Component = crate::state::Component {
    name: "discord",
    migrations: MIGRATIONS,
};

/// Discord: at most 5 buttons per row, 5 rows per message, 80 characters per label.
const MAX_BUTTONS: usize = 25;
const MAX_LABEL: usize = 80;
/// Expired actions are kept this long so a late press hears "expired", then deleted.
const KEEP_EXPIRED: Duration = Duration::from_secs(7 * 24 * 3600);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A stored button action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAction {
    pub command: String,
    pub expired: bool,
}

/// Commands behind buttons, in the `discord` component's table.
pub struct ActionStore {
    db: Db,
    ttl: Duration,
}

impl ActionStore {
    pub fn new(db: Db, ttl: Duration) -> Result<ActionStore, StateError> {
        db.ensure(&COMPONENT)?;
        Ok(ActionStore { db, ttl })
    }

    /// Stores an action and returns its id.
    pub fn put(&self, channel: &str, action: &Action) -> Result<String, StateError> {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        let id: String = (0..16)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let now = unix_now();
        let keep = i64::try_from(KEEP_EXPIRED.as_secs()).unwrap_or(i64::MAX);
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM discord_actions WHERE expires_at < ?1",
                args![now.saturating_sub(keep)],
            )?;
            tx.execute(
                "INSERT INTO discord_actions (id, command, channel, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                args![&id, &action.command, channel, now.saturating_add(ttl)],
            )
        })?;
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Result<Option<StoredAction>, StateError> {
        let row: Option<(String, i64)> = self
            .db
            .query_opt(
                "SELECT command, expires_at FROM discord_actions WHERE id = ?1",
                args![id],
            )?
            .map(|row| Ok::<_, StateError>((row.get(0)?, row.get(1)?)))
            .transpose()?;
        Ok(row.map(|(command, expires_at)| StoredAction {
            command,
            expired: unix_now() >= expires_at,
        }))
    }
}

/// Stores `actions` and answers their buttons (at most [`MAX_BUTTONS`], five to a row).
pub(crate) fn action_buttons(
    store: &ActionStore,
    channel: &str,
    actions: &[Action],
) -> Result<Vec<CreateActionRow>, StateError> {
    let mut buttons = Vec::new();
    for action in actions.iter().take(MAX_BUTTONS) {
        let id = store.put(channel, action)?;
        let label: String = action.label.chars().take(MAX_LABEL).collect();
        buttons.push(
            CreateButton::new(format!("{RUN_PREFIX}{id}"))
                .label(label)
                .style(ButtonStyle::Secondary),
        );
    }
    Ok(buttons
        .chunks(5)
        .map(|row| CreateActionRow::Buttons(row.to_vec()))
        .collect())
}

/// Posts [`OutboundMessage`]s to Discord channels (`channel`: an id, `<#id>` or `#name`,
/// resolved when sent). serenity's ratelimiter keeps a bucket per channel, so a channel
/// waiting out a 429 holds only its own posts.
pub struct DiscordOutbox {
    http: Arc<Http>,
    actions: Arc<ActionStore>,
    channels: Arc<ChannelDirectory>,
}

impl DiscordOutbox {
    pub fn new(
        http: Arc<Http>,
        actions: Arc<ActionStore>,
        channels: Arc<ChannelDirectory>,
    ) -> DiscordOutbox {
        DiscordOutbox {
            http,
            actions,
            channels,
        }
    }

    async fn send(&self, message: OutboundMessage) -> Result<(), String> {
        let channel = self
            .channels
            .resolve(&message.channel)
            .map_err(|e| format!("cannot post to {}: {e}", message.channel))?;
        let rows = action_buttons(&self.actions, &message.channel, &message.actions)
            .map_err(|e| e.to_string())?;
        // Unprompted text (alerts, log lines) pings nobody, whatever it contains; output
        // longer than three messages is one attached file.
        let parts = with_files(layout(&message.text, "Message", "deckhand"), &message.files);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut create = CreateMessage::new()
                .content(part.text.clone())
                .allowed_mentions(Pings::none().allowed());
            for file in part.attachments() {
                create = create.add_file(file);
            }
            if i == last {
                create = create.components(rows.clone());
            }
            if let Some(key) = &message.key {
                // A retry of a send whose "sent" mark was lost returns the first message.
                create = create
                    .nonce(Nonce::String(nonce(key, i)))
                    .enforce_nonce(true);
            }
            ChannelId::new(channel)
                .send_message(&self.http, create)
                .await
                .map_err(|e| format!("cannot post to Discord channel {channel}: {e}"))?;
        }
        Ok(())
    }
}

/// Discord's nonce for part `part` of the notification `key`: at most 25 characters, the
/// same on every replica.
fn nonce(key: &str, part: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{key}#{part}").as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

impl Outbox for DiscordOutbox {
    fn deliver(&self, message: OutboundMessage) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.send(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_short_stable_and_differ_per_part() {
        let a = nonce("schedule-run:7:0", 0);
        assert_eq!(a.len(), 24, "Discord takes at most 25 characters");
        assert_eq!(a, nonce("schedule-run:7:0", 0));
        assert_ne!(a, nonce("schedule-run:7:0", 1));
        assert_ne!(a, nonce("schedule-run:7:1", 0));
    }

    #[test]
    fn actions_are_stored_and_expire() {
        let db = Db::in_memory().unwrap();
        let store = ActionStore::new(db.clone(), Duration::from_secs(3600)).unwrap();
        let action = Action {
            label: "Snooze".into(),
            command: "/schedule snooze nightly".into(),
        };
        let id = store.put("42", &action).unwrap();
        assert_eq!(
            store.get(&id).unwrap(),
            Some(StoredAction {
                command: action.command.clone(),
                expired: false
            })
        );
        assert_eq!(store.get("nope").unwrap(), None);
        let short = ActionStore::new(db, Duration::ZERO).unwrap();
        let id = short.put("42", &action).unwrap();
        assert!(short.get(&id).unwrap().unwrap().expired);
    }
}
