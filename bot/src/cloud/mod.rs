//! Cloud access as host services: Azure Resource Manager, Kubernetes per cluster, container
//! registries. Credentials, retries, polling and errors live here once; plugins reach them only
//! through the host's `arm`, `kube` and `registry` services, scoped by their capabilities.

pub mod arm;
pub mod config;
pub mod credential;
pub mod kube;
pub mod net_error;
pub mod registry;
pub mod resource;

use std::sync::Arc;

use crate::config::Config;

/// The cloud clients the host offers, built from config (absent parts are not configured).
pub struct Cloud {
    pub arm: Option<Arc<arm::ArmClient>>,
    pub kube: kube::Clusters,
    pub registries: Arc<registry::Registries>,
}

impl Cloud {
    pub fn from_config(config: &Config) -> Result<Cloud, arm::ArmError> {
        let arm = match &config.azure {
            Some(azure) => Some(Arc::new(arm::ArmClient::new(azure)?)),
            None => None,
        };
        let kube = kube::Clusters::new(config.kubernetes.clusters.clone(), arm.clone());
        let entra = arm.as_ref().map(|arm| arm.tokens());
        let retry = config
            .azure
            .as_ref()
            .map(|a| a.retry.clone())
            .unwrap_or_default();
        let registries = Arc::new(registry::Registries::new(
            &config.registries,
            &config.auth_profiles,
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
