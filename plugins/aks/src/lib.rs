//! The `aks` plugin: AKS clusters and node pools (`/aks …`, in [`pools`]) and app deployments
//! on them (`/deploy`, `/undeploy`, `/deployments`, in [`deploy`]). Each part declares its own
//! commands and capabilities and reads its own part of the plugin's config section; this file
//! only joins them. No I/O: everything goes through the host's ARM, Kubernetes and registry
//! services.

pub mod deploy;
pub mod pools;

#[cfg(test)]
mod harness_tests;

use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, Capabilities, Choice, Ctx, Host, Manifest, Plugin, PluginError, Reply,
};
use serde_json::Value;

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
    type Config = Value;

    fn manifest() -> Manifest {
        let mut commands = pools::commands();
        commands.extend(deploy::commands());
        Manifest {
            name: "aks".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "AKS clusters, node pools and app deployments".into(),
            commands,
            capabilities: merge(pools::capabilities(), deploy::capabilities()),
        }
    }

    fn init(config: Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Aks {
            pools: pools::Pools::from_config(&config)?,
            deploy: deploy::Deploy::from_config(&config)?,
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        match call.command[0].as_str() {
            "aks" => self.pools.call(ctx, call),
            _ => self.deploy.call(ctx, call),
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        match query.command[0].as_str() {
            "aks" => self.pools.autocomplete(ctx, query),
            _ => self.deploy.autocomplete(ctx, query),
        }
    }
}

deckhand_plugin_sdk::export_plugin!(Aks);
