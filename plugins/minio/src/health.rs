//! `/minio health`: MinIO's liveness and readiness probes where the server has them, else S3
//! reachability and the latency of a HEAD request; failures named (DNS, refused, TLS, 403).

use std::time::Instant;

use deckhand_plugin_sdk::abi::proto::HttpResponse;
use deckhand_plugin_sdk::{PluginError, Reply};

use crate::s3::S3;

fn millis(start: Instant) -> u128 {
    start.elapsed().as_millis()
}

/// A probe's answer: MinIO answers its health paths with 200 (or 503 when not ready) and an
/// empty body; another S3 server treats the path as a bucket and answers an S3 error.
fn is_minio_probe(response: &HttpResponse) -> bool {
    matches!(response.status, 200 | 503) && !response.body.contains("<Error>")
}

pub fn health(s3: &S3<'_>) -> Result<Reply, PluginError> {
    let endpoint = s3.endpoint();
    let start = Instant::now();
    let live = s3
        .probe("GET", "/minio/health/live")
        .map_err(|e| s3.unreachable(e))?;
    let live_ms = millis(start);
    if is_minio_probe(&live) {
        let start = Instant::now();
        let ready = s3
            .probe("GET", "/minio/health/ready")
            .map_err(|e| s3.unreachable(e))?;
        let ready_ms = millis(start);
        let ready_text = match ready.status {
            200 => format!("ready ({ready_ms} ms)"),
            503 => format!("NOT ready: the server cannot serve requests yet (503, {ready_ms} ms)"),
            status => format!("readiness unknown (HTTP {status})"),
        };
        let live_text = if live.status == 200 {
            format!("live ({live_ms} ms)")
        } else {
            format!("NOT live (HTTP {})", live.status)
        };
        return Ok(Reply::text(format!(
            "MinIO endpoint {} ({}): {live_text}, {ready_text}.",
            endpoint.name, endpoint.base
        )));
    }
    let start = Instant::now();
    let head = s3.probe("HEAD", "/").map_err(|e| s3.unreachable(e))?;
    let head_ms = millis(start);
    let base = format!(
        "S3 endpoint {} ({}) has no MinIO health probes",
        endpoint.name, endpoint.base
    );
    match head.status {
        200..=299 => Ok(Reply::text(format!(
            "{base}; it is reachable: HEAD / answered {} in {head_ms} ms.",
            head.status
        ))),
        _ => {
            let refusal = s3.refusal(&head);
            Err(PluginError {
                message: format!(
                    "{base}; it is reachable (HEAD / answered {} in {head_ms} ms) but refused the request: {}",
                    head.status, refusal.message
                ),
                ..refusal
            })
        }
    }
}
