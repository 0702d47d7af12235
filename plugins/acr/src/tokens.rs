//! `/acr token create`: a repository-scoped token (scope map + token + `generateCredentials`),
//! the least-privilege alternative to the admin user. The password is answered once, to the
//! caller alone; Azure never shows it again.

use chrono::{Duration, Utc};
use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};
use deckhand_plugin_shared::azure::{ACR_API, ArmPath};
use deckhand_plugin_shared::names::NameRule;
use serde_json::{Value, json};

use crate::Acr;
use crate::commands::TokenCreate;
use crate::images::catalog;
use crate::near::did_you_mean;
use crate::target::{Target, address_error};

/// Scope-map actions per access level (ACR's repository permissions).
const PULL: &[&str] = &["content/read", "metadata/read"];
const PUSH: &[&str] = &[
    "content/read",
    "metadata/read",
    "content/write",
    "metadata/write",
];

/// The repositories of `--repos`, each checked by the registry's rule, without duplicates.
fn parse_repos(given: &str) -> Result<Vec<String>, PluginError> {
    let mut repos: Vec<String> = Vec::new();
    for repo in given.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        NameRule::Repository
            .check(repo)
            .map_err(|e| PluginError::bad_input("repos", e.to_string()))?;
        if !repos.iter().any(|r| r == repo) {
            repos.push(repo.to_owned());
        }
    }
    if repos.is_empty() {
        return Err(PluginError::bad_input(
            "repos",
            "name at least one repository, e.g. --repos simsvc-mpt,studio/runner",
        ));
    }
    Ok(repos)
}

fn actions(repos: &[String], push: bool) -> Vec<String> {
    let levels = if push { PUSH } else { PULL };
    repos
        .iter()
        .flat_map(|repo| {
            levels
                .iter()
                .map(move |a| format!("repositories/{repo}/{a}"))
        })
        .collect()
}

fn child(target: &Target, kind: &str, name: &str) -> Result<ArmPath, PluginError> {
    target
        .address()?
        .resource(kind, name)
        .map_err(address_error)
}

impl Acr {
    pub fn create_token(&self, ctx: &Ctx, args: &TokenCreate) -> Result<Reply, PluginError> {
        // The name's rule was checked by the router; the rest before any change.
        let repos = parse_repos(&args.repos)?;
        if !(1..=365).contains(&args.days) {
            return Err(PluginError::bad_input(
                "days",
                format!("{} is out of range: give 1-365 days", args.days),
            ));
        }
        let target = self.target(ctx, args.registry.as_deref())?;
        let known = catalog(ctx, &target.name)?;
        let missing: Vec<&String> = repos.iter().filter(|r| !known.contains(r)).collect();
        if !args.push && !missing.is_empty() {
            let hints: Vec<String> = missing
                .iter()
                .map(|m| format!("{m}{}", did_you_mean(m, known.iter().map(String::as_str))))
                .collect();
            return Err(PluginError::new(
                ErrorCode::NotFound,
                format!(
                    "{} has no repositor{} {}; nothing was created (a pull token for a repository that does not exist is useless; `--push` allows new ones)",
                    target.name,
                    if missing.len() == 1 { "y" } else { "ies" },
                    hints.join(", ")
                ),
            ));
        }
        let token_path = child(&target, "tokens", &args.name)?;
        let exists = match ctx.arm(ArmRequest {
            method: "GET".into(),
            path: token_path.to_string(),
            api_version: ACR_API.into(),
            ..Default::default()
        }) {
            Ok(_) => true,
            Err(e) if e.status == Some(404) => false,
            Err(e) => return Err(e.into()),
        };
        if exists && !args.rotate {
            return Err(PluginError::bad_input(
                "name",
                format!(
                    "token {} already exists in {}: choose another name, or add --rotate to replace its password (the old one stops working)",
                    args.name, target.name
                ),
            ));
        }
        let map = ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: child(&target, "scopeMaps", &args.name)?.to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({"properties": {
                "description": format!("Deckhand token {} ({})", args.name, if args.push { "push" } else { "pull" }),
                "actions": actions(&repos, args.push),
            }})),
            label: Some(format!("Creating scope map {}", args.name)),
            ..Default::default()
        })?;
        let map_id = resource_id(&map.body, "scope map")?;
        let token = ctx.arm(ArmRequest {
            method: "PUT".into(),
            path: token_path.to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({"properties": {"scopeMapId": map_id, "status": "enabled"}})),
            label: Some(format!("Creating token {}", args.name)),
            ..Default::default()
        })?;
        let token_id = resource_id(&token.body, "token")?;
        let expiry = Utc::now()
            .checked_add_signed(Duration::days(args.days))
            .ok_or_else(|| PluginError::bad_input("days", "the expiry is out of range"))?;
        let generated = ctx.arm(ArmRequest {
            method: "POST".into(),
            path: target
                .address()?
                .action("generateCredentials")
                .map_err(address_error)?
                .to_string(),
            api_version: ACR_API.into(),
            body: Some(json!({
                "tokenId": token_id,
                "expiry": expiry.to_rfc3339(),
                "name": "password1",
            })),
            ..Default::default()
        })?;
        let password = generated.body["passwords"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "password1")
            .and_then(|p| p["value"].as_str())
            .ok_or_else(|| {
                PluginError::new(
                    ErrorCode::Upstream,
                    format!(
                        "token {} was created in {}, but Azure returned no password: `/acr token create {} --rotate --repos {}` asks again",
                        args.name, target.name, args.name, args.repos
                    ),
                )
            })?;
        let username = generated.body["username"].as_str().unwrap_or(&args.name);
        let login = target.login_server();
        let mut text = format!(
            "Token {username} for {login}: {} on {} (only you see this; the password is not shown again):\nusername: {username}\npassword: {password}\nexpires: {}\n`docker login {login} -u {username}` with that password.",
            if args.push { "pull and push" } else { "pull" },
            repos.join(", "),
            expiry.format("%Y-%m-%d %H:%M UTC"),
        );
        if exists {
            text.push_str("\nThe token's previous password1 no longer works.");
        }
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
            text.push_str(&format!(
                "\nNot in the registry yet (the token may push them): {}",
                names.join(", ")
            ));
        }
        Ok(Reply {
            text,
            ephemeral: true,
            actions: Vec::new(),
        })
    }
}

/// The `id` Azure answered for a resource it just created.
fn resource_id(body: &Value, what: &str) -> Result<String, PluginError> {
    body["id"].as_str().map(str::to_owned).ok_or_else(|| {
        PluginError::new(
            ErrorCode::Upstream,
            format!("Azure answered the new {what} without its id"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_are_checked_and_deduplicated() {
        assert_eq!(
            parse_repos(" simsvc, studio/runner,simsvc").unwrap(),
            ["simsvc", "studio/runner"]
        );
        for bad in ["", " , ", "Simsvc", "a/../b", "simsvc,%2e%2e"] {
            assert!(parse_repos(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pull_tokens_read_push_tokens_also_write() {
        let repos = vec!["simsvc".to_owned()];
        assert_eq!(
            actions(&repos, false),
            [
                "repositories/simsvc/content/read",
                "repositories/simsvc/metadata/read"
            ]
        );
        assert!(actions(&repos, true).contains(&"repositories/simsvc/content/write".to_owned()));
    }
}
