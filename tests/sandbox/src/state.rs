//! Everything the sandbox remembers, behind one lock: the modelled Azure estate and its clusters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::SandboxOptions;
use crate::faults::Faults;
use crate::k8s::KubeCluster;
use crate::token::Issued;

/// State shared by every request handler and background task.
#[derive(Debug)]
pub struct Shared {
    /// Options the sandbox was started with.
    pub opts: SandboxOptions,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// The modelled cloud.
    pub world: Mutex<World>,
    /// Access tokens issued by the token endpoint.
    pub tokens: Mutex<HashMap<String, Issued>>,
    /// Active fault rules.
    pub faults: Mutex<Faults>,
    /// ARM throttling counters reported in `x-ms-ratelimit-remaining-*`.
    pub rate: Rate,
    /// AKS's own write and read buckets (`crate::throttle`).
    pub aks_limits: crate::throttle::AksLimits,
    /// Requests served, for tests that assert none was sent.
    pub journal: crate::journal::Journal,
    /// Gates that held requests wait on ([`crate::faults::FaultKind::Hold`]).
    pub gates: crate::faults::Gates,
}

/// ARM's per-subscription request budgets (reset every hour, as ARM's window does).
#[derive(Debug)]
pub struct Rate {
    /// Start of the current window.
    pub window: Mutex<std::time::Instant>,
    /// Reads left this hour.
    pub reads: AtomicI64,
    /// Writes left this hour.
    pub writes: AtomicI64,
    /// Deletes left this hour.
    pub deletes: AtomicI64,
}

impl Rate {
    /// Takes one request from a budget and returns what is left in this window.
    pub fn take(&self, counter: &AtomicI64) -> i64 {
        use std::sync::atomic::Ordering;
        {
            let mut w = lock(&self.window);
            if w.elapsed() >= std::time::Duration::from_secs(3600) {
                *w = std::time::Instant::now();
                self.reads.store(12000, Ordering::Relaxed);
                self.writes.store(1200, Ordering::Relaxed);
                self.deletes.store(15000, Ordering::Relaxed);
            }
        }
        (counter.fetch_sub(1, Ordering::Relaxed) - 1).max(0)
    }
}

impl Default for Rate {
    fn default() -> Self {
        Self {
            window: Mutex::new(std::time::Instant::now()),
            reads: AtomicI64::new(12000),
            writes: AtomicI64::new(1200),
            deletes: AtomicI64::new(15000),
        }
    }
}

/// Locks a mutex, ignoring poisoning (a panicking handler must not take the sandbox down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}

/// Key of a resource inside a resource group: (group lower-case, name lower-case).
pub type Key = (String, String);

/// Builds a [`Key`].
pub fn key(rg: &str, name: &str) -> Key {
    (rg.to_ascii_lowercase(), name.to_ascii_lowercase())
}

/// The modelled estate.
#[derive(Debug, Default)]
pub struct World {
    /// Resource groups by lower-case name.
    pub groups: BTreeMap<String, ResourceGroup>,
    /// AKS clusters.
    pub clusters: BTreeMap<Key, Cluster>,
    /// Container registries.
    pub registries: BTreeMap<Key, Registry>,
    /// ACI container groups.
    pub aci: BTreeMap<Key, ContainerGroup>,
    /// Virtual networks.
    pub vnets: BTreeMap<Key, Vnet>,
    /// Role assignments by lower-case id.
    pub role_assignments: BTreeMap<String, Value>,
    /// Long-running operations by id.
    pub ops: HashMap<String, crate::arm::lro::Operation>,
    /// Kubernetes API state by cluster id.
    pub kube: HashMap<String, KubeCluster>,
}

/// A virtual network with its subnets.
#[derive(Debug, Clone)]
pub struct Vnet {
    pub name: String,
    pub rg: String,
    pub location: String,
    /// `addressSpace.addressPrefixes` as sent.
    pub address_space: Value,
    /// (name, address prefix), in order.
    pub subnets: Vec<(String, String)>,
    /// Service association links by lower-case subnet name.
    pub links: BTreeMap<String, Vec<String>>,
}

/// A resource group.
#[derive(Debug, Clone)]
pub struct ResourceGroup {
    /// Name as created.
    pub name: String,
    /// Azure region.
    pub location: String,
    /// Tags object (or null).
    pub tags: Value,
    /// `Succeeded` or `Deleting`.
    pub state: String,
    /// `managedBy`: the AKS cluster's id for its node resource group (`MC_...`).
    pub managed_by: Option<String>,
}

/// An AKS managed cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Name as created.
    pub name: String,
    /// Resource group name as created.
    pub rg: String,
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Value,
    /// Top-level fields echoed back (sku, identity, ...).
    pub top: Value,
    /// `properties` minus `agentPoolProfiles` (those live in `pools`).
    pub props: Value,
    /// Agent pools by lower-case name, in creation order of names.
    pub pools: BTreeMap<String, Pool>,
    /// `provisioningState`.
    pub state: String,
    /// `powerState.code`: Running / Stopped.
    pub power: String,
    /// Id of this cluster's Kubernetes API (`/k8s/{id}`).
    pub kube_id: String,
    /// Description of the operation in progress (for 409s).
    pub busy: Option<String>,
    /// Entity tag.
    pub etag: String,
}

/// An agent pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Name as created.
    pub name: String,
    /// `properties` as Azure reports them (count, vmSize, mode, ...).
    pub props: Value,
    /// Operation in progress, for 409s.
    pub busy: Option<String>,
    /// Count to restore when a stopped pool starts.
    pub stopped_count: Option<u32>,
    /// Eight digits AKS puts in node names (`aks-{pool}-{digits}-vmss000000`).
    pub node_digits: String,
}

impl Pool {
    /// Node count.
    pub fn count(&self) -> u32 {
        self.props["count"].as_u64().unwrap_or(0) as u32
    }
    /// VM size.
    pub fn vm_size(&self) -> String {
        self.props["vmSize"]
            .as_str()
            .unwrap_or("Standard_DS2_v2")
            .to_string()
    }
    /// True for mode System.
    pub fn is_system(&self) -> bool {
        self.props["mode"].as_str() == Some("System")
    }
    /// True for Spot priority.
    pub fn is_spot(&self) -> bool {
        self.props["scaleSetPriority"].as_str() == Some("Spot")
    }
}

/// An ACR registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Name as created.
    pub name: String,
    /// Resource group name.
    pub rg: String,
    /// Full ARM resource body.
    pub body: Value,
    /// Repositories: repo -> tag -> manifest.
    pub repos: BTreeMap<String, BTreeMap<String, crate::registry::Image>>,
    /// Webhooks by lower-case name (full ARM bodies, without secrets).
    pub webhooks: BTreeMap<String, Value>,
    /// ACR task runs by id.
    pub runs: BTreeMap<String, crate::arm::acr_tasks::Run>,
    /// Admin passwords (password, password2).
    pub passwords: [String; 2],
    /// Scope maps by lower-case name (full ARM bodies).
    pub scope_maps: BTreeMap<String, Value>,
    /// Tokens by lower-case name (full ARM bodies, without password values).
    pub tokens: BTreeMap<String, Value>,
    /// Token passwords: token -> password name -> value (what a registry login accepts).
    pub token_passwords: BTreeMap<String, BTreeMap<String, String>>,
    /// Operation in progress.
    pub busy: Option<String>,
}

/// An ACI container group.
#[derive(Debug, Clone)]
pub struct ContainerGroup {
    /// Name.
    pub name: String,
    /// Resource group name.
    pub rg: String,
    /// Full ARM body (without instanceView, computed on read).
    pub body: Value,
    /// Running / Stopped / Pending.
    pub state: String,
    /// Container restarts.
    pub restarts: u32,
    /// When containers started (RFC 3339).
    pub started: String,
    /// Group-level instance-view events (e.g. why provisioning failed).
    pub events: Vec<Value>,
    /// Containers crash-loop (mirrors a virtual-node pod's state).
    pub crashing: bool,
    /// Operation in progress.
    pub busy: Option<String>,
}
