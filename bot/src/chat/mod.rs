//! Chat surfaces. Each turns what a person typed into an [`crate::router::Invocation`] and
//! shows the [`crate::router::Response`]; none of them parses or authorizes on its own.

pub mod terminal;
