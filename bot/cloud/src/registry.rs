//! Container registries over the OCI distribution API: repositories (`/v2/_catalog`, following
//! `Link` pages), tags (`/v2/<name>/tags/list`) and manifest digests (`HEAD`, falling back to
//! `GET`, `/v2/<name>/manifests/<reference>`), so a plugin can check that an image exists before
//! it deploys anything.
//!
//! Authentication answers the registry's challenge: `WWW-Authenticate: Bearer realm, service,
//! scope` gets a token from the realm, anonymously or with an auth profile's basic credentials;
//! `auth = "acr"` exchanges the host's Entra token for an ACR refresh token
//! (`POST /oauth2/exchange`) and that for a scoped access token (`POST /oauth2/token`). Tokens
//! are cached per registry and scope until shortly before they expire. 429 and 5xx answers are
//! retried as the ARM client retries them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use deckhand_plugin_abi::proto::{HostError, RegistryRequest, RegistryResponse};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::arm::CallContext;
use super::config::{RegistryConfig, RetryConfig};
use super::credential::{CredentialError, TokenSource};
use crate::config::AuthProfile;
use crate::executor::{Exchange, Failure, Policy, Target, execute};
use deckhand_support::secret::Secret;

mod details;

/// The manifest types asked for: OCI image and index, Docker v2 image and list.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Token lifetime when the token service states none (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// ACR refresh tokens live three hours; assume less when the token does not say.
const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(3600);
/// At most this many pages of a catalog or tag list are followed.
const MAX_PAGES: usize = 1000;
/// Tags named in a "tag not found" message.
const TAGS_SHOWN: usize = 10;

/// Registry failures, worded for chat.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {name:?} is not configured ({}); add a [[registries]] entry", known_list(.known))]
    UnknownRegistry { name: String, known: Vec<String> },
    /// A repository, tag or manifest that does not exist.
    #[error("{message}")]
    NotFound {
        message: String,
        upstream_code: Option<String>,
    },
    #[error("registry {registry}: {message}")]
    Config { registry: String, message: String },
    #[error("registry {registry} refused authentication ({auth}): {message}")]
    Auth {
        registry: String,
        auth: String,
        message: String,
    },
    #[error("{0}")]
    Credential(#[from] CredentialError),
    /// The registry answered with an error.
    #[error("registry {registry} refused {operation}: {code}: {message} (HTTP {status})")]
    Registry {
        registry: String,
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "cannot reach registry {registry} for {operation} after {attempts} attempts: {message}"
    )]
    Unreachable {
        registry: String,
        operation: String,
        attempts: u32,
        message: String,
    },
    #[error("{operation} on registry {registry} did not finish in time")]
    Timeout { registry: String, operation: String },
    #[error("bad registry request: {0}")]
    BadRequest(String),
    #[error("{operation} on registry {registry} was cancelled")]
    Cancelled { registry: String, operation: String },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no registries are configured".into()
    } else {
        format!("configured: {}", known.join(", "))
    }
}

impl From<RegistryError> for HostError {
    fn from(error: RegistryError) -> HostError {
        let message = error.to_string();
        match error {
            RegistryError::UnknownRegistry { .. } => HostError::new("not_found", message),
            RegistryError::NotFound { upstream_code, .. } => HostError {
                upstream_code,
                status: Some(404),
                ..HostError::new("not_found", message)
            },
            RegistryError::Config { .. } => HostError::new("unavailable", message),
            RegistryError::Auth { .. } | RegistryError::Credential(_) => {
                HostError::new("auth", message)
            }
            RegistryError::Registry { status, code, .. } => HostError {
                upstream_code: Some(code),
                status: Some(status),
                ..HostError::new("registry", message)
            },
            RegistryError::Unreachable { .. } => HostError::new("unavailable", message),
            RegistryError::Timeout { .. } => HostError::new("timeout", message),
            RegistryError::BadRequest(_) => HostError::new("bad_request", message),
            RegistryError::Cancelled { .. } => HostError::new("cancelled", message),
        }
    }
}

/// How a registry is authenticated, resolved from `auth` at startup.
enum Auth {
    Anonymous,
    /// An auth profile of kind `basic`: sent to the token realm (or to the registry when it
    /// asks for basic authentication itself).
    Basic {
        username: String,
        password: Secret,
    },
    /// An auth profile of kind `bearer`: a registry token sent as is.
    Bearer(Secret),
    /// Entra token → ACR refresh token → ACR access token.
    Acr(Arc<TokenSource>),
    /// `auth` names something unusable; reported on each call.
    Invalid(String),
}

struct Cached {
    token: String,
    /// Renew from here on (shortly before the token expires).
    renew_at: Instant,
}

impl Cached {
    fn new(token: String, lifetime: Duration) -> Cached {
        let margin = (lifetime / 4).min(Duration::from_secs(30));
        Cached {
            token,
            renew_at: Instant::now() + lifetime.saturating_sub(margin),
        }
    }

    fn fresh(&self) -> Option<&str> {
        (Instant::now() < self.renew_at).then_some(self.token.as_str())
    }
}

struct Registry {
    name: String,
    /// Base URL without a trailing slash (may carry a path prefix).
    base: String,
    /// `host` and `host:port` of `base`, also accepted as the registry's name.
    host: String,
    host_port: String,
    page_size: Option<u32>,
    auth_name: String,
    auth: Auth,
    /// The registry asked for basic authentication rather than a token.
    basic_challenge: AtomicBool,
    /// Access tokens per scope (`repository:simsvc:pull`, `registry:catalog:*`).
    tokens: Mutex<HashMap<String, Cached>>,
    /// ACR refresh token.
    refresh: Mutex<Option<Cached>>,
}

/// The configured registries and one HTTP client for all of them.
pub struct Registries {
    http: reqwest::Client,
    retry: RetryConfig,
    entries: Vec<Registry>,
}

/// Reading a registry's answer.
impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A manifest answer's digest: `Docker-Content-Digest`, else the sha256 of the body (some
    /// registries send no header).
    fn manifest_digest(&self) -> String {
        self.header("docker-content-digest")
            .map(str::to_owned)
            .unwrap_or_else(|| sha256_digest(&self.body))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first error of an OCI error body (`{"errors": [{"code", "message"}]}`), or the
    /// body's text.
    fn oci_error(&self) -> (String, String) {
        let body = self.json();
        let first = body.pointer("/errors/0");
        let field = |name: &str| {
            first
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let text: String = String::from_utf8_lossy(&self.body)
            .trim()
            .chars()
            .take(300)
            .collect();
        (
            field("code").unwrap_or_else(|| format!("HTTP{}", self.status)),
            field("message").unwrap_or(if text.is_empty() {
                StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_owned()
            } else {
                text
            }),
        )
    }
}

impl Registries {
    /// Resolves each `[[registries]]` entry's auth; `entra` is the host's Azure token source,
    /// needed by `auth = "acr"`. Problems are logged now and reported on each call.
    /// Built from its own config: the `[[registries]]` entries, the auth profiles they name,
    /// and the retry policy shared with ARM.
    pub fn new(
        registries: &[RegistryConfig],
        auth_profiles: &BTreeMap<String, AuthProfile>,
        retry: RetryConfig,
        entra: Option<Arc<TokenSource>>,
    ) -> Registries {
        let entries = registries
            .iter()
            .map(|r| Registry::new(r, auth_profiles, entra.clone()))
            .collect();
        let http = reqwest::Client::builder()
            .user_agent(concat!("deckhand/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend is compiled in");
        Registries {
            http,
            retry,
            entries,
        }
    }

    /// Names of the configured registries.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|r| r.name.clone()).collect()
    }

    fn find(&self, name: &str) -> Result<&Registry, RegistryError> {
        let name = name.trim().trim_end_matches('/');
        let name = name
            .strip_prefix("https://")
            .or_else(|| name.strip_prefix("http://"))
            .unwrap_or(name);
        self.entries
            .iter()
            .find(|r| {
                r.name.eq_ignore_ascii_case(name)
                    || r.host.eq_ignore_ascii_case(name)
                    || r.host_port.eq_ignore_ascii_case(name)
                    || r.is_acr_login_server(name)
            })
            .ok_or_else(|| RegistryError::UnknownRegistry {
                name: name.to_owned(),
                known: self.names(),
            })
    }

    /// Serves one plugin request.
    pub async fn call(
        &self,
        request: &RegistryRequest,
        cx: &CallContext<'_>,
    ) -> Result<RegistryResponse, RegistryError> {
        let registry = self.find(&request.registry)?;
        if let Auth::Invalid(message) = &registry.auth {
            return Err(RegistryError::Config {
                registry: registry.name.clone(),
                message: message.clone(),
            });
        }
        let repository = || -> Result<&str, RegistryError> {
            let repo = request.repository.as_deref().unwrap_or_default();
            check_repository(repo)?;
            Ok(repo)
        };
        match request.op.as_str() {
            "catalog" => Ok(RegistryResponse::Catalog {
                repositories: self.catalog(registry, cx).await?,
            }),
            "tags" => {
                let repository = repository()?;
                let tags = self.tags(registry, repository, cx).await?;
                Ok(RegistryResponse::Tags {
                    repository: repository.to_owned(),
                    tags,
                })
            }
            "manifest" => {
                let repository = repository()?;
                let reference = request.reference.as_deref().unwrap_or("latest");
                check_reference(reference)?;
                self.manifest(registry, repository, reference, cx).await
            }
            "tag_details" => {
                let repository = repository()?;
                self.tag_details(registry, repository, cx).await
            }
            "delete_tag" => {
                let repository = repository()?;
                let tag = request.reference.as_deref().unwrap_or_default();
                // A tag, never a digest: deleting by digest would take every tag with it.
                if tag.contains(':') {
                    return Err(RegistryError::BadRequest(format!(
                        "{tag:?} is a digest: delete_tag takes a tag"
                    )));
                }
                check_reference(tag)?;
                self.delete_tag(registry, repository, tag, cx).await
            }
            other => Err(RegistryError::BadRequest(format!(
                "unknown op {other:?}: use catalog, tags, tag_details, manifest or delete_tag"
            ))),
        }
    }

    /// Every repository, following `Link: <...>; rel="next"` pages.
    async fn catalog(
        &self,
        registry: &Registry,
        cx: &CallContext<'_>,
    ) -> Result<Vec<String>, RegistryError> {
        let first = registry.page_url(format!("{}/v2/_catalog", registry.base));
        self.pages(
            registry,
            first,
            "registry:catalog:*",
            "catalog",
            "repositories",
            cx,
        )
        .await
        .map_err(|e| match e {
            // A registry without a catalog (or no such repository API) says so plainly.
            RegistryError::NotFound { upstream_code, .. } => RegistryError::NotFound {
                message: format!("registry {} does not offer a catalog", registry.name),
                upstream_code,
            },
            e => e,
        })
    }

    async fn tags(
        &self,
        registry: &Registry,
        repository: &str,
        cx: &CallContext<'_>,
    ) -> Result<Vec<String>, RegistryError> {
        let first = registry.page_url(format!("{}/v2/{repository}/tags/list", registry.base));
        self.pages(
            registry,
            first,
            &pull_scope(repository),
            &format!("tags of {repository}"),
            "tags",
            cx,
        )
        .await
        .map_err(|e| match e {
            RegistryError::NotFound { upstream_code, .. } => RegistryError::NotFound {
                message: format!("repository {repository} not found in {}", registry.name),
                upstream_code,
            },
            e => e,
        })
    }

    /// Reads a paginated list (`field` of each page's JSON body).
    async fn pages(
        &self,
        registry: &Registry,
        first: String,
        scope: &str,
        operation: &str,
        field: &str,
        cx: &CallContext<'_>,
    ) -> Result<Vec<String>, RegistryError> {
        let mut items = Vec::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let page = self
                .fetch(registry, Method::GET, &url, scope, None, operation, cx)
                .await?;
            if page.status == 404 {
                let (code, message) = page.oci_error();
                return Err(RegistryError::NotFound {
                    message,
                    upstream_code: Some(code),
                });
            }
            ensure_success(registry, operation, &page)?;
            let body = page.json();
            // A repository without tags answers `"tags": null`.
            if let Some(list) = body.get(field).and_then(Value::as_array) {
                items.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            match next_link(&page.headers) {
                Some(link) => url = registry.resolve(&page.url, &link),
                None => return Ok(items),
            }
        }
        tracing::warn!(registry = %registry.name, operation, "stopped after {MAX_PAGES} pages");
        Ok(items)
    }

    async fn manifest(
        &self,
        registry: &Registry,
        repository: &str,
        reference: &str,
        cx: &CallContext<'_>,
    ) -> Result<RegistryResponse, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", registry.base);
        let scope = pull_scope(repository);
        let operation = format!("manifest {repository}:{reference}");
        let answer = |exchange: &Exchange, digest: String| RegistryResponse::Manifest {
            repository: repository.to_owned(),
            reference: reference.to_owned(),
            digest,
            media_type: media_type(exchange),
        };
        // HEAD first: no body to download. Some registries answer HEAD without the digest, or
        // not at all (405): then GET, and hash the body if the digest header is still missing.
        let head = self
            .fetch(
                registry,
                Method::HEAD,
                &url,
                &scope,
                Some(MANIFEST_ACCEPT),
                &operation,
                cx,
            )
            .await?;
        if head.status == 404 {
            return Err(self
                .manifest_not_found(registry, repository, reference, &head, cx)
                .await);
        }
        if (200..300).contains(&head.status)
            && let Some(digest) = head.header("docker-content-digest")
        {
            return Ok(answer(&head, digest.to_owned()));
        }
        let get = self
            .fetch(
                registry,
                Method::GET,
                &url,
                &scope,
                Some(MANIFEST_ACCEPT),
                &operation,
                cx,
            )
            .await?;
        if get.status == 404 {
            return Err(self
                .manifest_not_found(registry, repository, reference, &get, cx)
                .await);
        }
        ensure_success(registry, &operation, &get)?;
        let digest = get.manifest_digest();
        Ok(answer(&get, digest))
    }

    /// "tag 1.2 of simsvc-mpt not found in intens (tags: latest, 1.1)", or that the repository
    /// itself is missing.
    async fn manifest_not_found(
        &self,
        registry: &Registry,
        repository: &str,
        reference: &str,
        answer: &Exchange,
        cx: &CallContext<'_>,
    ) -> RegistryError {
        // A HEAD answer has no error body: name the spec's code ourselves.
        let upstream_code = Some(answer.oci_error().0)
            .filter(|c| !c.starts_with("HTTP"))
            .or_else(|| Some("MANIFEST_UNKNOWN".to_owned()));
        if reference.contains(':') {
            return RegistryError::NotFound {
                message: format!(
                    "manifest {reference} of {repository} not found in {}",
                    registry.name
                ),
                upstream_code,
            };
        }
        let tags = match self.tags(registry, repository, cx).await {
            Ok(tags) => tags,
            Err(e @ RegistryError::NotFound { .. }) => return e,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list tags for a not-found message");
                return RegistryError::NotFound {
                    message: format!(
                        "tag {reference} of {repository} not found in {}",
                        registry.name
                    ),
                    upstream_code,
                };
            }
        };
        let shown = if tags.is_empty() {
            "no tags".to_owned()
        } else if tags.len() > TAGS_SHOWN {
            format!(
                "tags: {} and {} more",
                tags[..TAGS_SHOWN].join(", "),
                tags.len() - TAGS_SHOWN
            )
        } else {
            format!("tags: {}", tags.join(", "))
        };
        RegistryError::NotFound {
            message: format!(
                "tag {reference} of {repository} not found in {} ({shown})",
                registry.name
            ),
            upstream_code,
        }
    }

    /// One authenticated request: answers a 401 challenge once, then reports a refusal.
    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &self,
        registry: &Registry,
        method: Method,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<Exchange, RegistryError> {
        let mut challenged = false;
        loop {
            let authorization = registry.authorization(scope).await;
            let exchange = self
                .send(registry, operation, cx, || {
                    let mut builder = self.http.request(method.clone(), url);
                    if let Some(accept) = accept {
                        builder = builder.header(ACCEPT, accept);
                    }
                    if let Some(value) = &authorization {
                        builder = builder.header(AUTHORIZATION, value);
                    }
                    builder
                })
                .await?;
            if exchange.status != 401 {
                return Ok(exchange);
            }
            if challenged {
                let (_, message) = exchange.oci_error();
                return Err(registry.refused(format!(
                    "{operation} was refused with the credentials obtained: {message}"
                )));
            }
            challenged = true;
            registry.tokens.lock().await.remove(scope);
            let challenge = exchange
                .header(WWW_AUTHENTICATE.as_str())
                .map(Challenge::parse)
                .ok_or_else(|| {
                    registry.refused(format!(
                        "{operation} answered 401 without a WWW-Authenticate challenge"
                    ))
                })?;
            self.authenticate(registry, &challenge, scope, operation, cx)
                .await?;
        }
    }

    /// Obtains what the challenge asks for and caches it for `scope`.
    async fn authenticate(
        &self,
        registry: &Registry,
        challenge: &Challenge,
        scope: &str,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<(), RegistryError> {
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            return match registry.auth {
                Auth::Basic { .. } => {
                    registry.basic_challenge.store(true, Ordering::SeqCst);
                    Ok(())
                }
                _ => Err(registry.refused(
                    "the registry asks for basic credentials: set auth to an auth profile of kind \"basic\"".into(),
                )),
            };
        }
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            return Err(registry.refused(format!(
                "unsupported authentication scheme {:?}",
                challenge.scheme
            )));
        }
        let realm = challenge
            .param("realm")
            .ok_or_else(|| registry.refused("the Bearer challenge names no realm".into()))?;
        let service = challenge.param("service").unwrap_or_default();
        // The scope we asked for; the registry's own wording when it states one.
        let wanted = challenge.param("scope").unwrap_or(scope);
        let (token, lifetime) = match &registry.auth {
            Auth::Acr(entra) => {
                self.acr_token(registry, entra, realm, service, wanted, cx)
                    .await?
            }
            Auth::Anonymous | Auth::Basic { .. } => {
                let exchange = self
                    .send(registry, operation, cx, || {
                        let mut builder = self
                            .http
                            .get(realm)
                            .query(&[("service", service), ("scope", wanted)]);
                        if let Auth::Basic { username, password } = &registry.auth {
                            builder = builder.basic_auth(username, Some(password.expose()));
                        }
                        builder
                    })
                    .await?;
                if !(200..300).contains(&exchange.status) {
                    let (_, message) = exchange.oci_error();
                    return Err(registry.refused(format!(
                        "the token service answered HTTP {}: {message}",
                        exchange.status
                    )));
                }
                read_token(&exchange, &["token", "access_token"])
                    .ok_or_else(|| registry.refused("the token service sent no token".into()))?
            }
            Auth::Bearer(_) => {
                return Err(registry.refused("the configured bearer token was refused".into()));
            }
            Auth::Invalid(message) => return Err(registry.refused(message.clone())),
        };
        registry
            .tokens
            .lock()
            .await
            .insert(scope.to_owned(), Cached::new(token, lifetime));
        Ok(())
    }

    /// ACR: Entra token → refresh token (`/oauth2/exchange`) → access token for `scope`
    /// (`/oauth2/token`). A refused refresh token is exchanged anew once.
    async fn acr_token(
        &self,
        registry: &Registry,
        entra: &TokenSource,
        realm: &str,
        service: &str,
        scope: &str,
        cx: &CallContext<'_>,
    ) -> Result<(String, Duration), RegistryError> {
        let mut renewed = false;
        loop {
            let refresh = self
                .acr_refresh_token(registry, entra, realm, service, renewed, cx)
                .await?;
            let exchange = self
                .send(registry, "token", cx, || {
                    self.http.post(realm).form(&[
                        ("grant_type", "refresh_token"),
                        ("service", service),
                        ("scope", scope),
                        ("refresh_token", refresh.as_str()),
                    ])
                })
                .await?;
            if exchange.status == 401 && !renewed {
                renewed = true;
                *registry.refresh.lock().await = None;
                continue;
            }
            if !(200..300).contains(&exchange.status) {
                let (_, message) = exchange.oci_error();
                return Err(registry.refused(format!(
                    "ACR refused an access token for {scope} (HTTP {}): {message}",
                    exchange.status
                )));
            }
            return read_token(&exchange, &["access_token", "token"]).ok_or_else(|| {
                registry.refused("ACR's token endpoint sent no access_token".into())
            });
        }
    }

    async fn acr_refresh_token(
        &self,
        registry: &Registry,
        entra: &TokenSource,
        realm: &str,
        service: &str,
        renew: bool,
        cx: &CallContext<'_>,
    ) -> Result<String, RegistryError> {
        let mut cached = registry.refresh.lock().await;
        if !renew && let Some(token) = cached.as_ref().and_then(Cached::fresh) {
            return Ok(token.to_owned());
        }
        let url = match realm.strip_suffix("/oauth2/token") {
            Some(root) => format!("{root}/oauth2/exchange"),
            None => format!("{}/oauth2/exchange", registry.base),
        };
        let mut entra_refreshed = renew;
        loop {
            let access_token = entra.token(entra_refreshed).await?;
            let exchange = self
                .send(registry, "token exchange", cx, || {
                    self.http.post(&url).form(&[
                        ("grant_type", "access_token"),
                        ("service", service),
                        ("access_token", access_token.as_str()),
                    ])
                })
                .await?;
            if exchange.status == 401 && !entra_refreshed {
                // An Entra token revoked or expired early: fetch a new one once.
                entra_refreshed = true;
                continue;
            }
            if !(200..300).contains(&exchange.status) {
                let (_, message) = exchange.oci_error();
                return Err(registry.refused(format!(
                    "ACR refused to exchange the Entra token ({}) for a refresh token (HTTP {}): {message}",
                    entra.method(),
                    exchange.status
                )));
            }
            let body = exchange.json();
            let token = body
                .get("refresh_token")
                .and_then(Value::as_str)
                .ok_or_else(|| registry.refused("ACR's exchange sent no refresh_token".into()))?
                .to_owned();
            let lifetime = jwt_lifetime(&token).unwrap_or(DEFAULT_REFRESH_LIFETIME);
            *cached = Some(Cached::new(token.clone(), lifetime));
            tracing::debug!(registry = %registry.name, lifetime_s = lifetime.as_secs(), "ACR refresh token acquired");
            return Ok(token);
        }
    }

    /// One HTTP exchange with retries for 408/429/5xx and connection errors, through the
    /// shared executor (every request here reads, obtains a token, or deletes a tag, which a
    /// repeat leaves deleted; a 401 is the caller's to answer with a token).
    async fn send(
        &self,
        registry: &Registry,
        operation: &str,
        cx: &CallContext<'_>,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Exchange, RegistryError> {
        let policy = Policy {
            retry: &self.retry,
            repeatable: true,
            refresh_on_401: false,
        };
        let target = Target {
            service: &registry.name,
            operation,
        };
        let outcome = execute(target, policy, cx, async |_| {
            Ok::<_, std::convert::Infallible>(make())
        })
        .await;
        match outcome {
            Ok(exchange) => Ok(exchange),
            Err(Failure::Cancelled) => Err(RegistryError::Cancelled {
                registry: registry.name.clone(),
                operation: operation.to_owned(),
            }),
            Err(Failure::Deadline { .. })
            | Err(Failure::Unreachable {
                timed_out: true, ..
            }) => Err(registry.timeout(operation)),
            Err(Failure::Unreachable {
                attempts, message, ..
            }) => Err(RegistryError::Unreachable {
                registry: registry.name.clone(),
                operation: operation.to_owned(),
                attempts,
                message,
            }),
            Err(Failure::Local(message)) => Err(RegistryError::Unreachable {
                registry: registry.name.clone(),
                operation: operation.to_owned(),
                attempts: 1,
                message,
            }),
            Err(Failure::Build(never)) => match never {},
        }
    }
}

impl Registry {
    fn new(
        config: &RegistryConfig,
        auth_profiles: &BTreeMap<String, AuthProfile>,
        entra: Option<Arc<TokenSource>>,
    ) -> Registry {
        let base = config.url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base);
        let (host, host_port) = match &parsed {
            Ok(url) => {
                let host = url.host_str().unwrap_or_default().to_owned();
                let host_port = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.clone(),
                };
                (host, host_port)
            }
            Err(_) => (String::new(), String::new()),
        };
        let auth = match (&parsed, config.auth.as_str()) {
            (Err(e), _) => Auth::Invalid(format!("url {:?} is not a URL: {e}", config.url)),
            (_, "anonymous") => Auth::Anonymous,
            (_, "acr") => match entra {
                Some(tokens) => Auth::Acr(tokens),
                None => Auth::Invalid(
                    "auth = \"acr\" needs Azure credentials: add an [azure] section".into(),
                ),
            },
            (_, profile) => match auth_profiles.get(profile) {
                Some(AuthProfile::Basic { username, password }) => Auth::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
                Some(AuthProfile::Bearer { token, .. }) => Auth::Bearer(token.clone()),
                Some(_) => Auth::Invalid(format!(
                    "auth profile {profile:?} is not of kind \"basic\" or \"bearer\""
                )),
                None => Auth::Invalid(format!(
                    "auth {profile:?} is neither \"acr\", \"anonymous\" nor a profile in [auth_profiles]"
                )),
            },
        };
        if let Auth::Invalid(message) = &auth {
            tracing::warn!(registry = %config.name, "{message}");
        }
        Registry {
            name: config.name.clone(),
            base,
            host,
            host_port,
            page_size: config.page_size,
            auth_name: config.auth.clone(),
            auth,
            basic_challenge: AtomicBool::new(false),
            tokens: Mutex::default(),
            refresh: Mutex::default(),
        }
    }

    /// The `Authorization` header for a request in `scope`, if one is known.
    async fn authorization(&self, scope: &str) -> Option<String> {
        match &self.auth {
            Auth::Bearer(token) => return Some(format!("Bearer {}", token.expose())),
            Auth::Basic { username, password } if self.basic_challenge.load(Ordering::SeqCst) => {
                let pair = format!("{username}:{}", password.expose());
                return Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ));
            }
            _ => {}
        }
        let tokens = self.tokens.lock().await;
        tokens
            .get(scope)
            .and_then(Cached::fresh)
            .map(|t| format!("Bearer {t}"))
    }

    /// `intens.azurecr.io` (or a sovereign cloud's `azurecr.*`) for an ACR registry named
    /// `intens`, whatever URL it is reached at.
    fn is_acr_login_server(&self, name: &str) -> bool {
        matches!(self.auth, Auth::Acr(_))
            && name
                .to_ascii_lowercase()
                .strip_prefix(&format!("{}.", self.name.to_ascii_lowercase()))
                .is_some_and(|domain| domain.starts_with("azurecr."))
    }

    fn page_url(&self, url: String) -> String {
        match self.page_size {
            Some(n) => format!("{url}?n={n}"),
            None => url,
        }
    }

    /// A `Link` target: absolute, below this registry's base, or relative to `current`.
    fn resolve(&self, current: &str, link: &str) -> String {
        if link.starts_with("http://") || link.starts_with("https://") {
            return link.to_owned();
        }
        let prefix = url::Url::parse(&self.base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        // `/v2/...` (or ACR's `/acr/v1/...`) from a registry served below a path prefix (a
        // proxy) keeps the prefix.
        let api_root = link.starts_with("/v2/") || link.starts_with("/acr/v1/");
        if api_root && !prefix.is_empty() && !link.starts_with(&prefix) {
            return format!("{}{link}", self.base);
        }
        url::Url::parse(current)
            .and_then(|u| u.join(link))
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("{}{link}", self.base))
    }

    fn refused(&self, message: String) -> RegistryError {
        RegistryError::Auth {
            registry: self.name.clone(),
            auth: format!("auth = {:?}", self.auth_name),
            message,
        }
    }

    fn timeout(&self, operation: &str) -> RegistryError {
        RegistryError::Timeout {
            registry: self.name.clone(),
            operation: operation.to_owned(),
        }
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn ensure_success(
    registry: &Registry,
    operation: &str,
    exchange: &Exchange,
) -> Result<(), RegistryError> {
    if (200..300).contains(&exchange.status) {
        return Ok(());
    }
    let (code, message) = exchange.oci_error();
    Err(RegistryError::Registry {
        registry: registry.name.clone(),
        operation: operation.to_owned(),
        status: exchange.status,
        code,
        message,
    })
}

/// The manifest's media type: `Content-Type` without parameters, else the body's `mediaType`.
fn media_type(exchange: &Exchange) -> String {
    exchange
        .header(CONTENT_TYPE.as_str())
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|t| !t.is_empty() && t != "application/json")
        .or_else(|| {
            exchange
                .json()
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The token in a token service's answer and how long it lives (`expires_in`, the JWT's `exp`,
/// or the spec's 60 s default).
fn read_token(exchange: &Exchange, fields: &[&str]) -> Option<(String, Duration)> {
    let body = exchange.json();
    let token = fields
        .iter()
        .find_map(|f| body.get(*f).and_then(Value::as_str))
        .filter(|t| !t.is_empty())?
        .to_owned();
    let lifetime = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .or_else(|| jwt_lifetime(&token))
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Some((token, lifetime))
}

/// Time left before a JWT's `exp`, if the token is a JWT.
fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    let now = chrono::Utc::now().timestamp();
    Some(Duration::from_secs(exp.saturating_sub(now).max(0) as u64))
}

/// `Link: </v2/_catalog?last=b&n=2>; rel="next"` → `/v2/_catalog?last=b&n=2`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

/// A `WWW-Authenticate` challenge: scheme and `key="value"` parameters (values may hold
/// commas, as in `scope="repository:a:pull,push"`).
#[derive(Debug, PartialEq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            params.push((key, value));
        }
        Challenge {
            scheme: scheme.to_owned(),
            params,
        }
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Repository names as the distribution spec allows them (lowercase path components), which
/// also keeps a name from escaping `/v2/<name>/`.
fn check_repository(repository: &str) -> Result<(), RegistryError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if repository.is_empty() {
        return Err(RegistryError::BadRequest(
            "a repository is required (--repository)".into(),
        ));
    }
    if repository.len() > 255 || !repository.split('/').all(component_ok) {
        return Err(RegistryError::BadRequest(format!(
            "{repository:?} is not a repository name (lowercase letters, digits, '.', '_', '-', '/')"
        )));
    }
    Ok(())
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) or a digest (`algorithm:hex`).
fn check_reference(reference: &str) -> Result<(), RegistryError> {
    let tag_ok = reference.len() <= 128
        && reference
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let digest_ok = reference.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'=')
    });
    if tag_ok || digest_ok {
        Ok(())
    } else {
        Err(RegistryError::BadRequest(format!(
            "{reference:?} is neither a tag nor a digest"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let basic = Challenge::parse(r#"Basic realm="basic-realm""#);
        assert_eq!(basic.scheme, "Basic");
        assert_eq!(basic.param("realm"), Some("basic-realm"));
        assert_eq!(Challenge::parse("Bearer").params, vec![]);
    }

    #[test]
    fn next_links_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                r#"</v2/_catalog?last=b&n=2>; rel="prev", </v2/_catalog?last=d&n=2>; rel="next""#,
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/_catalog?last=d&n=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    fn registry(url: &str) -> Registry {
        let config = RegistryConfig {
            name: "r".into(),
            url: url.into(),
            auth: "anonymous".into(),
            page_size: None,
        };
        Registry::new(&config, &BTreeMap::new(), None)
    }

    #[test]
    fn links_resolve_below_a_path_prefix() {
        let plain = registry("http://127.0.0.1:5000");
        assert_eq!(
            plain.resolve(
                "http://127.0.0.1:5000/v2/_catalog?n=2",
                "/v2/_catalog?last=b&n=2"
            ),
            "http://127.0.0.1:5000/v2/_catalog?last=b&n=2"
        );
        let prefixed = registry("http://127.0.0.1:8080/acr/intens/");
        assert_eq!(
            prefixed.resolve(
                "http://127.0.0.1:8080/acr/intens/v2/_catalog",
                "/v2/_catalog?last=b"
            ),
            "http://127.0.0.1:8080/acr/intens/v2/_catalog?last=b"
        );
        assert_eq!(
            prefixed.resolve(
                "http://127.0.0.1:8080/acr/intens/v2/_catalog",
                "/acr/intens/v2/_catalog?last=b"
            ),
            "http://127.0.0.1:8080/acr/intens/v2/_catalog?last=b"
        );
        assert_eq!(
            prefixed.resolve(
                "http://127.0.0.1:8080/acr/intens/acr/v1/simsvc/_tags?n=2",
                "/acr/v1/simsvc/_tags?last=b&n=2"
            ),
            "http://127.0.0.1:8080/acr/intens/acr/v1/simsvc/_tags?last=b&n=2"
        );
        assert_eq!(prefixed.host_port, "127.0.0.1:8080");
    }

    #[test]
    fn names_and_references_are_checked() {
        assert!(check_repository("simsvc-mpt").is_ok());
        assert!(check_repository("team/simsvc_2.x").is_ok());
        for bad in ["", "../etc", "Simsvc", "a//b", "a/", "-a"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        assert!(check_reference("1.2").is_ok());
        assert!(check_reference("latest").is_ok());
        assert!(check_reference(&sha256_digest(b"x")).is_ok());
        for bad in ["", ".hidden", "a/b", "1.2?x=y"] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_lifetimes_come_from_expires_in_or_the_jwt() {
        let exp = chrono::Utc::now().timestamp() + 600;
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let jwt = format!("e30.{claims}.sig");
        let lifetime = jwt_lifetime(&jwt).unwrap();
        assert!(lifetime > Duration::from_secs(590) && lifetime <= Duration::from_secs(600));
        assert_eq!(jwt_lifetime("opaque"), None);
        let exchange = |body: &str| Exchange {
            status: 200,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            url: String::new(),
        };
        assert_eq!(
            read_token(&exchange(r#"{"token":"t","expires_in":300}"#), &["token"]),
            Some(("t".into(), Duration::from_secs(300)))
        );
        assert_eq!(
            read_token(
                &exchange(r#"{"access_token":"t"}"#),
                &["token", "access_token"]
            ),
            Some(("t".into(), DEFAULT_TOKEN_LIFETIME))
        );
        // Renewed shortly before expiry, never at once.
        let cached = Cached::new("t".into(), Duration::from_secs(60));
        assert!(cached.fresh().is_some());
        assert!(cached.renew_at <= Instant::now() + Duration::from_secs(45));
    }
}
