//! The JSON messages that cross the [`crate::ffi`] tables.
//!
//! Unknown fields are ignored on read so either side can add optional fields without an ABI
//! bump; removing or changing a field's meaning needs one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use deckhand_cloud_names::NameRule;

/// What a plugin is and what it may do, read by the host before `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique plugin name, also its configuration section `[plugins.config.NAME]`.
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub commands: Vec<CommandSpec>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// A command or subcommand. A command with subcommands is only a group: it takes no options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<CommandSpec>,
    /// Permission the caller needs; defaults to the command path joined by dots (`aks.scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// Destructive commands run only after the caller confirms.
    #[serde(default)]
    pub destructive: bool,
    /// A destructive command that describes itself: before asking for the confirmation, the
    /// host calls it with [`Call::preview`] set; the plugin changes nothing and answers what
    /// the command would do (shown in the confirmation), or refuses it (no confirmation then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
    /// Default time limit in seconds; the host cancels the call after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The reply is for the caller only (per-user data, secrets): chat surfaces answer
    /// privately from the first message (Discord: an ephemeral "thinking…").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// Running it twice with the same options leaves things as running it once (set a
    /// pool's count, apply a deployment): a scheduled run interrupted inside it (its replica
    /// died) may run it again on the replica that takes over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
}

/// One typed option of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionSpec {
    pub name: String,
    pub description: String,
    pub kind: OptionKind,
    #[serde(default)]
    pub required: bool,
    /// May be given without `--name`, in declaration order among positional options.
    #[serde(default)]
    pub positional: bool,
    /// The plugin answers autocomplete queries for this option.
    #[serde(default)]
    pub autocomplete: bool,
    /// Allowed values when `kind` is `choice`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Value used when the option is not given (already typed: string, integer, bool, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Never written to the audit log or logs.
    #[serde(default)]
    pub sensitive: bool,
    /// The naming rule a string value must follow (an Azure or Kubernetes name); the host
    /// checks it before anything else, confirmations included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<NameRule>,
    /// Smallest value an integer option accepts (Discord refuses smaller ones in its UI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest value an integer option accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// The type of an option's value, as the plugin receives it in [`Call::options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    /// JSON string.
    String,
    /// JSON integer (i64).
    Integer,
    /// JSON bool; `--flag` alone means true.
    Boolean,
    /// Written `90s`, `15m`, `1h30m`; the plugin receives whole milliseconds (JSON integer).
    Duration,
    /// JSON string, one of [`OptionSpec::choices`].
    Choice,
    /// A chat channel: written `#name`, an id or `<#id>`; the plugin receives a JSON string,
    /// the id or `#name` (names are resolved to ids by the surface that posts). Discord shows
    /// a channel picker (option type 7).
    Channel,
}

/// What a plugin may ask of the host. Anything not declared here is refused and audited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Outbound HTTP targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCapability>,
    /// Program names (as configured in `[host.programs]`) the plugin may run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<String>,
    /// Use of the plugin's own key-value namespace in the state database.
    #[serde(default)]
    pub kv: bool,
    /// Pushing notifications to the host's alert router.
    #[serde(default)]
    pub notify: bool,
    /// Azure Resource Manager resource types and the actions allowed on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arm: Vec<ArmCapability>,
    /// Kubernetes resources and verbs, on any configured cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kube: Vec<KubeCapability>,
    /// Container registries (login servers, `*.azurecr.io` patterns, or `*` for any configured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<String>,
    /// Registries (same patterns) where the plugin may also delete tags (`delete_tag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_deletes: Vec<String>,
    /// AMQP brokers, by their `[amqp.NAME]` name in the host's config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amqp: Vec<String>,
}

/// ARM access to one resource type, e.g. `Microsoft.ContainerService/managedClusters/agentPools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmCapability {
    pub resource_type: String,
    /// `read` (GET), `write` (PUT, PATCH), `delete`, or a POST action's name (`start`,
    /// `listClusterUserCredential`, ...). `*` allows everything on the type.
    pub actions: Vec<String>,
}

/// Kubernetes access: `resources` as plural names, with `/subresource` where needed
/// (`deployments`, `deployments/scale`, `pods/log`); verbs `get`, `list`, `create`, `replace`,
/// `patch`, `apply`, `delete`, `logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeCapability {
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

/// An HTTP host a plugin may call, optionally with a named auth profile the host attaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCapability {
    /// `host` or `host:port`; a leading `*.` matches any subdomain; `*` any host (for
    /// endpoints that come from config, together with an auth profile).
    pub host: String,
    /// The profile's name, or a prefix ending in `*` (`minio*`) for profiles named in config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_profile: Option<String>,
}

/// Who asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: String,
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One command invocation, already validated against the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub invocation_id: String,
    /// Command path, e.g. `["aks", "scale"]`.
    pub command: Vec<String>,
    pub caller: Caller,
    pub channel: String,
    /// Typed option values by name; options not given and without default are absent.
    pub options: Map<String, Value>,
    /// Time limit the host applies, in milliseconds.
    pub timeout_ms: u64,
    /// Only describe what the command would do, changing nothing (see [`CommandSpec::preview`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
}

/// A successful answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    /// Show only to the caller (Discord ephemeral); use for secrets and per-user data.
    #[serde(default)]
    pub ephemeral: bool,
    /// Buttons under the reply (Discord) or commands to type next (terminal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ReplyAction>,
}

/// A button under a reply: pressing it runs `command` as the person who pressed it, authorized
/// and audited like typing it (e.g. "Deploy" after a build).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAction {
    pub label: String,
    pub command: String,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            ephemeral: false,
            actions: Vec::new(),
        }
    }

    /// Adds a button that runs `command` (a whole command line) when pressed.
    pub fn with_action(mut self, label: impl Into<String>, command: impl Into<String>) -> Reply {
        self.actions.push(ReplyAction {
            label: label.into(),
            command: command.into(),
        });
        self
    }
}

/// An autocomplete request for one option while the user types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutocompleteQuery {
    pub command: Vec<String>,
    pub option: String,
    /// What the user typed so far.
    pub partial: String,
    /// Other options already filled in, loosely typed.
    #[serde(default)]
    pub options: Map<String, Value>,
    pub caller: Caller,
}

/// One autocomplete suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub name: String,
    pub value: String,
}

/// What kind of failure a plugin reports. On the wire it is a snake_case string; a code this
/// version does not know is kept as [`ErrorCode::Other`], so newer plugins still load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The caller's input cannot be used (`option` says which).
    BadInput,
    /// The plugin's `[plugins.config.NAME]` section cannot be used.
    Config,
    /// The thing named does not exist.
    NotFound,
    /// The target is busy or in a state that forbids the change (Azure's 409s).
    Conflict,
    /// A condition the command needs does not hold (a system pool that must stay, …).
    Precondition,
    /// A capability, a permission or the cloud's authorization refused it.
    Denied,
    /// The cloud or another upstream refused or failed the call (Azure's code is in
    /// `upstream_code`).
    Upstream,
    /// The upstream or a host service could not be reached.
    Unavailable,
    /// The time limit passed.
    Timeout,
    /// The call was cancelled.
    Cancelled,
    /// A reduction that asks for a confirming command first.
    NeedsConfirmation,
    /// The call names a command this plugin does not have.
    UnknownCommand,
    /// Host and plugin did not understand each other (unreadable message, init order).
    Protocol,
    /// The plugin panicked (set by the SDK).
    Panic,
    /// A code this version does not know.
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadInput => "bad_input",
            ErrorCode::Config => "config",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Precondition => "precondition",
            ErrorCode::Denied => "denied",
            ErrorCode::Upstream => "upstream",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::NeedsConfirmation => "needs_confirmation",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Protocol => "protocol",
            ErrorCode::Panic => "panic",
            ErrorCode::Other(code) => code,
        }
    }

    /// Reads a wire code. The host's service codes map onto these kinds (`azure` and
    /// `registry` are upstream refusals, `capability_denied` and `auth` are denials); v1
    /// plugins' `bad_config` is `config`.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "bad_input" => ErrorCode::BadInput,
            "config" | "bad_config" => ErrorCode::Config,
            "not_found" => ErrorCode::NotFound,
            "conflict" => ErrorCode::Conflict,
            "precondition" => ErrorCode::Precondition,
            "denied" | "capability_denied" | "auth" => ErrorCode::Denied,
            "upstream" | "azure" | "operation_failed" | "registry" => ErrorCode::Upstream,
            "outcome_unknown" => ErrorCode::Timeout,
            "unavailable" | "audit_unavailable" => ErrorCode::Unavailable,
            "timeout" => ErrorCode::Timeout,
            "cancelled" => ErrorCode::Cancelled,
            "needs_confirmation" => ErrorCode::NeedsConfirmation,
            "unknown_command" => ErrorCode::UnknownCommand,
            "protocol"
            | "bad_request"
            | "bad_response"
            | "not_initialized"
            | "already_initialized" => ErrorCode::Protocol,
            "panic" => ErrorCode::Panic,
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&code))
    }
}

/// A failure a plugin reports; `option` points at the offending input when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginError {
    /// What kind of failure (a snake_case string on the wire).
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// For a failed cloud call: the service's own error code (Azure's `AuthorizationFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_code: Option<String>,
    /// For a failed cloud call: the request id to quote to support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For a failed cloud call: its HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl PluginError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> PluginError {
        PluginError {
            code,
            message: message.into(),
            option: None,
            upstream_code: None,
            request_id: None,
            status: None,
        }
    }

    /// Input the plugin cannot use, pointing at the option that carried it.
    pub fn bad_input(option: &str, message: impl Into<String>) -> PluginError {
        PluginError::new(ErrorCode::BadInput, message).with_option(option)
    }

    pub fn with_option(mut self, option: &str) -> PluginError {
        self.option = Some(option.to_owned());
        self
    }

    /// A failed host call reported as `message`, keeping the upstream code, request id and
    /// status the host gave, so the reply can quote them whatever the message says.
    pub fn from_host(error: HostError, message: impl Into<String>) -> PluginError {
        PluginError {
            code: ErrorCode::parse(&error.code),
            message: message.into(),
            option: None,
            upstream_code: error.upstream_code,
            request_id: error.request_id,
            status: error.status,
        }
    }
}

/// The message, then the option and Azure's code and request id when the message does not
/// already say them.
impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(option) = &self.option {
            write!(f, " (option --{option})")?;
        }
        let message = self.message.as_str();
        fn missing<'a>(value: &'a Option<String>, message: &str) -> Option<&'a str> {
            value
                .as_deref()
                .filter(|v| !v.is_empty() && !message.contains(v))
        }
        match (
            missing(&self.upstream_code, message),
            missing(&self.request_id, message),
        ) {
            (Some(code), Some(id)) => write!(f, " (code {code}, request id {id})"),
            (Some(code), None) => write!(f, " (code {code})"),
            (None, Some(id)) => write!(f, " (request id {id})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for PluginError {}

/// Every plugin function answers `{"ok": T}` or `{"error": PluginError}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginResponse<T> {
    Ok(T),
    Error(PluginError),
}

impl<T> From<Result<T, PluginError>> for PluginResponse<T> {
    fn from(result: Result<T, PluginError>) -> Self {
        match result {
            Ok(value) => PluginResponse::Ok(value),
            Err(error) => PluginResponse::Error(error),
        }
    }
}

impl<T> From<PluginResponse<T>> for Result<T, PluginError> {
    fn from(response: PluginResponse<T>) -> Self {
        match response {
            PluginResponse::Ok(value) => Ok(value),
            PluginResponse::Error(error) => Err(error),
        }
    }
}

/// A request from a plugin to a host service. `invocation` ties it to the command being run,
/// so progress, audit and cancellation attach to it; it is absent only outside any call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<String>,
    #[serde(flatten)]
    pub service: Service,
}

/// How many follow-ups ([`Service::FollowUp`]) one typed command may lead to in a row.
pub const MAX_FOLLOW_UPS: u32 = 48;

/// The services, tagged by `service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "snake_case")]
pub enum Service {
    /// A line of progress shown to the caller while the command runs.
    Progress { message: String },
    /// An unsolicited notification for the alert router. Answers `null`.
    Notify { notification: Notification },
    /// Asks the host to run `line`, a command of this same plugin, once the current command
    /// has answered and `after_secs` have passed: as the same caller, in the same conversation,
    /// its reply posted there. For work that outlives a command's limit (an ACR build still
    /// running). A chain of follow-ups stops after [`MAX_FOLLOW_UPS`]. Answers `null`.
    FollowUp { line: String, after_secs: u32 },
    /// A log line in the host's log, attributed to the plugin.
    Log { level: LogLevel, message: String },
    /// An HTTP request. Answers an [`HttpResponse`].
    Http { request: HttpRequest },
    /// A presigned URL for `request` (method and URL; no body), signed by the host with the
    /// request's `sigv4` auth profile and valid for `expires_secs` (1 s to 7 days); nothing is
    /// sent. Needs the same capability as `http`. Answers a [`PresignedUrl`].
    HttpPresign {
        request: HttpRequest,
        expires_secs: u64,
    },
    /// Key-value state in the plugin's own namespace. Answers the value or `null`.
    KvGet { key: String },
    /// Answers `null`.
    KvPut { key: String, value: Value },
    /// Answers `true` when the key existed.
    KvDelete { key: String },
    /// Answers `[[key, value], ...]` for keys starting with `prefix`, sorted by key.
    KvList { prefix: String },
    /// Runs a configured program with an argument list (no shell). Answers a [`ProgramOutput`].
    Run {
        program: String,
        args: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdin: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// An Azure Resource Manager call; the host authenticates, retries, follows long-running
    /// operations and reports progress. Answers an [`ArmResponse`].
    Arm { request: ArmRequest },
    /// A Kubernetes API call on a configured cluster. Answers a [`KubeResponse`].
    Kube { request: KubeRequest },
    /// A container registry query over the OCI distribution API. Answers a [`RegistryResponse`].
    Registry { request: RegistryRequest },
    /// An AMQP 0.9.1 query on a broker the host's config names (`[amqp.NAME]`); the host holds
    /// the broker's address and credentials. Answers an [`AmqpResponse`].
    Amqp { request: AmqpRequest },
    /// Resource groups and what is in them, through the host's typed Resource Manager client
    /// (`azure_mgmt_resources`); the same credential, retries, deadline, capability check
    /// (`Microsoft.Resources/resourceGroups`), audit and metering as [`Service::Arm`]. Answers a
    /// [`ResourceGroupResponse`].
    ResourceGroups { request: ResourceGroupRequest },
}

/// An AMQP request on the broker `broker` (a `[amqp.NAME]` of the host's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmqpRequest {
    pub broker: String,
    #[serde(flatten)]
    pub op: AmqpOp,
}

/// What to ask the broker. Only reads: nothing here changes a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AmqpOp {
    /// `queue.declare` with `passive`: the broker's exact counts of a queue that exists (a
    /// missing queue fails with `not_found`, it is never created).
    QueueDeclarePassive { queue: String },
}

/// The broker's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AmqpResponse {
    /// Messages ready for delivery (not the unacknowledged ones) and `basic.consume`
    /// consumers (runners polling with `basic.get` are not counted), as the broker has them now.
    QueueDeclarePassive {
        queue: String,
        message_count: u32,
        consumer_count: u32,
    },
}

pub use crate::resource_groups::{
    LocationInfo, ResourceGroupInfo, ResourceGroupRequest, ResourceGroupResponse, ResourceInfo,
};

/// An ARM request. The host adds the subscription, credentials and `api-version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmRequest {
    /// `GET`, `PUT`, `PATCH`, `POST` or `DELETE`.
    pub method: String,
    /// Path below the subscription (`/resourceGroups/rg/providers/...`) or a full
    /// `/subscriptions/{id}/...` path.
    pub path: String,
    pub api_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Follow a long-running operation to its end and answer the final resource (default).
    #[serde(default = "yes")]
    pub wait: bool,
    /// Progress wording while waiting, e.g. `Scaling node pool gpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmResponse {
    pub status: u16,
    /// The resource (after a followed operation: as read back at its end); `null` if none.
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A followed operation that succeeded but whose final resource could not be read back:
    /// why (`body` is then `null`). The change is done; a reply reports it with this as a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_back_error: Option<HostError>,
    /// Azure's `x-ms-ratelimit-remaining-subscription-writes` on the request's answer: writes
    /// this subscription may still send before Azure throttles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_writes: Option<u32>,
    /// `x-ms-ratelimit-remaining-subscription-reads` on the last read of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_reads: Option<u32>,
}

/// A Kubernetes request on a cluster named in the host's config (`[[kubernetes.clusters]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeRequest {
    pub cluster: String,
    /// `get`, `list`, `create`, `replace`, `patch` (merge), `apply` (server-side), `delete`, `logs`.
    pub verb: String,
    /// `v1`, `apps/v1`, `networking.k8s.io/v1`, ...
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// Object (create, replace, apply) or merge patch (patch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `scale` or `status`, for get/replace/patch of a subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// Server-side apply: take over fields owned by other managers.
    #[serde(default)]
    pub force: bool,
    /// Logs: container name and number of last lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_lines: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeResponse {
    /// The object; for `list` `{"items": [...]}`; for `logs` a string; for `delete` the status.
    pub body: Value,
}

/// A registry query. `registry` is a login server (`intens.azurecr.io`) or a registry name the
/// host's config knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryRequest {
    pub registry: String,
    /// `catalog`, `tags`, `tag_details` (tags newest first with digest and creation time),
    /// `manifest`, or `delete_tag` (needs `registry_deletes`).
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Tag or digest, for `manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum RegistryResponse {
    Catalog {
        repositories: Vec<String>,
    },
    Tags {
        repository: String,
        tags: Vec<String>,
    },
    /// The manifest exists; `digest` is its `Docker-Content-Digest`.
    Manifest {
        repository: String,
        reference: String,
        digest: String,
        media_type: String,
    },
    /// Every tag, newest first (tags whose time is unknown last, by name).
    TagDetails {
        repository: String,
        tags: Vec<TagDetail>,
    },
    /// The tag is gone. A registry without an untag operation deletes the manifest, which
    /// takes `also_removed` (the other tags of the same digest) with it.
    TagDeleted {
        repository: String,
        tag: String,
        digest: String,
        #[serde(default)]
        also_removed: Vec<String>,
    },
}

/// One tag of a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagDetail {
    pub name: String,
    /// Manifest digest (`sha256:...`).
    pub digest: String,
    /// When the image was made (RFC 3339): ACR's tag time, else the image config's `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// A notification pushed by a plugin (job finished, deploy done, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub text: String,
    /// `info`, `warning` or `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Routing labels (cluster, namespace, team, ...).
    #[serde(default)]
    pub labels: Map<String, Value>,
    /// Preferred channel; the router may override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

fn default_severity() -> String {
    "info".to_owned()
}

/// An outbound HTTP request. The host attaches `auth_profile`'s credentials; a plugin never
/// sees them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// UTF-8 body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 with replacement characters for invalid bytes.
    pub body: String,
}

/// The answer of [`Service::HttpPresign`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresignedUrl {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramOutput {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A host service's answer: `{"ok": value}` or `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostResponse {
    Ok(Value),
    Error(HostError),
}

/// Why a host service refused or failed. Codes: `capability_denied`, `cancelled`, `timeout`,
/// `bad_request`, `unavailable`, `upstream`; for ARM: `azure` (Azure refused the request),
/// `operation_failed` (Azure accepted it, then its long-running operation failed or was
/// cancelled; `upstream_code` is the operation's error code) and `outcome_unknown` (accepted,
/// but the operation's status could not be read: it may still finish).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostError {
    pub code: String,
    pub message: String,
    /// For cloud calls: the service's own error code (Azure's `OperationNotAllowed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_code: Option<String>,
    /// For cloud calls: the request id to quote to support (`x-ms-request-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// HTTP status of the failed call, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl HostError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> HostError {
        HostError {
            code: code.into(),
            message: message.into(),
            upstream_code: None,
            request_id: None,
            status: None,
        }
    }
}

/// Builders so manifests read as a list of commands rather than struct literals.
impl CommandSpec {
    pub fn new(name: &str, description: &str) -> CommandSpec {
        CommandSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            options: Vec::new(),
            subcommands: Vec::new(),
            permission: None,
            destructive: false,
            preview: false,
            timeout_secs: None,
            private: false,
            idempotent: false,
        }
    }

    /// The reply is for the caller only.
    pub fn private(mut self) -> CommandSpec {
        self.private = true;
        self
    }

    pub fn option(mut self, option: OptionSpec) -> CommandSpec {
        self.options.push(option);
        self
    }

    pub fn subcommand(mut self, sub: CommandSpec) -> CommandSpec {
        self.subcommands.push(sub);
        self
    }

    pub fn permission(mut self, permission: &str) -> CommandSpec {
        self.permission = Some(permission.to_owned());
        self
    }

    /// Safe to run again after an interruption (see [`CommandSpec::idempotent`]).
    pub fn idempotent(mut self) -> CommandSpec {
        self.idempotent = true;
        self
    }

    pub fn destructive(mut self) -> CommandSpec {
        self.destructive = true;
        self
    }

    /// Destructive, and called with [`Call::preview`] for its confirmation text.
    pub fn previewed(mut self) -> CommandSpec {
        self.destructive = true;
        self.preview = true;
        self
    }

    pub fn timeout_secs(mut self, secs: u64) -> CommandSpec {
        self.timeout_secs = Some(secs);
        self
    }
}

impl OptionSpec {
    pub fn new(name: &str, kind: OptionKind, description: &str) -> OptionSpec {
        OptionSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            kind,
            required: false,
            positional: false,
            autocomplete: false,
            choices: Vec::new(),
            default: None,
            sensitive: false,
            rule: None,
            min: None,
            max: None,
        }
    }

    /// An integer option's bounds, inclusive (checked by the host; shown by chat surfaces).
    pub fn range(mut self, min: i64, max: i64) -> OptionSpec {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// An integer option's lower bound, inclusive.
    pub fn min(mut self, min: i64) -> OptionSpec {
        self.min = Some(min);
        self
    }

    /// An integer option's upper bound, inclusive.
    pub fn max(mut self, max: i64) -> OptionSpec {
        self.max = Some(max);
        self
    }

    pub fn choice(name: &str, choices: &[&str], description: &str) -> OptionSpec {
        let mut option = OptionSpec::new(name, OptionKind::Choice, description);
        option.choices = choices.iter().map(|c| (*c).to_owned()).collect();
        option
    }

    pub fn required(mut self) -> OptionSpec {
        self.required = true;
        self
    }

    pub fn positional(mut self) -> OptionSpec {
        self.positional = true;
        self
    }

    pub fn autocomplete(mut self) -> OptionSpec {
        self.autocomplete = true;
        self
    }

    pub fn default_value(mut self, value: Value) -> OptionSpec {
        self.default = Some(value);
        self
    }

    pub fn sensitive(mut self) -> OptionSpec {
        self.sensitive = true;
        self
    }

    /// The value must follow `rule` (checked by the host before the command runs).
    pub fn rule(mut self, rule: NameRule) -> OptionSpec {
        self.rule = Some(rule);
        self
    }
}

/// A host service failure becomes the plugin's error with the same code, so `?` works in
/// command handlers.
impl From<HostError> for PluginError {
    fn from(error: HostError) -> Self {
        let message = error.message.clone();
        PluginError::from_host(error, message)
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_strings_on_the_wire_and_unknown_ones_survive() {
        let error = PluginError::new(ErrorCode::NotFound, "no pool gpu");
        let wire = serde_json::to_value(&error).unwrap();
        assert_eq!(wire["code"], "not_found");
        let back: PluginError = serde_json::from_value(wire).unwrap();
        assert_eq!(back, error);
        // A newer plugin's code is kept as is; v1's `bad_config` is `config`.
        let newer: PluginError =
            serde_json::from_str(r#"{"code":"quota_exceeded","message":"m"}"#).unwrap();
        assert_eq!(newer.code, ErrorCode::Other("quota_exceeded".into()));
        assert_eq!(
            serde_json::to_value(&newer).unwrap()["code"],
            "quota_exceeded"
        );
        let v1: PluginError =
            serde_json::from_str(r#"{"code":"bad_config","message":"m"}"#).unwrap();
        assert_eq!(v1.code, ErrorCode::Config);
        // The host's service codes keep their kind across `From<HostError>`.
        let denied: PluginError = HostError::new("capability_denied", "not declared").into();
        assert_eq!(denied.code, ErrorCode::Denied);
        // How an ARM write ended keeps its kind: failed while running is upstream, an unknown
        // outcome is a timeout (it may still finish).
        for (code, kind) in [
            ("azure", ErrorCode::Upstream),
            ("operation_failed", ErrorCode::Upstream),
            ("outcome_unknown", ErrorCode::Timeout),
        ] {
            let error: PluginError = HostError::new(code, "m").into();
            assert_eq!(error.code, kind, "{code}");
        }
    }

    #[test]
    fn host_request_is_flat_and_tagged() {
        let request = HostRequest {
            invocation: Some("inv-1".into()),
            service: Service::KvGet { key: "k".into() },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"invocation": "inv-1", "service": "kv_get", "key": "k"})
        );
        assert_eq!(
            serde_json::from_value::<HostRequest>(json).unwrap(),
            request
        );
    }

    #[test]
    fn plugin_response_shape() {
        let ok: PluginResponse<Reply> = Ok(Reply::text("hi")).into();
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({"ok": {"text": "hi", "ephemeral": false}})
        );
        let err: PluginResponse<Reply> = Err(PluginError::new(ErrorCode::BadInput, "no")).into();
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"error": {"code": "bad_input", "message": "no"}})
        );
    }
}
