//! ACR's own tag API under `/acr/{name}/acr/v1/`: `GET {repo}/_tags` (newest first with
//! `orderby=timedesc`, pages of `n` after `last`, linked by `Link: <...>; rel="next"`) and
//! `DELETE {repo}/_tags/{tag}` (untag: the manifest stays while other tags name it).

use axum::http::Method;
use serde_json::{Value, json};

use crate::http::{Ctx, Reply};
use crate::registry::error_reply;
use crate::state::Shared;

/// Page size when the client names none (ACR's default).
const DEFAULT_PAGE: usize = 100;

fn tag_body(name: &str, image: &crate::registry::Image) -> Value {
    json!({
        "name": name,
        "digest": image.digest,
        "createdTime": image.created,
        "lastUpdateTime": image.created,
        "signed": false,
        "changeableAttributes": {"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true},
    })
}

fn unknown_repository(repo: &str) -> Reply {
    error_reply(
        404,
        "NAME_UNKNOWN",
        "repository name not known to registry",
        json!({"name": repo}),
    )
}

/// Serves `tail` below `/acr/{reg}/acr/v1/`.
pub fn handle(shared: &Shared, ctx: &Ctx, reg: &str, tail: &[&str]) -> Reply {
    match (&ctx.method, tail) {
        (&Method::GET, [repo @ .., "_tags"]) if !repo.is_empty() => list(shared, ctx, reg, repo),
        (&Method::DELETE, [repo @ .., "_tags", tag]) if !repo.is_empty() => {
            untag(shared, reg, &repo.join("/"), tag)
        }
        _ => error_reply(
            404,
            "NOT_FOUND",
            "not served by the sandbox registry",
            Value::Null,
        ),
    }
}

fn list(shared: &Shared, ctx: &Ctx, reg: &str, repo: &[&str]) -> Reply {
    let repo = repo.join("/");
    let w = shared.world();
    let Some(tags) = w
        .registries
        .values()
        .find(|r| r.name.eq_ignore_ascii_case(reg))
        .and_then(|r| r.repos.get(&repo))
    else {
        return unknown_repository(&repo);
    };
    let order = ctx.query.get("orderby").map(String::as_str).unwrap_or("");
    let mut all: Vec<(&String, &crate::registry::Image)> = tags.iter().collect();
    match order {
        "timedesc" => all.sort_by(|a, b| b.1.created.cmp(&a.1.created).then(a.0.cmp(b.0))),
        "timeasc" => all.sort_by(|a, b| a.1.created.cmp(&b.1.created).then(a.0.cmp(b.0))),
        _ => {}
    }
    let n = ctx
        .query
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PAGE);
    let start = match ctx.query.get("last") {
        Some(last) => all
            .iter()
            .position(|(name, _)| *name == last)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(n)
        .map(|(name, image)| tag_body(name, image))
        .collect();
    let reply = Reply::json(
        200,
        json!({"registry": format!("{reg}.azurecr.io"), "imageName": repo, "tags": page}),
    );
    let last_shown = all.get(start + n - 1).filter(|_| start + n < all.len());
    match last_shown {
        Some((name, _)) => reply.with(
            "Link",
            format!("</acr/v1/{repo}/_tags?last={name}&n={n}&orderby={order}>; rel=\"next\""),
        ),
        None => reply,
    }
}

fn untag(shared: &Shared, reg: &str, repo: &str, tag: &str) -> Reply {
    let mut w = shared.world();
    let Some(tags) = w
        .registries
        .values_mut()
        .find(|r| r.name.eq_ignore_ascii_case(reg))
        .and_then(|r| r.repos.get_mut(repo))
    else {
        return unknown_repository(repo);
    };
    match tags.remove(tag) {
        Some(_) => Reply::empty(202),
        None => error_reply(
            404,
            "TAG_UNKNOWN",
            &format!("the specified tag does not exist: {tag}"),
            json!({"Tag": tag}),
        ),
    }
}
