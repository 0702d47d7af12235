//! `/minio ls` and `/minio share`: keys of a bucket or prefix, and presigned download links.

use std::time::Duration;

use deckhand_plugin_sdk::{PluginError, Reply};

use crate::address::split_target;
use crate::format::{age, bytes, count};
use crate::s3::{S3, Totals};

/// S3's longest presigned URL.
const MAX_EXPIRES: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn list(s3: &S3<'_>, target: &str, top: i64) -> Result<Reply, PluginError> {
    let (bucket, prefix) = split_target(target, "target")?;
    if !(1..=1000).contains(&top) {
        return Err(PluginError::bad_input(
            "top",
            format!("--top {top}: give 1 to 1000 keys"),
        ));
    }
    let shown_max = usize::try_from(top).unwrap_or(20);
    let now = chrono::Utc::now();
    let mut shown = Vec::new();
    let mut totals = Totals::default();
    s3.for_each_page(&bucket, prefix.as_ref(), |page| {
        for object in &page.contents {
            if shown.len() < shown_max {
                let when = object
                    .last_modified
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| age(now.signed_duration_since(t).num_seconds()))
                    .unwrap_or_else(|| "age unknown".into());
                shown.push(format!(
                    "• {} — {}, {when} old",
                    object.key,
                    bytes(object.size)
                ));
            }
        }
        let page_bytes = page
            .contents
            .iter()
            .fold(0u64, |sum, o| sum.saturating_add(o.size));
        totals.add(page.contents.len() as u64, page_bytes);
        Ok(())
    })?;
    let place = match &prefix {
        Some(p) => format!("{bucket}/{}", p.as_str()),
        None => bucket.to_string(),
    };
    if totals.objects == 0 {
        return Ok(Reply::text(format!(
            "{place} on endpoint {} holds no objects.",
            s3.endpoint().name
        )));
    }
    let mut lines = vec![format!(
        "{place} on endpoint {}: {}, {}{}",
        s3.endpoint().name,
        count(totals.objects, "object", "objects"),
        bytes(totals.bytes),
        if totals.objects > shown.len() as u64 {
            format!("; the first {}:", shown.len())
        } else {
            ":".into()
        }
    )];
    lines.extend(shown);
    Ok(Reply::text(lines.join("\n")))
}

pub fn share(s3: &S3<'_>, target: &str, expires: Duration) -> Result<Reply, PluginError> {
    let (bucket, key) = split_target(target, "target")?;
    let Some(key) = key.filter(|k| !k.as_str().ends_with('/')) else {
        return Err(PluginError::bad_input(
            "target",
            format!(
                "{target:?} names no object: give BUCKET/KEY, e.g. experiment-data/runs/model.bin"
            ),
        ));
    };
    if expires < Duration::from_secs(1) || expires > MAX_EXPIRES {
        return Err(PluginError::bad_input(
            "expires",
            format!(
                "--expires {} s: a presigned link lasts from 1 s to 7 days (604800 s), S3's maximum",
                expires.as_secs()
            ),
        ));
    }
    let size = s3.head_object(&bucket, &key)?;
    let url = s3.presign_get(&bucket, &key, expires.as_secs())?;
    let until = chrono::Utc::now()
        .checked_add_signed(chrono::TimeDelta::seconds(
            i64::try_from(expires.as_secs()).unwrap_or(0),
        ))
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    Ok(Reply {
        text: format!(
            "Download link for {bucket}/{} ({}), valid {} (until {until}), for you alone:\n{url}",
            key.as_str(),
            bytes(size),
            age(i64::try_from(expires.as_secs()).unwrap_or(0)),
        ),
        ephemeral: true,
        actions: Vec::new(),
    })
}
