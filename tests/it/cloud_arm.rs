//! The host's ARM service against the cloud sandbox (a local double of Azure: see
//! tests/sandbox/README.md), through a real plugin: long-running operations, retries, faults,
//! token refresh, capabilities.

use std::time::{Duration, Instant};

use deckhand::router::ResponseKind;
use deckhand_it::cloud::CloudBot;
use deckhand_sandbox::{FaultKind, FaultSpec};
use serde_json::Value;

const AKS_API: &str = "2026-08-01";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The host error a failed command carries (the probe plugin forwards it as JSON).
fn host_error(text: &str) -> Value {
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no structured error in: {text}"));
    json(&text[start..])
}

/// `/arm GET path` through the probe plugin: the host's answer as JSON.
async fn arm_read(cloud: &CloudBot, path: &str) -> Value {
    json(
        &cloud
            .bot
            .say(&format!("/arm GET {path} --api {AKS_API}"))
            .await
            .text,
    )
}

async fn start() -> CloudBot {
    CloudBot::start(&["cloudprobe"], Duration::from_millis(300), "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_cluster_and_follows_a_pool_scale_to_the_end_with_progress() {
    let cloud = start().await;
    let cluster = cloud.cluster_path();
    let read = cloud
        .bot
        .say(&format!("/arm GET {cluster} --api {AKS_API}"))
        .await;
    assert_eq!(read.kind, ResponseKind::Ok, "{}", read.text);
    let read = json(&read.text);
    assert_eq!(read["status"], 200);
    assert_eq!(read["body"]["properties"]["provisioningState"], "Succeeded");
    assert!(read["request_id"].is_string());

    let pool_path = format!("{cluster}/agentPools/users");
    let pool = arm_read(&cloud, &pool_path).await;
    let mut body = pool["body"].clone();
    let count = body["properties"]["count"].as_i64().unwrap();
    body["properties"]["count"] = (count + 1).into();
    let started = Instant::now();
    let (reply, progress, _) = cloud
        .bot
        .say_full(
            deckhand_it::admin(),
            &format!("/arm PUT {pool_path} --api {AKS_API} --body '{body}'"),
        )
        .await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the operation takes the sandbox's delay"
    );
    let done = json(&reply.text);
    assert_eq!(done["body"]["properties"]["count"], count + 1);
    assert_eq!(
        done["body"]["properties"]["provisioningState"], "Succeeded",
        "final resource read back"
    );
    assert!(
        progress.iter().any(|p| p.starts_with("probing… ")),
        "{progress:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out_for_the_time_retry_after_asks() {
    let cloud = start().await;
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .on_path("managedClusters")
        .on_method("GET")
        .times(1),
    );
    let started = Instant::now();
    let reply = cloud
        .bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    let waited = started.elapsed();
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 must be honoured, waited {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_succeed_and_persistent_ones_are_reported() {
    let cloud = start().await;
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 503 })
            .on_path("managedClusters")
            .times(2),
    );
    let reply = cloud
        .bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);

    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 500 }).on_path("managedClusters"),
    );
    let reply = cloud
        .bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    assert_eq!(reply.kind, ResponseKind::Error);
    let error = host_error(&reply.text);
    assert_eq!(error["code"], "azure");
    assert_eq!(error["status"], 500);
    assert!(error["request_id"].is_string(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_long_running_operation_is_reported_with_its_code() {
    let cloud = start().await;
    cloud.sandbox.inject(FaultSpec::always(FaultKind::FailLro {
        code: "VMExtensionProvisioningError".into(),
        message: "Provisioning of VM extension vmssCSE has timed out".into(),
    }));
    let path = format!("{}/agentPools/users", cloud.cluster_path());
    let pool = arm_read(&cloud, &path).await;
    let body = pool["body"].clone();
    let reply = cloud
        .bot
        .say(&format!("/arm PUT {path} --api {AKS_API} --body '{body}'"))
        .await;
    assert_eq!(reply.kind, ResponseKind::Error);
    let error = host_error(&reply.text);
    // Accepted, then failed while running: not a refusal.
    assert_eq!(error["code"], "operation_failed", "{error}");
    assert!(
        error["message"].as_str().unwrap().starts_with(
            "Azure accepted PUT managedClusters/pangeoCluster/agentPools/users, but the operation failed while running: VMExtensionProvisioningError: "
        ),
        "{error}"
    );
    assert_eq!(
        error["upstream_code"], "VMExtensionProvisioningError",
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("vmssCSE has timed out"),
        "{error}"
    );
    assert!(error["request_id"].is_string(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_operation_is_reported_as_azure_409() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_secs(3), "").await;
    let path = format!("{}/agentPools/users", cloud.cluster_path());
    let pool = arm_read(&cloud, &path).await;
    let body = pool["body"].clone();
    let first = cloud
        .bot
        .say(&format!(
            "/arm PUT {path} --api {AKS_API} --body '{body}' --nowait"
        ))
        .await;
    let first = json(&first.text);
    assert!(
        [200, 201].contains(&first["status"].as_u64().unwrap()),
        "{first}"
    );
    assert_eq!(
        first["body"]["properties"]["provisioningState"], "Updating",
        "{first}"
    );
    let second = cloud
        .bot
        .say(&format!(
            "/arm PUT {path} --api {AKS_API} --body '{body}' --nowait"
        ))
        .await;
    assert_eq!(second.kind, ResponseKind::Error);
    let error = host_error(&second.text);
    assert_eq!(error["status"], 409, "{error}");
    assert!(error["upstream_code"].is_string(), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Azure refused PUT managedClusters/"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_bounded_by_the_time_limit() {
    let cloud = start().await;
    cloud
        .sandbox
        .inject(FaultSpec::always(FaultKind::Slow { delay_ms: 60_000 }).on_path("managedClusters"));
    let started = Instant::now();
    let reply = cloud
        .bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    let waited = started.elapsed();
    assert_eq!(reply.kind, ResponseKind::Error);
    // try_timeout 2 s × 4 attempts plus backoff, well under the command's 20 s.
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    let error = host_error(&reply.text);
    assert!(
        ["unavailable", "timeout"].contains(&error["code"].as_str().unwrap()),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_the_call_succeeds() {
    let cloud = start().await;
    let get = format!("/arm GET {} --api {AKS_API}", cloud.cluster_path());
    assert_eq!(cloud.bot.say(&get).await.kind, ResponseKind::Ok);
    // The cached token is now rejected by the server (401 ExpiredAuthenticationToken).
    cloud.sandbox.expire_issued_tokens();
    let reply = cloud.bot.say(&get).await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_outside_declared_arm_capabilities_are_refused_and_audited() {
    let cloud = start().await;
    let registries = format!(
        "/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
        cloud.estate.resource_group, cloud.estate.registry
    );
    let reply = cloud
        .bot
        .say(&format!("/arm DELETE {registries} --api 2025-11-01"))
        .await;
    assert_eq!(reply.kind, ResponseKind::Error);
    assert!(
        reply.text.contains(
            "not allowed to delete ARM resources of type Microsoft.ContainerRegistry/registries"
        ),
        "{}",
        reply.text
    );
    let delete_cluster = cloud
        .bot
        .say(&format!(
            "/arm DELETE {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    assert!(delete_cluster.text.contains(
        "not allowed to delete ARM resources of type Microsoft.ContainerService/managedClusters"
    ));
    let refused = cloud
        .bot
        .app
        .db
        .refused_service_calls("cloudprobe")
        .unwrap();
    assert_eq!(refused.len(), 2);
    assert!(
        refused
            .iter()
            .all(|r| r.service == "arm" && r.outcome == "capability_denied")
    );
    // The registry still exists: the refusal happened before any request.
    let still = cloud
        .bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    assert_eq!(still.kind, ResponseKind::Ok);
}

/// The message of the credential failure a bot gets when its config has `from` replaced by
/// `to` (the same sandbox otherwise).
async fn credential_failure(cloud: &CloudBot, from: &str, to: &str) -> String {
    let config =
        deckhand_it::cloud::cloud_config(&cloud.sandbox, &cloud.estate, "").replace(from, to);
    let bot = deckhand_it::TestBot::with_config(&["cloudprobe"], &config);
    let reply = bot
        .say(&format!(
            "/arm GET {} --api {AKS_API}",
            cloud.cluster_path()
        ))
        .await;
    assert_eq!(reply.kind, ResponseKind::Error);
    let error = host_error(&reply.text);
    assert_eq!(error["code"], "auth", "{error}");
    error["message"].as_str().unwrap_or_default().to_owned()
}

/// A wrong secret: the method, the token endpoint's status and Entra's own error and AADSTS
/// code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_failure_names_the_method_and_the_reason() {
    let cloud = start().await;
    let message = credential_failure(&cloud, cloud.sandbox.client_secret(), "not-the-secret").await;
    assert!(
        message.starts_with(&format!(
            "Azure credential (client secret) failed: the token endpoint {}/{}/oauth2/v2.0/token answered HTTP 401: invalid_client: AADSTS7000215",
            cloud.sandbox.base_url(),
            cloud.sandbox.tenant_id()
        )),
        "{message}"
    );
}

/// Issue 12 point 6: a wrong authority host is reported with the HTTP status, the endpoint and
/// what it answered, not azure_identity's "Failed to parse server response".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_authority_host_is_reported_with_the_status_and_the_endpoint() {
    let cloud = start().await;
    let base = cloud.sandbox.base_url();
    // `{base}/common` is no token endpoint: the sandbox answers ARM's 404 shape there.
    let message = credential_failure(
        &cloud,
        &format!("authority_host = \"{base}\""),
        &format!("authority_host = \"{base}/common\""),
    )
    .await;
    let endpoint = format!(
        "{base}/common/{}/oauth2/v2.0/token",
        cloud.sandbox.tenant_id()
    );
    assert!(
        message.starts_with(&format!(
            "Azure credential (client secret) failed: the token endpoint {endpoint} answered HTTP 404: not an Entra ID token endpoint's answer ("
        )),
        "{message}"
    );
    assert!(
        message.contains("authority_host") && !message.contains("Failed to parse"),
        "{message}"
    );
}

/// Issue 12 points 2 and 8: the operation succeeded and only the read-back failed: the host
/// answers a success carrying why the read failed (not "Azure refused"), and Azure's
/// remaining write budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_back_after_a_succeeded_operation_is_a_success_with_the_reason() {
    let cloud = start().await;
    let path = format!("{}/agentPools/users", cloud.cluster_path());
    let pool = arm_read(&cloud, &path).await;
    let mut body = pool["body"].clone();
    body["properties"]["count"] = 2.into();
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 500 })
            .on_path("agentPools/users")
            .on_method("GET"),
    );
    let reply = cloud
        .bot
        .say(&format!("/arm PUT {path} --api {AKS_API} --body '{body}'"))
        .await;
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
    let done = json(&reply.text);
    assert!(done["body"].is_null(), "{done}");
    let unread = &done["read_back_error"];
    assert_eq!(unread["status"], 500, "{done}");
    assert_eq!(unread["upstream_code"], "InternalServerError", "{done}");
    assert!(
        unread["message"].as_str().unwrap().starts_with(
            "Azure refused GET managedClusters/pangeoCluster/agentPools/users (reading back the result): InternalServerError"
        ),
        "{done}"
    );
    // One AKS write spent from the bucket of 20.
    assert_eq!(done["remaining_writes"], 19, "{done}");
    assert!(done["remaining_reads"].as_u64().is_some(), "{done}");
    cloud.sandbox.clear_faults();
    let after = arm_read(&cloud, &path).await;
    assert_eq!(
        after["body"]["properties"]["count"], 2,
        "the change is done"
    );
}

/// Issue 12 point 2: Azure accepted the change but its status could not be read: that is
/// neither "refused" nor "failed", and the change goes on in Azure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_operation_status_is_an_unknown_outcome_not_a_refusal() {
    let cloud = start().await;
    let path = format!("{}/agentPools/users", cloud.cluster_path());
    let mut body = arm_read(&cloud, &path).await["body"].clone();
    body["properties"]["count"] = 2.into();
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 500 })
            .on_path("/operations/")
            .on_method("GET"),
    );
    let reply = cloud
        .bot
        .say(&format!("/arm PUT {path} --api {AKS_API} --body '{body}'"))
        .await;
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
    let error = host_error(&reply.text);
    assert_eq!(error["code"], "outcome_unknown", "{error}");
    assert!(
        error["message"].as_str().unwrap().starts_with(
            "Azure accepted PUT managedClusters/pangeoCluster/agentPools/users, but its progress could not be read (its status URL answered HTTP 500: InternalServerError: "
        ),
        "{error}"
    );
    assert!(error["request_id"].is_string(), "{error}");
    cloud.sandbox.clear_faults();
    deckhand_it::aks::settle(&cloud).await;
    assert_eq!(
        arm_read(&cloud, &path).await["body"]["properties"]["count"],
        2,
        "Azure carried the change out"
    );
}
