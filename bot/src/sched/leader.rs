//! Who runs schedules when several replicas are up: only the holder of a Kubernetes Lease
//! (`coordination.k8s.io/v1`). The terminal and single-replica deployments use
//! [`AlwaysLeader`].
//!
//! The Lease protocol is client-go's: the holder renews `renewTime` well inside
//! `leaseDurationSeconds`; another replica takes the lease over only once it has expired;
//! every write carries the `resourceVersion` read, so of two replicas racing for it exactly one
//! wins (the other gets 409 Conflict and stays a follower).

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use futures_util::future::BoxFuture;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease {namespace}/{name}: {source}")]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("lease {namespace}/{name}: {message}")]
    Invalid {
        namespace: String,
        name: String,
        message: String,
    },
}

/// Decides whether this replica may run schedules right now.
pub trait Leadership: Send + Sync {
    /// Acquires or renews leadership at `now`; `Ok(false)` while another replica leads.
    fn check(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, LeaderError>>;

    /// How often [`Leadership::check`] must be called, leading or not. `None`: never again
    /// (leadership cannot change).
    fn recheck_every(&self) -> Option<Duration>;

    /// Whether leadership is still certain now: the last renewal is younger than the renew
    /// deadline (shorter than the lease), so a leader that cannot renew stops starting work
    /// before its lease expires and another replica may take over.
    fn holds(&self) -> bool {
        true
    }

    /// Gives leadership up (on shutdown), so another replica need not wait for expiry.
    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A single replica: always the leader.
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysLeader;

impl Leadership for AlwaysLeader {
    fn check(&self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, LeaderError>> {
        Box::pin(async { Ok(true) })
    }

    fn recheck_every(&self) -> Option<Duration> {
        None
    }
}

/// When leadership was last renewed, against a deadline shorter than the lease.
#[derive(Debug)]
pub struct RenewDeadline {
    deadline: Duration,
    renewed: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RenewDeadline {
    /// Two thirds of the lease, as client-go's 10 s renew deadline in a 15 s lease.
    pub fn for_lease(lease: Duration) -> RenewDeadline {
        RenewDeadline {
            deadline: (lease * 2 / 3).max(Duration::from_secs(1)),
            renewed: std::sync::Mutex::new(None),
        }
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    fn set(&self, value: Option<tokio::time::Instant>) {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }

    pub fn renewed(&self) {
        self.set(Some(tokio::time::Instant::now()));
    }

    pub fn lost(&self) {
        self.set(None);
    }

    pub fn holds(&self) -> bool {
        self.renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < self.deadline)
    }
}

/// Leadership held through a Lease object.
pub struct KubeLease {
    renew: RenewDeadline,
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

fn micro(t: DateTime<Utc>) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn chrono_of(t: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0.as_microsecond())
}

impl KubeLease {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> KubeLease {
        KubeLease {
            renew: RenewDeadline::for_lease(duration),
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn kube_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Kube {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn spec(&self, now: DateTime<Utc>, acquired: DateTime<Utc>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: Some(micro(acquired)),
            renew_time: Some(micro(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    async fn try_acquire(&self, now: DateTime<Utc>) -> Result<bool, LeaderError> {
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.kube_error(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "created the lease: leading");
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(self.kube_error(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == self.identity {
            let acquired = spec
                .acquire_time
                .as_ref()
                .and_then(chrono_of)
                .unwrap_or(now);
            self.spec(now, acquired, transitions)
        } else {
            let renewed = spec.renew_time.as_ref().and_then(chrono_of);
            let valid_for =
                chrono::Duration::try_seconds(i64::from(spec.lease_duration_seconds.unwrap_or(0)))
                    .unwrap_or_default();
            let expired = match renewed {
                Some(renewed) => renewed
                    .checked_add_signed(valid_for)
                    .is_none_or(|t| t <= now),
                None => true,
            };
            if !holder.is_empty() && !expired {
                return Ok(false);
            }
            tracing::info!(lease = %self.name, identity = %self.identity, previous = %holder, "taking over an expired lease");
            self.spec(now, now, transitions + 1)
        };
        lease.spec = Some(new_spec);
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(self.kube_error(e)),
        }
    }
}

impl Leadership for KubeLease {
    fn check(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, LeaderError>> {
        Box::pin(async move {
            // A renewal that cannot finish inside the deadline counts as lost.
            let result = tokio::time::timeout(self.renew.deadline(), self.try_acquire(now))
                .await
                .unwrap_or_else(|_| {
                    Err(LeaderError::Invalid {
                        namespace: self.namespace.clone(),
                        name: self.name.clone(),
                        message: format!(
                            "not renewed within the {:?} renew deadline",
                            self.renew.deadline()
                        ),
                    })
                });
            match result {
                Ok(true) => self.renew.renewed(),
                _ => self.renew.lost(),
            }
            result
        })
    }

    fn holds(&self) -> bool {
        self.renew.holds()
    }

    fn recheck_every(&self) -> Option<Duration> {
        // Renew three times per lease period, as client-go does by default (15 s / 10 s / 2 s).
        Some((self.duration / 3).max(Duration::from_secs(1)))
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
                return;
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return;
            }
            spec.holder_identity = None;
            spec.renew_time = None;
            lease.spec = Some(spec);
            if let Err(e) = self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                tracing::warn!(error = %e, lease = %self.name, "cannot release the lease");
            }
        })
    }
}

/// The leadership a config asks for: a Lease when `[schedules.leader]` is set.
pub async fn from_config(
    config: Option<&super::config::LeaderConfig>,
) -> Result<std::sync::Arc<dyn Leadership>, LeaderError> {
    let Some(config) = config else {
        return Ok(std::sync::Arc::new(AlwaysLeader));
    };
    let client = kube::Client::try_default()
        .await
        .map_err(|source| LeaderError::Kube {
            namespace: config.namespace.clone(),
            name: config.lease.clone(),
            source,
        })?;
    let identity = config
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .ok_or_else(|| LeaderError::Invalid {
            namespace: config.namespace.clone(),
            name: config.lease.clone(),
            message: "no identity: set [schedules.leader] identity or the HOSTNAME variable".into(),
        })?;
    Ok(std::sync::Arc::new(KubeLease::new(
        client,
        &config.namespace,
        &config.lease,
        &identity,
        config.duration,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leadership_lapses_at_the_renew_deadline_before_the_lease_expires() {
        let lease = Duration::from_secs(15);
        let renew = RenewDeadline::for_lease(lease);
        assert_eq!(renew.deadline(), Duration::from_secs(10));
        assert!(!renew.holds(), "nothing renewed yet");
        renew.renewed();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(renew.holds());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !renew.holds(),
            "stops at 10 s, 5 s before the lease expires"
        );
        renew.renewed();
        assert!(renew.holds());
        renew.lost();
        assert!(!renew.holds(), "a failed renewal stops it at once");
    }
}
