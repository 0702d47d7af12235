//! A real OCI distribution registry for tests: Debian's `docker-registry` (installed by
//! `.ci/install-registry.sh`), started on a free loopback port with its own data dir and
//! killed by its handle on drop; images are pushed over the distribution API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A `docker-registry` on a free loopback port, storing in a temp dir, no auth; killed on drop.
pub struct LocalRegistry {
    child: Child,
    dir: tempfile::TempDir,
    pub url: String,
    pub http: reqwest::Client,
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalRegistry {
    pub async fn start() -> LocalRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run .ci/install-registry.sh (Debian package docker-registry)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: deckhand-it\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let mut registry = LocalRegistry {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = registry
                .http
                .get(format!("{}/v2/", registry.url))
                .send()
                .await
                && r.status() == 200
            {
                return registry;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", registry.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer on {} within 20 s: {}",
                registry.url,
                registry.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `POST /v2/<repo>/blobs/uploads/`, then `PUT <location>&digest=...` with the bytes.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> (String, usize) {
        let digest = sha256(bytes);
        let start = self
            .http
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.url))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 202, "blob upload start: {start:?}");
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self
            .http
            .put(format!("{location}{separator}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 201, "blob upload: {:?}", done.text().await);
        (digest, bytes.len())
    }

    /// Pushes a config blob, one layer and a manifest of `media_type` as `repo:tag`; returns
    /// the manifest's bytes.
    pub async fn push_image(&self, repo: &str, tag: &str, media_type: &str) -> Vec<u8> {
        self.push_dated_image(repo, tag, media_type, None).await
    }

    /// [`LocalRegistry::push_image`] with the image config's `created` set (RFC 3339).
    pub async fn push_dated_image(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        created: Option<&str>,
    ) -> Vec<u8> {
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        let (layer_digest, layer_size) = self.push_blob(repo, &layer).await;
        let mut config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"image": format!("{repo}:{tag}")}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
        });
        if let Some(created) = created {
            config["created"] = json!(created);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let (config_digest, config_size) = self.push_blob(repo, &config).await;
        let (config_type, layer_type) = if media_type == OCI_MANIFEST {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
        }))
        .unwrap();
        let put = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.url))
            .header("content-type", media_type)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "manifest push: {:?}", put.text().await);
        manifest
    }
}
