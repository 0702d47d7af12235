//! `/deploy APP INSTANCE`, `/undeploy APP INSTANCE`, `/deployments [APP]`: app instances
//! described in config (`config/apps/*.toml`, see [`app`]), rendered to Kubernetes objects
//! ([`manifests`]), applied with server-side apply, and watched until rolled out ([`rollout`]).
//!
//! Every object carries the app and instance labels and Deckhand as its manager, so a second
//! `/deploy` is an idempotent update and `/undeploy` deletes exactly what `/deploy` made.
//! Before anything is applied, `/deploy` checks what would make the rollout fail later: the
//! image tag exists in its registry, the virtual node is there (`--virtual`), the basic-auth
//! Secret and the storage class exist.

pub mod app;
pub mod commands;
pub mod manifests;
pub mod rollout;

use deckhand_plugin_sdk::ErrorCode;
use deckhand_plugin_shared::target::ClusterDefaults;
use std::collections::BTreeMap;

use deckhand_plugin_sdk::abi::proto::{KubeCapability, RegistryRequest, RegistryResponse};
use deckhand_plugin_sdk::{AutocompleteQuery, Capabilities, Choice, Ctx, PluginError, Reply};
use deckhand_plugin_shared::names::check_dns_label;
use serde_json::Value;

use app::{App, Settings};
use commands::{DeployApp, Deployments, Undeploy};
use manifests::{
    INSTANCE_LABEL, KINDS, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, Request, TAG_ANNOTATION,
    URL_ANNOTATION, instance_selector, render,
};
use rollout::{Kube, Outcome, summary};

pub struct Deploy {
    settings: Settings,
    /// What `--cluster` (an AKS cluster, as in every plugin) falls back to and maps to.
    clusters: ClusterDefaults,
}

pub fn capabilities() -> Capabilities {
    let verbs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Capabilities {
        kube: vec![
            KubeCapability {
                resources: verbs(&[
                    "deployments",
                    "services",
                    "ingresses",
                    "persistentvolumeclaims",
                ]),
                verbs: verbs(&["get", "list", "apply", "delete"]),
            },
            KubeCapability {
                resources: verbs(&["pods", "events", "nodes", "storageclasses"]),
                verbs: verbs(&["get", "list"]),
            },
            // Existence of the basic-auth Secret only; its data is never read out.
            KubeCapability {
                resources: verbs(&["secrets"]),
                verbs: verbs(&["get"]),
            },
        ],
        // Apps name their registries in config; the host only knows configured ones.
        registries: vec!["*".into()],
        ..Default::default()
    }
}

fn bad_input(option: &str, message: impl Into<String>) -> PluginError {
    PluginError::bad_input(option, message)
}

/// One object's fate in an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Deploy {
    pub fn new(settings: Settings, clusters: ClusterDefaults) -> Deploy {
        Deploy { settings, clusters }
    }

    fn app(&self, name: &str) -> Result<&App, PluginError> {
        self.settings.apps.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.settings.apps.keys().map(String::as_str).collect();
            bad_input(
                "app",
                format!(
                    "unknown app {name:?}: apps are described in config/apps/*.toml ([plugins.config.aks] files.apps); known: {}",
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ),
            )
        })
    }

    fn kube<'a>(
        &self,
        ctx: &'a Ctx,
        cluster: Option<&str>,
        app: Option<&App>,
    ) -> Result<Kube<'a>, PluginError> {
        // `--cluster` names an AKS cluster; an app definition names its Kubernetes cluster.
        let cluster = cluster
            .map(|aks| self.clusters.kube_name(aks))
            .or_else(|| app.and_then(|a| a.cluster.clone()))
            .or_else(|| self.settings.kube_cluster.clone())
            .ok_or_else(|| {
                bad_input(
                    "cluster",
                    "no cluster given and none configured: pass --cluster or set default_cluster in [plugins.config.aks]",
                )
            })?;
        Ok(Kube { ctx, cluster })
    }

    pub fn deploy(&self, ctx: &Ctx, args: &DeployApp) -> Result<Reply, PluginError> {
        let app_name = args.app.as_str();
        let instance = args.instance.as_str();
        let app = self.app(app_name)?;
        check_dns_label("instance", instance).map_err(|m| bad_input("instance", m))?;
        let replicas = match args.replicas {
            None => None,
            Some(n) if !(0..=1000).contains(&n) => {
                return Err(bad_input(
                    "replicas",
                    format!("--replicas {n} is out of range: replicas are 0 to 1000"),
                ));
            }
            Some(_) if app.scalable().is_none() => {
                return Err(bad_input(
                    "replicas",
                    format!(
                        "app {app_name} has no scalable component, so --replicas means nothing for it"
                    ),
                ));
            }
            Some(n) => Some(n as u32),
        };
        let r#virtual = args.on_virtual;
        if r#virtual && !app.components.iter().any(|c| c.r#virtual) {
            return Err(bad_input(
                "virtual",
                format!(
                    "no component of {app_name} may run on the virtual node (none is marked virtual = true)"
                ),
            ));
        }
        let tag = args.tag.as_deref().unwrap_or(&app.tag);
        let kube = self.kube(ctx, args.cluster.as_deref(), Some(app))?;
        let ns = app.namespace.as_str();

        // Render first: names Kubernetes would reject stop here, before anything else.
        let probe = Request {
            app_name,
            instance,
            tag,
            digest: "",
            replicas,
            r#virtual,
        };
        for object in render(app, &probe) {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            check_dns_label("object name", name).map_err(|m| {
                bad_input(
                    "instance",
                    format!("{m} (the instance name makes it too long?)"),
                )
            })?;
        }

        // 1. The image tag exists.
        let (registry, repository) = app.image_parts(app_name, instance);
        ctx.progress(format!("checking {registry}/{repository}:{tag}"));
        let digest = self.check_image(ctx, &registry, &repository, tag)?;

        // 2. What the objects refer to exists.
        if r#virtual {
            let nodes = kube.list("v1", "Node", None, Some("type=virtual-kubelet"), None)?;
            if nodes.is_empty() {
                return Err(PluginError::new(
                    ErrorCode::Precondition,
                    format!(
                        "cluster {} has no virtual node, so --virtual cannot place anything: turn it on with `/vk enable --cluster {}` (nothing was applied)",
                        kube.cluster, kube.cluster
                    ),
                ));
            }
        }
        if let Some(secret) = app.ingress.as_ref().and_then(|i| i.auth_secret.as_ref())
            && kube.get("v1", "Secret", Some(ns), secret)?.is_none()
        {
            return Err(PluginError::new(
                ErrorCode::Precondition,
                format!(
                    "the basic-auth Secret {secret} does not exist in namespace {ns} on {}: create it from an htpasswd file (etc/make-htpasswd.sh; `kubectl -n {ns} create secret generic {secret} --from-file=auth`) and run /deploy again (nothing was applied)",
                    kube.cluster
                ),
            ));
        }
        if let Some(volume) = &app.volume
            && kube
                .get(
                    "storage.k8s.io/v1",
                    "StorageClass",
                    None,
                    &volume.storage_class,
                )?
                .is_none()
        {
            let known: Vec<String> = kube
                .list("storage.k8s.io/v1", "StorageClass", None, None, None)?
                .iter()
                .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            return Err(PluginError::new(
                ErrorCode::Precondition,
                format!(
                    "storage class {} of the work volume does not exist on {} (it has: {}); fix [volume] storage_class in the app definition (nothing was applied)",
                    volume.storage_class,
                    kube.cluster,
                    known.join(", ")
                ),
            ));
        }

        // 3. Apply.
        let request = Request {
            digest: &digest,
            ..probe
        };
        let objects = render(app, &request);
        let mut changes: Vec<(String, Change)> = Vec::new();
        for object in &objects {
            let change = apply(&kube, object)?;
            let what = describe(object);
            if change != Change::Unchanged {
                ctx.progress(format!("{what} {}", change_word(change)));
            }
            changes.push((what, change));
        }
        let selector = instance_selector(app_name, instance);
        let pruned = prune(&kube, ns, &selector, &objects)?;

        // 4. Wait for the rollout.
        let deployments: Vec<String> = objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        let outcome = rollout::wait(
            &kube,
            &self.settings,
            app,
            &deployments,
            &selector,
            r#virtual,
        )?;

        let created = changes.iter().filter(|c| c.1 == Change::Created).count();
        let updated: Vec<&str> = changes
            .iter()
            .filter(|c| c.1 == Change::Updated)
            .map(|c| c.0.as_str())
            .collect();
        let mut applied = match (created, updated.len()) {
            (0, 0) if pruned.is_empty() => {
                "no changes: everything was already as described".to_owned()
            }
            (c, 0) => format!("{c} objects created"),
            (0, _) => format!("updated {}", updated.join(", ")),
            (c, _) => format!("{c} objects created; updated {}", updated.join(", ")),
        };
        if !pruned.is_empty() {
            applied.push_str(&format!("; removed {}", pruned.join(", ")));
        }
        let placement = |p: &rollout::Progress| {
            let on_virtual = r#virtual
                && app
                    .components
                    .iter()
                    .any(|c| c.name == p.component && c.r#virtual);
            format!(
                "{} {}/{} ready{}",
                p.component,
                p.ready,
                p.desired,
                if on_virtual { " (virtual node)" } else { "" }
            )
        };
        let head = format!(
            "{app_name}/{instance} on {} (namespace {ns}), image {registry}/{repository}:{tag} ({})",
            kube.cluster,
            short_digest(&digest)
        );
        match outcome {
            Outcome::Ready(progress) => {
                let mut text = format!(
                    "Deployed {head}: {applied}.\n{}",
                    progress
                        .iter()
                        .map(placement)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if let Some(url) = app.url(app_name, instance) {
                    text.push_str(&format!("\nURL: {url}"));
                }
                Ok(Reply::text(text))
            }
            Outcome::Cancelled(progress) => Err(PluginError::new(
                ErrorCode::Cancelled,
                format!(
                    "Stopped waiting for {app_name}/{instance} ({}); the objects are applied and the rollout goes on in the cluster: `/deployments {app_name}` shows it",
                    summary(&progress)
                ),
            )),
            Outcome::Stuck(progress, blockers) => {
                let reasons: Vec<String> = blockers.iter().map(|b| format!("• {b}")).collect();
                Err(PluginError::new(
                    ErrorCode::Upstream,
                    format!(
                        "{head} is applied ({applied}) but not ready: {}.\n{}\nThe rollout goes on in the cluster; `/deployments {app_name}` shows it, `/undeploy {app_name} {instance}` removes it.",
                        summary(&progress),
                        if reasons.is_empty() {
                            "• no pod reports a reason yet".to_owned()
                        } else {
                            reasons.join("\n")
                        }
                    ),
                ))
            }
        }
    }

    /// The tag's digest, or an error saying the image is not there (before anything is applied).
    fn check_image(
        &self,
        ctx: &Ctx,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<String, PluginError> {
        let manifest = ctx.registry(RegistryRequest {
            registry: registry.into(),
            op: "manifest".into(),
            repository: Some(repository.into()),
            reference: Some(tag.into()),
        });
        match manifest {
            Ok(RegistryResponse::Manifest { digest, .. }) => Ok(digest),
            Ok(other) => Err(PluginError::new(
                ErrorCode::Protocol,
                format!("the registry service answered {other:?} to a manifest query"),
            )),
            Err(e) if e.code == "not_found" => {
                let tags = ctx
                    .registry(RegistryRequest {
                        registry: registry.into(),
                        op: "tags".into(),
                        repository: Some(repository.into()),
                        reference: None,
                    })
                    .ok()
                    .and_then(|r| match r {
                        RegistryResponse::Tags { tags, .. } => Some(tags),
                        _ => None,
                    });
                let known = match tags {
                    Some(tags) if !tags.is_empty() => format!("; its tags: {}", tags.join(", ")),
                    Some(_) => "; the repository has no tags".to_owned(),
                    None => format!("; the repository {repository} does not exist there"),
                };
                Err(bad_input(
                    "tag",
                    format!(
                        "image {registry}/{repository}:{tag} does not exist{known}. Build and push it first; nothing was applied"
                    ),
                ))
            }
            Err(e) => {
                let message = format!(
                    "cannot check image {registry}/{repository}:{tag}, so nothing was applied: {}",
                    e.message
                );
                Err(PluginError::from_host(e, message))
            }
        }
    }

    pub fn undeploy(&self, ctx: &Ctx, args: &Undeploy) -> Result<Reply, PluginError> {
        let app_name = args.app.as_str();
        let instance = args.instance.as_str();
        let app = self.app(app_name)?;
        check_dns_label("instance", instance).map_err(|m| bad_input("instance", m))?;
        let kube = self.kube(ctx, args.cluster.as_deref(), Some(app))?;
        let ns = app.namespace.as_str();
        let selector = instance_selector(app_name, instance);
        let mut deleted = Vec::new();
        for (api, kind) in KINDS.iter().rev() {
            for object in kube.list(api, kind, Some(ns), Some(&selector), None)? {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let mut request = kube.request("delete", api, kind, Some(ns));
                request.name = Some(name.into());
                match ctx.kube(request) {
                    Ok(_) => {}
                    Err(e) if e.code == "not_found" => continue,
                    Err(e) => return Err(e.into()),
                }
                ctx.progress(format!("deleted {kind} {name}"));
                deleted.push(format!("{kind} {name}"));
            }
        }
        if deleted.is_empty() {
            return Err(PluginError::new(
                ErrorCode::NotFound,
                format!(
                    "nothing to undeploy: no object in namespace {ns} on {} carries {selector} (`/deployments` lists what is deployed)",
                    kube.cluster
                ),
            ));
        }
        Ok(Reply::text(format!(
            "Undeployed {app_name}/{instance} from {} (namespace {ns}): deleted {}.",
            kube.cluster,
            deleted.join(", ")
        )))
    }

    pub fn deployments(&self, ctx: &Ctx, args: &Deployments) -> Result<Reply, PluginError> {
        let only = args.app.as_deref();
        let app = only.and_then(|a| self.settings.apps.get(a));
        let kube = self.kube(ctx, args.cluster.as_deref(), app)?;
        let mut selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
        if let Some(app) = only {
            selector.push_str(&format!(",{NAME_LABEL}={app}"));
        }
        let items = kube.list("apps/v1", "Deployment", None, Some(&selector), None)?;
        // (namespace, app, instance) → deployments
        let mut instances: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
        for d in items {
            let label = |k: &str| {
                d["metadata"]["labels"][k]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            let key = (
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                label(NAME_LABEL),
                label(INSTANCE_LABEL),
            );
            instances.entry(key).or_default().push(d);
        }
        if instances.is_empty() {
            return Ok(Reply::text(format!(
                "No app instances deployed by Deckhand on {}{}.",
                kube.cluster,
                only.map(|a| format!(" for app {a}")).unwrap_or_default()
            )));
        }
        let mut lines = vec![format!("App instances on {}:", kube.cluster)];
        for ((ns, app, instance), deployments) in instances {
            let progress: Vec<String> = deployments
                .iter()
                .map(|d| {
                    let p = rollout::progress(d);
                    let on_virtual =
                        d["spec"]["template"]["spec"]["nodeSelector"]["type"] == "virtual-kubelet";
                    format!(
                        "{} {}/{}{}",
                        p.component,
                        p.ready,
                        p.desired,
                        if on_virtual { " (virtual)" } else { "" }
                    )
                })
                .collect();
            let ready = deployments.iter().all(|d| rollout::progress(d).done);
            let first = &deployments[0]["metadata"]["annotations"];
            let tag = first[TAG_ANNOTATION].as_str().unwrap_or("?");
            let url = first[URL_ANNOTATION]
                .as_str()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            lines.push(format!(
                "• {app}/{instance} ({ns}) tag {tag}: {} — {}{url}",
                progress.join(", "),
                if ready { "ready" } else { "NOT ready" }
            ));
        }
        Ok(Reply::text(lines.join("\n")))
    }

    pub fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        let choice = |s: &str| Choice {
            name: s.to_owned(),
            value: s.to_owned(),
        };
        match query.option.as_str() {
            "app" => Ok(self
                .settings
                .apps
                .keys()
                .filter(|a| a.starts_with(&query.partial))
                .map(|a| choice(a))
                .collect()),
            "instance" => {
                let Some(app_name) = query.options.get("app").and_then(Value::as_str) else {
                    return Ok(Vec::new());
                };
                let Ok(app) = self.app(app_name) else {
                    return Ok(Vec::new());
                };
                let Some(cluster) = app
                    .cluster
                    .clone()
                    .or_else(|| self.settings.kube_cluster.clone())
                else {
                    return Ok(Vec::new());
                };
                let kube = Kube { ctx, cluster };
                let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{NAME_LABEL}={app_name}");
                let mut names: Vec<String> = kube
                    .list(
                        "apps/v1",
                        "Deployment",
                        Some(&app.namespace),
                        Some(&selector),
                        None,
                    )?
                    .iter()
                    .filter_map(|d| {
                        d["metadata"]["labels"][INSTANCE_LABEL]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .filter(|i| i.starts_with(&query.partial))
                    .collect();
                names.sort();
                names.dedup();
                Ok(names.iter().map(|n| choice(n)).collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Updated => "updated",
        Change::Unchanged => "unchanged",
    }
}

fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Server-side apply of one object; compares resourceVersions to tell what changed.
fn apply(kube: &Kube, object: &Value) -> Result<Change, PluginError> {
    let api = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let ns = object["metadata"]["namespace"].as_str();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let before = kube
        .get(api, kind, ns, name)?
        .and_then(|o| o["metadata"]["resourceVersion"].as_str().map(str::to_owned));
    let mut request = kube.request("apply", api, kind, ns);
    request.name = Some(name.into());
    request.body = Some(object.clone());
    let after = kube.ctx.kube(request).map_err(|e| {
        let conflict = e.status == Some(409);
        let mut error = PluginError::from(e);
        if conflict {
            error.message.push_str(
                " — another tool manages these fields; change them back there or delete the object, then /deploy again",
            );
        }
        error
    })?;
    let after = after.body["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    Ok(match before {
        None => Change::Created,
        Some(v) if Some(&v) == after.as_ref() => Change::Unchanged,
        Some(_) => Change::Updated,
    })
}

/// Deletes objects of the instance that the current definition no longer makes.
fn prune(
    kube: &Kube,
    ns: &str,
    selector: &str,
    wanted: &[Value],
) -> Result<Vec<String>, PluginError> {
    let mut removed = Vec::new();
    for (api, kind) in KINDS {
        for object in kube.list(api, kind, Some(ns), Some(selector), None)? {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let kept = wanted
                .iter()
                .any(|w| w["kind"] == *kind && w["metadata"]["name"] == name);
            if kept {
                continue;
            }
            let mut request = kube.request("delete", api, kind, Some(ns));
            request.name = Some(name.into());
            kube.send(request)?;
            kube.ctx.progress(format!(
                "removed {kind} {name} (no longer in the app definition)"
            ));
            removed.push(format!("{kind} {name}"));
        }
    }
    Ok(removed)
}
