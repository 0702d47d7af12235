//! Deckhand: a ChatOps bot whose commands are served by plugins loaded at run time.
//!
//! The library holds everything the `deckhand` binary runs, so integration tests drive the
//! same code: [`app::App`] wires [`config`] → [`state`] → [`host`] → [`router`], and the
//! [`chat`] surfaces feed the router.

// No panics on input: non-test code may not unwrap or panic. `expect` stays allowed where its
// message states an invariant the code upholds (a serde_json::Value always serializes, the TLS
// backend is compiled in); each one was reviewed when this policy was set.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod alerts;
pub mod app;
pub mod chat;
pub mod cloud;
pub mod config;
pub mod host;
pub mod redact;
pub mod router;
pub mod sandbox;
pub mod sched;
pub mod secret;
pub mod state;
