//! Confirmations for destructive commands: a short code the same caller confirms before it
//! expires, or, where config asks for a second person, that someone with an approver role
//! approves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use super::Invocation;
use super::parse::Parsed;

/// A destructive command waiting for its confirmation.
#[derive(Debug, Clone)]
pub struct Pending {
    pub code: String,
    pub invocation: Invocation,
    pub parsed: Parsed,
    pub permission: String,
    pub expires_at: Instant,
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
}

/// A refusal, with the entry itself when it expired (so its audit row can be closed).
pub type ConfirmFailure = (ConfirmError, Option<Box<Pending>>);

pub struct ConfirmBook {
    timeout: Duration,
    pending: Mutex<HashMap<String, Pending>>,
    /// Codes that expired unanswered, kept for an hour so a late /confirm hears "expired"
    /// rather than "unknown".
    expired: Mutex<HashMap<String, Instant>>,
}

/// How long an expired code is remembered.
const REMEMBER_EXPIRED: Duration = Duration::from_secs(3600);

/// Letters and digits that cannot be misread for one another.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..6)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

impl ConfirmBook {
    pub fn new(timeout: Duration) -> ConfirmBook {
        ConfirmBook {
            timeout,
            pending: Mutex::default(),
            expired: Mutex::default(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a command for confirmation and returns its code.
    pub fn open(
        &self,
        invocation: Invocation,
        parsed: Parsed,
        permission: String,
        approver_roles: Option<Vec<String>>,
    ) -> Pending {
        let mut pending = self.lock();
        let code = loop {
            let code = new_code();
            if !pending.contains_key(&code) {
                break code;
            }
        };
        let entry = Pending {
            code: code.clone(),
            invocation,
            parsed,
            permission,
            expires_at: Instant::now() + self.timeout,
            approver_roles,
        };
        pending.insert(code, entry.clone());
        entry
    }

    /// Takes the pending command if it is still live; an expired one is removed and returned
    /// in the error so its audit row can be closed.
    fn take_live(
        &self,
        code: &str,
        check: impl FnOnce(&Pending) -> Result<(), ConfirmError>,
    ) -> Result<Pending, ConfirmFailure> {
        let code = code.trim().to_ascii_uppercase();
        let mut book = self.lock();
        let Some(entry) = book.get(&code) else {
            let expired = self
                .expired
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&code);
            let error = if expired {
                ConfirmError::Expired {
                    code,
                    secs: self.timeout.as_secs(),
                }
            } else {
                ConfirmError::Unknown { code }
            };
            return Err((error, None));
        };
        if Instant::now() >= entry.expires_at {
            let entry = book.remove(&code).map(Box::new);
            return Err((
                ConfirmError::Expired {
                    code,
                    secs: self.timeout.as_secs(),
                },
                entry,
            ));
        }
        check(entry).map_err(|e| (e, None))?;
        Ok(book.remove(&code).expect("present: checked above"))
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

    /// Removes and returns every expired entry (to close their audit rows).
    pub fn sweep_expired(&self) -> Vec<Pending> {
        let now = Instant::now();
        let mut book = self.lock();
        let expired: Vec<String> = book
            .iter()
            .filter(|(_, p)| now >= p.expires_at)
            .map(|(c, _)| c.clone())
            .collect();
        let mut remembered = self.expired.lock().unwrap_or_else(|p| p.into_inner());
        remembered.retain(|_, at| now.duration_since(*at) < REMEMBER_EXPIRED);
        remembered.extend(expired.iter().map(|c| (c.clone(), now)));
        expired.iter().filter_map(|c| book.remove(c)).collect()
    }
}
