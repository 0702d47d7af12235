//! The command grammar lives in its own crate (`deckhand-command-grammar`) so that the fuzz
//! target and the plugin SDK's test harness run exactly the parser the router runs.
pub use deckhand_command_grammar::*;
