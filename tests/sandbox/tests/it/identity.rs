//! azure_identity 0.21 (the credential code the bot uses) against the sandbox's token endpoint.

use std::sync::Arc;

use azure_core::auth::TokenCredential;
use azure_identity::{ClientSecretCredential, WorkloadIdentityCredential};

use crate::support::sandbox;

#[tokio::test]
async fn client_secret_credential_gets_a_token_arm_accepts() {
    let sb = sandbox().await;
    let cred = ClientSecretCredential::new(
        azure_core::new_http_client(),
        azure_core::Url::parse(&sb.authority_host()).unwrap(),
        sb.tenant_id().to_string(),
        sb.client_id().to_string(),
        sb.client_secret().to_string(),
    );
    let token = cred
        .get_token(&["https://management.azure.com/.default"])
        .await
        .expect("token");
    let r = reqwest::Client::new()
        .get(format!(
            "{}/subscriptions/{}/resourcegroups?api-version=2025-04-01",
            sb.arm_endpoint(),
            sb.subscription_id()
        ))
        .bearer_auth(token.token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bad = ClientSecretCredential::new(
        azure_core::new_http_client(),
        azure_core::Url::parse(&sb.authority_host()).unwrap(),
        sb.tenant_id().to_string(),
        sb.client_id().to_string(),
        "wrong".to_string(),
    );
    assert!(
        bad.get_token(&["https://management.azure.com/.default"])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn workload_identity_credential_with_federated_assertion() {
    let sb = sandbox().await;
    let http: Arc<dyn azure_core::HttpClient> = azure_core::new_http_client();
    let cred = WorkloadIdentityCredential::new(
        http,
        azure_core::Url::parse(&sb.authority_host()).unwrap(),
        sb.tenant_id().to_string(),
        sb.client_id().to_string(),
        sb.federated_assertion("system:serviceaccount:deckhand:deckhand"),
    );
    let token = cred
        .get_token(&["https://management.azure.com/.default"])
        .await
        .expect("token");
    assert!(!token.token.secret().is_empty());
}
