//! The plugin of `docs/writing-a-plugin.md`: `/tags REPO [--registry R] [--top N]` lists a
//! repository's tags through the host's registry service.

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{RegistryRequest, RegistryResponse};
use deckhand_plugin_sdk::{
    Call, CallExt, Capabilities, Command, Ctx, Host, Manifest, Plugin, PluginError, Reply,
};

/// List a repository's tags, last first
#[derive(Command)]
#[command(timeout_secs = 30)]
struct Tags {
    /// Repository, e.g. studio/runner
    #[option(positional, rule = Repository)]
    repo: String,
    /// Registry (a login server or a configured name)
    #[option(default = "intens.azurecr.io")]
    registry: String,
    /// At most this many tags
    #[option(default = 10)]
    top: i64,
}

fn tags(ctx: &Ctx, args: Tags) -> Result<Reply, PluginError> {
    let request = RegistryRequest {
        registry: args.registry.clone(),
        op: "tags".into(),
        repository: Some(args.repo.clone()),
        reference: None,
    };
    let RegistryResponse::Tags { mut tags, .. } = ctx.registry(request)? else {
        return Err(PluginError::new(
            ErrorCode::Upstream,
            "the registry answered something else",
        ));
    };
    tags.reverse();
    tags.truncate(usize::try_from(args.top.max(1)).unwrap_or(1));
    Ok(Reply::text(format!(
        "{}/{}: {}",
        args.registry,
        args.repo,
        tags.join(", ")
    )))
}

struct Tutorial;

impl Plugin for Tutorial {
    type Config = serde_json::Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "tutorial".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The plugin of docs/writing-a-plugin.md".into(),
            commands: vec![Tags::spec()],
            capabilities: Capabilities {
                registries: vec!["*".into()],
                ..Default::default()
            },
        }
    }

    fn init(_config: serde_json::Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(Tutorial)
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        tags(ctx, call.decode()?)
    }
}

deckhand_plugin_sdk::export_plugin!(Tutorial);

#[cfg(test)]
mod tests {
    use super::*;
    use deckhand_plugin_sdk::abi::proto::Service;
    use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError};
    use serde_json::json;

    fn registry_tags(repository: &str) -> Expect {
        let repository = repository.to_owned();
        Expect::call("registry tags", move |service| {
            matches!(service, Service::Registry { request }
                if request.op == "tags" && request.repository.as_deref() == Some(repository.as_str()))
        })
    }

    #[test]
    fn tags_lists_the_last_ones_first() {
        let mut test = PluginTest::<Tutorial>::new(serde_json::Value::Null);
        test.expect(
            registry_tags("studio/runner"),
            Ok(json!({"op": "tags", "repository": "studio/runner", "tags": ["1.0", "1.1", "1.2"]})),
        );
        let reply = test.run("/tags studio/runner --top 2").unwrap();
        assert_eq!(reply.text, "intens.azurecr.io/studio/runner: 1.2, 1.1");
        test.finish();
    }

    #[test]
    fn a_bad_repository_name_is_refused_before_the_registry_is_asked() {
        let test = PluginTest::<Tutorial>::new(serde_json::Value::Null);
        let error = test.run("/tags ../etc").unwrap_err();
        assert!(matches!(error, RunError::Parse(_)), "{error}");
        assert!(test.served().is_empty());
    }
}
