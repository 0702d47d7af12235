//! How a chat channel is written wherever Deckhand takes one (config keys, `--channel`
//! options): a numeric id (`123456789012345678`), a mention (`<#123456789012345678>`, what
//! Discord's channel picker and a pasted link give), or a name (`#gpu-ops`, or `gpu-ops`).
//! Names are resolved to ids by the chat surface against its guild's channels.

use std::fmt;

/// Longest channel name Discord allows.
pub const MAX_NAME: usize = 100;

/// A channel as written: an id or a name (without `#`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelRef {
    Id(u64),
    Name(String),
}

/// Why a channel spelling is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a channel: {why}; write #name (lowercase letters, digits, - and _), \
     a channel id such as 123456789012345678, or <#id>"
)]
pub struct ChannelRefError {
    pub given: String,
    pub why: &'static str,
}

impl ChannelRef {
    /// Reads `123`, `<#123>`, `#name` or `name`.
    pub fn parse(raw: &str) -> Result<ChannelRef, ChannelRefError> {
        let text = raw.trim();
        let bad = |why| ChannelRefError {
            given: raw.to_owned(),
            why,
        };
        if let Some(inner) = text.strip_prefix("<#").and_then(|t| t.strip_suffix('>')) {
            return id(inner)
                .map(ChannelRef::Id)
                .ok_or_else(|| bad("the mention holds no id"));
        }
        if let Some(n) = id(text) {
            return Ok(ChannelRef::Id(n));
        }
        let name = text.strip_prefix('#').unwrap_or(text);
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if name.chars().count() > MAX_NAME {
            return Err(bad("a channel name has at most 100 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            || name.chars().any(char::is_uppercase)
        {
            return Err(bad(
                "Discord channel names are lowercase letters, digits, - and _ (no spaces)",
            ));
        }
        Ok(ChannelRef::Name(name.to_owned()))
    }

    /// The spelling every surface shows and stores: the id, or `#name`.
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            ChannelRef::Name(n) => Some(n),
            ChannelRef::Id(_) => None,
        }
    }
}

fn id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|n| *n > 0)
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelRef::Id(n) => write!(f, "{n}"),
            ChannelRef::Name(n) => write!(f, "#{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_mentions_and_names() {
        assert_eq!(ChannelRef::parse("123").unwrap(), ChannelRef::Id(123));
        assert_eq!(ChannelRef::parse("<#123>").unwrap(), ChannelRef::Id(123));
        assert_eq!(
            ChannelRef::parse("#gpu-ops").unwrap(),
            ChannelRef::Name("gpu-ops".into())
        );
        assert_eq!(
            ChannelRef::parse(" alerts ").unwrap().canonical(),
            "#alerts"
        );
        assert_eq!(ChannelRef::parse("<#77>").unwrap().canonical(), "77");
    }

    #[test]
    fn what_is_not_a_channel_says_why() {
        for bad in ["", "#", "GPU ops", "#Alerts", "<#x>", "<#>", "0", "a/b"] {
            let err = ChannelRef::parse(bad);
            if bad == "0" {
                // Zero is no snowflake; as a name it is fine ("0" is a valid channel name).
                assert_eq!(err.unwrap(), ChannelRef::Name("0".into()));
                continue;
            }
            let err = err.unwrap_err();
            assert!(err.to_string().contains("#name"), "{bad}: {err}");
        }
        let long = "x".repeat(101);
        assert!(ChannelRef::parse(&long).is_err());
    }
}
