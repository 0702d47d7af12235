//! The real `minio` plugin (`libdeckhand_plugin_minio`) through `deckhand shell --sandbox`
//! against a real S3 server: moto's server mode (`tests/it/support/moto.rs`; no MinIO server
//! is installable here, see there). Every S3 request is signed by the host's `sigv4` auth
//! profile; where moto checks signatures (`require_signatures`), a wrong signature fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use deckhand_it::moto::{Keys, Moto};

/// The outcome of one shell session.
struct Session {
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Session {
    /// Everything the run left behind: the replies, the logs and the audit database.
    fn everything(&self) -> String {
        let db = std::fs::read(self.dir.path().join("state.db")).unwrap_or_default();
        let wal = std::fs::read(self.dir.path().join("state.db-wal")).unwrap_or_default();
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout,
            self.stderr,
            String::from_utf8_lossy(&db),
            String::from_utf8_lossy(&wal)
        )
    }
}

fn minio_config(dir: &Path, url: &str) -> PathBuf {
    deckhand_it::write_config(
        dir,
        &[deckhand_it::product_plugin_library("minio")],
        &format!(
            r#"
[auth_profiles.minio]
kind = "sigv4"
access_key = "${{MINIO_IT_ACCESS_KEY}}"
secret_key = "${{MINIO_IT_SECRET_KEY}}"

[plugins.config.minio.endpoints.moto]
url = "{url}"
auth_profile = "minio"
"#
        ),
    )
}

/// Runs `lines` in `deckhand shell --sandbox` with the minio plugin on `url`, signing with
/// `keys`, logging at debug level.
fn shell(url: &str, keys: &Keys, lines: &[&str]) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let config = minio_config(dir.path(), url);
    let mut input = lines.join("\n");
    input.push('\n');
    let out = deckhand_it::run_deckhand(
        &["shell", "--sandbox"],
        &config,
        &[
            ("MINIO_IT_ACCESS_KEY", OsStr::new(&keys.access_key)),
            ("MINIO_IT_SECRET_KEY", OsStr::new(&keys.secret_key)),
            ("RUST_LOG", OsStr::new("deckhand=debug")),
        ],
        input.as_bytes(),
    );
    let session = Session {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    };
    assert!(
        out.status.success(),
        "{}\n{}",
        session.stdout,
        session.stderr
    );
    session
}

/// Keys moto does not check (its default mode), never shown anywhere.
fn any_keys() -> Keys {
    Keys {
        access_key: "AKIADECKHANDTESTKEY1".into(),
        secret_key: "never-shown-secret-0123456789abcdefghij".into(),
    }
}

fn assert_secret_kept(session: &Session, keys: &Keys) {
    let all = session.everything();
    assert!(
        !all.contains(&keys.secret_key),
        "the secret key leaked into a reply, a log or the audit log"
    );
}

/// `count` objects of `size` bytes under `runs/`, plus three keys that need encoding.
fn fill(moto: &Moto, bucket: &str, count: usize, size: usize) -> u64 {
    moto.create_bucket(bucket);
    let mut objects: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("runs/{i:05}.bin"), vec![b'x'; size]))
        .collect();
    // "data/2024 q1/model+v2(ß).bin", "data/a&b=c.txt", "data/~tilde"
    objects.push((
        "data/2024%20q1/model%2Bv2%28%C3%9F%29.bin".into(),
        vec![1; 10],
    ));
    objects.push(("data/a%26b%3Dc.txt".into(), vec![2; 20]));
    objects.push(("data/~tilde".into(), vec![3; 30]));
    moto.put_objects(bucket, objects);
    (count * size + 60) as u64
}

#[test]
fn lists_pages_and_creates_buckets_with_signatures_checked_by_the_server() {
    let moto = Moto::start();
    let keys = moto.iam_user("deckhand", true);
    let total = fill(&moto, "experiment-data", 2345, 100);
    moto.create_bucket("empty-bucket");
    moto.require_signatures(true);

    let session = shell(
        &moto.url,
        &keys,
        &[
            "/minio buckets",
            "/minio ls experiment-data --top 2",
            "/minio ls experiment-data/data/ --top 5",
            "/minio mb new-bucket",
            "/minio mb Bad_Name",
            "/minio mb 192.168.5.4",
            "/minio mb new-bucket",
            "/minio buckets",
        ],
    );
    let out = &session.stdout;
    // 2,348 objects: three ListObjectsV2 pages of 1000, followed by continuation token.
    assert!(
        out.contains("2 buckets on endpoint moto:"),
        "{out}\n{}",
        moto.log()
    );
    assert!(
        out.contains(&format!(
            "• experiment-data: 2348 objects, {}",
            human(total)
        )),
        "{out}"
    );
    assert!(out.contains("• empty-bucket: 0 objects, 0 B"), "{out}");
    assert!(
        out.contains(&format!(
            "experiment-data on endpoint moto: 2348 objects, {}; the first 2:",
            human(total)
        )),
        "{out}"
    );
    // Keys that need percent-encoding round-trip through the signed prefix query.
    assert!(
        out.contains("experiment-data/data/ on endpoint moto: 3 objects, 60 B:"),
        "{out}"
    );
    assert!(
        out.contains("• data/2024 q1/model+v2(ß).bin — 10 B, "),
        "{out}"
    );
    assert!(out.contains("• data/a&b=c.txt — 20 B, "), "{out}");
    assert!(
        out.contains("✓ Bucket new-bucket created on endpoint moto."),
        "{out}"
    );
    // The bucket rule is checked before anything reaches S3, and says the rule.
    assert!(
        out.contains("\"Bad_Name\" is not valid: S3 bucket names are 3-63 lowercase letters"),
        "{out}"
    );
    assert!(out.contains("it is formatted as an IP address"), "{out}");
    assert!(
        out.contains("bucket new-bucket already exists on endpoint moto (option --name) (code BucketAlreadyOwnedByYou)"),
        "{out}"
    );
    assert!(out.contains("3 buckets on endpoint moto:"), "{out}");
    assert_secret_kept(&session, &keys);
    // moto's own state: the bucket is there.
    moto.require_signatures(false);
    assert!(moto.bucket_exists("new-bucket"));
    assert!(!moto.bucket_exists("bad_name"));
}

/// `format::bytes` of the plugin, restated for the assertions.
fn human(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / 1024.0 / 1024.0)
    }
}

#[test]
fn wrong_credentials_are_named_with_the_request_id_and_never_shown() {
    let moto = Moto::start();
    let good = moto.iam_user("deckhand", true);
    let unprivileged = moto.iam_user("nobody", false);
    moto.create_bucket("experiment-data");
    moto.require_signatures(true);

    let wrong_secret = Keys {
        access_key: good.access_key.clone(),
        secret_key: "wrong-secret-key-000000000000000000000000".into(),
    };
    let session = shell(&moto.url, &wrong_secret, &["/minio buckets"]);
    assert!(
        session.stdout.contains("the server refused the signature: the secret key of auth profile minio is not the one endpoint moto has for its access key (code SignatureDoesNotMatch, request id "),
        "{}",
        session.stdout
    );
    assert_secret_kept(&session, &wrong_secret);

    let unknown = Keys {
        access_key: "AKIAUNKNOWNKEY000000".into(),
        secret_key: "unknown-secret-key-0000000000000000000000".into(),
    };
    let session = shell(&moto.url, &unknown, &["/minio ls experiment-data"]);
    assert!(
        session.stdout.contains("endpoint moto does not know the access key of auth profile minio (code InvalidAccessKeyId"),
        "{}",
        session.stdout
    );

    let session = shell(&moto.url, &unprivileged, &["/minio mb not-allowed"]);
    assert!(
        session.stdout.contains("access denied: the keys of auth profile minio may not do this on endpoint moto (code AccessDenied"),
        "{}",
        session.stdout
    );
    assert_secret_kept(&session, &unprivileged);
    moto.require_signatures(false);
    assert!(!moto.bucket_exists("not-allowed"));
}

#[test]
fn share_gives_the_caller_a_link_that_fetches_the_object() {
    let moto = Moto::start();
    moto.create_bucket("experiment-data");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    moto.put_objects(
        "experiment-data",
        vec![("runs/model%20v2.bin".into(), bytes.clone())],
    );
    let keys = any_keys();
    let session = shell(
        &moto.url,
        &keys,
        &[
            "/minio share 'experiment-data/runs/model v2.bin' --expires 2h",
            "/minio share experiment-data/runs/missing.bin",
            "/minio share 'experiment-data/runs/model v2.bin' --expires 8d",
            "/minio share experiment-data",
        ],
    );
    let out = &session.stdout;
    let url = out
        .lines()
        .find(|l| l.contains("X-Amz-Signature="))
        .map(|l| {
            l.trim()
                .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no link in {out}"));
    assert!(
        out.contains("Download link for experiment-data/runs/model v2.bin (4.9 KiB), valid 2 h"),
        "{out}"
    );
    assert!(
        url.starts_with(&format!(
            "{}/experiment-data/runs/model%20v2.bin?",
            moto.url
        )),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=7200"), "{url}");
    let (status, fetched) = moto.fetch(&url);
    assert_eq!(status, 200);
    assert_eq!(fetched, bytes);
    assert!(
        out.contains("there is no object runs/missing.bin in bucket experiment-data"),
        "{out}"
    );
    assert!(
        out.contains("a presigned link lasts from 1 s to 7 days"),
        "{out}"
    );
    assert!(out.contains("names no object: give BUCKET/KEY"), "{out}");
    assert_secret_kept(&session, &keys);
    // The link is in the reply only: not in the logs or the audit log.
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap();
    let logs_and_audit = session.everything().replacen(&session.stdout, "", 1);
    assert!(!logs_and_audit.contains(signature));
}

#[test]
fn rb_refuses_a_full_bucket_with_its_counts_and_force_deletes_after_they_were_shown() {
    let moto = Moto::start();
    fill(&moto, "old-runs", 1500, 10);
    moto.create_bucket("scratch");
    let keys = any_keys();
    let session = shell(
        &moto.url,
        &keys,
        &[
            "/minio rb scratch --yes",
            "/minio rb old-runs --yes",
            "/minio rb old-runs --force --yes",
            "/minio rb missing-bucket --yes",
        ],
    );
    let out = &session.stdout;
    assert!(
        out.contains("✓ Bucket scratch removed from endpoint moto (it was empty)."),
        "{out}"
    );
    assert!(
        out.contains("bucket old-runs on endpoint moto is not empty: it holds 1503 objects, 14.7 KiB. `/minio rb old-runs --force` deletes them and the bucket."),
        "{out}"
    );
    assert!(
        out.contains(
            "✓ Bucket old-runs removed from endpoint moto with its 1503 objects, 14.7 KiB."
        ),
        "{out}"
    );
    assert!(
        out.contains("there is no bucket missing-bucket on endpoint moto (code NoSuchBucket"),
        "{out}"
    );
    assert!(!moto.bucket_exists("scratch"));
    assert!(!moto.bucket_exists("old-runs"));

    // --force without a count shown first deletes nothing, and shows the count.
    fill(&moto, "fresh", 3, 10);
    let session = shell(&moto.url, &keys, &["/minio rb fresh --force --yes"]);
    assert!(
        session.stdout.contains("bucket fresh on endpoint moto holds 6 objects, 90 B; nothing was deleted. Run `/minio rb fresh --force` again within 15 min"),
        "{}",
        session.stdout
    );
    assert_eq!(moto.object_count("fresh"), 6);
}

#[test]
fn health_and_a_server_that_is_down() {
    let moto = Moto::start();
    let keys = any_keys();
    let session = shell(&moto.url, &keys, &["/minio health"]);
    assert!(
        session.stdout.contains("S3 endpoint moto (")
            && session
                .stdout
                .contains("has no MinIO health probes; it is reachable: HEAD / answered 200 in "),
        "{}",
        session.stdout
    );
    drop(moto);

    let port = deckhand_it::free_port();
    let session = shell(
        &format!("http://127.0.0.1:{port}"),
        &keys,
        &["/minio buckets", "/minio health"],
    );
    let refused = format!(
        "S3 endpoint moto (http://127.0.0.1:{port}/) cannot be reached: cannot connect: connection refused"
    );
    assert_eq!(
        session.stdout.matches(&refused).count(),
        2,
        "{}",
        session.stdout
    );
}
