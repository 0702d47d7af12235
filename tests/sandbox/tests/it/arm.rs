//! ARM behaviour beyond the examples: validation and error shapes, conflicts, LRO transitions,
//! credentials, the registry data plane and task runs.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Arm, sandbox};

const AKS: &str = "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters";
const API: &str = "api-version=2026-08-01";

async fn rg(arm: &Arm) {
    let r = arm
        .call(
            Method::PUT,
            "/resourcegroups/rg?api-version=2025-04-01",
            Some(&json!({"location": "westeurope"})),
        )
        .await;
    assert_eq!(r.status, 201);
}

fn cluster_body(pools: Value) -> Value {
    json!({"location": "westeurope", "properties": {"dnsPrefix": "c", "agentPoolProfiles": pools}})
}

#[tokio::test]
async fn missing_api_version_bad_names_and_not_found() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let r = arm.call(Method::GET, "/resourcegroups", None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    assert!(
        r.header("x-ms-request-id").is_some() && r.header("x-ms-correlation-request-id").is_some()
    );
    let r = arm
        .call(
            Method::GET,
            "/resourcegroups/nope?api-version=2025-04-01",
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );
    let r = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await;
    assert_eq!(r.body["error"]["code"], "ResourceGroupNotFound");
    rg(&arm).await;
    let r = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    assert!(
        r.header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{AKS}/bad!name?{API}"),
            Some(&cluster_body(json!([]))),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{AKS}/c1?{API}"),
            Some(&json!({"properties": {}})),
        )
        .await;
    assert_eq!(r.body["error"]["code"], "LocationRequired");
    let r = arm
        .call(
            Method::PUT,
            &format!("{AKS}/c1?{API}"),
            Some(&cluster_body(json!([{"name": "Users", "count": 1}]))),
        )
        .await;
    assert_eq!(r.status, 400, "pool names are lower-case");
    let r = arm
        .call(
            Method::PUT,
            &format!("{AKS}/c1?{API}"),
            Some(&cluster_body(
                json!([{"name": "sys", "count": 1, "vmSize": "Standard_Nope"}]),
            )),
        )
        .await;
    assert_eq!(r.status, 400, "unknown VM size");
    let r = arm.call(Method::PUT, "/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ab?api-version=2025-11-01",
        Some(&json!({"location": "westeurope", "sku": {"name": "Basic"}}))).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 and 50")
    );
    let sub = format!(
        "{}/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?api-version=2025-04-01",
        arm.base
    );
    let r = arm.send(Method::GET, &sub, None).await;
    assert_eq!(r.body["error"]["code"], "SubscriptionNotFound");
}

#[tokio::test]
async fn cluster_lro_transitions_conflicts_and_credentials() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm).await;
    let r = arm.call(Method::PUT, &format!("{AKS}/c1?{API}"),
        Some(&cluster_body(json!([{"name": "system", "count": 1, "vmSize": "Standard_D4s_v3", "mode": "System"}])))).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    let op = r.header("azure-asyncoperation").unwrap();
    assert!(r.header("retry-after").is_some());
    let st = arm.send(Method::GET, &op, None).await;
    assert_eq!(st.body["status"], "InProgress");
    assert!(st.body["startTime"].is_string());
    // A conflicting operation while the create runs.
    let r2 = arm
        .call(
            Method::PUT,
            &format!("{AKS}/c1/agentPools/users?{API}"),
            Some(&json!({"properties": {"count": 1}})),
        )
        .await;
    assert_eq!(r2.status, 409);
    assert_eq!(r2.body["error"]["code"], "OperationNotAllowed");
    assert!(
        r2.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in progress create managed cluster operation")
    );
    let fin = arm.wait_async(&op).await;
    assert_eq!(fin["status"], "Succeeded");
    assert!(fin["endTime"].is_string());
    let got = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await;
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(got.body["properties"]["powerState"]["code"], "Running");

    // System pool cannot go to 0.
    let r = arm
        .call(
            Method::PUT,
            &format!("{AKS}/c1/agentPools/system?{API}"),
            Some(&json!({"properties": {"count": 0, "mode": "System"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("system pool")
    );
    // Autoscaler bounds on create.
    let r = arm.call(Method::PUT, &format!("{AKS}/c1/agentPools/gpu?{API}"),
        Some(&json!({"properties": {"count": 0, "vmSize": "Standard_NC6s_v3", "enableAutoScaling": true, "minCount": 0, "maxCount": 4}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    let r = arm.call(Method::PUT, &format!("{AKS}/c1/agentPools/bad?{API}"),
        Some(&json!({"properties": {"count": 9, "enableAutoScaling": true, "minCount": 0, "maxCount": 4}}))).await;
    assert_eq!(r.status, 400);

    // Credentials: a base64 kubeconfig pointing at this cluster's API.
    let r = arm
        .call(
            Method::POST,
            &format!("{AKS}/c1/listClusterUserCredential?{API}"),
            None,
        )
        .await;
    let yaml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(r.body["kubeconfigs"][0]["value"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        yaml.contains(&format!("server: {}/k8s/rg-c1", sb.base_url())),
        "{yaml}"
    );

    // Stop: 202 with both headers; Location answers 202 then 204; power state Stopped; the
    // Kubernetes API is down while stopped.
    let r = arm
        .call(Method::POST, &format!("{AKS}/c1/stop?{API}"), None)
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("azure-asyncoperation").is_some());
    let loc = r.header("location").unwrap();
    assert_eq!(arm.send(Method::GET, &loc, None).await.status, 202);
    assert_eq!(arm.wait_location(&loc).await.status, 204);
    let got = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await;
    assert_eq!(got.body["properties"]["powerState"]["code"], "Stopped");
    let kube = reqwest::Client::new()
        .get(format!("{}/k8s/rg-c1/version", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(kube.status().as_u16(), 401, "no token");

    let mc = arm
        .call(
            Method::GET,
            "/resourcegroups/MC_rg_c1_westeurope?api-version=2025-04-01",
            None,
        )
        .await;
    assert_eq!(mc.status, 200, "AKS creates the node resource group");
    // Delete then 404.
    let r = arm
        .call(Method::DELETE, &format!("{AKS}/c1?{API}"), None)
        .await;
    arm.wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(
        arm.call(Method::GET, &format!("{AKS}/c1?{API}"), None)
            .await
            .status,
        404
    );
    let mc = arm
        .call(
            Method::GET,
            "/resourcegroups/MC_rg_c1_westeurope?api-version=2025-04-01",
            None,
        )
        .await;
    assert_eq!(
        mc.status, 404,
        "the node resource group goes with the cluster"
    );
}

#[tokio::test]
async fn registry_data_plane_with_token_exchange_and_admin_user() {
    let sb = sandbox().await;
    let e = sb.seed_realistic_estate().await.unwrap();
    let http = reqwest::Client::new();
    let reg = sb.registry_url(&e.registry);
    // Anonymous: challenge.
    let r = http.get(format!("{reg}/v2/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let chal = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        chal.contains("service=\"intens.azurecr.io\"") && chal.contains("/oauth2/token"),
        "{chal}"
    );
    // AAD token -> refresh token -> access token.
    let aad = sb.issue_token();
    let rt: Value = http
        .post(format!("{reg}/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", "intens.azurecr.io"),
            ("access_token", &aad),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rt = rt["refresh_token"].as_str().unwrap().to_string();
    let at: Value = http
        .post(format!("{reg}/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", "intens.azurecr.io"),
            ("scope", "registry:catalog:*"),
            ("refresh_token", &rt),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = at["access_token"].as_str().unwrap().to_string();
    let cat: Value = http
        .get(format!("{reg}/v2/_catalog"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cat["repositories"],
        json!(["simsvc", "simsvc-mpt", "studio-go-runner"])
    );
    let tags: Value = http
        .get(format!("{reg}/v2/simsvc/tags/list"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["1.0", "latest"]));
    let m = http
        .get(format!("{reg}/v2/simsvc-mpt/manifests/latest"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status().as_u16(), 200);
    assert_eq!(
        m.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digest = m.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let body = m.bytes().await.unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        format!("sha256:{hex}"),
        "digest is the manifest's sha256"
    );
    let by_digest = http
        .head(format!("{reg}/v2/simsvc-mpt/manifests/{digest}"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.status().as_u16(), 200);
    let missing: Value = http
        .get(format!("{reg}/v2/nope/tags/list"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["errors"][0]["code"], "NAME_UNKNOWN");
    // Admin user (basic auth) from listCredentials.
    let arm = Arm::new(&sb);
    let creds = arm.call(Method::POST, "/resourceGroups/pangeo/providers/Microsoft.ContainerRegistry/registries/intens/listCredentials?api-version=2025-11-01", None).await;
    let (user, pass) = (
        creds.body["username"].as_str().unwrap(),
        creds.body["passwords"][0]["value"].as_str().unwrap(),
    );
    let r = http
        .get(format!("{reg}/v2/_catalog"))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!("{reg}/v2/_catalog"))
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn schedule_run_builds_an_image_and_import_copies_one() {
    let sb = sandbox().await;
    sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let reg = "/resourceGroups/pangeo/providers/Microsoft.ContainerRegistry/registries/intens";
    let r = arm.call(Method::POST, &format!("{reg}/scheduleRun?api-version=2019-04-01"), Some(&json!({
        "type": "DockerBuildRequest", "imageNames": ["simsvc-gpt:v1"], "isPushEnabled": true,
        "sourceLocation": "https://example.invalid/src.tar.gz", "dockerFilePath": "Dockerfile", "platform": {"os": "Linux"}}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.body["properties"]["runId"].as_str().unwrap().to_string();
    assert_eq!(r.body["properties"]["status"], "Queued");
    sb.settle().await;
    let mut status = String::new();
    for _ in 0..100 {
        let run = arm
            .call(
                Method::GET,
                &format!("{reg}/runs/{run_id}?api-version=2019-04-01"),
                None,
            )
            .await;
        status = run.body["properties"]["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "Succeeded" || status == "Failed" {
            assert_eq!(
                run.body["properties"]["outputImages"][0]["repository"],
                "simsvc-gpt"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "Succeeded");
    let link = arm
        .call(
            Method::POST,
            &format!("{reg}/runs/{run_id}/listLogSasUrl?api-version=2019-04-01"),
            None,
        )
        .await;
    let log = reqwest::get(link.body["logLink"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("Successfully tagged intens.azurecr.io/simsvc-gpt:v1"),
        "{log}"
    );

    let r = arm.call(Method::POST, &format!("{reg}/importImage?api-version=2025-11-01"), Some(&json!({
        "source": {"registryUri": "docker.io", "sourceImage": "library/rabbitmq:3.13"}, "targetTags": ["rabbitmq:3.13"], "mode": "Force"}))).await;
    assert_eq!(r.status, 202);
    assert_eq!(
        arm.wait_location(&r.header("location").unwrap())
            .await
            .status,
        204
    );
    let creds = arm
        .call(
            Method::POST,
            &format!("{reg}/listCredentials?api-version=2025-11-01"),
            None,
        )
        .await;
    let cat: Value = reqwest::Client::new()
        .get(format!("{}/v2/_catalog", sb.registry_url("intens")))
        .basic_auth(
            "intens",
            Some(creds.body["passwords"][1]["value"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let repos = cat["repositories"].as_array().unwrap();
    assert!(
        repos.contains(&json!("rabbitmq")) && repos.contains(&json!("simsvc-gpt")),
        "{cat}"
    );
    // Admin user disabled: credential operations are refused as Azure does.
    let r = arm
        .call(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(&json!({"properties": {"adminUserEnabled": false}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = arm
        .call(
            Method::POST,
            &format!("{reg}/listCredentials?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("UnAuthorizedForCredentialOperations"))
    );
}

#[tokio::test]
async fn resource_group_delete_removes_contents() {
    let sb = sandbox().await;
    sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let r = arm
        .call(
            Method::DELETE,
            "/resourcegroups/pangeo?api-version=2025-04-01",
            None,
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("retry-after").is_some());
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains("/operationresults/") && loc.ends_with("api-version=2018-08-01"),
        "{loc}"
    );
    let g = arm
        .call(
            Method::GET,
            "/resourcegroups/pangeo?api-version=2025-04-01",
            None,
        )
        .await;
    assert_eq!(g.body["properties"]["provisioningState"], "Deleting");
    let r = arm
        .call(Method::PUT, "/resourceGroups/pangeo/providers/Microsoft.ContainerRegistry/registries/other1?api-version=2025-11-01",
            Some(&json!({"location": "westeurope", "sku": {"name": "Basic"}})))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("ResourceGroupBeingDeleted"))
    );
    assert_eq!(arm.wait_location(&loc).await.status, 204);
    assert_eq!(
        arm.call(
            Method::GET,
            "/resourcegroups/pangeo?api-version=2025-04-01",
            None
        )
        .await
        .status,
        404
    );
    let list = arm
        .call(
            Method::GET,
            "/providers/Microsoft.ContainerService/managedClusters?api-version=2026-08-01",
            None,
        )
        .await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 0);
    assert!(sb.kubeconfig("pangeo", "pangeoCluster").is_err());
}

#[tokio::test]
async fn etags_give_optimistic_concurrency() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm).await;
    let url = arm.url(&format!("{AKS}/c1?{API}"));
    let body = cluster_body(
        json!([{"name": "system", "count": 1, "vmSize": "Standard_D4s_v3", "mode": "System"}]),
    );
    let send = |m: Method, h: Option<(&'static str, String)>| {
        let mut rb = arm
            .http
            .request(m, &url)
            .bearer_auth(&arm.token)
            .json(&body);
        if let Some((k, v)) = h {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let r = send(Method::PUT, Some(("If-Match", "abc".into())))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412, "If-Match on a missing resource");
    let r = send(Method::PUT, None).await.unwrap();
    let op = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string();
    arm.wait_async(&op).await;
    let etag = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await
        .body["eTag"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(Method::PUT, Some(("If-None-Match", "*".into())))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let r = send(Method::PUT, Some(("If-Match", "stale".into())))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "PreconditionFailed");
    let r = send(Method::PUT, Some(("If-Match", etag.clone())))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let op = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string();
    arm.wait_async(&op).await;
    let after = arm
        .call(Method::GET, &format!("{AKS}/c1?{API}"), None)
        .await
        .body;
    assert_ne!(
        after["eTag"].as_str().unwrap(),
        etag,
        "an update changes the eTag"
    );
}

#[tokio::test]
async fn subscription_and_registry_name_checks() {
    let sb = sandbox().await;
    sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let s = arm.call(Method::GET, "?api-version=2022-12-01", None).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["subscriptionId"], sb.subscription_id());
    assert_eq!(s.body["state"], "Enabled");
    let list = arm
        .send(
            Method::GET,
            &format!("{}/subscriptions?api-version=2022-12-01", arm.base),
            None,
        )
        .await;
    assert_eq!(list.body["value"][0]["tenantId"], sb.tenant_id());
    let check =
        |name: &str| json!({"name": name, "type": "Microsoft.ContainerRegistry/registries"});
    let url = "/providers/Microsoft.ContainerRegistry/checkNameAvailability?api-version=2025-11-01";
    assert_eq!(
        arm.call(Method::POST, url, Some(&check("intens")))
            .await
            .body["reason"],
        "AlreadyExists"
    );
    assert_eq!(
        arm.call(Method::POST, url, Some(&check("a-b"))).await.body["reason"],
        "Invalid"
    );
    assert_eq!(
        arm.call(Method::POST, url, Some(&check("freshname")))
            .await
            .body["nameAvailable"],
        true
    );
}

#[tokio::test]
async fn role_assignments_at_any_scope() {
    let sb = sandbox().await;
    sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let defs = arm.call(Method::GET, "/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20'AcrPull'", None).await;
    assert_eq!(defs.body["value"].as_array().unwrap().len(), 1);
    let acr_pull = defs.body["value"][0]["id"].as_str().unwrap().to_string();
    let scope = "/resourceGroups/pangeo/providers/Microsoft.Authorization/roleAssignments";
    let principal = "11111111-2222-3333-4444-555555555555";
    let body = json!({"properties": {"roleDefinitionId": acr_pull, "principalId": principal}});
    let id1 = "6f1a2b3c-0000-4000-8000-000000000001";
    let r = arm
        .call(
            Method::PUT,
            &format!("{scope}/{id1}?api-version=2022-04-01"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["properties"]["scope"],
        format!(
            "/subscriptions/{}/resourceGroups/pangeo",
            sb.subscription_id()
        )
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{scope}/6f1a2b3c-0000-4000-8000-000000000002?api-version=2022-04-01"),
            Some(&body),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists"))
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{scope}/not-a-guid?api-version=2022-04-01"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 400);
    let bad = json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-0000-0000-000000000000", "principalId": principal}});
    let r = arm
        .call(
            Method::PUT,
            &format!("{scope}/6f1a2b3c-0000-4000-8000-000000000003?api-version=2022-04-01"),
            Some(&bad),
        )
        .await;
    assert_eq!(r.body["error"]["code"], "RoleDefinitionDoesNotExist");
    let list = arm
        .call(
            Method::GET,
            &format!("{scope}?api-version=2022-04-01&$filter=principalId%20eq%20'{principal}'"),
            None,
        )
        .await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    let r = arm.call(Method::PUT, &format!("/resourceGroups/nope/providers/Microsoft.Authorization/roleAssignments/{id1}?api-version=2022-04-01"), Some(&body)).await;
    assert_eq!(r.body["error"]["code"], "ResourceGroupNotFound");
    assert_eq!(
        arm.call(
            Method::DELETE,
            &format!("{scope}/{id1}?api-version=2022-04-01"),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        arm.call(
            Method::GET,
            &format!("{scope}/{id1}?api-version=2022-04-01"),
            None
        )
        .await
        .status,
        404
    );
    // The seeded cluster's kubelet identity holds AcrPull on intens.
    let c = arm.call(Method::GET, "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster?api-version=2026-08-01", None).await;
    let kubelet = c.body["properties"]["identityProfile"]["kubeletidentity"]["objectId"]
        .as_str()
        .unwrap()
        .to_string();
    let on_acr = arm.call(Method::GET, "/resourceGroups/pangeo/providers/Microsoft.ContainerRegistry/registries/intens/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01", None).await;
    assert_eq!(
        on_acr.body["value"][0]["properties"]["principalId"],
        kubelet
    );
}

/// Seed 000's pain: the link ACI leaves on its subnet outlives the virtual nodes, and Azure
/// refuses to delete the subnet or its vnet until the link is deleted.
#[tokio::test]
async fn the_aci_subnet_link_blocks_deleting_the_network_until_it_is_removed() {
    let sb = sandbox().await;
    sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let vnet = "/resourceGroups/pangeo/providers/Microsoft.Network/virtualNetworks/pangeo-vnet";
    let subnet = format!("{vnet}/subnets/virtual-node-aci");
    let net = "api-version=2026-03-01";
    let links = arm
        .call(
            Method::GET,
            &format!("{subnet}/serviceAssociationLinks?{net}"),
            None,
        )
        .await;
    assert_eq!(links.status, 200, "{:?}", links.body);
    assert_eq!(links.body["value"][0]["name"], "acisal");
    assert_eq!(
        links.body["value"][0]["properties"]["linkedResourceType"],
        "Microsoft.ContainerInstance/containerGroups"
    );
    // Virtual nodes off: the link stays.
    let cluster =
        "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster";
    let mut body = arm
        .call(Method::GET, &format!("{cluster}?{API}"), None)
        .await
        .body;
    body["properties"]["addonProfiles"]["aciConnectorLinux"]["enabled"] = json!(false);
    let put = arm
        .call(Method::PUT, &format!("{cluster}?{API}"), Some(&body))
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    arm.wait_async(&put.header("azure-asyncoperation").unwrap())
        .await;
    for path in [subnet.clone(), vnet.to_owned()] {
        let refused = arm
            .call(Method::DELETE, &format!("{path}?{net}"), None)
            .await;
        assert_eq!(refused.status, 400, "{path}");
        assert_eq!(refused.body["error"]["code"], "InUseSubnetCannotBeDeleted");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("serviceAssociationLinks/acisal")
        );
    }
    let removed = arm
        .call(
            Method::DELETE,
            &format!("{subnet}/serviceAssociationLinks/acisal?{net}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 200);
    let subnet_gone = arm
        .call(Method::DELETE, &format!("{subnet}?{net}"), None)
        .await;
    assert_eq!(subnet_gone.status, 200);
    let vnet_gone = arm
        .call(Method::DELETE, &format!("{vnet}?{net}"), None)
        .await;
    assert_eq!(vnet_gone.status, 200);
}

/// A repository token made over ARM logs in to the registry with the password
/// `generateCredentials` answered; a wrong password and a disabled token do not.
#[tokio::test]
async fn a_generated_token_password_logs_in_to_the_registry() {
    let sb = sandbox().await;
    let e = sb.seed_realistic_estate().await.unwrap();
    let arm = Arm::new(&sb);
    let registry = format!(
        "/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
        e.resource_group, e.registry
    );
    let api = "?api-version=2025-11-01";
    let map = arm
        .call(
            Method::PUT,
            &format!("{registry}/scopeMaps/ci-simsvc{api}"),
            Some(&json!({"properties": {"actions": ["repositories/simsvc/content/read"]}})),
        )
        .await;
    assert_eq!(map.status, 201, "{:?}", map.body);
    let token_path = format!("{registry}/tokens/ci-simsvc{api}");
    let token = arm
        .call(
            Method::PUT,
            &token_path,
            Some(&json!({"properties": {"scopeMapId": map.body["id"]}})),
        )
        .await;
    assert_eq!(token.status, 201, "{:?}", token.body);
    let generated = arm
        .call(
            Method::POST,
            &format!("{registry}/generateCredentials{api}"),
            Some(&json!({"tokenId": token.body["id"], "name": "password1"})),
        )
        .await;
    assert_eq!(generated.status, 200, "{:?}", generated.body);
    let passwords = generated.body["passwords"].as_array().unwrap();
    assert_eq!(passwords.len(), 1, "only the named password is generated");
    let password = passwords[0]["value"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let login = |password: String| {
        let http = http.clone();
        let url = format!("{}/oauth2/token", sb.registry_url(&e.registry));
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("service", "intens.azurecr.io"),
                    ("scope", "repository:simsvc:pull"),
                    ("username", "ci-simsvc"),
                    ("password", &password),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(login(password.clone()).await, 200);
    assert_eq!(login(format!("{password}x")).await, 401);
    let disabled = arm
        .call(
            Method::PUT,
            &token_path,
            Some(&json!({"properties": {"scopeMapId": map.body["id"], "status": "disabled"}})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    assert_eq!(
        login(password).await,
        401,
        "a disabled token does not log in"
    );
}
