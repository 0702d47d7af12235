//! REST: every request under `/api/v{n}` goes through one handler that records it, applies
//! scripted 429s and bucket headers, and answers like Discord (shapes from the examples).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::record::{RecordedRequest, strip_api_prefix};
use crate::{Bucket, RateLimitScope, Shared, State as DoubleState, payloads};

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    tls: bool,
}

pub(crate) fn router(shared: Arc<Shared>, tls: bool) -> Router {
    Router::new()
        .route("/", get(crate::gateway::upgrade))
        .fallback(handle)
        .with_state(App { shared, tls })
}

/// A reply: status, JSON body (None = empty), extra headers.
struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    fn empty(status: u16) -> Self {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }
    fn error(status: u16, code: u64, message: &str) -> Self {
        Self::json(status, json!({ "message": message, "code": code }))
    }
    fn invalid_form(errors: Value) -> Self {
        Self::json(
            400,
            json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
        )
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let at = Instant::now();
    let timestamp = SystemTime::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = parse_body(&content_type, &bytes);
    let files = parse_files(&content_type, &bytes);

    let shared = &app.shared;
    let reply = {
        let mut st = shared.state();
        let api = strip_api_prefix(&path).map(str::to_string);
        match api {
            None => Reply::error(404, 0, "404: Not Found"),
            Some(api) => respond(shared, &mut st, &method, &api, body.as_ref(), at),
        }
    };

    shared.requests.push_with(|index| RecordedRequest {
        index,
        method,
        path,
        query,
        headers,
        body,
        files,
        status: reply.status,
        tls: app.tls,
        at,
        timestamp,
    });

    let mut resp = match &reply.body {
        Some(v) => (
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
            axum::Json(v.clone()),
        )
            .into_response(),
        None => Response::builder()
            .status(reply.status)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    };
    add_headers(resp.headers_mut(), &reply.headers);
    resp
}

fn add_headers(h: &mut HeaderMap, extra: &[(String, String)]) {
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(k, v);
        }
    }
}

/// JSON body, or the `payload_json` part of a multipart body (messages with files).
fn parse_body(content_type: &str, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    if let Some(boundary) = content_type.split("boundary=").nth(1) {
        let boundary = format!("--{}", boundary.trim_matches('"'));
        let text = String::from_utf8_lossy(bytes);
        for part in text.split(boundary.as_str()) {
            if part.contains("name=\"payload_json\"") {
                let (_, rest) = part.split_once("\r\n\r\n")?;
                return serde_json::from_str(rest.trim_end_matches("\r\n")).ok();
            }
        }
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// The file parts of a multipart body: `(filename, content)`.
fn parse_files(content_type: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let text = String::from_utf8_lossy(bytes);
    text.split(boundary.as_str())
        .filter_map(|part| {
            let (head, body) = part.split_once("\r\n\r\n")?;
            let name = head.split("filename=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), body.trim_end_matches("\r\n").to_owned()))
        })
        .collect()
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_millis() == 0 {
        format!("{}", d.as_secs())
    } else {
        format!("{s:.3}")
    }
}

fn epoch_secs(t: SystemTime) -> String {
    format!(
        "{:.3}",
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    )
}

fn bucket_hash(key: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A 429 built from the example for `scope`, with the chosen Retry-After.
fn too_many(scope: RateLimitScope, retry_after: Duration, limit: u32, bucket: &str) -> Reply {
    let text = match scope {
        RateLimitScope::User => payloads::RATE_LIMIT_USER,
        RateLimitScope::Shared => payloads::RATE_LIMIT_SHARED,
        RateLimitScope::Global => payloads::RATE_LIMIT_GLOBAL,
    };
    let example = payloads::http_example(text);
    let reset = SystemTime::now() + retry_after;
    let mut headers = Vec::new();
    for (k, v) in example.headers {
        let v = match k.as_str() {
            "Retry-After" | "X-RateLimit-Reset-After" => secs(retry_after),
            "X-RateLimit-Reset" => epoch_secs(reset),
            "X-RateLimit-Limit" => limit.to_string(),
            "X-RateLimit-Remaining" if scope == RateLimitScope::User => "0".into(),
            "X-RateLimit-Remaining" => limit.saturating_sub(1).to_string(),
            "X-RateLimit-Bucket" => bucket.to_string(),
            "Content-Type" => continue,
            _ => v,
        };
        headers.push((k, v));
    }
    let mut body = example.body;
    body["retry_after"] = json!(retry_after.as_secs_f64());
    Reply {
        status: 429,
        body: Some(body),
        headers,
    }
}

fn respond(
    shared: &Shared,
    st: &mut DoubleState,
    method: &str,
    api: &str,
    body: Option<&Value>,
    now: Instant,
) -> Reply {
    let cfg = &shared.cfg;
    let bucket_key = format!("{method} {api}");
    let bucket_id = bucket_hash(&bucket_key);

    // Scripted 429s first.
    if let Some(i) = st
        .scripted
        .iter()
        .position(|r| r.times > 0 && r.matches(method, api))
    {
        let rule = &mut st.scripted[i];
        rule.times -= 1;
        let (scope, retry_after) = (rule.scope, rule.retry_after);
        if rule.times == 0 {
            st.scripted.remove(i);
        }
        return too_many(scope, retry_after, cfg.bucket_limit, &bucket_id);
    }

    // Bucket accounting for the X-RateLimit-* headers of 20-rate-limit-headers.txt.
    let b = st.buckets.entry(bucket_key).or_insert(Bucket {
        window_start: now,
        used: 0,
    });
    if now.duration_since(b.window_start) >= cfg.bucket_window {
        *b = Bucket {
            window_start: now,
            used: 0,
        };
    }
    b.used += 1;
    // Rounded up to whole milliseconds, so a client waiting exactly this long is never early.
    let left = cfg
        .bucket_window
        .saturating_sub(now.duration_since(b.window_start));
    let reset_after = Duration::from_millis(left.as_nanos().div_ceil(1_000_000) as u64);
    if b.used > cfg.bucket_limit && cfg.enforce_rate_limits {
        return too_many(
            RateLimitScope::User,
            reset_after,
            cfg.bucket_limit,
            &bucket_id,
        );
    }
    let remaining = cfg.bucket_limit.saturating_sub(b.used);
    let rl_headers: Vec<(String, String)> = payloads::rate_limit_header_names()
        .into_iter()
        .map(|k| {
            let v = match k.as_str() {
                "X-RateLimit-Limit" => cfg.bucket_limit.to_string(),
                "X-RateLimit-Remaining" => remaining.to_string(),
                "X-RateLimit-Reset" => epoch_secs(SystemTime::now() + reset_after),
                "X-RateLimit-Reset-After" => format!("{:.3}", reset_after.as_secs_f64()),
                _ => bucket_id.clone(),
            };
            (k, v)
        })
        .collect();

    let mut reply = route(shared, st, method, api, body, now);
    reply.headers.extend(rl_headers);
    reply
}

fn route(
    shared: &Shared,
    st: &mut DoubleState,
    method: &str,
    api: &str,
    body: Option<&Value>,
    now: Instant,
) -> Reply {
    let cfg = &shared.cfg;
    let segs: Vec<&str> = api.trim_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<u64>().ok();
    let empty = json!({});
    let body_or_empty = body.unwrap_or(&empty);
    match (method, segs.as_slice()) {
        ("GET", ["gateway"]) => {
            let mut g = payloads::json(payloads::GET_GATEWAY);
            g["url"] = json!(shared.ws_url());
            Reply::json(200, g)
        }
        ("GET", ["gateway", "bot"]) => {
            let mut g = payloads::json(payloads::GET_GATEWAY_BOT);
            g["url"] = json!(shared.ws_url());
            g["shards"] = json!(1);
            Reply::json(200, g)
        }
        ("GET", ["users", "@me"]) => Reply::json(200, shared.bot_user()),
        ("GET", ["users", "@me", "guilds"]) => {
            Reply::json(200, json!([crate::guild::partial_guild(shared)]))
        }
        ("GET", ["guilds", g, "channels"]) => {
            if id(g) == Some(cfg.guild_id) {
                Reply::json(200, Value::Array(st.channels.clone()))
            } else {
                Reply::error(403, 50001, "Missing Access")
            }
        }
        ("GET", ["oauth2", "applications", "@me"]) => Reply::json(200, application(shared)),

        // Commands: bulk overwrite, list, create, delete.
        (_, ["applications", app, "commands", rest @ ..]) if id(app).is_some() => {
            commands(shared, st, method, None, rest, body)
        }
        (_, ["applications", app, "guilds", guild, "commands", rest @ ..])
            if id(app).is_some() && id(guild).is_some() =>
        {
            commands(shared, st, method, id(guild), rest, body)
        }

        ("POST", ["interactions", iid, token, "callback"]) => {
            callback(shared, st, id(iid).unwrap_or(0), token, body_or_empty, now)
        }

        (_, ["webhooks", app, token, rest @ ..]) if id(app) == Some(cfg.application_id) => {
            webhook(shared, st, method, token, rest, body_or_empty, now)
        }

        // Threads: from a message (the thread gets the message's id, as on Discord) or not.
        ("POST", ["channels", ch, "messages", mid, "threads"]) if id(ch).is_some() => {
            create_thread(shared, st, id(ch).unwrap_or(0), id(mid), body_or_empty)
        }
        ("POST", ["channels", ch, "threads"]) if id(ch).is_some() => {
            create_thread(shared, st, id(ch).unwrap_or(0), None, body_or_empty)
        }
        ("POST", ["channels", ch, "messages"]) if id(ch).is_some() => {
            if let Some((status, code, message)) =
                crate::guild::refuse_post(shared, st, id(ch).unwrap_or(0))
            {
                return Reply::error(status, code, message);
            }
            if let Some(err) = validate_message(body_or_empty) {
                return err;
            }
            // `enforce_nonce`: a second create with the nonce of one this author made (Discord:
            // "in the past few minutes"; the double: ever) returns that message, no new one.
            if body_or_empty.get("enforce_nonce") == Some(&json!(true))
                && let Some(nonce) = body_or_empty.get("nonce").filter(|n| !n.is_null())
                && let Some(earlier) = st.messages.iter().find(|m| {
                    m["channel_id"] == json!(id(ch).unwrap_or(0).to_string())
                        && m["author"]["id"] == shared.bot_user()["id"]
                        && m.get("nonce") == Some(nonce)
                })
            {
                return Reply::json(200, earlier.clone());
            }
            let mid = st.new_id();
            let m = payloads::message(
                mid,
                id(ch).unwrap_or(0),
                &shared.bot_user(),
                body_or_empty,
                None,
                cfg.application_id,
            );
            st.messages.push(m.clone());
            Reply::json(200, m)
        }
        ("PATCH", ["channels", _ch, "messages", mid]) => {
            if let Some(err) = validate_message(body_or_empty) {
                return err;
            }
            match id(mid).and_then(|m| st.message_mut(m)) {
                Some(m) => {
                    payloads::merge_message_fields(m, body_or_empty);
                    m["edited_timestamp"] = json!(payloads::rfc3339_now());
                    Reply::json(200, m.clone())
                }
                None => Reply::error(404, 10008, "Unknown Message"),
            }
        }
        ("GET", ["channels", _ch, "messages", mid]) => {
            match id(mid).and_then(|m| st.message_mut(m)) {
                Some(m) => Reply::json(200, m.clone()),
                None => Reply::error(404, 10008, "Unknown Message"),
            }
        }
        ("DELETE", ["channels", _ch, "messages", mid]) => {
            let before = st.messages.len();
            st.messages.retain(|m| m["id"].as_str() != Some(*mid));
            if st.messages.len() == before {
                Reply::error(404, 10008, "Unknown Message")
            } else {
                Reply::empty(204)
            }
        }
        _ => Reply::error(404, 0, "404: Not Found"),
    }
}

/// `POST /channels/{id}/messages/{id}/threads` and `POST /channels/{id}/threads`: the parent
/// must be a channel the bot may post in, the starter message must exist in it and have no
/// thread yet (160004), the name 1–100 characters.
fn create_thread(
    shared: &Shared,
    st: &mut DoubleState,
    parent: u64,
    message: Option<u64>,
    body: &Value,
) -> Reply {
    if let Some((status, code, text)) = crate::guild::refuse_post(shared, st, parent) {
        return Reply::error(status, code, text);
    }
    let name = body["name"].as_str().unwrap_or_default();
    if !(1..=100).contains(&name.chars().count()) {
        return Reply::invalid_form(
            json!({ "name": err("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.") }),
        );
    }
    let id = match message {
        Some(mid) => {
            let parent_text = parent.to_string();
            match st.message_mut(mid) {
                Some(m) if m["channel_id"].as_str() != Some(parent_text.as_str()) => {
                    return Reply::error(404, 10008, "Unknown Message");
                }
                Some(m) if m.get("thread").is_some_and(|t| !t.is_null()) => {
                    return Reply::error(
                        400,
                        160004,
                        "A thread has already been created for this message",
                    );
                }
                Some(m) if m["flags"].as_u64().unwrap_or(0) & crate::EPHEMERAL != 0 => {
                    return Reply::error(404, 10008, "Unknown Message");
                }
                Some(_) => mid,
                None => return Reply::error(404, 10008, "Unknown Message"),
            }
        }
        None => st.new_id(),
    };
    let thread = payloads::thread(
        id,
        parent,
        shared.cfg.guild_id,
        name,
        shared.cfg.application_id,
    );
    if let Some(m) = message.and_then(|mid| st.message_mut(mid)) {
        m["thread"] = thread.clone();
    }
    st.threads.push(thread.clone());
    Reply::json(201, thread)
}

fn application(shared: &Shared) -> Value {
    let user = shared.bot_user();
    json!({
        "id": shared.cfg.application_id.to_string(),
        "name": user["username"],
        "icon": null,
        "description": "Discord double",
        "rpc_origins": [],
        "bot_public": false,
        "bot_require_code_grant": false,
        "owner": {
            "id": payloads::example_user_id().to_string(),
            "username": "Mason",
            "discriminator": "1337",
            "global_name": "Mason",
            "avatar": null,
            "public_flags": 131141,
        },
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "team": null,
        "flags": 0,
        "bot": user,
    })
}

fn commands(
    shared: &Shared,
    st: &mut DoubleState,
    method: &str,
    guild: Option<u64>,
    rest: &[&str],
    body: Option<&Value>,
) -> Reply {
    match (method, rest) {
        ("PUT", []) => {
            let body = body.cloned().unwrap_or(Value::Null);
            st.registrations.push((guild, body.clone()));
            let Some(list) = body.as_array() else {
                return Reply::invalid_form(
                    json!({ "_errors": [{ "code": "BASE_TYPE_ARRAY", "message": "Must be an array." }] }),
                );
            };
            if st.refuse_registrations > 0 {
                st.refuse_registrations -= 1;
                return Reply::invalid_form(json!({ "0": { "name": err(
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                ) } }));
            }
            let errors = crate::rules::validate_list(list);
            if !errors.is_empty() {
                return Reply::invalid_form(Value::Object(errors));
            }
            let previous = st.commands.get(&guild).cloned().unwrap_or_default();
            let mut out = Vec::new();
            for c in list {
                let existing = previous
                    .iter()
                    .find(|p| p["name"] == c["name"])
                    .and_then(|p| p["id"].as_str());
                let cid = match existing.and_then(|s| s.parse().ok()) {
                    Some(id) => id,
                    None => st.new_id(),
                };
                out.push(complete_command(shared, st, c, cid, guild));
            }
            st.commands.insert(guild, out.clone());
            Reply::json(200, Value::Array(out))
        }
        ("GET", []) => Reply::json(
            200,
            Value::Array(st.commands.get(&guild).cloned().unwrap_or_default()),
        ),
        ("POST", []) => {
            let c = body.cloned().unwrap_or_else(|| json!({}));
            let e = crate::rules::validate_command(&c);
            if !e.is_empty() {
                return Reply::invalid_form(Value::Object(e));
            }
            let list = st.commands.entry(guild).or_default();
            let existing = list.iter().position(|p| p["name"] == c["name"]);
            let cid = existing.and_then(|i| list[i]["id"].as_str()?.parse().ok());
            let cid = match cid {
                Some(id) => id,
                None => st.new_id(),
            };
            let full = complete_command(shared, st, &c, cid, guild);
            let list = st.commands.entry(guild).or_default();
            match existing {
                Some(i) => list[i] = full.clone(),
                None => list.push(full.clone()),
            }
            Reply::json(if existing.is_some() { 200 } else { 201 }, full)
        }
        ("DELETE", [cid]) => {
            let list = st.commands.entry(guild).or_default();
            let before = list.len();
            list.retain(|c| c["id"].as_str() != Some(cid));
            if list.len() == before {
                Reply::error(404, 10063, "Unknown application command")
            } else {
                Reply::empty(204)
            }
        }
        ("GET", [cid]) => match st
            .commands
            .get(&guild)
            .into_iter()
            .flatten()
            .find(|c| c["id"].as_str() == Some(cid))
        {
            Some(c) => Reply::json(200, c.clone()),
            None => Reply::error(404, 10063, "Unknown application command"),
        },
        _ => Reply::error(405, 0, "405: Method Not Allowed"),
    }
}

fn complete_command(
    shared: &Shared,
    st: &mut DoubleState,
    c: &Value,
    id: u64,
    guild: Option<u64>,
) -> Value {
    let mut out = c.clone();
    out["id"] = json!(id.to_string());
    out["application_id"] = json!(shared.cfg.application_id.to_string());
    out["version"] = json!(st.new_id().to_string());
    if out.get("type").is_none() {
        out["type"] = json!(1);
    }
    if out.get("description").is_none() {
        out["description"] = json!("");
    }
    if out.get("default_member_permissions").is_none() {
        out["default_member_permissions"] = Value::Null;
    }
    if out.get("nsfw").is_none() {
        out["nsfw"] = json!(false);
    }
    if let Some(g) = guild {
        out["guild_id"] = json!(g.to_string());
    }
    out
}

use crate::rules::err;

/// Content and embed limits of messages.
fn validate_message(m: &Value) -> Option<Reply> {
    let mut e = serde_json::Map::new();
    if m["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        e.insert(
            "content".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."),
        );
    }
    if m["embeds"].as_array().is_some_and(|v| v.len() > 10) {
        e.insert(
            "embeds".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."),
        );
    }
    if m["components"].as_array().is_some_and(|v| v.len() > 5) {
        e.insert(
            "components".into(),
            err("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."),
        );
    }
    (!e.is_empty()).then(|| Reply::invalid_form(Value::Object(e)))
}

fn callback(
    shared: &Shared,
    st: &mut DoubleState,
    iid: u64,
    token: &str,
    body: &Value,
    now: Instant,
) -> Reply {
    let cfg = &shared.cfg;
    let Some(known) = st.interaction_tokens.get(&iid).cloned() else {
        return Reply::error(404, 10062, "Unknown interaction");
    };
    if known != token {
        return Reply::error(401, 50027, "Invalid Webhook Token");
    }
    let (kind, sent_at, acknowledged, channel_id, clicked) = {
        let i = &st.interactions[token];
        (
            i.kind,
            i.sent_at,
            i.acknowledged,
            i.channel_id,
            i.clicked_message,
        )
    };
    if now.duration_since(sent_at) > cfg.response_deadline {
        return Reply::error(404, 10062, "Unknown interaction");
    }
    if acknowledged.is_some() {
        return Reply::error(400, 40060, "Interaction has already been acknowledged.");
    }
    let rtype = body["type"].as_u64().unwrap_or(0);
    // Which response types fit which interaction type (Discord's table).
    let allowed: &[u64] = match kind {
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        5 => &[4, 5, 6, 7],
        _ => &[],
    };
    if !allowed.contains(&rtype) {
        return Reply::invalid_form(
            json!({ "type": err("INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid for this interaction") }),
        );
    }
    let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
    if rtype == 8 {
        let choices = data["choices"].as_array().cloned().unwrap_or_default();
        let mut e = serde_json::Map::new();
        if choices.len() > 25 {
            e.insert(
                "choices".into(),
                err("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."),
            );
        }
        for (i, c) in choices.iter().enumerate() {
            let name_len = c["name"].as_str().map_or(0, |s| s.chars().count());
            let value_too_long = c["value"].as_str().is_some_and(|s| s.chars().count() > 100);
            if !(1..=100).contains(&name_len) || value_too_long {
                e.insert(
                    i.to_string(),
                    err(
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ),
                );
            }
        }
        if !e.is_empty() {
            return Reply::invalid_form(json!({ "data": e }));
        }
    }
    if matches!(rtype, 4 | 7)
        && let Some(err) = validate_message(&data)
    {
        return err;
    }
    let original = match rtype {
        4 | 5 => {
            let mid = st.new_id();
            let mut m = payloads::message(
                mid,
                channel_id,
                &shared.bot_user(),
                &data,
                Some(cfg.application_id),
                cfg.application_id,
            );
            if rtype == 5 {
                m["content"] = json!("");
                m["flags"] = json!(data["flags"].as_u64().unwrap_or(0) | 128); // LOADING
            }
            st.messages.push(m);
            Some(mid)
        }
        6 | 7 => {
            if rtype == 7
                && let Some(m) = clicked.and_then(|id| st.message_mut(id))
            {
                payloads::merge_message_fields(m, &data);
                m["edited_timestamp"] = json!(payloads::rfc3339_now());
            }
            clicked
        }
        _ => None,
    };
    if let Some(i) = st.interactions.get_mut(token) {
        i.acknowledged = Some(rtype);
        i.original_message = original;
        i.original_loading = rtype == 5;
    }
    Reply::empty(204)
}

fn webhook(
    shared: &Shared,
    st: &mut DoubleState,
    method: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
    now: Instant,
) -> Reply {
    let cfg = &shared.cfg;
    let Some(i) = st.interactions.get(token) else {
        return Reply::error(401, 50027, "Invalid Webhook Token");
    };
    if now.duration_since(i.sent_at) > cfg.token_lifetime {
        return Reply::error(401, 50027, "Invalid Webhook Token");
    }
    let (acknowledged, original, channel_id, loading) = (
        i.acknowledged,
        i.original_message,
        i.channel_id,
        i.original_loading,
    );
    if acknowledged.is_none() {
        return Reply::error(404, 10015, "Unknown Webhook");
    }
    if matches!(method, "POST" | "PATCH")
        && let Some(err) = validate_message(body)
    {
        return err;
    }
    let target = |seg: &str| {
        if seg == "@original" {
            original
        } else {
            seg.parse().ok()
        }
    };
    let edits_original = matches!((method, rest), ("PATCH", ["messages", "@original"]));
    if (edits_original || (method == "DELETE" && rest == ["messages", "@original"]))
        && let Some(i) = st.interactions.get_mut(token)
    {
        i.original_loading = false;
    }
    match (method, rest) {
        // Discord: the first followup after a deferral edits the deferred original, keeping
        // its flags (an ephemeral flag on the followup is ignored).
        ("POST", []) if loading => {
            if let Some(i) = st.interactions.get_mut(token) {
                i.original_loading = false;
            }
            match original.and_then(|id| st.message_mut(id)) {
                Some(m) => {
                    let mut body = body.clone();
                    if let Some(o) = body.as_object_mut() {
                        o.remove("flags");
                    }
                    payloads::merge_message_fields(m, &body);
                    if let Some(flags) = m["flags"].as_u64() {
                        m["flags"] = json!(flags & !128);
                    }
                    m["edited_timestamp"] = json!(payloads::rfc3339_now());
                    Reply::json(200, m.clone())
                }
                None => Reply::error(404, 10008, "Unknown Message"),
            }
        }
        ("POST", []) => {
            let mid = st.new_id();
            let m = payloads::message(
                mid,
                channel_id,
                &shared.bot_user(),
                body,
                Some(cfg.application_id),
                cfg.application_id,
            );
            st.messages.push(m.clone());
            Reply::json(200, m)
        }
        ("PATCH", ["messages", seg]) => match target(seg).and_then(|id| st.message_mut(id)) {
            Some(m) => {
                payloads::merge_message_fields(m, body);
                if let Some(flags) = m["flags"].as_u64() {
                    m["flags"] = json!(flags & !128); // no longer loading
                }
                m["edited_timestamp"] = json!(payloads::rfc3339_now());
                Reply::json(200, m.clone())
            }
            None => Reply::error(404, 10008, "Unknown Message"),
        },
        ("GET", ["messages", seg]) => match target(seg).and_then(|id| st.message_mut(id)) {
            Some(m) => Reply::json(200, m.clone()),
            None => Reply::error(404, 10008, "Unknown Message"),
        },
        ("DELETE", ["messages", seg]) => match target(seg) {
            Some(mid) if st.message_mut(mid).is_some() => {
                let id = mid.to_string();
                st.messages
                    .retain(|m| m["id"].as_str() != Some(id.as_str()));
                if *seg == "@original"
                    && let Some(i) = st.interactions.get_mut(token)
                {
                    i.original_message = None;
                }
                Reply::empty(204)
            }
            _ => Reply::error(404, 10008, "Unknown Message"),
        },
        _ => Reply::error(404, 0, "404: Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn multipart_payload_json_is_extracted() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\r\nabc\r\n--XyZ--\r\n";
        let v = parse_body("multipart/form-data; boundary=XyZ", body).expect("parsed");
        assert_eq!(v["content"], "hi");
    }

    #[test]
    fn scripted_429_follows_the_example() {
        let r = too_many(RateLimitScope::Global, Duration::from_millis(1500), 5, "b");
        assert_eq!(r.status, 429);
        let h: BTreeMap<_, _> = r.headers.into_iter().collect();
        assert_eq!(h["Retry-After"], "1.500");
        assert_eq!(h["X-RateLimit-Global"], "true");
        assert_eq!(r.body.expect("body")["global"], true);
    }
}
