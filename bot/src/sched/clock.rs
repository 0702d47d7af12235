//! Time as the scheduler sees it: the real clock in the bot, a hand-driven one in tests, so
//! tests move time to the instants they care about instead of waiting.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use futures_util::future::BoxFuture;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// Wall-clock time. Sleeps are cut into slices of at most a minute and re-checked, so a
/// clock step (NTP, a suspended VM) delays a firing by at most that much.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

const MAX_SLICE: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = deadline - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLICE)).await;
            }
        })
    }
}

/// A clock that moves only when told to; sleepers wake as soon as it passes their deadline.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
            moved: Notify::new(),
        }
    }

    /// Moves the clock to `to` (it may not go backwards: that is a no-op).
    pub fn set(&self, to: DateTime<Utc>) {
        {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            if to > *now {
                *now = to;
            }
        }
        self.moved.notify_waiters();
    }

    pub fn advance(&self, by: Duration) {
        let to = self.now() + chrono::Duration::from_std(by).expect("duration in range");
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                // Register before looking, so a `set` in between is not missed.
                moved.as_mut().enable();
                if self.now() >= deadline {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_clock_passes_their_deadline() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(start + chrono::Duration::minutes(10))
                    .await
            })
        };
        clock.advance(Duration::from_secs(300));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(300));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke")
            .unwrap();
    }
}
