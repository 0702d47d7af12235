//! Samples of each AKS pool's node count, VM size, priority and scale-down mode, read from ARM
//! on an interval (and on demand, before `/cost` answers). Azure has no node-count history we
//! can query, so these samples are the history.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deckhand_plugin_abi::proto::ArmRequest;
use serde_json::Value;

use super::store::{CostStore, Sample};
use crate::cloud::arm::{ArmClient, CallContext};
use crate::cloud::config::ClusterConfig;
use crate::state::Db;
use crate::state::audit::AuditRecord;

/// The AKS api-version Deckhand speaks (as `plugins/shared`'s `AKS_API`).
const AKS_API: &str = "2026-08-01";

/// Azure's GPU sizes are the N series (NC, ND, NV).
pub fn is_gpu_size(vm_size: &str) -> bool {
    vm_size
        .strip_prefix("Standard_")
        .is_some_and(|rest| rest.starts_with(['N', 'n']))
}

pub struct Sampler {
    arm: Option<Arc<ArmClient>>,
    clusters: Vec<ClusterConfig>,
    store: CostStore,
}

impl Sampler {
    pub fn new(
        arm: Option<Arc<ArmClient>>,
        clusters: Vec<ClusterConfig>,
        store: CostStore,
    ) -> Self {
        Sampler {
            arm,
            clusters,
            store,
        }
    }

    /// The AKS name of the configured cluster `cluster` (what `/aks --cluster` takes).
    pub fn aks_name(&self, cluster: &str) -> Option<String> {
        self.clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.aks.as_ref())
            .map(|aks| aks.cluster.clone())
    }

    /// Names of the AKS clusters sampled.
    pub fn clusters(&self) -> Vec<String> {
        self.clusters
            .iter()
            .filter(|c| c.aks.is_some())
            .map(|c| c.name.clone())
            .collect()
    }

    /// Samples every AKS cluster now; returns what could not be read.
    pub async fn sample_all(&self, now: DateTime<Utc>) -> Vec<String> {
        let Some(arm) = &self.arm else {
            return vec!["no [azure] section: pool sizes cannot be sampled".into()];
        };
        let mut problems = Vec::new();
        for cluster in &self.clusters {
            if cluster.aks.is_none() {
                continue;
            }
            match self.sample_cluster(arm, cluster, now).await {
                Ok(samples) => {
                    for s in samples {
                        if let Err(e) = self.store.add_sample(&s) {
                            problems.push(format!("{}: cannot store a sample: {e}", cluster.name));
                        }
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", cluster.name)),
            }
        }
        problems
    }

    async fn sample_cluster(
        &self,
        arm: &Arc<ArmClient>,
        cluster: &ClusterConfig,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sample>, String> {
        let Some(aks) = &cluster.aks else {
            return Ok(Vec::new());
        };
        let base = format!(
            "/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            aks.resource_group, aks.cluster
        );
        let managed = get(arm, &base).await?;
        let region = managed
            .get("location")
            .and_then(Value::as_str)
            .map(|l| l.to_ascii_lowercase().replace(' ', ""))
            .unwrap_or_default();
        let pools = get(arm, &format!("{base}/agentPools")).await?;
        let mut out = Vec::new();
        for pool in pools
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = &pool["properties"];
            let Some(name) = pool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let vm_size = p["vmSize"].as_str().unwrap_or_default().to_owned();
            let stopped = p["powerState"]["code"].as_str() == Some("Stopped");
            out.push(Sample {
                at: now,
                cluster: cluster.name.clone(),
                pool: name.to_owned(),
                gpu: is_gpu_size(&vm_size),
                vm_size,
                region: region.clone(),
                spot: p["scaleSetPriority"].as_str() == Some("Spot"),
                count: if stopped {
                    0
                } else {
                    p["count"].as_i64().unwrap_or(0)
                },
                deallocate: p["scaleDownMode"].as_str() == Some("Deallocate"),
                origin: "sampler".into(),
            });
        }
        Ok(out)
    }

    /// Samples every `every`, and within [`AUDIT_POLL`] of every pool size change Deckhand
    /// made (a successful scale, start or stop in the audit log), until the task is dropped.
    pub async fn run(self: Arc<Self>, every: Duration, db: Db) {
        let mut seen = db
            .audit_recent(1)
            .ok()
            .and_then(|rows| rows.first().map(|r| r.id))
            .unwrap_or(0);
        let mut due = Instant::now();
        let mut tick = tokio::time::interval(AUDIT_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let scaled = match db.audit_recent(AUDIT_BATCH) {
                Ok(rows) => {
                    let (scaled, newest) = scales_since(&rows, seen);
                    seen = newest;
                    scaled
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the audit log for scale changes");
                    false
                }
            };
            if !scaled && Instant::now() < due {
                continue;
            }
            due = Instant::now() + every;
            for problem in self.sample_all(Utc::now()).await {
                tracing::warn!(%problem, "pool sample failed");
            }
        }
    }
}

/// How often the audit log is looked at for scale changes.
const AUDIT_POLL: Duration = Duration::from_secs(10);
/// Audit rows read per look (more commands than this in [`AUDIT_POLL`] still trigger a sample).
const AUDIT_BATCH: usize = 50;

/// Whether `rows` (newest first) hold a finished pool size change newer than `seen`, and the
/// newest id.
pub fn scales_since(rows: &[AuditRecord], seen: i64) -> (bool, i64) {
    let scaled = rows.iter().filter(|r| r.id > seen).any(|r| {
        r.outcome == "ok"
            && r.command
                .split_whitespace()
                .any(|w| w.starts_with("scale") || w == "start" || w == "stop")
    });
    let newest = rows.iter().map(|r| r.id).max().unwrap_or(seen).max(seen);
    (scaled, newest)
}

/// One ARM GET. The ARM client's future is not `Send` for every lifetime (its call context
/// holds `&dyn Fn`s), so it runs on a blocking thread, as the plugin host's calls do.
async fn get(arm: &Arc<ArmClient>, path: &str) -> Result<Value, String> {
    let request = ArmRequest {
        method: "GET".into(),
        path: path.to_owned(),
        api_version: AKS_API.into(),
        body: None,
        wait: false,
        label: None,
    };
    let arm = arm.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let never = || false;
        let ignore = |_: String| {};
        let cx = CallContext {
            deadline: Instant::now() + Duration::from_secs(60),
            progress: &ignore,
            cancelled: &never,
        };
        runtime
            .block_on(arm.call(&request, &cx))
            .map(|r| r.body)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the ARM call did not finish: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, command: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            id,
            invocation_id: format!("i{id}"),
            surface: "terminal".into(),
            channel: "terminal".into(),
            user_id: "u".into(),
            display_name: "U".into(),
            command: command.into(),
            options: "{}".into(),
            plugin: Some("aks".into()),
            started_at: String::new(),
            ended_at: None,
            outcome: outcome.into(),
            error: None,
        }
    }

    #[test]
    fn a_finished_scale_newer_than_the_last_look_triggers_a_sample() {
        let rows = [
            row(7, "aks pools", "ok"),
            row(6, "aks scale", "ok"),
            row(5, "aks scale", "denied"),
        ];
        assert_eq!(scales_since(&rows, 5), (true, 7));
        assert_eq!(scales_since(&rows, 6), (false, 7));
        assert_eq!(scales_since(&[row(9, "aks scale", "error")], 7), (false, 9));
        assert_eq!(
            scales_since(&[row(3, "runner scale-down", "ok")], 2),
            (true, 3)
        );
        assert_eq!(scales_since(&[], 4), (false, 4));
        assert!(is_gpu_size("Standard_NC6s_v3") && !is_gpu_size("Standard_D8s_v3"));
    }
}
