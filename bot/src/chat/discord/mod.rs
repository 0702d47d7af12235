//! The Discord surface: slash commands built from the plugin manifests, interactions turned
//! into [`Invocation`]s for the router, answers within Discord's deadlines, buttons for
//! confirmations and actions, autocomplete from the owning plugin, channel messages for
//! unprompted messages.
//!
//! It must not parse, authorize or confirm on its own: the router does, as for every surface.
//! Discord user ids and role ids become the [`deckhand_plugin_abi::proto::Caller`] the
//! `[[permissions]]` rules see (role ids mapped to names by `[discord.roles]`).
//!
//! serenity does the protocol: the gateway with its heartbeats, RESUME after a disconnect,
//! and the REST ratelimiter (buckets, `Retry-After`, global limits). The client is built with
//! [`ClientBuilder::new_with_http`] so tests can point it at a local double
//! ([`DiscordTransport`]); production uses the defaults (real discord.com, ratelimiter on).
//! See docs/discord.md for the setup.

pub mod autocomplete;
pub mod buttons;
pub mod channels;
pub mod config;
pub mod interaction;
pub mod mentions;
pub mod outbox;
pub mod register;
pub mod respond;
pub mod rules;
pub mod split;
mod thread;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use serenity::all::{
    ApplicationId, Client, ClientBuilder, CommandInteraction, Context, CreateActionRow,
    EventHandler, GatewayIntents, GuildChannel, GuildId, Http, HttpBuilder, HttpError, Interaction,
    Message, Ready, ResumedEvent, ShardManager,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::DiscordConfig;
pub use outbox::{ActionStore, DiscordOutbox};

use crate::router::{Invocation, Response, ResponseKind, Router};
use crate::state::{Db, StateError};
use buttons::PendingButton;
use channels::{ChannelDirectory, ConfiguredChannel};
use respond::{Mode, Plan, Target};

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("`deckhand serve` needs a [discord] section with a token in the config")]
    NotConfigured,
    #[error("cannot build the Discord client: {0}")]
    Client(#[source] serenity::Error),
    #[error("the Discord connection stopped: {0}")]
    Gateway(#[source] serenity::Error),
    #[error("the Discord client task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    #[error("registering the application commands failed: {0}")]
    Register(#[source] serenity::Error),
    #[error("Discord refused the command list ({reason}); trying again in {} s", retry_in.as_secs())]
    Refused { reason: String, retry_in: Duration },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Channels(#[from] channels::LoadError),
    #[error("channels in the config that the Discord guild does not have:\n  {}", .0.join("\n  "))]
    Unresolved(Vec<String>),
}

/// How the client reaches Discord. The default is production: `https://discord.com` with
/// serenity's ratelimiter on.
#[derive(Clone, Default)]
pub struct DiscordTransport {
    /// Rewrite `https://discord.com` to this base URL (tests). serenity's ratelimiter builds
    /// its requests without the proxy (serenity #1739), so it is turned off with this.
    pub base_url: Option<String>,
    /// The reqwest 0.12 client serenity uses (tests: one resolving discord.com to a local
    /// double and trusting its CA, keeping the ratelimiter on).
    pub client: Option<reqwest::Client>,
}

impl DiscordTransport {
    /// What `[discord]` configures: production, or `api_base_url` (testing only).
    pub fn from_config(config: &DiscordConfig) -> DiscordTransport {
        DiscordTransport {
            base_url: config.api_base_url.clone(),
            client: None,
        }
    }

    fn http(&self, token: &str, application_id: Option<u64>) -> Http {
        let mut builder = HttpBuilder::new(token);
        if let Some(id) = application_id {
            builder = builder.application_id(ApplicationId::new(id));
        }
        if let Some(client) = &self.client {
            builder = builder.client(client.clone());
        }
        if let Some(base) = &self.base_url {
            builder = builder.proxy(base.as_str()).ratelimiter_disabled(true);
        }
        builder.build()
    }
}

/// The registration's memory.
#[derive(Default)]
struct Registration {
    /// The last command list sent.
    last: Option<Value>,
    /// Set while Discord refuses `last`: it is sent again from `retry_at`.
    refused: Option<Refused>,
    /// Problems already warned about.
    warned: HashSet<String>,
    /// The other scopes were emptied.
    cleaned: bool,
}

struct Refused {
    attempts: u32,
    retry_at: Instant,
}

/// State shared by the event handler's tasks.
pub struct Adapter {
    pub(crate) router: Arc<Router>,
    pub(crate) config: DiscordConfig,
    pub(crate) actions: Arc<ActionStore>,
    pending: Mutex<HashMap<String, PendingButton>>,
    /// What was registered, to re-register only on change.
    registration: tokio::sync::Mutex<Registration>,
    /// Guilds whose interactions were refused (logged once each).
    foreign_guilds: Mutex<HashSet<u64>>,
    resync_started: AtomicBool,
    closed: AtomicBool,
}

/// Pending entries are kept this long after expiry so a late press hears "expired".
const KEEP_EXPIRED: Duration = Duration::from_secs(3600);

impl Adapter {
    fn new(router: Arc<Router>, db: Db, config: DiscordConfig) -> Result<Adapter, StateError> {
        let actions = Arc::new(ActionStore::new(db, config.action_ttl)?);
        Ok(Adapter {
            router,
            config,
            actions,
            pending: Mutex::default(),
            registration: tokio::sync::Mutex::default(),
            foreign_guilds: Mutex::default(),
            resync_started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    /// How long after an interaction arrived its token may still be used, with a margin.
    pub(crate) fn token_usable_for(&self) -> Duration {
        let lifetime = self.config.token_lifetime;
        lifetime.saturating_sub((lifetime / 10).min(Duration::from_secs(30)))
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingButton>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn pending_button(&self, code: &str) -> Option<PendingButton> {
        self.pending_map().get(&code.to_ascii_uppercase()).cloned()
    }

    pub(crate) fn forget_pending(&self, code: &str) {
        self.pending_map().remove(&code.to_ascii_uppercase());
    }

    /// The buttons a response carries: Confirm/Approve for a pending confirmation, which is
    /// remembered (requester, approver roles, expiry) to answer presses.
    pub(crate) fn buttons_for(
        &self,
        response: &Response,
        requester: &str,
        channel: &str,
    ) -> Vec<CreateActionRow> {
        if response.kind == ResponseKind::Ok && !response.actions.is_empty() {
            return self.action_rows(&response.actions, channel);
        }
        let (ResponseKind::Pending, Some(code), Some(waiting)) =
            (response.kind, &response.confirmation, &response.waiting)
        else {
            return Vec::new();
        };
        let command = waiting.command.clone();
        let approver_roles = waiting.approver_roles.clone();
        let timeout = self.router.options().confirm_timeout;
        let approval = approver_roles.is_some();
        let now = Instant::now();
        let mut pending = self.pending_map();
        pending.retain(|_, p| p.expires_at + KEEP_EXPIRED > now);
        pending.insert(
            code.clone(),
            PendingButton {
                requester: requester.to_owned(),
                approver_roles,
                command,
                expires_at: now + timeout,
                timeout,
            },
        );
        vec![buttons::confirmation_row(code, approval)]
    }

    /// Buttons for the actions a plugin offers under its reply: each press runs its command as
    /// the presser (the same `dh:run` actions as unprompted messages' buttons).
    fn action_rows(
        &self,
        actions: &[deckhand_plugin_abi::proto::ReplyAction],
        channel: &str,
    ) -> Vec<CreateActionRow> {
        let actions: Vec<crate::chat::Action> = actions
            .iter()
            .map(|a| crate::chat::Action {
                label: a.label.clone(),
                command: a.command.clone(),
            })
            .collect();
        match outbox::action_buttons(&self.actions, channel, &actions) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a reply's buttons; the reply goes without them");
                Vec::new()
            }
        }
    }

    /// Registers the command list if it changed since the last registration. A PUT replaces
    /// the whole list, so commands no longer provided disappear. Commands Discord would refuse
    /// are left out ([`rules`]) and warned about once; a list Discord refuses anyway is
    /// reported once, with the command and rule it names, and sent again with backoff (a
    /// reload may have fixed nothing, but Discord's rules or limits may have been the cause).
    /// After the first success, the other scope's commands (global when guild-scoped, other
    /// guilds' otherwise) are removed, so switching `guild_id` leaves no duplicates.
    pub async fn sync_commands(&self, http: &Http) -> Result<bool, DiscordError> {
        let (commands, errors) = register::commands_json(&self.router.index());
        let (commands, violations) = rules::accepted(commands);
        let payload = Value::Array(commands);
        let mut state = self.registration.lock().await;
        let problems = errors
            .iter()
            .map(ToString::to_string)
            .chain(violations.iter().map(ToString::to_string));
        for problem in problems {
            if state.warned.insert(problem.clone()) {
                tracing::warn!(%problem, "command not registered on Discord");
            }
        }
        let now = Instant::now();
        if state.last.as_ref() == Some(&payload) {
            match &state.refused {
                None => {
                    // Registered; the other scopes are emptied once Discord answers the look-up.
                    if !state.cleaned {
                        state.cleaned = self.clean_other_scopes(http).await;
                    }
                    return Ok(false);
                }
                Some(refused) if now < refused.retry_at => return Ok(false),
                Some(_) => {}
            }
        } else {
            state.refused = None;
        }
        let result = match self.config.guild_id {
            Some(guild) => http
                .create_guild_commands(GuildId::new(guild), &payload)
                .await
                .map(|_| ()),
            None => http.create_global_commands(&payload).await.map(|_| ()),
        };
        match result {
            Ok(()) => {
                tracing::info!(
                    commands = payload.as_array().map_or(0, Vec::len),
                    guild = ?self.config.guild_id,
                    "application commands registered"
                );
                state.last = Some(payload);
                state.refused = None;
                if !state.cleaned {
                    state.cleaned = self.clean_other_scopes(http).await;
                }
                Ok(true)
            }
            Err(e) => {
                let refused = matches!(&e, serenity::Error::Http(HttpError::UnsuccessfulRequest(r))
                    if r.status_code.is_client_error() && r.status_code.as_u16() != 429);
                if !refused {
                    // A network error or a 429/5xx: sent again at the next resync.
                    state.last = None;
                    return Err(DiscordError::Register(e));
                }
                let attempts = state.refused.as_ref().map_or(0, |r| r.attempts) + 1;
                let backoff = register::retry_backoff(attempts);
                let first = attempts == 1;
                state.last = Some(payload.clone());
                state.refused = Some(Refused {
                    attempts,
                    retry_at: now + backoff,
                });
                let reason = register::refusal(&e, &payload);
                if first {
                    Err(DiscordError::Refused {
                        reason,
                        retry_in: backoff,
                    })
                } else {
                    tracing::debug!(%reason, attempts, "Discord refused the command list again");
                    Ok(false)
                }
            }
        }
    }

    /// Empties the scopes Deckhand does not register in. Returns whether it could look.
    async fn clean_other_scopes(&self, http: &Http) -> bool {
        let mut ok = true;
        if self.config.guild_id.is_some() {
            match http.get_global_commands().await {
                Ok(list) if !list.is_empty() => {
                    if let Err(e) = http.create_global_commands(&Value::Array(vec![])).await {
                        tracing::warn!(error = %e, "cannot remove the global commands");
                        ok = false;
                    } else {
                        tracing::info!(
                            removed = list.len(),
                            "global commands removed (commands are guild-scoped now)"
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the global commands");
                    ok = false;
                }
            }
        }
        let guilds = match http.get_guilds(None, None).await {
            Ok(guilds) => guilds,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the bot's guilds");
                return false;
            }
        };
        for guild in guilds {
            if Some(guild.id.get()) == self.config.guild_id {
                continue;
            }
            match http.get_guild_commands(guild.id).await {
                Ok(list) if !list.is_empty() => {
                    match http
                        .create_guild_commands(guild.id, &Value::Array(vec![]))
                        .await
                    {
                        Ok(_) => tracing::info!(
                            guild = guild.id.get(),
                            removed = list.len(),
                            "guild commands of another scope removed"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, guild = guild.id.get(), "cannot remove guild commands");
                            ok = false;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, guild = guild.id.get(), "cannot list guild commands");
                    ok = false;
                }
            }
        }
        ok
    }

    /// Whether an interaction from `guild` is served: the configured guild (and
    /// `allowed_guilds`), any guild when neither is set, and DMs (no guild; the caller then
    /// has no roles, so only commands open to everyone run).
    pub(crate) fn serves(&self, guild: Option<GuildId>) -> bool {
        let Some(guild) = guild.map(GuildId::get) else {
            return true;
        };
        let listed = self.config.allowed_guilds.contains(&guild);
        match self.config.guild_id {
            Some(own) => own == guild || listed,
            None => self.config.allowed_guilds.is_empty() || listed,
        }
    }

    /// Logs an interaction from a guild not in config, once per guild.
    pub(crate) fn foreign(&self, guild: Option<GuildId>) {
        let id = guild.map_or(0, GuildId::get);
        let mut seen = self
            .foreign_guilds
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if seen.insert(id) {
            tracing::warn!(guild = id, "interaction from a guild not in config refused");
        }
    }

    async fn on_command(self: Arc<Self>, http: Arc<Http>, command: CommandInteraction) {
        let received = Instant::now();
        if !self.serves(command.guild_id) {
            self.foreign(command.guild_id);
            refuse_foreign(&http, &command).await;
            return;
        }
        let caller = interaction::caller(&self.config, &command.user, command.member.as_deref());
        let line = interaction::command_line(&command.data);
        let (path, _) = interaction::split_path(&command.data);
        let index = self.router.index();
        let spec = index.entries.get(&command.data.name).map(|(_, s)| s);
        // Discord shows the options a command was called with to whoever sees the reply, so a
        // call carrying a sensitive option is answered only to the caller.
        let sensitive = interaction::has_sensitive_option(spec, &command.data);
        // A command whose time limit is past the interaction token's lifetime runs in a
        // thread (guild channels only; a DM has none).
        let leaf = interaction::leaf_spec(spec, &path);
        let limit = leaf
            .and_then(|leaf| leaf.timeout_secs)
            .map_or(self.router.options().default_timeout, Duration::from_secs);
        let long = command.guild_id.is_some() && limit > self.token_usable_for();
        // A reply the manifest calls private is deferred ephemerally: no public "thinking…".
        let private = leaf.is_some_and(|leaf| leaf.private);
        let plan = Plan {
            mode: Mode::Reply {
                defer_ephemeral: sensitive || private,
            },
            // Never the options: they may hold secrets.
            label: format!("/{}", path.join(" ")),
            errors_private: false,
            force_private: sensitive,
            long,
        };
        let channel = command.channel_id.get().to_string();
        let invocation = Invocation::new("discord", &channel, caller, &line);
        respond::run_and_answer(
            self,
            http,
            Target::Command(Box::new(command)),
            invocation,
            plan,
            received,
        )
        .await;
    }
}

/// The answer to an interaction from a guild not in config: a short ephemeral refusal, so the
/// caller sees why nothing happens (instead of "The application did not respond") and nothing
/// runs, is audited or reaches a plugin.
pub(crate) const FOREIGN_GUILD: &str =
    "This Deckhand does not serve this server; ask its operators to add the server to its config.";

async fn refuse_foreign(http: &Http, command: &CommandInteraction) {
    let refusal = serenity::all::CreateInteractionResponse::Message(
        serenity::all::CreateInteractionResponseMessage::new()
            .content(FOREIGN_GUILD)
            .ephemeral(true)
            .allowed_mentions(mentions::Pings::none().allowed()),
    );
    if let Err(e) = command.create_response(http, refusal).await {
        tracing::debug!(error = %e, "cannot refuse an interaction");
    }
}

fn resync_loop(adapter: Weak<Adapter>, http: Arc<Http>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(adapter) = adapter.upgrade() else {
                return;
            };
            if adapter.closed.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = adapter.sync_commands(&http).await {
                tracing::error!(error = %e, "re-registering commands failed");
            }
        }
    });
}

struct Handler {
    adapter: Arc<Adapter>,
    channels: Arc<ChannelDirectory>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, session = %ready.session_id, "connected to Discord");
        crate::metrics::chat_connected(true);
        ctx.http.set_application_id(ready.application.id);
        if let Err(e) = self.adapter.sync_commands(&ctx.http).await {
            tracing::error!(error = %e, "registering commands failed");
        }
        if !self.adapter.resync_started.swap(true, Ordering::SeqCst) {
            resync_loop(
                Arc::downgrade(&self.adapter),
                ctx.http.clone(),
                self.adapter.config.resync_interval,
            );
        }
    }

    /// `/readyz` follows the gateway: connecting, resuming or disconnected is not ready.
    async fn shard_stage_update(
        &self,
        _ctx: Context,
        event: serenity::gateway::ShardStageUpdateEvent,
    ) {
        crate::metrics::chat_connected(event.new == serenity::gateway::ConnectionStage::Connected);
    }

    async fn channel_create(&self, _ctx: Context, channel: GuildChannel) {
        self.channels.upsert(&channel);
    }

    async fn channel_update(&self, _ctx: Context, _old: Option<GuildChannel>, new: GuildChannel) {
        self.channels.upsert(&new);
    }

    async fn channel_delete(
        &self,
        _ctx: Context,
        channel: GuildChannel,
        _messages: Option<Vec<Message>>,
    ) {
        self.channels.remove(channel.id.get());
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        tracing::info!("Discord session resumed");
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let adapter = self.adapter.clone();
        match interaction {
            Interaction::Command(command) => adapter.on_command(ctx.http.clone(), command).await,
            Interaction::Autocomplete(request) if adapter.serves(request.guild_id) => {
                autocomplete::answer(&adapter, &ctx.http, request).await
            }
            Interaction::Component(press) if adapter.serves(press.guild_id) => {
                buttons::press(adapter, ctx.http.clone(), press).await
            }
            Interaction::Autocomplete(request) => {
                adapter.foreign(request.guild_id);
                autocomplete::refuse(&ctx.http, request).await
            }
            Interaction::Component(press) => {
                adapter.foreign(press.guild_id);
                buttons::refuse_foreign(&ctx.http, &press).await
            }
            _ => {}
        }
    }
}

/// A running Discord connection.
pub struct DiscordHandle {
    pub adapter: Arc<Adapter>,
    /// serenity's REST client (ratelimited), for other parts of the bot.
    pub http: Arc<Http>,
    pub outbox: Arc<DiscordOutbox>,
    /// The guild's channels by name, kept current from the gateway.
    pub channels: Arc<ChannelDirectory>,
    shard_manager: Arc<ShardManager>,
    task: JoinHandle<Result<(), serenity::Error>>,
}

impl DiscordHandle {
    /// Closes the gateway connection and waits for the client to stop.
    pub async fn shutdown(self) {
        self.adapter.closed.store(true, Ordering::Relaxed);
        self.shard_manager.shutdown_all().await;
        let _ = self.task.await;
    }

    /// Fails with every configured channel that does not resolve in the guild.
    pub fn check_channels(&self, configured: &[ConfiguredChannel]) -> Result<(), DiscordError> {
        let problems = channels::unresolved(&self.channels, configured);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DiscordError::Unresolved(problems))
        }
    }

    /// The outbox as the trait object alerts and schedules take.
    pub fn outbox(&self) -> Arc<dyn crate::chat::Outbox> {
        self.outbox.clone()
    }

    /// Runs until the client stops (an error such as an invalid token) or Ctrl-C.
    pub async fn run(mut self) -> Result<(), DiscordError> {
        tokio::select! {
            result = &mut self.task => {
                result.map_err(DiscordError::Task)?.map_err(DiscordError::Gateway)
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("stopping on Ctrl-C");
                self.shutdown().await;
                Ok(())
            }
        }
    }
}

/// `deckhand check --online`: lists the guild's channels over REST (no gateway) and returns
/// every configured channel that does not resolve.
pub async fn check_channels_online(
    config: &DiscordConfig,
    configured: &[ConfiguredChannel],
) -> Result<Vec<String>, DiscordError> {
    let http =
        DiscordTransport::from_config(config).http(config.token.expose(), config.application_id);
    let channels = ChannelDirectory::new(config.guild_id);
    channels.load(&http).await?;
    Ok(channels::unresolved(&channels, configured))
}

/// Connects to Discord and starts answering interactions.
pub async fn start(
    router: Arc<Router>,
    db: Db,
    config: DiscordConfig,
    transport: DiscordTransport,
) -> Result<DiscordHandle, DiscordError> {
    let http = transport.http(config.token.expose(), config.application_id);
    let channels = Arc::new(ChannelDirectory::new(config.guild_id));
    let adapter = Arc::new(Adapter::new(router, db, config)?);
    // Interactions arrive whatever the intents; GUILDS is the smallest useful set and is not
    // privileged.
    let mut client: Client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(Handler {
            adapter: adapter.clone(),
            channels: channels.clone(),
        })
        .await
        .map_err(DiscordError::Client)?;
    let http = client.http.clone();
    // Before the gateway connects, so no channel event is overwritten by the listing.
    let count = channels.load(&http).await?;
    tracing::info!(channels = count, "Discord channels listed");
    let shard_manager = client.shard_manager.clone();
    let task = tokio::spawn(async move { client.start().await });
    let outbox = Arc::new(DiscordOutbox::new(
        http.clone(),
        adapter.actions.clone(),
        channels.clone(),
    ));
    Ok(DiscordHandle {
        adapter,
        http,
        outbox,
        channels,
        shard_manager,
        task,
    })
}
