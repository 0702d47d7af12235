//! `--sandbox`: start the cloud sandbox (tests/sandbox: a local double of Azure Resource
//! Manager, Entra ID and the AKS clusters' Kubernetes APIs) in this process, seed it with the
//! estate the seeds describe, and point the host's cloud services at it. Only ever started when
//! the operator asks for it; it never touches a real cloud.

use deckhand_sandbox::{Estate, Sandbox, SandboxOptions};

use crate::cloud::config::{
    AksRef, AzureConfig, ClusterConfig, CredentialConfig, RegistryConfig, RetryConfig,
};
use crate::config::Config;
use crate::secret::Secret;

/// A running, seeded sandbox.
pub struct Running {
    pub sandbox: Sandbox,
    pub estate: Estate,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the cloud sandbox: {0}")]
pub struct SandboxStartError(String);

pub async fn start() -> Result<Running, SandboxStartError> {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .map_err(|e| SandboxStartError(e.to_string()))?;
    let estate = sandbox
        .seed_realistic_estate()
        .await
        .map_err(|e| SandboxStartError(e.to_string()))?;
    sandbox.settle().await;
    Ok(Running { sandbox, estate })
}

impl Running {
    /// What the terminal shows before the prompt.
    pub fn banner(&self) -> String {
        format!(
            "Cloud sandbox at {} — a local double of Azure and AKS; no real cloud is touched.\n\
             Seeded: resource group {}, AKS cluster {} (pools system, users, gpu, workers; virtual nodes on), registry {}.",
            self.sandbox.base_url(),
            self.estate.resource_group,
            self.estate.cluster,
            self.estate.login_server
        )
    }

    /// Points `[azure]`, `[[kubernetes.clusters]]` and `[[registries]]` at the sandbox, and
    /// fills the aks plugin's cluster defaults where the config leaves them out.
    pub fn apply_to(&self, config: &mut Config) {
        let (sandbox, estate) = (&self.sandbox, &self.estate);
        config.azure = Some(AzureConfig {
            subscription_id: sandbox.subscription_id().to_owned(),
            credential: CredentialConfig::ClientSecret {
                tenant_id: sandbox.tenant_id().to_owned(),
                client_id: sandbox.client_id().to_owned(),
                client_secret: Secret::new(sandbox.client_secret()),
            },
            authority_host: sandbox.authority_host(),
            arm_endpoint: sandbox.arm_endpoint(),
            retry: RetryConfig::default(),
            poll_interval: std::time::Duration::from_millis(500),
            operation_timeout: std::time::Duration::from_secs(600),
        });
        config.kubernetes.clusters = vec![ClusterConfig {
            name: estate.cluster.clone(),
            aks: Some(AksRef {
                resource_group: estate.resource_group.clone(),
                cluster: estate.cluster.clone(),
            }),
            kubeconfig: None,
            context: None,
            in_cluster: false,
        }];
        // Through serde, so fields added to the registry section keep their defaults.
        let registry: RegistryConfig = toml::from_str(&format!(
            "name = {:?}\nurl = {:?}\nauth = \"acr\"\n",
            estate.registry,
            sandbox.registry_url(&estate.registry)
        ))
        .expect("a registry section built from known values parses");
        config.registries = vec![registry];
        let aks = config
            .plugins
            .config
            .entry("aks".to_owned())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let toml::Value::Table(table) = aks {
            for (key, value) in [
                ("resource_group", &estate.resource_group),
                ("default_cluster", &estate.cluster),
                ("kube_cluster", &estate.cluster),
                ("registry", &estate.login_server),
            ] {
                table
                    .entry(key)
                    .or_insert_with(|| toml::Value::String(value.clone()));
            }
        }
    }
}
