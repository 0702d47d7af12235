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
mod cluster;
mod confirm;
mod cost;
mod daskhub;
mod deploy;
mod discord;
mod discord_channels;
mod discord_reply;
mod followup;
mod ha;
mod hostile;
mod image;
mod minio;
mod ops;
mod permissions;
mod plugins;
mod postgres;
mod rg;
mod router_input;
mod runner;
mod sched;
mod secrets;
mod terminal_pipeline;
mod vk;
