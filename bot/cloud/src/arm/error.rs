//! ARM failures, carrying what a person needs to act: Azure's code and message, the status,
//! and the request id to quote to support.

use deckhand_plugin_abi::proto::HostError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    #[error("{0}")]
    Credential(#[from] super::super::credential::CredentialError),
    /// Azure answered with an error body (or a failed long-running operation).
    #[error("Azure refused {operation}: {code}: {message} (HTTP {status}{})", request_id.as_deref().map(|id| format!(", request id {id}")).unwrap_or_default())]
    Azure {
        operation: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// Azure accepted the request, then its long-running operation ended Failed or Canceled.
    #[error("Azure accepted {operation}, but the operation failed while running: {code}: {message} (operation {state}{})", request_id.as_deref().map(|id| format!(", request id {id}")).unwrap_or_default())]
    OperationFailed {
        operation: String,
        state: String,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// Azure accepted the request, but how its operation went could not be read.
    #[error("Azure accepted {operation}, but its progress could not be read ({reason}); it may still finish, so check the resource before trying again{}", request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    OutcomeUnknown {
        operation: String,
        reason: String,
        request_id: Option<String>,
    },
    #[error(
        "{operation} did not finish within {secs} s (still {state}); check the resource in the portal or run the command again later"
    )]
    Timeout {
        operation: String,
        secs: u64,
        state: String,
    },
    #[error(
        "cannot reach Azure Resource Manager for {operation} after {attempts} attempts: {message}"
    )]
    Unreachable {
        operation: String,
        attempts: u32,
        message: String,
    },
    /// Azure answered, but not with what the typed client expects.
    #[error("Azure's answer to {operation} could not be read: {message}{}", request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Unreadable {
        operation: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("bad request for {operation}: {message}")]
    BadRequest { operation: String, message: String },
    #[error("{operation} was cancelled")]
    Cancelled { operation: String },
}

impl From<ArmError> for HostError {
    fn from(error: ArmError) -> HostError {
        let message = error.to_string();
        match error {
            ArmError::Azure {
                status,
                code,
                request_id,
                ..
            } => HostError {
                code: "azure".into(),
                message,
                upstream_code: Some(code),
                request_id,
                status: Some(status),
            },
            ArmError::OperationFailed {
                code, request_id, ..
            } => HostError {
                upstream_code: Some(code),
                request_id,
                ..HostError::new("operation_failed", message)
            },
            ArmError::OutcomeUnknown { request_id, .. } => HostError {
                request_id,
                ..HostError::new("outcome_unknown", message)
            },
            ArmError::Unreadable { request_id, .. } => HostError {
                request_id,
                ..HostError::new("bad_response", message)
            },
            ArmError::Credential(_) => HostError::new("auth", message),
            ArmError::Timeout { .. } => HostError::new("timeout", message),
            ArmError::Unreachable { .. } => HostError::new("unavailable", message),
            ArmError::BadRequest { .. } => HostError::new("bad_request", message),
            ArmError::Cancelled { .. } => HostError::new("cancelled", message),
        }
    }
}

/// Reads Azure's error shape `{"error": {"code", "message"}}`; falls back to the raw text.
pub fn azure_error(
    operation: &str,
    status: u16,
    body: &str,
    request_id: Option<String>,
) -> ArmError {
    let (code, message) = error_fields(status, body);
    ArmError::Azure {
        operation: operation.to_owned(),
        status,
        code,
        message,
        request_id,
    }
}

/// Azure's `(code, message)` from an error body, else `HTTP{status}` and the start of the text.
pub fn error_fields(status: u16, body: &str) -> (String, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    (
        field("code").unwrap_or_else(|| format!("HTTP{status}")),
        field("message").unwrap_or_else(|| body.chars().take(300).collect()),
    )
}
