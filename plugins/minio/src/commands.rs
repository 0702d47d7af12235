//! The `/minio` commands, declared once: each struct is a subcommand's manifest entry and the
//! type its handler receives (`#[derive(Command)]`, see the SDK).

use std::time::Duration;

use deckhand_plugin_sdk::Command;

/// MinIO / S3 storage for experiment data
#[derive(Command, Debug)]
#[command(name = "minio")]
pub enum MinioCommand {
    Buckets(Buckets),
    Mb(Mb),
    Rb(Rb),
    Ls(Ls),
    Usage(Usage),
    Health(Health),
    Share(Share),
}

/// Buckets with their objects and bytes
#[derive(Command, Debug)]
#[command(timeout_secs = 600)]
pub struct Buckets {
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// Create a bucket
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Mb {
    /// Bucket name, e.g. experiment-data
    #[option(positional, rule = S3Bucket)]
    pub name: String,
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// Remove a bucket (--force: with its objects, after showing what they are)
#[derive(Command, Debug)]
#[command(destructive, timeout_secs = 1800)]
pub struct Rb {
    /// Bucket name
    #[option(positional, autocomplete, rule = S3Bucket)]
    pub name: String,
    /// Delete the bucket's objects too
    pub force: bool,
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// The first keys of a bucket or prefix with sizes and ages, and the total
#[derive(Command, Debug)]
#[command(timeout_secs = 600)]
pub struct Ls {
    /// BUCKET or BUCKET/PREFIX
    #[option(positional, autocomplete)]
    pub target: String,
    /// Show at most this many keys
    #[option(default = 20)]
    pub top: i64,
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// Totals, largest buckets and growth since last week
#[derive(Command, Debug)]
#[command(timeout_secs = 900)]
pub struct Usage {
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// Is the server live and ready, and how fast does it answer
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Health {
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}

/// A presigned download link, shown to you alone
#[derive(Command, Debug)]
#[command(timeout_secs = 60)]
pub struct Share {
    /// BUCKET/KEY
    #[option(positional)]
    pub target: String,
    /// How long the link works (at most 7 days)
    #[option(default = 3600000)]
    pub expires: Duration,
    /// Endpoint (default: the configured one)
    #[option(autocomplete)]
    pub endpoint: Option<String>,
}
