//! The answering test plugin. Its commands exercise every option kind and every host service,
//! so host tests can prove parsing, capabilities, progress, cancellation, reload and audit
//! through a real `dlopen`.

use deckhand_plugin_sdk::ErrorCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, CommandSpec, Ctx, Host, HttpCapability,
    HttpRequest, Manifest, Notification, OptionKind, OptionSpec, Plugin, PluginError, Reply,
};
use serde_json::{Value, json};

struct Echo {
    /// From the plugin's config section, to prove config reaches `init`.
    greeting: String,
}

/// Calls served by this copy of the library; a reload starts a fresh copy at zero.
static CALLS: AtomicU64 = AtomicU64::new(0);

fn manifest() -> Manifest {
    Manifest {
        name: "echo".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Test plugin that answers".into(),
        commands: vec![
            CommandSpec::new("echo", "Repeat the text back")
                .option(
                    OptionSpec::new("text", OptionKind::String, "What to say")
                        .required()
                        .positional(),
                )
                .option(OptionSpec::new("upper", OptionKind::Boolean, "Shout it"))
                .option(
                    OptionSpec::new("times", OptionKind::Integer, "How many times")
                        .default_value(json!(1)),
                )
                .option(
                    OptionSpec::choice("color", &["red", "green", "blue"], "A color")
                        .autocomplete(),
                )
                .option(OptionSpec::new(
                    "wait",
                    OptionKind::Duration,
                    "A duration, echoed in ms",
                ))
                .option(
                    OptionSpec::new("token", OptionKind::String, "A secret, never echoed")
                        .sensitive(),
                ),
            CommandSpec::new("count", "Calls served by this copy of the library"),
            CommandSpec::new(
                "slow",
                "Sleep in steps with progress, honouring cancellation",
            )
            .option(
                OptionSpec::new("ms", OptionKind::Integer, "How long")
                    .required()
                    .positional(),
            )
            .timeout_secs(30),
            CommandSpec::new(
                "nap",
                "As slow, and declared idempotent (a scheduled run may resume inside it)",
            )
            .option(
                OptionSpec::new("ms", OptionKind::Integer, "How long")
                    .required()
                    .positional(),
            )
            .timeout_secs(30)
            .idempotent(),
            CommandSpec::new("fetch", "GET a URL through the host")
                .option(
                    OptionSpec::new("url", OptionKind::String, "URL")
                        .required()
                        .positional(),
                )
                .option(OptionSpec::new(
                    "profile",
                    OptionKind::String,
                    "Auth profile",
                )),
            CommandSpec::new("run", "Run a program through the host")
                .option(
                    OptionSpec::new("program", OptionKind::String, "Program")
                        .required()
                        .positional(),
                )
                .option(OptionSpec::new("arg", OptionKind::String, "One argument").positional()),
            CommandSpec::new("kv", "Key-value state")
                .subcommand(
                    CommandSpec::new("put", "Store a value")
                        .option(
                            OptionSpec::new("key", OptionKind::String, "Key")
                                .required()
                                .positional(),
                        )
                        .option(
                            OptionSpec::new("value", OptionKind::String, "Value")
                                .required()
                                .positional(),
                        ),
                )
                .subcommand(
                    CommandSpec::new("get", "Read a value").option(
                        OptionSpec::new("key", OptionKind::String, "Key")
                            .required()
                            .positional(),
                    ),
                ),
            CommandSpec::new("notify", "Push a notification to the host").option(
                OptionSpec::new("text", OptionKind::String, "Text")
                    .required()
                    .positional(),
            ),
            CommandSpec::new("wipe", "A destructive command").destructive(),
            CommandSpec::new("later", "Ask the host to run LINE after this command").option(
                OptionSpec::new("line", OptionKind::String, "Command line")
                    .required()
                    .positional(),
            ),
            CommandSpec::new("forever", "Follows up with itself, again and again"),
            CommandSpec::new(
                "busy",
                "A schedule guard: fails while kv `busy` is yes (jobs in progress)",
            ),
        ],
        capabilities: Capabilities {
            http: vec![
                HttpCapability {
                    host: "127.0.0.1".into(),
                    auth_profile: None,
                },
                HttpCapability {
                    host: "127.0.0.1".into(),
                    auth_profile: Some("test-bearer".into()),
                },
            ],
            programs: vec!["greet".into()],
            kv: true,
            notify: true,
            ..Default::default()
        },
    }
}

impl Plugin for Echo {
    type Config = Value;

    fn manifest() -> Manifest {
        manifest()
    }

    fn init(config: Value, _host: &Host) -> Result<Self, PluginError> {
        let greeting = config
            .get("greeting")
            .and_then(Value::as_str)
            .unwrap_or("hello")
            .to_owned();
        Ok(Echo { greeting })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        let served = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        match call.command[0].as_str() {
            "echo" => Ok(Reply::text(echo(call))),
            "count" => Ok(Reply::text(format!(
                "{} calls served by this copy ({})",
                served, self.greeting
            ))),
            "slow" | "nap" => slow(ctx, call),
            "fetch" => {
                let response = ctx.http(HttpRequest {
                    method: "GET".into(),
                    url: call.str_opt("url").unwrap_or_default().into(),
                    auth_profile: call.str_opt("profile").map(str::to_owned),
                    ..Default::default()
                })?;
                Ok(Reply::text(format!(
                    "{} {}",
                    response.status, response.body
                )))
            }
            "run" => {
                let args: Vec<&str> = call.str_opt("arg").into_iter().collect();
                let output = ctx.run(call.str_opt("program").unwrap_or_default(), &args)?;
                Ok(Reply::text(output.stdout.trim_end().to_owned()))
            }
            "kv" => kv(ctx, call),
            "notify" => {
                ctx.notify(Notification {
                    title: "echo".into(),
                    text: call.str_opt("text").unwrap_or_default().into(),
                    severity: "info".into(),
                    labels: Default::default(),
                    channel: None,
                })?;
                Ok(Reply::text("notified"))
            }
            "wipe" => Ok(Reply::text("wiped")),
            "later" => {
                let line = call.str_opt("line").unwrap_or_default();
                ctx.follow_up(line, 0)?;
                Ok(Reply::text(format!("{line} follows")))
            }
            "forever" => {
                ctx.follow_up("/forever", 0)?;
                Ok(Reply::text("and again"))
            }
            "busy" => match ctx.kv_get("busy")? {
                Some(Value::String(s)) if s == "yes" => Err(PluginError::new(
                    ErrorCode::Precondition,
                    "deferred: 3 jobs in progress on pool gpu",
                )),
                _ => Ok(Reply::text("idle: nothing in flight")),
            },
            other => Err(PluginError::new(
                ErrorCode::UnknownCommand,
                format!("echo has no command {other}"),
            )),
        }
    }

    fn autocomplete(
        &self,
        _ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        Ok(["red", "green", "blue"]
            .into_iter()
            .filter(|c| c.starts_with(&query.partial))
            .map(|c| Choice {
                name: c.into(),
                value: c.into(),
            })
            .collect())
    }
}

fn echo(call: &Call) -> String {
    let mut text = call.str_opt("text").unwrap_or_default().to_owned();
    if call.bool_opt("upper") {
        text = text.to_uppercase();
    }
    let times = call.int_opt("times").unwrap_or(1).max(1) as usize;
    let mut out = vec![text; times].join(" ");
    if let Some(color) = call.str_opt("color") {
        out.push_str(&format!(" [{color}]"));
    }
    if let Some(ms) = call.duration_ms_opt("wait") {
        out.push_str(&format!(" (wait {ms} ms)"));
    }
    out
}

fn slow(ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
    let total = Duration::from_millis(call.int_opt("ms").unwrap_or(0).max(0) as u64);
    let started = Instant::now();
    let mut step = 0;
    while started.elapsed() < total {
        if ctx.is_cancelled() {
            return Err(PluginError::new(
                ErrorCode::Cancelled,
                "stopped: the call was cancelled",
            ));
        }
        step += 1;
        ctx.progress(format!("step {step}"));
        std::thread::sleep(Duration::from_millis(20).min(total));
    }
    Ok(Reply::text(format!(
        "slept {} ms; copy has served {} calls",
        total.as_millis(),
        CALLS.load(Ordering::SeqCst)
    )))
}

fn kv(ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
    let key = call.str_opt("key").unwrap_or_default();
    match call.subcommand().first().copied() {
        Some("put") => {
            ctx.kv_put(key, json!(call.str_opt("value").unwrap_or_default()))?;
            Ok(Reply::text(format!("stored {key}")))
        }
        Some("get") => Ok(Reply::text(match ctx.kv_get(key)? {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => format!("{key} is not set"),
        })),
        _ => Err(PluginError::new(ErrorCode::BadInput, "kv needs put or get")),
    }
}

deckhand_plugin_sdk::export_plugin!(Echo);
