//! Fault injection observed by an HTTP client.
