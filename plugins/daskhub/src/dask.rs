//! `/dask deploy|scale|endpoints|delete`: the seed's ARL on Kubernetes (seed 004) — a Dask
//! scheduler (Service ports 8786 and 8787), workers, and a Jupyter notebook (8888), made by
//! server-side apply so a second deploy with the same options changes nothing.
//!
//! The notebook's password is generated on the first deploy, kept in the Secret
//! `NAME-notebook`, and shown only to the caller (an ephemeral reply), never in the channel.

use base64::Engine;
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use serde_json::{Value, json};

use crate::commands::{DaskDelete, DaskDeploy, DaskEndpoints, DaskScale};
use crate::config::Settings;
use crate::deploy::token;
use crate::kube;

const DEFAULT_NAMESPACE: &str = "default";
const MAX_WORKERS: i64 = 500;

/// The objects of one deployment, by kind and name.
fn parts(name: &str) -> [(&'static str, &'static str, String); 6] {
    [
        ("apps/v1", "Deployment", format!("{name}-scheduler")),
        ("apps/v1", "Deployment", format!("{name}-worker")),
        ("apps/v1", "Deployment", format!("{name}-notebook")),
        ("v1", "Service", format!("{name}-scheduler")),
        ("v1", "Service", format!("{name}-notebook")),
        ("v1", "Secret", format!("{name}-notebook")),
    ]
}

fn labels(name: &str, component: &str) -> Value {
    json!({"app.kubernetes.io/name": "dask", "app.kubernetes.io/instance": name, "app.kubernetes.io/component": component, "app.kubernetes.io/managed-by": "deckhand"})
}

/// A Kubernetes quantity as the API accepts it: digits with an optional fraction and suffix.
fn check_quantity(option: &str, value: &str) -> Result<(), PluginError> {
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let suffixes = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"];
    let number_ok = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    if number_ok && suffixes.contains(&suffix) {
        Ok(())
    } else {
        Err(PluginError::bad_input(
            option,
            format!(
                "{value:?} is not a Kubernetes quantity: write e.g. 500m or 2 for CPU, 512Mi or 4Gi for memory"
            ),
        ))
    }
}

/// `SERVER:/PATH`.
fn parse_nfs(text: &str) -> Result<(String, String), PluginError> {
    let bad = || {
        PluginError::bad_input(
            "nfs",
            format!("{text:?} is not SERVER:/PATH (e.g. 192.168.0.168:/arl)"),
        )
    };
    let (server, path) = text.split_once(':').ok_or_else(bad)?;
    let server_ok = !server.is_empty()
        && server.len() <= 253
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if !server_ok || !path.starts_with('/') || path.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok((server.to_owned(), path.to_owned()))
}

fn check_workers(workers: i64) -> Result<(), PluginError> {
    if (0..=MAX_WORKERS).contains(&workers) {
        Ok(())
    } else {
        Err(PluginError::bad_input(
            "workers",
            format!("--workers is 0 to {MAX_WORKERS}, not {workers}"),
        ))
    }
}

/// An image reference: no spaces or control characters, not empty.
fn check_image(image: &str) -> Result<(), PluginError> {
    if image.is_empty()
        || image.len() > 512
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(PluginError::bad_input(
            "image",
            format!(
                "{image:?} is not an image reference (e.g. arl_img:latest or intens.azurecr.io/arl:1.2)"
            ),
        ));
    }
    Ok(())
}

/// The manifests, in apply order.
pub fn manifests(
    args: &DaskDeploy,
    namespace: &str,
    password_secret: &Value,
) -> Result<Vec<Value>, PluginError> {
    let name = &args.name;
    let nfs = args.nfs.as_deref().map(parse_nfs).transpose()?;
    let pull = args
        .pull_secret
        .as_ref()
        .map(|s| json!([{"name": s}]))
        .unwrap_or(json!([]));
    let (volumes, mounts) = match &nfs {
        Some((server, path)) => (
            json!([{"name": "arl-data", "nfs": {"server": server, "path": path}}]),
            json!([{"name": "arl-data", "mountPath": "/arl/data"}]),
        ),
        None => (json!([]), json!([])),
    };
    let scheduler_address = format!("tcp://{name}-scheduler:8786");
    let deployment = |component: &str, replicas: i64, container: Value| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": format!("{name}-{component}"), "namespace": namespace, "labels": labels(name, component)},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": component}},
                "template": {
                    "metadata": {"labels": labels(name, component)},
                    "spec": {"imagePullSecrets": pull, "volumes": volumes, "containers": [container]},
                },
            },
        })
    };
    let scheduler = deployment(
        "scheduler",
        1,
        json!({
            "name": "scheduler", "image": args.image, "imagePullPolicy": "IfNotPresent",
            "command": ["dask-scheduler", "--port", "8786", "--dashboard-address", ":8787"],
            "ports": [{"name": "scheduler", "containerPort": 8786}, {"name": "dashboard", "containerPort": 8787}],
            "volumeMounts": mounts,
        }),
    );
    let worker = deployment(
        "worker",
        args.workers,
        json!({
            "name": "worker", "image": args.image, "imagePullPolicy": "IfNotPresent",
            "command": ["dask-worker", scheduler_address, "--nthreads", "1", "--memory-limit", args.worker_memory],
            "resources": {
                "requests": {"cpu": args.worker_cpu, "memory": args.worker_memory},
                "limits": {"cpu": args.worker_cpu, "memory": args.worker_memory},
            },
            "volumeMounts": mounts,
        }),
    );
    let notebook = deployment(
        "notebook",
        1,
        json!({
            "name": "notebook", "image": args.image, "imagePullPolicy": "IfNotPresent",
            "command": ["jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root"],
            "env": [
                {"name": "DASK_SCHEDULER_ADDRESS", "value": format!("tcp://{name}-scheduler:8786")},
                {"name": "JUPYTER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{name}-notebook"), "key": "password"}}},
            ],
            "ports": [{"name": "notebook", "containerPort": 8888}],
            "volumeMounts": mounts,
        }),
    );
    let service = |component: &str, ports: Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": format!("{name}-{component}"), "namespace": namespace, "labels": labels(name, component)},
            "spec": {
                "type": "NodePort",
                "selector": {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": component},
                "ports": ports,
            },
        })
    };
    Ok(vec![
        password_secret.clone(),
        scheduler,
        service(
            "scheduler",
            json!([{"name": "scheduler", "port": 8786, "targetPort": 8786}, {"name": "dashboard", "port": 8787, "targetPort": 8787}]),
        ),
        worker,
        notebook,
        service(
            "notebook",
            json!([{"name": "notebook", "port": 8888, "targetPort": 8888}]),
        ),
    ])
}

fn password_secret(name: &str, namespace: &str, password: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{name}-notebook"), "namespace": namespace, "labels": labels(name, "notebook")},
        "type": "Opaque",
        "data": {"password": base64::engine::general_purpose::STANDARD.encode(password)},
    })
}

fn existing_password(secret: &Value) -> Option<String> {
    let text = secret["data"]["password"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok().filter(|p| !p.is_empty())
}

fn place<'a>(
    settings: &Settings,
    cluster: Option<&str>,
    namespace: Option<&'a str>,
) -> Result<(String, &'a str), PluginError> {
    Ok((
        settings.kube_cluster(cluster)?,
        namespace.unwrap_or(DEFAULT_NAMESPACE),
    ))
}

/// A comparable view of an object as Kubernetes keeps it: its spec (or data) and labels.
fn essence(object: &Value) -> Value {
    json!({"labels": object["metadata"]["labels"], "spec": object["spec"], "data": object["data"]})
}

pub fn deploy(ctx: &Ctx, settings: &Settings, args: &DaskDeploy) -> Result<Reply, PluginError> {
    check_workers(args.workers)?;
    check_quantity("worker-cpu", &args.worker_cpu)?;
    check_quantity("worker-memory", &args.worker_memory)?;
    check_image(&args.image)?;
    if let Some(nfs) = &args.nfs {
        parse_nfs(nfs)?;
    }
    let (cluster, namespace) = place(settings, args.cluster.as_deref(), args.namespace.as_deref())?;
    let name = &args.name;
    let secret_name = format!("{name}-notebook");
    let existing = kube::get(ctx, &cluster, "v1", "Secret", namespace, &secret_name)
        .map_err(|e| kube::failure(e, &format!("reading Secret {namespace}/{secret_name}")))?;
    let (password, generated) = match existing.as_ref().and_then(existing_password) {
        Some(p) => (p, false),
        None => (token()?.chars().take(24).collect::<String>(), true),
    };
    let secret = password_secret(name, namespace, &password);
    let mut changed = Vec::new();
    for object in manifests(args, namespace, &secret)? {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let object_name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let before = kube::get(ctx, &cluster, &api_version, &kind, namespace, &object_name)
            .map_err(|e| kube::failure(e, &format!("reading {kind} {namespace}/{object_name}")))?;
        let after = kube::apply(ctx, &cluster, object)
            .map_err(|e| kube::failure(e, &format!("applying {kind} {namespace}/{object_name}")))?;
        match before {
            None => changed.push(format!("{kind} {object_name} created")),
            Some(before) if essence(&before) != essence(&after) => {
                changed.push(format!("{kind} {object_name} updated"))
            }
            Some(_) => {}
        }
    }
    let summary = if changed.is_empty() {
        "nothing changed".to_owned()
    } else {
        changed.join(", ")
    };
    let mut text = format!(
        "✓ Dask {name} in {cluster}/{namespace}: scheduler {name}-scheduler:8786 (dashboard 8787), {} worker{} ({} CPU, {} each), notebook {name}-notebook:8888 — {summary}.",
        args.workers,
        if args.workers == 1 { "" } else { "s" },
        args.worker_cpu,
        args.worker_memory
    );
    if generated {
        text.push_str(&format!(
            "\nNotebook password (shown to you only, kept in Secret {namespace}/{secret_name}): {password}"
        ));
    } else {
        text.push_str(&format!(
            "\nNotebook password unchanged (in Secret {namespace}/{secret_name})."
        ));
    }
    Ok(Reply {
        text,
        // The password is for the caller alone; without it the reply could go to the channel,
        // but one rule is simpler to trust.
        ephemeral: true,
        actions: Vec::new(),
    })
}

pub fn scale(ctx: &Ctx, settings: &Settings, args: &DaskScale) -> Result<Reply, PluginError> {
    check_workers(args.workers)?;
    let (cluster, namespace) = place(settings, args.cluster.as_deref(), args.namespace.as_deref())?;
    let deployment = format!("{}-worker", args.name);
    let Some(before) = kube::get(
        ctx,
        &cluster,
        "apps/v1",
        "Deployment",
        namespace,
        &deployment,
    )
    .map_err(|e| kube::failure(e, &format!("reading Deployment {namespace}/{deployment}")))?
    else {
        return Err(PluginError::new(
            ErrorCode::NotFound,
            format!("there is no Dask {} in {cluster}/{namespace} (no Deployment {deployment}): /dask deploy {} creates it", args.name, args.name),
        )
        .with_option("name"));
    };
    let was = before["spec"]["replicas"].as_i64().unwrap_or(0);
    if was == args.workers {
        return Ok(Reply::text(format!(
            "Dask {} already has {was} workers; nothing changed.",
            args.name
        )));
    }
    let mut request = kube::request(&cluster, "patch", "apps/v1", "Deployment", namespace);
    request.name = Some(deployment.clone());
    request.body = Some(json!({"spec": {"replicas": args.workers}}));
    ctx.kube(request)
        .map_err(|e| kube::failure(e, &format!("scaling Deployment {namespace}/{deployment}")))?;
    Ok(Reply::text(format!(
        "✓ Dask {} workers: {was} → {} in {cluster}/{namespace}.",
        args.name, args.workers
    )))
}

pub fn endpoints(
    ctx: &Ctx,
    settings: &Settings,
    args: &DaskEndpoints,
) -> Result<Reply, PluginError> {
    let (cluster, namespace) = place(settings, args.cluster.as_deref(), args.namespace.as_deref())?;
    let name = &args.name;
    let mut lines = Vec::new();
    for component in ["scheduler", "notebook"] {
        let service = format!("{name}-{component}");
        match kube::get(ctx, &cluster, "v1", "Service", namespace, &service)
            .map_err(|e| kube::failure(e, &format!("reading Service {namespace}/{service}")))?
        {
            None => lines.push(format!("• {service}: missing")),
            Some(s) => {
                let ports: Vec<String> = s["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let node = p["nodePort"]
                            .as_i64()
                            .map(|n| format!(" (node port {n})"))
                            .unwrap_or_default();
                        format!(
                            "{} {}{node}",
                            p["name"].as_str().unwrap_or("port"),
                            p["port"]
                        )
                    })
                    .collect();
                let ip = s["spec"]["clusterIP"].as_str().unwrap_or("no cluster IP");
                lines.push(format!("• {service} ({ip}): {}", ports.join(", ")));
            }
        }
    }
    if lines.iter().all(|l| l.ends_with("missing")) {
        return Err(PluginError::new(
            ErrorCode::NotFound,
            format!(
                "there is no Dask {name} in {cluster}/{namespace}: /dask deploy {name} creates it"
            ),
        )
        .with_option("name"));
    }
    Ok(Reply::text(format!(
        "Dask {name} in {cluster}/{namespace}:\n{}",
        lines.join("\n")
    )))
}

pub fn delete(ctx: &Ctx, settings: &Settings, args: &DaskDelete) -> Result<Reply, PluginError> {
    let (cluster, namespace) = place(settings, args.cluster.as_deref(), args.namespace.as_deref())?;
    let mut deleted = Vec::new();
    for (api_version, kind, object) in parts(&args.name) {
        if kube::delete(ctx, &cluster, api_version, kind, namespace, &object)
            .map_err(|e| kube::failure(e, &format!("deleting {kind} {namespace}/{object}")))?
        {
            deleted.push(format!("{kind} {object}"));
        }
    }
    if deleted.is_empty() {
        return Err(PluginError::new(
            ErrorCode::NotFound,
            format!("there is no Dask {} in {cluster}/{namespace}", args.name),
        )
        .with_option("name"));
    }
    Ok(Reply::text(format!(
        "✓ Deleted Dask {} in {cluster}/{namespace}: {}.",
        args.name,
        deleted.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs() {
        assert!(check_quantity("worker-cpu", "500m").is_ok());
        assert!(check_quantity("worker-memory", "512Mi").is_ok());
        assert!(check_quantity("worker-cpu", "1.5").is_ok());
        assert!(check_quantity("worker-cpu", "lots").is_err());
        assert!(check_quantity("worker-memory", "512MB").is_err());
        assert_eq!(parse_nfs("192.168.0.168:/arl").unwrap().1, "/arl");
        assert!(parse_nfs("server").is_err());
        assert!(parse_nfs("a b:/x").is_err());
        assert!(parse_nfs("srv:relative").is_err());
    }
}
