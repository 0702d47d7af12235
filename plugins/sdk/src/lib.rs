//! Write a Deckhand plugin in safe Rust.
//!
//! A plugin is a `cdylib` crate with one type implementing [`Plugin`] and one line
//! `deckhand_plugin_sdk::export_plugin!(MyPlugin);`. The SDK hides the C tables of
//! [`deckhand_plugin_abi::ffi`]: it serializes messages, catches panics so none crosses the
//! boundary, and gives each call a [`Ctx`] through which the plugin reaches host services.
//!
//! A plugin must not do I/O of its own (no sockets, files or processes) and needs no async
//! runtime: every outside call goes through [`Ctx`], which the host scopes to the capabilities
//! the manifest declares.

// The derive's generated code names `::deckhand_plugin_sdk`, also inside this crate's tests.
extern crate self as deckhand_plugin_sdk;

mod command;
pub mod config;
mod ctx;
mod export;
// A test harness reports a failed expectation the way a test does: by panicking.
#[cfg(feature = "testing")]
#[allow(clippy::panic)]
pub mod testing;

pub use command::Command;
pub use ctx::{Ctx, Host};
/// `#[derive(Command)]`: see [`Command`].
pub use deckhand_command_derive::Command;
pub use deckhand_plugin_abi as abi;
pub use deckhand_plugin_abi::proto::{
    AutocompleteQuery, Call, Caller, Capabilities, Choice, CommandSpec, ErrorCode, HostError,
    HttpCapability, HttpRequest, HttpResponse, LogLevel, Manifest, Notification, OptionKind,
    OptionSpec, PluginError, ProgramOutput, Reply,
};

/// Autocomplete choices: the `names` that start with what was typed (`partial`), in their
/// order, each shown as itself.
pub fn choices_starting_with<S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
    partial: &str,
) -> Vec<Choice> {
    names
        .into_iter()
        .filter(|n| n.as_ref().starts_with(partial))
        .map(|n| Choice {
            name: n.as_ref().to_owned(),
            value: n.as_ref().to_owned(),
        })
        .collect()
}

#[doc(hidden)]
pub mod __private {
    pub use crate::command::{boolean_option, duration_option, integer_option, string_option};
    pub use crate::export::*;
    pub use serde_json::{Map, Value, json};
}

/// A plugin: its manifest, how it starts, and how it answers calls.
///
/// Calls may arrive on several threads at once, hence `Send + Sync`.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The `[plugins.config.NAME]` section, decoded by the SDK before [`Plugin::init`] (see
    /// [`config::decode`]). Use a struct with `#[serde(deny_unknown_fields)]` so a mistyped key
    /// is reported with its line by `deckhand check`; `serde_json::Value` takes anything.
    type Config: serde::de::DeserializeOwned;

    /// Commands, options and capabilities; read before [`Plugin::init`].
    fn manifest() -> Manifest;

    /// Builds the plugin from its configuration section.
    fn init(config: Self::Config, host: &Host) -> Result<Self, PluginError>;

    /// Runs one validated command.
    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError>;

    /// Suggests values for an option marked `autocomplete`.
    fn autocomplete(
        &self,
        _ctx: &Ctx,
        _query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        Ok(Vec::new())
    }

    /// Called once before the host unloads the library.
    fn shutdown(&self) {}
}

/// Typed access to a call's options; the host has already checked types against the manifest.
pub trait CallExt {
    fn str_opt(&self, name: &str) -> Option<&str>;
    fn int_opt(&self, name: &str) -> Option<i64>;
    fn bool_opt(&self, name: &str) -> bool;
    /// A `duration` option in milliseconds.
    fn duration_ms_opt(&self, name: &str) -> Option<u64>;
    /// The subcommand path below the plugin's command, e.g. `["pool", "add"]` for `/aks pool add`.
    fn subcommand(&self) -> Vec<&str>;
    /// The call decoded into its `#[derive(Command)]` type.
    fn decode<T: Command>(&self) -> Result<T, PluginError>;
}

impl CallExt for Call {
    fn str_opt(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|v| v.as_str())
    }

    fn int_opt(&self, name: &str) -> Option<i64> {
        self.options.get(name).and_then(|v| v.as_i64())
    }

    fn bool_opt(&self, name: &str) -> bool {
        self.options
            .get(name)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    fn duration_ms_opt(&self, name: &str) -> Option<u64> {
        self.options.get(name).and_then(|v| v.as_u64())
    }

    fn subcommand(&self) -> Vec<&str> {
        self.command.iter().skip(1).map(String::as_str).collect()
    }

    fn decode<T: Command>(&self) -> Result<T, PluginError> {
        let name = T::spec().name;
        match self.command.split_first() {
            Some((first, rest)) if *first == name => T::decode_path(rest, &self.options),
            _ => Err(PluginError::new(
                ErrorCode::UnknownCommand,
                format!("/{} is not /{name}", self.command.join(" ")),
            )),
        }
    }
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this library's Deckhand plugin.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// Deckhand plugin entry point (see `docs/plugin-abi.md`).
        #[unsafe(no_mangle)]
        pub extern "C" fn deckhand_plugin_entry() -> *const $crate::abi::ffi::PluginApi {
            static API: $crate::abi::ffi::PluginApi = $crate::abi::ffi::PluginApi {
                abi_version: $crate::abi::ABI_VERSION,
                size: ::std::mem::size_of::<$crate::abi::ffi::PluginApi>() as u32,
                manifest: $crate::__private::manifest::<$plugin>,
                init: $crate::__private::init::<$plugin>,
                invoke: $crate::__private::invoke,
                autocomplete: $crate::__private::autocomplete,
                free_buf: $crate::__private::free_buf,
                shutdown: $crate::__private::shutdown,
            };
            &API
        }
    };
}
