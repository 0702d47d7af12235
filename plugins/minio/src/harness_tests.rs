//! The minio plugin in process, against the SDK's scripted host: what the real S3 server in
//! `tests/it/minio.rs` cannot show (a week of usage history, several endpoints, refusals that
//! never reach the host).

use deckhand_plugin_sdk::abi::proto::Service;
use deckhand_plugin_sdk::testing::{Expect, PluginTest, RunError};
use serde_json::{Value, json};

use crate::Minio;

fn minio() -> PluginTest<Minio> {
    PluginTest::new(json!({
        "default_endpoint": "vm",
        "endpoints": {
            "vm": {"url": "http://40.117.155.103:9000", "auth_profile": "minio"},
            "lab": {"url": "https://minio.lab.example:9000", "auth_profile": "minio-lab", "path_style": false}
        }
    }))
}

fn http(method: &'static str, url: &'static str) -> Expect {
    Expect::call(
        &format!("{method} {url}"),
        move |service| matches!(service, Service::Http { request } if request.method == method && request.url == url),
    )
}

fn s3_ok(body: &str) -> Result<Value, deckhand_plugin_sdk::abi::proto::HostError> {
    Ok(json!({"status": 200, "headers": [["x-amz-request-id", "R1"]], "body": body}))
}

#[test]
fn usage_compares_with_the_snapshot_a_week_old_and_stores_todays() {
    let mut test = minio();
    test.expect(
        http("GET", "http://40.117.155.103:9000/"),
        s3_ok("<ListAllMyBucketsResult><Buckets><Bucket><Name>runs</Name></Bucket><Bucket><Name>models</Name></Bucket></Buckets></ListAllMyBucketsResult>"),
    );
    test.expect(
        http("GET", "http://40.117.155.103:9000/runs?list-type=2&max-keys=1000"),
        s3_ok("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>3000</Size></Contents><Contents><Key>b</Key><Size>2000</Size></Contents></ListBucketResult>"),
    );
    test.expect(
        http("GET", "http://40.117.155.103:9000/models?list-type=2&max-keys=1000"),
        s3_ok("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>m</Key><Size>10000</Size></Contents></ListBucketResult>"),
    );
    let now = chrono::Utc::now().timestamp();
    test.expect(
        Expect::call("kv_list usage/vm/", |s| {
            matches!(s, Service::KvList { prefix } if prefix == "usage/vm/")
        }),
        Ok(json!([
            ["usage/vm/old", {"at": now - 8 * 86_400, "objects": 1, "bytes": 9000, "buckets": {"models": 9000}}],
            ["usage/vm/recent", {"at": now - 86_400, "objects": 3, "bytes": 14000, "buckets": {}}],
            ["usage/vm/ancient", {"at": now - 90 * 86_400, "objects": 1, "bytes": 1, "buckets": {}}]
        ])),
    );
    test.expect(
        Expect::call("kv_put today's snapshot", |s| {
            matches!(s, Service::KvPut { key, value } if key.starts_with("usage/vm/20") && value["bytes"] == 15000 && value["buckets"]["runs"] == 5000)
        }),
        Ok(Value::Null),
    );
    test.expect(
        Expect::call(
            "kv_delete of a snapshot past 60 days",
            |s| matches!(s, Service::KvDelete { key } if key == "usage/vm/ancient"),
        ),
        Ok(json!(true)),
    );
    let reply = test.run("/minio usage").unwrap();
    assert_eq!(
        reply.text,
        "Endpoint vm: 2 buckets, 3 objects, 14.6 KiB.\nLargest buckets:\n• models: 9.8 KiB, 1 object\n• runs: 4.9 KiB, 2 objects\nGrowth in 8 days: +5.9 KiB (8.8 KiB → 14.6 KiB), +2 objects.\nGrew most: runs (+4.9 KiB)"
    );
    test.finish();
}

#[test]
fn endpoint_picks_the_configured_one_with_its_addressing() {
    let mut test = minio();
    test.expect(
        Expect::call("lab, virtual-hosted, its own profile", |s| {
            matches!(s, Service::Http { request }
                if request.url == "https://data.minio.lab.example:9000/?list-type=2&max-keys=1000"
                && request.auth_profile.as_deref() == Some("minio-lab"))
        }),
        s3_ok("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"),
    );
    let reply = test.run("/minio ls data --endpoint lab").unwrap();
    assert_eq!(reply.text, "data on endpoint lab holds no objects.");
    let error = test.run("/minio ls data --endpoint nas").unwrap_err();
    let RunError::Plugin(error) = error else {
        panic!("{error}")
    };
    assert_eq!(
        error.message,
        "there is no endpoint \"nas\"; configured: lab, vm"
    );
    test.finish();
}

#[test]
fn bad_names_keys_and_expiries_never_reach_the_host() {
    let test = minio();
    for line in [
        "/minio mb ab",
        "/minio mb xn--data",
        "/minio rb Data --yes",
        "/minio ls data/../etc",
        "/minio ls a_b",
        "/minio share data/model.bin --expires 8d",
        "/minio share data",
        "/minio ls data --top 0",
    ] {
        assert!(test.run(line).is_err(), "{line}");
    }
    assert!(test.served().is_empty(), "{:?}", test.served());
}

#[test]
fn an_s3_error_is_told_in_words_with_its_code_and_request_id() {
    let mut test = minio();
    test.expect(
        http("GET", "http://40.117.155.103:9000/gone?list-type=2&max-keys=1000"),
        Ok(json!({"status": 404, "headers": [], "body":
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>17A2B3C4D5E6F708</RequestId></Error>"})),
    );
    let RunError::Plugin(error) = test.run("/minio ls gone").unwrap_err() else {
        panic!("a plugin error")
    };
    assert_eq!(
        error.to_string(),
        "there is no bucket gone on endpoint vm (code NoSuchBucket, request id 17A2B3C4D5E6F708)"
    );
    test.finish();
}

#[test]
fn config_is_checked_at_init() {
    for (config, says) in [
        (
            json!({"endpoints": {"x": {"url": "http://h:9000", "auth_profile": "rabbit"}}}),
            "start with \"minio\"",
        ),
        (
            json!({"endpoints": {"x": {"url": "ftp://h", "auth_profile": "minio"}}}),
            "must be http(s)://HOST",
        ),
        (
            json!({"default_endpoint": "y", "endpoints": {"x": {"url": "http://h", "auth_profile": "minio"}}}),
            "is not one of the endpoints",
        ),
        (json!({"endpoint": {}}), "unknown field"),
    ] {
        let error = PluginTest::<Minio>::try_new(config).err().expect("refused");
        assert!(error.message.contains(says), "{}", error.message);
    }
}
