//! What the API server does to an object before storing it: server-side defaults (pods,
//! services, ingresses, secrets, PVCs, deployments, statefulsets) and validation (names,
//! selectors matching templates, required containers, Job restart policies, replica counts).

use base64::Engine;
use serde_json::{Value, json};

use super::resources::Res;
use super::selector::LabelSelector;

pub(super) fn valid_name(res: &Res, n: &str) -> bool {
    let label_like = matches!(res.plural, "namespaces" | "services");
    !n.is_empty()
        && n.len() <= if label_like { 63 } else { 253 }
        && n.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label_like)
        })
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Fills server-side defaults on create.
pub(super) fn defaults(res: &Res, obj: &mut Value) {
    match res.plural {
        "pods" => {
            if obj["status"]["phase"].is_null() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
            for (k, v) in [
                ("restartPolicy", json!("Always")),
                ("schedulerName", json!("default-scheduler")),
                ("dnsPolicy", json!("ClusterFirst")),
                ("serviceAccountName", json!("default")),
            ] {
                if obj["spec"].get(k).is_none() {
                    obj["spec"][k] = v;
                }
            }
        }
        "services" => {
            let ty = obj["spec"]["type"]
                .as_str()
                .unwrap_or("ClusterIP")
                .to_string();
            obj["spec"]["type"] = json!(ty);
            if obj["spec"]["clusterIP"].is_null() {
                let ip = format!("10.0.{}.{}", rand_byte(), rand_byte().max(2));
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
            obj["spec"]["sessionAffinity"] = obj["spec"]
                .get("sessionAffinity")
                .cloned()
                .unwrap_or(json!("None"));
            obj["status"] = if ty == "LoadBalancer" {
                json!({"loadBalancer": {"ingress": [{"ip": format!("20.{}.{}.{}", rand_byte(), rand_byte(), rand_byte().max(1)), "ipMode": "VIP"}]}})
            } else {
                json!({"loadBalancer": {}})
            };
        }
        "secrets" => {
            if let Some(m) = obj.get("stringData").and_then(Value::as_object).cloned() {
                for (k, v) in m {
                    obj["data"][&k] = json!(
                        base64::engine::general_purpose::STANDARD
                            .encode(v.as_str().unwrap_or_default())
                    );
                }
                if let Some(o) = obj.as_object_mut() {
                    o.remove("stringData");
                }
            }
            if obj["type"].is_null() {
                obj["type"] = json!("Opaque");
            }
        }
        "ingresses" => {
            // The ingress controller publishes its load balancer address.
            obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": format!("20.{}.{}.{}", rand_byte(), rand_byte(), rand_byte().max(1))}]}});
        }
        "persistentvolumeclaims" => {
            obj["status"] = json!({"phase": "Bound", "accessModes": obj["spec"]["accessModes"], "capacity": {"storage": obj["spec"]["resources"]["requests"]["storage"]}});
            if obj["spec"]["volumeName"].is_null() {
                obj["spec"]["volumeName"] = json!(format!("pvc-{}", uuid::Uuid::new_v4()));
            }
            if obj["spec"]["storageClassName"].is_null() {
                obj["spec"]["storageClassName"] = json!("default");
            }
        }
        "deployments" => {
            if obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            if obj["spec"]["strategy"].is_null() {
                obj["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
            }
            obj["spec"]["revisionHistoryLimit"] = obj["spec"]
                .get("revisionHistoryLimit")
                .cloned()
                .unwrap_or(json!(10));
            obj["spec"]["progressDeadlineSeconds"] = obj["spec"]
                .get("progressDeadlineSeconds")
                .cloned()
                .unwrap_or(json!(600));
        }
        "statefulsets" if obj["spec"]["replicas"].is_null() => {
            obj["spec"]["replicas"] = json!(1);
        }
        _ => {}
    }
}

fn rand_byte() -> u8 {
    use rand::Rng;
    rand::rng().random_range(0..=254)
}

pub(super) fn validate_for(res: &Res, obj: &Value) -> Result<(), String> {
    match res.plural {
        "deployments" | "replicasets" | "statefulsets" | "daemonsets" => {
            let sel = &obj["spec"]["selector"]["matchLabels"];
            let labels = &obj["spec"]["template"]["metadata"]["labels"];
            if !sel.is_object() {
                return Err("spec.selector: Required value".into());
            }
            if !LabelSelector::from_match_labels(sel).matches(labels) {
                return Err("spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into());
            }
            if obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .is_none_or(|c| c.is_empty())
            {
                return Err("spec.template.spec.containers: Required value".into());
            }
        }
        "jobs"
            if !matches!(
                obj["spec"]["template"]["spec"]["restartPolicy"].as_str(),
                Some("Never" | "OnFailure")
            ) =>
        {
            return Err("spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into());
        }
        "pods"
            if obj["spec"]["containers"]
                .as_array()
                .is_none_or(|c| c.is_empty()) =>
        {
            return Err("spec.containers: Required value".into());
        }
        _ => {}
    }
    if obj["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    Ok(())
}
