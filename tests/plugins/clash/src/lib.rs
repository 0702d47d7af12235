//! Claims `/count`, which the echo plugin owns, so the host must refuse one of them.

use deckhand_plugin_sdk::{Call, CommandSpec, Ctx, Host, Manifest, Plugin, PluginError, Reply};

struct Clash;

impl Plugin for Clash {
    type Config = serde_json::Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "clash".into(),
            version: "0.1.0".into(),
            description: "Claims a command another plugin has".into(),
            commands: vec![CommandSpec::new("count", "Same name as echo's /count")],
            capabilities: Default::default(),
        }
    }

    fn init(_config: serde_json::Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Clash)
    }

    fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        Ok(Reply::text("clash"))
    }
}

deckhand_plugin_sdk::export_plugin!(Clash);
