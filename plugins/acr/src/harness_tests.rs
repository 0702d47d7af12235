//! The acr plugin in process, against the SDK's scripted host, answered with Azure's own
//! examples (`../shared/azure-examples/acr`) and registry service answers.

use deckhand_plugin_sdk::abi::proto::Service;
use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError, arm_ok, azure_example};
use deckhand_plugin_sdk::{ErrorCode, HostError};
use serde_json::{Value, json};

use crate::Acr;

const RG: &str = "myResourceGroup";
const REGISTRIES: &str =
    "/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries";
const REGISTRY: &str =
    "/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry";

fn acr() -> PluginTest<Acr> {
    PluginTest::new(
        json!({"resource_group": RG, "default_cluster": "clustername1", "build_poll_ms": 10}),
    )
}

fn registry_call(op: &'static str) -> Expect {
    Expect::call(
        op,
        move |service| matches!(service, Service::Registry { request } if request.op == op),
    )
}

fn list_registries(test: &mut PluginTest<Acr>) {
    test.expect(
        Expect::arm("GET", REGISTRIES),
        arm_ok(azure_example("acr/RegistryListByResourceGroup.json", "200")),
    );
}

fn not_found(message: &str) -> Result<Value, HostError> {
    Err(HostError {
        upstream_code: Some("NAME_UNKNOWN".into()),
        status: Some(404),
        ..HostError::new("not_found", message)
    })
}

fn sent(test: &PluginTest<Acr>, index: usize) -> Value {
    match &test.served()[index] {
        Service::Arm { request } => request.body.clone().unwrap_or(Value::Null),
        Service::Registry { request } => serde_json::to_value(request).unwrap(),
        other => panic!("not an ARM or registry call: {other:?}"),
    }
}

#[test]
fn registries_show_login_server_sku_admin_and_state() {
    let mut test = acr();
    list_registries(&mut test);
    let reply = test.run("/acr registries").unwrap();
    assert_eq!(
        reply.text,
        "1 registry in resource group myResourceGroup:\n• myRegistry — myRegistry.azurecr-test.io, Standard, admin user off, Succeeded (myResourceGroup, westus)"
    );
    test.finish();
}

#[test]
fn create_checks_the_name_first_and_reports_why_it_is_taken() {
    let mut test = acr();
    test.expect(
        Expect::arm(
            "POST",
            "/providers/Microsoft.ContainerRegistry/checkNameAvailability",
        ),
        arm_ok(azure_example(
            "acr/RegistryCheckNameNotAvailable.json",
            "200",
        )),
    );
    let error = test.run("/acr create myRegistry").unwrap_err();
    let RunError::Plugin(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.option.as_deref(), Some("name"));
    assert!(
        error.message.contains(
            "registry name myRegistry cannot be used: AlreadyExists: The registry myRegistry is already in use."
        ),
        "{}",
        error.message
    );
    assert_eq!(
        sent(&test, 0),
        json!({"name": "myRegistry", "type": "Microsoft.ContainerRegistry/registries"})
    );
    test.finish();
}

#[test]
fn create_puts_the_registry_in_the_resource_groups_region() {
    let mut test = acr();
    test.expect(
        Expect::arm("POST", "/checkNameAvailability"),
        arm_ok(azure_example("acr/RegistryCheckNameAvailable.json", "200")),
    );
    test.expect(
        Expect::arm("GET", "/resourceGroups/myResourceGroup"),
        arm_ok(json!({"name": RG, "location": "westeurope"})),
    );
    test.expect(
        Expect::arm("PUT", "/registries/simsvc2"),
        arm_ok(json!({"name": "simsvc2", "properties": {"loginServer": "simsvc2.azurecr.io", "provisioningState": "Succeeded"}})),
    );
    let reply = test.run("/acr create simsvc2 --sku Premium").unwrap();
    assert!(
        reply
            .text
            .starts_with("Created registry simsvc2 (simsvc2.azurecr.io, Premium, admin user off, Succeeded) in myResourceGroup, westeurope."),
        "{}",
        reply.text
    );
    assert_eq!(
        sent(&test, 2),
        json!({"location": "westeurope", "sku": {"name": "Premium"}, "properties": {"adminUserEnabled": false}})
    );
    test.finish();
}

#[test]
fn bad_names_and_skus_never_reach_azure() {
    let test = acr();
    for line in [
        "/acr create abc",
        "/acr create in-tens",
        "/acr create intens --sku Gold",
        "/acr tags ../etc",
        "/acr delete-tag simsvc",
        "/acr delete-tag simsvc:.bad",
        "/acr build simsvc-mpt --context https://github.com/x/y.git",
    ] {
        let error = test.run(line).unwrap_err();
        assert!(matches!(error, RunError::Parse(_)), "{line}: {error}");
    }
    assert!(test.served().is_empty());
}

#[test]
fn repos_come_from_the_registry_catalog() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        registry_call("catalog"),
        Ok(json!({"op": "catalog", "repositories": ["simsvc", "simsvc-mpt"]})),
    );
    let reply = test.run("/acr repos").unwrap();
    assert_eq!(
        reply.text,
        "Registry myRegistry: 2 repositories\n• simsvc\n• simsvc-mpt"
    );
    test.finish();
}

fn tag(name: &str, created: &str) -> Value {
    json!({"name": name, "digest": format!("sha256:{}", name.repeat(20)), "created": created})
}

#[test]
fn tags_are_newest_first_with_digest_and_age_and_a_top() {
    let mut test = acr();
    let now = chrono::Utc::now();
    let at = |mins: i64| (now - chrono::Duration::minutes(mins)).to_rfc3339();
    test.expect(
        registry_call("tag_details"),
        Ok(json!({"op": "tag_details", "repository": "simsvc", "tags": [tag("b", &at(3)), tag("a", &at(120)), tag("c", &at(3000))]})),
    );
    let reply = test
        .run("/acr tags simsvc --registry intens --top 2")
        .unwrap();
    assert_eq!(
        reply.text,
        "intens/simsvc: 3 tags, newest first\n• b  sha256:bbbbbbbbbbbb  3m ago\n• a  sha256:aaaaaaaaaaaa  2h ago\n… and 1 older (--top 3 shows them)"
    );
    assert_eq!(sent(&test, 0)["registry"], "intens");
    test.finish();
}

#[test]
fn an_unknown_repository_names_the_near_ones() {
    let mut test = acr();
    test.expect(
        registry_call("tag_details"),
        not_found("repository simsvc-mtp not found in intens"),
    );
    test.expect(
        registry_call("catalog"),
        Ok(json!({"op": "catalog", "repositories": ["simsvc", "simsvc-mpt", "studio-go-runner"]})),
    );
    let RunError::Plugin(error) = test
        .run("/acr tags simsvc-mtp --registry intens")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        error.to_string(),
        "repository simsvc-mtp not found in intens (did you mean simsvc-mpt?) (option --repo) (code NAME_UNKNOWN)"
    );
    test.finish();
}

#[test]
fn delete_tag_checks_the_tag_then_deletes_it() {
    let mut test = acr();
    let details = json!({"op": "tag_details", "repository": "simsvc", "tags": [tag("latest", "2026-01-01T00:00:00Z"), tag("1.0", "2025-01-01T00:00:00Z")]});
    test.expect(registry_call("tag_details"), Ok(details.clone()));
    let RunError::Plugin(error) = test
        .run("/acr delete-tag simsvc:1.1 --registry intens")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(error.code, ErrorCode::NotFound);
    assert_eq!(
        error.message,
        "simsvc has no tag 1.1 in intens (did you mean 1.0?) (tags: latest, 1.0)"
    );
    test.expect(registry_call("tag_details"), Ok(details));
    test.expect(
        registry_call("delete_tag"),
        Ok(json!({"op": "tag_deleted", "repository": "simsvc", "tag": "1.0", "digest": "sha256:0123456789abcdef", "also_removed": []})),
    );
    let reply = test
        .run("/acr delete-tag simsvc:1.0 --registry intens")
        .unwrap();
    assert_eq!(
        reply.text,
        "Deleted tag simsvc:1.0 from intens (it pointed at sha256:0123456789ab). simsvc has 1 tag(s) left."
    );
    let deleted = sent(&test, 2);
    assert_eq!(
        (
            deleted["repository"].as_str(),
            deleted["reference"].as_str()
        ),
        (Some("simsvc"), Some("1.0"))
    );
    test.finish();
}

#[test]
fn import_follows_the_operation_and_reads_the_digest_back() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        Expect::arm("POST", "/registries/myRegistry/importImage"),
        arm_ok(Value::Null),
    );
    test.expect(
        registry_call("manifest"),
        Ok(json!({"op": "manifest", "repository": "hello", "reference": "1", "digest": "sha256:feedfacefeedface00", "media_type": "x"})),
    );
    let reply = test.run("/acr import hello-world hello:1").unwrap();
    assert_eq!(
        reply.text,
        "Imported docker.io/library/hello-world:latest into myRegistry.azurecr-test.io/hello:1 (digest sha256:feedfacefeed)."
    );
    assert_eq!(
        sent(&test, 1),
        json!({"source": {"registryUri": "docker.io", "sourceImage": "library/hello-world:latest"}, "targetTags": ["hello:1"], "mode": "NoForce"})
    );
    assert!(test.progress()[0].starts_with("Importing docker.io/library/hello-world:latest"));
    test.finish();
}

#[test]
fn import_refuses_a_source_that_is_no_image_before_azure() {
    let test = acr();
    let RunError::Plugin(error) = test
        .run("/acr import 'docker.io/Bad Name' hello:1")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(error.option.as_deref(), Some("source"));
    assert!(test.served().is_empty());
}

const KUBELET: &str = "5a0b6f1e-0c3d-4e2f-9a8b-7c6d5e4f3a2b";

/// Azure's cluster example with the kubelet identity a managed-identity cluster has.
fn cluster_with_kubelet() -> Value {
    let mut cluster = azure_example("aks/ManagedClustersGet.json", "200");
    cluster["properties"]["identityProfile"] =
        json!({"kubeletidentity": {"objectId": KUBELET, "clientId": "c", "resourceId": "r"}});
    cluster
}

#[test]
fn a_cluster_without_a_kubelet_identity_is_a_precondition() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(azure_example("aks/ManagedClustersGet.json", "200")),
    );
    let RunError::Plugin(error) = test.run("/acr attach").unwrap_err() else {
        panic!()
    };
    assert_eq!(error.code, ErrorCode::Precondition);
    assert!(
        error.message.contains("no kubelet managed identity"),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn attach_grants_acr_pull_once_and_is_idempotent() {
    let mut test = acr();
    let kubelet = KUBELET;
    let role_list = format!("{REGISTRY}/providers/Microsoft.Authorization/roleAssignments");
    list_registries(&mut test);
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(cluster_with_kubelet()),
    );
    test.expect(Expect::arm("GET", &role_list), arm_ok(json!({"value": []})));
    test.expect(
        Expect::call("PUT role assignment", |s| matches!(s, Service::Arm { request } if request.method == "PUT" && request.path.contains("/providers/Microsoft.Authorization/roleAssignments/"))),
        arm_ok(json!({})),
    );
    let reply = test.run("/acr attach").unwrap();
    assert!(
        reply
            .text
            .starts_with("Attached myRegistry to clustername1"),
        "{}",
        reply.text
    );
    let body = sent(&test, 3);
    assert_eq!(body["properties"]["principalId"], json!(kubelet));
    assert!(
        body["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with("7f951dda-4ed3-4680-a7ca-43fe172d538d")
    );

    // Again: the assignment is there, nothing is written.
    list_registries(&mut test);
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(cluster_with_kubelet()),
    );
    test.expect(
        Expect::arm("GET", &role_list),
        arm_ok(json!({"value": [{"name": "ra1", "properties": {"scope": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry", "principalId": kubelet, "roleDefinitionId": "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"}}]})),
    );
    let again = test.run("/acr attach").unwrap();
    assert_eq!(
        again.text,
        "clustername1 can already pull from myRegistry: its kubelet identity holds AcrPull (role assignment ra1); nothing to do."
    );
    test.finish();
}

#[test]
fn check_falls_back_to_pull_secrets_in_the_namespace() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        Expect::arm("GET", "/managedClusters/clustername1"),
        arm_ok(cluster_with_kubelet()),
    );
    test.expect(
        Expect::arm("GET", "/roleAssignments"),
        arm_ok(json!({"value": []})),
    );
    test.expect(
        Expect::kube("list", "Secret"),
        Ok(json!({"body": {"items": []}})),
    );
    let reply = test.run("/acr check --namespace simsvc").unwrap();
    assert!(
        reply
            .text
            .starts_with("No: clustername1 cannot pull from myRegistry.azurecr-test.io"),
        "{}",
        reply.text
    );
    assert!(
        reply
            .text
            .ends_with("`/acr attach --cluster clustername1` fixes that."),
        "{}",
        reply.text
    );
    test.finish();
}

fn run(status: &str, images: Value) -> Result<Value, HostError> {
    arm_ok(
        json!({"name": "ca1", "properties": {"runId": "ca1", "status": status, "outputImages": images}}),
    )
}

fn build_script(test: &mut PluginTest<Acr>, end: &str, log: &str) {
    list_registries(test);
    test.expect(
        Expect::arm("POST", "/registries/myRegistry/scheduleRun"),
        run("Queued", json!([])),
    );
    test.expect(Expect::arm("GET", "/runs/ca1"), run("Running", json!([])));
    test.expect(
        Expect::arm("POST", "/runs/ca1/listLogSasUrl"),
        arm_ok(azure_example("acr/RunsGetLogSasUrl.json", "200")),
    );
    let http = || {
        Expect::call(
            "log blob",
            |s| matches!(s, Service::Http { request } if request.url.contains("rawtext.log")),
        )
    };
    let first = log.lines().take(2).collect::<Vec<_>>().join("\n");
    test.expect(
        http(),
        Ok(json!({"status": 200, "headers": [], "body": first})),
    );
    test.expect(
        Expect::arm("GET", "/runs/ca1"),
        run(end, json!([{"repository": "simsvc-mpt", "tag": "1.2", "digest": "sha256:abcdef0123456789"}])),
    );
    test.expect(
        http(),
        Ok(json!({"status": 200, "headers": [], "body": log})),
    );
}

#[test]
fn build_streams_status_and_log_and_ends_with_the_digest() {
    let mut test = acr();
    let log = "Step 1/2 : FROM python:3.11-slim\nStep 2/2 : COPY . /app\nSuccessfully tagged x\nRun ID: ca1 was successful after 1s";
    build_script(&mut test, "Succeeded", log);
    let reply = test
        .run("/acr build simsvc-mpt:1.2 --context https://github.com/intens/simsvc.git#main:models --arg model=mpt.py")
        .unwrap();
    assert!(reply.text.starts_with("Built and pushed myRegistry.azurecr-test.io/simsvc-mpt:1.2 in run ca1 (sha256:abcdef012345,"), "{}", reply.text);
    assert!(
        reply
            .text
            .contains("Run ID: ca1 was successful after 1s\n```"),
        "{}",
        reply.text
    );
    let body = sent(&test, 1);
    assert_eq!(body["type"], "DockerBuildRequest");
    assert_eq!(
        body["sourceLocation"],
        "https://github.com/intens/simsvc.git#main:models"
    );
    assert_eq!(
        body["arguments"],
        json!([{"name": "model", "value": "mpt.py", "isSecret": false}])
    );
    let progress = test.progress();
    assert!(
        progress.iter().any(|p| p == "Run ca1: Running"),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p.contains("Step 1/2 : FROM python:3.11-slim")),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p.contains("Run ID: ca1 was successful")),
        "{progress:?}"
    );
    test.finish();
}

#[test]
fn a_failed_build_names_its_step_and_shows_the_log_tail() {
    let mut test = acr();
    let log = "Step 1/2 : FROM python:3.11-slim\nStep 2/2 : RUN pip install -r requirements.txt\nERROR: No matching distribution found for torch==9\nfailed to run step ID: build: exit status 1";
    build_script(&mut test, "Failed", log);
    let RunError::Plugin(error) = test
        .run("/acr build simsvc-mpt:1.2 --context https://github.com/intens/simsvc.git")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(error.upstream_code.as_deref(), Some("Failed"));
    assert!(error.message.starts_with("Build run ca1 of simsvc-mpt:1.2 ended Failed at Step 2/2 : RUN pip install -r requirements.txt. Log tail:"), "{}", error.message);
    assert!(
        error
            .message
            .contains("No matching distribution found for torch==9"),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn build_input_is_checked_before_anything_is_scheduled() {
    let test = acr();
    for (line, option) in [
        ("/acr build simsvc-mpt:1 --context ./models", "context"),
        (
            "/acr build simsvc-mpt:1 --context https://github.com/a/b.git --arg model",
            "arg",
        ),
    ] {
        let RunError::Plugin(error) = test.run(line).unwrap_err() else {
            panic!("{line}")
        };
        assert_eq!(error.option.as_deref(), Some(option), "{line}");
    }
    assert!(test.served().is_empty());
}

#[test]
fn credentials_are_only_for_the_caller() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        Expect::arm("POST", "/registries/myRegistry/listCredentials"),
        arm_ok(azure_example("acr/RegistryListCredentials.json", "200")),
    );
    let reply = test.run("/acr credentials").unwrap();
    assert!(reply.ephemeral);
    assert!(
        reply
            .text
            .contains("password: 00000000000000000000000000000000"),
        "{}",
        reply.text
    );
    test.finish();
}

#[test]
fn a_registry_that_is_not_there_is_named_with_the_ones_that_are() {
    let mut test = acr();
    list_registries(&mut test);
    let RunError::Plugin(error) = test
        .run("/acr credentials --registry myRegistyr")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        error.message,
        "no registry myRegistyr in resource group myResourceGroup (did you mean myRegistry?) (registries: myRegistry)"
    );
    test.finish();
}

fn arm_not_found(code: &str) -> Result<Value, HostError> {
    Err(HostError {
        upstream_code: Some(code.into()),
        status: Some(404),
        ..HostError::new("upstream", format!("{code}: not found"))
    })
}

fn token_prelude(test: &mut PluginTest<Acr>, existing_token: bool) {
    list_registries(test);
    test.expect(
        registry_call("catalog"),
        Ok(json!({"op": "catalog", "repositories": ["simsvc", "simsvc-mpt"]})),
    );
    let token = Expect::arm("GET", "/registries/myRegistry/tokens/ci-simsvc");
    if existing_token {
        test.expect(token, arm_ok(azure_example("acr/TokenCreate.json", "200")));
    } else {
        test.expect(token, arm_not_found("ResourceNotFound"));
    }
}

#[test]
fn a_token_is_scoped_to_its_repositories_and_its_password_only_for_the_caller() {
    let mut test = acr();
    token_prelude(&mut test, false);
    test.expect(
        Expect::arm("PUT", "/registries/myRegistry/scopeMaps/ci-simsvc"),
        arm_ok(azure_example("acr/ScopeMapCreate.json", "200")),
    );
    test.expect(
        Expect::arm("PUT", "/registries/myRegistry/tokens/ci-simsvc"),
        arm_ok(azure_example("acr/TokenCreate.json", "200")),
    );
    // The REST specs' RegistryGenerateCredentials.json answer (not in ../shared).
    test.expect(
        Expect::arm("POST", "/registries/myRegistry/generateCredentials"),
        arm_ok(json!({"username": "myToken", "passwords": [
            {"expiry": "2020-12-31T15:59:59.0707808Z", "name": "password1", "value": "0123456789abcdef0123456789abcdef"},
            {"expiry": "2020-12-31T15:59:59.0707808Z", "name": "password2", "value": "fedcba9876543210fedcba9876543210"},
        ]})),
    );
    let reply = test
        .run("/acr token create ci-simsvc --repos simsvc,simsvc-mpt --days 7")
        .unwrap();
    assert!(reply.ephemeral);
    assert!(
        reply
            .text
            .contains("password: 0123456789abcdef0123456789abcdef"),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("fedcba"), "only password1 is shown");
    assert!(
        reply.text.contains("pull on simsvc, simsvc-mpt"),
        "{}",
        reply.text
    );
    let map = sent(&test, 3);
    assert_eq!(
        map["properties"]["actions"],
        json!([
            "repositories/simsvc/content/read",
            "repositories/simsvc/metadata/read",
            "repositories/simsvc-mpt/content/read",
            "repositories/simsvc-mpt/metadata/read"
        ])
    );
    let token = sent(&test, 4);
    assert_eq!(
        token["properties"]["scopeMapId"],
        azure_example("acr/ScopeMapCreate.json", "200")["id"]
    );
    let generate = sent(&test, 5);
    assert_eq!(generate["name"], "password1");
    assert_eq!(
        generate["tokenId"],
        azure_example("acr/TokenCreate.json", "200")["id"]
    );
    let expiry =
        chrono::DateTime::parse_from_rfc3339(generate["expiry"].as_str().unwrap()).unwrap();
    let days = (expiry.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&days), "{days} hours");
    test.finish();
}

#[test]
fn a_pull_token_for_an_unknown_repository_is_refused_with_near_names_and_nothing_created() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        registry_call("catalog"),
        Ok(json!({"op": "catalog", "repositories": ["simsvc", "simsvc-mpt"]})),
    );
    let RunError::Plugin(error) = test
        .run("/acr token create ci-simsvc --repos simsvc-mtp")
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(error.code, ErrorCode::NotFound);
    assert!(
        error
            .message
            .contains("simsvc-mtp (did you mean simsvc-mpt?)")
            && error.message.contains("nothing was created"),
        "{}",
        error.message
    );
    test.finish();
}

#[test]
fn an_existing_token_keeps_its_password_unless_rotate_is_given() {
    let mut test = acr();
    token_prelude(&mut test, true);
    let RunError::Plugin(error) = test
        .run("/acr token create ci-simsvc --repos simsvc")
        .unwrap_err()
    else {
        panic!()
    };
    assert!(error.message.contains("--rotate"), "{}", error.message);
    test.finish();
}

#[test]
fn token_names_days_and_repositories_are_checked_before_any_call() {
    for (line, option) in [
        ("/acr token create ../x --repos simsvc", "name"),
        ("/acr token create ci_simsvc --repos simsvc", "name"),
        ("/acr token create tok --repos simsvc", "name"),
        ("/acr token create ci-simsvc --repos Simsvc", "repos"),
        ("/acr token create ci-simsvc --repos simsvc,a/../b", "repos"),
        (
            "/acr token create ci-simsvc --repos simsvc --days 0",
            "days",
        ),
        (
            "/acr token create ci-simsvc --repos simsvc --days 366",
            "days",
        ),
    ] {
        let test = acr();
        match test.run(line).unwrap_err() {
            // Rules of the manifest (the name) are the grammar's: refused before the plugin runs.
            RunError::Parse(error) => {
                assert_eq!(option, "name", "{line}: {error}");
                assert!(
                    error.to_string().contains("token names are 5-50"),
                    "{error}"
                );
            }
            RunError::Plugin(error) => {
                assert_eq!(error.option.as_deref(), Some(option), "{line}: {error:?}")
            }
            other => panic!("{line}: {other}"),
        }
        assert!(test.served().is_empty(), "{line}");
    }
}

/// A run still going at `build_wait_secs` is handed to a follow-up of the plugin's own
/// `/acr run ID --follow`, and the reply says its result will be posted.
#[test]
fn a_build_outliving_its_wait_is_handed_to_a_follow_up() {
    let mut test = PluginTest::<Acr>::new(
        json!({"resource_group": RG, "default_cluster": "clustername1", "build_poll_ms": 10, "build_wait_secs": 0}),
    );
    list_registries(&mut test);
    test.expect(
        Expect::arm("POST", "/registries/myRegistry/scheduleRun"),
        run("Queued", json!([])),
    );
    test.expect(Expect::arm("GET", "/runs/ca1"), run("Queued", json!([])));
    test.expect(
        Expect::call("follow-up", |s| {
            matches!(s, Service::FollowUp { line, after_secs: 1 } if line == "/acr run ca1 --registry myRegistry --follow")
        }),
        Ok(Value::Null),
    );
    let reply = test
        .run("/acr build simsvc-mpt:1.2 --context https://github.com/intens/simsvc.git")
        .unwrap();
    assert!(
        reply.text.starts_with("Run ca1 of simsvc-mpt:1.2 is still Queued after 0 s: it keeps running in ACR; its result will be posted here when it ends."),
        "{}",
        reply.text
    );
    test.finish();
}

/// `/acr run ID --follow` (what a follow-up runs) follows to the end like the build did.
#[test]
fn a_followed_run_ends_with_what_it_pushed() {
    let mut test = acr();
    list_registries(&mut test);
    test.expect(
        Expect::arm("GET", "/runs/ca1"),
        run(
            "Succeeded",
            json!([{"registry": "myregistry.azurecr.io", "repository": "simsvc-mpt", "tag": "1.2", "digest": "sha256:abcdef0123456789"}]),
        ),
    );
    test.expect(
        Expect::arm("POST", "/runs/ca1/listLogSasUrl"),
        arm_ok(azure_example("acr/RunsGetLogSasUrl.json", "200")),
    );
    test.expect(
        Expect::call(
            "log blob",
            |s| matches!(s, Service::Http { request } if request.url.contains("rawtext.log")),
        ),
        Ok(json!({"status": 200, "headers": [], "body": "Run ID: ca1 was successful after 1s"})),
    );
    let reply = test.run("/acr run ca1 --follow").unwrap();
    assert!(
        reply.text.starts_with(
            "Built and pushed myregistry.azurecr.io/simsvc-mpt:1.2 in run ca1 (sha256:abcdef012345,"
        ),
        "{}",
        reply.text
    );
    test.finish();
}

/// A finished build of a configured app's model image offers "Deploy" for the built tag.
#[test]
fn a_built_model_image_offers_its_deploy() {
    let mut test = PluginTest::<Acr>::new(
        json!({"resource_group": RG, "default_cluster": "clustername1", "build_poll_ms": 10, "deploy_apps": ["simsvc"]}),
    );
    let log = "Step 1/1 : FROM python:3.11-slim\nRun ID: ca1 was successful after 1s";
    build_script(&mut test, "Succeeded", log);
    let reply = test
        .run("/acr build simsvc-mpt:1.2 --context https://github.com/intens/simsvc.git")
        .unwrap();
    assert_eq!(reply.actions.len(), 1, "{reply:?}");
    assert_eq!(reply.actions[0].label, "Deploy simsvc mpt");
    assert_eq!(reply.actions[0].command, "/deploy simsvc mpt --tag 1.2");
    test.finish();
}
