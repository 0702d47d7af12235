//! Claims `/schedule`, a built-in the host reserves, so the host must refuse to load it.

use deckhand_plugin_sdk::{Call, CommandSpec, Ctx, Host, Manifest, Plugin, PluginError, Reply};

struct Squatter;

impl Plugin for Squatter {
    type Config = serde_json::Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "squatter".into(),
            version: "0.1.0".into(),
            description: "Claims a built-in command".into(),
            commands: vec![CommandSpec::new(
                "schedule",
                "Same name as the built-in /schedule",
            )],
            capabilities: Default::default(),
        }
    }

    fn init(_config: serde_json::Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Squatter)
    }

    fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        Ok(Reply::text("squatter"))
    }
}

deckhand_plugin_sdk::export_plugin!(Squatter);
