//! A real S3-compatible server for the minio plugin's tests: moto's server mode (PyPI
//! `moto[server]`, installed by `.ci/install-moto.sh`). No MinIO server is installable here
//! (the `minio` packages on PyPI and npm are clients), so the S3 API is exercised against moto.
//!
//! Each [`Moto`] is its own `moto_server` on a free loopback port with its own working
//! directory, waited for until it answers, and killed by pid on drop. By default moto accepts
//! any request; [`Moto::require_signatures`] turns on its IAM authentication, after which it
//! checks every SigV4 signature against the keys of users made with [`Moto::iam_user`].
//! (moto does not check presigned URLs' signatures or expiry.)

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

pub struct Moto {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An IAM user's keys, as moto's CreateAccessKey answered them.
#[derive(Debug, Clone)]
pub struct Keys {
    pub access_key: String,
    pub secret_key: String,
}

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "moto_server is missing: run .ci/install-moto.sh (pip installs moto[server]; CI runs it) or set MOTO_SERVER"
        )
    })
}

/// Text between `open` and `close` in moto's IAM answer (test scaffolding only).
fn element(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    text.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map(|(value, _)| value.to_owned())
        .unwrap_or_else(|| panic!("no <{name}> in {text}"))
}

impl Moto {
    pub fn start() -> Moto {
        let binary = binary();
        let dir = tempfile::tempdir().expect("moto dir");
        let port = crate::free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            runtime,
            client: reqwest::Client::new(),
        };
        moto.wait_ready();
        moto
    }

    /// Polls moto's own API until it answers, or fails with its log.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/moto-api/data.json", self.url);
        loop {
            let ok = self.runtime.block_on(async {
                self.client
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            });
            if ok {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        self.runtime.block_on(async {
            let response = request.send().await.expect("moto answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }

    /// An IAM Query API call (moto routes it by the credential scope; unsigned while moto
    /// does not require signatures).
    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form: Vec<(&str, &str)> = vec![("Version", "2010-05-08")];
        form.extend_from_slice(params);
        let (status, body) = self.send(
            self.client
                .post(format!("{}/", self.url))
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
                )
                .form(&form),
        );
        assert_eq!(status, 200, "IAM {params:?}: {body}");
        body
    }

    /// A user with its access key; with `s3_policy`, allowed everything on S3.
    pub fn iam_user(&self, name: &str, s3_policy: bool) -> Keys {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        if s3_policy {
            self.iam(&[
                ("Action", "PutUserPolicy"),
                ("UserName", name),
                ("PolicyName", "s3-all"),
                (
                    "PolicyDocument",
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
                ),
            ]);
        }
        let body = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        Keys {
            access_key: element(&body, "AccessKeyId"),
            secret_key: element(&body, "SecretAccessKey"),
        }
    }

    /// From now on every request must be signed by a known key (moto's IAM authentication).
    pub fn require_signatures(&self, on: bool) {
        let (status, body) = self.send(
            self.client
                .post(format!("{}/moto-api/reset-auth", self.url))
                .body(if on { "0" } else { "inf" }),
        );
        assert_eq!(status, 200, "reset-auth: {body}");
    }

    /// Path-style URL of a bucket or object (keys given already encoded).
    fn path(&self, bucket: &str, encoded_key: Option<&str>) -> String {
        match encoded_key {
            Some(key) => format!("{}/{bucket}/{key}", self.url),
            None => format!("{}/{bucket}", self.url),
        }
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.send(self.client.put(self.path(bucket, None)));
        assert_eq!(status, 200, "create {bucket}: {body}");
    }

    /// Puts objects (key already URL-encoded, body) 16 at a time.
    pub fn put_objects(&self, bucket: &str, objects: Vec<(String, Vec<u8>)>) {
        let client = &self.client;
        let failures: Vec<String> = self.runtime.block_on(async {
            futures_util::stream::iter(objects)
                .map(|(key, body)| {
                    let url = self.path(bucket, Some(&key));
                    async move {
                        match client.put(&url).body(body).send().await {
                            Ok(r) if r.status().is_success() => None,
                            Ok(r) => Some(format!("{key}: HTTP {}", r.status())),
                            Err(e) => Some(format!("{key}: {e}")),
                        }
                    }
                })
                .buffer_unordered(16)
                .filter_map(|f| async move { f })
                .collect()
                .await
        });
        assert!(failures.is_empty(), "puts failed: {failures:?}");
    }

    /// Whether the bucket exists (asked unsigned: only while signatures are not required).
    pub fn bucket_exists(&self, bucket: &str) -> bool {
        let (status, _) = self.send(self.client.head(self.path(bucket, None)));
        status == 200
    }

    /// Number of keys in the bucket, from moto's own state dump.
    pub fn object_count(&self, bucket: &str) -> usize {
        let (status, body) = self.send(
            self.client
                .get(format!("{}/{bucket}?list-type=2&max-keys=1000", self.url)),
        );
        assert_eq!(status, 200, "{body}");
        body.matches("<Key>").count()
    }

    /// A plain HTTP GET (what someone opening a shared link does).
    pub fn fetch(&self, url: &str) -> (u16, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self.client.get(url).send().await.expect("moto answers");
            let status = response.status().as_u16();
            (
                status,
                response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default(),
            )
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
