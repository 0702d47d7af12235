//! The morning post: after a night the schedules scaled GPU pools to zero, `[cost.morning]`
//! posts "last night saved N GPU node-hours (≈ €X)" to its channel at its local time.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::Deserialize;

use super::Cost;
use super::prices::money;
use crate::chat::{OutboundMessage, Outbox};
use crate::sched::clock::Clock;
use crate::sched::summary::node_hours_avoided;

/// `[cost.morning]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MorningConfig {
    pub channel: String,
    /// Local time in `[cost] tz`, `HH:MM`.
    #[serde(default = "default_at")]
    pub at: String,
}

fn default_at() -> String {
    "08:00".into()
}

impl MorningConfig {
    pub fn time(&self) -> Result<NaiveTime, String> {
        NaiveTime::parse_from_str(self.at.trim(), "%H:%M").map_err(|_| {
            format!(
                "[cost.morning] at {:?} is not a time: write HH:MM, e.g. \"08:00\"",
                self.at
            )
        })
    }
}

impl Cost {
    /// What last night saved, posted at `now`: GPU pools' node-hours at zero from 12:00 the day
    /// before to `now`, priced. `None` when no GPU pool was scaled down.
    pub async fn morning_text(&self, now: DateTime<Utc>) -> Option<String> {
        let (today, _) = self.windows(now);
        let from = today - Duration::hours(12);
        let changes = self.scheduled_changes(now).ok()?;
        let samples = self.store.samples(from, now).ok()?;
        let mut parts = Vec::new();
        let (mut hours, mut money_total, mut currency) = (0.0, Some(0.0), None::<String>);
        for saved in node_hours_avoided(&changes, from, now) {
            let Some(sample) = samples.iter().rev().find(|s| s.pool == saved.pool && s.gpu) else {
                continue;
            };
            if saved.node_hours <= 0.0 {
                continue;
            }
            let price = self
                .prices
                .price(&sample.vm_size, &sample.region, now)
                .await;
            let cost = price
                .for_priority(sample.spot)
                .value()
                .map(|p| p * saved.node_hours);
            let same = currency.get_or_insert(price.currency.clone()) == &price.currency;
            money_total = match (money_total, cost) {
                (Some(t), Some(c)) if same => Some(t + c),
                _ => None,
            };
            hours += saved.node_hours;
            parts.push(format!(
                "{} ({}) {:.1} node-hours ≈ {}",
                saved.pool,
                sample.cluster,
                saved.node_hours,
                money(cost, &price.currency)
            ));
        }
        if parts.is_empty() {
            return None;
        }
        let currency = currency.unwrap_or_else(|| self.prices.currency().to_owned());
        let mut text = format!(
            "🌅 Last night saved {hours:.1} GPU node-hours (≈ {})",
            money(money_total, &currency)
        );
        let _ = write!(text, ": {}.", parts.join("; "));
        Some(text)
    }
}

/// Posts the morning text every day at `config.at` (local) until dropped.
pub async fn run(
    cost: Arc<Cost>,
    config: MorningConfig,
    outbox: Arc<dyn Outbox>,
    clock: Arc<dyn Clock>,
) {
    let Ok(at) = config.time() else { return };
    loop {
        let now = clock.now();
        let (today, _) = cost.windows(now);
        let local_day = today.with_timezone(&cost.tz).date_naive();
        let mut next = crate::sched::timing::resolve(&cost.tz, local_day.and_time(at));
        if next <= now {
            let Some(tomorrow) = local_day.succ_opt() else {
                return;
            };
            next = crate::sched::timing::resolve(&cost.tz, tomorrow.and_time(at));
        }
        clock.sleep_until(next).await;
        if let Some(text) = cost.morning_text(clock.now()).await {
            let message = OutboundMessage {
                channel: config.channel.clone(),
                text,
                actions: Vec::new(),
                files: Vec::new(),
                key: None,
            };
            if let Err(e) = outbox.post(message).await {
                tracing::warn!(error = %e, "cannot post the morning cost message");
            }
        }
    }
}
