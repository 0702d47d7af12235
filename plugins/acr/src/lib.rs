//! The `acr` plugin: Azure Container Registry (seeds 000-002).
//!
//! * `/acr registries`, `/acr create NAME` (name checked by `checkNameAvailability` first);
//! * `/acr repos`, `/acr tags REPO` (newest first, digest and age, every page), `/acr delete-tag
//!   REPO:TAG` (destructive) — the data plane through the host's registry service;
//! * `/acr import SOURCE TARGET` (`importImage`, followed to its end with progress);
//! * `/acr build IMAGE --context GIT_URL --arg k=v,…` (ACR Tasks, log streamed to the thread);
//! * `/acr attach|check --cluster C` (AcrPull for the kubelet identity, or a pull secret);
//! * `/acr credentials` (admin user; a reply only the caller sees).
//! * `/acr token create NAME --repos R[,R…]` (a repository-scoped token; its password only for the
//!   caller).
//!
//! No I/O of its own: ARM, the registry, Kubernetes and the run log through host services.

mod access;
mod build;
mod commands;
mod images;
mod manage;
mod near;
mod target;
mod tokens;

use std::time::Duration;

use commands::AcrCommand;
use deckhand_plugin_sdk::abi::proto::{ArmCapability, ArmRequest, HttpCapability, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, Command, Ctx, ErrorCode, Host,
    Manifest, Plugin, PluginError, Reply,
};
use deckhand_plugin_shared::azure::{AKS_API, clusters_address};
use deckhand_plugin_shared::target::ClusterDefaults;

const DEFAULT_POLL_MS: u64 = 2000;

/// `[plugins.config.acr]`. Unknown keys are refused, so a typo is reported with its line by
/// `deckhand check` instead of being ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcrConfig {
    /// Resource group of the registries and clusters (else: the whole subscription).
    pub resource_group: Option<String>,
    /// Registry used when a command has no `--registry` (else: the only one).
    pub registry: Option<String>,
    /// Region of new registries (else: the resource group's).
    pub location: Option<String>,
    /// Cluster used when a command has no `--cluster`.
    pub default_cluster: Option<String>,
    /// `[[kubernetes.clusters]]` name of the default cluster, when it differs from its AKS name.
    pub kube_cluster: Option<String>,
    /// How often a build's status and log are read, in milliseconds (default 2000).
    pub build_poll_ms: Option<u64>,
    /// How long `/acr build` and `/acr run --follow` follow a run before handing it to a
    /// follow-up (default: the command's limit less 5 s).
    pub build_wait_secs: Option<u64>,
    /// Apps of `/deploy` whose images are `APP-INSTANCE` (`simsvc` for `simsvc-mpt`): a build
    /// of one ends with a "Deploy" button running `/deploy APP INSTANCE --tag TAG`.
    #[serde(default)]
    pub deploy_apps: Vec<String>,
}

pub struct Acr {
    config: AcrConfig,
    clusters: ClusterDefaults,
    poll: Duration,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn arm(resource_type: &str, actions: &[&str]) -> ArmCapability {
    ArmCapability {
        resource_type: resource_type.into(),
        actions: strings(actions),
    }
}

impl Plugin for Acr {
    type Config = AcrConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "acr".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Azure Container Registry: registries, tags, import, ACR Tasks builds, cluster pull access".into(),
            commands: vec![AcrCommand::spec()],
            capabilities: Capabilities {
                arm: vec![
                    arm(
                        "Microsoft.ContainerRegistry/registries",
                        &[
                            "read",
                            "write",
                            "importImage",
                            "scheduleRun",
                            "listCredentials",
                            "generateCredentials",
                        ],
                    ),
                    arm(
                        "Microsoft.ContainerRegistry/registries/scopeMaps",
                        &["read", "write"],
                    ),
                    arm("Microsoft.ContainerRegistry/registries/tokens", &["read", "write"]),
                    arm("Microsoft.ContainerRegistry", &["checkNameAvailability"]),
                    arm(
                        "Microsoft.ContainerRegistry/registries/runs",
                        &["read", "listLogSasUrl"],
                    ),
                    arm("Microsoft.Authorization/roleAssignments", &["read", "write"]),
                    arm("Microsoft.ContainerService/managedClusters", &["read"]),
                    arm("Microsoft.Resources/resourceGroups", &["read"]),
                ],
                kube: vec![KubeCapability {
                    resources: strings(&["secrets"]),
                    verbs: strings(&["list"]),
                }],
                registries: strings(&["*"]),
                registry_deletes: strings(&["*"]),
                // Run logs are blobs behind SAS links (the sandbox serves them on loopback).
                http: vec![
                    HttpCapability {
                        host: "*.blob.core.windows.net".into(),
                        auth_profile: None,
                    },
                    HttpCapability {
                        host: "127.0.0.1".into(),
                        auth_profile: None,
                    },
                ],
                ..Default::default()
            },
        }
    }

    fn init(config: AcrConfig, _host: &Host) -> Result<Self, PluginError> {
        let poll = Duration::from_millis(config.build_poll_ms.unwrap_or(DEFAULT_POLL_MS).max(10));
        let clusters = ClusterDefaults {
            resource_group: config.resource_group.clone(),
            default_cluster: config.default_cluster.clone(),
            kube_cluster: config.kube_cluster.clone(),
        };
        Ok(Acr {
            config,
            clusters,
            poll,
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        match call.decode::<AcrCommand>()? {
            AcrCommand::Registries(args) => self.registries(ctx, &args),
            AcrCommand::Create(args) => self.create(ctx, &args),
            AcrCommand::Repos(args) => self.repos(ctx, &args),
            AcrCommand::Tags(args) => self.tags(ctx, &args),
            AcrCommand::DeleteTag(args) => self.delete_tag(ctx, &args),
            AcrCommand::Import(args) => self.import(ctx, &args),
            AcrCommand::Build(args) => {
                self.build(ctx, &args, Duration::from_millis(call.timeout_ms))
            }
            AcrCommand::Run(args) => {
                self.run_status(ctx, &args, Duration::from_millis(call.timeout_ms))
            }
            AcrCommand::Attach(args) => self.attach(ctx, &args),
            AcrCommand::Check(args) => self.check(ctx, &args),
            AcrCommand::Credentials(args) => self.credentials(ctx, &args),
            AcrCommand::Token(commands::TokenCommand::Create(args)) => {
                self.create_token(ctx, &args)
            }
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        if query.option != "cluster" {
            return Ok(Vec::new());
        }
        let path = clusters_address(self.config.resource_group.as_deref())
            .map_err(target::address_error)?;
        let list = ctx.arm(ArmRequest {
            method: "GET".into(),
            path: path.to_string(),
            api_version: AKS_API.into(),
            ..Default::default()
        })?;
        Ok(deckhand_plugin_sdk::choices_starting_with(
            list.body["value"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str()),
            &query.partial,
        ))
    }
}

impl Acr {
    /// The registry an ARM command acts on.
    fn target(&self, ctx: &Ctx, given: Option<&str>) -> Result<target::Target, PluginError> {
        target::pick(
            ctx,
            given,
            self.config.registry.as_deref(),
            self.config.resource_group.as_deref(),
        )
    }

    fn cluster(&self, given: Option<&str>) -> Result<String, PluginError> {
        self.clusters.require_cluster(given, "[plugins.config.acr]")
    }

    fn kube_name(&self, cluster: &str) -> String {
        self.clusters.kube_name(cluster)
    }

    fn resource_group(&self) -> Result<&str, PluginError> {
        self.config.resource_group.as_deref().ok_or_else(|| {
            PluginError::new(
                ErrorCode::Config,
                "resource_group is not set in [plugins.config.acr] (the clusters' resource group)",
            )
        })
    }
}

deckhand_plugin_sdk::export_plugin!(Acr);

#[cfg(test)]
mod harness_tests;
