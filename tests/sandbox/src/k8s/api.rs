//! REST handlers of a cluster's Kubernetes API: discovery, and get/list/watch/create/replace/
//! patch/delete on the served resources and their `status`, `scale` and `log` subresources.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use super::controllers;
use super::patch;
use super::resources::{self, Res};
use super::selector::{FieldSelector, LabelSelector};
use super::store::now;
use super::watch::{self, WatchReq};
use crate::http::{Ctx, Reply};
use crate::state::{Shared, World};

/// Minor version served.
pub const MINOR: &str = "33";

/// A Kubernetes `Status` failure reply.
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        s["details"] = d;
    }
    Reply::json(code, s)
}

fn qualified(res: &Res) -> String {
    if res.group.is_empty() {
        res.plural.to_string()
    } else {
        format!("{}.{}", res.plural, res.group)
    }
}

fn not_found(res: &Res, name: &str) -> Reply {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(res)),
        Some(json!({"name": name, "group": res.group, "kind": res.plural})),
    )
}

fn with_type(res: &Res, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    obj
}

fn ok(code: u16, res: &Res, obj: Value) -> Reply {
    Reply::json(code, with_type(res, obj))
}

/// Serves `/k8s/{id}/...`.
pub fn handle(shared: &Arc<Shared>, ctx: &Ctx) -> Reply {
    let id = ctx.segs.get(1).cloned().unwrap_or_default();
    {
        let w = shared.world();
        let Some(kc) = w.kube.get(&id) else {
            return status(
                404,
                "NotFound",
                &format!("no cluster API with id {id:?} in the sandbox"),
                None,
            );
        };
        let token = ctx
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
        if token.as_deref() != Some(kc.user_token.as_str())
            && token.as_deref() != Some(kc.admin_token.as_str())
        {
            return status(401, "Unauthorized", "Unauthorized", None);
        }
        if w.clusters
            .get(&kc.arm_key)
            .is_some_and(|c| c.power == "Stopped")
        {
            return status(
                503,
                "ServiceUnavailable",
                "the cluster is stopped (sandbox): its API server is not running",
                None,
            );
        }
    }
    let rest: Vec<&str> = ctx.segs.iter().skip(2).map(String::as_str).collect();
    match rest.as_slice() {
        [] => Reply::json(
            200,
            json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}),
        ),
        ["version"] => Reply::json(
            200,
            json!({
            "major": "1", "minor": MINOR, "emulationMajor": "1", "emulationMinor": MINOR,
            "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
            "gitVersion": crate::arm::aks::K8S_VERSION.replace("1.", "v1."), "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean", "buildDate": "2025-07-15T00:00:00Z", "goVersion": "go1.24.4",
            "compiler": "gc", "platform": "linux/amd64"}),
        ),
        ["healthz"] | ["livez"] | ["readyz"] => Reply::text(200, "ok"),
        ["api"] => Reply::json(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.base.trim_start_matches("http://")}]}),
        ),
        ["apis"] => Reply::json(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": resources::groups().iter().map(|g| group_doc(g)).collect::<Vec<_>>()}),
        ),
        ["api", "v1"] => Reply::json(200, resource_list("", "v1")),
        ["apis", g] if resources::groups().contains(g) => Reply::json(200, {
            let mut d = group_doc(g);
            d["kind"] = json!("APIGroup");
            d["apiVersion"] = json!("v1");
            d
        }),
        ["apis", g, v] if resources::groups().contains(g) && resources::version_of(g) == *v => {
            Reply::json(200, resource_list(g, v))
        }
        ["api", "v1", tail @ ..] => resource(shared, ctx, &id, "", "v1", tail),
        ["apis", g, v, tail @ ..] => resource(shared, ctx, &id, g, v, tail),
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
    }
}

fn group_doc(g: &str) -> Value {
    let v = resources::version_of(g);
    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    json!({"name": g, "versions": [gv], "preferredVersion": gv})
}

fn resource_list(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut out = Vec::new();
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    for r in resources::ALL
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut e = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs});
        if !r.short.is_empty() {
            e["shortNames"] = json!(r.short);
        }
        out.push(e);
        for s in r.subresources {
            let e = match *s {
                "scale" => {
                    json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
                }
                "log" => {
                    json!({"name": format!("{}/log", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get"]})
                }
                _ => {
                    json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]})
                }
            };
            out.push(e);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out})
}

struct Target {
    res: &'static Res,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(group: &str, version: &str, tail: &[&str]) -> Option<Target> {
    let t = |plural: &str, ns: Option<&str>, name: Option<&&str>, sub: Option<&&str>| {
        let res = resources::find(group, version, plural)?;
        if res.namespaced != ns.is_some() && !(ns.is_none() && name.is_none()) {
            return None;
        }
        Some(Target {
            res,
            ns: ns.map(str::to_string),
            name: name.map(|s| s.to_string()),
            sub: sub.map(|s| s.to_string()),
        })
    };
    match tail {
        ["namespaces", ns, plural, rest @ ..]
            if rest.len() <= 2
                && resources::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            t(plural, Some(ns), rest.first(), rest.get(1))
        }
        [plural] => t(plural, None, None, None),
        [plural, name] => t(plural, None, Some(name), None),
        [plural, name, sub] => t(plural, None, Some(name), Some(sub)),
        _ => None,
    }
}

fn manager(ctx: &Ctx) -> String {
    ctx.query.get("fieldManager").cloned().unwrap_or_else(|| {
        ctx.header("user-agent")
            .and_then(|u| u.split('/').next().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    })
}

fn resource(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    id: &str,
    group: &str,
    version: &str,
    tail: &[&str],
) -> Reply {
    let Some(tg) = parse_target(group, version, tail) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    };
    let res = tg.res;
    match (&tg.name, &ctx.method) {
        (None, &Method::GET) if ctx.flag("watch") => {
            let (labels, fields) = match selectors(ctx) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let timeout = ctx
                .query
                .get("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1800);
            watch::start(
                shared,
                id,
                WatchReq {
                    res,
                    ns: tg.ns.clone(),
                    labels,
                    fields,
                    rv: ctx
                        .query
                        .get("resourceVersion")
                        .cloned()
                        .filter(|s| !s.is_empty()),
                    bookmarks: ctx.flag("allowWatchBookmarks"),
                    initial_events: ctx.flag("sendInitialEvents"),
                    timeout: Duration::from_secs(timeout),
                },
            )
        }
        (None, &Method::GET) => list(shared, ctx, id, &tg),
        (None, &Method::POST) => create(shared, ctx, id, &tg),
        (None, &Method::DELETE) => delete_collection(shared, ctx, id, &tg),
        (Some(_), _) => item(shared, ctx, id, &tg),
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            None,
        ),
    }
}

fn selectors(ctx: &Ctx) -> Result<(LabelSelector, FieldSelector), Reply> {
    let l = LabelSelector::parse(
        ctx.query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| status(400, "BadRequest", &e, None))?;
    let f = FieldSelector::parse(
        ctx.query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| status(400, "BadRequest", &e, None))?;
    Ok((l, f))
}

fn list(shared: &Arc<Shared>, ctx: &Ctx, id: &str, tg: &Target) -> Reply {
    let (labels, fields) = match selectors(ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let w = shared.world();
    let Some(kc) = w.kube.get(id) else {
        return status(404, "NotFound", "cluster gone", None);
    };
    let mut items: Vec<Value> = kc
        .store
        .list(&tg.res.key(), tg.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .map(|o| with_type(tg.res, o))
        .collect();
    let offset: usize = ctx
        .query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let total = items.len();
    items = items.into_iter().skip(offset).take(limit).collect();
    let mut meta = json!({"resourceVersion": kc.store.rv.to_string()});
    if offset + items.len() < total {
        meta["continue"] = json!((offset + items.len()).to_string());
        meta["remainingItemCount"] = json!(total - offset - items.len());
    }
    Reply::json(
        200,
        json!({"kind": format!("{}List", tg.res.kind), "apiVersion": tg.res.api_version(), "metadata": meta, "items": items}),
    )
}

fn invalid(res: &Res, name: &str, field: &str, msg: &str) -> Reply {
    status(
        422,
        "Invalid",
        &format!("{} \"{name}\" is invalid: {field}: {msg}", res.kind),
        Some(
            json!({"name": name, "group": res.group, "kind": res.kind, "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field}]}),
        ),
    )
}

fn body(ctx: &Ctx) -> Result<Value, Reply> {
    match ctx.json() {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(Value::Array(a)) => Ok(Value::Array(a)),
        _ => Err(status(
            400,
            "BadRequest",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            None,
        )),
    }
}

fn create(shared: &Arc<Shared>, ctx: &Ctx, id: &str, tg: &Target) -> Reply {
    let res = tg.res;
    let mut obj = match body(ctx) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(k) = obj["kind"].as_str()
        && k != res.kind
    {
        return status(
            400,
            "BadRequest",
            &format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                obj["apiVersion"].as_str().unwrap_or(""),
                res.api_version()
            ),
            None,
        );
    }
    let ns = tg.ns.clone().unwrap_or_default();
    if let Some(bns) = obj["metadata"]["namespace"].as_str()
        && !ns.is_empty()
        && bns != ns
    {
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
            None,
        );
    }
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) => obj["metadata"]["name"] = json!(format!("{g}{}", crate::arm::rand_hex(5))),
            None => {
                return status(
                    422,
                    "Invalid",
                    &format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        res.kind
                    ),
                    None,
                );
            }
        }
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !super::admission::valid_name(res, &name) {
        return invalid(
            res,
            &name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        );
    }
    if let Err(e) = super::admission::validate_for(res, &obj) {
        return invalid(
            res,
            &name,
            e.split(':').next().unwrap_or(""),
            e.split_once(": ").map(|x| x.1).unwrap_or(&e),
        );
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("uid");
        m.remove("managedFields");
    }
    super::admission::defaults(res, &mut obj);
    let mut w = shared.world();
    let Some(kc) = w.kube.get_mut(id) else {
        return status(404, "NotFound", "cluster gone", None);
    };
    if res.namespaced && kc.store.get("namespaces", "", &ns).is_none() {
        return status(
            404,
            "NotFound",
            &format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        );
    }
    if kc.store.get(&res.key(), &ns, &name).is_some() {
        return status(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", qualified(res)),
            Some(json!({"name": name, "group": res.group, "kind": res.plural})),
        );
    }
    let okey = (res.key(), ns.clone(), name.clone());
    let mut owners = Default::default();
    patch::record_update(None, &obj, &mut owners, &manager(ctx));
    obj["metadata"]["managedFields"] = patch::managed_fields(&owners, &res.api_version(), &now());
    if ctx.query.contains_key("dryRun") {
        return ok(201, res, obj);
    }
    kc.store.owners.insert(okey, owners);
    let out = kc.store.create(&res.key(), &ns, obj);
    controllers::reconcile(shared, &mut w, id);
    ok(201, res, out)
}

fn current(w: &World, id: &str, tg: &Target) -> Option<Value> {
    let kc = w.kube.get(id)?;
    kc.store
        .get(
            &tg.res.key(),
            tg.ns.as_deref().unwrap_or(""),
            tg.name.as_deref()?,
        )
        .cloned()
}

fn scale_of(_res: &Res, obj: &Value) -> Value {
    let sel =
        LabelSelector::from_match_labels(&obj["spec"]["selector"]["matchLabels"]).to_string_form();
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"], "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"], "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel}})
}

fn conflict(res: &Res, name: &str) -> Reply {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(res)
        ),
        Some(json!({"name": name, "group": res.group, "kind": res.plural})),
    )
}

fn item(shared: &Arc<Shared>, ctx: &Ctx, id: &str, tg: &Target) -> Reply {
    let res = tg.res;
    let name = tg.name.clone().unwrap_or_default();
    let ns = tg.ns.clone().unwrap_or_default();
    let sub = tg.sub.as_deref();
    if let Some(s) = sub
        && !res.subresources.contains(&s)
    {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    }
    let is_apply = ctx.method == Method::PATCH
        && ctx
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/apply-patch"));
    let mut w = shared.world();
    let existing = current(&w, id, tg);
    if existing.is_none() && !(is_apply && sub.is_none()) {
        return not_found(res, &name);
    }
    match (&ctx.method, sub) {
        (&Method::GET, None | Some("status")) => ok(200, res, existing.unwrap_or_default()),
        (&Method::GET, Some("scale")) => {
            Reply::json(200, scale_of(res, &existing.unwrap_or_default()))
        }
        (&Method::GET, Some("log")) => {
            super::kubelet::pod_log(shared, ctx, &existing.unwrap_or_default())
        }
        (&Method::DELETE, None) => {
            let Some(kc) = w.kube.get_mut(id) else {
                return not_found(res, &name);
            };
            let Some(mut gone) = kc.store.delete(&res.key(), &ns, &name) else {
                return not_found(res, &name);
            };
            controllers::reconcile(shared, &mut w, id);
            if res.plural == "pods" || res.plural == "namespaces" {
                gone["metadata"]["deletionTimestamp"] = json!(now());
                if res.plural == "pods" {
                    gone["metadata"]["deletionGracePeriodSeconds"] = json!(30);
                } else {
                    gone["status"]["phase"] = json!("Terminating");
                }
                return ok(200, res, gone);
            }
            Reply::json(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": res.group, "kind": res.plural, "uid": gone["metadata"]["uid"]}}),
            )
        }
        (&Method::PUT, _) | (&Method::PATCH, _) => {
            let input = match body(ctx) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let old = existing.clone();
            let mgr = manager(ctx);
            let okey = (res.key(), ns.clone(), name.clone());
            let mut owners = w
                .kube
                .get(id)
                .and_then(|k| k.store.owners.get(&okey).cloned())
                .unwrap_or_default();
            let mut new = match sub {
                Some("scale") => {
                    let old = old.clone().unwrap_or_default();
                    let mut sc = scale_of(res, &old);
                    if ctx.method == Method::PUT {
                        if let Some(rv) = input["metadata"]["resourceVersion"].as_str()
                            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
                        {
                            return conflict(res, &name);
                        }
                        sc = input.clone();
                    } else if let Err(r) =
                        apply_patch(ctx, &mut sc, &input, &mut owners, &mgr, &res.api_version())
                    {
                        return r;
                    }
                    let Some(rep) = sc["spec"]["replicas"].as_i64() else {
                        return invalid(res, &name, "spec.replicas", "Required value");
                    };
                    if rep < 0 {
                        return invalid(
                            res,
                            &name,
                            "spec.replicas",
                            "Invalid value: must be greater than or equal to 0",
                        );
                    }
                    let mut o = old.clone();
                    o["spec"]["replicas"] = json!(rep);
                    owners.insert("/spec/replicas".into(), (mgr.clone(), "Update"));
                    o
                }
                _ => {
                    let mut target = old
                        .clone()
                        .map(|o| with_type(res, o))
                        .unwrap_or_else(|| json!({}));
                    if ctx.method == Method::PUT {
                        let Some(rv) = input["metadata"]["resourceVersion"].as_str() else {
                            return invalid(
                                res,
                                &name,
                                "metadata.resourceVersion",
                                "Invalid value: 0x0: must be specified for an update",
                            );
                        };
                        if Some(rv) != target["metadata"]["resourceVersion"].as_str() {
                            return conflict(res, &name);
                        }
                        if input["metadata"]["name"].as_str() != Some(name.as_str()) {
                            return status(
                                400,
                                "BadRequest",
                                "the name of the object does not match the name on the URL",
                                None,
                            );
                        }
                        let before = target.clone();
                        target = input.clone();
                        patch::record_update(Some(&before), &target, &mut owners, &mgr);
                    } else {
                        let before_rv = target["metadata"]["resourceVersion"].clone();
                        if let Err(r) = apply_patch(
                            ctx,
                            &mut target,
                            &input,
                            &mut owners,
                            &mgr,
                            &res.api_version(),
                        ) {
                            return r;
                        }
                        if target["metadata"]["resourceVersion"] != before_rv
                            && !before_rv.is_null()
                            && !is_apply
                        {
                            return conflict(res, &name);
                        }
                        target["metadata"]["resourceVersion"] = before_rv;
                    }
                    target
                }
            };
            if let Some(m) = new.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            new["metadata"]["name"] = json!(name);
            if let Some(o) = &old {
                for f in ["uid", "creationTimestamp", "namespace"] {
                    new["metadata"][f] = o["metadata"][f].clone();
                }
                // The main resource cannot change status; the status subresource only changes status.
                if res.subresources.contains(&"status") {
                    if sub == Some("status") {
                        let st = new["status"].clone();
                        new = o.clone();
                        new["status"] = st;
                    } else if sub.is_none() && !o["status"].is_null() {
                        new["status"] = o["status"].clone();
                    }
                }
            } else {
                if let Err(e) = super::admission::validate_for(res, &new) {
                    return invalid(
                        res,
                        &name,
                        e.split(':').next().unwrap_or(""),
                        e.split_once(": ").map(|x| x.1).unwrap_or(&e),
                    );
                }
                super::admission::defaults(res, &mut new);
            }
            if let Err(e) = super::admission::validate_for(res, &new) {
                return invalid(
                    res,
                    &name,
                    e.split(':').next().unwrap_or(""),
                    e.split_once(": ").map(|x| x.1).unwrap_or(&e),
                );
            }
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            new["metadata"]["managedFields"] =
                patch::managed_fields(&owners, &res.api_version(), &now());
            if ctx.query.contains_key("dryRun") {
                return ok(200, res, new);
            }
            let Some(kc) = w.kube.get_mut(id) else {
                return not_found(res, &name);
            };
            if res.namespaced && kc.store.get("namespaces", "", &ns).is_none() {
                return status(
                    404,
                    "NotFound",
                    &format!("namespaces \"{ns}\" not found"),
                    None,
                );
            }
            kc.store.owners.insert(okey, owners);
            let created = old.is_none();
            let out = kc.store.update(&res.key(), &ns, new);
            controllers::reconcile(shared, &mut w, id);
            if sub == Some("scale") {
                return Reply::json(200, scale_of(res, &out));
            }
            ok(if created { 201 } else { 200 }, res, out)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            None,
        ),
    }
}

fn apply_patch(
    ctx: &Ctx,
    target: &mut Value,
    input: &Value,
    owners: &mut super::store::Owners,
    mgr: &str,
    api_version: &str,
) -> Result<(), Reply> {
    let ct = ctx.header("content-type").unwrap_or_default();
    let before = target.clone();
    if ct.starts_with("application/json-patch+json") {
        patch::json_patch(target, input).map_err(|e| {
            status(
                422,
                "Invalid",
                &format!("the server rejected our request due to an error in our request: {e}"),
                None,
            )
        })?;
    } else if ct.starts_with("application/merge-patch+json") {
        patch::merge(target, input);
    } else if ct.starts_with("application/strategic-merge-patch+json") {
        patch::strategic(target, input);
    } else if ct.starts_with("application/apply-patch") {
        let Some(m) = ctx.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(status(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                None,
            ));
        };
        let force = ctx.flag("force");
        let existing = if before.as_object().is_some_and(|o| o.is_empty()) {
            None
        } else {
            Some(&before)
        };
        *target = patch::apply(existing, input, owners, m, force).map_err(|conflicts| {
            let n = conflicts.len();
            let causes: Vec<Value> = conflicts.iter().map(|(who, path)| json!({"reason": "FieldManagerConflict",
                "message": format!("conflict with \"{who}\" using {api_version}"), "field": path.replace('/', ".")})).collect();
            let list: Vec<String> = conflicts.iter().map(|(who, path)| format!("conflict with \"{who}\" using {api_version}: {}", path.replace('/', "."))).collect();
            status(409, "Conflict", &format!("Apply failed with {n} conflict{}: {}", if n == 1 { "" } else { "s" }, list.join(", ")),
                Some(json!({"causes": causes})))
        })?;
        return Ok(());
    } else {
        return Err(status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
            None,
        ));
    }
    patch::record_update(Some(&before), target, owners, mgr);
    Ok(())
}

fn delete_collection(shared: &Arc<Shared>, ctx: &Ctx, id: &str, tg: &Target) -> Reply {
    let (labels, fields) = match selectors(ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut w = shared.world();
    let Some(kc) = w.kube.get_mut(id) else {
        return status(404, "NotFound", "cluster gone", None);
    };
    let victims: Vec<Value> = kc
        .store
        .list(&tg.res.key(), tg.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .collect();
    let mut items = Vec::new();
    for v in victims {
        let n = v["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Some(o) = kc.store.delete(
            &tg.res.key(),
            &n,
            v["metadata"]["name"].as_str().unwrap_or(""),
        ) {
            items.push(with_type(tg.res, o));
        }
    }
    let rv = kc.store.rv;
    controllers::reconcile(shared, &mut w, id);
    Reply::json(
        200,
        json!({"kind": format!("{}List", tg.res.kind), "apiVersion": tg.res.api_version(),
        "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}
