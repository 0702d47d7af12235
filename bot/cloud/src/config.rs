//! Configuration of cloud access: `[azure]`, `[[kubernetes.clusters]]`, `[[registries]]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use deckhand_support::secret::Secret;

/// How the host authenticates to Azure, and where Azure is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    pub subscription_id: String,
    pub credential: CredentialConfig,
    /// Entra ID authority (sovereign clouds, or the sandbox).
    #[serde(default = "default_authority")]
    pub authority_host: String,
    /// Resource Manager endpoint (sovereign clouds, or the sandbox).
    #[serde(default = "default_arm")]
    pub arm_endpoint: String,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Poll interval of long-running operations when Azure sends no Retry-After.
    #[serde(
        default = "default_poll",
        with = "deckhand_support::config_support::duration"
    )]
    pub poll_interval: Duration,
    /// Longest a followed long-running operation may take (also bounded by the command).
    #[serde(
        default = "default_lro_max",
        with = "deckhand_support::config_support::duration"
    )]
    pub operation_timeout: Duration,
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}

fn default_arm() -> String {
    "https://management.azure.com".into()
}

fn default_poll() -> Duration {
    Duration::from_secs(5)
}

fn default_lro_max() -> Duration {
    Duration::from_secs(3600)
}

/// Which credential: chosen explicitly, never guessed.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// AKS workload identity: a federated service-account token exchanged for an Entra token.
    /// Defaults come from the webhook-injected AZURE_TENANT_ID, AZURE_CLIENT_ID and
    /// AZURE_FEDERATED_TOKEN_FILE.
    WorkloadIdentity {
        #[serde(default)]
        tenant_id: Option<String>,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        token_file: Option<PathBuf>,
    },
    /// The VM's or node's system-assigned managed identity (IMDS). (User-assigned identities
    /// are not offered by azure_identity 0.21; on AKS use workload identity instead.)
    ManagedIdentity,
    /// An app registration's client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    /// `az login` on a developer machine.
    AzureCli,
}

impl CredentialConfig {
    pub fn method(&self) -> &'static str {
        match self {
            CredentialConfig::WorkloadIdentity { .. } => "workload identity",
            CredentialConfig::ManagedIdentity => "managed identity",
            CredentialConfig::ClientSecret { .. } => "client secret",
            CredentialConfig::AzureCli => "Azure CLI",
        }
    }
}

/// Retries as Azure's SDKs do them: exponential backoff with jitter, `Retry-After` honoured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(
        default = "default_base",
        with = "deckhand_support::config_support::duration"
    )]
    pub base_delay: Duration,
    #[serde(
        default = "default_max_delay",
        with = "deckhand_support::config_support::duration"
    )]
    pub max_delay: Duration,
    /// Time limit of one HTTP exchange.
    #[serde(
        default = "default_try_timeout",
        with = "deckhand_support::config_support::duration"
    )]
    pub try_timeout: Duration,
}

fn default_attempts() -> u32 {
    5
}

fn default_base() -> Duration {
    Duration::from_millis(800)
}

fn default_max_delay() -> Duration {
    Duration::from_secs(60)
}

fn default_try_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_attempts(),
            base_delay: default_base(),
            max_delay: default_max_delay(),
            try_timeout: default_try_timeout(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
}

/// A Kubernetes cluster plugins may address by `name`: exactly one of `aks`, `kubeconfig`,
/// `in_cluster` says where its credentials come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// An AKS cluster: credentials from `listClusterUserCredential`.
    #[serde(default)]
    pub aks: Option<AksRef>,
    /// A kubeconfig file...
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// ...and optionally its context.
    #[serde(default)]
    pub context: Option<String>,
    /// The cluster the bot runs in (service-account token).
    #[serde(default)]
    pub in_cluster: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AksRef {
    pub resource_group: String,
    pub cluster: String,
}

/// Where a cluster's credentials come from, once validated.
#[derive(Debug, Clone)]
pub enum ClusterSource<'a> {
    Aks(&'a AksRef),
    Kubeconfig {
        path: &'a PathBuf,
        context: Option<&'a str>,
    },
    InCluster,
}

impl ClusterConfig {
    pub fn source(&self) -> Result<ClusterSource<'_>, String> {
        match (&self.aks, &self.kubeconfig, self.in_cluster) {
            (Some(aks), None, false) => Ok(ClusterSource::Aks(aks)),
            (None, Some(path), false) => Ok(ClusterSource::Kubeconfig {
                path,
                context: self.context.as_deref(),
            }),
            (None, None, true) => Ok(ClusterSource::InCluster),
            _ => Err(format!(
                "cluster {:?}: set exactly one of `aks = {{ resource_group, cluster }}`, `kubeconfig = PATH` or `in_cluster = true`",
                self.name
            )),
        }
    }
}

/// A container registry the host may query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Short name plugins use (`intens`); the login server also matches.
    pub name: String,
    /// Base URL of the registry (`https://intens.azurecr.io`).
    pub url: String,
    /// `acr` (Entra token exchanged for a registry token), `anonymous`, or an auth profile name
    /// (basic) for token-realm registries.
    #[serde(default = "default_registry_auth")]
    pub auth: String,
    /// Entries per page asked of the catalog and tag lists (`?n=`); the registry's default
    /// when unset. Pages are followed either way.
    #[serde(default)]
    pub page_size: Option<u32>,
}

fn default_registry_auth() -> String {
    "anonymous".into()
}

/// How the host authenticates an HTTP call a plugin makes with `auth_profile = NAME`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthProfile {
    /// `Authorization: SCHEME TOKEN`, the scheme `Bearer` unless `scheme` names another (Dask
    /// Gateway's JupyterHub authentication reads `jupyterhub TOKEN`).
    Bearer {
        token: Secret,
        #[serde(default)]
        scheme: Option<String>,
    },
    Basic {
        username: String,
        password: Secret,
    },
    /// AWS Signature Version 4, as S3 servers (MinIO) expect.
    Sigv4 {
        /// The access key id is an identifier, not a secret: every signed request and every
        /// presigned URL carries it (`X-Amz-Credential`), so it is not masked in replies.
        /// `${ENV}` references are expanded as in secrets.
        #[serde(deserialize_with = "deckhand_support::secret::env_string")]
        access_key: String,
        secret_key: Secret,
        #[serde(default = "default_region")]
        region: String,
        #[serde(default = "default_sigv4_service")]
        service: String,
    },
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_sigv4_service() -> String {
    "s3".to_owned()
}
