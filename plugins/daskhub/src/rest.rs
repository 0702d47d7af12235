//! JSON calls to JupyterHub's and Dask Gateway's REST APIs through the host's HTTP service,
//! signed by the endpoint's auth profile. Failures name the service and its URL, and say what
//! to fix: an unreachable service, a refused token (401/403), any other status with the
//! service's own message.

use deckhand_plugin_sdk::abi::proto::HttpRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, PluginError};
use serde_json::Value;

use crate::config::Api;

/// `base` joined with path segments, each encoded (a name never changes the path).
pub fn url(api: &Api, segments: &[&str], query: &[(&str, &str)]) -> Result<url::Url, PluginError> {
    let mut url = api.base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            PluginError::new(
                ErrorCode::Config,
                format!("{} URL {} cannot take a path", api.what, api.base),
            )
        })?;
        path.pop_if_empty();
        path.extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// The URL without its query, as replies show it.
fn shown(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

fn host_failure(api: &Api, url: &url::Url, error: HostError) -> PluginError {
    let message = match error.code.as_str() {
        "unavailable" => format!(
            "{} at {} is unreachable: {} (is it running, and is {} the right URL in [plugins.config.daskhub]?)",
            api.what,
            shown(url),
            error.message,
            api.base
        ),
        "timeout" => format!(
            "{} at {} did not answer in time: {}",
            api.what,
            shown(url),
            error.message
        ),
        "capability_denied" | "denied" | "auth" => format!(
            "the host refused the call to {} at {}: {} (is auth profile {:?} in [auth_profiles]?)",
            api.what,
            shown(url),
            error.message,
            api.auth_profile
        ),
        _ => format!("{} at {}: {}", api.what, shown(url), error.message),
    };
    PluginError::from_host(error, message)
}

/// The service's own words in an error body (`{"message": ...}` for both services).
fn upstream_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v["message"]
                .as_str()
                .or(v["error"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// One call; answers the status and body of a 2xx, or the error in words.
pub fn call(
    ctx: &Ctx,
    api: &Api,
    method: &str,
    url: &url::Url,
    headers: Vec<(String, String)>,
) -> Result<(u16, String), PluginError> {
    let response = ctx
        .http(HttpRequest {
            method: method.into(),
            url: url.to_string(),
            headers,
            body: None,
            auth_profile: Some(api.auth_profile.clone()),
            timeout_ms: None,
        })
        .map_err(|e| host_failure(api, url, e))?;
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok((status, response.body));
    }
    let said = upstream_message(&response.body);
    // Dask Gateway answers 500 when JupyterHub refuses the token it was given to verify.
    let token_refused = status == 500 && said.contains("JupyterHub API token");
    let (code, message) = match status {
        _ if token_refused => (
            ErrorCode::Denied,
            format!(
                "{} at {} could not verify the token of auth profile {:?} with JupyterHub (HTTP {status}: {said}): check its token in [auth_profiles.{}]",
                api.what,
                shown(url),
                api.auth_profile,
                api.auth_profile
            ),
        ),
        401 | 403 => (
            ErrorCode::Denied,
            format!(
                "{} at {} refused the credentials of auth profile {:?} (HTTP {status}{}): check its token in [auth_profiles.{}]",
                api.what,
                shown(url),
                api.auth_profile,
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                },
                api.auth_profile
            ),
        ),
        404 => (
            ErrorCode::NotFound,
            format!("{} at {} answered 404: {said}", api.what, shown(url)),
        ),
        _ => (
            ErrorCode::Upstream,
            format!(
                "{} at {} answered HTTP {status}: {said}",
                api.what,
                shown(url)
            ),
        ),
    };
    let mut error = PluginError::new(code, message);
    error.status = Some(status);
    Err(error)
}

/// A GET answering JSON.
pub fn get_json(
    ctx: &Ctx,
    api: &Api,
    url: &url::Url,
    headers: Vec<(String, String)>,
) -> Result<Value, PluginError> {
    let (_, body) = call(ctx, api, "GET", url, headers)?;
    serde_json::from_str(&body).map_err(|e| {
        PluginError::new(
            ErrorCode::Upstream,
            format!(
                "{} at {} answered something that is not JSON: {e}",
                api.what,
                shown(url)
            ),
        )
    })
}
