//! ACR Tasks: `scheduleRun` (a run goes Queued → Running → Succeeded/Failed over the LRO delay;
//! success pushes its images), `runs`, `runs/{id}` and `runs/{id}/listLogSasUrl` (the log).

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::acr::{TYPE, get, now, require_post, split_image};
use super::{body_object, list_body, rand_hex, resource_id};
use crate::error::{ArmError, ArmResult};
use crate::http::{Ctx, Reply};
use crate::state::{Registry, Shared, key};

/// An ACR Tasks run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Run id (`ca1`, `ca2`, ...).
    pub id: String,
    /// Queued, Running, Succeeded, Failed.
    pub status: String,
    /// Image names `repo:tag` pushed on success.
    pub images: Vec<String>,
    /// The run's log.
    pub log: String,
    /// Created at (RFC 3339).
    pub created: String,
    /// Finished at.
    pub finished: Option<String>,
}

fn run_body(shared: &Shared, r: &Registry, run: &Run) -> Value {
    let mut props = json!({
        "runId": run.id,
        "status": run.status,
        "lastUpdatedTime": run.finished.clone().unwrap_or_else(now),
        "runType": "QuickRun",
        "createTime": run.created,
        "provisioningState": "Succeeded",
        "platform": {"os": "linux", "architecture": "amd64"},
        "agentConfiguration": {"cpu": 2},
        "isArchiveEnabled": false,
        "outputImages": run.images.iter().filter(|_| run.status == "Succeeded").map(|i| {
            let (repo, tag) = split_image(i);
            let digest = r.repos.get(&repo).and_then(|t| t.get(&tag)).map(|m| m.digest.clone()).unwrap_or_default();
            json!({"registry": format!("{}.azurecr.io", r.name.to_ascii_lowercase()), "repository": repo, "tag": tag, "digest": digest})
        }).collect::<Vec<_>>(),
    });
    if run.status != "Queued" {
        props["startTime"] = json!(run.created);
    }
    if let Some(f) = &run.finished {
        props["finishTime"] = json!(f);
    }
    json!({
        "id": format!("{}/runs/{}", resource_id(shared, &r.rg, TYPE, &r.name), run.id),
        "name": run.id,
        "type": "Microsoft.ContainerRegistry/registries/runs",
        "properties": props,
    })
}

pub(super) fn schedule_run(shared: &Arc<Shared>, ctx: &Ctx, rg: &str, name: &str) -> ArmResult {
    require_post(ctx)?;
    let req = body_object(ctx)?;
    let ty = req
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ![
        "DockerBuildRequest",
        "FileTaskRunRequest",
        "EncodedTaskRunRequest",
        "TaskRunRequest",
    ]
    .contains(&ty.as_str())
    {
        return Err(ArmError::bad(
            "InvalidRunRequest",
            format!("The run request type '{ty}' is not supported."),
        ));
    }
    let images: Vec<String> = req
        .get("imageNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let push = req
        .get("isPushEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let dockerfile = req
        .get("dockerFilePath")
        .and_then(Value::as_str)
        .unwrap_or("Dockerfile")
        .to_string();
    let fail = crate::faults::lro_failure(shared, ctx);
    let mut w = shared.world();
    let r = get(&mut w, rg, name)?;
    let id = format!("ca{}", r.runs.len() + 1);
    let run = Run {
        id: id.clone(),
        status: "Queued".into(),
        images: if push { images } else { vec![] },
        log: String::new(),
        created: now(),
        finished: None,
    };
    let body = run_body(shared, r, &run);
    r.runs.insert(id.clone(), run);
    let k = key(rg, name);
    let s = shared.clone();
    let delay = shared.opts.lro_delay;
    tokio::spawn(async move {
        tokio::time::sleep(delay / 2).await;
        let login = {
            let mut w = s.world();
            let Some(r) = w.registries.get_mut(&k) else {
                return;
            };
            let login = format!("{}.azurecr.io", r.name.to_ascii_lowercase());
            if let Some(run) = r.runs.get_mut(&id) {
                run.status = "Running".into();
                run.log.push_str(&format!("2026/01/01 00:00:00 Downloading source code...\n2026/01/01 00:00:01 Finished downloading source code\n2026/01/01 00:00:01 Using acb_vol_{} as the home volume\nStep 1/3 : FROM python:3.11-slim\nStep 2/3 : COPY . /app\nStep 3/3 : RUN pip install -r /app/requirements.txt (from {dockerfile})\n", rand_hex(8)));
            }
            login
        };
        tokio::time::sleep(delay - delay / 2).await;
        let mut w = s.world();
        let Some(r) = w.registries.get_mut(&k) else {
            return;
        };
        let Some(run) = r.runs.get(&id).cloned() else {
            return;
        };
        let mut log = run.log.clone();
        let status = match &fail {
            Some((code, msg)) => {
                log.push_str(&format!("failed to run step ID: build: exit status 1\nRun ID: {id} failed after 0s. Error: {code}: {msg}\n"));
                "Failed"
            }
            None => {
                for i in &run.images {
                    let (repo, tag) = split_image(i);
                    r.repos
                        .entry(repo.clone())
                        .or_default()
                        .insert(tag.clone(), crate::registry::Image::synthetic(&repo, &tag));
                    log.push_str(&format!("Successfully tagged {login}/{repo}:{tag}\nPushing image: {login}/{repo}:{tag}, attempt 1\n"));
                }
                log.push_str(&format!("Run ID: {id} was successful after 1s\n"));
                "Succeeded"
            }
        };
        if let Some(run) = r.runs.get_mut(&id) {
            run.status = status.into();
            run.log = log;
            run.finished = Some(now());
        }
        drop(w);
        crate::k8s::reconcile_all(&s);
    });
    Ok(Reply::json(200, body))
}

pub(super) fn runs(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    name: &str,
    id: Option<&str>,
) -> ArmResult {
    if ctx.method != Method::GET {
        return Err(super::method_not_allowed(ctx));
    }
    let mut w = shared.world();
    let r = get(&mut w, rg, name)?;
    match id {
        None => Ok(Reply::json(
            200,
            list_body(
                r.runs
                    .values()
                    .map(|run| run_body(shared, r, run))
                    .collect(),
            ),
        )),
        Some(id) => {
            let run = r.runs.get(id).ok_or_else(|| {
                ArmError::not_found(
                    "Microsoft.ContainerRegistry/registries/runs",
                    &format!("{name}/{id}"),
                    rg,
                )
            })?;
            Ok(Reply::json(200, run_body(shared, r, run)))
        }
    }
}

pub(super) fn log_url(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rg: &str,
    name: &str,
    id: &str,
) -> ArmResult {
    require_post(ctx)?;
    let mut w = shared.world();
    let r = get(&mut w, rg, name)?;
    if !r.runs.contains_key(id) {
        return Err(ArmError::not_found(
            "Microsoft.ContainerRegistry/registries/runs",
            &format!("{name}/{id}"),
            rg,
        ));
    }
    Ok(Reply::json(
        200,
        json!({"logLink": format!("{}/acr/{}/runlogs/{id}?sv=2026-01-01&sr=b&sig=sandbox", shared.base, r.name.to_ascii_lowercase())}),
    ))
}
