//! JupyterHub's REST API (`/hub/api/users`): users and their servers, page by page.

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Api;
use crate::rest;

/// One user as `/hub/api/users` lists them (only what the plugin shows).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub name: String,
    /// Named servers by name (`""` is the default server); present when the token may read them.
    #[serde(default)]
    pub servers: std::collections::BTreeMap<String, Server>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
}

/// JupyterHub's pagination envelope (asked for with its media type).
#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<User>,
    #[serde(rename = "_pagination")]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    next: Option<Value>,
}

const PAGE: usize = 200;
/// More pages than this is not a hub this plugin is meant for; stop rather than loop.
const MAX_PAGES: usize = 50;

/// Every user, following JupyterHub's pages.
pub fn users(ctx: &Ctx, api: &Api) -> Result<Vec<User>, PluginError> {
    let mut users = Vec::new();
    for _ in 0..MAX_PAGES {
        let offset = users.len().to_string();
        let limit = PAGE.to_string();
        let url = rest::url(
            api,
            &["hub", "api", "users"],
            &[("offset", &offset), ("limit", &limit)],
        )?;
        let body = rest::get_json(
            ctx,
            api,
            &url,
            vec![(
                "Accept".into(),
                "application/jupyterhub-pagination+json".into(),
            )],
        )?;
        // A hub without pagination answers a plain list.
        let page: Page = match body {
            Value::Array(items) => Page {
                items: serde_json::from_value(Value::Array(items)).map_err(|e| shape(api, e))?,
                pagination: None,
            },
            other => serde_json::from_value(other).map_err(|e| shape(api, e))?,
        };
        let count = page.items.len();
        users.extend(page.items);
        let more = page
            .pagination
            .and_then(|p| p.next)
            .is_some_and(|n| !n.is_null());
        if !more || count == 0 {
            return Ok(users);
        }
    }
    Ok(users)
}

fn shape(api: &Api, e: serde_json::Error) -> PluginError {
    PluginError::new(
        ErrorCode::Upstream,
        format!("{} answered users in an unexpected shape: {e}", api.what),
    )
}

/// `alice (admin): server ready since …` lines and the counts.
pub struct Summary {
    pub users: usize,
    pub running: usize,
    pub pending: usize,
    pub lines: Vec<String>,
}

pub fn summarize(users: &[User]) -> Summary {
    let mut running = 0;
    let mut pending = 0;
    let mut lines = Vec::new();
    for user in users {
        for (name, server) in &user.servers {
            let label = if name.is_empty() {
                user.name.clone()
            } else {
                format!("{}/{name}", user.name)
            };
            let state = if let Some(what) = &server.pending {
                pending += 1;
                format!("{what} pending")
            } else if server.ready {
                running += 1;
                "ready".to_owned()
            } else {
                "not ready".to_owned()
            };
            let since = server
                .started
                .as_deref()
                .map(|s| format!(" since {s}"))
                .unwrap_or_default();
            lines.push(format!("  • {label}: {state}{since}"));
        }
    }
    Summary {
        users: users.len(),
        running,
        pending,
        lines,
    }
}
