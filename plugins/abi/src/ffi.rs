//! The C function tables. Field order is the contract: fields are only ever appended, and each
//! table starts with its ABI version and its own size so either side can tell what the other has.

use std::ffi::c_void;

/// A byte buffer handed across the boundary. Whoever allocated it frees it, through the
/// `free_buf` of the table it came from. `cap` lets a Rust allocator rebuild its `Vec`.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buf {
    /// Moves a vector into a buffer; free it with [`Buf::into_vec`] on the same side.
    pub fn from_vec(bytes: Vec<u8>) -> Buf {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Takes a buffer back into a vector.
    ///
    /// # Safety
    /// The buffer must come from [`Buf::from_vec`] in this same library and not be used again.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// Borrows the bytes without taking ownership.
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes (or be null) for the lifetime of the borrow.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Services the host offers a plugin; given to [`PluginApi::init`] and valid until `shutdown`.
#[repr(C)]
pub struct HostApi {
    pub abi_version: u32,
    /// `size_of::<HostApi>()` on the host side.
    pub size: u32,
    /// Opaque host state; pass it back on every call.
    pub ctx: *const c_void,
    /// Calls a host service: `request` is a JSON [`crate::proto::HostRequest`], the answer a JSON
    /// [`crate::proto::HostResponse`]. Blocks the calling thread until the service answers.
    pub call: extern "C" fn(ctx: *const c_void, request: *const u8, len: usize) -> Buf,
    /// True once the invocation (UTF-8 id) was cancelled or timed out; cheap, poll it in loops.
    pub is_cancelled: extern "C" fn(ctx: *const c_void, invocation: *const u8, len: usize) -> bool,
    /// Frees a buffer returned by `call`.
    pub free_buf: extern "C" fn(ctx: *const c_void, buf: Buf),
}

/// The table a plugin exports through [`crate::ENTRY_SYMBOL`].
///
/// Every function may be called from several host threads at once, except `init` and
/// `shutdown`, which run alone. No function may unwind across the boundary.
#[repr(C)]
pub struct PluginApi {
    pub abi_version: u32,
    /// `size_of::<PluginApi>()` on the plugin side.
    pub size: u32,
    /// JSON [`crate::proto::Manifest`]; callable before `init`.
    pub manifest: extern "C" fn() -> Buf,
    /// Starts the plugin with its configuration section (JSON). Answers a JSON
    /// [`crate::proto::PluginResponse`] whose `ok` is `null`.
    pub init: extern "C" fn(host: *const HostApi, config: *const u8, len: usize) -> Buf,
    /// Runs a command: JSON [`crate::proto::Call`] in, [`crate::proto::PluginResponse`] of a
    /// [`crate::proto::Reply`] out.
    pub invoke: extern "C" fn(call: *const u8, len: usize) -> Buf,
    /// Answers an option's autocomplete: JSON [`crate::proto::AutocompleteQuery`] in,
    /// [`crate::proto::PluginResponse`] of `Vec<`[`crate::proto::Choice`]`>` out.
    pub autocomplete: extern "C" fn(query: *const u8, len: usize) -> Buf,
    /// Frees a buffer this plugin returned.
    pub free_buf: extern "C" fn(buf: Buf),
    /// Called once before the host lets go of the library.
    pub shutdown: extern "C" fn(),
}

/// Signature of the exported entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginApi;
