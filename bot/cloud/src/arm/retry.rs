//! Retry policy as Azure's SDKs define it: 408, 429, 500, 502, 503, 504 and connection errors
//! are retried with exponential backoff and jitter, `Retry-After` / `x-ms-retry-after-ms`
//! honoured, up to a number of attempts. Only idempotent requests are retried.

use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;

use crate::config::RetryConfig;

pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// PUT, DELETE, GET, HEAD and PATCH are idempotent in ARM; a POST action only when it reads
/// (`list*`) or converges (`start`, `stop`).
pub fn retry_safe(method: &str, action: Option<&str>) -> bool {
    match method {
        "GET" | "HEAD" | "PUT" | "DELETE" | "PATCH" => true,
        "POST" => action.is_some_and(|a| a.starts_with("list") || a == "start" || a == "stop"),
        _ => false,
    }
}

/// The delay the server asked for: `x-ms-retry-after-ms`, `retry-after-ms`, then `Retry-After`
/// (seconds or an HTTP date).
pub fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = text(name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = text("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Exponential backoff with ±20 % jitter: base · 2^(attempt-1), capped.
pub fn backoff(policy: &RetryConfig, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(policy.max_delay);
    let jitter = rand::rng().random_range(0.8..1.2);
    capped.mul_f64(jitter).min(policy.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn server_delay_prefers_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(server_delay(&headers), Some(Duration::from_secs(7)));
        headers.insert("x-ms-retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(server_delay(&headers), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryConfig::default()
        };
        let first = backoff(&policy, 1);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let third = backoff(&policy, 3);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
        assert!(backoff(&policy, 12) <= Duration::from_secs(1));
    }

    #[test]
    fn only_idempotent_requests_retry() {
        assert!(retry_safe("PUT", None) && retry_safe("DELETE", None));
        assert!(retry_safe("POST", Some("listClusterUserCredential")));
        assert!(!retry_safe("POST", Some("importImage")));
    }
}
