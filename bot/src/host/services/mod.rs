//! Host services: what a plugin may ask of the host, and the one place that checks the
//! plugin's declared capabilities, applies time limits, meters and audits each call.

pub mod amqp;
pub mod http;
pub mod programs;
pub mod sigv4;

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deckhand_plugin_abi::ffi::{Buf, HostApi};
use deckhand_plugin_abi::proto::{
    Call, Caller, Capabilities, HostError, HostRequest, HostResponse, LogLevel, MAX_FOLLOW_UPS,
    Notification, Service,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::host::config::ServicesConfig;
use crate::state::Db;
use crate::state::audit::ServiceCallRecord;

/// Longest one Kubernetes request may take (watch-free verbs answer in well under this).
const KUBE_REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// Longest one AMQP request may take, connection and login included.
const AMQP_REQUEST_LIMIT: Duration = Duration::from_secs(15);

/// A notification a plugin pushed, tagged with its source.
#[derive(Debug, Clone)]
pub struct PluginNotification {
    pub plugin: String,
    pub invocation: Option<String>,
    pub notification: Notification,
}

/// A command a plugin asked to run after its own ([`Service::FollowUp`]), handed to the
/// follow-up runner once the asking command has answered.
#[derive(Debug, Clone)]
pub struct FollowUpRequest {
    pub plugin: String,
    /// The command that asked.
    pub invocation: String,
    pub caller: Caller,
    pub channel: String,
    pub line: String,
    pub after: Duration,
    /// How many follow-ups led to this one (1 for the first).
    pub depth: u32,
}

/// One command in flight: where its progress goes and whether it was cancelled.
pub struct ActiveCall {
    pub plugin: String,
    pub deadline: Instant,
    cancelled: AtomicBool,
    progress: mpsc::UnboundedSender<String>,
    invocation: String,
    caller: Caller,
    channel: String,
    /// Follow-ups this call asked for, sent when it ends.
    follow_ups: Mutex<Vec<FollowUpRequest>>,
}

impl ActiveCall {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// Per-plugin counters, shown by `/plugins list`.
#[derive(Debug, Default)]
pub struct Meter {
    pub service_calls: AtomicU64,
    pub refused: AtomicU64,
    pub failed: AtomicU64,
}

/// Everything the services share; one per bot.
pub struct Services {
    pub db: Db,
    cloud: crate::cloud::Cloud,
    http: http::HttpService,
    config: ServicesConfig,
    runtime: tokio::runtime::Handle,
    active: Mutex<HashMap<String, Arc<ActiveCall>>>,
    meters: Mutex<BTreeMap<String, Arc<Meter>>>,
    notifications: broadcast::Sender<PluginNotification>,
    follow_ups: FollowUps,
}

/// The follow-up queue: requests of ended calls, the runner's receiver (taken once), the depth
/// of follow-ups in flight and how many are not finished yet.
struct FollowUps {
    sender: mpsc::UnboundedSender<FollowUpRequest>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<FollowUpRequest>>>,
    depths: Mutex<HashMap<String, u32>>,
    /// Invocations that asked for a follow-up (so a follow-up that hands over posts nothing).
    asked: Mutex<std::collections::HashSet<String>>,
    pending: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(code: &str, message: impl Into<String>) -> HostError {
    HostError::new(code.to_owned(), message.into())
}

impl Services {
    /// Must be called inside a tokio runtime; plugin threads use its handle for async I/O.
    pub fn new(config: ServicesConfig, db: Db, cloud: crate::cloud::Cloud) -> Arc<Services> {
        let (notifications, _) = broadcast::channel(256);
        let (follow_up_tx, follow_up_rx) = mpsc::unbounded_channel();
        let follow_ups = FollowUps {
            sender: follow_up_tx,
            receiver: Mutex::new(Some(follow_up_rx)),
            depths: Mutex::default(),
            asked: Mutex::default(),
            pending: Default::default(),
            settled: tokio::sync::Notify::new(),
        };
        Arc::new(Services {
            db,
            cloud,
            http: http::HttpService::new(),
            config,
            runtime: tokio::runtime::Handle::current(),
            active: Mutex::default(),
            meters: Mutex::default(),
            notifications,
            follow_ups,
        })
    }

    /// The follow-ups plugins ask for, each sent once its asking command has answered. Only the
    /// first caller gets the receiver (the one follow-up runner of the bot).
    pub fn take_follow_ups(&self) -> Option<mpsc::UnboundedReceiver<FollowUpRequest>> {
        lock(&self.follow_ups.receiver).take()
    }

    /// Marks `invocation` as a follow-up `depth` links down a chain (before it is run).
    pub fn mark_follow_up(&self, invocation: &str, depth: u32) {
        lock(&self.follow_ups.depths).insert(invocation.to_owned(), depth);
    }

    /// Whether follow-up `invocation` asked for a follow-up of its own (handed its work over).
    pub fn handed_over(&self, invocation: &str) -> bool {
        lock(&self.follow_ups.asked).remove(invocation)
    }

    /// A follow-up was run and its reply posted (or it was refused): it no longer counts as
    /// pending.
    pub fn follow_up_done(&self, invocation: &str) {
        lock(&self.follow_ups.depths).remove(invocation);
        self.settle_one();
    }

    fn settle_one(&self) {
        let before = self.follow_ups.pending.fetch_sub(1, Ordering::SeqCst);
        if before <= 1 {
            self.follow_ups.settled.notify_waiters();
        }
    }

    /// Waits until every follow-up asked for so far has been run (`deckhand shell` at the end
    /// of its input).
    pub async fn follow_ups_settled(&self) {
        loop {
            let settled = self.follow_ups.settled.notified();
            if self.follow_ups.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            settled.await;
        }
    }

    pub fn config(&self) -> &ServicesConfig {
        &self.config
    }

    pub fn cloud(&self) -> &crate::cloud::Cloud {
        &self.cloud
    }

    /// Receives every notification plugins push from now on.
    pub fn subscribe_notifications(&self) -> broadcast::Receiver<PluginNotification> {
        self.notifications.subscribe()
    }

    /// Registers a command about to cross into `plugin`; its progress lines go to `progress`.
    pub fn begin_call(
        &self,
        call: &Call,
        plugin: &str,
        progress: mpsc::UnboundedSender<String>,
    ) -> Arc<ActiveCall> {
        let invocation = &call.invocation_id;
        let call = Arc::new(ActiveCall {
            plugin: plugin.to_owned(),
            deadline: Instant::now() + Duration::from_millis(call.timeout_ms),
            cancelled: AtomicBool::new(false),
            progress,
            invocation: invocation.clone(),
            caller: call.caller.clone(),
            channel: call.channel.clone(),
            follow_ups: Mutex::default(),
        });
        self.lock_active()
            .insert(invocation.to_owned(), call.clone());
        call
    }

    /// Forgets a finished command; later service requests under its id are refused.
    pub fn end_call(&self, invocation: &str) {
        if let Some(call) = self.lock_active().remove(invocation) {
            call.cancel();
            for request in std::mem::take(&mut *lock(&call.follow_ups)) {
                if self.follow_ups.sender.send(request).is_err() {
                    tracing::warn!(invocation, "no follow-up runner: a follow-up is dropped");
                    self.settle_one();
                }
            }
        }
    }

    /// Cancels a command in flight; true if it was running.
    pub fn cancel(&self, invocation: &str) -> bool {
        match self.lock_active().get(invocation) {
            Some(call) => {
                call.cancel();
                true
            }
            None => false,
        }
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ActiveCall>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn meter(&self, plugin: &str) -> Arc<Meter> {
        self.meters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plugin.to_owned())
            .or_default()
            .clone()
    }

    fn is_cancelled(&self, invocation: &str) -> bool {
        self.lock_active()
            .get(invocation)
            .is_none_or(|call| call.is_cancelled())
    }
}

/// A plugin's view of the services: its name and capabilities, fixed at load.
pub struct PluginServices {
    plugin: String,
    capabilities: Capabilities,
    services: Arc<Services>,
    meter: Arc<Meter>,
}

/// What the host hands a plugin at init: the C table plus the state it points to. Boxed so the
/// pointers stay valid for as long as the plugin is loaded.
pub struct HostTable {
    api: HostApi,
    _state: Box<PluginServices>,
}

impl HostTable {
    pub fn new(
        plugin: &str,
        capabilities: Capabilities,
        services: Arc<Services>,
    ) -> Box<HostTable> {
        let meter = services.meter(plugin);
        let state = Box::new(PluginServices {
            plugin: plugin.to_owned(),
            capabilities,
            services,
            meter,
        });
        Box::new(HostTable {
            api: HostApi {
                abi_version: deckhand_plugin_abi::ABI_VERSION,
                size: std::mem::size_of::<HostApi>() as u32,
                ctx: (&*state as *const PluginServices).cast(),
                call: host_call,
                is_cancelled: host_is_cancelled,
                free_buf: host_free_buf,
            },
            _state: state,
        })
    }

    pub fn api(&self) -> *const HostApi {
        &self.api
    }
}

extern "C" fn host_call(ctx: *const c_void, request: *const u8, len: usize) -> Buf {
    // SAFETY: `ctx` is the `PluginServices` this plugin's table was built with, alive while the
    // plugin is; the plugin promises `len` readable bytes at `request`.
    let services = unsafe { &*ctx.cast::<PluginServices>() };
    let bytes = if request.is_null() {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(request, len) }
    };
    let response = catch_unwind(AssertUnwindSafe(|| services.handle(bytes))).unwrap_or_else(|_| {
        HostResponse::Error(error(
            "internal",
            "the host failed while serving this request",
        ))
    });
    Buf::from_vec(serde_json::to_vec(&response).expect("host responses always serialize"))
}

extern "C" fn host_is_cancelled(ctx: *const c_void, invocation: *const u8, len: usize) -> bool {
    // SAFETY: as in `host_call`.
    let services = unsafe { &*ctx.cast::<PluginServices>() };
    let bytes = if invocation.is_null() {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(invocation, len) }
    };
    std::str::from_utf8(bytes).map_or(true, |id| services.services.is_cancelled(id))
}

extern "C" fn host_free_buf(_ctx: *const c_void, buf: Buf) {
    // SAFETY: only buffers from `host_call` come back here.
    drop(unsafe { buf.into_vec() });
}

/// How a service call is described in the audit log.
fn describe(service: &Service) -> (&'static str, String) {
    match service {
        Service::Progress { .. } => ("progress", String::new()),
        Service::Notify { notification } => ("notify", notification.title.clone()),
        Service::FollowUp { line, after_secs } => {
            ("follow_up", format!("{line} after {after_secs} s"))
        }
        Service::Log { .. } => ("log", String::new()),
        Service::Http { request } => (
            "http",
            format!("{} {}", request.method, redact_query(&request.url)),
        ),
        Service::HttpPresign { request, .. } => (
            "http_presign",
            format!("{} {}", request.method, redact_query(&request.url)),
        ),
        Service::KvGet { key } => ("kv_get", key.clone()),
        Service::KvPut { key, .. } => ("kv_put", key.clone()),
        Service::KvDelete { key } => ("kv_delete", key.clone()),
        Service::KvList { prefix } => ("kv_list", prefix.clone()),
        Service::Run { program, args, .. } => ("run", format!("{program} {}", args.join(" "))),
        Service::Arm { request } => ("arm", format!("{} {}", request.method, request.path)),
        Service::Kube { request } => (
            "kube",
            format!(
                "{} {}/{} {}/{}",
                request.verb,
                request.cluster,
                request.kind,
                request.namespace.as_deref().unwrap_or("-"),
                request.name.as_deref().unwrap_or("*")
            ),
        ),
        Service::Registry { request } => (
            "registry",
            format!(
                "{} {} {}{}",
                request.op,
                request.registry,
                request.repository.as_deref().unwrap_or(""),
                request
                    .reference
                    .as_deref()
                    .map(|r| format!(":{r}"))
                    .unwrap_or_default()
            ),
        ),
        Service::Amqp { request } => ("amqp", amqp_target(request)),
        Service::ResourceGroups { request } => ("arm", request.describe()),
    }
}

fn amqp_target(request: &deckhand_plugin_abi::proto::AmqpRequest) -> String {
    match &request.op {
        deckhand_plugin_abi::proto::AmqpOp::QueueDeclarePassive { queue } => {
            format!("queue_declare_passive {} {queue}", request.broker)
        }
    }
}

/// Whether a call may change something outside the host: any method but GET/HEAD, any
/// Kubernetes verb but get/list/watch/logs, a program run, a notification, a state write.
fn changes_something(service: &Service) -> bool {
    let reads =
        |method: &str| method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    match service {
        Service::Progress { .. } | Service::Log { .. } => false,
        // The follow-up is a command of its own, audited when it runs.
        Service::FollowUp { .. } => false,
        Service::KvGet { .. } | Service::KvList { .. } => false,
        Service::KvPut { .. } | Service::KvDelete { .. } => true,
        Service::Notify { .. } | Service::Run { .. } => true,
        Service::Http { request } => !reads(&request.method),
        // Signing sends nothing; whoever uses the URL is audited by the server.
        Service::HttpPresign { .. } => false,
        Service::Arm { request } => !reads(&request.method),
        Service::Kube { request } => {
            !matches!(request.verb.as_str(), "get" | "list" | "watch" | "logs")
        }
        Service::Registry { request } => request.op == "delete_tag",
        // Every AMQP operation offered is a read (a passive declare never creates a queue).
        Service::Amqp { .. } => false,
        Service::ResourceGroups { request } => !reads(request.method()),
    }
}

/// URLs are audited without their query string, which may hold tokens.
fn redact_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

impl PluginServices {
    fn handle(&self, bytes: &[u8]) -> HostResponse {
        let request: HostRequest = match serde_json::from_slice(bytes) {
            Ok(request) => request,
            Err(e) => {
                return HostResponse::Error(error(
                    "bad_request",
                    format!("unreadable host request: {e}"),
                ));
            }
        };
        let started = Instant::now();
        let (service, target) = describe(&request.service);
        let call = match self.active_call(request.invocation.as_deref()) {
            Ok(call) => call,
            Err(e) => return HostResponse::Error(e),
        };
        let _span =
            tracing::debug_span!("service", service, target = %crate::redact::redact(&target))
                .entered();
        tracing::debug!("service call");
        let checked = self.check_capability(&request.service);
        // Progress and logs are not worth a row each; everything else, and every refusal, is.
        let audited = !matches!(
            request.service,
            Service::Progress { .. } | Service::Log { .. }
        );
        let record = ServiceCallRecord {
            invocation_id: request.invocation.clone(),
            plugin: self.plugin.clone(),
            service: service.to_owned(),
            target: crate::redact::redact(&target).into_owned(),
            allowed: checked.is_ok(),
            outcome: String::new(),
            duration_ms: 0,
        };
        // An allowed call is recorded before it is sent, so a crash cannot lose a write that
        // went out; a write that cannot be recorded is not sent.
        let mut row = None;
        if audited && checked.is_ok() {
            match self.services.db.begin_service_call(&record) {
                Ok(id) => row = Some(id),
                Err(e) => {
                    tracing::error!(error = %e, "cannot audit a service call");
                    if changes_something(&request.service) {
                        return HostResponse::Error(error(
                            "audit_unavailable",
                            format!(
                                "{service} {target} was not sent: Deckhand cannot write its audit log ({e})"
                            ),
                        ));
                    }
                }
            }
        }
        let result = match &checked {
            Ok(()) => self.serve(&request.service, call.as_deref()),
            Err(e) => Err(e.clone()),
        };
        self.meter.service_calls.fetch_add(1, Ordering::Relaxed);
        if checked.is_err() {
            self.meter.refused.fetch_add(1, Ordering::Relaxed);
            crate::metrics::refused(&self.plugin, service);
            tracing::warn!(plugin = %self.plugin, service, target = %record.target, "refused: outside the plugin's capabilities");
        } else if result.is_err() {
            self.meter.failed.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code.clone(),
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let written = match row {
            Some(id) => self
                .services
                .db
                .finish_service_call(id, &outcome, duration_ms),
            None if checked.is_err() => self.services.db.record_service_call(&ServiceCallRecord {
                outcome,
                duration_ms,
                ..record
            }),
            None => Ok(()),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot audit a service call");
        }
        match &result {
            Ok(_) => tracing::debug!(duration_ms, "service call answered"),
            Err(e) => {
                tracing::debug!(duration_ms, code = %e.code, error = %e.message, "service call failed")
            }
        }
        match result {
            Ok(value) => HostResponse::Ok(value),
            Err(e) => HostResponse::Error(e),
        }
    }

    /// The command this request belongs to, if any; a finished or cancelled one is refused.
    fn active_call(&self, invocation: Option<&str>) -> Result<Option<Arc<ActiveCall>>, HostError> {
        let Some(id) = invocation else {
            return Ok(None);
        };
        let call = self
            .services
            .lock_active()
            .get(id)
            .cloned()
            .ok_or_else(|| {
                error(
                    "cancelled",
                    format!("invocation {id} is not running (finished or timed out)"),
                )
            })?;
        if call.plugin != self.plugin {
            return Err(error(
                "bad_request",
                format!("invocation {id} belongs to another plugin"),
            ));
        }
        if call.is_cancelled() {
            return Err(error("cancelled", "the call was cancelled"));
        }
        Ok(Some(call))
    }

    /// Refuses anything the manifest did not declare (or config did not allow).
    fn check_capability(&self, service: &Service) -> Result<(), HostError> {
        let caps = &self.capabilities;
        let denied = |what: String| {
            Err(error(
                "capability_denied",
                format!(
                    "plugin {} is not allowed to {what}: its manifest does not declare it",
                    self.plugin
                ),
            ))
        };
        // The typed resource-group service is authorised exactly as the ARM requests it makes.
        let arm_allowed = |resource_type: &str, action: &str| {
            let allowed = caps.arm.iter().any(|cap| {
                cap.resource_type.eq_ignore_ascii_case(resource_type)
                    && cap
                        .actions
                        .iter()
                        .any(|a| a == "*" || a.eq_ignore_ascii_case(action))
            });
            if allowed {
                Ok(())
            } else {
                denied(format!("{action} ARM resources of type {resource_type}"))
            }
        };
        match service {
            // Only the plugin's own commands: checked when the follow-up runs.
            Service::Progress { .. } | Service::Log { .. } | Service::FollowUp { .. } => Ok(()),
            Service::Arm { request } => {
                // The same parse the ARM client sends from: what is authorised is what is sent.
                let address = deckhand_cloud_names::ArmPath::parse(&request.path)
                    .map_err(|e| error("bad_request", e.to_string()))?;
                let (resource_type, action) = address
                    .resource_type_and_action(&request.method)
                    .map_err(|e| error("bad_request", e))?;
                arm_allowed(&resource_type, &action)
            }
            Service::ResourceGroups { request } => {
                let (resource_type, action) = request.capability();
                arm_allowed(resource_type, action)
            }
            Service::Kube { request } => {
                let resource = crate::cloud::resource::kube_resource(request);
                let verb = request.verb.as_str();
                let allowed = caps.kube.iter().any(|cap| {
                    cap.resources.iter().any(|r| r == "*" || *r == resource)
                        && cap.verbs.iter().any(|v| v == "*" || v == verb)
                });
                if allowed {
                    Ok(())
                } else {
                    denied(format!("{verb} Kubernetes {resource}"))
                }
            }
            Service::Registry { request } => {
                let registry = request.registry.to_ascii_lowercase();
                let deletes = request.op == "delete_tag";
                let patterns = if deletes {
                    &caps.registry_deletes
                } else {
                    &caps.registries
                };
                let allowed = patterns.iter().any(|pattern| {
                    pattern == "*"
                        || host_matches(pattern, &registry, None)
                        || pattern.eq_ignore_ascii_case(&registry)
                });
                match (allowed, deletes) {
                    (true, _) => Ok(()),
                    (false, true) => denied(format!("delete tags in registry {registry}")),
                    (false, false) => denied(format!("query registry {registry}")),
                }
            }
            Service::Amqp { request } => {
                if caps.amqp.contains(&request.broker) {
                    Ok(())
                } else {
                    denied(format!("query AMQP broker {:?}", request.broker))
                }
            }
            Service::Notify { .. } if caps.notify => Ok(()),
            Service::Notify { .. } => denied("push notifications".into()),
            Service::KvGet { .. }
            | Service::KvPut { .. }
            | Service::KvDelete { .. }
            | Service::KvList { .. }
                if caps.kv =>
            {
                Ok(())
            }
            Service::KvGet { .. }
            | Service::KvPut { .. }
            | Service::KvDelete { .. }
            | Service::KvList { .. } => denied("use key-value state".into()),
            Service::Run { program, .. } => {
                if !caps.programs.iter().any(|p| p == program) {
                    return denied(format!("run program {program:?}"));
                }
                if !self.services.config.host.programs.contains_key(program) {
                    return Err(error(
                        "capability_denied",
                        format!("program {program:?} is not configured in [host.programs]"),
                    ));
                }
                Ok(())
            }
            Service::Http { request } | Service::HttpPresign { request, .. } => {
                let url = reqwest::Url::parse(&request.url).map_err(|e| {
                    error("bad_request", format!("invalid URL {:?}: {e}", request.url))
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return denied(format!("use URL scheme {:?}", url.scheme()));
                }
                let host = url.host_str().unwrap_or_default();
                let port = url.port_or_known_default();
                let profile = request.auth_profile.as_deref();
                let allowed = caps.http.iter().any(|cap| {
                    host_matches(&cap.host, host, port)
                        && profile_matches(cap.auth_profile.as_deref(), profile)
                });
                if !allowed {
                    let with = profile
                        .map(|p| format!(" with auth profile {p:?}"))
                        .unwrap_or_default();
                    return denied(format!("call {host}{with}"));
                }
                if let Some(profile) = profile
                    && !self.services.config.auth_profiles.contains_key(profile)
                {
                    return Err(error(
                        "capability_denied",
                        format!("auth profile {profile:?} is not configured in [auth_profiles]"),
                    ));
                }
                Ok(())
            }
        }
    }

    fn serve(&self, service: &Service, call: Option<&ActiveCall>) -> Result<Value, HostError> {
        let db_error = |e: crate::state::StateError| error("unavailable", e.to_string());
        // Time left before the command's deadline; outside a command, the service's own limit.
        let remaining = |limit: Duration| match call {
            Some(call) => call
                .deadline
                .saturating_duration_since(Instant::now())
                .min(limit),
            None => limit,
        };
        let services = &self.services;
        match service {
            Service::Arm { request } => {
                let arm = services.cloud.arm.as_ref().ok_or_else(|| {
                    error("unavailable", "Azure is not configured: add an [azure] section to the config (or run with --sandbox)")
                })?;
                let response = with_call_context(call, true, |cx| {
                    services.runtime.block_on(arm.call(request, cx))
                })
                .map_err(HostError::from)?;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            Service::ResourceGroups { request } => {
                let arm = services.cloud.arm.as_ref().ok_or_else(|| {
                    error("unavailable", "Azure is not configured: add an [azure] section to the config (or run with --sandbox)")
                })?;
                let response = with_call_context(call, true, |cx| {
                    services.runtime.block_on(arm.resource_groups(request, cx))
                })
                .map_err(HostError::from)?;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            Service::Kube { request } => {
                let body = services
                    .runtime
                    .block_on(
                        services
                            .cloud
                            .kube
                            .request(request, remaining(KUBE_REQUEST_LIMIT)),
                    )
                    .map_err(HostError::from)?;
                Ok(
                    serde_json::to_value(deckhand_plugin_abi::proto::KubeResponse { body })
                        .expect("responses serialize"),
                )
            }
            Service::Registry { request } => {
                let response = with_call_context(call, false, |cx| {
                    services
                        .runtime
                        .block_on(services.cloud.registries.call(request, cx))
                })
                .map_err(HostError::from)?;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            Service::Amqp { request } => {
                let response = services.runtime.block_on(amqp::serve(
                    request,
                    &services.config.amqp,
                    &services.config.auth_profiles,
                    remaining(AMQP_REQUEST_LIMIT),
                ))?;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            Service::Progress { message } => {
                if let Some(call) = call {
                    let _ = call
                        .progress
                        .send(crate::redact::redact(message).into_owned());
                }
                Ok(Value::Null)
            }
            Service::Log { level, message } => {
                let plugin = &self.plugin;
                match level {
                    LogLevel::Error => tracing::error!(plugin, "{message}"),
                    LogLevel::Warn => tracing::warn!(plugin, "{message}"),
                    LogLevel::Info => tracing::info!(plugin, "{message}"),
                    LogLevel::Debug => tracing::debug!(plugin, "{message}"),
                }
                Ok(Value::Null)
            }
            Service::FollowUp { line, after_secs } => {
                let call = call.ok_or_else(|| {
                    error(
                        "bad_request",
                        "a follow-up can only be asked for during a command",
                    )
                })?;
                let invocation = call.invocation.clone();
                let depth = lock(&services.follow_ups.depths)
                    .get(&invocation)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(1);
                if depth > MAX_FOLLOW_UPS {
                    return Err(error(
                        "limit",
                        format!(
                            "a command may lead to at most {MAX_FOLLOW_UPS} follow-ups in a row"
                        ),
                    ));
                }
                services.follow_ups.pending.fetch_add(1, Ordering::SeqCst);
                if depth > 1 {
                    lock(&services.follow_ups.asked).insert(invocation.clone());
                }
                lock(&call.follow_ups).push(FollowUpRequest {
                    plugin: self.plugin.clone(),
                    invocation,
                    caller: call.caller.clone(),
                    channel: call.channel.clone(),
                    line: line.clone(),
                    after: Duration::from_secs(u64::from(*after_secs)),
                    depth,
                });
                Ok(Value::Null)
            }
            Service::Notify { notification } => {
                let _ = services.notifications.send(PluginNotification {
                    plugin: self.plugin.clone(),
                    invocation: None,
                    notification: notification.clone(),
                });
                Ok(Value::Null)
            }
            Service::KvGet { key } => Ok(services
                .db
                .kv_get(&self.plugin, key)
                .map_err(db_error)?
                .unwrap_or(Value::Null)),
            Service::KvPut { key, value } => {
                services
                    .db
                    .kv_put(&self.plugin, key, value)
                    .map_err(db_error)?;
                Ok(Value::Null)
            }
            Service::KvDelete { key } => Ok(Value::Bool(
                services.db.kv_delete(&self.plugin, key).map_err(db_error)?,
            )),
            Service::KvList { prefix } => {
                let entries = services
                    .db
                    .kv_list(&self.plugin, prefix)
                    .map_err(db_error)?;
                Ok(serde_json::to_value(entries).expect("kv entries serialize"))
            }
            Service::Http { request } => {
                let profile = request
                    .auth_profile
                    .as_deref()
                    .and_then(|p| services.config.auth_profiles.get(p));
                let limit = request
                    .timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(services.config.host.http_timeout)
                    .min(services.config.host.http_timeout);
                let response = services.runtime.block_on(services.http.execute(
                    request,
                    profile,
                    remaining(limit),
                ))?;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            Service::HttpPresign {
                request,
                expires_secs,
            } => {
                let profile = request
                    .auth_profile
                    .as_deref()
                    .and_then(|p| services.config.auth_profiles.get(p));
                let url = http::presign(request, profile, Duration::from_secs(*expires_secs))?;
                Ok(
                    serde_json::to_value(deckhand_plugin_abi::proto::PresignedUrl { url })
                        .expect("responses serialize"),
                )
            }
            Service::Run {
                program,
                args,
                stdin,
                timeout_ms,
            } => {
                let path = &services.config.host.programs[program];
                let limit = timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::from_secs(300));
                let output = services.runtime.block_on(programs::run(
                    path,
                    args,
                    stdin.as_deref(),
                    remaining(limit),
                ))?;
                Ok(serde_json::to_value(output).expect("outputs serialize"))
            }
        }
    }
}

/// How long a cloud request made outside any command (autocomplete) may take.
const OUTSIDE_CALL_LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` with the cloud clients' view of the command: its deadline, whether it was
/// cancelled, and (when `forward_progress`) its progress channel.
fn with_call_context<R>(
    call: Option<&ActiveCall>,
    forward_progress: bool,
    f: impl FnOnce(&crate::cloud::arm::CallContext<'_>) -> R,
) -> R {
    let deadline = call.map_or_else(|| Instant::now() + OUTSIDE_CALL_LIMIT, |call| call.deadline);
    let progress = |line: String| {
        if let Some(call) = call.filter(|_| forward_progress) {
            let _ = call.progress.send(line);
        }
    };
    let cancelled = || call.is_some_and(ActiveCall::is_cancelled);
    f(&crate::cloud::arm::CallContext {
        deadline,
        progress: &progress,
        cancelled: &cancelled,
    })
}

/// `pattern` is `host`, `host:port` or `*.domain`; without a port any port matches.
fn host_matches(pattern: &str, host: &str, port: Option<u16>) -> bool {
    let (pattern_host, pattern_port) = match pattern.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (pattern, None),
    };
    if pattern_port.is_some() && pattern_port != port {
        return false;
    }
    if pattern_host == "*" {
        return true;
    }
    let host = host.to_ascii_lowercase();
    let pattern_host = pattern_host.to_ascii_lowercase();
    match pattern_host.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern_host,
    }
}

/// A capability's auth profile against a request's: equal, or a `prefix*` the name starts with.
/// No profile matches only no profile.
fn profile_matches(pattern: Option<&str>, profile: Option<&str>) -> bool {
    match (pattern, profile) {
        (Some(pattern), Some(profile)) => match pattern.strip_suffix('*') {
            Some(prefix) => profile.starts_with(prefix),
            None => pattern == profile,
        },
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{host_matches, profile_matches};

    #[test]
    fn profile_patterns() {
        assert!(profile_matches(Some("minio"), Some("minio")));
        assert!(!profile_matches(Some("minio"), Some("minio-lab")));
        assert!(profile_matches(Some("minio*"), Some("minio-lab")));
        assert!(!profile_matches(Some("minio*"), Some("rabbitmq")));
        assert!(!profile_matches(Some("minio*"), None));
        assert!(!profile_matches(None, Some("minio")));
        assert!(profile_matches(None, None));
        assert!(host_matches("*", "10.0.0.5", Some(9000)));
        assert!(host_matches("*:9000", "10.0.0.5", Some(9000)));
        assert!(!host_matches("*:9000", "10.0.0.5", Some(443)));
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("127.0.0.1", "127.0.0.1", Some(8080)));
        assert!(host_matches("127.0.0.1:8080", "127.0.0.1", Some(8080)));
        assert!(!host_matches("127.0.0.1:8080", "127.0.0.1", Some(9090)));
        assert!(host_matches("*.azurecr.io", "intens.azurecr.io", Some(443)));
        assert!(!host_matches("*.azurecr.io", "azurecr.io", Some(443)));
        assert!(!host_matches("*.azurecr.io", "evil-azurecr.io", Some(443)));
        assert!(!host_matches("127.0.0.1", "localhost", Some(80)));
    }
}
