//! The host's registry service through a real plugin (`cloudprobe`): against a real registry
//! (Debian's `docker-registry`, started here on loopback, with images pushed by the test over
//! the distribution API) and against the cloud sandbox's ACR data plane (token exchange).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deckhand::router::ResponseKind;
use deckhand_it::TestBot;
use deckhand_it::cloud::CloudBot;
use deckhand_it::registry::{DOCKER_MANIFEST, LocalRegistry, OCI_MANIFEST, sha256};
use deckhand_plugin_abi::proto::{Capabilities, HostResponse, RegistryRequest, Service};
use deckhand_sandbox::{FaultKind, FaultSpec};
use serde_json::{Value, json};

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

/// The registry with `simsvc:latest` (Docker v2), `simsvc-mpt:{1.1,latest}` (OCI) and
/// `team/tools:0.1`, and a bot that knows it as `local` (pages of two entries).
async fn local_setup() -> (LocalRegistry, TestBot, Vec<u8>, Vec<u8>) {
    let registry = LocalRegistry::start().await;
    let simsvc = registry
        .push_image("simsvc", "latest", DOCKER_MANIFEST)
        .await;
    let mpt = registry.push_image("simsvc-mpt", "1.1", OCI_MANIFEST).await;
    registry
        .push_image("simsvc-mpt", "latest", OCI_MANIFEST)
        .await;
    registry.push_image("team/tools", "0.1", OCI_MANIFEST).await;
    let extra = format!(
        "[[registries]]\nname = \"local\"\nurl = \"{}\"\nauth = \"anonymous\"\npage_size = 2\n",
        registry.url
    );
    let bot = TestBot::with_config(&["cloudprobe"], &extra);
    (registry, bot, simsvc, mpt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_registry_lists_repositories_and_tags_and_answers_digests() {
    let (registry, bot, simsvc, mpt) = local_setup().await;

    // The catalog comes in pages of two: the registry itself says there is a next page.
    let first_page = registry
        .http
        .get(format!("{}/v2/_catalog?n=2", registry.url))
        .send()
        .await
        .unwrap();
    assert!(
        first_page.headers().contains_key("link"),
        "docker-registry paginates: {:?}",
        first_page.headers()
    );
    let catalog = bot.say("/registry catalog local").await;
    assert_eq!(catalog.kind, ResponseKind::Ok, "{}", catalog.text);
    let catalog = json(&catalog.text);
    assert_eq!(catalog["op"], "catalog");
    assert_eq!(
        catalog["repositories"],
        json!(["simsvc", "simsvc-mpt", "team/tools"]),
        "every page followed"
    );

    let tags = bot
        .say("/registry tags local --repository simsvc-mpt")
        .await;
    assert_eq!(tags.kind, ResponseKind::Ok, "{}", tags.text);
    let tags = json(&tags.text);
    assert_eq!(tags["repository"], "simsvc-mpt");
    let mut names: Vec<String> = serde_json::from_value(tags["tags"].clone()).unwrap();
    names.sort();
    assert_eq!(names, ["1.1", "latest"]);

    let manifest = bot
        .say("/registry manifest local --repository simsvc-mpt --reference 1.1")
        .await;
    assert_eq!(manifest.kind, ResponseKind::Ok, "{}", manifest.text);
    let manifest = json(&manifest.text);
    assert_eq!(
        manifest["digest"],
        sha256(&mpt),
        "digest of the bytes pushed"
    );
    assert_eq!(manifest["media_type"], OCI_MANIFEST);
    assert_eq!(manifest["reference"], "1.1");

    // A Docker v2 manifest, addressed by the registry's host:port instead of its name.
    let host = registry.url.trim_start_matches("http://");
    let docker = bot
        .say(&format!(
            "/registry manifest {host} --repository simsvc --reference latest"
        ))
        .await;
    assert_eq!(docker.kind, ResponseKind::Ok, "{}", docker.text);
    let docker = json(&docker.text);
    assert_eq!(docker["digest"], sha256(&simsvc));
    assert_eq!(docker["media_type"], DOCKER_MANIFEST);

    // By digest, and a nested repository name.
    let by_digest = bot
        .say(&format!(
            "/registry manifest local --repository simsvc-mpt --reference {}",
            sha256(&mpt)
        ))
        .await;
    assert_eq!(by_digest.kind, ResponseKind::Ok, "{}", by_digest.text);
    assert_eq!(json(&by_digest.text)["digest"], sha256(&mpt));
    let nested = bot
        .say("/registry tags local --repository team/tools")
        .await;
    assert_eq!(json(&nested.text)["tags"], json!(["0.1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tag_repository_or_registry_is_reported_clearly() {
    let (_registry, bot, _, _) = local_setup().await;

    let missing = bot
        .say("/registry manifest local --repository simsvc-mpt --reference 1.2")
        .await;
    assert_eq!(missing.kind, ResponseKind::Error);
    // The tags in the registry's own order.
    let tags = json(
        &bot.say("/registry tags local --repository simsvc-mpt")
            .await
            .text,
    )["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(tags.len(), 2);
    let expected = format!(
        "tag 1.2 of simsvc-mpt not found in local (tags: {})",
        tags.join(", ")
    );
    assert!(missing.text.contains(&expected), "{}", missing.text);
    let error = host_error(&missing.text);
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["upstream_code"], "MANIFEST_UNKNOWN");
    assert_eq!(error["status"], 404);

    let no_repo = bot
        .say("/registry manifest local --repository simsvc-xyz --reference 1.0")
        .await;
    assert!(
        no_repo
            .text
            .contains("repository simsvc-xyz not found in local"),
        "{}",
        no_repo.text
    );
    assert_eq!(host_error(&no_repo.text)["code"], "not_found");
    let no_repo_tags = bot
        .say("/registry tags local --repository simsvc-xyz")
        .await;
    assert!(
        no_repo_tags
            .text
            .contains("repository simsvc-xyz not found in local"),
        "{}",
        no_repo_tags.text
    );

    let unknown = bot.say("/registry catalog nowhere").await;
    assert_eq!(unknown.kind, ResponseKind::Error);
    assert!(
        unknown
            .text
            .contains(r#"registry \"nowhere\" is not configured (configured: local)"#),
        "{}",
        unknown.text
    );
    assert_eq!(host_error(&unknown.text)["code"], "not_found");

    let bad = bot.say("/registry tags local --repository ../../etc").await;
    assert_eq!(host_error(&bad.text)["code"], "bad_request", "{}", bad.text);
}

/// A plugin whose manifest declares only `allowed` as its registry, served by the bot's host.
fn call_as_plugin(bot: &TestBot, allowed: &str, registry: &str) -> HostResponse {
    bot.call_as_plugin(
        "narrowprobe",
        Capabilities {
            registries: vec![allowed.to_owned()],
            ..Capabilities::default()
        },
        Service::Registry {
            request: RegistryRequest {
                registry: registry.to_owned(),
                op: "catalog".into(),
                repository: None,
                reference: None,
            },
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_outside_a_plugins_capabilities_are_refused_and_audited() {
    let (_registry, bot, _, _) = local_setup().await;
    // Plugin calls run on plugin threads, which block on the runtime: not on a worker.
    let refused = {
        let bot = &bot;
        tokio::task::block_in_place(|| call_as_plugin(bot, "*.azurecr.io", "local"))
    };
    match refused {
        HostResponse::Error(e) => {
            assert_eq!(e.code, "capability_denied");
            assert!(
                e.message
                    .contains("plugin narrowprobe is not allowed to query registry local"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let audited = bot.app.db.refused_service_calls("narrowprobe").unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].service, "registry");
    assert_eq!(audited[0].outcome, "capability_denied");
    assert!(audited[0].target.contains("local"), "{:?}", audited[0]);

    // The same plugin reaches the registry it declares.
    let allowed = tokio::task::block_in_place(|| call_as_plugin(&bot, "local", "local"));
    match allowed {
        HostResponse::Ok(value) => assert_eq!(value["repositories"][0], "simsvc"),
        other => panic!("expected the catalog, got {other:?}"),
    }
    assert_eq!(
        bot.app
            .db
            .refused_service_calls("narrowprobe")
            .unwrap()
            .len(),
        1
    );
}

/// The sandbox's manifest bytes, fetched the way a client does (Entra token → ACR refresh
/// token → access token), to check the host's digest independently.
async fn sandbox_manifest(cloud: &CloudBot, repo: &str, tag: &str) -> Vec<u8> {
    let http = reqwest::Client::new();
    let base = cloud.sandbox.registry_url(&cloud.estate.registry);
    let service = format!("{}.azurecr.io", cloud.estate.registry);
    let exchanged: Value = http
        .post(format!("{base}/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &service),
            ("access_token", &cloud.sandbox.issue_token()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", &service),
            ("scope", &format!("repository:{repo}:pull")),
            (
                "refresh_token",
                exchanged["refresh_token"].as_str().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.get(format!("{base}/v2/{repo}/manifests/{tag}"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acr_token_exchange_gives_catalog_tags_and_digests() {
    let cloud = CloudBot::start(&["cloudprobe"], Duration::from_millis(200), "").await;
    let registry = cloud.estate.registry.clone();
    // Anonymous access is refused: what follows needs the token exchange.
    let anonymous = reqwest::get(format!(
        "{}/v2/_catalog",
        cloud.sandbox.registry_url(&registry)
    ))
    .await
    .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The first token exchange fails once (retried), and so does the first manifest read.
    let fault = cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 503 })
            .on_path("/oauth2/exchange")
            .times(1),
    );
    let catalog = cloud
        .bot
        .say(&format!("/registry catalog {registry}"))
        .await;
    assert_eq!(catalog.kind, ResponseKind::Ok, "{}", catalog.text);
    assert!(
        !cloud.sandbox.remove_fault(fault),
        "the exchange was tried, failed and retried"
    );
    // The access token is cached for its scope: with the token endpoints down, the catalog
    // still answers.
    let down = cloud
        .sandbox
        .inject(FaultSpec::always(FaultKind::ServerError { status: 500 }).on_path("/oauth2/"));
    let again = cloud
        .bot
        .say(&format!("/registry catalog {registry}"))
        .await;
    assert_eq!(again.kind, ResponseKind::Ok, "{}", again.text);
    assert!(cloud.sandbox.remove_fault(down));
    let repositories = json(&catalog.text)["repositories"].clone();
    for repo in ["simsvc", "simsvc-mpt"] {
        assert!(
            repositories.as_array().unwrap().iter().any(|r| r == repo),
            "{repositories}"
        );
    }

    let tags = cloud
        .bot
        .say(&format!(
            "/registry tags {registry} --repository simsvc-mpt"
        ))
        .await;
    assert_eq!(tags.kind, ResponseKind::Ok, "{}", tags.text);
    let tags: Vec<String> = serde_json::from_value(json(&tags.text)["tags"].clone()).unwrap();
    assert!(!tags.is_empty());
    let tag = &tags[0];

    let throttle = cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .on_path("/manifests/")
        .times(1),
    );
    let started = Instant::now();
    let manifest = cloud
        .bot
        .say(&format!(
            "/registry manifest {} --repository simsvc-mpt --reference {tag}",
            cloud.estate.login_server
        ))
        .await;
    assert_eq!(manifest.kind, ResponseKind::Ok, "{}", manifest.text);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert!(!cloud.sandbox.remove_fault(throttle));
    let manifest = json(&manifest.text);
    let bytes = sandbox_manifest(&cloud, "simsvc-mpt", tag).await;
    assert_eq!(manifest["digest"], sha256(&bytes));
    assert_eq!(manifest["media_type"], DOCKER_MANIFEST);

    let missing = cloud
        .bot
        .say(&format!(
            "/registry manifest {registry} --repository simsvc-mpt --reference 9.9.9"
        ))
        .await;
    assert_eq!(missing.kind, ResponseKind::Error);
    let expected = format!(
        "tag 9.9.9 of simsvc-mpt not found in {registry} (tags: {})",
        tags.join(", ")
    );
    assert!(missing.text.contains(&expected), "{}", missing.text);
}

/// A registry double that answers with a Bearer challenge, and its token service, which wants
/// basic credentials `robot:s3cret` (base64 `cm9ib3Q6czNjcmV0`); counts token requests.
async fn token_realm_double() -> (String, Arc<AtomicUsize>) {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    type Shared = (String, Arc<AtomicUsize>);
    async fn token(
        State((_, count)): State<Shared>,
        Query(query): Query<HashMap<String, String>>,
        headers: HeaderMap,
    ) -> Response {
        let basic = headers.get("authorization").and_then(|v| v.to_str().ok());
        if basic != Some("Basic cm9ib3Q6czNjcmV0")
            || query.get("service").map(String::as_str) != Some("double")
            || query.get("scope").map(String::as_str) != Some("repository:simsvc:pull")
        {
            return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
        }
        count.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({"token": "good-token", "expires_in": 300})).into_response()
    }
    async fn tags(State((base, _)): State<Shared>, headers: HeaderMap) -> Response {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good-token") {
            return axum::Json(json!({"name": "simsvc", "tags": ["1.0"]})).into_response();
        }
        let challenge = format!(
            r#"Bearer realm="{base}/token",service="double",scope="repository:simsvc:pull""#
        );
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            axum::Json(
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            ),
        )
            .into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/token", axum::routing::get(token))
        .route("/v2/simsvc/tags/list", axum::routing::get(tags))
        .with_state((base.clone(), count.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_challenge_is_answered_with_an_auth_profiles_basic_credentials() {
    let (base, token_requests) = token_realm_double().await;
    let bot = TestBot::with_config(
        &["cloudprobe"],
        &format!(
            r#"
[auth_profiles.robot]
kind = "basic"
username = "robot"
password = "s3cret"

[auth_profiles.intruder]
kind = "basic"
username = "robot"
password = "guess"

[[registries]]
name = "double"
url = "{base}"
auth = "robot"

[[registries]]
name = "double-wrong"
url = "{base}"
auth = "intruder"

[[registries]]
name = "double-anonymous"
url = "{base}"
"#
        ),
    );
    for _ in 0..2 {
        let tags = bot.say("/registry tags double --repository simsvc").await;
        assert_eq!(tags.kind, ResponseKind::Ok, "{}", tags.text);
        assert_eq!(json(&tags.text)["tags"], json!(["1.0"]));
    }
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "the token is cached for its scope"
    );

    for registry in ["double-wrong", "double-anonymous"] {
        let refused = bot
            .say(&format!("/registry tags {registry} --repository simsvc"))
            .await;
        assert_eq!(refused.kind, ResponseKind::Error);
        assert!(
            refused
                .text
                .contains(&format!("registry {registry} refused authentication")),
            "{}",
            refused.text
        );
        assert_eq!(host_error(&refused.text)["code"], "auth");
    }
}
