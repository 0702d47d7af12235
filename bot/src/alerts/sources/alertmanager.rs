//! Prometheus Alertmanager's webhook (`webhook_config`, payload version 4), and the parts of its
//! API v2 Deckhand calls (`POST /api/v2/silences`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DecodeError;
use crate::alerts::alert::{Alert, Severity, Source, Status, fnv1a};
use crate::alerts::silence::Silence;

/// The webhook body, version 4.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// How many alerts Alertmanager left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<PayloadAlert>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

fn status(text: &str) -> Result<Status, DecodeError> {
    match text {
        "firing" => Ok(Status::Firing),
        "resolved" => Ok(Status::Resolved),
        other => Err(DecodeError::Unsupported {
            what: "status",
            given: other.to_owned(),
            expected: "firing or resolved",
        }),
    }
}

/// Parses a webhook body into alerts.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, DecodeError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if payload.version != "4" {
        return Err(DecodeError::Unsupported {
            what: "payload version",
            given: payload.version,
            expected: "\"4\"",
        });
    }
    if payload.truncated_alerts > 0 {
        tracing::warn!(
            group = %payload.group_key,
            truncated = payload.truncated_alerts,
            "Alertmanager truncated this notification (max_alerts)"
        );
    }
    status(&payload.status)?;
    payload.alerts.into_iter().map(convert).collect()
}

fn convert(a: PayloadAlert) -> Result<Alert, DecodeError> {
    let fingerprint = if a.fingerprint.is_empty() {
        let flat: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let parts: Vec<&str> = flat.iter().map(String::as_str).collect();
        format!("{:016x}", fnv1a(&parts))
    } else {
        a.fingerprint
    };
    let name = a
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| "alert".to_owned());
    let summary = ["summary", "description", "message"]
        .iter()
        .find_map(|k| a.annotations.get(*k))
        .cloned()
        .unwrap_or_default();
    Ok(Alert {
        source: Source::Alertmanager,
        fingerprint,
        status: status(&a.status)?,
        severity: a
            .labels
            .get("severity")
            .map_or(Severity::Warning, |s| Severity::parse(s)),
        name,
        summary,
        labels: a.labels,
        starts_at: a.starts_at.filter(|t| t.timestamp() > 0),
        // A firing alert's endsAt is only Alertmanager's expiry guess: keep it for resolved ones.
        ends_at: a
            .ends_at
            .filter(|t| t.timestamp() > 0 && a.status == "resolved"),
        url: Some(a.generator_url).filter(|u| !u.is_empty()),
    })
}

/// A silence as API v2 takes it (`postableSilence`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    pub matchers: Vec<ApiMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl PostableSilence {
    pub fn from_silence(silence: &Silence, now: DateTime<Utc>) -> PostableSilence {
        PostableSilence {
            matchers: silence
                .matchers
                .iter()
                .map(|m| ApiMatcher {
                    name: m.name.clone(),
                    value: m.value.clone(),
                    is_regex: m.is_regex(),
                    is_equal: m.is_equal(),
                })
                .collect(),
            starts_at: now,
            ends_at: silence.ends_at,
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "receiver": "deckhand", "status": "firing",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "GpuNodeDown", "severity": "critical", "cluster": "pangeo"},
        "annotations": {"summary": "GPU node gpu-0 is down"},
        "startsAt": "2026-02-06T13:08:45.828Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1a30ba71cca2921f"
      }, {
        "status": "resolved",
        "labels": {"alertname": "GpuNodeDown", "cluster": "pangeo", "instance": "gpu-1"},
        "annotations": {}, "startsAt": "2026-02-06T13:00:00+02:00",
        "endsAt": "2026-02-06T13:10:00Z", "generatorURL": "", "fingerprint": ""
      }],
      "groupLabels": {"alertname": "GpuNodeDown"},
      "commonLabels": {"alertname": "GpuNodeDown"}, "commonAnnotations": {},
      "externalURL": "http://am:9093", "version": "4",
      "groupKey": "{}:{alertname=\"GpuNodeDown\"}", "truncatedAlerts": 0
    }"#;

    #[test]
    fn parses_a_version_4_payload() {
        let alerts = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert_eq!(alerts[0].summary, "GPU node gpu-0 is down");
        assert_eq!(alerts[0].cluster(), Some("pangeo"));
        assert_eq!(alerts[0].fingerprint, "1a30ba71cca2921f");
        assert_eq!(alerts[1].status, Status::Resolved);
        assert_eq!(alerts[1].fingerprint.len(), 16, "computed from labels");
        assert_eq!(alerts[1].url, None);
        // endsAt is kept for the resolved alert only ("was firing for" uses it).
        assert_eq!(alerts[0].ends_at, None);
        assert_eq!(
            alerts[1].ends_at.map(|t| t.to_rfc3339()),
            Some("2026-02-06T13:10:00+00:00".to_owned())
        );
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        let v3 = SAMPLE.replace(r#""version": "4""#, r#""version": "3""#);
        assert!(matches!(
            parse(v3.as_bytes()),
            Err(DecodeError::Unsupported { .. })
        ));
        assert!(matches!(parse(b"{"), Err(DecodeError::Json(_))));
        assert!(matches!(
            parse(b"{\"version\":\"4\"}"),
            Err(DecodeError::Json(_))
        ));
    }
}
