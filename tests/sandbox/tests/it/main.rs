//! Integration tests of the cloud sandbox, over real HTTP with the clients Deckhand uses.

mod support;

mod arm;
mod examples;
mod faults;
mod identity;
mod kube_api;
mod token;
