//! GPU cost in chat: what each pool costs today and this week, and what schedules saved.
//!
//! * [`prices`]: per VM size and region, on-demand and Spot. `[cost.prices]` overrides win
//!   (negotiated rates, offline use); otherwise the Azure Retail Prices API, cached in state
//!   with its fetch date. A price nobody knows is shown as unknown, never as 0.
//! * [`sampler`]: Azure keeps no node-count history we can read, so Deckhand samples each AKS
//!   pool's node count, VM size, priority and scale-down mode every `[cost] sample_every`, after
//!   every scale Deckhand performs (seen in the audit log) and right before `/cost` answers,
//!   into state ([`store`]).
//! * [`usage`]: node-hours from the samples (a count holds until the next sample);
//!   cost = node-hours × the pool's price (Spot pools at the Spot price).
//! * Hours avoided by schedules come from the commands schedules ran
//!   ([`crate::sched::summary::node_hours_avoided`]), priced the same way.
//! * [`commands`]: `/cost [--cluster C] [--week]`.

pub mod chart;
pub mod commands;
pub mod config;
pub mod idle;
pub mod morning;
pub mod prices;
pub mod report;
pub mod sampler;
pub mod store;
pub mod usage;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration as Days, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::cloud::arm::ArmClient;
use crate::cloud::config::ClusterConfig;
use crate::router::Router;
use crate::state::{Db, StateError};
pub use config::CostConfig;
use prices::PriceBook;
use sampler::Sampler;
use store::CostStore;

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("cost state: {0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Config(String),
    #[error("no cluster {name:?} is sampled; known: {known}")]
    UnknownCluster { name: String, known: String },
}

/// What `/cost` reads: config, prices, samples and the schedules' command history.
pub struct Cost {
    pub config: CostConfig,
    pub tz: Tz,
    pub store: CostStore,
    pub prices: PriceBook,
    pub sampler: Arc<Sampler>,
    schedules: crate::sched::store::Store,
}

/// What the component is built from.
pub struct CostParts {
    pub config: CostConfig,
    pub db: Db,
    pub arm: Option<Arc<ArmClient>>,
    pub clusters: Vec<ClusterConfig>,
}

/// Where the idle-GPU warning asks Kubernetes which GPUs are requested.
pub type KubeAccess = Arc<crate::host::services::Services>;

impl Cost {
    pub fn new(parts: CostParts) -> Result<Cost, CostError> {
        let problems = parts.config.problems();
        if !problems.is_empty() {
            return Err(CostError::Config(problems.join("; ")));
        }
        let tz = crate::sched::timing::parse_zone(&parts.config.tz)
            .map_err(|e| CostError::Config(e.to_string()))?;
        let store = CostStore::open(parts.db.clone())?;
        let schedules = crate::sched::store::Store::open(parts.db)?;
        Ok(Cost {
            prices: PriceBook::new(parts.config.clone(), store.clone()),
            sampler: Arc::new(Sampler::new(parts.arm, parts.clusters, store.clone())),
            tz,
            store,
            config: parts.config,
            schedules,
        })
    }

    /// Local midnight today and on this week's Monday, as instants.
    pub fn windows(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = now.with_timezone(&self.tz).date_naive();
        let monday = local - Days::days(i64::from(local.weekday().num_days_from_monday()));
        let at = |d: chrono::NaiveDate| {
            crate::sched::timing::resolve(&self.tz, d.and_time(NaiveTime::MIN))
        };
        (at(local), at(monday))
    }

    /// Pool size changes `(at, pool, count)` that schedules made (successful commands naming
    /// `--pool P --count N`).
    pub fn scheduled_changes(
        &self,
        until: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, String, i64)>, CostError> {
        Ok(self
            .schedules
            .command_results(until)?
            .into_iter()
            .filter(|r| r.outcome == "ok")
            .filter_map(|r| {
                crate::sched::summary::pool_change(&r.command).map(|(p, n)| (r.at, p, n))
            })
            .collect())
    }
}

/// Starts the sampler and registers `/cost`. Must run inside a tokio runtime.
pub struct CostHandle {
    pub cost: Arc<Cost>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for CostHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Where the component posts (the morning message) and the clock it posts by.
pub struct CostPosting {
    pub outbox: Arc<dyn crate::chat::Outbox>,
    pub clock: Arc<dyn crate::sched::clock::Clock>,
    /// For `[cost.idle]`; without it no idle warning is looked for.
    pub kube: Option<KubeAccess>,
}

pub fn start(
    parts: CostParts,
    router: &Router,
    posting: CostPosting,
) -> Result<CostHandle, CostError> {
    let every = parts.config.sample_every;
    let db = parts.db.clone();
    let morning = parts.config.morning.clone();
    let idle = parts.config.idle.clone();
    let cost = Arc::new(Cost::new(parts)?);
    router.add_builtins(Arc::new(commands::CostCommands::new(cost.clone())));
    let mut tasks = vec![tokio::spawn(cost.sampler.clone().run(every, db))];
    if let (Some(idle), Some(kube)) = (idle, posting.kube.clone()) {
        tasks.push(tokio::spawn(idle::run(
            cost.clone(),
            idle,
            kube,
            posting.outbox.clone(),
            posting.clock.clone(),
            every,
        )));
    }
    if let Some(morning) = morning {
        tasks.push(tokio::spawn(morning::run(
            cost.clone(),
            morning,
            posting.outbox,
            posting.clock,
        )));
    }
    Ok(CostHandle { cost, tasks })
}

#[cfg(test)]
mod tests;
