//! Label matchers (Alertmanager's syntax: `name=value`, `!=`, `=~` regex, `!~`) and silences.

use chrono::{DateTime, Utc};
use regex::Regex;

use super::alert::Alert;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("matcher {0:?} needs the form name=value, name!=value, name=~regex or name!~regex")]
    Syntax(String),
    #[error("matcher {text:?}: invalid regex: {message}")]
    Regex { text: String, message: String },
    #[error("no matchers given; e.g. alertname=KubePodCrashLooping,namespace=ml")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let text = text.trim();
        let (at, op) = ["=~", "!~", "!=", "="]
            .iter()
            .filter_map(|op| text.find(op).map(|at| (at, *op)))
            .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())))
            .ok_or_else(|| MatcherError::Syntax(text.to_owned()))?;
        let name = text[..at].trim();
        let raw = text[at + op.len()..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(MatcherError::Syntax(text.to_owned()));
        }
        let op = match op {
            "=" => MatchOp::Eq,
            "!=" => MatchOp::Ne,
            "=~" => MatchOp::Re,
            _ => MatchOp::NotRe,
        };
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                // Anchored, as in Alertmanager.
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::Regex {
                    text: text.to_owned(),
                    message: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// `alertname=A,cluster=b`, `{alertname="A", cluster="b"}` or space separated.
    pub fn parse_list(text: &str) -> Result<Vec<Matcher>, MatcherError> {
        let inner = text.trim();
        let inner = inner
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(inner);
        let mut matchers = Vec::new();
        for part in split_matchers(inner) {
            matchers.push(Matcher::parse(&part)?);
        }
        if matchers.is_empty() {
            return Err(MatcherError::Empty);
        }
        Ok(matchers)
    }

    /// A missing label matches like an empty value, as in Alertmanager.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        self.matches_value(alert.label(&self.name))
    }

    pub fn is_regex(&self) -> bool {
        matches!(self.op, MatchOp::Re | MatchOp::NotRe)
    }

    pub fn is_equal(&self) -> bool {
        matches!(self.op, MatchOp::Eq | MatchOp::Re)
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.value)
    }
}

/// Splits on commas and whitespace outside double quotes.
fn split_matchers(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' | ' ' | '\t' if !quoted => {
                if !current.trim().is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

/// Mutes matching alerts until `ends_at`.
#[derive(Debug, Clone)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    /// The id of the matching silence created in Alertmanager, if any.
    pub alertmanager_id: Option<String>,
}

impl Silence {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.ends_at
    }

    pub fn matches(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.active(now) && self.matchers.iter().all(|m| m.matches(alert))
    }

    pub fn describe(&self) -> String {
        self.matchers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_operator_and_list_form() {
        let list =
            Matcher::parse_list(r#"{alertname="Gpu Down", job=~"api.*", team!=ml,x!~y}"#).unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].value, "Gpu Down");
        assert_eq!(list[1].op, MatchOp::Re);
        assert_eq!(list[2].op, MatchOp::Ne);
        assert_eq!(list[3].op, MatchOp::NotRe);
        assert!(list[1].matches_value(Some("api-server")));
        assert!(!list[1].matches_value(Some("xapi")), "regexes are anchored");
        assert!(list[2].matches_value(None));
        assert_eq!(
            Matcher::parse_list("a=1,b=2").unwrap(),
            Matcher::parse_list("a=1 b=2").unwrap()
        );
    }

    #[test]
    fn rejects_bad_matchers() {
        assert!(matches!(
            Matcher::parse("novalue"),
            Err(MatcherError::Syntax(_))
        ));
        assert!(matches!(
            Matcher::parse("a=~("),
            Err(MatcherError::Regex { .. })
        ));
        assert_eq!(Matcher::parse_list(" , "), Err(MatcherError::Empty));
    }
}
