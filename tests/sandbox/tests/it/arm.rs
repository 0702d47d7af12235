//! ARM behaviour beyond the examples.
