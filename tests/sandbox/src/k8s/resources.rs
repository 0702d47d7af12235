//! The Kubernetes resource types served, for discovery and routing.

/// One resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Res {
    /// API group ("" for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural name.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced?
    pub namespaced: bool,
    /// Short names.
    pub short: &'static [&'static str],
    /// Subresources (`status`, `scale`, `log`).
    pub subresources: &'static [&'static str],
}

impl Res {
    /// Store key (`deployments.apps`, `pods`).
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn r(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    subresources: &'static [&'static str],
) -> Res {
    rv(
        group,
        "v1",
        plural,
        singular,
        kind,
        namespaced,
        short,
        subresources,
    )
}

#[allow(clippy::too_many_arguments)]
const fn rv(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    subresources: &'static [&'static str],
) -> Res {
    Res {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short,
        subresources,
    }
}

/// Every served resource.
pub const ALL: &[Res] = &[
    r(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &["status"],
    ),
    r("", "nodes", "node", "Node", false, &["no"], &["status"]),
    r("", "pods", "pod", "Pod", true, &["po"], &["status", "log"]),
    r(
        "",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["status"],
    ),
    r(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
    ),
    r("", "secrets", "secret", "Secret", true, &[], &[]),
    r(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
    ),
    r("", "events", "event", "Event", true, &["ev"], &[]),
    r(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &["status"],
    ),
    r(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    r(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    r(
        "apps",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        &["status"],
    ),
    r(
        "apps",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    r(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        &["status"],
    ),
    r(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        &[],
    ),
    r(
        "",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
        &["status"],
    ),
    r(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        &[],
    ),
    r(
        "",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        &["status"],
    ),
    r(
        "",
        "limitranges",
        "limitrange",
        "LimitRange",
        true,
        &["limits"],
        &[],
    ),
    r("batch", "jobs", "job", "Job", true, &[], &["status"]),
    r(
        "batch",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        &["status"],
    ),
    r(
        "networking.k8s.io",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        &[],
        &[],
    ),
    r(
        "networking.k8s.io",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        &[],
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
    ),
    r(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    r(
        "storage.k8s.io",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        &["sc"],
        &[],
    ),
    rv(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        &["status"],
    ),
];

/// Finds a resource by group/version/plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Res> {
    ALL.iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by kind.
pub fn by_kind(kind: &str) -> Option<&'static Res> {
    ALL.iter().find(|r| r.kind == kind)
}

/// API groups (other than core), in discovery order.
pub fn groups() -> Vec<&'static str> {
    let mut g: Vec<&'static str> = Vec::new();
    for r in ALL {
        if !r.group.is_empty() && !g.contains(&r.group) {
            g.push(r.group);
        }
    }
    g
}

/// The version served for a group (one per group).
pub fn version_of(group: &str) -> &'static str {
    ALL.iter()
        .find(|r| r.group == group)
        .map(|r| r.version)
        .unwrap_or("v1")
}
