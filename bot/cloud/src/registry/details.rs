//! Tags with their digests and times (`tag_details`) and tag deletion (`delete_tag`).
//!
//! ACR has both in its own API: `GET /acr/v1/<name>/_tags?orderby=timedesc` (pages linked as
//! the catalog's are) and `DELETE /acr/v1/<name>/_tags/<tag>`, which untags. Any other
//! distribution registry gets the tag list, each tag's manifest (its digest) and image config
//! (its `created`), and deletes by manifest digest, which removes every tag of that digest.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deckhand_plugin_abi::proto::{RegistryResponse, TagDetail};
use reqwest::Method;
use serde_json::Value;

use super::{
    Auth, MANIFEST_ACCEPT, MAX_PAGES, Registries, Registry, RegistryError, ensure_success,
    next_link, pull_scope,
};
use crate::arm::CallContext;

/// Tags whose manifest and config are read one by one on a registry without ACR's API.
const MAX_DETAILED: usize = 500;

fn metadata_scope(repository: &str) -> String {
    format!("repository:{repository}:metadata_read")
}

fn delete_scope(repository: &str) -> String {
    format!("repository:{repository}:delete")
}

/// Newest first; tags without a (readable) time last, by name.
pub(super) fn newest_first(tags: &mut [TagDetail]) {
    let time = |t: &TagDetail| {
        t.created
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&Utc))
    };
    tags.sort_by(|a, b| match (time(a), time(b)) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
}

impl Registry {
    fn is_acr(&self) -> bool {
        matches!(self.auth, Auth::Acr(_))
    }
}

impl Registries {
    pub(super) async fn tag_details(
        &self,
        registry: &Registry,
        repository: &str,
        cx: &CallContext<'_>,
    ) -> Result<RegistryResponse, RegistryError> {
        let mut tags = if registry.is_acr() {
            self.acr_tags(registry, repository, cx).await?
        } else {
            self.read_tags_one_by_one(registry, repository, cx).await?
        };
        newest_first(&mut tags);
        Ok(RegistryResponse::TagDetails {
            repository: repository.to_owned(),
            tags,
        })
    }

    async fn acr_tags(
        &self,
        registry: &Registry,
        repository: &str,
        cx: &CallContext<'_>,
    ) -> Result<Vec<TagDetail>, RegistryError> {
        let operation = format!("tags of {repository}");
        let scope = metadata_scope(repository);
        let mut url = format!(
            "{}/acr/v1/{repository}/_tags?orderby=timedesc&n={}",
            registry.base,
            registry.page_size.unwrap_or(100)
        );
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .fetch(registry, Method::GET, &url, &scope, None, &operation, cx)
                .await?;
            if page.status == 404 {
                let (code, _) = page.oci_error();
                return Err(RegistryError::NotFound {
                    message: format!("repository {repository} not found in {}", registry.name),
                    upstream_code: Some(code),
                });
            }
            ensure_success(registry, &operation, &page)?;
            let body = page.json();
            for tag in body["tags"].as_array().into_iter().flatten() {
                let Some(name) = tag["name"].as_str() else {
                    continue;
                };
                tags.push(TagDetail {
                    name: name.to_owned(),
                    digest: tag["digest"].as_str().unwrap_or_default().to_owned(),
                    created: tag["lastUpdateTime"]
                        .as_str()
                        .or_else(|| tag["createdTime"].as_str())
                        .map(str::to_owned),
                });
            }
            match next_link(&page.headers) {
                Some(link) => url = registry.resolve(&page.url, &link),
                None => return Ok(tags),
            }
        }
        tracing::warn!(registry = %registry.name, "stopped after {MAX_PAGES} pages of tags");
        Ok(tags)
    }

    /// The tag list, then each tag's manifest and image config.
    async fn read_tags_one_by_one(
        &self,
        registry: &Registry,
        repository: &str,
        cx: &CallContext<'_>,
    ) -> Result<Vec<TagDetail>, RegistryError> {
        let names = self.tags(registry, repository, cx).await?;
        if names.len() > MAX_DETAILED {
            tracing::info!(registry = %registry.name, repository, tags = names.len(), "only the first {MAX_DETAILED} tags get digests and times");
        }
        let scope = pull_scope(repository);
        let mut created_by_config: HashMap<String, Option<String>> = HashMap::new();
        let mut tags = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            if i >= MAX_DETAILED {
                tags.push(TagDetail {
                    name,
                    digest: String::new(),
                    created: None,
                });
                continue;
            }
            let operation = format!("manifest {repository}:{name}");
            let url = format!("{}/v2/{repository}/manifests/{name}", registry.base);
            let manifest = self
                .fetch(
                    registry,
                    Method::GET,
                    &url,
                    &scope,
                    Some(MANIFEST_ACCEPT),
                    &operation,
                    cx,
                )
                .await?;
            if manifest.status == 404 {
                // Deleted between the list and now.
                continue;
            }
            ensure_success(registry, &operation, &manifest)?;
            let digest = manifest.manifest_digest();
            let config = manifest
                .json()
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let created = match config {
                Some(config) => match created_by_config.get(&config) {
                    Some(created) => created.clone(),
                    None => {
                        let created = self
                            .config_created(registry, repository, &config, &scope, cx)
                            .await?;
                        created_by_config.insert(config, created.clone());
                        created
                    }
                },
                // An image index has no config of its own.
                None => None,
            };
            tags.push(TagDetail {
                name,
                digest,
                created,
            });
        }
        Ok(tags)
    }

    async fn config_created(
        &self,
        registry: &Registry,
        repository: &str,
        config: &str,
        scope: &str,
        cx: &CallContext<'_>,
    ) -> Result<Option<String>, RegistryError> {
        let operation = format!("image config {config} of {repository}");
        let url = format!("{}/v2/{repository}/blobs/{config}", registry.base);
        let blob = self
            .fetch(registry, Method::GET, &url, scope, None, &operation, cx)
            .await?;
        if blob.status == 404 {
            return Ok(None);
        }
        ensure_success(registry, &operation, &blob)?;
        Ok(blob.json()["created"].as_str().map(str::to_owned))
    }

    pub(super) async fn delete_tag(
        &self,
        registry: &Registry,
        repository: &str,
        tag: &str,
        cx: &CallContext<'_>,
    ) -> Result<RegistryResponse, RegistryError> {
        let RegistryResponse::Manifest { digest, .. } =
            self.manifest(registry, repository, tag, cx).await?
        else {
            return Err(RegistryError::BadRequest(
                "the manifest lookup answered something else".into(),
            ));
        };
        let operation = format!("delete {repository}:{tag}");
        let scope = delete_scope(repository);
        let (url, also_removed) = if registry.is_acr() {
            (
                format!("{}/acr/v1/{repository}/_tags/{tag}", registry.base),
                Vec::new(),
            )
        } else {
            let others = self
                .read_tags_one_by_one(registry, repository, cx)
                .await?
                .into_iter()
                .filter(|t| t.digest == digest && t.name != tag)
                .map(|t| t.name)
                .collect();
            (
                format!("{}/v2/{repository}/manifests/{digest}", registry.base),
                others,
            )
        };
        let answer = self
            .fetch(registry, Method::DELETE, &url, &scope, None, &operation, cx)
            .await?;
        // Gone already (a retried DELETE that went through the first time) is gone.
        if answer.status != 404 {
            ensure_success(registry, &operation, &answer)?;
        }
        Ok(RegistryResponse::TagDeleted {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            digest,
            also_removed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, created: Option<&str>) -> TagDetail {
        TagDetail {
            name: name.into(),
            digest: String::new(),
            created: created.map(str::to_owned),
        }
    }

    #[test]
    fn newest_first_whatever_the_offset_and_unknown_times_last() {
        let mut tags = vec![
            tag("old", Some("2026-01-01T00:00:00Z")),
            tag("b-unknown", None),
            tag("new", Some("2026-01-01T01:30:00+01:00")),
            tag("newest", Some("2026-01-01T00:45:00.5Z")),
            tag("a-unknown", Some("not a time")),
        ];
        newest_first(&mut tags);
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["newest", "new", "old", "a-unknown", "b-unknown"]);
    }
}
