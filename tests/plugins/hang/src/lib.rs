//! `/hang` never returns and ignores cancellation, to prove the host's time limit holds even
//! against an uncooperative plugin.

use deckhand_plugin_sdk::{Call, CommandSpec, Ctx, Host, Manifest, Plugin, PluginError, Reply};

struct Hang;

impl Plugin for Hang {
    type Config = serde_json::Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "hang".into(),
            version: "0.1.0".into(),
            description: "Never answers".into(),
            commands: vec![CommandSpec::new("hang", "Block forever").timeout_secs(1)],
            capabilities: Default::default(),
        }
    }

    fn init(_config: serde_json::Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Hang)
    }

    fn call(&self, _ctx: &Ctx, _call: &Call) -> Result<Reply, PluginError> {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

deckhand_plugin_sdk::export_plugin!(Hang);
