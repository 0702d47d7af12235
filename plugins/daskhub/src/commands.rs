//! The `/daskhub` and `/dask` commands, declared once: each struct is a subcommand's manifest
//! entry and the type its handler receives (`#[derive(Command)]`, see the SDK).

use deckhand_plugin_sdk::Command;

/// DaskHub on AKS: JupyterHub with Dask Gateway
#[derive(Command, Debug)]
#[command(name = "daskhub")]
pub enum DaskhubCommand {
    Status(Status),
    Clusters(Clusters),
    Stop(Stop),
    Deploy(Deploy),
    Workers(Workers),
    Pools(Pools),
}

/// Hub, proxy and gateway pods; JupyterHub users and servers; Dask clusters; the public URL
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Status {
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Dask Gateway clusters with their workers, cores and memory
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Clusters {}

/// Stop a Dask Gateway cluster (its scheduler and workers end)
#[derive(Command, Debug)]
#[command(destructive, timeout_secs = 120)]
pub struct Stop {
    /// Cluster name, as /daskhub clusters shows it
    #[option(positional, autocomplete, rule = DaskCluster)]
    pub cluster: String,
}

/// Install or upgrade the daskhub Helm release (tokens generated into a Kubernetes Secret)
#[derive(Command, Debug)]
#[command(timeout_secs = 1200)]
pub struct Deploy {
    /// Namespace (default: the configured one, dhub)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// Helm release (default: the configured one, dask)
    #[option(rule = KubeLabel)]
    pub release: Option<String>,
    /// Extra values: the name of a [plugins.config.daskhub.values.NAME] table
    #[option(autocomplete)]
    pub values: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Autoscaler bounds of the Dask worker node pool
#[derive(Command, Debug)]
#[command(timeout_secs = 1800)]
pub struct Workers {
    /// Fewest nodes (0 lets the pool empty)
    pub min: i64,
    /// Most nodes
    pub max: i64,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Create the seed's users and workers node pools where they are missing
#[derive(Command, Debug)]
#[command(timeout_secs = 3600)]
pub struct Pools {
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Plain Dask on Kubernetes: scheduler, workers and a notebook
#[derive(Command, Debug)]
#[command(name = "dask")]
pub enum DaskCommand {
    Deploy(DaskDeploy),
    Scale(DaskScale),
    Endpoints(DaskEndpoints),
    Delete(DaskDelete),
}

/// Create or update a Dask scheduler, workers and notebook (ports 8786, 8787, 8888)
#[derive(Command, Debug)]
#[command(name = "deploy", timeout_secs = 300)]
pub struct DaskDeploy {
    /// Name of the deployment, e.g. arl
    #[option(positional, rule = KubeLabel)]
    pub name: String,
    /// Worker replicas
    #[option(default = 1)]
    pub workers: i64,
    /// CPU per worker (Kubernetes quantity)
    #[option(default = "500m")]
    pub worker_cpu: String,
    /// Memory per worker (Kubernetes quantity)
    #[option(default = "512Mi")]
    pub worker_memory: String,
    /// Container image of the three parts
    #[option(default = "arl_img:latest")]
    pub image: String,
    /// Registry pull secret (an existing docker-registry Secret)
    #[option(rule = KubeName)]
    pub pull_secret: Option<String>,
    /// NFS data volume mounted at /arl/data, as SERVER:/PATH
    pub nfs: Option<String>,
    /// Namespace (default: default)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Set the number of Dask workers
#[derive(Command, Debug)]
#[command(name = "scale", timeout_secs = 120)]
pub struct DaskScale {
    /// Name of the deployment
    #[option(positional, rule = KubeLabel)]
    pub name: String,
    /// Worker replicas
    #[option(positional)]
    pub workers: i64,
    /// Namespace (default: default)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Scheduler, dashboard and notebook addresses
#[derive(Command, Debug)]
#[command(name = "endpoints", timeout_secs = 60)]
pub struct DaskEndpoints {
    /// Name of the deployment
    #[option(positional, rule = KubeLabel)]
    pub name: String,
    /// Namespace (default: default)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Delete the scheduler, workers, notebook and their Services
#[derive(Command, Debug)]
#[command(name = "delete", destructive, timeout_secs = 120)]
pub struct DaskDelete {
    /// Name of the deployment
    #[option(positional, rule = KubeLabel)]
    pub name: String,
    /// Namespace (default: default)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}
