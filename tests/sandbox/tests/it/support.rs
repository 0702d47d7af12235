//! Shared helpers: a sandbox with short delays and a small ARM client.

use std::time::Duration;

use deckhand_sandbox::{Sandbox, SandboxOptions};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// LRO delay used by the tests.
pub const LRO: Duration = Duration::from_millis(100);

/// Starts a sandbox with short delays.
pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        lro_delay: LRO,
        bookmark_interval: Duration::from_millis(200),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

/// A response: status, headers, JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// An authenticated ARM client against a sandbox.
pub struct Arm {
    pub http: reqwest::Client,
    pub base: String,
    pub sub: String,
    pub token: String,
}

impl Arm {
    pub fn new(sb: &Sandbox) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sb.arm_endpoint(),
            sub: sb.subscription_id().to_string(),
            token: sb.issue_token(),
        }
    }

    /// `/subscriptions/{sub}` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/subscriptions/{}{}", self.base, self.sub, path)
    }

    pub async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Resp {
        let mut rb = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body read");
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Request on `/subscriptions/{sub}{path}`.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.send(method, &self.url(path), body).await
    }

    /// Polls an Azure-AsyncOperation URL until it leaves InProgress; returns the final status doc.
    pub async fn wait_async(&self, url: &str) -> Value {
        for _ in 0..200 {
            let r = self.send(Method::GET, url, None).await;
            assert_eq!(r.status, 200, "poll {url}: {:?}", r.body);
            if r.body["status"] != "InProgress" {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("operation {url} never finished");
    }

    /// Polls a Location URL until it stops answering 202; returns the final response.
    pub async fn wait_location(&self, url: &str) -> Resp {
        for _ in 0..200 {
            let r = self.send(Method::GET, url, None).await;
            if r.status != 202 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("operation {url} never finished");
    }
}

/// Recursively checks that `actual` has every field of `expected` with the same JSON type
/// (null in the example matches anything; arrays compare their first elements). Returns the
/// mismatches as paths.
pub fn shape_mismatches(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    if expected.is_null() {
        return;
    }
    if kind(expected) != kind(actual) {
        out.push(format!(
            "{path}: expected {}, got {}",
            kind(expected),
            kind(actual)
        ));
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => shape_mismatches(ev, av, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e0), Some(a0)) = (e.first(), a.first()) {
                shape_mismatches(e0, a0, &format!("{path}[0]"), out);
            }
        }
        _ => {}
    }
}

/// A `kube::Client` built from the kubeconfig the sandbox hands out.
pub async fn kube_client(sb: &Sandbox, rg: &str, cluster: &str) -> kube::Client {
    let yaml = sb.kubeconfig(rg, cluster).expect("kubeconfig");
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

/// A seeded sandbox and a client for its cluster.
pub async fn seeded() -> (Sandbox, kube::Client) {
    let sb = sandbox().await;
    let e = sb.seed_realistic_estate().await.expect("seed");
    let c = kube_client(&sb, &e.resource_group, &e.cluster).await;
    (sb, c)
}

/// Waits (bounded) for the next watch event satisfying `pred`.
pub async fn next_event<K, S>(
    stream: &mut S,
    what: &str,
    pred: impl Fn(&kube::core::WatchEvent<K>) -> bool,
) -> kube::core::WatchEvent<K>
where
    S: futures_util::Stream<Item = kube::Result<kube::core::WatchEvent<K>>> + Unpin,
{
    use futures_util::StreamExt;
    let fut = async {
        while let Some(ev) = stream.next().await {
            let ev = ev.expect("watch event");
            if pred(&ev) {
                return ev;
            }
        }
        panic!("watch ended before {what}");
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
