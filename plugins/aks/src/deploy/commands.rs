//! `/deploy`, `/undeploy`, `/deployments`, declared once: each struct is a top-level command's
//! manifest entry and the type its handler receives (`#[derive(Command)]`, see the SDK).

use deckhand_plugin_sdk::Command;

/// Deploy or update an instance of an app described in config/apps
#[derive(Command, Debug)]
#[command(
    name = "deploy",
    permission = "deploy.apply",
    timeout_secs = 1800,
    idempotent
)]
pub struct DeployApp {
    /// App (config/apps/APP.toml)
    #[option(positional, autocomplete, rule = KubeLabel)]
    pub app: String,
    /// Instance name, e.g. the model (mpt)
    #[option(positional, rule = KubeLabel)]
    pub instance: String,
    /// Replicas of the app's scalable component (workers)
    pub replicas: Option<i64>,
    /// Run the components marked virtual on the virtual node (ACI)
    #[option(name = "virtual")]
    pub on_virtual: bool,
    /// Image tag (default: the app's)
    #[option(rule = ImageTag)]
    pub tag: Option<String>,
    /// AKS cluster (default: the app's, else the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// Delete everything /deploy made for an instance
#[derive(Command, Debug)]
#[command(permission = "deploy.delete", destructive, timeout_secs = 300)]
pub struct Undeploy {
    /// App
    #[option(positional, autocomplete, rule = KubeLabel)]
    pub app: String,
    /// Instance
    #[option(positional, autocomplete, rule = KubeLabel)]
    pub instance: String,
    /// AKS cluster (default: the app's, else the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}

/// App instances deployed by Deckhand, with readiness
#[derive(Command, Debug)]
#[command(permission = "deploy.list")]
pub struct Deployments {
    /// Only this app
    #[option(positional, autocomplete, rule = KubeLabel)]
    pub app: Option<String>,
    /// AKS cluster (default: the app's, else the configured one)
    #[option(rule = AksCluster)]
    pub cluster: Option<String>,
}
