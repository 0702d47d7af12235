//! The `runner` plugin: studio-go-runner on an AKS GPU pool and its StudioML job queues in
//! RabbitMQ (seeds 001, 002).
//!
//! * `/jobs [--project P]` — per queue `rmq_<project>_<experiment>` bound to `StudioML.topic`:
//!   waiting, in progress (unacked), consumers, ack rate, time to drain;
//! * `/runner deploy|scale|status` — the `studioml-env` ConfigMap and the runner Deployment on
//!   the GPU pool, by server-side apply, after checking the image tag, the pool and the NVIDIA
//!   device plugin;
//! * `/runner watch` — job status notifications (drained, waiting with no runner, GPU pool at
//!   0 while jobs wait, runner pods crash-looping or OOM-killed), never on one stale
//!   management-API sample;
//! * `/runner guard [--pool gpu]` — "idle" or "deferred: N jobs in progress …", for a schedule
//!   about to scale the GPU pool to zero.
//!
//! No I/O of its own: the management API through the host's HTTP service (auth profile
//! `rabbitmq`), exact counts through the host's AMQP service (broker `rabbitmq`), ARM,
//! Kubernetes, the registry, state and notifications through theirs.

mod commands;
mod deploy;
mod guard;
mod jobs;
mod pods;
mod rabbit;
mod watch;

use commands::{Jobs, RunnerCommand};
use deckhand_plugin_sdk::abi::proto::{ArmCapability, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, Command, Ctx, ErrorCode, Host,
    HttpCapability, Manifest, Plugin, PluginError, Reply,
};
use deckhand_plugin_shared::target::ClusterDefaults;
use serde::Deserialize;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Hosts the management API may be on: the manifest is fixed at build time, so these are the
/// places a RabbitMQ for StudioML lives (this machine, a Kubernetes service, an Azure VM's
/// DNS name as seed 002 sets up).
pub const MANAGEMENT_HOSTS: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "*.svc.cluster.local",
    "*.cloudapp.azure.com",
];

/// `[plugins.config.runner]`. Unknown keys are refused, so a typo is reported with its line by
/// `deckhand check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// Resource group of the clusters.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Cluster used when a command has no `--cluster`.
    #[serde(default)]
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    #[serde(default)]
    pub kube_cluster: Option<String>,
    /// RabbitMQ management API (credentials: `[auth_profiles.rabbitmq]`).
    #[serde(default = "default_management_url")]
    pub management_url: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    /// The exchange StudioML publishes jobs through.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// `AMQP_URL` for the runners, WITHOUT user or password (they come from `credentials_secret`).
    #[serde(default)]
    pub amqp_url: Option<String>,
    /// Kubernetes Secret (keys `username`, `password`) the runner Deployment reads the broker
    /// credentials from; created once by the operator, never read by Deckhand.
    #[serde(default = "default_credentials_secret")]
    pub credentials_secret: String,
    /// Image pull secret (seed 002's `studioml-go-docker-key`); none: the cluster pulls with its
    /// AcrPull identity (`/acr attach`).
    #[serde(default)]
    pub pull_secret: Option<String>,
    /// Default image, REGISTRY/REPOSITORY:TAG.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default = "default_pool")]
    pub pool: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_deployment")]
    pub deployment: String,
    /// Channel for job status notifications (else the alert router's default).
    #[serde(default)]
    pub notify_channel: Option<String>,
    /// A condition must hold this long (longer than the management API's lag) before
    /// `/runner watch` reports it.
    #[serde(default = "default_confirm_secs")]
    pub confirm_secs: u64,
    /// Messages waiting with no runner this long are reported as "runners down".
    #[serde(default = "default_stranded_secs")]
    pub stranded_secs: u64,
}

fn default_management_url() -> String {
    "http://127.0.0.1:15672".into()
}
fn default_vhost() -> String {
    "/".into()
}
fn default_exchange() -> String {
    "StudioML.topic".into()
}
fn default_credentials_secret() -> String {
    "studioml-amqp".into()
}
fn default_pool() -> String {
    "gpu".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_deployment() -> String {
    "studioml-go-runner".into()
}
fn default_confirm_secs() -> u64 {
    15
}
fn default_stranded_secs() -> u64 {
    300
}

pub struct Runner {
    clusters: ClusterDefaults,
    endpoint: rabbit::Endpoint,
    settings: deploy::Settings,
    watch: watch::Settings,
}

fn config_error(key: &str, message: String) -> PluginError {
    PluginError::new(
        ErrorCode::Config,
        format!("[plugins.config.runner] {message}"),
    )
    .with_option(key)
}

fn management_endpoint(config: &RunnerConfig) -> Result<rabbit::Endpoint, PluginError> {
    let url = url::Url::parse(&config.management_url).map_err(|e| {
        config_error(
            "management_url",
            format!(
                "management_url {:?} is not a URL: {e}",
                config.management_url
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(config_error(
            "management_url",
            format!(
                "management_url {:?} must be http(s) without credentials (they belong in [auth_profiles.rabbitmq])",
                config.management_url
            ),
        ));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let declared = MANAGEMENT_HOSTS
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == *pattern,
        });
    if !declared {
        return Err(config_error(
            "management_url",
            format!(
                "management_url host {host:?} is not one the plugin may call ({}); reach RabbitMQ by one of those names",
                MANAGEMENT_HOSTS.join(", ")
            ),
        ));
    }
    Ok(rabbit::Endpoint {
        management: url,
        vhost: config.vhost.clone(),
        exchange: config.exchange.clone(),
    })
}

impl Plugin for Runner {
    type Config = RunnerConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "runner".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "studio-go-runner on the GPU pool and StudioML job queues in RabbitMQ"
                .into(),
            commands: vec![Jobs::spec(), RunnerCommand::spec()],
            capabilities: Capabilities {
                http: MANAGEMENT_HOSTS
                    .iter()
                    .map(|host| HttpCapability {
                        host: (*host).into(),
                        auth_profile: Some(rabbit::AUTH_PROFILE.into()),
                    })
                    .collect(),
                amqp: vec![rabbit::BROKER.into()],
                kv: true,
                notify: true,
                arm: vec![ArmCapability {
                    resource_type: "Microsoft.ContainerService/managedClusters/agentPools".into(),
                    actions: strings(&["read"]),
                }],
                kube: vec![
                    KubeCapability {
                        resources: strings(&["deployments", "configmaps"]),
                        verbs: strings(&["get", "list", "apply"]),
                    },
                    KubeCapability {
                        resources: strings(&["deployments/scale"]),
                        verbs: strings(&["get", "patch"]),
                    },
                    KubeCapability {
                        resources: strings(&["pods", "daemonsets"]),
                        verbs: strings(&["list"]),
                    },
                ],
                registries: vec!["*".into()],
                ..Default::default()
            },
        }
    }

    fn init(config: RunnerConfig, _host: &Host) -> Result<Self, PluginError> {
        let endpoint = management_endpoint(&config)?;
        let settings = deploy::Settings::from_config(&config)?;
        Ok(Runner {
            clusters: ClusterDefaults {
                resource_group: config.resource_group,
                default_cluster: config.default_cluster,
                kube_cluster: config.kube_cluster,
            },
            endpoint,
            settings,
            watch: watch::Settings {
                channel: config.notify_channel,
                confirm_secs: config.confirm_secs,
                stranded_secs: config.stranded_secs,
            },
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        if call.command.first().map(String::as_str) == Some("jobs") {
            let args = call.decode::<Jobs>()?;
            if let Some(project) = args.project.as_deref() {
                jobs::check_project(project)?;
            }
            return jobs::run(ctx, &self.endpoint, args.project.as_deref());
        }
        match call.decode::<RunnerCommand>()? {
            RunnerCommand::Deploy(args) => {
                let target = self.target(args.cluster.as_deref())?;
                deploy::deploy(ctx, &self.settings, &target, &args)
            }
            RunnerCommand::Scale(args) => {
                let target = self.target(args.cluster.as_deref())?;
                pods::scale(ctx, &self.settings, &target, args.replicas)
            }
            RunnerCommand::Status(args) => {
                let target = self.target(args.cluster.as_deref())?;
                pods::status(ctx, &self.settings, &target)
            }
            RunnerCommand::Guard(args) => {
                let target = self.target(args.cluster.as_deref())?;
                let pool = args.pool.as_deref().unwrap_or(&self.settings.pool);
                guard::run(ctx, &self.endpoint, &self.settings, &target, pool)
            }
            RunnerCommand::Watch(args) => {
                let target = self.target(args.cluster.as_deref()).ok();
                watch::run(
                    ctx,
                    &self.endpoint,
                    &self.watch,
                    target.as_ref().map(|t| (t, &self.settings)),
                )
            }
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        if query.option != "project" {
            return Ok(Vec::new());
        }
        let mut projects: Vec<String> = self
            .endpoint
            .job_queues(ctx)?
            .iter()
            .filter_map(|q| rabbit::project_of(q).map(|(p, _)| p.to_owned()))
            .filter(|p| p.starts_with(&query.partial))
            .collect();
        projects.dedup();
        Ok(projects
            .into_iter()
            .map(|p| Choice {
                name: p.clone(),
                value: p,
            })
            .collect())
    }
}

impl Runner {
    /// The cluster a command acts on, with its resource group and Kubernetes name.
    fn target(&self, cluster: Option<&str>) -> Result<deploy::Target, PluginError> {
        let cluster = self
            .clusters
            .require_cluster(cluster, "[plugins.config.runner]")?;
        let resource_group = self.clusters.resource_group.clone().ok_or_else(|| {
            PluginError::new(
                ErrorCode::Config,
                "resource_group is not set in [plugins.config.runner]",
            )
        })?;
        Ok(deploy::Target {
            kube: self.clusters.kube_name(&cluster),
            cluster,
            resource_group,
        })
    }
}

deckhand_plugin_sdk::export_plugin!(Runner);

#[cfg(test)]
mod harness_tests;
