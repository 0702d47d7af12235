//! Deckhand integration tests, one binary (see `support/` for the harness).
//!
//! Run after `cargo build --workspace`: they `dlopen` the built test plugins and run the built
//! `deckhand` binary.

mod acr;
mod aks;
mod alerts;
mod audit;
mod cli;
mod cloud_arm;
mod cloud_kube;
mod cloud_registry;
mod confirm;
mod cost;
mod daskhub;
mod deploy;
mod discord;
mod hostile;
mod minio;
mod permissions;
mod plugins;
mod router_input;
mod runner;
mod sched;
mod secrets;
mod vk;
