//! AKS's own request limits per subscription, as token buckets (as the AKS resource provider
//! throttles): `PUT managedClusters/{name}` and `PUT …/agentPools/{name}` share a bucket of 20
//! writes refilled at 1 per minute; reads under `Microsoft.ContainerService` a bucket of 250
//! refilled at 25 per second. An empty bucket answers 429 with `Retry-After` (seconds until
//! the next token); every answer carries what is left in
//! `x-ms-ratelimit-remaining-subscription-writes|reads`. Sizes and refill are
//! [`crate::SandboxOptions`] fields so a test can shorten time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::json;

use crate::http::{Ctx, Reply};
use crate::state::lock;

/// A token bucket: `capacity` tokens, one more every `refill`.
#[derive(Debug)]
pub struct Bucket {
    capacity: u32,
    refill: Duration,
    /// Tokens now (fractional between refills) and when that was computed.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(capacity: u32, refill: Duration) -> Bucket {
        Bucket {
            capacity,
            refill,
            state: Mutex::new((f64::from(capacity), Instant::now())),
        }
    }

    /// Takes one token: `Ok(tokens left)`, or `Err(time until one is back)`.
    pub fn take(&self) -> Result<u32, Duration> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let refill = self.refill.as_secs_f64().max(f64::EPSILON);
        let earned = now.duration_since(state.1).as_secs_f64() / refill;
        state.0 = (state.0 + earned).min(f64::from(self.capacity));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            // Whole tokens, as Azure reports them.
            Ok(state.0.floor() as u32)
        } else {
            Err(self.refill.mul_f64(1.0 - state.0))
        }
    }
}

/// The two AKS buckets of the subscription.
#[derive(Debug)]
pub struct AksLimits {
    pub writes: Bucket,
    pub reads: Bucket,
}

impl AksLimits {
    pub fn new(opts: &crate::SandboxOptions) -> AksLimits {
        AksLimits {
            writes: Bucket::new(opts.aks_write_bucket, opts.aks_write_refill),
            reads: Bucket::new(opts.aks_read_bucket, opts.aks_read_refill),
        }
    }

    /// Which bucket an ARM request draws from, if an AKS one: `("writes" | "reads", bucket)`.
    fn bucket_of(&self, ctx: &Ctx) -> Option<(&'static str, &Bucket)> {
        let segs: Vec<String> = ctx.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let provider = segs
            .iter()
            .position(|s| s == "microsoft.containerservice")?;
        let tail = &segs[provider + 1..];
        if ctx.method == Method::GET {
            return Some(("reads", &self.reads));
        }
        let is_resource = matches!(tail, [t, _] if t == "managedclusters")
            || matches!(tail, [t, _, p, _] if t == "managedclusters" && p == "agentpools");
        (ctx.method == Method::PUT && is_resource).then_some(("writes", &self.writes))
    }

    /// For an AKS request: the 429 to answer instead when its bucket is empty, else the
    /// `x-ms-ratelimit-remaining-…` header to add. `None` for other requests.
    pub fn admit(&self, ctx: &Ctx) -> Option<Result<(String, String), Reply>> {
        let (kind, bucket) = self.bucket_of(ctx)?;
        let header = format!("x-ms-ratelimit-remaining-subscription-{kind}");
        Some(match bucket.take() {
            Ok(left) => Ok((header, left.to_string())),
            Err(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let body = json!({"error": {"code": "TooManyRequests", "message": format!(
                    "The request is being throttled as the limit has been reached for operation type - {} of Microsoft.ContainerService. For more information, refer to - https://aka.ms/srpthrottlinglimits",
                    if kind == "writes" { "Write" } else { "Read" }
                )}});
                Err(Reply::json(429, body)
                    .with("Retry-After", secs.max(1).to_string())
                    .with(&header, "0"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_then_refills_one_token_per_interval() {
        let bucket = Bucket::new(3, Duration::from_millis(100));
        assert_eq!(bucket.take(), Ok(2));
        assert_eq!(bucket.take(), Ok(1));
        assert_eq!(bucket.take(), Ok(0));
        let wait = bucket.take().unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        std::thread::sleep(wait + Duration::from_millis(5));
        assert_eq!(bucket.take(), Ok(0));
    }
}
