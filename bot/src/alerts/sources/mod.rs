//! Alert sources: each turns its own format into [`super::Alert`]s.

pub mod alertmanager;
pub mod azure_monitor;
pub mod kube_events;
pub mod plugin;

/// Why a webhook body was refused (answered with 400 and counted as `decode`).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported {what} {given:?} (expected {expected})")]
    Unsupported {
        what: &'static str,
        given: String,
        expected: &'static str,
    },
}
