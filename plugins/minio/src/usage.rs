//! `/minio usage`: totals, the largest buckets, and growth against a snapshot from a week ago
//! (snapshots kept in the plugin's key-value state, one per endpoint and day, 60 days long).

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use serde::{Deserialize, Serialize};

use crate::buckets::with_totals;
use crate::format::{bytes, count, delta};
use crate::s3::{S3, Totals};

const WEEK_SECS: i64 = 7 * 86_400;
const KEEP_SECS: i64 = 60 * 86_400;
const LARGEST: usize = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds.
    pub at: i64,
    pub objects: u64,
    pub bytes: u64,
    /// Bytes per bucket.
    pub buckets: BTreeMap<String, u64>,
}

fn prefix(endpoint: &str) -> String {
    format!("usage/{endpoint}/")
}

pub fn usage(ctx: &Ctx, s3: &S3<'_>) -> Result<Reply, PluginError> {
    let endpoint = s3.endpoint().name.clone();
    let list = with_totals(s3)?;
    let mut total = Totals::default();
    for (_, t) in &list {
        total.add(t.objects, t.bytes);
    }
    let now = chrono::Utc::now();
    let snapshot = Snapshot {
        at: now.timestamp(),
        objects: total.objects,
        bytes: total.bytes,
        buckets: list.iter().map(|(n, t)| (n.clone(), t.bytes)).collect(),
    };
    let mut lines = vec![format!(
        "Endpoint {endpoint}: {}, {}, {}.",
        count(list.len() as u64, "bucket", "buckets"),
        count(total.objects, "object", "objects"),
        bytes(total.bytes)
    )];
    let mut largest: Vec<&(String, Totals)> = list.iter().collect();
    largest.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    if !largest.is_empty() {
        lines.push("Largest buckets:".into());
        for (name, t) in largest.into_iter().take(LARGEST) {
            lines.push(format!(
                "• {name}: {}, {}",
                bytes(t.bytes),
                count(t.objects, "object", "objects")
            ));
        }
    }
    let stored = ctx.kv_list(&prefix(&endpoint))?;
    let snapshots: Vec<(String, Snapshot)> = stored
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
        .collect();
    let week_ago = snapshot.at.saturating_sub(WEEK_SECS);
    // The newest snapshot at least a week old.
    let base = snapshots
        .iter()
        .filter(|(_, s)| s.at <= week_ago)
        .max_by_key(|(_, s)| s.at);
    match base {
        Some((_, before)) => {
            let days = snapshot.at.saturating_sub(before.at) / 86_400;
            lines.push(format!(
                "Growth in {days} days: {} ({} → {}), {} objects.",
                delta(snapshot.bytes, before.bytes),
                bytes(before.bytes),
                bytes(snapshot.bytes),
                signed(snapshot.objects, before.objects)
            ));
            let mut grown: Vec<(&String, u64, u64)> = snapshot
                .buckets
                .iter()
                .map(|(n, b)| (n, *b, before.buckets.get(n).copied().unwrap_or(0)))
                .filter(|(_, now, then)| now > then)
                .collect();
            grown.sort_by_key(|g| std::cmp::Reverse(g.1 - g.2));
            if let Some((name, now, then)) = grown.first() {
                lines.push(format!("Grew most: {name} ({})", delta(*now, *then)));
            }
        }
        None => {
            let first = snapshots.iter().map(|(_, s)| s.at).min();
            lines.push(match first {
                Some(at) => format!(
                    "No snapshot a week old yet (the first is from {}); growth shows from then on.",
                    date(at)
                ),
                None => "No earlier snapshot: this is the first; growth shows in a week.".into(),
            });
        }
    }
    let key = format!("{}{}", prefix(&endpoint), now.format("%Y-%m-%d"));
    ctx.kv_put(
        &key,
        serde_json::to_value(&snapshot)
            .map_err(|e| PluginError::new(ErrorCode::Protocol, e.to_string()))?,
    )?;
    let cutoff = snapshot.at.saturating_sub(KEEP_SECS);
    for (k, s) in &snapshots {
        if s.at < cutoff {
            let _ = ctx.kv_delete(k);
        }
    }
    Ok(Reply::text(lines.join("\n")))
}

fn signed(now: u64, before: u64) -> String {
    if now >= before {
        format!("+{}", now - before)
    } else {
        format!("-{}", before - now)
    }
}

fn date(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| at.to_string())
}
