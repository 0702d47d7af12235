//! Registries through ARM: list, create (name checked with `checkNameAvailability` first),
//! import an image (`importImage`, a long-running operation), admin credentials.

use deckhand_plugin_sdk::abi::proto::{ArmRequest, RegistryRequest, RegistryResponse};
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use deckhand_plugin_shared::azure::{ACR_API, ArmPath, RESOURCES_API, Registry};
use deckhand_plugin_shared::names::NameRule;
use serde_json::json;

use crate::Acr;
use crate::commands::{Create, Credentials, Import, Registries};
use crate::images::short_digest;
use crate::target::{self, PROVIDER, REGISTRY_TYPE, address_error};

fn describe(r: &Registry) -> String {
    let sku = r
        .extra
        .get("sku")
        .and_then(|s| s["name"].as_str())
        .unwrap_or("?");
    let admin = match r.properties.admin_user_enabled {
        Some(true) => "admin user on",
        _ => "admin user off",
    };
    let rg =
        r.id.as_deref()
            .and_then(target::resource_group_of)
            .unwrap_or("?");
    format!(
        "• {} — {}, {sku}, {admin}, {} ({rg}, {})",
        r.name,
        r.properties.login_server.as_deref().unwrap_or("?"),
        r.properties.provisioning_state.as_deref().unwrap_or("?"),
        r.location.as_deref().unwrap_or("?"),
    )
}

/// A source image split as `importImage` wants it: registry URI and the image in it.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    pub registry: String,
    pub image: String,
}

/// `docker.io/library/nginx:1.27`, `nginx` (Docker Hub, `library/`, `:latest`),
/// `mcr.microsoft.com/dotnet/runtime@sha256:...`: each part checked by the registry's rules.
pub fn parse_source(source: &str) -> Result<Source, String> {
    let rule = "give [registry/]repository[:tag|@digest], e.g. docker.io/library/nginx:1.27";
    if source.is_empty() || source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{source:?} is not an image reference: {rule}"));
    }
    let (host, rest) = match source.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_ascii_lowercase(), rest)
        }
        _ => ("docker.io".to_owned(), source),
    };
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with(['.', '-']);
    if !host_ok {
        return Err(format!("{host:?} is not a registry host: {rule}"));
    }
    let (name, reference) = match rest.split_once('@') {
        Some((name, digest)) => {
            let ok = digest.split_once(':').is_some_and(|(a, h)| {
                !a.is_empty()
                    && a.chars().all(|c| c.is_ascii_alphanumeric())
                    && !h.is_empty()
                    && h.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !ok {
                return Err(format!("{digest:?} is not a digest (sha256:<hex>)"));
            }
            (name, format!("@{digest}"))
        }
        None => match rest.rsplit_once(':') {
            Some((name, tag)) => {
                NameRule::ImageTag.check(tag).map_err(|e| e.to_string())?;
                (name, format!(":{tag}"))
            }
            None => (rest, ":latest".to_owned()),
        },
    };
    let name = if host == "docker.io" && !name.contains('/') {
        format!("library/{name}")
    } else {
        name.to_owned()
    };
    NameRule::Repository
        .check(&name)
        .map_err(|e| e.to_string())?;
    Ok(Source {
        registry: host,
        image: format!("{name}{reference}"),
    })
}

impl Acr {
    pub fn registries(&self, ctx: &Ctx, args: &Registries) -> Result<Reply, PluginError> {
        let rg = args
            .group
            .as_deref()
            .or(self.config.resource_group.as_deref());
        let registries = target::list(ctx, rg)?;
        let where_ = rg
            .map(|rg| format!("resource group {rg}"))
            .unwrap_or_else(|| "the subscription".into());
        if registries.is_empty() {
            return Ok(Reply::text(format!(
                "No registries in {where_}: `/acr create NAME` makes one."
            )));
        }
        let mut lines = vec![format!(
            "{} registr{} in {where_}:",
            registries.len(),
            if registries.len() == 1 { "y" } else { "ies" }
        )];
        lines.extend(registries.iter().map(describe));
        Ok(Reply::text(lines.join("\n")))
    }

    pub fn create(&self, ctx: &Ctx, args: &Create) -> Result<Reply, PluginError> {
        let rg = args
            .group
            .as_deref()
            .or(self.config.resource_group.as_deref())
            .ok_or_else(|| {
                PluginError::bad_input(
                    "group",
                    "no resource group given and none configured: pass --group or set resource_group in [plugins.config.acr]",
                )
            })?;
        let check = ctx.arm(ArmRequest {
            method: "POST".into(),
            path: ArmPath::subscription_provider(PROVIDER)
                .and_then(|p| p.action("checkNameAvailability"))
                .map_err(address_error)?
                .to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({"name": args.name, "type": REGISTRY_TYPE})),
            ..Default::default()
        })?;
        if check.body["nameAvailable"] != json!(true) {
            let reason = check.body["reason"].as_str().unwrap_or("unavailable");
            let message = check.body["message"].as_str().unwrap_or("");
            return Err(PluginError::bad_input(
                "name",
                format!(
                    "registry name {} cannot be used: {reason}{}{message} (names are global across Azure: try another)",
                    args.name,
                    if message.is_empty() { "" } else { ": " }
                ),
            ));
        }
        let location = match args.location.as_deref().or(self.config.location.as_deref()) {
            Some(l) => l.to_owned(),
            None => {
                let group = ctx.arm(ArmRequest {
                    method: "GET".into(),
                    path: ArmPath::resource_group(rg)
                        .map_err(address_error)?
                        .to_string(),
                    api_version: RESOURCES_API.into(),
                    ..Default::default()
                })?;
                group.body["location"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        PluginError::new(
                            ErrorCode::Protocol,
                            format!("resource group {rg} reports no location: pass --location"),
                        )
                    })?
            }
        };
        let path = ArmPath::resource_group(rg)
            .and_then(|p| p.provider(PROVIDER))
            .and_then(|p| p.resource("registries", &args.name))
            .map_err(address_error)?;
        let created = ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: path.to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({
                "location": location,
                "sku": {"name": args.sku},
                "properties": {"adminUserEnabled": false},
            })),
            wait: true,
            label: Some(format!("Creating registry {}", args.name)),
        })?;
        let login = created.body["properties"]["loginServer"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}.azurecr.io", args.name.to_ascii_lowercase()));
        let state = created.body["properties"]["provisioningState"]
            .as_str()
            .unwrap_or("Succeeded");
        Ok(Reply::text(format!(
            "Created registry {} ({login}, {}, admin user off, {state}) in {rg}, {location}. `/acr attach --cluster C --registry {}` lets a cluster pull from it.",
            args.name, args.sku, args.name
        )))
    }

    pub fn import(&self, ctx: &Ctx, args: &Import) -> Result<Reply, PluginError> {
        let source = parse_source(&args.source).map_err(|e| PluginError::bad_input("source", e))?;
        let target = self.target(ctx, args.registry.as_deref())?;
        let login = target.login_server();
        let label = format!(
            "Importing {}/{} into {login} as {}",
            source.registry, source.image, args.target
        );
        ctx.progress(format!("{label}…"));
        ctx.arm(ArmRequest {
            method: "POST".into(),
            path: target
                .address()?
                .action("importImage")
                .map_err(address_error)?
                .to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({
                "source": {"registryUri": source.registry, "sourceImage": source.image},
                "targetTags": [args.target],
                "mode": if args.force { "Force" } else { "NoForce" },
            })),
            wait: true,
            label: Some(label),
        })?;
        let (repo, tag) = args
            .target
            .rsplit_once(':')
            .unwrap_or((&args.target, "latest"));
        // The import succeeded; a failed read-back is only a note.
        let digest = match ctx.registry(RegistryRequest {
            registry: target.name.clone(),
            op: "manifest".into(),
            repository: Some(repo.to_owned()),
            reference: Some(tag.to_owned()),
        }) {
            Ok(RegistryResponse::Manifest { digest, .. }) => {
                format!("digest {}", short_digest(&digest))
            }
            Ok(_) => "digest not read".to_owned(),
            Err(e) => format!("note: reading its digest back failed: {e}"),
        };
        Ok(Reply::text(format!(
            "Imported {}/{} into {login}/{} ({digest}).",
            source.registry, source.image, args.target
        )))
    }

    pub fn credentials(&self, ctx: &Ctx, args: &Credentials) -> Result<Reply, PluginError> {
        let target = self.target(ctx, args.registry.as_deref())?;
        let response = ctx.arm(ArmRequest {
            method: "POST".into(),
            path: target
                .address()?
                .action("listCredentials")
                .map_err(address_error)?
                .to_string(),
            api_version: ACR_API.into(),
            ..Default::default()
        })?;
        let body = response.body;
        let username = body["username"].as_str().unwrap_or(&target.name);
        let passwords: Vec<String> = body["passwords"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some(format!("{}: {}", p["name"].as_str()?, p["value"].as_str()?)))
            .collect();
        if passwords.is_empty() {
            return Err(PluginError::new(
                ErrorCode::Upstream,
                format!("Azure returned no admin passwords for {}", target.name),
            ));
        }
        let login = target.login_server();
        Ok(Reply {
            text: format!(
                "Admin credentials of {login} (only you see this; do not paste them in a channel):\nusername: {username}\n{}\n`docker login {login} -u {username}` with either password.",
                passwords.join("\n")
            ),
            ephemeral: true,
            actions: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_split_for_import_image() {
        let s = |x: &str| parse_source(x).unwrap();
        assert_eq!(
            s("nginx"),
            Source {
                registry: "docker.io".into(),
                image: "library/nginx:latest".into()
            }
        );
        assert_eq!(
            s("docker.io/library/hello-world:latest").image,
            "library/hello-world:latest"
        );
        let mcr = s("mcr.microsoft.com/dotnet/runtime:8.0");
        assert_eq!(mcr.registry, "mcr.microsoft.com");
        assert_eq!(mcr.image, "dotnet/runtime:8.0");
        assert_eq!(
            s("quay.io/org/app@sha256:abcdef0123").image,
            "org/app@sha256:abcdef0123"
        );
        for bad in [
            "",
            "a b",
            "docker.io/Nginx",
            "nginx:.bad",
            "x.io/app@md5",
            "-bad.io/x",
        ] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
    }
}
