//! The real payloads from `payloads/` (verbatim copies of `../shared/discord-examples/`, see
//! `payloads/SOURCES.md`), parsed at run time, and the completions serenity 0.12.5 needs.
//!
//! Every payload the double sends starts from one of these files; the code only fills in ids,
//! the fields the docs' examples omit but serenity requires, and values the test chose.

use serde_json::{Value, json};

pub(crate) const SLASH: &str = include_str!("../payloads/01-slash-command-interaction.json");
pub(crate) const BUTTON: &str =
    include_str!("../payloads/02-button-click-component-interaction.json");
pub(crate) const AUTOCOMPLETE: &str =
    include_str!("../payloads/03-autocomplete-interaction.partial.json");
pub(crate) const HELLO: &str = include_str!("../payloads/10-gateway-hello-op10.json");
pub(crate) const HEARTBEAT_ACK: &str =
    include_str!("../payloads/11-gateway-heartbeat-ack-op11.json");
pub(crate) const RECONNECT: &str = include_str!("../payloads/15-gateway-reconnect-op7.json");
pub(crate) const INVALID_SESSION: &str =
    include_str!("../payloads/16-gateway-invalid-session-op9.json");
pub(crate) const DISPATCH: &str = include_str!("../payloads/17-gateway-dispatch-envelope.json");
pub(crate) const GET_GATEWAY: &str = include_str!("../payloads/18-rest-get-gateway.json");
pub(crate) const GET_GATEWAY_BOT: &str = include_str!("../payloads/19-rest-get-gateway-bot.json");
pub(crate) const RATE_LIMIT_HEADERS: &str = include_str!("../payloads/20-rate-limit-headers.txt");
pub(crate) const RATE_LIMIT_USER: &str =
    include_str!("../payloads/21-rate-limit-429-user.http.txt");
pub(crate) const RATE_LIMIT_SHARED: &str =
    include_str!("../payloads/22-rate-limit-429-shared-resource.http.txt");
pub(crate) const RATE_LIMIT_GLOBAL: &str =
    include_str!("../payloads/23-rate-limit-429-global.http.txt");
pub(crate) const READY: &str = include_str!("../payloads/30-ready-dispatch.SYNTHESIZED.json");

/// Parse one of the embedded JSON files (they are checked by a unit test).
pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("embedded payload is valid JSON")
}

/// The application (and bot user) id of the example READY payload.
pub fn example_application_id() -> u64 {
    id_of(&json(READY)["d"]["application"]["id"])
}

/// The guild id of the example interactions.
pub fn example_guild_id() -> u64 {
    id_of(&json(SLASH)["guild_id"])
}

/// The invoking user of the example interactions ("Mason").
pub fn example_user_id() -> u64 {
    id_of(&json(SLASH)["member"]["user"]["id"])
}

/// The channel of the example slash command.
pub fn example_channel_id() -> u64 {
    id_of(&json(SLASH)["channel_id"])
}

fn id_of(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .expect("snowflake string")
}

/// Header names and example values of `20-rate-limit-headers.txt`, in file order.
pub(crate) fn rate_limit_header_names() -> Vec<String> {
    RATE_LIMIT_HEADERS
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
        .collect()
}

/// A parsed `*.http.txt` example: status line, headers and JSON body.
pub(crate) struct HttpExample {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
}

pub(crate) fn http_example(text: &str) -> HttpExample {
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("< ") {
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    HttpExample {
        headers,
        body: serde_json::from_str(&body).expect("example body is JSON"),
    }
}

/// The `member` object of the slash-command example, completed (serenity needs `flags`).
pub(crate) fn member(user_id: u64, username: &str, roles: &[u64], permissions: &str) -> Value {
    let mut m = json(SLASH)["member"].clone();
    m["user"]["id"] = json!(user_id.to_string());
    m["user"]["username"] = json!(username);
    m["user"]["global_name"] = json!(username);
    m["roles"] = json!(roles.iter().map(u64::to_string).collect::<Vec<_>>());
    m["permissions"] = json!(permissions);
    m["flags"] = json!(0);
    m
}

/// The fields every interaction needs besides the docs' examples (serenity 0.12.5 rejects
/// payloads without them): `application_id`, `version`, `entitlements`, `attachment_size_limit`,
/// `locale`, `app_permissions`, `context`, `authorizing_integration_owners`, `channel`.
pub(crate) fn complete_interaction(
    p: &mut Value,
    application_id: u64,
    guild_id: u64,
    channel_id: u64,
) {
    p["application_id"] = json!(application_id.to_string());
    p["version"] = json!(1);
    p["entitlements"] = json!([]);
    p["attachment_size_limit"] = json!(26_214_400);
    if p.get("locale").is_none() {
        p["locale"] = json!("en-US");
    }
    if p.get("guild_locale").is_none() {
        p["guild_locale"] = json!("en-US");
    }
    if p.get("app_permissions").is_none() {
        p["app_permissions"] = json!("442368");
    }
    p["guild_id"] = json!(guild_id.to_string());
    p["channel_id"] = json!(channel_id.to_string());
    p["channel"] = json!({
        "id": channel_id.to_string(),
        "type": 0,
        "name": "deckhand",
        "guild_id": guild_id.to_string(),
        "flags": 0,
        "permissions": "2147483647",
    });
    p["context"] = json!(0);
    p["authorizing_integration_owners"] = json!({ "0": guild_id.to_string() });
}

/// Turns a guild interaction into one from a DM with the bot: Discord sends the `user` at the
/// top level instead of a `member`, no `guild_id`, a DM channel, context 1 (BOT_DM), and for a
/// guild-installed app the owner `"0"`.
pub(crate) fn as_dm(p: &mut Value) {
    let Some(o) = p.as_object_mut() else { return };
    let user = o
        .remove("member")
        .map(|m| m["user"].clone())
        .unwrap_or(Value::Null);
    o.remove("guild_id");
    o.remove("guild_locale");
    o.insert("user".into(), user.clone());
    o.insert("context".into(), json!(1));
    o.insert("authorizing_integration_owners".into(), json!({ "0": "0" }));
    let channel = o.get("channel_id").cloned().unwrap_or(Value::Null);
    o.insert(
        "channel".into(),
        json!({ "id": channel, "type": 1, "flags": 0, "recipients": [user] }),
    );
}

/// A thread object (type 11, public thread) in `parent`, as `POST .../threads` returns it.
pub(crate) fn thread(id: u64, parent: u64, guild_id: u64, name: &str, owner: u64) -> Value {
    json!({
        "id": id.to_string(),
        "type": 11,
        "guild_id": guild_id.to_string(),
        "parent_id": parent.to_string(),
        "owner_id": owner.to_string(),
        "name": name,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": 1440,
            "archive_timestamp": rfc3339_now(),
            "locked": false,
            "create_timestamp": rfc3339_now(),
        },
    })
}

/// A message object, built on the example message of `02-button-click-component-interaction.json`.
pub(crate) fn message(
    id: u64,
    channel_id: u64,
    author: &Value,
    body: &Value,
    webhook_id: Option<u64>,
    application_id: u64,
) -> Value {
    let mut m = json(BUTTON)["message"].clone();
    m["id"] = json!(id.to_string());
    m["channel_id"] = json!(channel_id.to_string());
    m["author"] = author.clone();
    m["timestamp"] = json!(rfc3339_now());
    m["content"] = json!("");
    m["components"] = json!([]);
    m["embeds"] = json!([]);
    if let Some(w) = webhook_id {
        m["webhook_id"] = json!(w.to_string());
        m["application_id"] = json!(application_id.to_string());
    }
    merge_message_fields(&mut m, body);
    // A create's nonce comes back on the message it made.
    if let Some(nonce) = body.get("nonce").filter(|n| !n.is_null()) {
        m["nonce"] = nonce.clone();
    }
    m
}

/// Apply the editable fields of a create/edit body onto a message.
pub(crate) fn merge_message_fields(m: &mut Value, body: &Value) {
    for key in ["content", "embeds", "flags", "tts", "attachments"] {
        if let Some(v) = body.get(key)
            && !v.is_null()
        {
            m[key] = v.clone();
        }
    }
    if let Some(c) = body.get("components") {
        m["components"] = normalize_components(c);
    }
}

/// Discord echoes components with defaults filled in (`disabled: false` on buttons).
fn normalize_components(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(rows) = c.as_array_mut() {
        for row in rows {
            if let Some(items) = row.get_mut("components").and_then(Value::as_array_mut) {
                for item in items {
                    if item.get("type").and_then(Value::as_u64) == Some(2)
                        && item.get("disabled").is_none()
                    {
                        item["disabled"] = json!(false);
                    }
                }
            }
        }
    }
    c
}

/// Now as `2021-05-19T02:12:51.710000+00:00` (the examples' format).
pub(crate) fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_payloads_parse() {
        for text in [
            SLASH,
            BUTTON,
            AUTOCOMPLETE,
            HELLO,
            HEARTBEAT_ACK,
            RECONNECT,
            INVALID_SESSION,
            DISPATCH,
            GET_GATEWAY,
            GET_GATEWAY_BOT,
            READY,
        ] {
            json(text);
        }
        for text in [RATE_LIMIT_USER, RATE_LIMIT_SHARED, RATE_LIMIT_GLOBAL] {
            let ex = http_example(text);
            assert!(ex.headers.iter().any(|(k, _)| k == "Retry-After"));
            assert!(ex.body["retry_after"].is_number());
        }
        assert_eq!(rate_limit_header_names().len(), 5);
    }

    #[test]
    fn timestamp_format_matches_examples() {
        let t = rfc3339_now();
        assert_eq!(t.len(), "2021-05-19T02:12:51.710000+00:00".len(), "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
