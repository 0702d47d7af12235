//! `/daskhub deploy`: the seed's `helm upgrade --install --wait --create-namespace` of the
//! daskhub chart, with its two tokens.
//!
//! 1. `helm version` first: a helm that is not installed or not allowed in `[host.programs]`
//!    is reported with the fix before anything changes.
//! 2. The tokens (32 random bytes in hex each, the seed's `openssl rand -hex 32`) are kept in
//!    the Kubernetes Secret `RELEASE-daskhub-tokens`, made on the first deploy and reused
//!    after, so a second deploy changes nothing.
//! 3. The values (the seed's `secrets.yaml`, as JSON, which is YAML) go to helm on its
//!    standard input (`--values -`): tokens are never on the command line, and never in a
//!    reply, a log or the audit log (the host audits a program's arguments, not its input).

use base64::Engine;
use deckhand_plugin_sdk::abi::proto::ProgramOutput;
use deckhand_plugin_sdk::abi::proto::Service;
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, PluginError, Reply};
use serde_json::{Value, json};

use crate::commands::Deploy;
use crate::config::Settings;
use crate::kube;
use crate::names::{check_namespace, check_release};

pub const HELM: &str = "helm";
const PROXY_KEY: &str = "proxy-secret-token";
const GATEWAY_KEY: &str = "gateway-api-token";

/// The two tokens of a release.
#[derive(Clone, PartialEq)]
pub struct Tokens {
    pub proxy: String,
    pub gateway: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

/// 32 bytes from the operating system's CSPRNG, as 64 hex digits.
pub fn token() -> Result<String, PluginError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        PluginError::new(
            ErrorCode::Unavailable,
            format!("no random bytes from the operating system: {e}"),
        )
    })?;
    Ok(hex::encode(bytes))
}

pub fn secret_name(release: &str) -> String {
    format!("{release}-daskhub-tokens")
}

/// The Secret holding the tokens, as applied.
pub fn secret(namespace: &str, release: &str, tokens: &Tokens) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(release),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "deckhand", "app.kubernetes.io/instance": release},
        },
        "type": "Opaque",
        "data": {PROXY_KEY: b64.encode(&tokens.proxy), GATEWAY_KEY: b64.encode(&tokens.gateway)},
    })
}

/// The tokens of an existing Secret, if it holds both.
fn tokens_of(secret: &Value) -> Option<Tokens> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let read = |key: &str| {
        let text = secret["data"][key].as_str()?;
        let bytes = b64.decode(text).ok()?;
        String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
    };
    Some(Tokens {
        proxy: read(PROXY_KEY)?,
        gateway: read(GATEWAY_KEY)?,
    })
}

/// The seed's values: the proxy's secret token; the hub's dask-gateway service token equal to
/// the gateway's JupyterHub token; the hub's network policy off (so the gateway reaches it);
/// core and user pods on their pools; Dask schedulers on the user pool and workers on the
/// (Spot) worker pool. `extra` (a configured values table) is merged under the tokens.
pub fn values(tokens: &Tokens, extra: Option<&Value>) -> Value {
    let spot_toleration = json!({
        "key": "kubernetes.azure.com/scalesetpriority",
        "operator": "Equal",
        "value": "spot",
        "effect": "NoSchedule"
    });
    let mut values = json!({
        "jupyterhub": {
            "hub": {
                "networkPolicy": {"enabled": false},
            },
            "scheduling": {
                "corePods": {"nodeAffinity": {"matchNodePurpose": "require"}},
                "userPods": {"nodeAffinity": {"matchNodePurpose": "require"}},
            },
        },
        "dask-gateway": {
            "gateway": {
                "backend": {
                    "scheduler": {"extraPodConfig": {
                        "nodeSelector": {"hub.jupyter.org/node-purpose": "user"}
                    }},
                    "worker": {"extraPodConfig": {
                        "nodeSelector": {"k8s.dask.org/dedicated": "worker"},
                        "tolerations": [spot_toleration],
                    }},
                },
            },
        },
    });
    if let Some(extra) = extra {
        merge(&mut values, extra);
    }
    let tokens_part = json!({
        "jupyterhub": {
            "proxy": {"secretToken": tokens.proxy},
            "hub": {"services": {"dask-gateway": {"apiToken": tokens.gateway}}},
        },
        "dask-gateway": {"gateway": {"auth": {"jupyterhub": {"apiToken": tokens.gateway}}}},
    });
    merge(&mut values, &tokens_part);
    values
}

/// Deep merge of JSON objects; `other` wins.
fn merge(into: &mut Value, other: &Value) {
    match (into, other) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                merge(a.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// helm's argument list (no shell; no secret in it).
pub fn helm_args(settings: &Settings, namespace: &str, release: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "upgrade",
        "--install",
        "--wait",
        "--create-namespace",
        release,
        &settings.chart,
        "--repo",
        &settings.chart_repo,
        "--namespace",
        namespace,
        "--values",
        "-",
        "--output",
        "json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(version) = &settings.chart_version {
        args.extend(["--version".to_owned(), version.clone()]);
    }
    if let Some(context) = &settings.kube_context {
        args.extend(["--kube-context".to_owned(), context.clone()]);
    }
    args
}

/// What to do when helm cannot be run.
fn helm_unusable(error: HostError) -> PluginError {
    let fix = match error.code.as_str() {
        "capability_denied" | "denied" => {
            "allow it in the host's config: [host.programs] helm = \"/usr/local/bin/helm\" (the path of your helm 3 binary)"
        }
        _ => {
            "install helm 3 (https://helm.sh/docs/intro/install/) on the bot's machine and point [host.programs] helm at it"
        }
    };
    let message = format!("helm cannot be run: {} — {fix}", error.message);
    let mut e = PluginError::from_host(error, message);
    e.code = ErrorCode::Precondition;
    e
}

fn run(
    ctx: &Ctx,
    args: Vec<String>,
    stdin: Option<String>,
    timeout_ms: u64,
) -> Result<ProgramOutput, HostError> {
    let value = ctx.service_value(Service::Run {
        program: HELM.into(),
        args,
        stdin,
        timeout_ms: Some(timeout_ms),
    })?;
    serde_json::from_value(value).map_err(|e| {
        HostError::new(
            "bad_response",
            format!("the program service answered an unexpected shape: {e}"),
        )
    })
}

/// `text` with the tokens masked (helm may echo values in an error).
fn scrub(text: &str, tokens: &Tokens) -> String {
    text.replace(&tokens.proxy, "[redacted]")
        .replace(&tokens.gateway, "[redacted]")
}

pub fn deploy(ctx: &Ctx, settings: &Settings, args: &Deploy) -> Result<Reply, PluginError> {
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| settings.namespace.clone());
    check_namespace(&namespace).map_err(|e| PluginError::bad_input("namespace", e))?;
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| settings.release.clone());
    check_release(&release).map_err(|e| PluginError::bad_input("release", e))?;
    let extra = match &args.values {
        None => None,
        Some(name) => Some(settings.values.get(name).ok_or_else(|| {
            let known: Vec<&str> = settings.values.keys().map(String::as_str).collect();
            PluginError::bad_input(
                "values",
                format!(
                    "there are no values {name:?}: {}",
                    if known.is_empty() {
                        "none are configured (add [plugins.config.daskhub.values.NAME])".to_owned()
                    } else {
                        format!("configured are {}", known.join(", "))
                    }
                ),
            )
        })?),
    };
    let kube_cluster = settings.kube_cluster(args.cluster.as_deref())?;

    let version =
        run(ctx, vec!["version".into(), "--short".into()], None, 30_000).map_err(helm_unusable)?;
    if version.exit_code != Some(0) {
        return Err(PluginError::new(
            ErrorCode::Precondition,
            format!("`helm version` failed: {}", version.stderr.trim()),
        ));
    }

    ctx.progress(format!("Tokens of {release} in {kube_cluster}/{namespace}"));
    kube::apply(
        ctx,
        &kube_cluster,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .map_err(|e| kube::failure(e, &format!("creating namespace {namespace}")))?;
    let name = secret_name(&release);
    let existing = kube::get(ctx, &kube_cluster, "v1", "Secret", &namespace, &name)
        .map_err(|e| kube::failure(e, &format!("reading Secret {namespace}/{name}")))?;
    let (tokens, reused) = match existing.as_ref().and_then(tokens_of) {
        Some(tokens) => (tokens, true),
        None => (
            Tokens {
                proxy: token()?,
                gateway: token()?,
            },
            false,
        ),
    };
    kube::apply(ctx, &kube_cluster, secret(&namespace, &release, &tokens))
        .map_err(|e| kube::failure(e, &format!("writing Secret {namespace}/{name}")))?;

    ctx.progress(format!(
        "helm upgrade --install {release} {} in {namespace}",
        settings.chart
    ));
    let values = values(&tokens, extra);
    let input = serde_json::to_string_pretty(&values).expect("a serde_json::Value serializes");
    let output = run(
        ctx,
        helm_args(settings, &namespace, &release),
        Some(input),
        1_150_000,
    )
    .map_err(helm_unusable)?;
    if output.exit_code != Some(0) {
        return Err(PluginError::new(
            ErrorCode::Upstream,
            format!(
                "helm upgrade --install {release} failed (exit {}): {}",
                output
                    .exit_code
                    .map_or("by signal".to_owned(), |c| c.to_string()),
                scrub(output.stderr.trim(), &tokens)
            ),
        ));
    }
    let release_json: Value = serde_json::from_str(&output.stdout).unwrap_or(Value::Null);
    let status = release_json["info"]["status"].as_str().unwrap_or("unknown");
    let revision = release_json["version"].as_i64();
    Ok(Reply::text(format!(
        "✓ Release {release} ({}) in {kube_cluster}/{namespace}: {status}{}. Tokens in Secret {namespace}/{name} ({}); helm {}.",
        settings.chart,
        revision
            .map(|r| format!(", revision {r}"))
            .unwrap_or_default(),
        if reused { "kept" } else { "generated" },
        version.stdout.trim()
    )))
}

/// The keys `/daskhub deploy --values` offers.
pub fn value_names(settings: &Settings) -> Vec<String> {
    settings.values.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let a = token().unwrap();
        let b = token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn values_carry_the_seed_settings_and_tokens_win_over_extra() {
        let tokens = Tokens {
            proxy: "p".repeat(64),
            gateway: "g".repeat(64),
        };
        let extra = json!({"jupyterhub": {"proxy": {"secretToken": "x", "service": {"type": "LoadBalancer"}}}});
        let v = values(&tokens, Some(&extra));
        assert_eq!(v["jupyterhub"]["proxy"]["secretToken"], tokens.proxy);
        assert_eq!(v["jupyterhub"]["proxy"]["service"]["type"], "LoadBalancer");
        assert_eq!(
            v["jupyterhub"]["hub"]["services"]["dask-gateway"]["apiToken"],
            v["dask-gateway"]["gateway"]["auth"]["jupyterhub"]["apiToken"]
        );
        assert_eq!(v["jupyterhub"]["hub"]["networkPolicy"]["enabled"], false);
        let secret = secret("dhub", "dask", &tokens);
        assert_eq!(tokens_of(&secret), Some(tokens));
    }
}
