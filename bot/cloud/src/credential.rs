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
        let token = credential
            .get_token(&[self.scope.as_str()])
            .await
            .map_err(|e| self.error(error_chain(&e)))?;
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
        let env = |name: &str| std::env::var(name).ok();
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
            CredentialConfig::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => {
                let tenant = tenant_id
                    .clone()
                    .or_else(|| env("AZURE_TENANT_ID"))
                    .ok_or_else(|| {
                        self.error("no tenant id: set tenant_id or AZURE_TENANT_ID".into())
                    })?;
                let client = client_id
                    .clone()
                    .or_else(|| env("AZURE_CLIENT_ID"))
                    .ok_or_else(|| {
                        self.error("no client id: set client_id or AZURE_CLIENT_ID".into())
                    })?;
                let file = token_file
                    .clone()
                    .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(Into::into))
                    .ok_or_else(|| {
                        self.error(
                            "no token file: set token_file or AZURE_FEDERATED_TOKEN_FILE".into(),
                        )
                    })?;
                let assertion = std::fs::read_to_string(&file).map_err(|e| {
                    self.error(format!(
                        "cannot read federated token file {}: {e}",
                        file.display()
                    ))
                })?;
                Arc::new(WorkloadIdentityCredential::new(
                    http,
                    self.authority.clone(),
                    tenant,
                    client,
                    assertion.trim().to_owned(),
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
