//! Every example in `shared/azure-examples` that the sandbox serves: replay the example's request
//! and compare status code, the example's headers, and the body's fields and types.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Arm, Resp, sandbox, shape_mismatches};

const PATH_PARAMS: &[&str] = &[
    "subscriptionId",
    "resourceGroupName",
    "resourceName",
    "agentPoolName",
    "registryName",
    "containerGroupName",
    "containerName",
    "api-version",
    "zones",
    "webhookName",
    "scopeMapName",
    "tokenName",
];

struct Example {
    file: String,
    v: Value,
}

impl Example {
    fn load(file: &str) -> Self {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/azure-examples")
            .join(file);
        let text =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        Self {
            file: file.into(),
            v: serde_json::from_str(&text).expect("example is JSON"),
        }
    }
    fn p(&self, name: &str) -> String {
        match &self.v["parameters"][name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("{}: parameter {name} is {other}", self.file),
        }
    }
    fn api(&self) -> String {
        self.p("api-version")
    }
    /// The request body: the one object-valued parameter that is not a path parameter.
    fn body(&self) -> Value {
        let mut b = self.v["parameters"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, v)| v.is_object() && !PATH_PARAMS.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        // ACI examples pass `zones` beside the body; it belongs to the resource.
        if let Some(z) = self.v["parameters"].get("zones")
            && b.is_object()
        {
            b["zones"] = z.clone();
        }
        b
    }
    fn cluster_path(&self) -> String {
        format!(
            "/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.p("resourceGroupName"),
            self.p("resourceName")
        )
    }
    fn pool_path(&self) -> String {
        format!(
            "{}/agentPools/{}",
            self.cluster_path(),
            self.p("agentPoolName")
        )
    }
    fn registry_path(&self) -> String {
        format!(
            "/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
            self.p("resourceGroupName"),
            self.p("registryName")
        )
    }
    fn group_path(&self) -> String {
        format!(
            "/resourceGroups/{}/providers/Microsoft.ContainerInstance/containerGroups/{}",
            self.p("resourceGroupName"),
            self.p("containerGroupName")
        )
    }
    /// Sends `method path?api-version=...&extra` with the example's body.
    async fn send(&self, arm: &Arm, method: Method, path: &str, extra: &str) -> Resp {
        let body = self.body();
        let url = format!("{}?api-version={}{extra}", arm.url(path), self.api());
        arm.send(
            method,
            &url,
            if body.is_null() { None } else { Some(&body) },
        )
        .await
    }
    /// Asserts `r` matches the example's response for `status`.
    fn check(&self, status: u16, r: &Resp) {
        assert_eq!(r.status, status, "{}: status (body {})", self.file, r.body);
        let ex = &self.v["responses"][status.to_string()];
        assert!(
            !ex.is_null(),
            "{}: example has no {status} response",
            self.file
        );
        for name in ["x-ms-request-id", "x-ms-correlation-request-id"] {
            assert!(r.header(name).is_some(), "{}: missing {name}", self.file);
        }
        if let Some(h) = ex["headers"].as_object() {
            for k in h.keys() {
                assert!(
                    r.header(k).is_some(),
                    "{}: missing header {k} (have {:?})",
                    self.file,
                    r.headers.keys().collect::<Vec<_>>()
                );
            }
        }
        let mut out = Vec::new();
        if !ex["body"].is_null() {
            shape_mismatches(&ex["body"], &r.body, "$", &mut out);
        } else {
            assert!(
                r.body.is_null(),
                "{}: expected no body, got {}",
                self.file,
                r.body
            );
        }
        assert!(
            out.is_empty(),
            "{}: body shape differs:\n{}\nactual: {}",
            self.file,
            out.join("\n"),
            r.body
        );
    }
}

async fn rg(arm: &Arm, name: &str) {
    let r = arm
        .call(
            Method::PUT,
            &format!("/resourcegroups/{name}?api-version=2025-04-01"),
            Some(&json!({"location": "westeurope"})),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "{:?}", r.body);
}

async fn finish(arm: &Arm, r: &Resp) {
    if let Some(u) = r.header("azure-asyncoperation") {
        let st = arm.wait_async(&u).await;
        assert_eq!(st["status"], "Succeeded", "{st}");
    } else if let Some(u) = r.header("location") {
        let f = arm.wait_location(&u).await;
        assert!(f.status == 200 || f.status == 204, "{f:?}");
    }
}

#[tokio::test]
async fn resource_group_examples() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    let create = Example::load("resources/CreateResourceGroup.json");
    let path = format!("/resourcegroups/{}", create.p("resourceGroupName"));
    create.check(201, &create.send(&arm, Method::PUT, &path, "").await);
    create.check(200, &create.send(&arm, Method::PUT, &path, "").await);
    let get = Example::load("resources/ResourceGroups_Get.json");
    get.check(200, &get.send(&arm, Method::GET, &path, "").await);
    let del = Example::load("resources/ForceDeleteVMsInResourceGroup.json");
    let r = del
        .send(
            &arm,
            Method::DELETE,
            &path,
            "&forceDeletionTypes=Microsoft.Compute/virtualMachines",
        )
        .await;
    del.check(202, &r);
    finish(&arm, &r).await;
    assert_eq!(get.send(&arm, Method::GET, &path, "").await.status, 404);
}

#[tokio::test]
async fn managed_cluster_examples() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm, "rg1").await;
    let create = Example::load("aks/ManagedClustersCreate_Update.json");
    let r = create
        .send(&arm, Method::PUT, &create.cluster_path(), "")
        .await;
    create.check(201, &r);
    finish(&arm, &r).await;
    // Re-PUT of an existing cluster is an update: 200 with the Succeeded-shaped body.
    let r = create
        .send(&arm, Method::PUT, &create.cluster_path(), "")
        .await;
    create.check(200, &r);
    finish(&arm, &r).await;

    // GET: create a cluster from the GET example's own body (so its optional fields exist), then GET.
    let get = Example::load("aks/ManagedClustersGet.json");
    let mut as_request = get.v["responses"]["200"]["body"].clone();
    for k in ["id", "name", "type", "eTag"] {
        as_request.as_object_mut().unwrap().remove(k);
    }
    as_request["properties"]["agentPoolProfiles"][0]["mode"] = json!("System");
    as_request["properties"]["agentPoolProfiles"][0]["vmSize"] = json!("Standard_DS2_v2");
    let r = arm
        .call(
            Method::PUT,
            &format!("{}?api-version=2026-08-01", get.cluster_path()),
            Some(&as_request),
        )
        .await;
    finish(&arm, &r).await;
    get.check(
        200,
        &get.send(&arm, Method::GET, &get.cluster_path(), "").await,
    );
    for f in ["aks/ManagedClustersList.json"] {
        let ex = Example::load(f);
        ex.check(
            200,
            &ex.send(
                &arm,
                Method::GET,
                "/providers/Microsoft.ContainerService/managedClusters",
                "",
            )
            .await,
        );
    }
    let ex = Example::load("aks/ManagedClustersListByResourceGroup.json");
    ex.check(
        200,
        &ex.send(
            &arm,
            Method::GET,
            "/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters",
            "",
        )
        .await,
    );
    for f in [
        "aks/ManagedClustersListClusterUserCredentials.json",
        "aks/ManagedClustersListClusterAdminCredentials.json",
    ] {
        let ex = Example::load(f);
        let action = if f.contains("User") {
            "listClusterUserCredential"
        } else {
            "listClusterAdminCredential"
        };
        ex.check(
            200,
            &ex.send(
                &arm,
                Method::POST,
                &format!("{}/{action}", ex.cluster_path()),
                "",
            )
            .await,
        );
    }
    let up = Example::load("aks/ManagedClustersGetUpgradeProfile.json");
    up.check(
        200,
        &up.send(
            &arm,
            Method::GET,
            &format!("{}/upgradeProfiles/default", up.cluster_path()),
            "",
        )
        .await,
    );
    let stop = Example::load("aks/ManagedClustersStop.json");
    let r = stop
        .send(
            &arm,
            Method::POST,
            &format!("{}/stop", stop.cluster_path()),
            "",
        )
        .await;
    stop.check(202, &r);
    finish(&arm, &r).await;
    let start = Example::load("aks/ManagedClustersStart.json");
    let r = start
        .send(
            &arm,
            Method::POST,
            &format!("{}/start", start.cluster_path()),
            "",
        )
        .await;
    start.check(202, &r);
    finish(&arm, &r).await;
    // Abort: 204 with nothing in progress; 202 (both headers) cancelling a running operation.
    let abort = Example::load("aks/ManagedClustersAbortOperation.json");
    let abort_path = format!("{}/abort", abort.cluster_path());
    abort.check(204, &abort.send(&arm, Method::POST, &abort_path, "").await);
    let r = stop
        .send(
            &arm,
            Method::POST,
            &format!("{}/stop", stop.cluster_path()),
            "",
        )
        .await;
    let stop_op = r.header("azure-asyncoperation").unwrap();
    let r = abort.send(&arm, Method::POST, &abort_path, "").await;
    abort.check(202, &r);
    assert_eq!(arm.wait_async(&stop_op).await["status"], "Canceled");
    finish(&arm, &r).await;
    let got = get.send(&arm, Method::GET, &get.cluster_path(), "").await;
    assert_eq!(got.body["properties"]["provisioningState"], "Canceled");
    assert_eq!(
        got.body["properties"]["powerState"]["code"], "Running",
        "the stop never happened"
    );
    let del = Example::load("aks/ManagedClustersDelete.json");
    let r = del
        .send(&arm, Method::DELETE, &del.cluster_path(), "")
        .await;
    del.check(202, &r);
    finish(&arm, &r).await;
    del.check(
        204,
        &del.send(&arm, Method::DELETE, &del.cluster_path(), "")
            .await,
    );

    let gpu = Example::load("aks/ManagedClustersCreate_GPUMIG.json");
    let r = gpu.send(&arm, Method::PUT, &gpu.cluster_path(), "").await;
    gpu.check(201, &r);
    finish(&arm, &r).await;
}

#[tokio::test]
async fn agent_pool_examples() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm, "rg1").await;
    let base = Example::load("aks/ManagedClustersCreate_Update.json");
    let r = base.send(&arm, Method::PUT, &base.cluster_path(), "").await;
    finish(&arm, &r).await;
    for f in [
        "aks/AgentPoolsCreate_Update.json",
        "aks/AgentPoolsCreate_Spot.json",
        "aks/AgentPoolsCreate_ManagedGPU.json",
        "aks/AgentPoolsCreate_GPUMIG.json",
        "aks/AgentPoolsCreate_TypeVirtualMachines_Autoscale.json",
    ] {
        let ex = Example::load(f);
        let r = ex.send(&arm, Method::PUT, &ex.pool_path(), "").await;
        ex.check(201, &r);
        finish(&arm, &r).await;
        let del = Example::load("aks/AgentPoolsDelete.json");
        let r = del.send(&arm, Method::DELETE, &del.pool_path(), "").await;
        del.check(202, &r);
        finish(&arm, &r).await;
    }
    let create = Example::load("aks/AgentPoolsCreate_Update.json");
    let r = create
        .send(&arm, Method::PUT, &create.pool_path(), "")
        .await;
    finish(&arm, &r).await;
    let get = Example::load("aks/AgentPoolsGet.json");
    get.check(
        200,
        &get.send(&arm, Method::GET, &get.pool_path(), "").await,
    );
    let list = Example::load("aks/AgentPoolsList.json");
    list.check(
        200,
        &list
            .send(
                &arm,
                Method::GET,
                &format!("{}/agentPools", list.cluster_path()),
                "",
            )
            .await,
    );
    let upd = Example::load("aks/AgentPools_Update.json");
    let r = upd.send(&arm, Method::PUT, &upd.pool_path(), "").await;
    upd.check(200, &r);
    finish(&arm, &r).await;
    let stop = Example::load("aks/AgentPools_Stop.json");
    let r = stop.send(&arm, Method::PUT, &stop.pool_path(), "").await;
    stop.check(200, &r);
    assert_eq!(r.body["properties"]["provisioningState"], "Stopping");
    assert_eq!(r.body["properties"]["count"], 0);
    finish(&arm, &r).await;
    let start = Example::load("aks/AgentPools_Start.json");
    let r = start.send(&arm, Method::PUT, &start.pool_path(), "").await;
    start.check(200, &r);
    assert_eq!(r.body["properties"]["provisioningState"], "Starting");
    finish(&arm, &r).await;
    let del = Example::load("aks/AgentPoolsDelete.json");
    del.check(204, &{
        let r = del.send(&arm, Method::DELETE, &del.pool_path(), "").await;
        finish(&arm, &r).await;
        del.send(&arm, Method::DELETE, &del.pool_path(), "").await
    });
}

#[tokio::test]
async fn registry_examples() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm, "myResourceGroup").await;
    let create = Example::load("acr/RegistryCreate.json");
    let r = create
        .send(&arm, Method::PUT, &create.registry_path(), "")
        .await;
    create.check(201, &r);
    finish(&arm, &r).await;
    create.check(
        200,
        &create
            .send(&arm, Method::PUT, &create.registry_path(), "")
            .await,
    );
    let get = Example::load("acr/RegistryGet.json");
    get.check(
        200,
        &get.send(&arm, Method::GET, &get.registry_path(), "").await,
    );
    let list = Example::load("acr/RegistryList.json");
    list.check(
        200,
        &list
            .send(
                &arm,
                Method::GET,
                "/providers/Microsoft.ContainerRegistry/registries",
                "",
            )
            .await,
    );
    let by_rg = Example::load("acr/RegistryListByResourceGroup.json");
    by_rg.check(
        200,
        &by_rg
            .send(
                &arm,
                Method::GET,
                "/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries",
                "",
            )
            .await,
    );
    let upd = Example::load("acr/RegistryUpdate.json");
    let r = upd
        .send(&arm, Method::PATCH, &upd.registry_path(), "")
        .await;
    upd.check(200, &r);
    assert_eq!(
        r.body["properties"]["roleAssignmentMode"],
        "AbacRepositoryPermissions"
    );
    let creds = Example::load("acr/RegistryListCredentials.json");
    creds.check(
        200,
        &creds
            .send(
                &arm,
                Method::POST,
                &format!("{}/listCredentials", creds.registry_path()),
                "",
            )
            .await,
    );
    for f in [
        "acr/ImportImageByTag.json",
        "acr/ImportImageFromPublicRegistry.json",
    ] {
        let ex = Example::load(f);
        let r = ex
            .send(
                &arm,
                Method::POST,
                &format!("{}/importImage", ex.registry_path()),
                "",
            )
            .await;
        ex.check(202, &r);
    }
    let hook = Example::load("acr/WebhookCreate.json");
    let hook_path = format!(
        "{}/webhooks/{}",
        hook.registry_path(),
        hook.p("webhookName")
    );
    let r = hook.send(&arm, Method::PUT, &hook_path, "").await;
    hook.check(201, &r);
    assert!(
        r.body["properties"].get("serviceUri").is_none(),
        "write-only secrets are not returned"
    );
    finish(&arm, &r).await;
    let r = arm
        .call(
            Method::GET,
            &format!("{hook_path}?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    token_examples(&arm).await;
    let run = Example::load("acr/RegistriesScheduleRun.json");
    run.check(
        200,
        &run.send(
            &arm,
            Method::POST,
            &format!("{}/scheduleRun", run.registry_path()),
            "",
        )
        .await,
    );
    sb.settle().await;
    let del = Example::load("acr/RegistryDelete.json");
    let r = del
        .send(&arm, Method::DELETE, &del.registry_path(), "")
        .await;
    del.check(202, &r);
    finish(&arm, &r).await;
    del.check(
        204,
        &del.send(&arm, Method::DELETE, &del.registry_path(), "")
            .await,
    );
}

#[tokio::test]
async fn container_group_examples() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm, "demo").await;
    let create = Example::load("aci/ContainerGroupsCreateOrUpdate.json");
    let r = create
        .send(&arm, Method::PUT, &create.group_path(), "")
        .await;
    create.check(201, &r);
    assert!(r.header("azure-asyncoperation").is_some());
    finish(&arm, &r).await;
    create.check(200, &{
        let r = create
            .send(&arm, Method::PUT, &create.group_path(), "")
            .await;
        finish(&arm, &r).await;
        r
    });
    // GET: create the group from the GET example's body, then compare.
    let get = Example::load("aci/ContainerGroupsGet_Succeeded.json");
    let mut req = get.v["responses"]["200"]["body"].clone();
    for k in ["id", "name", "type"] {
        req.as_object_mut().unwrap().remove(k);
    }
    let r = arm
        .call(
            Method::PUT,
            &format!("{}?api-version=2025-09-01", get.group_path()),
            Some(&req),
        )
        .await;
    finish(&arm, &r).await;
    let got = get.send(&arm, Method::GET, &get.group_path(), "").await;
    get.check(200, &got);
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
    for (f, path) in [
        (
            "aci/ContainerGroupsList.json",
            "/providers/Microsoft.ContainerInstance/containerGroups".to_string(),
        ),
        (
            "aci/ContainerGroupsListByResourceGroup.json",
            "/resourceGroups/demo/providers/Microsoft.ContainerInstance/containerGroups"
                .to_string(),
        ),
    ] {
        let ex = Example::load(f);
        ex.check(200, &ex.send(&arm, Method::GET, &path, "").await);
    }
    let stop = Example::load("aci/ContainerGroupsStop.json");
    stop.check(
        204,
        &stop
            .send(
                &arm,
                Method::POST,
                &format!("{}/stop", stop.group_path()),
                "",
            )
            .await,
    );
    let start = Example::load("aci/ContainerGroupsStart.json");
    let r = start
        .send(
            &arm,
            Method::POST,
            &format!("{}/start", start.group_path()),
            "",
        )
        .await;
    start.check(202, &r);
    finish(&arm, &r).await;
    let restart = Example::load("aci/ContainerGroupsRestart.json");
    let r = restart
        .send(
            &arm,
            Method::POST,
            &format!("{}/restart", restart.group_path()),
            "",
        )
        .await;
    restart.check(204, &r);
    finish(&arm, &r).await;
    // Logs: the example's container is `container1`.
    let logs = Example::load("aci/ContainerListLogs.json");
    req["properties"]["containers"][0]["name"] = json!("container1");
    let r = arm
        .call(
            Method::PUT,
            &format!("{}?api-version=2025-09-01", logs.group_path()),
            Some(&req),
        )
        .await;
    finish(&arm, &r).await;
    let r = logs
        .send(
            &arm,
            Method::GET,
            &format!(
                "{}/containers/{}/logs",
                logs.group_path(),
                logs.p("containerName")
            ),
            "&tail=10",
        )
        .await;
    logs.check(200, &r);
    assert!(
        r.body["content"]
            .as_str()
            .unwrap()
            .contains("container container1")
    );
    let del = Example::load("aci/ContainerGroupsDelete.json");
    del.check(
        200,
        &del.send(&arm, Method::DELETE, &del.group_path(), "").await,
    );
    del.check(
        204,
        &del.send(&arm, Method::DELETE, &del.group_path(), "").await,
    );
}

#[tokio::test]
async fn failed_container_group_example_via_fault() {
    let sb = sandbox().await;
    let arm = Arm::new(&sb);
    rg(&arm, "demo").await;
    let failed = Example::load("aci/ContainerGroupsGet_Failed.json");
    let mut req = failed.v["responses"]["200"]["body"].clone();
    for k in ["id", "name", "type"] {
        req.as_object_mut().unwrap().remove(k);
    }
    sb.inject(
        deckhand_sandbox::FaultSpec::always(deckhand_sandbox::FaultKind::FailLro {
            code: "ContainerGroupDeploymentFailed".into(),
            message: "Failed to mount volume".into(),
        })
        .on_path("containerGroups/demo1")
        .times(1),
    );
    let r = arm
        .call(
            Method::PUT,
            &format!("{}?api-version=2025-09-01", failed.group_path()),
            Some(&req),
        )
        .await;
    let st = arm
        .wait_async(&r.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "ContainerGroupDeploymentFailed");
    let got = failed
        .send(&arm, Method::GET, &failed.group_path(), "")
        .await;
    failed.check(200, &got);
    assert_eq!(got.body["properties"]["provisioningState"], "Failed");
}

/// Scope map, token and `generateCredentials` (the last from the REST specs' example, kept in
/// `tests/it/fixtures/`): a token is created against its scope map, its passwords come only from
/// `generateCredentials` and never appear in the token's body.
async fn token_examples(arm: &Arm) {
    let map = Example::load("acr/ScopeMapCreate.json");
    let map_path = format!(
        "{}/scopeMaps/{}",
        map.registry_path(),
        map.p("scopeMapName")
    );
    let r = map.send(arm, Method::PUT, &map_path, "").await;
    map.check(201, &r);
    let map_id = r.body["id"].as_str().unwrap().to_owned();
    finish(arm, &r).await;
    let mut token = Example::load("acr/TokenCreate.json");
    // The example's ids carry the all-zero subscription; the sandbox's differs.
    token.v["parameters"]["tokenCreateParameters"]["properties"]["scopeMapId"] = json!(map_id);
    let token_path = format!("{}/tokens/{}", token.registry_path(), token.p("tokenName"));
    let r = token.send(arm, Method::PUT, &token_path, "").await;
    token.check(201, &r);
    let token_created = r.body.clone();
    finish(arm, &r).await;
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/fixtures/RegistryGenerateCredentials.json"),
    )
    .unwrap();
    let mut generate = Example {
        file: "fixtures/RegistryGenerateCredentials.json".into(),
        v: serde_json::from_str(&text).unwrap(),
    };
    generate.v["parameters"]["generateCredentialsParameters"]["tokenId"] =
        token_created["id"].clone();
    // The example's expiry (2020) is in the past; Azure refuses those.
    generate.v["parameters"]["generateCredentialsParameters"]["expiry"] =
        json!((chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339());
    let path = format!("{}/generateCredentials", generate.registry_path());
    let r = generate.send(arm, Method::POST, &path, "").await;
    generate.check(200, &r);
    let password = r.body["passwords"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(r.body["username"], "myToken");
    let read = arm
        .call(
            Method::GET,
            &format!("{token_path}?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(read.body["properties"]["provisioningState"], "Succeeded");
    assert!(!read.body.to_string().contains(&password), "{}", read.body);
    // A token for a scope map that does not exist is refused.
    let bad = arm
        .call(
            Method::PUT,
            &format!(
                "{}/tokens/otherToken?api-version=2025-11-01",
                token.registry_path()
            ),
            Some(&json!({"properties": {"scopeMapId": format!("{map_id}x")}})),
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
}
