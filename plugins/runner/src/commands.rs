//! The `/jobs` and `/runner` commands, declared once: each struct is a manifest entry and the
//! type its handler receives (`#[derive(Command)]`, see the SDK).

use deckhand_plugin_sdk::Command;

/// StudioML job queues: waiting, in progress, consumers, ack rate, time to drain
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Jobs {
    /// Only this project's queues (rmq_<project>_<experiment>)
    #[option(autocomplete)]
    pub project: Option<String>,
}

/// studio-go-runner on the GPU pool
#[derive(Command, Debug)]
#[command(name = "runner")]
pub enum RunnerCommand {
    Deploy(Deploy),
    Scale(Scale),
    Status(Status),
    Watch(Watch),
    Guard(Guard),
}

/// Deploy or update the runner: ConfigMap studioml-env and a GPU Deployment (server-side apply)
#[derive(Command, Debug)]
#[command(timeout_secs = 300)]
pub struct Deploy {
    /// GPU node pool (default: the configured one)
    #[option(rule = AgentPool)]
    pub pool: Option<String>,
    /// Runner pods (default: as deployed now, else 1)
    pub replicas: Option<i64>,
    /// Image REGISTRY/REPOSITORY:TAG (default: the configured one)
    pub image: Option<String>,
    /// GPUs per runner pod
    #[option(default = 1)]
    pub gpus: i64,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Set the number of runner pods
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Scale {
    /// Runner pods (0 stops them all)
    #[option(positional)]
    pub replicas: i64,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Runner pods: their nodes, GPUs allocated, restarts, image
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Status {
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Check the job queues and post job status notifications (run it from a schedule)
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Watch {
    /// AKS cluster whose GPU pool runs the jobs (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Is work in flight on the GPU pool? Fails with "deferred: …" when it is (for schedules)
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Guard {
    /// GPU node pool (default: the configured one)
    #[option(rule = AgentPool)]
    pub pool: Option<String>,
    /// AKS cluster (default: the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}
