//! Which mentions of a message would notify someone, by Discord's `allowed_mentions` rules:
//! without the field every `@everyone`, `@here`, `<@user>` and `<@&role>` in the content pings;
//! with it, only the kinds in `parse` and the ids in `users` / `roles`.

use serde_json::Value;

/// The mentions in `content` that would ping, as written (`@everyone`, `<@&1>`, `<@2>`).
pub(crate) fn pings(content: &str, allowed: Option<&Value>) -> Vec<String> {
    let parse: Vec<&str> = match allowed {
        None => vec!["everyone", "users", "roles"],
        Some(a) => a["parse"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
    };
    let listed = |key: &str, id: &str| {
        allowed.is_some_and(|a| {
            a[key]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v.as_str() == Some(id))
        })
    };
    let mut out = Vec::new();
    for word in ["@everyone", "@here"] {
        if content.contains(word) && parse.contains(&"everyone") {
            out.push(word.to_owned());
        }
    }
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else { break };
        let inner = &after[..end];
        let (key, parse_kind, id) = match inner.strip_prefix('&') {
            Some(id) => ("roles", "roles", id),
            None => ("users", "users", inner.trim_start_matches('!')),
        };
        if !id.is_empty()
            && id.chars().all(|c| c.is_ascii_digit())
            && (parse.contains(&parse_kind) || listed(key, id))
        {
            out.push(format!("<@{inner}>"));
        }
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allowed_mentions_decide_who_is_pinged() {
        let text = "@everyone look <@&7> and <@42>";
        assert_eq!(pings(text, None), ["@everyone", "<@&7>", "<@42>"]);
        assert!(pings(text, Some(&json!({"parse": []}))).is_empty());
        assert_eq!(
            pings(text, Some(&json!({"parse": [], "users": ["42"]}))),
            ["<@42>"]
        );
        assert_eq!(pings(text, Some(&json!({"parse": ["roles"]}))), ["<@&7>"]);
    }
}
