//! The command router: parse → authorize → confirm → run → audit → render, the same for
//! every chat surface. Adapters turn their input into an [`Invocation`] and show the
//! [`Response`]; everything in between happens here once.

pub mod builtins;
pub mod config;
pub mod confirm;
pub mod help;
pub mod parse;
pub mod perm;
pub mod suggest;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use deckhand_plugin_abi::proto::{Call, Caller, CommandSpec, ErrorCode, OptionSpec};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::host::{InvokeError, PluginHost};
use crate::state::Db;
use crate::state::audit::{AuditStart, Outcome};
use config::{ApprovalRule, ConfirmConfig, PermissionRule};
use confirm::{ConfirmBook, ConfirmError, ConfirmFailure, Pending};
use parse::{CommandIndex, Owner, ParseError, Parsed};
use perm::{PermissionPolicy, pattern_matches};

/// One command as a chat surface received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub id: String,
    /// `terminal`, `discord`, `schedule`, ...
    pub surface: String,
    pub channel: String,
    pub caller: Caller,
    pub text: String,
}

impl Invocation {
    pub fn new(surface: &str, channel: &str, caller: Caller, text: &str) -> Invocation {
        Invocation {
            id: uuid::Uuid::new_v4().to_string(),
            surface: surface.to_owned(),
            channel: channel.to_owned(),
            caller,
            text: text.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Ok,
    Error,
    /// Waiting for a confirmation or an approval.
    Pending,
}

/// What the adapter shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub kind: ResponseKind,
    pub text: String,
    pub ephemeral: bool,
    /// Present when the command waits for a confirmation (adapters may show a button).
    pub confirmation: Option<String>,
    /// With `confirmation`: which command waits and who may approve it, so adapters need not
    /// parse the line again or read the approval rules themselves.
    pub waiting: Option<Waiting>,
    /// Buttons the plugin offers under its reply (each runs its command as the presser).
    pub actions: Vec<deckhand_plugin_abi::proto::ReplyAction>,
    /// Files that go with the reply (a chart): attached on Discord; the text says where they are
    /// for the terminal.
    pub files: Vec<Attachment>,
}

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A command waiting for `/confirm` or `/approve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// `/aks scale-down`: the command path as parsed.
    pub command: String,
    /// Set when a second person with one of these roles must approve (`/approve`).
    pub approver_roles: Option<Vec<String>>,
}

impl Response {
    pub fn ok(text: impl Into<String>) -> Response {
        Response {
            kind: ResponseKind::Ok,
            text: text.into(),
            ephemeral: false,
            confirmation: None,
            waiting: None,
            actions: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn error(text: impl Into<String>) -> Response {
        Response {
            kind: ResponseKind::Error,
            text: text.into(),
            ephemeral: false,
            confirmation: None,
            waiting: None,
            actions: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// Settings the router is built with, once, in `main`.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub default_timeout: Duration,
    pub confirm_timeout: Duration,
    /// Surfaces on which `--yes` may skip a confirmation.
    pub yes_allowed_on: HashSet<String>,
    pub approvals: Vec<ApprovalRule>,
    pub permissions: PermissionPolicy,
}

impl RouterOptions {
    /// From the router's own sections; `terminal_allow_yes` is `[terminal] allow_yes` and
    /// `default_timeout` the `[plugins]` limit for commands whose manifest names none.
    pub fn new(
        confirm: &ConfirmConfig,
        permissions: &[PermissionRule],
        terminal_allow_yes: bool,
        default_timeout: Duration,
    ) -> RouterOptions {
        let mut yes_allowed_on: HashSet<String> = confirm.allow_yes_on.iter().cloned().collect();
        if terminal_allow_yes {
            yes_allowed_on.insert("terminal".to_owned());
        }
        RouterOptions {
            default_timeout,
            confirm_timeout: confirm.timeout,
            yes_allowed_on,
            approvals: confirm.approval.clone(),
            permissions: PermissionPolicy::new(permissions.to_vec()),
        }
    }
}

/// Every way a command can fail before or while running, rendered by one function.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error(
        "{user} may not run /{command}: it needs permission `{permission}`, which no rule in [[permissions]] grants to user {user_id} or roles [{roles}]"
    )]
    Denied {
        user: String,
        user_id: String,
        roles: String,
        command: String,
        permission: String,
    },
    #[error("{0}")]
    Confirm(#[from] ConfirmError),
    #[error("/{command} failed: {source}")]
    Invoke {
        command: String,
        #[source]
        source: InvokeError,
    },
    #[error("/{command}: plugin {plugin} is no longer loaded")]
    PluginGone { command: String, plugin: String },
    #[error("{0}")]
    Builtin(String),
    /// The audit row could not be written, so the command was not run.
    #[error(
        "/{command} was not run: Deckhand cannot write its audit log ({error}); nothing runs unaudited, so check the state database and its disk"
    )]
    AuditUnavailable { command: String, error: String },
}

impl RouterError {
    fn outcome(&self) -> Outcome {
        match self {
            RouterError::Parse(_) => Outcome::Rejected,
            RouterError::Denied { .. } => Outcome::Denied,
            RouterError::Confirm(ConfirmError::Expired { .. }) => Outcome::Expired,
            RouterError::Confirm(_) => Outcome::Rejected,
            RouterError::Invoke {
                source: InvokeError::Panic { .. },
                ..
            } => Outcome::Panic,
            RouterError::Invoke {
                source: InvokeError::Timeout { .. },
                ..
            } => Outcome::Timeout,
            RouterError::Invoke {
                source: InvokeError::Plugin(e),
                ..
            } if e.code == ErrorCode::Cancelled => Outcome::Cancelled,
            _ => Outcome::Error,
        }
    }
}

/// The command index with what it was built from: the registry snapshot and the number of
/// built-in groups.
type IndexCache = Option<(Arc<crate::host::Registry>, usize, Arc<CommandIndex>)>;

pub struct Router {
    host: Arc<PluginHost>,
    index_cache: std::sync::Mutex<IndexCache>,
    groups: std::sync::RwLock<Vec<Arc<dyn builtins::BuiltinGroup>>>,
    db: Db,
    options: RouterOptions,
    confirms: ConfirmBook,
    /// Ends of commands whose audit row could not be written (the state database was
    /// unreachable when they finished); written on a later command once it is back.
    unwritten: std::sync::Mutex<std::collections::VecDeque<UnwrittenEnd>>,
}

/// A command's end, waiting to be written to its audit row.
struct UnwrittenEnd {
    invocation: String,
    outcome: Outcome,
    error: Option<String>,
}

/// At most this many unwritten ends are kept (a long outage); older ones are dropped, logged.
const MAX_UNWRITTEN: usize = 10_000;

/// The permission a command needs: its manifest's, or its path joined by dots under the
/// plugin's name (`/aks scale` in plugin `aks` → `aks.scale`; `/deploy` → `aks.deploy`).
pub fn permission_for(owner: &Owner, path: &[String], spec: &CommandSpec) -> String {
    if let Some(permission) = &spec.permission {
        return permission.clone();
    }
    let joined = path.join(".");
    match owner {
        Owner::Plugin(plugin) if path.first() == Some(plugin) => joined,
        Owner::Plugin(plugin) => format!("{plugin}.{joined}"),
        Owner::Builtin => format!("deckhand.{joined}"),
    }
}

/// The audit row of `invocation` running `command`.
fn audit_row<'a>(
    invocation: &'a Invocation,
    command: &'a str,
    options: &'a Value,
    plugin: Option<&'a str>,
) -> AuditStart<'a> {
    AuditStart {
        invocation_id: &invocation.id,
        surface: &invocation.surface,
        channel: &invocation.channel,
        user_id: &invocation.caller.user_id,
        display_name: &invocation.caller.display_name,
        command,
        options,
        plugin,
    }
}

/// Options as written to the audit log: sensitive values replaced.
fn redacted(spec: &CommandSpec, options: &Map<String, Value>) -> Value {
    let sensitive = |name: &str| {
        spec.options
            .iter()
            .any(|o: &OptionSpec| o.name == name && o.sensitive)
    };
    Value::Object(
        options
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        _ if sensitive(k) => Value::String("***".into()),
                        // A secret typed into an ordinary option is masked like any other.
                        Value::String(text) => {
                            Value::String(crate::redact::redact(text).into_owned())
                        }
                        other => other.clone(),
                    },
                )
            })
            .collect(),
    )
}

impl Router {
    pub fn new(host: Arc<PluginHost>, db: Db, options: RouterOptions) -> Router {
        let confirms = ConfirmBook::new(db.clone(), options.confirm_timeout);
        Router {
            host,
            index_cache: Default::default(),
            groups: Default::default(),
            db,
            options,
            confirms,
            unwritten: Default::default(),
        }
    }

    /// Adds built-in commands served by another part of the bot.
    pub fn add_builtins(&self, group: Arc<dyn builtins::BuiltinGroup>) {
        for spec in group.specs() {
            if !builtins::RESERVED_COMMANDS.contains(&spec.name.as_str()) {
                // A plugin could have claimed this name at load: list it in RESERVED_COMMANDS.
                tracing::error!(command = %spec.name, "built-in group adds a name that is not reserved");
            }
        }
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(group);
    }

    /// Drops every group added with [`Router::add_builtins`]. Groups such as the scheduler's
    /// hold the router themselves; clearing them breaks that cycle so the router, the plugin
    /// host and its folder of plugin copies are freed.
    pub fn clear_builtins(&self) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(crate) fn builtin_group(&self, command: &str) -> Option<Arc<dyn builtins::BuiltinGroup>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|g| g.specs().iter().any(|s| s.name == command))
            .cloned()
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Built-ins and every loaded plugin's commands.
    pub fn index(&self) -> Arc<CommandIndex> {
        let registry = self.host.registry();
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        let mut cache = self.index_cache.lock().unwrap_or_else(|p| p.into_inner());
        // Rebuilt only when plugins were (re)loaded or a built-in group was added.
        if let Some((cached_registry, cached_groups, index)) = cache.as_ref()
            && Arc::ptr_eq(cached_registry, &registry)
            && *cached_groups == groups.len()
        {
            return index.clone();
        }
        let mut index = CommandIndex::default();
        for spec in builtins::specs() {
            index.insert(Owner::Builtin, spec);
        }
        for group in groups.iter() {
            for spec in group.specs() {
                index.insert(Owner::Builtin, spec);
            }
        }
        for plugin in registry.plugins.values() {
            for spec in &plugin.manifest.commands {
                index.insert(Owner::Plugin(plugin.manifest.name.clone()), spec.clone());
            }
        }
        let index = Arc::new(index);
        *cache = Some((registry, groups.len(), index.clone()));
        index
    }

    /// Whether `text` names a command its owner declared idempotent (safe to run again after
    /// an interruption). `false` for anything that does not parse.
    pub fn is_idempotent(&self, text: &str) -> bool {
        self.index()
            .parse(&builtins::normalize(text))
            .is_ok_and(|parsed| parsed.spec.idempotent)
    }

    /// Handles one command end to end; progress lines from the plugin go to `progress`. The reply is redacted on its way out: no configured secret and no
    /// credential an upstream echoed reaches a chat.
    pub async fn handle(
        &self,
        invocation: Invocation,
        progress: mpsc::UnboundedSender<String>,
    ) -> Response {
        // One span per command: every event from parsing through the plugin thread and its
        // service calls carries the invocation id.
        let span = tracing::info_span!(
            "command",
            invocation = %invocation.id,
            surface = %invocation.surface,
            channel = %invocation.channel,
            user = %invocation.caller.user_id,
            command = tracing::field::Empty,
            plugin = tracing::field::Empty,
            cluster = tracing::field::Empty,
        );
        let mut response = self
            .handle_unredacted(invocation, progress)
            .instrument(span.clone())
            .await;
        span.in_scope(|| tracing::debug!(kind = ?response.kind, "answered"));
        if let std::borrow::Cow::Owned(text) = crate::redact::redact(&response.text) {
            response.text = text;
        }
        response
    }

    async fn handle_unredacted(
        &self,
        invocation: Invocation,
        progress: mpsc::UnboundedSender<String>,
    ) -> Response {
        self.write_unwritten_ends();
        self.expire_confirmations();
        let parsed = match self.index().parse(&builtins::normalize(&invocation.text)) {
            Ok(parsed) => parsed,
            Err(e) => {
                let first = invocation
                    .text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('/');
                return self.reject(
                    &invocation,
                    first,
                    &Value::Object(Map::new()),
                    None,
                    e.into(),
                );
            }
        };
        let command = parsed.path.join(" ");
        let plugin = match &parsed.owner {
            Owner::Plugin(name) => Some(name.as_str()),
            Owner::Builtin => None,
        };
        let span = tracing::Span::current();
        span.record("command", command.as_str());
        span.record("plugin", plugin.unwrap_or("deckhand"));
        if let Some(cluster) = parsed.options.get("cluster").and_then(Value::as_str) {
            span.record("cluster", cluster);
        }
        tracing::debug!("parsed");
        let options = redacted(&parsed.spec, &parsed.options);
        if parsed.help {
            let text = help::command_help(&parsed.path, &parsed.spec);
            self.audit_done(&invocation, &command, &options, plugin, Outcome::Ok, None);
            return Response::ok(text);
        }
        let permission = permission_for(&parsed.owner, &parsed.path, &parsed.spec);
        if !self
            .options
            .permissions
            .allows(&invocation.caller, &permission)
        {
            let caller = &invocation.caller;
            let error = RouterError::Denied {
                user: caller.display_name.clone(),
                user_id: caller.user_id.clone(),
                roles: caller.roles.join(", "),
                command: command.clone(),
                permission,
            };
            return self.reject(&invocation, &command, &options, plugin, error);
        }
        if parsed.owner == Owner::Builtin {
            if builtins::is_read_only(&parsed.path) {
                // Changes nothing: run first, then one row in one transaction, before the
                // reply is shown (answered even when the row is lost, like a refusal).
                let result = builtins::run(self, &invocation, &parsed, progress).await;
                let (outcome, error) = match &result {
                    Ok(_) => (Outcome::Ok, None),
                    Err(e) => (e.outcome(), Some(e.to_string())),
                };
                self.audit_done(
                    &invocation,
                    &command,
                    &options,
                    plugin,
                    outcome,
                    error.as_deref(),
                );
                return result.unwrap_or_else(|e| Response::error(e.to_string()));
            }
            if let Err(e) =
                self.audit_start(&invocation, &command, &options, plugin, Outcome::Running)
            {
                return Response::error(e.to_string());
            }
            let result = builtins::run(self, &invocation, &parsed, progress).await;
            return match result {
                Ok(response) => {
                    self.finish(&invocation.id, Outcome::Ok, None);
                    response
                }
                Err(e) => {
                    let text = e.to_string();
                    self.finish(&invocation.id, e.outcome(), Some(&text));
                    Response::error(text)
                }
            };
        }
        if parsed.spec.destructive {
            let approver_roles = self.approver_roles(&permission);
            let yes_ok = parsed.yes && self.options.yes_allowed_on.contains(&invocation.surface);
            if approver_roles.is_some() || !yes_ok {
                // A previewed command says what it will do (or refuses) before anyone confirms.
                let preview = if parsed.spec.preview {
                    match self.call_plugin(&invocation, &parsed, true, progress).await {
                        Ok(reply) => Some(reply.text),
                        Err(e) => return self.reject(&invocation, &command, &options, plugin, e),
                    }
                } else {
                    None
                };
                return self.ask_confirmation(
                    invocation,
                    parsed,
                    permission,
                    approver_roles,
                    &options,
                    preview,
                );
            }
        }
        if let Err(e) = self.audit_start(&invocation, &command, &options, plugin, Outcome::Running)
        {
            return Response::error(e.to_string());
        }
        self.execute(&invocation, &parsed, progress).await
    }

    fn approver_roles(&self, permission: &str) -> Option<Vec<String>> {
        self.options
            .approvals
            .iter()
            .find(|rule| rule.commands.iter().any(|p| pattern_matches(p, permission)))
            .map(|rule| rule.approver_roles.clone())
    }

    fn ask_confirmation(
        &self,
        invocation: Invocation,
        parsed: Parsed,
        permission: String,
        approver_roles: Option<Vec<String>>,
        options: &Value,
        preview: Option<String>,
    ) -> Response {
        let command = parsed.path.join(" ");
        let plugin = match &parsed.owner {
            Owner::Plugin(name) => Some(name.clone()),
            Owner::Builtin => None,
        };
        if let Err(e) = self.audit_start(
            &invocation,
            &command,
            options,
            plugin.as_deref(),
            Outcome::AwaitingConfirmation,
        ) {
            return Response::error(e.to_string());
        }
        let secs = self.confirms.timeout().as_secs();
        let pending = match self
            .confirms
            .open(invocation.clone(), permission, approver_roles)
        {
            Ok(pending) => pending,
            Err(e) => {
                let text = format!("/{command} was not filed for confirmation: {e}");
                self.finish(&invocation.id, Outcome::Error, Some(&text));
                return Response::error(text);
            }
        };
        let ask = match &pending.approver_roles {
            Some(roles) => format!(
                "/{command} is destructive and needs a second person: someone with role {} approves with /approve {} within {secs} s.",
                roles.join(" or "),
                pending.code
            ),
            None => format!(
                "/{command} is destructive. Confirm with /confirm {} within {secs} s.",
                pending.code
            ),
        };
        let text = match preview.filter(|p| !p.trim().is_empty()) {
            Some(preview) => format!("{preview}\n{ask}"),
            None => ask,
        };
        Response {
            kind: ResponseKind::Pending,
            text,
            ephemeral: false,
            confirmation: Some(pending.code),
            waiting: Some(Waiting {
                command: format!("/{command}"),
                approver_roles: pending.approver_roles,
            }),
            actions: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Runs a confirmed or approved command under its original invocation, parsed again from
    /// its line (it may have been filed on another replica).
    pub(crate) async fn run_pending(
        &self,
        pending: Pending,
        progress: mpsc::UnboundedSender<String>,
    ) -> Response {
        let invocation = &pending.invocation;
        let parsed = match self.index().parse(&builtins::normalize(&invocation.text)) {
            Ok(parsed) => parsed,
            Err(e) => {
                let text = format!("{} cannot run now: {e}", invocation.text);
                self.finish(&invocation.id, Outcome::Rejected, Some(&text));
                return Response::error(text);
            }
        };
        if let Err(e) = self.db.audit_finish(&invocation.id, Outcome::Running, None) {
            tracing::error!(error = %e, invocation = %invocation.id, "cannot write the audit log");
            let error = RouterError::AuditUnavailable {
                command: parsed.path.join(" "),
                error: e.to_string(),
            };
            return Response::error(error.to_string());
        }
        self.execute(invocation, &parsed, progress).await
    }

    /// Closes audit rows of confirmations that expired unanswered.
    fn expire_confirmations(&self) {
        match self.confirms.sweep_expired_if_due() {
            Ok(ids) => {
                for id in ids {
                    let _ =
                        self.db
                            .audit_finish(&id, Outcome::Expired, Some("confirmation expired"));
                }
            }
            Err(e) => tracing::debug!(error = %e, "expired confirmations not swept"),
        }
    }

    pub(crate) fn confirmation_failed(&self, failure: ConfirmFailure) -> RouterError {
        let (error, expired) = failure;
        if let Some(id) = expired {
            let _ = self
                .db
                .audit_finish(&id, Outcome::Expired, Some("confirmation expired"));
        }
        RouterError::Confirm(error)
    }

    /// Crosses into the plugin and closes the audit row (opened by the caller).
    async fn execute(
        &self,
        invocation: &Invocation,
        parsed: &Parsed,
        progress: mpsc::UnboundedSender<String>,
    ) -> Response {
        let started = std::time::Instant::now();
        let result = self.call_plugin(invocation, parsed, false, progress).await;
        if let Owner::Plugin(plugin_name) = &parsed.owner {
            let outcome = result
                .as_ref()
                .map_or_else(RouterError::outcome, |_| Outcome::Ok);
            let command = parsed.path.join(" ");
            crate::metrics::command(plugin_name, &command, outcome.as_str(), started.elapsed());
        }
        match result {
            Ok(reply) => {
                self.finish(&invocation.id, Outcome::Ok, None);
                Response {
                    kind: ResponseKind::Ok,
                    text: reply.text,
                    ephemeral: reply.ephemeral,
                    confirmation: None,
                    waiting: None,
                    actions: reply.actions,
                    files: Vec::new(),
                }
            }
            Err(e) => {
                let text = e.to_string();
                self.finish(&invocation.id, e.outcome(), Some(&text));
                Response::error(text)
            }
        }
    }

    /// Calls the owning plugin with the parsed command (`preview`: only to describe it).
    async fn call_plugin(
        &self,
        invocation: &Invocation,
        parsed: &Parsed,
        preview: bool,
        progress: mpsc::UnboundedSender<String>,
    ) -> Result<deckhand_plugin_abi::proto::Reply, RouterError> {
        let command = parsed.path.join(" ");
        let Owner::Plugin(plugin_name) = &parsed.owner else {
            unreachable!("built-ins do not reach execute")
        };
        match self.host.registry().plugins.get(plugin_name).cloned() {
            None => Err(RouterError::PluginGone {
                command: command.clone(),
                plugin: plugin_name.clone(),
            }),
            Some(plugin) => {
                let timeout = parsed
                    .spec
                    .timeout_secs
                    .map(Duration::from_secs)
                    .unwrap_or(self.options.default_timeout);
                let call = Call {
                    invocation_id: invocation.id.clone(),
                    command: parsed.path.clone(),
                    caller: invocation.caller.clone(),
                    channel: invocation.channel.clone(),
                    options: parsed.options.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                    preview,
                };
                self.host
                    .invoke(plugin, &call, progress)
                    .await
                    .map_err(|source| RouterError::Invoke {
                        command: command.clone(),
                        source,
                    })
            }
        }
    }

    fn reject(
        &self,
        invocation: &Invocation,
        command: &str,
        options: &Value,
        plugin: Option<&str>,
        error: RouterError,
    ) -> Response {
        let text = error.to_string();
        self.audit_done(
            invocation,
            command,
            options,
            plugin,
            error.outcome(),
            Some(&text),
        );
        Response::error(text)
    }

    fn audit_start(
        &self,
        invocation: &Invocation,
        command: &str,
        options: &Value,
        plugin: Option<&str>,
        outcome: Outcome,
    ) -> Result<(), RouterError> {
        let start = audit_row(invocation, command, options, plugin);
        self.db.audit_start(&start, outcome).map_err(|e| {
            tracing::error!(error = %e, invocation = %invocation.id, "cannot write the audit log");
            RouterError::AuditUnavailable {
                command: command.to_owned(),
                error: e.to_string(),
            }
        })
    }

    /// A command that already ended, as one closed row in one transaction.
    fn audit_done(
        &self,
        invocation: &Invocation,
        command: &str,
        options: &Value,
        plugin: Option<&str>,
        outcome: Outcome,
        error: Option<&str>,
    ) {
        // A refusal or help text changes nothing: it is answered even when the row is lost.
        let start = audit_row(invocation, command, options, plugin);
        let error = error.map(crate::redact::redact);
        if let Err(e) = self.db.audit_record(&start, outcome, error.as_deref()) {
            tracing::error!(error = %e, invocation = %invocation.id, "cannot write the audit log");
        }
    }

    fn finish(&self, invocation: &str, outcome: Outcome, error: Option<&str>) {
        let error = error.map(|e| crate::redact::redact(e).into_owned());
        if let Err(e) = self.db.audit_finish(invocation, outcome, error.as_deref()) {
            tracing::error!(error = %e, invocation, "cannot write the audit log; kept to write later");
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
            if unwritten.len() >= MAX_UNWRITTEN
                && let Some(lost) = unwritten.pop_front()
            {
                tracing::error!(invocation = %lost.invocation, outcome = lost.outcome.as_str(),
                    "too many unwritten audit ends; this one is lost");
            }
            unwritten.push_back(UnwrittenEnd {
                invocation: invocation.to_owned(),
                outcome,
                error,
            });
        }
    }

    /// Writes the ends kept while the state database was unreachable, oldest first; stops at
    /// the first that still fails.
    fn write_unwritten_ends(&self) {
        let mut unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(end) = unwritten.front() {
            if let Err(e) = self
                .db
                .audit_finish(&end.invocation, end.outcome, end.error.as_deref())
            {
                tracing::debug!(error = %e, waiting = unwritten.len(), "audit ends still unwritten");
                return;
            }
            unwritten.pop_front();
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    pub(crate) fn confirms(&self) -> &ConfirmBook {
        &self.confirms
    }
}
