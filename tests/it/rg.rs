//! `/rg …` (the aks plugin's resource groups, through the host's typed `azure_mgmt_resources`
//! service) against the seeded sandbox: resource group `pangeo` (westeurope) with cluster
//! pangeoCluster, registry intens and the cluster's node resource group
//! `MC_pangeo_pangeoCluster_westeurope`. Each test asserts the sandbox's state and the requests
//! it saw, not only the reply.

use std::time::{Duration, Instant};

use deckhand::router::{Response, ResponseKind};
use deckhand_it::aks::{arm_get, start_aks};
use deckhand_it::cloud::CloudBot;
use deckhand_it::user;
use serde_json::Value;

const LRO: Duration = Duration::from_millis(200);
const NODE_GROUP: &str = "MC_pangeo_pangeoCluster_westeurope";
const APPROVAL: &str =
    "\n[[confirm.approval]]\ncommands = [\"rg.delete\"]\napprover_roles = [\"ops-lead\"]\n";

fn ok(reply: &Response) {
    assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
}

fn err(reply: &Response) {
    assert_eq!(reply.kind, ResponseKind::Error, "{}", reply.text);
}

/// Requests the sandbox served with this method whose path ends with `end` (case-insensitive).
fn served(cloud: &CloudBot, method: &str, end: &str) -> usize {
    let end = end.to_ascii_lowercase();
    cloud
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.to_ascii_lowercase().ends_with(&end))
        .count()
}

/// The names of the resources the sandbox holds in `group`.
async fn sandbox_resources(cloud: &CloudBot, group: &str) -> Vec<String> {
    let body = arm_get(cloud, &format!("/resourceGroups/{group}/resources")).await;
    body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_show_describe_the_groups_with_the_node_resource_group_named() {
    let cloud = start_aks(LRO, "").await;
    let list = cloud.bot.say("/rg list").await;
    ok(&list);
    assert!(
        list.text.contains("• pangeo (westeurope): Succeeded"),
        "{}",
        list.text
    );
    assert!(
        list.text.contains(&format!(
            "• {NODE_GROUP} (westeurope): Succeeded — AKS node resource group of cluster pangeoCluster (managed by AKS)"
        )),
        "{}",
        list.text
    );
    let groups = arm_get(&cloud, "/resourceGroups").await;
    let count = groups["value"].as_array().map_or(0, Vec::len);
    assert!(
        list.text.starts_with(&format!("{count} resource groups:")),
        "{}",
        list.text
    );

    let show = cloud.bot.say("/rg show pangeo").await;
    ok(&show);
    let names = sandbox_resources(&cloud, "pangeo").await;
    assert!(names.contains(&"pangeoCluster".to_owned()), "{names:?}");
    assert!(
        show.text.contains(&format!("{} resources:", names.len())),
        "{}",
        show.text
    );
    assert!(
        show.text
            .contains("• AKS clusters (1): pangeoCluster (westeurope, Succeeded)"),
        "{}",
        show.text
    );
    assert!(
        show.text.contains(&format!(
            "• AKS node resource group of pangeoCluster: {NODE_GROUP} (managed by AKS, deleted with the cluster)"
        )),
        "{}",
        show.text
    );
    // Through the typed client: the generic resource list with provisioning states.
    let listed = cloud
        .sandbox
        .requests()
        .into_iter()
        .find(|r| {
            r.path
                .to_ascii_lowercase()
                .ends_with("/resourcegroups/pangeo/resources")
        })
        .expect("the resources of pangeo were listed");
    assert!(
        listed.query.contains("expand=provisioningState"),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_makes_the_group_with_tags_and_checks_the_location_first() {
    let cloud = start_aks(LRO, "").await;
    let created = cloud
        .bot
        .say("/rg create lab-1 --location westeurope --tag env=lab,owner=ml")
        .await;
    ok(&created);
    assert!(
        created.text.starts_with(
            "✓ Resource group created: lab-1 (westeurope): Succeeded, tags env=lab, owner=ml"
        ),
        "{}",
        created.text
    );
    let group = arm_get(&cloud, "/resourceGroups/lab-1").await;
    assert_eq!(group["location"], "westeurope", "{group}");
    assert_eq!(group["tags"]["env"], "lab", "{group}");
    assert_eq!(group["tags"]["owner"], "ml", "{group}");

    let updated = cloud
        .bot
        .say("/rg create lab-1 --location westeurope --tag env=prod")
        .await;
    ok(&updated);
    assert!(
        updated.text.starts_with("✓ Resource group updated: lab-1"),
        "{}",
        updated.text
    );
    assert_eq!(
        arm_get(&cloud, "/resourceGroups/lab-1").await["tags"]["env"],
        "prod"
    );

    // A region the subscription does not offer: refused from GET /locations, nothing written.
    cloud.sandbox.clear_requests();
    let bad = cloud.bot.say("/rg create lab-2 --location marsnorth").await;
    err(&bad);
    assert!(
        bad.text
            .contains("marsnorth is not a location of this subscription; it offers eastus"),
        "{}",
        bad.text
    );
    assert_eq!(served(&cloud, "GET", "/locations"), 1);
    assert_eq!(served(&cloud, "PUT", "/resourceGroups/lab-2"), 0);
    assert!(arm_get(&cloud, "/resourceGroups/lab-2").await.is_null());

    // Bad tags are refused before any request.
    cloud.sandbox.clear_requests();
    let tags = cloud
        .bot
        .say("/rg create lab-3 --location westeurope --tag a/b=1")
        .await;
    err(&tags);
    assert!(tags.text.contains("Azure refuses"), "{}", tags.text);
    assert!(cloud.sandbox.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_refused_before_any_request() {
    let cloud = start_aks(LRO, "").await;
    let long = "a".repeat(91);
    let names = [
        "..",
        "%2e",
        "%2e%2e",
        "a/b",
        "../pangeo",
        long.as_str(),
        "trailing.",
    ];
    for name in names {
        for command in [
            format!("/rg show {name}"),
            format!("/rg delete {name}"),
            format!("/rg create {name} --location westeurope"),
        ] {
            cloud.sandbox.clear_requests();
            let reply = cloud.bot.say(&command).await;
            err(&reply);
            assert!(
                reply.text.contains("resource group names are 1-90"),
                "{command}: {}",
                reply.text
            );
            assert!(
                cloud.sandbox.requests().is_empty(),
                "{command}: the sandbox saw {:?}",
                cloud.sandbox.requests()
            );
        }
    }
    assert!(!arm_get(&cloud, "/resourceGroups/pangeo").await.is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_lists_the_contents_needs_an_approver_and_is_polled_to_the_end() {
    let cloud = start_aks(LRO, APPROVAL).await;
    let before = sandbox_resources(&cloud, "pangeo").await;
    cloud.sandbox.clear_requests();
    let pending = cloud.bot.say("/rg delete pangeo").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    let text = &pending.text;
    assert!(
        text.starts_with("Deleting resource group pangeo (westeurope) deletes everything in it."),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} resources:", before.len())),
        "{text}"
    );
    for line in [
        "• AKS clusters (1): pangeoCluster (westeurope, Succeeded)",
        "• container registries (1): intens",
        &format!("• AKS node resource group of pangeoCluster: {NODE_GROUP}"),
        "needs a second person: someone with role ops-lead approves with /approve",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }
    // The preview only read.
    assert_eq!(served(&cloud, "DELETE", "/resourceGroups/pangeo"), 0);
    assert!(!arm_get(&cloud, "/resourceGroups/pangeo").await.is_null());

    let code = pending.confirmation.clone().expect("a confirmation code");
    let own = cloud.bot.say(&format!("/approve {code}")).await;
    err(&own);
    assert_eq!(served(&cloud, "DELETE", "/resourceGroups/pangeo"), 0);

    let done = cloud
        .bot
        .say_as(
            user("approver-1", &["ops-lead"]),
            &format!("/approve {code}"),
        )
        .await;
    ok(&done);
    assert!(
        done.text
            .starts_with("✓ Resource group pangeo and everything in it deleted (request id "),
        "{}",
        done.text
    );
    assert_eq!(served(&cloud, "DELETE", "/resourceGroups/pangeo"), 1);
    // Followed to the end: the operation was polled until it answered 200, then it was gone.
    let polls = served(&cloud, "GET", "");
    let operation_polls = cloud
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/operationresults/"))
        .count();
    assert!(operation_polls >= 1, "no poll among {polls} GETs");
    assert!(arm_get(&cloud, "/resourceGroups/pangeo").await.is_null());
    assert!(arm_get(&cloud, &cloud.cluster_path()).await.is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_resource_group_is_refused_with_the_reason_and_a_missing_group_with_azures_code() {
    let cloud = start_aks(LRO, "").await;
    cloud.sandbox.clear_requests();
    let refused = cloud.bot.say(&format!("/rg delete {NODE_GROUP}")).await;
    err(&refused);
    assert!(
        refused.text.contains(&format!(
            "{NODE_GROUP} is the node resource group AKS manages for cluster pangeoCluster"
        )),
        "{}",
        refused.text
    );
    assert_eq!(refused.confirmation, None);
    assert_eq!(served(&cloud, "DELETE", NODE_GROUP), 0);
    assert!(
        !arm_get(&cloud, &format!("/resourceGroups/{NODE_GROUP}"))
            .await
            .is_null()
    );

    for command in ["/rg show nosuch", "/rg delete nosuch"] {
        let missing = cloud.bot.say(command).await;
        err(&missing);
        assert_eq!(missing.confirmation, None, "{command}");
        assert!(
            missing.text.contains("ResourceGroupNotFound")
                && missing
                    .text
                    .contains("Resource group 'nosuch' could not be found")
                && missing.text.contains("HTTP 404, request id "),
            "{command}: {}",
            missing.text
        );
    }
    assert_eq!(served(&cloud, "DELETE", "/resourceGroups/nosuch"), 0);
}

/// Waits until the sandbox reports `group` in `state`.
async fn wait_for_state(cloud: &CloudBot, group: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = arm_get(cloud, &format!("/resourceGroups/{group}")).await;
        if body["properties"]["provisioningState"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_being_deleted_answers_409_with_azures_code_and_request_id() {
    let cloud = start_aks(Duration::from_secs(2), "").await;
    ok(&cloud
        .bot
        .say("/rg create doomed --location westeurope")
        .await);
    let pending = cloud.bot.say("/rg delete doomed").await;
    assert_eq!(pending.kind, ResponseKind::Pending, "{}", pending.text);
    assert!(
        pending.text.contains("It is empty: no resources."),
        "{}",
        pending.text
    );
    let code = pending.confirmation.clone().expect("a confirmation code");
    let confirm = format!("/confirm {code}");
    let (deleted, conflict) = tokio::join!(cloud.bot.say(&confirm), async {
        wait_for_state(&cloud, "doomed", "Deleting").await;
        cloud
            .bot
            .say("/rg create doomed --location westeurope --tag again=yes")
            .await
    });
    err(&conflict);
    assert!(
        conflict.text.contains("ResourceGroupBeingDeleted")
            && conflict.text.contains("HTTP 409, request id "),
        "{}",
        conflict.text
    );
    ok(&deleted);
    assert!(arm_get(&cloud, "/resourceGroups/doomed").await.is_null());
}

/// The typed client's requests go through Deckhand's pipeline: a 429 with `Retry-After` and a
/// 503 are retried (the crate's own retries are off, so each try reaches the sandbox once),
/// and the call is audited as an ARM call of the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_are_retried_by_deckhands_pipeline_and_audited() {
    use deckhand_sandbox::{FaultKind, FaultSpec};
    let cloud = start_aks(LRO, "").await;
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::Throttle {
            retry_after_secs: 1,
        })
        .on_path("/resourcegroups/pangeo")
        .on_method("GET")
        .times(1),
    );
    cloud.sandbox.inject(
        FaultSpec::always(FaultKind::ServerError { status: 503 })
            .on_path("/resourcegroups/pangeo")
            .on_method("GET")
            .times(1),
    );
    cloud.sandbox.clear_requests();
    let started = Instant::now();
    let (show, _, invocation) = cloud
        .bot
        .say_full(deckhand_it::admin(), "/rg show pangeo")
        .await;
    ok(&show);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        served(&cloud, "GET", "/resourceGroups/pangeo"),
        3,
        "429, 503, then the answer: {:?}",
        cloud.sandbox.requests()
    );
    let calls = cloud.bot.app.db.service_calls(&invocation).unwrap();
    let targets: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|c| (c.service.as_str(), c.target.as_str(), c.outcome.as_str()))
        .collect();
    assert!(
        targets.contains(&("arm", "GET /resourceGroups/pangeo", "ok"))
            && targets.contains(&("arm", "GET /resourceGroups/pangeo/resources", "ok")),
        "{targets:?}"
    );
    assert!(
        calls.iter().all(|c| c.plugin == "aks" && c.allowed),
        "{calls:?}"
    );
}

/// The host checks the names itself (a plugin need not be trusted to): a hostile name sent
/// straight to the typed service is refused before any request, and the capability check
/// refuses a plugin that did not declare `Microsoft.Resources/resourceGroups`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_hostile_names_and_undeclared_plugins_itself() {
    use deckhand_plugin_abi::proto::{
        ArmCapability, Capabilities, HostResponse, ResourceGroupRequest, Service,
    };
    let cloud = start_aks(LRO, "").await;
    let declared = Capabilities {
        arm: vec![ArmCapability {
            resource_type: "Microsoft.Resources/resourceGroups".into(),
            actions: vec!["*".into()],
        }],
        ..Capabilities::default()
    };
    cloud.sandbox.clear_requests();
    let long = "b".repeat(91);
    for name in ["..", "%2e%2e", "a/b", long.as_str(), "x."] {
        for request in [
            ResourceGroupRequest::Get { name: name.into() },
            ResourceGroupRequest::Delete { name: name.into() },
        ] {
            let answer = tokio::task::block_in_place(|| {
                cloud.bot.call_as_plugin(
                    "probe",
                    declared.clone(),
                    Service::ResourceGroups { request },
                )
            });
            match answer {
                HostResponse::Error(e) => assert_eq!(e.code, "bad_request", "{name}: {e:?}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(
        cloud.sandbox.requests().is_empty(),
        "{:?}",
        cloud.sandbox.requests()
    );
    let answer = tokio::task::block_in_place(|| {
        cloud.bot.call_as_plugin(
            "probe",
            Capabilities::default(),
            Service::ResourceGroups {
                request: ResourceGroupRequest::Delete {
                    name: "pangeo".into(),
                },
            },
        )
    });
    match answer {
        HostResponse::Error(e) => assert_eq!(e.code, "capability_denied", "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(cloud.sandbox.requests().is_empty());
    assert!(!arm_get(&cloud, "/resourceGroups/pangeo").await.is_null());
}
