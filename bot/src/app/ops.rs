//! Starting the ops endpoints (`[ops]`) over the running app.

use std::sync::Arc;

use crate::alerts::AlertsHandle;
use crate::ops::http::OpsState;
use crate::ops::{self, OpsError, OpsHandle, Readiness};

use super::App;

impl App {
    /// Serves `/healthz`, `/readyz`, `/metrics` when `[ops] listen` is set; says where on
    /// stderr.
    pub async fn start_ops(
        &self,
        alerts: Option<&AlertsHandle>,
    ) -> Result<Option<OpsHandle>, OpsError> {
        let Some(config) = &self.config.ops else {
            return Ok(None);
        };
        let state = Arc::new(OpsState {
            readiness: Readiness {
                host: self.host.clone(),
                load_errors: self.load_errors.iter().map(ToString::to_string).collect(),
                db: self.db.clone(),
            },
            alerts: alerts.map(|a| a.state.clone()),
        });
        let handle = ops::start(config, state).await?;
        eprintln!(
            "ops: http://{0}/healthz http://{0}/readyz http://{0}/metrics",
            handle.local_addr
        );
        Ok(Some(handle))
    }
}
