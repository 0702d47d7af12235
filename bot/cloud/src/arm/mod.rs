//! Azure Resource Manager over HTTPS: authentication, retries, long-running operations and
//! errors, once for every plugin.
//!
//! A plugin sends method, path, api-version and body; this client adds the subscription and a
//! bearer token, retries what Azure's SDKs retry, follows `Azure-AsyncOperation` / `Location`
//! (header names matched case-insensitively) until the operation ends, reads the final resource
//! back, reports progress, and turns failures into [`ArmError`]s carrying Azure's code and the
//! request id.

pub mod error;
mod groups;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deckhand_cloud_names::ArmPath;
use deckhand_plugin_abi::proto::{ArmRequest, ArmResponse};
use reqwest::header::HeaderMap;
use serde_json::Value;

pub use error::ArmError;
use error::azure_error;

use super::config::AzureConfig;
use super::credential::{CredentialError, TokenSource};
use crate::executor::{Failure, Policy, Target, execute};

/// What a caller lends the client for one request: where progress goes, when to give up.
pub struct CallContext<'a> {
    pub deadline: Instant,
    pub progress: &'a (dyn Fn(String) + Send + Sync),
    pub cancelled: &'a (dyn Fn() -> bool + Send + Sync),
}

impl CallContext<'_> {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    endpoint: String,
    subscription: String,
    tokens: Arc<TokenSource>,
    config: AzureConfig,
}

/// One HTTP exchange's outcome, before interpretation.
#[derive(Clone)]
struct Exchange {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn request_id(&self) -> Option<String> {
        self.header("x-ms-request-id")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `x-ms-ratelimit-remaining-subscription-{kind}` (`writes`, `reads`): what Azure says
    /// this subscription may still send.
    fn remaining(&self, kind: &str) -> Option<u32> {
        self.header(&format!("x-ms-ratelimit-remaining-subscription-{kind}"))
            .and_then(|v| v.trim().parse().ok())
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl ArmClient {
    pub fn new(config: &AzureConfig) -> Result<ArmClient, ArmError> {
        let tokens = Arc::new(TokenSource::new(config)?);
        let http = reqwest::Client::builder()
            .user_agent(concat!("deckhand/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend is compiled in");
        Ok(ArmClient {
            http,
            endpoint: config.arm_endpoint.trim_end_matches('/').to_owned(),
            subscription: config.subscription_id.clone(),
            tokens,
            config: config.clone(),
        })
    }

    /// The Entra token source, shared with clients that exchange it (ACR's token exchange).
    pub fn tokens(&self) -> Arc<TokenSource> {
        self.tokens.clone()
    }

    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// Sends a request, following its long-running operation when `request.wait` is set. The
    /// path is parsed into an [`ArmPath`] first: nothing that could address another resource
    /// is sent.
    pub async fn call(
        &self,
        request: &ArmRequest,
        cx: &CallContext<'_>,
    ) -> Result<ArmResponse, ArmError> {
        let address = ArmPath::parse(&request.path).map_err(|e| ArmError::BadRequest {
            operation: format!("{} request", request.method.to_ascii_uppercase()),
            message: e.to_string(),
        })?;
        self.call_at(&address, request, cx).await
    }

    /// The URL of `address`: the endpoint, the subscription (unless the address names one) and
    /// each segment percent-encoded, then the api-version as a query parameter.
    pub fn url(&self, address: &ArmPath, api_version: &str) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.endpoint)
            .map_err(|e| format!("the ARM endpoint {:?} is not a URL: {e}", self.endpoint))?;
        url.path_segments_mut()
            .map_err(|()| format!("the ARM endpoint {:?} cannot have a path", self.endpoint))?
            .pop_if_empty()
            .extend(address.segments(Some(&self.subscription)));
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    /// [`ArmClient::call`] on an address already parsed.
    async fn call_at(
        &self,
        address: &ArmPath,
        request: &ArmRequest,
        cx: &CallContext<'_>,
    ) -> Result<ArmResponse, ArmError> {
        let method = request.method.to_ascii_uppercase();
        let path = address.to_string();
        let operation = format!("{method} {}", short(&path));
        if request.api_version.is_empty() {
            return Err(ArmError::BadRequest {
                operation,
                message: "api_version is required".into(),
            });
        }
        let url = self
            .url(address, &request.api_version)
            .map_err(|message| ArmError::BadRequest {
                operation: operation.clone(),
                message,
            })?
            .to_string();
        let action = (method == "POST")
            .then(|| address.segments(None).last().map(|s| (*s).to_owned()))
            .flatten();
        let first = self
            .send(
                &method,
                &url,
                request.body.as_ref(),
                action.as_deref(),
                &operation,
                cx,
            )
            .await?;
        if !(200..300).contains(&first.status) {
            return Err(azure_error(
                &operation,
                first.status,
                &first.body,
                first.request_id(),
            ));
        }
        let async_op = first.header("azure-asyncoperation");
        // Location means "poll me" only on 202 (on 201 it may just name the new resource).
        let location = first.header("location").filter(|_| first.status == 202);
        let provisioning = first
            .json()
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let unfinished = provisioning.as_deref().is_some_and(|s| !is_terminal(s));
        let is_lro = async_op.is_some()
            || location.is_some()
            || (matches!(method.as_str(), "PUT" | "PATCH") && unfinished);
        let remaining_writes = first.remaining("writes");
        if let Some(left) = remaining_writes {
            tracing::debug!(%operation, left, "ARM writes left for the subscription");
            deckhand_support::metrics::arm_write_budget(left);
        }
        let answer = |status: u16, body: Value, reads: Option<u32>| ArmResponse {
            status,
            body,
            request_id: first.request_id(),
            read_back_error: None,
            remaining_writes,
            remaining_reads: reads,
        };
        if !request.wait || !is_lro {
            return Ok(answer(first.status, first.json(), first.remaining("reads")));
        }
        // Without a status URL, the resource itself is polled until its provisioningState ends.
        let async_op = async_op.or_else(|| location.is_none().then(|| url.clone()));
        let label = request.label.clone().unwrap_or_else(|| operation.clone());
        let done = self
            .follow(&first, async_op, location, &label, &operation, cx)
            .await?;
        let read_back = format!("GET {} (reading back the result)", short(&path));
        // The final resource: PUT/PATCH read the resource back; POST answers with the final
        // Location response; DELETE has none.
        match method.as_str() {
            // The operation succeeded: whatever happens to the read now, the change is done,
            // so a failed read is a note on a success, never an error.
            "PUT" | "PATCH" => match self.send("GET", &url, None, None, &read_back, cx).await {
                Ok(read) if read.is_success() => {
                    Ok(answer(read.status, read.json(), read.remaining("reads")))
                }
                Ok(read) => Ok(ArmResponse {
                    read_back_error: Some(
                        azure_error(&read_back, read.status, &read.body, read.request_id()).into(),
                    ),
                    ..answer(done.status, Value::Null, read.remaining("reads"))
                }),
                Err(e) => Ok(ArmResponse {
                    read_back_error: Some(e.into()),
                    ..answer(done.status, Value::Null, done.remaining("reads"))
                }),
            },
            "DELETE" => Ok(answer(200, Value::Null, done.remaining("reads"))),
            _ => Ok(answer(done.status, done.json(), done.remaining("reads"))),
        }
    }

    /// Polls an operation until it ends; returns the last poll response.
    async fn follow(
        &self,
        first: &Exchange,
        async_op: Option<String>,
        location: Option<String>,
        label: &str,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<Exchange, ArmError> {
        let started = Instant::now();
        let limit = self.config.operation_timeout.min(cx.remaining());
        let mut wait = poll_delay(&first.headers, self.config.poll_interval);
        let mut state = "InProgress".to_owned();
        loop {
            if started.elapsed() + wait > limit {
                return Err(ArmError::Timeout {
                    operation: operation.to_owned(),
                    secs: limit.as_secs(),
                    state,
                });
            }
            self.pause(wait, operation, cx).await?;
            let elapsed = started.elapsed().as_secs();
            if let Some(url) = &async_op {
                let poll = self.poll(url, first, operation, cx).await?;
                if !poll.is_success() {
                    // The status document itself could not be read: that says nothing about
                    // the operation, which Azure accepted.
                    let (code, message) = error::error_fields(poll.status, &poll.body);
                    return Err(ArmError::OutcomeUnknown {
                        operation: operation.to_owned(),
                        reason: format!(
                            "its status URL answered HTTP {}: {code}: {message}",
                            poll.status
                        ),
                        request_id: first.request_id(),
                    });
                }
                let body = poll.json();
                state = body
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("InProgress")
                    .to_owned();
                (cx.progress)(format!("{label}… {elapsed} s ({state})"));
                match state.as_str() {
                    "Succeeded" => {
                        return match &location {
                            // POST actions whose result is at Location.
                            Some(loc) => self.send("GET", loc, None, None, operation, cx).await,
                            None => Ok(poll),
                        };
                    }
                    "Failed" | "Canceled" | "Cancelled" => {
                        let error = body.get("error");
                        let field = |n: &str| {
                            error
                                .and_then(|e| e.get(n))
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        };
                        return Err(ArmError::OperationFailed {
                            operation: operation.to_owned(),
                            code: field("code").unwrap_or_else(|| state.clone()),
                            message: field("message")
                                .unwrap_or_else(|| format!("the operation ended {state}")),
                            state,
                            request_id: first.request_id(),
                        });
                    }
                    _ => wait = poll_delay(&poll.headers, self.config.poll_interval),
                }
            } else if let Some(url) = &location {
                let poll = self.poll(url, first, operation, cx).await?;
                match poll.status {
                    202 => {
                        (cx.progress)(format!("{label}… {elapsed} s"));
                        wait = poll_delay(&poll.headers, self.config.poll_interval);
                    }
                    200..=299 => return Ok(poll),
                    // A Location URL answers the operation's own error once it has failed.
                    status => {
                        let (code, message) = error::error_fields(status, &poll.body);
                        return Err(ArmError::OperationFailed {
                            operation: operation.to_owned(),
                            state: "Failed".into(),
                            code,
                            message,
                            request_id: first.request_id(),
                        });
                    }
                }
            }
        }
    }

    /// One poll of an accepted operation. Azure unreachable now does not undo what it accepted:
    /// that is an unknown outcome, not a refusal.
    async fn poll(
        &self,
        url: &str,
        first: &Exchange,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<Exchange, ArmError> {
        self.send("GET", url, None, None, operation, cx)
            .await
            .map_err(|e| match e {
                ArmError::Unreachable { message, .. } => ArmError::OutcomeUnknown {
                    operation: operation.to_owned(),
                    reason: message,
                    request_id: first.request_id(),
                },
                other => other,
            })
    }

    /// Sleeps, waking early to notice cancellation.
    async fn pause(
        &self,
        wait: Duration,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<(), ArmError> {
        crate::executor::pause(wait, cx)
            .await
            .map_err(|()| ArmError::Cancelled {
                operation: operation.to_owned(),
            })
    }

    /// One request with authentication and retries, through the shared executor.
    async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        action: Option<&str>,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<Exchange, ArmError> {
        let method_value =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| ArmError::BadRequest {
                operation: operation.to_owned(),
                message: format!("bad method {method}"),
            })?;
        let policy = Policy {
            retry: &self.config.retry,
            repeatable: retry::retry_safe(method, action),
            refresh_on_401: true,
        };
        let target = Target {
            service: "ARM",
            operation,
        };
        let outcome = execute(target, policy, cx, async |refresh| {
            let token = self.tokens.token(refresh).await?;
            let mut builder = self
                .http
                .request(method_value.clone(), url)
                .bearer_auth(&token);
            if let Some(body) = body {
                builder = builder.json(body);
            } else if matches!(method, "PUT" | "PATCH" | "POST") {
                builder = builder.header("content-length", "0");
            }
            Ok::<_, CredentialError>(builder)
        })
        .await;
        let operation = operation.to_owned();
        match outcome {
            Ok(exchange) => Ok(Exchange {
                status: exchange.status,
                headers: exchange.headers,
                body: String::from_utf8_lossy(&exchange.body).into_owned(),
            }),
            Err(Failure::Build(e)) => Err(e.into()),
            Err(Failure::Cancelled) => Err(ArmError::Cancelled { operation }),
            Err(Failure::Deadline { state }) => Err(ArmError::Timeout {
                operation,
                secs: cx.remaining().as_secs(),
                state,
            }),
            Err(Failure::Local(message)) => Err(ArmError::BadRequest { operation, message }),
            Err(Failure::Unreachable {
                attempts, message, ..
            }) => Err(ArmError::Unreachable {
                operation,
                attempts,
                message,
            }),
        }
    }
}

/// Whether a provisioning state or operation status is final.
fn is_terminal(state: &str) -> bool {
    matches!(state, "Succeeded" | "Failed" | "Canceled" | "Cancelled")
}

/// How long to wait before the next poll: the server's hint, or the default when it gives
/// none (or `Retry-After: 0`, which would make a busy loop).
fn poll_delay(headers: &HeaderMap, default: Duration) -> Duration {
    retry::server_delay(headers)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// `managedClusters/c/agentPools/gpu` rather than the whole path, for messages.
fn short(path: &str) -> String {
    match path.find("/providers/") {
        Some(i) => {
            let tail = &path[i + "/providers/".len()..];
            tail.split_once('/')
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_else(|| tail.to_owned())
        }
        None => path.to_owned(),
    }
}
