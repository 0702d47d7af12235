//! Deckhand's lowest layer, imported by every other part of the bot and importing none:
//! [`secret`] values that redact themselves, the process-wide [`redact`]or every reply and log
//! line passes through, and [`config_support`] (errors with lines, human durations, paths
//! relative to the config file) that each component's config section uses, and the process-wide
//! [`metrics`] every layer records into.

pub mod config_support;
pub mod metrics;
pub mod redact;
pub mod secret;
