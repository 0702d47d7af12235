//! Deckhand: a ChatOps bot whose commands are served by plugins loaded at run time.
//!
//! The library holds everything the `deckhand` binary runs, so integration tests drive the
//! same code: [`app::App`] wires [`config`] → [`state`] → [`host`] → [`router`], and the
//! [`chat`] surfaces feed the router.

pub mod alerts;
pub mod app;
pub mod chat;
pub mod cloud;
pub mod config;
pub mod config_support;
pub mod host;
pub mod redact;
pub mod router;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod sched;
pub mod secret;
pub mod state;
