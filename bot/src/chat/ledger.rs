//! The notifications ledger: a message with a [`key`](OutboundMessage::key) is claimed in the
//! state database before it is sent and marked sent after, so two replicas sharing the state
//! (or one restarted) post it once. A claim that was never marked sent (its sender died
//! between the two) may be taken once more after [`RETRY_AFTER`], so a crashed send is tried
//! again, not lost; the Discord outbox passes the key as the message's nonce, which Discord
//! enforces, so that retry cannot double a post that did go out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::args;
use crate::chat::{OutboundMessage, Outbox};
use crate::state::{Db, StateError, timestamp};

pub(crate) const MIGRATIONS: &[&str] = &["CREATE TABLE notifications (
        key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        claimed_by TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX notifications_claimed ON notifications(claimed_at);"];

/// This component, as `deckhand state migrate` and [`Db::ensure`] know it.
pub(crate) const COMPONENT: crate::state::Component = crate::state::Component {
    name: "notifications",
    migrations: MIGRATIONS,
};

/// How long a claim without its "sent" mark holds before another sender may retry it: longer
/// than a send takes, shorter than a lease (a new leader retries what the old one left).
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Sends per key: the first and one retry.
const MAX_ATTEMPTS: i64 = 2;
/// Rows older than this are forgotten.
const KEEP: chrono::Duration = chrono::Duration::days(30);

/// What [`Ledger::claim`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Send it (attempt 1, or the retry of a send that was never marked).
    Send,
    /// Sent already, being sent by someone else, or retried already: do not send.
    Skip,
}

/// The `notifications` table.
#[derive(Clone)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub fn new(db: Db) -> Result<Ledger, StateError> {
        db.ensure(&COMPONENT)?;
        Ok(Ledger { db })
    }

    /// Claims `key` for this replica. One statement, so two replicas racing for a key get one
    /// `Send` between them on either backend.
    pub fn claim(&self, key: &str, channel: &str, now: DateTime<Utc>) -> Result<Claim, StateError> {
        let retry = chrono::Duration::from_std(RETRY_AFTER).unwrap_or_default();
        let stale = now.checked_sub_signed(retry).unwrap_or(now);
        let won = self.db.query_opt(
            "INSERT INTO notifications (key, channel, claimed_at, claimed_by, attempts)
             VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at,
                claimed_by = excluded.claimed_by, attempts = notifications.attempts + 1
             WHERE notifications.sent_at IS NULL AND notifications.attempts < ?5
                AND notifications.claimed_at < ?6
             RETURNING attempts",
            args![
                key,
                channel,
                timestamp(now),
                crate::state::replica_name(),
                MAX_ATTEMPTS,
                timestamp(stale)
            ],
        )?;
        Ok(if won.is_some() {
            Claim::Send
        } else {
            Claim::Skip
        })
    }

    /// Marks `key` sent; now and then forgets old rows.
    pub fn sent(&self, key: &str, now: DateTime<Utc>) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE notifications SET sent_at = ?2 WHERE key = ?1",
            args![key, timestamp(now)],
        )?;
        if rand::random_ratio(1, 200) {
            let horizon = now.checked_sub_signed(KEEP).unwrap_or(now);
            self.db.execute(
                "DELETE FROM notifications WHERE claimed_at < ?1",
                args![timestamp(horizon)],
            )?;
        }
        Ok(())
    }

    /// Makes the unsent claims of keys starting with `prefix` claimable at once: for a
    /// leader taking over a run whose old leader is gone (it stopped acting when it could
    /// not renew), so its unsent reports need not wait out [`RETRY_AFTER`].
    pub fn release_unsent(&self, prefix: &str) -> Result<usize, StateError> {
        let length = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        self.db.execute(
            "UPDATE notifications SET claimed_at = '' WHERE sent_at IS NULL
                AND substr(key, 1, ?2) = ?1",
            args![prefix, length],
        )
    }

    /// `(attempts, sent)` of `key`, for tests and `deckhand state` tools.
    pub fn get(&self, key: &str) -> Result<Option<(i64, bool)>, StateError> {
        self.db
            .query_opt(
                "SELECT attempts, sent_at FROM notifications WHERE key = ?1",
                args![key],
            )?
            .map(|row| Ok((row.get(0)?, row.get::<Option<String>>(1)?.is_some())))
            .transpose()
    }
}

/// An outbox that sends keyed messages through the [`Ledger`] and the rest as they are.
pub struct LedgerOutbox {
    inner: Arc<dyn Outbox>,
    ledger: Ledger,
}

impl LedgerOutbox {
    pub fn new(inner: Arc<dyn Outbox>, ledger: Ledger) -> LedgerOutbox {
        LedgerOutbox { inner, ledger }
    }

    async fn send(&self, message: OutboundMessage) -> Result<(), String> {
        let Some(key) = message.key.clone() else {
            return self.inner.deliver(message).await;
        };
        match self.ledger.claim(&key, &message.channel, Utc::now()) {
            Ok(Claim::Send) => {}
            Ok(Claim::Skip) => {
                tracing::debug!(%key, "notification already posted or being posted");
                return Ok(());
            }
            Err(e) => {
                // Losing an alert or a report is worse than a duplicate: send it unrecorded.
                tracing::warn!(%key, error = %e, "notification not recorded; sending it anyway");
                return self.inner.deliver(message).await;
            }
        }
        self.inner.deliver(message).await?;
        if let Err(e) = self.ledger.sent(&key, Utc::now()) {
            tracing::warn!(%key, error = %e, "notification sent but not marked sent");
        }
        Ok(())
    }
}

impl Outbox for LedgerOutbox {
    fn deliver(&self, message: OutboundMessage) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.send(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::MemoryOutbox;
    use crate::state::testing::on_each_backend;

    fn message(key: Option<&str>) -> OutboundMessage {
        OutboundMessage {
            channel: "ops".into(),
            text: "Schedule nightly [1/2] done".into(),
            actions: Vec::new(),
            files: Vec::new(),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn a_key_is_claimed_once_and_an_unmarked_claim_is_retried_once_after_the_delay() {
        on_each_backend(|db| {
            let ledger = Ledger::new(db.clone()).unwrap();
            let t0 = Utc::now();
            assert_eq!(ledger.claim("r1:0", "ops", t0).unwrap(), Claim::Send);
            // A second replica at once: the first is sending it.
            assert_eq!(ledger.claim("r1:0", "ops", t0).unwrap(), Claim::Skip);
            // The first died before marking it: after the delay, one retry and no more.
            let later = t0 + chrono::Duration::seconds(11);
            assert_eq!(ledger.claim("r1:0", "ops", later).unwrap(), Claim::Send);
            let much_later = later + chrono::Duration::seconds(60);
            assert_eq!(
                ledger.claim("r1:0", "ops", much_later).unwrap(),
                Claim::Skip
            );
            assert_eq!(ledger.get("r1:0").unwrap(), Some((2, false)));
            // Marked sent: never again.
            assert_eq!(ledger.claim("r1:1", "ops", t0).unwrap(), Claim::Send);
            ledger.sent("r1:1", t0).unwrap();
            assert_eq!(
                ledger.claim("r1:1", "ops", much_later).unwrap(),
                Claim::Skip
            );
            assert_eq!(ledger.get("r1:1").unwrap(), Some((1, true)));
            assert_eq!(ledger.get("r9:0").unwrap(), None);
        });
    }

    #[tokio::test]
    async fn keyed_messages_go_out_once_through_two_outboxes_and_unkeyed_ones_always() {
        let db = crate::state::Db::in_memory().unwrap();
        let seen = Arc::new(MemoryOutbox::default());
        let a = LedgerOutbox::new(seen.clone(), Ledger::new(db.clone()).unwrap());
        let b = LedgerOutbox::new(seen.clone(), Ledger::new(db.clone()).unwrap());
        a.post(message(Some("r1:0"))).await.unwrap();
        b.post(message(Some("r1:0"))).await.unwrap();
        a.post(message(None)).await.unwrap();
        b.post(message(None)).await.unwrap();
        assert_eq!(seen.messages().len(), 3);
        assert_eq!(
            Ledger::new(db).unwrap().get("r1:0").unwrap(),
            Some((1, true))
        );
    }
}
