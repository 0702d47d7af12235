//! What the double saw: every REST request and every gateway frame, with timestamps, plus a
//! `wait_for` that lets a test block until something matching a predicate shows up.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::watch;

/// One REST request as the double received it, with the status it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Arrival order, starting at 0.
    pub index: usize,
    /// HTTP method, upper case (`"POST"`).
    pub method: String,
    /// Full path, e.g. `/api/v10/interactions/1/tok/callback`.
    pub path: String,
    /// Query string without `?`, if any.
    pub query: Option<String>,
    /// Request headers, names lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body; for `multipart/form-data` the `payload_json` part.
    pub body: Option<Value>,
    /// Files of a multipart body (`files[n]` parts): `(filename, content as text)`.
    pub files: Vec<(String, String)>,
    /// Status the double answered with (429 for scripted rate limits).
    pub status: u16,
    /// Whether it arrived over TLS (the `discord.com` listener or the CONNECT proxy).
    pub tls: bool,
    /// Monotonic arrival time, for measuring gaps (e.g. a retry after a 429).
    pub at: Instant,
    /// Wall-clock arrival time.
    pub timestamp: SystemTime,
}

impl RecordedRequest {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path below the API version prefix: `/interactions/1/tok/callback`.
    pub fn api_path(&self) -> &str {
        strip_api_prefix(&self.path).unwrap_or(&self.path)
    }

    /// What the request is, in Discord terms.
    pub fn route(&self) -> Route {
        Route::parse(&self.method, &self.path)
    }

    /// Interaction callback `type` (4 message, 5 defer, 6 deferred update, 7 update,
    /// 8 autocomplete result, 9 modal), if this is a callback.
    pub fn callback_type(&self) -> Option<u64> {
        match self.route() {
            Route::InteractionCallback { .. } => self.body.as_ref()?.get("type")?.as_u64(),
            _ => None,
        }
    }

    /// Message flags of the body (`flags` for messages, `data.flags` for callbacks).
    pub fn message_flags(&self) -> u64 {
        let Some(body) = &self.body else { return 0 };
        body.get("flags")
            .or_else(|| body.get("data").and_then(|d| d.get("flags")))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Whether the body asks for an ephemeral message (flag 64).
    pub fn is_ephemeral(&self) -> bool {
        self.message_flags() & crate::EPHEMERAL != 0
    }

    /// The mentions in the message content that would notify someone, by the body's
    /// `allowed_mentions` (or `data.allowed_mentions`) as Discord applies them.
    pub fn pings(&self) -> Vec<String> {
        let Some(content) = self.content() else {
            return Vec::new();
        };
        let body = self.body.as_ref();
        let allowed = body.and_then(|b| {
            b.get("allowed_mentions")
                .or_else(|| b.get("data").and_then(|d| d.get("allowed_mentions")))
        });
        crate::mentions::pings(content, allowed)
    }

    /// Files attached to a multipart body: `(filename, content)`.
    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    /// Message content of the body (`content` or `data.content`).
    pub fn content(&self) -> Option<&str> {
        let body = self.body.as_ref()?;
        body.get("content")
            .or_else(|| body.get("data").and_then(|d| d.get("content")))
            .and_then(Value::as_str)
    }
}

impl fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} -> {}",
            self.index, self.method, self.path, self.status
        )?;
        if let Some(body) = &self.body {
            let text = body.to_string();
            let cut: String = text.chars().take(300).collect();
            write!(f, " {cut}")?;
        }
        Ok(())
    }
}

pub(crate) fn strip_api_prefix(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api")?;
    if let Some(after_v) = rest.strip_prefix("/v") {
        let digits = after_v.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            return Some(&after_v[digits..]);
        }
    }
    Some(rest)
}

/// A REST request classified by the Discord route it targets.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /gateway`
    Gateway,
    /// `GET /gateway/bot`
    GatewayBot,
    /// `GET /users/@me`
    CurrentUser,
    /// `GET /oauth2/applications/@me`
    CurrentApplication,
    /// `PUT /applications/{app}/commands` or `.../guilds/{guild}/commands` (bulk overwrite).
    RegisterCommands {
        /// Application id in the path.
        application_id: u64,
        /// Guild id for guild commands, `None` for global.
        guild_id: Option<u64>,
    },
    /// Any other method on `/applications/{app}/[guilds/{guild}/]commands[/{id}]`.
    Commands {
        /// Application id in the path.
        application_id: u64,
        /// Guild id for guild commands.
        guild_id: Option<u64>,
    },
    /// `POST /interactions/{id}/{token}/callback`
    InteractionCallback {
        /// Interaction id.
        interaction_id: u64,
        /// Interaction token.
        token: String,
    },
    /// `PATCH /webhooks/{app}/{token}/messages/@original`
    EditOriginal {
        /// Interaction token.
        token: String,
    },
    /// `POST /webhooks/{app}/{token}` (followup message)
    Followup {
        /// Interaction token.
        token: String,
    },
    /// `PATCH /webhooks/{app}/{token}/messages/{id}` (edit a followup)
    EditFollowup {
        /// Interaction token.
        token: String,
        /// Message id.
        message_id: u64,
    },
    /// `POST /channels/{id}/messages`
    ChannelMessage {
        /// Channel id.
        channel_id: u64,
    },
    /// `POST /channels/{id}/messages/{id}/threads` (from a message) or `/channels/{id}/threads`
    CreateThread {
        /// The parent channel.
        channel_id: u64,
        /// The starter message, if any (the thread then has its id).
        message_id: Option<u64>,
    },
    /// `PATCH /channels/{id}/messages/{id}`
    EditChannelMessage {
        /// Channel id.
        channel_id: u64,
        /// Message id.
        message_id: u64,
    },
    /// Anything else.
    Other,
}

impl Route {
    /// Classify a method and full path.
    pub fn parse(method: &str, path: &str) -> Route {
        let Some(api) = strip_api_prefix(path) else {
            return Route::Other;
        };
        let segs: Vec<&str> = api.trim_matches('/').split('/').collect();
        let id = |s: &str| s.parse::<u64>().ok();
        match (method, segs.as_slice()) {
            ("GET", ["gateway"]) => Route::Gateway,
            ("GET", ["gateway", "bot"]) => Route::GatewayBot,
            ("GET", ["users", "@me"]) => Route::CurrentUser,
            ("GET", ["oauth2", "applications", "@me"]) => Route::CurrentApplication,
            ("PUT", ["applications", app, "commands"]) => match id(app) {
                Some(application_id) => Route::RegisterCommands {
                    application_id,
                    guild_id: None,
                },
                None => Route::Other,
            },
            ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
                match (id(app), id(guild)) {
                    (Some(application_id), Some(g)) => Route::RegisterCommands {
                        application_id,
                        guild_id: Some(g),
                    },
                    _ => Route::Other,
                }
            }
            (_, ["applications", app, "commands", ..]) => match id(app) {
                Some(application_id) => Route::Commands {
                    application_id,
                    guild_id: None,
                },
                None => Route::Other,
            },
            (_, ["applications", app, "guilds", guild, "commands", ..]) => {
                match (id(app), id(guild)) {
                    (Some(application_id), Some(g)) => Route::Commands {
                        application_id,
                        guild_id: Some(g),
                    },
                    _ => Route::Other,
                }
            }
            ("POST", ["interactions", iid, token, "callback"]) => match id(iid) {
                Some(interaction_id) => Route::InteractionCallback {
                    interaction_id,
                    token: (*token).to_string(),
                },
                None => Route::Other,
            },
            ("PATCH", ["webhooks", _app, token, "messages", "@original"]) => Route::EditOriginal {
                token: (*token).to_string(),
            },
            ("POST", ["webhooks", _app, token]) => Route::Followup {
                token: (*token).to_string(),
            },
            ("PATCH", ["webhooks", _app, token, "messages", mid]) => match id(mid) {
                Some(message_id) => Route::EditFollowup {
                    token: (*token).to_string(),
                    message_id,
                },
                None => Route::Other,
            },
            ("POST", ["channels", ch, "messages"]) => match id(ch) {
                Some(channel_id) => Route::ChannelMessage { channel_id },
                None => Route::Other,
            },
            ("POST", ["channels", ch, "messages", mid, "threads"]) => match (id(ch), id(mid)) {
                (Some(channel_id), Some(message_id)) => Route::CreateThread {
                    channel_id,
                    message_id: Some(message_id),
                },
                _ => Route::Other,
            },
            ("POST", ["channels", ch, "threads"]) => match id(ch) {
                Some(channel_id) => Route::CreateThread {
                    channel_id,
                    message_id: None,
                },
                None => Route::Other,
            },
            ("PATCH", ["channels", ch, "messages", mid]) => match (id(ch), id(mid)) {
                (Some(channel_id), Some(message_id)) => Route::EditChannelMessage {
                    channel_id,
                    message_id,
                },
                _ => Route::Other,
            },
            _ => Route::Other,
        }
    }
}

/// Direction of a gateway frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the client (serenity) to the double.
    FromClient,
    /// Sent by the double to the client.
    ToClient,
}

/// One gateway frame (or a connection event) as seen by the double.
#[derive(Clone, Debug)]
pub struct GatewayFrame {
    /// Arrival order, starting at 0.
    pub index: usize,
    /// Websocket connection number, starting at 1.
    pub connection: u64,
    /// Who sent it.
    pub direction: Direction,
    /// Gateway opcode; `None` for connection events (see `event`).
    pub op: Option<u64>,
    /// Dispatch name (`READY`, `INTERACTION_CREATE`, `RESUMED`, ...).
    pub t: Option<String>,
    /// Dispatch sequence number.
    pub s: Option<u64>,
    /// The whole payload (`{"op":..,"d":..}`), or `Null` for connection events.
    pub payload: Value,
    /// `connected`, `closed by client`, `closed with 4000`, `dropped`; `None` for frames.
    pub event: Option<String>,
    /// Monotonic time.
    pub at: Instant,
}

impl GatewayFrame {
    /// Whether this is a frame with opcode `op` from `direction`.
    pub fn is_op(&self, direction: Direction, op: u64) -> bool {
        self.direction == direction && self.op == Some(op)
    }

    /// Whether this is a dispatch named `t` sent to the client.
    pub fn is_dispatch(&self, t: &str) -> bool {
        self.direction == Direction::ToClient && self.op == Some(0) && self.t.as_deref() == Some(t)
    }
}

impl fmt::Display for GatewayFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::FromClient => "->",
            Direction::ToClient => "<-",
        };
        write!(f, "#{} conn{} {arrow} ", self.index, self.connection)?;
        if let Some(event) = &self.event {
            return write!(f, "[{event}]");
        }
        write!(f, "op {:?}", self.op.unwrap_or(u64::MAX))?;
        if let Some(t) = &self.t {
            write!(f, " {t}")?;
        }
        if let Some(s) = self.s {
            write!(f, " s={s}")?;
        }
        Ok(())
    }
}

/// A wait that ran out of time; its `Display` lists everything seen, to make failures readable.
#[derive(Debug)]
pub struct Timeout {
    /// What was waited for.
    pub what: String,
    /// How long.
    pub waited: Duration,
    /// Transcript of what was seen meanwhile.
    pub seen: String,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}; seen:\n{}",
            self.waited, self.what, self.seen
        )
    }
}

impl std::error::Error for Timeout {}

/// An append-only log with change notification.
pub(crate) struct Log<T> {
    items: Mutex<Vec<T>>,
    changed: watch::Sender<usize>,
}

impl<T: Clone + fmt::Display> Log<T> {
    pub(crate) fn new() -> Self {
        Log {
            items: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        }
    }

    /// Append; `make` gets the index.
    pub(crate) fn push_with(&self, make: impl FnOnce(usize) -> T) -> T {
        let mut items = self.items.lock().expect("log poisoned");
        let item = make(items.len());
        items.push(item.clone());
        let len = items.len();
        drop(items);
        self.changed.send_replace(len);
        item
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.items.lock().expect("log poisoned").clone()
    }

    pub(crate) fn transcript(&self) -> String {
        let items = self.items.lock().expect("log poisoned");
        items.iter().map(|i| format!("  {i}\n")).collect()
    }

    pub(crate) async fn wait_for(
        &self,
        what: &str,
        mut pred: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> Result<T, Timeout> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(found) = self
                .items
                .lock()
                .expect("log poisoned")
                .iter()
                .find(|i| pred(i))
            {
                return Ok(found.clone());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(Timeout {
                        what: what.to_string(),
                        waited: timeout,
                        seen: self.transcript(),
                    });
                }
            }
        }
    }
}
