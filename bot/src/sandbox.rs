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
    seed_demo_secret(&sandbox, &estate).await?;
    Ok(Running { sandbox, estate })
}

/// The htpasswd Secret `/deploy simsvc` expects (seed 000 creates it once per namespace by
/// hand). Its password is a sandbox-only demo value; real clusters get theirs from the operator.
async fn seed_demo_secret(sandbox: &Sandbox, estate: &Estate) -> Result<(), SandboxStartError> {
    use k8s_openapi::api::core::v1::Secret as KubeSecret;
    let fail = |e: String| SandboxStartError(format!("seeding the demo basic-auth secret: {e}"));
    let yaml = sandbox
        .kubeconfig(&estate.resource_group, &estate.cluster)
        .map_err(|e| fail(e.to_string()))?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).map_err(|e| fail(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let client = kube::Client::try_from(config).map_err(|e| fail(e.to_string()))?;
    let secrets: kube::Api<KubeSecret> = kube::Api::namespaced(client, "default");
    let secret: KubeSecret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "simsvc-basic-auth", "namespace": "default"},
        "type": "Opaque",
        // htpasswd -nbB intens sandbox-demo (bcrypt); sandbox only.
        "stringData": {"auth": "intens:$2y$05$Zg7Vn0m2bqkzHkq0oK1sU.1yQm8wYVbq7iQJr6kM3o2hA6sQe0uXy"}
    }))
    .map_err(|e| fail(e.to_string()))?;
    secrets
        .create(&Default::default(), &secret)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
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
    /// fills the aks, vk, acr, runner and daskhub plugins' cluster defaults where the config leaves them out.
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
        if let Some(cost) = &mut config.cost {
            cost.prices_endpoint = sandbox.prices_endpoint();
        }
        for plugin in ["aks", "vk", "acr", "runner", "daskhub"] {
            let section = config
                .plugins
                .config
                .entry(plugin.to_owned())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(table) = section {
                for (key, value) in [
                    ("resource_group", &estate.resource_group),
                    ("default_cluster", &estate.cluster),
                    ("kube_cluster", &estate.cluster),
                ] {
                    table
                        .entry(key)
                        .or_insert_with(|| toml::Value::String(value.clone()));
                }
                if plugin == "acr" {
                    table
                        .entry("registry")
                        .or_insert_with(|| toml::Value::String(estate.registry.clone()));
                }
            }
        }
    }
}
