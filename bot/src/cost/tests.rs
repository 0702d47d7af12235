//! `/cost` figures checked by hand, and the Retail Prices API against the sandbox's endpoint.

use std::sync::Arc;

use chrono::Utc;

use super::usage::tests::t;

use super::config::{CostConfig, PriceOverride};
use super::prices::{Known, RetailPrices, Source};
use super::store::Sample;
use super::{Cost, CostParts};
use crate::sched::store::{RunKind, Store};
use crate::state::Db;

fn gpu_sample(at: &str, count: i64, origin: &str) -> Sample {
    Sample {
        at: t(at),
        cluster: "pangeoCluster".into(),
        pool: "gpu".into(),
        vm_size: "Standard_NC6s_v3".into(),
        region: "westeurope".into(),
        spot: false,
        count,
        deallocate: true,
        gpu: true,
        origin: origin.into(),
    }
}

fn cost_with(config: CostConfig, db: Db) -> Cost {
    Cost::new(CostParts {
        config,
        db,
        arm: None,
        clusters: Vec::new(),
    })
    .unwrap()
}

/// A scheduled `/aks scale` that succeeded at `at`.
fn scheduled(store: &Store, at: &str, command: &str) {
    let run = store
        .claim("gpu-nightly", RunKind::Cron, t(at), t(at))
        .unwrap()
        .unwrap();
    store
        .record_command(run, 0, command, "ok", "scaled", t(at))
        .unwrap();
    store.complete(run, t(at), "ok", "1 ok").unwrap();
}

#[tokio::test]
async fn one_pool_one_day_by_hand() {
    let db = Db::in_memory().unwrap();
    let mut config = CostConfig {
        currency: "EUR".into(),
        ..CostConfig::default()
    };
    config.prices.insert(
        "Standard_NC6s_v3".into(),
        PriceOverride {
            on_demand: Some(3.0),
            spot: None,
            currency: None,
            region: None,
        },
    );
    let cost = cost_with(config, db.clone());
    // Tuesday 20:00 the warm-up left 2 nodes; Wednesday 08:00 the schedule scaled to 0,
    // 18:00 back to 4. "Now" is Wednesday 20:00 (UTC).
    for s in [
        gpu_sample("2026-12-01T20:00:00Z", 2, "scale"),
        gpu_sample("2026-12-02T08:00:00Z", 0, "scale"),
        gpu_sample("2026-12-02T18:00:00Z", 4, "scale"),
    ] {
        cost.store.add_sample(&s).unwrap();
    }
    let schedules = Store::open(db).unwrap();
    scheduled(
        &schedules,
        "2026-12-01T20:00:00Z",
        "/aks scale --pool gpu --count 2",
    );
    scheduled(
        &schedules,
        "2026-12-02T08:00:00Z",
        "/aks scale --pool gpu --count 0",
    );
    scheduled(
        &schedules,
        "2026-12-02T18:00:00Z",
        "/aks scale --pool gpu --count 4",
    );

    let report = cost.figures(t("2026-12-02T20:00:00Z"), None).await.unwrap();
    assert_eq!(report.today_from, t("2026-12-02T00:00:00Z"));
    assert_eq!(report.week_from, t("2026-11-30T00:00:00Z"));
    let p = &report.pools[0];
    // Today: 2 nodes × 8 h (00–08) + 0 × 10 h + 4 nodes × 2 h (18–20) = 24 node-hours × €3.
    assert_eq!(p.today.node_hours, 24.0);
    assert_eq!(p.cost(p.today.node_hours), Some(72.0));
    // Week: 2 × 12 h (Tue 20:00 – Wed 08:00) + 4 × 2 h = 32 node-hours; Monday 00:00 to
    // Tuesday 20:00 (44 h) has no sample and is not counted.
    assert_eq!(p.week.node_hours, 32.0);
    assert_eq!(p.week.uncovered_hours, 44.0);
    // Avoided: 10 h at zero × the 2 nodes it had before = 20 node-hours, €60.
    assert_eq!(p.avoided_today, 20.0);
    assert_eq!(p.cost(p.avoided_today), Some(60.0));
    assert_eq!(p.today.nodes_now, 4);

    let text = report.render(&chrono_tz::UTC);
    for expected in [
        "**gpu** (pangeoCluster) · Standard_NC6s_v3 · on-demand · westeurope — 4 nodes now",
        "today 24.0 node-hours ≈ €72.00 · week 32.0 node-hours ≈ €96.00",
        "schedules avoided today 20.0 node-hours (saved ≈ €60.00) · week 20.0 (saved ≈ €60.00)",
        "price per node-hour: on-demand €3.00, Spot unknown (EUR, [cost.prices])",
        "no samples for the first 44.0 h of the week",
        "scale-down mode Deallocate: the OS disks of deallocated nodes are still billed",
        "on-demand total: today 24.0 node-hours ≈ €72.00 · week 32.0 node-hours ≈ €96.00",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(!text.contains("Spot total"), "{text}");

    let table = cost.week_table(&report);
    assert!(table.contains("pangeoCluster/gpu"), "{table}");
    assert!(table.contains("Tue"), "{table}");
    // Tuesday 20–24: 2 × 4 h = 8; Wednesday: 24.
    assert!(table.contains("0.0    8.0   24.0"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let mut cost = cost;
    cost.config.chart_dir = Some(dir.path().to_owned());
    let path = cost.week_chart(&report).unwrap();
    assert!(path.starts_with(dir.path()), "{}", path.display());
    let decoded = image::open(&path).unwrap().to_rgb8();
    assert_eq!(
        decoded.dimensions(),
        (super::chart::WIDTH, super::chart::HEIGHT)
    );
}

#[tokio::test]
async fn an_unknown_cluster_is_named_with_the_known_ones() {
    let cost = cost_with(CostConfig::default(), Db::in_memory().unwrap());
    cost.store
        .add_sample(&gpu_sample("2026-12-02T08:00:00Z", 1, "sampler"))
        .unwrap();
    let err = cost
        .figures(t("2026-12-02T09:00:00Z"), Some("pangeo"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"pangeo\"") && err.contains("pangeoCluster"),
        "{err}"
    );
}

#[cfg(feature = "sandbox")]
mod against_the_sandbox {
    use super::*;
    use deckhand_sandbox::{Sandbox, SandboxOptions};

    async fn prices_sandbox(page: usize) -> Sandbox {
        Sandbox::start(SandboxOptions {
            price_page_size: page,
            ..SandboxOptions::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn retail_prices_pages_are_followed_and_filtered() {
        let sandbox = prices_sandbox(3).await;
        let client = RetailPrices::new(&sandbox.prices_endpoint()).unwrap();
        let f = client
            .fetch("Standard_NC6s_v3", "westeurope", "EUR")
            .await
            .unwrap();
        // The filter leaves 4 Consumption rows (Linux, Spot, Low Priority, Windows): 2 pages
        // of 3. USD 3.06 × 0.9 = 2.754; Spot is a fifth of that.
        assert_eq!(f.pages, 2);
        assert_eq!(f.on_demand, Some(2.754));
        assert_eq!(f.spot, Some(0.5508));
        let requests = sandbox.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        let first = crate::cost::tests::decode(&requests[0].query);
        assert!(
            first.contains("$filter=serviceName eq 'Virtual Machines' and armRegionName eq 'westeurope' and armSkuName eq 'Standard_NC6s_v3' and priceType eq 'Consumption'"),
            "{first}"
        );
        assert!(first.contains("currencyCode='EUR'"), "{first}");
        assert!(requests[1].query.contains("$skip=3"), "{:?}", requests[1]);
    }

    #[tokio::test]
    async fn a_size_the_api_does_not_list_is_unknown_never_zero() {
        let sandbox = prices_sandbox(100).await;
        let db = Db::in_memory().unwrap();
        let config = CostConfig {
            prices_endpoint: sandbox.prices_endpoint(),
            ..CostConfig::default()
        };
        let cost = cost_with(config, db);
        let now = t("2026-12-02T08:00:00Z");
        let price = cost
            .prices
            .price("Standard_ND96asr_v4", "westeurope", now)
            .await;
        assert_eq!(price.on_demand, Known::Unknown);
        assert_eq!(price.spot, Known::Unknown);
        assert!(matches!(price.source, Source::Missing(_)), "{price:?}");

        let mut s = gpu_sample("2026-12-02T06:00:00Z", 8, "sampler");
        s.vm_size = "Standard_ND96asr_v4".into();
        cost.store.add_sample(&s).unwrap();
        let text = cost
            .figures(now, None)
            .await
            .unwrap()
            .render(&chrono_tz::UTC);
        assert!(text.contains("today 16.0 node-hours ≈ unknown"), "{text}");
        assert!(text.contains("on-demand unknown, Spot unknown (unknown: the Retail Prices API listed no Linux price for Standard_ND96asr_v4 in westeurope on 2026-12-02)"), "{text}");
        assert!(!text.contains("$0.00"), "{text}");
    }

    #[tokio::test]
    async fn a_fetched_price_is_cached_with_its_date() {
        let sandbox = prices_sandbox(100).await;
        let config = CostConfig {
            prices_endpoint: sandbox.prices_endpoint(),
            ..CostConfig::default()
        };
        let cost = cost_with(config, Db::in_memory().unwrap());
        let day1 = t("2026-12-01T08:00:00Z");
        let first = cost
            .prices
            .price("Standard_NC6s_v3", "westeurope", day1)
            .await;
        assert_eq!(first.on_demand, Known::Price(3.06));
        assert_eq!(first.provenance(), "USD, Retail Prices API 2026-12-01");
        let fetches = sandbox.requests().len();
        let again = cost
            .prices
            .price("Standard_NC6s_v3", "westeurope", t("2026-12-03T08:00:00Z"))
            .await;
        assert_eq!(again, first);
        assert_eq!(sandbox.requests().len(), fetches, "served from the cache");
    }

    #[tokio::test]
    async fn the_sampler_records_each_pool_of_the_sandbox_estate() {
        let running = crate::sandbox::start().await.unwrap();
        let mut config = crate::config::Config::parse(
            "",
            std::path::Path::new("t.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        running.apply_to(&mut config);
        let cloud = crate::cloud::Cloud::new(config.cloud_sections()).unwrap();
        let db = Db::in_memory().unwrap();
        let cost = Cost::new(CostParts {
            config: CostConfig::default(),
            db,
            arm: cloud.arm.clone(),
            clusters: config.kubernetes.clusters.clone(),
        })
        .unwrap();
        let now = Utc::now();
        let problems = cost.sampler.sample_all(now).await;
        assert!(problems.is_empty(), "{problems:?}");
        let samples = cost.store.samples(now, now).unwrap();
        let mut pools: Vec<(String, String, bool, bool)> = samples
            .iter()
            .map(|s| (s.pool.clone(), s.vm_size.clone(), s.spot, s.gpu))
            .collect();
        pools.sort();
        assert_eq!(
            pools,
            [
                ("gpu".to_owned(), "Standard_NC6s_v3".to_owned(), false, true),
                (
                    "system".to_owned(),
                    "Standard_D4s_v3".to_owned(),
                    false,
                    false
                ),
                (
                    "users".to_owned(),
                    "Standard_D8s_v3".to_owned(),
                    false,
                    false
                ),
                (
                    "workers".to_owned(),
                    "Standard_D8s_v3".to_owned(),
                    true,
                    false
                ),
            ]
        );
        assert!(samples.iter().all(|s| s.region == running.estate.location));
    }
}

/// Percent-decoding of a query string, for reading what was sent.
pub(crate) fn decode(q: &str) -> String {
    percent_encoding::percent_decode_str(&q.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[tokio::test]
async fn the_morning_post_says_what_last_night_saved_on_gpu_pools() {
    let db = Db::in_memory().unwrap();
    let mut config = CostConfig {
        currency: "EUR".into(),
        morning: Some(super::morning::MorningConfig {
            channel: "gpu-ops".into(),
            at: "08:00".into(),
        }),
        ..CostConfig::default()
    };
    config.prices.insert(
        "Standard_NC6s_v3".into(),
        PriceOverride {
            on_demand: Some(3.0),
            spot: None,
            currency: None,
            region: None,
        },
    );
    let cost = Arc::new(cost_with(config.clone(), db.clone()));
    let schedules = Store::open(db).unwrap();
    let mut workers = gpu_sample("2026-12-01T07:00:00Z", 5, "scale");
    workers.pool = "workers".into();
    workers.vm_size = "Standard_D8s_v3".into();
    workers.gpu = false;
    for s in [
        gpu_sample("2026-12-01T07:00:00Z", 2, "scale"),
        workers,
        gpu_sample("2026-12-01T20:00:00Z", 0, "scale"),
        gpu_sample("2026-12-02T07:00:00Z", 2, "scale"),
    ] {
        cost.store.add_sample(&s).unwrap();
    }
    scheduled(
        &schedules,
        "2026-12-01T07:00:00Z",
        "/aks scale --pool gpu --count 2",
    );
    scheduled(
        &schedules,
        "2026-12-01T07:00:01Z",
        "/aks scale --pool workers --count 5",
    );
    scheduled(
        &schedules,
        "2026-12-01T20:00:00Z",
        "/aks scale --pool gpu --count 0",
    );
    scheduled(
        &schedules,
        "2026-12-01T20:00:01Z",
        "/aks scale --pool workers --count 0",
    );
    scheduled(
        &schedules,
        "2026-12-02T07:00:00Z",
        "/aks scale --pool gpu --count 2",
    );

    // Nothing was scaled down the night before Tuesday.
    assert_eq!(cost.morning_text(t("2026-12-01T08:00:00Z")).await, None);

    // The loop posts at 08:00 (UTC here) by its clock.
    let clock = Arc::new(crate::sched::ManualClock::new(t("2026-12-02T07:30:00Z")));
    let outbox = Arc::new(crate::chat::MemoryOutbox::default());
    let task = tokio::spawn(super::morning::run(
        cost.clone(),
        config.morning.clone().unwrap(),
        outbox.clone(),
        clock.clone(),
    ));
    tokio::task::yield_now().await;
    assert!(outbox.messages().is_empty());
    clock.set(t("2026-12-02T08:00:00Z"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while outbox.messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    task.abort();
    let messages = outbox.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].channel, "gpu-ops");
    // Tuesday 20:00 to Wednesday 07:00 at zero: 11 h × the 2 nodes it had = 22 node-hours × €3.
    // The workers pool has no GPU and is not counted.
    assert_eq!(
        messages[0].text,
        "🌅 Last night saved 22.0 GPU node-hours (≈ €66.00): gpu (pangeoCluster) 22.0 node-hours ≈ €66.00."
    );
}
