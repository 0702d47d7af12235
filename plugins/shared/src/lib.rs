//! What Deckhand's cloud plugins share, written once: typed models of the Azure resources they
//! manage ([`azure`]), where workloads go on AKS ([`placement`]), and the naming rules Azure and
//! Kubernetes enforce ([`names`]). Pure data and functions: no I/O (plugins reach the cloud only
//! through host services).

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

pub mod azure;
pub mod names;
pub mod placement;
