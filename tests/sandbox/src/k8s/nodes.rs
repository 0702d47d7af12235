//! Nodes follow the agent pools: named, labelled and tainted as AKS does, with capacity from the
//! VM size; the virtual node exists while the `aciConnectorLinux` addon is enabled.

use serde_json::{Value, json};

use crate::state::{Cluster, Key, Pool, Shared, World};
use crate::vmsizes;

/// Name of the virtual node.
pub const VIRTUAL_NODE: &str = "virtual-node-aci-linux";

/// Node name for instance `i` of a pool.
pub fn node_name(p: &Pool, i: u32) -> String {
    format!("aks-{}-{}-vmss{:06}", p.name, p.node_digits, i)
}

/// The cluster's node resource group (`MC_...`).
pub fn node_rg(c: &Cluster) -> String {
    c.props["nodeResourceGroup"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("MC_{}_{}_{}", c.rg, c.name, c.location))
}

/// True when virtual nodes are on.
pub fn virtual_nodes_enabled(c: &Cluster) -> bool {
    let a = &c.props["addonProfiles"];
    a.as_object().is_some_and(|m| {
        m.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("aciConnectorLinux") && v["enabled"] == json!(true)
        })
    })
}

fn parse_taint(s: &str) -> Option<Value> {
    let (kv, effect) = s.rsplit_once(':')?;
    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
    let mut t = json!({"key": k, "effect": effect});
    if !v.is_empty() {
        t["value"] = json!(v);
    }
    Some(t)
}

/// The Node object for instance `i` of pool `p`.
pub fn pool_node(shared: &Shared, c: &Cluster, p: &Pool, i: u32, ip: u32) -> Value {
    let name = node_name(p, i);
    let vm = vmsizes::lookup(&p.vm_size()).unwrap_or(vmsizes::SIZES[3]);
    let mut labels = json!({
        "agentpool": p.name,
        "kubernetes.azure.com/agentpool": p.name,
        "kubernetes.azure.com/mode": if p.is_system() { "system" } else { "user" },
        "kubernetes.azure.com/role": "agent",
        "kubernetes.azure.com/cluster": node_rg(c),
        "kubernetes.azure.com/node-image-version": p.props["nodeImageVersion"],
        "kubernetes.azure.com/os-sku": "Ubuntu",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/role": "agent",
        "node-role.kubernetes.io/agent": "",
        "node.kubernetes.io/instance-type": vm.name,
        "beta.kubernetes.io/instance-type": vm.name,
        "topology.kubernetes.io/region": c.location.to_ascii_lowercase(),
        "topology.kubernetes.io/zone": "0",
        "storageprofile": "managed",
        "storagetier": "Premium_LRS",
    });
    let mut taints: Vec<Value> = p.props["nodeTaints"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().and_then(parse_taint))
                .collect()
        })
        .unwrap_or_default();
    if p.is_spot() {
        labels["kubernetes.azure.com/scalesetpriority"] = json!("spot");
        taints.push(json!({"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}));
    }
    if vm.gpus > 0 {
        labels["kubernetes.azure.com/accelerator"] = json!("nvidia");
    }
    if let Some(m) = p.props["nodeLabels"].as_object() {
        for (k, v) in m {
            labels[k] = v.clone();
        }
    }
    let mem_ki = vm.memory_gib as u64 * 1024 * 1024;
    let mut capacity = json!({
        "cpu": vm.cpus.to_string(),
        "memory": format!("{mem_ki}Ki"),
        "pods": p.props["maxPods"].as_u64().unwrap_or(110).to_string(),
        "ephemeral-storage": "129886128Ki",
        "hugepages-1Gi": "0", "hugepages-2Mi": "0",
    });
    let mut allocatable = json!({
        "cpu": format!("{}m", vm.cpus * 1000 - 140 * vm.cpus.min(4)),
        "memory": format!("{}Ki", mem_ki * 80 / 100),
        "pods": capacity["pods"],
        "ephemeral-storage": "119703055367",
        "hugepages-1Gi": "0", "hugepages-2Mi": "0",
    });
    if vm.gpus > 0 {
        capacity["nvidia.com/gpu"] = json!(vm.gpus.to_string());
        allocatable["nvidia.com/gpu"] = json!(vm.gpus.to_string());
    }
    let version = p.props["orchestratorVersion"]
        .as_str()
        .unwrap_or(crate::arm::aks::K8S_VERSION);
    let mut spec = json!({
        "providerID": format!(
            "azure:///subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{}-{}-vmss/virtualMachines/{i}",
            shared.opts.subscription_id, node_rg(c).to_ascii_lowercase(), p.name, p.node_digits),
        "podCIDR": format!("10.244.{ip}.0/24"),
        "podCIDRs": [format!("10.244.{ip}.0/24")],
    });
    if !taints.is_empty() {
        spec["taints"] = Value::Array(taints);
    }
    node(
        &name,
        labels,
        spec,
        capacity,
        allocatable,
        &format!("10.224.0.{}", 4 + ip),
        &format!("v{version}"),
        "Ubuntu 22.04.5 LTS",
    )
}

#[allow(clippy::too_many_arguments)]
fn node(
    name: &str,
    labels: Value,
    spec: Value,
    capacity: Value,
    allocatable: Value,
    ip: &str,
    kubelet: &str,
    os: &str,
) -> Value {
    let t = super::store::now();
    let cond = |ty: &str, st: &str, reason: &str, msg: &str| json!({"type": ty, "status": st, "reason": reason, "message": msg, "lastHeartbeatTime": t, "lastTransitionTime": t});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": spec,
        "status": {
            "capacity": capacity, "allocatable": allocatable,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": uuid::Uuid::new_v4().to_string(),
                "containerRuntimeVersion": "containerd://1.7.27-1", "kernelVersion": "5.15.0-1079-azure",
                "kubeProxyVersion": kubelet, "kubeletVersion": kubelet, "machineID": "", "operatingSystem": "linux",
                "osImage": os, "systemUUID": uuid::Uuid::new_v4().to_string()},
        }
    })
}

fn virtual_node(c: &Cluster) -> Value {
    node(
        VIRTUAL_NODE,
        json!({
            "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.azure.com/managed": "false",
            "kubernetes.azure.com/role": "agent",
            "kubernetes.azure.com/cluster": node_rg(c),
            "kubernetes.io/hostname": VIRTUAL_NODE,
            "kubernetes.io/os": "linux",
            "kubernetes.io/role": "agent",
            "node-role.kubernetes.io/agent": "",
            "type": "virtual-kubelet",
        }),
        json!({"taints": [{"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}]}),
        json!({"cpu": "10k", "memory": "4Ti", "pods": "5k"}),
        json!({"cpu": "10k", "memory": "4Ti", "pods": "5k"}),
        "10.241.0.4",
        "v1.25.0-vk-azure-aci-1.6.2",
        "",
    )
}

/// Makes the cluster's Node objects match its agent pools and addon.
pub fn sync(shared: &Shared, w: &mut World, key: &Key) {
    let Some(c) = w.clusters.get(key).cloned() else {
        return;
    };
    let Some(kc) = w.kube.get_mut(&c.kube_id) else {
        return;
    };
    let mut desired: Vec<(String, Value)> = Vec::new();
    if c.power == "Running" {
        let mut ip = 0;
        for p in c.pools.values() {
            let running = p.props["powerState"]["code"].as_str() != Some("Stopped");
            for i in 0..if running { p.count() } else { 0 } {
                desired.push((node_name(p, i), pool_node(shared, &c, p, i, ip)));
                ip += 1;
            }
        }
        if virtual_nodes_enabled(&c) {
            desired.push((VIRTUAL_NODE.into(), virtual_node(&c)));
        }
    }
    let existing: Vec<String> = kc
        .store
        .list("nodes", None)
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    for name in &existing {
        if !desired.iter().any(|(n, _)| n == name) {
            kc.store.delete("nodes", "", name);
        }
    }
    for (name, n) in desired {
        if !existing.contains(&name) {
            kc.store.create("nodes", "", n);
        }
    }
}
