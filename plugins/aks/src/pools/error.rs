//! How `/aks` failures read: bad input names the option and the rule; Azure's refusals keep
//! Azure's own words (code, message, request id) and add what to do next.

#[cfg(test)]
use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::{HostError, PluginError};

/// Input the command refuses before anything is sent, pointing at the option.
pub(crate) fn bad_input(option: &str, message: impl Into<String>) -> PluginError {
    PluginError::bad_input(option, message)
}

/// A host (ARM or Kubernetes) failure while `doing` something, with a hint for the codes a
/// person can act on.
pub(crate) fn cloud_error(error: HostError, doing: &str) -> PluginError {
    let message = match hint(&error) {
        Some(hint) => format!("{doing}: {}. {hint}", error.message.trim_end_matches('.')),
        None => format!("{doing}: {}", error.message),
    };
    PluginError::from_host(error, message)
}

/// What a 404 from Azure says is missing, by Azure's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The resource asked for (`ResourceNotFound`, `NotFound`, …).
    Resource,
    /// Its parent (`ParentResourceNotFound`: the cluster of a pool).
    Parent,
    ResourceGroup,
    Subscription,
}

/// `None` unless the error is a 404.
pub(crate) fn missing(error: &HostError) -> Option<Missing> {
    if error.status != Some(404) {
        return None;
    }
    Some(match error.upstream_code.as_deref() {
        Some("ParentResourceNotFound") => Missing::Parent,
        Some("ResourceGroupNotFound") => Missing::ResourceGroup,
        Some("SubscriptionNotFound" | "InvalidSubscriptionId") => Missing::Subscription,
        _ => Missing::Resource,
    })
}

fn hint(error: &HostError) -> Option<&'static str> {
    let upstream = error.upstream_code.as_deref().unwrap_or_default();
    let lower = error.message.to_ascii_lowercase();
    match (error.code.as_str(), upstream) {
        (_, "OperationNotAllowed") if lower.contains("in progress") => Some(
            "Another operation is still running on this cluster or pool: wait for it to finish (/aks pools shows each pool's state) and run the command again",
        ),
        (_, "QuotaExceeded") => Some(
            "The subscription's vCPU quota for this VM family is too small: ask for more quota (https://aka.ms/ProdportalCRP) or choose another VM size",
        ),
        (_, "TooManyRequests") | (_, "HTTP429") => {
            Some("Azure is throttling this subscription: try again in a minute")
        }
        (_, "InvalidParameter")
            if lower.contains("system pool")
                || lower.contains("system") && lower.contains("count was 0") =>
        {
            Some(
                "A System pool must keep at least one node: scale a User pool instead, or add another System pool first",
            )
        }
        ("operation_failed", _) => Some(
            "Azure accepted the change but could not carry it out: /aks pools shows the pool's state now; fix the cause above and run the command again",
        ),
        ("timeout" | "outcome_unknown", _) => Some(
            "The operation may still finish in Azure: check /aks pools in a few minutes before trying again",
        ),
        ("unavailable", _) => Some("Azure or the cluster did not answer: try again shortly"),
        ("capability_denied", _) => Some(
            "The aks plugin is not allowed to do this: its manifest does not declare it (a bug to report)",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(code: &str, message: &str) -> HostError {
        HostError {
            code: "azure".into(),
            message: message.into(),
            upstream_code: Some(code.into()),
            request_id: Some("r-1".into()),
            status: Some(409),
        }
    }

    #[test]
    fn conflicts_say_to_wait() {
        let e = cloud_error(
            azure(
                "OperationNotAllowed",
                "Azure refused PUT agentPools/gpu: OperationNotAllowed: Operation is not allowed because there's an in progress scale agent pool operation (HTTP 409, request id r-1)",
            ),
            "scaling pool gpu",
        );
        assert_eq!(e.code, ErrorCode::Upstream);
        assert!(
            e.message.starts_with("scaling pool gpu: Azure refused"),
            "{}",
            e.message
        );
        assert!(e.message.contains("request id r-1"), "{}", e.message);
        assert!(e.message.contains("wait for it to finish"), "{}", e.message);
    }

    #[test]
    fn system_pool_refusal_names_the_rule() {
        let e = cloud_error(
            azure(
                "InvalidParameter",
                "Azure refused PUT: InvalidParameter: agentPoolProfile.count was 0. ... 3) The node is a system pool.",
            ),
            "scaling pool system",
        );
        assert!(
            e.message
                .contains("System pool must keep at least one node"),
            "{}",
            e.message
        );
    }
}
