//! The real `runner` plugin (`libdeckhand_plugin_runner`) against a real RabbitMQ 3.10 (jobs
//! published through `StudioML.topic`, consumed by `basic.consume` and `basic.get` runners, a
//! runner that crashes holding messages) and against the cloud sandbox (deploy, scale, status,
//! the GPU pool).

use std::time::{Duration, Instant};

use deckhand::host::services::PluginNotification;
use deckhand::router::{Response, ResponseKind};
use deckhand_it::cloud::CloudBot;
use deckhand_it::rabbitmq::{self, RabbitMq};
use deckhand_it::{TestBot, product_plugin_library};
use deckhand_plugin_abi::proto::{AmqpOp, AmqpRequest, Capabilities, HostResponse, Service};
use deckhand_sandbox::SandboxOptions;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const EXCHANGE: &str = "StudioML.topic";

/// `[plugins.config.runner]`, the `rabbitmq` auth profile and `[amqp.rabbitmq]` for `rabbit`.
fn runner_config(rabbit: &RabbitMq, password: &str, extra: &str) -> String {
    format!(
        r#"
[plugins.config.runner]
management_url = "{management}"
amqp_url = "amqp://10.0.0.4:5672/"
image = "intens.azurecr.io/studio-go-runner:0.9.21"
notify_channel = "ml-jobs"
confirm_secs = 8
stranded_secs = 8
{extra}

[auth_profiles.rabbitmq]
kind = "basic"
username = "{user}"
password = "{password}"

[amqp.rabbitmq]
url = "amqp://127.0.0.1:{port}/%2f"
auth_profile = "rabbitmq"
"#,
        management = rabbit.management_url(),
        user = rabbitmq::USER,
        port = rabbit.amqp_port,
    )
}

async fn connect(rabbit: &RabbitMq) -> (Connection, Channel) {
    // The broker can accept TCP before its AMQP listener finishes booting (seen on CI: the
    // handshake aborted): wait until a handshake succeeds, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let connection = loop {
        match Connection::connect(&rabbit.amqp_uri(), ConnectionProperties::default()).await {
            Ok(connection) => break connection,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("RabbitMQ handshake not ready yet: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the test connects to RabbitMQ: {e:?}"),
        }
    };
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// What StudioML does to submit `count` jobs of `queue`: declare the topic exchange and the
/// queue, bind it by its name, publish through the exchange (with publisher confirms).
async fn submit(channel: &Channel, queue: &str, count: usize) {
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange declared");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue declared");
    channel
        .queue_bind(
            queue.into(),
            EXCHANGE.into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("queue bound");
    channel
        .confirm_select(Default::default())
        .await
        .expect("publisher confirms");
    for i in 0..count {
        channel
            .basic_publish(
                EXCHANGE.into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("{{\"experiment\": \"{queue}\", \"job\": {i}}}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("published")
            .await
            .expect("confirmed");
    }
}

/// A `basic.consume` runner holding its messages unacknowledged (for as long as it lives:
/// dropping the consumer or the channel would give them back).
struct Holder {
    connection: Connection,
    _channel: Channel,
    _consumer: lapin::Consumer,
}

/// A `basic.consume` runner that takes `prefetch` messages and holds them unacknowledged.
async fn holding_consumer(rabbit: &RabbitMq, queue: &str, prefetch: u16) -> Holder {
    let (connection, channel) = connect(rabbit).await;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming");
    for _ in 0..prefetch {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a delivery within 10 s");
        delivery.expect("stream open").expect("delivery");
    }
    Holder {
        connection,
        _channel: channel,
        _consumer: consumer,
    }
}

fn text_of(response: &Response) -> &str {
    &response.text
}

/// Runs `command` until its reply satisfies `done` (at most 45 s, for the management API to
/// catch up); returns that reply. Panics with the last reply.
async fn until(bot: &TestBot, command: &str, done: impl Fn(&str) -> bool) -> Response {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let reply = bot.say(command).await;
        if done(text_of(&reply)) {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "{command}: no matching reply in 45 s; last:\n{}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_shows_waiting_in_progress_consumers_and_the_faults() {
    let mut rabbit = RabbitMq::start().await;
    let bot = TestBot::with_libraries(
        &[product_plugin_library("runner")],
        &runner_config(&rabbit, rabbitmq::PASSWORD, ""),
    );
    assert!(bot.app.load_errors.is_empty(), "{:?}", bot.app.load_errors);
    let (_publisher, channel) = connect(&rabbit).await;
    submit(&channel, "rmq_mnist_exp1", 10).await;
    submit(&channel, "rmq_mnist_exp2", 5).await;
    submit(&channel, "rmq_cifar_a", 3).await;

    // A basic.consume runner holds 2 of exp1; a basic.get runner holds 1 of exp2; a runner
    // takes 3 of cifar and crashes, so the broker requeues them.
    let _consumer = holding_consumer(&rabbit, "rmq_mnist_exp1", 2).await;
    let (_poller, poll_channel) = connect(&rabbit).await;
    let got = poll_channel
        .basic_get("rmq_mnist_exp2".into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get");
    assert!(got.is_some(), "basic.get returned a job");
    let crashed = holding_consumer(&rabbit, "rmq_cifar_a", 3).await;
    crashed
        .connection
        .close(320, "runner crashed".into())
        .await
        .ok();

    // Waiting and consumers are exact at once; in progress comes from the management API,
    // which catches up within seconds.
    let mnist = until(&bot, "/jobs --project mnist", |t| {
        t.contains("2 in progress, 1 consumer(s)") && t.contains("1 in progress, 0 consumers")
    })
    .await;
    assert_eq!(mnist.kind, ResponseKind::Ok, "{}", mnist.text);
    let text = &mnist.text;
    assert!(
        text.contains(
            "• rmq_mnist_exp1 (project mnist, experiment exp1): 8 waiting, 2 in progress, 1 consumer(s), acks 0.00/s"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "• rmq_mnist_exp2 (project mnist, experiment exp2): 4 waiting, 1 in progress, 0 consumers (jobs in progress: runners polling with basic.get)"
        ),
        "{text}"
    );
    assert!(!text.contains("cifar"), "{text}");
    assert!(
        text.contains("Total: 12 waiting, 3 in progress in 2 queue(s)."),
        "{text}"
    );
    assert!(text.contains("exact counts"), "{text}");

    // The crashed runner's 3 jobs are back in the queue, nobody holds them.
    let all = until(&bot, "/jobs", |t| {
        t.contains(
            "• rmq_cifar_a (project cifar, experiment a): 3 waiting, 0 in progress, 0 consumer(s)",
        )
    })
    .await;
    assert!(all.text.contains("rmq_mnist_exp1"), "{}", all.text);

    // Unknown project: what exists instead.
    let unknown = bot.say("/jobs --project imagenet").await;
    assert_eq!(unknown.kind, ResponseKind::Error);
    assert!(
        unknown.text.contains(
            "no queue rmq_imagenet_<experiment> is bound to exchange StudioML.topic (projects with queues: cifar, mnist)"
        ),
        "{}",
        unknown.text
    );
    let bad = bot.say("/jobs --project ../x").await;
    assert_eq!(bad.kind, ResponseKind::Error);
    assert!(bad.text.contains("--project \"../x\""), "{}", bad.text);

    // Wrong credentials: RabbitMQ's 401, reported as such.
    let wrong = TestBot::with_libraries(
        &[product_plugin_library("runner")],
        &runner_config(&rabbit, "not-the-password", ""),
    );
    let refused = wrong.say("/jobs").await;
    assert_eq!(refused.kind, ResponseKind::Error);
    assert!(
        refused.text.contains(&format!(
            "RabbitMQ management API at {}/ refused the credentials of auth profile rabbitmq (HTTP 401: not_authorized (Login failed))",
            rabbit.management_url()
        )),
        "{}",
        refused.text
    );
    assert!(
        !refused.text.contains("not-the-password"),
        "{}",
        refused.text
    );

    // RabbitMQ down: the endpoint is named, nothing crashes.
    rabbit.stop();
    let down = bot.say("/jobs").await;
    assert_eq!(down.kind, ResponseKind::Error);
    assert!(
        down.text.contains(&format!(
            "RabbitMQ management API at {}/ is unreachable: cannot connect",
            rabbit.management_url()
        )),
        "{}",
        down.text
    );
    let again = bot.say("/jobs --project mnist").await;
    assert_eq!(again.kind, ResponseKind::Error, "{}", again.text);
}

/// The host's AMQP service as a plugin declaring `brokers` sees it.
fn amqp_as_plugin(bot: &TestBot, brokers: &[&str], broker: &str, queue: &str) -> HostResponse {
    bot.call_as_plugin(
        "amqpprobe",
        Capabilities {
            amqp: brokers.iter().map(|b| (*b).to_owned()).collect(),
            ..Capabilities::default()
        },
        Service::Amqp {
            request: AmqpRequest {
                broker: broker.into(),
                op: AmqpOp::QueueDeclarePassive {
                    queue: queue.into(),
                },
            },
        },
    )
}

fn host_error(response: HostResponse) -> deckhand_plugin_abi::proto::HostError {
    match response {
        HostResponse::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_service_counts_exactly_and_refuses_clearly() {
    let mut rabbit = RabbitMq::start().await;
    let extra = format!(
        "{}\n[auth_profiles.rabbitmq-wrong]\nkind = \"basic\"\nusername = \"{}\"\npassword = \"wrong-pass\"\n\n[amqp.wrong]\nurl = \"amqp://127.0.0.1:{}/%2f\"\nauth_profile = \"rabbitmq-wrong\"\n",
        runner_config(&rabbit, rabbitmq::PASSWORD, ""),
        rabbitmq::USER,
        rabbit.amqp_port
    );
    let bot = TestBot::with_libraries(&[product_plugin_library("runner")], &extra);
    let (_publisher, channel) = connect(&rabbit).await;
    submit(&channel, "rmq_p_e", 7).await;
    let call = |brokers: &'static [&'static str], broker: &'static str, queue: &'static str| {
        let bot = &bot;
        tokio::task::block_in_place(move || amqp_as_plugin(bot, brokers, broker, queue))
    };

    // Right after publishing, the broker's count is exact.
    match call(&["rabbitmq"], "rabbitmq", "rmq_p_e") {
        HostResponse::Ok(v) => assert_eq!(
            v,
            json!({"op": "queue_declare_passive", "queue": "rmq_p_e", "message_count": 7, "consumer_count": 0})
        ),
        other => panic!("{other:?}"),
    }
    // A passive declare never creates: a missing queue is not_found, and stays missing.
    let missing = host_error(call(&["rabbitmq"], "rabbitmq", "rmq_p_nosuch"));
    assert_eq!(missing.code, "not_found", "{missing:?}");
    assert_eq!(missing.upstream_code.as_deref(), Some("NOT_FOUND"));
    let queues = rabbit.management_get("/api/queues/%2F?columns=name").await;
    assert!(!queues.to_string().contains("rmq_p_nosuch"), "{queues}");
    // Undeclared broker: refused and audited.
    let denied = host_error(call(&["wrong"], "rabbitmq", "rmq_p_e"));
    assert_eq!(denied.code, "capability_denied", "{denied:?}");
    assert_eq!(
        bot.app.db.refused_service_calls("amqpprobe").unwrap().len(),
        1
    );
    // Wrong password: the broker's refusal, without the password.
    let refused = host_error(call(&["wrong"], "wrong", "rmq_p_e"));
    assert!(
        matches!(refused.code.as_str(), "auth" | "unavailable"),
        "{refused:?}"
    );
    assert!(
        refused.message.contains(&format!(
            "AMQP broker wrong at 127.0.0.1:{}",
            rabbit.amqp_port
        )),
        "{refused:?}"
    );
    assert!(!refused.message.contains("wrong-pass"), "{refused:?}");
    // Broker down.
    rabbit.stop();
    let down = host_error(call(&["rabbitmq"], "rabbitmq", "rmq_p_e"));
    assert_eq!(down.code, "unavailable", "{down:?}");
    assert!(
        down.message.contains(&format!(
            "cannot connect to AMQP broker rabbitmq at 127.0.0.1:{}",
            rabbit.amqp_port
        )),
        "{down:?}"
    );
}

fn drain(
    rx: &mut broadcast::Receiver<PluginNotification>,
    into: &mut Vec<(Instant, PluginNotification)>,
) {
    while let Ok(n) = rx.try_recv() {
        into.push((Instant::now(), n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_notifies_confirmed_changes_and_never_one_stale_sample() {
    let rabbit = RabbitMq::start().await;
    let config = runner_config(&rabbit, rabbitmq::PASSWORD, "");
    let cloud = CloudBot::start_with(
        SandboxOptions::default(),
        &[product_plugin_library("runner")],
        |estate| {
            config.replace(
                "[plugins.config.runner]\n",
                &format!(
                    "[plugins.config.runner]\nresource_group = \"{}\"\ndefault_cluster = \"{}\"\n",
                    estate.resource_group, estate.cluster
                ),
            )
        },
    )
    .await;
    let bot = &cloud.bot;
    assert!(bot.app.load_errors.is_empty(), "{:?}", bot.app.load_errors);
    let mut rx = bot.app.host.services().subscribe_notifications();
    let mut seen = Vec::new();

    let (_publisher, channel) = connect(&rabbit).await;
    // exp3 is worked by a basic.get runner holding one job: never "runners down".
    submit(&channel, "rmq_mnist_exp3", 3).await;
    let (_poller, poll_channel) = connect(&rabbit).await;
    let held = poll_channel
        .basic_get("rmq_mnist_exp3".into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get");
    assert!(held.is_some());
    let deadline = Instant::now() + Duration::from_secs(30);
    while rabbit
        .management_get("/api/queues/%2F/rmq_mnist_exp3")
        .await["messages_unacknowledged"]
        != json!(1)
    {
        assert!(
            Instant::now() < deadline,
            "management API never showed the held job"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 40 jobs arrive; the management API may still show none of them.
    submit(&channel, "rmq_mnist_exp1", 40).await;
    let sampled = rabbit
        .management_get("/api/queues/%2F/rmq_mnist_exp1")
        .await;
    let first = bot.say("/runner watch").await;
    assert_eq!(first.kind, ResponseKind::Ok, "{}", first.text);
    assert!(
        first
            .text
            .starts_with("Checked 2 job queue(s): 42 job(s) waiting; 0 notification(s) sent."),
        "{} (management API showed {} ready)",
        first.text,
        sampled["messages_ready"]
    );

    // A runner works through all 40.
    let (_runner, runner_channel) = connect(&rabbit).await;
    let mut consumer = runner_channel
        .basic_consume(
            "rmq_mnist_exp1".into(),
            "runner-1".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming");
    for _ in 0..40 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a delivery")
            .expect("open")
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let acked = Instant::now();
    // 7 jobs wait on exp2 with no runner at all.
    submit(&channel, "rmq_mnist_exp2", 7).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut replies = Vec::new();
    loop {
        let reply = bot.say("/runner watch").await;
        assert_eq!(reply.kind, ResponseKind::Ok, "{}", reply.text);
        replies.push((Instant::now(), reply.text));
        drain(&mut rx, &mut seen);
        let titles: Vec<&str> = seen
            .iter()
            .map(|(_, n)| n.notification.title.as_str())
            .collect();
        if titles.contains(&"Jobs finished: rmq_mnist_exp1")
            && titles.contains(&"Jobs waiting with no runner: rmq_mnist_exp2")
            && titles.contains(&"GPU pool gpu is at 0 nodes while jobs wait")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every notification within 60 s: {titles:?}\n{replies:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A few more rounds: nothing is reported twice.
    for _ in 0..3 {
        bot.say("/runner watch").await;
    }
    drain(&mut rx, &mut seen);
    let titles: Vec<&str> = seen
        .iter()
        .map(|(_, n)| n.notification.title.as_str())
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(!titles.iter().any(|t| t.contains("exp3")), "{titles:?}");

    let (at, drained) = seen
        .iter()
        .find(|(_, n)| n.notification.title == "Jobs finished: rmq_mnist_exp1")
        .expect("drained");
    assert_eq!(drained.plugin, "runner");
    assert_eq!(drained.notification.channel.as_deref(), Some("ml-jobs"));
    assert!(
        drained.notification.text.starts_with(
            "Queue rmq_mnist_exp1 (project mnist, experiment exp1) drained: 40 job(s) done in"
        ),
        "{}",
        drained.notification.text
    );
    // Not on the first empty-looking sample: the queue had to stay empty for confirm_secs.
    assert!(
        at.duration_since(acked) >= Duration::from_secs(8),
        "drained reported {:?} after the last ack",
        at.duration_since(acked)
    );
    let pending = replies
        .iter()
        .find(|(_, t)| t.contains("Pending: rmq_mnist_exp1 looks empty"))
        .expect("a watch saw the queue empty and waited to confirm");
    assert!(*at >= pending.0);

    let stranded = seen
        .iter()
        .find(|(_, n)| n.notification.title == "Jobs waiting with no runner: rmq_mnist_exp2")
        .map(|(_, n)| n)
        .expect("stranded");
    assert_eq!(stranded.notification.severity, "warning");
    assert!(
        stranded
            .notification
            .text
            .starts_with("7 job(s) have waited in rmq_mnist_exp2 for"),
        "{}",
        stranded.notification.text
    );
    let pool = seen
        .iter()
        .find(|(_, n)| n.notification.title == "GPU pool gpu is at 0 nodes while jobs wait")
        .map(|(_, n)| n)
        .expect("gpu pool");
    assert!(
        pool.notification
            .text
            .contains("`/aks scale gpu 1 --cluster pangeoCluster` brings one up"),
        "{}",
        pool.notification.text
    );

    // The scale-down guard: the basic.get runner's job holds the GPU pool awake...
    let deferred = bot.say("/runner guard").await;
    assert_eq!(deferred.kind, ResponseKind::Error, "{}", deferred.text);
    assert!(
        deferred.text.contains(
            "deferred: 1 job(s) in progress on pool gpu of pangeoCluster (0 runner pod(s) holding 0 GPU(s)); "
        ),
        "{}",
        deferred.text
    );
    assert!(
        deferred
            .text
            .contains("queue rmq_mnist_exp3: 1 in progress, 2 waiting"),
        "{}",
        deferred.text
    );
    // ...until it is acknowledged; jobs waiting with no runner up do not.
    held.expect("held")
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    let idle = until(bot, "/runner guard", |t| t.starts_with("idle")).await;
    assert_eq!(idle.kind, ResponseKind::Ok, "{}", idle.text);
    assert_eq!(
        idle.text,
        "idle: no job in flight on pool gpu of pangeoCluster; 0 runner pod(s) hold 0 GPU(s) with nothing to do."
    );
}

async fn config_map_exists(cloud: &CloudBot) -> bool {
    Api::<ConfigMap>::namespaced(cloud.kube_client().await, "default")
        .get_opt("studioml-env")
        .await
        .expect("configmap read")
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_checks_first_then_applies_the_runner_idempotently() {
    let cloud = CloudBot::start_with(
        SandboxOptions::default(),
        &[product_plugin_library("runner")],
        |estate| {
            format!(
                "\n[plugins.config.runner]\nresource_group = \"{}\"\ndefault_cluster = \"{}\"\namqp_url = \"amqp://10.0.0.4:5672/\"\nimage = \"{}/studio-go-runner:0.9.21\"\n",
                estate.resource_group, estate.cluster, estate.login_server
            )
        },
    )
    .await;
    let bot = &cloud.bot;
    assert!(bot.app.load_errors.is_empty(), "{:?}", bot.app.load_errors);

    // Bad input is refused before anything is asked.
    for (line, needle) in [
        (
            "/runner deploy --replicas -1",
            "--replicas -1: give 0 to 100",
        ),
        ("/runner deploy --image runner:latest", "no registry"),
        ("/runner deploy --pool 'x/../y'", "pool"),
        ("/runner scale 101", "give 0 to 100"),
    ] {
        let r = bot.say(line).await;
        assert_eq!(r.kind, ResponseKind::Error, "{line}: {}", r.text);
        assert!(r.text.contains(needle), "{line}: {}", r.text);
    }
    // A tag missing from the registry stops before anything is applied.
    let missing = bot
        .say("/runner deploy --image intens.azurecr.io/studio-go-runner:9.9.9")
        .await;
    assert_eq!(missing.kind, ResponseKind::Error);
    assert!(
        missing.text.contains(
            "intens.azurecr.io/studio-go-runner:9.9.9 is not in registry intens.azurecr.io (its tags include 0.9.21); nothing was applied"
        ),
        "{}",
        missing.text
    );
    // Not a GPU pool; no such pool.
    let users = bot.say("/runner deploy --pool users").await;
    assert!(
        users
            .text
            .contains("node pool users runs Standard_D8s_v3, which has no GPU"),
        "{}",
        users.text
    );
    let nosuch = bot.say("/runner deploy --pool nosuch").await;
    assert!(
        nosuch
            .text
            .contains("cluster pangeoCluster has no node pool nosuch"),
        "{}",
        nosuch.text
    );
    // No NVIDIA device plugin yet: say how, apply nothing.
    let no_plugin = bot.say("/runner deploy").await;
    assert_eq!(no_plugin.kind, ResponseKind::Error);
    assert!(
        no_plugin
            .text
            .contains("has no NVIDIA device plugin DaemonSet"),
        "{}",
        no_plugin.text
    );
    assert!(!config_map_exists(&cloud).await);
    let status = bot.say("/runner status").await;
    assert!(
        status.text.contains("studio-go-runner is not deployed"),
        "{}",
        status.text
    );

    // Seed 002's device plugin DaemonSet.
    let client = cloud.kube_client().await;
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
            "template": {"metadata": {"labels": {"name": "nvidia-device-plugin-ds"}}, "spec": {
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "nodeSelector": {"kubernetes.azure.com/agentpool": "gpu"},
                "containers": [{"name": "nvidia-device-plugin-ctr", "image": "nvidia/k8s-device-plugin:1.11"}]}}}
    }))
    .unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();

    let created = bot.say("/runner deploy --replicas 2").await;
    assert_eq!(created.kind, ResponseKind::Ok, "{}", created.text);
    assert!(
        created.text.starts_with(
            "Runner Deployment default/studioml-go-runner on pangeoCluster created: 2 pod(s) of intens.azurecr.io/studio-go-runner:0.9.21, 1 GPU each, on pool gpu (Standard_NC6s_v3; NVIDIA device plugin kube-system/nvidia-device-plugin-daemonset)."
        ),
        "{}",
        created.text
    );
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("studioml-env")
        .await
        .unwrap();
    assert_eq!(
        cm.data.unwrap().get("AMQP_URL").map(String::as_str),
        Some("amqp://10.0.0.4:5672/")
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let d = serde_json::to_value(deployments.get("studioml-go-runner").await.unwrap()).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.azure.com/agentpool"], "gpu");
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "nvidia.com/gpu" && t["effect"] == "NoSchedule"),
        "{pod}"
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        "intens.azurecr.io/studio-go-runner:0.9.21"
    );
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "studioml-env"
    );
    let env: Vec<&Value> = container["env"].as_array().unwrap().iter().collect();
    assert_eq!(
        env[1]["valueFrom"]["secretKeyRef"],
        json!({"name": "studioml-amqp", "key": "password"})
    );
    assert_eq!(
        env[2],
        &json!({"name": "AMQP_URL", "value": "amqp://$(AMQP_USER):$(AMQP_PASSWORD)@10.0.0.4:5672/"})
    );
    let generation = d["metadata"]["generation"].clone();

    // Again: a server-side apply that changes nothing, and keeps the replicas.
    let again = bot.say("/runner deploy").await;
    assert_eq!(again.kind, ResponseKind::Ok, "{}", again.text);
    assert!(
        again
            .text
            .contains("unchanged (already as asked): 2 pod(s)"),
        "{}",
        again.text
    );
    let d = serde_json::to_value(deployments.get("studioml-go-runner").await.unwrap()).unwrap();
    assert_eq!(d["metadata"]["generation"], generation);

    // Scale, then status lists every runner pod.
    let scaled = bot.say("/runner scale 3").await;
    assert_eq!(scaled.kind, ResponseKind::Ok, "{}", scaled.text);
    assert!(
        scaled.text.contains("scaled from 2 to 3 pod(s)"),
        "{}",
        scaled.text
    );
    let same = bot.say("/runner scale 3").await;
    assert!(
        same.text.contains("already has 3 pod(s); nothing to do"),
        "{}",
        same.text
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = bot.say("/runner status").await;
        assert_eq!(status.kind, ResponseKind::Ok, "{}", status.text);
        if status.text.matches("• studioml-go-runner-").count() == 3 {
            break status;
        }
        assert!(Instant::now() < deadline, "{}", status.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status
            .text
            .starts_with("Runner Deployment default/studioml-go-runner on pangeoCluster:"),
        "{}",
        status.text
    );
    assert!(
        status
            .text
            .contains("image intens.azurecr.io/studio-go-runner:0.9.21"),
        "{}",
        status.text
    );
    assert!(
        status.text.contains("GPUs allocated to runners:"),
        "{}",
        status.text
    );

    // A runner that crash-loops is reported by /runner watch, once, even with RabbitMQ
    // unreachable (this bot has none configured: that is the command's answer).
    let mut rx = bot.app.host.services().subscribe_notifications();
    cloud.sandbox.inject(deckhand_sandbox::FaultSpec::always(
        deckhand_sandbox::FaultKind::CrashLoop {
            pod_prefix: "studioml-go-runner".into(),
            namespace: None,
        },
    ));
    let crashing = until(bot, "/runner status", |t| t.contains("CrashLoopBackOff")).await;
    assert!(
        crashing.text.contains("last exit: Error"),
        "{}",
        crashing.text
    );
    let watch = bot.say("/runner watch").await;
    assert_eq!(watch.kind, ResponseKind::Error, "{}", watch.text);
    assert!(
        watch.text.contains("runner pods checked: "),
        "{}",
        watch.text
    );
    let mut seen = Vec::new();
    drain(&mut rx, &mut seen);
    assert!(!seen.is_empty(), "{}", watch.text);
    let first = &seen[0].1.notification;
    assert!(
        first.title.starts_with("Runner pod studioml-go-runner-"),
        "{first:?}"
    );
    assert!(first.title.ends_with(" is crash-looping"), "{first:?}");
    let crashed = seen.len();
    bot.say("/runner watch").await;
    drain(&mut rx, &mut seen);
    assert_eq!(seen.len(), crashed, "reported twice: {seen:?}");
}
