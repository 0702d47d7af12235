//! The gateway websocket: HELLO, heartbeat ACKs, IDENTIFY -> READY, RESUME -> replay + RESUMED,
//! dispatches with sequence numbers, and test-driven disconnects.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::record::{Direction, GatewayFrame};
use crate::{Outbound, Session, Shared, State as DoubleState, payloads};

pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(app): State<crate::rest::App>) -> Response {
    let shared = app.shared;
    ws.on_upgrade(move |socket| connection(shared, socket))
}

/// Wrap `d` in the dispatch envelope of `17-gateway-dispatch-envelope.json`.
fn envelope(t: &str, s: u64, d: Value) -> Value {
    let mut e = payloads::json(payloads::DISPATCH);
    e["t"] = json!(t);
    e["s"] = json!(s);
    e["d"] = d;
    e
}

/// Assign the next sequence number, keep the dispatch for replay, send it if connected.
/// Callers hold the state lock, so sequence order equals send order.
pub(crate) fn dispatch(st: &mut DoubleState, t: &str, d: Value) -> u64 {
    let Some(session) = st.session.as_mut() else {
        panic!("dispatch {t} without a session");
    };
    session.seq += 1;
    let s = session.seq;
    let frame = envelope(t, s, d);
    session.log.push((s, frame.clone()));
    send_raw(st, frame);
    s
}

/// Send a non-replayed frame to the live connection, if any.
pub(crate) fn send_raw(st: &DoubleState, frame: Value) {
    if let Some((_, tx)) = &st.active {
        let _ = tx.send(Outbound::Frame(frame));
    }
}

fn record(shared: &Shared, connection: u64, direction: Direction, payload: &Value) {
    shared.frames.push_with(|index| GatewayFrame {
        index,
        connection,
        direction,
        op: payload["op"].as_u64(),
        t: payload["t"].as_str().map(str::to_string),
        s: payload["s"].as_u64(),
        payload: payload.clone(),
        event: None,
        at: Instant::now(),
    });
}

fn record_event(shared: &Shared, connection: u64, direction: Direction, event: String) {
    shared.frames.push_with(|index| GatewayFrame {
        index,
        connection,
        direction,
        op: None,
        t: None,
        s: None,
        payload: Value::Null,
        event: Some(event),
        at: Instant::now(),
    });
}

async fn connection(shared: Arc<Shared>, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let conn = {
        let mut st = shared.state();
        st.next_connection += 1;
        st.next_connection
    };
    record_event(&shared, conn, Direction::FromClient, "connected".into());
    let (mut sink, mut stream) = socket.split();

    let mut hello = payloads::json(payloads::HELLO);
    hello["d"]["heartbeat_interval"] = json!(shared.cfg.heartbeat_interval.as_millis() as u64);
    let _ = tx.send(Outbound::Frame(hello));

    let end = loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let Ok(payload) = serde_json::from_str::<Value>(text.as_str()) else {
                        break "closed: client sent invalid JSON".to_string();
                    };
                    record(&shared, conn, Direction::FromClient, &payload);
                    handle_client(&shared, conn, &tx, &payload);
                },
                Some(Ok(Message::Close(frame))) => {
                    break format!("closed by client ({:?})", frame.map(|f| f.code));
                },
                Some(Ok(_)) => {},
                Some(Err(e)) => break format!("client error: {e}"),
                None => break "client disconnected".to_string(),
            },
            out = rx.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    record(&shared, conn, Direction::ToClient, &frame);
                    if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                        break "send failed".to_string();
                    }
                },
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break format!("closed with {code}");
                },
                Some(Outbound::Drop) | None => break "dropped".to_string(),
            },
        }
    };
    {
        let mut st = shared.state();
        if st.active.as_ref().is_some_and(|(c, _)| *c == conn) {
            st.active = None;
        }
    }
    record_event(&shared, conn, Direction::ToClient, end);
    // Dropping sink and stream drops the TCP connection.
}

fn handle_client(shared: &Shared, conn: u64, tx: &mpsc::UnboundedSender<Outbound>, p: &Value) {
    match p["op"].as_u64() {
        // Heartbeat -> ACK.
        Some(1) => {
            let _ = tx.send(Outbound::Frame(payloads::json(payloads::HEARTBEAT_ACK)));
        }
        // Identify -> new session, READY.
        Some(2) => {
            let mut st = shared.state();
            st.sessions_created += 1;
            let id = format!("double-session-{}", st.sessions_created);
            st.session = Some(Session {
                id: id.clone(),
                seq: 0,
                log: Vec::new(),
            });
            st.active = Some((conn, tx.clone()));
            let mut ready = payloads::json(payloads::READY)["d"].clone();
            let app = shared.cfg.application_id.to_string();
            ready["session_id"] = json!(id);
            ready["resume_gateway_url"] = json!(shared.ws_url());
            ready["user"]["id"] = json!(app);
            ready["application"]["id"] = json!(app);
            ready["guilds"] =
                json!([{ "id": shared.cfg.guild_id.to_string(), "unavailable": true }]);
            if let Some(shard) = p["d"].get("shard") {
                ready["shard"] = shard.clone();
            }
            dispatch(&mut st, "READY", ready);
        }
        // Resume -> replay what the client missed, then RESUMED; unknown session -> op 9.
        Some(6) => {
            let mut st = shared.state();
            let session_id = p["d"]["session_id"].as_str().unwrap_or_default();
            let client_seq = p["d"]["seq"].as_u64().unwrap_or(0);
            let ok = st
                .session
                .as_ref()
                .is_some_and(|s| s.id == session_id && client_seq <= s.seq);
            if !ok {
                let mut invalid = payloads::json(payloads::INVALID_SESSION);
                invalid["d"] = json!(false);
                let _ = tx.send(Outbound::Frame(invalid));
                return;
            }
            st.active = Some((conn, tx.clone()));
            let missed: Vec<Value> = st
                .session
                .as_ref()
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(seq, _)| *seq > client_seq)
                        .map(|(_, f)| f.clone())
                        .collect()
                })
                .unwrap_or_default();
            for frame in missed {
                let _ = tx.send(Outbound::Frame(frame));
            }
            let session = st.session.as_mut().expect("checked above");
            session.seq += 1;
            let resumed = envelope("RESUMED", session.seq, json!({}));
            let _ = tx.send(Outbound::Frame(resumed));
        }
        _ => {}
    }
}
