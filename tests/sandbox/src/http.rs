//! The single HTTP front door: request context, replies, common headers and routing by path.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::state::Shared;

/// A parsed request, fully buffered (bodies are small JSON/form documents).
#[derive(Debug, Clone)]
pub struct Ctx {
    /// HTTP method.
    pub method: Method,
    /// Path as received (percent-decoding is not needed for the names we model).
    pub path: String,
    /// Path segments, raw case.
    pub segs: Vec<String>,
    /// Query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// Raw query string.
    pub raw_query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Ctx {
    /// Segment `i` lower-cased, or "".
    pub fn seg_lc(&self, i: usize) -> String {
        self.segs
            .get(i)
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// Header value as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The body parsed as JSON (`Null` when empty).
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
    }

    /// The body parsed as an urlencoded form.
    pub fn form(&self) -> HashMap<String, String> {
        parse_query(&String::from_utf8_lossy(&self.body))
    }

    /// Query flag such as `watch=true` / `watch=1`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.query.get(name).map(String::as_str),
            Some("true" | "1" | "True")
        )
    }
}

/// Decodes `a=b&c=d` with `+` and `%XX` escapes.
pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

/// Percent-decoding (also `+` as space, as forms do).
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A reply before it becomes an HTTP response.
#[derive(Debug, Default)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Content type, when there is a body.
    pub content_type: Option<String>,
    /// A streaming body (watch), replacing `body`.
    pub stream: Option<Body>,
    /// Close the connection instead of answering (fault injection).
    pub drop_connection: bool,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            body: serde_json::to_vec(&v).unwrap_or_default(),
            content_type: Some("application/json; charset=utf-8".into()),
            ..Self::default()
        }
    }

    /// An empty reply.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, s: impl Into<String>) -> Self {
        Self {
            status,
            body: s.into().into_bytes(),
            content_type: Some("text/plain; charset=utf-8".into()),
            ..Self::default()
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Converts into an axum response.
    pub fn into_response(self) -> Response {
        let mut b = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if let Some(ct) = &self.content_type {
            b = b.header("content-type", ct.as_str());
        }
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                b = b.header(k, v);
            }
        }
        if self.drop_connection {
            b = b.extension(crate::faults::Dropped);
        }
        let body = match self.stream {
            Some(s) => s,
            None => Body::from(self.body),
        };
        b.body(body).unwrap_or_default()
    }
}

/// The accept loop: HTTP/1.1 connections served by [`handle`]. A `drop_connection` fault makes
/// the service fail, so hyper closes the connection without writing any response.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let resp = handle(shared, req.map(Body::new)).await;
                    if resp.extensions().get::<crate::faults::Dropped>().is_some() {
                        return Err(std::io::Error::other("sandbox fault: connection dropped"));
                    }
                    Ok::<_, std::io::Error>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Entry point for every request on the listener.
pub async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let ctx = Ctx {
        method: parts.method.clone(),
        segs: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(pct_decode)
            .collect(),
        query: parse_query(&raw_query),
        raw_query,
        path,
        headers: parts.headers.clone(),
        body,
    };
    let correlation = ctx
        .header("x-ms-correlation-request-id")
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let kind = Area::of(&ctx);
    if kind != Area::Control {
        shared.journal.record(crate::journal::RecordedRequest {
            method: ctx.method.to_string(),
            path: ctx.path.clone(),
            query: ctx.raw_query.clone(),
        });
    }

    // AKS requests draw from AKS's buckets (and report those); other ARM requests from the
    // subscription's hourly budgets below.
    let mut aks = false;
    let reply = match crate::faults::before(&shared, &ctx, kind).await {
        Some(r) => r,
        None => match (kind == Area::Arm)
            .then(|| shared.aks_limits.admit(&ctx))
            .flatten()
        {
            Some(Err(throttled)) => throttled,
            Some(Ok((header, left))) => {
                aks = true;
                route(&shared, &ctx, kind).await.with(&header, left)
            }
            None => route(&shared, &ctx, kind).await,
        },
    };
    let mut reply = reply.with("x-ms-request-id", uuid::Uuid::new_v4().to_string());
    reply = reply.with("x-ms-correlation-request-id", correlation);
    if kind == Area::Arm && !aks {
        let counter = match ctx.method {
            Method::GET | Method::HEAD => ("reads", &shared.rate.reads),
            Method::DELETE => ("deletes", &shared.rate.deletes),
            _ => ("writes", &shared.rate.writes),
        };
        let left = shared.rate.take(counter.1);
        reply = reply.with(
            &format!("x-ms-ratelimit-remaining-subscription-{}", counter.0),
            left.to_string(),
        );
    }
    reply.into_response()
}

/// Which emulated service a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Azure Resource Manager (`/subscriptions/...`).
    Arm,
    /// Entra ID token endpoint.
    Token,
    /// A cluster's Kubernetes API (`/k8s/{id}/...`).
    Kube,
    /// A registry's data plane (`/acr/{name}/...`).
    Registry,
    /// The sandbox's own control API (`/_sandbox/...`).
    Control,
    /// The Azure Retail Prices API (`/api/retail/prices`).
    Prices,
    /// Anything else.
    Other,
}

impl Area {
    fn of(ctx: &Ctx) -> Self {
        match ctx.seg_lc(0).as_str() {
            "subscriptions" => Area::Arm,
            "k8s" => Area::Kube,
            "acr" => Area::Registry,
            "_sandbox" => Area::Control,
            "api" if ctx.seg_lc(1) == "retail" && ctx.seg_lc(2) == "prices" => Area::Prices,
            _ if ctx.seg_lc(1) == "oauth2" || ctx.seg_lc(1) == "v2.0" => Area::Token,
            _ => Area::Other,
        }
    }
}

async fn route(shared: &Arc<Shared>, ctx: &Ctx, area: Area) -> Reply {
    match area {
        Area::Arm => crate::arm::handle(shared, ctx),
        Area::Token => crate::token::handle(shared, ctx),
        Area::Kube => crate::k8s::api::handle(shared, ctx),
        Area::Registry => crate::registry::handle(shared, ctx),
        Area::Control => crate::control::handle(shared, ctx),
        Area::Prices => crate::prices::handle(shared, ctx),
        Area::Other => Reply::json(
            404,
            serde_json::json!({"error": {"code": "NotFound", "message": format!("The sandbox serves nothing at {}", ctx.path)}}),
        ),
    }
}
