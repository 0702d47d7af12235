//! Long-running operations as Azure does them: an operation record, polling endpoints for
//! `Azure-AsyncOperation` (status documents) and `Location` (202 until done, then 200/204), and a
//! background task that completes the operation after the configured delay.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::ArmError;
use crate::http::{Ctx, Reply};
use crate::state::{Shared, World};

/// One long-running operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Operation id.
    pub id: String,
    /// InProgress, Succeeded, Failed or Canceled.
    pub status: String,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: Option<DateTime<Utc>>,
    /// Error for Failed.
    pub error: Option<ArmError>,
    /// Polled through `Location` only (even if the URL says operationStatuses).
    pub location_only: bool,
    /// Body for the final `Location` GET (e.g. a run); None gives 204.
    pub result: Option<Value>,
    /// Lower-case `rg/name` of the resource the operation works on (for abort).
    pub target: String,
}

impl Operation {
    /// True once Succeeded/Failed/Canceled.
    pub fn is_done(&self) -> bool {
        self.status != "InProgress"
    }
}

/// Completes the operation: applies the change or returns the error that fails it.
pub type Finish =
    Box<dyn FnOnce(&Arc<Shared>, &mut World) -> Result<Option<Value>, ArmError> + Send>;
/// Rolls the resource into its Failed state.
pub type OnFail = Box<dyn FnOnce(&Arc<Shared>, &mut World, &ArmError) + Send>;

/// Registers an operation and schedules its completion after the LRO delay. A `fail_lro` fault
/// matching `ctx` makes it fail instead.
pub fn start(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    w: &mut World,
    location_only: bool,
    finish: Finish,
    on_fail: OnFail,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    w.ops.insert(
        id.clone(),
        Operation {
            id: id.clone(),
            status: "InProgress".into(),
            start: Utc::now(),
            end: None,
            error: None,
            location_only,
            result: None,
            target: String::new(),
        },
    );
    let injected = crate::faults::lro_failure(shared, ctx);
    let delay = shared.opts.lro_delay;
    let s = shared.clone();
    let op_id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut w = s.world();
        if w.ops.get(&op_id).is_some_and(|o| o.status == "Canceled") {
            return;
        }
        let outcome = match injected {
            Some((code, message)) => Err(ArmError::new(400, &code, message)),
            None => finish(&s, &mut w),
        };
        let (status, error, result) = match outcome {
            Ok(r) => ("Succeeded", None, r),
            Err(e) => {
                on_fail(&s, &mut w, &e);
                ("Failed", Some(e), None)
            }
        };
        if let Some(op) = w.ops.get_mut(&op_id) {
            op.status = status.into();
            op.error = error;
            op.result = result;
            op.end = Some(Utc::now());
        }
        drop(w);
        crate::k8s::reconcile_all(&s);
    });
    id
}

/// `Retry-After` seconds advertised for polls (the configured delay, rounded down).
pub fn retry_after(shared: &Shared) -> String {
    shared.opts.lro_delay.as_secs().to_string()
}

/// `.../providers/{provider}/locations/{loc}/operations/{id}` (Azure-AsyncOperation).
pub fn async_url(shared: &Shared, provider: &str, location: &str, id: &str, api: &str) -> String {
    format!(
        "{}/subscriptions/{}/providers/{provider}/locations/{location}/operations/{id}?api-version={api}",
        shared.base, shared.opts.subscription_id
    )
}

/// `.../providers/{provider}/locations/{loc}/operationresults/{id}` (Location).
pub fn result_url(shared: &Shared, provider: &str, location: &str, id: &str, api: &str) -> String {
    format!(
        "{}/subscriptions/{}/providers/{provider}/locations/{location}/operationresults/{id}?api-version={api}",
        shared.base, shared.opts.subscription_id
    )
}

/// Serves a poll of operation `id`; `location` selects Location semantics.
pub fn poll(shared: &Shared, ctx: &Ctx, id: &str, location: bool) -> Reply {
    let w = shared.world();
    // ACR prefixes ids with the resource type (`registries-…`, `webhooks-…`).
    let id = if id.len() > 36 {
        &id[id.len() - 36..]
    } else {
        id
    };
    let Some(op) = w.ops.get(id) else {
        return ArmError::new(404, "NotFound", format!("Operation '{id}' was not found.")).reply();
    };
    if location || op.location_only {
        let here = format!("{}{}?{}", shared.base, ctx.path, ctx.raw_query);
        match op.status.as_str() {
            "InProgress" => Reply::empty(202)
                .with("Location", here)
                .with("Retry-After", retry_after(shared)),
            "Succeeded" => match &op.result {
                Some(v) => Reply::json(200, v.clone()),
                None => Reply::empty(204),
            },
            _ => {
                let e = op.error.clone().unwrap_or_else(|| {
                    ArmError::new(500, "InternalServerError", "The operation failed.")
                });
                e.reply()
            }
        }
    } else {
        let mut body = json!({
            "id": ctx.path,
            "name": op.id,
            "status": op.status,
            "startTime": op.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if let Some(end) = op.end {
            body["endTime"] = json!(end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            body["percentComplete"] = json!(100.0);
        }
        if let Some(e) = &op.error {
            body["error"] = json!({"code": e.code, "message": e.message});
        }
        let mut r = Reply::json(200, body);
        if !op.is_done() {
            r = r.with("Retry-After", retry_after(shared));
        }
        r
    }
}
