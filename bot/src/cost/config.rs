//! `[cost]` in `deckhand.toml`: where prices come from, the price overrides, how often pool
//! sizes are sampled, and the zone "today" and "this week" are counted in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Azure's public price list (no credentials needed).
pub const RETAIL_PRICES: &str = "https://prices.azure.com/api/retail/prices";

/// `[cost]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// `/cost` and the pool-size sampler; on unless `enabled = false`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// ISO 4217 code prices are asked and shown in (`USD`, `EUR`, ...).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// The Retail Prices API endpoint (the sandbox serves its own).
    #[serde(default = "default_endpoint")]
    pub prices_endpoint: String,
    /// Fetched prices older than this are fetched again.
    #[serde(default = "default_max_age", with = "crate::config_support::duration")]
    pub price_max_age: Duration,
    /// How often each pool's node count, VM size and priority are sampled.
    #[serde(
        default = "default_sample_every",
        with = "crate::config_support::duration"
    )]
    pub sample_every: Duration,
    /// IANA zone of "today" and "this week" (weeks start on Monday).
    #[serde(default = "default_tz")]
    pub tz: String,
    /// A TTF for the chart's text (read with ab_glyph, pure Rust).
    #[serde(default = "default_font")]
    pub chart_font: std::path::PathBuf,
    /// Where `/cost --week` writes its PNG (default: `deckhand-charts` in the temp directory).
    #[serde(default)]
    pub chart_dir: Option<std::path::PathBuf>,
    /// The morning post of what last night's scale-downs saved; off when absent.
    #[serde(default)]
    pub morning: Option<super::morning::MorningConfig>,
    /// The idle-GPU warning; off when absent.
    #[serde(default)]
    pub idle: Option<super::idle::IdleConfig>,
    /// Prices that win over the API: negotiated rates, or offline use. Keyed by VM size.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceOverride>,
}

/// `[cost.prices.Standard_NC6s_v3]`: per node-hour.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    #[serde(default)]
    pub on_demand: Option<f64>,
    #[serde(default)]
    pub spot: Option<f64>,
    /// Defaults to `[cost] currency`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Only for this region (`westeurope`); absent: every region.
    #[serde(default)]
    pub region: Option<String>,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            enabled: true,
            currency: default_currency(),
            prices_endpoint: default_endpoint(),
            price_max_age: default_max_age(),
            sample_every: default_sample_every(),
            tz: default_tz(),
            chart_font: default_font(),
            chart_dir: None,
            morning: None,
            idle: None,
            prices: BTreeMap::new(),
        }
    }
}

fn default_font() -> std::path::PathBuf {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into()
}

fn yes() -> bool {
    true
}

fn default_currency() -> String {
    "USD".into()
}

fn default_endpoint() -> String {
    RETAIL_PRICES.into()
}

fn default_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_sample_every() -> Duration {
    Duration::from_secs(300)
}

fn default_tz() -> String {
    "UTC".into()
}

impl CostConfig {
    /// Problems a config check reports: a bad currency, zone or override.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !is_currency(&self.currency) {
            out.push(format!(
                "[cost] currency {:?} is not a three-letter ISO 4217 code such as \"EUR\"",
                self.currency
            ));
        }
        if crate::sched::timing::parse_zone(&self.tz).is_err() {
            out.push(format!(
                "[cost] tz {:?} is not an IANA zone such as \"Europe/Helsinki\"",
                self.tz
            ));
        }
        if self.sample_every < Duration::from_secs(10) {
            out.push("[cost] sample_every must be at least 10s".into());
        }
        if let Some(Err(e)) = self.morning.as_ref().map(|m| m.time()) {
            out.push(e);
        }
        for (size, p) in &self.prices {
            if !super::prices::is_vm_size(size) {
                out.push(format!(
                    "[cost.prices] {size:?} is not an Azure VM size such as \"Standard_NC6s_v3\""
                ));
            }
            for (what, v) in [("on_demand", p.on_demand), ("spot", p.spot)] {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    out.push(format!(
                        "[cost.prices.{size}] {what} must be a price per node-hour, 0 or more"
                    ));
                }
            }
            if p.currency.as_deref().is_some_and(|c| !is_currency(c)) {
                out.push(format!(
                    "[cost.prices.{size}] currency must be a three-letter code such as \"EUR\""
                ));
            }
        }
        out
    }
}

fn is_currency(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}
