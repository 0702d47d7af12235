//! Deckhand: a ChatOps bot whose commands are served by plugins loaded at run time.
//!
//! The library holds everything the `deckhand` binary runs, so integration tests drive the
//! same code: [`app::App`] wires [`config`] → [`state`] → [`host`] → [`router`], and the
//! [`chat`] surfaces feed the router.

pub mod alerts;
pub mod app;
pub mod chat;
pub mod config;
pub mod cost;
pub mod followup;
pub mod host;
pub mod ops;
pub mod router;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod sched;
pub mod state;

// The lower layers live in their own crates, so Cargo enforces that they never import the bot;
// re-exported under the names the rest of the bot (and the tests) use.
pub use deckhand_cloud as cloud;
pub use deckhand_support::{config_support, metrics, redact, secret};
