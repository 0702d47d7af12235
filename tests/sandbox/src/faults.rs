//! Fault injection: rules matched against requests (throttling, 5xx, dropped connections, slow
//! responses), against long-running operations (failures, GPU quota) and against pods (crash
//! loops, OOM kills). Set through [`crate::Sandbox::inject`] or `POST /_sandbox/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{Area, Ctx, Reply};
use crate::state::{Shared, lock};

/// One fault rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests whose path contains this (case-insensitive) substring.
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Only requests with this method (GET, PUT, ...).
    #[serde(default)]
    pub method: Option<String>,
    /// How many times the rule fires; `None` = until removed.
    #[serde(default)]
    pub count: Option<u32>,
    /// Matching requests let through before the rule starts firing (e.g. to fail the read
    /// after a change but not the read before it).
    #[serde(default)]
    pub skip: u32,
    /// What happens.
    pub fault: FaultKind,
}

impl FaultSpec {
    /// A rule matching every request, firing forever.
    pub fn always(fault: FaultKind) -> Self {
        Self {
            path_contains: None,
            method: None,
            count: None,
            skip: 0,
            fault,
        }
    }

    /// Restricts to paths containing `s`.
    pub fn on_path(mut self, s: &str) -> Self {
        self.path_contains = Some(s.to_string());
        self
    }

    /// Restricts to one method.
    pub fn on_method(mut self, m: &str) -> Self {
        self.method = Some(m.to_string());
        self
    }

    /// Lets the first `n` matching requests through.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Fires `n` times only.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }
}

/// The kinds of fault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 Too Many Requests with `Retry-After`.
    Throttle {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// A 5xx (500 or 503) with Azure's (or Kubernetes') error body.
    ServerError {
        /// Status code.
        status: u16,
    },
    /// The connection is closed without a complete response.
    DropConnection,
    /// The response is delayed.
    Slow {
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// Matching requests wait, before anything is done with them, until the named gate is
    /// opened ([`crate::Sandbox::open_gate`], `POST /_sandbox/gates/{name}`): a test orders
    /// concurrent requests with it instead of timing them.
    Hold {
        /// The gate's name.
        gate: String,
    },
    /// Long-running operations started by matching requests end `Failed` with this error.
    FailLro {
        /// Azure error code.
        code: String,
        /// Message.
        message: String,
    },
    /// Agent-pool create/scale with a GPU VM size fails with Azure's vCPU quota error.
    GpuQuota,
    /// Matching pods crash-loop (`CrashLoopBackOff`, exit code 1).
    CrashLoop {
        /// Pod name prefix.
        pod_prefix: String,
        /// Namespace, if restricted.
        #[serde(default)]
        namespace: Option<String>,
    },
    /// Matching pods are OOM-killed (`OOMKilled`, exit code 137) and back off.
    OomKill {
        /// Pod name prefix.
        pod_prefix: String,
        /// Namespace, if restricted.
        #[serde(default)]
        namespace: Option<String>,
    },
    /// Matching nodes stop posting status: `Ready=Unknown` (NodeStatusUnknown) and the
    /// `node.kubernetes.io/unreachable` taints, as the node lifecycle controller sets them.
    NodeNotReady {
        /// Node name prefix (e.g. `aks-gpu-`).
        node_prefix: String,
    },
}

/// Response extension telling the accept loop to close the connection without a response.
#[derive(Debug, Clone, Copy)]
pub struct Dropped;

/// Active rules.
#[derive(Debug, Default)]
pub struct Faults {
    next: u64,
    /// (id, rule) in insertion order.
    pub rules: Vec<(u64, FaultSpec)>,
}

/// Gates that [`FaultKind::Hold`] requests wait on; once opened a gate stays open.
#[derive(Debug, Default)]
pub struct Gates {
    opened: std::sync::Mutex<std::collections::HashSet<String>>,
    changed: tokio::sync::Notify,
}

impl Gates {
    /// Opens `gate`, letting every request held on it (and any later one) through.
    pub fn open(&self, gate: &str) {
        lock(&self.opened).insert(gate.to_owned());
        self.changed.notify_waiters();
    }

    async fn pass(&self, gate: &str) {
        loop {
            // Registered before the check, so an open between the two is not missed.
            let changed = self.changed.notified();
            if lock(&self.opened).contains(gate) {
                return;
            }
            changed.await;
        }
    }
}

/// Adds a rule, returns its id.
pub fn add(shared: &Shared, spec: FaultSpec) -> u64 {
    let id = {
        let mut f = lock(&shared.faults);
        f.next += 1;
        let id = f.next;
        f.rules.push((id, spec));
        id
    };
    // Pod faults apply to pods already running too.
    crate::k8s::reconcile_all(shared);
    id
}

/// Removes a rule.
pub fn remove(shared: &Shared, id: u64) -> bool {
    let mut f = lock(&shared.faults);
    let before = f.rules.len();
    f.rules.retain(|(i, _)| *i != id);
    before != f.rules.len()
}

/// Removes all rules.
pub fn clear(shared: &Shared) {
    lock(&shared.faults).rules.clear();
}

fn matches(spec: &FaultSpec, ctx: &Ctx) -> bool {
    spec.path_contains.as_ref().is_none_or(|p| {
        ctx.path
            .to_ascii_lowercase()
            .contains(&p.to_ascii_lowercase())
    }) && spec
        .method
        .as_ref()
        .is_none_or(|m| m.eq_ignore_ascii_case(ctx.method.as_str()))
}

/// Takes (consumes one use of) the first rule for which `pick` returns something.
fn take<T>(shared: &Shared, ctx: &Ctx, pick: impl Fn(&FaultKind) -> Option<T>) -> Option<T> {
    let mut f = lock(&shared.faults);
    let idx = f
        .rules
        .iter()
        .position(|(_, r)| matches(r, ctx) && pick(&r.fault).is_some())?;
    if f.rules[idx].1.skip > 0 {
        f.rules[idx].1.skip -= 1;
        return None;
    }
    let out = pick(&f.rules[idx].1.fault);
    if let Some(c) = f.rules[idx].1.count.as_mut() {
        *c = c.saturating_sub(1);
        if *c == 0 {
            f.rules.remove(idx);
        }
    }
    out
}

enum Http {
    Throttle(u64),
    Status(u16),
    Drop,
    Slow(u64),
    Hold(String),
}

/// Applies request-level faults before routing. `Some` short-circuits the request.
pub async fn before(shared: &Shared, ctx: &Ctx, area: Area) -> Option<Reply> {
    if area == Area::Control {
        return None;
    }
    let hit = take(shared, ctx, |k| match k {
        FaultKind::Throttle { retry_after_secs } => Some(Http::Throttle(*retry_after_secs)),
        FaultKind::ServerError { status } => Some(Http::Status(*status)),
        FaultKind::DropConnection => Some(Http::Drop),
        FaultKind::Slow { delay_ms } => Some(Http::Slow(*delay_ms)),
        FaultKind::Hold { gate } => Some(Http::Hold(gate.clone())),
        _ => None,
    })?;
    let kube = area == Area::Kube;
    match hit {
        Http::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Http::Hold(gate) => {
            shared.gates.pass(&gate).await;
            None
        }
        Http::Drop => Some(Reply {
            status: 500,
            drop_connection: true,
            ..Reply::default()
        }),
        Http::Throttle(secs) => {
            let body = if kube {
                kube_status(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                )
            } else {
                json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, refer to - https://aka.ms/srpthrottlinglimits"}})
            };
            Some(Reply::json(429, body).with("Retry-After", secs.to_string()))
        }
        Http::Status(st) => {
            let (code, msg) = match st {
                503 => (
                    "ServiceUnavailable",
                    "The service is currently unavailable. Please retry the request later.",
                ),
                502 => (
                    "BadGateway",
                    "The gateway did not receive a response from 'Microsoft.ContainerService' within the specified time period.",
                ),
                504 => (
                    "GatewayTimeout",
                    "The gateway did not receive a response from 'Microsoft.ContainerService' within the specified time period.",
                ),
                408 => ("RequestTimeout", "The request timed out."),
                _ => (
                    "InternalServerError",
                    "An unexpected error occured while processing the request. Tracking ID: 'sandbox'",
                ),
            };
            let body = if kube {
                kube_status(st, code, msg)
            } else {
                json!({"error": {"code": code, "message": msg}})
            };
            Some(Reply::json(st, body))
        }
    }
}

fn kube_status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// For an LRO started by `ctx`: the failure to report, if a rule says so.
pub fn lro_failure(shared: &Shared, ctx: &Ctx) -> Option<(String, String)> {
    take(shared, ctx, |k| match k {
        FaultKind::FailLro { code, message } => Some((code.clone(), message.clone())),
        _ => None,
    })
}

/// True (consuming one use) if a GPU quota rule matches `ctx`.
pub fn gpu_quota(shared: &Shared, ctx: &Ctx) -> bool {
    take(shared, ctx, |k| {
        matches!(k, FaultKind::GpuQuota).then_some(())
    })
    .is_some()
}

/// True if any GPU quota rule is active (used by the cluster autoscaler; not consumed).
pub fn gpu_quota_active(shared: &Shared) -> bool {
    lock(&shared.faults)
        .rules
        .iter()
        .any(|(_, r)| matches!(r.fault, FaultKind::GpuQuota))
}

/// How a pod misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFault {
    /// Exits with code 1 and backs off.
    CrashLoop,
    /// OOM-killed (137) and backs off.
    OomKill,
}

/// True if a `node_not_ready` rule matches the node (not consumed).
pub fn node_not_ready(shared: &Shared, node: &str) -> bool {
    lock(&shared.faults).rules.iter().any(|(_, r)| {
        matches!(&r.fault, FaultKind::NodeNotReady { node_prefix } if node.starts_with(node_prefix.as_str()))
    })
}

/// The fault for a pod, if any (pod rules are not consumed).
pub fn pod_fault(shared: &Shared, namespace: &str, pod: &str) -> Option<PodFault> {
    let f = lock(&shared.faults);
    f.rules.iter().find_map(|(_, r)| {
        let (prefix, ns, kind) = match &r.fault {
            FaultKind::CrashLoop {
                pod_prefix,
                namespace,
            } => (pod_prefix, namespace, PodFault::CrashLoop),
            FaultKind::OomKill {
                pod_prefix,
                namespace,
            } => (pod_prefix, namespace, PodFault::OomKill),
            _ => return None,
        };
        (pod.starts_with(prefix.as_str()) && ns.as_ref().is_none_or(|n| n == namespace))
            .then_some(kind)
    })
}
