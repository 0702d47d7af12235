//! The data plane, through the host's registry service: repositories, tags newest first with
//! digest and age, and deleting a tag.

use chrono::{DateTime, Utc};
use deckhand_plugin_sdk::abi::proto::{RegistryRequest, RegistryResponse, TagDetail};
use deckhand_plugin_sdk::{Ctx, ErrorCode, HostError, PluginError, Reply};

use crate::Acr;
use crate::commands::{DeleteTag, Repos, Tags};
use crate::near::did_you_mean;

fn request(registry: &str, op: &str, repository: Option<&str>) -> RegistryRequest {
    RegistryRequest {
        registry: registry.to_owned(),
        op: op.to_owned(),
        repository: repository.map(str::to_owned),
        reference: None,
    }
}

fn unexpected() -> PluginError {
    PluginError::new(
        ErrorCode::Protocol,
        "the registry service answered another operation",
    )
}

/// `sha256:0123456789ab` (12 hex digits, as `docker images` shows them).
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => {
            format!("{algorithm}:{}", hex.chars().take(12).collect::<String>())
        }
        None => digest.to_owned(),
    }
}

/// `45s`, `12m`, `3h`, `5d` since `created`; `age unknown` when there is no time.
pub fn age(created: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(created) = created.and_then(|c| DateTime::parse_from_rfc3339(c).ok()) else {
        return "age unknown".into();
    };
    let secs = now
        .signed_duration_since(created.with_timezone(&Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// The repositories of `registry`.
pub(crate) fn catalog(ctx: &Ctx, registry: &str) -> Result<Vec<String>, PluginError> {
    match ctx.registry(request(registry, "catalog", None))? {
        RegistryResponse::Catalog { repositories } => Ok(repositories),
        _ => Err(unexpected()),
    }
}

impl Acr {
    /// The registry a data-plane command reads: `--registry`, the configured one, or the only
    /// one ARM lists.
    fn data_registry(&self, ctx: &Ctx, given: Option<&str>) -> Result<String, PluginError> {
        match given.or(self.config.registry.as_deref()) {
            Some(name) => Ok(name.to_owned()),
            None => Ok(self.target(ctx, None)?.name),
        }
    }

    /// Every tag of `repo`, newest first; an unknown repository is named with near matches.
    fn tag_details(
        &self,
        ctx: &Ctx,
        registry: &str,
        repo: &str,
    ) -> Result<Vec<TagDetail>, PluginError> {
        match ctx.registry(request(registry, "tag_details", Some(repo))) {
            Ok(RegistryResponse::TagDetails { tags, .. }) => Ok(tags),
            Ok(_) => Err(unexpected()),
            Err(e) if e.code == "not_found" && e.status == Some(404) => {
                Err(unknown_repository(ctx, registry, repo, e))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn repos(&self, ctx: &Ctx, args: &Repos) -> Result<Reply, PluginError> {
        let registry = self.data_registry(ctx, args.registry.as_deref())?;
        let repositories = catalog(ctx, &registry)?;
        if repositories.is_empty() {
            return Ok(Reply::text(format!(
                "Registry {registry} has no repositories yet: `/acr import` or `/acr build` puts images there."
            )));
        }
        Ok(Reply::text(format!(
            "Registry {registry}: {} repositor{}\n{}",
            repositories.len(),
            if repositories.len() == 1 { "y" } else { "ies" },
            repositories
                .iter()
                .map(|r| format!("• {r}"))
                .collect::<Vec<_>>()
                .join("\n")
        )))
    }

    pub fn tags(&self, ctx: &Ctx, args: &Tags) -> Result<Reply, PluginError> {
        if args.top < 1 {
            return Err(PluginError::bad_input(
                "top",
                format!("--top {}: show at least one tag", args.top),
            ));
        }
        let registry = self.data_registry(ctx, args.registry.as_deref())?;
        let tags = self.tag_details(ctx, &registry, &args.repo)?;
        if tags.is_empty() {
            return Ok(Reply::text(format!(
                "{registry}/{}: no tags (the repository holds only untagged manifests)",
                args.repo
            )));
        }
        let now = Utc::now();
        let shown = usize::try_from(args.top)
            .unwrap_or(usize::MAX)
            .min(tags.len());
        let mut lines = vec![format!(
            "{registry}/{}: {} tag{}, newest first",
            args.repo,
            tags.len(),
            if tags.len() == 1 { "" } else { "s" }
        )];
        for tag in &tags[..shown] {
            lines.push(format!(
                "• {}  {}  {}",
                tag.name,
                short_digest(&tag.digest),
                age(tag.created.as_deref(), now)
            ));
        }
        if shown < tags.len() {
            lines.push(format!(
                "… and {} older (--top {} shows them)",
                tags.len() - shown,
                tags.len()
            ));
        }
        Ok(Reply::text(lines.join("\n")))
    }

    pub fn delete_tag(&self, ctx: &Ctx, args: &DeleteTag) -> Result<Reply, PluginError> {
        // The rule (repository:tag) was checked before the confirmation.
        let (repo, tag) = args
            .image
            .rsplit_once(':')
            .ok_or_else(|| PluginError::bad_input("image", "give the tag as repository:tag"))?;
        let registry = self.data_registry(ctx, args.registry.as_deref())?;
        let tags = self.tag_details(ctx, &registry, repo)?;
        if !tags.iter().any(|t| t.name == tag) {
            return Err(PluginError::new(
                ErrorCode::NotFound,
                format!(
                    "{repo} has no tag {tag} in {registry}{} (tags: {})",
                    did_you_mean(tag, tags.iter().map(|t| t.name.as_str())),
                    newest(&tags)
                ),
            )
            .with_option("image"));
        }
        let mut delete = request(&registry, "delete_tag", Some(repo));
        delete.reference = Some(tag.to_owned());
        let RegistryResponse::TagDeleted {
            digest,
            also_removed,
            ..
        } = ctx.registry(delete)?
        else {
            return Err(unexpected());
        };
        let mut text = format!(
            "Deleted tag {repo}:{tag} from {registry} (it pointed at {}).",
            short_digest(&digest)
        );
        if !also_removed.is_empty() {
            text.push_str(&format!(
                " This registry deletes by digest, so these tags of the same image went too: {}.",
                also_removed.join(", ")
            ));
        }
        let left = tags.len() - 1 - also_removed.len();
        text.push_str(&format!(" {repo} has {left} tag(s) left."));
        Ok(Reply::text(text))
    }
}

/// Up to ten tag names, newest first.
fn newest(tags: &[TagDetail]) -> String {
    let names: Vec<&str> = tags.iter().take(10).map(|t| t.name.as_str()).collect();
    match tags.len() {
        0 => "none".into(),
        n if n > 10 => format!("{} and {} more", names.join(", "), n - 10),
        _ => names.join(", "),
    }
}

/// "repository simsvc-mtp not found in intens (did you mean simsvc-mpt?)", keeping the
/// registry's code and status.
fn unknown_repository(ctx: &Ctx, registry: &str, repo: &str, error: HostError) -> PluginError {
    let hint = catalog(ctx, registry)
        .map(|known| did_you_mean(repo, known.iter().map(String::as_str)))
        .unwrap_or_default();
    let mut error = PluginError::from_host(
        error,
        format!("repository {repo} not found in {registry}{hint}"),
    );
    error.option = Some("repo".into());
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_digests_read_like_docker_images() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(age(Some("2026-01-01T23:59:30Z"), now), "30s ago");
        assert_eq!(age(Some("2026-01-01T23:00:00+00:00"), now), "1h ago");
        assert_eq!(age(Some("2025-12-30T00:00:00Z"), now), "3d ago");
        assert_eq!(age(None, now), "age unknown");
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
    }
}
