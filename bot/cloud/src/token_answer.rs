//! What the token endpoint really answered, when `azure_identity` cannot say.
//!
//! `azure_identity` 0.21 hands the token response to the `oauth2` crate, which drops the HTTP
//! status and the body whenever the body is not an OAuth error document: a wrong
//! `authority_host` (a 404 page, a 401 with no body, ARM's `{"error": {"code": …}}`) then reads
//! "Failed to parse server response: invalid type: map, expected a string", which names neither
//! the endpoint nor what it said. So, only after a token request has failed, the same request
//! is sent once more here, to the same URL with the same form (nothing reaches a host the
//! credential did not already reach), and the answer is described: status, endpoint, and
//! Entra's `error` / `error_description` (its AADSTS code) when the body is Entra's, else the
//! start of the body. One small request on a path that has already failed; the token, if this
//! one succeeds after all, is dropped, and the original error stands.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// A token request as the credential sends it.
pub struct TokenRequest {
    pub url: Url,
    pub form: Vec<(&'static str, String)>,
}

/// Entra ID's error document (RFC 6749 §5.2 plus Entra's codes).
#[derive(Deserialize)]
struct EntraError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Sends `request` again and says what the endpoint answered; `None` if it answered a token
/// this time or could not be reached (then the original error is all there is).
pub async fn describe(request: &TokenRequest) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let response = client
        .post(request.url.clone())
        .form(&request.form)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        return None;
    }
    let body = response.text().await.unwrap_or_default();
    Some(describe_answer(&request.url, status, &body))
}

/// `the token endpoint URL answered HTTP 401: invalid_client: AADSTS7000215: …`.
pub fn describe_answer(url: &Url, status: u16, body: &str) -> String {
    // The query never carries anything here, but an endpoint is named without one anyway.
    let mut endpoint = url.clone();
    endpoint.set_query(None);
    let said = match serde_json::from_str::<EntraError>(body) {
        Ok(entra) => {
            let description = entra
                .error_description
                .as_deref()
                .map(first_sentence)
                .filter(|d| !d.is_empty());
            match (description, entra.error_codes.first()) {
                (Some(d), _) => format!("{}: {d}", entra.error),
                (None, Some(code)) => format!("{}: AADSTS{code}", entra.error),
                (None, None) => entra.error,
            }
        }
        Err(_) => {
            let text: String = body.trim().chars().take(200).collect();
            let text = if text.is_empty() {
                "an empty body".to_owned()
            } else {
                format!("{text:?}")
            };
            format!(
                "not an Entra ID token endpoint's answer ({text}); check authority_host in [azure] (e.g. https://login.microsoftonline.com)"
            )
        }
    };
    format!("the token endpoint {endpoint} answered HTTP {status}: {said}")
}

/// Entra's description up to its trace lines: `AADSTS7000215: Invalid client secret provided. …`.
fn first_sentence(description: &str) -> &str {
    let end = ["\r\n", "\n", " Trace ID:"]
        .iter()
        .filter_map(|stop| description.find(stop))
        .min()
        .unwrap_or(description.len());
    description[..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://login.example/tenant-1/oauth2/v2.0/token").unwrap()
    }

    #[test]
    fn an_entra_error_is_quoted_with_its_aadsts_code() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215]}"#;
        assert_eq!(
            describe_answer(&url(), 401, body),
            "the token endpoint https://login.example/tenant-1/oauth2/v2.0/token answered HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value."
        );
    }

    #[test]
    fn a_non_entra_answer_says_so_with_the_start_of_the_body() {
        let body = r#"{"error": {"code": "NotFound", "message": "nothing here"}}"#;
        let said = describe_answer(&url(), 404, body);
        assert!(
            said.starts_with("the token endpoint https://login.example/tenant-1/oauth2/v2.0/token answered HTTP 404: not an Entra ID token endpoint's answer ("),
            "{said}"
        );
        assert!(
            said.contains("NotFound") && said.contains("authority_host"),
            "{said}"
        );
        assert!(describe_answer(&url(), 401, "").contains("(an empty body)"));
    }
}
