//! A registry's data plane under `/acr/{name}`: the OCI distribution API (`/v2/`, catalog, tags,
//! manifests with `Docker-Content-Digest`) behind ACR's token exchange (`/oauth2/exchange`,
//! `/oauth2/token`) or admin basic auth; ACR's tag API (`/acr/v1/`, in `registry_tags.rs`);
//! plus task-run logs (`/runlogs/{id}`).

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{Ctx, Reply};
use crate::state::{Shared, key, lock};
use crate::token::Issued;

/// Media type of the manifests served.
pub const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An image manifest stored under a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:...` of `manifest`.
    pub digest: String,
    /// Manifest JSON.
    pub manifest: String,
    /// When the tag was pushed (RFC 3339), as ACR's tag API reports it.
    pub created: String,
}

fn sha(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

impl Image {
    /// A deterministic synthetic image for `repo:tag` (one config blob, one layer).
    pub fn synthetic(repo: &str, tag: &str) -> Self {
        let config = sha(format!("config:{repo}:{tag}").as_bytes());
        let layer = sha(format!("layer:{repo}:{tag}").as_bytes());
        let manifest = serde_json::to_string_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 29_150_000, "digest": layer}],
        }))
        .unwrap_or_default();
        Self {
            digest: sha(manifest.as_bytes()),
            manifest,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }
    }
}

fn oci_error(status: u16, code: &str, message: &str, detail: Value) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
    )
    .with("Docker-Distribution-Api-Version", "registry/2.0")
}

fn challenge(shared: &Shared, reg: &str, scope: Option<&str>) -> Reply {
    let mut h = format!(
        "Bearer realm=\"{}/acr/{reg}/oauth2/token\",service=\"{reg}.azurecr.io\"",
        shared.base
    );
    if let Some(s) = scope {
        h.push_str(&format!(",scope=\"{s}\""));
    }
    oci_error(
        401,
        "UNAUTHORIZED",
        "authentication required, visit https://aka.ms/acr/authorization for more information.",
        Value::Null,
    )
    .with("WWW-Authenticate", h)
}

fn new_token(shared: &Shared, kind: &str, reg: &str) -> String {
    let t = format!("acr{kind}.{}", uuid::Uuid::new_v4().simple());
    lock(&shared.tokens).insert(
        t.clone(),
        Issued {
            client_id: format!("acr-{kind}:{reg}"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(3),
        },
    );
    t
}

fn token_ok(shared: &Shared, t: &str, kind: &str, reg: &str) -> bool {
    lock(&shared.tokens).get(t).is_some_and(|i| {
        i.client_id == format!("acr-{kind}:{reg}") && i.expires_at > chrono::Utc::now()
    })
}

/// Checks basic credentials for `reg`: the admin user's, or an enabled repository token's (the
/// sandbox does not narrow a token's access to its scope map's repositories).
fn basic_ok(shared: &Shared, reg: &str, header: &str) -> bool {
    let Some(b) = header.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
        return false;
    };
    let s = String::from_utf8_lossy(&raw).to_string();
    let Some((user, pass)) = s.split_once(':') else {
        return false;
    };
    let w = shared.world();
    w.registries.values().any(|r| {
        r.name.eq_ignore_ascii_case(reg)
            && r.body["properties"]["adminUserEnabled"] == json!(true)
            && user.eq_ignore_ascii_case(&r.name)
            && r.passwords.iter().any(|p| p == pass)
    }) || w.registries.values().any(|r| {
        let token = user.to_ascii_lowercase();
        r.name.eq_ignore_ascii_case(reg)
            && r.tokens
                .get(&token)
                .is_some_and(|t| t["properties"]["status"] == json!("enabled"))
            && r.token_passwords
                .get(&token)
                .is_some_and(|p| p.values().any(|v| v == pass))
    })
}

/// A valid ACR access token for `reg` in the `Authorization` header.
fn bearer_ok(shared: &Shared, ctx: &Ctx, reg: &str) -> bool {
    ctx.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
        .is_some_and(|t| token_ok(shared, &t, "access", reg))
}

/// The registry's OCI error reply (shared with `registry_tags`).
pub(crate) fn error_reply(status: u16, code: &str, message: &str, detail: Value) -> Reply {
    oci_error(status, code, message, detail)
}

/// Serves `/acr/{name}/...`.
pub fn handle(shared: &Shared, ctx: &Ctx) -> Reply {
    let reg = ctx.seg_lc(1);
    let exists = shared
        .world()
        .registries
        .values()
        .any(|r| r.name.eq_ignore_ascii_case(&reg));
    if !exists {
        return oci_error(
            404,
            "NAME_UNKNOWN",
            "registry not known to the sandbox",
            json!({"registry": reg}),
        );
    }
    let rest: Vec<&str> = ctx.segs.iter().skip(2).map(String::as_str).collect();
    match rest.as_slice() {
        ["oauth2", "exchange"] if ctx.method == Method::POST => {
            let f = ctx.form();
            if f.get("grant_type").map(String::as_str) != Some("access_token") {
                return oci_error(
                    400,
                    "UNSUPPORTED",
                    "grant_type must be access_token",
                    Value::Null,
                );
            }
            let aad = f.get("access_token").cloned().unwrap_or_default();
            if crate::token::check_token(shared, &aad).is_err() {
                return oci_error(
                    401,
                    "UNAUTHORIZED",
                    "the AAD access token is invalid or expired",
                    Value::Null,
                );
            }
            Reply::json(
                200,
                json!({"refresh_token": new_token(shared, "refresh", &reg)}),
            )
        }
        ["oauth2", "token"] => {
            let f = if ctx.method == Method::POST {
                ctx.form()
            } else {
                ctx.query.clone()
            };
            let ok = match f.get("grant_type").map(String::as_str) {
                Some("refresh_token") => f
                    .get("refresh_token")
                    .is_some_and(|t| token_ok(shared, t, "refresh", &reg)),
                Some("password") => {
                    let user = f.get("username").cloned().unwrap_or_default();
                    let pass = f.get("password").cloned().unwrap_or_default();
                    let h = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                    );
                    basic_ok(shared, &reg, &h)
                }
                _ => ctx
                    .header("authorization")
                    .is_some_and(|h| basic_ok(shared, &reg, &h)),
            };
            if !ok {
                return oci_error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required, visit https://aka.ms/acr/authorization for more information.",
                    Value::Null,
                );
            }
            Reply::json(
                200,
                json!({"access_token": new_token(shared, "access", &reg)}),
            )
        }
        ["runlogs", id] => {
            let w = shared.world();
            let log = w
                .registries
                .values()
                .find(|r| r.name.eq_ignore_ascii_case(&reg))
                .and_then(|r| r.runs.get(*id))
                .map(|r| r.log.clone());
            match log {
                Some(l) => Reply::text(200, l),
                None => Reply::text(404, "BlobNotFound"),
            }
        }
        ["acr", "v1", tail @ ..] => {
            if !bearer_ok(shared, ctx, &reg) {
                let (repo, action) = match tail {
                    [repo @ .., "_tags"] => (repo.join("/"), "metadata_read"),
                    [repo @ .., "_tags", _] => (repo.join("/"), "delete"),
                    other => (other.join("/"), "metadata_read"),
                };
                return challenge(shared, &reg, Some(&format!("repository:{repo}:{action}")));
            }
            crate::registry_tags::handle(shared, ctx, &reg, tail)
        }
        ["v2", tail @ ..] => {
            let authed = match ctx.header("authorization") {
                Some(h) if h.starts_with("Bearer ") => {
                    token_ok(shared, h[7..].trim(), "access", &reg)
                }
                Some(h) => basic_ok(shared, &reg, &h),
                None => false,
            };
            if !authed {
                let scope = match tail {
                    [] => None,
                    ["_catalog"] => Some("registry:catalog:*".to_string()),
                    t => Some(format!(
                        "repository:{}:pull",
                        t[..t.len().saturating_sub(2)].join("/")
                    )),
                };
                return challenge(shared, &reg, scope.as_deref());
            }
            v2(shared, ctx, &reg, tail).with("Docker-Distribution-Api-Version", "registry/2.0")
        }
        _ => oci_error(
            404,
            "NOT_FOUND",
            "not served by the sandbox registry",
            Value::Null,
        ),
    }
}

fn v2(shared: &Shared, ctx: &Ctx, reg: &str, tail: &[&str]) -> Reply {
    let w = shared.world();
    let Some(r) = w
        .registries
        .values()
        .find(|r| r.name.eq_ignore_ascii_case(reg))
    else {
        return oci_error(404, "NAME_UNKNOWN", "registry not found", Value::Null);
    };
    let _ = key;
    match tail {
        [] => Reply::json(200, json!({})),
        ["_catalog"] => Reply::json(
            200,
            json!({"repositories": r.repos.keys().collect::<Vec<_>>()}),
        ),
        [repo @ .., "tags", "list"] if !repo.is_empty() => {
            let repo = repo.join("/");
            match r.repos.get(&repo) {
                Some(tags) => Reply::json(
                    200,
                    json!({"name": repo, "tags": tags.keys().collect::<Vec<_>>()}),
                ),
                None => oci_error(
                    404,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                    json!({"name": repo}),
                ),
            }
        }
        [repo @ .., "manifests", reference] if !repo.is_empty() => {
            let repo = repo.join("/");
            let Some(tags) = r.repos.get(&repo) else {
                return oci_error(
                    404,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                    json!({"name": repo}),
                );
            };
            let img = tags
                .get(*reference)
                .or_else(|| tags.values().find(|i| i.digest == *reference));
            match img {
                Some(i) => {
                    let mut rep = Reply::json(200, Value::Null);
                    rep.body = if ctx.method == Method::HEAD {
                        vec![]
                    } else {
                        i.manifest.clone().into_bytes()
                    };
                    rep.content_type = Some(MANIFEST_TYPE.into());
                    rep.with("Docker-Content-Digest", i.digest.clone())
                        .with("ETag", format!("\"{}\"", i.digest))
                }
                None => oci_error(
                    404,
                    "MANIFEST_UNKNOWN",
                    "manifest tagged by \"{reference}\" is not found",
                    json!({"Tag": reference}),
                ),
            }
        }
        _ => oci_error(
            404,
            "NOT_FOUND",
            "not served by the sandbox registry",
            Value::Null,
        ),
    }
}
