//! The sandbox's control API under `/_sandbox/`: fault rules, seeding, a convenience token.
//!
//! * `GET /_sandbox` — endpoints and ids
//! * `GET|POST|DELETE /_sandbox/faults`, `DELETE /_sandbox/faults/{id}` — fault rules ([`FaultSpec`] JSON)
//! * `POST /_sandbox/gates/{name}` — opens a gate that `hold` rules wait on
//! * `POST /_sandbox/token` — an ARM access token (skips the OAuth flow)

use std::sync::Arc;

use axum::http::Method;
use serde_json::json;

use crate::faults::{self, FaultSpec};
use crate::http::{Ctx, Reply};
use crate::state::{Shared, lock};

fn err(status: u16, msg: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": "SandboxControl", "message": msg}}),
    )
}

/// Serves `/_sandbox/...`.
pub fn handle(shared: &Arc<Shared>, ctx: &Ctx) -> Reply {
    let rest: Vec<&str> = ctx.segs.iter().skip(1).map(String::as_str).collect();
    match (&ctx.method, rest.as_slice()) {
        (&Method::GET, []) => Reply::json(
            200,
            json!({
                "armEndpoint": shared.base, "authorityHost": shared.base,
                "tenantId": shared.opts.tenant_id, "subscriptionId": shared.opts.subscription_id,
                "clientId": shared.opts.client_id, "lroDelayMs": shared.opts.lro_delay.as_millis() as u64,
                "note": "deckhand cloud sandbox: no real cloud is touched",
            }),
        ),
        (&Method::GET, ["faults"]) => {
            let f = lock(&shared.faults);
            Reply::json(
                200,
                json!({"value": f.rules.iter().map(|(id, r)| json!({"id": id, "rule": r})).collect::<Vec<_>>()}),
            )
        }
        (&Method::POST, ["faults"]) => match serde_json::from_slice::<FaultSpec>(&ctx.body) {
            Ok(spec) => Reply::json(201, json!({"id": faults::add(shared, spec)})),
            Err(e) => err(400, &format!("invalid fault rule: {e}")),
        },
        (&Method::DELETE, ["faults"]) => {
            faults::clear(shared);
            Reply::empty(204)
        }
        (&Method::POST, ["gates", name]) => {
            shared.gates.open(name);
            Reply::empty(204)
        }
        (&Method::DELETE, ["faults", id]) => match id.parse::<u64>() {
            Ok(id) if faults::remove(shared, id) => Reply::empty(204),
            _ => err(404, "no such fault rule"),
        },
        (&Method::POST, ["token"]) => {
            let (t, secs) = crate::token::issue(shared, &shared.opts.client_id);
            Reply::json(
                200,
                json!({"token_type": "Bearer", "expires_in": secs, "access_token": t}),
            )
        }
        _ => err(404, "unknown control endpoint"),
    }
}
