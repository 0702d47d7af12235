//! Watches: replay from a resource version (or initial ADDED events), live changes, BOOKMARKs
//! when asked, `ERROR` with a 410 `Expired` status for versions older than the kept history.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::Res;
use super::selector::{FieldSelector, LabelSelector};
use super::store::Change;
use crate::http::Reply;
use crate::state::Shared;

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchReq {
    /// Resource.
    pub res: &'static Res,
    /// Namespace, or all.
    pub ns: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// `resourceVersion` parameter.
    pub rv: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

fn line(ty: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn matches(req: &WatchReq, c: &Change) -> bool {
    c.res == req.res.key()
        && req.ns.as_ref().is_none_or(|n| *n == c.ns)
        && req.labels.matches(&c.obj["metadata"]["labels"])
        && req.fields.matches(&c.obj)
}

fn with_type(res: &Res, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    obj
}

fn bookmark(res: &Res, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": meta}),
    )
}

/// Starts a watch on cluster `id`.
pub fn start(shared: &Arc<Shared>, id: &str, req: WatchReq) -> Reply {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let (mut sub, initial, current, expired) = {
        let w = shared.world();
        let Some(kc) = w.kube.get(id) else {
            return Reply::empty(404);
        };
        let st = &kc.store;
        let sub = st.tx.subscribe();
        let mut initial = Vec::new();
        let mut expired = None;
        match req.rv.as_deref().map(|v| v.parse::<u64>()) {
            None | Some(Ok(0)) => {
                for obj in st.list(&req.res.key(), req.ns.as_deref()) {
                    let c = Change {
                        rv: 0,
                        res: req.res.key(),
                        ns: req.ns.clone().unwrap_or_default(),
                        kind: "ADDED",
                        obj: obj.clone(),
                    };
                    let c = Change {
                        ns: obj["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        ..c
                    };
                    if matches(&req, &c) {
                        initial.push(line("ADDED", &with_type(req.res, obj)));
                    }
                }
            }
            Some(Ok(rv)) if rv < st.oldest => {
                expired = Some(
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {rv} ({})", st.oldest), "reason": "Expired", "code": 410}),
                );
            }
            Some(Ok(rv)) => {
                for c in st.history.iter().filter(|c| c.rv > rv) {
                    if matches(&req, c) {
                        initial.push(line(c.kind, &with_type(req.res, c.obj.clone())));
                    }
                }
            }
            Some(Err(_)) => {
                expired = Some(
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "invalid resource version", "reason": "BadRequest", "code": 400}),
                );
            }
        }
        (sub, initial, st.rv, expired)
    };
    let interval = shared
        .opts
        .bookmark_interval
        .max(std::time::Duration::from_millis(10));
    tokio::spawn(async move {
        if let Some(e) = expired {
            let _ = tx.send(line("ERROR", &e)).await;
            return;
        }
        for l in initial {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let mut last_rv = current;
        if req.bookmarks && (req.initial_events || req.rv.is_none()) {
            let _ = tx
                .send(bookmark(req.res, last_rv, req.initial_events))
                .await;
        }
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tick.tick(), if req.bookmarks => {
                    if tx.send(bookmark(req.res, last_rv, false)).await.is_err() { return; }
                }
                ev = sub.recv() => match ev {
                    Ok(c) => {
                        last_rv = c.rv;
                        if c.rv > current && matches(&req, &c) && tx.send(line(c.kind, &with_type(req.res, c.obj))).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "watch fell behind; resource version too old", "reason": "Expired", "code": 410});
                        let _ = tx.send(line("ERROR", &e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    Reply {
        status: 200,
        content_type: Some("application/json".into()),
        stream: Some(Body::from_stream(stream)),
        ..Reply::default()
    }
}
