//! Cloud access as host services: Azure Resource Manager, Kubernetes per cluster, container
//! registries. Credentials, retries, polling and errors live here once; plugins reach them only
//! through the host's `arm`, `kube` and `registry` services, scoped by their capabilities.

pub mod arm;
pub mod config;
pub mod credential;
pub mod executor;
pub mod kube;
pub mod net_error;
pub mod registry;
pub mod resource;
mod token_answer;

use std::collections::BTreeMap;
use std::sync::Arc;

use config::{AuthProfile, AzureConfig, KubernetesConfig, RegistryConfig};

/// The config sections cloud access is built from; nothing else of the config reaches here.
#[derive(Clone, Copy)]
pub struct CloudSections<'a> {
    pub azure: Option<&'a AzureConfig>,
    pub kubernetes: &'a KubernetesConfig,
    pub registries: &'a [RegistryConfig],
    pub auth_profiles: &'a BTreeMap<String, AuthProfile>,
}

/// The cloud clients the host offers, built from config (absent parts are not configured).
pub struct Cloud {
    pub arm: Option<Arc<arm::ArmClient>>,
    pub kube: kube::Clusters,
    pub registries: Arc<registry::Registries>,
}

impl Cloud {
    pub fn new(config: CloudSections<'_>) -> Result<Cloud, arm::ArmError> {
        let arm = match config.azure {
            Some(azure) => Some(Arc::new(arm::ArmClient::new(azure)?)),
            None => None,
        };
        // One retry policy for every cloud call: ARM, Kubernetes and the registries.
        let retry = config.azure.map(|a| a.retry.clone()).unwrap_or_default();
        let kube = kube::Clusters::new(
            config.kubernetes.clusters.clone(),
            arm.clone(),
            retry.clone(),
        );
        let entra = arm.as_ref().map(|arm| arm.tokens());
        let registries = Arc::new(registry::Registries::new(
            config.registries,
            config.auth_profiles,
            retry,
            entra,
        ));
        Ok(Cloud {
            arm,
            kube,
            registries,
        })
    }
}
