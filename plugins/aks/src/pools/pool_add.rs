//! `/aks pool add`, `/aks pool delete`, and the VM sizes offered while typing `--vm-size`.

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, PluginError, Reply};
use deckhand_plugin_shared::azure::ArmPath;
use deckhand_plugin_shared::azure::{AgentPool, AgentPoolProperties, gpus_per_node};
use deckhand_plugin_shared::names::check_pool_name;
use deckhand_plugin_shared::placement::{GPU_TAINT_KEY, default_taints};
use serde_json::{Map, Value};

use super::commands::{PoolAdd, PoolDelete};
use super::outcome::{PoolWrite, budget_note};
use super::{Pools, arm_get, arm_wait, bad_input, cloud_error, list, names_of, parse};

/// Sizes offered when Azure's size list cannot be read: common general-purpose sizes and the
/// GPU sizes Deckhand knows.
const KNOWN_SIZES: &[&str] = &[
    "Standard_B2s",
    "Standard_D2s_v3",
    "Standard_D4s_v3",
    "Standard_D8s_v3",
    "Standard_D2s_v5",
    "Standard_D4s_v5",
    "Standard_D8s_v5",
    "Standard_D16s_v5",
    "Standard_E4s_v3",
    "Standard_E8s_v3",
    "Standard_F8s_v2",
    "Standard_NC6s_v3",
    "Standard_NC12s_v3",
    "Standard_NC24s_v3",
    "Standard_NC4as_T4_v3",
    "Standard_NC8as_T4_v3",
    "Standard_NC24ads_A100_v4",
    "Standard_ND96asr_v4",
];

/// api-version of `Microsoft.Compute/locations/{location}/vmSizes`.
const COMPUTE_API: &str = "2024-07-01";

/// VM sizes for autocomplete: Azure's list for the cluster's region; if that cannot be read,
/// the sizes the cluster's pools use and a known list.
/// `/providers/Microsoft.Compute/locations/{location}/vmSizes`.
fn vm_sizes_path(location: &str) -> Result<String, deckhand_plugin_shared::azure::ArmPathError> {
    Ok(ArmPath::subscription_provider("Microsoft.Compute")?
        .resource("locations", location)?
        .collection("vmSizes")?
        .to_string())
}

pub(crate) fn vm_sizes(pools: &Pools, ctx: &Ctx, cluster: Option<&str>) -> Vec<String> {
    let Ok(target) = pools.target(ctx, cluster) else {
        return KNOWN_SIZES.iter().map(|s| (*s).to_owned()).collect();
    };
    let cluster = pools.get_cluster(ctx, &target).ok();
    // A location Azure reported that cannot be an address falls back to the built-in list.
    let sizes_path = cluster
        .as_ref()
        .and_then(|c| c.location.as_deref())
        .and_then(|location| vm_sizes_path(location).ok());
    if let Some(path) = sizes_path {
        let listed = ctx.arm(ArmRequest {
            method: "GET".into(),
            path,
            api_version: COMPUTE_API.into(),
            body: None,
            wait: false,
            label: None,
        });
        if let Ok(listed) = listed {
            let names: Vec<String> = listed.body["value"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect();
            if !names.is_empty() {
                return names;
            }
        }
    }
    let mut names: Vec<String> = cluster
        .iter()
        .flat_map(|c| c.properties.agent_pool_profiles.iter())
        .filter_map(|p| p.vm_size.clone())
        .collect();
    names.extend(KNOWN_SIZES.iter().map(|s| (*s).to_owned()));
    names
}

/// `k=v,k2=v2` → node labels, each checked against Kubernetes' label rules.
pub(crate) fn parse_labels(text: &str) -> Result<Map<String, Value>, PluginError> {
    let mut labels = Map::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(bad_input(
                "labels",
                format!("label {item:?} is not key=value (write --labels team=ml,tier=gpu)"),
            ));
        };
        check_label_key(key.trim()).map_err(|e| bad_input("labels", e))?;
        check_label_value(value.trim()).map_err(|e| bad_input("labels", e))?;
        labels.insert(key.trim().to_owned(), Value::from(value.trim()));
    }
    Ok(labels)
}

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `k=v:NoSchedule,k2:NoExecute` → AKS node taints, checked.
pub(crate) fn parse_taints(text: &str) -> Result<Vec<String>, PluginError> {
    let mut taints = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rule = || {
            format!(
                "taint {item:?} is not key=value:Effect or key:Effect with Effect one of {}",
                TAINT_EFFECTS.join(", ")
            )
        };
        let Some((kv, effect)) = item.rsplit_once(':') else {
            return Err(bad_input("taints", rule()));
        };
        if !TAINT_EFFECTS.contains(&effect) {
            return Err(bad_input("taints", rule()));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        check_label_key(key).map_err(|e| bad_input("taints", format!("taint {item:?}: {e}")))?;
        check_label_value(value)
            .map_err(|e| bad_input("taints", format!("taint {item:?}: {e}")))?;
        taints.push(item.to_owned());
    }
    Ok(taints)
}

fn name_part_ok(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Kubernetes label keys: `[prefix/]name`, name 1-63 of alphanumerics, `-`, `_`, `.` starting
/// and ending alphanumeric; prefix a DNS subdomain.
fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if prefix_ok && name_part_ok(name) {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a valid Kubernetes label key: [prefix/]name, name 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || name_part_ok(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid Kubernetes label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// What `/aks pool add` will ask Azure for, checked before anything is sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewPool {
    pub name: String,
    pub properties: AgentPoolProperties,
}

/// Validates the options of `/aks pool add` into a pool definition (no I/O).
pub(crate) fn plan(args: &PoolAdd) -> Result<NewPool, PluginError> {
    let name = args.name.clone();
    check_pool_name(&name).map_err(|e| bad_input("name", e))?;
    let size = args.vm_size.trim().to_owned();
    if size.is_empty() {
        return Err(bad_input(
            "vm-size",
            "--vm-size is required (e.g. Standard_D4s_v3)",
        ));
    }
    let gpus = gpus_per_node(&size);
    let wants_gpu = args.gpu || name.starts_with("gpu");
    if wants_gpu && gpus == 0 {
        let why = if args.gpu {
            "--gpu was given".to_owned()
        } else {
            format!("its name {name:?} starts with \"gpu\"")
        };
        return Err(bad_input(
            "vm-size",
            format!(
                "pool {name} is meant for GPUs ({why}) but {size} has no GPU: choose a GPU size (NC, ND or NV family, e.g. Standard_NC6s_v3), or give the pool another name"
            ),
        ));
    }
    let count = args.count;
    if count < 0 {
        return Err(bad_input(
            "count",
            format!("--count is a number of nodes: 0 or more, not {count}"),
        ));
    }
    if count > 1000 {
        return Err(bad_input(
            "count",
            format!("--count {count} is more than the 1000 nodes an AKS pool can hold"),
        ));
    }
    let mode = args.mode.clone();
    let system = mode == "System";
    let spot = args.spot;
    if system && spot {
        return Err(bad_input(
            "spot",
            "a System pool cannot use Spot VMs (AKS rule: Spot nodes may be evicted at any time); use --mode User",
        ));
    }
    if system && count == 0 {
        return Err(bad_input(
            "count",
            "a System pool needs at least 1 node (AKS rule)",
        ));
    }
    let autoscale = match (args.min, args.max) {
        (None, None) => None,
        (Some(_), None) => return Err(bad_input("max", "--min needs --max too")),
        (None, Some(_)) => return Err(bad_input("min", "--max needs --min too")),
        (Some(min), Some(max)) => {
            if min < 0 || min < i64::from(system) {
                return Err(bad_input(
                    "min",
                    format!(
                        "--min must be {} or more{}",
                        i64::from(system),
                        if system { " for a System pool" } else { "" }
                    ),
                ));
            }
            if max < min || max > 1000 {
                return Err(bad_input(
                    "max",
                    format!("--max must be between --min ({min}) and 1000, not {max}"),
                ));
            }
            if count < min || count > max {
                return Err(bad_input(
                    "count",
                    format!("--count {count} must lie between --min {min} and --max {max}"),
                ));
            }
            Some((min, max))
        }
    };
    let labels = match &args.labels {
        Some(text) => parse_labels(text)?,
        None => Map::new(),
    };
    let mut taints = match &args.taints {
        Some(text) => parse_taints(text)?,
        None => Vec::new(),
    };
    if gpus > 0 && !args.no_gpu_taint {
        for taint in default_taints(&size) {
            if !taints.iter().any(|t| t.starts_with(GPU_TAINT_KEY)) {
                taints.push(taint);
            }
        }
    }
    let mut properties = AgentPoolProperties {
        count: Some(count),
        vm_size: Some(size),
        mode: Some(mode),
        enable_auto_scaling: Some(autoscale.is_some()),
        min_count: autoscale.map(|(min, _)| min),
        max_count: autoscale.map(|(_, max)| max),
        node_labels: (!labels.is_empty()).then_some(labels),
        node_taints: (!taints.is_empty()).then_some(taints),
        ..Default::default()
    };
    properties
        .extra
        .insert("osType".into(), Value::from("Linux"));
    properties
        .extra
        .insert("type".into(), Value::from("VirtualMachineScaleSets"));
    if spot {
        properties.scale_set_priority = Some("Spot".into());
        properties.scale_set_eviction_policy = Some("Delete".into());
        properties.spot_max_price = Some(-1.0);
    }
    Ok(NewPool { name, properties })
}

pub(crate) fn add(pools: &Pools, ctx: &Ctx, args: &PoolAdd) -> Result<Reply, PluginError> {
    let new = plan(args)?;
    let target = pools.target(ctx, args.cluster.as_deref())?;
    let cluster = &target.cluster;
    let name = &new.name;
    match arm_get(ctx, &target.pool_path(name)?) {
        Ok(existing) => {
            let existing: AgentPool = parse(existing, "the pool")?;
            let p = &existing.properties;
            return Err(bad_input(
                "name",
                format!(
                    "pool {name} already exists in {cluster} ({} × {}); change its size with /aks scale --pool {name}",
                    p.count.unwrap_or(0),
                    p.vm_size.as_deref().unwrap_or("?")
                ),
            ));
        }
        // The pool is missing, as it should be: make sure the cluster is there.
        Err(e) if super::error::missing(&e) == Some(super::error::Missing::Resource) => {
            pools.get_cluster(ctx, &target)?;
        }
        // Anything else (the cluster, resource group or subscription missing, a refusal) is
        // said with Azure's code.
        Err(e) => return Err(pools.missing_pool(ctx, &target, name, "name", e)),
    }
    let p = &new.properties;
    let size = p.vm_size.clone().unwrap_or_default();
    let count = p.count.unwrap_or(0);
    let body = serde_json::json!({ "properties": p });
    let response = arm_wait(
        ctx,
        "PUT",
        &target.pool_path(name)?,
        Some(body),
        format!("Creating pool {name} ({count} × {size}) in {cluster}"),
    )
    .map_err(|e| cloud_error(e, &format!("creating pool {name} in {cluster}")))?;
    let written = PoolWrite::from_response(response)?;
    let Some(done) = &written.pool else {
        return Ok(Reply::text(format!(
            "✓ Pool {name} created in {cluster} ({count} × {size} asked).{}{}",
            written.unread_note(),
            written.budget_note()
        )));
    };
    let differences = differences(&new.properties, &done.properties);
    let d = &done.properties;
    let mut notes = Vec::new();
    let gpus = gpus_per_node(&size);
    if gpus > 0 {
        notes.push(format!("{gpus} GPU/node"));
    }
    if d.scale_set_priority.as_deref() == Some("Spot") {
        notes.push("Spot".into());
    }
    if d.enable_auto_scaling == Some(true) {
        notes.push(format!(
            "autoscale {}..{}",
            d.min_count.unwrap_or(0),
            d.max_count.unwrap_or(0)
        ));
    }
    if let Some(taints) = d.node_taints.as_ref().filter(|t| !t.is_empty()) {
        notes.push(format!("taints {}", taints.join(", ")));
    }
    if let Some(labels) = d.node_labels.as_ref().filter(|l| !l.is_empty()) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        notes.push(format!("labels {}", labels.join(", ")));
    }
    let kube = match list::ready_by_pool(ctx, &target) {
        Ok(by_pool) => {
            let (seen, ready) = by_pool.get(name.as_str()).copied().unwrap_or((0, 0));
            format!(" Kubernetes: {ready}/{seen} nodes Ready.")
        }
        Err(e) => format!(" (Kubernetes nodes not readable: {e})"),
    };
    let gpu_hint = if gpus > 0 {
        " GPU pods need the nvidia.com/gpu toleration and the NVIDIA device plugin (check with /aks gpu)."
    } else {
        ""
    };
    let size = d.vm_size.as_deref().unwrap_or("?");
    let differs = if differences.is_empty() {
        String::new()
    } else {
        format!(
            " Azure reports it differently from what was asked: {}.",
            differences.join("; ")
        )
    };
    Ok(Reply::text(format!(
        "✓ Pool {name} created in {cluster}: {} × {size}{}.{differs}{kube}{gpu_hint}{}",
        d.count.unwrap_or(0),
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        },
        written.budget_note()
    )))
}

/// What the pool Azure reports differs in from the one asked for, in words.
fn differences(asked: &AgentPoolProperties, got: &AgentPoolProperties) -> Vec<String> {
    let mut out = Vec::new();
    if asked.count != got.count {
        out.push(format!(
            "{} node(s), not {}",
            got.count.unwrap_or(0),
            asked.count.unwrap_or(0)
        ));
    }
    if asked.vm_size != got.vm_size {
        out.push(format!(
            "VM size {}, not {}",
            got.vm_size.as_deref().unwrap_or("unknown"),
            asked.vm_size.as_deref().unwrap_or("unknown")
        ));
    }
    let bounds = |p: &AgentPoolProperties| {
        (p.enable_auto_scaling == Some(true)).then_some((p.min_count, p.max_count))
    };
    if bounds(asked) != bounds(got) {
        let say = |b: Option<(Option<i64>, Option<i64>)>| match b {
            Some((min, max)) => format!(
                "autoscale {}..{}",
                min.unwrap_or(0),
                max.map_or("?".to_owned(), |m| m.to_string())
            ),
            None => "no autoscaler".to_owned(),
        };
        out.push(format!("{}, not {}", say(bounds(got)), say(bounds(asked))));
    }
    let spot = |p: &AgentPoolProperties| p.scale_set_priority.as_deref() == Some("Spot");
    if spot(asked) != spot(got) {
        out.push(if spot(got) {
            "Spot VMs, not regular ones".to_owned()
        } else {
            "regular VMs, not Spot".to_owned()
        });
    }
    out
}

pub(crate) fn delete(pools: &Pools, ctx: &Ctx, args: &PoolDelete) -> Result<Reply, PluginError> {
    let name = args.name.as_str();
    let target = pools.target(ctx, args.cluster.as_deref())?;
    let cluster = &target.cluster;
    let pool = pools.get_pool(ctx, &target, name, "name")?;
    if pool.properties.mode.as_deref() == Some("System") {
        let all = pools.list_pools(ctx, &target)?;
        let systems: Vec<&AgentPool> = all
            .iter()
            .filter(|p| p.properties.mode.as_deref() == Some("System"))
            .collect();
        if systems.len() <= 1 {
            return Err(bad_input(
                "name",
                format!(
                    "pool {name} is the only System pool of {cluster}: AKS requires at least one System pool (pools: {})",
                    names_of(all.iter().map(|p| p.name.as_str()))
                ),
            ));
        }
    }
    let count = pool.properties.count.unwrap_or(0);
    let deleted = arm_wait(
        ctx,
        "DELETE",
        &target.pool_path(name)?,
        None,
        format!("Deleting pool {name} of {cluster}"),
    )
    .map_err(|e| cloud_error(e, &format!("deleting pool {name} of {cluster}")))?;
    Ok(Reply::text(format!(
        "✓ Pool {name} deleted from {cluster} ({count} node{} removed; pods there are rescheduled elsewhere if they fit).{}",
        if count == 1 { "" } else { "s" },
        budget_note(deleted.remaining_writes)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_sdk::Command;

    /// `/aks pool add` with these options and the manifest's defaults for the others, as the
    /// host passes them.
    fn call(options: Value) -> PoolAdd {
        let mut options = options.as_object().cloned().unwrap();
        for option in PoolAdd::spec().options {
            if let Some(default) = option.default {
                options.entry(option.name).or_insert(default);
            }
        }
        PoolAdd::decode_path(&[], &options).unwrap()
    }

    #[test]
    fn gpu_sizes_get_the_gpu_taint_unless_told_otherwise() {
        let plan = plan(&call(serde_json::json!({
            "name": "gpu2", "vm-size": "Standard_NC6s_v3", "count": 1, "taints": "team=ml:NoSchedule"
        })))
        .unwrap();
        assert_eq!(
            plan.properties.node_taints.unwrap(),
            ["team=ml:NoSchedule", "nvidia.com/gpu=present:NoSchedule"]
        );
        let plan2 = super::plan(&call(serde_json::json!({
            "name": "gpu2", "vm-size": "Standard_NC6s_v3", "no-gpu-taint": true
        })))
        .unwrap();
        assert_eq!(plan2.properties.node_taints, None);
    }

    #[test]
    fn a_gpu_pool_needs_a_gpu_size() {
        let err = plan(&call(
            serde_json::json!({"name": "gpu3", "vm-size": "Standard_D4s_v3"}),
        ))
        .unwrap_err();
        assert_eq!(err.option.as_deref(), Some("vm-size"));
        assert!(
            err.message.contains("starts with \"gpu\""),
            "{}",
            err.message
        );
        let err = plan(&call(
            serde_json::json!({"name": "train", "vm-size": "Standard_D4s_v3", "gpu": true}),
        ))
        .unwrap_err();
        assert!(err.message.contains("--gpu was given"), "{}", err.message);
    }

    #[test]
    fn spot_and_autoscale() {
        let plan = plan(&call(serde_json::json!({
            "name": "spot1", "vm-size": "Standard_D8s_v3", "count": 0, "spot": true, "min": 0, "max": 10,
            "labels": "k8s.dask.org/dedicated=worker"
        })))
        .unwrap();
        let p = plan.properties;
        assert_eq!(p.scale_set_priority.as_deref(), Some("Spot"));
        assert_eq!((p.min_count, p.max_count), (Some(0), Some(10)));
        assert_eq!(p.node_labels.unwrap()["k8s.dask.org/dedicated"], "worker");
    }

    #[test]
    fn bad_labels_and_taints_name_the_rule() {
        assert!(
            parse_labels("a=b,c")
                .unwrap_err()
                .message
                .contains("key=value")
        );
        assert!(
            parse_labels("-x=1")
                .unwrap_err()
                .message
                .contains("label key")
        );
        assert!(
            parse_taints("a=b:Sometimes")
                .unwrap_err()
                .message
                .contains("NoSchedule")
        );
        assert_eq!(parse_taints("a:NoExecute").unwrap(), ["a:NoExecute"]);
        let err = plan(&call(
            serde_json::json!({"name": "Bad_Name", "vm-size": "Standard_D4s_v3"}),
        ))
        .unwrap_err();
        assert_eq!(err.option.as_deref(), Some("name"));
        assert!(err.message.contains("lowercase"), "{}", err.message);
    }
}
