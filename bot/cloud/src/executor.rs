//! One request pipeline for every cloud HTTP call (Resource Manager and registries): each
//! attempt gets its own timeout within the call's deadline; 408, 429, 5xx and connection errors
//! are retried as Azure's SDKs do (`Retry-After` honoured, else exponential backoff with
//! jitter) when the request is safe to repeat; a 401 triggers one credential refresh where the
//! caller has credentials to refresh; and a cancellation is noticed while waiting.
//! Authentication is the caller's hook (`build`), so ARM's bearer token and a registry's token
//! exchange share everything else.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use crate::arm::CallContext;
use crate::arm::retry;
use crate::config::RetryConfig;

/// One HTTP exchange's outcome, before interpretation.
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The URL answered (after redirects).
    pub url: String,
}

/// What a call may do besides sending once.
pub struct Policy<'a> {
    pub retry: &'a RetryConfig,
    /// Safe to send again (idempotent, or a read).
    pub repeatable: bool,
    /// On a 401, ask `build` once for a request with refreshed credentials.
    pub refresh_on_401: bool,
}

/// Who is called, for logs: `service` is `ARM` or the registry's name.
pub struct Target<'a> {
    pub service: &'a str,
    pub operation: &'a str,
}

/// Why no answer came back.
#[derive(Debug)]
pub enum Failure<E> {
    Cancelled,
    /// The call's deadline came first; `state` says what it was doing.
    Deadline {
        state: String,
    },
    /// No answer after `attempts` tries; `timed_out` when the last try ran out of time.
    Unreachable {
        attempts: u32,
        timed_out: bool,
        message: String,
    },
    /// The request could not be built: a local fault, never retried, never the server's.
    Local(String),
    /// The caller's `build` hook failed (e.g. no token could be had).
    Build(E),
}

/// Sends what `build(refresh)` makes until an answer worth returning comes back.
pub async fn execute<E>(
    target: Target<'_>,
    policy: Policy<'_>,
    cx: &CallContext<'_>,
    mut build: impl AsyncFnMut(bool) -> Result<reqwest::RequestBuilder, E>,
) -> Result<Exchange, Failure<E>> {
    let Target { service, operation } = target;
    let mut refresh = false;
    let mut refreshed = false;
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        if (cx.cancelled)() {
            return Err(Failure::Cancelled);
        }
        let remaining = cx.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::Deadline {
                state: format!("before attempt {attempt}"),
            });
        }
        let request = build(refresh).await.map_err(Failure::Build)?;
        refresh = false;
        let outcome = request
            .timeout(policy.retry.try_timeout.min(remaining))
            .send()
            .await;
        let delay = match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                deckhand_support::metrics::cloud_response(
                    service,
                    status,
                    status == 429 || (status == 503 && headers.contains_key("retry-after")),
                );
                let url = response.url().to_string();
                let body = match response.bytes().await {
                    Ok(body) => body.to_vec(),
                    Err(e) if e.is_timeout() => {
                        return Err(Failure::Unreachable {
                            attempts: attempt,
                            timed_out: true,
                            message: "the answer's body did not arrive in time".into(),
                        });
                    }
                    Err(_) => Vec::new(),
                };
                tracing::debug!(
                    operation,
                    status,
                    attempt,
                    request_id = headers
                        .get("x-ms-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    "{service} answered"
                );
                let exchange = Exchange {
                    status,
                    headers,
                    body,
                    url,
                };
                if status == 401 && policy.refresh_on_401 && !refreshed {
                    // An expired or revoked credential: fetch a fresh one once.
                    refreshed = true;
                    refresh = true;
                    continue;
                }
                if !(retry::retryable_status(status) && policy.repeatable)
                    || attempt >= policy.retry.max_attempts
                {
                    return Ok(exchange);
                }
                let delay = retry::server_delay(&exchange.headers)
                    .unwrap_or_else(|| retry::backoff(policy.retry, attempt));
                tracing::info!(
                    service,
                    operation,
                    status,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "retrying {service} request"
                );
                delay
            }
            Err(e) => {
                let e = e.without_url();
                if e.is_builder() {
                    return Err(Failure::Local(crate::net_error::cause(&e)));
                }
                if !policy.repeatable || attempt >= policy.retry.max_attempts {
                    return Err(Failure::Unreachable {
                        attempts: attempt,
                        timed_out: e.is_timeout(),
                        message: crate::net_error::cause(&e),
                    });
                }
                tracing::info!(service, operation, attempt, error = %e, "retrying {service} request after a connection error");
                retry::backoff(policy.retry, attempt)
            }
        };
        if delay > cx.deadline.saturating_duration_since(Instant::now()) {
            return Err(Failure::Deadline {
                state: format!("waiting to retry (attempt {attempt})"),
            });
        }
        if pause(delay, cx).await.is_err() {
            return Err(Failure::Cancelled);
        }
    }
}

/// Sleeps for `wait`, waking early to notice cancellation (then `Err`).
pub async fn pause(wait: Duration, cx: &CallContext<'_>) -> Result<(), ()> {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if (cx.cancelled)() {
            return Err(());
        }
        tokio::time::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        )
        .await;
    }
    Ok(())
}
