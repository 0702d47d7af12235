//! `/aks …`: clusters, node pools, scaling, start/stop, nodes and GPUs. (Being built: issue 5.)

use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, Capabilities, Choice, CommandSpec, Ctx, PluginError, Reply,
};
use serde_json::Value;

pub struct Pools;

pub fn commands() -> Vec<CommandSpec> {
    vec![
        CommandSpec::new("aks", "AKS clusters and node pools")
            .subcommand(CommandSpec::new("clusters", "List clusters")),
    ]
}

pub fn capabilities() -> Capabilities {
    Capabilities::default()
}

impl Pools {
    pub fn from_config(_config: &Value) -> Result<Pools, PluginError> {
        Ok(Pools)
    }

    pub fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        Err(PluginError::new(
            "unavailable",
            "/aks is being built (issue 5)",
        ))
    }

    pub fn autocomplete(
        &self,
        _ctx: &Ctx,
        _query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        Ok(Vec::new())
    }
}
