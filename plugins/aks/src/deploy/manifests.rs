//! The Kubernetes objects of one app instance, rendered from its definition. Pure: the same
//! inputs give the same objects, so a second `/deploy` applies nothing new.

use deckhand_plugin_shared::placement::{Placement, apply_to_pod_spec};
use serde_json::{Map, Value, json};

use super::app::{App, Component, fill};

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "deckhand";
/// Pod-template annotation: the image's digest, so a moved tag rolls the pods.
pub const DIGEST_ANNOTATION: &str = "deckhand.io/image-digest";
pub const URL_ANNOTATION: &str = "deckhand.io/url";
pub const TAG_ANNOTATION: &str = "deckhand.io/image-tag";

/// The kinds `/deploy` makes, in apply order; `/undeploy` looks for exactly these.
pub const KINDS: &[(&str, &str)] = &[
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "Ingress"),
];

/// What one `/deploy` asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub app_name: &'a str,
    pub instance: &'a str,
    pub tag: &'a str,
    /// The tag's digest from the registry.
    pub digest: &'a str,
    pub replicas: Option<u32>,
    pub r#virtual: bool,
}

/// Label selector of every object of one instance.
pub fn instance_selector(app: &str, instance: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{NAME_LABEL}={app},{INSTANCE_LABEL}={instance}")
}

pub fn prefix(app: &str, instance: &str) -> String {
    format!("{app}-{instance}")
}

fn labels(app: &str, instance: &str, component: Option<&str>) -> Value {
    let mut labels = json!({
        NAME_LABEL: app,
        INSTANCE_LABEL: instance,
        MANAGED_BY_LABEL: MANAGED_BY,
    });
    if let Some(component) = component {
        labels[COMPONENT_LABEL] = json!(component);
    }
    labels
}

fn metadata(name: &str, namespace: &str, labels: Value) -> Value {
    json!({"name": name, "namespace": namespace, "labels": labels})
}

/// Where a component runs for this request.
pub fn placement(component: &Component, virtual_requested: bool) -> Placement {
    if virtual_requested && component.r#virtual {
        return Placement::Virtual;
    }
    match (&component.pool, component.gpus, component.spot) {
        (Some(pool), Some(gpus), _) => Placement::Gpu {
            pool: pool.clone(),
            gpus,
        },
        (Some(pool), None, true) => Placement::Spot { pool: pool.clone() },
        (Some(pool), None, false) => Placement::Pool(pool.clone()),
        (None, _, _) => Placement::Default,
    }
}

/// Every object of the instance, in apply order.
pub fn render(app: &App, request: &Request) -> Vec<Value> {
    let (name, instance) = (request.app_name, request.instance);
    let ns = app.namespace.as_str();
    let base = prefix(name, instance);
    let image = format!("{}:{}", fill(&app.image, name, instance, ns), request.tag);
    let url = app.url(name, instance);
    let mut objects = Vec::new();

    if let Some(volume) = &app.volume {
        objects.push(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": metadata(&format!("{base}-{}", volume.name), ns, labels(name, instance, None)),
            "spec": {
                "accessModes": [volume.access_mode],
                "storageClassName": volume.storage_class,
                "resources": {"requests": {"storage": volume.size}},
            },
        }));
    }
    for component in app.components.iter().filter(|c| c.port.is_some()) {
        let port = component.port.unwrap_or_default();
        objects.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata(&format!("{base}-{}", component.name), ns, labels(name, instance, Some(&component.name))),
            "spec": {
                "type": "ClusterIP",
                "selector": labels(name, instance, Some(&component.name)),
                "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        }));
    }
    for component in &app.components {
        objects.push(deployment(
            app,
            request,
            component,
            &base,
            &image,
            url.as_deref(),
        ));
    }
    if let Some(ingress) = &app.ingress {
        let mut annotations = Map::new();
        if let Some(issuer) = &ingress.cluster_issuer {
            annotations.insert("cert-manager.io/cluster-issuer".into(), json!(issuer));
        }
        if let Some(secret) = &ingress.auth_secret {
            annotations.insert(
                "nginx.ingress.kubernetes.io/auth-type".into(),
                json!("basic"),
            );
            annotations.insert(
                "nginx.ingress.kubernetes.io/auth-secret".into(),
                json!(secret),
            );
            annotations.insert(
                "nginx.ingress.kubernetes.io/auth-realm".into(),
                json!(ingress.auth_realm),
            );
        }
        for (k, v) in &ingress.annotations {
            annotations.insert(k.clone(), json!(fill(v, name, instance, ns)));
        }
        let path = fill(&ingress.path, name, instance, ns);
        let port = app
            .components
            .iter()
            .find(|c| c.name == ingress.component)
            .and_then(|c| c.port)
            .unwrap_or_default();
        let mut spec = json!({
            "ingressClassName": ingress.class,
            "rules": [{"host": ingress.host, "http": {"paths": [{
                "path": path, "pathType": "Prefix",
                "backend": {"service": {"name": format!("{base}-{}", ingress.component), "port": {"number": port}}},
            }]}}],
        });
        if let Some(secret) = &ingress.tls_secret {
            spec["tls"] = json!([{"hosts": [ingress.host], "secretName": secret}]);
        }
        let mut meta = metadata(&base, ns, labels(name, instance, None));
        meta["annotations"] = Value::Object(annotations);
        objects.push(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": meta, "spec": spec,
        }));
    }
    objects
}

fn deployment(
    app: &App,
    request: &Request,
    component: &Component,
    base: &str,
    image: &str,
    url: Option<&str>,
) -> Value {
    let (name, instance, ns) = (request.app_name, request.instance, app.namespace.as_str());
    let selector =
        json!({NAME_LABEL: name, INSTANCE_LABEL: instance, COMPONENT_LABEL: component.name});
    let replicas = match request.replicas {
        Some(n) if component.scalable => n,
        _ => component.replicas,
    };
    let mut container = json!({"name": component.name, "image": image});
    if !component.command.is_empty() {
        container["command"] = json!(component.command);
    }
    if !component.args.is_empty() {
        container["args"] = json!(component.args);
    }
    if !component.env.is_empty() {
        container["env"] = Value::Array(
            component
                .env
                .iter()
                .map(|(k, v)| json!({"name": k, "value": fill(v, name, instance, ns)}))
                .collect(),
        );
    }
    if let Some(port) = component.port {
        container["ports"] = json!([{"name": "http", "containerPort": port, "protocol": "TCP"}]);
    }
    let mut requests = Map::new();
    if let Some(cpu) = &component.cpu {
        requests.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = &component.memory {
        requests.insert("memory".into(), json!(memory));
    }
    if !requests.is_empty() {
        container["resources"] = json!({"requests": requests});
    }
    let mut pod_spec = json!({"containers": [container]});
    if let (Some(mount), Some(volume)) = (&component.volume_mount, &app.volume) {
        pod_spec["containers"][0]["volumeMounts"] =
            json!([{"name": volume.name, "mountPath": mount}]);
        pod_spec["volumes"] = json!([{"name": volume.name,
            "persistentVolumeClaim": {"claimName": format!("{base}-{}", volume.name)}}]);
    }
    let placement = placement(component, request.r#virtual);
    apply_to_pod_spec(&mut pod_spec, &placement);
    if placement == Placement::Virtual {
        let dns = &app.r#virtual;
        if let Some(policy) = &dns.dns_policy {
            pod_spec["dnsPolicy"] = json!(policy);
        }
        if !dns.nameservers.is_empty() || !dns.searches.is_empty() || !dns.options.is_empty() {
            let mut config = Map::new();
            if !dns.nameservers.is_empty() {
                config.insert("nameservers".into(), json!(dns.nameservers));
            }
            if !dns.searches.is_empty() {
                let searches: Vec<String> = dns
                    .searches
                    .iter()
                    .map(|s| fill(s, name, instance, ns))
                    .collect();
                config.insert("searches".into(), json!(searches));
            }
            if !dns.options.is_empty() {
                let options: Vec<Value> = dns
                    .options
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect();
                config.insert("options".into(), Value::Array(options));
            }
            pod_spec["dnsConfig"] = Value::Object(config);
        }
    }
    let mut meta = metadata(
        &format!("{base}-{}", component.name),
        ns,
        labels(name, instance, Some(&component.name)),
    );
    let mut annotations = json!({TAG_ANNOTATION: request.tag});
    if let Some(url) = url {
        annotations[URL_ANNOTATION] = json!(url);
    }
    meta["annotations"] = annotations;
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels(name, instance, Some(&component.name)),
                    "annotations": {DIGEST_ANNOTATION: request.digest},
                },
                "spec": pod_spec,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simsvc() -> App {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/apps/simsvc.toml"
        ))
        .unwrap();
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        App::parse("simsvc", &serde_json::to_value(parsed).unwrap()).unwrap()
    }

    fn request(r#virtual: bool) -> Request<'static> {
        Request {
            app_name: "simsvc",
            instance: "mpt",
            tag: "latest",
            digest: "sha256:abc",
            replicas: Some(3),
            r#virtual,
        }
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn simsvc_objects() {
        let objects = render(&simsvc(), &request(false));
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "PersistentVolumeClaim/simsvc-mpt-work",
                "Service/simsvc-mpt-web",
                "Service/simsvc-mpt-scheduler",
                "Deployment/simsvc-mpt-web",
                "Deployment/simsvc-mpt-scheduler",
                "Deployment/simsvc-mpt-workers",
                "Ingress/simsvc-mpt",
            ]
        );
        for o in &objects {
            assert_eq!(o["metadata"]["labels"][INSTANCE_LABEL], "mpt");
            assert_eq!(o["metadata"]["labels"][MANAGED_BY_LABEL], "deckhand");
        }
        let ingress = find(&objects, "Ingress", "simsvc-mpt");
        let annotations = &ingress["metadata"]["annotations"];
        assert_eq!(
            annotations["cert-manager.io/cluster-issuer"],
            "intens-issuer"
        );
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/auth-secret"],
            "simsvc-basic-auth"
        );
        let rule = &ingress["spec"]["rules"][0];
        assert_eq!(rule["host"], "intens.westeurope.cloudapp.azure.com");
        assert_eq!(rule["http"]["paths"][0]["path"], "/mpt");
        let web = find(&objects, "Deployment", "simsvc-mpt-web");
        let pod = &web["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            "intens.azurecr.io/simsvc-mpt:latest"
        );
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "simsvc-mpt-work"
        );
        assert_eq!(web["spec"]["replicas"], 1);
        let workers = find(&objects, "Deployment", "simsvc-mpt-workers");
        assert_eq!(
            workers["spec"]["replicas"], 3,
            "--replicas sets the scalable component"
        );
        assert!(workers["spec"]["template"]["spec"]["nodeSelector"].is_null());
    }

    #[test]
    fn virtual_puts_scheduler_and_workers_on_the_virtual_node_with_dns() {
        let objects = render(&simsvc(), &request(true));
        for name in ["simsvc-mpt-scheduler", "simsvc-mpt-workers"] {
            let pod = &find(&objects, "Deployment", name)["spec"]["template"]["spec"];
            assert_eq!(pod["nodeSelector"]["type"], "virtual-kubelet", "{name}");
            assert_eq!(pod["dnsPolicy"], "None");
            assert_eq!(pod["dnsConfig"]["nameservers"][0], "10.0.0.10");
            assert_eq!(pod["dnsConfig"]["searches"][0], "default.svc.cluster.local");
            assert_eq!(pod["dnsConfig"]["options"][0]["name"], "ndots");
        }
        let web = &find(&objects, "Deployment", "simsvc-mpt-web")["spec"]["template"]["spec"];
        assert!(
            web["nodeSelector"].is_null(),
            "the web app stays on a regular node"
        );
        assert!(web["dnsConfig"].is_null());
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(
            render(&simsvc(), &request(true)),
            render(&simsvc(), &request(true))
        );
    }
}
