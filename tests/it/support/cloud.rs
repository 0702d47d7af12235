//! A bot wired to a running cloud sandbox: `[azure]` points at the sandbox's token endpoint and
//! Resource Manager, with short poll intervals and retry delays so tests stay fast.

use std::time::Duration;

use deckhand_sandbox::{Estate, Sandbox, SandboxOptions};

use std::path::PathBuf;

use crate::{TestBot, plugin_library};

pub struct CloudBot {
    pub sandbox: Sandbox,
    pub estate: Estate,
    pub bot: TestBot,
}

/// The `[azure]`, `[[kubernetes.clusters]]` and `[[registries]]` sections for a sandbox.
pub fn cloud_config(sandbox: &Sandbox, estate: &Estate, extra: &str) -> String {
    format!(
        r#"
[azure]
subscription_id = "{sub}"
authority_host = "{base}"
arm_endpoint = "{base}"
poll_interval = "50ms"
operation_timeout = "15s"

[azure.credential]
kind = "client_secret"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "{secret}"

[azure.retry]
max_attempts = 4
base_delay = "50ms"
max_delay = "2s"
try_timeout = "2s"

[[kubernetes.clusters]]
name = "{cluster}"
aks = {{ resource_group = "{rg}", cluster = "{cluster}" }}

[[registries]]
name = "{registry}"
url = "{registry_url}"
auth = "acr"
{extra}
"#,
        sub = sandbox.subscription_id(),
        base = sandbox.base_url(),
        tenant = sandbox.tenant_id(),
        client = sandbox.client_id(),
        secret = sandbox.client_secret(),
        cluster = estate.cluster,
        rg = estate.resource_group,
        registry = estate.registry,
        registry_url = sandbox.registry_url(&estate.registry),
    )
}

impl CloudBot {
    /// A seeded sandbox (long-running operations take `lro_delay`) and a bot on it.
    pub async fn start(plugins: &[&str], lro_delay: Duration, extra: &str) -> CloudBot {
        let libraries: Vec<PathBuf> = plugins.iter().map(|name| plugin_library(name)).collect();
        let options = SandboxOptions {
            lro_delay,
            ..SandboxOptions::default()
        };
        CloudBot::start_with(options, &libraries, |_| extra.to_owned()).await
    }

    /// A seeded sandbox and a bot loading `libraries`; `extra` config may name the estate.
    pub async fn start_with(
        options: SandboxOptions,
        libraries: &[PathBuf],
        extra: impl FnOnce(&Estate) -> String,
    ) -> CloudBot {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let estate = sandbox.seed_realistic_estate().await.expect("estate seeds");
        sandbox.settle().await;
        let config = cloud_config(&sandbox, &estate, &extra(&estate));
        let bot = TestBot::with_libraries(libraries, &config);
        CloudBot {
            sandbox,
            estate,
            bot,
        }
    }

    /// The host's own Kubernetes client for the seeded cluster (built from its AKS credential).
    pub async fn kube_client(&self) -> kube::Client {
        self.bot
            .app
            .host
            .services()
            .cloud()
            .kube
            .client(&self.estate.cluster)
            .await
            .expect("kube client for the seeded cluster")
    }

    /// `/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}`.
    pub fn cluster_path(&self) -> String {
        format!(
            "/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.estate.resource_group, self.estate.cluster
        )
    }
}

/// A Kubernetes client from a kubeconfig (YAML), as an operator's `kubectl` would use it.
pub async fn kube_client_from(kubeconfig: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client")
}
