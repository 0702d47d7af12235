//! The bot's process-wide Prometheus metrics (`GET /metrics` on the ops port), on
//! `prometheus-client`, the Prometheus project's Rust client. Every layer records through the
//! one-line functions here (the router, the host, the cloud executor, the scheduler), so no
//! component holds a registry of its own; counters that belong to one component's state (the
//! alert pipeline's) are encoded next to these by a `Collector` (see
//! [`encode_with`]).
//!
//! Label values are bounded: plugin and command names come from loaded manifests, outcomes and
//! statuses from fixed lists; no user input and no secret becomes a label.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`encode_with`]'s text (OpenMetrics 1.0, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    plugin: String,
    command: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandKey {
    plugin: String,
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceStatus {
    service: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeLabels {
    verb: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    plugin: String,
    service: String,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms … ~82 s: a parse error answers in microseconds, an AKS upgrade waits minutes
    // (those land in +Inf).
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 15,
    ))
}

struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    command_seconds: HistogramFamily<CommandKey>,
    cloud_responses: Family<ServiceStatus, Counter>,
    throttles: Family<ServiceStatus, Counter>,
    arm_write_budget: Gauge,
    kube_requests: Family<KubeLabels, Counter>,
    schedule_runs: Family<OutcomeLabel, Counter>,
    leader: Gauge,
    chat_connected: Gauge,
    refused: Family<RefusalLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let commands = Family::<CommandLabels, Counter>::default();
    registry.register(
        "deckhand_commands",
        "Plugin commands finished, by plugin, command and outcome (ok, error, timeout, cancelled, panic, ...)",
        commands.clone(),
    );
    let command_seconds: HistogramFamily<CommandKey> =
        Family::new_with_constructor(latency_histogram);
    registry.register(
        "deckhand_command_duration_seconds",
        "Time from a plugin command's start to its answer",
        command_seconds.clone(),
    );
    let cloud_responses = Family::<ServiceStatus, Counter>::default();
    registry.register(
        "deckhand_cloud_responses",
        "HTTP answers from ARM, registries and plugin HTTP targets (every attempt, retries included), by service and status",
        cloud_responses.clone(),
    );
    let throttles = Family::<ServiceStatus, Counter>::default();
    registry.register(
        "deckhand_cloud_throttled",
        "Answers that asked Deckhand to slow down (429, or 503 with Retry-After), by service",
        throttles.clone(),
    );
    let arm_write_budget = Gauge::default();
    arm_write_budget.set(-1);
    registry.register(
        "deckhand_arm_write_budget_remaining",
        "x-ms-ratelimit-remaining-subscription-writes of the latest ARM write (-1 before the first)",
        arm_write_budget.clone(),
    );
    let kube_requests = Family::<KubeLabels, Counter>::default();
    registry.register(
        "deckhand_kube_requests",
        "Kubernetes API requests made for plugins, by verb and outcome (ok or the HTTP status or error kind)",
        kube_requests.clone(),
    );
    let schedule_runs = Family::<OutcomeLabel, Counter>::default();
    registry.register(
        "deckhand_schedule_runs",
        "Schedule runs, by outcome",
        schedule_runs.clone(),
    );
    let leader = Gauge::default();
    registry.register(
        "deckhand_schedule_leader",
        "1 while this replica holds the schedule Lease (runs schedules), else 0",
        leader.clone(),
    );
    let chat_connected = Gauge::default();
    registry.register(
        "deckhand_chat_connected",
        "1 while the chat surface (Discord gateway, or the terminal) is connected",
        chat_connected.clone(),
    );
    let refused = Family::<RefusalLabels, Counter>::default();
    registry.register(
        "deckhand_capability_refusals",
        "Plugin service calls refused because the plugin's manifest does not declare them",
        refused.clone(),
    );
    Metrics {
        registry,
        commands,
        command_seconds,
        cloud_responses,
        throttles,
        arm_write_budget,
        kube_requests,
        schedule_runs,
        leader,
        chat_connected,
        refused,
    }
});

/// A plugin command finished with `outcome` after `elapsed`.
pub fn command(plugin: &str, command: &str, outcome: &str, elapsed: Duration) {
    let m = &*METRICS;
    m.commands
        .get_or_create(&CommandLabels {
            plugin: plugin.to_owned(),
            command: command.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
    m.command_seconds
        .get_or_create(&CommandKey {
            plugin: plugin.to_owned(),
            command: command.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

/// One HTTP answer from `service` (`ARM`, a registry, ...); `throttled` when it asked to
/// slow down.
pub fn cloud_response(service: &str, status: u16, throttled: bool) {
    let labels = ServiceStatus {
        service: service.to_owned(),
        status: status.to_string(),
    };
    METRICS.cloud_responses.get_or_create(&labels).inc();
    if throttled {
        METRICS.throttles.get_or_create(&labels).inc();
    }
}

/// What ARM said is left of the subscription's write budget.
pub fn arm_write_budget(left: u32) {
    METRICS.arm_write_budget.set(i64::from(left));
}

/// One Kubernetes request for a plugin finished.
pub fn kube_request(verb: &str, outcome: &str) {
    METRICS
        .kube_requests
        .get_or_create(&KubeLabels {
            verb: verb.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// A schedule run finished (or was skipped) with `outcome`.
pub fn schedule_run(outcome: &str) {
    METRICS
        .schedule_runs
        .get_or_create(&OutcomeLabel {
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// This replica gained or lost the schedule Lease.
pub fn leader(leading: bool) {
    METRICS.leader.set(i64::from(leading));
}

/// The chat surface connected or lost its connection.
pub fn chat_connected(connected: bool) {
    METRICS.chat_connected.set(i64::from(connected));
}

/// Whether the chat surface is connected now (for `/readyz`).
pub fn is_chat_connected() -> bool {
    METRICS.chat_connected.get() == 1
}

/// A plugin's service call was refused by its declared capabilities.
pub fn refused(plugin: &str, service: &str) {
    METRICS
        .refused
        .get_or_create(&RefusalLabels {
            plugin: plugin.to_owned(),
            service: service.to_owned(),
        })
        .inc();
}

/// The whole exposition: the process-wide families, then each collector's, then `# EOF`.
pub fn encode_with(collectors: Vec<Box<dyn Collector>>) -> String {
    let mut extra = Registry::default();
    for collector in collectors {
        extra.register_collector(collector);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry);
    let _ = prometheus_client::encoding::text::encode(&mut out, &extra);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn families_move_and_end_with_eof() {
        let key = "deckhand_commands_total{plugin=\"unit\",command=\"probe\",outcome=\"ok\"}";
        let before = value_of(&encode_with(vec![]), key).unwrap_or(0.0);
        command("unit", "probe", "ok", Duration::from_millis(12));
        cloud_response("ARM", 429, true);
        kube_request("list", "ok");
        schedule_run("ok");
        refused("unit", "kube");
        let text = encode_with(vec![]);
        for family in [
            "deckhand_commands counter",
            "deckhand_command_duration_seconds histogram",
            "deckhand_cloud_responses counter",
            "deckhand_cloud_throttled counter",
            "deckhand_arm_write_budget_remaining gauge",
            "deckhand_kube_requests counter",
            "deckhand_schedule_runs counter",
            "deckhand_schedule_leader gauge",
            "deckhand_chat_connected gauge",
            "deckhand_capability_refusals counter",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}\n")),
                "{family}: {text}"
            );
        }
        assert_eq!(value_of(&text, key), Some(before + 1.0), "{text}");
        assert!(text.contains("# TYPE deckhand_command_duration_seconds histogram"));
        assert!(text.contains(
            "deckhand_command_duration_seconds_bucket{le=\"0.02\",plugin=\"unit\",command=\"probe\"}"
        ), "{text}");
        assert!(
            value_of(
                &text,
                "deckhand_cloud_throttled_total{service=\"ARM\",status=\"429\"}"
            )
            .is_some_and(|v| v >= 1.0),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
