//! The `/cost` answer: per pool, nodes now, node-hours and cost today and this week, Spot vs
//! on-demand, node-hours schedules avoided and the money that saved.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::prices::{Price, money};
use super::usage::{PoolUsage, usage};
use super::{Cost, CostError};
use crate::sched::summary::node_hours_avoided;

/// One pool's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolCost {
    pub today: PoolUsage,
    pub week: PoolUsage,
    pub price: Price,
    /// Node-hours schedules kept the pool at zero, today and this week.
    pub avoided_today: f64,
    pub avoided_week: f64,
}

impl PoolCost {
    fn per_hour(&self) -> Option<f64> {
        self.price.for_priority(self.week.spot).value()
    }

    pub fn cost(&self, node_hours: f64) -> Option<f64> {
        self.per_hour().map(|p| p * node_hours)
    }
}

/// Everything `/cost` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    pub pools: Vec<PoolCost>,
    pub today_from: DateTime<Utc>,
    pub week_from: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub currency: String,
}

impl Cost {
    /// The figures up to `now`, for one cluster or all.
    pub async fn figures(
        &self,
        now: DateTime<Utc>,
        cluster: Option<&str>,
    ) -> Result<CostReport, CostError> {
        let (today_from, week_from) = self.windows(now);
        let samples = self.store.samples(week_from, now)?;
        if let Some(name) = cluster
            && !samples.iter().any(|s| s.cluster == name)
        {
            let mut known: Vec<String> = self.sampler.clusters();
            known.extend(samples.iter().map(|s| s.cluster.clone()));
            known.sort();
            known.dedup();
            return Err(CostError::UnknownCluster {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none yet".into()
                } else {
                    known.join(", ")
                },
            });
        }
        let week: Vec<PoolUsage> = usage(&samples, week_from, now)
            .into_iter()
            .filter(|u| cluster.is_none_or(|c| u.cluster == c))
            .collect();
        let today = usage(&samples, today_from, now);
        let changes = self.scheduled_changes(now)?;
        let avoided_today = node_hours_avoided(&changes, today_from, now);
        let avoided_week = node_hours_avoided(&changes, week_from, now);
        let mut pools = Vec::new();
        for w in week {
            let price = self.prices.price(&w.vm_size, &w.region, now).await;
            let t = today
                .iter()
                .find(|t| t.cluster == w.cluster && t.pool == w.pool)
                .cloned()
                .unwrap_or_else(|| PoolUsage {
                    node_hours: 0.0,
                    uncovered_hours: 0.0,
                    ..w.clone()
                });
            pools.push(PoolCost {
                avoided_today: avoided_of(&avoided_today, &w.pool),
                avoided_week: avoided_of(&avoided_week, &w.pool),
                today: t,
                week: w,
                price,
            });
        }
        Ok(CostReport {
            pools,
            today_from,
            week_from,
            now,
            currency: self.prices.currency().to_owned(),
        })
    }
}

fn avoided_of(list: &[crate::sched::summary::PoolSavings], pool: &str) -> f64 {
    list.iter()
        .find(|s| s.pool == pool)
        .map_or(0.0, |s| s.node_hours)
}

fn hours(h: f64) -> String {
    format!("{h:.1}")
}

impl CostReport {
    /// The chat text.
    pub fn render(&self, tz: &chrono_tz::Tz) -> String {
        let mut out = String::new();
        let local = |t: DateTime<Utc>| t.with_timezone(tz).format("%a %d %b %H:%M").to_string();
        let _ = write!(
            out,
            "💰 Node cost in {} — today since {}, this week since {} ({tz})",
            self.currency,
            local(self.today_from),
            local(self.week_from)
        );
        if self.pools.is_empty() {
            out.push_str(
                "\nNo pool samples yet: the sampler records each pool's size every [cost] sample_every.",
            );
            return out;
        }
        for p in &self.pools {
            let w = &p.week;
            let cur = &p.price.currency;
            let _ = write!(
                out,
                "\n**{}** ({}) · {} · {} · {} — {} node{} now",
                w.pool,
                w.cluster,
                w.vm_size,
                if w.spot { "Spot" } else { "on-demand" },
                w.region,
                w.nodes_now,
                if w.nodes_now == 1 { "" } else { "s" }
            );
            let _ = write!(
                out,
                "\n  today {} node-hours ≈ {} · week {} node-hours ≈ {}",
                hours(p.today.node_hours),
                money(p.cost(p.today.node_hours), cur),
                hours(w.node_hours),
                money(p.cost(w.node_hours), cur)
            );
            if p.avoided_week > 0.0 {
                let _ = write!(
                    out,
                    "\n  schedules avoided today {} node-hours (saved ≈ {}) · week {} (saved ≈ {})",
                    hours(p.avoided_today),
                    money(p.cost(p.avoided_today), cur),
                    hours(p.avoided_week),
                    money(p.cost(p.avoided_week), cur)
                );
            }
            let _ = write!(
                out,
                "\n  price per node-hour: on-demand {}, Spot {} ({})",
                money(p.price.on_demand.value(), cur),
                money(p.price.spot.value(), cur),
                p.price.provenance()
            );
            if w.uncovered_hours > 0.0 {
                let _ = write!(
                    out,
                    "\n  no samples for the first {} h of the week: not counted",
                    hours(w.uncovered_hours)
                );
            }
            if w.deallocate {
                out.push_str(
                    "\n  ⚠ scale-down mode Deallocate: the OS disks of deallocated nodes are still billed (not included above)",
                );
            }
        }
        for (label, spot) in [("on-demand", false), ("Spot", true)] {
            let pools: Vec<&PoolCost> = self.pools.iter().filter(|p| p.week.spot == spot).collect();
            if pools.is_empty() {
                continue;
            }
            let nh = |f: fn(&PoolCost) -> f64| pools.iter().map(|p| f(p)).sum::<f64>();
            let total = |f: fn(&PoolCost) -> f64| {
                pools
                    .iter()
                    .map(|p| {
                        (p.price.currency == self.currency)
                            .then(|| p.cost(f(p)))
                            .flatten()
                    })
                    .try_fold(0.0, |acc, c| c.map(|c| acc + c))
            };
            let _ = write!(
                out,
                "\n{label} total: today {} node-hours ≈ {} · week {} node-hours ≈ {}",
                hours(nh(|p| p.today.node_hours)),
                money(total(|p| p.today.node_hours), &self.currency),
                hours(nh(|p| p.week.node_hours)),
                money(total(|p| p.week.node_hours), &self.currency)
            );
        }
        out
    }
}

/// Node-hours of each pool on one local day.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: chrono::NaiveDate,
    pub pools: Vec<PoolUsage>,
}

impl Cost {
    /// Each local day from `from` (a local midnight) up to `now`.
    pub fn daily(&self, from: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<Day>, CostError> {
        let samples = self.store.samples(from, now)?;
        let mut days = Vec::new();
        let mut date = from.with_timezone(&self.tz).date_naive();
        let last = now.with_timezone(&self.tz).date_naive();
        while date <= last {
            let start =
                crate::sched::timing::resolve(&self.tz, date.and_time(chrono::NaiveTime::MIN));
            let Some(next) = date.succ_opt() else { break };
            let end =
                crate::sched::timing::resolve(&self.tz, next.and_time(chrono::NaiveTime::MIN))
                    .min(now);
            days.push(Day {
                date,
                pools: usage(&samples, start, end),
            });
            date = next;
        }
        Ok(days)
    }

    /// `/cost --week`: node-hours per pool per day.
    pub fn week_table(&self, report: &CostReport) -> String {
        let days = match self.daily(report.week_from, report.now) {
            Ok(d) => d,
            Err(e) => return format!("(no day-by-day table: {e})"),
        };
        let mut out = String::from("Node-hours per day:\n```\npool              ");
        for d in &days {
            let _ = write!(out, " {:>6}", d.date.format("%a"));
        }
        for p in &report.pools {
            let _ = write!(
                out,
                "\n{:<18}",
                format!("{}/{}", p.week.cluster, p.week.pool)
            );
            for d in &days {
                let nh = d
                    .pools
                    .iter()
                    .find(|u| u.cluster == p.week.cluster && u.pool == p.week.pool)
                    .map_or(0.0, |u| u.node_hours);
                let _ = write!(out, " {:>6.1}", nh);
            }
        }
        out.push_str("\n```");
        out
    }
}

impl Cost {
    /// Draws the week's chart and writes it under `[cost] chart_dir`; returns its path.
    pub fn week_chart(&self, report: &CostReport) -> Result<std::path::PathBuf, String> {
        let days = self
            .daily(report.week_from, report.now)
            .map_err(|e| e.to_string())?;
        let changes = self
            .scheduled_changes(report.now)
            .map_err(|e| e.to_string())?;
        let pools: Vec<(String, String)> = report
            .pools
            .iter()
            .map(|p| (p.week.cluster.clone(), p.week.pool.clone()))
            .collect();
        let mut chart_days = Vec::new();
        for day in &days {
            let start =
                crate::sched::timing::resolve(&self.tz, day.date.and_time(chrono::NaiveTime::MIN));
            let end = day
                .date
                .succ_opt()
                .map(|d| {
                    crate::sched::timing::resolve(&self.tz, d.and_time(chrono::NaiveTime::MIN))
                })
                .unwrap_or(report.now)
                .min(report.now);
            let avoided = node_hours_avoided(&changes, start, end);
            chart_days.push(super::chart::ChartDay {
                label: day.date.format("%a %d").to_string(),
                run: pools
                    .iter()
                    .map(|(c, p)| {
                        day.pools
                            .iter()
                            .find(|u| &u.cluster == c && &u.pool == p)
                            .map_or(0.0, |u| u.node_hours)
                    })
                    .collect(),
                avoided: pools.iter().map(|(_, p)| avoided_of(&avoided, p)).collect(),
            });
        }
        super::chart::load_font(&self.config.chart_font);
        let labels: Vec<String> = pools.iter().map(|(c, p)| format!("{c}/{p}")).collect();
        let png = super::chart::render_png(
            &format!(
                "Node-hours per pool, week of {}",
                report.week_from.with_timezone(&self.tz).format("%Y-%m-%d")
            ),
            &labels,
            &chart_days,
        )
        .map_err(|e| e.to_string())?;
        let dir = self
            .config
            .chart_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("deckhand-charts"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!(
            "cost-week-{}.png",
            report.now.with_timezone(&self.tz).format("%Y-%m-%d-%H%M%S")
        ));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}
