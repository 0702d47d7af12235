//! The `/acr` commands, declared once: each struct is a subcommand's manifest entry and the
//! type its handler receives (`#[derive(Command)]`, see the SDK).

use deckhand_plugin_sdk::Command;

/// Azure Container Registry
#[derive(Command, Debug)]
#[command(name = "acr")]
pub enum AcrCommand {
    Registries(Registries),
    Create(Create),
    Repos(Repos),
    Tags(Tags),
    DeleteTag(DeleteTag),
    Import(Import),
    Build(Build),
    Run(RunStatus),
    Attach(Attach),
    Check(Check),
    Credentials(Credentials),
    Token(TokenCommand),
}

/// Registries: login server, SKU, admin user, provisioning state
#[derive(Command, Debug)]
pub struct Registries {
    /// Resource group (default: the configured one, else the whole subscription)
    #[option(rule = ResourceGroup)]
    pub group: Option<String>,
}

/// Create a registry (the name must be globally unique)
#[derive(Command, Debug)]
#[command(timeout_secs = 900)]
pub struct Create {
    /// Registry name, 5-50 letters and digits
    #[option(positional, rule = ContainerRegistry)]
    pub name: String,
    /// SKU
    #[option(choices(Basic, Standard, Premium), default = "Basic")]
    pub sku: String,
    /// Resource group (default: the configured one)
    #[option(rule = ResourceGroup)]
    pub group: Option<String>,
    /// Region (default: the configured one, else the resource group's)
    #[option(rule = Location)]
    pub location: Option<String>,
}

/// Repositories of a registry
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Repos {
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}

/// Tags of a repository, newest first, with digest and age
#[derive(Command, Debug)]
#[command(timeout_secs = 300)]
pub struct Tags {
    /// Repository, e.g. simsvc-mpt
    #[option(positional, rule = Repository)]
    pub repo: String,
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
    /// Show at most this many
    #[option(default = 20)]
    pub top: i64,
}

/// Delete a tag (REPO:TAG)
#[derive(Command, Debug)]
#[command(destructive, timeout_secs = 300)]
pub struct DeleteTag {
    /// The tag, as repository:tag
    #[option(positional, rule = TaggedImage)]
    pub image: String,
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}

/// Import an image from another registry (docker.io/library/nginx:1.27, mcr.microsoft.com/...)
#[derive(Command, Debug)]
#[command(timeout_secs = 1800)]
pub struct Import {
    /// Source image: [registry/]repository[:tag|@digest]
    #[option(positional)]
    pub source: String,
    /// Target repository:tag in the registry
    #[option(positional, rule = TaggedImage)]
    pub target: String,
    /// Registry to import into (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
    /// Overwrite the target tag if it exists
    pub force: bool,
}

/// Build and push an image with ACR Tasks from a git repository, streaming its log
#[derive(Command, Debug)]
#[command(timeout_secs = 3600)]
pub struct Build {
    /// Image to push, as repository:tag
    #[option(positional, rule = TaggedImage)]
    pub image: String,
    /// Git URL of the build context: https://host/org/repo.git[#ref[:dir]]
    pub context: String,
    /// Dockerfile path in the context
    #[option(default = "Dockerfile")]
    pub file: String,
    /// Build arguments, k=v separated by commas (model=mpt.py,debug=1)
    pub arg: Option<String>,
    /// Registry that builds and stores it (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}

/// An ACR Tasks run: status and log tail; with --follow, until it ends
#[derive(Command, Debug)]
#[command(name = "run", timeout_secs = 3600)]
pub struct RunStatus {
    /// Run id, as /acr build names it (e.g. ca1)
    #[option(positional, rule = AcrRun)]
    pub id: String,
    /// Registry that runs it (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
    /// Keep following until the run ends, posting its result here
    pub follow: bool,
}

/// Let a cluster pull from the registry (AcrPull for its kubelet identity)
#[derive(Command, Debug)]
#[command(timeout_secs = 300)]
pub struct Attach {
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}

/// Can a cluster pull from the registry (role assignment, or a pull secret in the namespace)?
#[derive(Command, Debug)]
#[command(timeout_secs = 120)]
pub struct Check {
    /// AKS cluster (default: the configured one)
    #[option(autocomplete, rule = AksCluster)]
    pub cluster: Option<String>,
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
    /// Namespace whose pull secrets count
    #[option(default = "default", rule = KubeLabel)]
    pub namespace: String,
}

/// The registry's admin credentials, shown only to you
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Credentials {
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}

/// Repository-scoped tokens (the docker login of one team or pipeline)
#[derive(Command, Debug)]
#[command(name = "token")]
pub enum TokenCommand {
    Create(TokenCreate),
}

/// Create a token for some repositories; its password is shown only to you
#[derive(Command, Debug)]
#[command(name = "create", timeout_secs = 300)]
pub struct TokenCreate {
    /// Token name, also the docker login user name: 5-50 letters, digits and '-'
    #[option(positional, rule = AcrToken)]
    pub name: String,
    /// Repositories it may use, separated by commas (simsvc-mpt,studio/runner)
    pub repos: String,
    /// Allow pushing as well as pulling
    pub push: bool,
    /// Days until the password expires (1-365)
    #[option(default = 30)]
    pub days: i64,
    /// Replace the password of an existing token of that name
    pub rotate: bool,
    /// Registry (default: the configured one, else the only one)
    #[option(rule = ContainerRegistry)]
    pub registry: Option<String>,
}
