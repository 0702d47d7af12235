//! What went wrong on the wire, in words: reqwest's own text is "error sending request", which
//! tells an operator nothing. The cause is found by walking the error's `source()` chain.

use std::error::Error as _;

/// Why a request got no answer: refused, DNS, TLS, timeout, or the innermost cause.
pub fn cause(error: &reqwest::Error) -> String {
    if error.is_builder() {
        return format!("the request could not be built ({})", innermost(error));
    }
    if error.is_timeout() {
        return "timed out waiting for an answer".into();
    }
    let mut source = error.source();
    let mut texts = Vec::new();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused (nothing listens there)".into(),
                ConnectionReset => return "connection reset by the server".into(),
                TimedOut => return "timed out connecting".into(),
                _ => {}
            }
        }
        texts.push(e.to_string());
        source = e.source();
    }
    let all = texts.join(": ").to_ascii_lowercase();
    let last = texts.last().cloned().unwrap_or_else(|| error.to_string());
    if all.contains("dns error") || all.contains("failed to lookup address") {
        format!("DNS lookup failed ({last})")
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS handshake failed ({last})")
    } else if error.is_connect() {
        format!("cannot connect ({last})")
    } else {
        last
    }
}

fn innermost(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text = e.to_string();
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::cause;

    #[tokio::test]
    async fn names_refused_and_dns_failures() {
        // A port just released: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = reqwest::Client::new();
        let refused = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("nothing listens");
        assert!(
            cause(&refused).contains("connection refused"),
            "{}",
            cause(&refused)
        );
        let dns = client
            .get("http://deckhand-test.invalid/")
            .send()
            .await
            .expect_err(".invalid never resolves");
        assert!(cause(&dns).contains("DNS lookup failed"), "{}", cause(&dns));
    }
}
