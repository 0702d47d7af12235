//! The runner plugin in process, against the SDK's scripted host. RabbitMQ's answers here are
//! shaped like the management API's; the real broker is exercised by `tests/it/runner.rs`.

use deckhand_plugin_sdk::abi::proto::{AmqpOp, Service};
use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError};
use deckhand_plugin_sdk::{ErrorCode, HostError};
use serde_json::{Value, json};

use crate::Runner;

fn runner() -> PluginTest<Runner> {
    PluginTest::new(json!({
        "resource_group": "pangeo",
        "default_cluster": "pangeoCluster",
        "management_url": "http://127.0.0.1:15672",
        "amqp_url": "amqp://10.0.0.4:5672/",
        "image": "intens.azurecr.io/studio-go-runner:0.9.21"
    }))
}

fn http_get(path_end: &'static str) -> Expect {
    Expect::call(&format!("HTTP GET …{path_end}"), move |s| {
        matches!(s, Service::Http { request }
            if request.method == "GET"
                && request.auth_profile.as_deref() == Some("rabbitmq")
                && request.url.split('?').next().is_some_and(|u| u.ends_with(path_end)))
    })
}

fn http_ok(body: Value) -> Result<Value, HostError> {
    Ok(json!({"status": 200, "headers": [], "body": body.to_string()}))
}

fn passive(queue: &'static str) -> Expect {
    Expect::call(&format!("AMQP passive declare {queue}"), move |s| {
        matches!(s, Service::Amqp { request }
            if request.broker == "rabbitmq"
                && request.op == AmqpOp::QueueDeclarePassive { queue: queue.into() })
    })
}

fn exact(queue: &str, ready: u32, consumers: u32) -> Result<Value, HostError> {
    Ok(json!({"op": "queue_declare_passive", "queue": queue,
        "message_count": ready, "consumer_count": consumers}))
}

const BINDINGS: &str = "/api/exchanges/%2F/StudioML.topic/bindings/source";

fn bindings() -> Result<Value, HostError> {
    http_ok(json!([
        {"source": "StudioML.topic", "destination": "rmq_mnist_exp1", "destination_type": "queue", "routing_key": "rmq_mnist_exp1"},
        {"source": "StudioML.topic", "destination": "rmq_mnist_exp2", "destination_type": "queue", "routing_key": "rmq_mnist_exp2"},
        {"source": "StudioML.topic", "destination": "rmq_cifar_a", "destination_type": "queue", "routing_key": "rmq_cifar_a"},
        {"source": "StudioML.topic", "destination": "audit", "destination_type": "queue", "routing_key": "#"}
    ]))
}

fn queues() -> Result<Value, HostError> {
    http_ok(json!([
        {"name": "rmq_mnist_exp1", "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 2,
         "message_stats": {"ack_details": {"rate": 0.5}, "deliver_get_details": {"rate": 0.5}}},
        {"name": "rmq_mnist_exp2", "messages_ready": 3, "messages_unacknowledged": 2, "consumers": 0},
        {"name": "rmq_cifar_a", "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 0},
        {"name": "audit", "messages_ready": 7, "messages_unacknowledged": 0, "consumers": 0}
    ]))
}

#[test]
fn jobs_of_a_project_use_the_exact_counts_over_a_stale_sample() {
    let mut test = runner();
    test.expect(http_get(BINDINGS), bindings())
        .expect(http_get("/api/queues/%2F"), queues())
        // The management API still shows 0 waiting on exp1; the broker has 12.
        .expect(passive("rmq_mnist_exp1"), exact("rmq_mnist_exp1", 12, 2))
        .expect(passive("rmq_mnist_exp2"), exact("rmq_mnist_exp2", 3, 0));
    let reply = test.run("/jobs --project mnist").unwrap();
    assert!(
        reply.text.contains("• rmq_mnist_exp1 (project mnist, experiment exp1): 12 waiting, 0 in progress, 2 consumer(s), acks 0.50/s, empty in ~24 s"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("• rmq_mnist_exp2 (project mnist, experiment exp2): 3 waiting, 2 in progress, 0 consumers (jobs in progress: runners polling with basic.get), acks 0.00/s, no acks lately, no estimate"),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("cifar"), "{}", reply.text);
    assert!(
        reply
            .text
            .contains("Total: 15 waiting, 2 in progress in 2 queue(s).")
    );
    test.finish();
}

#[test]
fn unknown_project_names_the_known_ones() {
    let mut test = runner();
    test.expect(http_get(BINDINGS), bindings());
    let Err(RunError::Plugin(e)) = test.run("/jobs --project imagenet") else {
        panic!("expected an error")
    };
    assert_eq!(e.code, ErrorCode::BadInput);
    assert_eq!(
        e.message,
        "no queue rmq_imagenet_<experiment> is bound to exchange StudioML.topic (projects with queues: cifar, mnist)"
    );
    test.finish();
}

#[test]
fn bad_project_is_refused_before_any_call() {
    let test = runner();
    let Err(RunError::Plugin(e)) = test.run("/jobs --project ../x") else {
        panic!("expected an error")
    };
    assert_eq!(e.option.as_deref(), Some("project"));
    assert!(test.served().is_empty());
}

#[test]
fn wrong_credentials_are_reported_as_401_naming_the_endpoint() {
    let mut test = runner();
    test.expect(
        http_get(BINDINGS),
        Ok(json!({"status": 401, "headers": [],
            "body": r#"{"error":"not_authorized","reason":"Login failed"}"#})),
    );
    let Err(RunError::Plugin(e)) = test.run("/jobs") else {
        panic!("expected an error")
    };
    assert_eq!(e.code, ErrorCode::Denied);
    assert_eq!(e.status, Some(401));
    assert!(
        e.message.starts_with("RabbitMQ management API at http://127.0.0.1:15672/ refused the credentials of auth profile rabbitmq (HTTP 401: not_authorized (Login failed))"),
        "{}",
        e.message
    );
    test.finish();
}

#[test]
fn exact_counts_unavailable_fall_back_with_a_note() {
    let mut test = runner();
    test.expect(http_get(BINDINGS), bindings())
        .expect(http_get("/api/queues/%2F"), queues())
        .expect(
            passive("rmq_cifar_a"),
            Err(HostError::new(
                "unavailable",
                "cannot connect to AMQP broker rabbitmq at 127.0.0.1:5672: Connection refused",
            )),
        );
    let reply = test.run("/jobs").unwrap();
    assert!(reply.text.contains("Note: exact counts unavailable (cannot connect to AMQP broker rabbitmq at 127.0.0.1:5672: Connection refused)"), "{}", reply.text);
    assert!(
        reply
            .text
            .contains("• rmq_mnist_exp2 (project mnist, experiment exp2): 3 waiting"),
        "{}",
        reply.text
    );
    test.finish();
}

#[test]
fn config_typos_and_credentials_in_urls_are_refused() {
    for (config, key) in [
        (
            json!({"managment_url": "http://127.0.0.1:15672"}),
            "managment_url",
        ),
        (
            json!({"management_url": "http://u:p@127.0.0.1:15672"}),
            "management_url",
        ),
        (
            json!({"management_url": "http://rabbit.example.com:15672"}),
            "management_url",
        ),
        (json!({"amqp_url": "amqp://u:p@10.0.0.4:5672/"}), "amqp_url"),
        (json!({"image": "runner:latest"}), "image"),
    ] {
        let Err(e) = PluginTest::<Runner>::try_new(config.clone()) else {
            panic!("{config} was accepted")
        };
        assert_eq!(e.code, ErrorCode::Config, "{config}: {e}");
        assert_eq!(e.option.as_deref(), Some(key), "{config}: {e}");
    }
}
