//! Starting the components that sit above the router (schedules, alerts, Discord) from the
//! app's config: the app is the only place that reads the root config and hands each
//! component its own section, so no component imports the app or the root config.

use std::sync::Arc;

use crate::alerts::{self, AlertsError, AlertsHandle, StartOptions};
use crate::chat::discord::{self, DiscordError, DiscordHandle, DiscordTransport};
use crate::chat::{Outbox, TerminalOutbox};
use crate::cost::{self, CostError, CostHandle, CostParts, CostPosting};
use crate::sched::clock::Clock;
use crate::sched::leader::{self, Leadership};
use crate::sched::{SchedError, Scheduler, SchedulerHandle, SchedulerParts, SystemClock};

use super::App;

impl App {
    /// What the schedule engine is built from.
    pub fn scheduler_parts(&self) -> SchedulerParts {
        SchedulerParts {
            router: self.router.clone(),
            db: self.db.clone(),
            config: self.config.schedules.clone(),
            base_dir: self.config.base_dir.clone(),
        }
    }

    /// Loads the config-declared schedules, registers `/schedule` and starts the engine.
    pub fn start_scheduler(
        &self,
        outbox: Arc<dyn Outbox>,
        leadership: Arc<dyn Leadership>,
        clock: Arc<dyn Clock>,
    ) -> Result<SchedulerHandle, SchedError> {
        Scheduler::start(self.scheduler_parts(), outbox, leadership, clock)
    }

    /// `deckhand shell`: schedules on the wall clock, messages printed to the terminal,
    /// leading unless `[schedules.leader]` asks for a Lease. Config schedules not loaded are
    /// printed as warnings.
    pub async fn start_scheduler_for_terminal(&self) -> Result<SchedulerHandle, SchedError> {
        let leadership = leader::from_config(self.config.schedules.leader.as_ref()).await?;
        let handle =
            self.start_scheduler(Arc::new(TerminalOutbox), leadership, Arc::new(SystemClock))?;
        for error in &handle.load_errors {
            eprintln!("warning: {error}");
        }
        Ok(handle)
    }

    /// Problems with the config-declared schedules, for `deckhand check`.
    pub fn check_schedules(&self) -> Vec<String> {
        crate::sched::check(&self.router, &self.config.schedules, &self.config.base_dir)
    }

    /// Starts the alert pipeline `[alerts]` configures (if enabled) and registers `/alerts`.
    pub async fn start_alerts(
        &self,
        outbox: Arc<dyn Outbox>,
    ) -> Result<Option<AlertsHandle>, AlertsError> {
        let Some(config) = self.config.alerts.clone().filter(|c| c.enabled) else {
            return Ok(None);
        };
        let handle = alerts::start(
            config,
            StartOptions {
                base_dir: self.config.base_dir.clone(),
                notifications: Some(self.host.services().subscribe_notifications()),
                outbox,
                db: Some(self.db.clone()),
                clusters: Some(self.host.services().clone()),
            },
        )
        .await?;
        self.router.add_builtins(handle.commands());
        Ok(Some(handle))
    }

    /// `deckhand shell`: alerts print to the terminal; says where the receiver listens.
    pub async fn start_alerts_for_terminal(&self) -> Result<Option<AlertsHandle>, AlertsError> {
        let handle = self.start_alerts(Arc::new(TerminalOutbox)).await?;
        if let Some(handle) = &handle {
            if let Some(addr) = handle.local_addr {
                eprintln!(
                    "alerts: receiving on http://{addr}/alerts/alertmanager and http://{addr}/alerts/azure-monitor"
                );
            }
            for problem in &handle.problems {
                eprintln!("warning: {problem}");
            }
        }
        Ok(handle)
    }

    /// Starts the follow-up runner: commands plugins ask to run after their own post their
    /// replies to `outbox` (see [`crate::followup`]).
    pub fn start_follow_ups(&self, outbox: Arc<dyn Outbox>) -> Option<tokio::task::JoinHandle<()>> {
        crate::followup::start(self.router.clone(), outbox)
    }

    /// Starts the pool-size sampler and registers `/cost` when `[cost]` is present and enabled.
    pub fn start_cost(
        &self,
        outbox: Arc<dyn Outbox>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<CostHandle>, CostError> {
        let Some(config) = self.config.cost.clone().filter(|c| c.enabled) else {
            return Ok(None);
        };
        let parts = CostParts {
            config,
            db: self.db.clone(),
            arm: self.host.services().cloud().arm.clone(),
            clusters: self.config.kubernetes.clusters.clone(),
        };
        let kube = Some(self.host.services().clone());
        cost::start(
            parts,
            &self.router,
            CostPosting {
                outbox,
                clock,
                kube,
            },
        )
        .map(Some)
    }

    /// Connects the router to Discord as `[discord]` says. The handle's
    /// [`DiscordHandle::outbox`] is where alerts and schedules post their messages.
    pub async fn start_discord(&self) -> Result<DiscordHandle, DiscordError> {
        let config = self
            .config
            .discord
            .clone()
            .ok_or(DiscordError::NotConfigured)?;
        let transport = DiscordTransport::from_config(&config);
        if let Some(base) = &transport.base_url {
            tracing::warn!(%base, "Discord API redirected by api_base_url (testing only; ratelimiter off)");
        }
        discord::start(self.router.clone(), self.db.clone(), config, transport).await
    }
}
