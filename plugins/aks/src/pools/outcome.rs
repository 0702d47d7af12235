//! What a write to Azure came to, as a reply can say it: the resource Azure reports after the
//! change (or why it could not be read back, as a note on a success), and the subscription's
//! remaining write budget when it runs low.

use deckhand_plugin_sdk::PluginError;
use deckhand_plugin_sdk::abi::proto::ArmResponse;
use deckhand_plugin_shared::azure::AgentPool;

use super::parse;

/// Below this many writes left, replies say how many remain (AKS's bucket is 20 and refills
/// about one a minute, so a handful is a few minutes of work).
pub(crate) const LOW_WRITE_BUDGET: u32 = 5;

/// A pool write Azure finished.
#[derive(Debug, Clone)]
pub(crate) struct PoolWrite {
    /// The pool as Azure reports it after the change; `None` when it could not be read back.
    pub pool: Option<AgentPool>,
    /// Why the pool could not be read back, when it could not.
    pub unread: Option<String>,
    /// Azure's remaining write budget after this write, when it said.
    pub writes_left: Option<u32>,
}

impl PoolWrite {
    /// From the host's answer to a followed PUT.
    pub fn from_response(response: ArmResponse) -> Result<PoolWrite, PluginError> {
        let writes_left = response.remaining_writes;
        if let Some(error) = response.read_back_error {
            return Ok(PoolWrite {
                pool: None,
                unread: Some(error.message),
                writes_left,
            });
        }
        if response.body.is_null() {
            return Ok(PoolWrite {
                pool: None,
                unread: Some("Azure answered no resource".into()),
                writes_left,
            });
        }
        Ok(PoolWrite {
            pool: Some(parse(response.body, "the pool")?),
            unread: None,
            writes_left,
        })
    }

    /// No write was needed: the pool already is as asked.
    pub fn unchanged(pool: AgentPool) -> PoolWrite {
        PoolWrite {
            pool: Some(pool),
            unread: None,
            writes_left: None,
        }
    }

    /// ` The operation succeeded, but …` when the pool could not be read back.
    pub fn unread_note(&self) -> String {
        self.unread
            .as_deref()
            .map(|why| {
                format!(
                    " Azure reports the operation Succeeded, but the pool could not be read back ({}); /aks pools shows its state.",
                    why.trim_end_matches('.')
                )
            })
            .unwrap_or_default()
    }

    /// ` Azure write budget: …` when few writes are left.
    pub fn budget_note(&self) -> String {
        budget_note(self.writes_left)
    }
}

/// ` Azure write budget: N writes left …` when `left` is below [`LOW_WRITE_BUDGET`].
pub(crate) fn budget_note(left: Option<u32>) -> String {
    match left {
        Some(left) if left < LOW_WRITE_BUDGET => format!(
            " Azure write budget: {left} write{} left for this subscription (AKS gives back about one a minute; more changes now wait for it).",
            if left == 1 { "" } else { "s" }
        ),
        _ => String::new(),
    }
}
