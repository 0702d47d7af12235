//! The `/rg` commands, declared once (`#[derive(Command)]`): Azure resource groups through the
//! host's typed resource-group service. Permissions are `rg.list`, `rg.show`, `rg.create` and
//! `rg.delete` (not `aks.rg.…`: resource groups are not an AKS matter for the people who hold them).

use deckhand_plugin_sdk::Command;

/// Azure resource groups: list, show, create, delete
#[derive(Command, Debug)]
#[command(name = "rg")]
pub enum RgCommand {
    List(ListGroups),
    Show(Show),
    Create(Create),
    Delete(Delete),
}

/// Resource groups of the subscription: location, state, tags, AKS node resource groups
#[derive(Command, Debug)]
#[command(name = "list", permission = "rg.list", timeout_secs = 120)]
pub struct ListGroups {}

/// What is in a resource group, grouped by type
#[derive(Command, Debug)]
#[command(permission = "rg.show", timeout_secs = 120)]
pub struct Show {
    /// Resource group
    #[option(positional, autocomplete, rule = ResourceGroup)]
    pub name: String,
}

/// Create a resource group, or update the tags of an existing one
#[derive(Command, Debug)]
#[command(permission = "rg.create", timeout_secs = 300)]
pub struct Create {
    /// Resource group (1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.')
    #[option(positional, rule = ResourceGroup)]
    pub name: String,
    /// Azure region of the subscription, e.g. westeurope
    #[option(autocomplete, rule = Location)]
    pub location: String,
    /// Tags as key=value, several separated by commas (env=lab,owner=ml)
    pub tag: Option<String>,
}

/// Delete a resource group and everything in it (asks for confirmation and a second person)
#[derive(Command, Debug)]
#[command(permission = "rg.delete", timeout_secs = 3600, preview)]
pub struct Delete {
    /// Resource group
    #[option(positional, autocomplete, rule = ResourceGroup)]
    pub name: String,
}
