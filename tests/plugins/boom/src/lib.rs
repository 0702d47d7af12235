//! Panics in `/boom`, to prove the host contains it and answers the next command.

use deckhand_plugin_sdk::{Call, CommandSpec, Ctx, Host, Manifest, Plugin, PluginError, Reply};

struct Boom;

impl Plugin for Boom {
    type Config = serde_json::Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "boom".into(),
            version: "0.1.0".into(),
            description: "Panics on purpose".into(),
            commands: vec![CommandSpec::new("boom", "Panic inside the plugin")],
            capabilities: Default::default(),
        }
    }

    fn init(_config: serde_json::Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Boom)
    }

    fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        panic!("the boom plugin always panics")
    }
}

deckhand_plugin_sdk::export_plugin!(Boom);
