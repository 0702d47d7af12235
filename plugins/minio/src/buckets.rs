//! `/minio buckets`, `mb`, `rb`: the bucket list with totals, creating and removing buckets.

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use serde::{Deserialize, Serialize};

use crate::address::BucketName;
use crate::format::{bytes, count};
use crate::s3::{S3, Totals};

/// How long a count shown by `rb` stands for a following `rb --force`.
const PREVIEW_SECS: i64 = 15 * 60;

/// Every bucket with its totals, counted page by page (never all keys at once).
pub fn with_totals(s3: &S3<'_>) -> Result<Vec<(String, Totals)>, PluginError> {
    let mut out = Vec::new();
    for bucket in s3.list_buckets()? {
        let name = BucketName::parse(&bucket.name, "bucket")?;
        let totals = s3.totals(&name, None)?;
        out.push((bucket.name, totals));
    }
    Ok(out)
}

pub fn buckets(s3: &S3<'_>) -> Result<Reply, PluginError> {
    let endpoint = &s3.endpoint().name;
    let list = with_totals(s3)?;
    if list.is_empty() {
        return Ok(Reply::text(format!(
            "Endpoint {endpoint} has no buckets: `/minio mb NAME` creates one."
        )));
    }
    let mut total = Totals::default();
    let mut lines = vec![format!(
        "{} on endpoint {endpoint}:",
        count(list.len() as u64, "bucket", "buckets")
    )];
    for (name, totals) in &list {
        total.add(totals.objects, totals.bytes);
        lines.push(format!(
            "• {name}: {}, {}",
            count(totals.objects, "object", "objects"),
            bytes(totals.bytes)
        ));
    }
    lines.push(format!(
        "Total: {}, {}.",
        count(total.objects, "object", "objects"),
        bytes(total.bytes)
    ));
    Ok(Reply::text(lines.join("\n")))
}

pub fn make(s3: &S3<'_>, name: &str) -> Result<Reply, PluginError> {
    let bucket = BucketName::parse(name, "name")?;
    // S3 in us-east-1 (and MinIO) answers 200 to creating a bucket one already owns: ask first,
    // so that an existing bucket is not reported as created.
    if s3.bucket_exists(&bucket)? {
        let mut error = PluginError::new(
            ErrorCode::Conflict,
            format!(
                "bucket {bucket} already exists on endpoint {}",
                s3.endpoint().name
            ),
        );
        error.upstream_code = Some("BucketAlreadyOwnedByYou".into());
        return Err(error.with_option("name"));
    }
    s3.create_bucket(&bucket)?;
    Ok(Reply::text(format!(
        "✓ Bucket {bucket} created on endpoint {}.",
        s3.endpoint().name
    )))
}

/// What `rb` counted and showed, so that `rb --force` deletes only what the caller saw.
#[derive(Debug, Serialize, Deserialize)]
struct Preview {
    objects: u64,
    bytes: u64,
    at: i64,
}

fn preview_key(endpoint: &str, bucket: &BucketName) -> String {
    format!("rb-preview/{endpoint}/{bucket}")
}

pub fn remove(ctx: &Ctx, s3: &S3<'_>, name: &str, force: bool) -> Result<Reply, PluginError> {
    let bucket = BucketName::parse(name, "name")?;
    let endpoint = s3.endpoint().name.clone();
    let key = preview_key(&endpoint, &bucket);
    let totals = s3.totals(&bucket, None)?;
    let holds = format!(
        "{}, {}",
        count(totals.objects, "object", "objects"),
        bytes(totals.bytes)
    );
    if totals.objects == 0 {
        s3.delete_bucket(&bucket)?;
        let _ = ctx.kv_delete(&key);
        return Ok(Reply::text(format!(
            "✓ Bucket {bucket} removed from endpoint {endpoint} (it was empty)."
        )));
    }
    let now = chrono::Utc::now().timestamp();
    let shown: Option<Preview> = ctx
        .kv_get(&key)?
        .and_then(|v| serde_json::from_value(v).ok());
    let seen = shown.is_some_and(|p| {
        p.objects == totals.objects
            && p.bytes == totals.bytes
            && now.checked_sub(p.at).is_some_and(|age| age <= PREVIEW_SECS)
    });
    if !(force && seen) {
        ctx.kv_put(
            &key,
            serde_json::to_value(Preview {
                objects: totals.objects,
                bytes: totals.bytes,
                at: now,
            })
            .map_err(|e| PluginError::new(ErrorCode::Protocol, e.to_string()))?,
        )?;
        let message = if force {
            format!(
                "bucket {bucket} on endpoint {endpoint} holds {holds}; nothing was deleted. Run `/minio rb {bucket} --force` again within 15 min to delete them and the bucket."
            )
        } else {
            format!(
                "bucket {bucket} on endpoint {endpoint} is not empty: it holds {holds}. `/minio rb {bucket} --force` deletes them and the bucket."
            )
        };
        let code = if force {
            ErrorCode::NeedsConfirmation
        } else {
            ErrorCode::Precondition
        };
        return Err(PluginError::new(code, message).with_option("force"));
    }
    let deleted = s3.delete_all(&bucket)?;
    let _ = ctx.kv_delete(&key);
    let gone = format!(
        "{}, {}",
        count(deleted.objects, "object", "objects"),
        bytes(deleted.bytes)
    );
    s3.delete_bucket(&bucket).map_err(|e| {
        let mut e = e;
        e.message = format!(
            "{gone} of bucket {bucket} were deleted, but the bucket itself was not removed: {}",
            e.message
        );
        e
    })?;
    Ok(Reply::text(format!(
        "✓ Bucket {bucket} removed from endpoint {endpoint} with its {gone}."
    )))
}
