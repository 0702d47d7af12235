//! Mirrors chat silences into Alertmanager (API v2), when `[alerts.alertmanager]` is set, so a
//! silence set from chat also quiets Alertmanager's other receivers.

use chrono::{DateTime, Utc};

use super::config::AlertmanagerApi;
use super::silence::Silence;
use super::{AlertsError, sources};

/// Creates the silence in Alertmanager; answers its `silenceID`.
pub(super) async fn create(
    http: &reqwest::Client,
    api: &AlertmanagerApi,
    silence: &Silence,
    now: DateTime<Utc>,
) -> Result<String, AlertsError> {
    let body = sources::alertmanager::PostableSilence::from_silence(silence, now);
    let url = format!("{}/api/v2/silences", api.url.trim_end_matches('/'));
    let mut request = http.post(&url).json(&body);
    if let Some(token) = &api.bearer_token {
        request = request.bearer_auth(token.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|e| AlertsError::Alertmanager(format!("{url}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(AlertsError::Alertmanager(format!(
            "{url}: HTTP {status}: {}",
            text.trim()
        )));
    }
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| AlertsError::Alertmanager(format!("{url}: unexpected answer: {e}")))?;
    value["silenceID"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AlertsError::Alertmanager(format!("{url}: no silenceID in {text}")))
}

/// Expires an Alertmanager silence early.
pub(super) async fn expire(
    http: &reqwest::Client,
    api: &AlertmanagerApi,
    am_id: &str,
) -> Result<(), AlertsError> {
    let url = format!("{}/api/v2/silence/{am_id}", api.url.trim_end_matches('/'));
    let mut request = http.delete(&url);
    if let Some(token) = &api.bearer_token {
        request = request.bearer_auth(token.expose());
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(AlertsError::Alertmanager(format!(
            "{url}: HTTP {}",
            r.status()
        ))),
        Err(e) => Err(AlertsError::Alertmanager(format!("{url}: {e}"))),
    }
}
