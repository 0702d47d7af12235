//! The ops server's routes.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use super::Readiness;
use crate::alerts::AlertsState;
use crate::alerts::metrics::AlertsCollector;

pub struct OpsState {
    pub readiness: Readiness,
    /// The alert pipeline, when `[alerts]` runs: its counters join `/metrics`.
    pub alerts: Option<Arc<AlertsState>>,
}

pub fn router(state: Arc<OpsState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<OpsState>>) -> Response {
    let report = state.readiness.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

async fn metrics(State(state): State<Arc<OpsState>>) -> Response {
    metrics_response(state.alerts.clone())
}

/// Every metric family in the OpenMetrics text format, secrets masked (label values are
/// bounded names, but a plugin or command name is still passed through the redactor).
pub fn metrics_response(alerts: Option<Arc<AlertsState>>) -> Response {
    let collectors: Vec<Box<dyn prometheus_client::collector::Collector>> = alerts
        .map(|a| Box::new(AlertsCollector(a)) as Box<dyn prometheus_client::collector::Collector>)
        .into_iter()
        .collect();
    let text = crate::metrics::encode_with(collectors);
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::redact::redact(&text).into_owned(),
    )
        .into_response()
}
