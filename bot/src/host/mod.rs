//! The plugin host: finds plugin libraries, loads them behind the C ABI, keeps the command
//! table, and runs calls with time limits so that a plugin that panics, hangs or is built for
//! another ABI is contained and reported while the bot keeps answering.

pub mod config;
pub mod load;
pub mod manifest;
pub mod rbac;
pub mod runtime_dir;
pub mod services;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deckhand_plugin_abi::proto::{AutocompleteQuery, Call, Choice, ErrorCode, PluginError, Reply};
use tokio::sync::mpsc;

use load::OpenedPlugin;
pub use load::{LoadError, LoadedPlugin};
use services::Services;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read plugin directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create a runtime directory for plugin copies: {0}")]
    RuntimeDir(#[source] std::io::Error),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{path}: plugin {plugin} claims command /{command}, which {owner}")]
    DuplicateCommand {
        path: PathBuf,
        plugin: String,
        command: String,
        owner: String,
    },
    #[error("{path}: a plugin named {plugin} is already loaded from {other}")]
    DuplicatePlugin {
        path: PathBuf,
        plugin: String,
        other: PathBuf,
    },
    #[error("{path}: plugin is named {found}, but it replaces plugin {expected}")]
    Renamed {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("no plugin named {name} is loaded (loaded: {loaded})")]
    UnknownPlugin { name: String, loaded: String },
    #[error("plugin {plugin}: its configuration section is invalid: {message}")]
    PluginConfig { plugin: String, message: String },
    #[error("plugin {plugin} is disabled by [plugins] enabled in the config")]
    Disabled { plugin: String },
}

/// Why a call did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("{0}")]
    Plugin(PluginError),
    #[error("plugin {plugin} crashed while running the command: {message}")]
    Panic { plugin: String, message: String },
    #[error("plugin {plugin} timed out after {secs} s; the call was cancelled")]
    Timeout { plugin: String, secs: u64 },
    #[error("plugin {plugin} stopped without answering")]
    Lost { plugin: String },
}

/// Loaded plugins and which one owns each top-level command; replaced whole on reload so a
/// reader always sees a consistent table.
#[derive(Default, Clone)]
pub struct Registry {
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    pub commands: BTreeMap<String, String>,
}

impl Registry {
    fn owner_of(&self, command: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(self.commands.get(command)?)
    }

    /// Checks that `opened` can join the table, ignoring the plugin it replaces (if any).
    fn check_claims(
        &self,
        opened: &OpenedPlugin,
        replacing: Option<&str>,
        reserved: &[String],
    ) -> Result<(), HostError> {
        let name = &opened.manifest.name;
        if replacing.is_none()
            && let Some(other) = self.plugins.get(name)
        {
            return Err(HostError::DuplicatePlugin {
                path: opened.source.clone(),
                plugin: name.clone(),
                other: other.source.clone(),
            });
        }
        for command in &opened.manifest.commands {
            let owner = if reserved.contains(&command.name) {
                Some("is a built-in command".to_owned())
            } else {
                self.commands
                    .get(&command.name)
                    .filter(|owner| Some(owner.as_str()) != replacing)
                    .map(|owner| format!("plugin {owner} already provides"))
            };
            if let Some(owner) = owner {
                return Err(HostError::DuplicateCommand {
                    path: opened.source.clone(),
                    plugin: name.clone(),
                    command: command.name.clone(),
                    owner,
                });
            }
        }
        Ok(())
    }

    fn insert(&mut self, plugin: Arc<LoadedPlugin>) {
        let name = plugin.manifest.name.clone();
        self.commands.retain(|_, owner| *owner != name);
        for command in &plugin.manifest.commands {
            self.commands.insert(command.name.clone(), name.clone());
        }
        self.plugins.insert(name, plugin);
    }
}

pub struct PluginHost {
    services: Arc<Services>,
    /// Where plugins load from and each one's config section.
    plugins: config::PluginSections,
    /// Top-level names the router keeps for itself; a plugin claiming one is refused.
    reserved: Vec<String>,
    registry: RwLock<Arc<Registry>>,
    runtime_dir: tempfile::TempDir,
    copies: AtomicU64,
    /// Problems from the last directory scan, kept for `/plugins list` and `deckhand check`.
    load_errors: RwLock<Vec<String>>,
}

/// Plugin library files in `dir` whose names carry `prefix`, sorted for a stable load order.
pub fn plugin_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, HostError> {
    let wanted = format!("{}{prefix}", std::env::consts::DLL_PREFIX);
    let entries = std::fs::read_dir(dir).map_err(|source| HostError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&wanted) && name.ends_with(std::env::consts::DLL_SUFFIX)
        })
        .collect();
    files.sort();
    Ok(files)
}

impl PluginHost {
    /// A host with no plugins yet.
    pub fn new(
        services: Arc<Services>,
        plugins: config::PluginSections,
        reserved: &[&str],
    ) -> Result<PluginHost, HostError> {
        Ok(PluginHost {
            services,
            plugins,
            reserved: reserved.iter().map(|s| (*s).to_owned()).collect(),
            registry: RwLock::default(),
            runtime_dir: runtime_dir::create(&std::env::temp_dir())
                .map_err(HostError::RuntimeDir)?,
            copies: AtomicU64::new(0),
            load_errors: RwLock::default(),
        })
    }

    /// Loads every plugin in the configured directory. A plugin that fails is reported and
    /// skipped; the others load. Returns the failures.
    pub fn load_configured(&self) -> Result<Vec<HostError>, HostError> {
        let dir = self.plugins.dir();
        let files = plugin_files(&dir, &self.plugins.plugins.prefix)?;
        let mut errors = Vec::new();
        for file in files {
            if let Err(e) = self.load(&file) {
                tracing::error!(error = %e, "plugin not loaded");
                errors.push(e);
            }
        }
        *self.load_errors.write().unwrap_or_else(|p| p.into_inner()) =
            errors.iter().map(ToString::to_string).collect();
        Ok(errors)
    }

    /// Loads one library and registers its commands.
    pub fn load(&self, path: &Path) -> Result<Arc<LoadedPlugin>, HostError> {
        let opened = self.open(path)?;
        let name = opened.manifest.name.clone();
        if let Some(enabled) = &self.plugins.plugins.enabled
            && !enabled.contains(&name)
        {
            return Err(HostError::Disabled { plugin: name });
        }
        self.registry()
            .check_claims(&opened, None, &self.reserved)?;
        let loaded = Arc::new(self.init(opened, 1)?);
        let mut guard = self.registry.write().unwrap_or_else(|p| p.into_inner());
        // Re-check under the write lock: another load may have raced us.
        let mut next = (**guard).clone();
        if next.plugins.contains_key(&name)
            || loaded
                .manifest
                .commands
                .iter()
                .any(|c| next.commands.contains_key(&c.name))
        {
            return Err(HostError::DuplicatePlugin {
                path: path.to_owned(),
                plugin: name,
                other: PathBuf::from("(loaded concurrently)"),
            });
        }
        next.insert(loaded.clone());
        *guard = Arc::new(next);
        tracing::info!(plugin = %loaded.manifest.name, version = %loaded.manifest.version, path = %path.display(), "plugin loaded");
        Ok(loaded)
    }

    /// Swaps in a fresh copy of a plugin's library from its file. Calls in flight keep the old
    /// copy until they finish; new calls get the new one.
    pub fn reload(&self, name: &str) -> Result<Arc<LoadedPlugin>, HostError> {
        let current = self
            .registry()
            .plugins
            .get(name)
            .cloned()
            .ok_or_else(|| self.unknown_plugin(name))?;
        let opened = self.open(&current.source)?;
        if opened.manifest.name != name {
            return Err(HostError::Renamed {
                path: current.source.clone(),
                expected: name.to_owned(),
                found: opened.manifest.name.clone(),
            });
        }
        self.registry()
            .check_claims(&opened, Some(name), &self.reserved)?;
        let loaded = Arc::new(self.init(opened, current.generation + 1)?);
        let mut guard = self.registry.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        next.insert(loaded.clone());
        *guard = Arc::new(next);
        tracing::info!(
            plugin = name,
            generation = loaded.generation,
            "plugin reloaded"
        );
        Ok(loaded)
    }

    fn open(&self, path: &Path) -> Result<OpenedPlugin, HostError> {
        let copy_id = self.copies.fetch_add(1, Ordering::Relaxed);
        Ok(OpenedPlugin::open(path, self.runtime_dir.path(), copy_id)?)
    }

    fn init(&self, opened: OpenedPlugin, generation: u64) -> Result<LoadedPlugin, HostError> {
        let section =
            self.plugins
                .section(&opened.manifest.name)
                .map_err(|e| HostError::PluginConfig {
                    plugin: opened.manifest.name.clone(),
                    message: e.to_string(),
                })?;
        Ok(opened.init(&section, self.services.clone(), generation)?)
    }

    fn unknown_plugin(&self, name: &str) -> HostError {
        let loaded: Vec<String> = self.registry().plugins.keys().cloned().collect();
        HostError::UnknownPlugin {
            name: name.to_owned(),
            loaded: if loaded.is_empty() {
                "none".into()
            } else {
                loaded.join(", ")
            },
        }
    }

    /// The current table; cheap (an `Arc` clone).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn owner_of(&self, command: &str) -> Option<Arc<LoadedPlugin>> {
        self.registry().owner_of(command).cloned()
    }

    pub fn load_errors(&self) -> Vec<String> {
        self.load_errors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The folder holding this host's private plugin copies; removed when the host is dropped.
    pub fn runtime_dir(&self) -> &Path {
        self.runtime_dir.path()
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Runs a call on a thread of its own and waits at most `call.timeout_ms`. On timeout the
    /// call is marked cancelled (the plugin sees it through `is_cancelled` and its service
    /// requests fail); a plugin that ignores that keeps only its own thread busy.
    pub async fn invoke(
        &self,
        plugin: Arc<LoadedPlugin>,
        call: &Call,
        progress: mpsc::UnboundedSender<String>,
    ) -> Result<Reply, InvokeError> {
        let name = plugin.manifest.name.clone();
        let timeout = Duration::from_millis(call.timeout_ms);
        self.services.begin_call(call, &name, progress);
        let bytes = serde_json::to_vec(call).expect("calls serialize");
        tracing::debug!(plugin = %name, timeout_ms = call.timeout_ms, "calling the plugin");
        let result =
            tokio::time::timeout(timeout, on_plugin_thread(move || plugin.invoke(&bytes))).await;
        self.services.end_call(&call.invocation_id);
        match result {
            Err(_) => Err(InvokeError::Timeout {
                plugin: name,
                secs: timeout.as_secs_f64().ceil() as u64,
            }),
            Ok(None) => Err(InvokeError::Lost { plugin: name }),
            Ok(Some(Ok(reply))) => Ok(reply),
            Ok(Some(Err(e))) if e.code == ErrorCode::Panic => Err(InvokeError::Panic {
                plugin: name,
                message: e.message,
            }),
            Ok(Some(Err(e))) => Err(InvokeError::Plugin(e)),
        }
    }

    /// Asks the owning plugin for suggestions, bounded by `timeout`; at most 25 are kept, as
    /// Discord allows.
    pub async fn autocomplete(
        &self,
        plugin: Arc<LoadedPlugin>,
        query: &AutocompleteQuery,
        timeout: Duration,
    ) -> Result<Vec<Choice>, InvokeError> {
        let name = plugin.manifest.name.clone();
        let bytes = serde_json::to_vec(query).expect("queries serialize");
        let work = on_plugin_thread(move || plugin.autocomplete(&bytes));
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Err(InvokeError::Timeout {
                plugin: name,
                secs: timeout.as_secs(),
            }),
            Ok(None) => Err(InvokeError::Lost { plugin: name }),
            Ok(Some(Ok(mut choices))) => {
                choices.truncate(25);
                Ok(choices)
            }
            Ok(Some(Err(e))) => Err(InvokeError::Plugin(e)),
        }
    }
}

/// Runs plugin code on a pooled thread of the `blocking` crate's elastic pool: threads are
/// reused (no spawn per call), grow with demand, and are detached, so a hung plugin keeps only
/// its own thread busy and never holds up shutdown (unlike tokio's blocking pool, whose
/// runtime waits for every blocking task when dropped). `None` means the call unwound.
/// The caller's span is entered on the plugin thread, so the plugin's service calls (served on
/// that thread) log under the command that made them.
async fn on_plugin_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let span = tracing::Span::current();
    blocking::unblock(move || {
        let _entered = span.enter();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
    })
    .await
}
