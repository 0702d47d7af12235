//! Azure Monitor action-group webhooks with the common alert schema
//! (`schemaId = azureMonitorCommonAlertSchema`): `data.essentials` carries the id, rule,
//! severity `Sev0`..`Sev4`, `monitorCondition` `Fired`/`Resolved` and the target resource ids.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::DecodeError;
use crate::alerts::alert::{Alert, Severity, Source, Status};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub schema_id: String,
    pub data: Data,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Data {
    pub essentials: Essentials,
    #[serde(default)]
    pub alert_context: Value,
    #[serde(default)]
    pub custom_properties: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Essentials {
    pub alert_id: String,
    #[serde(default)]
    pub alert_rule: String,
    pub severity: String,
    #[serde(default)]
    pub signal_type: Option<String>,
    pub monitor_condition: String,
    #[serde(default)]
    pub monitoring_service: Option<String>,
    #[serde(rename = "alertTargetIDs", default)]
    pub alert_target_ids: Vec<String>,
    #[serde(default)]
    pub configuration_items: Vec<String>,
    #[serde(default)]
    pub fired_date_time: Option<DateTime<Utc>>,
    /// Set on a `Resolved` notification.
    #[serde(default)]
    pub resolved_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// What a resource id says: `/subscriptions/S/resourceGroups/RG/providers/P/T/NAME`.
fn target_labels(id: &str, labels: &mut BTreeMap<String, String>) {
    let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
    let mut i = 0;
    while i + 1 < parts.len() {
        let key = parts[i].to_ascii_lowercase();
        let value = parts[i + 1];
        match key.as_str() {
            "subscriptions" => {
                labels.insert("subscription".into(), value.to_owned());
            }
            "resourcegroups" => {
                labels.insert("resource_group".into(), value.to_owned());
            }
            "managedclusters" => {
                labels.insert("cluster".into(), value.to_owned());
            }
            _ => {}
        }
        // `providers/NAMESPACE` is a pair too, so type/name pairs stay aligned.
        i += 2;
    }
}

pub fn parse(body: &[u8]) -> Result<Alert, DecodeError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if payload.schema_id != "azureMonitorCommonAlertSchema" {
        return Err(DecodeError::Unsupported {
            what: "schemaId",
            given: payload.schema_id,
            expected: "azureMonitorCommonAlertSchema (turn on the common alert schema in the action group)",
        });
    }
    let e = payload.data.essentials;
    let status = match e.monitor_condition.as_str() {
        "Fired" => Status::Firing,
        "Resolved" => Status::Resolved,
        other => {
            return Err(DecodeError::Unsupported {
                what: "monitorCondition",
                given: other.to_owned(),
                expected: "Fired or Resolved",
            });
        }
    };
    let mut labels = BTreeMap::new();
    if let Some(target) = e.alert_target_ids.first() {
        target_labels(target, &mut labels);
        labels.insert("target".into(), target.clone());
    }
    if let Some(item) = e.configuration_items.first() {
        labels.insert("resource".into(), item.clone());
    }
    if let Some(s) = &e.signal_type {
        labels.insert("signal_type".into(), s.clone());
    }
    if let Some(s) = &e.monitoring_service {
        labels.insert("monitoring_service".into(), s.clone());
    }
    labels.insert("azure_severity".into(), e.severity.clone());
    for (k, v) in payload.data.custom_properties.unwrap_or_default() {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        labels.insert(k, text);
    }
    let summary = e
        .description
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{} on {}",
                e.monitor_condition,
                e.configuration_items.join(", ")
            )
        });
    let url = Some(format!(
        "https://portal.azure.com/#blade/Microsoft_Azure_Monitoring/AlertDetailsTemplateBlade/alertId/{}",
        e.alert_id.replace('/', "%2F")
    ));
    Ok(Alert {
        source: Source::AzureMonitor,
        fingerprint: e.alert_id,
        status,
        severity: Severity::parse(&e.severity),
        name: if e.alert_rule.is_empty() {
            "AzureMonitorAlert".into()
        } else {
            e.alert_rule
        },
        summary,
        labels,
        starts_at: e.fired_date_time,
        ends_at: e.resolved_date_time,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"{
      "schemaId": "azureMonitorCommonAlertSchema",
      "data": {
        "essentials": {
          "alertId": "/subscriptions/3f2c/providers/Microsoft.AlertsManagement/alerts/b956",
          "alertRule": "gpu-pool-cpu-high",
          "severity": "Sev1",
          "signalType": "Metric",
          "monitorCondition": "Fired",
          "monitoringService": "Platform",
          "alertTargetIDs": ["/subscriptions/3f2c/resourcegroups/pangeo/providers/microsoft.containerservice/managedclusters/pangeoCluster"],
          "configurationItems": ["pangeoCluster"],
          "originAlertId": "x",
          "firedDateTime": "2026-03-22T13:58:24.3713213Z",
          "description": "",
          "essentialsVersion": "1.0",
          "alertContextVersion": "1.0"
        },
        "alertContext": {"conditionType": "SingleResourceMultipleMetricCriteria"},
        "customProperties": {"team": "ml", "namespace": "dask"}
      }
    }"#;

    #[test]
    fn parses_the_common_schema() {
        let alert = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(alert.severity, Severity::Error);
        assert_eq!(alert.status, Status::Firing);
        assert_eq!(alert.name, "gpu-pool-cpu-high");
        assert_eq!(alert.cluster(), Some("pangeoCluster"));
        assert_eq!(alert.label("resource_group"), Some("pangeo"));
        assert_eq!(alert.label("team"), Some("ml"));
        assert_eq!(alert.namespace(), Some("dask"));
        assert_eq!(alert.summary, "Fired on pangeoCluster");
        let resolved = SAMPLE.replace("\"Fired\"", "\"Resolved\"");
        assert_eq!(parse(resolved.as_bytes()).unwrap().status, Status::Resolved);
        let wrong = SAMPLE.replace(
            "azureMonitorCommonAlertSchema",
            "Microsoft.Insights/activityLogs",
        );
        assert!(parse(wrong.as_bytes()).is_err());
    }
}
