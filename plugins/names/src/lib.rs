//! What a name a user types must look like before it reaches an Azure or Kubernetes path.
//!
//! Two layers, both pure (no I/O), shared by the host and the plugins:
//! - [`rules`]: each system's own naming rules ([`NameRule`]), checked at the command boundary
//!   so the user hears the rule, before any confirmation and before any request;
//! - [`arm`]: [`ArmPath`], a typed Azure Resource Manager address whose segments can never be
//!   `.`, `..`, empty, over-long or carry `/ ? #`, percent-encoded on the wire. The host parses
//!   every plugin's ARM path into one, checks capabilities on it and builds the URL from it, so
//!   what is authorised is what is sent.
//! - [`kube`]: the same guard for the names that end up in Kubernetes API paths.

pub mod arm;
pub mod kube;
pub mod rules;

pub use arm::{ArmPath, ArmPathError};
pub use rules::{NameError, NameRule};

/// How a user's value is quoted in an error: control characters escaped, long values cut, so a
/// hostile value can neither corrupt a terminal nor flood a channel.
pub fn quote(value: &str) -> String {
    const SHOWN: usize = 40;
    let count = value.chars().count();
    if count <= SHOWN {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head:?}… ({count} characters)")
    }
}
