//! The `/aks` commands, declared once: each struct is a subcommand's manifest entry and the
//! type its handler receives (`#[derive(Command)]`, see the SDK). Long-running commands get
//! 1800 s (Azure operations take up to ~15 minutes), reads 120 s.

use deckhand_plugin_sdk::Command;

/// AKS clusters and node pools
#[derive(Command, Debug)]
#[command(name = "aks")]
pub enum AksCommand {
    Clusters(Clusters),
    Pools(ListPools),
    Scale(Scale),
    ScaleDown(ScaleDown),
    Autoscale(Autoscale),
    Pool(PoolCommand),
    Start(Start),
    Stop(Stop),
    Nodes(Nodes),
    Gpu(Gpu),
}

/// Clusters: state, Kubernetes version, power state, pools
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Clusters {}

/// Node pools: size, nodes, autoscaler, mode, priority, GPUs, Ready nodes
#[derive(Command, Debug)]
#[command(name = "pools", timeout_secs = 120)]
pub struct ListPools {
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Set a pool's node count (growing only; shrinking is /aks scale-down)
#[derive(Command, Debug)]
#[command(permission = "aks.scale", timeout_secs = 1800, idempotent)]
pub struct Scale {
    /// Node pool
    #[option(autocomplete, rule = AgentPool)]
    pub pool: String,
    /// Number of nodes
    pub count: i64,
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Reduce a pool's node count (asks for confirmation)
#[derive(Command, Debug)]
#[command(permission = "aks.scale", timeout_secs = 1800, destructive, idempotent)]
pub struct ScaleDown {
    /// Node pool
    #[option(autocomplete, rule = AgentPool)]
    pub pool: String,
    /// Number of nodes
    pub count: i64,
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

impl From<ScaleDown> for Scale {
    fn from(down: ScaleDown) -> Scale {
        Scale {
            pool: down.pool,
            count: down.count,
            cluster: down.cluster,
        }
    }
}

/// Set a pool's autoscaler bounds, or turn it off
#[derive(Command, Debug)]
#[command(timeout_secs = 1800)]
pub struct Autoscale {
    /// Node pool
    #[option(autocomplete, rule = AgentPool)]
    pub pool: String,
    /// Fewest nodes
    pub min: Option<i64>,
    /// Most nodes
    pub max: Option<i64>,
    /// Turn the autoscaler off (keeps the count)
    pub off: bool,
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Add or delete node pools
#[derive(Command, Debug)]
#[command(name = "pool")]
pub enum PoolCommand {
    Add(PoolAdd),
    Delete(PoolDelete),
}

/// Add a node pool
#[derive(Command, Debug, Clone)]
#[command(name = "add", timeout_secs = 1800)]
pub struct PoolAdd {
    /// Pool name (1-12 lowercase letters and digits)
    #[option(rule = AgentPool)]
    pub name: String,
    /// VM size
    #[option(autocomplete, rule = VmSize)]
    pub vm_size: String,
    /// Number of nodes
    #[option(default = 1)]
    pub count: i64,
    /// Spot VMs (cheaper, may be evicted)
    pub spot: bool,
    /// Autoscaler: fewest nodes
    pub min: Option<i64>,
    /// Autoscaler: most nodes
    pub max: Option<i64>,
    /// Node labels k=v,k2=v2
    #[option(rule = Labels)]
    pub labels: Option<String>,
    /// Node taints k=v:NoSchedule,...
    #[option(rule = Taints)]
    pub taints: Option<String>,
    /// The pool is for GPU work (its VM size must have GPUs)
    pub gpu: bool,
    /// Do not taint GPU nodes with nvidia.com/gpu
    pub no_gpu_taint: bool,
    /// Pool mode
    #[option(choices(User, System), default = "User")]
    pub mode: String,
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Delete a node pool and its nodes
#[derive(Command, Debug)]
#[command(name = "delete", destructive, timeout_secs = 1800)]
pub struct PoolDelete {
    /// Node pool
    #[option(autocomplete, rule = AgentPool)]
    pub name: String,
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Start a stopped cluster
#[derive(Command, Debug)]
#[command(timeout_secs = 1800)]
pub struct Start {
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Stop a cluster: all nodes go away until /aks start
#[derive(Command, Debug)]
#[command(destructive, timeout_secs = 1800)]
pub struct Stop {
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Kubernetes nodes: pool, size, readiness, GPUs, pods
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Nodes {
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
    /// Only this pool
    #[option(autocomplete, rule = AgentPool)]
    pub pool: Option<String>,
}

/// GPU capacity against GPU requests, and the NVIDIA device plugin
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Gpu {
    /// AKS cluster (default: the configured default cluster)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}
