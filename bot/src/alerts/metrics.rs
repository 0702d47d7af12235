//! Counters of the alert pipeline, encoded with the bot's other metrics at `GET /metrics`:
//! `alerts_received_total{source}`, `alerts_routed_total`, `alerts_dropped_total{stage}`, and
//! what storm control did with them.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::alert::Source;

/// Where an alert (or a rejected request) stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStage {
    /// Missing or wrong credentials (counts requests).
    Auth,
    /// Body over the size limit (counts requests).
    BodySize,
    /// Not valid JSON or not the expected schema (counts requests).
    Decode,
    /// The pipeline queue was full; the sender should retry (counts alerts).
    QueueFull,
    /// Matched a silence (counts alerts).
    Silenced,
    /// A repeat inside the dedup window, or an acknowledged alert firing again (counts
    /// alert deliveries).
    Dedup,
    /// A sink failed to deliver (counts alerts in the lost message).
    Send,
    /// Another replica sharing the state database claimed it first and posts it (counts
    /// alerts).
    Replica,
}

impl DropStage {
    pub const ALL: [DropStage; 8] = [
        DropStage::Auth,
        DropStage::BodySize,
        DropStage::Decode,
        DropStage::QueueFull,
        DropStage::Silenced,
        DropStage::Dedup,
        DropStage::Send,
        DropStage::Replica,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropStage::Auth => "auth",
            DropStage::BodySize => "body_size",
            DropStage::Decode => "decode",
            DropStage::QueueFull => "queue_full",
            DropStage::Silenced => "silenced",
            DropStage::Dedup => "dedup",
            DropStage::Send => "send",
            DropStage::Replica => "replica",
        }
    }
}

#[derive(Debug, Default)]
pub struct AlertMetrics {
    received: [AtomicU64; 4],
    routed: AtomicU64,
    dropped: [AtomicU64; 8],
    messages_sent: AtomicU64,
    folded: AtomicU64,
}

impl AlertMetrics {
    pub fn received(&self, source: Source, n: u64) {
        self.received[source.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub fn routed(&self, n: u64) {
        self.routed.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, stage: DropStage, n: u64) {
        self.dropped[stage as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn message_sent(&self, folded: u64) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.folded.fetch_add(folded, Ordering::Relaxed);
    }

    pub fn received_total(&self, source: Source) -> u64 {
        self.received[source.index()].load(Ordering::Relaxed)
    }

    pub fn routed_total(&self) -> u64 {
        self.routed.load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self, stage: DropStage) -> u64 {
        self.dropped[stage as usize].load(Ordering::Relaxed)
    }

    pub fn messages_sent_total(&self) -> u64 {
        self.messages_sent.load(Ordering::Relaxed)
    }
}

/// The alert counters as `prometheus-client` families, read from the atomics on each scrape;
/// registered next to the process-wide ones (`crate::metrics::encode_with`).
pub struct AlertsCollector(pub std::sync::Arc<super::AlertsState>);

impl std::fmt::Debug for AlertsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertsCollector")
    }
}

/// A counter family with one label.
fn labelled(
    encoder: &mut DescriptorEncoder,
    (name, help, label): (&str, &str, &str),
    values: impl IntoIterator<Item = (&'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value_label, value) in values {
        ConstCounter::new(value).encode(family.encode_family(&[(label, value_label)])?)?;
    }
    Ok(())
}

/// A counter without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

impl Collector for AlertsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0.metrics;
        let e = &mut encoder;
        labelled(
            e,
            ("alerts_received", "Alerts accepted by a source", "source"),
            Source::ALL.map(|s| (s.as_str(), m.received_total(s))),
        )?;
        single(
            e,
            "alerts_routed",
            "Alerts routed to at least one destination",
            m.routed_total(),
        )?;
        labelled(
            e,
            (
                "alerts_dropped",
                "Alerts or requests stopped, by stage (dedup: deduplicated)",
                "stage",
            ),
            DropStage::ALL.map(|s| (s.as_str(), m.dropped_total(s))),
        )?;
        single(
            e,
            "alerts_messages_sent",
            "Messages posted to channels or webhooks",
            m.messages_sent_total(),
        )?;
        single(
            e,
            "alerts_folded",
            "Alerts counted in digest messages (folded)",
            m.folded.load(Ordering::Relaxed),
        )
    }
}
