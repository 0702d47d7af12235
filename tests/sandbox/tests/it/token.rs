//! Entra ID token endpoint and ARM bearer checks.

use std::time::Duration;

use deckhand_sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

use crate::support::sandbox;

async fn post_token(sb: &Sandbox, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        sb.authority_host(),
        sb.tenant_id()
    );
    let r = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn client_secret_grant_gives_a_token_arm_accepts() {
    let sb = sandbox().await;
    let (st, body) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret()),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 3000);
    assert!(body["ext_expires_in"].is_u64());
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let r = reqwest::Client::new()
        .get(format!(
            "{}/subscriptions/{}/resourcegroups?api-version=2025-04-01",
            sb.arm_endpoint(),
            sb.subscription_id()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let sb = sandbox().await;
    let (st, body) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", "nope"),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
}

#[tokio::test]
async fn federated_assertion_grant() {
    let sb = sandbox().await;
    let assertion = sb.federated_assertion("system:serviceaccount:deckhand:deckhand");
    let (st, body) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_assertion", &assertion),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["access_token"].is_string());
    let (st, body) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_assertion", "not-a-jwt"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn unknown_tenant_and_client_are_rejected() {
    let sb = sandbox().await;
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        sb.authority_host(),
        "00000000-1111-2222-3333-444444444444"
    );
    let r = reqwest::Client::new()
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sb.client_id()),
            ("client_secret", sb.client_secret()),
            ("scope", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (st, body) = post_token(
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "someone-else"),
            ("client_secret", "x"),
            ("scope", "x"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn expired_and_invalid_tokens_get_401_with_azure_error() {
    let sb = Sandbox::start(SandboxOptions {
        token_lifetime: Duration::from_millis(150),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let token = sb.issue_token();
    let url = format!(
        "{}/subscriptions/{}/resourcegroups?api-version=2025-04-01",
        sb.arm_endpoint(),
        sb.subscription_id()
    );
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(r.headers().get("x-ms-request-id").is_some());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "ExpiredAuthenticationToken");
    let r = c.get(&url).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
    let r = c.get(&url).send().await.unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "AuthenticationFailed");
}

#[tokio::test]
async fn v1_endpoint_with_resource() {
    let sb = sandbox().await;
    let url = format!("{}/{}/oauth2/token", sb.authority_host(), sb.tenant_id());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", sb.client_id()),
        ("client_secret", sb.client_secret()),
        ("resource", "https://management.azure.com/"),
    ];
    let r = reqwest::Client::new()
        .post(url.clone())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["expires_in"].is_string() && b["expires_on"].is_string(),
        "v1 answers numbers as strings: {b}"
    );
    assert_eq!(b["resource"], "https://management.azure.com/");
    let r = reqwest::Client::new()
        .post(url)
        .form(&form[..3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "v1 needs a resource");
}

#[tokio::test]
async fn expire_issued_tokens_makes_arm_answer_expired() {
    let sb = sandbox().await;
    let token = sb.issue_token();
    let url = format!(
        "{}/subscriptions/{}/resourcegroups?api-version=2025-04-01",
        sb.arm_endpoint(),
        sb.subscription_id()
    );
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    sb.expire_issued_tokens();
    let r = c.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "ExpiredAuthenticationToken");
    assert_eq!(
        c.get(&url)
            .bearer_auth(sb.issue_token())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "new tokens work"
    );
}

#[tokio::test]
async fn openid_configuration_points_at_the_token_endpoint() {
    let sb = sandbox().await;
    let url = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        sb.authority_host(),
        sb.tenant_id()
    );
    let b: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(
        b["token_endpoint"],
        format!(
            "{}/{}/oauth2/v2.0/token",
            sb.authority_host(),
            sb.tenant_id()
        )
    );
}
