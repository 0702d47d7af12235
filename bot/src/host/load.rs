//! Opening one plugin library: copy, `dlopen`, check the ABI, read the manifest, init.
//!
//! Each load works on a private copy of the file so a rebuilt library can be loaded beside the
//! old one (the dynamic loader would otherwise hand back the copy already mapped). Copies are
//! never unmapped: a hung call may still be executing old code, and unloading Rust libraries
//! is fragile; a reload costs the library's size in memory.

use deckhand_plugin_abi::proto::ErrorCode;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deckhand_plugin_abi::ffi::{Buf, EntryFn, PluginApi};
use deckhand_plugin_abi::proto::{Manifest, PluginError, PluginResponse};
use deckhand_plugin_abi::{ABI_VERSION, ENTRY_SYMBOL};
use libloading::Library;
use serde::de::DeserializeOwned;

use super::manifest::validate_manifest;
use super::services::{HostTable, Services};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot copy the library for loading: {source}")]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a loadable library: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: no `{ENTRY_SYMBOL}` symbol, so not a Deckhand plugin")]
    NoEntry { path: PathBuf },
    #[error(
        "{path}: plugin was built for plugin ABI version {found}, but this host speaks version {expected}; rebuild it against deckhand-plugin-abi with ABI_VERSION {expected}"
    )]
    AbiMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path}: plugin function table is {found} bytes, smaller than the {expected} bytes of ABI version {ABI_VERSION}"
    )]
    TableTooSmall {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path}: invalid manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("plugin {plugin} ({path}) failed to initialize: {error}")]
    Init {
        plugin: String,
        path: PathBuf,
        error: PluginError,
    },
}

/// A plugin library that is loaded and initialized.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    /// The file it was loaded from (not the private copy).
    pub source: PathBuf,
    /// Counts loads of this plugin name: 1 at start, +1 per reload.
    pub generation: u64,
    api: *const PluginApi,
    _host: Box<HostTable>,
    _library: ManuallyDrop<Library>,
}

// SAFETY: the ABI requires plugin functions to be callable from any thread, and the tables
// they point to are immutable statics.
unsafe impl Send for LoadedPlugin {}
unsafe impl Sync for LoadedPlugin {}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.name)
            .field("source", &self.source)
            .field("generation", &self.generation)
            .finish()
    }
}

/// A library opened and checked, with its manifest read, but not yet initialized.
pub struct OpenedPlugin {
    pub manifest: Manifest,
    pub source: PathBuf,
    api: *const PluginApi,
    library: Library,
}

impl OpenedPlugin {
    /// Copies `source` into `runtime_dir` under a fresh name, opens it and checks it.
    pub fn open(
        source: &Path,
        runtime_dir: &Path,
        copy_id: u64,
    ) -> Result<OpenedPlugin, LoadError> {
        let file_name = source.file_name().unwrap_or_default().to_string_lossy();
        let copy = runtime_dir.join(format!("{copy_id}-{file_name}"));
        std::fs::copy(source, &copy).map_err(|e| LoadError::Copy {
            path: source.to_owned(),
            source: e,
        })?;
        // SAFETY: loading runs the library's initializers; plugin files come from the
        // configured directory, which is as trusted as the bot's own binary.
        let library = unsafe { Library::new(&copy) }.map_err(|e| LoadError::Open {
            path: source.to_owned(),
            message: e.to_string(),
        })?;
        // SAFETY: the symbol's type is fixed by the ABI.
        let entry: EntryFn = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }
            .map(|symbol| *symbol)
            .map_err(|_| LoadError::NoEntry {
                path: source.to_owned(),
            })?;
        // SAFETY: calling the entry point is the contract; it returns a static table.
        let api = unsafe { entry() };
        if api.is_null() {
            return Err(LoadError::NoEntry {
                path: source.to_owned(),
            });
        }
        // Read only the two leading fields until the version is known to match.
        // SAFETY: every ABI generation starts the table with these two u32 fields.
        let (found, size) = unsafe { ((*api).abi_version, (*api).size) };
        if found != ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path: source.to_owned(),
                found,
                expected: ABI_VERSION,
            });
        }
        let expected = std::mem::size_of::<PluginApi>() as u32;
        if size < expected {
            return Err(LoadError::TableTooSmall {
                path: source.to_owned(),
                found: size,
                expected,
            });
        }
        // SAFETY: the version matched, so the table has every field.
        let manifest_buf = unsafe { ((*api).manifest)() };
        let manifest: Manifest =
            take_json(api, manifest_buf).map_err(|message| LoadError::Manifest {
                path: source.to_owned(),
                message,
            })?;
        validate_manifest(&manifest).map_err(|message| LoadError::Manifest {
            path: source.to_owned(),
            message,
        })?;
        Ok(OpenedPlugin {
            manifest,
            source: source.to_owned(),
            api,
            library,
        })
    }

    /// Hands the plugin its host table and config section.
    pub fn init(
        self,
        config: &serde_json::Value,
        services: Arc<Services>,
        generation: u64,
    ) -> Result<LoadedPlugin, LoadError> {
        let host = HostTable::new(
            &self.manifest.name,
            self.manifest.capabilities.clone(),
            services,
        );
        let bytes = serde_json::to_vec(config).expect("config sections serialize");
        // SAFETY: version checked in `open`; the host table lives in the returned plugin.
        let buf = unsafe { ((*self.api).init)(host.api(), bytes.as_ptr(), bytes.len()) };
        let response: PluginResponse<serde_json::Value> =
            take_json(self.api, buf).map_err(|message| LoadError::Init {
                plugin: self.manifest.name.clone(),
                path: self.source.clone(),
                error: PluginError::new(ErrorCode::Protocol, message),
            })?;
        if let PluginResponse::Error(error) = response {
            return Err(LoadError::Init {
                plugin: self.manifest.name.clone(),
                path: self.source.clone(),
                error,
            });
        }
        Ok(LoadedPlugin {
            manifest: self.manifest,
            source: self.source,
            generation,
            api: self.api,
            _host: host,
            _library: ManuallyDrop::new(self.library),
        })
    }
}

/// Decodes a buffer the plugin returned, then gives it back to the plugin to free.
fn take_json<T: DeserializeOwned>(api: *const PluginApi, buf: Buf) -> Result<T, String> {
    // SAFETY: `buf` came from this plugin and is freed exactly once, through its own table.
    let parsed = serde_json::from_slice(unsafe { buf.as_slice() }).map_err(|e| e.to_string());
    unsafe { ((*api).free_buf)(buf) };
    parsed
}

impl LoadedPlugin {
    fn call_json<T: DeserializeOwned>(
        &self,
        function: extern "C" fn(*const u8, usize) -> Buf,
        input: &[u8],
    ) -> Result<T, PluginError> {
        let buf = function(input.as_ptr(), input.len());
        let response: PluginResponse<T> = take_json(self.api, buf).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("plugin answered unreadable JSON: {e}"),
            )
        })?;
        response.into()
    }

    /// Runs a call on the current thread (the host runs it on a thread of its own).
    pub fn invoke(&self, call: &[u8]) -> Result<deckhand_plugin_abi::proto::Reply, PluginError> {
        // SAFETY: the table is valid while the library is mapped, which is forever.
        self.call_json(unsafe { (*self.api).invoke }, call)
    }

    pub fn autocomplete(
        &self,
        query: &[u8],
    ) -> Result<Vec<deckhand_plugin_abi::proto::Choice>, PluginError> {
        // SAFETY: as in `invoke`.
        self.call_json(unsafe { (*self.api).autocomplete }, query)
    }
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        // SAFETY: the last reference is gone, so no call is running; the library stays mapped.
        unsafe { ((*self.api).shutdown)() };
    }
}
