//! Passes raw cloud requests through the host, so host tests exercise the ARM, Kubernetes and
//! registry services (and their capability checks) through a real `dlopen`.
//! Declared: AKS clusters and agent pools (read, write, start, stop, listClusterUserCredential),
//! resource groups (read); Kubernetes deployments/pods/nodes/configmaps; registries `*`.
//! Not declared (so refused): anything else, e.g. deleting a cluster or a registry.

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_sdk::abi::proto::{
    ArmCapability, ArmRequest, KubeCapability, KubeRequest, RegistryRequest,
};
use deckhand_plugin_sdk::{
    Call, CallExt, Capabilities, CommandSpec, Ctx, Host, Manifest, OptionKind, OptionSpec, Plugin,
    PluginError, Reply,
};
use serde_json::Value;

struct CloudProbe;

fn string(name: &str, description: &str) -> OptionSpec {
    OptionSpec::new(name, OptionKind::String, description)
}

impl Plugin for CloudProbe {
    type Config = Value;

    fn manifest() -> Manifest {
        Manifest {
            name: "cloudprobe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Raw cloud requests through the host".into(),
            commands: vec![
                CommandSpec::new("arm", "An ARM request")
                    .option(string("method", "GET, PUT, ...").required().positional())
                    .option(
                        string("path", "Path below the subscription")
                            .required()
                            .positional(),
                    )
                    .option(string("api", "api-version").required())
                    .option(string("body", "JSON body"))
                    .option(OptionSpec::new(
                        "nowait",
                        OptionKind::Boolean,
                        "Do not follow the operation",
                    ))
                    .timeout_secs(20),
                CommandSpec::new("kube", "A Kubernetes request")
                    .option(
                        string("verb", "get, list, apply, ...")
                            .required()
                            .positional(),
                    )
                    .option(string("kind", "Kind").required().positional())
                    .option(string("cluster", "Configured cluster").required())
                    .option(string("api", "apiVersion").default_value("v1".into()))
                    .option(string("namespace", "Namespace"))
                    .option(string("name", "Name"))
                    .option(string("selector", "Label selector"))
                    .option(string("body", "JSON body"))
                    .timeout_secs(20),
                CommandSpec::new("registry", "A registry query")
                    .option(
                        string("op", "catalog, tags, manifest")
                            .required()
                            .positional(),
                    )
                    .option(string("registry", "Registry").required().positional())
                    .option(string("repository", "Repository"))
                    .option(string("reference", "Tag or digest")),
            ],
            capabilities: Capabilities {
                arm: vec![
                    ArmCapability {
                        resource_type: "Microsoft.ContainerService/managedClusters".into(),
                        actions: vec![
                            "read".into(),
                            "write".into(),
                            "start".into(),
                            "stop".into(),
                            "listClusterUserCredential".into(),
                        ],
                    },
                    ArmCapability {
                        resource_type: "Microsoft.ContainerService/managedClusters/agentPools"
                            .into(),
                        actions: vec!["read".into(), "write".into()],
                    },
                    ArmCapability {
                        resource_type: "Microsoft.Resources/resourceGroups".into(),
                        actions: vec!["read".into()],
                    },
                ],
                kube: vec![KubeCapability {
                    resources: vec![
                        "deployments".into(),
                        "deployments/scale".into(),
                        "pods".into(),
                        "pods/log".into(),
                        "nodes".into(),
                        "configmaps".into(),
                    ],
                    verbs: vec![
                        "get".into(),
                        "list".into(),
                        "apply".into(),
                        "patch".into(),
                        "delete".into(),
                        "logs".into(),
                    ],
                }],
                registries: vec!["*".into()],
                ..Default::default()
            },
        }
    }

    fn init(_config: Value, _host: &Host) -> Result<Self, PluginError> {
        Ok(CloudProbe)
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        let body = |name: &str| -> Result<Option<Value>, PluginError> {
            call.str_opt(name)
                .map(|b| {
                    serde_json::from_str(b).map_err(|e| {
                        PluginError::new(ErrorCode::BadInput, format!("--{name} is not JSON: {e}"))
                    })
                })
                .transpose()
        };
        let text = |s: Option<&str>| s.map(str::to_owned);
        let answer = match call.command[0].as_str() {
            "arm" => ctx.service_value(deckhand_plugin_sdk::abi::proto::Service::Arm {
                request: ArmRequest {
                    method: call.str_opt("method").unwrap_or_default().into(),
                    path: call.str_opt("path").unwrap_or_default().into(),
                    api_version: call.str_opt("api").unwrap_or_default().into(),
                    body: body("body")?,
                    wait: !call.bool_opt("nowait"),
                    label: Some("probing".into()),
                },
            }),
            "kube" => ctx.service_value(deckhand_plugin_sdk::abi::proto::Service::Kube {
                request: KubeRequest {
                    cluster: call.str_opt("cluster").unwrap_or_default().into(),
                    verb: call.str_opt("verb").unwrap_or_default().into(),
                    api_version: call.str_opt("api").unwrap_or("v1").into(),
                    kind: call.str_opt("kind").unwrap_or_default().into(),
                    namespace: text(call.str_opt("namespace")),
                    name: text(call.str_opt("name")),
                    label_selector: text(call.str_opt("selector")),
                    body: body("body")?,
                    ..Default::default()
                },
            }),
            "registry" => ctx.service_value(deckhand_plugin_sdk::abi::proto::Service::Registry {
                request: RegistryRequest {
                    registry: call.str_opt("registry").unwrap_or_default().into(),
                    op: call.str_opt("op").unwrap_or_default().into(),
                    repository: text(call.str_opt("repository")),
                    reference: text(call.str_opt("reference")),
                },
            }),
            other => {
                return Err(PluginError::new(
                    ErrorCode::UnknownCommand,
                    other.to_owned(),
                ));
            }
        };
        match answer {
            Ok(value) => Ok(Reply::text(value.to_string())),
            // Keep the host's structured error visible to the test.
            Err(e) => Err(PluginError::new(
                ErrorCode::parse(&e.code),
                serde_json::to_string(&e).unwrap_or(e.message),
            )),
        }
    }
}

deckhand_plugin_sdk::export_plugin!(CloudProbe);
