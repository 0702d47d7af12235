//! A Kubernetes API per AKS cluster, served under `/k8s/{cluster-id}/`.

pub mod admission;
pub mod api;
pub mod autoscaler;
pub mod controllers;
pub mod kubelet;
pub mod nodes;
pub mod patch;
pub mod resources;
pub mod scheduler;
pub mod selector;
pub mod store;
pub mod watch;

use serde_json::json;

use crate::state::{Key, Shared, World, key};
use store::Store;

/// One cluster's API state.
#[derive(Debug)]
pub struct KubeCluster {
    /// Id in the URL.
    pub id: String,
    /// The ARM cluster it belongs to.
    pub arm_key: Key,
    /// Bearer token of the user kubeconfig.
    pub user_token: String,
    /// Bearer token of the admin kubeconfig.
    pub admin_token: String,
    /// Objects.
    pub store: Store,
}

/// Creates the API state of a new cluster: system namespaces, the `kubernetes` service, CoreDNS.
pub fn create_cluster(shared: &Shared, w: &mut World, id: &str, arm_key: &Key) {
    let mut st = Store::new(shared.opts.watch_history);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        st.create(
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}),
        );
    }
    st.create("services", "default", json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}}));
    st.create("deployments.apps", "kube-system", json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {"priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                    "containers": [{"name": "coredns", "image": "mcr.microsoft.com/oss/v2/kubernetes/coredns:v1.12.1",
                        "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "500Mi"}}}]}}}}));
    for (name, provisioner, sku, default) in [
        ("default", "disk.csi.azure.com", "StandardSSD_LRS", true),
        (
            "managed-csi",
            "disk.csi.azure.com",
            "StandardSSD_LRS",
            false,
        ),
        (
            "managed-csi-premium",
            "disk.csi.azure.com",
            "Premium_LRS",
            false,
        ),
        ("azurefile-csi", "file.csi.azure.com", "Standard_LRS", false),
        (
            "azurefile-csi-premium",
            "file.csi.azure.com",
            "Premium_LRS",
            false,
        ),
    ] {
        let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists", "kubernetes.io/cluster-service": "true"}},
            "provisioner": provisioner, "parameters": {"skuname": sku}, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true});
        if default {
            sc["metadata"]["annotations"] =
                json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        st.create("storageclasses.storage.k8s.io", "", sc);
    }
    w.kube.insert(
        id.to_string(),
        KubeCluster {
            id: id.to_string(),
            arm_key: arm_key.clone(),
            user_token: format!("sandbox-user-{}", uuid::Uuid::new_v4().simple()),
            admin_token: format!("sandbox-admin-{}", uuid::Uuid::new_v4().simple()),
            store: st,
        },
    );
}

/// Runs the controllers of every cluster.
pub fn reconcile_all(shared: &Shared) {
    let mut w = shared.world();
    let ids: Vec<String> = w.kube.keys().cloned().collect();
    for id in ids {
        controllers::reconcile(shared, &mut w, &id);
    }
}

/// Compacts a cluster's watch history.
pub fn compact(shared: &Shared, rg: &str, cluster: &str) -> Option<()> {
    let mut w = shared.world();
    let id = w.clusters.get(&key(rg, cluster))?.kube_id.clone();
    w.kube.get_mut(&id)?.store.compact();
    Some(())
}
