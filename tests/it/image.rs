//! The runtime image: `deploy/build-image.sh` (buildah FROM scratch, no base image) over the
//! built artifacts, pushed to a real local registry (Debian's docker-registry) and read back:
//! the manifest, the config (non-root user, entrypoint, no shell) and the layer's files; and
//! `deckhand check` run inside the image's filesystem.
//! The test builds from `target/debug` (what `cargo build --workspace` made) so that CI does
//! not pay a second, release build; `deploy/build-image.sh` without ARTIFACTS builds the dist profile.

use std::path::PathBuf;
use std::process::Command;

use deckhand_it::registry::{DOCKER_MANIFEST, LocalRegistry, OCI_MANIFEST};
use deckhand_it::target_dir;
use serde_json::Value;

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn image_builds_from_scratch_and_round_trips_through_a_registry() {
    if !found("buildah") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "buildah is missing: run .ci/install-buildah.sh"
        );
        eprintln!("skipped: buildah is not installed (run .ci/install-buildah.sh)");
        return;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let store = tempfile::tempdir().unwrap();
    let buildah = format!(
        "buildah --root {0}/root --runroot {0}/run --storage-driver vfs",
        store.path().display()
    );
    let image = "localhost/deckhand:it";
    let out = Command::new("bash")
        .arg(repo.join("deploy/build-image.sh"))
        .arg(image)
        .env("ARTIFACTS", target_dir())
        .env("BUILDAH", &buildah)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Run it: `podman run` cannot start containers in this sandbox (crun: "setrlimit
    // RLIMIT_NPROC: Operation not permitted"), so the image's own filesystem is entered with
    // chroot as uid 10001 and `deckhand check` loads all six plugins from it with the shipped
    // cluster config: every library the binary and the plugins need is in the image.
    let sh = |script: String| {
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let ctr = sh(format!("{buildah} from {image}"));
    let root = PathBuf::from(sh(format!("{buildah} mount {ctr}")));
    std::fs::copy(
        repo.join("deploy/kubernetes/base/config/deckhand.toml"),
        root.join("etc/deckhand/deckhand.toml"),
    )
    .unwrap();
    let checked = Command::new("/usr/sbin/chroot")
        .args(["--userspec=10001:10001"])
        .arg(&root)
        .args([
            "/usr/local/bin/deckhand",
            "check",
            "--config",
            "/etc/deckhand/deckhand.toml",
        ])
        .env_clear()
        .env("DISCORD_TOKEN", "t")
        .env("DECKHAND_ALERTS_TOKEN", "t")
        .env("RABBITMQ_PASSWORD", "t")
        .output()
        .unwrap();
    sh(format!("{buildah} umount {ctr} && {buildah} rm {ctr}"));
    assert!(
        checked.status.success(),
        "deckhand check in the image: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("ok (6 plugins loaded)"),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    let registry = LocalRegistry::start().await;
    let dest = format!(
        "docker://{}/deckhand:it",
        registry.url.trim_start_matches("http://")
    );
    let pushed = Command::new("sh")
        .arg("-c")
        .arg(format!("{buildah} push --tls-verify=false {image} {dest}"))
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "buildah push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let http = &registry.http;
    let response = http
        .get(format!("{}/v2/deckhand/manifests/it", registry.url))
        .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let manifest: Value = response.json().await.unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest:#}");
    let compressed: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    eprintln!(
        "image layer, compressed: {compressed} bytes (from {})",
        target_dir().display()
    );

    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = http
        .get(format!(
            "{}/v2/deckhand/blobs/{config_digest}",
            registry.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "10001:10001");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/deckhand"])
    );
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["serve", "--config", "/etc/deckhand/deckhand.toml"])
    );

    // The files: the binary, six plugins, the loader and libc, no shell.
    let layer = layers[0]["digest"].as_str().unwrap();
    let blob = http
        .get(format!("{}/v2/deckhand/blobs/{layer}", registry.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let tar = store.path().join("layer.tar.gz");
    std::fs::write(&tar, &blob).unwrap();
    let listing = Command::new("tar").arg("-tzf").arg(&tar).output().unwrap();
    assert!(listing.status.success());
    let files = String::from_utf8(listing.stdout).unwrap();
    let has = |path: &str| files.lines().any(|l| l.trim_start_matches("./") == path);
    assert!(has("usr/local/bin/deckhand"), "{files}");
    for plugin in ["acr", "aks", "daskhub", "minio", "runner", "vk"] {
        assert!(
            has(&format!(
                "usr/local/lib/deckhand/plugins/libdeckhand_plugin_{plugin}.so"
            )),
            "{plugin}: {files}"
        );
    }
    assert!(files.lines().any(|l| l.contains("libc.so.6")), "{files}");
    assert!(files.lines().any(|l| l.contains("ld-linux")), "{files}");
    assert!(
        !has("bin/sh") && !has("usr/bin/sh") && !has("bin/bash"),
        "a shell: {files}"
    );
    assert!(
        !files.lines().any(|l| l.contains("testplugin")),
        "test plugins do not ship: {files}"
    );
}
