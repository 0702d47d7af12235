//! The `daskhub` plugin: the seed's Pangeo-style DaskHub on AKS (seed 003) and plain Dask on
//! Kubernetes for the ARL (seed 004).
//!
//! * `/daskhub status` — hub, proxy and gateway pods; JupyterHub users and servers; Dask
//!   Gateway clusters with workers, cores and memory; the public URL;
//! * `/daskhub clusters`, `/daskhub stop CLUSTER` (destructive) — Dask Gateway's REST API;
//! * `/daskhub deploy` — tokens into a Kubernetes Secret, then `helm upgrade --install` with
//!   the seed's values on helm's standard input, through the host's program service;
//! * `/daskhub workers --min --max`, `/daskhub pools` — the worker and user node pools (ARM);
//! * `/dask deploy|scale|endpoints|delete` — scheduler, workers and notebook by server-side
//!   apply.
//!
//! No I/O of its own and no credentials: JupyterHub and the gateway through the host's HTTP
//! service with auth profiles, Kubernetes and ARM through theirs, helm through the program
//! service. (Random tokens come from the operating system's CSPRNG, see docs/dependencies.md.)

mod commands;
mod config;
mod dask;
mod deploy;
mod gateway;
mod hub;
mod kube;
mod names;
mod pools;
mod rest;
mod status;

#[cfg(test)]
mod harness_tests;

use commands::{DaskCommand, DaskhubCommand};
use config::{DaskhubConfig, PROFILE_PREFIX, Settings};
use deckhand_plugin_sdk::abi::proto::{ArmCapability, HttpCapability, KubeCapability};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, Capabilities, Choice, Command, Ctx, Host, Manifest, Plugin,
    PluginError, Reply,
};

/// The plugin's top-level commands.
#[derive(Command)]
#[command(root)]
enum Commands {
    Daskhub(DaskhubCommand),
    Dask(DaskCommand),
}

pub struct Daskhub {
    settings: Settings,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Plugin for Daskhub {
    type Config = DaskhubConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "daskhub".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "DaskHub (JupyterHub + Dask Gateway) on AKS, and plain Dask on Kubernetes"
                .into(),
            commands: Commands::specs(),
            capabilities: Capabilities {
                // Hub and gateway URLs come from config: any host, but only with a `daskhub*`
                // auth profile of the host's config.
                http: vec![HttpCapability {
                    host: "*".into(),
                    auth_profile: Some(format!("{PROFILE_PREFIX}*")),
                }],
                programs: strings(&[deploy::HELM]),
                arm: vec![ArmCapability {
                    resource_type: "Microsoft.ContainerService/managedClusters/agentPools".into(),
                    actions: strings(&["read", "write"]),
                }],
                kube: vec![
                    KubeCapability {
                        resources: strings(&["pods"]),
                        verbs: strings(&["list"]),
                    },
                    KubeCapability {
                        resources: strings(&["namespaces"]),
                        verbs: strings(&["apply"]),
                    },
                    KubeCapability {
                        resources: strings(&["secrets", "services", "deployments"]),
                        verbs: strings(&["get", "apply", "delete"]),
                    },
                    KubeCapability {
                        resources: strings(&["deployments"]),
                        verbs: strings(&["patch"]),
                    },
                ],
                ..Default::default()
            },
        }
    }

    fn init(config: DaskhubConfig, _host: &Host) -> Result<Self, PluginError> {
        Ok(Daskhub {
            settings: config.check()?,
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        let settings = &self.settings;
        match Commands::decode(call)? {
            Commands::Daskhub(command) => match command {
                DaskhubCommand::Status(args) => {
                    status::status(ctx, settings, args.cluster.as_deref())
                }
                DaskhubCommand::Clusters(_) => status::clusters(ctx, settings),
                DaskhubCommand::Stop(args) => status::stop(ctx, settings, &args.cluster),
                DaskhubCommand::Deploy(args) => deploy::deploy(ctx, settings, &args),
                DaskhubCommand::Workers(args) => {
                    pools::workers(ctx, settings, args.min, args.max, args.cluster.as_deref())
                }
                DaskhubCommand::Pools(args) => pools::pools(ctx, settings, args.cluster.as_deref()),
            },
            Commands::Dask(command) => match command {
                DaskCommand::Deploy(args) => dask::deploy(ctx, settings, &args),
                DaskCommand::Scale(args) => dask::scale(ctx, settings, &args),
                DaskCommand::Endpoints(args) => dask::endpoints(ctx, settings, &args),
                DaskCommand::Delete(args) => dask::delete(ctx, settings, &args),
            },
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        let names: Vec<String> = match (
            query.command.first().map(String::as_str),
            query.option.as_str(),
        ) {
            (Some("daskhub"), "cluster") => match &self.settings.gateway {
                Some(api) => gateway::clusters(ctx, api)?
                    .into_iter()
                    .map(|c| c.name)
                    .collect(),
                None => Vec::new(),
            },
            (Some("daskhub"), "values") => deploy::value_names(&self.settings),
            _ => Vec::new(),
        };
        let mut choices = deckhand_plugin_sdk::choices_starting_with(names, &query.partial);
        choices.truncate(25);
        Ok(choices)
    }
}

deckhand_plugin_sdk::export_plugin!(Daskhub);
