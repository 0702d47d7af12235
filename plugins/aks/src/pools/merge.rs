//! Scale requests for one pool that arrive while a scale of it is running are merged, not
//! sent: AKS gives a subscription 20 pool writes and one more a minute, and a second PUT on a
//! pool that is still scaling is refused anyway (`OperationNotAllowed`). The first request
//! leads: when its write ends, if others asked for a different count meanwhile, it sends one
//! more write with the newest count asked for (one write however many joined). Every
//! request gets the same final outcome.
//!
//! `invoke` runs concurrently on host threads (docs/plugin-abi.md), so this is plain shared
//! state behind a mutex; a joined request waits on a condition variable.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use deckhand_plugin_sdk::{ErrorCode, PluginError};

use super::outcome::PoolWrite;

/// How a scale request ended, for its reply.
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    pub outcome: Result<PoolWrite, PluginError>,
    /// This request joined a scale already running instead of writing.
    pub joined: bool,
    /// The count the last write asked Azure for (the newest request's).
    pub last_asked: i64,
    /// Other requests folded into the same writes.
    pub others: usize,
}

#[derive(Default)]
struct Slot {
    /// The newest count asked for by a request that joined since the last write started.
    next: Option<i64>,
    others: usize,
    /// Set when the leader is done.
    result: Option<(Result<PoolWrite, PluginError>, i64)>,
}

/// A running scale's slot and the condition its joiners wait on.
type Shared = Arc<(Mutex<Slot>, Condvar)>;

#[derive(Default)]
pub(crate) struct ScaleMerger {
    running: Mutex<HashMap<String, Shared>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScaleMerger {
    /// Scales pool `key` to `count` through `write(count, round)` (round 0 first), or joins
    /// the scale of `key` already running.
    pub fn run(
        &self,
        key: &str,
        count: i64,
        mut write: impl FnMut(i64, usize) -> Result<PoolWrite, PluginError>,
    ) -> Merged {
        let key = key.to_ascii_lowercase();
        let slot = {
            let mut running = lock(&self.running);
            if let Some(slot) = running.get(&key) {
                let slot = slot.clone();
                {
                    let mut state = lock(&slot.0);
                    state.next = Some(count);
                    state.others += 1;
                }
                drop(running);
                return Self::wait(&slot);
            }
            let slot = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
            running.insert(key.clone(), slot.clone());
            slot
        };
        let mut asked = count;
        let mut round = 0;
        loop {
            let outcome = write(asked, round);
            let mut running = lock(&self.running);
            let mut state = lock(&slot.0);
            let next = state.next.take().filter(|n| *n != asked);
            match next {
                Some(n) if outcome.is_ok() => {
                    asked = n;
                    round += 1;
                }
                _ => {
                    let others = state.others;
                    state.result = Some((outcome.clone(), asked));
                    running.remove(&key);
                    slot.1.notify_all();
                    return Merged {
                        outcome,
                        joined: false,
                        last_asked: asked,
                        others,
                    };
                }
            }
        }
    }

    fn wait(slot: &(Mutex<Slot>, Condvar)) -> Merged {
        let state = slot
            .1
            .wait_while(lock(&slot.0), |s| s.result.is_none())
            .unwrap_or_else(|e| e.into_inner());
        let (outcome, last_asked) = state.result.clone().unwrap_or_else(|| {
            (
                Err(PluginError::new(
                    ErrorCode::Upstream,
                    "the scale this request joined ended without an answer",
                )),
                0,
            )
        });
        Merged {
            outcome,
            joined: true,
            last_asked,
            others: state.others,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn requests_that_arrive_while_a_scale_runs_share_one_more_write() {
        let merger = Arc::new(ScaleMerger::default());
        let writes = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let leader = {
            let (merger, writes) = (merger.clone(), writes.clone());
            std::thread::spawn(move || {
                merger.run("rg/c/gpu", 2, |count, round| {
                    writes.lock().unwrap().push(count);
                    if round == 0 {
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    }
                    Ok(PoolWrite {
                        pool: None,
                        unread: None,
                        writes_left: Some(10),
                    })
                })
            })
        };
        started_rx.recv().unwrap();
        let joined = Arc::new(AtomicUsize::new(0));
        let followers: Vec<_> = [3, 4]
            .into_iter()
            .map(|count| {
                let (merger, joined) = (merger.clone(), joined.clone());
                std::thread::spawn(move || {
                    // Joining is decided under the lock, before the wait.
                    let merged =
                        merger.run("RG/c/gpu", count, |_, _| panic!("a joined request writes"));
                    joined.fetch_add(1, Ordering::SeqCst);
                    merged
                })
            })
            .collect();
        // Both followers have registered once the slot counts them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while lock(&merger.running)
            .values()
            .next()
            .is_some_and(|s| lock(&s.0).others < 2)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "followers never joined"
            );
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        let led = leader.join().unwrap();
        let last = led.last_asked;
        assert!(!led.joined && led.others == 2, "{led:?}");
        assert!([3, 4].contains(&last), "{last}");
        assert_eq!(*writes.lock().unwrap(), vec![2, last]);
        for follower in followers {
            let merged = follower.join().unwrap();
            assert!(merged.joined && merged.last_asked == last, "{merged:?}");
        }
        assert_eq!(joined.load(Ordering::SeqCst), 2);
        assert!(lock(&merger.running).is_empty());
    }
}
