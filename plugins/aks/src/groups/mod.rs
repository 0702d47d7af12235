//! `/rg …`: Azure resource groups (list, show, create, delete) through the host's typed
//! resource-group service (`Service::ResourceGroups`, implemented by the host with
//! `azure_mgmt_resources`). Names are checked by the router (the option rules) and again by the
//! host; this module decides what to ask and how to say the answer.
//!
//! `/rg delete` is previewed: the router calls it first with `Call::preview`, and its answer
//! (what will be deleted, or a refusal) is the confirmation text. An AKS node resource group
//! (`MC_…`, managed by its cluster) is never deleted here: AKS deletes it with the cluster.

pub mod commands;
#[cfg(test)]
mod harness_tests;
mod render;

use std::collections::BTreeMap;

use deckhand_plugin_sdk::abi::proto::{
    ArmCapability, LocationInfo, ResourceGroupInfo, ResourceGroupRequest, ResourceGroupResponse,
    ResourceInfo,
};
use deckhand_plugin_sdk::{
    AutocompleteQuery, Capabilities, Choice, Ctx, PluginError, Reply, choices_starting_with,
};

use crate::pools::{bad_input, cloud_error};
use commands::{Create, Delete, RgCommand, Show};
use render::{contents, group_line, managing_cluster};

pub fn capabilities() -> Capabilities {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Capabilities {
        arm: vec![
            ArmCapability {
                resource_type: "Microsoft.Resources/resourceGroups".into(),
                actions: strings(&["read", "write", "delete"]),
            },
            ArmCapability {
                resource_type: "Microsoft.Resources/locations".into(),
                actions: strings(&["read"]),
            },
        ],
        ..Default::default()
    }
}

/// Runs one `/rg` command; `preview` answers a delete's confirmation text and changes nothing.
pub fn call(ctx: &Ctx, command: RgCommand, preview: bool) -> Result<Reply, PluginError> {
    match command {
        RgCommand::List(_) => list(ctx),
        RgCommand::Show(args) => show(ctx, &args),
        RgCommand::Create(args) => create(ctx, &args),
        RgCommand::Delete(args) if preview => delete_preview(ctx, &args),
        RgCommand::Delete(args) => delete(ctx, &args),
    }
}

pub fn autocomplete(ctx: &Ctx, query: &AutocompleteQuery) -> Result<Vec<Choice>, PluginError> {
    let names: Vec<String> = match query.option.as_str() {
        "location" => locations(ctx)?.into_iter().map(|l| l.name).collect(),
        _ => groups(ctx)?.into_iter().map(|g| g.name).collect(),
    };
    Ok(choices_starting_with(names, &query.partial))
}

fn ask(
    ctx: &Ctx,
    request: ResourceGroupRequest,
    doing: &str,
) -> Result<ResourceGroupResponse, PluginError> {
    ctx.resource_groups(request)
        .map_err(|e| cloud_error(e, doing))
}

fn groups(ctx: &Ctx) -> Result<Vec<ResourceGroupInfo>, PluginError> {
    Ok(ask(ctx, ResourceGroupRequest::List, "listing resource groups")?.groups)
}

fn locations(ctx: &Ctx) -> Result<Vec<LocationInfo>, PluginError> {
    Ok(ask(
        ctx,
        ResourceGroupRequest::Locations,
        "listing the subscription's locations",
    )?
    .locations)
}

fn get(ctx: &Ctx, name: &str) -> Result<ResourceGroupInfo, PluginError> {
    let doing = format!("reading resource group {name}");
    ask(
        ctx,
        ResourceGroupRequest::Get {
            name: name.to_owned(),
        },
        &doing,
    )?
    .groups
    .into_iter()
    .next()
    .ok_or_else(|| {
        PluginError::new(
            deckhand_plugin_sdk::ErrorCode::Upstream,
            format!("{doing}: Azure answered no group"),
        )
    })
}

fn resources(ctx: &Ctx, name: &str) -> Result<Vec<ResourceInfo>, PluginError> {
    Ok(ask(
        ctx,
        ResourceGroupRequest::Resources {
            name: name.to_owned(),
        },
        &format!("listing the resources of {name}"),
    )?
    .resources)
}

fn list(ctx: &Ctx) -> Result<Reply, PluginError> {
    let mut all = groups(ctx)?;
    all.sort_by_key(|g| g.name.to_ascii_lowercase());
    if all.is_empty() {
        return Ok(Reply::text("No resource groups in the subscription."));
    }
    let lines: Vec<String> = all.iter().map(group_line).collect();
    Ok(Reply::text(format!(
        "{} resource group{}:\n{}",
        all.len(),
        if all.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )))
}

/// The node resource groups AKS manages for clusters in `found`, by cluster name.
fn node_groups(ctx: &Ctx, found: &[ResourceInfo]) -> Result<Vec<(String, String)>, PluginError> {
    let clusters: Vec<&ResourceInfo> = found
        .iter()
        .filter(|r| r.resource_type.eq_ignore_ascii_case(render::CLUSTER_TYPE))
        .collect();
    if clusters.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for group in groups(ctx)? {
        if let Some(by) = &group.managed_by
            && let Some(cluster) = clusters.iter().find(|c| c.id.eq_ignore_ascii_case(by))
        {
            out.push((cluster.name.clone(), group.name.clone()));
        }
    }
    Ok(out)
}

fn show(ctx: &Ctx, args: &Show) -> Result<Reply, PluginError> {
    let group = get(ctx, &args.name)?;
    let found = resources(ctx, &group.name)?;
    let nodes = node_groups(ctx, &found)?;
    let mut text = group_line(&group).trim_start_matches("• ").to_owned();
    text = format!("Resource group {text}\n{}", contents(&found, &nodes));
    Ok(Reply::text(text))
}

/// `k=v,k2=v2` as Azure allows tags: names 1-512 characters without `< > % & \ ? /`, values
/// up to 256 characters, at most 50 tags.
fn parse_tags(text: Option<&str>) -> Result<BTreeMap<String, String>, PluginError> {
    let mut tags = BTreeMap::new();
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(tags);
    };
    for pair in text.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            bad_input(
                "tag",
                format!("{pair:?} is not key=value: tags are written env=lab,owner=ml"),
            )
        })?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || key.chars().count() > 512 {
            return Err(bad_input(
                "tag",
                format!("tag name {key:?} must be 1-512 characters"),
            ));
        }
        if let Some(c) = key
            .chars()
            .find(|c| "<>%&\\?/".contains(*c) || c.is_control())
        {
            return Err(bad_input(
                "tag",
                format!(
                    "tag name {key:?} contains {c:?}; Azure refuses < > % & \\ ? / in tag names"
                ),
            ));
        }
        if value.chars().count() > 256 {
            return Err(bad_input(
                "tag",
                format!("the value of tag {key} is longer than 256 characters"),
            ));
        }
        if tags.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(bad_input("tag", format!("tag {key} is given twice")));
        }
    }
    if tags.len() > 50 {
        return Err(bad_input(
            "tag",
            "Azure allows at most 50 tags on a resource group",
        ));
    }
    Ok(tags)
}

fn create(ctx: &Ctx, args: &Create) -> Result<Reply, PluginError> {
    let tags = parse_tags(args.tag.as_deref())?;
    let offered = locations(ctx)?;
    if !offered
        .iter()
        .any(|l| l.name.eq_ignore_ascii_case(&args.location))
    {
        let mut names: Vec<&str> = offered.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        return Err(bad_input(
            "location",
            format!(
                "{} is not a location of this subscription; it offers {}",
                args.location,
                names.join(", ")
            ),
        ));
    }
    let answer = ask(
        ctx,
        ResourceGroupRequest::CreateOrUpdate {
            name: args.name.clone(),
            location: args.location.clone(),
            tags,
        },
        &format!("creating resource group {}", args.name),
    )?;
    let verb = if answer.created == Some(true) {
        "created"
    } else {
        "updated"
    };
    let shown = answer
        .groups
        .first()
        .map(|g| group_line(g).trim_start_matches("• ").to_owned())
        .unwrap_or_else(|| format!("{} ({})", args.name, args.location));
    Ok(Reply::text(format!("✓ Resource group {verb}: {shown}")))
}

/// Refuses an AKS node resource group, naming its cluster.
fn refuse_managed(group: &ResourceGroupInfo) -> Result<(), PluginError> {
    match managing_cluster(group) {
        Some(cluster) => Err(bad_input(
            "name",
            format!(
                "{} is the node resource group AKS manages for cluster {cluster}: AKS deletes it with the cluster, and deleting it alone breaks the cluster's nodes. Delete the cluster's own resource group (or the cluster) instead",
                group.name
            ),
        )),
        None => Ok(()),
    }
}

fn delete_preview(ctx: &Ctx, args: &Delete) -> Result<Reply, PluginError> {
    let group = get(ctx, &args.name)?;
    refuse_managed(&group)?;
    let found = resources(ctx, &group.name)?;
    let nodes = node_groups(ctx, &found)?;
    Ok(Reply::text(format!(
        "Deleting resource group {} ({}) deletes everything in it.\n{}",
        group.name,
        group.location,
        contents(&found, &nodes)
    )))
}

fn delete(ctx: &Ctx, args: &Delete) -> Result<Reply, PluginError> {
    // Checked again: the group may have changed since the confirmation was asked.
    let group = get(ctx, &args.name)?;
    refuse_managed(&group)?;
    ctx.progress(format!("Deleting resource group {}…", group.name));
    let answer = ask(
        ctx,
        ResourceGroupRequest::Delete {
            name: group.name.clone(),
        },
        &format!("deleting resource group {}", group.name),
    )?;
    let id = answer
        .request_id
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default();
    Ok(Reply::text(format!(
        "✓ Resource group {} and everything in it deleted{id}.",
        group.name
    )))
}

#[cfg(test)]
mod tests {
    use super::parse_tags;

    #[test]
    fn tags_are_checked_as_azure_does() {
        let tags = parse_tags(Some("env=lab, owner=ml")).unwrap();
        assert_eq!(tags.get("env").map(String::as_str), Some("lab"));
        assert_eq!(tags.get("owner").map(String::as_str), Some("ml"));
        assert!(parse_tags(None).unwrap().is_empty());
        for bad in ["env", "a/b=1", "=x", "env=1,env=2"] {
            assert!(parse_tags(Some(bad)).is_err(), "{bad}");
        }
        assert!(parse_tags(Some(&format!("k={}", "v".repeat(257)))).is_err());
    }
}
