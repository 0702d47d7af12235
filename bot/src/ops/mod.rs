//! The operations endpoints, on a port of their own (`[ops] listen`), apart from the alert
//! receiver so that a NetworkPolicy can open the receiver to Alertmanager and the ops port to
//! the kubelet and Prometheus only: `GET /healthz` (the process answers), `GET /readyz`
//! (plugins loaded, chat connected, state reachable; 503 naming what is not) and `GET /metrics`
//! (every family of [`crate::metrics`] and the alert pipeline's counters).

pub mod http;
pub mod ready;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::task::JoinHandle;

pub use ready::Readiness;

/// `[ops]`: where the ops endpoints listen; absent, none are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// e.g. `0.0.0.0:9090` in a pod, `127.0.0.1:0` in tests (a free port).
    pub listen: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for the ops endpoints on {addr}: {source}")]
pub struct OpsError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// The running ops server; stops when dropped.
pub struct OpsHandle {
    /// Where it listens (the real port when `listen` asked for port 0).
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for OpsHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `[ops] listen` and serves the endpoints over `state`.
pub async fn start(config: &OpsConfig, state: Arc<http::OpsState>) -> Result<OpsHandle, OpsError> {
    let addr = config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| OpsError { addr, source })?;
    let app = http::router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the ops server stopped");
        }
    });
    Ok(OpsHandle { local_addr, task })
}
