//! Entra ID tokens for Resource Manager, through `azure_identity`, cached and refreshed before
//! they expire. A failure says which method was tried and why it failed.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::TokenCredential;
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, TokenCredentialOptions,
    VirtualMachineManagedIdentityCredential, WorkloadIdentityCredential,
};
use tokio::sync::Mutex;
use url::Url;

use super::config::{AzureConfig, CredentialConfig};
use crate::token_answer::TokenRequest;

/// Refresh this long before a token expires, so no request carries a token about to lapse.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, thiserror::Error)]
#[error("Azure credential ({method}) failed: {message}")]
pub struct CredentialError {
    pub method: &'static str,
    pub message: String,
}

struct Cached {
    token: String,
    expires_at: std::time::Instant,
}

/// Hands out a bearer token for one scope (the ARM endpoint's `/.default`).
pub struct TokenSource {
    config: CredentialConfig,
    authority: Url,
    scope: String,
    cache: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(azure: &AzureConfig) -> Result<TokenSource, CredentialError> {
        let method = azure.credential.method();
        let authority = Url::parse(&azure.authority_host).map_err(|e| CredentialError {
            method,
            message: format!(
                "authority_host {:?} is not a URL: {e}",
                azure.authority_host
            ),
        })?;
        Ok(TokenSource {
            config: azure.credential.clone(),
            authority,
            scope: format!("{}/.default", azure.arm_endpoint.trim_end_matches('/')),
            cache: Mutex::new(None),
        })
    }

    pub fn method(&self) -> &'static str {
        self.config.method()
    }

    /// A valid token; `refresh` forces a new one (after a 401 for an expired token).
    pub async fn token(&self, refresh: bool) -> Result<String, CredentialError> {
        let mut cache = self.cache.lock().await;
        if !refresh
            && let Some(cached) = cache.as_ref()
            && cached.expires_at > std::time::Instant::now() + REFRESH_MARGIN
        {
            return Ok(cached.token.clone());
        }
        // Built per fetch: the workload-identity token file rotates, and the SDK's own cache
        // would otherwise hand back a token the server just refused.
        let credential = self.credential()?;
        let token = match credential.get_token(&[self.scope.as_str()]).await {
            Ok(token) => token,
            Err(e) => return Err(self.error(self.explain(&e).await)),
        };
        let lifetime = (token.expires_on - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        let value = token.token.secret().to_owned();
        *cache = Some(Cached {
            token: value.clone(),
            expires_at: std::time::Instant::now() + lifetime,
        });
        tracing::debug!(
            method = self.method(),
            lifetime_s = lifetime.as_secs(),
            "Azure token acquired"
        );
        Ok(value)
    }

    /// Why a token request failed: what the token endpoint answered when it can be asked
    /// again (see [`crate::token_answer`]), else azure_identity's own words.
    async fn explain(&self, error: &azure_core::Error) -> String {
        let chain = error_chain(error);
        let request = match self.token_request() {
            Ok(Some(request)) => request,
            _ => return chain,
        };
        match crate::token_answer::describe(&request).await {
            Some(answer) => answer,
            None => chain,
        }
    }

    /// The token request the configured credential sends, for the methods that send one to
    /// `authority_host` (client secret, workload identity): the same URL and form as
    /// azure_identity 0.21 builds.
    fn token_request(&self) -> Result<Option<TokenRequest>, CredentialError> {
        let scope = self.scope.clone();
        let grant = ("grant_type", "client_credentials".to_owned());
        Ok(Some(match &self.config {
            CredentialConfig::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => {
                let mut url = self.authority.clone();
                let Ok(mut segments) = url.path_segments_mut() else {
                    return Ok(None);
                };
                segments.extend(&[tenant_id.as_str(), "oauth2", "v2.0", "token"]);
                drop(segments);
                TokenRequest {
                    url,
                    form: vec![
                        grant,
                        ("client_id", client_id.clone()),
                        ("client_secret", client_secret.expose().to_owned()),
                        ("scope", scope),
                    ],
                }
            }
            CredentialConfig::WorkloadIdentity { .. } => {
                let (tenant, client, assertion) = self.workload_identity()?;
                let Ok(url) = self.authority.join(&format!("/{tenant}/oauth2/v2.0/token")) else {
                    return Ok(None);
                };
                TokenRequest {
                    url,
                    form: vec![
                        ("client_id", client),
                        ("scope", scope),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                        ),
                        ("client_assertion", assertion),
                        grant,
                    ],
                }
            }
            CredentialConfig::ManagedIdentity | CredentialConfig::AzureCli => return Ok(None),
        }))
    }

    /// Workload identity's tenant, client and assertion (config, else the environment AKS's
    /// webhook sets).
    fn workload_identity(&self) -> Result<(String, String, String), CredentialError> {
        let CredentialConfig::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } = &self.config
        else {
            return Err(self.error("not a workload identity credential".into()));
        };
        let env = |name: &str| std::env::var(name).ok();
        let tenant = tenant_id
            .clone()
            .or_else(|| env("AZURE_TENANT_ID"))
            .ok_or_else(|| self.error("no tenant id: set tenant_id or AZURE_TENANT_ID".into()))?;
        let client = client_id
            .clone()
            .or_else(|| env("AZURE_CLIENT_ID"))
            .ok_or_else(|| self.error("no client id: set client_id or AZURE_CLIENT_ID".into()))?;
        let file = token_file
            .clone()
            .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(Into::into))
            .ok_or_else(|| {
                self.error("no token file: set token_file or AZURE_FEDERATED_TOKEN_FILE".into())
            })?;
        let assertion = std::fs::read_to_string(&file).map_err(|e| {
            self.error(format!(
                "cannot read federated token file {}: {e}",
                file.display()
            ))
        })?;
        Ok((tenant, client, assertion.trim().to_owned()))
    }

    fn error(&self, message: String) -> CredentialError {
        CredentialError {
            method: self.method(),
            message,
        }
    }

    fn credential(&self) -> Result<Arc<dyn TokenCredential>, CredentialError> {
        let http = azure_core::new_http_client();
        let mut options = TokenCredentialOptions::from(http.clone());
        options.set_authority_host(self.authority.to_string());
        Ok(match &self.config {
            CredentialConfig::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => Arc::new(ClientSecretCredential::new(
                http,
                self.authority.clone(),
                tenant_id.clone(),
                client_id.clone(),
                client_secret.expose().to_owned(),
            )),
            CredentialConfig::WorkloadIdentity { .. } => {
                let (tenant, client, assertion) = self.workload_identity()?;
                Arc::new(WorkloadIdentityCredential::new(
                    http,
                    self.authority.clone(),
                    tenant,
                    client,
                    assertion,
                ))
            }
            CredentialConfig::ManagedIdentity => {
                Arc::new(VirtualMachineManagedIdentityCredential::new(options))
            }
            CredentialConfig::AzureCli => Arc::new(AzureCliCredential::new()),
        })
    }
}

/// An error and its sources, joined: azure_identity's own message ("request token error") says
/// little; the Entra answer (`AADSTS7000215: Invalid client secret provided`) is in its source.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    let mut innermost = None;
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        innermost = Some(inner);
        source = inner.source();
    }
    // oauth2's token error keeps Entra's code and description out of its Display text.
    if let Some(inner) = innermost {
        let debug = format!("{inner:?}");
        if let Some(start) = debug.find("error_description: Some(\"") {
            let rest = &debug[start + "error_description: Some(\"".len()..];
            let description = rest.split("\")").next().unwrap_or(rest);
            parts.push(description.replace("\\r\\n", " ").trim().to_owned());
        }
    }
    parts.join(": ")
}
