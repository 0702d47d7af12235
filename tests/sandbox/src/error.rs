//! Typed errors: [`SandboxError`] for the library API, [`ArmError`] for Azure-shaped HTTP errors.

use serde_json::{Value, json};

use crate::http::Reply;

/// Errors returned by the sandbox's Rust API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The loopback listener could not be bound.
    #[error("cannot bind the sandbox listener on 127.0.0.1: {source}")]
    Bind {
        /// The I/O error from the OS.
        #[source]
        source: std::io::Error,
    },
    /// A seeding or control step was refused by the modelled cloud (Azure error code and message).
    #[error("sandbox refused {what}: {code}: {message}")]
    Refused {
        /// What was attempted.
        what: String,
        /// Azure-style error code.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// No cluster with that name exists in the sandbox.
    #[error("no managed cluster named {0} in the sandbox")]
    NoSuchCluster(String),
}

/// An Azure Resource Manager error: HTTP status plus `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ArmError {
    /// HTTP status code.
    pub status: u16,
    /// Azure error code, e.g. `ResourceNotFound`.
    pub code: String,
    /// Message as Azure words it.
    pub message: String,
}

impl ArmError {
    /// Builds an error.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// 400 `InvalidParameter` style error.
    pub fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 404 `ResourceNotFound` for a resource of `rtype` (`Microsoft.X/y`) in a group.
    pub fn not_found(rtype: &str, name: &str, rg: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFound",
            format!(
                "The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// 404 `ResourceGroupNotFound`.
    pub fn rg_not_found(rg: &str) -> Self {
        Self::new(
            404,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    /// 409 for a conflicting operation already in progress (AKS wording).
    pub fn in_progress(what: &str) -> Self {
        Self::new(
            409,
            "OperationNotAllowed",
            format!(
                "Operation is not allowed because there's an in progress {what} operation which will cause conflict. Please wait for the operation to complete."
            ),
        )
    }

    /// The JSON body Azure sends.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }

    /// The HTTP reply.
    pub fn reply(&self) -> Reply {
        Reply::json(self.status, self.body())
    }
}

/// Result alias for ARM handlers.
pub type ArmResult<T = Reply> = Result<T, ArmError>;
