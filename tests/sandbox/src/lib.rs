//! # deckhand-sandbox: a local, fake Azure for tests and the quick start
//!
//! Nothing on a developer machine or in CI reaches Azure or a real Kubernetes cluster. This crate
//! serves, over plain HTTP on `127.0.0.1`, the parts of the cloud Deckhand talks to, so that the
//! bot's *production* client code (azure_identity, the ARM REST calls, `kube::Client`, OCI
//! registry calls) runs unchanged against it:
//!
//! * an **Entra ID token endpoint** at `/{tenant}/oauth2/v2.0/token` (client secret and federated
//!   client assertion; also v1 and the OpenID configuration), with expiring tokens;
//! * **Azure Resource Manager** at `/subscriptions/...`: resource groups, AKS managed clusters and
//!   agent pools, ACR registries (with webhooks, import, task runs and the OCI data plane under
//!   `/acr/{registry}/`), ACI container groups and role assignments, with Azure's
//!   long-running-operation protocol, eTags, validation errors and conflicts;
//! * a **Kubernetes API per AKS cluster** at `/k8s/{cluster-id}/` (the kubeconfig returned by
//!   `listClusterUserCredential` points there), with nodes that follow the agent pools, a minimal
//!   scheduler, workload controllers, a kubelet that checks image pulls, a cluster autoscaler,
//!   virtual-node pods as ACI container groups, and watches;
//! * a **control API** at `/_sandbox/` to inject faults (also available as Rust methods).
//!
//! `README.md` beside this crate lists precisely what is modelled and what is not.
//!
//! Its fidelity comes from the real request/response examples in `shared/azure-examples` and from
//! Kubernetes' documented API behaviour. It is a test double: it must never be started by the bot
//! unless the operator asked for it (`deckhand shell --sandbox`), and it never touches a real cloud.
//!
//! ## Using it
//! ```no_run
//! # async fn demo() -> Result<(), deckhand_sandbox::SandboxError> {
//! use deckhand_sandbox::{Sandbox, SandboxOptions};
//! let sandbox = Sandbox::start(SandboxOptions::default()).await?;
//! let estate = sandbox.seed_realistic_estate().await?;
//! // Point azure_identity at sandbox.authority_host() with sandbox.tenant_id(),
//! // sandbox.client_id(), sandbox.client_secret(); point the ARM client at
//! // sandbox.arm_endpoint() and sandbox.subscription_id().
//! let kubeconfig_yaml = sandbox.kubeconfig(&estate.resource_group, &estate.cluster)?;
//! # let _ = kubeconfig_yaml; Ok(()) }
//! ```
#![deny(missing_docs)]

mod arm;
mod control;
mod error;
mod estate;
pub mod faults;
mod http;
pub mod journal;
mod k8s;
mod prices;
mod registry;
mod registry_tags;
mod revoke;
mod state;
mod throttle;
mod token;
pub mod vmsizes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ArmError, ArmResult, SandboxError};
pub use estate::Estate;
pub use faults::{FaultKind, FaultSpec};

use state::Shared;

/// Everything configurable about a sandbox. `Default` suits interactive use.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// How long every long-running operation stays `InProgress` (default 2 s; tests use ~100 ms).
    pub lro_delay: Duration,
    /// Lifetime of access tokens issued by the token endpoint (default 1 h).
    pub token_lifetime: Duration,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// The one subscription the sandbox models.
    pub subscription_id: String,
    /// Client (application) id accepted by the token endpoint.
    pub client_id: String,
    /// Client secret accepted for `client_id`.
    pub client_secret: String,
    /// Watch events kept per cluster for resuming watches; older versions get 410 Gone.
    pub watch_history: usize,
    /// How often an idle watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Port to listen on (0 = ephemeral).
    pub port: u16,
    /// How long a node of an autoscaled pool must stay empty before the autoscaler removes it
    /// (AKS's default `scale-down-unneeded-time` is 10 minutes).
    pub scale_down_after: Duration,
    /// Run the cluster autoscaler for pools with `enableAutoScaling` (default true). Turn it off
    /// to keep pending pods pending.
    pub cluster_autoscaler: bool,
    /// AKS's write bucket (PUT managedClusters and agentPools) per subscription (20).
    pub aks_write_bucket: u32,
    /// The time AKS takes to give one write back (1 minute).
    pub aks_write_refill: Duration,
    /// AKS's read bucket per subscription (250).
    pub aks_read_bucket: u32,
    /// The time to earn one read back (40 ms: 25 per second).
    pub aks_read_refill: Duration,
    /// Items per page of the Retail Prices API (`/api/retail/prices`; Azure's is 100).
    pub price_page_size: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            lro_delay: Duration::from_secs(2),
            token_lifetime: Duration::from_secs(3600),
            tenant_id: "8d6ee2b1-5a8e-4f5b-9a43-5a9b0c0ffee0".into(),
            subscription_id: "3f2c9a5e-1b7d-4e8a-9c6f-000000decade".into(),
            client_id: "0d3c4b2a-7e6f-4a1b-8c9d-5ade0c4ba11d".into(),
            client_secret: "sandbox-client-secret-not-a-real-credential".into(),
            watch_history: 1000,
            bookmark_interval: Duration::from_secs(5),
            port: 0,
            scale_down_after: Duration::from_secs(600),
            cluster_autoscaler: true,
            aks_write_bucket: 20,
            aks_write_refill: Duration::from_secs(60),
            aks_read_bucket: 250,
            aks_read_refill: Duration::from_millis(40),
            price_page_size: 100,
        }
    }
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    autoscaler: tokio::task::JoinHandle<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        self.autoscaler.abort();
    }
}

impl Sandbox {
    /// Binds `127.0.0.1` and starts serving. The estate starts empty; see
    /// [`Sandbox::seed_realistic_estate`].
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|source| SandboxError::Bind { source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { source })?;
        let shared = Arc::new(Shared {
            aks_limits: throttle::AksLimits::new(&opts),
            opts,
            base: format!("http://{addr}"),
            world: Default::default(),
            tokens: Default::default(),
            faults: Default::default(),
            rate: Default::default(),
            journal: Default::default(),
            gates: Default::default(),
        });
        let server = tokio::spawn(http::serve(listener, shared.clone()));
        let autoscaler = tokio::spawn(k8s::autoscaler::run(shared.clone()));
        tracing::info!(%addr, "cloud sandbox listening (no real cloud is touched)");
        Ok(Sandbox {
            shared,
            addr,
            server,
            autoscaler,
        })
    }

    /// Every request served since start (or [`Sandbox::clear_requests`]), its control API
    /// excepted: what reached "Azure", "Kubernetes" and the registries.
    pub fn requests(&self) -> Vec<journal::RecordedRequest> {
        self.shared.journal.snapshot()
    }

    /// Empties the request journal (before a step whose requests a test counts).
    pub fn clear_requests(&self) {
        self.shared.journal.clear();
    }

    /// `http://127.0.0.1:PORT`: the listener's base URL.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resource Manager endpoint (use instead of `https://management.azure.com`).
    pub fn arm_endpoint(&self) -> String {
        self.shared.base.clone()
    }

    /// The Azure Retail Prices API (use instead of `https://prices.azure.com/api/retail/prices`).
    pub fn prices_endpoint(&self) -> String {
        format!("{}/api/retail/prices", self.shared.base)
    }

    /// Entra ID authority host (use instead of `https://login.microsoftonline.com`).
    pub fn authority_host(&self) -> String {
        self.shared.base.clone()
    }

    /// Tenant id the token endpoint serves.
    pub fn tenant_id(&self) -> &str {
        &self.shared.opts.tenant_id
    }

    /// The subscription modelled.
    pub fn subscription_id(&self) -> &str {
        &self.shared.opts.subscription_id
    }

    /// Client id accepted by the token endpoint.
    pub fn client_id(&self) -> &str {
        &self.shared.opts.client_id
    }

    /// Client secret accepted for [`Sandbox::client_id`].
    pub fn client_secret(&self) -> &str {
        &self.shared.opts.client_secret
    }

    /// Base URL of the control API (`.../_sandbox`).
    pub fn control_url(&self) -> String {
        format!("{}/_sandbox", self.shared.base)
    }

    /// Base URL of a registry's data plane (`.../acr/{name}`), serving `/v2/` and `/oauth2/`.
    pub fn registry_url(&self, registry: &str) -> String {
        format!("{}/acr/{}", self.shared.base, registry.to_ascii_lowercase())
    }

    /// Options in effect.
    pub fn options(&self) -> &SandboxOptions {
        &self.shared.opts
    }

    /// Creates the estate described in the seeds (see [`Estate`] and the `estate` module):
    /// resource group `pangeo`, registry `intens` with `simsvc` and `simsvc-mpt`, cluster
    /// `pangeoCluster` with pools `system`, `users`, `gpu` (Standard_NC6s_v3, autoscaler 0..4,
    /// taint `nvidia.com/gpu=present:NoSchedule`) and Spot `workers` (0..50),
    /// virtual nodes on. Returns once its long-running operations have finished (one LRO delay).
    pub async fn seed_realistic_estate(&self) -> Result<Estate, SandboxError> {
        estate::seed(&self.shared).await
    }

    /// Adds User pools `names` (`count` × `vm_size` each) to the estate's cluster as setup,
    /// without spending the AKS write budget; returns once they exist.
    pub async fn add_pools(
        &self,
        estate: &Estate,
        names: &[&str],
        size: (&str, u32),
    ) -> Result<(), SandboxError> {
        estate::add_pools(&self.shared, estate, names, size).await
    }

    /// A kubeconfig (YAML) for a cluster's Kubernetes API, as `listClusterUserCredential` returns it.
    pub fn kubeconfig(&self, resource_group: &str, cluster: &str) -> Result<String, SandboxError> {
        arm::aks::kubeconfig_for(&self.shared, resource_group, cluster)
            .ok_or_else(|| SandboxError::NoSuchCluster(cluster.to_string()))
    }

    /// Issues an ARM access token directly (as if the client-credentials flow had run).
    pub fn issue_token(&self) -> String {
        token::issue(&self.shared, &self.shared.opts.client_id.clone()).0
    }

    /// Mints a federated client assertion (a Kubernetes service-account style JWT) that the token
    /// endpoint accepts with `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub fn federated_assertion(&self, subject: &str) -> String {
        token::mint_assertion(&self.shared, subject)
    }

    /// Adds a fault rule; returns its id.
    pub fn inject(&self, spec: FaultSpec) -> u64 {
        faults::add(&self.shared, spec)
    }

    /// Opens a gate: requests held on it by a [`FaultKind::Hold`] rule go on.
    pub fn open_gate(&self, gate: &str) {
        self.shared.gates.open(gate);
    }

    /// Removes one fault rule. Returns false if it did not exist.
    pub fn remove_fault(&self, id: u64) -> bool {
        faults::remove(&self.shared, id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        faults::clear(&self.shared)
    }

    /// Forgets the watch history of a cluster so that watches from older resource versions get
    /// 410 Gone (what etcd compaction does).
    pub fn compact_watch_history(
        &self,
        resource_group: &str,
        cluster: &str,
    ) -> Result<(), SandboxError> {
        k8s::compact(&self.shared, resource_group, cluster)
            .ok_or_else(|| SandboxError::NoSuchCluster(cluster.to_string()))
    }

    /// Id of a cluster's Kubernetes API (`/k8s/{id}`).
    pub fn cluster_kube_id(&self, resource_group: &str, cluster: &str) -> Option<String> {
        let w = self.shared.world();
        w.clusters
            .get(&state::key(resource_group, cluster))
            .map(|c| c.kube_id.clone())
    }

    /// Tags of `repo` in registry `registry` (any resource group), name order; `None` when the
    /// registry or repository does not exist.
    pub fn registry_tags(&self, registry: &str, repo: &str) -> Option<Vec<String>> {
        let w = self.shared.world();
        w.registries
            .values()
            .find(|r| r.name.eq_ignore_ascii_case(registry))
            .and_then(|r| r.repos.get(repo))
            .map(|tags| tags.keys().cloned().collect())
    }

    /// Pushes a synthetic image `repo:tag` into `registry` (as a `docker push` would), dated
    /// now; false when the registry does not exist.
    pub fn push_image(&self, registry: &str, repo: &str, tag: &str) -> bool {
        let mut w = self.shared.world();
        let Some(r) = w
            .registries
            .values_mut()
            .find(|r| r.name.eq_ignore_ascii_case(registry))
        else {
            return false;
        };
        r.repos
            .entry(repo.to_owned())
            .or_default()
            .insert(tag.to_owned(), registry::Image::synthetic(repo, tag));
        true
    }

    /// Waits until no long-running operation is in progress (useful after seeding or in tests).
    pub async fn settle(&self) {
        loop {
            let busy = self.shared.world().ops.values().any(|o| !o.is_done());
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
