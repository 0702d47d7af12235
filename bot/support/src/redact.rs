//! One redactor for everything that leaves the host: configured secrets (and their base64 and
//! percent-encoded forms) and any `Basic …` / `Bearer …` credential an upstream echoes back are
//! replaced by `[redacted]` in replies, progress lines, audit rows, posted messages (see
//! [`crate::chat::Outbox::post`]), alert texts, metrics and log lines ([`LogWriter`]).

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use base64::Engine;

/// Shorter values are not registered: they would redact ordinary words.
pub const MIN_SECRET_LEN: usize = 6;
const MASK: &str = "[redacted]";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// `Basic <base64>` and `Bearer <token>` as an Authorization header carries them.
static CREDENTIAL: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{6,}").ok());

/// Remembers a secret value and its encoded forms (raw, base64, percent-encoded).
pub fn register(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        value.to_owned(),
        b64.encode(value),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ];
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Basic auth sends base64 of `user:password`: registered as a unit too.
pub fn register_basic(user: &str, password: &str) {
    register(password);
    register(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
}

/// `text` with every known secret and echoed credential masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Some(credential) = CREDENTIAL.as_ref()
        && credential.is_match(&out)
    {
        out = Cow::Owned(
            credential
                .replace_all(&out, format!("$1 {MASK}"))
                .into_owned(),
        );
    }
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// A `tracing` writer that masks secrets in each formatted event before `inner` gets it
/// (the fmt layer writes one event per `write_all`).
pub struct LogWriter<M>(pub M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for LogWriter<M>
{
    type Writer = RedactedWrite<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedWrite(self.0.make_writer())
    }
}

pub struct RedactedWrite<W>(W);

impl<W: std::io::Write> std::io::Write for RedactedWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_their_forms_and_echoed_credentials() {
        register("canary-Secret-1");
        register_basic("deckha", "canary-pass-2");
        register("abc"); // too short: not registered
        let b64 = base64::engine::general_purpose::STANDARD;
        for leak in [
            "canary-Secret-1".to_owned(),
            b64.encode("canary-Secret-1"),
            "canary%2DSecret%2D1".to_owned(),
            b64.encode("deckha:canary-pass-2"),
        ] {
            let text = format!("401: you sent {leak} here");
            let masked = redact(&text);
            assert!(!masked.contains(&leak), "{masked}");
            assert!(masked.contains(MASK), "{masked}");
        }
        let echoed = redact("(you sent Basic ZGVja2hhbmQ6aHVudGVyMg==) and bearer eyJ0eXAi.x.y");
        assert_eq!(echoed, "(you sent Basic [redacted]) and bearer [redacted]");
        assert_eq!(redact("abc is fine"), "abc is fine");
    }
}
