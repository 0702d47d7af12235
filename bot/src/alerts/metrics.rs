//! Counters of the alert pipeline, in Prometheus' text format at `GET /metrics`:
//! `alerts_received_total{source}`, `alerts_routed_total`, `alerts_dropped_total{stage}`, and
//! what storm control did with them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl DropStage {
    pub const ALL: [DropStage; 7] = [
        DropStage::Auth,
        DropStage::BodySize,
        DropStage::Decode,
        DropStage::QueueFull,
        DropStage::Silenced,
        DropStage::Dedup,
        DropStage::Send,
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
        }
    }
}

#[derive(Debug, Default)]
pub struct AlertMetrics {
    received: [AtomicU64; 4],
    routed: AtomicU64,
    dropped: [AtomicU64; 7],
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

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        // Label values come from config and requests; mask any secret among them.
        crate::redact::redact(&self.compose()).into_owned()
    }

    fn compose(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP alerts_received_total Alerts accepted by a source.\n");
        out.push_str("# TYPE alerts_received_total counter\n");
        for source in Source::ALL {
            let _ = writeln!(
                out,
                "alerts_received_total{{source=\"{}\"}} {}",
                source.as_str(),
                self.received_total(source)
            );
        }
        out.push_str("# HELP alerts_routed_total Alerts routed to at least one destination.\n");
        out.push_str("# TYPE alerts_routed_total counter\n");
        let _ = writeln!(out, "alerts_routed_total {}", self.routed_total());
        out.push_str("# HELP alerts_dropped_total Alerts or requests stopped, by stage.\n");
        out.push_str("# TYPE alerts_dropped_total counter\n");
        for stage in DropStage::ALL {
            let _ = writeln!(
                out,
                "alerts_dropped_total{{stage=\"{}\"}} {}",
                stage.as_str(),
                self.dropped_total(stage)
            );
        }
        out.push_str(
            "# HELP alerts_messages_sent_total Messages posted to channels or webhooks.\n",
        );
        out.push_str("# TYPE alerts_messages_sent_total counter\n");
        let _ = writeln!(
            out,
            "alerts_messages_sent_total {}",
            self.messages_sent_total()
        );
        out.push_str("# HELP alerts_folded_total Alerts counted in digest messages.\n");
        out.push_str("# TYPE alerts_folded_total counter\n");
        let _ = writeln!(
            out,
            "alerts_folded_total {}",
            self.folded.load(Ordering::Relaxed)
        );
        out
    }
}
