//! Expiring tokens early, for tests of a client's refresh-on-401 path.

use crate::Sandbox;
use crate::state::lock;

impl Sandbox {
    /// Makes every access token issued so far expired, as if its lifetime had run out while the
    /// client still trusted it: the next ARM call with one gets 401 `ExpiredAuthenticationToken`.
    pub fn expire_issued_tokens(&self) {
        let now = chrono::Utc::now() - chrono::Duration::seconds(1);
        for issued in lock(&self.shared.tokens).values_mut() {
            issued.expires_at = now;
        }
    }
}
