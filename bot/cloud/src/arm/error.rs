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
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    ArmError::Azure {
        operation: operation.to_owned(),
        status,
        code: field("code").unwrap_or_else(|| format!("HTTP{status}")),
        message: field("message").unwrap_or_else(|| body.chars().take(300).collect()),
        request_id,
    }
}
