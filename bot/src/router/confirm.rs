//! Confirmations for destructive commands: a short code the same caller confirms before it
//! expires, or, where config asks for a second person, that someone with an approver role
//! approves. Kept in the state database, so with replicas sharing it `/confirm CODE` works on
//! whichever one receives it; a code is taken once, whichever replica takes it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::Invocation;
use crate::args;
use crate::state::sql::{Exec, Row};
use crate::state::{Db, StateError, timestamp};

// The `confirmations` table is a core migration (4, in `crate::state`). A row's command line
// is blanked when it expires and the row deleted when it is taken, so a line waits in the
// database no longer than its timeout.

/// A destructive command waiting for its confirmation. The command is parsed again when it
/// runs (possibly on another replica, from the line as typed).
#[derive(Debug, Clone)]
pub struct Pending {
    pub code: String,
    pub invocation: Invocation,
    pub permission: String,
    pub expires_at: DateTime<Utc>,
    /// Set when a second person with one of these roles must approve.
    pub approver_roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfirmError {
    #[error("no pending confirmation {code}; it may have run already or never existed")]
    Unknown { code: String },
    #[error("confirmation {code} expired after {secs} s; run the command again")]
    Expired { code: String, secs: u64 },
    #[error("only {requester} can confirm {code}")]
    WrongUser { code: String, requester: String },
    #[error("{code} needs approval by someone else with role {}: they run /approve {code}", roles.join(" or "))]
    NeedsApproval { code: String, roles: Vec<String> },
    #[error("approving {code} needs role {}", roles.join(" or "))]
    NotApprover { code: String, roles: Vec<String> },
    #[error("you requested {code}; approval must come from a second person")]
    SelfApproval { code: String },
    #[error("{code} needs no approval; the requester confirms it with /confirm {code}")]
    NoApprovalNeeded { code: String },
    #[error("confirmations cannot be read now: {0}")]
    Unavailable(String),
}

/// A refusal, with the expired entry's invocation id when it expired (so its audit row can
/// be closed).
pub type ConfirmFailure = (ConfirmError, Option<String>);

pub struct ConfirmBook {
    db: Db,
    timeout: Duration,
    /// When [`ConfirmBook::sweep_expired`] last ran on this replica.
    last_sweep: std::sync::Mutex<Option<Instant>>,
}

/// Sweeps of expired entries run at most this often: a sweep is a write transaction, and at
/// one per command it cost about a tenth of the command path (issue 21). A code taken after
/// its expiry is refused whether swept or not; the sweep only closes the audit rows of codes
/// nobody took.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long an expired code is remembered, so a late /confirm hears "expired" rather than
/// "unknown".
const REMEMBER_EXPIRED: chrono::Duration = chrono::Duration::hours(1);

/// Letters and digits that cannot be misread for one another.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..6)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// The stored form of an invocation (its caller as the ABI serializes it).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredInvocation {
    id: String,
    surface: String,
    channel: String,
    caller: deckhand_plugin_abi::proto::Caller,
    text: String,
}

fn decode(row: &Row) -> Result<Pending, StateError> {
    let code: String = row.get(0)?;
    let invocation: String = row.get(2)?;
    let stored: StoredInvocation = serde_json::from_str(&invocation)
        .map_err(|e| StateError::Stored(format!("confirmation {code}: {e}")))?;
    let roles: Option<String> = row.get(4)?;
    let approver_roles = roles
        .map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(|e| StateError::Stored(format!("confirmation {code}: {e}")))?;
    let expires_at: String = row.get(5)?;
    Ok(Pending {
        expires_at: DateTime::parse_from_rfc3339(&expires_at)
            .map_err(|e| StateError::Stored(format!("confirmation {code}: {e}")))?
            .with_timezone(&Utc),
        invocation: Invocation {
            id: stored.id,
            surface: stored.surface,
            channel: stored.channel,
            caller: stored.caller,
            text: stored.text,
        },
        permission: row.get(3)?,
        approver_roles,
        code,
    })
}

const COLUMNS: &str =
    "code, invocation_id, invocation, permission, approver_roles, expires_at, expired";

impl ConfirmBook {
    pub fn new(db: Db, timeout: Duration) -> ConfirmBook {
        ConfirmBook {
            db,
            timeout,
            last_sweep: std::sync::Mutex::new(None),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Files a command for confirmation and returns it with its code.
    pub fn open(
        &self,
        invocation: Invocation,
        permission: String,
        approver_roles: Option<Vec<String>>,
    ) -> Result<Pending, StateError> {
        let timeout = chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::days(1));
        let expires_at = Utc::now()
            .checked_add_signed(timeout)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let stored = serde_json::to_string(&StoredInvocation {
            id: invocation.id.clone(),
            surface: invocation.surface.clone(),
            channel: invocation.channel.clone(),
            caller: invocation.caller.clone(),
            text: invocation.text.clone(),
        })
        .map_err(|e| StateError::Stored(e.to_string()))?;
        let roles = approver_roles
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        let code = loop {
            let code = new_code();
            let inserted = self.db.execute(
                "INSERT INTO confirmations
                    (code, invocation_id, invocation, permission, approver_roles, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (code) DO NOTHING",
                args![
                    &code,
                    &invocation.id,
                    &stored,
                    &permission,
                    roles.clone(),
                    timestamp(expires_at)
                ],
            )?;
            if inserted == 1 {
                break code;
            }
        };
        Ok(Pending {
            code,
            invocation,
            permission,
            expires_at,
            approver_roles,
        })
    }

    /// Takes the pending command if it is still live (once, whichever replica asks); an
    /// expired one is marked so and its invocation id returned in the error.
    fn take_live(
        &self,
        code: &str,
        check: impl FnOnce(&Pending) -> Result<(), ConfirmError>,
    ) -> Result<Pending, ConfirmFailure> {
        let code = code.trim().to_ascii_uppercase();
        let secs = self.timeout.as_secs();
        let unknown = |code: &str| ConfirmError::Unknown {
            code: code.to_owned(),
        };
        let taken = self.db.transaction(|tx: &mut dyn Exec| {
            let Some(row) = tx.query_opt(
                &format!("SELECT {COLUMNS} FROM confirmations WHERE code = ?1"),
                args![&code],
            )?
            else {
                return Ok(Err((unknown(&code), None)));
            };
            if row.get::<i64>(6)? != 0 {
                return Ok(Err((
                    ConfirmError::Expired {
                        code: code.clone(),
                        secs,
                    },
                    None,
                )));
            }
            let entry = decode(&row)?;
            if Utc::now() >= entry.expires_at {
                expire(tx, &code)?;
                let id = Some(entry.invocation.id);
                return Ok(Err((
                    ConfirmError::Expired {
                        code: code.clone(),
                        secs,
                    },
                    id,
                )));
            }
            if let Err(e) = check(&entry) {
                return Ok(Err((e, None)));
            }
            // Taken by whoever deletes it: a second replica racing for it deletes nothing.
            let deleted = tx.execute(
                "DELETE FROM confirmations WHERE code = ?1 AND expired = 0",
                args![&code],
            )?;
            Ok(if deleted == 1 {
                Ok(entry)
            } else {
                Err((unknown(&code), None))
            })
        });
        match taken {
            Ok(result) => result,
            Err(e) => Err((ConfirmError::Unavailable(e.to_string()), None)),
        }
    }

    /// The requester confirms their own command.
    pub fn confirm(&self, code: &str, user_id: &str) -> Result<Pending, ConfirmFailure> {
        self.take_live(code, |entry| {
            if let Some(roles) = &entry.approver_roles {
                return Err(ConfirmError::NeedsApproval {
                    code: entry.code.clone(),
                    roles: roles.clone(),
                });
            }
            if entry.invocation.caller.user_id != user_id {
                return Err(ConfirmError::WrongUser {
                    code: entry.code.clone(),
                    requester: entry.invocation.caller.display_name.clone(),
                });
            }
            Ok(())
        })
    }

    /// A second person with an approver role approves.
    pub fn approve(
        &self,
        code: &str,
        user_id: &str,
        roles: &[String],
    ) -> Result<Pending, ConfirmFailure> {
        self.take_live(code, |entry| {
            let Some(needed) = &entry.approver_roles else {
                return Err(ConfirmError::NoApprovalNeeded {
                    code: entry.code.clone(),
                });
            };
            if entry.invocation.caller.user_id == user_id {
                return Err(ConfirmError::SelfApproval {
                    code: entry.code.clone(),
                });
            }
            if !needed.iter().any(|r| roles.contains(r)) {
                return Err(ConfirmError::NotApprover {
                    code: entry.code.clone(),
                    roles: needed.clone(),
                });
            }
            Ok(())
        })
    }

    /// [`ConfirmBook::sweep_expired`] unless it ran less than [`SWEEP_EVERY`] ago here.
    pub fn sweep_expired_if_due(&self) -> Result<Vec<String>, StateError> {
        self.sweep_expired_if_due_at(Instant::now())
    }

    fn sweep_expired_if_due_at(&self, now: Instant) -> Result<Vec<String>, StateError> {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now.saturating_duration_since(at) < SWEEP_EVERY) {
                return Ok(Vec::new());
            }
            *last = Some(now);
        }
        self.sweep_expired()
    }

    /// Marks every expired entry (once, whichever replica sweeps) and returns their
    /// invocation ids, to close their audit rows; forgets markers older than an hour.
    pub fn sweep_expired(&self) -> Result<Vec<String>, StateError> {
        let now = Utc::now();
        let forget = now.checked_sub_signed(REMEMBER_EXPIRED).unwrap_or(now);
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM confirmations WHERE expired = 1 AND expires_at < ?1",
                args![timestamp(forget)],
            )?;
            tx.query(
                "UPDATE confirmations SET expired = 1, invocation = ''
                 WHERE expired = 0 AND expires_at <= ?1 RETURNING invocation_id",
                args![timestamp(now)],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect()
        })
    }
}

/// Marks one entry expired and blanks its command line.
fn expire(tx: &mut dyn Exec, code: &str) -> Result<(), StateError> {
    tx.execute(
        "UPDATE confirmations SET expired = 1, invocation = '' WHERE code = ?1",
        args![code],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use deckhand_plugin_abi::proto::Caller;

    use super::*;

    fn invocation(text: &str) -> Invocation {
        let caller = Caller {
            user_id: "u1".into(),
            display_name: "User One".into(),
            roles: vec!["admin".into()],
        };
        Invocation::new("terminal", "#ops", caller, text)
    }

    #[test]
    fn expired_codes_are_swept_at_most_once_a_second() {
        let book = ConfirmBook::new(Db::in_memory().unwrap(), Duration::ZERO);
        let first = book.open(invocation("/wipe"), "wipe".into(), None).unwrap();
        let start = Instant::now();
        assert_eq!(
            book.sweep_expired_if_due_at(start).unwrap(),
            [first.invocation.id]
        );
        let second = book.open(invocation("/wipe"), "wipe".into(), None).unwrap();
        let soon = start + Duration::from_millis(999);
        assert!(book.sweep_expired_if_due_at(soon).unwrap().is_empty());
        let later = start + SWEEP_EVERY;
        assert_eq!(
            book.sweep_expired_if_due_at(later).unwrap(),
            [second.invocation.id]
        );
    }
}
