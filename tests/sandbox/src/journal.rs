//! Every request the sandbox served (but its own control API), so a test can assert that a
//! refused command sent nothing to Azure, Kubernetes or a registry. Bounded: the oldest entries
//! go first once `LIMIT` is reached (an interactive sandbox runs for hours).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Entries kept.
const LIMIT: usize = 10_000;

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path as received, before any decoding.
    pub path: String,
    /// The raw query string.
    pub query: String,
}

/// The bounded list of requests served.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<VecDeque<RecordedRequest>>,
}

impl Journal {
    /// Adds one request, dropping the oldest when full.
    pub fn record(&self, request: RecordedRequest) {
        let mut entries = crate::state::lock(&self.entries);
        if entries.len() == LIMIT {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    /// The requests recorded, oldest first.
    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        crate::state::lock(&self.entries).iter().cloned().collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        crate::state::lock(&self.entries).clear();
    }
}
