//! The `aks` plugin: AKS clusters and node pools (`/aks …`, in [`pools`]), app deployments
//! on them (`/deploy`, `/undeploy`, `/deployments`, in [`deploy`]) and the resource groups
//! they live in (`/rg …`, in [`groups`]). Each part declares its own
//! commands (`commands.rs`, derived) and capabilities; the config section is one typed struct
//! ([`config::AksConfig`]); this file only joins them. No I/O: everything goes through the
//! host's ARM, Kubernetes and registry services.

pub mod config;
pub mod deploy;
pub mod groups;
pub mod pools;

#[cfg(test)]
mod harness_tests;

use config::AksConfig;
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, Capabilities, Choice, Command, Ctx, ErrorCode, Host, Manifest, Plugin,
    PluginError, Reply,
};
use deploy::commands::{DeployApp, Deployments, Undeploy};
use groups::commands::RgCommand;
use pools::commands::AksCommand;

/// The plugin's top-level commands.
#[derive(Command)]
#[command(root)]
enum Commands {
    Aks(AksCommand),
    Deploy(DeployApp),
    Undeploy(Undeploy),
    Deployments(Deployments),
    Rg(RgCommand),
}

pub struct Aks {
    pools: pools::Pools,
    deploy: deploy::Deploy,
}

/// Joins two capability sets.
fn merge(mut a: Capabilities, b: Capabilities) -> Capabilities {
    a.http.extend(b.http);
    a.programs.extend(b.programs);
    a.kv |= b.kv;
    a.notify |= b.notify;
    a.arm.extend(b.arm);
    a.kube.extend(b.kube);
    a.registries.extend(b.registries);
    a.registry_deletes.extend(b.registry_deletes);
    a
}

impl Plugin for Aks {
    type Config = AksConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "aks".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "AKS clusters, node pools, app deployments and resource groups".into(),
            commands: Commands::specs(),
            capabilities: merge(
                merge(pools::capabilities(), deploy::capabilities()),
                groups::capabilities(),
            ),
        }
    }

    fn init(config: AksConfig, _host: &Host) -> Result<Self, PluginError> {
        let clusters = config.clusters()?;
        let settings = deploy::app::Settings::new(&config, &clusters)
            .map_err(|e| PluginError::new(ErrorCode::Config, e.to_string()))?;
        Ok(Aks {
            pools: pools::Pools::new(clusters.clone()),
            deploy: deploy::Deploy::new(settings, clusters),
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        match Commands::decode(call)? {
            Commands::Aks(command) => self.pools.call(ctx, command),
            Commands::Deploy(args) => self.deploy.deploy(ctx, &args),
            Commands::Undeploy(args) => self.deploy.undeploy(ctx, &args),
            Commands::Deployments(args) => self.deploy.deployments(ctx, &args),
            Commands::Rg(command) => groups::call(ctx, command, call.preview),
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        match query.command[0].as_str() {
            "aks" => self.pools.autocomplete(ctx, query),
            "rg" => groups::autocomplete(ctx, query),
            _ => self.deploy.autocomplete(ctx, query),
        }
    }
}

deckhand_plugin_sdk::export_plugin!(Aks);
