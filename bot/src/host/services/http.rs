//! Outbound HTTP for plugins, with the auth profile's credentials attached here so that no
//! plugin ever holds a secret.

use std::time::{Duration, SystemTime};

use deckhand_plugin_abi::proto::{HostError, HttpRequest, HttpResponse};

use super::sigv4;
use crate::cloud::config::AuthProfile;

/// Largest response body handed to a plugin.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct HttpService {
    client: reqwest::Client,
}

fn host_error(code: &str, message: impl Into<String>) -> HostError {
    HostError::new(code.to_owned(), message.into())
}

impl HttpService {
    pub fn new() -> HttpService {
        let client = reqwest::Client::builder()
            .user_agent(concat!("deckhand/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend is compiled in");
        HttpService { client }
    }

    pub async fn execute(
        &self,
        request: &HttpRequest,
        profile: Option<&AuthProfile>,
        timeout: Duration,
    ) -> Result<HttpResponse, HostError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            host_error(
                "bad_request",
                format!("invalid HTTP method {:?}", request.method),
            )
        })?;
        let mut builder = self.client.request(method, &request.url).timeout(timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut built = builder
            .build()
            .map_err(|e| host_error("bad_request", format!("invalid HTTP request: {e}")))?;
        if let Some(profile) = profile {
            authorize(&mut built, profile)?;
        }
        let response = self.client.execute(built).await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = response.bytes().await.map_err(describe)?;
        if bytes.len() > MAX_BODY {
            return Err(host_error(
                "upstream",
                format!(
                    "response body of {} bytes exceeds the {MAX_BODY}-byte limit",
                    bytes.len()
                ),
            ));
        }
        Ok(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// A presigned URL for `request` (method and URL) signed with a `sigv4` profile, valid for
/// `expires`; nothing is sent. The URL carries the profile's access key id (as every SigV4
/// request does), never its secret key.
pub fn presign(
    request: &HttpRequest,
    profile: Option<&AuthProfile>,
    expires: Duration,
) -> Result<String, HostError> {
    let Some(AuthProfile::Sigv4 {
        access_key,
        secret_key,
        region,
        service,
    }) = profile
    else {
        return Err(host_error(
            "bad_request",
            "a presigned URL needs an auth profile of kind sigv4",
        ));
    };
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| host_error("bad_request", format!("invalid URL: {e}")))?;
    let host = host_header(&url)?;
    sigv4::presigned_url(
        &sigv4::Unsigned {
            method: &request.method,
            url: url.as_str(),
            headers: vec![("host", host.as_str())],
            body: b"",
        },
        &sigv4::Keys {
            access_key,
            secret_key: secret_key.expose(),
            region,
            service,
        },
        SystemTime::now(),
        expires,
    )
    .map_err(|e| host_error("bad_request", e))
}

/// The `Host` header a request to `url` carries (`host:port` unless the port is the default).
fn host_header(url: &reqwest::Url) -> Result<String, HostError> {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => Ok(format!("{h}:{p}")),
        (Some(h), None) => Ok(h.to_owned()),
        (None, _) => Err(host_error("bad_request", "URL has no host")),
    }
}

impl Default for HttpService {
    fn default() -> Self {
        HttpService::new()
    }
}

fn describe(e: reqwest::Error) -> HostError {
    // Strip the URL: it may carry query parameters a channel should not see.
    let e = e.without_url();
    let cause = crate::cloud::net_error::cause(&e);
    if e.is_timeout() {
        host_error("timeout", format!("HTTP request {cause}"))
    } else if e.is_builder() {
        host_error("bad_request", cause)
    } else if e.is_connect() {
        host_error("unavailable", format!("cannot connect: {cause}"))
    } else {
        host_error("upstream", format!("HTTP request failed: {cause}"))
    }
}

/// Adds the profile's credentials to a built request.
fn authorize(request: &mut reqwest::Request, profile: &AuthProfile) -> Result<(), HostError> {
    use reqwest::header::{AUTHORIZATION, HeaderValue};
    let header = |value: String| {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            host_error(
                "bad_request",
                "credential contains invalid header characters",
            )
        })?;
        value.set_sensitive(true);
        Ok::<_, HostError>(value)
    };
    match profile {
        AuthProfile::Bearer { token, scheme } => {
            let scheme = scheme.as_deref().unwrap_or("Bearer");
            let value = header(format!("{scheme} {}", token.expose()))?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        AuthProfile::Basic { username, password } => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()));
            let value = header(format!("Basic {encoded}"))?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        AuthProfile::Sigv4 {
            access_key,
            secret_key,
            region,
            service,
        } => {
            let url = request.url().clone();
            let host = host_header(&url)?;
            let body = request
                .body()
                .and_then(|b| b.as_bytes())
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let existing: Vec<(String, String)> = request
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
            headers.extend(existing.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let signed = sigv4::signature_headers(
                &sigv4::Unsigned {
                    method: request.method().as_str(),
                    url: url.as_str(),
                    headers,
                    body: &body,
                },
                &sigv4::Keys {
                    access_key,
                    secret_key: secret_key.expose(),
                    region,
                    service,
                },
                SystemTime::now(),
            )
            .map_err(|e| host_error("bad_request", e))?;
            for (name, value) in signed {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| host_error("bad_request", "invalid signature header"))?;
                request.headers_mut().insert(name, header(value)?);
            }
        }
    }
    Ok(())
}
