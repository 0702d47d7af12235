//! `/runner guard [--pool gpu]`: may the GPU pool be scaled to zero now? Answers `idle: …` when
//! no job is in flight, and fails with `deferred: N job(s) in progress on pool gpu, queue …,
//! ETA …` (a precondition) when one is, so a schedule can hold its scale-down (see the report's
//! design for the scheduler's side).
//!
//! In flight means: messages delivered and not yet acknowledged (jobs running), or jobs waiting
//! while runners are up to take them. The management API lags, so a sample it cannot confirm —
//! its ready count differs from the broker's exact one — never reads as idle.

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};

use deckhand_plugin_shared::placement::AGENTPOOL_LABEL;

use crate::deploy::{Settings, Target};
use crate::jobs::{self, QueueStatus, human_secs};
use crate::pods;
use crate::rabbit::Endpoint;

/// Why a queue keeps the pool awake, if it does.
pub fn busy_reason(q: &QueueStatus, runners_up: bool) -> Option<String> {
    let eta = q
        .eta_secs()
        .map(|s| format!(", ETA ~{}", human_secs(s)))
        .unwrap_or_default();
    if q.in_progress > 0 {
        return Some(format!(
            "queue {}: {} in progress, {} waiting{eta}",
            q.name, q.in_progress, q.waiting
        ));
    }
    if q.exact && q.sampled_ready != q.waiting {
        return Some(format!(
            "queue {}: the management API shows {} waiting, the broker {} (jobs are moving; not yet confirmed idle)",
            q.name, q.sampled_ready, q.waiting
        ));
    }
    if q.waiting > 0 && (q.consumers > 0 || runners_up) {
        return Some(format!(
            "queue {}: {} waiting for runners that are up{eta}",
            q.name, q.waiting
        ));
    }
    None
}

pub fn run(
    ctx: &Ctx,
    endpoint: &Endpoint,
    settings: &Settings,
    target: &Target,
    pool: &str,
) -> Result<Reply, PluginError> {
    let all = pods::runner_pods(ctx, settings, target)?;
    let pool_of = |p: &serde_json::Value| {
        p["spec"]["nodeSelector"][AGENTPOOL_LABEL]
            .as_str()
            .map(str::to_owned)
    };
    let pods: Vec<&serde_json::Value> = all
        .iter()
        .filter(|p| pool_of(p).as_deref() == Some(pool))
        .collect();
    if pods.is_empty()
        && let Some(elsewhere) = all.iter().find_map(pool_of)
    {
        return Ok(Reply::text(format!(
            "idle: the runners run on pool {elsewhere}, not on pool {pool} of {}.",
            target.cluster
        )));
    }
    let gpus: u64 = pods.iter().map(|p| pods::allocated_gpus(p)).sum();
    let holding = pods.iter().filter(|p| pods::allocated_gpus(p) > 0).count();
    let (queues, note) = jobs::collect(ctx, endpoint, None).map_err(|e| {
        let message = format!(
            "deferred: cannot tell whether jobs are in progress on pool {pool} ({}); not scaling down blind",
            e.message
        );
        PluginError {
            code: ErrorCode::Precondition,
            message,
            ..e
        }
    })?;
    let reasons: Vec<String> = queues
        .iter()
        .filter_map(|q| busy_reason(q, holding > 0))
        .collect();
    let in_progress: u64 = queues.iter().map(|q| q.in_progress).sum();
    let uncertain = note.map(|n| format!(" ({n})")).unwrap_or_default();
    if reasons.is_empty() {
        return Ok(Reply::text(format!(
            "idle: no job in flight on pool {pool} of {}; {holding} runner pod(s) hold {gpus} GPU(s) with nothing to do{uncertain}.",
            target.cluster
        )));
    }
    Err(PluginError::new(
        ErrorCode::Precondition,
        format!(
            "deferred: {in_progress} job(s) in progress on pool {pool} of {} ({holding} runner pod(s) holding {gpus} GPU(s)); {}{uncertain}",
            target.cluster,
            reasons.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_waiting_for_runners_and_stale_samples_keep_the_pool_awake() {
        let mut q = QueueStatus::sample(3, 2, 1, 0.5);
        assert_eq!(
            busy_reason(&q, true).as_deref(),
            Some("queue rmq_p_e: 2 in progress, 3 waiting, ETA ~10 s")
        );
        q = QueueStatus::sample(4, 0, 0, 0.0);
        assert!(busy_reason(&q, true).is_some());
        // Nobody to run them: waiting jobs alone do not hold GPU nodes.
        assert_eq!(busy_reason(&q, false), None);
        // The management API still shows 9 ready while the broker has 4: not confirmed.
        q.sampled_ready = 9;
        assert!(busy_reason(&q, false).is_some_and(|r| r.contains("not yet confirmed idle")));
        assert_eq!(busy_reason(&QueueStatus::sample(0, 0, 2, 0.0), true), None);
    }
}
