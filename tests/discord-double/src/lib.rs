//! A local double of Discord's REST API and gateway, for testing Deckhand's Discord adapter with
//! **unmodified serenity 0.12.5**.
//!
//! Why it exists: the adapter's promises (defer within 3 s, edit the original, ephemeral secrets,
//! autocomplete within limits, Retry-After honoured, gateway resumed) can only be checked by
//! watching the wire. The double speaks the wire protocol, built from the real payloads in
//! `payloads/` (copies of `../shared/discord-examples/`), records every request and gateway frame,
//! and lets a test inject interactions, disconnects and 429s.
//!
//! What it must not do: know anything about Deckhand, or be used outside tests. It models one
//! application, one guild, one shard; see README.md for what is and is not modelled.
//!
//! ```no_run
//! # async fn demo() {
//! use deckhand_discord_double::{CommandOption, DiscordDouble, InteractionBuilder};
//! use std::time::Duration;
//! let double = DiscordDouble::start().await;
//! // point serenity at it: HttpBuilder::new(token).proxy(double.base_url()).ratelimiter_disabled(true)
//! double.wait_for_ready(Duration::from_secs(10)).await.unwrap();
//! let sent = double
//!     .send_interaction(InteractionBuilder::slash("deploy").option(CommandOption::string("service", "simsvc")))
//!     .await;
//! let defer = double
//!     .wait_for(|r| sent.is_answered_by(r), Duration::from_secs(3))
//!     .await
//!     .unwrap();
//! assert_eq!(defer.callback_type(), Some(5));
//! # }
//! ```
#![warn(missing_docs)]

mod gateway;
mod guild;
mod interaction;
mod mentions;
mod payloads;
mod record;
mod rest;
mod rules;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use interaction::{CommandOption, InteractionBuilder, SentInteraction};
pub use payloads::{example_application_id, example_channel_id, example_guild_id, example_user_id};
pub use record::{Direction, GatewayFrame, RecordedRequest, Route, Timeout};
pub use tls::TLS_HOSTS;

/// Message flag EPHEMERAL (`1 << 6`).
pub const EPHEMERAL: u64 = 64;

/// Scope of a scripted 429, choosing which example (21/22/23-*.http.txt) it is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Per-route limit of this bot (`X-RateLimit-Scope: user`).
    User,
    /// Shared resource limit (`X-RateLimit-Scope: shared`).
    Shared,
    /// Global limit (`X-RateLimit-Global: true`).
    Global,
}

/// A scripted 429: the next `times` requests matching `method` and `path_contains` (matched
/// against the path below `/api/v10`) are answered with 429 and `Retry-After`.
#[derive(Clone, Debug)]
pub struct RateLimit {
    method: Option<String>,
    path_contains: String,
    scope: RateLimitScope,
    retry_after: Duration,
    times: usize,
}

impl RateLimit {
    /// Limit requests with `method` whose API path contains `path_contains` (e.g.
    /// `RateLimit::on("POST", "/callback")`). Defaults: user scope, 1 s, once.
    pub fn on(method: &str, path_contains: &str) -> Self {
        RateLimit {
            method: Some(method.to_ascii_uppercase()),
            path_contains: path_contains.into(),
            scope: RateLimitScope::User,
            retry_after: Duration::from_secs(1),
            times: 1,
        }
    }
    /// Limit any request.
    pub fn any() -> Self {
        RateLimit {
            method: None,
            ..Self::on("GET", "")
        }
    }
    /// Scope (header set and body of the matching example).
    #[must_use]
    pub fn scope(mut self, scope: RateLimitScope) -> Self {
        self.scope = scope;
        self
    }
    /// `Retry-After` (fractional seconds are sent as such; real Discord rounds the header up).
    #[must_use]
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
    /// How many matching requests get the 429.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }
    fn matches(&self, method: &str, api_path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && api_path.contains(&self.path_contains)
    }
}

/// Options; `DiscordDouble::builder()`.
#[derive(Clone, Debug)]
pub struct DoubleBuilder {
    heartbeat_interval: Duration,
    response_deadline: Duration,
    token_lifetime: Duration,
    bucket_limit: u32,
    bucket_window: Duration,
    enforce_rate_limits: bool,
    application_id: u64,
    guild_id: u64,
    channels: Vec<(u64, String)>,
    denied: Vec<(u64, u64)>,
}

impl Default for DoubleBuilder {
    fn default() -> Self {
        DoubleBuilder {
            heartbeat_interval: Duration::from_millis(41_250),
            response_deadline: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(15 * 60),
            bucket_limit: 5,
            bucket_window: Duration::from_secs(1),
            enforce_rate_limits: false,
            application_id: payloads::example_application_id(),
            guild_id: payloads::example_guild_id(),
            channels: vec![(payloads::example_channel_id(), "deckhand".into())],
            denied: Vec::new(),
        }
    }
}

impl DoubleBuilder {
    /// HELLO's `heartbeat_interval` (default 41.25 s).
    #[must_use]
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }
    /// Time allowed between INTERACTION_CREATE and the callback (Discord: 3 s). A later callback
    /// gets 404 `Unknown interaction` (10062), as on Discord.
    #[must_use]
    pub fn response_deadline(mut self, d: Duration) -> Self {
        self.response_deadline = d;
        self
    }
    /// Lifetime of the interaction token for edits and followups (Discord: 15 min). Later
    /// webhook calls get 401 `Invalid Webhook Token` (50027).
    #[must_use]
    pub fn token_lifetime(mut self, d: Duration) -> Self {
        self.token_lifetime = d;
        self
    }
    /// Per-route bucket advertised in the X-RateLimit-* headers (default 5 per 1 s).
    #[must_use]
    pub fn bucket(mut self, limit: u32, window: Duration) -> Self {
        self.bucket_limit = limit.max(1);
        self.bucket_window = window;
        self
    }
    /// Answer 429 when a client exceeds the advertised bucket (default off: headers only).
    #[must_use]
    pub fn enforce_rate_limits(mut self, on: bool) -> Self {
        self.enforce_rate_limits = on;
        self
    }
    /// Guild of interactions and READY (default: the examples' guild).
    #[must_use]
    pub fn guild_id(mut self, id: u64) -> Self {
        self.guild_id = id;
        self
    }

    /// A text channel of the guild (`GET /guilds/{id}/channels` lists it; messages to a channel
    /// the guild does not have get 404 Unknown Channel, 10003). The examples' channel is there
    /// by default, named `deckhand`.
    #[must_use]
    pub fn channel(mut self, id: u64, name: &str) -> Self {
        self.channels.push((id, name.into()));
        self
    }
    /// The bot may not post in channel `id`: messages there get 403 with `code` (50001 Missing
    /// Access or 50013 Missing Permissions), as on Discord.
    #[must_use]
    pub fn deny_channel(mut self, id: u64, code: u64) -> Self {
        self.denied.push((id, code));
        self
    }

    /// Bind the listeners on 127.0.0.1 (ephemeral ports) and start serving.
    ///
    /// # Panics
    /// If binding or generating the test certificate fails (test support: fail loudly).
    pub async fn start(self) -> DiscordDouble {
        DiscordDouble::start_with(self).await
    }
}

pub(crate) struct InteractionState {
    pub(crate) kind: u64,
    pub(crate) channel_id: u64,
    pub(crate) sent_at: Instant,
    pub(crate) acknowledged: Option<u64>,
    pub(crate) original_message: Option<u64>,
    /// A deferred original not yet edited: the first followup edits it instead (Discord).
    pub(crate) original_loading: bool,
    pub(crate) clicked_message: Option<u64>,
}

pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) log: Vec<(u64, Value)>,
}

pub(crate) enum Outbound {
    Frame(Value),
    Close(u16, String),
    Drop,
}

pub(crate) struct Bucket {
    pub(crate) window_start: Instant,
    pub(crate) used: u32,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) scripted: Vec<RateLimit>,
    pub(crate) buckets: HashMap<String, Bucket>,
    pub(crate) commands: HashMap<Option<u64>, Vec<Value>>,
    pub(crate) registrations: Vec<(Option<u64>, Value)>,
    /// Bulk overwrites still to refuse (`refuse_registrations`).
    pub(crate) refuse_registrations: usize,
    pub(crate) interactions: HashMap<String, InteractionState>,
    pub(crate) interaction_tokens: HashMap<u64, String>,
    pub(crate) messages: Vec<Value>,
    pub(crate) channels: Vec<Value>,
    /// Threads the bot created (not in the guild's channel list, as on Discord).
    pub(crate) threads: Vec<Value>,
    pub(crate) next_id: u64,
    pub(crate) session: Option<Session>,
    pub(crate) active: Option<(u64, mpsc::UnboundedSender<Outbound>)>,
    pub(crate) next_connection: u64,
    pub(crate) sessions_created: u64,
}

impl State {
    /// A fresh snowflake-looking id.
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        1_300_000_000_000_000_000 + self.next_id
    }

    pub(crate) fn message_mut(&mut self, id: u64) -> Option<&mut Value> {
        let id = id.to_string();
        self.messages
            .iter_mut()
            .rev()
            .find(|m| m["id"].as_str() == Some(id.as_str()))
    }
}

pub(crate) struct Shared {
    pub(crate) cfg: DoubleBuilder,
    pub(crate) requests: record::Log<RecordedRequest>,
    pub(crate) frames: record::Log<GatewayFrame>,
    pub(crate) state: Mutex<State>,
    pub(crate) http_addr: SocketAddr,
}

impl Shared {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("double state poisoned")
    }
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}", self.http_addr)
    }
    pub(crate) fn bot_user(&self) -> Value {
        let mut u = payloads::json(payloads::READY)["d"]["user"].clone();
        u["id"] = Value::String(self.cfg.application_id.to_string());
        u
    }
}

/// The running double. Dropping it stops the listeners.
pub struct DiscordDouble {
    shared: Arc<Shared>,
    tls_addr: SocketAddr,
    proxy_addr: SocketAddr,
    ca_pem: String,
    connect_targets: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl DiscordDouble {
    /// Start with default options.
    pub async fn start() -> DiscordDouble {
        DoubleBuilder::default().start().await
    }

    /// Options.
    pub fn builder() -> DoubleBuilder {
        DoubleBuilder::default()
    }

    async fn start_with(cfg: DoubleBuilder) -> DiscordDouble {
        let plain = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind plain listener");
        let tls_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS listener");
        let proxy_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy listener");
        let http_addr = plain.local_addr().expect("addr");
        let tls_addr = tls_listener.local_addr().expect("addr");
        let proxy_addr = proxy_listener.local_addr().expect("addr");
        let pki = tls::generate().expect("generate test CA");

        let state = State {
            channels: cfg
                .channels
                .iter()
                .map(|(id, name)| guild::channel(*id, name, cfg.guild_id))
                .collect(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            cfg,
            requests: record::Log::new(),
            frames: record::Log::new(),
            state: Mutex::new(state),
            http_addr,
        });
        let connect_targets = Arc::new(Mutex::new(Vec::new()));
        let (tls_tx, tls_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        let app_plain = rest::router(shared.clone(), false);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(plain, app_plain).await;
        }));
        let app_tls = rest::router(shared.clone(), true);
        let listener = tls::ChannelListener {
            rx: tls_rx,
            addr: tls_addr,
        };
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app_tls).await;
        }));
        tasks.push(tokio::spawn(tls::accept_tls(
            tls_listener,
            pki.acceptor.clone(),
            tls_tx.clone(),
        )));
        tasks.push(tokio::spawn(tls::accept_connect(
            proxy_listener,
            pki.acceptor,
            tls_tx,
            connect_targets.clone(),
        )));
        DiscordDouble {
            shared,
            tls_addr,
            proxy_addr,
            ca_pem: pki.ca_pem,
            connect_targets,
            tasks,
        }
    }

    // ----- addresses -----

    /// `http://127.0.0.1:PORT`: give it to serenity's `HttpBuilder::proxy` (with the ratelimiter
    /// disabled; see README).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.http_addr)
    }
    /// The plain listener (REST under `/api/v10` and the gateway websocket at `/`).
    pub fn http_addr(&self) -> SocketAddr {
        self.shared.http_addr
    }
    /// The gateway URL the double hands out in `GET /gateway` (`ws://127.0.0.1:PORT`).
    pub fn gateway_url(&self) -> String {
        self.shared.ws_url()
    }
    /// A TLS listener serving the same API with a certificate for [`TLS_HOSTS`] signed by
    /// [`Self::ca_pem`]. For serenity 0.12.5 (reqwest 0.12): `reqwest::Client::builder()
    /// .resolve("discord.com", double.tls_addr()).add_root_certificate(ca)` — reqwest 0.12 uses
    /// the port of the override when the URL has none — then `HttpBuilder::client(..)`.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }
    /// `http://127.0.0.1:PORT` of an HTTP CONNECT proxy that accepts tunnels to `discord.com:443`
    /// and terminates TLS with the test certificate. An alternative to [`Self::tls_addr`] for
    /// clients that cannot override DNS: `reqwest::Proxy::https(url)` + [`Self::ca_pem`].
    pub fn https_proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }
    /// PEM of the test CA that signed the `discord.com` certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    /// `CONNECT` targets the proxy was asked for, in order.
    pub fn connect_targets(&self) -> Vec<String> {
        self.connect_targets.lock().expect("poisoned").clone()
    }
    /// The application id (= bot user id) the double reports.
    pub fn application_id(&self) -> u64 {
        self.shared.cfg.application_id
    }
    /// The guild the double reports.
    pub fn guild_id(&self) -> u64 {
        self.shared.cfg.guild_id
    }

    // ----- REST: recordings and scripting -----

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.snapshot()
    }
    /// Wait until some request (already recorded or future) matches `pred`.
    pub async fn wait_for(
        &self,
        pred: impl FnMut(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Result<RecordedRequest, Timeout> {
        self.shared
            .requests
            .wait_for("a matching REST request", pred, timeout)
            .await
    }
    /// Readable list of all requests, for assertion messages.
    pub fn request_transcript(&self) -> String {
        self.shared.requests.transcript()
    }
    /// Answer the next matching request(s) with 429.
    pub fn script_rate_limit(&self, limit: RateLimit) {
        self.shared.state().scripted.push(limit);
    }
    /// Refuse the next `n` bulk overwrites with 400 Invalid Form Body naming the first command
    /// (`errors["0"]["name"]`), as Discord does when a rule the client did not know about is
    /// broken (Discord tightens rules; a client's validator can lag).
    pub fn refuse_registrations(&self, n: usize) {
        self.shared.state().refuse_registrations = n;
    }
    /// Bodies of every command registration (`PUT .../commands`): `(guild_id, body)`.
    pub fn registrations(&self) -> Vec<(Option<u64>, Value)> {
        self.shared.state().registrations.clone()
    }
    /// Currently registered commands (as returned to the client) for a guild or globally.
    pub fn commands(&self, guild_id: Option<u64>) -> Vec<Value> {
        self.shared
            .state()
            .commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }
    /// Every message created through the API and not deleted, in its current (edited) state.
    pub fn messages(&self) -> Vec<Value> {
        self.shared.state().messages.clone()
    }
    /// The guild's channels (as `GET /guilds/{id}/channels` returns them).
    pub fn channels(&self) -> Vec<Value> {
        self.shared.state().channels.clone()
    }
    /// Threads created through the API (`POST /channels/{id}/messages/{id}/threads` or
    /// `/channels/{id}/threads`); messages posted into one have its id as `channel_id`.
    pub fn threads(&self) -> Vec<Value> {
        self.shared.state().threads.clone()
    }
    /// Creates a text channel and sends CHANNEL_CREATE, as Discord does when an admin adds one.
    pub async fn create_channel(&self, id: u64, name: &str) -> u64 {
        self.create_channel_event(id, name, "CHANNEL_CREATE").await
    }
    /// Renames a channel and sends CHANNEL_UPDATE.
    pub async fn rename_channel(&self, id: u64, name: &str) -> u64 {
        self.create_channel_event(id, name, "CHANNEL_UPDATE").await
    }
    async fn create_channel_event(&self, id: u64, name: &str, event: &str) -> u64 {
        let channel = guild::channel(id, name, self.shared.cfg.guild_id);
        self.await_session().await;
        let mut st = self.shared.state();
        st.channels.retain(|c| c["id"] != channel["id"]);
        st.channels.push(channel.clone());
        gateway::dispatch(&mut st, event, channel)
    }

    // ----- gateway -----

    /// Every gateway frame (and connect/close event) so far.
    pub fn frames(&self) -> Vec<GatewayFrame> {
        self.shared.frames.snapshot()
    }
    /// Readable list of all gateway frames.
    pub fn gateway_transcript(&self) -> String {
        self.shared.frames.transcript()
    }
    /// Wait until some gateway frame (already seen or future) matches `pred`.
    pub async fn wait_for_frame(
        &self,
        pred: impl FnMut(&GatewayFrame) -> bool,
        timeout: Duration,
    ) -> Result<GatewayFrame, Timeout> {
        self.shared
            .frames
            .wait_for("a matching gateway frame", pred, timeout)
            .await
    }
    /// Wait until READY was sent to the client.
    pub async fn wait_for_ready(&self, timeout: Duration) -> Result<GatewayFrame, Timeout> {
        self.wait_for_frame(|f| f.is_dispatch("READY"), timeout)
            .await
    }
    /// Number of frames seen so far; pass to [`Self::wait_for_frame_after`].
    pub fn frame_count(&self) -> usize {
        self.shared.frames.snapshot().len()
    }
    /// Wait for a frame matching `pred` with index >= `from`.
    pub async fn wait_for_frame_after(
        &self,
        from: usize,
        mut pred: impl FnMut(&GatewayFrame) -> bool,
        timeout: Duration,
    ) -> Result<GatewayFrame, Timeout> {
        self.wait_for_frame(move |f| f.index >= from && pred(f), timeout)
            .await
    }
    /// Current session id, if the client identified.
    pub fn session_id(&self) -> Option<String> {
        self.shared.state().session.as_ref().map(|s| s.id.clone())
    }
    /// Whether a client connection is live and identified/resumed.
    pub fn is_connected(&self) -> bool {
        self.shared.state().active.is_some()
    }

    /// Send any dispatch (`t`, `d`) on the session; returns its sequence number. If the
    /// connection is down, it is kept and replayed on RESUME, as Discord does.
    ///
    /// # Panics
    /// If no client identified within 10 s.
    pub async fn send_dispatch(&self, t: &str, d: Value) -> u64 {
        self.await_session().await;
        gateway::dispatch(&mut self.shared.state(), t, d)
    }

    /// Send an INTERACTION_CREATE built from the examples (complete, as serenity needs it).
    ///
    /// # Panics
    /// If no client identified within 10 s.
    pub async fn send_interaction(&self, builder: InteractionBuilder) -> SentInteraction {
        self.await_session().await;
        let mut st = self.shared.state();
        let interaction_id = st.new_id();
        let token = format!("double_token_{interaction_id}");
        let command_id = builder
            .command_name()
            .and_then(|name| {
                let guild = st.commands.get(&Some(self.shared.cfg.guild_id));
                let global = st.commands.get(&None);
                guild
                    .into_iter()
                    .chain(global)
                    .flatten()
                    .find(|c| c["name"] == name)
            })
            .and_then(|c| c["id"].as_str()?.parse().ok());
        let command_id = match command_id {
            Some(id) => id,
            None => st.new_id(),
        };
        let clicked_message = builder.custom_id().and_then(|cid| {
            st.messages
                .iter()
                .rev()
                .find(|m| message_has_custom_id(m, cid))
                .cloned()
        });
        let ctx = interaction::BuildContext {
            interaction_id,
            token: token.clone(),
            application_id: self.shared.cfg.application_id,
            guild_id: self.shared.cfg.guild_id,
            command_id,
            clicked_message,
        };
        let payload = builder.build(&ctx);
        let kind = payload["type"].as_u64().unwrap_or(2);
        let channel_id = payload["channel_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let clicked = payload
            .get("message")
            .and_then(|m| m["id"].as_str())
            .and_then(|s| s.parse().ok());
        st.interactions.insert(
            token.clone(),
            InteractionState {
                kind,
                channel_id,
                sent_at: Instant::now(),
                acknowledged: None,
                original_message: None,
                original_loading: false,
                clicked_message: clicked,
            },
        );
        st.interaction_tokens.insert(interaction_id, token.clone());
        let seq = gateway::dispatch(&mut st, "INTERACTION_CREATE", payload.clone());
        SentInteraction {
            id: interaction_id,
            token,
            seq,
            payload,
        }
    }

    /// Close the client's connection with a close frame `code` (e.g. 4000 unknown error; the
    /// client should RESUME). Dispatches sent meanwhile are replayed on RESUME.
    pub fn close_gateway(&self, code: u16) {
        if let Some((_, tx)) = self.shared.state().active.take() {
            let _ = tx.send(Outbound::Close(code, "closed by the test".into()));
        }
    }

    /// Drop the client's TCP connection without a close frame.
    pub fn drop_connection(&self) {
        if let Some((_, tx)) = self.shared.state().active.take() {
            let _ = tx.send(Outbound::Drop);
        }
    }

    /// Send op 7 RECONNECT (client should reconnect and RESUME).
    pub fn send_reconnect(&self) {
        gateway::send_raw(&self.shared.state(), payloads::json(payloads::RECONNECT));
    }

    /// Send op 9 INVALID_SESSION with `d: resumable`.
    pub fn send_invalid_session(&self, resumable: bool) {
        let mut p = payloads::json(payloads::INVALID_SESSION);
        p["d"] = Value::Bool(resumable);
        gateway::send_raw(&self.shared.state(), p);
    }

    async fn await_session(&self) {
        if self.shared.state().session.is_none() {
            self.wait_for_ready(Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| {
                    panic!("the client never identified: {e}");
                });
        }
    }
}

impl Drop for DiscordDouble {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock()
            && let Some((_, tx)) = st.active.take()
        {
            let _ = tx.send(Outbound::Drop);
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn message_has_custom_id(m: &Value, custom_id: &str) -> bool {
    m["components"].as_array().into_iter().flatten().any(|row| {
        row["components"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["custom_id"] == custom_id)
    })
}
