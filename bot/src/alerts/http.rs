//! The alert receiver: `POST /alerts/alertmanager` (webhook payload v4),
//! `POST /alerts/azure-monitor` (common alert schema), `GET /metrics`, `GET /healthz`.
//!
//! Every refusal is a 4xx (401 auth, 415 not `Content-Type: application/json`, 413 size,
//! 400 body) and counted in
//! `alerts_dropped_total{stage}`; a full pipeline queue is 503 so the sender retries.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::metrics::DropStage;
use super::sources::{DecodeError, alertmanager, azure_monitor};
use super::{Alert, AlertsState, ReceiverAuth};

/// The receiver's routes over the shared state; tests call it with tower's `oneshot`.
pub fn router(state: Arc<AlertsState>) -> Router {
    let limit = state.config().max_body_bytes;
    Router::new()
        .route("/alerts/alertmanager", post(alertmanager_webhook))
        .route("/alerts/azure-monitor", post(azure_monitor_webhook))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(auth: &ReceiverAuth, headers: &HeaderMap, query: &TokenQuery) -> bool {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match auth {
        ReceiverAuth::None => true,
        ReceiverAuth::Bearer { token } => {
            let given = header
                .strip_prefix("Bearer ")
                .or(query.token.as_deref())
                .unwrap_or_default();
            same(given.as_bytes(), token.expose().as_bytes())
        }
        ReceiverAuth::Basic { username, password } => {
            let Some(encoded) = header.strip_prefix("Basic ") else {
                return false;
            };
            let expected = format!("{username}:{}", password.expose());
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .is_ok_and(|given| same(&given, expected.as_bytes()))
        }
    }
}

/// `Content-Type: application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Auth, size and decoding, shared by both webhooks.
fn receive(
    state: &AlertsState,
    headers: &HeaderMap,
    query: &TokenQuery,
    body: Result<Bytes, BytesRejection>,
    decode: impl FnOnce(&[u8]) -> Result<Vec<Alert>, DecodeError>,
) -> Response {
    if !authorized(&state.config().auth, headers, query) {
        state.metrics.dropped(DropStage::Auth, 1);
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong credentials".into(),
        );
        let challenge = match state.config().auth {
            ReceiverAuth::Basic { .. } => "Basic realm=\"deckhand\"",
            _ => "Bearer",
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
        return response;
    }
    // A web page can POST text/plain or a form cross-origin without asking first; JSON makes
    // the browser ask (CORS preflight), which this receiver never grants.
    if !is_json(headers) {
        state.metrics.dropped(DropStage::Decode, 1);
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".into(),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let stage = if status == StatusCode::PAYLOAD_TOO_LARGE {
                DropStage::BodySize
            } else {
                DropStage::Decode
            };
            state.metrics.dropped(stage, 1);
            return refuse(status, rejection.body_text());
        }
    };
    let alerts = match decode(&body) {
        Ok(alerts) => alerts,
        Err(e) => {
            state.metrics.dropped(DropStage::Decode, 1);
            return refuse(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match state.submit(alerts) {
        Ok(accepted) => (StatusCode::OK, Json(json!({ "accepted": accepted }))).into_response(),
        Err(e) => {
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            response
        }
    }
}

async fn alertmanager_webhook(
    State(state): State<Arc<AlertsState>>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    receive(&state, &headers, &query, body, alertmanager::parse)
}

async fn azure_monitor_webhook(
    State(state): State<Arc<AlertsState>>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    receive(&state, &headers, &query, body, |b| {
        azure_monitor::parse(b).map(|a| vec![a])
    })
}

/// The whole bot's metrics, as on the ops port (kept here for scrapers of the receiver).
async fn metrics(State(state): State<Arc<AlertsState>>) -> Response {
    crate::ops::http::metrics_response(Some(state))
}
