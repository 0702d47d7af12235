//! VM prices per size and region, on-demand and Spot: the `[cost.prices]` overrides first, then
//! the Azure Retail Prices API (`$filter` on service, region, SKU and price type, pages followed
//! by `NextPageLink`), cached in state with the fetch date. A price nobody knows is
//! [`Known::Unknown`], never 0.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::config::CostConfig;
use super::store::{CachedPrice, CostStore};
use crate::state::StateError;

/// At most this many pages are followed for one size and region (Azure answers a handful).
const MAX_PAGES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("the prices endpoint {0:?} is not a URL")]
    Endpoint(String),
    #[error("Retail Prices API: {0}")]
    Network(String),
    #[error("Retail Prices API refused {operation}: {code}: {message} (HTTP {status}{request})")]
    Upstream {
        operation: String,
        status: u16,
        code: String,
        message: String,
        request: String,
    },
    #[error("Retail Prices API answered something that is not a price page: {0}")]
    Body(String),
    #[error("Retail Prices API NextPageLink {0:?} leaves the configured endpoint; not followed")]
    ForeignLink(String),
    #[error("Retail Prices API kept paging past {MAX_PAGES} pages")]
    TooManyPages,
    #[error(transparent)]
    State(#[from] StateError),
}

/// `Standard_NC6s_v3`: what Azure accepts as `armSkuName` (checked before it goes in a filter).
pub fn is_vm_size(s: &str) -> bool {
    s.strip_prefix("Standard_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 60
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// `westeurope`: Azure region names are lower-case letters and digits.
pub fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// One price per node-hour, or why it is not known.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    Price(f64),
    Unknown,
}

impl Known {
    pub fn value(&self) -> Option<f64> {
        match self {
            Known::Price(p) => Some(*p),
            Known::Unknown => None,
        }
    }

    fn of(v: Option<f64>) -> Known {
        v.map_or(Known::Unknown, Known::Price)
    }
}

/// Where a price came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `[cost.prices]` in the config.
    Config,
    /// The Retail Prices API, fetched then.
    Api { fetched_at: DateTime<Utc> },
    /// Nothing answered: the reason.
    Missing(String),
}

/// The prices of one VM size in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub vm_size: String,
    pub region: String,
    pub on_demand: Known,
    pub spot: Known,
    pub currency: String,
    pub source: Source,
}

impl Price {
    /// The price a pool pays per node-hour.
    pub fn for_priority(&self, spot: bool) -> &Known {
        if spot { &self.spot } else { &self.on_demand }
    }

    /// `USD, Retail Prices API 2026-12-03` / `EUR, config` / `unknown: ...`.
    pub fn provenance(&self) -> String {
        match &self.source {
            Source::Config => format!("{}, [cost.prices]", self.currency),
            Source::Api { fetched_at } => format!(
                "{}, Retail Prices API {}",
                self.currency,
                fetched_at.format("%Y-%m-%d")
            ),
            Source::Missing(why) => format!("unknown: {why}"),
        }
    }
}

/// What one fetch found: Linux pay-as-you-go prices (Windows, Low Priority, Dev/Test and
/// reservation rows are not what an AKS node pays).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetched {
    pub on_demand: Option<f64>,
    pub spot: Option<f64>,
    /// Pages read, for tests of the paging.
    pub pages: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    next_page_link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    currency_code: String,
    retail_price: f64,
    #[serde(default)]
    meter_name: String,
    #[serde(default)]
    product_name: String,
    #[serde(default)]
    unit_of_measure: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    effective_start_date: String,
    #[serde(default)]
    reservation_term: Option<String>,
}

/// An OData string literal: `'...'` with quotes doubled.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `$filter` for one size in one region.
pub fn filter(vm_size: &str, region: &str) -> String {
    format!(
        "serviceName eq {} and armRegionName eq {} and armSkuName eq {} and priceType eq {}",
        literal("Virtual Machines"),
        literal(region),
        literal(vm_size),
        literal("Consumption")
    )
}

/// The Retail Prices API client.
pub struct RetailPrices {
    http: reqwest::Client,
    endpoint: reqwest::Url,
}

impl RetailPrices {
    pub fn new(endpoint: &str) -> Result<RetailPrices, PriceError> {
        let endpoint =
            reqwest::Url::parse(endpoint).map_err(|_| PriceError::Endpoint(endpoint.into()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(PriceError::Endpoint(endpoint.to_string()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("deckhand/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| PriceError::Network(e.to_string()))?;
        Ok(RetailPrices { http, endpoint })
    }

    /// On-demand and Spot Linux prices of `vm_size` in `region`, in `currency`.
    pub async fn fetch(
        &self,
        vm_size: &str,
        region: &str,
        currency: &str,
    ) -> Result<Fetched, PriceError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("currencyCode", &literal(currency))
            .append_pair("$filter", &filter(vm_size, region));
        let mut found = Fetched::default();
        let mut dated: [Option<String>; 2] = [None, None];
        let operation = format!("prices of {vm_size} in {region}");
        loop {
            if found.pages >= MAX_PAGES {
                return Err(PriceError::TooManyPages);
            }
            let page = self.page(url.clone(), &operation).await?;
            found.pages += 1;
            for item in page.items {
                let Some((spot, price)) = linux_price(&item, currency) else {
                    continue;
                };
                let slot = usize::from(spot);
                // Several rows of one meter: the latest effective date wins.
                if dated[slot]
                    .as_deref()
                    .is_none_or(|d| item.effective_start_date.as_str() >= d)
                {
                    dated[slot] = Some(item.effective_start_date.clone());
                    if spot {
                        found.spot = Some(price);
                    } else {
                        found.on_demand = Some(price);
                    }
                }
            }
            let Some(next) = page.next_page_link.filter(|l| !l.is_empty()) else {
                return Ok(found);
            };
            url = reqwest::Url::parse(&next).map_err(|_| PriceError::ForeignLink(next.clone()))?;
            if url.origin() != self.endpoint.origin() {
                return Err(PriceError::ForeignLink(next));
            }
        }
    }

    async fn page(&self, url: reqwest::Url, operation: &str) -> Result<Page, PriceError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| PriceError::Network(crate::cloud::net_error::cause(&e)))?;
        let status = response.status().as_u16();
        let request = response
            .headers()
            .get("x-ms-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| format!(", request id {id}"))
            .unwrap_or_default();
        let body = response
            .text()
            .await
            .map_err(|e| PriceError::Network(e.to_string()))?;
        if !(200..300).contains(&status) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let field = |k: &str| {
                v.pointer(&format!("/Error/{k}"))
                    .or_else(|| v.pointer(&format!("/error/{}", k.to_ascii_lowercase())))
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
            };
            return Err(PriceError::Upstream {
                operation: operation.to_owned(),
                status,
                code: field("Code").unwrap_or_else(|| "HTTP error".into()),
                message: field("Message").unwrap_or_else(|| body.chars().take(200).collect()),
                request,
            });
        }
        serde_json::from_str(&body).map_err(|e| PriceError::Body(e.to_string()))
    }
}

/// `(is_spot, price)` of a row an AKS Linux node pays by the hour; `None` for other rows.
fn linux_price(item: &Item, currency: &str) -> Option<(bool, f64)> {
    let hourly = item.unit_of_measure == "1 Hour";
    let plain = item.kind == "Consumption" && item.reservation_term.is_none();
    let linux = !item.product_name.ends_with("Windows");
    let low_priority = item.meter_name.ends_with("Low Priority");
    let priced = item.currency_code.eq_ignore_ascii_case(currency)
        && item.retail_price.is_finite()
        && item.retail_price >= 0.0;
    if !(hourly && plain && linux && !low_priority && priced) {
        return None;
    }
    Some((item.meter_name.ends_with(" Spot"), item.retail_price))
}

/// Prices as `/cost` needs them: overrides, then the cache, then the API.
pub struct PriceBook {
    config: CostConfig,
    client: Option<RetailPrices>,
    store: CostStore,
}

impl PriceBook {
    pub fn new(config: CostConfig, store: CostStore) -> PriceBook {
        let client = RetailPrices::new(&config.prices_endpoint)
            .inspect_err(|e| tracing::warn!(error = %e, "no price fetching"))
            .ok();
        PriceBook {
            config,
            client,
            store,
        }
    }

    pub fn currency(&self) -> &str {
        &self.config.currency
    }

    /// The price of `vm_size` in `region` at `now`.
    pub async fn price(&self, vm_size: &str, region: &str, now: DateTime<Utc>) -> Price {
        let currency = self.config.currency.clone();
        let unknown = |why: String| Price {
            vm_size: vm_size.to_owned(),
            region: region.to_owned(),
            on_demand: Known::Unknown,
            spot: Known::Unknown,
            currency: currency.clone(),
            source: Source::Missing(why),
        };
        if let Some(p) = self.overridden(vm_size, region) {
            return p;
        }
        if !is_vm_size(vm_size) || !is_region(region) {
            return unknown(format!(
                "{vm_size:?} in {region:?} is not a size and region"
            ));
        }
        let cached = self.store.price(vm_size, region, &currency).ok().flatten();
        let max_age = chrono::Duration::from_std(self.config.price_max_age)
            .unwrap_or(chrono::Duration::days(7));
        if let Some(c) = &cached
            && now - c.fetched_at < max_age
        {
            return from_cache(vm_size, region, c);
        }
        let Some(client) = &self.client else {
            return match &cached {
                Some(c) => from_cache(vm_size, region, c),
                None => unknown("no prices endpoint and no [cost.prices] entry".into()),
            };
        };
        let fetched = client.fetch(vm_size, region, &currency).await;
        match fetched {
            Ok(f) => {
                let row = CachedPrice {
                    on_demand: f.on_demand,
                    spot: f.spot,
                    currency: currency.clone(),
                    fetched_at: now,
                };
                if let Err(e) = self.store.put_price(vm_size, region, &row) {
                    tracing::warn!(error = %e, "cannot cache a price");
                }
                from_cache(vm_size, region, &row)
            }
            Err(e) => {
                tracing::warn!(error = %e, vm_size, region, "price fetch failed");
                match &cached {
                    Some(c) => from_cache(vm_size, region, c),
                    None => unknown(e.to_string()),
                }
            }
        }
    }

    /// The `[cost.prices]` entry for this size and region; a region-specific one wins.
    fn overridden(&self, vm_size: &str, region: &str) -> Option<Price> {
        let (_, p) = self
            .config
            .prices
            .iter()
            .filter(|(size, p)| {
                size.eq_ignore_ascii_case(vm_size)
                    && p.region.as_deref().is_none_or(|r| r == region)
            })
            .max_by_key(|(_, p)| p.region.is_some())?;
        Some(Price {
            vm_size: vm_size.to_owned(),
            region: region.to_owned(),
            on_demand: Known::of(p.on_demand),
            spot: Known::of(p.spot),
            currency: p
                .currency
                .clone()
                .unwrap_or_else(|| self.config.currency.clone()),
            source: Source::Config,
        })
    }
}

fn from_cache(vm_size: &str, region: &str, c: &CachedPrice) -> Price {
    let source = if c.on_demand.is_none() && c.spot.is_none() {
        Source::Missing(format!(
            "the Retail Prices API listed no Linux price for {vm_size} in {region} on {}",
            c.fetched_at.format("%Y-%m-%d")
        ))
    } else {
        Source::Api {
            fetched_at: c.fetched_at,
        }
    };
    Price {
        vm_size: vm_size.to_owned(),
        region: region.to_owned(),
        on_demand: Known::of(c.on_demand),
        spot: Known::of(c.spot),
        currency: c.currency.clone(),
        source,
    }
}

/// `€12.34` style: the amount with its currency, or `unknown` (never 0 for a missing price).
pub fn money(amount: Option<f64>, currency: &str) -> String {
    match amount {
        None => "unknown".into(),
        Some(a) => match currency {
            "EUR" => format!("€{a:.2}"),
            "USD" => format!("${a:.2}"),
            "GBP" => format!("£{a:.2}"),
            other => format!("{a:.2} {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_regions_are_checked_before_a_filter_is_built() {
        assert!(is_vm_size("Standard_NC6s_v3"));
        assert!(!is_vm_size("NC6s_v3"));
        assert!(!is_vm_size("Standard_NC6' or 'x"));
        assert!(is_region("westeurope"));
        assert!(!is_region("West Europe"));
        assert_eq!(
            filter("Standard_NC6s_v3", "westeurope"),
            "serviceName eq 'Virtual Machines' and armRegionName eq 'westeurope' and armSkuName eq 'Standard_NC6s_v3' and priceType eq 'Consumption'"
        );
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn only_linux_pay_as_you_go_rows_count() {
        let item = |meter: &str, product: &str, kind: &str, term: Option<&str>| Item {
            currency_code: "EUR".into(),
            retail_price: 1.5,
            meter_name: meter.into(),
            product_name: product.into(),
            unit_of_measure: "1 Hour".into(),
            kind: kind.into(),
            effective_start_date: "2024-01-01T00:00:00Z".into(),
            reservation_term: term.map(str::to_owned),
        };
        let linux = "Virtual Machines NCSv3 Series";
        assert_eq!(
            linux_price(&item("NC6s v3", linux, "Consumption", None), "EUR"),
            Some((false, 1.5))
        );
        assert_eq!(
            linux_price(&item("NC6s v3 Spot", linux, "Consumption", None), "EUR"),
            Some((true, 1.5))
        );
        for rejected in [
            item("NC6s v3 Low Priority", linux, "Consumption", None),
            item(
                "NC6s v3",
                "Virtual Machines NCSv3 Series Windows",
                "Consumption",
                None,
            ),
            item("NC6s v3 Spot", linux, "DevTestConsumption", None),
            item("NC6s v3", linux, "Reservation", Some("1 Year")),
        ] {
            assert_eq!(linux_price(&rejected, "EUR"), None, "{rejected:?}");
        }
        assert_eq!(
            linux_price(&item("NC6s v3", linux, "Consumption", None), "USD"),
            None
        );
    }

    #[test]
    fn a_missing_price_is_shown_as_unknown_never_zero() {
        assert_eq!(money(None, "EUR"), "unknown");
        assert_eq!(money(Some(0.0), "EUR"), "€0.00");
        assert_eq!(money(Some(12.345), "USD"), "$12.35");
    }
}
