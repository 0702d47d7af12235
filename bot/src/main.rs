//! The `deckhand` binary: command-line parsing and wiring; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use deckhand::app::App;
use deckhand::config::Config;

#[derive(Parser)]
#[command(
    name = "deckhand",
    version,
    about = "ChatOps for Azure and Kubernetes, served by plugins"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "DECKHAND_CONFIG",
        default_value = "config/deckhand.toml"
    )]
    config: PathBuf,
    /// Log format on stderr: `text` for people, `json` (one object per line, with the
    /// command's span fields) for log collectors. Filter with RUST_LOG (default `warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Chat with the bot in the terminal (commands from stdin, replies on stdout).
    Shell {
        /// Start the cloud sandbox in this process (a local double of Azure and AKS, seeded
        /// with a realistic estate) and point the bot at it. No real cloud is touched.
        #[arg(long)]
        sandbox: bool,
    },
    /// Serve the configured chat surfaces (Discord, from the [discord] section) until Ctrl-C,
    /// with schedules and alerts posting to Discord channels.
    Serve {
        /// Start the cloud sandbox in this process and point the bot at it (for trying the
        /// Discord side without Azure).
        #[arg(long)]
        sandbox: bool,
    },
    /// Validate the configuration and the plugins, then exit (non-zero on any problem).
    Check {
        /// Also ask Discord: resolve the channel names the config uses against the guild's
        /// channels (needs the [discord] token; nothing is posted or registered).
        #[arg(long)]
        online: bool,
    },
    /// Inspect plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Manage the state database ([state]: the SQLite file or PostgreSQL).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Bring the state database to this build's schema (core and every component) and print
    /// the versions. `serve` does the same at start; this is for doing it ahead of a rollout.
    Migrate,
    /// Copy the state database into a new SQLite file (e.g. to move off PostgreSQL, or to
    /// inspect it with sqlite3).
    Export {
        /// The backend to write; only `sqlite`.
        #[arg(long, value_parser = ["sqlite"])]
        to: String,
        /// The new file (refused when it exists).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List the plugins that load, with their commands.
    List {
        /// Print JSON (manifests) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the Kubernetes ClusterRole the loaded plugins' declared capabilities need.
    Rbac {
        /// Name of the ClusterRole.
        #[arg(long, default_value = "deckhand-plugins")]
        name: String,
    },
}

/// Logs go to stderr through the redacting writer: no configured secret reaches a log line.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(deckhand::redact::LogWriter(std::io::stderr));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("deckhand: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Shell { sandbox } => {
            let mut config = config;
            let _sandbox = start_sandbox(sandbox, &mut config).await?;
            let app = App::start(config).context("starting the bot")?;
            for error in &app.load_errors {
                eprintln!("warning: {error}");
            }
            let schedules = app.start_scheduler_for_terminal().await?;
            let alerts = app.start_alerts_for_terminal().await?;
            let ops = app.start_ops(alerts.as_ref()).await?;
            let follow_ups =
                app.start_follow_ups(std::sync::Arc::new(deckhand::chat::TerminalOutbox));
            let cost = app.start_cost(
                std::sync::Arc::new(deckhand::chat::TerminalOutbox),
                std::sync::Arc::new(deckhand::sched::SystemClock),
            )?;
            let result =
                deckhand::chat::terminal::run(app.router.clone(), &app.config.terminal).await;
            // Piped input ends before a build that outlived its command is done: wait for it.
            app.host.services().follow_ups_settled().await;
            if let Some(runner) = follow_ups {
                runner.abort();
            }
            // Stop the engines and drop the app here (not in a leak or at exit), so the plugin
            // host removes its folder of plugin copies.
            schedules.shutdown().await;
            drop(ops);
            drop(alerts);
            drop(cost);
            drop(app);
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { sandbox } => {
            let mut config = config;
            let _sandbox = start_sandbox(sandbox, &mut config).await?;
            let app = App::start(config).context("starting the bot")?;
            for error in &app.load_errors {
                eprintln!("warning: {error}");
            }
            let discord = app.start_discord().await?;
            // Nothing is posted with a name that does not resolve; exiting closes the gateway.
            discord.check_channels(&app.configured_channels())?;
            let leadership =
                deckhand::sched::leader::from_config(app.config.schedules.leader.as_ref()).await?;
            let _schedules = app.start_scheduler(
                discord.outbox(),
                leadership,
                std::sync::Arc::new(deckhand::sched::SystemClock),
            )?;
            let alerts = app.start_alerts(discord.outbox()).await?;
            let _ops = app.start_ops(alerts.as_ref()).await?;
            let _follow_ups = app.start_follow_ups(discord.outbox());
            let _cost = app.start_cost(
                discord.outbox(),
                std::sync::Arc::new(deckhand::sched::SystemClock),
            )?;
            discord.run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { online } => check(config, &cli.config, online).await,
        Command::State { command } => {
            let db = deckhand::state::Db::open_config(&config.state, |p| config.resolve(p))
                .context("opening the state database")?;
            match command {
                StateCommand::Migrate => {
                    for (component, version) in deckhand::app::state_admin::migrate(&db)? {
                        println!("{component} {version}");
                    }
                    println!("{}: up to date", db.describe());
                }
                StateCommand::Export { to: _, file } => {
                    deckhand::app::state_admin::migrate(&db)?;
                    let report = deckhand::app::state_admin::export_to_sqlite(&db, &file)?;
                    for (table, rows) in &report {
                        println!("{table} {rows}");
                    }
                    println!("{} exported to {}", db.describe(), file.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins {
            command: PluginsCommand::Rbac { name },
        } => {
            let app = App::start(config).context("starting the bot")?;
            let registry = app.host.registry();
            let manifests: Vec<_> = registry.plugins.values().map(|p| &p.manifest).collect();
            print!("{}", deckhand::host::rbac::cluster_role(&name, &manifests));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins {
            command: PluginsCommand::List { json },
        } => {
            let app = App::start(config).context("starting the bot")?;
            let registry = app.host.registry();
            if json {
                let manifests: Vec<_> = registry.plugins.values().map(|p| &p.manifest).collect();
                println!("{}", serde_json::to_string_pretty(&manifests)?);
            } else {
                for plugin in registry.plugins.values() {
                    let commands: Vec<String> = plugin
                        .manifest
                        .commands
                        .iter()
                        .map(|c| format!("/{}", c.name))
                        .collect();
                    println!(
                        "{} {}  {}  ({})",
                        plugin.manifest.name,
                        plugin.manifest.version,
                        commands.join(" "),
                        plugin.source.display()
                    );
                }
            }
            for error in &app.load_errors {
                eprintln!("not loaded: {error}");
            }
            Ok(if app.load_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Starts the cloud sandbox when asked, prints its banner, and points `config` at it.
#[cfg(feature = "sandbox")]
async fn start_sandbox(
    wanted: bool,
    config: &mut Config,
) -> anyhow::Result<Option<deckhand::sandbox::Running>> {
    if !wanted {
        return Ok(None);
    }
    let running = deckhand::sandbox::start().await?;
    running.apply_to(config);
    eprintln!("{}", running.banner());
    Ok(Some(running))
}

/// A build without the `sandbox` feature (the container image) refuses `--sandbox`.
#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(wanted: bool, _config: &mut Config) -> anyhow::Result<Option<()>> {
    if wanted {
        anyhow::bail!(
            "this deckhand was built without the sandbox (cargo feature `sandbox`); \
             build with default features to use --sandbox"
        );
    }
    Ok(None)
}

/// Loads everything `shell` would, reports every problem, and touches no real state.
/// A plugin that refused a key of its `[plugins.config.NAME]` section, as `FILE:LINE: …`.
fn config_problem(
    error: &deckhand::host::HostError,
    path: &std::path::Path,
    text: &str,
) -> Option<String> {
    let deckhand::host::HostError::Load(deckhand::host::LoadError::Init { plugin, error, .. }) =
        error
    else {
        return None;
    };
    let key = error
        .option
        .as_deref()
        .filter(|_| error.code == deckhand_plugin_abi::proto::ErrorCode::Config)?;
    let line = deckhand::config::plugin_key_line(text, plugin, key)?;
    Some(format!(
        "{}:{line}: plugin {plugin}: {}",
        path.display(),
        error.message
    ))
}

async fn check(
    mut config: Config,
    path: &std::path::Path,
    online: bool,
) -> anyhow::Result<ExitCode> {
    // The configured database is only looked at; the checks below run on a scratch file.
    let mut problems: Vec<String> = Vec::new();
    match deckhand::app::state_admin::check(&config.state) {
        Ok(notes) => notes.iter().for_each(|n| eprintln!("state: {n}")),
        Err(problem) => problems.push(format!("{}: [state] {problem}", path.display())),
    }
    let scratch = tempfile::tempdir()?;
    config.state.path = scratch.path().join("check.db");
    config.state.url = None;
    let app = App::start(config)?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    problems.extend(
        app.load_errors
            .iter()
            .map(|e| config_problem(e, path, &text).unwrap_or_else(|| e.to_string())),
    );
    problems.extend(app.check_schedules());
    problems.extend(app.config.cost.iter().flat_map(|c| c.problems()));
    problems.extend(deckhand::alerts::check(
        app.config.alerts.as_ref(),
        &app.config.base_dir,
        &app.config.kubernetes,
    ));
    for plugin in app.host.registry().plugins.values() {
        let caps = &plugin.manifest.capabilities;
        // A `prefix*` pattern names the profiles the plugin's own config chooses; the plugin
        // reports an endpoint whose profile is missing.
        for profile in caps.http.iter().filter_map(|h| h.auth_profile.as_deref()) {
            if !profile.ends_with('*') && !app.config.auth_profiles.contains_key(profile) {
                problems.push(format!(
                    "{}: plugin {} uses auth profile {profile:?}, which [auth_profiles] does not define",
                    path.display(),
                    plugin.manifest.name
                ));
            }
        }
        for broker in &caps.amqp {
            if !app.config.amqp.contains_key(broker) {
                problems.push(format!(
                    "{}: plugin {} queries AMQP broker {broker:?}, which [amqp] does not define (its exact queue counts will be unavailable)",
                    path.display(),
                    plugin.manifest.name
                ));
            }
        }
        for program in &caps.programs {
            if !app.config.host.programs.contains_key(program) {
                problems.push(format!(
                    "{}: plugin {} runs program {program:?}, which [host.programs] does not define",
                    path.display(),
                    plugin.manifest.name
                ));
            }
        }
    }
    for warning in deckhand::alerts::warnings(app.config.alerts.as_ref()) {
        eprintln!("warning: {warning}");
    }
    let names = app.configured_channel_names();
    match (&app.config.discord, online) {
        (Some(discord), true) => {
            match deckhand::chat::discord::check_channels_online(
                discord,
                &app.configured_channels(),
            )
            .await
            {
                Ok(unresolved) => problems.extend(
                    unresolved
                        .into_iter()
                        .map(|p| format!("{}: {p}", path.display())),
                ),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        (None, true) => problems.push(format!(
            "{}: --online resolves channels on Discord, but there is no [discord] section",
            path.display()
        )),
        (_, false) if !names.is_empty() => eprintln!(
            "note: channel names ({}) will be resolved against the Discord guild at start; \
             `deckhand check --online` resolves them now",
            names.join(", ")
        ),
        _ => {}
    }
    let count = app.host.registry().plugins.len();
    if problems.is_empty() {
        println!("{}: ok ({count} plugins loaded)", path.display());
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}
