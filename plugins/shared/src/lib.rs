//! What Deckhand's cloud plugins share, written once: typed models of the Azure resources they
//! manage ([`azure`]), where workloads go on AKS ([`placement`]), and the naming rules Azure and
//! Kubernetes enforce ([`names`]). Pure data and functions: no I/O (plugins reach the cloud only
//! through host services).

pub mod azure;
pub mod names;
pub mod placement;
pub mod target;
pub mod writable;
