//! Deckhand's plugin contract.
//!
//! This crate is the whole boundary between the `deckhand` host and a plugin library:
//! the `repr(C)` function tables in [`ffi`] and the JSON messages in [`proto`] that travel
//! through them. It does no I/O and depends only on serde and the naming rules
//! (`deckhand-cloud-names`, so an option can carry the rule its value must meet), so both sides (and the SDK's test
//! harness) agree on one definition. See `docs/plugin-abi.md` and
//! `plugins/sdk/include/deckhand_plugin.h` for the same contract in prose and in C.

pub mod ffi;
pub mod proto;
pub mod resource_groups;

/// The ABI version this crate describes. A host refuses a plugin whose tables carry another one.
///
/// Bump it on any incompatible change to the tables in [`ffi`] or the meaning of [`proto`].
/// Appending a field to a table (older readers check `size`) is not incompatible.
pub const ABI_VERSION: u32 = 1;

/// The one symbol every plugin library exports; it returns a pointer to a [`ffi::PluginApi`].
pub const ENTRY_SYMBOL: &str = "deckhand_plugin_entry";
