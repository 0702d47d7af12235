//! The `extern "C"` functions behind [`crate::export_plugin!`]. Each one catches panics, so a
//! plugin bug becomes an error reply instead of unwinding into the host.

use deckhand_plugin_abi::proto::ErrorCode;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use deckhand_plugin_abi::ffi::{Buf, HostApi};
use deckhand_plugin_abi::proto::{
    AutocompleteQuery, Call, Choice, PluginError, PluginResponse, Reply,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Ctx, Host, Plugin};

/// The object-safe half of [`Plugin`], stored once per library.
trait Handler: Send + Sync {
    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError>;
    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError>;
    fn shutdown(&self);
}

impl<P: Plugin> Handler for P {
    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        Plugin::call(self, ctx, call)
    }
    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        Plugin::autocomplete(self, ctx, query)
    }
    fn shutdown(&self) {
        Plugin::shutdown(self)
    }
}

struct Instance {
    host: Host,
    handler: Box<dyn Handler>,
}

static INSTANCE: OnceLock<Instance> = OnceLock::new();

fn to_buf<T: Serialize>(value: &T) -> Buf {
    Buf::from_vec(serde_json::to_vec(value).expect("plugin messages always serialize"))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned())
}

/// Runs `f` with panics turned into a `panic` error.
fn guarded<T: Serialize>(f: impl FnOnce() -> Result<T, PluginError>) -> Buf {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(PluginError::new(
            ErrorCode::Panic,
            format!("plugin panicked: {}", panic_message(payload.as_ref())),
        ))
    });
    to_buf(&PluginResponse::from(result))
}

fn decode<T: DeserializeOwned>(ptr: *const u8, len: usize) -> Result<T, PluginError> {
    // SAFETY: the ABI guarantees `len` readable bytes at `ptr` for the duration of the call.
    let bytes = if ptr.is_null() {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    serde_json::from_slice(bytes).map_err(|e| {
        PluginError::new(
            ErrorCode::Protocol,
            format!("plugin could not read the host's message: {e}"),
        )
    })
}

fn instance() -> Result<&'static Instance, PluginError> {
    INSTANCE
        .get()
        .ok_or_else(|| PluginError::new(ErrorCode::Protocol, "plugin called before init"))
}

pub extern "C" fn manifest<P: Plugin>() -> Buf {
    let result = catch_unwind(P::manifest).map_err(|payload| panic_message(payload.as_ref()));
    match result {
        Ok(manifest) => to_buf(&manifest),
        // A manifest that panics is reported as an unreadable one: the host refuses the plugin.
        Err(message) => to_buf(&format!("manifest panicked: {message}")),
    }
}

pub extern "C" fn init<P: Plugin>(host: *const HostApi, config: *const u8, len: usize) -> Buf {
    guarded(|| {
        if host.is_null() {
            return Err(PluginError::new(ErrorCode::Protocol, "host table is null"));
        }
        let host = Host::new(host);
        let section: serde_json::Value = decode(config, len)?;
        let config = crate::config::decode::<P::Config>(&P::manifest().name, section)?;
        let plugin = P::init(config, &host)?;
        INSTANCE
            .set(Instance {
                host,
                handler: Box::new(plugin),
            })
            .map_err(|_| PluginError::new(ErrorCode::Protocol, "init called twice"))?;
        Ok(serde_json::Value::Null)
    })
}

pub extern "C" fn invoke(call: *const u8, len: usize) -> Buf {
    guarded(|| {
        let instance = instance()?;
        let call: Call = decode(call, len)?;
        let ctx = Ctx::new(instance.host, Some(call.invocation_id.clone()));
        instance.handler.call(&ctx, &call)
    })
}

pub extern "C" fn autocomplete(query: *const u8, len: usize) -> Buf {
    guarded(|| {
        let instance = instance()?;
        let query: AutocompleteQuery = decode(query, len)?;
        let ctx = Ctx::new(instance.host, None);
        instance.handler.autocomplete(&ctx, &query)
    })
}

pub extern "C" fn free_buf(buf: Buf) {
    // SAFETY: the host returns only buffers this library made with `Buf::from_vec`.
    drop(unsafe { buf.into_vec() });
}

pub extern "C" fn shutdown() {
    let _ = catch_unwind(|| {
        if let Some(instance) = INSTANCE.get() {
            instance.handler.shutdown();
        }
    });
}
