//! The `/vk` commands, declared once: each struct is a subcommand's manifest entry and the
//! type its handler receives (`#[derive(Command)]`, see the SDK).

use deckhand_plugin_sdk::Command;

/// Virtual nodes (ACI)
#[derive(Command, Debug)]
#[command(name = "vk")]
pub enum VkCommand {
    Status(Status),
    Enable(Enable),
    Disable(Disable),
    Logs(Logs),
}

/// Virtual node readiness, capacity, and the ACI container groups of its pods
#[derive(Command, Debug)]
pub struct Status {
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Turn on virtual nodes (the aciConnectorLinux addon)
#[derive(Command, Debug)]
#[command(timeout_secs = 1800)]
pub struct Enable {
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
    /// Subnet for ACI pods (default: the configured one)
    #[option(rule = Subnet)]
    pub subnet: Option<String>,
}

/// Turn off virtual nodes; pods on them stop
#[derive(Command, Debug)]
#[command(destructive, timeout_secs = 1800)]
pub struct Disable {
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
    /// Also delete the link ACI leaves on its subnet, so the subnet and vnet can be deleted
    #[option(name = "cleanup-network")]
    pub cleanup_network: bool,
}

/// Logs of a pod (ACI container logs on the virtual node)
#[derive(Command, Debug)]
pub struct Logs {
    /// Pod name
    #[option(positional, autocomplete, rule = KubeName)]
    pub pod: String,
    /// Namespace (default: search all)
    #[option(rule = KubeLabel)]
    pub namespace: Option<String>,
    /// Container (default: the first)
    #[option(rule = KubeLabel)]
    pub container: Option<String>,
    /// Last N lines
    #[option(default = 50)]
    pub tail: i64,
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
}
