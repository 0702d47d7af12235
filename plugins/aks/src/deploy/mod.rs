//! `/deploy`, `/undeploy`, `/deployments`: apps described in config. (Being built: issue 5.)

use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, Capabilities, Choice, CommandSpec, Ctx, PluginError, Reply,
};
use serde_json::Value;

pub struct Deploy;

pub fn commands() -> Vec<CommandSpec> {
    Vec::new()
}

pub fn capabilities() -> Capabilities {
    Capabilities::default()
}

impl Deploy {
    pub fn from_config(_config: &Value) -> Result<Deploy, PluginError> {
        Ok(Deploy)
    }

    pub fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        Err(PluginError::new(
            "unavailable",
            "/deploy is being built (issue 5)",
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
