//! Exports a table stamped with a future ABI version; the host must refuse it by naming both
//! versions, without calling anything else in the table.

use deckhand_plugin_abi::ABI_VERSION;
use deckhand_plugin_abi::ffi::{Buf, HostApi, PluginApi};

extern "C" fn manifest() -> Buf {
    Buf::from_vec(br#"{"name":"wrongabi","version":"0.1.0","commands":[]}"#.to_vec())
}

extern "C" fn unreachable_init(_host: *const HostApi, _config: *const u8, _len: usize) -> Buf {
    std::process::abort()
}

extern "C" fn unreachable_call(_ptr: *const u8, _len: usize) -> Buf {
    std::process::abort()
}

extern "C" fn free_buf(buf: Buf) {
    // SAFETY: only buffers made by `Buf::from_vec` in this library come back here.
    drop(unsafe { buf.into_vec() });
}

extern "C" fn shutdown() {}

static API: PluginApi = PluginApi {
    abi_version: ABI_VERSION + 1,
    size: std::mem::size_of::<PluginApi>() as u32,
    manifest,
    init: unreachable_init,
    invoke: unreachable_call,
    autocomplete: unreachable_call,
    free_buf,
    shutdown,
};

/// Deckhand plugin entry point, deliberately from the wrong ABI generation.
#[unsafe(no_mangle)]
pub extern "C" fn deckhand_plugin_entry() -> *const PluginApi {
    &API
}
